"""TensorFlow's RNN-cell dropout wrapper around an LSTM cell, stepped by hand in eager mode.

Wrappers: ``tf.nn.RNNCellDropoutWrapper`` (``tensorflow/python/keras/layers/rnn_cell_wrapper_v2.py``,
TensorFlow's own frozen copy of the old tf.keras, present in both Keras modes) and, with
``TF_USE_LEGACY_KERAS=1``, ``tf.compat.v1.nn.rnn_cell.DropoutWrapper`` (tf-keras' legacy wrapper).
Cells: Keras 3 ``keras.layers.LSTMCell`` (TF backend), ``tf_keras.layers.LSTMCell`` and the
legacy ``tf.compat.v1.nn.rnn_cell.LSTMCell`` (tf-keras). Neither wrapper runs inside a Keras 3
``RNN`` layer, so the suite runs the time loop itself: ``out, state = wrapper(x_t, state)``. The cells,
weights, wrapper, state conventions and loop are conformance/adapters/tensorflow/dropout_wrapper.py's, shared
with the registry path ``tf.nn.RNNCellDropoutWrapper(keras.layers.LSTMCell)`` (whose dropout semantics
suites/test_fingerprints.py measures through the probe weights).

Masks are observed, not guessed: the wrapped cell's ``call`` is instrumented (it records what it
receives and returns, changing nothing), so per step the input mask is (input the cell saw) /
x_t, the output mask is (wrapper output) / (cell output), the state masks are (state passed to
the next step) / (cell's new state). Then:
- ``test_keep_prob_one``: all keep probabilities 1 -> the plain cell = the reference;
- ``test_wrapper_masks``: each of input / state / output dropout (keep 0.5), variational or not:
  outputs and final states equal ``reference.run`` under the observed masks (input, output,
  state_h, state_c masks with ``time="step"``); values exactly 0 or 1/keep; time structure:
  ``variational_recurrent=True`` "applies the same dropout mask at every time step" (every lane
  constant over T = 32 steps), False a fresh mask every step (no lane constant: a lane stays
  constant by chance with probability 2^-31). Recorded: whether the batch rows share a mask,
  which state tensors (h, c) are dropped;
- ``test_state_dropout_spares_c``: the documented default ``dropout_state_filter_visitor`` never
  drops the memory state c of an LSTM;
- ``test_keep_prob_zero``: keep probability 0, accepted by the constructor, keeps nothing (outputs 0);
- ``test_variational_mask_per_run``: "the same dropout pattern is applied across all time steps
  per run call": two runs (two sequences) must draw different masks;
- ``test_legacy_wrapper_accepts_keras_cell``: the legacy wrapper runs around a tf-keras cell;
- ``test_legacy_wrapper_under_keras3``: ``tf.compat.v1.nn.rnn_cell.DropoutWrapper`` / ``LSTMCell``
  are reachable with Keras 3 installed (TensorFlow's documented v1 API).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import reference
from conformance.adapters.keras import strategies as KS
from conformance.adapters.tensorflow import dropout_wrapper as W
from conformance.core.adapter_strategies import case_shape
from conformance.core.frameworks import installed_version, require
from conformance.checks.parity import max_abs_errors
from conformance.core.strategies import Case
from conformance.core.tolerances import tolerance

pytestmark = pytest.mark.framework("tensorflow")  # and keras or tf_keras per cell (PAIRS, the tests below)

SEED, KEEP = 4321, 0.5
T, B, N = 32, 4, 16  # steps, batch, input size = hidden size (variational masks are (1, N): 16 draws)
LEGACY = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
KNOBS = dict(zip(("input", "state", "output"), W.KNOBS))
V2, V1, K3, TFK, V1CELL = W.V2, W.V1, W.K3, W.TFK, W.V1CELL
make_cell, set_weights, split_state, make_state = W.make_cell, W.set_weights, W.split_state, W.make_state
# the legacy wrapper around a tf-keras (v2) cell crashes: test_legacy_wrapper_accepts_keras_cell
PAIRS = [pytest.param(K3, V2, id=f"{V2}({K3})", marks=pytest.mark.framework("keras"))] + [
    pytest.param(c, w, id=f"{w}({c})", marks=[pytest.mark.tf_keras, pytest.mark.framework("tf_keras")])
    for c, w in ((TFK, V2), (V1CELL, V2), (V1CELL, V1))]


def frameworks(cell_name):
    """Import TensorFlow (and Keras 3 on its TF backend, or tf-keras), or skip with the reason."""
    tf = require("tensorflow")
    if cell_name == K3:
        if LEGACY:
            pytest.skip("TF_USE_LEGACY_KERAS=1: this process runs tf-keras, not Keras 3")
        keras = require("keras")
        problem = W.keras_backend_problem(keras)
        if problem is not None:
            pytest.skip(problem)
        return tf, keras
    if not LEGACY:
        pytest.skip("tf-keras cells and tf.compat.v1.nn.rnn_cell need TF_USE_LEGACY_KERAS=1 (tf_keras marker)")
    return tf, require("tf_keras", "tf-keras")


def make_wrapper(wrapper_name, cell, tf, variational=False, **keep):
    return W.make_wrapper(wrapper_name, cell, tf, input_size=N, seed=SEED, variational=variational, **keep)


def observe(cell):
    """Instrument cell.call: returns the log [(input, state_in, output, new_state)] it fills."""
    log, original = [], cell.call

    def call(inputs, state, *a, **k):
        out, new = original(inputs, state, *a, **k)
        log.append((inputs, state, out, new))
        return out, new
    cell.call = call
    return log


def run(cell_name, wrapper, log, x, h0, c0, tf):
    """Step the wrapper over time-major x; (y (T, B, H), h_n, c_n, masks {kind: (T, B, N)})."""
    del log[:]
    y, state = W.step(wrapper, x, make_state(cell_name, h0, c0, tf), tf)
    h_n, c_n = (s.numpy() for s in split_state(state))
    seen_x = np.stack([np.asarray(e[0]) for e in log])
    cell_out = np.stack([np.asarray(e[2]) for e in log])
    new = [tuple(np.asarray(s) for s in split_state(e[3])) for e in log]
    carried = [tuple(np.asarray(s) for s in split_state(e[1])) for e in log[1:]] + [(h_n, c_n)]
    masks = {"input": seen_x / x, "output": y / cell_out,
             "state_h": np.stack([c[0] / n[0] for c, n in zip(carried, new)]),
             "state_c": np.stack([c[1] / n[1] for c, n in zip(carried, new)])}
    return y, h_n, c_n, masks


def snap(m, keep):
    """Mask values snapped to {0, 1/keep}; and the largest relative distance from them."""
    scale = 1.0 / keep
    err = float(np.max(np.minimum(np.abs(m), np.abs(m - scale)))) / scale
    return np.where(np.abs(m) < scale / 2, 0.0, scale), err


def structure(m):
    """(fraction of (b, n) lanes constant over time, batch rows identical at every step, any zero)."""
    return (float(np.mean(np.all(m == m[:1], axis=0))), bool(np.all(m == m[:, :1])), bool(np.any(m == 0)))


def setup(cell_name, wrapper_name, variational=False, **keep):
    tf, k = frameworks(cell_name)
    tf.random.set_seed(SEED)  # op seeds alone continue a per-process stream: order-dependent masks
    case, stack, x, h0, c0 = KS.nonzero_case(Case(cell="lstm", steps=T, batch=B, input_size=N, hidden_size=N,
                                                  initial_state=True, seed=SEED))
    cell = make_cell(cell_name, k, stack[0][0])
    wrapper = make_wrapper(wrapper_name, cell, tf, variational, **keep)
    wrapper.build(tf.TensorShape((None, N)))
    set_weights(cell_name, cell, stack[0][0])
    log = observe(cell)
    return tf, case, stack, x, h0, c0, wrapper, log


def repro(cell_name, wrapper_name, variational, keep):
    env = "TF_USE_LEGACY_KERAS=1" if cell_name != K3 else "KERAS_BACKEND=tensorflow"
    return "\n".join([
        f"# {env} python -m pytest suites/test_tf_dropout_wrapper.py" + (" -m tf_keras" if cell_name != K3 else ""),
        "# or, for this case alone:",
        "import sys; sys.path.insert(0, 'suites'); import test_tf_dropout_wrapper as S",
        f"tf, case, stack, x, h0, c0, w, log = S.setup({cell_name!r}, {wrapper_name!r}, {variational}, **{keep!r})",
        f"y, h_n, c_n, masks = S.run({cell_name!r}, w, log, x, h0[0], c0[0], tf)",
        "print({k: S.structure(S.snap(m, 0.5)[0]) for k, m in masks.items()})",
    ])


def compare(stack, case, x, h0, c0, y, h_n, c_n, masks, keep):
    """error / tolerance of the run against the reference under `masks` (snapped)."""
    lm = reference.LayerMasks(**{k: reference.Mask(np.ascontiguousarray(m), time="step") for k, m in masks.items()})
    want = reference.run(stack, x, h0, c0, masks=reference.StackMasks(layers=[[lm]]))
    got = reference.Result(y=y, h_n=h_n[None], c_n=c_n[None])
    steps, fan_in = case_shape(stack, case.steps)
    # magnitude: a state mask fixed over time (variational) scales c by 1/keep every step on its
    # kept lanes, so c can grow geometrically (documented use of `magnitude`: max |c| of the reference)
    tol = tolerance("float32", steps, fan_in, magnitude=float(np.max(np.abs(want.c_n)))) / keep
    return max(max_abs_errors(got, want).values()) / tol, tol


def record(conformance_record, cell_name, wrapper_name, feature, **kw):
    adapter = f"{wrapper_name}({cell_name})" if cell_name else wrapper_name
    KS.record(conformance_record, adapter=adapter, backend="tensorflow", feature=feature,
              framework="tensorflow", distribution="tensorflow-cpu" if installed_version("tensorflow-cpu")
              else "tensorflow", seed=SEED, **kw)


@pytest.mark.parametrize("cell_name, wrapper_name", PAIRS)
@pytest.mark.parametrize("variational", [False, True])
def test_keep_prob_one(cell_name, wrapper_name, variational, conformance_record):
    keep = dict(input_keep_prob=1.0, state_keep_prob=1.0, output_keep_prob=1.0)
    tf, case, stack, x, h0, c0, w, log = setup(cell_name, wrapper_name, variational, **keep)
    y, h_n, c_n, masks = run(cell_name, w, log, x, h0[0], c0[0], tf)
    r, tol = compare(stack, case, x, h0, c0, y, h_n, c_n, {}, 1.0)
    rp = repro(cell_name, wrapper_name, variational, keep)
    record(conformance_record, cell_name, wrapper_name, "keep_prob=1: plain cell", err=r * tol, tol=tol, repro=rp,
           reason=f"error/tol {r:.3g}")
    assert r <= 1, (f"{wrapper_name}({cell_name}) with every keep_prob 1 differs from the reference LSTM: "
                    f"{r:.3g}x tolerance\nseed={SEED}\nrepro:\n{rp}")


@pytest.mark.parametrize("cell_name, wrapper_name", PAIRS)
@pytest.mark.parametrize("variational", [False, True])
@pytest.mark.parametrize("knob", list(KNOBS))
def test_wrapper_masks(cell_name, wrapper_name, variational, knob, conformance_record):
    keep = {KNOBS[knob]: KEEP}
    tf, case, stack, x, h0, c0, w, log = setup(cell_name, wrapper_name, variational, **keep)
    y, h_n, c_n, raw = run(cell_name, w, log, x, h0[0], c0[0], tf)
    snapped = {k: snap(m, KEEP) for k, m in raw.items()}
    kinds = {"input": ["input"], "output": ["output"], "state": ["state_h", "state_c"]}[knob]
    change = {k: float(np.max(np.abs(raw[k] - 1))) for k in raw}
    if knob == "state":  # the state filter decides which of h, c (test_state_dropout_spares_c)
        kinds = [k for k in kinds if change[k] > 1e-6] or kinds
    masks = {k: snapped[k][0] for k in kinds}
    err = max(snapped[k][1] for k in kinds)
    untouched = {k: v for k, v in change.items() if k not in kinds}
    r, tol = compare(stack, case, x, h0, c0, y, h_n, c_n, masks, KEEP)
    shape = {k: structure(m) for k, m in masks.items()}
    c_max = float(np.max(np.abs(c_n)))
    rp = repro(cell_name, wrapper_name, variational, keep)
    record(conformance_record, cell_name, wrapper_name,
           f"{KNOBS[knob]}={KEEP}, variational_recurrent={variational}", err=r * tol, tol=tol, repro=rp,
           reason="; ".join(f"{k}: lanes constant over {T} steps {s[0]:.3g}, rows share the mask {s[1]}, "
                            f"dropped {s[2]}" for k, s in shape.items()) + f"; max |c_n| {c_max:.3g}; error/tol {r:.3g}")
    where = f"{wrapper_name}({cell_name}, {KNOBS[knob]}={KEEP}, variational_recurrent={variational})"
    assert err <= 1e-6, f"{where}: observed masks are not 0 or 1/keep (distance {err:.3g})\nseed={SEED}\nrepro:\n{rp}"
    assert all(u <= 1e-6 for u in untouched.values()), (
        f"{where}: tensors other than {kinds} were changed too: {untouched}\nseed={SEED}\nrepro:\n{rp}")
    assert r <= 1, f"{where} differs from the reference under its own masks: {r:.3g}x tolerance\nseed={SEED}\nrepro:\n{rp}"
    dropped = [k for k, s in shape.items() if s[2]]
    lanes = {k: shape[k][0] for k in dropped}
    want = 1.0 if variational else 0.0
    assert dropped and all(v == want for v in lanes.values()), (
        f"{where}: fraction of lanes constant over {T} steps {lanes} (dropped tensors {dropped}), expected {want} "
        f"({'the same mask every step' if variational else 'a fresh mask every step'})\nseed={SEED}\nrepro:\n{rp}")


@pytest.mark.parametrize("cell_name, wrapper_name", PAIRS)
def test_state_dropout_spares_c(cell_name, wrapper_name, conformance_record):
    keep = {"state_keep_prob": KEEP}
    tf, case, stack, x, h0, c0, w, log = setup(cell_name, wrapper_name, **keep)
    _, _, _, raw = run(cell_name, w, log, x, h0[0], c0[0], tf)
    c_dropped = structure(snap(raw["state_c"], KEEP)[0])[2]
    h_dropped = structure(snap(raw["state_h"], KEEP)[0])[2]
    rp = repro(cell_name, wrapper_name, False, keep)
    record(conformance_record, cell_name, wrapper_name, "state_keep_prob: which state tensors are dropped",
           repro=rp, reason=f"h dropped {h_dropped}, c dropped {c_dropped}")
    assert h_dropped and not c_dropped, (
        f"{wrapper_name}({cell_name}, state_keep_prob={KEEP}): h dropped {h_dropped}, c dropped {c_dropped}; "
        "documented default (dropout_state_filter_visitor): the LSTM memory state c is never dropped\n"
        f"seed={SEED}\nrepro:\n{rp}")


@pytest.mark.parametrize("cell_name, wrapper_name", PAIRS)
@pytest.mark.parametrize("variational", [False, True])
def test_keep_prob_zero(cell_name, wrapper_name, variational, conformance_record):
    """output_keep_prob=0 is in the documented range ("float between 0 and 1"; the constructor
    refuses only values outside [0, 1]): keep nothing, so every output is exactly 0 and the states
    are the cell's own (finite)."""
    keep = {"output_keep_prob": 0.0}
    rp = repro(cell_name, wrapper_name, variational, keep)
    tf, case, stack, x, h0, c0, w, log = setup(cell_name, wrapper_name, variational, **keep)
    try:
        y, h_n, c_n, _ = run(cell_name, w, log, x, h0[0], c0[0], tf)
        got = f"max |y| {float(np.nanmax(np.abs(y))):.3g}, NaN in y {bool(np.isnan(y).any())}"
        ok = bool(np.all(y == 0) and np.all(np.isfinite(h_n)) and np.all(np.isfinite(c_n)))
    except (ValueError, tf.errors.InvalidArgumentError) as e:
        got, ok = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}", False
    record(conformance_record, cell_name, wrapper_name, f"output_keep_prob=0, variational_recurrent={variational}",
           repro=rp, reason=got)
    assert ok, (f"{wrapper_name}({cell_name}, output_keep_prob=0, variational_recurrent={variational}): {got}; "
                f"expected every output 0 (keep probability 0 is accepted by the constructor)\nseed={SEED}\n"
                f"repro:\n{rp}")


@pytest.mark.parametrize("cell_name, wrapper_name", PAIRS)
def test_variational_mask_per_run(cell_name, wrapper_name, conformance_record):
    keep = {"input_keep_prob": KEEP}
    tf, case, stack, x, h0, c0, w, log = setup(cell_name, wrapper_name, True, **keep)
    first = snap(run(cell_name, w, log, x, h0[0], c0[0], tf)[3]["input"], KEEP)[0]
    second = snap(run(cell_name, w, log, x, h0[0], c0[0], tf)[3]["input"], KEEP)[0]
    same = bool(np.array_equal(first, second))
    rp = repro(cell_name, wrapper_name, True, keep) + "\n# run twice: S.run(...) again, compare masks['input']"
    record(conformance_record, cell_name, wrapper_name, "variational_recurrent: a new mask per run", repro=rp,
           reason=f"two runs of {T} steps drew the same input mask: {same}")
    assert not same, (f"{wrapper_name}({cell_name}, variational_recurrent=True, input_keep_prob={KEEP}): two runs "
                      f"(two sequences) used the same mask; documented: the same pattern across all time steps "
                      f"per run call\nseed={SEED}\nrepro:\n{rp}")


@pytest.mark.tf_keras
@pytest.mark.framework("tf_keras")
def test_legacy_wrapper_accepts_keras_cell(conformance_record):
    """tf.compat.v1.nn.rnn_cell.DropoutWrapper around tf_keras.layers.LSTMCell runs a step."""
    tf, k = frameworks(TFK)
    rp = ("# TF_USE_LEGACY_KERAS=1 python\nimport tensorflow as tf, tf_keras\n"
          "w = tf.compat.v1.nn.rnn_cell.DropoutWrapper(tf_keras.layers.LSTMCell(3), input_keep_prob=0.5)\n"
          "w(tf.ones((2, 4)), [tf.zeros((2, 3)), tf.zeros((2, 3))])")
    wrapper = make_wrapper(V1, k.layers.LSTMCell(N), tf, input_keep_prob=KEEP)
    try:
        wrapper(tf.ones((B, N)), [tf.zeros((B, N)), tf.zeros((B, N))])
        problem = None
    except Exception as e:  # the finding is the exact exception
        problem = f"{type(e).__name__}: {str(e).splitlines()[0]}"
    record(conformance_record, TFK, V1, "legacy wrapper around a tf-keras cell", repro=rp, reason=problem or "runs")
    assert problem is None, f"{V1}({TFK}) crashed on its first step: {problem}\nseed={SEED}\nrepro:\n{rp}"


@pytest.mark.framework("keras")
@pytest.mark.parametrize("name", ["DropoutWrapper", "LSTMCell"])
def test_legacy_wrapper_under_keras3(name, conformance_record):
    tf = require("tensorflow")
    if LEGACY:
        pytest.skip("TF_USE_LEGACY_KERAS=1: tf.compat.v1.nn.rnn_cell maps to tf-keras here (tested above)")
    require("keras")
    rp = f"import tensorflow as tf; tf.compat.v1.nn.rnn_cell.{name}"
    try:
        getattr(tf.compat.v1.nn.rnn_cell, name)
        problem = None
    except Exception as e:  # the finding is the exact exception
        problem = f"{type(e).__name__}: {e}"
    record(conformance_record, None, f"tf.compat.v1.nn.rnn_cell.{name}", "v1 API reachable with Keras 3", repro=rp,
           reason=problem or "reachable")
    assert problem is None, f"tf.compat.v1.nn.rnn_cell.{name} with Keras 3 installed: {problem}\nrepro: {rp}"
