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

Dropout: the ops have none; users put ``tf.nn.dropout`` around them, and so do the path's two
knobs (`DROPOUT_KNOBS`): ``"tf.nn.dropout(x)"`` on the input sequence before the op and
``"tf.nn.dropout(y)"`` on its output sequence ``h`` after it (the knob's rate p is tf.nn.dropout's
``rate``); h_n and c_n are the op's own last ``h`` / ``cs``, undropped. A session is seeded as
users seed TensorFlow: ``tf.random.set_seed(seed)`` once when it is built (which resets the op-seed
counter and TensorFlow's eager kernel cache), then plain ``tf.nn.dropout(t, rate=p)`` per call, no
op seed, so successive calls continue the global seed's sequence. ``training=False`` applies no
dropout at all (the user's ``if training:``), so it draws nothing.
"""
from __future__ import annotations


import numpy as np

from reference import Grads, Result, layouts

from conformance.adapters.base import BaseAdapter, as_stack, checked_rates

#: (knob on the input sequence, knob on the output sequence): ``tf.nn.dropout`` around the op
DROPOUT_KNOBS = ("tf.nn.dropout(x)", "tf.nn.dropout(y)")


class BlockLSTM(BaseAdapter):
    def __init__(self, info, *, device="cpu", dtype="float32"):
        super().__init__(info, device=device, dtype=dtype)
        if info.name.endswith("V2"):
            self.op_name, self.convert = "BlockLSTMV2", layouts.to_block_lstm_v2
        else:
            self.op_name, self.convert = "BlockLSTM", layouts.to_block_lstm

    def forward(self, stack, x, h0=None, c0=None, seq_len_max=None):
        return self._run(stack, x, h0, c0, seq_len_max=seq_len_max)[0]

    def dropout_session(self, stack, rates, seed):
        """``tf.nn.dropout`` on x before the op and / or on its output after it, at the rates
        `rates` ({knob: p}, `DROPOUT_KNOBS`), after ``tf.random.set_seed(seed)``."""
        rates = checked_rates(self.info, rates, one=False, why="tf.nn.dropout's rate")
        return BlockLSTMSession(self, stack, rates, int(seed))

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


class BlockLSTMSession:
    """The op between ``tf.nn.dropout`` calls, the global seed set once at creation."""

    def __init__(self, adapter, stack, rates, seed):
        import tensorflow as tf

        self.adapter = adapter
        self.stack, _, _, _ = adapter.prepare(stack, np.zeros((1, 1, as_stack(stack)[0][0].input_size)))
        self.p_x, self.p_y = (rates.get(k, 0.0) for k in DROPOUT_KNOBS)
        tf.random.set_seed(seed)

    def __call__(self, x, h0=None, c0=None, training=True):
        import tensorflow as tf

        a = self.adapter
        stack, x, h0, c0 = a.prepare(self.stack, x, h0, c0)
        w = stack[0][0]
        B, H = x.shape[1], w.hidden_size
        xt = tf.constant(x)
        if training:
            xt = tf.nn.dropout(xt, rate=self.p_x)
        out = getattr(tf.raw_ops, a.op_name)(
            seq_len_max=np.int64(x.shape[0]), x=xt, cs_prev=np.zeros((B, H), np.float32) if c0 is None else c0[0],
            h_prev=np.zeros((B, H), np.float32) if h0 is None else h0[0], **a.convert(w, dtype=np.float32))
        y = out.h
        if training:
            y = tf.nn.dropout(y, rate=self.p_y)
        return Result(y=y.numpy(), h_n=out.h.numpy()[-1:].copy(), c_n=out.cs.numpy()[-1:].copy())


def make(info, *, device="cpu", dtype="float32"):
    """Factory for ``tf.raw_ops.BlockLSTM`` and ``tf.raw_ops.BlockLSTMV2`` (by info.name)."""
    return BlockLSTM(info, device=device, dtype=dtype)
