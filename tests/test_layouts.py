"""Self-tests of reference/layouts.py.

1. Exact round trips: framework layout -> canonical -> layout is bitwise (dtype kept), and
   canonical -> layout -> canonical is exact for weights the layout expresses without folding.
2. Folding is exact in real arithmetic: one step of a small hand-written float64 LSTM/GRU
   (below, independent of reference/cells.py) gives the same result before and after a
   folding round trip.
3. Gate orders are right, proven against the real frameworks (each skipped with a reason
   when missing): set weights through the converter, run ONE step of the framework cell,
   compare with the hand-written step.
4. Bad input: every converter raises ValueError naming the argument.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference import layouts as L
from reference.params import LSTMWeights, random_gru, random_lstm

SEEDS = st.integers(0, 2**32 - 1)
SMALL = st.integers(1, 4)
# Example counts follow the hypothesis profile (conftest.py: dev / ci / thorough); the tests
# that build framework layers run a quarter as many (at least 3).
FAST = settings(deadline=None)
FRAMEWORK = settings(max_examples=max(3, settings.default.max_examples // 4), deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------ hand-written one-step cells

def _sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def np_lstm_step(w, x, h, c):
    """Canonical semantics written out: gates i, f, g, o (rows of W, R); i and f peek at
    c_{t-1}, o at the new (clipped) c; forget_bias adds to f; h = W_proj (o * tanh c)."""
    H = w.W.shape[0] // 4
    b = sum(v for v in (w.b_x, w.b_h) if v is not None) if (w.b_x is not None or w.b_h is not None) else 0.0
    a = x @ w.W.T + h @ w.R.T + b
    ai, af, ag, ao = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
    if w.peephole is not None:
        ai = ai + w.peephole[0] * c
        af = af + w.peephole[1] * c
    i, f, g = _sig(ai), _sig(af + w.forget_bias), np.tanh(ag)
    c_new = f * c + i * g
    if w.cell_clip is not None:
        c_new = np.clip(c_new, -w.cell_clip, w.cell_clip)
    if w.peephole is not None:
        ao = ao + w.peephole[2] * c_new
    m = _sig(ao) * np.tanh(c_new)
    h_new = m @ w.W_proj.T if w.W_proj is not None else m
    return h_new, c_new


def np_gru_step(w, x, h):
    """Canonical GRU: rows r, z, n; reset_after: n = tanh(W_n x + b_xn + r * (R_n h + b_hn)),
    else n = tanh(W_n x + b_xn + R_n (r * h) + b_hn); h' = (1 - z) n + z h."""
    H = w.W.shape[0] // 3
    b_x = np.zeros(3 * H) if w.b_x is None else w.b_x
    b_h = np.zeros(3 * H) if w.b_h is None else w.b_h
    gx = x @ w.W.T + b_x
    gh = h @ w.R[:2 * H].T + b_h[:2 * H]
    r = _sig(gx[:, :H] + gh[:, :H])
    z = _sig(gx[:, H:2 * H] + gh[:, H:2 * H])
    if w.reset_after:
        n = np.tanh(gx[:, 2 * H:] + r * (h @ w.R[2 * H:].T + b_h[2 * H:]))
    else:
        n = np.tanh(gx[:, 2 * H:] + (r * h) @ w.R[2 * H:].T + b_h[2 * H:])
    return (1 - z) * n + z * h


def _state(rng, w, B, scale=1.0):
    x = rng.uniform(-scale, scale, (B, w.W.shape[1]))
    h = rng.uniform(-scale, scale, (B, w.R.shape[1]))
    c = rng.uniform(-scale, scale, (B, w.W.shape[0] // 4)) if isinstance(w, LSTMWeights) else None
    return x, h, c


def _step(w, x, h, c):
    return np_lstm_step(w, x, h, c) if isinstance(w, LSTMWeights) else (np_gru_step(w, x, h), None)


def _replace(w, **kw):
    return dataclasses.replace(w, **kw)


def _round32(w):
    """The weights as a float32 framework holds them, back in float64."""
    return _replace(w, **{k: getattr(w, k).astype(np.float32).astype(np.float64) for k in w.array_names()})


# ------------------------------------------------------------------ variants: what each layout expresses

def _b_h_only(w):
    return _replace(w, b_h=w.b_x, b_x=None)


def _zero_rz(b, H):
    b = b.copy()
    b[:2 * H] = 0
    return b


# name -> (layout, to_kwargs, exact(rng, I, H): canonical weights the layout holds without folding,
#          full(rng, I, H): canonical weights with everything the layout accepts by folding)
VARIANTS = {
    "torch_lstm": ("torch_lstm", {}, lambda r, I, H: random_lstm(r, I, H),
                   lambda r, I, H: random_lstm(r, I, H, forget_bias=0.75)),
    "torch_lstm_proj": ("torch_lstm", {}, lambda r, I, H: random_lstm(r, I, H + 1, proj_size=H),
                        lambda r, I, H: random_lstm(r, I, H + 1, proj_size=H, forget_bias=-0.5)),
    "torch_lstm_nobias": ("torch_lstm", {"bias": False}, lambda r, I, H: random_lstm(r, I, H, biases=False),
                          lambda r, I, H: random_lstm(r, I, H, biases=False)),
    "torch_gru": ("torch_gru", {}, lambda r, I, H: random_gru(r, I, H), lambda r, I, H: random_gru(r, I, H)),
    "torch_gru_nobias": ("torch_gru", {"bias": False}, lambda r, I, H: random_gru(r, I, H, biases=False),
                         lambda r, I, H: random_gru(r, I, H, biases=False)),
    "keras_lstm": ("keras_lstm", {}, lambda r, I, H: _replace(random_lstm(r, I, H), b_h=None),
                   lambda r, I, H: random_lstm(r, I, H, forget_bias=1.0)),
    "keras_lstm_nobias": ("keras_lstm", {"use_bias": False}, lambda r, I, H: random_lstm(r, I, H, biases=False),
                          lambda r, I, H: random_lstm(r, I, H, biases=False)),
    "keras_gru": ("keras_gru", {}, lambda r, I, H: random_gru(r, I, H), lambda r, I, H: random_gru(r, I, H)),
    "keras_gru_reset_before": ("keras_gru", {}, lambda r, I, H: random_gru(r, I, H, reset_after=False, hidden_bias=False),
                               lambda r, I, H: random_gru(r, I, H, reset_after=False)),
    "keras_gru_nobias": ("keras_gru", {"use_bias": False}, lambda r, I, H: random_gru(r, I, H, biases=False),
                         lambda r, I, H: random_gru(r, I, H, biases=False)),
    "keras_gru_reset_before_nobias": ("keras_gru", {"use_bias": False},
                                      lambda r, I, H: random_gru(r, I, H, reset_after=False, biases=False),
                                      lambda r, I, H: random_gru(r, I, H, reset_after=False, biases=False)),
    "tf_keras_lstm": ("tf_keras_lstm", {}, lambda r, I, H: _replace(random_lstm(r, I, H), b_h=None),
                      lambda r, I, H: random_lstm(r, I, H)),
    "tf_keras_gru": ("tf_keras_gru", {}, lambda r, I, H: random_gru(r, I, H, reset_after=False, hidden_bias=False),
                     lambda r, I, H: random_gru(r, I, H, reset_after=False)),
    "block_lstm": ("block_lstm", {},
                   lambda r, I, H: _replace(random_lstm(r, I, H, peephole=True, forget_bias=0.5, cell_clip=0.75), b_h=None),
                   lambda r, I, H: random_lstm(r, I, H, peephole=True, forget_bias=0.5, cell_clip=0.75)),
    "block_lstm_plain": ("block_lstm", {}, lambda r, I, H: _replace(random_lstm(r, I, H), b_h=None),
                         lambda r, I, H: random_lstm(r, I, H)),
    "block_lstm_v2": ("block_lstm_v2", {},
                      lambda r, I, H: _replace(random_lstm(r, I, H, peephole=True, cell_clip=2.0), b_h=None),
                      lambda r, I, H: random_lstm(r, I, H, peephole=True, forget_bias=1.0, cell_clip=2.0)),
    "onnx_lstm": ("onnx_lstm", {}, lambda r, I, H: [random_lstm(r, I, H, peephole=True)],
                  lambda r, I, H: [random_lstm(r, I, H, peephole=True, forget_bias=1.0)]),
    "onnx_lstm_bidir": ("onnx_lstm", {}, lambda r, I, H: [random_lstm(r, I, H), random_lstm(r, I, H)],
                        lambda r, I, H: [random_lstm(r, I, H), random_lstm(r, I, H, forget_bias=0.25)]),
    "onnx_gru": ("onnx_gru", {}, lambda r, I, H: [random_gru(r, I, H), random_gru(r, I, H)],
                 lambda r, I, H: [random_gru(r, I, H), random_gru(r, I, H)]),
    "onnx_gru_reset_before": ("onnx_gru", {}, lambda r, I, H: [random_gru(r, I, H, reset_after=False)],
                              lambda r, I, H: [random_gru(r, I, H, reset_after=False)]),
    "flax_lstm": ("flax_lstm", {}, lambda r, I, H: _b_h_only(random_lstm(r, I, H)),
                  lambda r, I, H: random_lstm(r, I, H, forget_bias=1.0)),
    "flax_optimized_lstm": ("flax_optimized_lstm", {}, lambda r, I, H: _b_h_only(random_lstm(r, I, H)),
                            lambda r, I, H: random_lstm(r, I, H)),
    "flax_gru": ("flax_gru", {}, lambda r, I, H: (lambda w: _replace(w, b_h=_zero_rz(w.b_h, H)))(random_gru(r, I, H)),
                 lambda r, I, H: random_gru(r, I, H)),
    "nnx_lstm": ("nnx_lstm", {}, lambda r, I, H: _b_h_only(random_lstm(r, I, H)),
                 lambda r, I, H: random_lstm(r, I, H, forget_bias=1.0)),
    "nnx_optimized_lstm": ("nnx_optimized_lstm", {}, lambda r, I, H: _b_h_only(random_lstm(r, I, H)),
                           lambda r, I, H: random_lstm(r, I, H, forget_bias=-1.0)),
    "nnx_gru": ("nnx_gru", {}, lambda r, I, H: random_gru(r, I, H, hidden_bias=False),
                lambda r, I, H: (lambda w: _replace(w, b_h=np.concatenate([w.b_h[:2 * H], np.zeros(H)])))(
                    random_gru(r, I, H))),
}


# Layer configuration the arrays cannot tell (a bias-less Keras GRU does not show reset_after).
FROM_KW = {"keras_gru_reset_before_nobias": {"reset_after": False}}


def test_every_layout_has_a_variant():
    assert set(L.LAYOUTS) == {v[0] for v in VARIANTS.values()}
    for name, (from_fn, to_fn, cell) in L.LAYOUTS.items():
        assert cell in ("lstm", "gru") and callable(from_fn) and callable(to_fn), name


def _as_list(w):
    return w if isinstance(w, list) else [w]


def _flatten(d, prefix=""):
    """{path: value} for a nested dict, path like "params['ii']['kernel']" / "weight_ih"."""
    out = {}
    for k, v in d.items():
        path = f"{prefix}[{k!r}]" if prefix else k
        if isinstance(v, dict):
            out.update(_flatten(v, path))
        else:
            out[path] = v
    return out


def _map_arrays(d, fn, path=""):
    out = {}
    for k, v in d.items():
        p = f"{path}[{k!r}]" if path else k
        out[k] = _map_arrays(v, fn, p) if isinstance(v, dict) else (fn(p, v) if isinstance(v, np.ndarray) else v)
    return out


def assert_weights_identical(a, b):
    a, b = _as_list(a), _as_list(b)
    assert len(a) == len(b)
    for wa, wb in zip(a, b):
        assert type(wa) is type(wb)
        for f in dataclasses.fields(wa):
            va, vb = getattr(wa, f.name), getattr(wb, f.name)
            if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
                assert isinstance(va, np.ndarray) and isinstance(vb, np.ndarray), f.name
                assert va.dtype == vb.dtype and va.shape == vb.shape, f.name
                assert np.array_equal(va, vb), f.name
            else:
                assert va == vb, f.name


def assert_layout_identical(d1, d2):
    f1, f2 = _flatten(d1), _flatten(d2)
    assert list(f1) == list(f2)
    for k in f1:
        if isinstance(f1[k], np.ndarray):
            assert f1[k].dtype == f2[k].dtype and f1[k].shape == f2[k].shape, k
            assert np.array_equal(f1[k], f2[k]), k
        else:
            assert f1[k] == f2[k] and type(f1[k]) is type(f2[k]), k


# ------------------------------------------------------------------ 1. exact round trips

@pytest.mark.parametrize("variant", sorted(VARIANTS))
@FAST
@given(I=SMALL, H=SMALL, seed=SEEDS)
def test_canonical_round_trip_is_exact(variant, I, H, seed):
    layout, kw, exact, _ = VARIANTS[variant]
    from_fn, to_fn, _cell = L.LAYOUTS[layout]
    w = exact(np.random.default_rng(seed), I, H)
    assert_weights_identical(from_fn(**to_fn(w, **kw), **FROM_KW.get(variant, {})), w)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@FAST
@given(I=SMALL, H=SMALL, seed=SEEDS, dtype=st.sampled_from([np.float32, np.float64]))
def test_layout_round_trip_is_bitwise(variant, I, H, seed, dtype):
    """Arbitrary arrays in the framework's layout (here float32 too) survive a trip through
    the canonical format bit for bit, dtype included."""
    layout, kw, exact, _ = VARIANTS[variant]
    from_fn, to_fn, _cell = L.LAYOUTS[layout]
    rng = np.random.default_rng(seed)
    d = to_fn(exact(rng, I, H), **kw)

    def fresh(path, a):
        if path in ("wci", "wcf", "wco") and not d["use_peephole"]:
            return np.zeros_like(a, dtype)  # not read by the op, not kept
        return rng.standard_normal(a.shape).astype(dtype)

    native = _map_arrays(d, fresh)
    back = to_fn(from_fn(**native, **FROM_KW.get(variant, {})), **kw)
    assert_layout_identical(back, native)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@FAST
@given(I=SMALL, H=SMALL, B=st.integers(1, 3), seed=SEEDS)
def test_folding_is_exact(variant, I, H, B, seed):
    """Canonical weights using every feature the layout accepts (two biases, forget_bias,
    GRU b_h for r and z ...) compute the same step after layout -> canonical."""
    layout, kw, _, full = VARIANTS[variant]
    from_fn, to_fn, _cell = L.LAYOUTS[layout]
    rng = np.random.default_rng(seed)
    ws = _as_list(full(rng, I, H))
    back = _as_list(from_fn(**to_fn(ws if layout.startswith("onnx") else ws[0], **kw), **FROM_KW.get(variant, {})))
    for w, w2 in zip(ws, back):
        x, h, c = _state(rng, w, B, scale=2.0)
        for a, b in zip(_step(w, x, h, c), _step(w2, x, h, c)):
            if a is not None:
                np.testing.assert_allclose(b, a, rtol=0, atol=1e-13)


def test_hand_written_steps_tell_gates_apart():
    """Sanity for section 3: permuting the gate blocks of random weights changes one step by
    far more than any tolerance used below, so a wrong gate order cannot pass."""
    for seed in range(5):
        rng = np.random.default_rng(seed)
        for w in (random_lstm(rng, 3, 4, peephole=True, forget_bias=0.5, cell_clip=1.0), random_gru(rng, 3, 4),
                  random_gru(rng, 3, 4, reset_after=False)):
            G = 4 if isinstance(w, LSTMWeights) else 3
            x, h, c = _state(rng, w, 3)
            ref = _step(w, x, h, c)[0]
            for perm in itertools.permutations(range(G)):
                if perm == tuple(range(G)):
                    continue
                kw = {k: L._blocks(getattr(w, k), perm) for k in ("W", "R", "b_x", "b_h")}
                assert np.max(np.abs(_step(_replace(w, **kw), x, h, c)[0] - ref)) > 1e-3, (seed, perm)


# ------------------------------------------------------------------ 3. real frameworks, one step

@contextlib.contextmanager
def _jax_x64():
    jax = pytest.importorskip("jax")
    old = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)
    try:
        yield jax
    finally:
        jax.config.update("jax_enable_x64", old)


def _close(actual, expected, atol=1e-12):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=0, atol=atol)


@FRAMEWORK
@given(I=SMALL, H=st.integers(2, 5), P=st.integers(0, 4), B=st.integers(1, 3), bias=st.booleans(), seed=SEEDS)
def test_torch_lstm_step(I, H, P, B, bias, seed):
    torch = pytest.importorskip("torch")
    P = P if 0 < P < H else 0
    rng = np.random.default_rng(seed)
    w = random_lstm(rng, I, H, proj_size=P or None, biases=bias, forget_bias=0.5 if bias else 0.0)
    m = torch.nn.LSTM(I, H, proj_size=P, bias=bias).double()
    d = L.to_torch_lstm(w, bias=bias)
    names = {k + L.torch_suffix(0) for k in d}
    assert names == set(dict(m.named_parameters())), "converter names differ from torch's"
    with torch.no_grad():
        for k, v in d.items():
            getattr(m, k + L.torch_suffix(0)).copy_(torch.from_numpy(v))
    x, h, c = _state(rng, w, B)
    y, (hn, cn) = m(torch.from_numpy(x[None]), (torch.from_numpy(h[None]), torch.from_numpy(c[None])))
    h_ref, c_ref = np_lstm_step(w, x, h, c)
    _close(y.detach().numpy()[0], h_ref)
    _close(cn.detach().numpy()[0], c_ref)
    assert_weights_identical(L.from_torch_lstm(**{k: getattr(m, k + "_l0").detach().numpy() for k in d}),
                             L.from_torch_lstm(**d))


@FRAMEWORK
@given(I=SMALL, H=SMALL, B=st.integers(1, 3), bias=st.booleans(), seed=SEEDS)
def test_torch_gru_step(I, H, B, bias, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    w = random_gru(rng, I, H, biases=bias)
    m = torch.nn.GRU(I, H, bias=bias, bidirectional=True).double()
    w_rev = random_gru(rng, I, H, biases=bias)
    for rev, ww in ((False, w), (True, w_rev)):
        d = L.to_torch_gru(ww, bias=bias)
        with torch.no_grad():
            for k, v in d.items():
                getattr(m, k + L.torch_suffix(0, rev)).copy_(torch.from_numpy(v))
    assert {k + s for k in d for s in (L.torch_suffix(0), L.torch_suffix(0, True))} == set(dict(m.named_parameters()))
    x, h, _ = _state(rng, w, B)
    h_rev = rng.uniform(-1, 1, h.shape)
    y, hn = m(torch.from_numpy(x[None]), torch.from_numpy(np.stack([h, h_rev])))
    _close(hn.detach().numpy()[0], np_gru_step(w, x, h))
    _close(hn.detach().numpy()[1], np_gru_step(w_rev, x, h_rev))


def _keras():
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3."):
        pytest.skip(f"keras {keras.__version__} is not Keras 3")
    return keras


def _keras_short(name):
    return re.split(r"[/:]", name)[-2] if ":" in name else name.split("/")[-1]


def _run_keras_lstm(layers, w, x, h, c, use_bias, conv=np.asarray):
    H = w.W.shape[0] // 4
    layer = layers.LSTM(H, return_state=True, dtype="float64", use_bias=use_bias)
    layer.build((None, 1, w.W.shape[1]))
    d = L.to_keras_lstm(w, use_bias=use_bias)
    assert [_keras_short(v.name) for v in layer.weights] == list(d)
    layer.set_weights(list(d.values()))
    y, hn, cn = layer(conv(x[:, None, :]), initial_state=[conv(h), conv(c)])
    return np.asarray(y), np.asarray(hn), np.asarray(cn)


def _run_keras_gru(layers, w, x, h, use_bias, conv=np.asarray):
    H = w.W.shape[0] // 3
    layer = layers.GRU(H, return_state=True, dtype="float64", use_bias=use_bias, reset_after=w.reset_after)
    layer.build((None, 1, w.W.shape[1]))
    d = L.to_keras_gru(w, use_bias=use_bias)
    assert [_keras_short(v.name) for v in layer.weights] == list(d)
    layer.set_weights(list(d.values()))
    y, hn = layer(conv(x[:, None, :]), initial_state=[conv(h)])
    return np.asarray(y), np.asarray(hn)


@FRAMEWORK
@given(I=SMALL, H=SMALL, B=st.integers(1, 3), use_bias=st.booleans(), seed=SEEDS)
def test_keras3_lstm_step(I, H, B, use_bias, seed):
    keras = _keras()
    rng = np.random.default_rng(seed)
    w = random_lstm(rng, I, H, biases=use_bias, forget_bias=1.0 if use_bias else 0.0)
    x, h, c = _state(rng, w, B)
    y, hn, cn = _run_keras_lstm(keras.layers, w, x, h, c, use_bias)
    h_ref, c_ref = np_lstm_step(w, x, h, c)
    _close(hn, h_ref)
    _close(cn, c_ref)


@FRAMEWORK
@given(I=SMALL, H=SMALL, B=st.integers(1, 3), reset_after=st.booleans(), use_bias=st.booleans(), seed=SEEDS)
def test_keras3_gru_step(I, H, B, reset_after, use_bias, seed):
    keras = _keras()
    rng = np.random.default_rng(seed)
    w = random_gru(rng, I, H, reset_after=reset_after, biases=use_bias)
    x, h, _ = _state(rng, w, B)
    y, hn = _run_keras_gru(keras.layers, w, x, h, use_bias)
    _close(hn, np_gru_step(w, x, h))


def _tf_keras():
    """tf-keras imports and runs next to Keras 3 in one process (TF_USE_LEGACY_KERAS only
    changes what ``tf.keras`` points to); it wants TF tensors, not NumPy arrays, as states."""
    tf = pytest.importorskip("tensorflow")
    tf_keras = pytest.importorskip("tf_keras", reason="tf-keras (Keras 2) is not installed")
    return tf_keras, tf.constant


@FRAMEWORK
@given(I=SMALL, H=SMALL, B=st.integers(1, 3), seed=SEEDS)
def test_tf_keras_lstm_step(I, H, B, seed):
    tf_keras, conv = _tf_keras()
    rng = np.random.default_rng(seed)
    w = random_lstm(rng, I, H, forget_bias=1.0)
    x, h, c = _state(rng, w, B)
    y, hn, cn = _run_keras_lstm(tf_keras.layers, w, x, h, c, True, conv)
    h_ref, c_ref = np_lstm_step(w, x, h, c)
    _close(hn, h_ref)
    _close(cn, c_ref)


@FRAMEWORK
@given(I=SMALL, H=SMALL, B=st.integers(1, 3), reset_after=st.booleans(), seed=SEEDS)
def test_tf_keras_gru_step(I, H, B, reset_after, seed):
    tf_keras, conv = _tf_keras()
    rng = np.random.default_rng(seed)
    w = random_gru(rng, I, H, reset_after=reset_after)
    x, h, _ = _state(rng, w, B)
    y, hn = _run_keras_gru(tf_keras.layers, w, x, h, True, conv)
    _close(hn, np_gru_step(w, x, h))


def _block_lstm_run(tf, op, d, x, h, c):
    out = op(seq_len_max=np.int64(1), x=x[None].astype(np.float32), cs_prev=c.astype(np.float32),
             h_prev=h.astype(np.float32), **d)
    return out.h.numpy()[0].astype(np.float64), out.cs.numpy()[0].astype(np.float64)


@FRAMEWORK
@given(I=SMALL, H=SMALL, B=st.integers(1, 3), v2=st.booleans(), peephole=st.booleans(),
       forget_bias=st.sampled_from([0.0, 1.0, -0.5, 0.75]), clip=st.sampled_from([None, 0.25, 0.5, 1.5]),
       seed=SEEDS)
def test_block_lstm_step(I, H, B, v2, peephole, forget_bias, clip, seed):
    """tf.raw_ops.BlockLSTM (ICFO) / BlockLSTMV2 (IFCO): peepholes, forget_bias, cell_clip.
    float32 only: compared at 2e-6 with the weights rounded to float32."""
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(seed)
    w = _round32(random_lstm(rng, I, H, peephole=peephole, forget_bias=forget_bias, cell_clip=clip, scale=1.0))
    x, h, c = (a.astype(np.float32).astype(np.float64) for a in _state(rng, w, B, scale=2.0))
    op = tf.raw_ops.BlockLSTMV2 if v2 else tf.raw_ops.BlockLSTM
    d = (L.to_block_lstm_v2 if v2 else L.to_block_lstm)(w, dtype=np.float32)
    h_tf, c_tf = _block_lstm_run(tf, op, d, x, h, c)
    h_ref, c_ref = np_lstm_step(w, x, h, c)
    _close(c_tf, c_ref, atol=2e-6)
    _close(h_tf, h_ref, atol=2e-6)


def test_block_lstm_cell_clip_semantics():
    """Kernel source: ``if (cell_clip > 0.0f) cs = clip(cs, -cell_clip, cell_clip)``.
    BlockLSTM's default cell_clip=3 clips; 0 and negative values do not; V2's default 0 does not."""
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(7)
    w = _round32(random_lstm(rng, 2, 4, forget_bias=0.0, scale=0.1))
    B = 6
    x = rng.uniform(-1, 1, (B, 2)).astype(np.float32).astype(np.float64)
    h = np.zeros((B, 4))
    c = np.where(rng.uniform(size=(B, 4)) < 0.5, -8.0, 8.0)  # f ~ 0.5: |c_new| ~ 4 > 3
    d = L.to_block_lstm(w, dtype=np.float32)
    assert d["cell_clip"] == 0.0  # canonical "no clip" is written out explicitly
    _, c_off = _block_lstm_run(tf, tf.raw_ops.BlockLSTM, d, x, h, c)
    assert np.max(np.abs(c_off)) > 3.5
    _close(c_off, np_lstm_step(w, x, h, c)[1], atol=2e-6)
    for off in (-1.0, -3.0):
        np.testing.assert_array_equal(_block_lstm_run(tf, tf.raw_ops.BlockLSTM, {**d, "cell_clip": off}, x, h, c)[1], c_off)
    # The op's default (attribute omitted) clips at 3, as from_block_lstm's default says.
    defaults = {k: v for k, v in d.items() if k not in ("cell_clip", "forget_bias")}
    _, c_def = _block_lstm_run(tf, tf.raw_ops.BlockLSTM, {**defaults, "forget_bias": 0.0}, x, h, c)
    assert np.max(np.abs(c_def)) == pytest.approx(3.0)
    w_def = L.from_block_lstm(**{k: v for k, v in defaults.items() if k != "use_peephole"})
    assert w_def.cell_clip == 3.0 and w_def.forget_bias == 1.0
    _close(c_def, np_lstm_step(_replace(w_def, forget_bias=0.0), x, h, c)[1], atol=2e-6)
    # V2: default cell_clip is 0 (off).
    d2 = {k: v for k, v in L.to_block_lstm_v2(w, dtype=np.float32).items() if k != "cell_clip"}
    _, c_v2 = _block_lstm_run(tf, tf.raw_ops.BlockLSTMV2, d2, x, h, c)
    np.testing.assert_allclose(c_v2, c_off, atol=2e-6)
    assert L.from_block_lstm_v2(**d2).cell_clip is None


def test_block_lstm_forget_bias_default():
    """BlockLSTM adds forget_bias (default 1) to the f pre-activation; BlockLSTMV2 has none."""
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(3)
    w = _round32(random_lstm(rng, 3, 2, scale=1.0))
    x, h, c = (a.astype(np.float32).astype(np.float64) for a in _state(rng, w, 2))
    d = {k: v for k, v in L.to_block_lstm(w, dtype=np.float32).items() if k != "forget_bias"}
    h_tf, c_tf = _block_lstm_run(tf, tf.raw_ops.BlockLSTM, d, x, h, c)
    w1 = L.from_block_lstm(**d)
    assert w1.forget_bias == 1.0
    _close(c_tf, np_lstm_step(_replace(w, forget_bias=1.0), x, h, c)[1], atol=2e-6)
    _close(c_tf, np_lstm_step(w1, x, h, c)[1], atol=2e-6)


def _onnx_run(engine, op, inputs, attrs, out_shapes):
    """One ONNX node run by onnxruntime (float32: its CPU LSTM/GRU kernels refuse double) or by
    the onnx reference evaluator (float64)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    dt, np_dt = (TensorProto.FLOAT, np.float32) if engine == "onnxruntime" else (TensorProto.DOUBLE, np.float64)
    feeds = {k: v.astype(np_dt) for k, v in inputs.items() if v is not None}
    node = helper.make_node(op, [k if v is not None else "" for k, v in inputs.items()],
                            [f"out{i}" for i in range(len(out_shapes))], **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(k, dt, v.shape) for k, v in feeds.items()],
        [helper.make_tensor_value_info(f"out{i}", dt, s) for i, s in enumerate(out_shapes)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    if engine == "onnxruntime":
        ort = pytest.importorskip("onnxruntime")
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return [o.astype(np.float64) for o in sess.run(None, feeds)]
    from onnx.reference import ReferenceEvaluator
    return ReferenceEvaluator(model).run(None, feeds)


ONNX_ENGINES = st.sampled_from(["onnxruntime", "onnx.reference"])


def _onnx_prepare(engine, ws, *arrays):
    """float32 engines: round weights and inputs so only arithmetic error remains."""
    if engine != "onnxruntime":
        return 1e-12, ws, arrays
    return 2e-6, [_round32(w) for w in ws], tuple(np.asarray(a, np.float32).astype(np.float64) for a in arrays)


@FRAMEWORK
@given(I=SMALL, H=SMALL, B=st.integers(1, 3), bidir=st.booleans(), peephole=st.booleans(), engine=ONNX_ENGINES,
       seed=SEEDS)
def test_onnx_lstm_step(I, H, B, bidir, peephole, engine, seed):
    rng = np.random.default_rng(seed)
    D = 2 if bidir else 1
    ws = [random_lstm(rng, I, H, peephole=peephole, forget_bias=0.5, scale=1.0) for _ in range(D)]
    atol, ws, (x, hs, cs) = _onnx_prepare(engine, ws, rng.uniform(-1, 1, (B, I)), rng.uniform(-1, 1, (D, B, H)),
                                          rng.uniform(-1, 1, (D, B, H)))
    d = L.to_onnx_lstm(ws)
    assert ("P" in d) == peephole
    y, yh, yc = _onnx_run(engine, "LSTM", {"X": x[None], "W": d["W"], "R": d["R"], "B": d["B"],
                                           "sequence_lens": None, "initial_h": hs, "initial_c": cs, "P": d.get("P")},
                          {"hidden_size": H, "direction": "bidirectional" if bidir else "forward"},
                          [(1, D, B, H), (D, B, H), (D, B, H)])
    for k, w in enumerate(ws):
        h_ref, c_ref = np_lstm_step(w, x, hs[k], cs[k])
        _close(yh[k], h_ref, atol)
        _close(yc[k], c_ref, atol)


@FRAMEWORK
@given(I=SMALL, H=SMALL, B=st.integers(1, 3), bidir=st.booleans(), reset_after=st.booleans(), engine=ONNX_ENGINES,
       seed=SEEDS)
def test_onnx_gru_step(I, H, B, bidir, reset_after, engine, seed):
    rng = np.random.default_rng(seed)
    D = 2 if bidir else 1
    ws = [random_gru(rng, I, H, reset_after=reset_after, scale=1.0) for _ in range(D)]
    atol, ws, (x, hs) = _onnx_prepare(engine, ws, rng.uniform(-1, 1, (B, I)), rng.uniform(-1, 1, (D, B, H)))
    d = L.to_onnx_gru(ws)
    y, yh = _onnx_run(engine, "GRU", {"X": x[None], "W": d["W"], "R": d["R"], "B": d["B"], "sequence_lens": None,
                                      "initial_h": hs},
                      {"hidden_size": H, "direction": "bidirectional" if bidir else "forward",
                       "linear_before_reset": d["linear_before_reset"]}, [(1, D, B, H), (D, B, H)])
    for k, w in enumerate(ws):
        _close(yh[k], np_gru_step(w, x, hs[k]), atol)


def _shapes(tree):
    return {k: _shapes(v) if isinstance(v, dict) else tuple(v.shape) for k, v in tree.items()}


@FRAMEWORK
@given(I=SMALL, H=SMALL, B=st.integers(1, 3), optimized=st.booleans(), seed=SEEDS)
def test_flax_linen_lstm_step(I, H, B, optimized, seed):
    with _jax_x64() as jax:
        nn = pytest.importorskip("flax.linen")
        import jax.numpy as jnp
        rng = np.random.default_rng(seed)
        w = random_lstm(rng, I, H, forget_bias=1.0)
        x, h, c = _state(rng, w, B)
        cls = nn.OptimizedLSTMCell if optimized else nn.LSTMCell
        cell = cls(features=H, param_dtype=jnp.float64, dtype=jnp.float64)
        variables = L.to_flax_lstm(w)
        init = jax.device_get(cell.init(jax.random.key(0), (jnp.asarray(c), jnp.asarray(h)), jnp.asarray(x)))
        assert _shapes(init) == _shapes(variables), "params tree differs from flax's"
        (cn, hn), y = cell.apply(variables, (jnp.asarray(c), jnp.asarray(h)), jnp.asarray(x))
        assert hn.dtype == jnp.float64
        h_ref, c_ref = np_lstm_step(w, x, h, c)
        _close(hn, h_ref)
        _close(cn, c_ref)


@FRAMEWORK
@given(I=SMALL, H=SMALL, B=st.integers(1, 3), seed=SEEDS)
def test_flax_linen_gru_step(I, H, B, seed):
    with _jax_x64() as jax:
        nn = pytest.importorskip("flax.linen")
        import jax.numpy as jnp
        rng = np.random.default_rng(seed)
        w = random_gru(rng, I, H)  # b_h for r and z is folded into the input side
        x, h, _ = _state(rng, w, B)
        cell = nn.GRUCell(features=H, param_dtype=jnp.float64, dtype=jnp.float64)
        variables = L.to_flax_gru(w)
        init = jax.device_get(cell.init(jax.random.key(0), jnp.asarray(h), jnp.asarray(x)))
        assert _shapes(init) == _shapes(variables), "params tree differs from flax's"
        hn, _ = cell.apply(variables, jnp.asarray(h), jnp.asarray(x))
        _close(hn, np_gru_step(w, x, h))


@FRAMEWORK
@given(I=SMALL, H=SMALL, B=st.integers(1, 3), kind=st.sampled_from(["LSTMCell", "OptimizedLSTMCell", "GRUCell"]),
       seed=SEEDS)
def test_flax_nnx_step(I, H, B, kind, seed):
    with _jax_x64():
        nnx = pytest.importorskip("flax.nnx")
        import jax.numpy as jnp
        rng = np.random.default_rng(seed)
        cell = getattr(nnx, kind)(I, H, rngs=nnx.Rngs(0), param_dtype=jnp.float64, dtype=jnp.float64)
        if kind == "GRUCell":
            w = random_gru(rng, I, H)
            w = _replace(w, b_h=np.concatenate([w.b_h[:2 * H], np.zeros(H)]))  # nnx GRUCell has no b_hn
            tree = L.to_nnx_gru(w)
        else:
            w = random_lstm(rng, I, H, forget_bias=0.5)
            tree = (L.to_nnx_lstm if kind == "LSTMCell" else L.to_nnx_optimized_lstm)(w)
        state = nnx.state(cell, nnx.Param)
        assert _shapes(nnx.to_pure_dict(state)) == _shapes(tree), "state tree differs from flax's"
        nnx.replace_by_pure_dict(state, {k: {p: jnp.asarray(a) for p, a in v.items()} for k, v in tree.items()})
        nnx.update(cell, state)
        x, h, c = _state(rng, w, B)
        if kind == "GRUCell":
            hn, _ = cell(jnp.asarray(h), jnp.asarray(x))
            _close(hn, np_gru_step(w, x, h))
        else:
            (cn, hn), _ = cell((jnp.asarray(c), jnp.asarray(h)), jnp.asarray(x))
            h_ref, c_ref = np_lstm_step(w, x, h, c)
            _close(hn, h_ref)
            _close(cn, c_ref)


def test_flax_nnx_gru_really_has_no_candidate_bias():
    """The nnx GRUCell docstring writes ``r * (W_hn h + b_hn)`` but dense_h has no bias:
    hence to_nnx_gru refuses a nonzero b_h[n]."""
    nnx = pytest.importorskip("flax.nnx")
    cell = nnx.GRUCell(2, 3, rngs=nnx.Rngs(0))
    assert "bias" not in nnx.to_pure_dict(nnx.state(cell, nnx.Param))["dense_h"]
    with pytest.raises(ValueError, match=r"weights\.b_h"):
        L.to_nnx_gru(random_gru(np.random.default_rng(0), 2, 3))


# ------------------------------------------------------------------ 4. bad input

def _msg_names(exc, name):
    return name in str(exc.value)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_array_with_wrong_rank_or_nan_is_named(variant):
    layout, kw, exact, _ = VARIANTS[variant]
    from_fn, to_fn, _cell = L.LAYOUTS[layout]
    d = to_fn(exact(np.random.default_rng(1), 3, 2), **kw)
    for path, a in _flatten(d).items():
        if not isinstance(a, np.ndarray):
            continue
        for bad in (a[..., None], np.full_like(a, np.nan)):
            native = _map_arrays(d, lambda p, v: bad if p == path else v)
            with pytest.raises(ValueError) as exc:
                from_fn(**native)
            assert _msg_names(exc, path), (path, str(exc.value))


def _set(d, path, value):
    """Copy of nested dict d with the leaf at `path` (a tuple of keys) replaced or removed."""
    out = dict(d)
    if len(path) == 1:
        if value is None:
            out.pop(path[0])
        else:
            out[path[0]] = value
    else:
        out[path[0]] = _set(d[path[0]], path[1:], value)
    return out


def _grow(axis, by=1):
    def f(a):
        pad = [(0, 0)] * a.ndim
        pad[axis] = (0, by)
        return np.pad(a, pad)
    return f


# (variant, path of the bad argument, transform -> bad value or None to remove, extra kwargs,
#  name the message must contain). I=3, H=2 (torch_lstm_proj: H=3, P=2).
BAD = [
    ("torch_lstm", ("weight_ih",), _grow(0), {}, "weight_ih"),
    ("torch_lstm", ("weight_hh",), _grow(1), {}, "weight_hh"),
    ("torch_lstm", ("weight_hh",), _grow(0, 4), {}, "weight_hh"),
    ("torch_lstm", ("bias_ih",), _grow(0), {}, "bias_ih"),
    ("torch_lstm", ("bias_hh",), _grow(0, 4), {}, "bias_hh"),
    ("torch_lstm_proj", ("weight_hr",), _grow(1), {}, "weight_hr"),
    ("torch_lstm_proj", ("weight_hr",), None, {}, "weight_hh"),  # R has P columns, not H
    ("torch_gru", ("weight_ih",), _grow(0, 2), {}, "weight_ih"),
    ("torch_gru", ("bias_hh",), _grow(0, 3), {}, "bias_hh"),
    ("keras_lstm", ("kernel",), _grow(1), {}, "kernel"),
    ("keras_lstm", ("recurrent_kernel",), _grow(0), {}, "recurrent_kernel"),
    ("keras_lstm", ("bias",), _grow(0, 4), {}, "bias"),
    ("keras_gru", ("bias",), _grow(0), {}, "bias"),
    ("keras_gru", ("bias",), lambda a: a[0], {"reset_after": True}, "bias"),
    ("keras_gru", ("kernel",), _grow(1, 2), {}, "kernel"),
    ("keras_gru", ("recurrent_kernel",), _grow(1, 3), {}, "recurrent_kernel"),
    ("keras_gru_reset_before", ("bias",), lambda a: np.stack([a, a]), {"reset_after": False}, "bias"),
    ("keras_gru", ("bias",), lambda a: a, {"reset_after": "yes"}, "reset_after"),
    ("block_lstm", ("w",), _grow(1), {}, "w"),
    ("block_lstm", ("w",), lambda a: a, {"input_size": 2}, "w"),
    ("block_lstm", ("w",), lambda a: a, {"input_size": 0}, "input_size"),
    ("block_lstm", ("b",), _grow(0), {}, "b"),
    ("block_lstm", ("wci",), _grow(0), {}, "wci"),
    ("block_lstm", ("wcf",), None, {}, "wcf"),
    ("block_lstm", ("cell_clip",), lambda a: "3", {}, "cell_clip"),
    ("block_lstm", ("forget_bias",), lambda a: float("nan"), {}, "forget_bias"),
    ("block_lstm", ("use_peephole",), lambda a: 1, {}, "use_peephole"),
    ("block_lstm_plain", ("wco",), _grow(0), {}, "wco"),
    ("block_lstm_v2", ("b",), _grow(0, 4), {}, "b"),
    ("onnx_lstm", ("W",), _grow(1), {}, "W"),
    ("onnx_lstm", ("W",), lambda a: np.concatenate([a, a, a]), {}, "W"),
    ("onnx_lstm", ("R",), _grow(2), {}, "R"),
    ("onnx_lstm_bidir", ("R",), lambda a: a[:1], {}, "R"),
    ("onnx_lstm", ("B",), _grow(1), {}, "B"),
    ("onnx_lstm", ("P",), _grow(1), {}, "P"),
    ("onnx_gru", ("B",), _grow(1, 2), {}, "B"),
    ("onnx_gru", ("linear_before_reset",), lambda a: 2, {}, "linear_before_reset"),
    ("flax_lstm", ("params", "hf", "bias"), _grow(0), {}, "params['hf']['bias']"),
    ("flax_lstm", ("params", "ig", "kernel"), _grow(0), {}, "params['ig']['kernel']"),
    ("flax_lstm", ("params", "ho"), None, {}, "params"),
    ("flax_lstm", ("params", "hi", "bias"), None, {}, "params['hi']"),
    ("flax_gru", ("params", "hn", "bias"), None, {}, "params['hn']"),
    ("flax_gru", ("params", "hr", "kernel"), _grow(1), {}, "params['hr']['kernel']"),
    ("nnx_lstm", ("if_", "kernel"), _grow(1), {}, "if_['kernel']"),
    ("nnx_optimized_lstm", ("dense_h", "bias"), _grow(0), {}, "dense_h['bias']"),
    ("nnx_optimized_lstm", ("dense_i", "kernel"), _grow(1, 2), {}, "dense_i['kernel']"),
    ("nnx_gru", ("dense_h", "kernel"), _grow(0), {}, "dense_h['kernel']"),
    ("nnx_gru", ("dense_i", "bias"), None, {}, "dense_i"),
]


@pytest.mark.parametrize("variant, path, transform, extra, name", BAD,
                         ids=[f"{v}-{'.'.join(p)}-{n}" for v, p, _, _, n in BAD])
def test_bad_shape_is_named(variant, path, transform, extra, name):
    layout, kw, exact, _ = VARIANTS[variant]
    from_fn, to_fn, _cell = L.LAYOUTS[layout]
    d = to_fn(exact(np.random.default_rng(2), 3, 2), **kw)
    leaf = d
    for k in path:
        leaf = leaf[k]
    bad = _set(d, path, None if transform is None else transform(leaf))
    with pytest.raises(ValueError) as exc:
        from_fn(**bad, **extra)
    assert _msg_names(exc, name), str(exc.value)


# Canonical weights a layout cannot express: (layout, to_kwargs, weights, field named).
def _unexpressible():
    r = np.random.default_rng(4)
    lstm = lambda **k: random_lstm(r, 3, 2, **k)  # noqa: E731
    gru = lambda **k: random_gru(r, 3, 2, **k)  # noqa: E731
    cases = []
    for layout in ("torch_lstm", "keras_lstm", "tf_keras_lstm", "flax_lstm", "nnx_lstm", "nnx_optimized_lstm"):
        cases.append((layout, {}, lstm(peephole=True), "weights.peephole"))
        cases.append((layout, {}, lstm(cell_clip=1.0), "weights.cell_clip"))
    for layout in ("keras_lstm", "flax_lstm", "nnx_lstm", "nnx_optimized_lstm", "block_lstm", "block_lstm_v2"):
        cases.append((layout, {}, random_lstm(r, 3, 3, proj_size=2), "weights.W_proj"))
    cases += [
        ("onnx_lstm", {}, [random_lstm(r, 3, 3, proj_size=2)], "weights[0].W_proj"),
        ("onnx_lstm", {}, [lstm(), lstm(cell_clip=2.0)], "weights[1].cell_clip"),
        ("onnx_lstm", {}, [lstm(), random_lstm(r, 4, 2)], "weights[1].W"),
        ("onnx_lstm", {}, [lstm()] * 3, "weights"),
        ("onnx_gru", {}, [gru(), gru(reset_after=False)], "reset_after"),
        ("torch_gru", {}, gru(reset_after=False), "weights.reset_after"),
        ("flax_gru", {}, gru(reset_after=False), "weights.reset_after"),
        ("nnx_gru", {}, gru(reset_after=False), "weights.reset_after"),
        ("nnx_gru", {}, gru(), "weights.b_h"),
        ("torch_lstm", {"bias": False}, lstm(), "weights.b_x"),
        ("torch_lstm", {"bias": False}, lstm(biases=False, forget_bias=1.0), "weights.forget_bias"),
        ("torch_gru", {"bias": False}, _replace(gru(), b_x=None), "weights.b_h"),
        ("keras_lstm", {"use_bias": False}, lstm(), "weights.b_x"),
        ("keras_gru", {"use_bias": False}, gru(reset_after=False), "weights.b_x"),
        ("keras_lstm", {}, gru(), "weights"),
        ("keras_gru", {}, lstm(), "weights"),
        ("keras_lstm", {}, _replace(lstm(), R=np.zeros((8, 3))), "weights.R"),
        ("block_lstm", {}, _replace(lstm(), peephole=np.zeros((2, 2))), "weights.peephole"),
        ("onnx_gru", {}, [_replace(gru(), b_h=np.zeros(5))], "weights[0].b_h"),
        ("flax_gru", {}, _replace(gru(), W=np.zeros((7, 3))), "weights.W"),
        ("torch_lstm", {"dtype": np.int32}, lstm(), "dtype"),
    ]
    return cases


UNEXPRESSIBLE = _unexpressible()


@pytest.mark.parametrize("layout, kw, weights, name", UNEXPRESSIBLE,
                         ids=[f"{c[0]}-{c[3]}" for c in UNEXPRESSIBLE])
def test_unexpressible_or_bad_canonical_is_named(layout, kw, weights, name):
    with pytest.raises(ValueError) as exc:
        L.LAYOUTS[layout].to_fn(weights, **kw)
    assert str(exc.value).startswith(name) or name in str(exc.value), str(exc.value)


def test_no_bias_layouts_accept_zero_biases():
    r = np.random.default_rng(5)
    w = random_lstm(r, 3, 2)
    w0 = _replace(w, b_x=np.zeros(8), b_h=np.zeros(8))
    assert "bias_ih" not in L.to_torch_lstm(w0, bias=False)
    assert "bias" not in L.to_keras_lstm(w0, use_bias=False)


def test_reference_imports_only_numpy():
    """reference/layouts.py must import nothing but numpy and its own package."""
    src = open(os.path.join(os.path.dirname(L.__file__), "layouts.py")).read()
    mods = re.findall(r"^\s*(?:from|import)\s+([\w.]+)", src, re.M)
    assert all(m in ("__future__", "numpy", "collections", "collections.abc") or m.startswith(".")
               for m in mods), mods
