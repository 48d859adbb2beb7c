"""flax.linen ``nn.RNN(cell)`` with ``nn.LSTMCell``, ``nn.OptimizedLSTMCell`` or ``nn.GRUCell``.

One layer, one direction, float32 (JAX's default; float64 would need the process-wide
``jax_enable_x64`` switch), CPU. ``nn.RNN(cell, time_major=True, return_carry=True)``: x stays
time-major; the carry is ``(c, h)`` for the LSTM cells and ``h`` for the GRU cell and goes in
through ``initial_carry`` (absent: the cell's own zeros). Parameters from
``reference.layouts.to_flax_lstm / to_flax_gru``, under ``params/cell`` (nn.RNN's submodule
name); the first forward of an adapter checks that tree against ``nn.RNN.init``'s shapes.
"""
from __future__ import annotations

import numpy as np

from reference import Result, layouts

from .base import BaseAdapter

CELLS = {"flax.linen.LSTMCell": "LSTMCell", "flax.linen.OptimizedLSTMCell": "OptimizedLSTMCell",
         "flax.linen.GRUCell": "GRUCell"}


def _shapes(tree):
    return {k: _shapes(v) if isinstance(v, dict) else tuple(v.shape) for k, v in tree.items()}


class FlaxLinenRNN(BaseAdapter):
    def __init__(self, info, *, device="cpu", dtype="float32"):
        super().__init__(info, device=device, dtype=dtype)
        self.cell_name = CELLS.get(info.name, "GRUCell" if info.cell == "gru" else "LSTMCell")
        self._checked = False

    def forward(self, stack, x, h0=None, c0=None):
        import jax
        import jax.numpy as jnp
        from flax import linen as nn

        stack, x, h0, c0 = self.prepare(stack, x, h0, c0)
        w = stack[0][0]
        T, B, _ = x.shape
        H = w.hidden_size
        cell = getattr(nn, self.cell_name)(features=H)
        rnn = nn.RNN(cell, time_major=True, return_carry=True)
        params = (layouts.to_flax_lstm if self.info.cell == "lstm" else layouts.to_flax_gru)(w, dtype=np.float32)
        variables = {"params": {"cell": params["params"]}}
        xj = jnp.asarray(x)
        if not self._checked:
            want = jax.eval_shape(rnn.init, jax.random.key(0), xj)
            if _shapes(dict(want)) != _shapes(variables):
                raise RuntimeError(f"{self.info.name}: parameter tree differs from flax's: "
                                   f"{_shapes(dict(want))} vs {_shapes(variables)}")
            self._checked = True
        carry = None
        if h0 is not None or c0 is not None:
            h = np.zeros((B, H), np.float32) if h0 is None else h0[0]
            if self.info.cell == "lstm":
                c = np.zeros((B, H), np.float32) if c0 is None else c0[0]
                carry = (jnp.asarray(c), jnp.asarray(h))
            else:
                carry = jnp.asarray(h)
        carry, y = rnn.apply(variables, xj, initial_carry=carry)
        if self.info.cell == "lstm":
            c_n, h_n = carry
            c_n = np.asarray(c_n)[None]
        else:
            h_n, c_n = carry, None
        return Result(y=np.asarray(y), h_n=np.asarray(h_n)[None], c_n=c_n)


def make(info, *, device="cpu", dtype="float32"):
    """Factory for the three flax.linen paths (cell chosen by info.name)."""
    return FlaxLinenRNN(info, device=device, dtype=dtype)
