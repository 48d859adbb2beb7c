"""One drawn onnxruntime ``LSTM`` / ``GRU`` configuration: a whole one-node ONNX model (every
attribute and optional input of the operator spec), run on the CPUExecutionProvider and checked
against `spec_lstm` / `spec_gru`, a float64 NumPy re-derivation of the ONNX operator equations.
Used by suites/test_onnxruntime_coverage.py (strategy: `configs`); `replay(cfg)` reruns a draw.

The spec (``onnx.defs.get_schema('LSTM' | 'GRU').doc`` and attribute docs, opset 22; the node
is built at opset 14, where LSTM/GRU are the same but for layout, which opset 14 added):

- LSTM gates i, o, f, c (W, R, B = [Wb; Rb], P = [Pi, Po, Pf]):
  it = f(Xt Wi^T + Ht-1 Ri^T + Pi . Ct-1 + Wbi + Rbi), ft = f(... Pf . Ct-1 ...),
  ct = g(Xt Wc^T + Ht-1 Rc^T + Wbc + Rbc), Ct = ft . Ct-1 + it . ct,
  ot = f(Xt Wo^T + Ht-1 Ro^T + Po . Ct + Wbo + Rbo), Ht = ot . h(Ct); default f, g, h = Sigmoid, Tanh, Tanh.
  ``input_forget=1`` "couples the input and forget gates": ft = 1 - it (CIFG; the spec gives no
  formula, this is the standard coupling and the one onnxruntime names input_forget).
- GRU gates z, r, h: zt = f(..z..), rt = f(..r..),
  ht = g(Xt Wh^T + (rt . Ht-1) Rh^T + Rbh + Wbh)            (linear_before_reset = 0)
  ht = g(Xt Wh^T + rt . (Ht-1 Rh^T + Rbh) + Wbh)            (linear_before_reset != 0)
  Ht = (1 - zt) . ht + zt . Ht-1; default f, g = Sigmoid, Tanh.
- ``activations``: 3 (LSTM) / 2 (GRU) per direction, forward's first; ``activation_alpha`` /
  ``activation_beta`` "consumed in the order of activation functions": each function that takes
  an alpha (beta) takes the next value of the list; "Default values are the same as of
  corresponding ONNX operators" (`DEFAULTS`: LeakyRelu 0.01, ThresholdedRelu 1.0, HardSigmoid
  0.2 / 0.5, Elu 1.0). Affine and ScaledTanh have no ONNX operator any more (experimental ops,
  removed in ONNX 1.5), so their defaults are undocumented: the strategy always passes their
  alpha / beta.
- ``clip``: "bounds the elements ... in the range of [-threshold, +threshold] and is applied to
  the input of activations": here to every gate pre-activation (the inputs of f and g), not to
  Ct before h (the brief's and onnxruntime's reading, measured: `spec_lstm(clip_cell=True)`
  is the other reading, kept for the self-test / investigation).
- ``sequence_lens`` (1..T): the spec is silent on padded steps; onnxruntime's measured and this
  project's policy ("zero_output", suites/test_onnxruntime_rnn.py): padded Y steps 0, Y_h / Y_c
  the state at each row's last valid step, a reverse direction reversed within each length.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from conformance.core.tolerances import tolerance

__all__ = ["ACTIVATIONS", "DEFAULTS", "activation", "bind_activations", "spec_lstm", "spec_gru", "Problem",
           "build", "oracle", "run_config", "replay", "repro_snippet", "OPSET"]

OPSET = 14
# name: (takes alpha, takes beta)
ACTIVATIONS = {"Relu": (False, False), "Tanh": (False, False), "Sigmoid": (False, False),
               "Affine": (True, True), "LeakyRelu": (True, False), "ThresholdedRelu": (True, False),
               "ScaledTanh": (True, True), "HardSigmoid": (True, True), "Elu": (True, False),
               "Softsign": (False, False), "Softplus": (False, False)}
# documented defaults ("the same as of corresponding ONNX operators"): name -> (alpha, beta)
DEFAULTS = {"LeakyRelu": (0.01, None), "ThresholdedRelu": (1.0, None), "HardSigmoid": (0.2, 0.5), "Elu": (1.0, None)}
UNDOCUMENTED_DEFAULTS = ("Affine", "ScaledTanh")
DEFAULT_ACTS = {"LSTM": ("Sigmoid", "Tanh", "Tanh"), "GRU": ("Sigmoid", "Tanh")}
GATES = {"LSTM": 4, "GRU": 3}
THRESHOLD_MARGIN = 1e-4  # ThresholdedRelu inputs this close to alpha: float32 may fall either side


def _f32(v):
    return float(np.float32(v))


def activation(name, alpha=None, beta=None):
    """The spec's formula for `name` as a float64 NumPy function (alpha / beta as bound)."""
    a, b = alpha, beta
    return {
        "Relu": lambda x: np.maximum(0.0, x),
        "Tanh": lambda x: (1 - np.exp(-2 * x)) / (1 + np.exp(-2 * x)) if np.all(np.abs(x) < 300) else np.tanh(x),
        "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
        "Affine": lambda x: a * x + b,
        "LeakyRelu": lambda x: np.where(x >= 0, x, a * x),
        "ThresholdedRelu": lambda x: np.where(x >= a, x, 0.0),
        "ScaledTanh": lambda x: a * np.tanh(b * x),
        "HardSigmoid": lambda x: np.minimum(np.maximum(a * x + b, 0.0), 1.0),
        "Elu": lambda x: np.where(x >= 0, x, a * (np.exp(np.minimum(x, 0.0)) - 1)),
        "Softsign": lambda x: x / (1 + np.abs(x)),
        "Softplus": lambda x: np.logaddexp(0.0, x),
    }[name]


def bind_activations(names, alphas=None, betas=None):
    """[(name, alpha, beta)] per function: each function taking an alpha (beta) consumes the next
    value of `alphas` (`betas`), else its documented default (KeyError where there is none).
    Values as float32 (attributes are stored as float)."""
    ia, ib, out = iter(alphas or ()), iter(betas or ()), []
    for n in names:
        takes_a, takes_b = ACTIVATIONS[n]
        da, db = DEFAULTS.get(n, (None, None))
        a = next(ia, None) if takes_a else None
        b = next(ib, None) if takes_b else None
        if takes_a and a is None:
            if da is None:
                raise KeyError(f"{n}: no documented default alpha")
            a = da
        if takes_b and b is None:
            if db is None:
                raise KeyError(f"{n}: no documented default beta")
            b = db
        out.append((n, None if a is None else _f32(a), None if b is None else _f32(b)))
    return out


def _directions(direction):
    return {"forward": [False], "reverse": [True], "bidirectional": [False, True]}[direction]


def _common(X, W, hidden_size, direction, sequence_lens, initial_h, acts, n_acts, op,
            activation_alpha, activation_beta, make_activation=None):
    X = np.asarray(X, np.float64)
    T, Bn, _ = X.shape
    revs = _directions(direction)
    D, H = len(revs), hidden_size
    assert np.shape(W)[0] == D, "W's first dimension must be num_directions"
    L = np.full(Bn, T) if sequence_lens is None else np.asarray(sequence_lens, np.int64)
    h0 = np.zeros((D, Bn, H)) if initial_h is None else np.asarray(initial_h, np.float64)
    names = list(acts) if acts else list(DEFAULT_ACTS[op]) * D
    assert len(names) == n_acts * D, f"{op} needs {n_acts * D} activations, got {len(names)}"
    bound = bind_activations(names, activation_alpha, activation_beta)
    fns = [(make_activation or activation)(*b) for b in bound]
    return X, T, Bn, revs, D, H, L, h0, fns


def _order(T, rev):
    return range(T - 1, -1, -1) if rev else range(T)


def spec_lstm(X, W, R, B=None, sequence_lens=None, initial_h=None, initial_c=None, P=None, *, hidden_size,
              direction="forward", activations=None, activation_alpha=None, activation_beta=None, clip=None,
              input_forget=0, clip_cell=False, make_activation=None):
    """ONNX LSTM (layout 0) in float64: (Y (T, D, B, H), Y_h (D, B, H), Y_c (D, B, H))."""
    X, T, Bn, revs, D, H, L, h0, fns = _common(X, W, hidden_size, direction, sequence_lens, initial_h,
                                                activations, 3, "LSTM", activation_alpha, activation_beta,
                                                make_activation)
    c0 = np.zeros((D, Bn, H)) if initial_c is None else np.asarray(initial_c, np.float64)
    cl = (lambda v: v) if clip is None else (lambda v: np.clip(v, -_f32(clip), _f32(clip)))
    Y, Yh, Yc = np.zeros((T, D, Bn, H)), np.zeros((D, Bn, H)), np.zeros((D, Bn, H))
    for d, rev in enumerate(revs):
        f, g, h = fns[3 * d:3 * d + 3]
        Wd, Rd = np.asarray(W[d], np.float64), np.asarray(R[d], np.float64)
        b = np.zeros(8 * H) if B is None else np.asarray(B[d], np.float64)
        p = np.zeros(3 * H) if P is None else np.asarray(P[d], np.float64)
        Wi, Wo, Wf, Wc = np.split(Wd, 4)
        Ri, Ro, Rf, Rc = np.split(Rd, 4)
        Wbi, Wbo, Wbf, Wbc, Rbi, Rbo, Rbf, Rbc = np.split(b, 8)
        Pi, Po, Pf = np.split(p, 3)
        Ht, Ct = h0[d].copy(), c0[d].copy()
        for t in _order(T, rev):
            x = X[t]
            it = f(cl(x @ Wi.T + Ht @ Ri.T + Pi * Ct + Wbi + Rbi))
            ft = 1 - it if input_forget else f(cl(x @ Wf.T + Ht @ Rf.T + Pf * Ct + Wbf + Rbf))
            ct = g(cl(x @ Wc.T + Ht @ Rc.T + Wbc + Rbc))
            Cn = ft * Ct + it * ct
            ot = f(cl(x @ Wo.T + Ht @ Ro.T + Po * Cn + Wbo + Rbo))
            Hn = ot * h(cl(Cn) if clip_cell else Cn)
            valid = (t < L)[:, None]
            Ht, Ct = np.where(valid, Hn, Ht), np.where(valid, Cn, Ct)
            Y[t, d] = np.where(valid, Hn, 0.0)
        Yh[d], Yc[d] = Ht, Ct
    return Y, Yh, Yc


def spec_gru(X, W, R, B=None, sequence_lens=None, initial_h=None, *, hidden_size, direction="forward",
             activations=None, activation_alpha=None, activation_beta=None, clip=None, linear_before_reset=0,
             make_activation=None):
    """ONNX GRU (layout 0) in float64: (Y (T, D, B, H), Y_h (D, B, H))."""
    X, T, Bn, revs, D, H, L, h0, fns = _common(X, W, hidden_size, direction, sequence_lens, initial_h,
                                                activations, 2, "GRU", activation_alpha, activation_beta,
                                                make_activation)
    cl = (lambda v: v) if clip is None else (lambda v: np.clip(v, -_f32(clip), _f32(clip)))
    Y, Yh = np.zeros((T, D, Bn, H)), np.zeros((D, Bn, H))
    for d, rev in enumerate(revs):
        f, g = fns[2 * d:2 * d + 2]
        Wz, Wr, Wh = np.split(np.asarray(W[d], np.float64), 3)
        Rz, Rr, Rh = np.split(np.asarray(R[d], np.float64), 3)
        b = np.zeros(6 * H) if B is None else np.asarray(B[d], np.float64)
        Wbz, Wbr, Wbh, Rbz, Rbr, Rbh = np.split(b, 6)
        Ht = h0[d].copy()
        for t in _order(T, rev):
            x = X[t]
            zt = f(cl(x @ Wz.T + Ht @ Rz.T + Wbz + Rbz))
            rt = f(cl(x @ Wr.T + Ht @ Rr.T + Wbr + Rbr))
            if linear_before_reset:
                ht = g(cl(x @ Wh.T + rt * (Ht @ Rh.T + Rbh) + Wbh))
            else:
                ht = g(cl(x @ Wh.T + (rt * Ht) @ Rh.T + Rbh + Wbh))
            Hn = (1 - zt) * ht + zt * Ht
            valid = (t < L)[:, None]
            Ht = np.where(valid, Hn, Ht)
            Y[t, d] = np.where(valid, Hn, 0.0)
        Yh[d] = Ht
    return Y, Yh


# ----------------------------------------------------------------------------- one draw

@dataclass
class Problem:
    kind: str     # invalid_model (the strategy's bug), refused, crash, shape, nonfinite, values
    detail: str
    wrong: tuple = ()   # "values": outputs beyond tolerance (Y, Y_h, Y_c)
    steps: tuple = ()   # "values": time steps of Y beyond tolerance


def _inputs_of(cfg):
    return (["X", "W", "R", "B", "sequence_lens", "initial_h"]
            + (["initial_c", "P"] if cfg["op"] == "LSTM" else []))


def feeds_of(cfg):
    """The drawn inputs (name -> float32 / int32 array, or None for an omitted optional one)."""
    op, T, Bn, I, H = cfg["op"], cfg["steps"], cfg["batch"], cfg["input_size"], cfg["hidden_size"]
    D, G = (2 if cfg["direction"] == "bidirectional" else 1), GATES[cfg["op"]]
    rng = np.random.default_rng(cfg["data_seed"])
    s = 1.0 / np.sqrt(H)
    u = lambda *shape: rng.uniform(-s, s, size=shape).astype(np.float32)  # noqa: E731
    n = lambda *shape: (cfg["x_scale"] * rng.standard_normal(shape)).astype(np.float32)  # noqa: E731
    present = set(cfg["inputs"])
    f = {"X": n(T, Bn, I), "W": u(D, G * H, I), "R": u(D, G * H, H)}
    f["B"] = u(D, 2 * G * H) if "B" in present else None
    f["sequence_lens"] = np.asarray(cfg["lengths"], np.int32) if "sequence_lens" in present else None
    f["initial_h"] = n(D, Bn, H) if "initial_h" in present else None
    if op == "LSTM":
        f["initial_c"] = n(D, Bn, H) if "initial_c" in present else None
        f["P"] = u(D, 3 * H) if "P" in present else None
    return f


def attrs_of(cfg):
    a = {"hidden_size": cfg["hidden_size"]}
    if cfg["direction"] != "forward" or cfg.get("explicit_direction"):
        a["direction"] = cfg["direction"]
    for k in ("activations", "activation_alpha", "activation_beta", "clip"):
        if cfg.get(k) is not None:
            a[k] = cfg[k]
    if cfg["op"] == "LSTM" and cfg.get("input_forget") is not None:
        a["input_forget"] = cfg["input_forget"]
    if cfg["op"] == "GRU" and cfg.get("linear_before_reset") is not None:
        a["linear_before_reset"] = cfg["linear_before_reset"]
    if cfg.get("layout") is not None:
        a["layout"] = cfg["layout"]
    return a


def out_names(cfg):
    """Node output names: "" for an omitted one, trailing omitted ones dropped."""
    names = [k if k in cfg["outputs"] else "" for k in (["Y", "Y_h", "Y_c"] if cfg["op"] == "LSTM" else ["Y", "Y_h"])]
    while names and names[-1] == "":
        names.pop()
    return names


def out_shapes(cfg):
    T, Bn, H = cfg["steps"], cfg["batch"], cfg["hidden_size"]
    D = 2 if cfg["direction"] == "bidirectional" else 1
    return {"Y": (T, D, Bn, H), "Y_h": (D, Bn, H), "Y_c": (D, Bn, H)}


def build(cfg):
    """(model, feeds): the unchecked one-node model of draw `cfg` (opset 14, ir 8) and its inputs."""
    from onnx import TensorProto, helper

    feeds = feeds_of(cfg)
    names = _inputs_of(cfg)
    ins = [k if feeds[k] is not None else "" for k in names]
    while ins[-1] == "":
        ins.pop()
    outs = out_names(cfg)
    node = helper.make_node(cfg["op"], ins, outs, **attrs_of(cfg))
    kind = lambda k: TensorProto.INT32 if k == "sequence_lens" else TensorProto.FLOAT  # noqa: E731
    shapes = out_shapes(cfg)
    graph = helper.make_graph(
        [node], f"one_{cfg['op']}",
        [helper.make_tensor_value_info(k, kind(k), feeds[k].shape) for k in names if feeds[k] is not None],
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, shapes[k]) for k in outs if k])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model, {k: v for k, v in feeds.items() if v is not None}


def oracle(cfg, feeds=None, **kw):
    """{output name: float64 array} of the spec equations for draw `cfg` (all outputs)."""
    f = feeds_of(cfg) if feeds is None else {**{k: None for k in _inputs_of(cfg)}, **feeds}
    a = attrs_of(cfg)
    common = dict(hidden_size=a["hidden_size"], direction=a.get("direction", "forward"),
                  activations=a.get("activations"), activation_alpha=a.get("activation_alpha"),
                  activation_beta=a.get("activation_beta"), clip=a.get("clip"))
    args = [f[k] for k in _inputs_of(cfg)]
    if cfg["op"] == "LSTM":
        Y, Yh, Yc = spec_lstm(*args, input_forget=a.get("input_forget", 0), **common, **kw)
        return {"Y": Y, "Y_h": Yh, "Y_c": Yc}
    Y, Yh = spec_gru(*args, linear_before_reset=a.get("linear_before_reset", 0), **common,
                     **{k: v for k, v in kw.items() if k == "make_activation"})
    return {"Y": Y, "Y_h": Yh}


def threshold_margin(cfg, feeds=None):
    """Smallest |pre-activation - alpha| over ThresholdedRelu inputs (inf when none is used):
    nearer than THRESHOLD_MARGIN, float32 rounding may land a value on the other side of the jump."""
    if "ThresholdedRelu" not in (cfg.get("activations") or []):
        return np.inf
    best = [np.inf]

    def spy(name, a, b):
        fn = activation(name, a, b)
        if name != "ThresholdedRelu":
            return fn

        def wrapped(x):
            best[0] = min(best[0], float(np.min(np.abs(np.asarray(x) - a))))
            return fn(x)
        return wrapped

    oracle(cfg, feeds, make_activation=spy)
    return best[0]


def max_input(cfg, name, feeds=None):
    """Largest pre-activation fed to activation `name` in the oracle (-inf when it is not used)."""
    if name not in (cfg.get("activations") or []):
        return -np.inf
    best = [-np.inf]

    def spy(n, a, b):
        fn = activation(n, a, b)
        if n != name:
            return fn

        def wrapped(x):
            best[0] = max(best[0], float(np.max(x)))
            return fn(x)
        return wrapped

    oracle(cfg, feeds, make_activation=spy)
    return best[0]


def float32_sensitivity(cfg, feeds, want):
    """Max change of the spec's outputs when every float input moves by about one float32 rounding
    (relative 2**-24, random signs): the error any float32 evaluation may show however right it is.
    The tolerance model assumes a non-expansive recurrence (conformance/core/tolerances.py); an
    expansive draw (Relu / Affine / Softplus gates letting the state grow step after step) can break
    it, and the value check is then skipped (not loosened)."""
    rng = np.random.default_rng(12345)
    moved = {k: (v if v.dtype.kind != "f" else v.astype(np.float64) * (1 + 2.0**-24 * rng.uniform(-1, 1, v.shape)))
             for k, v in feeds.items()}
    other = oracle(cfg, moved)
    with np.errstate(invalid="ignore"):
        return max(float(np.nanmax(np.abs(other[n] - want[n]))) for n in want)


def fan_in(cfg):
    return cfg["input_size"] + cfg["hidden_size"]


def repro_snippet(cfg):
    return ("import numpy as np, onnx, onnxruntime as ort\n"
            "from conformance.adapters.onnxruntime import coverage as OC\n"
            f"cfg = {cfg!r}\n"
            "model, feeds = OC.build(cfg); onnx.checker.check_model(model)\n"
            "print(onnx.helper.printable_graph(model.graph))\n"
            "got = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])"
            ".run(None, feeds)\n"
            "want = OC.oracle(cfg)\n"
            "for name, g in zip([n for n in OC.out_names(cfg) if n], got): "
            "print(name, np.abs(g - want[name]).max())")


def run_ort(model, feeds):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 4
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def run_reference_evaluator(model, feeds):
    """The same model in onnx.reference.ReferenceEvaluator (a second opinion; note: as of onnx
    1.2x its LSTM / GRU ignore activations, clip, input_forget and sequence_lens)."""
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model).run(None, feeds)


def run_config(cfg):
    """(problems, notes) of one draw: checker, session, run, shapes, finite values, the oracle."""
    import onnx

    model, feeds = build(cfg)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # the strategy drew an invalid model
        return [Problem("invalid_model", f"{type(e).__name__}: {str(e)[:300]}")], []
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 4
    try:
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    except Exception as e:
        return [Problem("refused", f"session creation: {type(e).__name__}: {str(e)[:400]}")], []
    try:
        got = sess.run(None, feeds)
    except Exception as e:
        return [Problem("crash", f"run: {type(e).__name__}: {str(e)[:400]}")], []
    names = [n for n in out_names(cfg) if n]
    shapes = out_shapes(cfg)
    if len(got) != len(names):
        return [Problem("shape", f"{len(got)} outputs for the requested {names}")], []
    problems, notes = [], []
    for n, g in zip(names, got):
        if tuple(g.shape) != shapes[n]:
            problems.append(Problem("shape", f"{n}: shape {tuple(g.shape)}, expected {shapes[n]}", wrong=(n,)))
    if problems:
        return problems, notes
    want = oracle(cfg, feeds)
    bad = [n for n, g in zip(names, got) if not np.all(np.isfinite(g)[np.isfinite(want[n])])]
    if bad:
        problems.append(Problem("nonfinite", f"non-finite values in {bad} where the spec's are finite",
                                wrong=tuple(bad)))
        return problems, notes
    margin = threshold_margin(cfg, feeds)
    if margin < THRESHOLD_MARGIN:
        notes.append(f"values unchecked: a ThresholdedRelu input {margin:.2g} from its alpha")
        return problems, notes
    mag = max(float(np.abs(want[n]).max()) for n in want)
    tol = tolerance("float32", cfg["steps"], fan_in(cfg), magnitude=mag)
    spread = float32_sensitivity(cfg, feeds, want)
    if not spread <= tol / 4:
        notes.append(f"values unchecked: ill-conditioned draw (inputs moved by 1 float32 ulp move the spec's "
                     f"outputs by {spread:.3g} > tolerance/4 = {tol / 4:.3g}, magnitude {mag:.3g})")
        return problems, notes
    errs = {n: float(np.abs(g - want[n]).max()) for n, g in zip(names, got)}
    wrong = tuple(n for n in names if errs[n] > tol)
    notes.append(f"max error {max(errs.values()):.3g} (tolerance {tol:.3g}, magnitude {mag:.3g})")
    if wrong:
        steps = ()
        if "Y" in names:
            Yg = got[names.index("Y")]
            steps = tuple(int(t) for t in np.nonzero(np.abs(Yg - want["Y"]).reshape(cfg["steps"], -1).max(1) > tol)[0])
        detail = (f"outputs {list(wrong)} differ from the spec: " + ", ".join(f"{n} {errs[n]:.3g}" for n in names)
                  + f" (tolerance {tol:.3g}); Y steps beyond tolerance: {list(steps)}")
        problems.append(Problem("values", detail, wrong=wrong, steps=steps))
    return problems, notes


def replay(cfg):
    problems, notes = run_config(cfg)
    for p in problems:
        print(f"[{p.kind}] {p.detail}")
    print(notes)
    return problems


# ----------------------------------------------------------------------------- drawing

def configs(op=None):
    """Hypothesis strategy: one whole one-node model (a cfg dict of plain values); `op` fixes LSTM / GRU."""
    from hypothesis import strategies as st

    names, op_ = sorted(ACTIVATIONS), op

    @st.composite
    def draw_cfg(draw):
        op = draw(st.sampled_from([op_] if op_ else ["LSTM", "GRU"]))
        direction = draw(st.sampled_from(["forward", "reverse", "bidirectional"]))
        D, n_acts = (2 if direction == "bidirectional" else 1), (3 if op == "LSTM" else 2)
        T = draw(st.integers(1, 5))
        Bn = draw(st.integers(1, 3))
        cfg = dict(op=op, direction=direction, explicit_direction=draw(st.booleans()), steps=T, batch=Bn,
                   input_size=draw(st.integers(1, 3)), hidden_size=draw(st.integers(1, 4)),
                   data_seed=draw(st.integers(0, 2**31 - 1)), x_scale=draw(st.sampled_from([0.5, 1.0])))
        acts = None
        if draw(st.booleans()):
            acts = draw(st.lists(st.sampled_from(names), min_size=n_acts * D, max_size=n_acts * D))
        cfg["activations"] = acts
        takes = [ACTIVATIONS[a] for a in (acts or DEFAULT_ACTS[op] * D)]
        n_alpha, n_beta = sum(t[0] for t in takes), sum(t[1] for t in takes)
        must_give = bool(acts) and any(a in UNDOCUMENTED_DEFAULTS for a in acts)
        value = st.sampled_from([0.1, 0.5, 1.0, 1.5, -0.5])
        give = must_give or (n_alpha + n_beta > 0 and draw(st.booleans()))
        cfg["activation_alpha"] = (draw(st.lists(value, min_size=n_alpha, max_size=n_alpha))
                                   if give and n_alpha else None)
        cfg["activation_beta"] = draw(st.lists(value, min_size=n_beta, max_size=n_beta)) if give and n_beta else None
        cfg["clip"] = draw(st.sampled_from([None, None, 0.3, 1.0, 2.5]))
        if op == "LSTM":
            cfg["input_forget"] = draw(st.sampled_from([None, 0, 1]))
        else:
            cfg["linear_before_reset"] = draw(st.sampled_from([None, 0, 1]))
        cfg["layout"] = draw(st.sampled_from([None, 0]))
        optional = ["B", "sequence_lens", "initial_h"] + (["initial_c", "P"] if op == "LSTM" else [])
        cfg["inputs"] = [k for k in optional if draw(st.booleans())]
        cfg["lengths"] = (draw(st.lists(st.integers(1, T), min_size=Bn, max_size=Bn))
                          if "sequence_lens" in cfg["inputs"] else None)
        outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
        cfg["outputs"] = draw(st.lists(st.sampled_from(outs), min_size=1, max_size=len(outs), unique=True)
                              .map(lambda v: [o for o in outs if o in v]))
        return cfg

    return draw_cfg()


def base_cfg(op="LSTM", **kw):
    """A fixed draw (for KNOWN deviations and tests): defaults everywhere, then `kw`."""
    base = dict(op=op, direction="forward", explicit_direction=False, steps=4, batch=2, input_size=2,
                hidden_size=3, data_seed=7, x_scale=1.0, activations=None, activation_alpha=None,
                activation_beta=None, clip=None, layout=None, inputs=["B", "initial_h"], lengths=None,
                outputs=["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else []))
    base.update({"input_forget": None} if op == "LSTM" else {"linear_before_reset": None})
    return {**base, **kw}
