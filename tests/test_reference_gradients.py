"""Backward through time equals central finite differences (float64, relative error <= 1e-6)."""
import numpy as np
from hypothesis import given, note

import reference as ref
from conformance.core.strategies import cases

REL_TOL = 1e-6
# 4th-order central differences: truncation O(eps**4) (large where masks scale by 1/(1-p) = 10),
# rounding O(u * |loss| / eps). A correct gradient agrees at some step size; a wrong one at none.
STEP_SIZES = (1e-3, 1e-4, 1e-5)
STENCIL = ((2, -1.0), (1, 8.0), (-1, -8.0), (-2, 1.0))  # (offset, weight) / (12 * EPS)
ROUNDING_SAFETY = 100.0  # the loss is a sum of many rounded terms; this bounds their amplification


def _loss_terms(stack, x, cot, kwargs):
    r = ref.run(stack, x, **kwargs)
    terms = [r.y * cot["dy"], r.h_n * cot["dh_n"]] + ([r.c_n * cot["dc_n"]] if r.c_n is not None else [])
    return sum(np.sum(t) for t in terms), sum(np.sum(np.abs(t)) for t in terms)


def _differentiable(stack, x, kwargs, grads):
    """(name, array inside the inputs, its analytic gradient) for everything with a gradient."""
    items = [("x", x, grads.dx)]
    if "h0" in kwargs:
        items.append(("h0", kwargs["h0"], grads.dh0))
    if "c0" in kwargs:
        items.append(("c0", kwargs["c0"], grads.dc0))
    for l, row in enumerate(stack):
        for d, w in enumerate(row):
            for name in w.array_names():
                items.append((f"stack[{l}][{d}].{name}", getattr(w, name), getattr(grads.weights[l][d], name)))
    return items


def directional_errors(stack, x, kwargs, rng, directions=3):
    """Relative error of <grad, v> against 4th-order central differences, random unit v, per array.

    The error is |analytic - numeric| / max(|analytic|, |numeric|, floor / REL_TOL), where
    floor = ROUNDING_SAFETY * u * sum|loss terms| / eps bounds the differences' own rounding
    error: a derivative far below that (a saturated gate) cannot be resolved by differences.
    Step sizes are tried in turn until one agrees; the smallest error is kept."""
    res = ref.run(stack, x, **kwargs)
    cot = {"dy": rng.normal(size=res.y.shape), "dh_n": rng.normal(size=res.h_n.shape),
           "dc_n": None if res.c_n is None else rng.normal(size=res.c_n.shape)}
    _, grads = ref.run_vjp(stack, x, cot["dy"], cot["dh_n"], cot["dc_n"], **kwargs)
    scale = ROUNDING_SAFETY * np.finfo(float).eps * _loss_terms(stack, x, cot, kwargs)[1]
    errors = {}
    for name, arr, analytic in _differentiable(stack, x, kwargs, grads):
        worst = 0.0
        for _ in range(directions):
            v = rng.normal(size=arr.shape)
            v /= np.linalg.norm(v)
            exact = np.sum(analytic * v)
            best = np.inf
            for eps in STEP_SIZES:
                numeric = _directional_difference(stack, x, cot, kwargs, arr, v, eps)
                best = min(best, abs(exact - numeric) / max(abs(exact), abs(numeric), scale / eps / REL_TOL, 1e-300))
                if best <= REL_TOL:
                    break
            worst = max(worst, best)
        errors[name] = worst
    return errors


def _directional_difference(stack, x, cot, kwargs, arr, v, eps):
    """d loss / d arr along v, by the 4th-order stencil; `arr` is restored afterwards."""
    base = arr.copy()
    total = 0.0
    for offset, weight in STENCIL:
        arr[...] = base + offset * eps * v
        total += weight * _loss_terms(stack, x, cot, kwargs)[0]
    arr[...] = base
    return total / (12 * eps)


def _near_clip(case, stack, x, kwargs):
    """True when a cell state sits within 1e-4 of the clip value: a kink the differences would straddle."""
    if case.cell_clip is None:
        return False
    for l in range(case.num_layers):
        sub = ref.run(stack[: l + 1], x, **{k: v for k, v in kwargs.items() if k not in ("h0", "c0", "masks")})
        if np.any(np.abs(np.abs(sub.c_n) - case.cell_clip) < 1e-4):
            return True
    return False


@given(case=cases(max_steps=4, max_batch=2, max_size=3))
def test_gradients_match_finite_differences(case):
    note(f"repro: {case.short()}")
    stack, x, kwargs = case.build()
    errors = directional_errors(stack, x, kwargs, np.random.default_rng(case.seed + 2))
    worst = max(errors, key=errors.get)
    note(f"worst relative error {errors[worst]:.2e} in {worst}")
    if errors[worst] > REL_TOL and _near_clip(case, stack, x, kwargs):
        return  # finite differences across the clip kink are not a valid oracle
    assert errors[worst] <= REL_TOL, (
        f"gradient of {worst} differs from finite differences: relative error {errors[worst]:.2e} > {REL_TOL}; "
        f"repro: {case.short()}")


def test_gradient_check_catches_a_wrong_gradient():
    """Meta-test: a deliberately wrong analytic gradient fails the same check."""
    rng = np.random.default_rng(0)
    stack = ref.random_stack(rng, "lstm", 3, 2)
    x = rng.normal(size=(3, 2, 3))
    res, grads = ref.run_vjp(stack, x, np.ones((3, 2, 2)))
    v = rng.normal(size=x.shape)
    exact = np.sum(grads.dx * v)
    wrong = np.sum(grads.dx * 1.001 * v)
    e = 1e-6
    fd = (np.sum(ref.run(stack, x + e * v).y) - np.sum(ref.run(stack, x - e * v).y)) / (2 * e)
    assert abs(exact - fd) / abs(fd) <= REL_TOL
    assert abs(wrong - fd) / abs(fd) > 100 * REL_TOL
