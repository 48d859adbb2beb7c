"""torch ``nn.LSTMCell`` / ``nn.GRUCell`` driven by a Python loop, as users write one.

One cell per layer and direction, loaded by torch's parameter names (``weight_ih``,
``weight_hh``, ``bias_ih``, ``bias_hh``; the names must equal the cell's). The loop walks
the time steps of either a padded tensor (time-major or batch_first) or a PackedSequence
(``pack_padded_sequence`` with enforce_sorted True / False, see ``common``): at step t
only the first ``batch_sizes[t]`` rows (sorted by decreasing length) advance, the others keep
their state, so each row's final state is its state at its own last valid step and the
reverse direction of a bidirectional layer starts at each row's own end. The packed output
goes back through ``PackedSequence`` and ``pad_packed_sequence``, like nn.LSTM's.
Cells run natively (``aten::lstm_cell``, on CUDA the fused cell kernels; no cuDNN).
"""
from __future__ import annotations

import numpy as np

from reference import Grads, Result, layouts

from conformance.adapters.torch import common as tc


class TorchCellLoop(tc.TorchAdapter):
    NEEDS_CUDNN = False  # cells run native CUDA kernels, not cuDNN

    def build(self, stack):
        """[[cell per direction] per layer], weights loaded, cast, on self.device."""
        import torch

        lstm = self.info.cell == "lstm"
        make, convert = ((torch.nn.LSTMCell, layouts.to_torch_lstm) if lstm else (torch.nn.GRUCell, layouts.to_torch_gru))
        cells = []
        for layer in stack:
            row = []
            for w in layer:
                cell = make(w.input_size, w.hidden_size).to(device=self.device, dtype=getattr(torch, self.dtype))
                given, params = convert(w), dict(cell.named_parameters())
                if set(given) != set(params):
                    raise ValueError(f"{self.info.name}: parameter names differ from the cell's: "
                                     f"{sorted(set(given) ^ set(params))}")
                with torch.no_grad():
                    for k, v in given.items():
                        params[k].copy_(torch.as_tensor(v))
                row.append(cell)
            cells.append(row)
        return cells

    def forward(self, stack, x, h0=None, c0=None, lengths=None):
        with self.float32_math():  # on CUDA: no TF32
            return self._run(stack, x, h0, c0, lengths)[0]

    def vjp(self, stack, x, dy, dh_n=None, dc_n=None, h0=None, c0=None, lengths=None):
        with self.float32_math():
            return self._run(stack, x, h0, c0, lengths, cotangents=(dy, dh_n, dc_n))

    def _run(self, stack, x, h0, c0, lengths, cotangents=None):
        import torch

        stack, x, h0, c0 = self.prepare(stack, x, h0, c0)
        lengths = self.checked_lengths(lengths, x.shape)
        T, B, _ = x.shape
        if self.packed and lengths is None:
            lengths = np.full(B, T, np.int64)
        n = sum(len(layer) for layer in stack)
        dt = np.dtype(self.dtype)
        h0 = np.zeros((n, B, stack[0][0].output_size), dt) if h0 is None else h0
        lstm = self.info.cell == "lstm"
        c0 = np.zeros((n, B, stack[0][0].hidden_size), dt) if lstm and c0 is None else c0
        grad = cotangents is not None
        ts = tc.Tensors(self.dtype, self.device, grad)
        xt, h0t, c0t = ts.leaf(x), ts.leaf(h0), None if c0 is None else ts.leaf(c0)
        cells = self.build(stack)
        with torch.set_grad_enabled(grad):
            steps, sizes, packed, to_rows, from_rows = self._steps(xt, lengths)
            h_n, c_n = [], []
            for l, layer in enumerate(cells):
                outs = []
                for d, cell in enumerate(layer):
                    k = l * len(layer) + d
                    state = (tc.rows(h0t[k], to_rows, 0), tc.rows(c0t[k], to_rows, 0) if lstm else None)
                    out, state = self._direction(cell, steps, sizes, state, reverse=d == 1)
                    outs.append(out)
                    h_n.append(state[0])
                    c_n.append(state[1])
                steps = [torch.cat([o[t] for o in outs], dim=1) for t in range(len(sizes))]
            y = self._output(steps, packed, from_rows, T)
            h_n = tc.rows(torch.stack(h_n), from_rows, 1)
            c_n = tc.rows(torch.stack(c_n), from_rows, 1) if lstm else None
        result = Result(y=tc.numpy(y), h_n=tc.numpy(h_n), c_n=tc.numpy(c_n))
        if not grad:
            return result, None
        tc.backward((y, h_n, c_n), *cotangents, ts)
        return result, Grads(dx=tc.grad_or_zeros(xt), dh0=tc.grad_or_zeros(h0t),
                             dc0=None if c0t is None else tc.grad_or_zeros(c0t), weights=self._grads(cells))

    def _steps(self, xt, lengths):
        """The per-step inputs in processing row order: (steps, batch_sizes, packed sequence or
        None, row order of the states, the order that restores the caller's rows)."""
        T, B, _ = xt.shape
        if self.packed is None:
            xin = xt.transpose(0, 1) if self.batch_first else xt
            return [xin[:, t] if self.batch_first else xin[t] for t in range(T)], [B] * T, None, None, None
        order, inverse = tc.batch_order(lengths, self.packed)
        row_lengths = lengths if order is None else lengths[order]
        p = tc.pack(tc.rows(xt, order, 1), row_lengths, self.batch_first, self.packed)
        sizes = p.batch_sizes.tolist()
        steps = list(p.data.split(sizes))
        if self.packed == "sorted":
            return steps, sizes, p, order, inverse
        return steps, sizes, p, p.sorted_indices.cpu().numpy(), p.unsorted_indices.cpu().numpy()

    def _direction(self, cell, steps, sizes, state, reverse):
        """Run one cell over the steps; at step t only the first sizes[t] rows advance."""
        import torch

        h, c = state
        out = [None] * len(steps)
        for t in (reversed(range(len(steps))) if reverse else range(len(steps))):
            bs = sizes[t]
            if c is None:
                new_h = cell(steps[t], h[:bs])
            else:
                new_h, new_c = cell(steps[t], (h[:bs], c[:bs]))
                c = torch.cat([new_c, c[bs:]])
            h = torch.cat([new_h, h[bs:]])
            out[t] = new_h
        return out, (h, c)

    def _output(self, steps, packed, from_rows, T):
        """Per-step outputs -> time-major padded y, in the caller's row order."""
        import torch
        from torch.nn.utils.rnn import PackedSequence

        if packed is None:
            return torch.stack(steps)
        out = PackedSequence(torch.cat(steps), packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
        y = tc.unpack(out, T, self.batch_first, self.packed, self.padding_value)
        return tc.rows(y, from_rows, 1) if self.packed == "sorted" else y

    def _grads(self, cells):
        convert = layouts.from_torch_lstm if self.info.cell == "lstm" else layouts.from_torch_gru
        return [[convert(**{k: tc.grad_or_zeros(p) for k, p in cell.named_parameters()}) for cell in layer]
                for layer in cells]


def make(info, *, device="cpu", dtype="float32"):
    """Factory for the nn.LSTMCell / nn.GRUCell loop paths: info.cell and info.options decide."""
    return TorchCellLoop(info, device=device, dtype=dtype)
