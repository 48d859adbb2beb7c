"""Self-test of the probe-weight oracle against injection, on Keras 3 (every backend).

The Keras cell draws its dropout masks through ``cell.get_dropout_mask`` /
``cell.get_recurrent_dropout_mask`` (keras/src/layers/rnn/dropout_rnn_cell.py); replacing
them injects masks drawn by the reference sampler. The oracle, which sees only the layer's
outputs, must recover exactly those masks: the input probe for ``dropout`` (one mask, or one
per gate with ``recurrent_dropout`` set), the recurrent probe for ``recurrent_dropout`` (one
mask per gate). Recorded: the largest distance of a recovered mask from the injected one.
"""
from __future__ import annotations

import numpy as np
import pytest

import reference
from conformance.adapters import registry
from conformance.core.frameworks import installed_version, require
from conformance.oracles import probe as P

pytestmark = [pytest.mark.keras, pytest.mark.framework("keras")]
K, B, T, P_DROP, TOL = 8, 16, 5, 0.5, 2e-5
GATES = {"lstm": 4, "gru": 3}
# knob -> (probe kind, rates, which cell method the mask goes through, per gate?)
CASES = {
    "dropout": ("input", {"dropout": P_DROP}, "get_dropout_mask", False),
    "recurrent_dropout": ("recurrent", {"recurrent_dropout": P_DROP}, "get_recurrent_dropout_mask", True),
    "dropout with recurrent_dropout": ("input", {"dropout": P_DROP, "recurrent_dropout": P_DROP},
                                       "get_dropout_mask", True),
}


def inject(layer, method, masks, keras):
    """Make `layer`'s cell return `masks` (NumPy, one per gate or one) from `method`."""
    tensors = [keras.ops.convert_to_tensor(m.astype("float32")) for m in masks]
    setattr(layer.cell, method, lambda step_input: tensors if len(tensors) > 1 else tensors[0])


@pytest.mark.parametrize("knob", list(CASES))
@pytest.mark.parametrize("name", ["keras.layers.LSTM", "keras.layers.GRU"])
def test_recovered_masks_equal_injected(name, knob, conformance_record):
    keras = require("keras")
    adapter = registry.load(name)
    kind, rates, method, per_gate = CASES[knob]
    probe = P.build(kind, adapter.info.cell, K, B, T, scale=1 / (1 - P_DROP), seed=5)
    stack = probe.stack
    layers = adapter.build(stack, T, dropout={**rates, "seed": 0})
    size = probe.x.shape[2] if kind == "input" else stack[0][0].output_size
    count = GATES[adapter.info.cell] if per_gate else 1
    drawn = reference.MaskSampler(9).mask(P_DROP, B, size, gates=count).values
    masks = list(drawn) if per_gate else [drawn]
    inject(layers[0], method, masks, keras)
    got = P.recover(probe, adapter.run_layers(layers, stack, probe.x, probe.h0, probe.c0, training=True))[kind]
    # recovered: (T, routes, B, K); Keras' per-gate mask lists follow its gate order: LSTM i, f, c, o;
    # GRU z, r, h (keras/src/layers/rnn/gru.py: dp_mask[0] -> z, [1] -> r, [2] -> h)
    order = {"g": 2, "i": 0, "o": 3} if adapter.info.cell == "lstm" else {"n": 2, "r": 1}
    want = np.stack([masks[order[r]] if per_gate else masks[0] for r in probe.routes])[None, :, :, :K]
    err = float(np.max(np.abs(got - want)))
    conformance_record(adapter=name, framework="keras", framework_version=installed_version("keras"),
                       backend=adapter.backend, device="cpu", feature=f"probe oracle vs injection ({knob})",
                       max_abs_err=err, tolerance=TOL, seed=9,
                       reason=f"largest |recovered - injected| multiplier {err:.3g} over {got.size} elements")
    assert err <= TOL, (f"{name} ({adapter.backend}) {knob}: recovered masks differ from the injected ones by "
                        f"{err:.3g}\nrepro: KERAS_BACKEND={adapter.backend} python -m pytest "
                        f"'suites/test_keras_probe_oracle.py::test_recovered_masks_equal_injected[{name}-{knob}]'")
