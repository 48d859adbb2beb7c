"""Systematic coverage of Keras 3 ``LSTM`` / ``GRU``: hypothesis draws every documented
constructor / call argument together (`keras_strategies.layer_configs`: dropout rates 0, tiny,
0.5, near 1, exactly 1; implementation; use_cudnn; unroll; reset_after; go_backwards;
return_sequences; return_state; stateful; seed; masking source; zero_output_for_mask; initial
states; training; batch sizes across calls) and `conformance.adapters.keras.coverage.run_config` runs each
draw as a user would, checking the documented shapes, finite values, the reference (without
effective dropout, mask policy `keras_strategies.expected_policy`), seed determinism, the
stateful batch-size rule and ``fit`` with a partial last batch (a raise in fit is a crash unless it is a
documented refusal: use_cudnn=True without a GPU, or the stateful batch-size ValueError at the
partial last batch itself, `coverage.check_fit`).

A configuration that raises is a finding, never filtered out of the strategy. Known deviations
are data: `KNOWN` says which draws a deviation concerns, ``expectations/keras.toml`` (entries on
``test_known_deviation[<name>]``) on which backend / version it is expected, with the reason.
A draw's problem is tolerated only where that entry applies; ``test_known_deviation`` reruns a
fixed draw of each one, so an entry that stops matching is reported (xpass / stale).

Marked ``keras``: run once per backend (KERAS_BACKEND=tensorflow | jax | torch).
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from conformance.core import paths
from conformance.results import expectations as expect
from conformance.adapters.keras import strategies as KS
from conformance.core.frameworks import installed_version, require
from conformance.adapters.keras.coverage import masked, run_config

pytestmark = [pytest.mark.keras, pytest.mark.framework("keras")]
EXAMPLES = max(4, settings.default.max_examples // 2)
NODE = "suites/test_keras_coverage.py::test_known_deviation[{}]"
ENTRIES = expect.load_dir(paths.EXPECTATIONS)


def _cfg(cell="lstm", **kw):
    base = dict(cell=cell, dropout=0.0, recurrent_dropout=0.0, implementation=2, use_cudnn="auto", unroll=False,
                go_backwards=False, return_sequences=True, return_state=True, stateful=False, seed=None,
                masking="mask=", zero_output_for_mask=False, initial_state=True, training=False, batches=(3,),
                steps=5, units=2, data_seed=4)
    return {**base, **({"reset_after": True} if cell == "gru" else {}), **kw}


# name: (which drawn problems it explains, a fixed draw that shows it)
KNOWN = {
    "torch-unroll-go_backwards-mask-crash": (
        lambda c, p: p.kind == "crash" and c["unroll"] and c["go_backwards"] and masked(c),
        _cfg(unroll=True, go_backwards=True)),
    "tf-unroll-go_backwards-zero_output_for_mask": (
        lambda c, p: p.kind == "values" and p.wrong == ("y",) and c["unroll"] and c["go_backwards"]
        and c["zero_output_for_mask"] and masked(c),
        _cfg(unroll=True, go_backwards=True, zero_output_for_mask=True)),
    "jax-unroll-ignores-zero_output_for_mask": (
        lambda c, p: p.kind == "values" and "repeat_output" in p.follows and c["unroll"]
        and c["zero_output_for_mask"] and masked(c),
        _cfg(unroll=True, zero_output_for_mask=True)),
    "jax-h0-at-leading-masked-steps": (
        lambda c, p: p.kind == "values" and "carry_h" in p.follows and not c["unroll"]
        and not c["zero_output_for_mask"] and masked(c) and (c["initial_state"] or c["stateful"]),
        _cfg()),
    "implementation1-dropout-fast-path-crash": (
        lambda c, p: p.kind == "crash" and c["implementation"] == 1 and c["recurrent_dropout"] == 0
        and c["dropout"] > 0 and c["use_cudnn"] is not False,
        _cfg(dropout=0.5, implementation=1, training=True, masking="none")),
    # the partial last batch of a stateful fit accepted (batch of 1), or refused later by an op meeting
    # the shapes the skipped batch-size check let through (batch of 2: InvalidArgumentError 'Incompatible
    # shapes: [2,8] vs. [4,8]'; with Masking 'condition [2,1], then [4,4], ... must be broadcastable')
    "tf-stateful-partial-batch-accepted": (
        lambda c, p: p.kind == "stateful_rule" and p.call == -1 and c["stateful"]
        and ("accepted" in p.detail or "Incompatible shapes" in p.detail or "must be broadcastable" in p.detail),
        _cfg(stateful=True, masking="none", initial_state=False, batches=(4,), data_seed=3, use_cudnn=False)),
    # a stateful fit crashes in its first backward: the fast-path inner_loop keeps the state variable's
    # tensor for autograd, then RNN.call assign()s the new state in place (copy_)
    "torch-stateful-fit-inplace-crash": (
        lambda c, p: p.kind == "crash" and p.call == -1 and c["stateful"] and c["use_cudnn"] == "auto"
        and c["recurrent_dropout"] == 0 and "modified by an inplace operation" in p.detail,
        _cfg(stateful=True, masking="none", initial_state=False, batches=(4,), data_seed=6)),
    "rate-one-drops-nothing": (
        lambda c, p: p.kind == "dropout_one",
        _cfg(dropout=1.0, recurrent_dropout=1.0, training=True, masking="none")),
}


def expected_here(name):
    """The keras.toml entry making deviation `name` expected on this backend and version, or None."""
    return expect.entry_for(ENTRIES, NODE.format(name), {"keras": installed_version("keras")}, expect.current_backend())


def _rank(name):
    """This backend's own deviations first, then those of no backend, then other backends' (whose
    fixed draw may also show one of this backend's)."""
    prefixes = {"tensorflow": "tf-", "jax": "jax-", "torch": "torch-"}
    if name.startswith(prefixes.get(expect.current_backend(), "?")):
        return 0
    return 2 if name.startswith(tuple(prefixes.values())) else 1


def explain(cfg, problem):
    """(name, entry) of the known deviation expected here that explains `problem`, else (None, None)."""
    for name in sorted(KNOWN, key=_rank):
        applies = KNOWN[name][0]
        entry = expected_here(name)
        if entry is not None and applies(cfg, problem):
            return name, entry
    return None, None


def repro(cfg, problem):
    return (f"{problem.snippet}\n# or the whole draw: python -c \"from conformance.adapters.keras import coverage "
            f"as KC; KC.replay({cfg!r})\"")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_layer_configs(cell, conformance_record, conformance_section):
    keras = require("keras")
    backend = keras.backend.backend()
    seen = {"draws": 0, "calls": 0, "refused": 0, "fit": 0}
    known, refusals = {}, set()

    # no shrinking: each draw builds Keras layers, and the message already holds the draw's repro
    @settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(cfg=KS.layer_configs(cell))
    def check(cfg):
        problems, notes = run_config(keras, cfg)
        seen["draws"] += 1
        seen["calls"] += sum(not n.startswith("fit") for n in notes)
        seen["refused"] += sum("refused" in n for n in notes)
        seen["fit"] += sum(n.startswith("fit") for n in notes)
        refusals.update(":".join(n.split(":", 2)[:2]) for n in notes if "refused" in n)
        for p in problems:
            name, entry = explain(cfg, p)
            if name is not None:
                known.setdefault(name, (entry, cfg, p))
                continue
            rp = repro(cfg, p)
            KS.record(conformance_record, adapter=f"keras.layers.{cell.upper()}", backend=backend,
                      feature="documented arguments (hypothesis)", seed=cfg["data_seed"],
                      reason=f"{p.kind}: {p.detail}"[:500], repro=rp)
            conformance_section("findings", adapter=f"keras.layers.{cell.upper()} ({backend})", knob=p.kind,
                                expected=False, summary=p.detail[:300], evidence=rp)
            raise AssertionError(f"keras.layers.{cell.upper()} ({backend}) [{p.kind}] at call {p.call}: {p.detail}"
                                 f"\nseed={cfg['data_seed']}\nrepro:\n{rp}")

    check()
    for name, (entry, cfg, p) in known.items():
        conformance_section("findings", adapter=f"keras.layers.{cell.upper()} ({backend})", knob=name, expected=True,
                            summary=p.detail[:300], evidence=repro(cfg, p), link=entry.link,
                            finding=entry.finding)
    KS.record(conformance_record, adapter=f"keras.layers.{cell.upper()}", backend=backend,
              feature="documented arguments (hypothesis)",
              reason=(f"{seen['draws']} draws, {seen['calls']} calls, {seen['refused']} documented refusals, "
                      f"{seen['fit']} fits; documented refusals seen: {sorted(refusals) or 'none'}; "
                      f"known deviations seen: {sorted(known) or 'none'}")[:500])
    assert seen["calls"] > 0, "no call ran"


@pytest.mark.parametrize("name", list(KNOWN))
def test_known_deviation(name, conformance_record):
    """The fixed draw of a known deviation shows no problem (expected to fail where keras.toml says)."""
    keras = require("keras")
    applies, cfg = KNOWN[name]
    problems, notes = run_config(keras, cfg)
    rp = f"python -c \"from conformance.adapters.keras import coverage as KC; KC.replay({cfg!r})\""
    KS.record(conformance_record, adapter=f"keras.layers.{cfg['cell'].upper()}", backend=keras.backend.backend(),
              feature=f"known deviation {name}", seed=cfg["data_seed"], repro=rp,
              reason="; ".join(f"{p.kind}: {p.detail}" for p in problems)[:500] or f"no problem ({notes})")
    assert not problems, (f"{name} ({keras.backend.backend()}): "
                          + "; ".join(f"[{p.kind}] call {p.call}: {p.detail}" for p in problems)
                          + f"\nseed={cfg['data_seed']}\nrepro:\n{rp}")
