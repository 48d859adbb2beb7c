"""Smoke parity: every adapter path, dropout off, equals the float64 reference.

For each registered adapter path (``conformance.adapters.registry.adapters()``: the built-ins plus any
outside ones named in $RNN_CONFORMANCE_ADAPTERS) and each device it declares, hypothesis draws
small cases restricted to the path's features (``conformance.core.adapter_strategies.parity_cases``:
T 1..6, B 1..3, I, H 1..5, stacked / bidirectional / initial state / projection / peephole /
forget_bias / cell_clip / reset-before / variable lengths where declared), plus one explicit
example with every declared feature switched on (``full_case``), with random asymmetric
weights. The weights and inputs are rounded to float32 first; the adapter and
``reference.run`` (float64; with lengths under the path's declared padding policy) then see
the very same numbers, and y, h_n and c_n must agree within
``conformance.core.tolerances.tolerance(dtype, steps, fan_in)``.

Each test records the worst example (largest error / tolerance) with its seed, and the
kernels the adapter reports (`kernel_of`, e.g. torch's oneDNN vs native) with their case
counts; a failure's message carries the seed and a copy-paste Python repro. Devices the
machine lacks (CUDA here) skip with the adapter's `DeviceUnavailable` message as the reason.
"""
from __future__ import annotations

import pytest
from hypothesis import settings

import reference
from conformance.adapters import registry
from conformance.core.adapter_strategies import case_shape, lengths_of, repro_snippet, rounded
from conformance.checks.parity import Run, check_parity_cases, max_abs_errors, registry_params
from conformance.core.tolerances import tolerance

FEATURE = "dropout-off parity"
# Few examples: framework layers are slow to build. The ci profile is derandomized, so these
# are the same cases on every run; the thorough profile draws more.
EXAMPLES = max(8, settings.default.max_examples // 10)


@pytest.mark.parametrize("info, device", registry_params())
def test_dropout_off_parity(info, device, conformance_record):
    with Run(info, device, FEATURE, conformance_record) as run:
        adapters = run.load(info, device)

        def check(case, dtype):
            stack, x, h0, c0 = rounded(case)
            steps, fan_in = case_shape(stack, case.steps)
            tol = tolerance(dtype, steps, fan_in)
            repro = repro_snippet(registry.loadable_name(info), case, dtype)
            run.example(case.seed, repro)
            try:
                got = adapters[dtype].forward(stack, x, h0, c0, **lengths_of(case))
            except Exception as e:  # a crash is a finding too: say which case
                e.add_note(f"{info.name} ({dtype}, {device}) crashed on seed={case.seed}, case={case.short()}"
                           f"\nrepro:\n{repro}")
                raise
            want = reference.run(stack, x, h0, c0, padding=case.padding, **lengths_of(case))
            errs = max_abs_errors(got, want)
            err = max(errs.values())
            run.observe(err, tol, case.seed)
            run.kernel(adapters[dtype], dtype, stack, x, h0, c0, **lengths_of(case))
            assert err <= tol, (
                f"{info.name} ({dtype}, {device}) differs from the reference: max |error| {err:.3g} > "
                f"tolerance {tol:.3g} (steps={steps}, fan_in={fan_in}); per output "
                + ", ".join(f"{k}={v:.3g}" for k, v in errs.items())
                + f"\nseed={case.seed}, case={case.short()}\nrepro:\n{repro}")

        check_parity_cases(info, check, EXAMPLES)
