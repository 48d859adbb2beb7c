"""Smoke parity: every adapter path, dropout off, equals the float64 reference.

For each registered adapter path (``conformance.registry.adapters()``: the built-ins plus any
outside ones named in $RNN_CONFORMANCE_ADAPTERS) and each device it declares, hypothesis draws
small cases restricted to the path's features (``conformance.adapter_strategies.parity_cases``:
T 1..6, B 1..3, I, H 1..5, stacked / bidirectional / initial state / projection / peephole /
forget_bias / cell_clip / reset-before where declared), plus one explicit example with every
declared feature switched on (``full_case``), with random asymmetric weights. The
weights and inputs are rounded to float32 first; the adapter and ``reference.run`` (float64)
then see the very same numbers, and y, h_n and c_n must agree within
``conformance.tolerances.tolerance(dtype, steps, fan_in)``.

Each test records the worst example (largest error / tolerance) with its seed; a failure's
message carries the seed and a copy-paste Python repro. Devices the machine lacks (CUDA here)
skip with the adapter's `DeviceUnavailable` message as the reason.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import reference
from conformance import registry
from conformance.adapter_strategies import case_shape, dtypes_of, full_case, parity_cases, repro_snippet, rounded
from conformance.adapters.base import DeviceUnavailable
from conformance.frameworks import installed_version, require
from conformance.tolerances import tolerance

FEATURE = "dropout-off parity"
# Few examples: framework layers are slow to build. The ci profile is derandomized, so these
# are the same cases on every run; the thorough profile draws more.
EXAMPLES = max(8, settings.default.max_examples // 10)


def _params():
    out = []
    for info in registry.adapters():
        for device in info.devices:
            out.append(pytest.param(info, device, id=info.name if device == "cpu" else f"{info.name}@{device}"))
    return out


def max_abs_errors(got, want):
    """{name: max |got - want|} over y, h_n, c_n; shapes must match exactly."""
    errs = {}
    for k in ("y", "h_n", "c_n"):
        w, g = getattr(want, k), getattr(got, k)
        if w is None:
            assert g is None, f"{k}: expected None (GRU), got an array of shape {np.shape(g)}"
            continue
        g = np.asarray(g)
        assert g.shape == w.shape, f"{k}: shape {g.shape}, expected {w.shape}"
        assert np.all(np.isfinite(g)), f"{k}: not finite"
        errs[k] = float(np.max(np.abs(g.astype(np.float64) - w)))
    return errs


@pytest.mark.parametrize("info, device", _params())
def test_dropout_off_parity(info, device, conformance_record):
    require(info.framework)
    for module in info.requires:
        require(module)
    record = dict(adapter=info.name, framework=info.framework,
                  framework_version=installed_version(info.distribution), backend=info.backend,
                  device=device, feature=FEATURE)
    try:
        adapters = {dt: registry.load(info, device=device, dtype=dt) for dt in dtypes_of(info)}
    except DeviceUnavailable as e:
        conformance_record(**record)
        pytest.skip(str(e))
    record["backend"] = getattr(adapters["float32"], "backend", info.backend)
    worst, last = {}, {}

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case=parity_cases(info), dtype=st.sampled_from(dtypes_of(info)))
    def check(case, dtype):
        stack, x, h0, c0 = rounded(case)
        steps, fan_in = case_shape(stack, case.steps)
        tol = tolerance(dtype, steps, fan_in)
        repro = repro_snippet(info.name, case, dtype)
        last.update(seed=case.seed, repro=repro)
        try:
            got = adapters[dtype].forward(stack, x, h0, c0)
        except Exception as e:  # a crash is a finding too: say which case
            e.add_note(f"{info.name} ({dtype}, {device}) crashed on seed={case.seed}, case={case.short()}"
                       f"\nrepro:\n{repro}")
            raise
        want = reference.run(stack, x, h0, c0)
        errs = max_abs_errors(got, want)
        err = max(errs.values())
        if not worst or err / tol > worst["err"] / worst["tol"]:
            worst.update(err=err, tol=tol, seed=case.seed)
        assert err <= tol, (
            f"{info.name} ({dtype}, {device}) differs from the reference: max |error| {err:.3g} > "
            f"tolerance {tol:.3g} (steps={steps}, fan_in={fan_in}); per output "
            + ", ".join(f"{k}={v:.3g}" for k, v in errs.items())
            + f"\nseed={case.seed}, case={case.short()}\nrepro:\n{repro}")

    for dtype in dtypes_of(info):  # every declared feature at once, in every dtype
        check = example(case=full_case(info), dtype=dtype)(check)
    try:
        check()
    except BaseException:
        if last:  # hypothesis runs the (shrunk) failing example last: its repro goes in the record
            record["repro"] = last["repro"]
        raise
    finally:
        if worst:
            record.update(max_abs_err=worst["err"], tolerance=worst["tol"], seed=worst["seed"])
        conformance_record(**record)
