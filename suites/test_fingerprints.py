"""The dropout semantics of every adapter path, measured on the framework's own RNG.

For each registered path (``conformance.adapters.registry.adapters()``, outside ones included)
`conformance.checks.fingerprints.check` runs, in this order:

1. padded steps (a path with "lengths" must follow the ``padding`` it declares);
2. the diagnosis: with every knob at 0 the path must compute the reference under the probe
   layouts and on random weights, else the test fails with "forward/weights differ from the
   reference with dropout off" and measures no dropout property;
3. per dropout knob, then all knobs together ("dropout+recurrent_dropout"): the fingerprint at
   p = 0.5 through the probe-weight oracle (which tensors are masked -- input, h_(t-1), the
   carried c_(t-1), layer inputs, outputs, states; per sequence or per step; gates; batch rows;
   kept value; evaluation mode; seeds; the effect of an inference call) and the drop rate at
   p = 0.1, 0.5 and 0.9 with the draws for power >= 0.99 against a rate off by 0.01;
4. the universal invariants (`conformance.oracles.fingerprint.INVARIANTS`: kept value 1/(1-p),
   rate = p, evaluation mode drops nothing, seeds, batch rows independent, only the named
   tensors masked, something masked), declared or not, each violation named;
5. the declared semantics, from the path's ``AdapterInfo.semantics``, a ``--semantics`` file
   ($RNN_CONFORMANCE_SEMANTICS) or ``expectations/fingerprints/*.toml`` (for the installed
   version, or the path's own ``AdapterInfo.version``): every declared property is compared,
   "padded steps" included, and every difference fails the test, named part by part. An
   undeclared knob is measured and reported with the finding "semantics undeclared: measured
   ..."; with ``--strict-semantics`` it fails.

Statistical checks are Holm-corrected per measurement at a family false-alarm probability of
1e-6; the deterministic invariants cannot raise a false alarm (see INVARIANTS). The fingerprint
goes into the report (`fingerprints`), differences into `findings`. A path without dropout knobs
gets a row with its padded-step policy. Option variants of a path ("torch.nn.LSTM[batch_first]")
share its dropout and are checked through the plain path, and for padded steps when they take
lengths.
"""
from __future__ import annotations

import os

import pytest

from conformance.adapters import registry
from conformance.checks import fingerprints as C
from conformance.checks.parity import Run, registry_params
from conformance.core import paths
from conformance.core.frameworks import installed_version
from conformance.results import expectations as expect

EXPECTED = expect.load_fingerprints(paths.EXPECTATIONS / "fingerprints")
# The framework RNG's seed: fixed for reproducible reports; RNN_CONFORMANCE_SEED=N re-runs the
# statistics on other draws (how the false-alarm rate is shown across runs).
SEED = int(os.environ.get("RNN_CONFORMANCE_SEED", "20261123"))
STRICT = os.environ.get(expect.STRICT_SEMANTICS_ENV) == "1"


def repro(info, version, backend):
    """A fresh interpreter's run of the same check, printing what the test judged."""
    files = os.environ.get(expect.SEMANTICS_ENV, "")
    env = f"import os; os.environ[{expect.SEMANTICS_ENV!r}] = {files!r}\n" if files else ""
    return (env + "from conformance.adapters import registry\nfrom conformance.checks import fingerprints\n"
            "from conformance.core import paths\nfrom conformance.results import expectations as E\n"
            f"adapter = registry.load({registry.loadable_name(info)!r})\n"
            f"declared = E.declared_semantics(adapter.info, {version!r}, {backend!r}, E.semantics_files(), "
            "E.load_fingerprints(paths.EXPECTATIONS / 'fingerprints'))\n"
            f"print(fingerprints.check(adapter, declared, seed={SEED}"
            + (", strict=True" if STRICT else "") + ").text())")


def fingerprinted(p):
    """Every path but the option variants of another ("torch.nn.LSTM[batch_first]": the same
    dropout as its plain path), and those variants too when they take lengths (padded steps)."""
    info = p.values[0]
    return info.plain or "lengths" in info.features


@pytest.mark.parametrize("info, device", [p for p in registry_params() if fingerprinted(p)])
def test_fingerprint(info, device, conformance_record, conformance_section):
    with Run(info, device, "dropout fingerprint", conformance_record) as run:
        adapter = run.load(info, device)["float32"]
        backend = run.record["backend"]
        version = info.version or installed_version(info.distribution)
        declared = expect.declared_semantics(info, version, backend, expect.semantics_files(), EXPECTED)
        run.example(None, repro(info, version, backend))
        if not info.plain:
            declared = {}  # a variant: only its padded steps (its dropout is the plain path's)
        elif not info.dropout:
            declared = {k: v for k, v in declared.items() if k == "*"}
        if not info.dropout or not info.plain:
            out = C.check(adapter, declared, seed=SEED, dropout=False)
            conformance_section("fingerprints", adapter=info.name, backend=backend, knob=None,
                                properties={"padded steps": out.padded, "dropout": "no knob declared" if not info.dropout
                                            else "see the plain path"}, rates=[])
            assert out.ok, f"{info.name}: {out.headline()}\n  " + "\n  ".join(out.problems)
            if "lengths" not in info.features:
                run.skip(f"{info.name} declares no dropout knob (AdapterInfo.dropout): nothing measured")
            run.record["reason"] = f"padded steps: {out.padded}; no dropout measured on this variant"
            return
        out = C.check(adapter, declared, seed=SEED, strict=STRICT)
        for entry in out.entries:
            conformance_section("fingerprints", backend=backend, **entry)
        for finding in out.findings:
            conformance_section("findings", **finding)
        if out.diagnosis is not None and not out.diagnosis.ok:
            run.observe(out.diagnosis.error, out.diagnosis.tolerance, None)
        else:
            run.observe(out.deviation, 1e-3, None)
            if out.ok:
                run.record["reason"] = "; ".join(f"{k}: {v}" for k, v in out.entries[0]["properties"].items())
        assert out.ok, (f"{info.name} ({device}): {out.headline()}\nthe dropout semantics are wrong:\n  "
                        + "\n  ".join(out.problems) + f"\nrepro:\n{repro(info, version, backend)}")

