"""``tf.raw_ops.BlockLSTM`` (gates i, c, f, o) and ``tf.raw_ops.BlockLSTMV2`` (i, f, c, o).

One layer, one direction, float32 only (the kernels are registered for float32 and half).
Inputs and attributes come from ``reference.layouts.to_block_lstm / to_block_lstm_v2``, which
set every attribute explicitly from the canonical weights, never leaving the op's defaults:

- BlockLSTM's default ``forget_bias=1`` would add 1 to the forget gate: the adapter passes
  ``forget_bias = w.forget_bias`` (0 unless the canonical weights say otherwise);
  BlockLSTMV2 has no such attribute, so a canonical forget_bias folds into ``b``;
- BlockLSTM's default ``cell_clip=3`` would clip c: the adapter passes ``w.cell_clip`` or
  ``0.0`` for "no clip" (the kernel clips only ``if (cell_clip > 0.0f)``, so 0 and negative
  values both disable it; tests/test_layouts.py checks both);
- ``use_peephole`` follows ``w.peephole`` (zeros wci/wcf/wco otherwise, never read).

``seq_len_max = T`` (steps past it are zero-filled by the op). Outputs: ``h`` is y,
``h[-1]`` h_n, ``cs[-1]`` c_n.
"""
from __future__ import annotations

import numpy as np

from reference import Grads, Result, layouts

from conformance.adapters.base import BaseAdapter


class BlockLSTM(BaseAdapter):
    def __init__(self, info, *, device="cpu", dtype="float32"):
        super().__init__(info, device=device, dtype=dtype)
        if info.name.endswith("V2"):
            self.op_name, self.convert = "BlockLSTMV2", layouts.to_block_lstm_v2
        else:
            self.op_name, self.convert = "BlockLSTM", layouts.to_block_lstm

    def forward(self, stack, x, h0=None, c0=None, seq_len_max=None):
        return self._run(stack, x, h0, c0, seq_len_max=seq_len_max)[0]

    def vjp(self, stack, x, dy, dh_n=None, dc_n=None, h0=None, c0=None, lengths=None):
        """Gradients through TensorFlow's registered BlockLSTMGrad(V2), by ``tf.GradientTape``."""
        if lengths is not None:
            self.checked_lengths(lengths, np.shape(x))  # raises: no "lengths"
        return self._run(stack, x, h0, c0, cotangents=(dy, dh_n, dc_n))

    def _run(self, stack, x, h0=None, c0=None, seq_len_max=None, cotangents=None):
        import tensorflow as tf
        from dataclasses import replace

        stack, x, h0, c0 = self.prepare(stack, x, h0, c0)
        w = stack[0][0]
        T, B, _ = x.shape
        H = w.hidden_size
        d = self.convert(w, dtype=np.float32)
        h_prev = np.zeros((B, H), np.float32) if h0 is None else h0[0]
        cs_prev = np.zeros((B, H), np.float32) if c0 is None else c0[0]
        op = getattr(tf.raw_ops, self.op_name)
        n = np.int64(T if seq_len_max is None else seq_len_max)
        if cotangents is None:
            out = op(seq_len_max=n, x=x, cs_prev=cs_prev, h_prev=h_prev, **d)
            h, cs = out.h.numpy(), out.cs.numpy()
            return Result(y=h, h_n=h[-1:].copy(), c_n=cs[-1:].copy()), None
        dy, dh, dc = cotangents
        arrays = {k: tf.constant(v) for k, v in d.items() if isinstance(v, np.ndarray)}
        attrs = {k: v for k, v in d.items() if k not in arrays}
        xt, ht, ct = tf.constant(x), tf.constant(h_prev), tf.constant(cs_prev)
        with tf.GradientTape() as tape:
            tape.watch([xt, ht, ct, *arrays.values()])
            out = op(seq_len_max=n, x=xt, cs_prev=ct, h_prev=ht, **arrays, **attrs)
            loss = tf.reduce_sum(out.h * np.asarray(dy, np.float32))
            if dh is not None:
                loss += tf.reduce_sum(out.h[-1] * np.asarray(dh, np.float32)[0])
            if dc is not None:
                loss += tf.reduce_sum(out.cs[-1] * np.asarray(dc, np.float32)[0])
        names = list(arrays)
        g = tape.gradient(loss, [xt, ht, ct] + [arrays[k] for k in names],
                          unconnected_gradients=tf.UnconnectedGradients.ZERO)
        gd = {k: gv.numpy() for k, gv in zip(names, g[3:])}
        canon = self.from_layout(gd, w)
        # BlockLSTM's b is b_x + b_h (+ forget bias): its gradient is each canonical bias's
        grads = replace(w, **{k: getattr(canon, k) for k in w.array_names() if getattr(w, k) is not None})
        if w.b_h is not None:
            grads = replace(grads, b_h=canon.b_x)
        h, cs = out.h.numpy(), out.cs.numpy()
        res = Result(y=h, h_n=h[-1:].copy(), c_n=cs[-1:].copy())
        return res, Grads(dx=g[0].numpy(), dh0=g[1].numpy()[None], dc0=g[2].numpy()[None], weights=[[grads]])

    def from_layout(self, gd, w):
        """Canonical-layout gradients from the op's {w, b, wci, wcf, wco} gradients."""
        kw = dict(input_size=w.input_size)
        if self.op_name == "BlockLSTM":
            fn = layouts.from_block_lstm
            kw.update(forget_bias=0.0, cell_clip=0.0)
        else:
            fn = layouts.from_block_lstm_v2
        return fn(gd["w"], gd["b"], gd.get("wci"), gd.get("wcf"), gd.get("wco"), use_peephole=w.peephole is not None,
                  **kw)


def make(info, *, device="cpu", dtype="float32"):
    """Factory for ``tf.raw_ops.BlockLSTM`` and ``tf.raw_ops.BlockLSTMV2`` (by info.name)."""
    return BlockLSTM(info, device=device, dtype=dtype)
