"""Worked examples: outside adapters that plug into the suites like the built-in ones."""
