"""One drawn flax ``RNN`` / ``Bidirectional`` configuration (`configs`) run end to end, as a user
would write it: the module built with the drawn constructor arguments, its parameter tree
checked against flax's own ``init`` (shapes), our weights put in (``reference.layouts``), then
called once per drawn batch size, each call eagerly or under ``jax.jit`` / ``nnx.jit``, with
the drawn call arguments; every observation that breaks a documented rule comes back as a
`Problem`. Used by suites/test_flax_coverage.py; `replay(cfg)` reruns a draw and `snippet`
prints the exact user code of one call.

What is drawn (every documented constructor / call argument of ``flax.linen.RNN``,
``flax.linen.Bidirectional``, ``flax.nnx.RNN``, ``flax.nnx.Bidirectional``):
- api linen | nnx; cell LSTMCell | OptimizedLSTMCell | GRUCell; one direction or Bidirectional;
- ``time_major``, ``return_carry``, ``reverse``, ``keep_order``: each with its value and where it
  is given: left at its default (False), in the constructor, in the call, or both (the
  constructor says the opposite and the call overrides it: "``__call__`` allows you to
  optionally override some attributes"); Bidirectional takes time_major and return_carry (its
  ``reverse`` / ``keep_order`` call arguments are marked unused in nnx, and not drawn);
- ``unroll`` 1, 2, T or T + 1 (of each RNN);
- per call: batch size 1..4 (several calls of the same module: the batch size changes between
  them), eager or jitted, ``seq_lengths`` absent or one length per row in 0..T (1 and T
  included, unsorted, 0 included), ``initial_carry`` given or not (``init_key`` given or not
  when it is not).

Checks (the nn.RNN docstring, flax/linen/recurrent.py; nnx.RNN has the same code):
- output shape (*batch, time, H) or (time, *batch, H) with time_major (2H for Bidirectional);
  ``return_carry`` False returns the outputs alone, True ``(carry, outputs)``, the carry
  ``(c, h)`` for the LSTM cells, ``h`` for the GRU cell, ``(forward, backward)`` when
  bidirectional, each (B, H); everything finite;
- outputs at valid steps equal ``reference.run`` (lengths, the drawn direction); ``reverse``:
  "processed from right to left, and returned in reverse order. If seq_lengths is passed,
  padding will always remain at the end", so without keep_order output t of a row of length L
  is the reference's output at step L-1-t; with ``keep_order`` "reversed back to the original
  order". Outputs at padded steps: only finite ("NOT zeroed out", documented; their exact
  values are modelled in suites/test_flax_rnn.py);
- the carry: without seq_lengths the state after step T; with them "the state of the last
  valid element of each sequence" (reverse: of the reversed sequence, i.e. after position 0);
  a row of length 0 has no valid element, so its state is the initial carry (the reference's
  state after zero steps). flax returns the state after all T padded steps there instead
  (`_select_last_carry` indexes ``seq_lengths - 1`` = -1): kind "zero_length_carry", the
  finding ``flax-rnn-zero-length-carry-after-padding``, recognised only where the returned
  carry is exactly that state.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

import reference
from reference import layouts

from conformance.adapters.flax.linen import flip_within_lengths, shapes
from conformance.core.adapter_strategies import rounded
from conformance.core.frameworks import exception_line as exc_line
from conformance.core.strategies import Case
from conformance.core.tolerances import tolerance

__all__ = ["configs", "run_config", "replay", "snippet", "Problem", "ZERO_LENGTH_FINDING", "KNOBS"]

ZERO_LENGTH_FINDING = "flax-rnn-zero-length-carry-after-padding"
KNOBS = ("time_major", "return_carry", "reverse", "keep_order")
BIDI_KNOBS = ("time_major", "return_carry")
CELLS = ("LSTMCell", "OptimizedLSTMCell", "GRUCell")
INPUT = 3  # input features


@dataclass
class Problem:
    kind: str    # crash, params, shape, nonfinite, values, carry, zero_length_carry
    call: int    # index of the call (-1: building the module)
    detail: str
    snippet: str = ""


# ----------------------------------------------------------------------------- drawing

@st.composite
def knob(draw):
    """(value, where): where in default (only for False), ctor, call, both (ctor says not value)."""
    value = draw(st.booleans())
    return value, draw(st.sampled_from((["default"] if not value else []) + ["ctor", "call", "both"]))


@st.composite
def configs(draw, api=None):
    """Every documented constructor / call argument of flax's RNN and Bidirectional, drawn together."""
    api = api or draw(st.sampled_from(["linen", "nnx"]))
    bidi = draw(st.booleans())
    T = draw(st.integers(1, 5))
    cfg = dict(api=api, cell=draw(st.sampled_from(CELLS)), bidirectional=bidi, steps=T,
               units=draw(st.integers(1, 3)),
               unroll=draw(st.sampled_from([1, 2, T, T + 1])),
               knobs={k: draw(knob()) for k in (BIDI_KNOBS if bidi else KNOBS)},
               seed=draw(st.integers(0, 2**31 - 1)))
    calls = []
    for _ in range(draw(st.integers(1, 3))):
        B = draw(st.integers(1, 4))
        lengths = None
        if draw(st.booleans()):
            lengths = tuple(draw(st.lists(st.one_of(st.sampled_from([0, 1, T]), st.integers(0, T)),
                                          min_size=B, max_size=B)))
        carry = draw(st.booleans())
        calls.append(dict(batch=B, lengths=lengths, jit=draw(st.booleans()), initial_carry=carry,
                          init_key=None if carry or api == "nnx" else draw(st.sampled_from([None, 7]))))
    cfg["calls"] = tuple(calls)
    return cfg


def effective(cfg, name):
    return cfg["knobs"].get(name, (False, "default"))[0]


def ctor_kwargs(cfg):
    """The constructor's knob arguments (RNN, or Bidirectional's own)."""
    out = {}
    for k, (v, where) in cfg["knobs"].items():
        if where == "ctor":
            out[k] = v
        elif where == "both":
            out[k] = not v
    return out


def call_kwargs(cfg):
    return {k: v for k, (v, where) in cfg["knobs"].items() if where in ("call", "both")}


# ----------------------------------------------------------------------------- data

def lstm(cfg):
    return cfg["cell"] != "GRUCell"


def weights(cfg):
    """The canonical weights, one per direction (float32-rounded). The nnx GRUCell has no
    hidden-side bias (finding flax-nnx-gru-cell-no-hidden-bias): its GRU gets none at all."""
    gru_bias = cfg["api"] == "linen"
    case = Case(cell="lstm" if lstm(cfg) else "gru", steps=cfg["steps"], batch=1, input_size=INPUT,
                hidden_size=cfg["units"], bidirectional=cfg["bidirectional"], hidden_bias=lstm(cfg) or gru_bias,
                seed=cfg["seed"])
    return rounded(case)[0][0]


def call_data(cfg, index):
    """Call `index`'s arrays, time-major and float32-exact: x (T, B, I), h0 / c0 (D, B, H)."""
    c = cfg["calls"][index]
    rng = np.random.default_rng([cfg["seed"], index])
    T, B, H, D = cfg["steps"], c["batch"], cfg["units"], 2 if cfg["bidirectional"] else 1
    f32 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731
    x = f32(rng.normal(size=(T, B, INPUT)))
    h0, c0 = (f32(rng.normal(size=(D, B, H))) for _ in range(2))
    if not c["initial_carry"]:
        h0, c0 = np.zeros((D, B, H)), np.zeros((D, B, H))
    return dict(x=x, h0=h0, c0=c0 if lstm(cfg) else None,
                lengths=None if c["lengths"] is None else np.asarray(c["lengths"], np.int64))


def flax_params(cfg):
    """Our weights as the module's parameter tree: linen ``{'cell': ...}`` (``forward_rnn`` /
    ``backward_rnn`` when bidirectional) or the nnx pure Param dict."""
    ws = weights(cfg)
    if cfg["api"] == "linen":
        to = layouts.to_flax_lstm if lstm(cfg) else layouts.to_flax_gru
        trees = [to(w, dtype=np.float32)["params"] for w in ws]
    else:
        from conformance.adapters.flax.nnx import TO
        trees = [TO[cfg["cell"]](w, dtype=np.float32) for w in ws]
    if len(trees) == 1:
        return {"cell": trees[0]}
    return {"forward_rnn": {"cell": trees[0]}, "backward_rnn": {"cell": trees[1]}}


# ----------------------------------------------------------------------------- the user's code

def module_src(cfg):
    """The constructor expression, as a user writes it (`nn` = flax.linen, or `nnx`)."""
    H, mod = cfg["units"], "nn" if cfg["api"] == "linen" else "nnx"
    cell = (f"nn.{cfg['cell']}(features={H})" if cfg["api"] == "linen"
            else f"nnx.{cfg['cell']}({INPUT}, {H}, rngs=nnx.Rngs(0))")
    kw = ctor_kwargs(cfg)
    extra = "".join(f", {k}={v!r}" for k, v in kw.items())
    unroll = f", unroll={cfg['unroll']}" if cfg["unroll"] != 1 else ""
    if not cfg["bidirectional"]:
        return f"{mod}.RNN({cell}{extra}{unroll})"
    return f"{mod}.Bidirectional({mod}.RNN({cell}{unroll}), {mod}.RNN({cell}{unroll}){extra})"


def call_kw_src(cfg, index):
    c = cfg["calls"][index]
    kw = [f"{k}={v!r}" for k, v in call_kwargs(cfg).items()]
    if c["initial_carry"]:
        kw.append("initial_carry=carry")
    elif c["init_key"] is not None and cfg["api"] == "linen":
        kw.append(f"init_key=jax.random.key({c['init_key']})")
    if c["lengths"] is not None:
        kw.append("seq_lengths=L")
    return ", ".join(kw)


def snippet(cfg, index):
    """Pasteable code of call `index` of draw `cfg` (run from the checkout)."""
    c = cfg["calls"][index]
    kw = call_kw_src(cfg, index)
    head = ["import numpy as np, jax, jax.numpy as jnp", "from flax import linen as nn, nnx",
            "from conformance.adapters.flax import coverage as FC", f"cfg = {cfg!r}",
            f"x, carry, L = FC.user_inputs(cfg, {index})  # x as the module expects it, carry as flax's cell carry",
            f"rnn = {module_src(cfg)}"]
    if cfg["api"] == "linen":
        head.append("params = FC.flax_params(cfg)  # our weights, the tree of rnn.init(jax.random.key(0), x)['params']")
        fn = f"lambda p, x, carry, L: rnn.apply({{'params': p}}, x{', ' + kw if kw else ''})"
        call = (f"out = jax.jit({fn})(params, x, carry, L)" if c["jit"] else f"out = ({fn})(params, x, carry, L)")
    else:
        head.append("FC.put_nnx_params(rnn, FC.flax_params(cfg))  # nnx.replace_by_pure_dict of our weights")
        fn = f"lambda m, x, carry, L: m(x{', ' + kw if kw else ''})"
        call = f"out = nnx.jit({fn})(rnn, x, carry, L)" if c["jit"] else f"out = ({fn})(rnn, x, carry, L)"
    return "\n".join(head + [call, "print(jax.tree_util.tree_map(np.shape, out), out)"])


def user_inputs(cfg, index):
    """(x, carry, seq_lengths) of call `index` as a user hands them to flax (jnp float32 / int32):
    x batch-major unless time_major; carry None unless drawn."""
    import jax.numpy as jnp

    d = call_data(cfg, index)
    f32 = lambda a: jnp.asarray(np.asarray(a, np.float32))  # noqa: E731
    x = d["x"] if effective(cfg, "time_major") else np.swapaxes(d["x"], 0, 1)
    carry = None
    if cfg["calls"][index]["initial_carry"]:
        per = [(f32(d["c0"][k]), f32(d["h0"][k])) if lstm(cfg) else f32(d["h0"][k]) for k in range(len(d["h0"]))]
        carry = per[0] if len(per) == 1 else tuple(per)
    L = None if d["lengths"] is None else jnp.asarray(d["lengths"].astype(np.int32))
    return f32(x), carry, L


def build_module(cfg):
    from flax import linen as nn, nnx

    H, kw, unroll = cfg["units"], ctor_kwargs(cfg), dict(unroll=cfg["unroll"]) if cfg["unroll"] != 1 else {}
    if cfg["api"] == "linen":
        cell = lambda: getattr(nn, cfg["cell"])(features=H)  # noqa: E731
        if not cfg["bidirectional"]:
            return nn.RNN(cell(), **kw, **unroll)
        return nn.Bidirectional(nn.RNN(cell(), **unroll), nn.RNN(cell(), **unroll), **kw)
    cell = lambda: getattr(nnx, cfg["cell"])(INPUT, H, rngs=nnx.Rngs(0))  # noqa: E731
    if not cfg["bidirectional"]:
        return nnx.RNN(cell(), **kw, **unroll)
    return nnx.Bidirectional(nnx.RNN(cell(), **unroll), nnx.RNN(cell(), **unroll), **kw)


def put_nnx_params(module, pure):
    """Replace an nnx module's Params by the pure dict `pure` (shapes checked); returns it."""
    from flax import nnx

    graph, params, rest = nnx.split(module, nnx.Param, ...)
    theirs = nnx.to_pure_dict(params)
    if shapes(theirs) != shapes(pure):
        raise RuntimeError(f"parameter tree differs from nnx's: {shapes(theirs)} vs {shapes(pure)}")
    nnx.replace_by_pure_dict(params, pure)
    nnx.update(module, params)
    return module


class Runner:
    """The module of one draw and its call function (one jitted function per draw, reused by
    every jitted call: a new batch size or argument structure retraces, as for a user)."""

    def __init__(self, cfg):
        import jax

        self.cfg = cfg
        self.module = build_module(cfg)
        self.params = flax_params(cfg)
        if cfg["api"] == "linen":
            x, _, _ = user_inputs(cfg, 0)
            want = jax.eval_shape(self.module.init, jax.random.key(0), x)["params"]
            if shapes(want) != shapes(self.params):
                raise TreeMismatch(f"parameter tree differs from flax's init: {shapes(want)} vs {shapes(self.params)}")
        else:
            put_nnx_params(self.module, self.params)
        self._jitted = None

    def call(self, index):
        import jax
        from flax import nnx

        cfg, c = self.cfg, self.cfg["calls"][index]
        kw = call_kwargs(cfg)
        x, carry, L = user_inputs(cfg, index)
        if cfg["api"] == "linen":
            def fn(p, x, carry, L):
                extra = dict(kw)
                if carry is not None:
                    extra["initial_carry"] = carry
                elif c["init_key"] is not None:
                    extra["init_key"] = jax.random.key(c["init_key"])
                if L is not None:
                    extra["seq_lengths"] = L
                return self.module.apply({"params": p}, x, **extra)
            if c["jit"]:
                self._jitted = self._jitted or jax.jit(fn)
                return self._jitted(self.params, x, carry, L)
            return fn(self.params, x, carry, L)

        def fn(m, x, carry, L):
            extra = dict(kw)
            if carry is not None:
                extra["initial_carry"] = carry
            if L is not None:
                extra["seq_lengths"] = L
            return m(x, **extra)
        if c["jit"]:
            self._jitted = self._jitted or nnx.jit(fn)
            return self._jitted(self.module, x, carry, L)
        return fn(self.module, x, carry, L)


class TreeMismatch(RuntimeError):
    pass


# ----------------------------------------------------------------------------- expected values

def expected(cfg, index):
    """The documented result of call `index` from the reference (float64): dict(y (T, B, D*H)
    with zeros at padded steps, valid (T, B), h_n / c_n (D, B, H), after_T_h / after_T_c: the
    state after all T steps (of the within-length-flipped input for a reverse direction), what
    flax returns for a row of length 0)."""
    d = call_data(cfg, index)
    ws = weights(cfg)
    T, B = cfg["steps"], cfg["calls"][index]["batch"]
    L = d["lengths"]
    stack = [list(ws)]
    rev = effective(cfg, "reverse") and not cfg["bidirectional"]
    want = reference.run(stack, d["x"], d["h0"], d["c0"], lengths=L, reverse=rev)
    valid = np.ones((T, B), bool) if L is None else reference.lengths_to_valid(L, T)
    after_h, after_c = want.h_n.copy(), None if want.c_n is None else want.c_n.copy()
    if L is not None:  # the state after all T steps, per direction, as flax computes it
        for k, w in enumerate(ws):
            backward = rev or k == 1
            xin = flip_within_lengths(d["x"], L) if backward else d["x"]
            full = reference.run(w, xin, d["h0"][k:k + 1], None if d["c0"] is None else d["c0"][k:k + 1],
                                 padding="compute")
            after_h[k] = full.h_n[0]
            if after_c is not None:
                after_c[k] = full.c_n[0]
    return dict(y=want.y, valid=valid, h_n=want.h_n, c_n=want.c_n, after_T_h=after_h, after_T_c=after_c,
                lengths=L, h0=d["h0"], c0=d["c0"])


def observed_order(cfg, y, lengths):
    """flax's outputs (T, B, D*H) put back into time order: reverse without keep_order returns
    a row of length L in reverse order within its first L steps (padding at the end)."""
    if not (effective(cfg, "reverse") and not effective(cfg, "keep_order") and not cfg["bidirectional"]):
        return y
    T, B = y.shape[:2]
    L = np.full(B, T) if lengths is None else np.asarray(lengths)
    idx = (np.arange(T - 1, -1, -1)[:, None] + L[None, :]) % T  # its own inverse
    return np.take_along_axis(y, idx[:, :, None], axis=0)


# ----------------------------------------------------------------------------- checks

def unpack(cfg, out, B):
    """(y (T, B, D*H) time-major, [(h, c) per direction] or None) of a call's result, or a
    string saying how its structure breaks the documented one."""
    ret = effective(cfg, "return_carry")
    if ret:
        if not (isinstance(out, tuple) and len(out) == 2):
            return f"return_carry=True: expected (carry, outputs), got {type(out).__name__}"
        carry, y = out
        carries = list(carry) if cfg["bidirectional"] else [carry]
        if cfg["bidirectional"] and len(carries) != 2:
            return f"Bidirectional carry: expected (forward, backward), got {len(carries)} entries"
        states = []
        for k, cr in enumerate(carries):
            if lstm(cfg):
                if not (isinstance(cr, tuple) and len(cr) == 2):
                    return f"carry[{k}]: expected (c, h), got {type(cr).__name__}"
                c, h = (np.asarray(a) for a in cr)
            else:
                h, c = np.asarray(cr), None
            for name, a in (("h", h), ("c", c)):
                if a is not None and a.shape != (B, cfg["units"]):
                    return f"carry[{k}] {name}: shape {a.shape}, documented {(B, cfg['units'])}"
            states.append((h, c))
    else:
        if isinstance(out, tuple):
            return f"return_carry=False: expected the outputs alone, got a tuple of {len(out)}"
        y, states = out, None
    y = np.asarray(y)
    D, T = 2 if cfg["bidirectional"] else 1, cfg["steps"]
    want = (T, B, D * cfg["units"]) if effective(cfg, "time_major") else (B, T, D * cfg["units"])
    if y.shape != want:
        return f"outputs: shape {y.shape}, documented {want}"
    return (y if effective(cfg, "time_major") else np.swapaxes(y, 0, 1)), states


def check_call(runner, cfg, index):
    """Problems of call `index`."""
    snip = snippet(cfg, index)
    B = cfg["calls"][index]["batch"]
    try:
        out = runner.call(index)
    except Exception as e:  # nothing here is documented to raise: every drawn argument is valid
        return [Problem("crash", index, exc_line(e), snip)]
    got = unpack(cfg, out, B)
    if isinstance(got, str):
        return [Problem("shape", index, got, snip)]
    y, states = got
    if not np.all(np.isfinite(y)) or (states and not all(np.all(np.isfinite(a)) for s in states for a in s
                                                          if a is not None)):
        return [Problem("nonfinite", index, "non-finite values", snip)]
    want = expected(cfg, index)
    tol = tolerance("float32", cfg["steps"], INPUT + cfg["units"])
    probs = []
    y = observed_order(cfg, y, want["lengths"])
    err = np.abs(y - want["y"])[want["valid"]]
    e = float(err.max(initial=0.0))
    if e > tol:
        probs.append(Problem("values", index, f"outputs at valid steps: max error {e:.3g} > tolerance {tol:.2g}",
                             snip))
    if states is not None:
        probs += check_carry(cfg, index, states, want, tol, snip)
    return probs


def check_carry(cfg, index, states, want, tol, snip):
    L = want["lengths"]
    B = cfg["calls"][index]["batch"]
    zero = np.zeros(B, bool) if L is None else np.asarray(L) == 0
    probs = []
    for k, (h, c) in enumerate(states):
        pairs = [("h", h, want["h_n"][k], want["after_T_h"][k])]
        if c is not None:
            pairs.append(("c", c, want["c_n"][k], want["after_T_c"][k]))
        for name, got, ref_state, after in pairs:
            err = np.abs(got - ref_state).max(axis=1)
            bad = err > tol
            if not bad.any():
                continue
            rows = np.flatnonzero(bad)
            at_T = np.abs(got - after).max(axis=1) <= tol
            where = f"direction {k} " if cfg["bidirectional"] else ""
            if all(zero[r] and at_T[r] for r in rows):
                probs.append(Problem(
                    "zero_length_carry", index,
                    f"{where}carry {name} of rows {rows.tolist()} (seq_lengths 0): the state after all "
                    f"{cfg['steps']} padded steps (error {float(np.abs(got - after)[rows].max()):.2g}), not the "
                    f"initial carry (error {float(err[rows].max()):.3g} > {tol:.2g}); finding {ZERO_LENGTH_FINDING}",
                    snip))
            else:
                probs.append(Problem(
                    "carry", index,
                    f"{where}carry {name}: rows {rows.tolist()} (lengths {None if L is None else L[rows].tolist()}) "
                    f"differ from the state at the last valid step by {float(err[rows].max()):.3g} > {tol:.2g}",
                    snip))
    return probs


def run_config(cfg):
    """(problems, notes): every call of the draw, in order, on the same module, on the host CPU
    (even where JAX's default device is a GPU: the records say device "cpu")."""
    from conformance.adapters.jax.device import on_device

    with on_device("cpu", "flax coverage"):
        return _run_config(cfg)


def _run_config(cfg):
    try:
        runner = Runner(cfg)
    except TreeMismatch as e:
        return [Problem("params", -1, str(e), f"rnn = {module_src(cfg)}")], ["params"]
    except Exception as e:
        return [Problem("crash", -1, f"construction: {exc_line(e)}", f"rnn = {module_src(cfg)}")], ["crash"]
    problems, notes = [], []
    for index, c in enumerate(cfg["calls"]):
        probs = check_call(runner, cfg, index)
        problems += probs
        notes.append(f"B={c['batch']} {'jit' if c['jit'] else 'eager'}"
                     f"{' lengths' if c['lengths'] is not None else ''}"
                     f"{' L0' if c['lengths'] and 0 in c['lengths'] else ''}: "
                     f"{','.join(p.kind for p in probs) or 'ok'}")
    return problems, notes


def replay(cfg):
    """Rerun a draw and print its problems."""
    problems, notes = run_config(cfg)
    for p in problems:
        print(f"[{p.kind}] call {p.call}: {p.detail}")
    print("notes:", notes)
    return problems
