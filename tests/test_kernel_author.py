"""The kernel author's path, used as an author would: a NumPy LSTM / GRU with three dropout knobs
and declared semantics (tests/planted_adapters.py), and copies of it with one planted bug each,
added with ``--adapter`` and run through suites/test_fingerprints.py in a pytest process of their
own (the public API only). Each bug must fail with its own named cause on the first problem
line; the correct adapters pass; 20 seeds of the correct adapters raise no alarm; an undeclared
knob is a finding, a failure with --strict-semantics; a --semantics file copied from the
measured block makes it pass; a failing repro runs in a fresh interpreter.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import planted_adapters as PA  # noqa: E402

#: bug -> the cause the first problem line must name
CAUSES = {
    "unscaled": "kept value 1 (unscaled) instead of 1/(1-p)",
    "scale_1/p": "kept value 1/p instead of 1/(1-p)",
    "rate_off": "drop rate off",
    "eval_drops": "evaluation mode drops",
    "unseeded": "same seed, different masks",
    "seed_ignored": "another seed, the same masks",
    "shared_rows": "one mask shared by all batch rows",
    "gru_shared_rows": "one mask shared by all batch rows",
    "recurrent_masks_input": "mask on input",
    "mask_on_c": "mask on c (recurrent_c",
    "layer_after_last": "mask on output",
    "ignored": "the knob masks nothing",
    "per_step": "input: per step instead of per sequence",
    "per_gate": "recurrent: per gate instead of gates shared",
    "layer_per_sequence": "inter_layer: per sequence instead of per step",
    "inference_advances": "inference call: measured 'advances the random state', declared 'does not advance",
    "padding_carry": "padded steps: follow 'repeat_output / carry_h', the path declares padding='zero_output'",
    "gates_swapped": "forward/weights differ from the reference with dropout off",
    "bias_h_ignored": "forward/weights differ from the reference with dropout off",
    "recurrent_transposed": "forward/weights differ from the reference with dropout off",
    "gru_reset_before": "forward/weights differ from the reference with dropout off",
}
CORRECT = ("LSTM", "GRU", "GRU_UNDECLARED")


def spec(info):
    name = info.name.split(".", 1)[1] if info.name.count(".") == 1 else info.name.split(".", 2)[2]
    return f"planted_adapters:{name.upper()}"


def child_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("RNN_CONFORMANCE_") and k != "HYPOTHESIS_PROFILE"}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT)])
    return env


def run_suite(tmp_path, specs, *args, k="planted"):
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pytest", "suites/test_fingerprints.py", "-k", k, "-p", "no:cacheprovider",
           "-q", "--hypothesis-profile=ci", f"--conformance-report={report}", *args]
    for s in specs:
        cmd += ["--adapter", s]
    r = subprocess.run(cmd, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=900)
    data = json.loads(report.read_text()) if report.exists() else {"results": []}
    return r, {rec["adapter"]: rec for rec in data["results"]}, data


def headline(rec):
    """A failed fingerprint record's reason: its first problem (and how many more)."""
    return rec["reason"]


def problems(data, adapter):
    """Every problem the check found for `adapter`, in order: the report's findings entries."""
    return [f["summary"] for f in data.get("findings", []) if f["adapter"] == adapter and f["expected"] is False]


def test_planted_adapters_module_declares_every_bug():
    assert set(CAUSES) == set(PA.BUGS) == set(PA.PLANTED)
    assert PA.LSTM.semantics and PA.GRU.semantics and not PA.GRU_UNDECLARED.semantics
    assert all(info.semantics == PA.LSTM.semantics for info in PA.PLANTED.values() if info.cell == "lstm")


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    """One pytest process: the fingerprint suite on the correct adapters and every planted copy."""
    tmp = tmp_path_factory.mktemp("planted")
    specs = [f"planted_adapters:{n}" for n in CORRECT] + [spec(i) for i in PA.PLANTED.values()]
    return (*run_suite(tmp, specs), tmp)


def test_correct_adapters_pass(planted_run):
    r, recs, data, _ = planted_run
    for name in ("planted.LSTM", "planted.GRU", "planted.GRU.undeclared"):
        assert name in recs, (name, sorted(recs), r.stdout[-3000:], r.stderr[-3000:])
        assert recs[name]["outcome"] == "passed", recs[name]["reason"]
    # the correct adapters' fingerprints are in the report, the knob set together included
    knobs = {(fp["adapter"], fp["knob"]) for fp in data["fingerprints"]}
    assert ("planted.LSTM", "dropout+recurrent_dropout+layer_dropout") in knobs


@pytest.mark.parametrize("bug", sorted(CAUSES))
def test_planted_bug_fails_with_its_cause(planted_run, bug):
    _, recs, data, _ = planted_run
    rec = recs[PA.PLANTED[bug].name]
    assert rec["outcome"] == "failed", rec["reason"]
    lines = problems(data, rec["adapter"])
    assert CAUSES[bug] in headline(rec), f"{bug}: the failure should name {CAUSES[bug]!r} first: {headline(rec)}"
    assert lines and CAUSES[bug] in lines[0], f"{bug}: the first finding should name {CAUSES[bug]!r}:\n" + "\n".join(lines)
    if CAUSES[bug].startswith("forward/weights"):  # diagnosis first: no dropout property is reported
        assert not any("kept value" in line or "drop rate" in line for line in lines), lines
    assert f"seed={20261123}" in rec["repro"] and spec(PA.PLANTED[bug]) in rec["repro"]


def test_undeclared_knob_is_a_finding(planted_run):
    _, recs, data, _ = planted_run
    undeclared = [f for f in data["findings"] if f["adapter"] == "planted.GRU.undeclared"]
    assert {f["knob"] for f in undeclared} == {"dropout", "recurrent_dropout", "layer_dropout",
                                               "dropout+recurrent_dropout+layer_dropout"}
    assert all(f["summary"].startswith("semantics undeclared: measured ") for f in undeclared), undeclared
    assert not [f for f in data["findings"] if f["adapter"] == "planted.GRU"]  # declared: no such finding


def test_strict_semantics_fails_an_undeclared_knob(tmp_path):
    r, recs, _ = run_suite(tmp_path, ["planted_adapters:GRU_UNDECLARED"], "--strict-semantics", k="undeclared")
    rec = recs["planted.GRU.undeclared"]
    assert r.returncode == 1 and rec["outcome"] == "failed", r.stdout[-2000:]
    assert "semantics undeclared (--strict-semantics): measured" in headline(rec)


def test_semantics_file_copied_from_the_measured_block(planted_run, tmp_path):
    """The author copies the measured properties into a --semantics file: the path passes and is
    declared; a file with one property changed fails naming it."""
    _, _, data, _ = planted_run
    blocks = [fp for fp in data["fingerprints"] if fp["adapter"] == "planted.GRU.undeclared"]
    assert len(blocks) == 4

    def toml(change=None):
        out = []
        for fp in blocks:
            out += ["[[fingerprint]]", f'adapter = "{fp["adapter"]}"', f'knob = "{fp["knob"]}"',
                    "[fingerprint.properties]"]
            for prop, value in fp["properties"].items():
                value = change.get((fp["knob"], prop), value) if change else value
                out.append(f'"{prop}" = "{value}"')
            out.append("")
        return "\n".join(out)

    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(toml())
    bad.write_text(toml({("recurrent_dropout", "recurrent"): "per sequence, per gate, rows independent, "
                                                            "kept value 1/(1-p)"}))
    (tmp_path / "g").mkdir()
    r, recs, rep = run_suite(tmp_path / "g", ["planted_adapters:GRU_UNDECLARED"], "--semantics", str(good),
                             "--strict-semantics", k="undeclared")
    assert recs["planted.GRU.undeclared"]["outcome"] == "passed", recs["planted.GRU.undeclared"]["reason"]
    assert not [f for f in rep.get("findings", []) if f["adapter"] == "planted.GRU.undeclared"]
    (tmp_path / "b").mkdir()
    r, recs, rep = run_suite(tmp_path / "b", ["planted_adapters:GRU_UNDECLARED"], "--semantics", str(bad),
                             k="undeclared")
    rec = recs["planted.GRU.undeclared"]
    assert rec["outcome"] == "failed"
    want = "recurrent_dropout: recurrent: gates shared instead of per gate (declared in bad.toml#2)"
    assert want in headline(rec), (headline(rec), problems(rep, rec["adapter"]))


def test_repro_of_a_planted_bug_runs_in_a_fresh_interpreter(planted_run):
    _, recs, _, tmp = planted_run
    rec = recs[PA.PLANTED["mask_on_c"].name]
    out = subprocess.run([sys.executable, "-c", rec["repro"]], cwd=tmp, env=child_env(), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "problem(s)" in out.stdout and CAUSES["mask_on_c"] in out.stdout, out.stdout[-3000:]


def test_bad_semantics_file_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[fingerprint]]\nadapter = "x"\nknob = "dropout"\n[fingerprint.properties]\ninpt = "none"\n')
    for path, words in ((bad, "unknown property 'inpt'"), (tmp_path / "missing.toml", "no such file")):
        r = subprocess.run([sys.executable, "-m", "pytest", "suites/test_fingerprints.py", "--semantics", str(path),
                            "-p", "no:cacheprovider", "--collect-only", "-q"], cwd=ROOT, env=child_env(),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 4 and words in r.stderr and "Traceback" not in r.stderr, (r.stdout, r.stderr)


@pytest.mark.statistical
@pytest.mark.parametrize("info", [PA.LSTM, PA.GRU], ids=lambda i: i.name)
def test_twenty_seeds_raise_no_alarm(info):
    """20 RNG seeds (not the suites' default) of the correct adapters: no problem at all. The
    statistical checks' family false-alarm probability is 1e-6 per measurement (4 knob settings
    x 3 rates here, 12 per seed), so 240 measurements alarm with probability < 3e-4; the other
    invariants and the declared properties are deterministic."""
    from conformance.checks import fingerprints as C
    from conformance.results import expectations as E

    adapter = PA.make(info)
    declared = E.declared_semantics(info, info.version)
    alarms = {seed: C.check(adapter, declared, seed=seed).problems for seed in range(1, 21)}
    assert not any(alarms.values()), {s: p for s, p in alarms.items() if p}


@pytest.mark.parametrize("change, words", [
    (dict(semantics={"dropout": {"inpt": "none"}}), "AdapterInfo.semantics['dropout']: unknown property 'inpt'"),
    (dict(semantics={"dropout": {"input": "per sequense, rows independent, kept value 1/(1-p)"}}),
     "'per sequense' is not a tensor property part"),
    (dict(semantics={"dropout": {"input": "per sequence"}}), "names no rows / kept value part"),
    (dict(semantics={"dropout": {"seeds": "same seed same masks"}}), "seeds: expected one of"),
    (dict(semantics={"zoneout": {"input": "none"}}), "'zoneout' is not a dropout knob of the path"),
    (dict(semantics={"dropout+dropout": {"input": "none"}}), "is not a dropout knob of the path"),
    (dict(semantics={"*": {"input": "none"}}), "'*' holds only 'padded steps'"),
    (dict(semantics={"dropout": {"padded steps": "zero_outputs"}}), "not among the reference policies"),
    (dict(version=""), "AdapterInfo.version: expected a non-empty string or None"),
])
def test_bad_declarations_are_clear_errors(change, words):
    from dataclasses import replace

    with pytest.raises(ValueError, match=None) as e:
        replace(PA.LSTM, **change)
    assert words in str(e.value), str(e.value)


def test_gru_cannot_declare_cell_tensors():
    from dataclasses import replace

    with pytest.raises(ValueError, match="'recurrent_c' is an LSTM tensor"):
        replace(PA.GRU, semantics={"dropout": {"recurrent_c": "none"}})


def test_vocabulary_matches_the_reference():
    import reference
    from conformance.core import semantics as S
    from conformance.oracles import fingerprint as F

    assert S.POLICIES is reference.POLICIES
    assert set(F.PROBE_OF) == set(S.TENSORS)
    # every measured property of the correct adapter is in the vocabulary, and declarable as measured
    out = __import__("conformance.checks.fingerprints", fromlist=["check"]).check(PA.make(PA.LSTM), seed=7,
                                                                                  rate_checks=())
    for entry in out.entries:
        S.check_declaration(entry["properties"], "lstm", entry["knob"])


@pytest.mark.parametrize("info", [PA.LSTM, PA.GRU], ids=lambda i: i.name)
def test_a_path_without_initial_state_is_measured(info):
    """A kernel without the "initial_state" feature: the probes give no h0 / c0 (the recurrent
    probe then reads steps 1.. only) and the correct adapter conforms."""
    from dataclasses import replace

    from conformance.checks import fingerprints as C
    from conformance.results import expectations as E

    bare = replace(info, name=info.name + ".bare", features=info.features - {"initial_state"})
    out = C.check(PA.make(bare), E.declared_semantics(bare, bare.version), seed=11, rate_checks=())
    assert out.ok, out.text()
