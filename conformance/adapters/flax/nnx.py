"""flax.nnx ``nnx.RNN(cell)`` with ``nnx.LSTMCell``, ``nnx.OptimizedLSTMCell`` or ``nnx.GRUCell``.

float32, CPU. One direction is ``nnx.RNN(cell, time_major=True, return_carry=True)``; two are
``nnx.Bidirectional(nnx.RNN(cell), nnx.RNN(cell), time_major=True, return_carry=True)``; a
stack is those layers applied in turn. Weights go in as each cell's pure Param dict
(``reference.layouts.to_nnx_lstm / to_nnx_optimized_lstm / to_nnx_gru``), replacing the
module's own with ``nnx.replace_by_pure_dict`` after checking that the two dicts have the same
shapes. The composed function is jitted as a pure function of those dicts (``nnx.split`` /
``nnx.merge``), and ``vjp`` differentiates it with ``jax.vjp``.

The nnx ``GRUCell`` has no hidden-side bias at all (``dense_h`` is built with
``use_bias=False``): n = tanh(W_n x + b_in + r * (R_n h)), so a canonical GRU with a nonzero
b_h[n] cannot be expressed (`to_nnx_gru` raises). It is therefore not a registered path (the
registry-wide suites draw such weights); ``suites/test_flax_rnn.py`` runs it with b_h[n] = 0
and records the finding. `make` still builds it (``options={"cell": "GRUCell"}``).
"""
from __future__ import annotations

import numpy as np

from reference import layouts

from conformance.adapters.base import BaseAdapter, UnsupportedCase
from conformance.adapters.flax.linen import JaxStack, canonical_grads, shapes

TO = {"LSTMCell": layouts.to_nnx_lstm, "OptimizedLSTMCell": layouts.to_nnx_optimized_lstm,
      "GRUCell": layouts.to_nnx_gru}
FROM = {"LSTMCell": lambda d: layouts.from_nnx_lstm(**d),
        "OptimizedLSTMCell": lambda d: layouts.from_nnx_optimized_lstm(**d),
        "GRUCell": lambda d: layouts.from_nnx_gru(**d)}


class FlaxNnxRNN(JaxStack, BaseAdapter):
    def __init__(self, info, *, device="cpu", dtype="float32"):
        super().__init__(info, device=device, dtype=dtype)
        self.cell_name = info.option("cell") or info.name.rsplit(".", 1)[-1]
        if self.cell_name not in TO:
            raise ValueError(f"{info.name}: option cell must be one of {sorted(TO)}, got {self.cell_name!r}")
        self.lstm = info.cell == "lstm"
        self.graphs = {}  # (I, H, D) -> nnx graphdef of one layer

    def forward(self, stack, x, h0=None, c0=None, lengths=None):
        self.checked_lengths(lengths, np.shape(x))  # UnsupportedCase: "lengths" is not declared
        stack, x, h0, c0 = self.prepare(stack, x, h0, c0)
        if h0 is None and c0 is None:  # explicit zeros: nnx.RNN's own carry init draws from an
            n = len(stack) * len(stack[0])  # RngStream that cannot be advanced inside jax.jit
            h0 = np.zeros((n, x.shape[1], stack[0][0].hidden_size), np.float32)
        return self.run(stack, x, h0, c0)[0]

    def vjp(self, stack, x, dy, dh_n=None, dc_n=None, h0=None, c0=None, lengths=None):
        self.checked_lengths(lengths, np.shape(x))
        stack, x, h0, c0 = self.prepare(stack, x, h0, c0)
        return self.run(stack, x, h0, c0, cotangents=(dy, dh_n, dc_n))

    def build(self, I, H, D):
        """A fresh nnx layer (RNN or Bidirectional) of input size I, hidden size H."""
        from flax import nnx

        rngs = nnx.Rngs(0)
        cell = lambda: getattr(nnx, self.cell_name)(I, H, rngs=rngs)  # noqa: E731
        if D == 1:
            return nnx.RNN(cell(), time_major=True, return_carry=True)
        return nnx.Bidirectional(nnx.RNN(cell()), nnx.RNN(cell()), time_major=True, return_carry=True)

    def layer_params(self, row):
        """The layer's nnx Param state as a pure dict holding our weights (shapes checked)."""
        from flax import nnx

        I, H, D = row[0].input_size, row[0].hidden_size, len(row)
        try:
            cells = [TO[self.cell_name](w, dtype=np.float32) for w in row]
        except ValueError as e:
            raise UnsupportedCase(f"{self.info.name}: {e}") from e
        mine = {"cell": cells[0]} if D == 1 else {"forward_rnn": {"cell": cells[0]}, "backward_rnn": {"cell": cells[1]}}
        if (I, H, D) not in self.graphs:
            layer = self.build(I, H, D)
            graph, params, rest = nnx.split(layer, nnx.Param, ...)
            theirs = nnx.to_pure_dict(params)
            if shapes(theirs) != shapes(mine):
                raise RuntimeError(f"{self.info.name}: parameter tree differs from nnx's: {shapes(theirs)} vs "
                                   f"{shapes(mine)}")
            self.graphs[(I, H, D)] = (graph, params, rest)
        return mine

    def apply_layer(self, l, params, x, carry):
        from flax import nnx

        I, D = x.shape[-1], 1 if "cell" in params else 2
        H = _hidden(params)
        graph, state, rest = self.graphs[(I, H, D)]
        state = _replaced(state, params)
        layer = nnx.merge(graph, state, rest)
        return layer(x, initial_carry=carry)

    def grads_of(self, row, g):
        trees = [g["cell"]] if "cell" in g else [g["forward_rnn"]["cell"], g["backward_rnn"]["cell"]]
        return [canonical_grads(w, FROM[self.cell_name](_plain(t))) for w, t in zip(row, trees)]


def _replaced(state, pure):
    """A copy of nnx State `state` holding the arrays of pure dict `pure` (jax-traceable)."""
    import jax

    from flax import nnx

    state = jax.tree_util.tree_map(lambda a: a, state)  # a copy: replace_by_pure_dict mutates
    nnx.replace_by_pure_dict(state, pure)
    return state


def _plain(tree):
    return {k: _plain(v) if isinstance(v, dict) else np.asarray(v) for k, v in tree.items()}


def _hidden(params):
    cell = params["cell"] if "cell" in params else params["forward_rnn"]["cell"]
    if "dense_h" in cell:
        return cell["dense_h"]["kernel"].shape[0]
    return cell["hi"]["kernel"].shape[0]


def make(info, *, device="cpu", dtype="float32"):
    """Factory for the flax.nnx paths (cell from option "cell" or the name's last part)."""
    return FlaxNnxRNN(info, device=device, dtype=dtype)


def nnx_rnn_call(cell_name, w, x, h0=None, c0=None, **knobs):
    """One direction of ``nnx.RNN(nnx.<cell_name>, time_major=True)`` with canonical weights `w`
    (float32) and nnx.RNN's call knobs (seq_lengths, reverse, keep_order, return_carry); as
    `linen.rnn_call`: (h_n, c_n, y), h_n / c_n None without return_carry."""
    import jax.numpy as jnp
    from flax import nnx

    from conformance.adapters.flax.linen import from_carry, to_carry

    lstm = w.cell == "lstm"
    T, B, I = np.shape(x)
    H = w.hidden_size
    cell = getattr(nnx, cell_name)(I, H, rngs=nnx.Rngs(0))
    graph, state, rest = nnx.split(cell, nnx.Param, ...)
    nnx.replace_by_pure_dict(state, TO[cell_name](w, dtype=np.float32))
    rnn = nnx.RNN(nnx.merge(graph, state, rest), time_major=True)
    f32 = lambda a: jnp.asarray(np.asarray(a, np.float32))  # noqa: E731
    h0 = np.zeros((B, H)) if h0 is None else h0
    c0 = np.zeros((B, H)) if c0 is None else c0
    if knobs.get("seq_lengths") is not None:
        knobs["seq_lengths"] = jnp.asarray(np.asarray(knobs["seq_lengths"], np.int32))
    out = rnn(f32(x), initial_carry=to_carry(lstm, f32(h0), f32(c0)), **knobs)
    if not knobs.get("return_carry"):
        return None, None, np.asarray(out)
    carry, y = out
    h, c = from_carry(lstm, carry)
    return np.asarray(h), None if c is None else np.asarray(c), np.asarray(y)
