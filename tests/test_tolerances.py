"""Unit tests of `conformance.core.tolerances.tolerance` (the model, not the measurements)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from conformance.core import tolerances as T
from conformance.core.tolerances import tolerance


def test_formula():
    assert tolerance("float32", 1, 1) == pytest.approx(T.K * 2.0**-23)
    assert tolerance("float32", 16, 9) == pytest.approx(T.K * 2.0**-23 * 3 * 4)
    assert tolerance("float64", 4, 64) == pytest.approx(T.K * 2.0**-52 * 8 * 2)
    assert tolerance("float32", 16, 9, magnitude=5.0) == pytest.approx(5 * tolerance("float32", 16, 9))


def test_grows_like_sqrt_of_steps_and_fan_in():
    for dt in ("float32", "float64"):
        assert tolerance(dt, 64, 9) == pytest.approx(8 * tolerance(dt, 1, 9))
        assert tolerance(dt, 5, 100) == pytest.approx(10 * tolerance(dt, 5, 1))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_monotone_in_steps_and_fan_in(dtype):
    values = [1, 2, 3, 6, 12, 64, 128, 1000]
    for fan_in in values:
        by_steps = [tolerance(dtype, s, fan_in) for s in values]
        assert all(a < b for a, b in zip(by_steps, by_steps[1:])), (fan_in, by_steps)
    for steps in values:
        by_fan_in = [tolerance(dtype, steps, f) for f in values]
        assert all(a < b for a, b in zip(by_fan_in, by_fan_in[1:])), (steps, by_fan_in)


def test_monotone_in_magnitude_and_never_below_the_default():
    base = tolerance("float32", 6, 9)
    assert tolerance("float32", 6, 9, magnitude=0.1) == base  # small values: no tighter than calibrated
    assert tolerance("float32", 6, 9, magnitude=1.0) == base
    assert base < tolerance("float32", 6, 9, magnitude=2.0) < tolerance("float32", 6, 9, magnitude=40.0)


def test_float64_far_below_float32():
    for steps, fan_in in [(1, 1), (6, 10), (128, 256)]:
        f32, f64 = tolerance("float32", steps, fan_in), tolerance("float64", steps, fan_in)
        assert f64 < 1e-8 * f32
        assert f64 / f32 == pytest.approx(2.0**-29)


def test_dtype_spellings_agree():
    for spelling in ("float32", np.float32, np.dtype("float32")):
        assert tolerance(spelling, 6, 9) == tolerance("float32", 6, 9)
    assert tolerance(np.float64, 6, 9) == tolerance("float64", 6, 9)
    assert tolerance("float32", np.int64(6), np.int32(9)) == tolerance("float32", 6, 9)


def test_float32_values_are_small_and_positive():
    # the suites' range: smoke cases up to T*L = 12, fan_in 10; realistic T=128, fan_in 256
    assert 0 < tolerance("float32", 1, 1) < 1e-6
    assert tolerance("float32", 12, 10) < 1e-5
    assert tolerance("float32", 128, 256) < 1e-3
    assert math.isfinite(tolerance("float64", 10**6, 10**6))


@pytest.mark.parametrize("args, kwargs, name", [
    (("int8", 1, 1), {}, "dtype"),
    (("int32", 1, 1), {}, "dtype"),
    (("bogus", 1, 1), {}, "dtype"),
    ((None, 1, 1), {}, "dtype"),
    (("float32", 0, 1), {}, "steps"),
    (("float32", -3, 1), {}, "steps"),
    (("float32", 1.5, 1), {}, "steps"),
    (("float32", 2.0, 1), {}, "steps"),
    (("float32", True, 1), {}, "steps"),
    (("float32", "4", 1), {}, "steps"),
    (("float32", None, 1), {}, "steps"),
    (("float32", 1, 0), {}, "fan_in"),
    (("float32", 1, -1), {}, "fan_in"),
    (("float32", 1, 2.5), {}, "fan_in"),
    (("float32", 1, False), {}, "fan_in"),
    (("float32", 1, 1), {"magnitude": -1.0}, "magnitude"),
    (("float32", 1, 1), {"magnitude": float("nan")}, "magnitude"),
    (("float32", 1, 1), {"magnitude": float("inf")}, "magnitude"),
    (("float32", 1, 1), {"magnitude": "big"}, "magnitude"),
])
def test_bad_input_names_the_argument(args, kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}: "):
        tolerance(*args, **kwargs)


def test_measurements_support_k():
    """K covers every measured ratio (err / (eps sqrt(fan_in) sqrt(steps))) with a 4x margin, and
    is the smallest integer that does."""
    ratios = [ratio for _, _, ratio, _ in T.MEASURED.values()]
    ratios += [r for by in T.MEASURED_BY_STEPS.values() for r in by.values()]
    assert T.K >= 4 * max(ratios)
    assert T.K - 1 < 4 * max(ratios)
