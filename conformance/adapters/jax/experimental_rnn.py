"""``jax.experimental.rnn``: ``lstm`` (cuDNN, CUDA only) and ``lstm_ref`` (its pure-JAX reference).

Both take batch-first x (B, T, I), h_0 / c_0 (L*D, B, H), int32 ``seq_lengths`` (B,) (all T
when the case has no lengths) and one flat weight vector in cuDNN's layout: for every
pseudo-layer k = l*D + d in turn ``W_ih`` (4H, in) and ``W_hh`` (4H, H), then for every k
``b_ih`` and ``b_hh`` (4H,); gates i, f, g, o as torch (`pack_weights`; ``lstm_ref`` reads the
vector back through jax's own ``unpack_lstm_weights``, so the layout is checked on CPU too).
float32. ``vjp`` differentiates with ``jax.vjp`` w.r.t. the flat vector, x, h_0 and c_0.

``lstm_ref`` (CPU): zero outputs at padded steps, h_n / c_n at each row's last valid step,
the reverse direction reversed within each row's length (reference policy "zero_output").
``lstm`` (device "cuda"): raises `DeviceUnavailable` unless JAX sees a CUDA GPU, and each
jitted function's lowered computation must hold cuDNN's RNN custom call (checked on its first
call: one function per shape, so a fallback can never pass as a cuDNN run). Its declared features mirror ``lstm_ref`` (which the JAX docs say
it matches); they are unverified on a machine without a GPU.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from reference import Grads, Result

from conformance.adapters.base import BaseAdapter, DeviceUnavailable
from conformance.adapters.jax.device import gpus as jax_gpus, on_device
from conformance.core.devices import no_cuda

NO_GPU = no_cuda("no GPU visible to JAX: jax.devices('gpu') fails; jax.experimental.rnn.lstm is cuDNN-only "
                 "and is not exercised; lstm_ref, its CPU reference, is a separate path")
CUDNN_CALL = "cudnn_rnn"  # custom-call target of jax's cuDNN RNN lowering (jaxlib gpu_rnn)


class SilentFallback(RuntimeError):
    """The computation asked for cuDNN but its lowering holds no cuDNN RNN call."""


def pack_weights(stack):
    """Canonical stack -> cuDNN's flat float32 weight vector (biases absent become zeros)."""
    mats, biases = [], []
    for row in stack:
        for w in row:
            G = w.W.shape[0]
            mats += [w.W, w.R]
            biases += [np.zeros(G) if w.b_x is None else w.b_x, np.zeros(G) if w.b_h is None else w.b_h]
    return np.concatenate([np.ravel(a) for a in mats + biases]).astype(np.float32)


def unpack_grads(stack, flat):
    """The flat gradient vector -> canonical weights' gradients (fields present in `stack`)."""
    flat = np.asarray(flat, np.float64)
    pos = 0

    def take(shape):
        nonlocal pos
        n = int(np.prod(shape))
        out = flat[pos:pos + n].reshape(shape)
        pos += n
        return out

    mats = [[(take(w.W.shape), take(w.R.shape)) for w in row] for row in stack]
    out = []
    for row, mrow in zip(stack, mats):
        grads = []
        for w, (dW, dR) in zip(row, mrow):
            db_x, db_h = take(w.W.shape[:1]), take(w.W.shape[:1])
            grads.append(replace(w, W=dW, R=dR, b_x=None if w.b_x is None else db_x,
                                 b_h=None if w.b_h is None else db_h))
        out.append(grads)
    return out


class JaxExperimentalLSTM(BaseAdapter):
    def __init__(self, info, *, device="cpu", dtype="float32"):
        super().__init__(info, device=device, dtype=dtype)
        self.cudnn = device == "cuda"
        self._jit = {}
        self._checked = set()  # jitted functions whose lowering was seen to hold the cuDNN call

    def check_device(self):
        if self.device != "cuda":
            return super().check_device()
        if not jax_gpus():
            raise DeviceUnavailable(NO_GPU)

    def forward(self, stack, x, h0=None, c0=None, lengths=None):
        return self._run(stack, x, h0, c0, lengths)[0]

    def vjp(self, stack, x, dy, dh_n=None, dc_n=None, h0=None, c0=None, lengths=None):
        return self._run(stack, x, h0, c0, lengths, cotangents=(dy, dh_n, dc_n))

    def kernel_of(self, stack, x, h0=None, c0=None, lengths=None):
        return "cuDNN" if self.cudnn else "lstm_ref (jax.lax.scan)"

    def function(self, I, H, L, D):
        """f(weights, x, h0, c0, seq_lengths) -> (y, h_n, c_n), batch-first x and y."""
        from jax.experimental import rnn

        if self.cudnn:
            return lambda w, x, h, c, s: rnn.lstm(x, h, c, w, s, I, H, L, 0.0, D == 2)

        def ref(w, x, h, c, s):
            W_ih, W_hh, b_ih, b_hh = rnn.unpack_lstm_weights(w, I, H, L, D == 2)
            return rnn.lstm_ref(x, h, c, W_ih, W_hh, b_ih, b_hh, s, I, H, L, 0.0, D == 2)

        return ref

    def _jitted(self, key, grad):
        import jax

        if (key, grad) not in self._jit:
            f = self.function(*key)
            if grad:
                def g(w, x, h, c, s, cot):
                    out, pull = jax.vjp(lambda *a: f(*a, s), w, x, h, c)
                    return out, pull(cot)
                self._jit[(key, grad)] = jax.jit(g)
            else:
                self._jit[(key, grad)] = jax.jit(f)
        return self._jit[(key, grad)]

    def _run(self, stack, x, h0, c0, lengths, cotangents=None):
        import jax
        import jax.numpy as jnp

        stack, x, h0, c0 = self.prepare(stack, x, h0, c0)
        lengths = self.checked_lengths(lengths, x.shape)
        T, B, I = x.shape
        L, D, H = len(stack), len(stack[0]), stack[0][0].hidden_size
        zeros = np.zeros((L * D, B, H), np.float32)
        args = [np.asarray(pack_weights(stack)), np.asarray(x.transpose(1, 0, 2)),
                np.asarray(zeros if h0 is None else h0), np.asarray(zeros if c0 is None else c0),
                np.asarray(np.full(B, T, np.int32) if lengths is None else lengths.astype(np.int32))]
        grad = cotangents is not None
        if grad:
            dy, dh_n, dc_n = cotangents
            f32 = lambda a, shape: np.zeros(shape, np.float32) if a is None else np.asarray(a, np.float32)  # noqa
            args.append((np.asarray(f32(dy, (T, B, D * H)).transpose(1, 0, 2)), np.asarray(f32(dh_n, zeros.shape)),
                         np.asarray(f32(dc_n, zeros.shape))))
        fn = self._jitted((I, H, L, D), grad)
        with on_device(self.device, self.info.name):  # lstm_ref on the CPU even beside a GPU; no TF32 there
            args = [jax.tree_util.tree_map(jnp.asarray, a) for a in args]
            if self.cudnn and ((I, H, L, D), grad) not in self._checked:  # lowering costs: once per function
                self._check_cudnn(fn, args)
                self._checked.add(((I, H, L, D), grad))
            out = fn(*args)
        (y, h_n, c_n), back = (out, None) if not grad else out
        result = Result(y=np.asarray(y).transpose(1, 0, 2), h_n=np.asarray(h_n), c_n=np.asarray(c_n))
        if not grad:
            return result, None
        dw, dx, dh0, dc0 = jax.tree_util.tree_map(np.asarray, back)
        return result, Grads(dx=dx.transpose(1, 0, 2), dh0=dh0, dc0=dc0, weights=unpack_grads(stack, dw))

    def _check_cudnn(self, fn, args):
        text = fn.lower(*args).as_text()
        if CUDNN_CALL not in text:
            raise SilentFallback(f"{self.info.name}: the lowered computation holds no {CUDNN_CALL!r} custom call")


def make(info, *, device="cpu", dtype="float32"):
    """Factory for jax.experimental.rnn.lstm_ref (CPU) and jax.experimental.rnn.lstm (CUDA)."""
    return JaxExperimentalLSTM(info, device=device, dtype=dtype)
