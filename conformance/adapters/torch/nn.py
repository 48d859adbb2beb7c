"""torch ``nn.LSTM`` / ``nn.GRU`` with dropout off, in eval mode, in every input variant.

Weights go in by torch's own parameter names, ``weight_ih_l{k}{_reverse}`` etc.
(``oracles.torch_replay.load_stack_into``: the set of names must equal the module's, so a
renamed parameter fails loudly); gradients come back the same way. The registry declares
one path per input variant (``common``: batch_first; padded, or packed with
enforce_sorted True / False). On CPU, float32 padded LSTMs without projection run through
oneDNN (``mkldnn_rnn``); GRUs, ``proj_size``, float64 and packed input through the native
kernel (`kernel_of` observes it). ``device="cuda"`` must run cuDNN: the first call of each
distinct dispatch there is profiled (`dispatch_key`) and a silent fallback to another kernel
raises, and float32 runs in IEEE float32 (``common.ieee_float32``: no TF32, which torch allows
cuDNN RNNs by default); without CUDA the adapter raises `DeviceUnavailable`.
"""
from __future__ import annotations

import numpy as np

from reference import Grads, Result

from conformance.adapters.torch.replay import load_stack_into, torch_stack_from_module
from conformance.adapters.torch import common as tc
from conformance.adapters.base import as_stack

CUDA_MISSING = tc.CUDA_MISSING


class SilentFallback(RuntimeError):
    """On CUDA the module ran some kernel other than cuDNN."""


class TorchRNN(tc.TorchAdapter):
    def build(self, stack, dropout=0.0):
        """The torch module holding `stack` (cast to self.dtype, on self.device, eval mode)."""
        import torch

        first = stack[0][0]
        kw = dict(num_layers=len(stack), bidirectional=len(stack[0]) == 2, bias=True, batch_first=self.batch_first,
                  dropout=dropout)
        if self.info.cell == "lstm":
            proj = first.W_proj.shape[0] if first.W_proj is not None else 0
            m = torch.nn.LSTM(first.input_size, first.hidden_size, proj_size=proj, **kw)
        else:
            m = torch.nn.GRU(first.input_size, first.hidden_size, **kw)
        m = m.to(device=self.device, dtype=getattr(torch, self.dtype)).eval()
        return load_stack_into(m, stack)  # the same loader the replay oracle uses

    def forward(self, stack, x, h0=None, c0=None, lengths=None):
        with self.float32_math():  # on CUDA: no TF32
            return self._run(stack, x, h0, c0, lengths)[0]

    def vjp(self, stack, x, dy, dh_n=None, dc_n=None, h0=None, c0=None, lengths=None):
        with self.float32_math():
            return self._run(stack, x, h0, c0, lengths, cotangents=(dy, dh_n, dc_n))

    def dropout_session(self, stack, rates, seed):
        """The module with ``dropout=rates["dropout"]`` (torch's inter-layer dropout), after
        ``torch.manual_seed(seed)``; calls run in training mode unless training=False."""
        unknown = sorted(set(rates) - {"dropout"})
        if unknown:
            raise ValueError(f"{self.info.name}: unknown dropout knobs {unknown}; it has ('dropout',)")
        return TorchSession(self, stack, rates.get("dropout", 0.0), seed)

    def _run(self, stack, x, h0, c0, lengths, cotangents=None):
        import torch

        stack, x, h0, c0 = self.prepare(stack, x, h0, c0)
        lengths = self.checked_lengths(lengths, x.shape)
        T, B, _ = x.shape
        if self.packed and lengths is None:
            lengths = np.full(B, T, np.int64)  # a packed path always packs
        grad = cotangents is not None
        h0, c0 = self._initial_state(stack, B, h0, c0, grad)
        m = self.build(stack)
        ts = tc.Tensors(self.dtype, self.device, grad)
        xt, h0t, c0t = ts.leaf(x), None if h0 is None else ts.leaf(h0), None if c0 is None else ts.leaf(c0)
        order, inverse = tc.batch_order(lengths, self.packed)
        row_lengths = lengths if order is None else lengths[order]
        inp = tc.pack(tc.rows(xt, order, 1), row_lengths, self.batch_first, self.packed)
        hx = None if h0t is None else tc.rows(h0t, order, 1)
        if self.info.cell == "lstm" and hx is not None:
            hx = (hx, tc.rows(c0t, order, 1))
        with torch.set_grad_enabled(grad):
            out, state = self._call(m, inp, hx)
            y = tc.rows(tc.unpack(out, T, self.batch_first, self.packed, self.padding_value), inverse, 1)
            h_n, c_n = state if self.info.cell == "lstm" else (state, None)
            h_n, c_n = tc.rows(h_n, inverse, 1), tc.rows(c_n, inverse, 1)
        result = Result(y=tc.numpy(y), h_n=tc.numpy(h_n), c_n=tc.numpy(c_n))
        if not grad:
            return result, None
        tc.backward((y, h_n, c_n), *cotangents, ts)
        return result, Grads(dx=tc.grad_or_zeros(xt), dh0=tc.grad_or_zeros(h0t),
                             dc0=None if c0t is None else tc.grad_or_zeros(c0t),
                             weights=torch_stack_from_module(m, grads=True))

    def _initial_state(self, stack, B, h0, c0, grad):
        """h0/c0 as given; zeros for the missing half of an LSTM's pair, and for both when
        gradients w.r.t. them are wanted. (None, None) lets torch make its own zeros."""
        if h0 is None and c0 is None and not grad:
            return None, None
        n = sum(len(layer) for layer in stack)
        hout, H = stack[0][0].output_size, stack[0][0].hidden_size
        dt = np.dtype(self.dtype)
        h0 = np.zeros((n, B, hout), dt) if h0 is None else h0
        if self.info.cell == "lstm" and c0 is None:
            c0 = np.zeros((n, B, H), dt)
        return h0, c0

    def kernel_of(self, stack, x, h0=None, c0=None, lengths=None):
        """On CUDA the forward proves its kernel itself (`_call`: cuDNN, else SilentFallback), so
        no second profiler is wrapped around it (torch's profiler does not nest)."""
        if self.device != "cuda":
            return super().kernel_of(stack, x, h0, c0, lengths)
        self.forward(stack, x, h0, c0, lengths)
        return "cuDNN"

    def _call(self, m, inp, hx):
        """m(inp, hx); on CUDA profiled, and anything but cuDNN raises SilentFallback.

        A profiled call costs 50-100 ms, so each distinct dispatch (`dispatch_key`: module
        configuration, dtype, packed or not, initial state or not, training or not, autograd on
        or off -- what torch's choice of kernel depends on; not the sizes) is profiled on its
        first call and trusted after it has shown cuDNN."""
        if self.device != "cuda":
            return m(inp, hx)
        key = dispatch_key(m, inp, hx)
        proven = self.__dict__.setdefault("_proven_cudnn", set())
        if key in proven:
            return m(inp, hx)
        out, kernel = tc.kernel_ran(lambda: m(inp, hx))
        if kernel != "cuDNN":
            raise SilentFallback(f"{self.info.name} on CUDA ran the {kernel} kernel, not cuDNN")
        proven.add(key)
        return out


def dispatch_key(m, inp, hx):
    """What torch's RNN kernel choice depends on for module `m` called on `inp` (see _call)."""
    import torch

    w = next(m.parameters())
    return (type(m).__name__, m.num_layers, m.bidirectional, getattr(m, "proj_size", 0), float(m.dropout), m.training,
            m.batch_first, w.dtype, w.device.type, isinstance(inp, torch.nn.utils.rnn.PackedSequence), hx is None,
            torch.is_grad_enabled())


class TorchSession:
    """One nn.LSTM/nn.GRU with dropout, the global torch generator seeded once at creation."""

    def __init__(self, adapter, stack, p, seed):
        import torch

        self.adapter = adapter
        self.stack, _, _, _ = adapter.prepare(stack, np.zeros((1, 1, as_stack(stack)[0][0].input_size)))
        self.module = adapter.build(self.stack, dropout=p)  # module init draws: before seeding
        torch.manual_seed(seed)

    def __call__(self, x, h0=None, c0=None, training=True):
        import torch

        _, x, h0, c0 = self.adapter.prepare(self.stack, x, h0, c0)
        self.module.train(training)
        ts = tc.Tensors(self.adapter.dtype, self.adapter.device, False)
        xt = ts.const(x)
        inp = xt.transpose(0, 1) if self.adapter.batch_first else xt
        hx = None
        if h0 is not None or c0 is not None:
            h0, c0 = self.adapter._initial_state(self.stack, x.shape[1], h0, c0, False)
            hx = ts.const(h0) if self.adapter.info.cell == "gru" else (ts.const(h0), ts.const(c0))
        with torch.no_grad(), self.adapter.float32_math():
            out, state = self.adapter._call(self.module, inp, hx)
        y = out.transpose(0, 1) if self.adapter.batch_first else out
        h_n, c_n = state if self.adapter.info.cell == "lstm" else (state, None)
        return Result(y=tc.numpy(y), h_n=tc.numpy(h_n), c_n=tc.numpy(c_n))


def make(info, *, device="cpu", dtype="float32"):
    """Factory for every nn.LSTM / nn.GRU path: info.cell and info.options decide."""
    return TorchRNN(info, device=device, dtype=dtype)
