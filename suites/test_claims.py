"""The claims ledger: one check per claim of the seed documents (claims/seeds.toml).

Each test measures the parts its claim declares on the installed versions, hands the booleans
to `conformance.results.claims.verdict` through the `ledger` fixture — which records the claims entry
(source, quote, computed verdict, evidence, test id) and a result record — and asserts that its
measurement is sound (recovered masks exactly {0, scale}, the successor API matching the
reference, exceptions of the expected type...). A verdict is never written by hand: change what
a framework does and the verdict changes with it.

The documents' code examples are run modernised only as far as the installed versions need
(`tf.contrib` cells -> `tf.nn.RNNCellDropoutWrapper` around a Keras cell, `CuDNNGRU` ->
`keras.layers.GRU`/`GRUCell`, `tf.nn.dynamic_rnn` -> a Python loop over steps); the evidence
says what was changed. Masks are read back exactly where possible: an "accumulator" cell
(`keras.layers.SimpleRNNCell` with identity kernels, no bias, linear activation: h_t = x_t +
h_{t-1}) turns outputs into masks, ones-inputs turn a Dropout layer's output into its mask, and
the probe-weight oracle (`conformance.oracles.fingerprint`, `conformance.oracles.probe`) reads Keras'
own masks. Statistical checks (drop rates) use the exact binomial test at a false-alarm
probability of 1e-6 (`conformance.oracles.statistics`), with the power stated in the evidence.

Everything runs in the main process (Keras on its TensorFlow backend); each claim is held once.
"""
from __future__ import annotations

import functools
import inspect
import os
import re
import warnings
from dataclasses import replace

import numpy as np
import pytest

import reference
from conformance.results import claims
from conformance.oracles import statistics as st
from conformance.core.frameworks import require

# The frameworks each check needs (the plugin's --frameworks selects by them): Keras 3 on its
# TensorFlow backend with TensorFlow's own API, plus tf-keras 2 for the checks comparing with it
# (documents 001 and 003 also ask tf-keras, in a subprocess, where it is installed); torch for
# document 002; nothing but Python for a check that only compiles a document's code.
KERAS_ON_TF = pytest.mark.framework("tensorflow", "keras")
KERAS_AND_TF_KERAS = pytest.mark.framework("tensorflow", "keras", "tf_keras")
TORCH = pytest.mark.framework("torch")
REFERENCE_ONLY = pytest.mark.framework("reference")

CLAIMS = claims.load()
SEED = int(os.environ.get("RNN_CONFORMANCE_SEED", "20261123"))
ALPHA = st.ALPHA  # false-alarm probability of every statistical decision here


def error_text(e, limit=240):
    """One line of an exception, terminal colour codes removed."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", " ".join(str(e).split()))
    return f"{type(e).__name__}: {text[:limit]}"


def repro(nodeid):
    return f"python -m pytest '{nodeid}' -p no:cacheprovider"


@pytest.fixture
def ledger(request, conformance_section, conformance_record):
    """record(holds, evidence, applicable=True, framework=None) -> verdict: computes the verdict
    of this test's claim from the measured parts and records the claims entry. `ledger.ctx` is
    the seed and repro line for failure messages."""
    cid = request.node.originalname.removeprefix("test_")
    claim = CLAIMS[cid]
    nodeid = request.node.nodeid

    def record(holds, evidence, applicable=True, framework=None):
        e = claims.entry(claim, holds, evidence, nodeid, applicable)
        conformance_section("claims", **e)
        conformance_record(feature=f"claim {cid}", framework=framework, seed=SEED,
                           reason=f"{e['verdict']}: {evidence}", repro=repro(nodeid))
        return e["verdict"]

    record.ctx = f"seed={SEED}; repro: {repro(nodeid)}"
    return record


# ---------------------------------------------------------------- measuring helpers

def rate_evidence(dropped, n, p, name="drop rate", delta=0.05):
    """(consistent with p?, text): exact binomial test at ALPHA, with its power against p +- delta
    (the claims here tell apart rates like 0.2 and 0.8, or 0.1 and 0.9: 0.05 is a fine grain)."""
    c = st.rate_test(dropped, n, p, name)
    consistent = c.p_value is None and c.ok or c.p_value is not None and c.p_value > ALPHA
    power = st.power_rate(n, p, delta) if 0 < p < 1 else 1.0
    pv = "exact" if c.p_value is None else f"p-value {c.p_value:.3g}"
    return consistent, (f"{dropped}/{n} = {dropped / n:.4f} dropped vs {p:g} ({name}: {pv}, false alarm <= "
                        f"{ALPHA:g}, power {power:.3f} against {p:g} +- {delta:g})")


def per_step_fraction(keep):
    """Fraction of mask elements whose keep/drop changes between consecutive steps (axis 0 = time)."""
    keep = np.asarray(keep)
    return float(np.mean(keep[1:] != keep[:-1]))


def keras_tf():
    tf = require("tensorflow")
    keras = require("keras")
    if keras.backend.backend() != "tensorflow":
        pytest.skip(f"the claims checks run Keras on its tensorflow backend (KERAS_BACKEND={keras.backend.backend()})")
    return tf, keras


def accumulator(keras, n):
    """h_t = x_t + h_{t-1} (a real SimpleRNNCell with identity kernels): outputs read masks back."""
    return keras.layers.SimpleRNNCell(n, activation=None, use_bias=False, kernel_initializer="identity",
                                      recurrent_initializer="identity")


def dropout_wrapper_run(keep_kw, T=8, B=64, F=16):
    """Document 000's Examples 1/2, modernised: tf.nn.RNNCellDropoutWrapper(cell, **keep_kw) run by
    tf.compat.v1.nn.dynamic_rnn, the cell an accumulator, over ones-inputs (time-major): (outputs
    (T, B, F), final state (B, F))."""
    tf, keras = keras_tf()
    tf.random.set_seed(SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = tf.nn.RNNCellDropoutWrapper(accumulator(keras, F), seed=SEED % 2**31, **keep_kw)
        y, state = tf.compat.v1.nn.dynamic_rnn(w, tf.ones((T, B, F)), dtype=tf.float32, time_major=True)
    return np.asarray(y, np.float64), np.asarray(state[0] if isinstance(state, (list, tuple)) else state)


def example_000(keep_kw):
    """Examples 1/2 of document 000 with the installed names: keras.layers.LSTMCell(256) for
    LSTMBlockFusedCell, tf.nn.RNNCellDropoutWrapper, a (2, 3, 512) tensor for the placeholder,
    tf.compat.v1.nn.dynamic_rnn. Returns what happened."""
    tf, keras = keras_tf()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lstm_cell = keras.layers.LSTMCell(256)
            dropout_wrapper = tf.nn.RNNCellDropoutWrapper(lstm_cell, **keep_kw)
            outputs, _ = tf.compat.v1.nn.dynamic_rnn(dropout_wrapper, tf.ones((2, 3, 512)), dtype=tf.float32)
        return f"runs (output shape {tuple(outputs.shape)})"
    except Exception as e:  # noqa: BLE001 - the failure is the evidence
        return error_text(e, 160)


@functools.lru_cache(maxsize=None)
def keras_probe(knob, kind, B=64, T=6, K=8):
    """Keras 3 LSTM's own masks for `knob` at p = 0.5, read back by the probe-weight oracle:
    {tensor: multipliers (calls, T, routes, B, K)}."""
    keras_tf()
    from conformance.oracles import fingerprint
    from conformance.adapters import registry

    return fingerprint.run_probe(registry.load("keras.layers.LSTM"), kind, knob, 0.5, SEED, 1, K, B, T)


@functools.lru_cache(maxsize=None)
def keras_fingerprint(knob):
    keras_tf()
    from conformance.oracles import fingerprint
    from conformance.adapters import registry

    return fingerprint.measure(registry.load("keras.layers.LSTM"), knob, 0.5, seed=SEED, calls=2, K=8, B=64, T=6,
                               power=False, modes=False)


LEGACY_SCRIPT = r"""
import json, os, warnings
warnings.simplefilter("ignore")
import numpy as np, tensorflow as tf
out = {"tf_keras": __import__("tf_keras").__version__}
try:
    from tensorflow.keras.layers import CuDNNGRU  # document 001, as written
    out["import"] = "works"
except ImportError as e:
    out["import"] = f"ImportError: {str(e).split(' (')[0]}"
cls = getattr(tf.compat.v1.keras.layers, "CuDNNGRU", None)
out["compat_v1"] = None if cls is None else f"{cls.__module__}.{cls.__name__}"
if cls is not None:
    import inspect
    out["args"] = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")]
    try:
        cls(4)(np.ones((1, 2, 3), "float32"))
        out["cpu_run"] = "ran"
    except Exception as e:
        out["cpu_run"] = f"{type(e).__name__}: " + " ".join(str(e).split())[:150]
# document 003, Example 1, on tf.keras 2 (tf-keras): train on batches of different sizes
tf.keras.utils.set_random_seed(SEED)
model = tf.keras.Sequential([tf.keras.layers.Embedding(1000, 64), tf.keras.layers.Dropout(0.5),
                             tf.keras.layers.LSTM(64), tf.keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
rng = np.random.default_rng(SEED)
try:
    losses = [float(np.ravel(model.train_on_batch(rng.integers(1, 1000, (b, t)), rng.integers(0, 10, (b,))))[0])
              for b, t in ((7, 10), (3, 6), (5, 12), (1, 4))]
    hist = model.fit(rng.integers(1, 1000, (10, 8)), rng.integers(0, 10, (10,)), batch_size=4, epochs=1, verbose=0)
    out["example1"] = {"failed": False, "losses": [round(v, 3) for v in losses], "fit": hist.history["loss"][-1]}
except Exception as e:
    out["example1"] = {"failed": True, "error": f"{type(e).__name__}: {str(e)[:200]}"}
print(json.dumps(out))
"""


@functools.lru_cache(maxsize=None)
def legacy_keras():
    """Facts from tf-keras 2 (tf.keras with TF_USE_LEGACY_KERAS=1, its own process): document 001's
    CuDNNGRU import and the legacy compat.v1 layer, document 003's Example 1. None if tf-keras is
    not installed."""
    import importlib.util
    import json
    import subprocess
    import sys

    if importlib.util.find_spec("tf_keras") is None:
        return None
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run([sys.executable, "-c", LEGACY_SCRIPT.replace("SEED", str(SEED % 2**31))], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"the tf-keras process failed (exit {r.returncode}):\n{r.stderr[-2000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def check_probe(v, scale, ctx):
    dev = st.value_deviation(v, scale)
    assert dev < 1e-4, f"probe recovered values off {{0, {scale}}} by {dev:.3g}: the oracle is broken; {ctx}"


# ================================================================== 000: DropoutWrapper + LSTMBlockFusedCell

def block_lstm_vs_reference(T=5, B=3, I=4, H=6):
    """(max error of tf.raw_ops.BlockLSTM vs the reference, tolerance)."""
    keras_tf()
    from conformance.adapters import registry
    from conformance.core.adapter_strategies import case_shape
    from conformance.core.tolerances import tolerance

    rng = np.random.default_rng(SEED)
    stack = reference.random_stack(rng, "lstm", I, H)
    x = rng.normal(size=(T, B, I))
    got = registry.load("tf.raw_ops.BlockLSTM").forward(stack, x)
    want = reference.run(stack, x)
    err = max(float(np.max(np.abs(np.asarray(getattr(got, k)) - getattr(want, k)))) for k in ("y", "h_n", "c_n"))
    return err, tolerance("float32", *case_shape(stack, T))


@KERAS_ON_TF
def test_c000_contrib_fused_cell(ledger):
    tf, _ = keras_tf()
    contrib = hasattr(tf, "contrib") or hasattr(tf.compat.v1, "contrib")
    dynamic = hasattr(tf.nn, "dynamic_rnn")
    err, tol = block_lstm_vs_reference()
    holds = {"tf.contrib exists": contrib, "tf.nn.dynamic_rnn exists (TF2 namespace)": dynamic,
             "the successor kernel tf.raw_ops.BlockLSTM runs and matches the reference LSTM": err <= tol}
    ledger(holds, f"tensorflow {tf.__version__}: tf.contrib {'present' if contrib else 'absent'} (removed in 2.0; "
                  f"LSTMBlockFusedCell lived in tf.contrib.rnn, never in tf.contrib.cudnn_rnn), tf.nn.dynamic_rnn "
                  f"{'present' if dynamic else 'absent'} (tf.compat.v1.nn.dynamic_rnn: "
                  f"{'present' if hasattr(tf.compat.v1.nn, 'dynamic_rnn') else 'absent'}). Successor: tf.raw_ops.BlockLSTM, the "
                  f"kernel behind LSTMBlockFusedCell, matches the NumPy reference LSTM: max |error| {err:.2g} "
                  f"<= tolerance {tol:.2g} (T=5, B=3, I=4, H=6, float32).",
           applicable=contrib, framework="tensorflow")
    assert err <= tol, f"tf.raw_ops.BlockLSTM differs from the reference: {err:.3g} > {tol:.3g}; {ledger.ctx}"


@KERAS_ON_TF
def test_c000_fused_uses_cudnn(ledger):
    tf, _ = keras_tf()
    gpus = tf.config.list_physical_devices("GPU")
    with tf.device("/CPU:0"):
        err, tol = block_lstm_vs_reference()
    ran_on_cpu = err <= tol
    try:  # the real cuDNN op, for contrast: no CPU kernel
        with tf.device("/CPU:0"):
            tf.raw_ops.CudnnRNN(input=tf.zeros((2, 1, 3)), input_h=tf.zeros((1, 1, 4)), input_c=tf.zeros((1, 1, 4)),
                                params=tf.zeros((128,)), rnn_mode="lstm")
        cudnn_op = "tf.raw_ops.CudnnRNN ran on CPU"
    except Exception as e:  # noqa: BLE001 - the error is the evidence
        cudnn_op = f"tf.raw_ops.CudnnRNN on CPU: {error_text(e, 110)}"
    holds = {"the fused LSTM block kernel needs a GPU/cuDNN to run": not ran_on_cpu}
    ledger(holds, f"{len(gpus)} GPU(s) visible; tf.raw_ops.BlockLSTM (LSTMBlockFusedCell's kernel) ran on /CPU:0 and "
                  f"matched the reference (max |error| {err:.2g} <= {tol:.2g}): it is TensorFlow's own fused block "
                  f"kernel, not cuDNN (that is tf.contrib.cudnn_rnn.CudnnLSTM / CudnnRNN). {cudnn_op}.",
           framework="tensorflow")
    assert ran_on_cpu or gpus, f"BlockLSTM neither matched on CPU nor had a GPU: {err:.3g} > {tol:.3g}; {ledger.ctx}"


@KERAS_ON_TF
def test_c000_fused_single_call_no_dropout(ledger):
    tf, _ = keras_tf()
    from tensorflow.python.framework import op_def_registry

    T, B, I, H = 5, 3, 4, 6
    args = dict(seq_len_max=tf.constant(T, tf.int64), x=tf.ones((T, B, I)), cs_prev=tf.zeros((B, H)),
                h_prev=tf.zeros((B, H)), w=tf.ones((I + H, 4 * H)) * 0.1, wci=tf.zeros(H), wcf=tf.zeros(H),
                wco=tf.zeros(H), b=tf.zeros(4 * H))
    graph = tf.function(lambda: tf.raw_ops.BlockLSTM(**args)).get_concrete_function().graph
    ops = [op.type for op in graph.get_operations()]
    loops = [o for o in ops if o in ("While", "StatelessWhile")]
    out = tf.raw_ops.BlockLSTM(**args)
    one_call = ops.count("BlockLSTM") == 1 and not loops and out.h.shape == (T, B, H)
    names = {}
    for op in ("BlockLSTM", "BlockLSTMV2"):
        d = op_def_registry.get(op)
        names[op] = [a.name for a in d.input_arg] + [a.name for a in d.attr]
    dropout_args = [n for ns in names.values() for n in ns if "drop" in n.lower() or "keep" in n.lower()]
    holds = {"one kernel call computes every time step": one_call,
             "the fused kernel has no dropout/keep_prob argument (dropout must be applied outside it)": not dropout_args}
    ledger(holds, f"the traced graph of one tf.raw_ops.BlockLSTM call holds op types {sorted(set(ops))}: "
                  f"{ops.count('BlockLSTM')} BlockLSTM op, {len(loops)} While loops, h of shape {tuple(out.h.shape)} "
                  f"(all {T} steps). Op arguments: BlockLSTM {names['BlockLSTM']}; BlockLSTMV2 {names['BlockLSTMV2']}"
                  f" — dropout-like: {dropout_args or 'none'}. So dropout can only act on the whole input sequence "
                  "before the call or on its outputs after it.", framework="tensorflow")
    assert out.h.shape == (T, B, H) and np.all(np.isfinite(out.h)), f"BlockLSTM output broken; {ledger.ctx}"


@KERAS_ON_TF
def test_c000_input_keep_prob_per_step(ledger):
    keep = 0.8
    y, _ = dropout_wrapper_run(dict(input_keep_prob=keep))
    m = np.diff(y, axis=0, prepend=0.0)  # x = 1: each step's masked input
    check_probe(m, 1 / keep, ledger.ctx)
    k = st.keep_indicator(m, 1 / keep)
    fresh = per_step_fraction(k)
    rate_ok, rate_text = rate_evidence(int(k.size - k.sum()), k.size, 1 - keep)
    scaled = st.value_deviation(m, 1 / keep) < 1e-5 and bool(np.any(np.abs(m - 1 / keep) < 1e-5))
    holds = {"input masks are fresh at every time step": fresh > 0, "drop rate is 1 - input_keep_prob": rate_ok,
             "kept inputs are scaled by 1/keep_prob": scaled}
    ledger(holds, f"Example 1 with installed names (LSTMCell(256), tf.nn.RNNCellDropoutWrapper, "
                  f"tf.compat.v1.nn.dynamic_rnn) {example_000(dict(input_keep_prob=keep))}. For the masks the cell is "
                  f"an accumulator SimpleRNNCell (h_t = x_t + h_(t-1)) under the same wrapper and dynamic_rnn. Masks "
                  f"read back from the outputs (T=8, B=64, F=16): {fresh:.3f} of the elements change between "
                  f"consecutive steps (0 would be one mask per sequence); {rate_text}; kept values "
                  f"{np.unique(np.round(m, 5)).tolist()}.", framework="tensorflow")


@KERAS_ON_TF
def test_c000_output_keep_prob_hidden_state(ledger):
    keep, T = 0.8, 8
    y, state = dropout_wrapper_run(dict(output_keep_prob=keep), T=T)
    truth = np.arange(1, T + 1, dtype=np.float64)[:, None, None]  # the unmasked accumulated state
    m = y / truth
    check_probe(m, 1 / keep, ledger.ctx)
    k = st.keep_indicator(m, 1 / keep)
    rate_ok, rate_text = rate_evidence(int(k.size - k.sum()), k.size, 1 - keep)
    state_dropped = bool(np.any(np.abs(state - T) > 1e-5))
    holds = {"the outputs are dropped": bool(k.size - k.sum() > 0), "the carried (hidden) state is dropped": state_dropped}
    ledger(holds, f"Example 2 with installed names {example_000(dict(output_keep_prob=keep))}; "
                  f"tf.nn.RNNCellDropoutWrapper(output_keep_prob={keep}) around an accumulator cell, ones-inputs: "
                  f"outputs / true state in {np.unique(np.round(m, 5)).tolist()}, {rate_text}; the final carried "
                  f"state is {'changed' if state_dropped else f'exactly {T} everywhere (never dropped)'} — the "
                  "dropout hits what the cell emits, not the state it carries to the next step.",
           framework="tensorflow")
    assert rate_ok, f"output dropout rate off: {rate_text}; {ledger.ctx}"


@KERAS_ON_TF
def test_c000_state_dropout_needs_custom_cell(ledger):
    tf, _ = keras_tf()
    from tensorflow.python.keras.layers.legacy_rnn import rnn_cell_wrapper_impl as impl

    params = list(inspect.signature(impl.DropoutWrapperBase.__init__).parameters)
    keep, T = 0.8, 8
    y, state = dropout_wrapper_run(dict(state_keep_prob=keep), T=T)
    zeros = float(np.mean(state == 0))
    state_dropped = "state_keep_prob" in params and bool(np.any(np.abs(state - T) > 1e-5))
    holds = {"DropoutWrapper cannot drop the carried state (no state_keep_prob)": not state_dropped}
    ledger(holds, f"DropoutWrapper's arguments: {params[1:]}; with state_keep_prob={keep} (accumulator cell, T={T}) "
                  f"the final carried state is no longer {T}: {zeros:.3f} of it is 0 and values range "
                  f"{state.min():.3g}..{state.max():.3g}. State dropout is built in (plus variational_recurrent and "
                  "dropout_state_filter_visitor to choose which state tensors).", framework="tensorflow")
    assert np.all(np.isfinite(state)), ledger.ctx


@KERAS_ON_TF
def test_c000_custom_cell_state_keep_prob(ledger):
    tf, keras = keras_tf()

    class CustomDropoutLSTMCell:  # the document's cell, tf.nn.rnn_cell.RNNCell base dropped (Keras 3)
        def __init__(self, cell, state_keep_prob):
            self.cell = cell
            self.state_keep_prob = state_keep_prob

        def __call__(self, inputs, state, scope=None):
            with tf.name_scope(scope or "CustomDropoutLSTMCell"):
                output, new_state = self.cell(inputs, state)
                new_state = tf.nn.dropout(new_state, self.state_keep_prob)
                return output, new_state

    T, B, H, keep = 6, 64, 16, 0.9
    tf.random.set_seed(SEED)
    cell = CustomDropoutLSTMCell(keras.layers.LSTMCell(H, bias_initializer="ones"), state_keep_prob=keep)
    x = tf.ones((T, B, 8))
    state = [tf.zeros((B, H)), tf.zeros((B, H))]
    zeros = n = 0
    for t in range(T):
        _, state = cell(x[t], state)
        s = np.asarray(state)
        zeros, n = zeros + int(np.sum(s == 0)), n + s.size
    as_keep, text_keep = rate_evidence(zeros, n, 1 - keep, "as a keep probability")
    as_rate, text_rate = rate_evidence(zeros, n, keep, "as a drop rate")
    holds = {"tf.nn.dropout(x, 0.9) keeps 90% of the state (the second argument is a keep probability)": as_keep}
    ledger(holds, f"the document's cell around keras.layers.LSTMCell({H}), T={T}, B={B}: tf.nn.dropout's second "
                  f"argument is `rate` in TF 2 ({inspect.signature(tf.nn.dropout)}), so state_keep_prob=0.9 DROPS "
                  f"90%: {text_rate}; read as keep_prob=0.9: {text_keep}. Kept state values are multiplied by "
                  f"1/(1-0.9) = 10 each step. (tf.nn.dropout also turns the [h, c] list into one stacked tensor; the "
                  f"document's base class tf.nn.rnn_cell.RNNCell exists: {hasattr(tf.nn, 'rnn_cell')}.)",
           framework="tensorflow")
    assert as_keep != as_rate, f"the measured rate fits both or neither reading: {text_keep}; {text_rate}; {ledger.ctx}"


@KERAS_ON_TF
def test_c000_dropoutwrapper_integrated_in_layers(ledger):
    tf, keras = keras_tf()
    try:
        tf.compat.v1.nn.rnn_cell.DropoutWrapper  # noqa: B018 - the lookup is the check
        v1 = "tf.compat.v1.nn.rnn_cell.DropoutWrapper available"
    except AttributeError as e:
        v1 = f"tf.compat.v1.nn.rnn_cell.DropoutWrapper: AttributeError: {str(e).rstrip('.')}"
    y, _ = dropout_wrapper_run(dict(input_keep_prob=0.5), T=2, B=4, F=4)
    wrapper_runs = y.shape == (2, 4, 4)
    knobs = [p for p in inspect.signature(keras.layers.LSTM.__init__).parameters if "dropout" in p]
    fp = keras_fingerprint("recurrent_dropout").properties
    state_dropout = fp["state_h"] != "none" or fp["state_c"] != "none"
    holds = {"DropoutWrapper is gone from TF 2 (tf.nn.RNNCellDropoutWrapper / tf.compat.v1 DropoutWrapper unusable)":
                 not wrapper_runs,
             "Keras layers offer input dropout (dropout=)": "dropout" in knobs,
             "Keras layers offer output dropout (an output_keep_prob equivalent)": any("output" in k for k in knobs),
             "Keras layers offer dropout of the carried state (a state_keep_prob equivalent)": state_dropout}
    ledger(holds, f"tf.nn.RNNCellDropoutWrapper still exists and runs (deprecated, tf.python.keras legacy code); {v1}. "
                  f"keras.layers.LSTM dropout arguments: {knobs}; recurrent_dropout's measured fingerprint: "
                  f"state_h {fp['state_h']}, state_c {fp['state_c']} (it masks h_(t-1) only inside the recurrent "
                  "matmul), so output_keep_prob / state_keep_prob have no layer equivalent (use a Dropout layer on "
                  "the outputs).", framework="keras")
    assert wrapper_runs and keras_fingerprint("recurrent_dropout").deviation < 1e-4, ledger.ctx


# ================================================================== 001: recurrent dropout with CuDNN layers

@KERAS_ON_TF
def test_c001_cudnn_layers(ledger, monkeypatch):
    tf, keras = keras_tf()
    import keras.src.backend as kb

    present = [n for n in ("CuDNNGRU", "CuDNNLSTM") if hasattr(keras.layers, n) or hasattr(tf.keras.layers, n)]
    legacy = legacy_keras()
    if legacy is None:
        legacy_text = "tf-keras is not installed (its compat.v1 CuDNNGRU not checked)"
    else:
        legacy_text = (f"tf-keras {legacy['tf_keras']} (TF_USE_LEGACY_KERAS=1): the document's import: "
                       f"{legacy['import']}; tf.compat.v1.keras.layers.CuDNNGRU = {legacy['compat_v1']}"
                       + (f", constructor arguments {legacy['args']} (no dropout of any kind), on CPU: "
                          f"{legacy['cpu_run']}" if legacy["compat_v1"] else ""))
        if legacy["import"] == "works":
            present.append("CuDNNGRU (tf-keras)")
    x = np.ones((2, 3, 5), np.float32)
    try:
        keras.layers.LSTM(4, use_cudnn=True)(x)
        refused = "no error"
    except ValueError as e:
        refused = error_text(e, 200)
    calls = []
    orig = kb.lstm
    monkeypatch.setattr(kb, "lstm", lambda *a, **k: calls.append(1) or orig(*a, **k))
    fast = {}
    for rd in (0.0, 0.2):
        calls.clear()
        keras.layers.LSTM(4, dropout=0.2, recurrent_dropout=rd)(x, training=True)
        fast[rd] = len(calls)
    holds = {"keras.layers.CuDNNGRU / CuDNNLSTM exist": bool(present),  # as the document imports them
             "the successor keras.layers.GRU/LSTM refuse use_cudnn=True when cuDNN cannot run (clear ValueError)":
                 "use_cudnn=True" in refused,
             "recurrent_dropout > 0 alone makes the successor leave its cuDNN/fused path": fast[0.0] > 0 == fast[0.2]}
    ledger(holds, f"keras {keras.__version__}: CuDNN layers present: {present or 'none'} (removed; keras.layers.GRU/"
                  f"LSTM pick cuDNN themselves, use_cudnn='auto'). {legacy_text}. On this CPU machine LSTM(use_cudnn=True): "
                  f"{refused}. The backend's fused entry point (keras.src.backend.lstm, cuDNN on GPU) was called "
                  f"{fast[0.0]}x with dropout=0.2, recurrent_dropout=0 and {fast[0.2]}x with recurrent_dropout=0.2: "
                  "input dropout stays on the fast path (one mask applied to the whole sequence first), "
                  "recurrent dropout forces the generic loop.", applicable=bool(present), framework="keras")
    assert fast[0.0] > 0, f"the fast-path probe never saw keras.src.backend.lstm called; {ledger.ctx}"


@KERAS_ON_TF
def test_c001_recurrent_dropout_per_step(ledger):
    v = keras_probe("recurrent_dropout", "recurrent")["recurrent"]
    check_probe(v, 2.0, ledger.ctx)
    k = st.keep_indicator(v[0], 2.0)  # (T, routes, B, K)
    fresh = per_step_fraction(k)
    holds = {"Keras recurrent_dropout draws a fresh mask at each time step": fresh > 0}
    ledger(holds, f"keras.layers.LSTM(recurrent_dropout=0.5), masks on h_(t-1) read back by the probe-weight oracle "
                  f"(T=6, B=64, 8 units, 3 gates routed): {fresh:.3f} of the elements change between consecutive "
                  f"steps; drop fraction {1 - k.mean():.3f}; one mask per sequence (variational, Gal & Ghahramani), "
                  f"and one per gate ({'gates differ' if np.any(k != k[:, :1]) else 'gates equal'}).",
           framework="keras")
    assert 0.3 < 1 - k.mean() < 0.7, f"recurrent masks dropped {1 - k.mean():.3f}, not about 0.5; {ledger.ctx}"


@KERAS_ON_TF
def test_c001_dropout_layer_outside_ineffective(ledger):
    tf, keras = keras_tf()
    from conformance.adapters import registry
    from conformance.core.adapter_strategies import case_shape
    from conformance.core.tolerances import tolerance

    rng = np.random.default_rng(SEED)
    T, B, I, H = 6, 8, 5, 7
    stack = reference.random_stack(rng, "lstm", I, H)
    x = rng.normal(size=(T, B, I)).astype(np.float32)
    d = np.asarray(keras.layers.Dropout(0.5, seed=SEED % 2**31)(x, training=True), np.float64)
    lstm = registry.load("keras.layers.LSTM")
    got = lstm.forward(stack, d)
    tol = tolerance("float32", *case_shape(stack, T))
    err_masked_input = float(np.max(np.abs(got.y - reference.run(stack, d).y)))
    effect = float(np.max(np.abs(got.y - reference.run(stack, x.astype(np.float64)).y)))
    k = (d != 0)
    holds = {"a Dropout layer before the RNN leaves the recurrent path (h_{t-1}) unmasked": err_masked_input <= tol,
             "a Dropout layer before the RNN has no effect on what the RNN computes": effect <= tol}
    ledger(holds, f"Dropout(0.5) before keras.layers.LSTM (T={T}, B={B}): its mask is fresh per step "
                  f"({per_step_fraction(k):.2f} of elements change between steps), drop fraction {1 - k.mean():.2f}; "
                  f"the LSTM's output equals the reference LSTM on the dropped input with NO recurrent mask "
                  f"(max |error| {err_masked_input:.2g} <= {tol:.2g}), and differs from the undropped run by "
                  f"{effect:.2g}: the layer regularises the inputs (not 'ineffective'), but never h_(t-1). (After the RNN "
                  "a Dropout layer masks its outputs only.)",
           framework="keras")
    assert err_masked_input <= tol, f"LSTM on the dropped input differs from the reference: {err_masked_input:.3g}; " \
                                    f"{ledger.ctx}"


class _Wrapper:
    """Builds the document's RecurrentDropoutWrapper class (a keras Layer subclass) on demand."""

    @staticmethod
    def make(tf, keras, modern):
        class RecurrentDropoutWrapper(keras.layers.Layer):
            def __init__(self, cell, rate, **kwargs):
                super().__init__(**kwargs)
                self.cell = cell
                self.rate = rate

            def build(self, input_shape):
                self.built = True

            def call(self, inputs):
                outputs = []
                if modern:  # Keras 3 cells take batch_size
                    state = self.cell.get_initial_state(batch_size=tf.shape(inputs)[0])
                else:
                    state = self.cell.get_initial_state(inputs)
                for i in range(inputs.shape[1]):
                    mask = tf.cast(tf.random.uniform(shape=tf.shape(inputs[:, i, :])) < 1 - self.rate, dtype=tf.float32)
                    inputs_masked = inputs[:, i, :] * mask
                    output, state = self.cell(inputs_masked, states=state)
                    outputs.append(output)
                return tf.stack(outputs, axis=1)

        return RecurrentDropoutWrapper


@KERAS_ON_TF
def test_c001_wrapper_runs_as_written(ledger):
    tf, keras = keras_tf()
    W = _Wrapper.make(tf, keras, modern=False)
    results = []
    for how in ("called eagerly", "in the Sequential model of the usage example"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if how == "called eagerly":
                    out = W(keras.layers.GRU(64), rate=0.5)(tf.ones((4, 10, 32)))
                else:
                    model = keras.Sequential()
                    model.add(W(keras.layers.GRU(64), rate=0.5, input_shape=(10, 32)))
                    out = model(np.ones((4, 10, 32), np.float32))
            results.append((how, True, f"ran, output shape {tuple(out.shape)}"))
        except Exception as e:  # noqa: BLE001 - the failure is the evidence
            results.append((how, False, error_text(e, 200)))
    ledger({"the wrapper runs around the GRU layer (CuDNNGRU's successor) as written": all(r[1] for r in results)},
           "RecurrentDropoutWrapper(keras.layers.GRU(64), rate=0.5) on a (4, 10, 32) input: "
           + "; ".join(f"{how}: {text}" for how, _, text in results)
           + ". GRU.get_initial_state takes a batch size, not the inputs, and CuDNNGRU/GRU are whole-sequence "
             "layers, not cells: they cannot be stepped with cell(x_t, states=...).", framework="keras")
    # control: the same code, modernised (a GRUCell, get_initial_state(batch_size=)), runs here
    out = _Wrapper.make(tf, keras, modern=True)(keras.layers.GRUCell(64), rate=0.5)(tf.ones((4, 10, 32)))
    assert tuple(out.shape) == (4, 10, 64), f"the modernised wrapper does not run either; {ledger.ctx}"


@functools.lru_cache(maxsize=None)
def wrapper_masks(training):
    """The wrapper (modernised: an accumulator SimpleRNNCell as the cell, get_initial_state(batch_size=)),
    ones-inputs (B=64, T=10, F=16), rate 0.5: the per-step multipliers (T, B, F)."""
    tf, keras = keras_tf()
    tf.random.set_seed(SEED)
    layer = _Wrapper.make(tf, keras, modern=True)(accumulator(keras, 16), rate=0.5)
    model = keras.Sequential([keras.Input((10, 16)), layer])
    x = np.ones((64, 10, 16), np.float32)
    y = np.asarray(model(x, training=True) if training else model.predict(x, verbose=0), np.float64)
    return np.diff(y, axis=1, prepend=0.0).transpose(1, 0, 2)


@KERAS_ON_TF
def test_c001_wrapper_fresh_mask_per_step(ledger):
    m = wrapper_masks(True)
    check_probe(m, 1.0, ledger.ctx)
    k = st.keep_indicator(m, 1.0)
    fresh = per_step_fraction(k)
    rate_ok, rate_text = rate_evidence(int(k.size - k.sum()), k.size, 0.5)
    holds = {"a fresh mask is drawn at every time step": fresh > 0, "drop rate equals rate": rate_ok}
    ledger(holds, f"the wrapper's code with an accumulator SimpleRNNCell as its cell (Keras 3: get_initial_state("
                  f"batch_size=)), ones-inputs, T=10, B=64, F=16: {fresh:.3f} of the mask elements change between "
                  f"consecutive steps; {rate_text}.", framework="keras")


@KERAS_ON_TF
def test_c001_wrapper_is_recurrent_dropout(ledger):
    m_train, m_infer = wrapper_masks(True), wrapper_masks(False)
    dev_state = st.value_deviation(m_train, 1.0)  # a masked h_(t-1) would break y_t - y_(t-1) in {0, 1}
    scaled = bool(np.any(np.abs(m_train - 2.0) < 1e-5))
    infer_dropped = float(np.mean(m_infer == 0))
    holds = {"the recurrent input h_{t-1} is masked": dev_state > 1e-4,
             "kept values are rescaled by 1/(1-rate)": scaled,
             "nothing is dropped at inference": infer_dropped == 0.0}
    ledger(holds, f"same run: y_t - y_(t-1) is exactly the masked input x_t (worst distance from {{0, 1}}: "
                  f"{dev_state:.2g}), so the carried state h_(t-1) is never masked — this is per-step INPUT dropout, "
                  f"not recurrent dropout; kept values {np.unique(np.round(m_train, 5)).tolist()} (no 1/(1-rate) "
                  f"scaling); under model.predict {infer_dropped:.3f} of the inputs are still dropped (call() has "
                  "no training flag).", framework="keras")
    assert dev_state < 1e-4, f"accumulator readout broken: {dev_state:.3g}; {ledger.ctx}"


@KERAS_ON_TF
def test_c001_timedistributed_dropout(ledger):
    tf, keras = keras_tf()
    x = np.ones((64, 8, 16), np.float32)
    td = np.asarray(keras.layers.TimeDistributed(keras.layers.Dropout(0.5, seed=SEED % 2**31))(x, training=True))
    plain = np.asarray(keras.layers.Dropout(0.5, seed=SEED % 2**31)(x, training=True))
    check_probe(td, 2.0, ledger.ctx)
    f_td, f_plain = (per_step_fraction(st.keep_indicator(a, 2.0).transpose(1, 0, 2)) for a in (td, plain))
    built = []
    for before in (True, False):  # the two example models, CuDNNGRU -> GRU
        layers = ([keras.layers.TimeDistributed(keras.layers.Dropout(0.5)), keras.layers.GRU(64)] if before else
                  [keras.layers.GRU(64, return_sequences=True), keras.layers.TimeDistributed(keras.layers.Dropout(0.5))])
        model = keras.Sequential([keras.Input((None, 32))] + layers)
        built.append(tuple(model(np.ones((2, 5, 32), np.float32), training=True).shape))
    holds = {"TimeDistributed(Dropout) draws a fresh mask at each time step": f_td > 0,
             "TimeDistributed is needed for that (a plain Dropout keeps one mask across steps)": f_plain == 0}
    ledger(holds, f"ones-inputs (B=64, T=8, F=16), p=0.5: TimeDistributed(Dropout) changes {f_td:.3f} of the mask "
                  f"elements between consecutive steps, a plain Dropout {f_plain:.3f} — the same element-wise "
                  f"per-step dropout; the wrapper adds nothing. Both example models (CuDNNGRU -> GRU) run: output "
                  f"shapes {built}.", framework="keras")


@KERAS_ON_TF
def test_c001_lambda_dropout(ledger):
    tf, keras = keras_tf()

    def apply_recurrent_dropout(x, rate):
        mask = tf.cast(tf.random.uniform(tf.shape(x)) < 1 - rate, dtype=tf.float32)
        return x * mask

    tf.random.set_seed(SEED)
    gru = keras.layers.GRU(64, return_sequences=True)
    model = keras.Sequential([keras.Input((None, 32)), gru,
                              keras.layers.Lambda(lambda x: apply_recurrent_dropout(x, 0.5))])
    x = np.random.default_rng(SEED).normal(size=(32, 6, 32)).astype(np.float32)
    y_train = np.asarray(model(x, training=True))
    y_pred = model.predict(x, verbose=0)
    clean = np.asarray(gru(x))
    kept = y_train != 0
    ratio = np.unique(np.round(y_train[kept] / clean[kept], 4))
    dropped = int(np.sum(~kept))
    rate_ok, rate_text = rate_evidence(dropped, kept.size, 0.5)
    pred_dropped = float(np.mean(y_pred == 0))
    holds = {"it drops about half of the GRU outputs in training": rate_ok,
             "it is off at inference (predict)": pred_dropped == 0.0,
             "kept values are rescaled by 1/(1-rate)": bool(np.allclose(ratio, 2.0, atol=1e-3))}
    ledger(holds, f"Example 3 (CuDNNGRU -> GRU, keras.Input instead of input_shape), B=32, T=6: training {rate_text}; "
                  f"kept outputs / clean GRU outputs = {ratio.tolist()}; model.predict still zeroes "
                  f"{pred_dropped:.3f} of the outputs (the Lambda ignores training).", framework="keras")
    assert ratio.size >= 1 and np.all(np.isfinite(y_train)), ledger.ctx


# ================================================================== 002: PackedSequence

def torch_packed_case():
    require("torch")
    from .test_torch_dropout import DropCase

    return DropCase(cell="lstm", dtype="float64", steps=6, batch=4, input_size=3, hidden_size=5, num_layers=1,
                    p=0.5, lengths=(3, 6, 1, 5), seed=SEED % 2**31)


@TORCH
def test_c002_dropout_on_packed_wrong_gradients(ledger):
    case = torch_packed_case()
    from .test_torch_dropout import check_user_dropout

    err, pad_grad, msg = check_user_dropout(case, "packed")
    holds = {"dropout on packed.data gives different outputs or gradients than the same masks applied before packing":
                 err > 1e-12}
    ledger(holds, f"F.dropout(packed.data, 0.5) (torch.nn.LSTM, lengths {case.lengths}, float64) vs the same mask "
                  f"mapped to the padded input and applied before packing: max |difference| over outputs, h_n, c_n "
                  f"and the gradients w.r.t. x, h0, c0 and every weight = {err:.3g}; gradient at padded positions "
                  f"{pad_grad:.3g}. Each valid element gets one mask value either way: no inconsistency, no gradient "
                  "error.", framework="torch")
    assert pad_grad == 0.0, msg


@TORCH
def test_c002_dropout_directly_on_packed(ledger):
    torch = require("torch")
    import torch.nn.functional as F
    from torch.nn.utils.rnn import pack_padded_sequence

    lengths = [5, 2, 4]
    x = torch.ones(5, 3, 4)
    ps = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
    torch.manual_seed(SEED)
    data = F.dropout(ps.data, 0.5)
    only_valid = tuple(data.shape) == (sum(lengths), 4)
    try:
        torch.nn.Dropout(0.5)(ps)
        direct = "nn.Dropout()(PackedSequence) ran"
        accepted = True
    except TypeError as e:
        direct, accepted = f"nn.Dropout()(PackedSequence): TypeError: {e}", False
    holds = {"dropout applied to the packed data touches only non-padding elements": only_valid,
             "nn.Dropout accepts a PackedSequence directly": accepted}
    ledger(holds, f"lengths {lengths}, padded shape (5, 3, 4) = 60 elements: F.dropout(packed.data) draws over "
                  f"{tuple(data.shape)} = {data.numel()} elements, the valid ones only; {direct}.", framework="torch")
    assert data.shape[0] == sum(lengths), ledger.ctx


@TORCH
def test_c002_consistent_mask_over_length(ledger):
    torch = require("torch")
    torch.manual_seed(SEED)
    y = torch.nn.Dropout(0.5).train()(torch.ones(64, 10, 16)).numpy()  # (B, T, F) embeddings, batch_first
    check_probe(y, 2.0, ledger.ctx)
    k = st.keep_indicator(y, 2.0).transpose(1, 0, 2)
    fresh = per_step_fraction(k)
    rate_ok, rate_text = rate_evidence(int(k.size - k.sum()), k.size, 0.5)
    holds = {"nn.Dropout before packing keeps one mask across the time steps of a sequence": fresh == 0}
    ledger(holds, f"nn.Dropout(0.5) on (B=64, T=10, F=16) embeddings: {fresh:.3f} of the elements change between "
                  f"consecutive steps (expected 2p(1-p) = 0.5 for independent draws; 0 for one mask per sequence); "
                  f"{rate_text}. Element-wise, fresh at every step: nothing is 'consistent throughout the length'.",
           framework="torch")
    assert rate_ok, f"{rate_text}; {ledger.ctx}"


def lstm_model(torch, input_size=100, hidden_size=128, num_layers=2, dropout=0.5):
    """Example 1's LSTMModel, verbatim (forward returns the example's output)."""
    import torch.nn as nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    class LSTMModel(nn.Module):
        def __init__(self, input_size, hidden_size, num_layers, dropout):
            super().__init__()
            self.embedding = nn.Embedding(input_size, hidden_size)
            self.dropout = nn.Dropout(dropout)
            self.lstm = nn.LSTM(hidden_size, hidden_size, num_layers, batch_first=True)
            self.fc = nn.Linear(hidden_size, 10)

        def forward(self, x, lengths):
            embedded = self.embedding(x)
            embedded = self.dropout(embedded)
            packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
            output, _ = self.lstm(packed)
            output, _ = pad_packed_sequence(output, batch_first=True)
            output = self.fc(output[:, -1, :])
            return output

    torch.manual_seed(SEED)
    return LSTMModel(input_size, hidden_size, num_layers, dropout)


def example_batch(torch, batch=32, steps=20):
    g = torch.Generator().manual_seed(SEED)
    x = torch.randint(0, 100, (batch, steps), generator=g)
    lengths = torch.tensor(([15, 18, 10, 20, 12] * 7)[:batch])
    return x, lengths


@TORCH
def test_c002_example1_last_hidden_state(ledger):
    torch = require("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    model = lstm_model(torch).eval()
    x, lengths = example_batch(torch)
    with torch.no_grad():
        model(x, lengths)  # the example runs
        packed = pack_padded_sequence(model.embedding(x), lengths, batch_first=True, enforce_sorted=False)
        output, (h_n, _) = model.lstm(packed)
        output, _ = pad_packed_sequence(output, batch_first=True)
    last = output[:, -1, :]
    diff = (last - h_n[-1]).abs().amax(dim=1)
    zero_rows = int((last.abs().amax(dim=1) == 0).sum())
    short = int((lengths < lengths.max()).sum())
    holds = {"output[:, -1, :] after pad_packed_sequence is each sequence's last hidden state": bool(diff.max() < 1e-6)}
    ledger(holds, f"Example 1's model (eval), batch 32 with lengths {sorted(set(lengths.tolist()))}: output[:, -1, :] "
                  f"is the all-zero padding for {zero_rows} of 32 rows ({short} rows are shorter than "
                  f"{int(lengths.max())}); max |output[:, -1] - h_n[-1]| = {float(diff.max()):.3g} (0 only for the "
                  "full-length rows). The fc layer classifies padding; h_n[-1] is the last hidden state.",
           framework="torch")
    assert zero_rows <= short, f"rows of full length were zero too; {ledger.ctx}"


@TORCH
def test_c002_example1_dropout_correct(ledger):
    torch = require("torch")
    model = lstm_model(torch)
    x, lengths = example_batch(torch)
    emb = model.embedding(x).detach()
    torch.manual_seed(SEED)
    train = model.dropout.train()(emb)
    evald = model.dropout.eval()(emb)
    frac = float((train == 0).float().mean())
    rate_ok, rate_text = rate_evidence(int((train == 0).sum()), train.numel(), 0.5)
    holds = {"nn.Dropout is applied to the embeddings in training and off in eval": rate_ok and bool(torch.equal(evald, emb)),
             "the 2-layer nn.LSTM also gets the dropout (between its layers)": model.lstm.dropout > 0}
    ledger(holds, f"LSTMModel(100, 128, num_layers=2, dropout=0.5): the embedding dropout works ({rate_text}; eval "
                  f"output == input); but nn.LSTM(128, 128, 2, batch_first=True) is built without dropout= "
                  f"(lstm.dropout = {model.lstm.dropout}), so the 2-layer LSTM has no inter-layer dropout, and the "
                  "output layer reads padding (see output[:, -1, :]).", framework="torch")
    assert 0 < frac < 1, ledger.ctx


@TORCH
def test_c002_example2_runs(ledger):
    torch = require("torch")
    model = lstm_model(torch).eval()
    input_seq = torch.randint(0, 100, (32, 20), generator=torch.Generator().manual_seed(SEED))  # as written
    lengths = torch.tensor([15, 18, 10, 20, 12] * 6 + [15])
    n_lengths = len(lengths)
    lengths, indices = torch.sort(lengths, dim=0, descending=True)
    input_seq = input_seq[indices]
    try:
        with torch.no_grad():
            output = model(input_seq, lengths)
        _, unindices = torch.sort(indices, dim=0)
        output = output[unindices]
        result = f"runs; output has {output.shape[0]} rows"
        rows = output.shape[0]
    except Exception as e:  # noqa: BLE001 - the failure is the evidence
        result, rows = error_text(e, 200), 0
    holds = {"lengths match the batch (32 sequences, 32 lengths)": n_lengths == 32,
             "every input sequence reaches the output": rows == 32}
    ledger(holds, f"Example 2 as written: 32 sequences but {n_lengths} lengths; input_seq[indices] then keeps only the "
                  f"{input_seq.shape[0]} sequences the sort indexes, so the example {result} — sequence(s) "
                  f"{sorted(set(range(32)) - set(indices.tolist()))} silently vanish (no error).", framework="torch")
    x, full = example_batch(torch)  # control: 32 lengths -> 32 rows
    with torch.no_grad():
        assert model(x, full).shape[0] == 32, ledger.ctx


@TORCH
def test_c002_presort_optional(ledger):
    torch = require("torch")
    model = lstm_model(torch).double().eval()
    x, lengths = example_batch(torch)
    with torch.no_grad():
        direct = model(x, lengths)
        s_lengths, idx = torch.sort(lengths, descending=True)
        _, unidx = torch.sort(idx)
        presorted = model(x[idx], s_lengths)[unidx]
    diff = float((direct - presorted).abs().max())
    holds = {"pre-sorting (with enforce_sorted=False) and unsorting gives the same outputs as not sorting": diff < 1e-12}
    ledger(holds, f"Example 1's model (float64, eval), batch 32: pre-sorted + unsorted vs unsorted input: max |difference| "
                  f"{diff:.3g}. pack_padded_sequence(enforce_sorted=False) sorts internally (sorted_indices) anyway; "
                  "a manual sort only matters for enforce_sorted=True (ONNX export).", framework="torch")
    assert direct.shape == (32, 10) and bool(torch.isfinite(direct).all()), ledger.ctx


@TORCH
def test_c002_gradients_through_packing(ledger):
    torch = require("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(SEED)
    T, B, I = 6, 4, 3
    lengths = torch.tensor([3, 6, 1, 5])
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    lstm = torch.nn.LSTM(I, 5).double()
    out, _ = lstm(pack_padded_sequence(x, lengths, enforce_sorted=False))
    y, _ = pad_packed_sequence(out, total_length=T)
    y.sum().backward()
    valid = torch.as_tensor(reference.lengths_to_valid(lengths.numpy(), T))
    g = x.grad.abs().amax(dim=2)
    reached = int((g[valid] > 0).sum())
    holds = {"gradients reach every valid input position through pack/unpack": reached == int(valid.sum()),
             "padded input positions get zero gradient": bool(torch.all(g[~valid] == 0))}
    ledger(holds, f"nn.LSTM on a PackedSequence (lengths {lengths.tolist()}), loss = sum of the padded outputs: "
                  f"nonzero gradient at {reached} of {int(valid.sum())} valid (t, b) positions, max |grad| at padded "
                  f"positions {float(g[~valid].max()):.3g}. Autograd handles pack/unpack; nothing to do by hand.",
           framework="torch")
    assert bool(torch.isfinite(x.grad).all()), ledger.ctx


@TORCH
def test_c002_dropout_biases_gradients(ledger):
    torch = require("torch")
    torch.manual_seed(SEED)
    n, p = 200_000, 0.5
    x = torch.ones(n, dtype=torch.float64, requires_grad=True)
    torch.nn.Dropout(p).train()(x).sum().backward()
    m = x.grad.numpy()  # d/dx sum(dropout(x)) = the scaled mask
    check_probe(m, 1 / (1 - p), ledger.ctx)
    sd = np.sqrt(p / (1 - p))  # standard deviation of one scaled mask element
    z = (m.mean() - 1.0) / (sd / np.sqrt(n))
    from scipy import stats

    crit = stats.norm.isf(ALPHA / 2)
    power = stats.norm.sf(crit - 0.01 / (sd / np.sqrt(n))) + stats.norm.cdf(-crit - 0.01 / (sd / np.sqrt(n)))
    holds = {"nn.Dropout's output is a biased estimate of its input (needs adjusting)": bool(abs(z) > crit)}
    ledger(holds, f"nn.Dropout({p}) keeps values at exactly 1/(1-p) = {1 / (1 - p)} ({np.unique(m).tolist()}), so "
                  f"E[dropout(x)] = x: over {n} elements the mean multiplier (= the gradient of sum(dropout(x))) is "
                  f"{m.mean():.4f}, z = {z:.2f} (two-sided, false alarm {ALPHA:g}: |z| > {crit:.2f}; power "
                  f"{power:.2f} against a bias of 0.01). Inverted dropout is unbiased; no adjustment is needed.",
           framework="torch")


# ================================================================== 003: variable batch sizes

def example1_model(keras, dropout_layer=None):
    return keras.Sequential([keras.layers.Embedding(1000, 64),
                             dropout_layer or keras.layers.Dropout(0.5),
                             keras.layers.LSTM(64),
                             keras.layers.Dense(10, activation="softmax")])


def train_variable_batches(keras, model, shapes=((7, 10), (3, 6), (5, 12), (1, 4))):
    """train_on_batch on batches of these (batch, steps) shapes: the losses."""
    rng = np.random.default_rng(SEED)
    losses = []
    for b, t in shapes:
        x = rng.integers(1, 1000, (b, t))
        y = rng.integers(0, 10, (b,))
        losses.append(float(np.ravel(model.train_on_batch(x, y))[0]))
    return losses


@KERAS_ON_TF
def test_c003_example1_fails_variable_batch(ledger):
    tf, keras = keras_tf()
    keras.utils.set_random_seed(SEED % 2**31)
    model = example1_model(keras)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    try:
        losses = train_variable_batches(keras, model)
        rng = np.random.default_rng(SEED)
        hist = model.fit(rng.integers(1, 1000, (10, 8)), rng.integers(0, 10, (10,)), batch_size=4, epochs=1, verbose=0)
        result = (f"trained: train_on_batch on (batch, steps) = (7, 10), (3, 6), (5, 12), (1, 4), losses "
                  f"{[round(v, 3) for v in losses]}; model.fit on 10 samples with batch_size=4 (batches 4, 4, 2) "
                  f"loss {hist.history['loss'][-1]:.3f}")
        failed = False
    except Exception as e:  # noqa: BLE001 - the failure is the evidence
        result, failed = error_text(e, 200), True
    legacy = legacy_keras()
    if legacy is None:
        legacy_text = "tf-keras is not installed (tf.keras 2 not checked)"
    else:
        ex = legacy["example1"]
        failed = failed or ex["failed"]
        legacy_text = (f"tf-keras {legacy['tf_keras']} (tf.keras 2, as in the document): "
                       + (ex["error"] if ex["failed"] else f"trained too, losses {ex['losses']}, fit loss {ex['fit']:.3f}"))
    ledger({"training the Example 1 model on batches of different sizes fails": failed},
           f"Example 1 verbatim (Embedding -> Dropout(0.5) -> LSTM(64) -> Dense), compiled as written, Keras "
           f"{keras.__version__}: {result}. {legacy_text}.", framework="keras")
    assert failed or all(np.isfinite(losses)), ledger.ctx


@KERAS_ON_TF
def test_c003_dropout_mask_batch_fixed(ledger):
    tf, keras = keras_tf()
    layer = keras.layers.Dropout(0.5, seed=SEED % 2**31)
    shapes, rates = [], []
    for b in (5, 3, 8):
        y = np.asarray(layer(np.ones((b, 6, 16), np.float32), training=True))
        check_probe(y, 2.0, ledger.ctx)
        shapes.append(y.shape)
        rates.append(round(float(np.mean(y == 0)), 3))
    fn = tf.function(lambda x: layer(x, training=True), input_signature=[tf.TensorSpec((None, 6, 16))])
    traced = [tuple(fn(tf.ones((b, 6, 16))).shape) for b in (4, 9)]
    holds = {"a Dropout layer's mask keeps the batch size of an earlier call": any(s[0] != b for s, b in zip(shapes, (5, 3, 8)))}
    ledger(holds, f"one keras.layers.Dropout(0.5) called in training on batches of 5, 3, 8: masks of shapes {shapes} "
                  f"(drop fractions {rates}); inside one traced tf.function with batch dimension None, batches 4 and 9 "
                  f"give {traced}: the mask is drawn per call from the input's dynamic shape.", framework="keras")


@KERAS_ON_TF
def test_c003_rnn_dropout_variable_batch(ledger):
    tf, keras = keras_tf()
    keras.utils.set_random_seed(SEED % 2**31)
    layer = keras.layers.LSTM(8, dropout=0.3, recurrent_dropout=0.3)
    seen = []
    for name in ("get_dropout_mask", "get_recurrent_dropout_mask"):
        orig = getattr(layer.cell, name)

        def spy(step_input, orig=orig, name=name):
            mask = orig(step_input)
            first = mask[0] if isinstance(mask, (list, tuple)) else mask
            seen.append((name.removeprefix("get_").removesuffix("_mask"), tuple(first.shape)))
            return mask

        setattr(layer.cell, name, spy)  # observes the cell's own masks; calls through
    for b in (5, 3):
        layer(np.ones((b, 4, 6), np.float32), training=True)
    model = keras.Sequential([keras.Input((4, 6)), keras.layers.LSTM(8, dropout=0.3, recurrent_dropout=0.3),
                              keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(SEED)
    hist = model.fit(rng.normal(size=(10, 4, 6)), rng.normal(size=(10, 1)), batch_size=4, epochs=2, verbose=0)
    follows = [s for s in seen] and all(s[0] in (5, 3) for _, s in seen) and {s[0] for _, s in seen} == {5, 3}
    holds = {"LSTM(dropout, recurrent_dropout) draws masks of each call's batch size": bool(follows),
             "model.fit with a partial last batch trains": bool(np.all(np.isfinite(hist.history["loss"])))}
    ledger(holds, f"keras.layers.LSTM(8, dropout=0.3, recurrent_dropout=0.3) called in training with batches 5 then 3: "
                  f"the cell's masks (kind, shape of one gate's mask) {sorted(set(seen))}; model.fit on 10 samples, "
                  f"batch_size=4 (last batch 2), 2 epochs: losses {[round(v, 4) for v in hist.history['loss']]}.",
           framework="keras")
    assert seen, f"the mask spies saw no call; {ledger.ctx}"


def example2_model(keras, middle):
    return keras.Sequential([keras.layers.Embedding(1000, 64, mask_zero=True),
                             keras.layers.LSTM(64, return_sequences=True), middle,
                             keras.layers.LSTM(64), keras.layers.Dense(10, activation="softmax")])


def padding_invariance(model, training):
    """max |model(tokens + 3 zeros) - model(tokens)|: 0 when the Embedding mask reaches the last LSTM.
    In training, call it with the dropout layer at rate 0 (the comparison must be deterministic; the
    mask handling does not depend on the rate)."""
    rng = np.random.default_rng(SEED)
    tokens = rng.integers(1, 1000, (4, 5))
    padded = np.concatenate([tokens, np.zeros((4, 3), tokens.dtype)], axis=1)
    a, b = (np.asarray(model(t, training=training)) for t in (padded, tokens))
    return float(np.max(np.abs(a - b)))


def mask_reach(keras, middle):
    """Padding invariance of Example 2's model with `middle(rate)` as its dropout layer:
    {"inference": at the document's rate 0.5, "training": at rate 0}."""
    keras.utils.set_random_seed(SEED % 2**31)
    return {"inference": padding_invariance(example2_model(keras, middle(0.5)), False),
            "training": padding_invariance(example2_model(keras, middle(0.0)), True)}


@KERAS_ON_TF
def test_c003_example2_masking(ledger):
    tf, keras = keras_tf()
    keras.utils.set_random_seed(SEED % 2**31)
    diff = mask_reach(keras, keras.layers.Dropout)
    keras.utils.set_random_seed(SEED % 2**31)
    unmasked = example2_model(keras, keras.layers.Dropout(0.5))
    unmasked.layers[0].mask_zero = False  # control: without the mask, padding must show
    control = padding_invariance(unmasked, False)
    model = example2_model(keras, keras.layers.Dropout(0.5))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    try:
        losses = train_variable_batches(keras, model)
        trained, result = True, f"losses {[round(v, 3) for v in losses]}"
    except Exception as e:  # noqa: BLE001
        trained, result = False, error_text(e, 200)
    holds = {"the mask passes through the Dropout layer to the second LSTM (padding does not change the result)":
                 max(diff.values()) < 1e-5,
             "the model trains on batches of different sizes": trained}
    ledger(holds, f"Example 2 verbatim: 3 trailing zero tokens change the output by {diff['inference']:.2g} in "
                  f"inference and by {diff['training']:.2g} in training (Dropout at rate 0 there, for a deterministic "
                  f"comparison): the Embedding mask crosses Dropout, which supports masking (control: with "
                  f"mask_zero=False the padding changes it by {control:.2g}); train_on_batch with (batch, steps) = "
                  f"(7, 10), (3, 6), (5, 12), (1, 4): {result}. (Example 1 trains on those batches too.)",
           framework="keras")
    assert control > 1e-4, f"the padding measure cannot see a missing mask ({control:.3g}); {ledger.ctx}"


@KERAS_ON_TF
def test_c003_example3_dynamic_dropout(ledger):
    tf, keras = keras_tf()

    class DynamicDropout(keras.layers.Layer):
        def __init__(self, rate, **kwargs):
            super().__init__(**kwargs)
            self.rate = rate

        def call(self, inputs, training=None):
            if training:
                mask = tf.random.uniform(tf.shape(inputs)) > self.rate
                return tf.math.multiply(inputs, tf.cast(mask, inputs.dtype))
            else:
                return inputs

    tf.random.set_seed(SEED)
    layer = DynamicDropout(0.5)
    shapes = []
    for b in (5, 3):
        x = np.random.default_rng(b).uniform(1, 2, (b, 6, 16)).astype(np.float32)
        y = np.asarray(layer(x, training=True))
        shapes.append(y.shape)
    kept = y != 0
    ratio = np.unique(np.round(y[kept] / x[kept], 4))
    infer_same = bool(np.array_equal(np.asarray(layer(x, training=False)), x))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        diff = mask_reach(keras, DynamicDropout)
    warned = [re.sub(r"'[a-z_0-9]+' ", "", str(w.message).split("\n")[0])[:170]
              for w in caught if "mask" in str(w.message).lower()][:1]
    holds = {"masks follow the dynamic batch size": [s[0] for s in shapes] == [5, 3],
             "nothing is dropped at inference": infer_same,
             "kept values are rescaled by 1/(1-rate) (train and inference agree in expectation)":
                 bool(np.allclose(ratio, 2.0, atol=1e-3)),
             "the Embedding mask still reaches the second LSTM": max(diff.values()) < 1e-5}
    ledger(holds, f"DynamicDropout verbatim (tf.keras -> keras): training outputs of shapes {shapes}; kept / input = "
                  f"{ratio.tolist()} (no 1/(1-rate): activations in training are half their inference size on "
                  f"average); inference returns the input unchanged: {infer_same}. In Example 3's model, 3 trailing zero "
                  f"tokens change the output by {diff['inference']:.2g} in inference (call() returns the very input "
                  f"tensor, which still carries its mask) but by {diff['training']:.2g} in training (rate 0 there, "
                  f"for a deterministic comparison: the multiply makes a new tensor, the mask is lost and the second "
                  f"LSTM runs over the padding; the layer does not declare supports_masking"
                  f"{'; Keras warned: ' + '; '.join(warned) if warned else ''}).", framework="keras")
    assert ratio.size >= 1 and np.all(np.isfinite(y)), ledger.ctx


# ================================================================== 004: dropout vs recurrent_dropout vs Dropout

@KERAS_ON_TF
def test_c004_gru_dropout_constructor(ledger):
    tf, keras = keras_tf()
    features_size = 6
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = keras.Sequential()
            model.add(keras.layers.GRU(units=512, return_sequences=True, dropout=0.5,
                                       input_shape=(None, features_size,)))
            model.add(keras.layers.Dropout(0.5))
            out = model(np.ones((2, 4, features_size), np.float32), training=True)
            result, ok = f"builds and runs, output shape {tuple(out.shape)}", True
        except Exception as e:  # noqa: BLE001
            result, ok = error_text(e, 200), False
    notes = sorted({str(w.message).split(".")[0][:120] for w in caught if "input_shape" in str(w.message)})
    ledger({"the example builds and runs with the installed Keras": ok},
           f"keras {keras.__version__}: Sequential + GRU(units=512, return_sequences=True, dropout=0.5, "
           f"input_shape=(None, {features_size})) + Dropout(0.5): {result}"
           + (f"; warning: {notes[0]}" if notes else "") + ".", framework="keras")
    assert ok or "Error" in result, ledger.ctx


@KERAS_ON_TF
def test_c004_dropout_on_inputs(ledger):
    fp = keras_fingerprint("dropout")
    assert fp.deviation < 1e-4, f"probe deviation {fp.deviation:.3g}; {ledger.ctx}"
    holds = {"dropout masks the inputs x": fp.properties["input"] != "none",
             "dropout leaves the recurrent input h_{t-1} unmasked": fp.properties["recurrent"] == "none"}
    ledger(holds, f"keras.layers.LSTM(dropout=0.5) read back by the probe-weight oracle (T=6, B=64, 8 units, 2 "
                  f"calls): input: {fp.properties['input']}; recurrent: {fp.properties['recurrent']}; output: "
                  f"{fp.properties['output']}; states: h {fp.properties['state_h']}, c {fp.properties['state_c']}; "
                  f"observed drop fraction {fp.rates[0]['observed']:.3f} of {fp.rates[0]['n']}.", framework="keras")


@KERAS_ON_TF
def test_c004_recurrent_dropout_on_states(ledger):
    fp = keras_fingerprint("recurrent_dropout")
    assert fp.deviation < 1e-4, f"probe deviation {fp.deviation:.3g}; {ledger.ctx}"
    p = fp.properties
    holds = {"recurrent_dropout masks h_{t-1} in the recurrent kernel's matmul": p["recurrent"] != "none",
             "recurrent_dropout leaves the inputs x unmasked": p["input"] == "none",
             "recurrent_dropout drops the carried states (h or c)": p["state_h"] != "none" or p["state_c"] != "none"}
    ledger(holds, f"keras.layers.LSTM(recurrent_dropout=0.5), probe-weight oracle: recurrent: {p['recurrent']}; "
                  f"input: {p['input']}; carried state h: {p['state_h']}, c: {p['state_c']}; output {p['output']}. "
                  "Only the copy of h_(t-1) entering the recurrent matmul is masked; the states themselves are "
                  "never dropped.", framework="keras")


@KERAS_AND_TF_KERAS
def test_c004_dropouts_every_step(ledger):
    parts = {}
    for knob, kind in (("dropout", "input"), ("recurrent_dropout", "recurrent")):
        v = keras_probe(knob, kind)[kind][0]  # (T, routes, B, K)
        check_probe(v, 2.0, ledger.ctx)
        k = st.keep_indicator(v, 2.0)
        parts[knob] = (bool(np.all((1 - k).reshape(k.shape[0], -1).sum(axis=1) > 0)), per_step_fraction(k))
    holds = {"the masks are applied at every step": all(a for a, _ in parts.values()),
             "a fresh mask is drawn at every step": all(f > 0 for _, f in parts.values())}
    text = ("keras.layers.LSTM, probe-weight oracle, p=0.5, T=6, B=64: "
            + "; ".join(f"{k}: dropped elements at every step {a}, fraction changing between steps {f:.3f}"
                        for k, (a, f) in parts.items())
            + ". Applied at every step, but the same (variational) mask each time.")
    legacy = tf_keras_input_mask("lstm")  # Keras 2, current when the claim was written
    holds["tf-keras 2 (Keras 2) LSTM(dropout=0.5), recurrent_dropout=0: a fresh input mask at every step"] = (
        legacy == "per step")
    text += (f" tf-keras 2 LSTM(dropout=0.5) with recurrent_dropout=0 (its fused path): input mask {legacy} "
             "(suites/test_keras_mask_time.py); with recurrent_dropout>0 both masks are per sequence.")
    ledger(holds, text, framework="keras")


@KERAS_ON_TF
def test_c004_dropout_layer_drops_timesteps(ledger):
    tf, keras = keras_tf()
    B, T, F, p = 256, 32, 4, 0.5
    y = np.asarray(keras.layers.Dropout(p, seed=SEED % 2**31)(np.ones((B, T, F), np.float32), training=True))
    check_probe(y, 2.0, ledger.ctx)
    k = st.keep_indicator(y, 2.0)
    fresh = per_step_fraction(k.transpose(1, 0, 2))
    whole = int(np.sum(k.sum(axis=2) == 0))
    ok, text = rate_evidence(whole, B * T, p ** F, "whole steps zeroed")
    holds = {"a Dropout layer draws a fresh mask at every step": fresh > 0,
             "a Dropout layer zeroes whole time steps (every feature of a step), at rate p^F": ok and whole > 0}
    ledger(holds, f"keras.layers.Dropout({p}) on ones (B={B}, T={T}, F={F}): {fresh:.3f} of the elements change between "
                  f"consecutive steps; whole steps zeroed: {text} (p^F = {p ** F}); with F = 64 features p^F is "
                  f"{p ** 64:.1e}: 'dropping timesteps' is real only for few features.", framework="keras")


@KERAS_ON_TF
def test_c004_noise_shape_spatial(ledger):
    tf, keras = keras_tf()
    B, T, F = 64, 8, 16
    x = np.ones((B, T, F), np.float32)
    outs = {"noise_shape": keras.layers.Dropout(0.5, noise_shape=(None, 1, F), seed=SEED % 2**31),
            "SpatialDropout1D": keras.layers.SpatialDropout1D(0.5, seed=SEED % 2**31)}
    fixed = {}
    for name, layer in outs.items():
        y = np.asarray(layer(x, training=True))
        check_probe(y, 2.0, ledger.ctx)
        k = st.keep_indicator(y, 2.0)
        fixed[name] = (per_step_fraction(k.transpose(1, 0, 2)), float(1 - k.mean()),
                       bool(np.any(k[0] != k[1])), bool(np.any(k[:, 0, 0] != k[:, 0, 1])))
    doc = inspect.getdoc(keras.layers.SpatialDropout1D) or ""
    holds = {"Dropout(noise_shape=(None, 1, F)) keeps one mask over time": fixed["noise_shape"][0] == 0,
             "SpatialDropout1D keeps one mask over time": fixed["SpatialDropout1D"][0] == 0,
             "SpatialDropout1D is undocumented": len(doc) < 200}
    ledger(holds, f"ones (B={B}, T={T}, F={F}), p=0.5: "
           + "; ".join(f"{n}: fraction changing between steps {f:.3f}, dropped {r:.3f}, rows differ {a}, features "
                       f"differ {b}" for n, (f, r, a, b) in fixed.items())
           + f". keras.layers.SpatialDropout1D has a {len(doc)}-character docstring (documented on keras.io).",
           framework="keras")


@KERAS_AND_TF_KERAS
def test_c004_rnn_params_no_step_dropped(ledger):
    v = keras_probe("dropout", "input")["input"][0]  # (T, routes, B, K)
    check_probe(v, 2.0, ledger.ctx)
    k = st.keep_indicator(v, 2.0)[:, 0]  # gates share the input mask (implementation 2)
    fresh = per_step_fraction(k)
    step_zero = (k.sum(axis=2) == 0)  # (T, B): every input of row b dropped at step t
    singled_out = int(np.sum(np.any(step_zero, axis=0) & ~np.all(step_zero, axis=0)))
    holds = {"dropout= keeps one mask over time (no step-wise pattern)": fresh == 0,
             "no time step has all of its inputs dropped while others are kept": singled_out == 0}
    text = (f"keras.layers.LSTM(dropout=0.5), probe-weight oracle (T=6, B=64, 8 inputs): fraction of the input "
            f"mask changing between steps {fresh:.3f}; rows with some but not all steps fully dropped: "
            f"{singled_out}. One (B, F) mask per call: the same features are dropped at every step.")
    legacy = tf_keras_input_mask("lstm")  # Keras 2, current when the claim was written
    holds["tf-keras 2 (Keras 2) LSTM(dropout=0.5) keeps one mask over time too"] = legacy == "per sequence"
    text += (f" tf-keras 2 LSTM(dropout=0.5): {legacy} on the fused path it takes with recurrent_dropout=0 (the "
             "default), per sequence with recurrent_dropout>0 (suites/test_keras_mask_time.py).")
    ledger(holds, text, framework="keras")


def tf_keras_input_mask(cell):
    """'per sequence' / 'per step': the input mask tf-keras' LSTM(dropout=0.5) draws on its fused
    path (suites/test_keras_mask_time.py); the claim's test skips without tf-keras."""
    tf_keras = require("tf_keras", "tf-keras")
    from .test_keras_mask_time import kept_sets, structure

    return structure(kept_sets(tf_keras, cell, 0.0, seed=0))


@KERAS_ON_TF
def test_c004_dropout_drops_kernel_parts(ledger):
    tf, keras = keras_tf()
    B, T, F, U = 4, 5, 6, 3
    x = np.random.default_rng(SEED).normal(size=(B, T, F)).astype(np.float32)
    layer = keras.layers.LSTM(U, dropout=0.5, seed=SEED % 2**31, return_sequences=True)
    layer.build((B, T, F))
    masks = []
    orig = layer.cell.get_dropout_mask
    layer.cell.get_dropout_mask = lambda step_input: masks.append(orig(step_input)) or masks[-1]  # observe, call through
    y = np.asarray(layer(x, training=True))
    m = np.asarray(masks[0])  # (B, F), values 0 or 2
    check_probe(m, 2.0, ledger.ctx)
    kernel, recurrent, bias = (np.asarray(w) for w in layer.get_weights())
    errs = []
    for b in range(B):  # one plain LSTM per sequence, its kernel rows scaled by that sequence's mask
        plain = keras.layers.LSTM(U, return_sequences=True)
        plain.build((1, T, F))
        plain.set_weights([kernel * m[b][:, None], recurrent, bias])
        errs.append(float(np.max(np.abs(np.asarray(plain(x[b:b + 1])) - y[b:b + 1]))))
    holds = {"LSTM(dropout=p) computes exactly what an LSTM without dropout computes with the dropped input features' "
             "kernel rows zeroed (per sequence, at every step)": max(errs) < 1e-5}
    ledger(holds, f"keras.layers.LSTM({U}, dropout=0.5), B={B}, T={T}, F={F}: the input mask drawn per call has shape "
                  f"{m.shape} (one per sequence; {int(np.sum(m == 0))} of {m.size} features dropped); each sequence's "
                  f"output equals a dropout-free LSTM whose kernel rows of the dropped features are zeroed (kept rows "
                  f"x2): max |difference| {max(errs):.2g} over all {T} steps. Dropping inputs with one mask per "
                  "sequence is dropping kernel rows (Gal & Ghahramani); the recurrent kernel likewise under "
                  "recurrent_dropout.", framework="keras")


EXAMPLE3_002 = '''
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

class CustomLoss(nn.Module):
    def __init__(self):
        super(CustomLoss, self).__init__()
        # Your custom loss logic here...

    def forward(self, outputs, targets, lengths):
      # Apply any necessary operations on outputs, potentially unpacked
      # Consider the effect of dropout on gradient calculation within the loss function
      loss = # your loss calculation
      return loss

criterion = CustomLoss()
output = model(input_seq, lengths)
loss = criterion(output, target_tensor, lengths) # target_tensor and lengths are appropriately sized

loss.backward()
'''


@REFERENCE_ONLY
def test_c002_example3_custom_loss(ledger):
    try:
        compile(EXAMPLE3_002, "002_example3.py", "exec")
        result, valid = "compiles", True
    except SyntaxError as e:
        result, valid = f"SyntaxError: {e.msg} (line {e.lineno}: {e.text.strip() if e.text else ''})", False
    ledger({"the example is valid Python that can run": valid},
           f"Example 3 verbatim: {result}. It is a sketch (the loss body is missing; model, input_seq, target_tensor "
           "come from nowhere): there is nothing to run, and nothing about dropout a loss would need to 'adjust for' "
           "(see the unbiasedness check).")
    # control: with a loss body the same code compiles, so the check can tell
    compile(EXAMPLE3_002.replace("loss = # your loss calculation", "loss = outputs.sum()"), "002_example3.py", "exec")
