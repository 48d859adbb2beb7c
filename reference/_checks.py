"""Input validation: every bad argument becomes a ValueError that names it.

Callers never see a traceback from deep inside NumPy: shapes, ranks, dtypes, rates,
non-finite values and enumerated options are checked here first.
"""
from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def as_float_array(name, value, dtype=None, ndim=None, shape=None):
    """Return `value` as a finite floating array, or raise ValueError naming `name`.

    `shape` may contain None for "any size" in that axis.
    """
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name}: expected an array of numbers, could not convert ({exc})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got shape {arr.shape}")
    if shape is not None:
        expected = tuple(shape)
        if arr.ndim != len(expected) or any(e is not None and e != s for e, s in zip(expected, arr.shape)):
            shown = tuple("*" if e is None else e for e in expected)
            raise ValueError(f"{name}: expected shape {shown}, got {arr.shape}")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    elif not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or infinity")
    return arr


def check_dtype(dtype):
    dt = np.dtype(dtype) if dtype is not None else None
    if dt is None or dt.type not in FLOAT_DTYPES:
        raise ValueError(f"dtype: expected float32 or float64, got {dtype!r}")
    return dt


def check_rate(name, rate):
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not np.isfinite(rate):
        raise ValueError(f"{name}: expected a number in [0, 1], got {rate!r}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1], got {rate!r}")
    return float(rate)


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name}: expected one of {sorted(choices)}, got {value!r}")
    return value


def check_positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_optional_scalar(name, value, positive=False):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite number or None, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name}: expected a positive number or None, got {value!r}")
    return float(value)
