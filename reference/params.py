"""The canonical weight format: one layer, one direction.

Gate blocks are stacked along the first axis in the torch/cuDNN order:
LSTM ``i, f, g, o`` (input, forget, cell candidate, output), GRU ``r, z, n``
(reset, update, candidate). Matrices act on column vectors, as in torch:
``W @ x`` with ``W`` of shape (G*H, input_size).

Both biases are kept (``b_x`` on the input side, ``b_h`` on the recurrent side) so
that layouts with two biases (torch, ONNX, Keras GRU ``reset_after``) round-trip
exactly; ``None`` means the bias is absent (zero). For the GRU the distinction
matters: with ``reset_after=True`` the candidate's recurrent bias ``b_h[n]`` sits
inside ``r * (R_n h + b_hn)``.

A stack is a list over layers of a list over directions (1 or 2) of these objects.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Optional

import numpy as np

from ._checks import as_float_array, check_choice, check_optional_scalar, check_positive_int

LSTM_GATES = ("i", "f", "g", "o")
GRU_GATES = ("r", "z", "n")
PEEPHOLE_GATES = ("i", "f", "o")


def _array_fields(obj):
    return [f.name for f in fields(obj) if isinstance(getattr(obj, f.name), np.ndarray)]


@dataclass(frozen=True)
class LSTMWeights:
    """One LSTM layer-direction.

    W (4H, I), R (4H, Hout), b_x / b_h (4H,) or None, peephole (3, H) rows i, f, o
    or None, W_proj (P, H) or None (then Hout = P, else Hout = H),
    forget_bias added to the forget gate's pre-activation (TF BlockLSTM),
    cell_clip: c is clipped to [-cell_clip, cell_clip] after each update (TF semantics).
    """

    W: np.ndarray
    R: np.ndarray
    b_x: Optional[np.ndarray] = None
    b_h: Optional[np.ndarray] = None
    peephole: Optional[np.ndarray] = None
    W_proj: Optional[np.ndarray] = None
    forget_bias: float = 0.0
    cell_clip: Optional[float] = None

    cell = "lstm"
    gates = LSTM_GATES

    @property
    def hidden_size(self):
        return self.W.shape[0] // 4

    @property
    def input_size(self):
        return self.W.shape[1]

    @property
    def output_size(self):
        return self.W_proj.shape[0] if self.W_proj is not None else self.hidden_size

    def validated(self, dtype=np.float64, name="weights"):
        """A copy with every array checked and cast to `dtype`; ValueError on bad input."""
        W = as_float_array(f"{name}.W", self.W, dtype, ndim=2)
        if W.shape[0] % 4 or W.shape[0] == 0:
            raise ValueError(f"{name}.W: expected 4*hidden_size rows (gates i, f, g, o), got shape {W.shape}")
        H = W.shape[0] // 4
        P = None
        if self.W_proj is not None:
            W_proj = as_float_array(f"{name}.W_proj", self.W_proj, dtype, ndim=2)
            if W_proj.shape[1] != H or W_proj.shape[0] < 1:
                raise ValueError(f"{name}.W_proj: expected shape (proj_size, {H}), got {W_proj.shape}")
            P = W_proj.shape[0]
        else:
            W_proj = None
        hout = P or H
        return replace(
            self,
            W=W,
            R=as_float_array(f"{name}.R", self.R, dtype, shape=(4 * H, hout)),
            b_x=None if self.b_x is None else as_float_array(f"{name}.b_x", self.b_x, dtype, shape=(4 * H,)),
            b_h=None if self.b_h is None else as_float_array(f"{name}.b_h", self.b_h, dtype, shape=(4 * H,)),
            peephole=None if self.peephole is None else as_float_array(f"{name}.peephole", self.peephole, dtype, shape=(3, H)),
            W_proj=W_proj,
            forget_bias=check_optional_scalar(f"{name}.forget_bias", self.forget_bias) or 0.0,
            cell_clip=check_optional_scalar(f"{name}.cell_clip", self.cell_clip, positive=True),
        )

    def array_names(self):
        return _array_fields(self)


@dataclass(frozen=True)
class GRUWeights:
    """One GRU layer-direction.

    W (3H, I), R (3H, H), b_x / b_h (3H,) or None, gates r, z, n.
    reset_after=True  (torch, cuDNN, Keras default, ONNX linear_before_reset=1):
        n = tanh(W_n x + b_xn + r * (R_n h + b_hn))
    reset_after=False (Keras reset_after=False, ONNX linear_before_reset=0):
        n = tanh(W_n x + b_xn + R_n (r * h) + b_hn)
    h' = (1 - z) * n + z * h
    """

    W: np.ndarray
    R: np.ndarray
    b_x: Optional[np.ndarray] = None
    b_h: Optional[np.ndarray] = None
    reset_after: bool = True

    cell = "gru"
    gates = GRU_GATES

    @property
    def hidden_size(self):
        return self.W.shape[0] // 3

    @property
    def input_size(self):
        return self.W.shape[1]

    @property
    def output_size(self):
        return self.hidden_size

    def validated(self, dtype=np.float64, name="weights"):
        W = as_float_array(f"{name}.W", self.W, dtype, ndim=2)
        if W.shape[0] % 3 or W.shape[0] == 0:
            raise ValueError(f"{name}.W: expected 3*hidden_size rows (gates r, z, n), got shape {W.shape}")
        H = W.shape[0] // 3
        if not isinstance(self.reset_after, (bool, np.bool_)):
            raise ValueError(f"{name}.reset_after: expected True or False, got {self.reset_after!r}")
        return replace(
            self,
            W=W,
            R=as_float_array(f"{name}.R", self.R, dtype, shape=(3 * H, H)),
            b_x=None if self.b_x is None else as_float_array(f"{name}.b_x", self.b_x, dtype, shape=(3 * H,)),
            b_h=None if self.b_h is None else as_float_array(f"{name}.b_h", self.b_h, dtype, shape=(3 * H,)),
            reset_after=bool(self.reset_after),
        )

    def array_names(self):
        return _array_fields(self)


def _check_sizes(rng, input_size, hidden_size):
    if not callable(getattr(rng, "uniform", None)):
        raise ValueError(f"rng: expected a numpy.random.Generator (numpy.random.default_rng(seed)), "
                         f"got {type(rng).__name__}")
    return check_positive_int("input_size", input_size), check_positive_int("hidden_size", hidden_size)


def random_lstm(rng, input_size, hidden_size, *, proj_size=None, peephole=False, biases=True,
                forget_bias=0.0, cell_clip=None, scale=None):
    """Random asymmetric LSTM weights, uniform in [-scale, scale] (default 1/sqrt(H), as torch)."""
    input_size, hidden_size = _check_sizes(rng, input_size, hidden_size)
    if proj_size:  # None or 0: no projection (torch's proj_size=0)
        proj_size = check_positive_int("proj_size", proj_size)
    s = 1.0 / np.sqrt(hidden_size) if scale is None else scale
    u = lambda *shape: rng.uniform(-s, s, size=shape)  # noqa: E731
    hout = proj_size or hidden_size
    return LSTMWeights(
        W=u(4 * hidden_size, input_size), R=u(4 * hidden_size, hout),
        b_x=u(4 * hidden_size) if biases else None, b_h=u(4 * hidden_size) if biases else None,
        peephole=u(3, hidden_size) if peephole else None,
        W_proj=u(proj_size, hidden_size) if proj_size else None,
        forget_bias=forget_bias, cell_clip=cell_clip,
    )


def random_gru(rng, input_size, hidden_size, *, reset_after=True, biases=True, hidden_bias=True, scale=None):
    """Random asymmetric GRU weights; hidden_bias=False drops b_h (e.g. Keras reset_after=False)."""
    input_size, hidden_size = _check_sizes(rng, input_size, hidden_size)
    s = 1.0 / np.sqrt(hidden_size) if scale is None else scale
    u = lambda *shape: rng.uniform(-s, s, size=shape)  # noqa: E731
    return GRUWeights(
        W=u(3 * hidden_size, input_size), R=u(3 * hidden_size, hidden_size),
        b_x=u(3 * hidden_size) if biases else None,
        b_h=u(3 * hidden_size) if biases and hidden_bias else None,
        reset_after=reset_after,
    )


def random_stack(rng, cell, input_size, hidden_size, num_layers=1, bidirectional=False, **kwargs):
    """A list over layers of a list over directions of random weights; `cell` "lstm" or "gru"."""
    make = {"lstm": random_lstm, "gru": random_gru}[check_choice("cell", cell, ("lstm", "gru"))]
    num_layers = check_positive_int("num_layers", num_layers)
    dirs = 2 if bidirectional else 1
    stack = []
    size = input_size
    for _ in range(num_layers):
        layer = [make(rng, size, hidden_size, **kwargs) for _ in range(dirs)]
        stack.append(layer)
        size = dirs * layer[0].output_size
    return stack
