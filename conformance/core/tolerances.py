"""Tolerances for comparing a framework's outputs with the float64 reference: data + one function.

    tolerance(dtype, steps, fan_in) = K * EPS[dtype] * sqrt(fan_in) * sqrt(steps)   (K = 7)

is the absolute tolerance on y, h_n and c_n when the framework (working in `dtype`) and the
float64 reference are evaluated on the SAME float32-rounded weights, inputs and states, so
that only arithmetic error separates them. ``tolerance(..., magnitude=M)`` multiplies it by
max(1, M) for cases whose values (the cell state, mostly) grow far beyond O(1); see
"Domain" under Measurements (a).

Derivation
----------
- One cell step computes pre-activations ``a = W x + R h + b``: dot products of
  ``fan_in = input_size + Hout`` terms. In the probabilistic rounding model (rounding errors
  independent, zero-mean, each at most eps/2 relative) the error of such a sum grows like
  ``sqrt(fan_in) * eps`` times the magnitude of its terms (worst case ``fan_in * eps``).
  Terms are O(1) here: weights uniform(+-1/sqrt(H)), x, h0, c0 standard normal, |h| <= ~3.
  The gate nonlinearities (a few ulps in each framework), the gate products and the state
  update add a bounded number of roundings of O(1) values per step, absorbed in K.
- Over the sequence: the cell is not expansive (sigmoid' <= 1/4, tanh' <= 1, f in (0, 1)), so
  an error made at one step reaches later outputs with gain <= ~1. The per-step errors are
  independent and zero-mean, so their sum over ``steps`` cells is a random walk: it grows like
  ``sqrt(steps)`` when nothing damps it (forget gate f ~ 1, the cell state an accumulator),
  and stays bounded when the recurrence contracts (f ~ 0.5, torch's default init). The linear
  bound (gain exactly 1 and every error of the same sign) is never approached. ``steps`` is
  the number of sequential cell evaluations along the dependency chain into an output: T for
  one layer, T * L for a stack of L layers (`conformance.core.adapter_strategies.case_shape`).
- K is a safety factor chosen from measurements (below): the smallest integer such that every
  observed error is at most 1/4 of the tolerance (margin >= 4x), over all adapters.
- eps is the machine epsilon of the framework's working dtype. For float64 the reference's
  own rounding is of the same size as the framework's, which the measurements include.

Measurements
------------
Environment: torch 2.13.0+cpu, tensorflow-cpu 2.21.0, keras 3.15.1 (TensorFlow backend),
jax 0.10.2 / flax 0.12.8, onnxruntime 1.32.0; 2-core x86-64 CPU (AVX-512). ratio = err /
(EPS * sqrt(fan_in) * sqrt(steps)); K must cover its maximum with a 4x margin.

(a) Growth, a grid (one-off measurement, not a suite): T in {1, 4, 16, 64, 128}, H = I in {4, 32,
128} (fan_in 8, 64, 256), 1 and 2 layers where stacked (steps 1 .. 256), B = 3, initial state,
default-scale random weights; 3 seeds for torch, 2 for the others; 690 cases. Least-squares
fit of log(err) = log(c) + b_s log(steps) + b_f log(fan_in):

==============================  =======  =====  =========  =========  ======  ======
adapter                         dtype    cases  max error  max ratio  b_s     b_f
==============================  =======  =====  =========  =========  ======  ======
torch.nn.LSTM                   float32     90  4.92e-07     0.322    -0.02   +0.40
torch.nn.LSTM                   float64     90  8.88e-16     0.354    -0.04   +0.19
torch.nn.GRU                    float32     90  4.66e-07     0.350    +0.03   +0.26
torch.nn.GRU                    float64     90  8.88e-16     0.375    +0.05   +0.36
keras.layers.LSTM               float32     60  3.45e-07     0.333    -0.04   +0.24
keras.layers.GRU                float32     60  5.14e-07     0.399    +0.03   +0.35
tf.raw_ops.BlockLSTM            float32     30  4.48e-07     0.322    -0.01   +0.34
tf.raw_ops.BlockLSTMV2          float32     30  4.48e-07     0.322    -0.01   +0.34
flax.linen.LSTMCell             float32     30  3.74e-07     0.339    -0.00   +0.25
flax.linen.OptimizedLSTMCell    float32     30  2.42e-07     0.266    +0.01   +0.22
flax.linen.GRUCell              float32     30  4.19e-07     0.186    +0.09   +0.33
onnxruntime.LSTM                float32     30  3.47e-07     0.462    +0.00   +0.24
onnxruntime.GRU                 float32     30  4.14e-07     0.262    +0.08   +0.32
==============================  =======  =====  =========  =========  ======  ======

Pooled (float32 and float64 alike): err ~ 0.42 eps * steps^0.01 * fan_in^0.3. The largest
float32 error per steps value is 4.5e-07 (steps 1), 4.8e-07 (4), 4.9e-07 (16), 5.1e-07 (64),
4.7e-07 (128), 3.9e-07 (256): with default-scale weights the error does not grow with the
sequence at all (the recurrence contracts, f ~ 0.5), and grows with fan_in slower than
sqrt. Both the linear and the sqrt(steps) model are upper bounds there: at steps >= 64 the
ratio is <= 0.06 (sqrt) / <= 0.008 (linear), i.e. the tolerance (K = 7) is >= 115x the largest
observed error with sqrt(steps), >= 900x with the old linear model -- too loose for the
sensitivity self-test, and not what the data show.

Domain: where f ~ 1 the errors do accumulate. torch.nn.LSTM float32, forget-gate bias folded into
bias_ih, T up to 512, H = I in {4, 32, 128}, 3 seeds: forget bias 3 (f ~ 0.95): fit
b_s = +0.39, max ratio 1.1 (at T = 128, where max |c| = 16); forget bias 6 (f ~ 0.998):
b_s = +0.99, ratios 3.8 (T = 64), 9.2 (T = 512): the sqrt(steps) bound FAILS there, because
the cell state grows like T (max |c| 24 at T = 64, 85 at T = 512) and float32 errors are
relative to it. Scaled by that magnitude (err / (eps sqrt(fan_in) sqrt(steps) max(1, max|c|)))
the ratios are <= 0.24 for every T: hence the `magnitude` argument. The linear model covered
these cases only by accident (|c| happened to grow like T).

(b) K, the suites' smoke cases: strategy `conformance.core.adapter_strategies.parity_cases`
(T 1..6, B 1..3, I, H 1..5, every declared feature: stacked up to 2 layers, bidirectional,
initial state, projection, peephole, forget_bias, cell_clip, reset-before), hypothesis
derandomized, 1000 examples per adapter (dtype drawn where float64 is declared):

==============================  =======  =====  =========  =========  ============
adapter                         dtype    cases  max error  max ratio  median ratio
==============================  =======  =====  =========  =========  ============
torch.nn.LSTM                   float32    545  2.44e-07     0.770      0.095
torch.nn.LSTM                   float64    455  4.44e-16     0.612      0.125
torch.nn.GRU                    float32    518  3.79e-07     1.116      0.092
torch.nn.GRU                    float64    482  6.66e-16     0.516      0.082
keras.layers.LSTM               float32   1000  3.19e-07     0.946      0.116
keras.layers.GRU                float32   1000  3.43e-07     1.124      0.134
tf.raw_ops.BlockLSTM            float32   1000  2.88e-07     0.904      0.117
tf.raw_ops.BlockLSTMV2          float32   1000  2.45e-07     0.692      0.111
flax.linen.LSTMCell             float32   1000  3.10e-07     1.638      0.118
flax.linen.OptimizedLSTMCell    float32   1000  3.10e-07     1.638      0.120
flax.linen.GRUCell              float32   1000  3.89e-07     0.872      0.126
onnxruntime.LSTM                float32   1000  4.47e-07     1.477      0.133
onnxruntime.GRU                 float32   1000  7.15e-07     1.549      0.139
==============================  =======  =====  =========  =========  ============

The largest ratios come from steps = 1 .. 3, fan_in 2 .. 6 cases where an output of
magnitude 1.5 .. 3 (carried from a standard-normal h0 / c0) is off by 1 .. 6 ulps of itself
(at steps = 1 the linear and the sqrt model agree). Four adapters reach 1.48 .. 1.64:
flax.linen.LSTMCell and OptimizedLSTMCell (1.638, the same steps = 1, fan_in = 2 case),
onnxruntime.GRU (1.549: 6 ulps of 1.76 at steps 3 in a bidirectional reset-before case where
keras.layers.GRU is off by 0.9 ulp) and onnxruntime.LSTM (1.477, steps 1); the others stay
<= 1.12. No single adapter stands out. Max ratio 1.638 times the 4x margin = 6.55, so K = 7
(without the flax LSTM cells and onnxruntime it would be 5). All medians are 0.08 .. 0.14.

Sensitivity (tests/test_tolerance_sensitivity.py, float32 torch, T=6/H=5 and T=64/H=32):
a flipped inter-layer mask element and two swapped gate blocks exceed this tolerance by
>= 500x; a 1e-4 bias on one unit of the cell candidate by only 13 .. 18x (T = 6) and
1.7 .. 1.8x (T = 64). 100x for the bias is out of reach in float32: its effect on the outputs
is ~1e-4, the rounding error alone reaches 5e-7, so no tolerance >= 4x the observed error can
be beaten 100x by it.

(c) Half precision (float16, bfloat16: torch on cuDNN, suites/test_gpu.py), derived the same
way: the same formula with eps = 2**-10 (float16) / 2**-7 (bfloat16), K the smallest integer
covering every measured ratio with the 4x margin. Measured where half-precision RNN kernels
run here, torch 2.13's CPU kernels (native, oneDNN for bfloat16 LSTMs), on a grid: LSTM and
GRU, T in {1, 4, 16, 64, 128}, H = I in {8, 32, 128}, 1 layer or 2 bidirectional, B = 4, 2
seeds, initial states, weights / inputs / states rounded to the dtype and the reference run on
the rounded values (`suites.test_gpu.reduced_precision_run` with device "cpu"); 120 cases
per dtype:

=========  =====  =========  ==========  =====  =====
dtype      cases  max error  max ratio   b_s    b_f
=========  =====  =========  ==========  =====  =====
float16      120  2.73e-03     0.279     -0.03  +0.15
bfloat16     120  1.69e-02     0.222     -0.04  +0.10
=========  =====  =========  ==========  =====  =====

As in float32 the errors do not grow with the sequence (b_s ~ 0; the largest ratios are at
steps 1 .. 2); 4 x 0.279 = 1.12, so K = 2 for both (`K_BY_DTYPE`). With K = 7 the half
tolerances would sit 25x above the largest error and 100-1000x above the typical one, a check
that could hardly fail. cuDNN's own half arithmetic (tensor-core products with float32
accumulation) is measured against this bound by the GPU run; its ratios are in its report.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["EPS", "K", "K_BY_DTYPE", "MEASURED", "MEASURED_BY_STEPS", "MEASURED_GROWTH", "tolerance"]

#: Machine epsilon of each working dtype (spacing of floats at 1.0).
EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps),
       "float16": float(np.finfo(np.float16).eps),  # 2**-10
       "bfloat16": 2.0 ** -7}  # 8 significand bits (no NumPy dtype); table (c): half precision on cuDNN

#: Safety factor: smallest integer >= 4 * the largest measured ratio (1.638).
K = 7.0
#: Per-dtype safety factors where they differ from K (table (c): 4 * 0.279 -> 2).
K_BY_DTYPE = {"float16": 2.0, "bfloat16": 2.0}

#: (adapter, dtype) -> (cases, max |error|, max ratio, median ratio) over the smoke cases, with
#: ratio = err / (EPS * sqrt(fan_in) * sqrt(steps)); see the module docstring, table (b).
MEASURED = {
    ("torch.nn.LSTM", "float32"): (545, 2.44e-07, 0.770, 0.095),
    ("torch.nn.LSTM", "float64"): (455, 4.44e-16, 0.612, 0.125),
    ("torch.nn.GRU", "float32"): (518, 3.79e-07, 1.116, 0.092),
    ("torch.nn.GRU", "float64"): (482, 6.66e-16, 0.516, 0.082),
    ("keras.layers.LSTM", "float32"): (1000, 3.19e-07, 0.946, 0.116),
    ("keras.layers.GRU", "float32"): (1000, 3.43e-07, 1.124, 0.134),
    ("tf.raw_ops.BlockLSTM", "float32"): (1000, 2.88e-07, 0.904, 0.117),
    ("tf.raw_ops.BlockLSTMV2", "float32"): (1000, 2.45e-07, 0.692, 0.111),
    ("flax.linen.LSTMCell", "float32"): (1000, 3.10e-07, 1.638, 0.118),
    ("flax.linen.OptimizedLSTMCell", "float32"): (1000, 3.10e-07, 1.638, 0.120),
    ("flax.linen.GRUCell", "float32"): (1000, 3.89e-07, 0.872, 0.126),
    ("onnxruntime.LSTM", "float32"): (1000, 4.47e-07, 1.477, 0.133),
    ("onnxruntime.GRU", "float32"): (1000, 7.15e-07, 1.549, 0.139),
}

#: dtype -> {steps: max ratio over all adapters' smoke cases} (table (b), 11 adapters, 11000 cases).
MEASURED_BY_STEPS = {
    "float32": {1: 1.64, 2: 0.90, 3: 1.55, 4: 0.82, 5: 0.81, 6: 0.98, 8: 0.34, 10: 0.29, 12: 0.37},
    "float64": {1: 0.61, 2: 0.50, 3: 0.52, 4: 0.38, 5: 0.30, 6: 0.41, 8: 0.22, 10: 0.24, 12: 0.20},
}

#: dtype -> {steps: max ratio over the grid of table (a)} (all adapters, fan_in 8 .. 256).
MEASURED_GROWTH = {
    "float32": {1: 0.46, 2: 0.35, 4: 0.26, 8: 0.13, 16: 0.11, 32: 0.11, 64: 0.06, 128: 0.06, 256: 0.03},
    "float64": {1: 0.38, 2: 0.25, 4: 0.35, 8: 0.25, 16: 0.09, 32: 0.09, 64: 0.04, 128: 0.03, 256: 0.02},
}


def _positive_int(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name}: expected a positive integer, got {v!r}")


def tolerance(dtype, steps, fan_in, *, magnitude=1.0):
    """Absolute tolerance K * eps(dtype) * sqrt(fan_in) * sqrt(steps) * max(1, magnitude)
    (K = 7; 2 for float16 / bfloat16, table (c)).

    dtype: "float32" / "float64" / "float16" / "bfloat16" (or a NumPy dtype); steps: sequential cell evaluations (T,
    or T * L for a stack); fan_in: terms per pre-activation (input_size + Hout, the largest
    over the layers); magnitude (optional): the largest |value| the case's states reach
    (max |c| of the reference) when it can grow far beyond O(1) -- a saturated forget gate
    makes c an accumulator; K already covers values up to ~3 with magnitude = 1 (see the
    module docstring, "Measurements (a)")."""
    try:
        name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in EPS or dtype is None:
        raise ValueError(f"dtype: expected one of {sorted(EPS)}, got {dtype!r}")
    _positive_int("steps", steps)
    _positive_int("fan_in", fan_in)
    if (isinstance(magnitude, bool) or not isinstance(magnitude, numbers.Real)
            or not math.isfinite(magnitude) or magnitude < 0):
        raise ValueError(f"magnitude: expected a finite number >= 0, got {magnitude!r}")
    return K_BY_DTYPE.get(name, K) * EPS[name] * math.sqrt(fan_in) * math.sqrt(steps) * max(1.0, float(magnitude))
