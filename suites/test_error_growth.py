"""Error growth over sequence length: for each adapter path (its plain variant, float32 and
float64 where declared), one layer, B=4, I=H=32, T in STEPS, two seeds, default-scale random
weights, inputs and initial state (where declared) rounded to float32: the largest error of y,
h_n and c_n against the float64 reference, per T, goes into the report's `error_growth`
section (the report plots it against the tolerance), and must stay within
``tolerance(dtype, T, fan_in)``. This is the measurement behind the sqrt(steps) model of
conformance/core/tolerances.py, re-run on every report.
"""
from __future__ import annotations

import pytest

import reference
from conformance.adapters import registry
from conformance.core.adapter_strategies import case_shape, dtypes_of, repro_snippet, rounded
from conformance.checks.parity import Run, max_abs_errors, registry_params
from conformance.core.strategies import Case
from conformance.core.tolerances import tolerance

STEPS = (1, 4, 16, 64, 256)
SEEDS = (1, 2)
SIZE = 32
PLAIN = [p for p in registry_params() if not p.values[0].options]


@pytest.mark.parametrize("info, device", PLAIN)
def test_error_growth(info, device, conformance_record, conformance_section):
    with Run(info, device, "error growth over sequence length", conformance_record) as run:
        adapters = run.load(info, device)
        for dtype in dtypes_of(info):
            for steps in STEPS:
                worst = 0.0
                for seed in SEEDS:
                    case = Case(cell=info.cell, steps=steps, batch=4, input_size=SIZE, hidden_size=SIZE,
                                initial_state="initial_state" in info.features, seed=seed)
                    stack, x, h0, c0 = rounded(case)
                    run.example(seed, repro_snippet(registry.loadable_name(info), case, dtype))
                    got = adapters[dtype].forward(stack, x, h0, c0)
                    err = max(max_abs_errors(got, reference.run(stack, x, h0, c0)).values())
                    tol = tolerance(dtype, *case_shape(stack, steps))
                    run.observe(err, tol, seed)
                    worst = max(worst, err)
                    assert err <= tol, (f"{info.name} ({dtype}) at T={steps}: max |error| {err:.3g} > tolerance "
                                        f"{tol:.3g}\nseed={seed}, case={case.short()}\nrepro:\n{run.last['repro']}")
                conformance_section("error_growth", adapter=info.name, dtype=dtype, steps=steps,
                                    max_abs_err=worst, tolerance=tol, backend=run.record["backend"])
