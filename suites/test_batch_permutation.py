"""Batch-position invariance: permuting the batch rows of the input (and of h0, c0 and the
lengths) permutes the outputs and final states the same way, for every adapter path.

Each row of a recurrent layer is an independent sequence; a kernel that mixed rows, kept
state across rows or mis-ordered them on the way back (a PackedSequence's sorted/unsorted
indices, say) would break this. Cases are ``parity_cases`` with at least two rows; the
permutation comes from the case's seed and is never the identity. The adapter is compared
with itself, so the bound is the parity tolerance ``tolerance(dtype, steps, fan_in)``; the
record also says in how many cases the results were bit-identical (row-independent
arithmetic; a blocked GEMM may legitimately round a row differently at another position).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.adapters import registry
from conformance.core.adapter_strategies import (
    batch_permutation, case_shape, dtypes_of, lengths_of, parity_cases, permute_rows, rounded)
from conformance.checks.parity import Run, max_abs_errors, registry_params
from conformance.core.tolerances import tolerance

FEATURE = "batch-permutation invariance"
EXAMPLES = max(6, settings.default.max_examples // 15)


def repro_snippet(name, case, dtype):
    return "\n".join([
        "import numpy as np",
        "from conformance.adapters import registry",
        "from conformance.core.adapter_strategies import batch_permutation, lengths_of, permute_rows, rounded",
        "from conformance.core.strategies import Case",
        f"case = {case.short()}",
        "stack, x, h0, c0 = rounded(case)",
        f"a = registry.load({name!r}, dtype={dtype!r})",
        "perm = batch_permutation(case)",
        "base = a.forward(stack, x, h0, c0, **lengths_of(case))",
        "xp, h0p, c0p, kw = permute_rows(perm, x, h0, c0, lengths_of(case).get('lengths'))",
        "got = a.forward(stack, xp, h0p, c0p, **kw)",
        "print({k: np.max(np.abs(getattr(got, k) - np.take(getattr(base, k), perm, axis=1)))",
        "       for k in ('y', 'h_n', 'c_n') if getattr(base, k) is not None})",
    ])


@pytest.mark.parametrize("info, device", registry_params())
def test_batch_permutation(info, device, conformance_record):
    exact = []
    with Run(info, device, FEATURE, conformance_record) as run:
        adapters = run.load(info, device)

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(case=parity_cases(info, max_batch=4).filter(lambda c: c.batch >= 2),
               dtype=st.sampled_from(dtypes_of(info)))
        def check(case, dtype):
            stack, x, h0, c0 = rounded(case)
            repro = repro_snippet(registry.loadable_name(info), case, dtype)
            run.example(case.seed, repro)
            adapter, perm = adapters[dtype], batch_permutation(case)
            base = adapter.forward(stack, x, h0, c0, **lengths_of(case))
            xp, h0p, c0p, kw = permute_rows(perm, x, h0, c0, lengths_of(case).get("lengths"))
            got = adapter.forward(stack, xp, h0p, c0p, **kw)
            want = type(base)(**{k: None if getattr(base, k) is None else np.take(getattr(base, k), perm, axis=1)
                                 for k in ("y", "h_n", "c_n")})
            errs = max_abs_errors(got, want)
            err, tol = max(errs.values()), tolerance(dtype, *case_shape(stack, case.steps))
            exact.append(err == 0.0)
            run.observe(err, tol, case.seed)
            assert err <= tol, (
                f"{info.name} ({dtype}, {device}): permuting the batch rows by {perm.tolist()} does not permute "
                f"the results: max |difference| {err:.3g} > {tol:.3g}; per output "
                + ", ".join(f"{k}={v:.3g}" for k, v in errs.items())
                + f"\nseed={case.seed}, case={case.short()}\nrepro:\n{repro}")

        check()
        run.record["reason"] = f"bit-identical after permutation in {sum(exact)} of {len(exact)} cases"
