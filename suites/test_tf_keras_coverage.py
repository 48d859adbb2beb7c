"""Systematic coverage of tf-keras 2 ``tf_keras.layers.LSTM`` / ``GRU``: hypothesis draws every
documented constructor / call argument together (`keras_strategies.tf_keras_layer_configs`: dropout
rates 0, tiny, 0.5, near 1, exactly 1; implementation; unroll; reset_after; go_backwards;
return_sequences; return_state; stateful; time_major; masking source; zero_output_for_mask; initial
states; training; batch sizes across calls) and `conformance.adapters.keras.coverage.run_config`
runs each draw as a user would (tf-keras' rules: the coverage module's docstring), checking the
documented shapes (time-major ones included), finite values, the reference (without effective
dropout; zero_output_for_mask only with return_sequences, as tf-keras' RNN docstring says), rates
of exactly 1, the stateful batch-size rule (refused by the layer's input check) and ``fit`` with a
partial last batch.

A configuration that raises is a finding, never filtered out of the strategy. Known deviations
are data: `KNOWN` says which draws a deviation concerns, ``expectations/tf_keras.toml`` (entries on
``test_known_deviation[<name>]``) on which tf-keras version it is expected, with the reason.
A draw's problem is tolerated only where that entry applies; ``test_known_deviation`` reruns a
fixed draw of each one, so an entry that stops matching is reported (xpass / stale).

Marked ``tf_keras``: run with TF_USE_LEGACY_KERAS=1 in its own process (Makefile ``test-full``).
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from conformance.core import paths
from conformance.results import expectations as expect
from conformance.adapters.keras import strategies as KS
from conformance.core.frameworks import installed_version, require
from conformance.adapters.keras.coverage import masked, run_config

pytestmark = [pytest.mark.tf_keras, pytest.mark.framework("tf_keras")]
EXAMPLES = max(4, settings.default.max_examples // 2)
NODE = "suites/test_tf_keras_coverage.py::test_known_deviation[{}]"
ENTRIES = expect.load_dir(paths.EXPECTATIONS)
ENV = "TF_USE_LEGACY_KERAS=1"


def _cfg(cell="lstm", **kw):
    base = dict(framework="tf_keras", cell=cell, dropout=0.0, recurrent_dropout=0.0, implementation=2,
                unroll=False, go_backwards=False, return_sequences=True, return_state=True, stateful=False,
                time_major=False, masking="mask=", zero_output_for_mask=False, initial_state=True,
                training=False, batches=(3,), steps=5, units=2, data_seed=4)
    return {**base, **({"reset_after": True} if cell == "gru" else {}), **kw}


# what a (B, T) mask read as (T, B) raises, by path: SelectV2 broadcast (fused path, cell loop), the
# unrolled loop's unstack, the while loop's TensorArray / loop-variable shapes
TIME_MAJOR_MASK_ERRORS = ("must be broadcastable", "IndexError: list index out of range",
                          "Incompatible shape for value", "Cannot unstack")


def _batch(c, p):
    """The batch size of call `p.call` (run_config: two calls per drawn batch size)."""
    return c["batches"][p.call // 2]


def _rate_one(c):
    return 1.0 in (c["dropout"], c["recurrent_dropout"])


# name: (which drawn problems it explains, a fixed draw that shows it)
KNOWN = {
    # a rate of exactly 1 ("Float between 0 and 1") reaches tf.nn.dropout, which refuses rate >= 1,
    # at the first call in training (and in fit)
    "tf-keras-rate-one-crash": (
        lambda c, p: p.kind == "crash" and _rate_one(c) and "range [0, 1)" in p.detail,
        _cfg(dropout=1.0, recurrent_dropout=1.0, training=True, masking="none")),
    # unroll=True + a mask + zero_output_for_mask: backend.rnn zeroes the stacked outputs with the whole,
    # un-reversed mask: return_sequences=False (outputs (1, B, u)) crashes in set_shape (or in fit's
    # graph), go_backwards + return_sequences zeroes the wrong steps
    "tf-keras-unroll-zero-output-for-mask": (
        lambda c, p: c["unroll"] and c["zero_output_for_mask"] and masked(c) and (
            (p.kind == "crash" and not c["return_sequences"] and c["steps"] > 1
             and ("is not compatible with supplied shape" in p.detail
                  or "Dimension 0 in both shapes must be equal" in p.detail))
            or (p.kind == "values" and p.wrong == ("y",) and c["go_backwards"] and c["return_sequences"])),
        _cfg(unroll=True, zero_output_for_mask=True, return_sequences=False, return_state=False)),
    # time_major=True: the layer takes the mask= mask time-major (T, B), the call docstring documents
    # [batch, timesteps]: the documented mask crashes (T != B) or is read transposed without an error
    # where it broadcasts (T == B; T == 1: the (B, 1) mask read as B steps of one sample)
    "tf-keras-time-major-mask-not-batch-major": (
        lambda c, p: c["time_major"] and c["masking"] == "mask=" and p.call >= 0 and (
            (p.kind == "crash" and _batch(c, p) != c["steps"]
             and any(m in p.detail for m in TIME_MAJOR_MASK_ERRORS))
            or (p.kind == "values" and (_batch(c, p) == c["steps"] or c["steps"] == 1))),
        _cfg(time_major=True, batches=(3,), steps=5)),
    # zero_output_for_mask "is only used when return_sequences is True" (RNN docstring), yet with
    # return_sequences=False the last output is zeroed where the last processed step is masked
    "tf-keras-zero-output-for-mask-without-return-sequences": (
        lambda c, p: p.kind == "values" and not c["return_sequences"] and c["zero_output_for_mask"] and masked(c)
        and "zero_output" in p.follows,
        _cfg(zero_output_for_mask=True, return_sequences=False, return_state=False, initial_state=False)),
    # fit with a masked sequence output (return_sequences): the loss reweights the valid entries by
    # total / valid (losses_utils.apply_valid_mask), a batch with no valid step gives 0 * inf = nan
    "tf-keras-fully-masked-batch-nan-loss": (
        lambda c, p: p.kind == "fit" and "loss [nan" in p.detail and masked(c) and c["return_sequences"],
        _cfg(masking="Masking", steps=1, return_state=False, data_seed=3969)),
    # a stateful model (Input(batch_shape=(4, ...))) fits 9 or 10 samples in batches of 4, the partial
    # last batch included, and predict returns 12 rows for them; or an op meets the shapes the skipped
    # batch-size check let through (batch of 2: InvalidArgumentError 'Incompatible shapes: [4,T,u] vs. [2,T,u]')
    "tf-keras-stateful-partial-batch-accepted": (
        lambda c, p: p.kind == "stateful_rule" and p.call == -1 and c["stateful"]
        and ("accepted" in p.detail or "Incompatible shapes" in p.detail or "must be broadcastable" in p.detail),
        _cfg(stateful=True, masking="none", initial_state=False, batches=(4,), data_seed=3)),
}


def expected_here(name):
    """The tf_keras.toml entry making deviation `name` expected at this tf-keras version, or None."""
    return expect.entry_for(ENTRIES, NODE.format(name), {"tf-keras": installed_version("tf-keras")},
                            expect.current_backend())


def explain(cfg, problem):
    """(name, entry) of the known deviation expected here that explains `problem`, else (None, None)."""
    for name in KNOWN:
        entry = expected_here(name)
        if entry is not None and KNOWN[name][0](cfg, problem):
            return name, entry
    return None, None


def repro(cfg, problem):
    return (f"{problem.snippet}\n# or the whole draw: {ENV} python -c \"from conformance.adapters.keras import "
            f"coverage as KC; KC.replay({cfg!r})\"")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_layer_configs(cell, conformance_record, conformance_section):
    tf_keras = require("tf_keras", "tf-keras")
    adapter = f"tf_keras.layers.{cell.upper()}"
    seen = {"draws": 0, "calls": 0, "refused": 0, "fit": 0}
    known, refusals = {}, set()

    # no shrinking: each draw builds tf-keras layers, and the message already holds the draw's repro
    @settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(cfg=KS.tf_keras_layer_configs(cell))
    def check(cfg):
        problems, notes = run_config(tf_keras, cfg)
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
            KS.record(conformance_record, adapter=adapter, backend="tensorflow", framework="tf_keras",
                      distribution="tf-keras", feature="documented arguments (hypothesis)", seed=cfg["data_seed"],
                      reason=f"{p.kind}: {p.detail}"[:500], repro=rp)
            conformance_section("findings", adapter=f"{adapter} (tf-keras)", knob=p.kind, expected=False,
                                summary=p.detail[:300], evidence=rp)
            raise AssertionError(f"{adapter} [{p.kind}] at call {p.call}: {p.detail}"
                                 f"\nseed={cfg['data_seed']}\nrepro ({ENV}):\n{rp}")

    check()
    for name, (entry, cfg, p) in known.items():
        conformance_section("findings", adapter=f"{adapter} (tf-keras)", knob=name, expected=True,
                            summary=p.detail[:300], evidence=repro(cfg, p), link=entry.link, finding=entry.finding)
    KS.record(conformance_record, adapter=adapter, backend="tensorflow", framework="tf_keras",
              distribution="tf-keras", feature="documented arguments (hypothesis)",
              reason=(f"{seen['draws']} draws, {seen['calls']} calls, {seen['refused']} documented refusals, "
                      f"{seen['fit']} fits; documented refusals seen: {sorted(refusals) or 'none'}; "
                      f"known deviations seen: {sorted(known) or 'none'}")[:500])
    assert seen["calls"] > 0, "no call ran"


@pytest.mark.parametrize("name", list(KNOWN))
def test_known_deviation(name, conformance_record):
    """The fixed draw of a known deviation shows no problem (expected to fail where tf_keras.toml says)."""
    tf_keras = require("tf_keras", "tf-keras")
    applies, cfg = KNOWN[name]
    problems, notes = run_config(tf_keras, cfg)
    rp = f"{ENV} python -c \"from conformance.adapters.keras import coverage as KC; KC.replay({cfg!r})\""
    KS.record(conformance_record, adapter=f"tf_keras.layers.{cfg['cell'].upper()}", backend="tensorflow",
              framework="tf_keras", distribution="tf-keras", feature=f"known deviation {name}", seed=cfg["data_seed"],
              repro=rp, reason="; ".join(f"{p.kind}: {p.detail}" for p in problems)[:500] or f"no problem ({notes})")
    assert not problems, (f"{name} (tf-keras): " + "; ".join(f"[{p.kind}] call {p.call}: {p.detail}" for p in problems)
                          + f"\nseed={cfg['data_seed']}\nrepro:\n{rp}")
