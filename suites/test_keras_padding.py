"""Keras 3 masked steps, per backend: outputs, final states and gradients of ``LSTM`` / ``GRU``
under a ``mask=`` with leading masked steps, an inner gap and right padding, a nonzero initial
state, for every combination of ``unroll``, ``go_backwards`` and ``zero_output_for_mask``,
against ``reference.run_vjp(step_mask=, padding=policy, go_backwards=)``, where the policy is
the documented one (`keras_strategies.expected_policy`): ``zero_output_for_mask=True`` -> zeros,
else the previous output (zeros before the first valid step: "repeat_output"); states carried.

Marked ``keras``: run once per backend (KERAS_BACKEND=tensorflow | jax | torch). The
cross-backend comparison on the same weights and masks is suites/test_keras_cross_backend.py.
Tolerance: ``conformance.core.tolerances.tolerance`` (x2 for gradients, as test_gradient_parity).
"""
from __future__ import annotations

import itertools

import pytest

import reference
from conformance.adapters.keras import strategies as KS
from conformance.adapters import registry
from conformance.core.adapter_strategies import case_shape, cotangents
from conformance.core.frameworks import require
from conformance.checks.parity import grad_errors, max_abs_errors
from conformance.core.tolerances import tolerance

pytestmark = [pytest.mark.keras, pytest.mark.framework("keras")]
GRID = list(itertools.product(("lstm", "gru"), (False, True), (False, True), (False, True)))
SEED = 11


def repro(cell, unroll, gb, zo):
    return "\n".join([
        "import numpy as np, reference",
        "from conformance.adapters import registry", "from conformance.adapters.keras import strategies as KS",
        "from conformance.core.adapter_strategies import cotangents",
        f"case, stack, x, h0, c0, valid = KS.masked_case({cell!r}, {SEED})",
        f"a = registry.load(KS.variant({cell!r}, unroll={unroll}, go_backwards={gb}, zero_output_for_mask={zo}))",
        "got = a.run(stack, x, h0, c0, step_mask=valid)[0]",
        f"want = reference.run(stack, x, h0, c0, step_mask=valid, padding=KS.expected_policy({zo}), go_backwards={gb})",
        "print(np.round(got.y[..., 0], 3)); print(np.round(want.y[..., 0], 3))",
    ])


@pytest.mark.parametrize("cell, unroll, go_backwards, zero_output_for_mask", GRID,
                         ids=[f"{c}-unroll={u}-go_backwards={g}-zero_output_for_mask={z}" for c, u, g, z in GRID])
def test_masked_steps(cell, unroll, go_backwards, zero_output_for_mask, conformance_record):
    require("keras")
    info = KS.variant(cell, unroll=unroll, go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask)
    adapter = registry.load(info)
    case, stack, x, h0, c0, valid = KS.masked_case(cell, SEED)
    policy = KS.expected_policy(zero_output_for_mask)
    dy, dh, dc = cotangents(case, stack)
    rp = repro(cell, unroll, go_backwards, zero_output_for_mask)
    feature = f"masked steps ({policy}, leading masked steps, nonzero initial state)"
    common = dict(adapter=info.name, backend=adapter.backend, feature=feature, seed=SEED, repro=rp)
    try:
        got, gg = adapter.run(stack, x, h0, c0, step_mask=valid, cotangents=(dy, dh, dc))
    except Exception as e:
        KS.record(conformance_record, **common, reason=f"crash: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        raise AssertionError(f"{info.name} ({adapter.backend}) crashed on a masked call: {type(e).__name__}: "
                             f"{str(e).splitlines()[0][:300]}\nseed={SEED}\nrepro:\n{rp}") from e
    want, wg = reference.run_vjp(stack, x, dy, dh, dc, h0, c0, step_mask=valid, padding=policy,
                                 go_backwards=go_backwards)
    steps, fan_in = case_shape(stack, case.steps)
    tol = tolerance("float32", steps, fan_in)
    errs = max_abs_errors(got, want)
    gerrs = grad_errors(gg, wg)
    ratios = {k: v / tol for k, v in errs.items()}
    ratios.update({k: e / (2 * tolerance("float32", steps, fan_in, magnitude=m)) for k, (e, m) in gerrs.items()})
    worst = max(ratios, key=ratios.get)
    # which policy does the backend follow, if not the documented one? (for the message)
    other = {}
    for pol in reference.POLICIES:
        r = reference.run(stack, x, h0, c0, step_mask=valid, padding=pol, go_backwards=go_backwards)
        other[pol] = max(max_abs_errors(got, r).values())
    follows = [p for p, e in other.items() if e <= tol]
    err = max(errs.values())
    KS.record(conformance_record, **common, err=err, tol=tol,
              reason=f"worst {worst} at {ratios[worst]:.3g}x tolerance; outputs match policies {follows or 'none'}")
    bad = {k: r for k, r in ratios.items() if r > 1}
    assert not bad, (
        f"{info.name} ({adapter.backend}) at masked steps differs from the documented policy {policy!r}: "
        + ", ".join(f"{k} {r:.3g}x" for k, r in sorted(bad.items(), key=lambda kv: -kv[1])[:6])
        + f" of its tolerance; its outputs match the reference policies {follows or 'none'} "
        + f"(y errors per policy: {', '.join(f'{p}={e:.2g}' for p, e in other.items())})\nseed={SEED}\nrepro:\n{rp}")
