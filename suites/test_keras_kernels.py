"""Which kernel a Keras 3 LSTM / GRU runs, and which one Keras would choose with a GPU, per
configuration (dropout, recurrent_dropout, use_cudnn, unroll, mask, go_backwards, activation,
use_bias, GRU reset_after), recorded in the ``kernel`` field of every result. Marked ``keras``.

Observed through Keras' own code (`conformance.adapters.keras.kernels`): on CPU, the kernel
that actually ran (``observe``: the backend's cuDNN kernels, the torch backend's fused
fallbacks, the JAX backend's fused GRU scan, or the generic step loop); with a GPU, the decision
of the backend's ``cudnn_ok`` with its GPU probe answering True (``gpu_eligible``).

One factor at a time from the cuDNN-friendly base (tanh/sigmoid, no dropout, no unroll, no
mask, forward, bias, GRU reset_after=True), each under use_cudnn "auto", True and False.
Properties (the documented contract, keras/src/layers/rnn/lstm.py and gru.py):
- ``use_cudnn="auto"`` "will fallback to the default implementation" when cuDNN is not
  feasible: the layer runs;
- ``use_cudnn=True`` asks for cuDNN: on this CPU machine the layer must raise (the ValueError
  "use_cudnn=True was specified, but cuDNN is not supported ...") -- running another kernel
  instead is a silent fallback (DESIGN.md "GPU");
- ``use_cudnn=False``: the default implementation, the generic step loop;
- TensorFlow backend: the GPU decision equals the documented requirements (activation tanh,
  recurrent_activation sigmoid, recurrent_dropout == 0, unroll False, use_bias True, GRU
  reset_after True, a mask only if right-padded -- the base mask here is).
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from conformance.adapters.keras import strategies as KS
from conformance.adapters.keras import kernels as kk
from conformance.core.frameworks import require

pytestmark = [pytest.mark.keras, pytest.mark.framework("keras")]
SEED = 3
RIGHT_PADDED = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool)
FACTORS = {  # name -> constructor / call overrides of the base
    "base": {},
    "dropout=0.5": {"dropout": 0.5},
    "recurrent_dropout=0.5": {"recurrent_dropout": 0.5},
    "unroll": {"unroll": True},
    "mask (right-padded)": {"mask": True},
    "go_backwards": {"go_backwards": True},
    "activation=relu": {"activation": "relu"},
    "use_bias=False": {"use_bias": False},
    "reset_after=False": {"reset_after": False},
}
GRID = [(c, f, u) for c in ("lstm", "gru") for f in FACTORS for u in ("auto", True, False)
        if not (c == "lstm" and f == "reset_after=False")]


def documented_cudnn(cell, cfg):
    """The cuDNN requirements listed in the LSTM / GRU docstrings, evaluated on `cfg`."""
    return (cfg.get("activation", "tanh") == "tanh" and not cfg.get("recurrent_dropout") and not cfg.get("unroll")
            and cfg.get("use_bias", True) and (cell == "lstm" or cfg.get("reset_after", True)))


def build(keras, cell, factor, use_cudnn):
    cfg = dict(FACTORS[factor])
    masked = cfg.pop("mask", False)
    cls = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
    layer = cls(3, return_sequences=True, use_cudnn=use_cudnn, seed=SEED, **cfg)
    return layer, RIGHT_PADDED if masked else None


def repro(cell, factor, use_cudnn):
    cfg = {k: v for k, v in FACTORS[factor].items() if k != "mask"}
    args = "".join(f", {k}={v!r}" for k, v in cfg.items())
    mask = ", mask=np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool)" if "mask" in FACTORS[factor] else ""
    return "\n".join([
        "# KERAS_BACKEND=<backend> python", "import numpy as np, keras",
        "from conformance.adapters.keras import kernels as kk",
        f"layer = keras.layers.{cell.upper()}(3, return_sequences=True, use_cudnn={use_cudnn!r}, seed={SEED}{args})",
        f"x = np.random.default_rng({SEED}).normal(size=(2, 4, 5)).astype('float32')",
        f"_, rec = kk.observe(keras, lambda: layer(x, training=True{mask}))",
        "print(kk.kernel_name(rec), kk.gpu_eligible(keras, layer, masked=" + str(bool(mask)) + "))",
    ])


@pytest.mark.parametrize("cell, factor, use_cudnn", GRID, ids=[f"{c}-{f}-use_cudnn={u}" for c, f, u in GRID])
def test_kernel_decision(cell, factor, use_cudnn, conformance_record):
    keras = require("keras")
    backend = keras.backend.backend()
    layer, mask = build(keras, cell, factor, use_cudnn)
    x = np.random.default_rng(SEED).normal(size=(2, 4, 5)).astype("float32")
    try:
        _, rec = kk.observe(keras, lambda: layer(x, training=True, mask=mask))
        ran, raised = kk.kernel_name(rec, backend), None
    except ValueError as e:  # Keras wraps the message: keep the line that says why
        lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", str(e)).splitlines() if ln.strip()]
        ran, raised = None, "ValueError: " + next((ln for ln in lines if "cuDNN" in ln), lines[0])[:160]
    eligible, why = kk.gpu_eligible(keras, layer, masked=mask is not None)
    kernel = f"CPU: {ran or raised}; with a GPU: {'cuDNN' if eligible else 'no cuDNN'} ({why})"
    rp = repro(cell, factor, use_cudnn)
    KS.record(conformance_record, adapter=f"keras.layers.{cell.upper()}", backend=backend,
              feature=f"kernel decision: {factor}, use_cudnn={use_cudnn}", kernel=kernel, seed=SEED, repro=rp,
              reason=kernel)
    where = f"keras.layers.{cell.upper()}({factor}, use_cudnn={use_cudnn!r}) on the {backend} backend (CPU)"
    if use_cudnn is True:
        assert raised, f"{where} ran {ran!r} instead of cuDNN or raising: a silent fallback\nrepro:\n{rp}"
    else:
        assert not raised, f"{where} raised {raised}; use_cudnn={use_cudnn!r} must fall back\nrepro:\n{rp}"
    if use_cudnn is False:
        assert ran == "generic RNN loop", f"{where} ran {ran!r}, not the default (generic) loop\nrepro:\n{rp}"
    if backend == "tensorflow" and use_cudnn != False:  # noqa: E712 -- True and "auto"
        want = documented_cudnn(cell, FACTORS[factor])
        assert eligible == want, (f"{where}: with a GPU Keras would {'' if eligible else 'not '}use cuDNN ({why}); "
                                  f"the documented requirements say {want}\nrepro:\n{rp}")
