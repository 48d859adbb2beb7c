"""Weight layouts: converters between the canonical format (`params.py`) and each framework.

Every layout has a ``from_X(...)`` returning canonical weights and a ``to_X(weights)``
returning a dict of NumPy arrays named exactly as the framework names them, in the
framework's own order (so ``layer.set_weights(list(d.values()))`` works for Keras), with
``from_X(**to_X(w))`` giving ``w`` back wherever no folding happened. NumPy only: adapters
turn their tensors into arrays themselves. Arrays keep their dtype (float32 stays float32,
so framework -> canonical -> framework is bitwise); every ``to_X`` takes ``dtype=`` to cast.

Gate orders (canonical: LSTM i, f, g, o; GRU r, z, n; matrices act on column vectors):

=====================  =================================================  ==============
layout                 arrays                                             gate blocks
=====================  =================================================  ==============
torch LSTM / GRU       weight_ih (G*H, I), weight_hh (G*H, Hout),         i f g o / r z n
                       bias_ih, bias_hh (G*H,), weight_hr (P, H)
Keras 3 / tf-keras 2   kernel (I, G*u), recurrent_kernel (u, G*u),       i f c o / z r h
                       bias (4u,) | GRU (2, 3u) reset_after / (3u,)
tf BlockLSTM           w (I+u, 4u) = [[W_x]; [W_h]], b (4u,),             i c f o
                       wci, wcf, wco (u,); attrs forget_bias, cell_clip
tf BlockLSTMV2         same arrays, attr cell_clip (no forget_bias)       i f c o
ONNX LSTM              W [D, 4H, I], R [D, 4H, H], B [D, 8H], P [D, 3H]   i o f c; P: i o f
ONNX GRU               W [D, 3H, I], R [D, 3H, H], B [D, 6H]              z r h
flax linen cells       one Dense per gate, kernel (in, out)               i f g o / r z n
flax nnx cells         LSTMCell: one Linear per gate; Optimized / GRU:    i f g o / r z n
                       one fused Linear per side, kernel (in, G*H)
=====================  =================================================  ==============

Folding. A ``to_X`` folds a canonical parameter into another one when that is exact
in real arithmetic (a sum of additive constants in the same pre-activation), and raises
``ValueError`` naming the field otherwise:
  - LSTM ``b_x + b_h`` into the layout's single bias (Keras, BlockLSTM, flax);
  - LSTM ``forget_bias`` into the forget-gate bias (every layout but BlockLSTM, which has
    it as an attribute); floating-point sums may then differ from an unfolded evaluation
    in the last bit;
  - GRU ``b_h`` of r and z into the input-side bias (Keras ``reset_after=False``, flax);
  - GRU ``b_h`` of n into the input-side bias only for reset-before (``reset_after=False``),
    where it sits outside r. For reset-after it sits inside ``r * (...)``: a layout without
    a slot for it (flax nnx GRUCell) raises unless it is zero.
A bias the canonical weights lack (None) becomes zeros where the layout needs one; a
layout built without biases (torch ``bias=False``, Keras ``use_bias=False``) raises unless
the canonical biases are None or zero.

Facts the converters rely on (checked against the running frameworks in
``tests/test_layouts.py``):
  - torch ``nn.LSTM``/``nn.GRU`` (torch/nn/modules/rnn.py, ``_flat_weights_names``):
    per layer k and direction ``weight_ih_l{k}{suffix}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
    ``bias_hh_l{k}``, ``weight_hr_l{k}`` (``proj_size``), suffix ``_reverse`` for the
    backward direction; see `torch_suffix`.
  - Keras 3 (keras/src/layers/rnn/lstm.py ``LSTMCell.build``/``call``, gru.py
    ``GRUCell.build``/``call``) and tf-keras 2 (tf_keras/src/layers/rnn/lstm.py, gru.py)
    have identical layouts; the ``tf_keras_*`` names are aliases.
  - tf.raw_ops.BlockLSTM / BlockLSTMV2 (tensorflow/core/kernels/rnn/lstm_ops.h
    ``enum GateLayout { ICFO, IFCO }``; lstm_ops.cc ``LSTMBlockCellFpropWithEigen``):
    ``gates = [x, h] @ w + b``; ``f = sigmoid(gates_f + forget_bias [+ wcf * cs_prev])``;
    ``i`` peeks at cs_prev, ``o`` at the new cs; ``cs`` is clipped to
    ``[-cell_clip, cell_clip]`` only ``if (cell_clip > 0.0f)``: zero or negative means no
    clipping. Op defaults: BlockLSTM ``forget_bias=1``, ``cell_clip=3`` (clipping ON);
    BlockLSTMV2 ``cell_clip=0`` (off) and its kernel sets ``forget_bias_ = 0.0`` because the
    V2 op has no such attribute (``BlockLSTMOp`` constructor). Only float32 and half.
    ``to_block_lstm`` always writes ``cell_clip`` explicitly (0.0 for "no clip"), since the
    op's default would clip at 3.
  - ONNX (onnx/reference/ops/op_lstm.py, op_gru.py; operator spec): B = [Wb; Rb];
    peepholes ``[p_i, p_o, p_f]``, i and f peek at C_{t-1}, o at C_t; GRU
    ``linear_before_reset=1`` is reset-after. ONNX's ``clip`` attribute clips the gates'
    pre-activations, not the cell, so a canonical ``cell_clip`` cannot be expressed.
  - flax linen (flax/linen/recurrent.py): ``LSTMCell`` and ``OptimizedLSTMCell`` share
    params ``ii, if, ig, io`` (input side, kernel only) and ``hi, hf, hg, ho`` (hidden side,
    kernel and bias); ``GRUCell``: ``ir, iz, in`` (kernel and bias), ``hr, hz`` (kernel only),
    ``hn`` (kernel and bias). Carry is ``(c, h)``.
  - flax nnx (flax/nnx/nn/recurrent.py): ``LSTMCell`` attributes ``ii, if_, ig, io`` /
    ``hi, hf, hg, ho`` (note ``if_``); ``OptimizedLSTMCell``: ``dense_i`` (I, 4H) no bias,
    ``dense_h`` (H, 4H) with bias; ``GRUCell``: ``dense_i`` (I, 3H) with bias, ``dense_h``
    (H, 3H) WITHOUT bias, ``n = tanh(xi_n + r * hh_n)`` -- unlike the linen GRUCell (and
    unlike its own docstring) it has no b_hn.
"""
from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping

import numpy as np

from ._checks import as_float_array, check_choice, check_optional_scalar
from .params import GRUWeights, LSTMWeights

__all__ = [
    "LAYOUTS", "Layout", "get_layout", "reorder_gates", "torch_suffix",
    "from_torch_lstm", "to_torch_lstm", "from_torch_gru", "to_torch_gru",
    "from_keras_lstm", "to_keras_lstm", "from_keras_gru", "to_keras_gru",
    "from_tf_keras_lstm", "to_tf_keras_lstm", "from_tf_keras_gru", "to_tf_keras_gru",
    "from_block_lstm", "to_block_lstm", "from_block_lstm_v2", "to_block_lstm_v2",
    "from_onnx_lstm", "to_onnx_lstm", "from_onnx_gru", "to_onnx_gru",
    "from_flax_lstm", "to_flax_lstm", "from_flax_gru", "to_flax_gru",
    "from_nnx_lstm", "to_nnx_lstm", "from_nnx_optimized_lstm", "to_nnx_optimized_lstm",
    "from_nnx_gru", "to_nnx_gru",
]

# Gate permutations: PERM[k] = canonical index of the layout's k-th block.
_KERAS_GRU = (1, 0, 2)      # z, r, h  <- r, z, n
_ICFO = (0, 2, 1, 3)        # i, c, f, o <- i, f, g, o
_ONNX_LSTM = (0, 3, 1, 2)   # i, o, f, c <- i, f, g, o
_ONNX_PEEP = (0, 2, 1)      # p_i, p_o, p_f <- rows i, f, o


def _inverse(perm):
    inv = [0] * len(perm)
    for k, p in enumerate(perm):
        inv[p] = k
    return tuple(inv)


def _blocks(a, perm, axis=0):
    """Reorder the len(perm) equal gate blocks of `a` along `axis`: block k of the result is block perm[k]."""
    parts = np.split(a, len(perm), axis=axis)
    return np.concatenate([parts[p] for p in perm], axis=axis)


# ---------------------------------------------------------------- validation helpers

def _arr(name, value, shape=None, ndim=None):
    return as_float_array(name, value, None, ndim=ndim, shape=shape)


def _gate_matrix(name, value, gates, what):
    """A 2-d array whose axis `what` (0 = rows, 1 = columns) holds `gates` equal blocks."""
    a = _arr(name, value, ndim=2)
    n = a.shape[what]
    if n == 0 or n % gates:
        dims = [f"{gates}*hidden_size", "input_size"] if what == 0 else ["input_size", f"{gates}*units"]
        raise ValueError(f"{name}: expected shape ({dims[0]}, {dims[1]}), got {a.shape}")
    return a, n // gates


def _lstm(name, weights):
    if not isinstance(weights, LSTMWeights):
        raise ValueError(f"{name}: expected LSTMWeights, got {type(weights).__name__}")
    return weights.validated(dtype=None, name=name)


def _gru(name, weights):
    if not isinstance(weights, GRUWeights):
        raise ValueError(f"{name}: expected GRUWeights, got {type(weights).__name__}")
    return weights.validated(dtype=None, name=name)


def _cast(d, dtype):
    """Cast every array in a (nested) dict; scalars (op attributes) are left alone."""
    if dtype is None:
        return d
    dt = np.dtype(dtype)
    if not np.issubdtype(dt, np.floating):
        raise ValueError(f"dtype: expected a floating dtype, got {dtype!r}")
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out[k] = _cast(v, dtype)
        elif isinstance(v, np.ndarray):
            out[k] = v.astype(dt)
        else:
            out[k] = v
    return out


def _sum(a, b, size, dtype):
    """a + b where None means zero; keeps an operand bitwise when the other is None."""
    if a is None and b is None:
        return np.zeros(size, dtype)
    if a is None:
        return b.copy()
    if b is None:
        return a.copy()
    return a + b


def _dtype(w):
    return w.W.dtype


def _nonzero(b):
    return b is not None and bool(np.any(b != 0))


def _reject(cond, name, why):
    if cond:
        raise ValueError(f"{name}: {why}")


def _lstm_plain(w, layout, name="weights"):
    """Reject the LSTM features that only TF BlockLSTM / ONNX express."""
    _reject(w.peephole is not None, f"{name}.peephole", f"{layout} has no peephole connections")
    _reject(w.W_proj is not None, f"{name}.W_proj", f"{layout} has no projection (proj_size)")
    _reject(w.cell_clip is not None, f"{name}.cell_clip", f"{layout} has no cell clipping")


def _lstm_bias(w, layout, name="weights"):
    """b_x + b_h + forget_bias on the f block: the single LSTM bias (exact fold)."""
    H = w.hidden_size
    b = _sum(w.b_x, w.b_h, 4 * H, _dtype(w))
    if w.forget_bias:
        b[H:2 * H] += w.forget_bias
    return b


def _no_bias(w, layout, name="weights"):
    """A layout without biases: the canonical biases must be absent or zero."""
    _reject(_nonzero(w.b_x), f"{name}.b_x", f"{layout} built without biases cannot hold a nonzero bias")
    _reject(_nonzero(w.b_h), f"{name}.b_h", f"{layout} built without biases cannot hold a nonzero bias")
    if isinstance(w, LSTMWeights):
        _reject(bool(w.forget_bias), f"{name}.forget_bias",
                f"{layout} built without biases cannot hold forget_bias={w.forget_bias}")


def _path(name, key):
    """Where `key` of the mapping called `name` sits; name "" is the keyword arguments."""
    return f"{name}[{key!r}]" if name else key


def _sub(name, tree, key):
    if not isinstance(tree, Mapping):
        raise ValueError(f"{name}: expected a mapping, got {type(tree).__name__}")
    if key not in tree:
        if not name:
            raise ValueError(f"{key}: missing (got {sorted(tree)})")
        raise ValueError(f"{name}: missing key {key!r} (has {sorted(tree)})")
    return tree[key]


def _dense(name, tree, key, in_size, out_size, bias):
    """One flax Dense/Linear params dict: kernel (in, out) [and bias (out,)] -> (kernel.T, bias)."""
    d = _sub(name, tree, key)
    sub = _path(name, key)
    k = _arr(f"{sub}['kernel']", _sub(sub, d, "kernel"), shape=(in_size, out_size))
    b = _arr(f"{sub}['bias']", _sub(sub, d, "bias"), shape=(out_size,)) if bias else None
    return k.T, b


def _first_kernel_shape(name, tree, key):
    d = _sub(name, tree, key)
    sub = _path(name, key)
    return _arr(f"{sub}['kernel']", _sub(sub, d, "kernel"), ndim=2).shape


# ---------------------------------------------------------------- torch

def torch_suffix(layer=0, reverse=False):
    """The suffix torch appends to each name: ``torch_suffix(1, True) == '_l1_reverse'``."""
    return f"_l{int(layer)}" + ("_reverse" if reverse else "")


def _from_torch(cell, gates, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr=None):
    W, H = _gate_matrix("weight_ih", weight_ih, gates, 0)
    P = None
    if weight_hr is not None:
        Wp = _arr("weight_hr", weight_hr, ndim=2)
        if Wp.shape[1] != H or Wp.shape[0] < 1:
            raise ValueError(f"weight_hr: expected shape (proj_size, {H}), got {Wp.shape}")
        P = Wp.shape[0]
    hout = P or H
    R = _arr("weight_hh", weight_hh, shape=(gates * H, hout))
    b_x = None if bias_ih is None else _arr("bias_ih", bias_ih, shape=(gates * H,))
    b_h = None if bias_hh is None else _arr("bias_hh", bias_hh, shape=(gates * H,))
    if cell == "lstm":
        return LSTMWeights(W=W, R=R, b_x=b_x, b_h=b_h, W_proj=None if P is None else Wp)
    return GRUWeights(W=W, R=R, b_x=b_x, b_h=b_h, reset_after=True)


def from_torch_lstm(weight_ih, weight_hh, bias_ih=None, bias_hh=None, weight_hr=None):
    """torch ``nn.LSTM`` layer-direction (names without the ``_l{k}`` suffix) -> LSTMWeights."""
    return _from_torch("lstm", 4, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr)


def to_torch_lstm(weights, *, bias=True, dtype=None):
    """LSTMWeights -> {weight_ih, weight_hh, bias_ih, bias_hh, weight_hr}; ``bias=False`` for a
    layer built with ``bias=False`` (no bias entries). forget_bias folds into bias_ih."""
    w = _lstm("weights", weights)
    for field, what in (("peephole", "peephole connections"), ("cell_clip", "cell clipping")):
        _reject(getattr(w, field) is not None, f"weights.{field}", f"torch LSTM has no {what}")
    d = {"weight_ih": w.W.copy(), "weight_hh": w.R.copy()}
    if bias:
        H = w.hidden_size
        b_x = np.zeros(4 * H, _dtype(w)) if w.b_x is None else w.b_x.copy()
        if w.forget_bias:
            b_x[H:2 * H] += w.forget_bias
        d["bias_ih"] = b_x
        d["bias_hh"] = np.zeros(4 * H, _dtype(w)) if w.b_h is None else w.b_h.copy()
    else:
        _no_bias(w, "torch LSTM(bias=False)")
    if w.W_proj is not None:
        d["weight_hr"] = w.W_proj.copy()
    return _cast(d, dtype)


def from_torch_gru(weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """torch ``nn.GRU`` layer-direction -> GRUWeights (reset_after=True: torch's formula)."""
    return _from_torch("gru", 3, weight_ih, weight_hh, bias_ih, bias_hh)


def to_torch_gru(weights, *, bias=True, dtype=None):
    w = _gru("weights", weights)
    _reject(not w.reset_after, "weights.reset_after", "torch GRU only computes reset_after=True")
    d = {"weight_ih": w.W.copy(), "weight_hh": w.R.copy()}
    if bias:
        z = np.zeros(3 * w.hidden_size, _dtype(w))
        d["bias_ih"] = z.copy() if w.b_x is None else w.b_x.copy()
        d["bias_hh"] = z if w.b_h is None else w.b_h.copy()
    else:
        _no_bias(w, "torch GRU(bias=False)")
    return _cast(d, dtype)


# ---------------------------------------------------------------- Keras 3 / tf-keras 2

def from_keras_lstm(kernel, recurrent_kernel, bias=None):
    """Keras ``LSTM``/``LSTMCell`` weights (blocks i, f, c, o) -> LSTMWeights (b_x = bias)."""
    K, u = _gate_matrix("kernel", kernel, 4, 1)
    Rk = _arr("recurrent_kernel", recurrent_kernel, shape=(u, 4 * u))
    b = None if bias is None else _arr("bias", bias, shape=(4 * u,))
    return LSTMWeights(W=K.T.copy(), R=Rk.T.copy(), b_x=b)


def to_keras_lstm(weights, *, use_bias=True, dtype=None):
    """LSTMWeights -> {kernel, recurrent_kernel, bias}; bias = b_x + b_h (+ forget_bias on f)."""
    w = _lstm("weights", weights)
    _lstm_plain(w, "Keras LSTM")
    d = {"kernel": w.W.T.copy(), "recurrent_kernel": w.R.T.copy()}
    if use_bias:
        d["bias"] = _lstm_bias(w, "Keras LSTM")
    else:
        _no_bias(w, "Keras LSTM(use_bias=False)")
    return _cast(d, dtype)


def from_keras_gru(kernel, recurrent_kernel, bias=None, *, reset_after=None):
    """Keras ``GRU``/``GRUCell`` weights (blocks z, r, h) -> GRUWeights.

    ``reset_after`` defaults to what the bias shape says ((2, 3u) -> True, (3u,) -> False)
    and to Keras's default True when there is no bias.
    """
    K, u = _gate_matrix("kernel", kernel, 3, 1)
    Rk = _arr("recurrent_kernel", recurrent_kernel, shape=(u, 3 * u))
    if reset_after is not None and not isinstance(reset_after, (bool, np.bool_)):
        raise ValueError(f"reset_after: expected True, False or None, got {reset_after!r}")
    b_x = b_h = None
    if bias is not None:
        b = _arr("bias", bias)
        if reset_after is None:
            reset_after = b.ndim == 2
        shape = (2, 3 * u) if reset_after else (3 * u,)
        b = _arr("bias", b, shape=shape)
        if reset_after:
            b_x, b_h = _blocks(b[0], _KERAS_GRU), _blocks(b[1], _KERAS_GRU)
        else:
            b_x = _blocks(b, _KERAS_GRU)
    elif reset_after is None:
        reset_after = True
    return GRUWeights(W=_blocks(K.T, _KERAS_GRU), R=_blocks(Rk.T, _KERAS_GRU), b_x=b_x, b_h=b_h,
                      reset_after=bool(reset_after))


def to_keras_gru(weights, *, use_bias=True, dtype=None):
    """GRUWeights -> {kernel, recurrent_kernel, bias}; build the layer with
    ``reset_after=weights.reset_after``. Reset-before folds all of b_h into the bias (exact)."""
    w = _gru("weights", weights)
    d = {"kernel": _blocks(w.W, _KERAS_GRU).T.copy(), "recurrent_kernel": _blocks(w.R, _KERAS_GRU).T.copy()}
    if use_bias:
        n = 3 * w.hidden_size
        if w.reset_after:
            b_x = np.zeros(n, _dtype(w)) if w.b_x is None else w.b_x
            b_h = np.zeros(n, _dtype(w)) if w.b_h is None else w.b_h
            d["bias"] = np.stack([_blocks(b_x, _KERAS_GRU), _blocks(b_h, _KERAS_GRU)])
        else:
            d["bias"] = _blocks(_sum(w.b_x, w.b_h, n, _dtype(w)), _KERAS_GRU)
    else:
        _no_bias(w, "Keras GRU(use_bias=False)")
    return _cast(d, dtype)


# tf-keras 2 (tf_keras/src/layers/rnn/lstm.py, gru.py) builds the same three weights with
# the same shapes and gate blocks as Keras 3.
from_tf_keras_lstm, to_tf_keras_lstm = from_keras_lstm, to_keras_lstm
from_tf_keras_gru, to_tf_keras_gru = from_keras_gru, to_keras_gru


# ---------------------------------------------------------------- TF BlockLSTM / BlockLSTMV2

def _from_block(perm, w, b, wci, wcf, wco, input_size, forget_bias, cell_clip, use_peephole):
    wa, u = _gate_matrix("w", w, 4, 1)
    F = wa.shape[0] - u
    if input_size is not None:
        if isinstance(input_size, bool) or not isinstance(input_size, (int, np.integer)) or input_size < 1:
            raise ValueError(f"input_size: expected a positive integer, got {input_size!r}")
        F = int(input_size)
    if F < 1 or wa.shape[0] != F + u:
        raise ValueError(f"w: expected shape (input_size + {u}, {4 * u}) = ({F + u}, {4 * u}), got {wa.shape}")
    ba = _arr("b", b, shape=(4 * u,))
    if not isinstance(use_peephole, (bool, np.bool_)):
        raise ValueError(f"use_peephole: expected True or False, got {use_peephole!r}")
    peep = None
    if use_peephole:
        rows = []
        for name, v in (("wci", wci), ("wcf", wcf), ("wco", wco)):
            if v is None:
                raise ValueError(f"{name}: required when use_peephole=True, expected shape ({u},)")
            rows.append(_arr(name, v, shape=(u,)))
        peep = np.stack(rows)
    else:  # the kernel never reads them, but a wrong shape is still a mistake
        for name, v in (("wci", wci), ("wcf", wcf), ("wco", wco)):
            if v is not None:
                _arr(name, v, shape=(u,))
    fb = check_optional_scalar("forget_bias", forget_bias)
    clip = check_optional_scalar("cell_clip", cell_clip)
    return LSTMWeights(
        W=_blocks(wa[:F].T, _inverse(perm)), R=_blocks(wa[F:].T, _inverse(perm)),
        b_x=_blocks(ba, _inverse(perm)), peephole=peep,
        forget_bias=fb or 0.0,
        cell_clip=clip if clip is not None and clip > 0 else None,  # `if (cell_clip > 0.0f)`
    )


def _to_block(perm, weights, layout, fold_forget_bias):
    w = _lstm("weights", weights)
    _reject(w.W_proj is not None, "weights.W_proj", f"{layout} has no projection (proj_size)")
    H = w.hidden_size
    dt = _dtype(w)
    if fold_forget_bias:
        b = _lstm_bias(w, layout)
    else:
        b = _sum(w.b_x, w.b_h, 4 * H, dt)
    peep = w.peephole if w.peephole is not None else np.zeros((3, H), dt)
    d = {
        "w": np.concatenate([_blocks(w.W, perm).T, _blocks(w.R, perm).T], axis=0),
        "wci": peep[0].copy(), "wcf": peep[1].copy(), "wco": peep[2].copy(),
        "b": _blocks(b, perm),
    }
    if not fold_forget_bias:
        d["forget_bias"] = float(w.forget_bias)
    d["cell_clip"] = 0.0 if w.cell_clip is None else float(w.cell_clip)  # 0: no clipping
    d["use_peephole"] = w.peephole is not None
    return d


def from_block_lstm(w, b, wci=None, wcf=None, wco=None, *, input_size=None, forget_bias=1.0,
                    cell_clip=3.0, use_peephole=False):
    """``tf.raw_ops.BlockLSTM`` inputs/attributes (ICFO) -> LSTMWeights.

    Defaults are the op's own (forget_bias=1, cell_clip=3 — clipping is ON by default);
    cell_clip <= 0 means no clipping. input_size (optional, checked) splits w = [[W_x]; [W_h]].
    """
    return _from_block(_ICFO, w, b, wci, wcf, wco, input_size, forget_bias, cell_clip, use_peephole)


def to_block_lstm(weights, *, dtype=None):
    """LSTMWeights -> {w, wci, wcf, wco, b, forget_bias, cell_clip, use_peephole}: splat into
    ``tf.raw_ops.BlockLSTM(seq_len_max=, x=, cs_prev=, h_prev=, **d)`` (cast with dtype=float32)."""
    return _cast(_to_block(_ICFO, weights, "BlockLSTM", False), dtype)


def from_block_lstm_v2(w, b, wci=None, wcf=None, wco=None, *, input_size=None, cell_clip=0.0,
                       use_peephole=False):
    """``tf.raw_ops.BlockLSTMV2`` (IFCO, no forget_bias, cell_clip default 0 = off) -> LSTMWeights."""
    return _from_block((0, 1, 2, 3), w, b, wci, wcf, wco, input_size, 0.0, cell_clip, use_peephole)


def to_block_lstm_v2(weights, *, dtype=None):
    """LSTMWeights -> {w, wci, wcf, wco, b, cell_clip, use_peephole}; forget_bias folds into b."""
    return _cast(_to_block((0, 1, 2, 3), weights, "BlockLSTMV2", True), dtype)


# ---------------------------------------------------------------- ONNX

def _directions(weights, check):
    ws = [weights] if isinstance(weights, (LSTMWeights, GRUWeights)) else weights
    if not isinstance(ws, (list, tuple)) or len(ws) not in (1, 2):
        raise ValueError("weights: expected one weights object or a list of 1 or 2 (one per direction)")
    ws = [check(f"weights[{k}]", w) for k, w in enumerate(ws)]
    for k, w in enumerate(ws[1:], 1):
        if w.W.shape != ws[0].W.shape:
            raise ValueError(f"weights[{k}].W: directions must have the same shape, "
                             f"{w.W.shape} vs {ws[0].W.shape}")
    return ws


def _onnx_wr(W, R, gates):
    Wa = _arr("W", W, ndim=3)
    D = Wa.shape[0]
    if D not in (1, 2) or Wa.shape[1] == 0 or Wa.shape[1] % gates:
        raise ValueError(f"W: expected shape (num_directions in 1..2, {gates}*hidden_size, input_size), "
                         f"got {Wa.shape}")
    H = Wa.shape[1] // gates
    Ra = _arr("R", R, shape=(D, gates * H, H))
    return Wa, Ra, D, H


def from_onnx_lstm(W, R, B=None, P=None):
    """ONNX LSTM inputs (gates i, o, f, c; P = [p_i, p_o, p_f]) -> [LSTMWeights per direction]."""
    Wa, Ra, D, H = _onnx_wr(W, R, 4)
    Ba = None if B is None else _arr("B", B, shape=(D, 8 * H))
    Pa = None if P is None else _arr("P", P, shape=(D, 3 * H))
    inv = _inverse(_ONNX_LSTM)
    out = []
    for d in range(D):
        out.append(LSTMWeights(
            W=_blocks(Wa[d], inv), R=_blocks(Ra[d], inv),
            b_x=None if Ba is None else _blocks(Ba[d, :4 * H], inv),
            b_h=None if Ba is None else _blocks(Ba[d, 4 * H:], inv),
            peephole=None if Pa is None else _blocks(Pa[d], _inverse(_ONNX_PEEP)).reshape(3, H),
        ))
    return out


def to_onnx_lstm(weights, *, dtype=None):
    """[LSTMWeights per direction] (or one) -> {W, R[, B][, P]}; B only if some direction has a
    bias, P only if some has peepholes (zeros for the others). forget_bias folds into Wb."""
    ws = _directions(weights, _lstm)
    for k, w in enumerate(ws):
        _reject(w.W_proj is not None, f"weights[{k}].W_proj", "ONNX LSTM has no projection")
        _reject(w.cell_clip is not None, f"weights[{k}].cell_clip",
                "ONNX LSTM has no cell clipping (its `clip` attribute clips the gate pre-activations)")
    H, dt = ws[0].hidden_size, _dtype(ws[0])
    d = {"W": np.stack([_blocks(w.W, _ONNX_LSTM) for w in ws]),
         "R": np.stack([_blocks(w.R, _ONNX_LSTM) for w in ws])}
    if any(w.b_x is not None or w.b_h is not None or w.forget_bias for w in ws):
        rows = []
        for w in ws:
            b_x = np.zeros(4 * H, dt) if w.b_x is None else w.b_x.copy()
            if w.forget_bias:
                b_x[H:2 * H] += w.forget_bias
            b_h = np.zeros(4 * H, dt) if w.b_h is None else w.b_h
            rows.append(np.concatenate([_blocks(b_x, _ONNX_LSTM), _blocks(b_h, _ONNX_LSTM)]))
        d["B"] = np.stack(rows)
    if any(w.peephole is not None for w in ws):
        d["P"] = np.stack([np.zeros(3 * H, dt) if w.peephole is None
                           else _blocks(w.peephole.reshape(-1), _ONNX_PEEP) for w in ws])
    return _cast(d, dtype)


def from_onnx_gru(W, R, B=None, *, linear_before_reset=0):
    """ONNX GRU inputs (gates z, r, h; B = [Wb; Rb]) -> [GRUWeights per direction];
    linear_before_reset=1 is reset_after=True. Nothing is folded either way."""
    check_choice("linear_before_reset", linear_before_reset, (0, 1))
    Wa, Ra, D, H = _onnx_wr(W, R, 3)
    Ba = None if B is None else _arr("B", B, shape=(D, 6 * H))
    return [GRUWeights(
        W=_blocks(Wa[d], _KERAS_GRU), R=_blocks(Ra[d], _KERAS_GRU),
        b_x=None if Ba is None else _blocks(Ba[d, :3 * H], _KERAS_GRU),
        b_h=None if Ba is None else _blocks(Ba[d, 3 * H:], _KERAS_GRU),
        reset_after=bool(linear_before_reset),
    ) for d in range(D)]


def to_onnx_gru(weights, *, dtype=None):
    """[GRUWeights per direction] (or one) -> {W, R[, B], linear_before_reset} (the attribute)."""
    ws = _directions(weights, _gru)
    if len({w.reset_after for w in ws}) != 1:
        raise ValueError("weights[1].reset_after: both directions must use the same reset_after "
                         "(ONNX has one linear_before_reset attribute)")
    H, dt = ws[0].hidden_size, _dtype(ws[0])
    d = {"W": np.stack([_blocks(w.W, _KERAS_GRU) for w in ws]),
         "R": np.stack([_blocks(w.R, _KERAS_GRU) for w in ws])}
    if any(w.b_x is not None or w.b_h is not None for w in ws):
        z = np.zeros(3 * H, dt)
        d["B"] = np.stack([np.concatenate([_blocks(z if w.b_x is None else w.b_x, _KERAS_GRU),
                                           _blocks(z if w.b_h is None else w.b_h, _KERAS_GRU)]) for w in ws])
    d = _cast(d, dtype)
    d["linear_before_reset"] = int(ws[0].reset_after)
    return d


# ---------------------------------------------------------------- flax linen

_FLAX_LSTM_GATES = ("i", "f", "g", "o")
_FLAX_GRU_GATES = ("r", "z", "n")


def _from_flax_lstm_dense(name, tree, in_key):
    """Shared by linen (``if``) and nnx (``if_``) per-gate LSTM cells."""
    I, H = _first_kernel_shape(name, tree, in_key("i"))
    Ws, Rs, bs = [], [], []
    for g in _FLAX_LSTM_GATES:
        Ws.append(_dense(name, tree, in_key(g), I, H, bias=False)[0])
        k, b = _dense(name, tree, "h" + g, H, H, bias=True)
        Rs.append(k)
        bs.append(b)
    return LSTMWeights(W=np.concatenate(Ws), R=np.concatenate(Rs), b_h=np.concatenate(bs))


def _to_flax_lstm_dense(weights, layout, in_key):
    w = _lstm("weights", weights)
    _lstm_plain(w, layout)
    H = w.hidden_size
    b = _lstm_bias(w, layout)
    tree = {}
    for k, g in enumerate(_FLAX_LSTM_GATES):
        tree[in_key(g)] = {"kernel": w.W[k * H:(k + 1) * H].T.copy()}
    for k, g in enumerate(_FLAX_LSTM_GATES):
        tree["h" + g] = {"kernel": w.R[k * H:(k + 1) * H].T.copy(), "bias": b[k * H:(k + 1) * H].copy()}
    return tree


def from_flax_lstm(params):
    """flax.linen ``LSTMCell`` / ``OptimizedLSTMCell`` params (the tree under 'params') -> LSTMWeights.
    The hidden-side Dense layers carry the only bias (canonical b_h)."""
    return _from_flax_lstm_dense("params", params, lambda g: "i" + g)


def to_flax_lstm(weights, *, dtype=None):
    """LSTMWeights -> ``{'params': {...}}``, the linen variables: ``cell.apply(d, (c, h), x)``."""
    return {"params": _cast(_to_flax_lstm_dense(weights, "flax LSTMCell", lambda g: "i" + g), dtype)}


def from_flax_gru(params):
    """flax.linen ``GRUCell`` params -> GRUWeights (reset_after=True; b_h[r], b_h[z] are 0)."""
    I, H = _first_kernel_shape("params", params, "ir")
    W, R, bx, bh = [], [], [], []
    for g in _FLAX_GRU_GATES:
        k, b = _dense("params", params, "i" + g, I, H, bias=True)
        W.append(k)
        bx.append(b)
        k, b = _dense("params", params, "h" + g, H, H, bias=(g == "n"))
        R.append(k)
        bh.append(np.zeros(H, k.dtype) if b is None else b)
    return GRUWeights(W=np.concatenate(W), R=np.concatenate(R), b_x=np.concatenate(bx),
                      b_h=np.concatenate(bh), reset_after=True)


def _gru_reset_after_biases(w, layout):
    """(input-side bias with b_h[r, z] folded in, b_h[n]) for a reset-after cell."""
    _reject(not w.reset_after, "weights.reset_after", f"{layout} only computes reset_after=True")
    H = w.hidden_size
    dt = _dtype(w)
    b_x = np.zeros(3 * H, dt) if w.b_x is None else w.b_x.copy()
    if w.b_h is not None:
        b_x[:2 * H] += w.b_h[:2 * H]
    b_hn = np.zeros(H, dt) if w.b_h is None else w.b_h[2 * H:].copy()
    return b_x, b_hn


def to_flax_gru(weights, *, dtype=None):
    """GRUWeights -> ``{'params': {...}}``; b_h[r], b_h[z] fold into the input-side biases."""
    w = _gru("weights", weights)
    b_x, b_hn = _gru_reset_after_biases(w, "flax GRUCell")
    H = w.hidden_size
    tree = {}
    for k, g in enumerate(_FLAX_GRU_GATES):
        tree["i" + g] = {"kernel": w.W[k * H:(k + 1) * H].T.copy(), "bias": b_x[k * H:(k + 1) * H].copy()}
    for k, g in enumerate(_FLAX_GRU_GATES):
        tree["h" + g] = {"kernel": w.R[k * H:(k + 1) * H].T.copy()}
    tree["hn"]["bias"] = b_hn
    return {"params": _cast(tree, dtype)}


# ---------------------------------------------------------------- flax nnx

def _nnx_in_key(g):
    return "if_" if g == "f" else "i" + g


def from_nnx_lstm(**state):
    """flax.nnx ``LSTMCell`` Param state as a pure dict (``nnx.to_pure_dict(nnx.state(cell, nnx.Param))``:
    keys ii, if_, ig, io, hi, hf, hg, ho) -> LSTMWeights."""
    return _from_flax_lstm_dense("", state, _nnx_in_key)


def to_nnx_lstm(weights, *, dtype=None):
    """LSTMWeights -> the nnx ``LSTMCell`` pure state dict (use ``nnx.replace_by_pure_dict``)."""
    return _cast(_to_flax_lstm_dense(weights, "flax nnx LSTMCell", _nnx_in_key), dtype)


def from_nnx_optimized_lstm(dense_i, dense_h):
    """flax.nnx ``OptimizedLSTMCell``: dense_i kernel (I, 4H), dense_h kernel (H, 4H) + bias (4H,)."""
    K, H = _gate_matrix("dense_i['kernel']", _sub("dense_i", dense_i, "kernel"), 4, 1)
    Rk = _arr("dense_h['kernel']", _sub("dense_h", dense_h, "kernel"), shape=(H, 4 * H))
    b = _arr("dense_h['bias']", _sub("dense_h", dense_h, "bias"), shape=(4 * H,))
    return LSTMWeights(W=K.T.copy(), R=Rk.T.copy(), b_h=b)


def to_nnx_optimized_lstm(weights, *, dtype=None):
    w = _lstm("weights", weights)
    _lstm_plain(w, "flax nnx OptimizedLSTMCell")
    d = {"dense_i": {"kernel": w.W.T.copy()},
         "dense_h": {"kernel": w.R.T.copy(), "bias": _lstm_bias(w, "flax nnx OptimizedLSTMCell")}}
    return _cast(d, dtype)


def from_nnx_gru(dense_i, dense_h):
    """flax.nnx ``GRUCell``: dense_i kernel (I, 3H) + bias, dense_h kernel (H, 3H), no bias
    -> GRUWeights(reset_after=True, b_h=None)."""
    K, H = _gate_matrix("dense_i['kernel']", _sub("dense_i", dense_i, "kernel"), 3, 1)
    b = _arr("dense_i['bias']", _sub("dense_i", dense_i, "bias"), shape=(3 * H,))
    Rk = _arr("dense_h['kernel']", _sub("dense_h", dense_h, "kernel"), shape=(H, 3 * H))
    return GRUWeights(W=K.T.copy(), R=Rk.T.copy(), b_x=b, reset_after=True)


def to_nnx_gru(weights, *, dtype=None):
    """GRUWeights -> {dense_i: {kernel, bias}, dense_h: {kernel}}. The nnx GRUCell has no b_hn:
    a nonzero b_h[n] raises (it sits inside r * (...), so it cannot be folded)."""
    w = _gru("weights", weights)
    b_x, b_hn = _gru_reset_after_biases(w, "flax nnx GRUCell")
    _reject(_nonzero(b_hn), "weights.b_h",
            "flax nnx GRUCell has no recurrent bias: b_h[n] (inside r * (R_n h + b_hn)) must be 0")
    return _cast({"dense_i": {"kernel": w.W.T.copy(), "bias": b_x}, "dense_h": {"kernel": w.R.T.copy()}}, dtype)


# ---------------------------------------------------------------- table

Layout = namedtuple("Layout", "from_fn to_fn cell")
Layout.__doc__ = """One layout: ``from_fn(**to_fn(w))`` is canonical again (a list per
direction for the ONNX layouts, whose ``to_fn`` takes such a list)."""

LAYOUTS = {
    "torch_lstm": Layout(from_torch_lstm, to_torch_lstm, "lstm"),
    "torch_gru": Layout(from_torch_gru, to_torch_gru, "gru"),
    "keras_lstm": Layout(from_keras_lstm, to_keras_lstm, "lstm"),
    "keras_gru": Layout(from_keras_gru, to_keras_gru, "gru"),
    "tf_keras_lstm": Layout(from_tf_keras_lstm, to_tf_keras_lstm, "lstm"),
    "tf_keras_gru": Layout(from_tf_keras_gru, to_tf_keras_gru, "gru"),
    "block_lstm": Layout(from_block_lstm, to_block_lstm, "lstm"),
    "block_lstm_v2": Layout(from_block_lstm_v2, to_block_lstm_v2, "lstm"),
    "onnx_lstm": Layout(from_onnx_lstm, to_onnx_lstm, "lstm"),
    "onnx_gru": Layout(from_onnx_gru, to_onnx_gru, "gru"),
    "flax_lstm": Layout(from_flax_lstm, to_flax_lstm, "lstm"),
    "flax_optimized_lstm": Layout(from_flax_lstm, to_flax_lstm, "lstm"),  # same params as LSTMCell
    "flax_gru": Layout(from_flax_gru, to_flax_gru, "gru"),
    "nnx_lstm": Layout(from_nnx_lstm, to_nnx_lstm, "lstm"),
    "nnx_optimized_lstm": Layout(from_nnx_optimized_lstm, to_nnx_optimized_lstm, "lstm"),
    "nnx_gru": Layout(from_nnx_gru, to_nnx_gru, "gru"),
}


def get_layout(name):
    """The `Layout` called `name`; ValueError listing the known names otherwise."""
    return LAYOUTS[check_choice("layout", name, LAYOUTS)]


def reorder_gates(a, source, target, axis=0):
    """Reorder the gate blocks of `a` along `axis` from `source` order to `target` order.

    Orders are strings of gate letters, e.g. ``reorder_gates(W, "icfo", "ifco")`` (BlockLSTM
    to Keras). Both must name the same gates; the axis must split into that many equal blocks."""
    for name, order in (("source", source), ("target", target)):
        if not isinstance(order, str) or len(set(order)) != len(order) or not order:
            raise ValueError(f"{name}: expected a string of distinct gate letters, got {order!r}")
    if sorted(source) != sorted(target):
        raise ValueError(f"target: gate order {target!r} names other gates than source {source!r}")
    a = np.asarray(a)
    if not -a.ndim <= axis < a.ndim or a.shape[axis] % len(source):
        raise ValueError(f"a: axis {axis} of shape {a.shape} does not split into {len(source)} gate blocks")
    return _blocks(a, tuple(source.index(g) for g in target), axis=axis)
