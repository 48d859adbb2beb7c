"""The comparisons the suites run: an adapter path against the reference (`parity`)."""
