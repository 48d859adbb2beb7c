"""Is Keras' input dropout mask one per sequence on every path?

``LSTM`` / ``GRU(dropout=p)`` run either the layer's fused path (``recurrent_dropout=0``: the
cuDNN-compatible loop, used on the CPU too) or the generic cell loop (``recurrent_dropout > 0``).
The cell loop draws one input mask per sequence, (B, F), the same at every step (SEMANTICS.md).
This suite reads the mask the framework itself drew, through weights that make it visible: x is
all ones, the input kernel feeds x only into the candidate (2·I), the recurrent kernel is zero
(so recurrent dropout changes nothing) and biases saturate the other gates (LSTM: i, o open,
f shut; GRU: z shut), so h[b, t, f] > 0 exactly where x[b, t, f] was kept.

Decision: the mask is "per step" when any later step's kept-set differs from step 0's. A
per-sequence mask can never look per-step (no false alarm); a per-step mask with p = 0.5 looks
per-sequence with probability 2^-(B·F) per step pair, 2^-64 here (power 1 - 2^-64 per pair).
"""
from __future__ import annotations

import numpy as np
import pytest

from conformance.adapters.keras import strategies as KS
from conformance.core.frameworks import require

B, T, F, P = 4, 8, 16, 0.5
PATHS = {"fused": 0.0, "generic": 0.5}  # recurrent_dropout that selects the path
SAT = 30.0  # sigmoid(30) = 1 - 9e-14


def visible_weights(cell):
    """[kernel, recurrent_kernel, bias] in Keras gate order that expose the input mask in h
    (GRU: reset_after=True, the default, so the bias has an input and a recurrent row)."""
    G = 4 if cell == "lstm" else 3
    cand = 2  # the candidate's block: LSTM i f c o, GRU z r h
    kernel = np.zeros((F, G * F), "float32")
    kernel[:, cand * F:(cand + 1) * F] = 2 * np.eye(F)
    bias = np.zeros(G * F, "float32")
    if cell == "lstm":
        bias[:F], bias[F:2 * F], bias[3 * F:] = SAT, -SAT, SAT
    else:
        bias[:F] = -SAT  # z shut: h_t = n_t
        bias = np.stack([bias, np.zeros_like(bias)])
    return [kernel, np.zeros((F, G * F), "float32"), bias]


def module_name(keras):
    return keras.__name__.split(".")[0]


def kept_sets(keras, cell, recurrent_dropout, seed):
    """(B, T, F) booleans: where the framework kept x, read off h."""
    kwargs = dict(dropout=P, recurrent_dropout=recurrent_dropout, return_sequences=True)
    if module_name(keras) == "keras":
        kwargs["seed"] = seed
    else:
        keras.utils.set_random_seed(seed)
    layer = getattr(keras.layers, cell.upper())(F, **kwargs)
    layer.build((B, T, F))
    layer.set_weights(visible_weights(cell))
    h = layer(np.ones((B, T, F), "float32"), training=True)
    h = keras.ops.convert_to_numpy(h) if module_name(keras) == "keras" else h.numpy()
    return np.asarray(h) > 1e-3


def structure(kept):
    return "per step" if any((kept[:, t] != kept[:, 0]).any() for t in range(1, T)) else "per sequence"


def repro(module, cell):
    env = "TF_USE_LEGACY_KERAS=1 " if module == "tf_keras" else "KERAS_BACKEND=<backend> "
    return (f"# {env}python\nfrom suites.test_keras_mask_time import kept_sets, structure\nimport {module}\n"
            + "\n".join(f"print({path!r}, structure(kept_sets({module}, {cell!r}, {r}, seed=0)))"
                        for path, r in PATHS.items()))


def check(keras, cell, conformance_record, backend):
    module = module_name(keras)
    seen = {path: structure(kept_sets(keras, cell, r, seed=0)) for path, r in PATHS.items()}
    rp = repro(module, cell)
    KS.record(conformance_record, adapter=f"{module}.layers.{cell.upper()}", backend=backend, framework=module,
              distribution="keras" if module == "keras" else "tf-keras",
              feature="input dropout mask: one per sequence on the fused and the generic path", repro=rp,
              reason=f"input mask (dropout={P}) on the fused path (recurrent_dropout=0): {seen['fused']}; "
                     f"generic path (recurrent_dropout=0.5): {seen['generic']}")
    assert seen == {"fused": "per sequence", "generic": "per sequence"}, (
        f"{module}.layers.{cell.upper()}(dropout={P}) ({backend}): the input mask is {seen['fused']} on the "
        f"fused path and {seen['generic']} on the generic path (expected: per sequence on both); seed=0\n"
        f"repro:\n{rp}")


@pytest.mark.keras
@pytest.mark.framework("keras")
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_input_mask_per_sequence(cell, conformance_record):
    keras = require("keras")
    check(keras, cell, conformance_record, keras.backend.backend())


@pytest.mark.tf_keras
@pytest.mark.framework("tf_keras")
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_tf_keras_input_mask_per_sequence(cell, conformance_record):
    tf_keras = require("tf_keras", "tf-keras")
    check(tf_keras, cell, conformance_record, "tensorflow")
