"""Self-test of the ONNX-spec oracle (conformance/adapters/onnxruntime/coverage.py: spec_lstm /
spec_gru): at default attributes it equals `reference.run` (through reference.layouts.to_onnx_*)
for LSTM with and without peepholes and GRU with both linear_before_reset, forward / reverse /
bidirectional, with and without sequence_lens (padding policy "zero_output"); each activation
matches its spec formula at hand-computed points; the documented defaults, the alpha / beta
consumption order, clip and input_forget do what the spec text says. Needs only numpy + reference
(no onnx import), so it runs in the minimal environment too."""
from __future__ import annotations

import math

import numpy as np
import pytest

import reference
from reference import layouts
from conformance.adapters.onnxruntime.coverage import (ACTIVATIONS, bind_activations, activation, spec_gru,
                                                       spec_lstm)

DIRECTIONS = ["forward", "reverse", "bidirectional"]
TOL = 1e-12


def _data(seed, cell, direction, lengths, **kw):
    rng = np.random.default_rng(seed)
    T, B, I, H = 5, 3, 2, 3
    stack = reference.random_stack(rng, cell, I, H, bidirectional=direction == "bidirectional", **kw)
    x = rng.standard_normal((T, B, I))
    D = len(stack[0])
    h0, c0 = rng.standard_normal((D, B, H)), rng.standard_normal((D, B, H))
    L = np.array([5, 2, 1]) if lengths else None
    want = reference.run(stack, x, h0, c0 if cell == "lstm" else None, lengths=L, padding="zero_output",
                         reverse=direction == "reverse")
    return stack, x, h0, c0, L, want, (T, B, D, H)


def _compare(Y, Yh, want, shape, Yc=None):
    T, B, D, H = shape
    y = Y.transpose(0, 2, 1, 3).reshape(T, B, D * H)
    assert np.abs(y - want.y).max() < TOL
    assert np.abs(Yh - want.h_n).max() < TOL
    if Yc is not None:
        assert np.abs(Yc - want.c_n).max() < TOL


@pytest.mark.parametrize("lengths", [False, True])
@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_lstm_equals_reference(direction, peephole, lengths):
    stack, x, h0, c0, L, want, shape = _data(1, "lstm", direction, lengths, peephole=peephole)
    d = layouts.to_onnx_lstm(stack[0])
    assert ("P" in d) == peephole
    Y, Yh, Yc = spec_lstm(x, d["W"], d["R"], d.get("B"), L, h0, c0, d.get("P"), hidden_size=shape[3],
                          direction=direction)
    _compare(Y, Yh, want, shape, Yc)


@pytest.mark.parametrize("lengths", [False, True])
@pytest.mark.parametrize("reset_after", [False, True])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_gru_equals_reference(direction, reset_after, lengths):
    stack, x, h0, _, L, want, shape = _data(2, "gru", direction, lengths, reset_after=reset_after)
    d = layouts.to_onnx_gru(stack[0])
    assert d["linear_before_reset"] == int(reset_after)
    Y, Yh = spec_gru(x, d["W"], d["R"], d.get("B"), L, h0, hidden_size=shape[3], direction=direction,
                     linear_before_reset=d["linear_before_reset"])
    _compare(Y, Yh, want, shape)


def test_explicit_default_activations_change_nothing():
    stack, x, h0, c0, L, want, shape = _data(3, "lstm", "bidirectional", True)
    d = layouts.to_onnx_lstm(stack[0])
    Y, Yh, Yc = spec_lstm(x, d["W"], d["R"], d.get("B"), L, h0, c0, hidden_size=shape[3], direction="bidirectional",
                          activations=["Sigmoid", "Tanh", "Tanh"] * 2, activation_alpha=[9.0], activation_beta=[9.0])
    _compare(Y, Yh, want, shape, Yc)  # no function takes alpha / beta: the lists are not consumed


# (name, alpha, beta, x, spec value computed by hand from the spec's formula)
POINTS = [
    ("Relu", None, None, -2.0, 0.0), ("Relu", None, None, 1.5, 1.5),
    ("Tanh", None, None, 0.5, (1 - math.exp(-1.0)) / (1 + math.exp(-1.0))),
    ("Sigmoid", None, None, -1.0, 1 / (1 + math.e)), ("Sigmoid", None, None, 0.0, 0.5),
    ("Affine", 2.0, -1.0, 1.5, 2.0), ("Affine", 0.5, 0.25, -1.0, -0.25),
    ("LeakyRelu", 0.1, None, -2.0, -0.2), ("LeakyRelu", 0.1, None, 3.0, 3.0),
    ("ThresholdedRelu", 1.0, None, 0.5, 0.0), ("ThresholdedRelu", 1.0, None, 1.0, 1.0),
    ("ThresholdedRelu", 1.0, None, 2.0, 2.0),
    ("ScaledTanh", 2.0, 0.5, 1.0, 2 * math.tanh(0.5)),
    ("HardSigmoid", 0.2, 0.5, 1.0, 0.7), ("HardSigmoid", 0.2, 0.5, 10.0, 1.0), ("HardSigmoid", 0.2, 0.5, -10.0, 0.0),
    ("Elu", 1.0, None, -1.0, math.exp(-1.0) - 1), ("Elu", 0.5, None, 2.0, 2.0),
    ("Softsign", None, None, -3.0, -0.75), ("Softsign", None, None, 1.0, 0.5),
    ("Softplus", None, None, 0.0, math.log(2.0)), ("Softplus", None, None, 1.0, math.log(1 + math.e)),
    ("Softplus", None, None, 100.0, 100.0), ("Tanh", None, None, -400.0, -1.0),
]


@pytest.mark.parametrize("name, alpha, beta, x, want", POINTS)
def test_activation_formulas(name, alpha, beta, x, want):
    assert activation(name, alpha, beta)(np.array([x]))[0] == pytest.approx(want, rel=1e-14, abs=1e-15)


def test_every_spec_activation_is_covered():
    assert set(ACTIVATIONS) == {p[0] for p in POINTS}
    assert len(ACTIVATIONS) == 11


def test_defaults_and_consumption_order():
    b = bind_activations(["Tanh", "LeakyRelu", "HardSigmoid", "Elu", "ThresholdedRelu"])
    assert b == [("Tanh", None, None), ("LeakyRelu", np.float32(0.01), None),
                 ("HardSigmoid", np.float32(0.2), 0.5), ("Elu", 1.0, None), ("ThresholdedRelu", 1.0, None)]
    b = bind_activations(["Relu", "Affine", "Sigmoid", "ScaledTanh", "Elu"], [2.0, 3.0], [0.5, 0.25])
    assert b == [("Relu", None, None), ("Affine", 2.0, 0.5), ("Sigmoid", None, None), ("ScaledTanh", 3.0, 0.25),
                 ("Elu", 1.0, None)]  # alpha list used up: Elu gets its default
    with pytest.raises(KeyError):
        bind_activations(["Affine"])  # no documented default


def _one_step_lstm(**kw):
    H = 1
    W = np.full((1, 4 * H, 1), 2.0)
    R = np.zeros((1, 4 * H, H))
    return spec_lstm(np.array([[[1.5]]]), W, R, hidden_size=H, **kw)


def test_clip_bounds_gate_preactivations():
    # all pre-activations 3.0; clip 1 -> i = f = o = sigmoid(1), c~ = tanh(1); C0 = 0
    Y, Yh, Yc = _one_step_lstm(clip=1.0)
    s, t = 1 / (1 + math.exp(-1.0)), math.tanh(1.0)
    assert Yc[0, 0, 0] == pytest.approx(s * t, rel=1e-14)
    assert Yh[0, 0, 0] == pytest.approx(s * math.tanh(s * t), rel=1e-14)
    Y, Yh, Yc = _one_step_lstm(clip=1.0, activations=["Sigmoid", "Relu", "Relu"])
    assert Yc[0, 0, 0] == pytest.approx(s * 1.0, rel=1e-14)  # Relu(clip(3)) = 1


def test_input_forget_couples_gates():
    H = 1
    W = np.array([[[1.0], [0.0], [-5.0], [0.5]]])  # i, o, f, c
    R = np.zeros((1, 4, H))
    c0 = np.array([[[2.0]]])
    _, _, Yc = spec_lstm(np.array([[[1.0]]]), W, R, initial_c=c0, hidden_size=H, input_forget=1)
    i = 1 / (1 + math.exp(-1.0))
    assert Yc[0, 0, 0] == pytest.approx((1 - i) * 2.0 + i * math.tanh(0.5), rel=1e-14)


def test_gru_linear_before_reset_formulas():
    H = 1
    W = np.array([[[0.3], [0.2], [0.7]]])     # z, r, h
    R = np.array([[[0.0], [0.0], [0.9]]])
    B = np.array([[0.0, 0.0, 0.1, 0.0, 0.0, 0.4]])  # Wbh = 0.1, Rbh = 0.4
    h0 = np.array([[[0.5]]])
    sg = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    z, r = sg(0.3), sg(0.2)
    for lbr, ht in ((0, math.tanh(0.7 + r * 0.5 * 0.9 + 0.4 + 0.1)), (1, math.tanh(0.7 + r * (0.5 * 0.9 + 0.4) + 0.1))):
        _, Yh = spec_gru(np.array([[[1.0]]]), W, R, B, initial_h=h0, hidden_size=H, linear_before_reset=lbr)
        assert Yh[0, 0, 0] == pytest.approx((1 - z) * ht + z * 0.5, rel=1e-14)
