"""Keras 3 ``keras.layers.LSTM`` / ``keras.layers.GRU`` on the process's backend.

One Keras layer per canonical layer, built fresh for each ``forward`` (construction costs
~0.05 s per layer, nothing compared with a model), every layer ``return_sequences=True,
return_state=True``; a bidirectional layer is ``keras.layers.Bidirectional(layer)`` (merge
mode "concat": forward features first, as the reference's y). Inference mode: ``training=False``.

Keras is batch-major: x goes in as ``(B, T, I)`` and y comes back transposed to ``(T, B, ...)``.

State order. The reference (and torch) index states ``l*D + d``. Keras 3's ``Bidirectional``
takes ``initial_state`` as one flat list whose first half goes to the forward layer and second
half to the backward layer (keras/src/layers/rnn/bidirectional.py ``call``: ``half =
len(initial_state) // 2``), i.e. ``[h_fw, c_fw, h_bw, c_bw]`` for an LSTM and ``[h_fw, h_bw]``
for a GRU, and returns the final states in the same order after the output. So for layer l
the adapter passes ``[h0[2l], c0[2l], h0[2l+1], c0[2l+1]]`` and maps the returned states back
to ``h_n[2l], c_n[2l], h_n[2l+1], c_n[2l+1]``. The backward layer runs with go_backwards=True;
its final state is the state after step 0, as the reference's reverse direction.

``backend`` on the adapter is ``keras.backend.backend()`` at construction; the registry entry
says None (it depends on the process: run each backend in its own process).
"""
from __future__ import annotations

import numpy as np

from reference import Result, layouts

from .base import BaseAdapter


def _short(variable):
    return str(getattr(variable, "path", variable.name)).split("/")[-1].split(":")[0]


class KerasRNN(BaseAdapter):
    def __init__(self, info, *, device="cpu", dtype="float32"):
        super().__init__(info, device=device, dtype=dtype)
        import keras

        if not keras.__version__.startswith("3."):
            raise RuntimeError(f"{info.name}: needs Keras 3, found keras {keras.__version__}")
        self.keras = keras
        self._backend = keras.backend.backend()

    @property
    def backend(self):
        return self._backend

    def numpy(self, tensor):
        """A backend tensor as NumPy (torch tensors may require grad: convert_to_numpy detaches)."""
        return np.asarray(self.keras.ops.convert_to_numpy(tensor))

    def _cell_layer(self, w, H):
        k = self.keras
        common = dict(return_sequences=True, return_state=True, dtype=self.dtype)
        if self.info.cell == "lstm":
            return k.layers.LSTM(H, **common)
        return k.layers.GRU(H, reset_after=w.reset_after, **common)

    def _set(self, layer, w):
        if self.info.cell == "lstm":
            d = layouts.to_keras_lstm(w, dtype=self.dtype)
        else:
            d = layouts.to_keras_gru(w, dtype=self.dtype)
        names = [_short(v) for v in layer.weights]
        if names != list(d):
            raise RuntimeError(f"{self.info.name}: Keras weights {names} differ from the layout {list(d)}")
        layer.set_weights(list(d.values()))

    def build(self, stack, steps):
        layers = []
        size = stack[0][0].input_size
        for row in stack:
            H = row[0].hidden_size
            inner = self._cell_layer(row[0], H)
            if len(row) == 2:
                layer = self.keras.layers.Bidirectional(inner, merge_mode="concat", dtype=self.dtype)
                layer.build((None, steps, size))
                self._set(layer.forward_layer, row[0])
                self._set(layer.backward_layer, row[1])
            else:
                layer = inner
                layer.build((None, steps, size))
                self._set(layer, row[0])
            layers.append(layer)
            size = len(row) * row[0].output_size
        return layers

    def forward(self, stack, x, h0=None, c0=None):
        stack, x, h0, c0 = self.prepare(stack, x, h0, c0)
        T, B, _ = x.shape
        D = len(stack[0])
        H = stack[0][0].hidden_size
        lstm = self.info.cell == "lstm"
        dt = np.dtype(self.dtype)
        n = len(stack) * D
        if h0 is None and c0 is not None:
            h0 = np.zeros((n, B, H), dt)
        if lstm and h0 is not None and c0 is None:
            c0 = np.zeros((n, B, H), dt)
        layers = self.build(stack, T)
        seq = np.ascontiguousarray(np.swapaxes(x, 0, 1))  # (B, T, I)
        hs, cs = [], []
        for l, layer in enumerate(layers):
            init = None
            if h0 is not None:
                init = []
                for d in range(D):
                    init.append(h0[l * D + d])
                    if lstm:
                        init.append(c0[l * D + d])
            out = layer(seq, initial_state=init, training=False)
            seq, states = out[0], [self.numpy(s) for s in out[1:]]
            per = 2 if lstm else 1
            if len(states) != per * D:
                raise RuntimeError(f"{self.info.name}: expected {per * D} states, got {len(states)}")
            for d in range(D):
                hs.append(states[d * per])
                if lstm:
                    cs.append(states[d * per + 1])
        y = np.swapaxes(self.numpy(seq), 0, 1)
        return Result(y=np.ascontiguousarray(y), h_n=np.stack(hs), c_n=np.stack(cs) if lstm else None)


def make(info, *, device="cpu", dtype="float32"):
    """Factory for both Keras paths (``keras.layers.LSTM``, ``keras.layers.GRU``)."""
    return KerasRNN(info, device=device, dtype=dtype)
