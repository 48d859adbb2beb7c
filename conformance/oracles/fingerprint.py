"""The semantics fingerprint of a dropout knob, measured through the probe-weight oracle.

For one adapter path, one knob (e.g. torch's "dropout", Keras' "recurrent_dropout") and one
rate p, `measure` runs every probe (`conformance.oracles.probe`) through the adapter's
``dropout_session`` over several calls and infers, from the recovered multipliers alone:

- which tensors the knob masks (input, recurrent, inter_layer, output, state_h, state_c), and
  for each: the time structure (per sequence / per step), gate sharing (shared / per gate),
  batch rows (independent / shared), the kept value (1/(1-p), 1, other) and the drop rate with
  its 99% Clopper-Pearson interval;
- evaluation mode (nothing dropped?), seeds (same seed -> same masks, another -> different),
  and whether an inference call advances the random state of the next training call.

Statistical properties are decided by `conformance.oracles.statistics` tests whose p-values are
Holm-corrected over the measurement (family false-alarm probability ALPHA = 1e-6); the checks
are returned with the fingerprint so a suite can assert on them and report them.

Before any of that, `dropout_off` checks that the path computes the reference with every knob
at 0 under the probe layouts and on random weights (a weight-layout bug would otherwise read
as strange dropout); after it, `invariants` names each violated property that is wrong for any
dropout implementation (`INVARIANTS`), and `conformance.core.semantics.difference` names how a
measured property differs from a declared one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from conformance.core import semantics as S
from conformance.oracles import statistics as st
from conformance.oracles import probe as P

TENSORS = S.TENSORS
MAX_TOP_UP_CALLS = 100  # a correct path needs <= 64 (B * K = 2,048 draws a call); one mask for all rows stops here
ONE = 1e-4  # a multiplier within this of 1 is "not masked" (recovery error is ~1e-6 in float32)


@dataclass
class Measurement:
    adapter: str
    knob: str
    rate: float
    properties: dict = field(default_factory=dict)
    rates: list = field(default_factory=list)
    checks: list = field(default_factory=list)
    deviation: float = 0.0  # worst distance of a recovered multiplier from {0, scale} (or 1)
    kept: dict = field(default_factory=dict)  # {tensor: median recovered multiplier of the kept elements}

    def entry(self):
        """The report's fingerprints entry."""
        num = lambda v: None if v is None else float(v)  # noqa: E731  (NumPy scalars -> JSON)
        return dict(adapter=self.adapter, knob=self.knob, rate=self.rate, properties=dict(self.properties),
                    rates=[{k: (v if isinstance(v, str) else num(v)) for k, v in r.items()} for r in self.rates],
                    deviation=float(self.deviation), kept={k: num(v) for k, v in self.kept.items()},
                    checks=[dict(name=c.name, p_value=num(c.p_value), detail=c.detail, alarm=bool(c.alarm))
                            for c in self.checks])

    @property
    def alarms(self):
        return [c for c in self.checks if c.alarm]


def probe_kinds(info):
    return (("constant", "input", "recurrent") + (("inter_layer",) if "stacked" in info.features else ())
            + (("cell",) if info.cell == "lstm" else ()))


def knob_rates(knob, p):
    """{knob: p} for one knob; "a+b" sets every named knob to p at once."""
    return {k: p for k in knob.split("+")}


def build_probe(info, kind, p, seed, K, B, T, reset_after=True):
    """The probe of `kind` for path `info` at rate p (with h0 / c0 where it takes an initial state)."""
    return P.build(kind, info.cell, K, B, T, scale=_scale(p), seed=seed, reset_after=reset_after,
                   initial_state="initial_state" in info.features)


def run_probe(adapter, kind, knob, p, seed, calls, K, B, T, training=True, reset_after=True):
    """{tensor: array (calls, ...)} of recovered multipliers for one probe kind."""
    probe = build_probe(adapter.info, kind, p, seed, K, B, T, reset_after=reset_after)
    session = adapter.dropout_session(probe.stack, knob_rates(knob, p), seed)
    got = [P.recover(probe, session(probe.x, probe.h0, probe.c0, training=training)) for _ in range(calls)]
    return {k: np.stack([g[k] for g in got]) for k in got[0]}


def _scale(p):
    return np.inf if p >= 1 else 1.0 / (1.0 - p)


def _masked(v):
    return bool(np.any(np.abs(v - 1.0) > ONE))


def kept_candidates(p):
    """(label, value) of the kept values told apart: 1/(1-p) (right), 1 (unscaled), 1/p (the
    probability of keeping and of dropping confused; the same value at p = 0.5)."""
    out = [("1/(1-p)", _scale(p)), ("1 (unscaled)", 1.0)]
    if 0 < p < 1 and abs(1.0 / p - _scale(p)) > 1e-9:
        out.append(("1/p", 1.0 / p))
    return out


def kept_value(v, p):
    """(label, value, deviation): the first of `kept_candidates` every element of v is within
    1e-3 (relative) of, or 0 -- else ("other", 1/(1-p)); deviation: the smallest distance of the
    worst element from {0, a candidate}."""
    devs = [(label, value, st.value_deviation(v, value)) for label, value in kept_candidates(p)]
    label, value = next(((lab, val) for lab, val, d in devs if d < 1e-3 * max(1, val)), ("other", _scale(p)))
    return label, value, min(d for _, _, d in devs)


def describe(name, v, p, m):
    """Properties of one masked tensor's multipliers v (calls, [T,] [routes,] B, N); adds the
    statistical checks and the rate row to measurement m; returns the property string."""
    kept_label, kept_at, dev = kept_value(v, p)
    m.deviation = max(m.deviation, dev)
    keep = st.keep_indicator(v, kept_at)
    kept_values = np.asarray(v, np.float64)[keep.astype(bool)]
    m.kept[name] = float(np.median(kept_values)) if kept_values.size else None
    has_time, gated = name not in ("state_h", "state_c"), name in ("input", "recurrent")
    per_sequence = has_time and bool(np.all(keep == keep[:, :1]))
    shared_gates = gated and bool(np.all(keep == keep[:, :, :1]))
    draws = _independent(keep, per_sequence, shared_gates)  # repeated elements would fake dependence
    parts = []
    if has_time:
        parts.append("per sequence" if per_sequence else "per step")
        if not per_sequence:
            m.checks.append(st.independence_test(draws[:, :-1], draws[:, 1:], f"{name}: consecutive steps independent"))
    if gated and keep.shape[2] > 1:
        parts.append("gates shared" if shared_gates else "per gate")
        if not shared_gates:
            m.checks.append(st.independence_test(draws[:, :, 0], draws[:, :, 1], f"{name}: gates independent"))
    same_rows = bool(np.all(keep == np.take(keep, [0], axis=-2)))
    parts.append("rows shared" if same_rows else "rows independent")
    if same_rows:
        draws = np.take(draws, [0], axis=-2)  # one row holds every draw: the others repeat it
    else:
        m.checks.append(st.independence_test(np.take(draws, 0, axis=-2), np.take(draws, 1, axis=-2),
                                             f"{name}: batch rows independent"))
        m.checks.append(st.independence_test(draws[..., 0], draws[..., 1], f"{name}: units independent"))
    parts.append(f"kept value {kept_label}")
    dropped, n = int(draws.size - draws.sum()), int(draws.size)
    m.checks.append(st.rate_test(dropped, n, p, f"{name}: drop rate"))
    ci = stats.binomtest(dropped, n, p if 0 < p < 1 else 0.5).proportion_ci(confidence_level=0.99)
    m.rates.append(dict(kind=name, configured=p, observed=dropped / n, ci_low=ci.low, ci_high=ci.high, n=n,
                        power=st.power_rate(n, p) if 0 < p < 1 else None))
    return ", ".join(parts)


def _independent(keep, per_sequence, gates_shared):
    """The keep indicators that are independent draws: one step if per sequence, one gate if shared."""
    if per_sequence and keep.ndim >= 4:
        keep = keep[:, :1]
    if gates_shared and keep.ndim >= 4:
        keep = keep[:, :, :1]
    return keep


PROBE_OF = {"input": "input", "recurrent": "recurrent", "inter_layer": "inter_layer", "output": "constant",
            "state_h": "constant", "state_c": "constant", "recurrent_c": "cell"}


def masked_probe_kinds(measurement):
    """The probe kinds that showed the knob's masks (to re-measure only those at other rates)."""
    return tuple(dict.fromkeys(PROBE_OF[t] for t, v in measurement.properties.items()
                               if t in PROBE_OF and v not in ("none",) and not v.startswith("unknown")))


def measure(adapter, knob, p=0.5, seed=20261123, calls=2, K=32, B=64, T=8, power=True, kinds=None, modes=True):
    """The Measurement of `knob` at rate p on `adapter` (an adapter with dropout_session);
    ``knob="a+b"`` sets knobs a and b together (their interaction is part of the semantics).
    With `power`, probes whose tensor is masked are repeated until the rate test has the
    independent draws `statistics.required_draws(p)` asks for (power >= 0.99 at +-0.01).
    `kinds` limits the probes (e.g. to `masked_probe_kinds` of an earlier measurement, for
    the rate alone); ``modes=False`` skips evaluation mode / seeds / inference call."""
    info = adapter.info
    m = Measurement(adapter=info.name, knob=knob, rate=p)
    found, kind_of = {}, {}
    for kind in kinds or probe_kinds(info):
        for name, v in run_probe(adapter, kind, knob, p, seed, calls, K, B, T).items():
            found[name], kind_of[name] = v, kind
    if power and 0 < p < 1:
        _top_up(adapter, knob, p, seed, found, kind_of, K, B, T)
    for name in TENSORS:
        if name not in found:
            continue
        v = found[name]
        hidden_by = _confounded_by(name, found)
        if hidden_by:
            m.properties[name] = f"unknown ({hidden_by} masked)"
        elif _masked(v):
            m.properties[name] = describe(name, v, p, m)
        else:
            m.properties[name] = "none"
    if modes:
        m.properties.update(_modes(adapter, knob, p, seed, K, B, T))
    st.holm(m.checks)
    return m


def _draws_per_call(v, scale):
    """Independent keep/drop draws one call gives (per step unless all steps agree; one gate
    when the gates agree)."""
    keep = st.keep_indicator(v, scale)
    per_seq = keep.ndim >= 4 and bool(np.all(keep == keep[:, :1]))
    draws = _independent(keep, per_seq, keep.ndim >= 5 and bool(np.all(keep == keep[:, :, :1])))[0]
    return draws.size // (draws.shape[-2] if bool(np.all(draws == np.take(draws, [0], axis=-2))) else 1)


def _top_up(adapter, knob, p, seed, found, kind_of, K, B, T):
    """More calls of each masked tensor's probe until required_draws(p) independent draws."""
    need = st.required_draws(p)
    for name, v in list(found.items()):
        if not _masked(v) or _confounded_by(name, found):
            continue
        per_call = max(1, _draws_per_call(v, kept_value(v, p)[1]))
        extra = min(-(-(need - v.shape[0] * per_call) // per_call), MAX_TOP_UP_CALLS)
        if extra > 0:
            more = run_probe(adapter, kind_of[name], knob, p, seed + 7919, extra, K, B, T)[name]
            found[name] = np.concatenate([v, more])


# A probe's readout assumes the tensors it reads are unmasked: masked outputs hide every
# route; a masked carried h is what the recurrent probe then reads; masked layer inputs hide
# the inter-layer probe's layer-0 output.
CONFOUNDERS = {"input": ("output",), "recurrent": ("output", "state_h"), "inter_layer": ("output", "input"),
               "recurrent_c": ("output",)}


def _confounded_by(name, found):
    return next((c for c in CONFOUNDERS.get(name, ()) if c in found and _masked(found[c])), None)


def _modes(adapter, knob, p, seed, K, B, T):
    """Evaluation mode, seed behaviour and the effect of an inference call, on the probe kind
    that shows the knob's masks best (the first that is masked)."""
    def masks(kind, s, pattern):
        probe = build_probe(adapter.info, kind, p, seed, K, B, T)
        session = adapter.dropout_session(probe.stack, knob_rates(knob, p), s)
        outs = [P.recover(probe, session(probe.x, probe.h0, probe.c0, training=t)) for t in pattern]
        return outs

    for kind in probe_kinds(adapter.info):
        a = masks(kind, seed, (True, True))
        if any(_masked(v) for v in a[0].values()):
            break
    else:
        return {"evaluation mode": "-", "seeds": "-", "inference call": "-"}
    ev = masks(kind, seed, (False,))[0]
    b = masks(kind, seed, (True, False, True))
    c = masks(kind, seed + 1, (True,))[0]
    eq = lambda x, y: all(np.array_equal(x[k], y[k], equal_nan=True) for k in x)  # noqa: E731
    return {
        "evaluation mode": "nothing dropped" if not any(_masked(v) for v in ev.values()) else "DROPS",
        "seeds": ("same seed same masks" if eq(a[0], b[0]) else "same seed DIFFERENT masks")
                 + ("; other seed other masks" if not eq(a[0], c) else "; other seed SAME masks"),
        "inference call": ("does not advance the random state" if eq(a[1], b[2]) else "advances the random state"),
    }


def padded_steps(adapter, seed=20261123):
    """Which reference padding policy the path follows at padded steps (a path with the
    "lengths" feature): the policies whose output and final states match the path's on a
    case with unsorted lengths 1..T (y, h_n and c_n within the parity tolerance). Right padding
    cannot separate repeat_output from carry_h (both repeat the last valid h): such a path shows
    "repeat_output / carry_h"."""
    import reference
    from conformance.core.adapter_strategies import case_shape, rounded
    from conformance.core.strategies import Case
    from conformance.core.tolerances import tolerance

    if "lengths" not in adapter.info.features:
        return "no lengths input"
    case = Case(cell=adapter.info.cell, steps=6, batch=4, input_size=3, hidden_size=4, seed=seed,
                initial_state="initial_state" in adapter.info.features, lengths=(3, 6, 1, 5))
    stack, x, h0, c0 = rounded(case)
    lengths = np.asarray(case.lengths)
    got = adapter.forward(stack, x, h0, c0, lengths=lengths)
    tol = tolerance(adapter.dtype, *case_shape(stack, case.steps))
    matches = [policy for policy in reference.POLICIES
               if _worst_error(got, reference.run(stack, x, h0, c0, lengths=lengths, padding=policy))[0] <= tol]
    return " / ".join(matches) if matches else "none of the reference policies"


def _worst_error(got, want):
    """(max |got - want|, output name, why) over y, h_n, c_n (those `want` has): inf where an
    output has another shape or is not finite."""
    worst = (0.0, "y", "")
    for k in ("y", "h_n", "c_n"):
        w = getattr(want, k)
        if w is None:
            continue
        g = np.asarray(getattr(got, k), np.float64)
        if g.shape != w.shape:
            return np.inf, k, f": shape {g.shape}, expected {w.shape}"
        err = float(np.max(np.abs(g - w))) if np.all(np.isfinite(g)) else np.inf
        if not err <= worst[0]:
            worst = (err, k, "" if np.isfinite(err) else ": not finite")
    return worst


# ---------------------------------------------------------------- diagnosis before statistics

@dataclass
class DropoutOff:
    """The path with every knob at 0 against the reference: the worst case's error and tolerance."""
    error: float
    tolerance: float
    where: str  # the probe kind / case and the output with the worst error / tolerance

    @property
    def ok(self):
        return bool(np.isfinite(self.error)) and self.error <= self.tolerance

    def message(self):
        return (f"forward/weights differ from the reference with dropout off: max |error| {self.error:.3g} > "
                f"tolerance {self.tolerance:.3g} ({self.where}); the dropout properties are not measured "
                "(fix the weight layout or the forward first)")


def dropout_off(adapter, seed=20261123, K=8, B=4, T=5):
    """`DropoutOff` of the path's ``dropout_session`` with every knob at 0, training=True, under
    each probe layout at p = 0.5 (what the fingerprint reads) and on random weights (nonzero
    b_h, a second layer where the path is stacked), against ``reference.run`` in float64."""
    import reference
    from conformance.core.adapter_strategies import case_shape
    from conformance.core.tolerances import tolerance

    info = adapter.info
    rates = {k: 0.0 for k in info.dropout}
    rng = np.random.default_rng(seed)
    init = "initial_state" in info.features
    cases = [(f"{kind} probe", build_probe(info, kind, 0.5, seed, K, B, T)) for kind in probe_kinds(info)]
    layers = 2 if "stacked" in info.features else 1
    stack = reference.random_stack(rng, info.cell, 3, 4, num_layers=layers)
    x = rng.standard_normal((T, B, 3))
    h0 = rng.standard_normal((layers, B, 4)) * 0.5 if init else None
    c0 = rng.standard_normal((layers, B, 4)) * 0.5 if init and info.cell == "lstm" else None
    cases.append((f"random weights, {layers} layer(s)", P.Probe("random", info.cell, stack, K, 1.0, (), x, h0, c0)))
    worst = DropoutOff(0.0, 1.0, "")
    for where, probe in cases:
        got = adapter.dropout_session(probe.stack, rates, seed)(probe.x, probe.h0, probe.c0, training=True)
        want = reference.run(probe.stack, probe.x, probe.h0, probe.c0)
        magnitude = float(np.max(np.abs(want.c_n))) if want.c_n is not None else 1.0
        tol = tolerance(adapter.dtype, *case_shape(probe.stack, T), magnitude=magnitude)
        err, k, why = _worst_error(got, want)
        if not np.isfinite(err) or err / tol > worst.error / worst.tolerance:
            worst = DropoutOff(err, tol, f"{where}, {k}{why}")
            if not np.isfinite(err):
                return worst
    return worst


# ---------------------------------------------------------------- universal invariants

#: Properties wrong for ANY dropout implementation, asserted for every knob of every path,
#: declared or not: (name, what it checks, false-alarm probability).
INVARIANTS = (
    ("kept value", "every kept element is exactly 1/(1-p) (within 1e-3 relative; the probes recover "
                   "multipliers to ~1e-5), at p = 0.1, 0.5 and 0.9", "0 (deterministic)"),
    ("drop rate", "the dropped fraction at p = 0.1, 0.5, 0.9 is p: exact binomial test with the draws for "
                  "power 0.99 against a rate off by 0.01", "1e-6 per measurement (Holm family)"),
    ("evaluation mode", "a training=False call drops nothing", "0 (deterministic)"),
    ("seeds", "the same seed gives the same masks, another seed other masks",
     "0 (deterministic; two seeds agreeing by chance on >= 2,048 draws: < 2^-2048)"),
    ("batch rows", "rows of a batch draw their own masks: not one mask for all rows, and the chi-square test of "
                   "rows 0 and 1", "1e-6 per measurement (Holm family); identical rows by chance < 2^-256"),
    ("named tensors", "the knob masks only the tensors it names (its declaration; for 'a+b' the tensors a and b "
                      "mask alone)", "0 (deterministic)"),
    ("masks something", "at p = 0.5 the knob masks at least one tensor", "0 (deterministic; < 2^-2048 by chance)"),
)


@dataclass
class Violation:
    invariant: str  # a name from INVARIANTS, or "statistical alarm"
    message: str


def invariants(ms, named=None, alone=None):
    """The `Violation`s of `INVARIANTS` in the measurements `ms` of one knob (the first the full
    one at p = 0.5, the others at further rates); `named`: the tensors the knob names (None:
    not known); `alone`: for a knob "a+b", {a: tensors a masks alone, ...}."""
    out = []
    first = ms[0]
    for m in ms:
        for t, v in m.properties.items():
            if t not in TENSORS or not S.is_masked(v):
                continue
            kept = S.parts(v).get("kept")
            if kept != "kept value 1/(1-p)":
                got = m.kept.get(t)
                seen = "" if got is None else f" (measured {got:.4g}; 1/(1-p) = {_scale(m.rate):.4g})"
                what = kept.replace("kept value ", "")
                out.append(Violation("kept value", f"kept value {what} instead of 1/(1-p): {t} at p = {m.rate}{seen}"))
        for c in m.alarms:
            if c.name.endswith(": drop rate"):
                out.append(Violation("drop rate", f"drop rate off: {c.name.split(':')[0]} at p = {m.rate}: {c.detail}"))
            elif c.name.endswith(": batch rows independent"):
                out.append(Violation("batch rows", f"batch rows not independent: {c.name.split(':')[0]} at "
                                                   f"p = {m.rate}: {c.detail}"))
            else:
                out.append(Violation("statistical alarm", f"statistical alarm at p = {m.rate}: {c.name}: {c.detail}"))
        for t, v in m.properties.items():
            if t in TENSORS and S.is_masked(v) and S.parts(v).get("rows") == "rows shared":
                out.append(Violation("batch rows", f"one mask shared by all batch rows: {t} at p = {m.rate}"))
    if first.properties.get("evaluation mode") == "DROPS":
        out.append(Violation("evaluation mode", "evaluation mode drops: a training=False call masked "
                                                "(inference must drop nothing)"))
    seeds = first.properties.get("seeds", "")
    if "same seed DIFFERENT masks" in seeds:
        out.append(Violation("seeds", "same seed, different masks: two sessions seeded alike drew other masks"))
    if "other seed SAME masks" in seeds:
        out.append(Violation("seeds", "another seed, the same masks: the seed does not reach the masks"))
    masked = S.masked_tensors(first.properties)
    if not masked and not any(str(v).startswith("unknown (") for v in first.properties.values()):
        out.append(Violation("masks something", f"the knob masks nothing at p = {first.rate}: no probe saw a "
                                                "mask (input, h_(t-1), c_(t-1), layer inputs, outputs, states)"))
    if alone is not None:
        union = set().union(*alone.values())
        for t in sorted(masked - union):
            out.append(Violation("named tensors", f"mask on {_tensor_label(t)} ({first.properties[t]}) with the "
                                                  f"knobs together, which none of {sorted(alone)} masks alone"))
    elif named is not None:
        for t in sorted(masked - set(named)):
            out.append(Violation("named tensors", f"mask on {_tensor_label(t)} ({first.properties[t]}), which the "
                                                  f"knob does not name (it names {sorted(named) or 'nothing'})"))
    seen, unique = set(), []
    for v in out:
        if v.message not in seen:
            seen.add(v.message)
            unique.append(v)
    return unique


def _tensor_label(t):
    return {"recurrent_c": "c (recurrent_c: the carried cell state c_(t-1))",
            "state_c": "c (state_c: the returned c_n)"}.get(t, t)
