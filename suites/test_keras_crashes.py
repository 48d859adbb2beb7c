"""Keras 3 configurations that raise (a crash is a finding): each is called here exactly as a
user would, and must return outputs of the right shape. Marked ``keras`` (every backend).

- ``RNN(StackedRNNCells([LSTMCell | GRUCell]))`` with ONE cell, with and without ``mask=``.
- ``LSTM / GRU(unroll=True, go_backwards=True)`` with ``mask=`` (also reached through
  ``Bidirectional(LSTM(unroll=True))`` with a mask).
"""
from __future__ import annotations

import numpy as np
import pytest

from conformance.adapters.keras import strategies as KS
from conformance.core.frameworks import require

pytestmark = [pytest.mark.keras, pytest.mark.framework("keras")]
MASK = np.array([[1, 1, 0], [1, 0, 0]], bool)


def _run(build, masked):
    keras = require("keras")
    x = np.random.default_rng(0).normal(size=(2, 3, 2)).astype("float32")
    layer = build(keras)
    out = layer(x, mask=MASK if masked else None)
    return keras, [keras.ops.convert_to_numpy(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


CASES = {
    "RNN(StackedRNNCells([LSTMCell]))": lambda k: k.layers.RNN(k.layers.StackedRNNCells([k.layers.LSTMCell(2)]),
                                                               return_sequences=True, return_state=True),
    "RNN(StackedRNNCells([GRUCell]))": lambda k: k.layers.RNN(k.layers.StackedRNNCells([k.layers.GRUCell(2)]),
                                                              return_sequences=True, return_state=True),
    "LSTM(unroll=True, go_backwards=True)": lambda k: k.layers.LSTM(2, return_sequences=True, unroll=True,
                                                                    go_backwards=True),
    "Bidirectional(LSTM(unroll=True))": lambda k: k.layers.Bidirectional(
        k.layers.LSTM(2, return_sequences=True, unroll=True)),
}


@pytest.mark.parametrize("masked", [False, True], ids=["no mask", "mask"])
@pytest.mark.parametrize("what", list(CASES))
def test_configuration_runs(what, masked, conformance_record):
    keras = require("keras")
    backend = keras.backend.backend()
    rp = (f"KERAS_BACKEND={backend} python -c \"import numpy as np, keras; k = keras; "
          f"x = np.random.default_rng(0).normal(size=(2, 3, 2)).astype('float32'); "
          f"layer = {CASES_SRC[what]}; print(layer(x{', mask=np.array([[1,1,0],[1,0,0]], bool)' if masked else ''}))\"")
    try:
        _, outs = _run(CASES[what], masked)
    except Exception as e:
        msg = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        KS.record(conformance_record, adapter=f"keras.layers.{what}", backend=backend,
                  feature=f"runs ({'mask' if masked else 'no mask'})", reason=f"crash: {msg}", repro=rp, seed=0)
        raise AssertionError(f"keras.layers.{what} ({backend}, {'with' if masked else 'without'} a mask) raised "
                             f"{msg}\nrepro:\n{rp}") from e
    KS.record(conformance_record, adapter=f"keras.layers.{what}", backend=backend,
              feature=f"runs ({'mask' if masked else 'no mask'})", reason="ran", repro=rp, seed=0)
    assert outs[0].shape[:2] == (2, 3)


CASES_SRC = {
    "RNN(StackedRNNCells([LSTMCell]))": "k.layers.RNN(k.layers.StackedRNNCells([k.layers.LSTMCell(2)]), "
                                        "return_sequences=True, return_state=True)",
    "RNN(StackedRNNCells([GRUCell]))": "k.layers.RNN(k.layers.StackedRNNCells([k.layers.GRUCell(2)]), "
                                       "return_sequences=True, return_state=True)",
    "LSTM(unroll=True, go_backwards=True)": "k.layers.LSTM(2, return_sequences=True, unroll=True, go_backwards=True)",
    "Bidirectional(LSTM(unroll=True))": "k.layers.Bidirectional(k.layers.LSTM(2, return_sequences=True, unroll=True))",
}
