"""Self-tests of the tf-keras helpers of conformance/adapters/keras/coverage.py (no framework needed)."""
import numpy as np

from conformance.adapters.keras import coverage as KC


def _cfg(**kw):
    return {"framework": "tf_keras", "cell": "lstm", "initial_state": True, "zero_output_for_mask": True,
            "return_sequences": False, "units": 2, **kw}


def test_documented_policy_tf_keras_only_with_return_sequences():
    assert KC.documented_policy(_cfg()) == "repeat_output"
    assert KC.documented_policy(_cfg(return_sequences=True)) == "zero_output"
    keras3 = {k: v for k, v in _cfg().items() if k != "framework"}
    assert KC.documented_policy(keras3) == "zero_output"  # Keras 3 unchanged


def test_starts_from_initial_state():
    cfg = _cfg()
    state = KC.State(cfg, 3)
    assert KC.starts_from_initial_state(cfg, None) is True           # not stateful
    assert KC.starts_from_initial_state(cfg, state) is True          # recorded state all zeros
    state.h = np.ones((3, 2), np.float32); state.steps = 5
    assert KC.starts_from_initial_state(cfg, state) is False         # recorded state wins (tf-keras)
    state.steps = None
    assert KC.starts_from_initial_state(cfg, state) is None          # unknown
    keras3 = {k: v for k, v in cfg.items() if k != "framework"}
    assert KC.starts_from_initial_state(keras3, state) is True       # Keras 3: initial_state wins
    assert KC.starts_from_initial_state(_cfg(initial_state=False), state) is False


def test_time_major_inputs_keeps_the_documented_mask():
    d = KC.batch_data(dict(masking="mask=", steps=4, units=2, data_seed=1), 0, 3)
    t = KC.time_major_inputs(d)
    assert t["x"].shape == (4, 3, KC.FEATURES) and t["ids"].shape == (4, 3) and t["valid"].shape == (3, 4)
    assert np.array_equal(t["x"][2, 1], d["x"][1, 2])


def test_tf_keras_cause_and_header():
    class E(Exception):
        pass
    e = E("in user code:\n\n  File \"x.py\", line 1\n\nValueError: Exception encountered when calling layer 'lstm' "
          "(type LSTM).\n\n`rate` must be in [0, 1). Received: rate=1.0\n\nCall arguments received:\n  • x=1")
    assert KC.tf_keras_cause(e).startswith("`rate` must be")
    assert KC.header("tf_keras") == ["# TF_USE_LEGACY_KERAS=1", "import numpy as np, tf_keras as keras"]
    assert KC.header("jax", numpy=False) == ["# KERAS_BACKEND=jax", "import keras"]
    assert KC.stateful_refusal(_cfg()) == KC.TF_KERAS_STATEFUL_REFUSAL
    assert KC.stateful_refusal({}) == KC.STATEFUL_REFUSAL
