"""An independent implementation agrees: the ONNX reference evaluator (onnx.reference).

Fixed lengths, no dropout (the evaluator ignores sequence_lens and has no dropout), float64,
random asymmetric weights: every output within 1e-12 of the reference.
"""
import numpy as np
from hypothesis import given, note
from hypothesis import strategies as st

import reference as ref
from conformance.core.frameworks import require
from reference import layouts

ATOL = 1e-12


def onnx_rnn(op, weights, x, h0, c0, direction, hidden):
    """Build a one-node ONNX model and evaluate it with onnx.reference; returns Y, Y_h[, Y_c]."""
    onnx = require("onnx")
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    conv = layouts.to_onnx_lstm(weights) if op == "LSTM" else layouts.to_onnx_gru(weights)
    attrs = {"hidden_size": hidden, "direction": direction}
    if op == "GRU":
        attrs["linear_before_reset"] = conv.pop("linear_before_reset")
    feeds = {"X": x, "W": conv["W"], "R": conv["R"]}
    if "B" in conv:
        feeds["B"] = conv["B"]
    feeds["sequence_lens"] = None
    feeds["initial_h"] = h0
    if op == "LSTM":
        feeds["initial_c"] = c0
        if "P" in conv:
            feeds["P"] = conv["P"]
    names = [k if v is not None else "" for k, v in feeds.items()]
    while names and names[-1] == "":
        names.pop()
    outputs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, names, outputs, **attrs)
    inputs = [helper.make_tensor_value_info(k, TensorProto.DOUBLE, None) for k in names if k]
    outs = [helper.make_tensor_value_info(k, TensorProto.DOUBLE, None) for k in outputs]
    model = helper.make_model(helper.make_graph([node], "g", inputs, outs))
    assert onnx.__version__
    return ReferenceEvaluator(model).run(None, {k: v for k, v in feeds.items() if k in names and v is not None})


def _compare(op, case_kwargs, direction, seed):
    rng = np.random.default_rng(seed)
    T, B, I, H = case_kwargs["T"], case_kwargs["B"], case_kwargs["I"], case_kwargs["H"]
    D = 2 if direction == "bidirectional" else 1
    make = ref.random_lstm if op == "LSTM" else ref.random_gru
    extra = case_kwargs["extra"]
    weights = [make(rng, I, H, **extra) for _ in range(D)]
    x = rng.normal(size=(T, B, I))
    h0 = rng.normal(size=(D, B, H))
    c0 = rng.normal(size=(D, B, H)) if op == "LSTM" else None
    got = onnx_rnn(op, weights, x, h0, c0, direction, H)
    mine = ref.run([weights], x, h0=h0, c0=c0, reverse=direction == "reverse")
    y = mine.y.reshape(T, B, D, H).transpose(0, 2, 1, 3)  # ONNX Y is (T, D, B, H)
    errors = {"Y": np.abs(got[0] - y).max(), "Y_h": np.abs(got[1] - mine.h_n).max()}
    if op == "LSTM":
        errors["Y_c"] = np.abs(got[2] - mine.c_n).max()
    return errors


sizes = st.fixed_dictionaries({"T": st.integers(1, 6), "B": st.integers(1, 3), "I": st.integers(1, 4),
                               "H": st.integers(1, 4)})


@given(sizes=sizes, peephole=st.booleans(), direction=st.sampled_from(["forward", "reverse", "bidirectional"]),
       seed=st.integers(0, 2**32 - 1))
def test_lstm_matches_onnx_reference(sizes, peephole, direction, seed):
    errors = _compare("LSTM", dict(sizes, extra={"peephole": peephole}), direction, seed)
    note(f"errors {errors}")
    assert max(errors.values()) <= ATOL, (f"LSTM differs from onnx.reference: {errors} "
                                          f"(sizes={sizes}, peephole={peephole}, {direction}, seed={seed})")


@given(sizes=sizes, reset_after=st.booleans(), direction=st.sampled_from(["forward", "reverse", "bidirectional"]),
       seed=st.integers(0, 2**32 - 1))
def test_gru_matches_onnx_reference(sizes, reset_after, direction, seed):
    errors = _compare("GRU", dict(sizes, extra={"reset_after": reset_after}), direction, seed)
    note(f"errors {errors}")
    assert max(errors.values()) <= ATOL, (f"GRU differs from onnx.reference: {errors} "
                                          f"(sizes={sizes}, reset_after={reset_after}, {direction}, seed={seed})")


def test_crosscheck_detects_a_swapped_gate():
    """Meta-test: swapping two gate blocks in the weights breaks the agreement by far more than ATOL."""
    require("onnx")
    rng = np.random.default_rng(0)
    w = ref.random_lstm(rng, 3, 4, peephole=True)
    H = 4
    swapped = w.W.copy()
    swapped[[*range(H), *range(H, 2 * H)]] = swapped[[*range(H, 2 * H), *range(H)]]
    x, h0, c0 = rng.normal(size=(5, 2, 3)), rng.normal(size=(1, 2, 4)), rng.normal(size=(1, 2, 4))
    got = onnx_rnn("LSTM", [w], x, h0, c0, "forward", H)
    from dataclasses import replace
    mine = ref.run(replace(w, W=swapped), x, h0=h0, c0=c0)
    assert np.abs(got[1] - mine.h_n).max() > 1e4 * ATOL
