"""Calibration of the mask oracle and the statistics, on the reference's own sampler.

1. Injection self-test: masks recovered by the probe-weight oracle equal the masks the
   reference session drew, element for element, for every mask kind, LSTM and GRU, float64
   and float32 (the largest deviation is printed).
2. False alarms: 200 measurements (seeds 0..199, every knob, rates 0.1 / 0.5 / 0.9) of the
   correct sampler raise no statistical alarm and always give the reference's fingerprint.
   The family false-alarm probability per measurement is 1e-6 (Holm), so the expected number
   of alarms in 200 is 2e-4.
3. Power: deliberately wrong samplers -- rate off by 0.01 (with the draws `required_draws`
   asks for: power 0.99), per-step instead of per-sequence, one mask for all batch rows, no
   scale, scale 1/p, c masked instead of h, dropout in evaluation mode -- are each detected
   (an alarm, or a fingerprint property that differs) at rates 0.1, 0.5 and 0.9 (scale 1/p
   only at 0.1 and 0.9: at p = 0.5, 1/p = 1/(1-p), the same sampler). Seeds are fixed, so the
   outcome is the same on every run.
"""
from __future__ import annotations

import numpy as np
import pytest

from conformance.oracles import fingerprint as F
from conformance.oracles import statistics as st
from conformance.adapters import numpy_reference as NR
from conformance.oracles import probe as P

RATES = (0.1, 0.5, 0.9)
SCALED = "rows independent, kept value 1/(1-p)"
# The reference sampler's fingerprint, knob by knob (what MaskSampler draws by construction).
REFERENCE = {
    "input": {"input": "per sequence, gates shared, " + SCALED, "inter_layer": "unknown (input masked)"},
    "recurrent": {"recurrent": "per sequence, gates shared, " + SCALED},
    "output": {"output": "per sequence, " + SCALED, "input": "unknown (output masked)",
               "recurrent": "unknown (output masked)", "inter_layer": "unknown (output masked)",
               "recurrent_c": "unknown (output masked)"},
    "state_h": {"state_h": SCALED, "recurrent": "unknown (state_h masked)"},
    # the reference masks the carried c after each update: the cell probe sees it from step 1 on
    "state_c": {"state_c": SCALED, "recurrent_c": "per sequence, " + SCALED},
    "inter_layer": {"inter_layer": "per step, " + SCALED},
}
MODES = {"evaluation mode": "nothing dropped", "seeds": "same seed same masks; other seed other masks",
         "inference call": "does not advance the random state"}


def expected(knob, cell="lstm"):
    props = {k: "none" for k in F.TENSORS if not (cell == "gru" and k in ("state_c", "recurrent_c"))}
    props.update({k: v for k, v in REFERENCE[knob].items() if k in props})
    props.update(MODES)
    return props


def adapter(cell="lstm", dtype="float64", mistake=None):
    return NR.ReferenceRNN(NR.info(cell), dtype=dtype, mistake=mistake)


# ---------------------------------------------------------------- 1. injection self-test

def injected(kind, masks, probe):
    """The drawn mask the probe of `kind` reads, shaped like its recovered multipliers."""
    lm = masks.layers[0][0]
    K = probe.K
    if kind == "input":
        return {"input": lm.input.values[None, None]}  # (B, K) per sequence -> broadcast over T, routes
    if kind == "recurrent":
        return {"recurrent": lm.recurrent.values[None, None, :, :K]}
    if kind == "constant":
        out = {"output": lm.output.values[None] if lm.output is not None else None,
               "state_h": lm.state_h.values if lm.state_h is not None else None}
        if probe.cell == "lstm":
            out["state_c"] = lm.state_c.values if lm.state_c is not None else None
        return out
    return {"inter_layer": masks.inter_layer[0].values}


KIND_OF_KNOB = {"input": "input", "recurrent": "recurrent", "output": "constant", "state_h": "constant",
                "state_c": "constant", "inter_layer": "inter_layer"}


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-9), ("float32", 2e-5)])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_oracle_recovers_injected_masks(cell, dtype, tol):
    worst = 0.0
    for knob in NR.info(cell).dropout:
        kind = KIND_OF_KNOB[knob]
        for p in RATES:
            probe = P.build(kind, cell, 8, 16, 5, scale=1 / (1 - p), seed=3)
            session = adapter(cell, dtype).dropout_session(probe.stack, {knob: p}, seed=11)
            got = P.recover(probe, session(probe.x, probe.h0, probe.c0))
            want = injected(kind, session.last_masks, probe)
            name = knob if kind == "constant" else kind
            err = float(np.max(np.abs(got[name] - want[name]))) / (1 / (1 - p))  # relative to the scale
            worst = max(worst, err)
            assert err <= tol, f"{cell} {dtype} knob {knob} p={p}: recovered differs from injected by {err:.3g}"
    print(f"\n  {cell} {dtype}: largest |recovered - injected| / scale = {worst:.3g}")


# ---------------------------------------------------------------- 2. false alarms

def test_no_false_alarm_over_200_seeds():
    knobs = NR.KNOBS
    alarms, mismatches = [], []
    for seed in range(200):
        knob, p = knobs[seed % len(knobs)], RATES[seed % len(RATES)]
        m = F.measure(adapter(), knob, p, seed=seed, power=False)
        alarms += [(seed, knob, p, c.detail) for c in m.alarms]
        if m.properties != expected(knob):
            mismatches.append((seed, knob, p, {k: v for k, v in m.properties.items() if expected(knob).get(k) != v}))
    print(f"\n  200 measurements of the correct sampler: {len(alarms)} statistical alarms, "
          f"{len(mismatches)} fingerprint mismatches")
    assert not alarms and not mismatches, (alarms[:5], mismatches[:5])


# ---------------------------------------------------------------- 3. power against wrong samplers

MISTAKE_KNOB = {"rate+0.01": "input", "per_step": "input", "shared_rows": "recurrent", "no_scale": "input",
                "scale_1/p": "input", "c_instead_of_h": "state_h", "eval_drops": "input"}


def detected(mistake, p, seed):
    knob = MISTAKE_KNOB[mistake]
    m = F.measure(adapter(mistake=mistake), knob, p, seed=seed, power=mistake == "rate+0.01")
    return bool(m.alarms) or m.properties != expected(knob), m


@pytest.mark.parametrize("mistake", NR.MISTAKES)
def test_wrong_sampler_is_detected(mistake):
    rates = [p for p in RATES if not (mistake == "scale_1/p" and p == 0.5)]
    results = [(p, seed, *detected(mistake, p, seed)) for p in rates for seed in (1, 2)]
    if mistake == "rate+0.01":  # detected by the rate test itself, not by a side effect
        results = [(p, seed, any(c.name.endswith("drop rate") for c in m.alarms), m) for p, seed, _, m in results]
    missed = [(p, seed, m.properties, [c.detail for c in m.checks if c.p_value is not None][:3])
              for p, seed, hit, m in results if not hit]
    print(f"\n  {mistake}: detected {len(results) - len(missed)} of {len(results)}")
    assert not missed, missed


def test_power_of_the_rate_test():
    """The designs the suites use reach the stated power against a rate off by 0.01."""
    for p in RATES:
        n = st.required_draws(p)
        assert st.power_rate(n, p) >= 0.99 > st.power_rate(n // 2, p)
    assert st.required_draws(0.5) > st.required_draws(0.1) == st.required_draws(0.9)
