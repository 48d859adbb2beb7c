"""Keras 3 ``LSTM`` / ``GRU`` on a CUDA GPU, torch and JAX backends, ``use_cudnn`` True and "auto":
the cuDNN kernel must really run where Keras' own decision says it can (a silent fallback
fails), and the outputs and final states must equal the float64 reference. Marked ``keras`` and
``gpu``: `rnn-conformance gpu` runs it once per Keras backend (KERAS_BACKEND=torch, =jax); on a
machine without CUDA every case skips with `conformance.core.devices.NO_CUDA`.

What Keras 3.15 does on a GPU (read in keras/src/layers/rnn/lstm.py, gru.py ``inner_loop`` and
keras/src/backend/{torch,jax}/rnn.py):
- the layer tries the backend's fused ``lstm`` / ``gru`` only when ``use_cudnn`` is "auto" / True
  and ``recurrent_dropout == 0``; a NotImplementedError from it means "no fused path": "auto" runs
  the generic step loop, True raises the ValueError "use_cudnn=True was specified, but cuDNN is
  not supported ...";
- torch backend: ``lstm`` / ``gru`` raise NotImplementedError on any mask (GRU also for
  reset_after=False); otherwise they run ``_cudnn_lstm`` / ``_cudnn_gru`` (``torch._VF.lstm`` /
  ``gru`` on CUDA tensors) when the inputs are on CUDA and ``cudnn_ok`` holds (tanh / sigmoid, no
  unroll, bias; go_backwards flips the inputs first and is eligible), else -- and on ANY exception
  of the cuDNN kernel (``except Exception: pass``) -- the fused ``_fallback_lstm`` / ``_gru``;
- JAX backend: ``lstm`` raises NotImplementedError on a mask or when ``cudnn_ok`` fails (which
  needs ``jax.default_backend() == "gpu"``), else runs ``jax.experimental.rnn.lstm`` (cuDNN;
  go_backwards eligible); ``gru`` never asks ``cudnn_ok``: a ``lax.scan`` on every device (there
  is no cuDNN GRU in JAX), so GRU "auto" runs it and GRU use_cudnn=True accepts it (finding
  keras-use-cudnn-true-silent-fallback).

Cases: LSTM and GRU (reset_after=True), use_cudnn True and "auto", float32, one seeded reference
layer (random weights, nonzero initial state) loaded into the layer, inputs converted by the
backend (Keras puts them on the GPU), inference mode. Configurations: the cuDNN-friendly base
(tanh / sigmoid, no dropout, no mask, no unroll, forward, bias; return_sequences and
return_state), return_sequences=False, go_backwards (both eligible by ``cudnn_ok``), and two
that no backend runs on cuDNN: recurrent_dropout=0.5 (inactive at inference, so the result is
still the reference's) and a right-padded mask.

Per case, with Keras' own decision ``kernels.gpu_eligible`` (its ``cudnn_ok`` and layer rules):
- eligible: the kernel observed (``kernels.observe``: a backend cuDNN kernel entered and returned,
  with evidence that cuDNN was dispatched -- on torch also ``aten::_cudnn_rnn`` in the profiler)
  is cuDNN, else "silent fallback: use_cudnn=... ran <kernel>"; and outputs / final states equal
  the reference within ``tolerance("float32", steps, fan_in)``;
- not eligible, use_cudnn=True: the documented ValueError (running anything is a silent fallback);
- not eligible, "auto": the layer runs, does not claim cuDNN, and equals the reference.
The comparison runs in full float32: TF32 is turned off for the call (torch's cuDNN RNN allows
TF32 by default, and so does jax.experimental.rnn.lstm under the default matmul precision), as
recorded in each case's ``reason``; TF32 does not change which kernel runs.
"""
from __future__ import annotations

import contextlib
import re

import numpy as np
import pytest

import reference
from reference import Result, layouts

from conformance.adapters.keras import kernels as kk
from conformance.checks.parity import max_abs_errors
from conformance.core.adapter_strategies import case_shape, rounded
from conformance.core.devices import no_cuda
from conformance.core.frameworks import installed_version, require
from conformance.core.strategies import Case
from conformance.core.tolerances import tolerance

pytestmark = [pytest.mark.keras, pytest.mark.gpu, pytest.mark.framework("keras")]

SEED = 11
T, B, I, H = 6, 3, 4, 5
LENGTHS = (6, 4, 2)  # right padding, no fully masked row
BACKENDS = ("torch", "jax")
CONFIGS = {  # name -> layer / call options over the base (return_sequences and return_state on)
    "base": {},
    "return_sequences=False": {"return_sequences": False},
    "go_backwards": {"go_backwards": True},
    "recurrent_dropout=0.5": {"recurrent_dropout": 0.5},
    "mask (right-padded)": {"mask": True},
}
GRID = [(c, f, u) for c in ("lstm", "gru") for f in CONFIGS for u in (True, "auto")]


# ---------------------------------------------------------------------------------------- skips

def gpu_skip_reason(keras):
    """None when this process can run the GPU cases, else the skip reason."""
    backend = keras.backend.backend()
    if backend not in BACKENDS:
        why = (f"the {backend} backend is not covered: the GPU run covers the torch and jax backends; "
               f"the TF backend is not on the GPU machine")
        if backend == "tensorflow":
            import tensorflow as tf

            if not tf.config.list_physical_devices("GPU"):
                return no_cuda(f"no GPU visible to TensorFlow; and {why}")
        return why
    if backend == "torch":
        import torch

        if not torch.cuda.is_available():
            return no_cuda("torch.cuda.is_available() is False; Keras' torch cuDNN path not exercised")
        if not torch.backends.cudnn.is_available():
            return "torch sees CUDA but torch.backends.cudnn.is_available() is False: no cuDNN to test"
        return None
    import jax

    from conformance.adapters.jax.device import gpus as jax_gpus

    gpus = jax_gpus()
    if not gpus:
        return no_cuda("no GPU visible to JAX: jax.devices('gpu') fails; Keras' JAX cuDNN path not exercised")
    if jax.default_backend() != "gpu":
        return (f"JAX sees {len(gpus)} GPU(s) but jax.default_backend() is {jax.default_backend()!r}: the Keras "
                f"JAX backend asks for cuDNN only when it is 'gpu'")
    return None


# ----------------------------------------------------------------------------------- precision

@contextlib.contextmanager
def full_float32(backend):
    """No TF32 inside (restored after); yields what was set, for the record."""
    if backend == "jax":
        import jax

        with jax.default_matmul_precision("highest"):
            yield "jax.default_matmul_precision('highest') (no TF32 in cuDNN or XLA dots)"
        return
    if backend != "torch":
        yield "backend default precision"
        return
    from conformance.adapters.torch.common import ieee_float32

    with ieee_float32() as what:
        yield what


# ------------------------------------------------------------------------------------ the case

def make_case(cell, seed=SEED):
    return Case(cell=cell, steps=T, batch=B, input_size=I, hidden_size=H, initial_state=True, seed=seed)


def build_layer(keras, cell, config, use_cudnn, w):
    """The Keras layer of `config`, built, with the reference weights `w` set (names checked)."""
    cfg = CONFIGS[config]
    kw = dict(return_sequences=cfg.get("return_sequences", True), return_state=True, use_cudnn=use_cudnn,
              go_backwards=cfg.get("go_backwards", False), dtype="float32")
    if cfg.get("recurrent_dropout"):
        kw.update(recurrent_dropout=cfg["recurrent_dropout"], seed=SEED)
    if cell == "lstm":
        layer, d = keras.layers.LSTM(H, **kw), layouts.to_keras_lstm(w, dtype="float32")
    else:
        layer, d = keras.layers.GRU(H, reset_after=True, **kw), layouts.to_keras_gru(w, dtype="float32")
    layer.build((None, T, I))
    names = [str(getattr(v, "path", v.name)).split("/")[-1].split(":")[0] for v in layer.cell.weights]
    if names != list(d):
        raise RuntimeError(f"Keras weights {names} differ from the layout {list(d)}")
    layer.cell.set_weights(list(d.values()))
    return layer


def device_of(keras, tensor):
    """'cuda' / 'cpu' / ...: where the backend put `tensor`."""
    b = keras.backend.backend()
    if b == "torch":
        return tensor.device.type
    if b == "jax":
        plats = {d.platform for d in tensor.devices()}
        return "cuda" if plats == {"gpu"} else ",".join(sorted(plats))
    return "unknown"


def repro(backend, cell, config, use_cudnn, seed=SEED):
    cfg = CONFIGS[config]
    masked = bool(cfg.get("mask"))
    args = f"{H}, return_sequences={cfg.get('return_sequences', True)}, return_state=True, use_cudnn={use_cudnn!r}"
    if cfg.get("go_backwards"):
        args += ", go_backwards=True"
    if cfg.get("recurrent_dropout"):
        args += f", recurrent_dropout={cfg['recurrent_dropout']}, seed={SEED}"
    if cell == "gru":
        args += ", reset_after=True"
    ref_kw = (f", lengths=np.array({list(LENGTHS)}), padding='repeat_output'" if masked else "") + (
        ", go_backwards=True" if cfg.get("go_backwards") else "")
    inits = "[h0[0].astype('float32')" + (", c0[0].astype('float32')]" if cell == "lstm" else "]")
    y_ref = "want.y" if cfg.get("return_sequences", True) else "want.y[-1]"
    y_got = "out[0].swapaxes(0, 1)" if cfg.get("return_sequences", True) else "out[0]"
    return "\n".join([
        "import os; os.environ['KERAS_BACKEND'] = " + repr(backend) + "  # run from the checkout root",
        "import numpy as np, keras, reference",
        "from conformance.adapters.keras import kernels as kk",
        "from conformance.core.adapter_strategies import rounded",
        "from conformance.core.strategies import Case",
        f"case = Case(cell={cell!r}, steps={T}, batch={B}, input_size={I}, hidden_size={H}, seed={seed})",
        "stack, x, h0, c0 = rounded(case)  # float32-rounded, held in float64",
        f"layer = keras.layers.{cell.upper()}({args})",
        f"layer.build((None, {T}, {I}))",
        f"layer.cell.set_weights(list(reference.layouts.to_keras_{cell}(stack[0][0], dtype='float32').values()))",
        "mask = " + (f"np.arange({T})[None, :] < np.array({list(LENGTHS)})[:, None]" if masked else "None"),
        "out, rec = kk.observe(keras, lambda: layer(x.swapaxes(0, 1).astype('float32'), "
        f"initial_state={inits}, training=False, mask=mask))",
        "print('kernel:', kk.kernel_name(rec, keras.backend.backend()), rec)",
        "out = [keras.ops.convert_to_numpy(o) for o in out]",
        f"want = reference.run(stack, x, h0, c0{ref_kw})",
        f"print('max |y - ref|:', np.abs({y_got} - {y_ref}).max(), 'max |h - ref|:', np.abs(out[1] - want.h_n[0]).max())",
    ])


def _error_line(e):
    lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", str(e)).splitlines() if ln.strip()]
    return f"{type(e).__name__}: " + (next((ln for ln in lines if "cuDNN" in ln), lines[0] if lines else ""))[:200]


def run_case(keras, cell, config, use_cudnn, seed=SEED):
    """Run one case on whatever device the backend uses and compare it with the reference.

    Returns a dict: kernel (observed; on torch with the profiler's ATen kernel), cudnn (proven
    cuDNN run), raised (the ValueError line, or None), eligible / why (Keras' own decision),
    device (of the inputs), errors ({y, h_n, c_n}), err, tol, precision."""
    backend = keras.backend.backend()
    case = make_case(cell, seed)
    stack, x, h0, c0 = rounded(case)
    cfg = CONFIGS[config]
    masked = bool(cfg.get("mask"))
    layer = build_layer(keras, cell, config, use_cudnn, stack[0][0])
    conv = lambda a: keras.ops.convert_to_tensor(np.ascontiguousarray(a, np.float32))  # noqa: E731
    xt = conv(np.swapaxes(x, 0, 1))
    inits = [conv(h0[0])] + ([conv(c0[0])] if cell == "lstm" else [])
    mask = None
    if masked:
        mask = keras.ops.convert_to_tensor(np.arange(T)[None, :] < np.array(LENGTHS)[:, None])
    out = dict(device=device_of(keras, xt), raised=None, kernel=None, cudnn=False, errors=None, err=None)
    out["eligible"], out["why"] = kk.gpu_eligible(keras, layer, masked=masked)
    steps, fan_in = case_shape(stack, T)
    out["tol"] = tolerance("float32", steps, fan_in)

    def call():
        return layer(xt, initial_state=inits, training=False, mask=mask)

    with full_float32(backend) as precision:
        out["precision"] = precision
        try:
            if backend == "torch":
                from conformance.adapters.torch.common import kernel_ran

                (res, rec), aten = kernel_ran(lambda: kk.observe(keras, call))
            else:
                (res, rec), aten = kk.observe(keras, call), None
        except ValueError as e:
            out["raised"] = _error_line(e)
            return out
    kernel = kk.kernel_name(rec, backend)
    out["cudnn"] = kernel == "cuDNN" and aten in (None, "cuDNN")
    out["kernel"] = kernel + ("" if aten is None else f" (torch profiler: {aten})")
    res = [np.asarray(keras.ops.convert_to_numpy(r), np.float64) for r in res]
    y, h_n, c_n = res[0], res[1][None], (res[2][None] if cell == "lstm" else None)
    ref_kw = dict(go_backwards=bool(cfg.get("go_backwards")))
    if masked:
        ref_kw.update(lengths=np.array(LENGTHS), padding="repeat_output")  # Keras: previous output, state carried
    want = reference.run(stack, x, h0, c0, **ref_kw)
    if cfg.get("return_sequences", True):
        got = Result(y=np.swapaxes(y, 0, 1), h_n=h_n, c_n=c_n)
    else:  # the last output only
        got, want = Result(y=y[None], h_n=h_n, c_n=c_n), Result(y=want.y[-1:], h_n=want.h_n, c_n=want.c_n)
    out["errors"] = max_abs_errors(got, want)
    out["err"] = max(out["errors"].values())
    return out


# ----------------------------------------------------------------------------------- the tests

@pytest.mark.parametrize("cell, config, use_cudnn", GRID, ids=[f"{c}-{f}-use_cudnn={u}" for c, f, u in GRID])
def test_cudnn_on_gpu(cell, config, use_cudnn, conformance_record):
    keras = require("keras")
    backend = keras.backend.backend()
    name = f"keras.layers.{cell.upper()}"
    rp = repro(backend, cell, config, use_cudnn)
    rec = dict(adapter=name, framework="keras", framework_version=installed_version("keras"), backend=backend,
               device="cuda", feature=f"GPU kernel and parity: {config}, use_cudnn={use_cudnn}", seed=SEED, repro=rp)
    skip = gpu_skip_reason(keras)
    if skip:
        conformance_record(**rec, reason=skip)
        pytest.skip(skip)
    r = run_case(keras, cell, config, use_cudnn)
    where = (f"{name}({config}, use_cudnn={use_cudnn!r}) on the {backend} backend, inputs on {r['device']}, "
             f"seed {SEED}; Keras' own decision: {'cuDNN' if r['eligible'] else 'no cuDNN'} ({r['why']})")
    kernel = r["kernel"] or f"raised {r['raised']}"
    rec.update(kernel=kernel, tolerance=r["tol"], reason=f"{where}; {r['precision']}")
    if r["err"] is not None:
        rec["max_abs_err"] = r["err"]
    conformance_record(**rec)

    problems = []
    if r["device"] != "cuda":
        problems.append(f"the inputs are on {r['device']!r}, not on the GPU")
    if r["raised"]:
        if not (use_cudnn is True and not r["eligible"]):
            problems.append(f"raised {r['raised']}" + (
                " although Keras' own cudnn_ok accepts this configuration" if r["eligible"]
                else "; use_cudnn='auto' must fall back to the default implementation"))
    elif r["eligible"] and not r["cudnn"]:
        problems.append(f"silent fallback: use_cudnn={use_cudnn!r} ran {r['kernel']}")
    elif not r["eligible"] and use_cudnn is True:
        problems.append(f"silent fallback: use_cudnn=True ran {r['kernel']} instead of raising the documented "
                        f"ValueError (cuDNN cannot run this: {r['why']})")
    elif not r["eligible"] and r["cudnn"]:
        problems.append(f"use_cudnn='auto' claims cuDNN ({r['kernel']}) for a configuration Keras says it cannot run")
    if r["errors"] is not None and r["err"] > r["tol"]:
        errs = ", ".join(f"{k} {v:.3g}" for k, v in r["errors"].items())
        problems.append(f"differs from the float64 reference: {errs} > tolerance {r['tol']:.3g} ({r['precision']})")
    assert not problems, f"{where}:\n- " + "\n- ".join(problems) + f"\nrepro:\n{rp}"
