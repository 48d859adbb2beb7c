"""What the torch adapters share: device checks, NumPy <-> tensor, the input variants
(time-major or batch_first; padded or packed with ``enforce_sorted`` True or False), the
loss for gradients, and which kernel ran (observed with ``torch.profiler``).

Input variants, from the adapter's options (``AdapterInfo.options``):

- ``batch_first``: the tensors handed to torch are (B, T, ...) and torch is told so;
- ``packed``: None (padded tensor), "sorted" (the adapter sorts the batch by decreasing
  length itself, packs with ``enforce_sorted=True`` and restores the order afterwards, as a
  user must) or "unsorted" (``enforce_sorted=False``: torch sorts and restores);
- ``padding_value``: what ``pad_packed_sequence`` writes at padded positions (default 0.0).
"""
from __future__ import annotations

import numpy as np

import contextlib

from conformance.adapters.base import BaseAdapter, DeviceUnavailable
from conformance.core.devices import no_cuda

CUDA_MISSING = no_cuda("cuDNN path not exercised")
PACKED = (None, "sorted", "unsorted")

# Profiler op-name fragments -> kernel, most specific first.
KERNEL_OPS = (
    ("_cudnn_rnn", "cuDNN"),
    ("miopen_rnn", "MIOpen"),
    ("mkldnn_rnn", "oneDNN"),
    ("_thnn_fused_lstm_cell", "fused CUDA cell"),
    ("_thnn_fused_gru_cell", "fused CUDA cell"),
    ("aten::lstm_cell", "native cell"),
    ("aten::gru_cell", "native cell"),
    ("aten::lstm", "native"),
    ("aten::gru", "native"),
)


def check_cuda(name, need_cudnn):
    """DeviceUnavailable unless CUDA (and, if `need_cudnn`, cuDNN) can run here."""
    import torch

    if not torch.cuda.is_available():
        raise DeviceUnavailable(CUDA_MISSING if need_cudnn else
                                no_cuda("CUDA cell kernels not exercised"))
    if need_cudnn and not (torch.backends.cudnn.is_available() and torch.backends.cudnn.enabled):
        raise DeviceUnavailable(f"{name}: cuDNN is not available or disabled (torch.backends.cudnn): "
                                "the cuDNN path cannot be exercised")


def check_options(info):
    packed = info.option("packed")
    if packed not in PACKED:
        raise ValueError(f"{info.name}: option packed must be one of {PACKED}, got {packed!r}")
    if packed is not None and "lengths" not in info.features:
        raise ValueError(f"{info.name}: a packed path must declare the 'lengths' feature")


class TorchAdapter(BaseAdapter):
    """What every torch adapter shares: the input-variant options and the device check
    (on CUDA, `NEEDS_CUDNN` says whether the path is a cuDNN path)."""

    NEEDS_CUDNN = True

    def __init__(self, info, *, device="cpu", dtype="float32"):
        check_options(info)
        super().__init__(info, device=device, dtype=dtype)
        self.batch_first = bool(info.option("batch_first", False))
        self.packed = info.option("packed")
        self.padding_value = float(info.option("padding_value", 0.0))

    def float32_math(self):
        """A context: on CUDA, IEEE float32 inside (`ieee_float32`); elsewhere nothing."""
        return ieee_float32() if self.device == "cuda" else contextlib.nullcontext()

    def check_device(self):
        if self.device == "cuda":
            check_cuda(self.info.name, need_cudnn=self.NEEDS_CUDNN)
        elif self.device != "cpu":
            super().check_device()

    def kernel_of(self, stack, x, h0=None, c0=None, lengths=None):
        return kernel_ran(lambda: self.forward(stack, x, h0, c0, lengths))[1]


class Tensors:
    """NumPy -> torch tensors of one dtype on one device; `leaf` requires grad when `grad`."""

    def __init__(self, dtype, device, grad):
        import torch

        self.torch, self.dtype, self.device, self.grad = torch, getattr(torch, dtype), device, grad

    def const(self, a):
        return self.torch.as_tensor(np.ascontiguousarray(a), dtype=self.dtype, device=self.device)

    def leaf(self, a):
        return self.const(a).requires_grad_(self.grad)


def batch_order(lengths, packed):
    """(order, inverse) of the batch rows the adapter itself must apply: decreasing length
    for packed="sorted" (enforce_sorted=True needs it), None otherwise."""
    if packed != "sorted":
        return None, None
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return order, np.argsort(order)


def pack(x, lengths, batch_first, packed):
    """x: time-major tensor (T, B, I), rows already in the adapter's order -> the module input:
    a padded tensor (transposed if batch_first) or a PackedSequence."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence

    inp = x.transpose(0, 1) if batch_first else x
    if packed is None:
        return inp
    return pack_padded_sequence(inp, torch.as_tensor(np.asarray(lengths, np.int64)), batch_first=batch_first,
                                enforce_sorted=packed == "sorted")


def unpack(out, steps, batch_first, packed, padding_value):
    """The module output back to a time-major padded tensor (T, B, F)."""
    from torch.nn.utils.rnn import pad_packed_sequence

    if packed is not None:
        out, _ = pad_packed_sequence(out, batch_first=batch_first, padding_value=padding_value, total_length=steps)
    return out.transpose(0, 1) if batch_first else out


def rows(t, index, dim):
    """t with its batch rows (dimension `dim`) taken in `index` order (no-op for None)."""
    if index is None or t is None:
        return t
    import torch

    return t.index_select(dim, torch.as_tensor(index, device=t.device))


def backward(result, dy, dh_n, dc_n, tensors):
    """Backpropagate sum(dy*y) + sum(dh_n*h_n) + sum(dc_n*c_n); result holds tensors (y, h_n, c_n)."""
    y, h_n, c_n = result
    loss = (y * tensors.const(dy)).sum()
    if dh_n is not None:
        loss = loss + (h_n * tensors.const(dh_n)).sum()
    if dc_n is not None and c_n is not None:
        loss = loss + (c_n * tensors.const(dc_n)).sum()
    loss.backward()


def numpy(t):
    """A tensor as a float64 NumPy copy (None stays None)."""
    return None if t is None else t.detach().cpu().double().numpy().copy()


def grad_or_zeros(t):
    return np.zeros(tuple(t.shape)) if t.grad is None else numpy(t.grad)


def kernel_ran(fn):
    """(fn(), kernel): run fn under torch.profiler and name the recurrent kernel its ops show
    (first match in KERNEL_OPS), "unknown" if none of them appears."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        out = fn()
    names = {e.name for e in prof.events()}
    for fragment, kernel in KERNEL_OPS:
        if any(fragment in n for n in names):
            return out, kernel
    return out, "unknown"


@contextlib.contextmanager
def ieee_float32():
    """cuDNN RNNs and CUDA matmuls in IEEE float32 inside, no TF32 (restored after); yields what
    was set, for a record. torch lets cuDNN RNNs use TF32 by default (torch 2.13:
    ``torch.backends.cudnn.rnn.fp32_precision == "tf32"``; older releases
    ``torch.backends.cudnn.allow_tf32 = True``), about 3 decimal digits: a float32 conformance
    case asks for float32. A setting this torch refuses is said, not fatal."""
    import torch

    rnn = getattr(torch.backends.cudnn, "rnn", None)
    if rnn is not None and hasattr(rnn, "fp32_precision"):  # torch >= 2.9 API
        targets = [(rnn, "fp32_precision", "ieee", "torch.backends.cudnn.rnn")]
        matmul = torch.backends.cuda.matmul
        if hasattr(matmul, "fp32_precision"):
            targets.append((matmul, "fp32_precision", "ieee", "torch.backends.cuda.matmul"))
    else:  # the legacy flags
        targets = [(torch.backends.cudnn, "allow_tf32", False, "torch.backends.cudnn"),
                   (torch.backends.cuda.matmul, "allow_tf32", False, "torch.backends.cuda.matmul")]
    done = []  # (obj, attr, old value, description), restored in reverse order
    try:
        for obj, attr, value, name in targets:
            try:
                old = getattr(obj, attr)
                setattr(obj, attr, value)
            except (AttributeError, RuntimeError, ValueError) as e:
                done.append((None, attr, None, f"{name}.{attr} not set ({type(e).__name__}: {e})"))
                continue
            done.append((obj, attr, old, f"{name}.{attr} = {value!r}"))
        yield "; ".join(d for _, _, _, d in done)
    finally:
        for obj, attr, old, _ in reversed(done):
            if obj is not None:
                setattr(obj, attr, old)
