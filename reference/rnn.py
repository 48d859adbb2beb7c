"""Recurrent layers over whole sequences: forward (`run`) and backward through time (`run_vjp`).

    result = run(stack, x, h0=None, c0=None, masks=None, lengths=None, step_mask=None,
                 padding="zero_output", reverse=False, go_backwards=False, dtype=np.float64)

x is time-major (T, B, I). `stack` is a list over layers of a list over directions (1, or 2
for bidirectional; direction 1 runs in reverse) of `LSTMWeights` / `GRUWeights`; a single
weights object means one layer, one direction. h0 / c0 are (L*D, B, Hout) / (L*D, B, H), index
l*D + d as in torch. Results are `Result(y (T, B, D*Hout), h_n, c_n)`; c_n is None for GRUs.

Directions: a reverse direction visits steps T-1 .. 0 (skipping invalid steps per the
padding policy, so with right padding each sequence is reversed within its own length)
and writes each output at its own time position (torch, ONNX). `reverse=True` runs every
layer of a unidirectional stack that way. `go_backwards=True` is Keras's: the whole padded
time axis (input and step mask) is flipped, the layer runs forward on it, and outputs come
back in that processing order; per-step masks then index processing steps.

Masks: see `masks.py`. Per layer-direction input / recurrent / output / state masks and
inter-layer masks between stacked layers; h_n / c_n are taken before inter-layer dropout.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Optional

import numpy as np

from ._checks import as_float_array, check_dtype
from .cells import make_kernel
from .masks import LayerMasks, Mask, StackMasks
from .padding import check_lengths, check_policy, check_step_mask, lengths_to_valid
from .params import GRUWeights, LSTMWeights


@dataclass
class Result:
    y: np.ndarray
    h_n: np.ndarray
    c_n: Optional[np.ndarray]


@dataclass
class Grads:
    """Gradients: dx (T, B, I), dh0, dc0 (None for GRU), and `weights` shaped like the stack
    (each a weights object of the same type whose arrays hold the gradients)."""

    dx: np.ndarray
    dh0: np.ndarray
    dc0: Optional[np.ndarray]
    weights: List[list]


# ----------------------------------------------------------------------------- validation

def _as_stack(stack, dtype):
    if isinstance(stack, (LSTMWeights, GRUWeights)):
        stack = [[stack]]
    if not isinstance(stack, (list, tuple)) or not stack:
        raise ValueError("stack: expected a weights object or a non-empty list of layers (lists of directions)")
    out = []
    for l, layer in enumerate(stack):
        if isinstance(layer, (LSTMWeights, GRUWeights)):
            layer = [layer]
        if not isinstance(layer, (list, tuple)) or len(layer) not in (1, 2):
            raise ValueError(f"stack[{l}]: expected a list of 1 or 2 directions, got {layer!r:.80}")
        row = []
        for d, w in enumerate(layer):
            if not isinstance(w, (LSTMWeights, GRUWeights)):
                raise ValueError(f"stack[{l}][{d}]: expected LSTMWeights or GRUWeights, got {type(w).__name__}")
            row.append(w.validated(dtype, name=f"stack[{l}][{d}]"))
        out.append(row)
    first = out[0][0]
    for l, row in enumerate(out):
        for d, w in enumerate(row):
            if type(w) is not type(first):
                raise ValueError(f"stack[{l}][{d}]: all layers must be the same cell type ({first.cell})")
            if len(row) != len(out[0]):
                raise ValueError(f"stack[{l}]: every layer needs the same number of directions")
            if d and (w.output_size, w.hidden_size) != (row[0].output_size, row[0].hidden_size):
                raise ValueError(f"stack[{l}][{d}]: both directions need the same sizes")
        if l:
            width = len(out[l - 1]) * out[l - 1][0].output_size
            if row[0].input_size != width:
                raise ValueError(f"stack[{l}][0].W: expected input size {width} (previous layer's output), "
                                 f"got {row[0].input_size}")
    return out


def _initial_state(name, value, stack, batch, size_of, dtype):
    n = sum(len(layer) for layer in stack)
    sizes = [size_of(w) for layer in stack for w in layer]
    if value is None:
        return [np.zeros((batch, s), dtype) for s in sizes]
    if len(set(sizes)) != 1:
        raise ValueError(f"{name}: give None for stacks whose layers differ in size")
    arr = as_float_array(name, value, dtype, shape=(n, batch, sizes[0]))
    return list(arr)


def _stack_masks(masks, stack):
    L, D = len(stack), len(stack[0])
    if masks is None:
        return [[LayerMasks() for _ in range(D)] for _ in range(L)], [None] * (L - 1)
    if isinstance(masks, LayerMasks):
        if L * D != 1:
            raise ValueError("masks: a single LayerMasks only fits one layer, one direction; use StackMasks")
        return [[masks]], []
    if not isinstance(masks, StackMasks):
        raise ValueError(f"masks: expected LayerMasks or StackMasks, got {type(masks).__name__}")
    layers = masks.layers or [[LayerMasks() for _ in range(D)] for _ in range(L)]
    if len(layers) != L or any(not isinstance(row, (list, tuple)) or len(row) != D for row in layers):
        raise ValueError(f"masks.layers: expected {L} layers of {D} directions")
    for l, row in enumerate(layers):
        for d, lm in enumerate(row):
            if not isinstance(lm, LayerMasks):
                raise ValueError(f"masks.layers[{l}][{d}]: expected LayerMasks, got {type(lm).__name__}")
    inter = list(masks.inter_layer) or [None] * (L - 1)
    if len(inter) != L - 1:
        raise ValueError(f"masks.inter_layer: expected {L - 1} entries (one per layer boundary), got {len(inter)}")
    return layers, inter


def _check_mask(m, name):
    if not isinstance(m, Mask):
        raise ValueError(f"{name}: expected a Mask, got {type(m).__name__} (an array of values goes in "
                         "Mask(values, time=..., per_gate=...), which states its structure)")


def _layer_mask_arrays(lm, w, steps, batch, dtype, name):
    """Full (T, G', B, N) views of one layer-direction's masks (None where absent)."""
    G = len(w.gates)
    spec = {"input": (G, w.input_size), "recurrent": (G, w.output_size), "output": (1, w.output_size),
            "state_h": (1, w.output_size), "state_c": (1, w.hidden_size)}
    out = {}
    for kind, (gates, size) in spec.items():
        m = getattr(lm, kind)
        if kind == "state_c" and m is not None and w.cell == "gru":
            raise ValueError(f"{name}.state_c: a GRU has no cell state")
        if m is None:
            out[kind] = None
            continue
        _check_mask(m, f"{name}.{kind}")
        full = m.full(steps, gates, batch, size, dtype, name=f"{name}.{kind}")
        out[kind] = np.broadcast_to(full, (steps,) + full.shape[1:])
    return out


def _prepare(stack, x, h0, c0, masks, lengths, step_mask, padding, reverse, go_backwards, dtype):
    dtype = check_dtype(dtype)
    stack = _as_stack(stack, dtype)
    x = as_float_array("x", x, dtype, ndim=3)
    steps, batch, feat = x.shape
    if steps == 0 or batch == 0:
        raise ValueError(f"x: expected at least one step and one batch row, got shape {x.shape}")
    if feat != stack[0][0].input_size:
        raise ValueError(f"x: expected {stack[0][0].input_size} features (the first layer's input size), got {feat}")
    check_policy(padding)
    if lengths is not None and step_mask is not None:
        raise ValueError("lengths: give lengths or step_mask, not both")
    valid = None
    if lengths is not None:
        valid = lengths_to_valid(check_lengths(lengths, steps, batch), steps)
    elif step_mask is not None:
        valid = check_step_mask(step_mask, steps, batch)
    if padding == "compute" or (valid is not None and valid.all()):
        valid = None
    D = len(stack[0])
    if (reverse or go_backwards) and D == 2:
        raise ValueError("reverse: only for unidirectional stacks (a bidirectional stack already has a reverse direction)")
    if reverse and go_backwards:
        raise ValueError("go_backwards: give reverse or go_backwards, not both")
    if go_backwards:
        x = x[::-1]
        valid = None if valid is None else valid[::-1]
    h0 = _initial_state("h0", h0, stack, batch, lambda w: w.output_size, dtype)
    if stack[0][0].cell == "gru":
        if c0 is not None:
            raise ValueError("c0: a GRU has no cell state")
        c0 = [None] * len(h0)
    else:
        c0 = _initial_state("c0", c0, stack, batch, lambda w: w.hidden_size, dtype)
    layer_masks, inter = _stack_masks(masks, stack)
    arrays = [[_layer_mask_arrays(layer_masks[l][d], w, steps, batch, dtype, f"masks.layers[{l}][{d}]")
               for d, w in enumerate(row)] for l, row in enumerate(stack)]
    inter_arrays = []
    for l, m in enumerate(inter):
        if m is None:
            inter_arrays.append(None)
            continue
        _check_mask(m, f"masks.inter_layer[{l}]")
        width = D * stack[l][0].output_size
        full = m.full(steps, 1, batch, width, dtype, name=f"masks.inter_layer[{l}]")[:, 0]
        inter_arrays.append(np.broadcast_to(full, (steps, batch, width)))
    return dict(stack=stack, x=x, h0=h0, c0=c0, valid=valid, policy=padding, masks=arrays,
                inter=inter_arrays, reverse=reverse, dtype=dtype)


# ----------------------------------------------------------------------------- one layer-direction

def _matmul_t(a, m):
    """(T, B, K) @ (K, N) as one 2-d matmul (NumPy would loop over T small matmuls)."""
    return (a.reshape(-1, a.shape[-1]) @ m).reshape(a.shape[:-1] + (m.shape[-1],))


def _input_projection(k, x, mx):
    """xm (T, G', B, I) masked inputs and xp (T, B, G*H) projections with biases."""
    if mx is None or mx.shape[1] == 1:
        xm = x if mx is None else x * mx[:, 0]
        xp = _matmul_t(xm, k.Wx.T)
        xm = xm[:, None]
    else:
        xm = x[:, None] * mx
        H = k.H
        xp = np.concatenate([_matmul_t(xm[:, g], k.Wx[g * H:(g + 1) * H].T) for g in range(k.gates)], axis=-1)
    xp += k.bias
    return xm, xp


def _layer_forward(k, x, h, c, m, valid, policy, reverse, keep):
    steps, batch, _ = x.shape
    xm, xp = _input_projection(k, x, m["input"])
    mh = m["recurrent"]
    msh, msc = m["state_h"], m["state_c"]
    y = np.empty((steps, batch, k.hout), dtype=x.dtype)
    po = np.zeros((batch, k.hout), dtype=x.dtype) if policy == "repeat_output" else None
    tape = []
    k.start(steps, batch, keep)
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        hm = h[None] if mh is None else h[None] * mh[t]
        h_new, c_new = k.step(t, xp[t], h, c, hm)
        hs = h_new if msh is None else h_new * msh[t, 0]
        cs = c_new if msc is None else c_new * msc[t, 0]
        v = None if valid is None else valid[t][:, None]
        if v is None or v.all():
            out, h, c = h_new, hs, cs
        else:
            fill = {"zero_output": 0.0, "repeat_output": po, "carry_h": h}[policy]
            out = np.where(v, h_new, fill)
            h = np.where(v, hs, h)
            c = None if c is None else np.where(v, cs, c)
        if po is not None:
            po = out
        y[t] = out
        if keep:
            tape.append((t, v))
    if m["output"] is not None:
        y = y * m["output"][:, 0]
    return y, h, c, dict(tape=tape, xm=xm, mh=mh, masks=m)


def _gate_products(d, inputs, gates, H):
    """sum over steps and rows of d_g^T @ inputs_g for each gate block g -> (G*H, N).

    d (T, B, G*H); inputs (T, G', B, N) with G' = 1 (shared by all gates) or G."""
    if inputs.shape[1] == 1:
        return d.reshape(-1, d.shape[-1]).T @ inputs[:, 0].reshape(-1, inputs.shape[-1])
    return np.concatenate([d[..., g * H:(g + 1) * H].reshape(-1, H).T @ inputs[:, g].reshape(-1, inputs.shape[-1])
                           for g in range(gates)])


def _input_backward(k, dxp, mx):
    """dx from the gradient of the input projections, through the input mask."""
    if mx is None:
        return _matmul_t(dxp, k.W)
    if mx.shape[1] == 1:
        return _matmul_t(dxp, k.W) * mx[:, 0]
    H = k.H
    return sum(_matmul_t(dxp[..., g * H:(g + 1) * H], k.W[g * H:(g + 1) * H]) * mx[:, g] for g in range(k.gates))


def _layer_backward(k, w, fw, dy, dh, dc, policy):
    """BPTT through one layer-direction. Returns dx, dh0, dc0 and the weight grads."""
    m = fw["masks"]
    batch, H, dtype = dy.shape[1], k.H, dy.dtype
    if m["output"] is not None:
        dy = dy * m["output"][:, 0]
    msh, msc, mh = m["state_h"], m["state_c"], fw["mh"]
    k.start_backward()
    dpo = np.zeros((batch, k.hout), dtype) if policy == "repeat_output" else None
    zero_h = np.zeros((batch, k.hout), dtype)
    for t, v in reversed(fw["tape"]):
        dout = dy[t] if dpo is None else dy[t] + dpo
        dh_next = dh if msh is None else dh * msh[t, 0]
        dc_next = None if dc is None else (dc if msc is None else dc * msc[t, 0])
        if v is None:
            dh_new, dc_new, dc_carry = dout + dh_next, dc_next, None
            if dpo is not None:
                dpo = zero_h
        else:
            dh_new = np.where(v, dout + dh_next, 0.0)
            dc_new = None if dc is None else np.where(v, dc_next, 0.0)
            dh_carry = np.where(v, 0.0, dh)
            dc_carry = None if dc is None else np.where(v, 0.0, dc)
            if policy == "carry_h":
                dh_carry = dh_carry + np.where(v, 0.0, dout)
            if dpo is not None:
                dpo = np.where(v, 0.0, dout)
        dhm, dh_direct, dc_prev = k.step_back(t, dh_new, dc_new)
        dh_rec = dhm if mh is None else dhm * mh[t]  # (G', B, Hout): one term per gate mask
        dh = dh_rec[0] if len(dh_rec) == 1 else dh_rec.sum(0)
        if dh_direct is not None:
            dh = dh + dh_direct
        if v is not None:
            dh = dh + dh_carry
        if dc is not None:
            dc = dc_prev if dc_carry is None else dc_carry + dc_prev
    dxp, drec, rec_in, extra = k.finish_backward()
    dx = _input_backward(k, dxp, m["input"])
    dW = _gate_products(dxp, fw["xm"], k.gates, H)
    dR = _gate_products(drec, rec_in, k.gates, H)
    db_x = dxp.sum((0, 1))
    db_h = drec.sum((0, 1))
    fields = dict(W=dW, R=dR, b_x=db_x if w.b_x is not None else None, b_h=db_h if w.b_h is not None else None)
    if w.cell == "lstm":
        fields.update(peephole=extra.get("peephole"), W_proj=extra.get("W_proj"))
    return dx, dh, dc, replace(w, **fields)


# ----------------------------------------------------------------------------- stacks

def _forward(p, keep):
    with np.errstate(over="ignore"):  # sigmoid's exp(-a) overflows to inf -> exactly 0, as it should
        return _forward_stack(p, keep)


def _forward_stack(p, keep):
    x, D = p["x"], len(p["stack"][0])
    hs, cs, tapes = [], [], []
    for l, row in enumerate(p["stack"]):
        outs, layer_tapes = [], []
        for d, w in enumerate(row):
            idx = l * D + d
            k = make_kernel(w, p["dtype"])
            y, h, c, fw = _layer_forward(k, x, p["h0"][idx], p["c0"][idx], p["masks"][l][d], p["valid"],
                                         p["policy"], reverse=(d == 1) or p["reverse"], keep=keep)
            outs.append(y)
            hs.append(h)
            cs.append(c)
            layer_tapes.append((k, fw))
        tapes.append(layer_tapes)
        y = outs[0] if D == 1 else np.concatenate(outs, axis=-1)
        if l < len(p["stack"]) - 1 and p["inter"][l] is not None:
            y = y * p["inter"][l]
        x = y
    c_n = None if cs[0] is None else np.stack(cs)
    return Result(y=x, h_n=np.stack(hs), c_n=c_n), dict(tapes=tapes)


def run(stack, x, h0=None, c0=None, masks=None, lengths=None, step_mask=None, padding="zero_output",
        reverse=False, go_backwards=False, dtype=np.float64):
    """Forward pass of a (stacked, optionally bidirectional) LSTM/GRU; see the module docstring."""
    p = _prepare(stack, x, h0, c0, masks, lengths, step_mask, padding, reverse, go_backwards, dtype)
    return _forward(p, keep=False)[0]


def run_vjp(stack, x, dy, dh_n=None, dc_n=None, h0=None, c0=None, masks=None, lengths=None, step_mask=None,
            padding="zero_output", reverse=False, go_backwards=False, dtype=np.float64):
    """Forward pass and the gradient of sum(dy*y) + sum(dh_n*h_n) + sum(dc_n*c_n).

    Returns (Result, Grads): gradients w.r.t. x, h0, c0 and every weight array, under the
    same masks, lengths and padding policy. Constant inputs (masks, forget_bias, cell_clip)
    get none."""
    p = _prepare(stack, x, h0, c0, masks, lengths, step_mask, padding, reverse, go_backwards, dtype)
    res, fw = _forward(p, keep=True)
    stack, D, dt = p["stack"], len(p["stack"][0]), p["dtype"]
    dy = as_float_array("dy", dy, dt, shape=res.y.shape)
    dh_n = np.zeros_like(res.h_n) if dh_n is None else as_float_array("dh_n", dh_n, dt, shape=res.h_n.shape)
    if res.c_n is None:
        if dc_n is not None:
            raise ValueError("dc_n: a GRU has no cell state")
        dc_n = [None] * len(dh_n)
    else:
        dc_n = np.zeros_like(res.c_n) if dc_n is None else as_float_array("dc_n", dc_n, dt, shape=res.c_n.shape)
    n = len(dh_n)
    dh0, dc0, wgrads = [None] * n, [None] * n, []
    for l in range(len(stack) - 1, -1, -1):
        if l < len(stack) - 1 and p["inter"][l] is not None:
            dy = dy * p["inter"][l]
        dx = 0.0
        row = []
        for d, (k, tape) in enumerate(fw["tapes"][l]):
            idx = l * D + d
            hout = k.hout
            dyd = dy[..., d * hout:(d + 1) * hout]
            dxd, dh0[idx], dc0[idx], gw = _layer_backward(k, stack[l][d], tape, dyd, dh_n[idx], dc_n[idx],
                                                          p["policy"])
            dx = dx + dxd
            row.append(gw)
        wgrads.insert(0, row)
        dy = dx
    if go_backwards:
        dy = dy[::-1]
    grads = Grads(dx=np.ascontiguousarray(dy), dh0=np.stack(dh0),
                  dc0=None if res.c_n is None else np.stack(dc0), weights=wgrads)
    return res, grads
