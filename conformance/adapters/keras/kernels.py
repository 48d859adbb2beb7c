"""Which kernel a Keras 3 recurrent layer runs, observed through Keras' own code.

`observe(keras, fn)` runs ``fn()`` with the backend's RNN module instrumented (only wrappers
that record and call through: nothing is changed): every call of the backend's ``cudnn_ok``
(with its result), of its cuDNN kernels (``_cudnn_lstm``, ``_cudnn_gru`` ...), of its
non-cuDNN fused fallbacks (torch backend ``_fallback_lstm`` / ``_fallback_gru``) and of the
generic step loop ``keras.src.backend.rnn``. The kernel that ran is then

    "cuDNN"                  a cuDNN kernel was entered and returned
    "fallback_lstm/gru"      the torch backend's own fused loop (no mask, no cuDNN)
    "fused <backend> lstm/gru"  the backend's ``lstm`` / ``gru`` returned through none of the
                             above: e.g. the JAX backend's ``gru``, a ``lax.scan`` loop on CPU
    "generic RNN loop"       the backend-independent step loop (``backend.rnn``)

The JAX backend's cuDNN kernel is ``jax.experimental.rnn.lstm``, which its ``lstm`` imports at
call time (``from jax.experimental.rnn import lstm``; only after ``cudnn_ok`` holds, i.e. on a
GPU): `observe` wraps that module attribute too, so it counts as the cuDNN kernel. With each
cuDNN kernel call `observe` also keeps evidence that cuDNN itself was dispatched
(``record["cudnn_evidence"]``: True / False / None = could not tell): on JAX, the lowering of
the same call holds the cuDNN RNN custom call (``cudnn_rnn``, jaxlib gpu_rnn); on torch,
``torch.backends.cudnn.is_acceptable(inputs)`` -- the test ATen's ``lstm`` / ``gru`` make before
dispatching ``torch._VF.lstm`` / ``gru`` to ``_cudnn_rnn``. A kernel entered with evidence False
is not named "cuDNN".

`gpu_eligible(keras, layer)`: what the same ``cudnn_ok`` says for this layer's arguments when
the backend's GPU probe (``_is_gpu_available`` / ``_is_cuda_cudnn_available``) is made to answer
True -- i.e. the decision Keras would take on a machine with a GPU, computed by its own code on
CPU. The layer-level conditions come first (keras/src/layers/rnn/lstm.py, gru.py ``inner_loop``):
``use_cudnn in ("auto", True)`` and ``recurrent_dropout == 0``; a masked call never reaches
cuDNN on the JAX and torch backends (``lstm``/``gru`` raise NotImplementedError on any mask), on
the TF backend only when the mask is right-padded (``_assert_valid_mask`` raises otherwise).
"""
from __future__ import annotations

import contextlib
import importlib

KERNELS = ("_cudnn_lstm", "_cudnn_gru", "_fallback_lstm", "_fallback_gru")
JAX_CUDNN_LSTM = "jax.experimental.rnn.lstm"  # the JAX backend's cuDNN kernel (imported at call time)
CUDNN_KERNELS = ("_cudnn_lstm", "_cudnn_gru", JAX_CUDNN_LSTM)
JAX_CUDNN_CALL = "cudnn_rnn"  # custom-call target of jax's cuDNN RNN lowering (jaxlib gpu_rnn)
ENTRY_POINTS = ("lstm", "gru")  # keras.src.backend.lstm / gru: the layers' fused-path entry
GPU_PROBES = ("_is_gpu_available", "_is_cuda_cudnn_available")


def backend_module(keras):
    return importlib.import_module(f"keras.src.backend.{keras.backend.backend()}.rnn")


@contextlib.contextmanager
def _patched(obj, name, make):
    old = getattr(obj, name)
    setattr(obj, name, make(old))
    try:
        yield
    finally:
        setattr(obj, name, old)


def observe(keras, fn):
    """(fn(), record) with record = {"cudnn_ok": [results], "ran": [kernel names], "generic": n}."""
    mod = backend_module(keras)
    import keras.src.backend as kb

    record = {"cudnn_ok": [], "ran": [], "generic": 0, "fused": [], "cudnn_evidence": []}

    def recorder(name):
        def make(old):
            def wrapped(*a, **k):
                if name in CUDNN_KERNELS:
                    evidence = _cudnn_evidence(name, old, a, k)
                out = old(*a, **k)  # a NotImplementedError (no fused path) propagates unrecorded
                if name in CUDNN_KERNELS:  # recorded only once the kernel returned
                    record["cudnn_evidence"].append(evidence)
                if name == "cudnn_ok":
                    record["cudnn_ok"].append(bool(out))
                elif name == "rnn":
                    record["generic"] += 1
                elif name in ENTRY_POINTS:
                    record["fused"].append(name)
                else:
                    record["ran"].append(name)
                return out
            return wrapped
        return make

    with contextlib.ExitStack() as stack:
        for name in ("cudnn_ok",) + KERNELS:
            if hasattr(mod, name):
                stack.enter_context(_patched(mod, name, recorder(name)))
        stack.enter_context(_patched(kb, "rnn", recorder("rnn")))
        for name in ENTRY_POINTS:  # the layers call keras.src.backend.lstm / gru (bound at import)
            if hasattr(kb, name):
                stack.enter_context(_patched(kb, name, recorder(name)))
        if keras.backend.backend() == "jax":
            jrnn = _jax_rnn()
            if jrnn is not None and hasattr(jrnn, "lstm"):
                stack.enter_context(_patched(jrnn, "lstm", recorder(JAX_CUDNN_LSTM)))
        out = fn()
    return out, record


def _jax_rnn():
    try:
        return importlib.import_module("jax.experimental.rnn")
    except ImportError:  # the JAX backend's lstm then raises NotImplementedError itself
        return None


def _cudnn_evidence(name, kernel, args, kwargs):
    """True / False: whether this cuDNN-kernel call dispatches cuDNN itself; None: cannot tell."""
    try:
        if name == JAX_CUDNN_LSTM:  # lower the same call: its text names the cuDNN custom call
            import jax

            arrays, static = args[:5], dict(kwargs)
            n = len(arrays)
            rest = args[5:]
            text = jax.jit(lambda *xs: kernel(*xs[:n], *rest, **static)).lower(*arrays).as_text()
            return JAX_CUDNN_CALL in text
        import torch  # torch backend: the condition of ATen's lstm / gru for _cudnn_rnn

        x = args[0] if args else kwargs.get("inputs")
        return bool(torch.backends.cudnn.is_acceptable(x))
    except Exception:  # evidence is best effort: never change what the layer does
        return None


def kernel_name(record, backend=None):
    ran = record["ran"]
    evidence = record.get("cudnn_evidence", [])
    cudnn = [r for r in ran if r in CUDNN_KERNELS or r.startswith("_cudnn")]
    if cudnn:
        if False in evidence:
            why = (f"its lowering holds no {JAX_CUDNN_CALL!r} call" if cudnn[-1] == JAX_CUDNN_LSTM
                   else "torch.backends.cudnn.is_acceptable(inputs) is False")
            return f"{cudnn[-1].lstrip('_')} without cuDNN ({why})"
        return "cuDNN"
    if ran:
        return ran[-1].lstrip("_")
    if record.get("fused"):
        return f"fused {backend or 'backend'} {record['fused'][-1]}"
    return "generic RNN loop" if record["generic"] else "none observed"


def gpu_eligible(keras, layer, masked=False):
    """(eligible, why): would Keras pick cuDNN for `layer` (an LSTM / GRU / RNN layer, not a
    wrapper) on a machine with a GPU? Decided by the backend's own ``cudnn_ok`` with the GPU
    probe answering True, after the layer-level conditions."""
    cell = getattr(layer, "cell", None)
    if not hasattr(layer, "use_cudnn"):
        return False, f"{type(layer).__name__} has no cuDNN path (only keras.layers.LSTM / GRU do)"
    if layer.use_cudnn not in ("auto", True):
        return False, f"use_cudnn={layer.use_cudnn!r}"
    if cell.recurrent_dropout:
        return False, "recurrent_dropout > 0"
    b = keras.backend.backend()
    if masked and b in ("jax", "torch"):
        return False, f"a mask: the {b} backend's lstm/gru raise NotImplementedError on any mask"
    mod = backend_module(keras)
    kw = dict(unroll=layer.unroll, use_bias=cell.use_bias)
    if "GRU" in type(cell).__name__:
        if b == "jax":  # backend/jax/rnn.py gru never asks cudnn_ok: a lax.scan on every device
            return False, "the JAX backend has no cuDNN GRU (jax.experimental.rnn has only an LSTM)"
        if b == "tensorflow":
            kw["reset_after"] = cell.reset_after
        elif not cell.reset_after:
            return False, "reset_after=False"
    with contextlib.ExitStack() as stack:
        for probe in GPU_PROBES:
            if hasattr(mod, probe):
                stack.enter_context(_patched(mod, probe, lambda old: (lambda *a, **k: True)))
        ok = bool(mod.cudnn_ok(cell.activation, cell.recurrent_activation, **kw))
    return ok, "cudnn_ok" + ("" if ok else " is False for these arguments") + (
        " (TF: only if the mask is right-padded)" if ok and masked else "")


def decision(keras, layer, mask=None, kind="layer"):
    """{"gpu_eligible": bool, "why": str} for the first RNN layer of a path (a Bidirectional's
    forward layer)."""
    inner = getattr(layer, "forward_layer", layer)
    ok, why = gpu_eligible(keras, inner, masked=mask is not None)
    return {"gpu_eligible": ok, "why": why}
