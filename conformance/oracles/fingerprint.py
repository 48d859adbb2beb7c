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
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from conformance.oracles import statistics as st
from conformance.oracles import probe as P

TENSORS = ("input", "recurrent", "inter_layer", "output", "state_h", "state_c")
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

    def entry(self):
        """The report's fingerprints entry."""
        num = lambda v: None if v is None else float(v)  # noqa: E731  (NumPy scalars -> JSON)
        return dict(adapter=self.adapter, knob=self.knob, rate=self.rate, properties=dict(self.properties),
                    rates=[{k: (v if isinstance(v, str) else num(v)) for k, v in r.items()} for r in self.rates],
                    deviation=float(self.deviation),
                    checks=[dict(name=c.name, p_value=num(c.p_value), detail=c.detail, alarm=bool(c.alarm))
                            for c in self.checks])

    @property
    def alarms(self):
        return [c for c in self.checks if c.alarm]


def probe_kinds(info):
    return ("constant", "input", "recurrent") + (("inter_layer",) if "stacked" in info.features else ())


def knob_rates(knob, p):
    """{knob: p} for one knob; "a+b" sets every named knob to p at once."""
    return {k: p for k in knob.split("+")}


def run_probe(adapter, kind, knob, p, seed, calls, K, B, T, training=True, reset_after=True):
    """{tensor: array (calls, ...)} of recovered multipliers for one probe kind."""
    probe = P.build(kind, adapter.info.cell, K, B, T, scale=_scale(p), seed=seed, reset_after=reset_after)
    session = adapter.dropout_session(probe.stack, knob_rates(knob, p), seed)
    got = [P.recover(probe, session(probe.x, probe.h0, probe.c0, training=training)) for _ in range(calls)]
    return {k: np.stack([g[k] for g in got]) for k in got[0]}


def _scale(p):
    return np.inf if p >= 1 else 1.0 / (1.0 - p)


def _masked(v):
    return bool(np.any(np.abs(v - 1.0) > ONE))


def describe(name, v, p, m):
    """Properties of one masked tensor's multipliers v (calls, [T,] [routes,] B, N); adds the
    statistical checks and the rate row to measurement m; returns the property string."""
    scale = _scale(p)
    dev_scaled, dev_plain = st.value_deviation(v, scale), st.value_deviation(v, 1.0)
    kept_value = "1/(1-p)" if dev_scaled < 1e-3 * max(1, scale) else ("1 (unscaled)" if dev_plain < 1e-3 else "other")
    m.deviation = max(m.deviation, min(dev_scaled, dev_plain))
    keep = st.keep_indicator(v, scale if kept_value != "1 (unscaled)" else 1.0)
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
    if not same_rows:
        m.checks.append(st.independence_test(np.take(draws, 0, axis=-2), np.take(draws, 1, axis=-2),
                                             f"{name}: batch rows independent"))
        m.checks.append(st.independence_test(draws[..., 0], draws[..., 1], f"{name}: units independent"))
    parts.append(f"kept value {kept_value}")
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
            "state_h": "constant", "state_c": "constant"}


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
    return _independent(keep, per_seq, keep.ndim >= 5 and bool(np.all(keep == keep[:, :, :1])))[0].size


def _top_up(adapter, knob, p, seed, found, kind_of, K, B, T):
    """More calls of each masked tensor's probe until required_draws(p) independent draws."""
    need = st.required_draws(p)
    for name, v in list(found.items()):
        if not _masked(v) or _confounded_by(name, found):
            continue
        per_call = max(1, _draws_per_call(v, _scale(p)))
        extra = -(-(need - v.shape[0] * per_call) // per_call)
        if extra > 0:
            more = run_probe(adapter, kind_of[name], knob, p, seed + 7919, extra, K, B, T)[name]
            found[name] = np.concatenate([v, more])


# A probe's readout assumes the tensors it reads are unmasked: masked outputs hide every
# route; a masked carried h is what the recurrent probe then reads; masked layer inputs hide
# the inter-layer probe's layer-0 output.
CONFOUNDERS = {"input": ("output",), "recurrent": ("output", "state_h"), "inter_layer": ("output", "input")}


def _confounded_by(name, found):
    return next((c for c in CONFOUNDERS.get(name, ()) if c in found and _masked(found[c])), None)


def _modes(adapter, knob, p, seed, K, B, T):
    """Evaluation mode, seed behaviour and the effect of an inference call, on the probe kind
    that shows the knob's masks best (the first that is masked)."""
    def masks(kind, s, pattern):
        probe = P.build(kind, adapter.info.cell, K, B, T, scale=_scale(p), seed=seed)
        session = adapter.dropout_session(probe.stack, knob_rates(knob, p), s)
        outs = [P.recover(probe, session(probe.x, probe.h0, probe.c0, training=t)) for t in pattern]
        return outs

    for kind in ("constant", "input", "recurrent", "inter_layer"):
        if kind == "inter_layer" and "stacked" not in adapter.info.features:
            continue
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
    matches = []
    for policy in reference.POLICIES:
        want = reference.run(stack, x, h0, c0, lengths=lengths, padding=policy)
        if all(getattr(want, k) is None or np.max(np.abs(np.asarray(getattr(got, k)) - getattr(want, k))) <= tol
               for k in ("y", "h_n", "c_n")):
            matches.append(policy)
    return " / ".join(matches) if matches else "none of the reference policies"
