"""Systematic coverage of flax's ``RNN`` and ``Bidirectional`` (linen and nnx): hypothesis draws
every documented constructor / call argument together (`conformance.adapters.flax.coverage.configs`:
cell LSTMCell / OptimizedLSTMCell / GRUCell; one direction or Bidirectional; time_major,
return_carry, reverse, keep_order each left at its default, given to the constructor, to the
call, or to both with the call overriding; unroll 1, 2, T, T + 1; several calls of the same
module with changing batch sizes, each eager or jitted, with seq_lengths absent or in 0..T (1
and T included, unsorted), initial_carry given or not, init_key) and
`conformance.adapters.flax.coverage.run_config` runs each draw as a user would, checking the
documented shapes and structure, finite values, the outputs at valid steps and the carry
against the reference, in the order the nn.RNN docstring gives for reverse / keep_order.

A draw that raises is a finding, never filtered out of the strategy. One known deviation is
recognised (`KNOWN`), only where the returned carry is exactly what the finding describes:
``flax-rnn-zero-length-carry-after-padding`` (a row with seq_lengths 0 gets the state after all
T padded steps, not its initial carry). ``test_known_deviation`` reruns a fixed draw of it and
fails once it stops reproducing (fixed upstream: update the registry), as the other recorded
flax behaviours in suites/test_flax_rnn.py do.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from conformance.adapters.flax import coverage as FC
from conformance.core.frameworks import installed_version, require

pytestmark = pytest.mark.framework("flax")

EXAMPLES = max(4, settings.default.max_examples // 2)  # per api: 12 + 12 draws under the ci profile

# finding id: which drawn problems it explains
KNOWN = {FC.ZERO_LENGTH_FINDING: lambda cfg, p: p.kind == "zero_length_carry"}


def _fixed(api, **kw):
    """A fixed draw: LSTM, time-major, return_carry, a row of length 0 among others."""
    base = dict(api=api, cell="LSTMCell", bidirectional=False, steps=4, units=2, unroll=1,
                knobs={"time_major": (True, "ctor"), "return_carry": (True, "ctor"), "reverse": (False, "default"),
                       "keep_order": (False, "default")},
                seed=20260601,
                calls=(dict(batch=3, lengths=(4, 0, 2), jit=False, initial_carry=True, init_key=None),
                       dict(batch=2, lengths=(0, 1), jit=True, initial_carry=True, init_key=None)))
    return {**base, **kw}


FIXED = {
    f"{FC.ZERO_LENGTH_FINDING}[{api}{'-' + label if label else ''}]": _fixed(api, **kw)
    for api in ("linen", "nnx")
    for label, kw in (("", {}),
                      ("reverse", dict(knobs={"time_major": (True, "call"), "return_carry": (True, "call"),
                                              "reverse": (True, "ctor"), "keep_order": (True, "call")})),
                      ("bidirectional", dict(bidirectional=True, cell="GRUCell",
                                             knobs={"time_major": (True, "ctor"), "return_carry": (True, "call")})))
}


def repro(cfg, p):
    return (f"{p.snippet}\n# or the whole draw: python -c \"from conformance.adapters.flax import coverage as FC; "
            f"FC.replay({cfg!r})\"")


def record_base(api, cfg_or_cell, feature):
    return dict(adapter=f"flax.{api}.RNN / Bidirectional ({cfg_or_cell})", framework=f"flax.{api}",
                framework_version=installed_version("flax"), device="cpu", feature=feature)


def explain(cfg, p):
    return next((name for name, applies in KNOWN.items() if applies(cfg, p)), None)


@pytest.mark.parametrize("api", ["linen", "nnx"])
def test_argument_configs(api, conformance_record, conformance_section):
    require(f"flax.{api}")
    seen = {"draws": 0, "calls": 0, "jit": 0, "lengths": 0, "zero": 0, "bidirectional": 0}
    known = {}
    rec = record_base(api, "every cell", "documented arguments (hypothesis)")

    # no shrinking: each draw compiles flax modules, and the message already holds the draw's repro
    @settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(cfg=FC.configs(api))
    def check(cfg):
        problems, notes = FC.run_config(cfg)
        seen["draws"] += 1
        seen["bidirectional"] += cfg["bidirectional"]
        for c in cfg["calls"]:
            seen["calls"] += 1
            seen["jit"] += c["jit"]
            seen["lengths"] += c["lengths"] is not None
            seen["zero"] += bool(c["lengths"]) and 0 in c["lengths"]
        for p in problems:
            name = explain(cfg, p)
            if name is not None:
                known.setdefault(name, (cfg, p))
                continue
            rp = repro(cfg, p)
            conformance_record(**rec, seed=cfg["seed"], reason=f"{p.kind}: {p.detail}"[:500], repro=rp)
            conformance_section("findings", adapter=f"flax.{api}.RNN", knob=p.kind, expected=False,
                                summary=p.detail[:300], evidence=rp)
            raise AssertionError(f"flax.{api} {'Bidirectional' if cfg['bidirectional'] else 'RNN'}({cfg['cell']}) "
                                 f"[{p.kind}] at call {p.call}: {p.detail}\nseed={cfg['seed']}, draw={cfg!r}\n"
                                 f"calls: {notes}\nrepro:\n{rp}")

    check()
    for name, (cfg, p) in known.items():
        conformance_section("findings", adapter=f"flax.{api}.RNN", knob="seq_lengths 0", expected=True,
                            summary=p.detail[:300], evidence=repro(cfg, p), finding=name)
    conformance_record(**rec, reason=(
        f"{seen['draws']} draws ({seen['bidirectional']} Bidirectional), {seen['calls']} calls ({seen['jit']} "
        f"jitted, {seen['lengths']} with seq_lengths, {seen['zero']} with a length 0); known deviations seen: "
        f"{sorted(known) or 'none'}")[:500])
    assert seen["calls"] > 0, "no call ran"


@pytest.mark.parametrize("name", list(FIXED))
def test_known_deviation(name, conformance_record):
    """The fixed draw still shows the recorded finding, and nothing else: a row of length 0 gets
    the state after all T padded steps as its carry. Fails once flax returns the initial carry
    there (fixed: update findings/flax-rnn-zero-length-carry-after-padding.*)."""
    cfg = FIXED[name]
    require(f"flax.{cfg['api']}")
    problems, notes = FC.run_config(cfg)
    rp = f"python -c \"from conformance.adapters.flax import coverage as FC; FC.replay({cfg!r})\""
    kinds = sorted({p.kind for p in problems})
    conformance_record(**record_base(cfg["api"], cfg["cell"], "seq_lengths 0: the carry"), seed=cfg["seed"],
                       repro=rp, finding=FC.ZERO_LENGTH_FINDING,
                       reason=("finding: " + "; ".join(f"call {p.call}: {p.detail}" for p in problems))[:500]
                       if problems else f"no problem ({notes})")
    others = [p for p in problems if explain(cfg, p) is None]
    assert not others, "; ".join(f"[{p.kind}] call {p.call}: {p.detail}" for p in others) + f"\nrepro:\n{rp}"
    assert kinds == ["zero_length_carry"], (
        f"{FC.ZERO_LENGTH_FINDING} no longer reproduces on flax {installed_version('flax')} ({notes}): fixed? "
        f"update findings/{FC.ZERO_LENGTH_FINDING}.toml and this suite\nrepro:\n{rp}")
    # every length-0 row of every call shows it, in each direction
    for i, c in enumerate(cfg["calls"]):
        if c["lengths"] and 0 in c["lengths"]:
            assert any(p.call == i for p in problems), f"call {i}: a length-0 row got its initial carry\n{rp}"
