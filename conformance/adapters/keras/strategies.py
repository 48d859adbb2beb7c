"""Keras configurations for the Keras / tf-keras suites: ad-hoc adapter variants, small cases
with arbitrary step masks, injected dropout masks, and the hypothesis strategy drawing every
documented constructor / call argument of ``keras.layers.LSTM`` / ``GRU`` together.

Kept apart from the test modules (suites/test_keras_*.py) so that they hold only properties.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import reference
from conformance.core.adapter_strategies import rounded
from conformance.adapters.base import AdapterInfo
from conformance.core.frameworks import installed_version
from conformance.core.strategies import Case

__all__ = ["variant", "masked_case", "nonzero_case", "STEP_MASK", "expected_policy", "record", "inject_masks", "layer_configs",
           "tf_keras_layer_configs", "DROPOUT_RATES"]

# (T=5, B=4): a full row, right padding, leading masked steps, an inner gap
STEP_MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 1, 1, 0]], bool).T


def variant(cell, framework="keras", **options):
    """An AdapterInfo for a Keras layer variant built with `options` (see adapters/keras/rnn.py)."""
    label = ",".join(f"{k}={v}" for k, v in sorted(options.items()))
    factory = "conformance.adapters.keras.rnn:make" if framework == "keras" else "conformance.adapters.keras.tf_keras:make"
    name = f"{'keras' if framework == 'keras' else 'tf_keras'}.layers.{cell.upper()}[{label}]"
    feats = {"stacked", "bidirectional", "initial_state", "gradients"} | ({"reset_before"} if cell == "gru" else set())
    return AdapterInfo(name=name, framework=framework, distribution="keras" if framework == "keras" else "tf-keras",
                       cell=cell, factory=factory, options=options, features=frozenset(feats))


def masked_case(cell, seed, steps=5, batch=4, size=3):
    """(case, stack, x, h0, c0, valid): float32-rounded arrays, nonzero initial state, and
    STEP_MASK (leading and inner masked steps) as the valid-step mask."""
    case = Case(cell=cell, steps=steps, batch=batch, input_size=size, hidden_size=size, initial_state=True, seed=seed)
    stack, x, h0, c0 = rounded(case)
    return case, stack, x, h0, c0, STEP_MASK[:steps, :batch]


def nonzero_case(case):
    """(case, stack, x, h0, c0) as `rounded`, with |x| >= 0.5 everywhere (float32-exact), so that
    a dropout wrapper's mask is recovered exactly as output / input."""
    stack, x, h0, c0 = rounded(case)
    x = (np.where(x < 0, -1.0, 1.0) * (0.5 + np.abs(x))).astype(np.float32).astype(np.float64)
    return case, stack, x, h0, c0


def expected_policy(zero_output_for_mask):
    """The reference policy Keras documents: zeros with zero_output_for_mask, else the previous
    output (zeros before the first valid step; keras/src/layers/rnn/rnn.py docstring)."""
    return "zero_output" if zero_output_for_mask else "repeat_output"


def record(conformance_record, *, adapter, backend, feature, framework="keras", distribution="keras", err=None,
           tol=None, seed=None, reason=None, repro=None, kernel=None):
    rec = dict(adapter=adapter, framework=framework, framework_version=installed_version(distribution),
               backend=backend, device="cpu", feature=feature)
    for k, v in (("max_abs_err", err), ("tolerance", tol), ("seed", seed), ("reason", reason), ("repro", repro),
                 ("kernel", kernel)):
        if v is not None:
            rec[k] = v
    conformance_record(**rec)


DROPOUT_RATES = (0.0, 1e-3, 0.5, 0.9, 1.0)


def inject_masks(stack, batch, rates, seed, gates):
    """({(l, d): {"dropout": ..., "recurrent_dropout": ...}}, reference.StackMasks): masks drawn by
    the reference sampler; per gate (a list in Keras' gate order) when `gates` > 1. Keras' gate
    order maps to the reference's: LSTM i, f, c, o -> i, f, g, o (same); GRU z, r, h -> r, z, n."""
    sampler = reference.MaskSampler(seed)
    inject, layers = {}, []
    for l, row in enumerate(stack):
        lrow = []
        for d, w in enumerate(row):
            hooks, lm = {}, reference.LayerMasks()
            for knob, kind, size in (("dropout", "input", w.input_size), ("recurrent_dropout", "recurrent",
                                                                           w.output_size)):
                p = rates.get(knob, 0.0)
                if not p:
                    continue
                m = sampler.mask(p, batch, size, gates=gates)
                vals = np.asarray(m.values, np.float32).astype(np.float64)
                if gates > 1:
                    keras_list = [vals[i] for i in range(gates)]
                    if w.cell == "gru":  # reference gates r, z, n <- Keras z, r, h
                        keras_list = [vals[1], vals[0], vals[2]]
                    hooks[knob] = keras_list
                    setattr(lm, kind, reference.Mask(vals, per_gate=True))
                else:
                    hooks[knob] = vals
                    setattr(lm, kind, reference.Mask(vals))
            inject[(l, d)] = hooks
            lrow.append(lm)
        layers.append(lrow)
    return inject, reference.StackMasks(layers=layers)


def _configs(draw, cell, keras3):
    """One draw of `layer_configs` (keras3) or `tf_keras_layer_configs`, in one order of draws (the
    derandomized ci profile's Keras 3 draws depend on it)."""
    rate = st.sampled_from(DROPOUT_RATES)
    cfg = dict(cell=cell) if keras3 else dict(framework="tf_keras", cell=cell)
    cfg.update(dropout=draw(rate), recurrent_dropout=draw(rate), implementation=draw(st.sampled_from([1, 2])))
    if keras3:
        cfg["use_cudnn"] = draw(st.sampled_from(["auto", True, False]))
    cfg.update(unroll=draw(st.booleans()), go_backwards=draw(st.booleans()),
               return_sequences=draw(st.booleans()), return_state=draw(st.booleans()),
               stateful=draw(st.booleans()))
    if keras3:
        cfg["seed"] = draw(st.sampled_from([None, 0, 1234]))
    else:
        cfg["time_major"] = draw(st.booleans())
    cfg.update(
        masking=draw(st.sampled_from(["none", "mask=", "Masking", "Embedding"])),
        zero_output_for_mask=draw(st.booleans()),
        initial_state=draw(st.booleans()), training=draw(st.booleans()),
        batches=tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))),
        steps=draw(st.integers(1, 5)), units=draw(st.integers(1, 4)),
        data_seed=draw(st.integers(0, 2**31 - 1)),
    )
    if cell == "gru":
        cfg["reset_after"] = draw(st.booleans())
    return cfg


@st.composite
def layer_configs(draw, cell):
    """Every documented constructor / call argument of keras.layers.LSTM / GRU, drawn together."""
    return _configs(draw, cell, keras3=True)


@st.composite
def tf_keras_layer_configs(draw, cell):
    """Every documented constructor / call argument of tf-keras 2 ``tf_keras.layers.LSTM`` / ``GRU``
    (tf_keras/src/layers/rnn/{lstm,gru,base_rnn}.py) drawn together: as `layer_configs` without
    ``use_cudnn`` and ``seed`` (tf-keras has neither), with ``time_major``; ``implementation`` and
    ``zero_output_for_mask`` are the keyword arguments LSTM / GRU pass on (LSTM: ``kwargs.pop
    ("implementation", 2)``; RNN: ``kwargs.pop("zero_output_for_mask", False)``, documented in the RNN
    docstring). ``framework`` tells `coverage.run_config` / `replay` the draw is tf-keras'."""
    return _configs(draw, cell, keras3=False)
