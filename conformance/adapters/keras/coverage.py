"""One drawn Keras 3 ``LSTM`` / ``GRU`` configuration (`keras_strategies.layer_configs`), or tf-keras 2
one (`keras_strategies.tf_keras_layer_configs`, ``run_config(tf_keras, cfg)``), run end to end on the
process's backend, as a user would: the layer built through its masking source,
called on each drawn batch size in turn (training and inference), for some draws also
``model.fit`` and ``predict`` on 9 or 10 samples in batches of 4; every observation that breaks
a documented rule comes back as a `Problem`. Used by suites/test_keras_coverage.py; `replay(cfg)` reruns a draw.

Checks (the documented rules of keras/src/layers/rnn/{rnn,lstm,gru}.py):
- output (B, T, u) with return_sequences else (B, u); states [h, c] (LSTM) / [h] (GRU), (B, u);
- finite values;
- without effective dropout (training=False, or both rates 0) the outputs equal
  ``reference.run`` on the layer's own weights (``reference.layouts.from_keras_*``) with the
  documented mask policy (`keras_strategies.expected_policy`); a stateful layer starts from
  the state its previous call left (zeros first), unless initial_state is passed;
- a rate of exactly 1 in training drops everything (documented "fraction of the units to drop");
- with a seed, a second layer built alike gives identical outputs in training;
- stateful: a call with another batch size than the first is refused with ValueError
  ("If an RNN is stateful, the batch size ..."), any other raise is a crash;
- use_cudnn=True without a GPU is refused with ValueError ("use_cudnn=True was specified");
- ``fit`` then ``predict`` on 9 or 10 samples, batch_size=4 (a partial last batch) run, the loss is
  finite and predict returns one row per sample; any raise is a crash. For a stateful layer
  (``Input(batch_shape=(4, ...))``) the partial batch breaks the documented fixed batch size
  (keras/src/layers/rnn/rnn.py, "Note on using statefulness": "Specify a fixed batch size ...
  Remember to also specify the same batch_size=... when calling fit()"), and RNN.call enforces
  it with one documented refusal: ``ValueError("If an RNN is stateful, the batch size of the
  input sequences must be the same as the batch size of the initial state ...")``. A callback
  counts the train batches done, so that refusal is accepted only where it is due, at the
  partial last batch; a raise during the full batches before it is a crash like any other
  (whatever its type), acceptance of the partial batch is a ``stateful_rule`` problem, and so is
  a refusal of it with another error (no documented refusal). The other documented refusals:
  ``ValueError("use_cudnn=True was specified ...")`` without a GPU (lstm.py / gru.py
  inner_loop); RNN.build's "When using `stateful=True` in a RNN, the batch size must be static"
  cannot occur here (the Input has a batch size).

tf-keras 2 (``import tf_keras``; tf_keras/src/layers/rnn/{base_rnn,lstm,gru}.py), where its rules differ:
- ``time_major=True`` (documented: "the inputs and outputs will be in shape [timesteps, batch, feature]"):
  the inputs are fed (T, B, F) (Embedding ids (T, B)) and the sequence output is (T, B, u); the states
  stay (B, u). The ``mask=`` source passes the mask the call docstring documents, "Binary tensor of
  shape [batch, timesteps]", whatever time_major; Masking / Embedding pass the mask they compute.
- no ``use_cudnn``, no ``seed`` (no determinism check: tf-keras documents no per-layer seed), weights
  named ``.../kernel:0``;
- stateful: the layer's input_spec keeps the batch size it was built with (RNN.build: "if not
  self.stateful: input_spec_shape[batch_index] = None"), so another batch size is refused by the
  input check, ``ValueError('Input 0 of layer ... is incompatible with the layer: expected
  shape=(B, ...)')`` (the documented "fixed batch size ... *including the batch size*"); with
  initial_state, a stateful layer uses its recorded state once that is non-zero, the passed state
  only while it is all zeros (RNN._process_inputs: "Use the recorded state if it is not same as the
  default"), so the reference starts from the carried state after the first call;
- fit is not drawn with ``time_major`` (a Model's fit and predict slice axis 0 as the batch).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import reference
from reference import layouts

from conformance.adapters.keras.cross_backend import exc_line
from conformance.adapters.keras.strategies import expected_policy
from conformance.core.tolerances import tolerance

__all__ = ["Problem", "run_config", "replay", "layer_kwargs", "layer_src", "call_src", "FEATURES"]

FEATURES, VOCAB = 3, 7
STATEFUL_REFUSAL = "If an RNN is stateful, the batch size"
TF_KERAS_STATEFUL_REFUSAL = "is incompatible with the layer"  # InputSpec: expected shape=(B, ...)
CUDNN_REFUSAL = "use_cudnn=True was specified"


def is_tf_keras(keras):
    return keras.__name__.split(".")[0] == "tf_keras"


def stateful_refusal(cfg):
    """The message of the documented ValueError refusing another batch size to a stateful layer."""
    return TF_KERAS_STATEFUL_REFUSAL if cfg.get("framework") == "tf_keras" else STATEFUL_REFUSAL


def time_major(cfg):
    return bool(cfg.get("time_major"))


def to_numpy(keras, o):
    if is_tf_keras(keras):
        return np.asarray(o.numpy() if hasattr(o, "numpy") else o)
    return np.asarray(keras.ops.convert_to_numpy(o))


@dataclass
class Problem:
    kind: str      # crash, shape, nonfinite, values, dropout_one, determinism, stateful_rule, fit
    call: int      # index of the call (-1: fit)
    detail: str
    snippet: str = ""  # the exact constructor and call, for a copy-paste repro
    follows: tuple = ()  # "values": the reference padding policies the outputs do match
    wrong: tuple = ()    # "values": the outputs (y, h_n, c_n) beyond tolerance


def layer_kwargs(cfg):
    keys = ("dropout", "recurrent_dropout", "implementation", "use_cudnn", "unroll", "go_backwards",
            "return_sequences", "return_state", "stateful", "seed", "zero_output_for_mask", "reset_after",
            "time_major")
    return dict(units=cfg["units"], **{k: cfg[k] for k in keys if k in cfg})


def layer_src(cfg):
    args = ", ".join(f"{k}={v!r}" for k, v in layer_kwargs(cfg).items())
    return f"keras.layers.{cfg['cell'].upper()}({args})"


def masked(cfg):
    return cfg["masking"] != "none"


def batch_data(cfg, index, B):
    """Inputs of call `index` (batch B): dict(source input, valid (B, T), h0, c0, x for the reference)."""
    rng = np.random.default_rng([cfg["data_seed"], index])
    T, u = cfg["steps"], cfg["units"]
    valid = rng.random((B, T)) < 0.7 if masked(cfg) else np.ones((B, T), bool)
    x = rng.normal(size=(B, T, FEATURES)).astype(np.float32)
    if cfg["masking"] == "Masking":
        x = np.where(valid[..., None], x, np.float32(0))
    ids = np.where(valid, rng.integers(1, VOCAB, size=(B, T)), 0)
    h0 = rng.normal(size=(B, u)).astype(np.float32)
    c0 = rng.normal(size=(B, u)).astype(np.float32)
    return dict(x=x, ids=ids, valid=valid, h0=h0, c0=c0)


def call_src(cfg, B, index, training):
    """The exact call (after `layer = <layer_src>`), inputs regenerated by `batch_data`."""
    lines = [f"d = KC.batch_data(cfg, {index}, {B})"]
    if time_major(cfg):
        lines.append("d = KC.time_major_inputs(d)  # x (T, B, F), ids (T, B); d['valid'] stays (B, T)")
    if cfg.get("framework") == "tf_keras":
        lines.append("d = KC.as_tensors(d)  # tf.Tensor inputs, mask and initial_state (documented: tensors)")
    kw = [f"training={training}"]
    if cfg["masking"] == "Masking":
        lines.append("src = keras.layers.Masking(0.0); seq = src(d['x']); m = src.compute_mask(d['x'])")
        kw.append("mask=m")
    elif cfg["masking"] == "Embedding":
        lines.append(f"src = keras.layers.Embedding({VOCAB}, {FEATURES}, mask_zero=True); seq = src(d['ids']); "
                     "m = src.compute_mask(d['ids'])")
        kw.append("mask=m")
    else:
        lines.append("seq = d['x']")
        if cfg["masking"] == "mask=":
            kw.append("mask=d['valid']")
    if cfg["initial_state"]:
        kw.append("initial_state=[d['h0'], d['c0']]" if cfg["cell"] == "lstm" else "initial_state=[d['h0']]")
    lines.append(f"out = layer(seq, {', '.join(kw)})")
    return "\n".join(lines)


def time_major_inputs(d):
    """`batch_data`'s inputs as a time_major layer takes them: x (T, B, F), ids (T, B); the mask= mask
    stays (B, T), the shape the call docstring documents."""
    return {**d, "x": np.ascontiguousarray(np.swapaxes(d["x"], 0, 1)),
            "ids": np.ascontiguousarray(np.swapaxes(d["ids"], 0, 1))}


def as_tensors(d):
    """`batch_data`'s arrays as tf.Tensors: tf-keras documents tensors for the inputs, the mask and
    initial_state (a NumPy initial_state is refused: "Expected a symbolic tensor instance")."""
    import tensorflow as tf

    return {k: tf.constant(v) for k, v in d.items()}


def header(backend, numpy=True):
    """The first lines of a repro: the environment and the import of `keras` (and of NumPy)."""
    np_ = "numpy as np, " if numpy else ""
    if backend == "tf_keras":
        return ["# TF_USE_LEGACY_KERAS=1", f"import {np_}tf_keras as keras"]
    return [f"# KERAS_BACKEND={backend}", f"import {np_}keras"]


def snippet(cfg, B, index, training, backend):
    return "\n".join([*header(backend),
                      "from conformance.adapters.keras import coverage as KC", f"cfg = {cfg!r}",
                      f"layer = {layer_src(cfg)}", call_src(cfg, B, index, training), "print(out)"])


# ----------------------------------------------------------------------------- building

class Built:
    """The layer, its masking source and the NumPy side of both (weights set by us)."""

    def __init__(self, keras, cfg):
        self.keras, self.cfg = keras, cfg
        rng = np.random.default_rng([cfg["data_seed"], 999])
        self.layer = getattr(keras.layers, cfg["cell"].upper())(**layer_kwargs(cfg))
        B0, T = cfg["batches"][0], cfg["steps"]
        self.layer.build((T, B0, FEATURES) if time_major(cfg) else (B0, T, FEATURES))
        names = [str(getattr(v, "path", v.name)).split("/")[-1].split(":")[0] for v in self.layer.cell.weights]
        vals = [rng.uniform(-1, 1, tuple(v.shape)).astype(np.float32) / np.sqrt(cfg["units"])
                for v in self.layer.cell.weights]
        self.layer.cell.set_weights(vals)
        w = dict(zip(names, vals))
        if cfg["cell"] == "lstm":
            self.weights = layouts.from_keras_lstm(w["kernel"], w["recurrent_kernel"], w.get("bias"))
        else:
            self.weights = layouts.from_keras_gru(w["kernel"], w["recurrent_kernel"], w.get("bias"),
                                                  reset_after=cfg["reset_after"])
        self.src, self.table = None, None
        if cfg["masking"] == "Masking":
            self.src = keras.layers.Masking(0.0)
        elif cfg["masking"] == "Embedding":
            self.src = keras.layers.Embedding(VOCAB, FEATURES, mask_zero=True)
            self.src.build((None, cfg["steps"]))
            self.table = rng.normal(size=(VOCAB, FEATURES)).astype(np.float32)
            self.src.set_weights([self.table])

    def ref_x(self, d):
        """(B, T, F) float inputs the recurrent layer sees."""
        return self.table[d["ids"]] if self.table is not None else d["x"]

    def call(self, d, training):
        """Flat list of NumPy outputs [y, *states]."""
        cfg, kw = self.cfg, dict(training=training)
        if time_major(cfg):
            d = time_major_inputs(d)
        if cfg.get("framework") == "tf_keras":
            d = as_tensors(d)
        if self.src is not None:
            inp = d["ids"] if cfg["masking"] == "Embedding" else d["x"]
            seq, kw["mask"] = self.src(inp), self.src.compute_mask(inp)
        else:
            seq = d["x"]
            if cfg["masking"] == "mask=":
                kw["mask"] = d["valid"]
        if cfg["initial_state"]:
            kw["initial_state"] = [d["h0"], d["c0"]] if cfg["cell"] == "lstm" else [d["h0"]]
        out = self.layer(seq, **kw)
        out = list(out) if isinstance(out, (list, tuple)) else [out]
        return [to_numpy(self.keras, o) for o in out]


# ----------------------------------------------------------------------------- checks

def expected_shapes(cfg, B):
    y = (B, cfg["steps"], cfg["units"]) if cfg["return_sequences"] else (B, cfg["units"])
    if time_major(cfg) and cfg["return_sequences"]:
        y = (cfg["steps"], B, cfg["units"])
    n = (2 if cfg["cell"] == "lstm" else 1) if cfg["return_state"] else 0
    return [y] + [(B, cfg["units"])] * n


def documented_policy(cfg):
    """Keras 3: `expected_policy`. tf-keras' RNN docstring: zero_output_for_mask "is only used when
    `return_sequences` is True and mask is provided", so the last output without it repeats."""
    if cfg.get("framework") == "tf_keras":
        return expected_policy(cfg["zero_output_for_mask"] and cfg["return_sequences"])
    return expected_policy(cfg["zero_output_for_mask"])


def reference_result(cfg, weights, x, valid, h0, c0, masks=None, policy=None):
    return reference.run([[weights]], np.swapaxes(x, 0, 1).astype(np.float64), h0[None],
                         None if c0 is None else c0[None], masks=masks, step_mask=valid.T,
                         padding=policy or documented_policy(cfg),
                         go_backwards=cfg["go_backwards"])


def compare(cfg, outs, want, tol):
    """max |error| per output name against a reference Result."""
    y = np.swapaxes(want.y, 0, 1) if cfg["return_sequences"] else want.y[-1]
    wanted = {"y": y}
    if cfg["return_state"]:
        wanted["h_n"] = want.h_n[0]
        if cfg["cell"] == "lstm":
            wanted["c_n"] = want.c_n[0]
    return {k: float(np.max(np.abs(o - w), initial=0.0)) for (k, w), o in zip(wanted.items(), outs)}


def dropped_all_masks(cfg, B, u):
    """Reference masks for rates of exactly 1: everything dropped (zeros)."""
    lm = reference.LayerMasks()
    if cfg["dropout"] == 1.0:
        lm.input = reference.Mask(np.zeros((B, FEATURES)))
    if cfg["recurrent_dropout"] == 1.0:
        lm.recurrent = reference.Mask(np.zeros((B, u)))
    return reference.StackMasks(layers=[[lm]])


class State:
    """What the reference knows of a stateful layer's carried state (None: unknown)."""

    def __init__(self, cfg, B):
        z = np.zeros((B, cfg["units"]), np.float32)
        self.h, self.c, self.steps = z, z, 0


def check_call(built, cfg, index, B, training, carried, backend):
    """Problems of one call; updates `carried` (stateful layers)."""
    d = batch_data(cfg, index, B)
    snip = snippet(cfg, B, index, training, backend)
    try:
        outs = built.call(d, training)
    except Exception as e:  # a raise is a finding unless it is a documented refusal
        msg = exc_line(e)
        if cfg.get("use_cudnn") is True and isinstance(e, ValueError) and CUDNN_REFUSAL in str(e):
            return [], "refused: use_cudnn=True (documented)"
        if (cfg["stateful"] and B != cfg["batches"][0] and isinstance(e, ValueError)
                and stateful_refusal(cfg) in str(e)):
            return [], "refused: stateful batch size (documented)"
        return [Problem("crash", index, msg, snip)], msg
    probs = []
    if cfg["stateful"] and B != cfg["batches"][0]:
        probs.append(Problem("stateful_rule", index, f"stateful layer built for batch {cfg['batches'][0]} accepted "
                             f"batch {B} (documented: ValueError)", snip))
    shapes = [o.shape for o in outs]
    if shapes != expected_shapes(cfg, B):
        return probs + [Problem("shape", index, f"shapes {shapes}, documented {expected_shapes(cfg, B)}", snip)], "ran"
    if time_major(cfg) and cfg["return_sequences"]:
        outs = [np.swapaxes(outs[0], 0, 1)] + outs[1:]  # (T, B, u) -> (B, T, u), as the reference's
    if not all(np.isfinite(o).all() for o in outs):
        probs.append(Problem("nonfinite", index, "non-finite values", snip))
    probs += check_values(built, cfg, index, B, training, d, outs, carried, snip)
    return probs, "ran"


def starts_from_initial_state(cfg, carried):
    """Whether the call starts from the initial_state passed (None: unknown). Keras 3: whenever one
    is passed. tf-keras, stateful: only while the recorded state is all zeros (RNN._process_inputs),
    unknown once that state went through random dropout."""
    if not cfg["initial_state"]:
        return False
    if cfg.get("framework") != "tf_keras" or carried is None:
        return True
    if carried.steps is None:
        return None
    return not (np.any(carried.h) or (carried.c is not None and np.any(carried.c)))


def check_values(built, cfg, index, B, training, d, outs, carried, snip):
    rates = (cfg["dropout"], cfg["recurrent_dropout"])
    init = starts_from_initial_state(cfg, carried)
    if init is None or (carried is not None and carried.steps is None and not init):
        return []  # the carried state went through random dropout: unknown to the reference
    h0 = d["h0"] if init else (carried.h if carried else np.zeros((B, cfg["units"]), np.float32))
    c0 = d["c0"] if init else (carried.c if carried else np.zeros((B, cfg["units"]), np.float32))
    c0 = c0 if cfg["cell"] == "lstm" else None
    prior = 0 if init or not carried else carried.steps
    tol = tolerance("float32", cfg["steps"] + prior, FEATURES + cfg["units"])
    x, valid = built.ref_x(d), d["valid"]
    off = not training or all(r == 0.0 for r in rates)
    if off or all(r in (0.0, 1.0) for r in rates):
        masks = None if off else dropped_all_masks(cfg, B, cfg["units"])
        want = reference_result(cfg, built.weights, x, valid, h0, c0, masks)
        errs = compare(cfg, outs, want, tol)
        if carried is not None:
            carried.h = want.h_n[0].astype(np.float32)
            carried.c = None if c0 is None else want.c_n[0].astype(np.float32)
            carried.steps = prior + cfg["steps"]
        bad = {k: e for k, e in errs.items() if e > tol}
        if not bad:
            return []
        if carried is not None:
            carried.steps = None  # the layer's state differs from the reference's: unknown from here
        kind = "values" if off else "dropout_one"
        if not off:  # does it match the no-dropout reference instead?
            none = compare(cfg, outs, reference_result(cfg, built.weights, x, valid, h0, c0), tol)
            detail = (f"rate 1 in training: errors {fmt(errs)} vs everything dropped; {fmt(none)} vs no dropout "
                      f"(tolerance {tol:.2g})")
        else:
            follows = tuple(pol for pol in reference.POLICIES if max(compare(
                cfg, outs, reference_result(cfg, built.weights, x, valid, h0, c0, policy=pol), tol).values()) <= tol)
            detail = (f"errors {fmt(errs)} > tolerance {tol:.2g} (policy {documented_policy(cfg)}"
                      f"; outputs match the policies {list(follows) or 'none'})")
            return [Problem(kind, index, detail, snip, follows, tuple(sorted(bad)))]
        return [Problem(kind, index, detail, snip)]
    if carried is not None:
        carried.steps = None  # state after random dropout: unknown to the reference
    return []


def fmt(errs):
    return ", ".join(f"{k}={v:.3g}" for k, v in errs.items())


def check_determinism(keras, cfg, backend):
    """Two layers built alike with the same seed give identical training outputs."""
    if cfg.get("seed") is None or not any(0 < r < 1 for r in (cfg["dropout"], cfg["recurrent_dropout"])):
        return []
    B = cfg["batches"][0]
    d = batch_data(cfg, 0, B)
    try:
        a, b = Built(keras, cfg).call(d, True), Built(keras, cfg).call(d, True)
    except Exception:
        return []  # crashes are reported by the call checks
    if all(np.array_equal(p, q) for p, q in zip(a, b)):
        return []
    diff = max(float(np.max(np.abs(p - q), initial=0.0)) for p, q in zip(a, b))
    return [Problem("determinism", 0, f"same seed {cfg['seed']}, different outputs (max diff {diff:.3g})",
                    snippet(cfg, B, 0, True, backend))]


def fit_src(cfg):
    return f"KC.fit_model(keras, {cfg!r})"


def fit_model(keras, cfg, batches_done=None):
    """model.fit, then model.predict, on `fit_samples(cfg)` samples with batch_size=4 (a partial last
    batch of 1 or 2): (the history's losses, the number of rows predict returns). `batches_done`
    (a list): each train batch's index is appended to it when the batch has run."""
    T, n = cfg["steps"], fit_samples(cfg)
    shape = dict(batch_shape=(4, T)) if cfg["stateful"] else dict(shape=(T,))
    d = batch_data(cfg, 100, n)
    kw, extra = {}, []
    if cfg["masking"] == "Embedding":
        inp = keras.Input(**shape, dtype="int32")
        seq, data = keras.layers.Embedding(VOCAB, FEATURES, mask_zero=True)(inp), [d["ids"]]
    else:
        inp = keras.Input(**{k: v + (FEATURES,) for k, v in shape.items()})
        seq, data = inp, [d["x"]]
        if cfg["masking"] == "Masking":
            seq = keras.layers.Masking(0.0)(inp)
        elif cfg["masking"] == "mask=":
            m = keras.Input(**shape, dtype="bool")
            extra, kw["mask"] = [m], m
            data.append(d["valid"])
    out = getattr(keras.layers, cfg["cell"].upper())(**layer_kwargs(cfg))(seq, **kw)
    y = out[0] if isinstance(out, (list, tuple)) else out
    model = keras.Model([inp] + extra, y)
    model.compile(optimizer="sgd", loss="mse")
    target = np.zeros((n,) + tuple(y.shape[1:]), np.float32)
    data = data if len(data) > 1 else data[0]
    cb = [] if batches_done is None else [
        keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs=None: batches_done.append(batch))]
    hist = model.fit(data, target, batch_size=4, epochs=1, verbose=0, shuffle=False, callbacks=cb)
    return hist.history["loss"], int(model.predict(data, batch_size=4, verbose=0).shape[0])


def fit_samples(cfg):
    return 9 if cfg["data_seed"] % 2 else 10


def fit_error(e):
    """exc_line, with TF's op message when the first line is only "Graph execution error:" (the
    message follows the traceback of the node: "Detected at node ...", "File ..." lines)."""
    why = exc_line(e)
    if why.endswith(":"):
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        op = [ln for ln in lines[1:] if not ln.startswith(("Detected at node", "File ", "[["))]
        why += " " + (op or lines[-1:] or [""])[0][:120]
    return why[:300]


def tf_keras_cause(e):
    """The message of the error a tf-keras ``fit`` raised from inside its tf.function ("in user code:"
    and a traceback first): the line after the last "Exception encountered when calling layer",
    else the last line naming an error."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    at = [i for i, ln in enumerate(lines) if "Exception encountered when calling" in ln]
    if at and at[-1] + 1 < len(lines):
        return lines[at[-1] + 1][:200]
    named = [ln for ln in lines if "Error" in ln and not ln.startswith("File ")]
    return (named or lines[-1:] or [""])[-1][:200]


def check_fit(keras, cfg, backend):
    snip = "\n".join([*header(backend, numpy=False),
                      "from conformance.adapters.keras import coverage as KC",
                      f"print({fit_src(cfg)})"])
    n, done = fit_samples(cfg), []
    full = n // 4  # full batches before the partial last one
    try:
        losses, rows = fit_model(keras, cfg, done)
    except Exception as e:
        why = fit_error(e)
        if cfg.get("framework") == "tf_keras" and "in user code" in why:
            why = f"{why} ... {tf_keras_cause(e)}"
        if cfg.get("use_cudnn") is True and isinstance(e, ValueError) and CUDNN_REFUSAL in str(e):
            return [], "fit refused: use_cudnn=True (documented)"
        if cfg["stateful"] and len(done) > full:  # the partial batch went through; predict raised
            return [Problem("stateful_rule", -1, f"fit of a stateful layer (Input batch_shape (4, ...)) accepted "
                            f"the partial last batch of {n % 4} (documented: ValueError '{stateful_refusal(cfg)} ...'); "
                            f"then predict raised {why}", snip)], "fit ran, predict raised"
        if cfg["stateful"] and len(done) == full:  # raised at the partial last batch
            if isinstance(e, ValueError) and stateful_refusal(cfg) in str(e):
                return [], "fit refused: stateful, partial last batch (documented)"
            return [Problem("stateful_rule", -1, f"fit of a stateful layer (Input batch_shape (4, ...)) refused the "
                            f"partial last batch of {n % 4} with {why}, not the documented ValueError "
                            f"'{stateful_refusal(cfg)} ...'", snip)], "fit: stateful, partial last batch, undocumented error"
        at = f" at train batch {len(done)} of {full} full ones" + (" + 1 partial" if n % 4 else "")
        return [Problem("crash", -1, f"fit{at}: {why}", snip)], "fit crashed"
    if cfg["stateful"]:
        return [Problem("stateful_rule", -1, f"fit and predict of a stateful layer (Input batch_shape (4, ...)) "
                        f"accepted {n} samples in batches of 4 (a partial last batch of {n % 4}; documented: the "
                        f"same batch size); predict returned {rows} rows for {n} samples, loss {losses}", snip)], \
            "fit ran"
    if not np.all(np.isfinite(losses)) or rows != n:
        detail = f"fit: loss {losses}; predict returned {rows} rows for {n} samples"
        return [Problem("fit", -1, detail, snip)], "fit ran"
    return [], "fit ran"


def wants_fit(cfg):
    """A third of the draws fit, and every stateful one (where fit has its own documented rule); not
    time_major ones (fit and predict slice axis 0 as the batch)."""
    return (cfg["data_seed"] % 3 == 0 or cfg["stateful"]) and not time_major(cfg)


def run_config(keras, cfg):
    """(problems, notes): every call of the draw (each batch size, training as drawn and the
    other mode), the seed check and, for some draws, fit."""
    backend = "tf_keras" if is_tf_keras(keras) else keras.backend.backend()
    keras.utils.set_random_seed(cfg["data_seed"] % 2**31)
    try:
        built = Built(keras, cfg)
    except Exception as e:
        return [Problem("crash", 0, f"construction: {exc_line(e)}", f"layer = {layer_src(cfg)}")], ["crash"]
    carried = State(cfg, cfg["batches"][0]) if cfg["stateful"] else None
    problems, notes, index = [], [], 0
    for B in cfg["batches"]:
        for training in (cfg["training"], not cfg["training"]):
            probs, note = check_call(built, cfg, index, B, training, carried, backend)
            problems += probs
            notes.append(note)
            index += 1
    problems += check_determinism(keras, cfg, backend)
    if wants_fit(cfg):
        probs, note = check_fit(keras, cfg, backend)
        problems += probs
        notes.append(note)
    return problems, notes


def replay(cfg):
    """Rerun a draw on the process's backend (a tf-keras draw: with tf_keras) and print its problems."""
    if cfg.get("framework") == "tf_keras":
        import tf_keras as keras
    else:
        import keras

    problems, notes = run_config(keras, cfg)
    for p in problems:
        print(f"[{p.kind}] call {p.call}: {p.detail}")
    print("notes:", notes)
    return problems
