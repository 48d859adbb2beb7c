"""Keras 3 ``LSTM`` / ``GRU`` on the three backends, same weights, inputs, masks and initial
states: one subprocess per backend (``KERAS_BACKEND=b python -m conformance.adapters.keras.cross_backend
IN.npz OUT.npz``) computes every configuration in one go; suites/test_keras_cross_backend.py
compares the backends pairwise and with the reference.

Configurations (`CONFIGS`): LSTM, GRU(reset_after=True), GRU(reset_after=False) x unroll x
go_backwards x zero_output_for_mask, each on `keras_strategies.STEP_MASK` (a full row, right
padding, leading masked steps, an inner gap) with nonzero initial states, ``mask=``,
``training=False``.

`KNOWN` holds the known backend deviations as data: (backend, configuration values, what
happens, the findings-registry id of its root cause, reason); the suite expects exactly those and nothing else.

Files: IN holds ``configs`` (JSON) and, per configuration id, ``<id>/x`` (B, T, F),
``<id>/mask`` (B, T), ``<id>/h0``, ``<id>/c0`` (LSTM), ``<id>/w/<name>`` (Keras layout); OUT holds
``backend``, ``keras``, and per id either ``<id>/y`` (B, T, u), ``<id>/h``, ``<id>/c`` or ``<id>/error``.
Imports only NumPy at module level (the main process need not import Keras).
"""
from __future__ import annotations

import importlib.util
import itertools
import json
import os
import subprocess
import sys

import numpy as np

from conformance.core import paths
from conformance.core.frameworks import exception_line

BACKENDS = ("tensorflow", "jax", "torch")
SEED = 23
VERSIONS = ">=3.15,<3.16"


def config_id(c):
    cell = c["cell"] if c["cell"] == "lstm" else f"gru(reset_after={c['reset_after']})"
    return (f"{cell}-unroll={c['unroll']}-go_backwards={c['go_backwards']}"
            f"-zero_output_for_mask={c['zero_output_for_mask']}")


CONFIGS = [dict(cell=cell, reset_after=ra, unroll=u, go_backwards=g, zero_output_for_mask=z)
           for (cell, ra), u, g, z in itertools.product((("lstm", None), ("gru", True), ("gru", False)),
                                                        (False, True), (False, True), (False, True))]

# Known deviations (keras 3.15): "crash" or "deviates" (outputs differ from the documented
# policy and from the conforming backends); every backend and configuration not listed conforms.
KNOWN = [
    dict(backend="torch", when=dict(unroll=True, go_backwards=True), outcome="crash",
         finding="keras-torch-unroll-go-backwards-mask-crash",
         reason="torch backend, unroll + go_backwards + mask: AttributeError from torch.flip on the tuple of "
                "torch.unbind (keras/src/backend/torch/rnn.py)"),
    dict(backend="tensorflow", when=dict(unroll=True, go_backwards=True, zero_output_for_mask=True),
         outcome="deviates",
         finding="keras-tf-unroll-go-backwards-zero-output-unreversed-mask",
         reason="TF backend, unroll + go_backwards + zero_output_for_mask: outputs (kept reversed) zeroed with the "
                "mask in original order (keras/src/backend/tensorflow/rnn.py): valid steps zeroed, masked kept"),
    dict(backend="jax", when=dict(unroll=True, zero_output_for_mask=True), outcome="deviates",
         finding="keras-jax-unroll-ignores-zero-output",
         reason="JAX backend, unroll: zero_output_for_mask ignored, masked steps repeat the previous output "
                "(keras/src/backend/jax/rnn.py)"),
    dict(backend="jax", when=dict(unroll=False, zero_output_for_mask=False), outcome="deviates",
         finding="keras-jax-masked-output-is-carried-state",
         reason="JAX backend, unroll=False: a masked step outputs the carried state states[0], so leading masked "
                "steps give the initial state h0 instead of zeros (keras/src/backend/jax/rnn.py)"),
]


def known(config, backend, keras_version):
    """The KNOWN entry for (config, backend) at this Keras version, or None."""
    from packaging.specifiers import SpecifierSet

    if keras_version is None or not SpecifierSet(VERSIONS).contains(keras_version, prereleases=True):
        return None
    return next((k for k in KNOWN if k["backend"] == backend
                 and all(config[key] == v for key, v in k["when"].items())), None)


def available(backend):
    """None if `backend` can run here, else the reason it cannot."""
    for mod in ("keras", backend):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed"
    return None


# ----------------------------------------------------------------------------- inputs

def case_of(config):
    """(stack, x, h0, c0, valid) in float64 (float32-rounded), time-major, canonical layout."""
    from conformance.core.adapter_strategies import rounded
    from conformance.adapters.keras.strategies import STEP_MASK
    from conformance.core.strategies import Case

    case = Case(cell=config["cell"], steps=5, batch=4, input_size=3, hidden_size=3, initial_state=True,
                reset_after=bool(config["reset_after"]) if config["cell"] == "gru" else True, seed=SEED)
    stack, x, h0, c0 = rounded(case)
    return stack, x, h0, c0, STEP_MASK


def write_inputs(path):
    """Every configuration's inputs and Keras-layout weights into `path` (.npz)."""
    from reference import layouts

    arrays = {"configs": np.array(json.dumps(CONFIGS))}
    for c in CONFIGS:
        cid = config_id(c)
        stack, x, h0, c0, valid = case_of(c)
        w = stack[0][0]
        keras_w = layouts.to_keras_lstm(w, dtype="float32") if c["cell"] == "lstm" else layouts.to_keras_gru(
            w, dtype="float32")
        arrays[f"{cid}/x"] = np.swapaxes(x, 0, 1).astype(np.float32)
        arrays[f"{cid}/mask"] = np.ascontiguousarray(valid.T)
        arrays[f"{cid}/h0"] = h0[0].astype(np.float32)
        if c0 is not None:
            arrays[f"{cid}/c0"] = c0[0].astype(np.float32)
        for name, a in keras_w.items():
            arrays[f"{cid}/w/{name}"] = np.asarray(a, np.float32)
    np.savez(path, **arrays)


# ----------------------------------------------------------------------------- one backend

def layer_kwargs(c):
    kw = dict(return_sequences=True, return_state=True, unroll=c["unroll"], go_backwards=c["go_backwards"],
              zero_output_for_mask=c["zero_output_for_mask"])
    return {**kw, "reset_after": c["reset_after"]} if c["cell"] == "gru" else kw


def layer_src(c, units):
    args = ", ".join(f"{k}={v!r}" for k, v in layer_kwargs(c).items())
    return f"keras.layers.{c['cell'].upper()}({units}, {args})"


def compute(keras, c, data, cid):
    """Outputs of one configuration: {"y", "h", "c"} (NumPy)."""
    x = data[f"{cid}/x"]
    weights = [data[k] for k in sorted(data.files) if k.startswith(f"{cid}/w/")]
    names = sorted(k.split("/")[-1] for k in data.files if k.startswith(f"{cid}/w/"))
    units = data[f"{cid}/h0"].shape[-1]
    layer = getattr(keras.layers, c["cell"].upper())(units, **layer_kwargs(c))
    layer.build(x.shape)
    got = [str(getattr(v, "path", v.name)).split("/")[-1] for v in layer.cell.weights]
    if sorted(got) != names:
        raise RuntimeError(f"{cid}: Keras weights {got} differ from the inputs' {names}")
    layer.cell.set_weights([weights[names.index(n)] for n in got])
    init = [data[f"{cid}/h0"]] + ([data[f"{cid}/c0"]] if c["cell"] == "lstm" else [])
    out = layer(x, mask=data[f"{cid}/mask"], initial_state=init, training=False)
    out = [np.asarray(keras.ops.convert_to_numpy(o)) for o in out]
    return dict(zip(("y", "h", "c"), out))


def exc_line(e):
    """The exception's type and message (Keras' "Exception encountered when calling" wrapper and
    terminal colour codes left out)."""
    return exception_line(e, skip=("Exception encountered when calling",))


def main(argv):
    inp, outp = argv
    import keras

    data = np.load(inp)
    results = {"backend": np.array(keras.backend.backend()), "keras": np.array(keras.__version__)}
    for c in json.loads(str(data["configs"])):
        cid = config_id(c)
        try:
            results.update({f"{cid}/{k}": v for k, v in compute(keras, c, data, cid).items()})
        except Exception as e:  # a crash is a result
            results[f"{cid}/error"] = np.array(exc_line(e))
    np.savez(outp, **results)


def run_backend(backend, inputs, out, timeout=300):
    """Run every configuration on `backend` in its own process; the loaded OUT arrays."""
    env = {**os.environ, "KERAS_BACKEND": backend}
    root = str(paths.PACKAGE.parent)  # where `conformance` and `reference` import from
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "conformance.adapters.keras.cross_backend", str(inputs), str(out)],
                          env=env, cwd=root, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"KERAS_BACKEND={backend}: the subprocess exited {proc.returncode}:\n{tail}")
    with np.load(out) as d:
        return {k: d[k] for k in d.files}


if __name__ == "__main__":
    main(sys.argv[1:])
