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

from reference import Result, layouts

from .base import BaseAdapter


class BlockLSTM(BaseAdapter):
    def __init__(self, info, *, device="cpu", dtype="float32"):
        super().__init__(info, device=device, dtype=dtype)
        if info.name.endswith("V2"):
            self.op_name, self.convert = "BlockLSTMV2", layouts.to_block_lstm_v2
        else:
            self.op_name, self.convert = "BlockLSTM", layouts.to_block_lstm

    def forward(self, stack, x, h0=None, c0=None):
        import tensorflow as tf

        stack, x, h0, c0 = self.prepare(stack, x, h0, c0)
        w = stack[0][0]
        T, B, _ = x.shape
        H = w.hidden_size
        d = self.convert(w, dtype=np.float32)
        h_prev = np.zeros((B, H), np.float32) if h0 is None else h0[0]
        cs_prev = np.zeros((B, H), np.float32) if c0 is None else c0[0]
        op = getattr(tf.raw_ops, self.op_name)
        out = op(seq_len_max=np.int64(T), x=x, cs_prev=cs_prev, h_prev=h_prev, **d)
        h = out.h.numpy()
        cs = out.cs.numpy()
        return Result(y=h, h_n=h[-1:].copy(), c_n=cs[-1:].copy())


def make(info, *, device="cpu", dtype="float32"):
    """Factory for ``tf.raw_ops.BlockLSTM`` and ``tf.raw_ops.BlockLSTMV2`` (by info.name)."""
    return BlockLSTM(info, device=device, dtype=dtype)
