"""Every bad input raises ValueError naming the argument (never a traceback from inside NumPy)."""
from dataclasses import replace

import numpy as np
import pytest

import reference as ref
from reference import layouts

RNG = np.random.default_rng(0)
LSTM = ref.random_lstm(RNG, 3, 2)
GRU = ref.random_gru(RNG, 3, 2)
X = RNG.normal(size=(4, 2, 3))
SAMPLER = ref.MaskSampler(0)


def nan_at(a, idx=0):
    a = np.array(a, dtype=float)
    a.flat[idx] = np.nan
    return a


# (id, callable, the name the message must contain)
CASES = [
    ("x rank", lambda: ref.run(LSTM, X[0]), "x"),
    ("x features", lambda: ref.run(LSTM, X[..., :2]), "x"),
    ("x empty", lambda: ref.run(LSTM, X[:0]), "x"),
    ("x NaN", lambda: ref.run(LSTM, nan_at(X)), "x"),
    ("x inf", lambda: ref.run(LSTM, X * np.inf), "x"),
    ("x strings", lambda: ref.run(LSTM, np.full((4, 2, 3), "a")), "x"),
    ("x ragged", lambda: ref.run(LSTM, [[[1.0, 2.0, 3.0]], [[1.0]]]), "x"),
    ("h0 shape", lambda: ref.run(LSTM, X, h0=np.zeros((1, 3, 2))), "h0"),
    ("c0 shape", lambda: ref.run(LSTM, X, c0=np.zeros((2, 2, 2))), "c0"),
    ("c0 on a GRU", lambda: ref.run(GRU, X, c0=np.zeros((1, 2, 2))), "c0"),
    ("W rows not 4H", lambda: ref.run(replace(LSTM, W=LSTM.W[:7]), X), "W"),
    ("R shape", lambda: ref.run(replace(LSTM, R=LSTM.R[:, :1]), X), "R"),
    ("b_x shape", lambda: ref.run(replace(LSTM, b_x=LSTM.b_x[:3]), X), "b_x"),
    ("peephole shape", lambda: ref.run(replace(LSTM, peephole=np.zeros((4, 2))), X), "peephole"),
    ("W_proj shape", lambda: ref.run(replace(LSTM, W_proj=np.zeros((1, 3))), X), "W_proj"),
    ("weights NaN", lambda: ref.run(replace(GRU, R=nan_at(GRU.R)), X), "R"),
    ("cell_clip negative", lambda: ref.run(replace(LSTM, cell_clip=-1.0), X), "cell_clip"),
    ("forget_bias string", lambda: ref.run(replace(LSTM, forget_bias="1"), X), "forget_bias"),
    ("reset_after not bool", lambda: ref.run(replace(GRU, reset_after="yes"), X), "reset_after"),
    ("stack not weights", lambda: ref.run([["lstm"]], X), "stack"),
    ("stack empty", lambda: ref.run([], X), "stack"),
    ("stack mixed cells", lambda: ref.run([[LSTM], [ref.random_gru(RNG, 2, 2)]], X), "stack"),
    ("stack layer sizes", lambda: ref.run([[LSTM], [ref.random_lstm(RNG, 5, 2)]], X), "stack[1]"),
    ("lengths too long", lambda: ref.run(LSTM, X, lengths=[5, 1]), "lengths"),
    ("lengths negative", lambda: ref.run(LSTM, X, lengths=[-1, 1]), "lengths"),
    ("lengths count", lambda: ref.run(LSTM, X, lengths=[1, 2, 3]), "lengths"),
    ("lengths fractional", lambda: ref.run(LSTM, X, lengths=[1.5, 2]), "lengths"),
    ("lengths and step_mask", lambda: ref.run(LSTM, X, lengths=[1, 2], step_mask=np.ones((4, 2), bool)),
     "lengths"),
    ("step_mask shape", lambda: ref.run(LSTM, X, step_mask=np.ones((3, 2), bool)), "step_mask"),
    ("step_mask values", lambda: ref.run(LSTM, X, step_mask=np.full((4, 2), 2)), "step_mask"),
    ("unknown padding", lambda: ref.run(LSTM, X, padding="mirror"), "padding"),
    ("dtype int", lambda: ref.run(LSTM, X, dtype=np.int32), "dtype"),
    ("reverse on bidirectional", lambda: ref.run([[LSTM, LSTM]], X, reverse=True), "reverse"),
    ("mask shape", lambda: ref.run(LSTM, X, masks=ref.LayerMasks(input=ref.Mask(np.ones((2, 4))))),
     "masks.layers[0][0].input"),
    ("mask per-step without steps axis",
     lambda: ref.run(LSTM, X, masks=ref.LayerMasks(recurrent=ref.Mask(np.ones((2, 2)), time="step"))),
     "masks.layers[0][0].recurrent"),
    ("mask unknown time", lambda: ref.run(LSTM, X, masks=ref.LayerMasks(input=ref.Mask(np.ones((2, 3)), time="x"))),
     "time"),
    ("mask per_gate on output",
     lambda: ref.run(LSTM, X, masks=ref.LayerMasks(output=ref.Mask(np.ones((4, 2, 2)), per_gate=True))),
     "per_gate"),
    ("mask gate count", lambda: ref.run(GRU, X, masks=ref.LayerMasks(input=ref.Mask(np.ones((4, 2, 3)),
                                                                                   per_gate=True))),
     "masks.layers[0][0].input"),
    ("mask NaN", lambda: ref.run(LSTM, X, masks=ref.LayerMasks(input=ref.Mask(nan_at(np.ones((2, 3)))))),
     "input"),
    ("state_c on a GRU", lambda: ref.run(GRU, X, masks=ref.LayerMasks(state_c=ref.Mask(np.ones((2, 2))))),
     "state_c"),
    ("masks type", lambda: ref.run(LSTM, X, masks={"input": 1}), "masks"),
    ("inter_layer count",
     lambda: ref.run([[LSTM]], X, masks=ref.StackMasks(inter_layer=[ref.Mask(np.ones((2, 2)))])),
     "masks.inter_layer"),
    ("dy shape", lambda: ref.run_vjp(LSTM, X, np.ones((4, 2, 3))), "dy"),
    ("dc_n on a GRU", lambda: ref.run_vjp(GRU, X, np.ones((4, 2, 2)), dc_n=np.ones((1, 2, 2))), "dc_n"),
    ("mask a raw array", lambda: ref.run(LSTM, X, masks=ref.LayerMasks(input=np.ones((2, 3)))),
     "masks.layers[0][0].input"),
    ("inter_layer mask a raw array",
     lambda: ref.run([[LSTM], [ref.random_lstm(RNG, 2, 2)]], X, masks=ref.StackMasks(inter_layer=[np.ones((2, 2))])),
     "masks.inter_layer[0]"),
    ("layers entry not LayerMasks", lambda: ref.run(LSTM, X, masks=ref.StackMasks(layers=[[{"input": None}]])),
     "masks.layers[0][0]"),
    ("random_stack unknown cell", lambda: ref.random_stack(RNG, "rnn", 3, 2), "cell"),
    ("random_stack num_layers zero", lambda: ref.random_stack(RNG, "gru", 3, 2, num_layers=0), "num_layers"),
    ("random_lstm rng an int", lambda: ref.random_lstm(0, 3, 2), "rng"),
    ("random_gru hidden_size zero", lambda: ref.random_gru(RNG, 3, 0), "hidden_size"),
    ("random_lstm input_size float", lambda: ref.random_lstm(RNG, 2.5, 2), "input_size"),
    ("random_lstm proj_size negative", lambda: ref.random_lstm(RNG, 3, 2, proj_size=-1), "proj_size"),
    ("sampler seed a string", lambda: ref.MaskSampler(seed="x"), "seed"),
    ("sampler seed negative", lambda: ref.MaskSampler(-1), "seed"),
    ("sampler seed fractional", lambda: ref.MaskSampler(1.5), "seed"),
    ("sampler seed a bool", lambda: ref.MaskSampler(True), "seed"),
    ("rate above 1", lambda: SAMPLER.mask(1.5, 2, 2), "rate"),
    ("rate negative", lambda: SAMPLER.mask(-0.1, 2, 2), "rate"),
    ("rate NaN", lambda: SAMPLER.mask(float("nan"), 2, 2), "rate"),
    ("sampler steps missing", lambda: SAMPLER.mask(0.5, 2, 2, time="step"), "steps"),
    ("sampler batch zero", lambda: SAMPLER.mask(0.5, 0, 2), "batch"),
    ("pack zero length", lambda: ref.pack(X, [0, 2]), "lengths"),
    ("pack enforce_sorted unsorted", lambda: ref.pack(X, [1, 3], enforce_sorted=True), "lengths"),
    ("pack x rank", lambda: ref.pack(np.ones(3), [1]), "x"),
    ("unknown layout", lambda: layouts.get_layout("caffe_lstm"), "layout"),
    ("gate order other gates", lambda: layouts.reorder_gates(np.ones(8), "ifgo", "ifco"), "target"),
    ("gate order repeated", lambda: layouts.reorder_gates(np.ones(8), "iigo", "ifgo"), "source"),
    ("gate blocks uneven", lambda: layouts.reorder_gates(np.ones(6), "ifgo", "ifog"), "a"),
]


def test_reorder_gates_agrees_with_the_converters():
    w = ref.random_lstm(np.random.default_rng(1), 3, 2)
    block = layouts.to_block_lstm(w, dtype=np.float64)["w"][:3]   # (I, 4H), blocks i c f o
    keras = layouts.to_keras_lstm(w)["kernel"]                    # (I, 4H), blocks i f c o
    np.testing.assert_array_equal(layouts.reorder_gates(block, "icfo", "ifco", axis=1), keras)


@pytest.mark.parametrize("call,name", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError) as info:
        call()
    assert name in str(info.value), f"message does not name {name!r}: {info.value}"
