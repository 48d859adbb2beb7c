"""The semantics fingerprint of every adapter path, measured on the framework's own RNG.

For each registered path (``conformance.adapters.registry.adapters()``, third-party ones included) and
each of its dropout knobs, `conformance.oracles.fingerprint.measure` runs the probe-weight oracle
through the adapter's ``dropout_session`` and infers the fingerprint at p = 0.5 (which tensors
are masked; per sequence or per step; gates; batch rows; kept value; evaluation mode; seeds;
the effect of an inference call), and the drop rate at p = 0.1, 0.5 and 0.9 with enough draws
for power >= 0.99 against a rate off by 0.01 (`statistics.required_draws`); a path with
several knobs is also measured with all of them set together ("dropout+recurrent_dropout"). Statistical checks
are Holm-corrected per measurement at a family false-alarm probability of 1e-6.

The fingerprint goes into the report (`fingerprints`); it is compared with the expected one
declared in ``expectations/fingerprints/*.toml`` for the installed version: every differing
property is a finding (`findings`) and fails the test, as does any statistical alarm. A path
with no expected fingerprint (a third-party adapter) is measured and reported, with a finding
saying nothing was declared. A path that declares no dropout knob (`AdapterInfo.dropout`:
the layer has none, or its adapter does not drive it yet) gets a row saying so and skips. Option variants of a path ("torch.nn.LSTM[batch_first]", ...) share its dropout
and are fingerprinted through the plain path only.
"""
from __future__ import annotations

import os
import warnings

import pytest

from conformance.adapters import registry
from conformance.results import expectations as expect
from conformance.oracles import fingerprint as F
from conformance.core import paths
from conformance.core.frameworks import installed_version
from conformance.checks.parity import Run, registry_params

EXPECTED = expect.load_fingerprints(paths.EXPECTATIONS / "fingerprints")
FINGERPRINT_RATE = 0.5
# The framework RNG's seed: fixed for reproducible reports; RNN_CONFORMANCE_SEED=N re-runs the
# statistics on other draws (how the false-alarm rate is shown across runs).
SEED = int(os.environ.get("RNN_CONFORMANCE_SEED", "20261123"))
RATE_CHECKS = (0.1, 0.9)


def compare(measured, expected):
    """[(property, measured, expected)] that differ."""
    want = dict(expected.properties)
    return [(k, measured.get(k), v) for k, v in sorted(want.items()) if measured.get(k) != v]


def repro(info, knob):
    return ("from conformance.adapters import registry\nfrom conformance.oracles import fingerprint\n"
            f"m = fingerprint.measure(registry.load({registry.loadable_name(info)!r}), {knob!r}, 0.5, seed={SEED})\n"
            "print(m.properties, m.rates, [c.detail for c in m.alarms])")


def fingerprinted(p):
    """Every path but the option variants of another ("torch.nn.LSTM[batch_first]": the same
    dropout as its plain path), and those variants too when they take lengths (padded steps)."""
    info = p.values[0]
    return info.plain or "lengths" in info.features


@pytest.mark.parametrize("info, device", [p for p in registry_params() if fingerprinted(p)])
def test_fingerprint(info, device, conformance_record, conformance_section):
    with Run(info, device, "dropout fingerprint", conformance_record) as run:
        adapter = run.load(info, device)["float32"]
        padded = F.padded_steps(adapter)
        if not info.dropout or not info.plain:
            conformance_section("fingerprints", adapter=info.name, backend=run.record["backend"], knob=None,
                                properties={"padded steps": padded, "dropout": "no knob declared" if not info.dropout
                                            else "see the plain path"}, rates=[])
            if "lengths" in info.features:
                # right padding cannot tell repeat_output from carry_h (both repeat the last valid h):
                # the declared policy must be among those that match
                assert info.padding in padded.split(" / "), (f"{info.name}: padded steps follow {padded!r}, the "
                                                             f"path declares {info.padding!r}")
                run.record["reason"] = f"padded steps: {padded}; no dropout measured on this variant"
                return
            run.skip(f"{info.name} declares no dropout knob (AdapterInfo.dropout): nothing measured")
        version = installed_version(info.distribution)
        problems = []
        knobs = list(info.dropout) + (["+".join(info.dropout)] if len(info.dropout) > 1 else [])
        for knob in knobs:  # each knob alone, then all together (they may interact)
            run.example(None, repro(info, knob))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # torch: "dropout expects num_layers > 1"
                m = F.measure(adapter, knob, FINGERPRINT_RATE, seed=SEED)
                kinds = F.masked_probe_kinds(m)  # the rate at 0.1 and 0.9: only the probes that show masks
                extra = [F.measure(adapter, knob, p, seed=SEED, kinds=kinds, modes=False) for p in RATE_CHECKS] \
                    if kinds else []
            alarms = [c for mm in [m] + extra for c in mm.alarms]
            entry = m.entry()
            entry["properties"]["padded steps"] = padded
            entry["rates"] = m.rates + [r for mm in extra for r in mm.rates]
            entry["checks"] += [c for mm in extra for c in mm.entry()["checks"]]
            conformance_section("fingerprints", backend=run.record["backend"], **entry)
            run.observe(m.deviation, 1e-3, None)
            expected = expect.expected_fingerprint(EXPECTED, info.name, knob, version, run.record["backend"])
            if expected is None:
                conformance_section("findings", adapter=info.name, knob=knob, expected=None,
                                    summary=f"no expected fingerprint declared for {info.name} {knob} ({version})",
                                    evidence=str(m.properties))
            else:
                for prop, got, want in compare(m.properties, expected):
                    conformance_section("findings", adapter=info.name, knob=knob, expected=False, link=expected.link,
                                        summary=f"{prop}: measured {got!r}, expected {want!r}",
                                        evidence=f"rates {m.rates}; declared in {expected.source}: {expected.reason}")
                    problems.append(f"{knob}: {prop}: measured {got!r}, expected {want!r} ({expected.source})")
            problems += [f"{knob}: statistical alarm: {c.name}: {c.detail}" for c in alarms]
        run.record["reason"] = "; ".join(f"{k}: {v}" for k, v in m.properties.items())
        assert not problems, (f"{info.name} ({device}): the measured dropout semantics differ:\n  "
                              + "\n  ".join(problems) + f"\nrepro:\n{repro(info, info.dropout[0])}")
