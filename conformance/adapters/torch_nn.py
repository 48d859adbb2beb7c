"""torch ``nn.LSTM`` / ``nn.GRU`` (time-major, eval mode, under ``torch.no_grad()``).

Weights go in by torch's own parameter names, ``weight_ih_l{k}{_reverse}`` etc., built from
``reference.layouts.to_torch_lstm/gru`` and ``layouts.torch_suffix``; the adapter checks that
the set of names equals the module's parameters, so a renamed parameter fails loudly.
On CPU, float32 unpacked LSTMs without projection run through oneDNN (``mkldnn_rnn``); GRUs,
``proj_size`` and float64 through the native kernel. ``device="cuda"`` runs cuDNN where CUDA
exists and raises `DeviceUnavailable` elsewhere.
"""
from __future__ import annotations

import numpy as np

from reference import Result

from ..oracles.torch_replay import load_stack_into
from .base import BaseAdapter, DeviceUnavailable

CUDA_MISSING = "CUDA is not available on this machine (cuDNN path not exercised)"


class TorchRNN(BaseAdapter):
    def check_device(self):
        if self.device == "cpu":
            return
        import torch

        if self.device == "cuda":
            if not torch.cuda.is_available():
                raise DeviceUnavailable(CUDA_MISSING)
            # torch runs nn.LSTM/GRU on CUDA through cuDNN whenever it is available and enabled;
            # without it the CUDA path would be a silent fallback, not the path this adapter names.
            if not (torch.backends.cudnn.is_available() and torch.backends.cudnn.enabled):
                raise DeviceUnavailable("cuDNN is not available or disabled (torch.backends.cudnn): "
                                        "the cuDNN path cannot be exercised")

    def build(self, stack):
        """The torch module holding `stack` (cast to self.dtype, on self.device, eval mode)."""
        import torch

        first = stack[0][0]
        D = len(stack[0])
        kw = dict(num_layers=len(stack), bidirectional=D == 2, bias=True, batch_first=False)
        if self.info.cell == "lstm":
            m = torch.nn.LSTM(first.input_size, first.hidden_size, proj_size=first.W_proj.shape[0]
                              if first.W_proj is not None else 0, **kw)
        else:
            m = torch.nn.GRU(first.input_size, first.hidden_size, **kw)
        tdtype = getattr(torch, self.dtype)
        m = m.to(device=self.device, dtype=tdtype).eval()
        return load_stack_into(m, stack)  # the same loader the replay oracle uses

    def forward(self, stack, x, h0=None, c0=None):
        import torch

        stack, x, h0, c0 = self.prepare(stack, x, h0, c0)
        m = self.build(stack)
        T, B, _ = x.shape
        n = sum(len(layer) for layer in stack)
        hout, H = stack[0][0].output_size, stack[0][0].hidden_size
        dt = np.dtype(self.dtype)
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(self.device)  # noqa: E731
        with torch.no_grad():
            if self.info.cell == "lstm":
                hx = None
                if h0 is not None or c0 is not None:
                    hx = (t(h0 if h0 is not None else np.zeros((n, B, hout), dt)),
                          t(c0 if c0 is not None else np.zeros((n, B, H), dt)))
                y, (h_n, c_n) = m(t(x), hx)
                c_n = c_n.cpu().numpy()
            else:
                y, h_n = m(t(x), None if h0 is None else t(h0))
                c_n = None
        return Result(y=y.cpu().numpy(), h_n=h_n.cpu().numpy(), c_n=c_n)


def make(info, *, device="cpu", dtype="float32"):
    """Factory for both torch paths (``torch.nn.LSTM``, ``torch.nn.GRU``): info.cell decides."""
    return TorchRNN(info, device=device, dtype=dtype)
