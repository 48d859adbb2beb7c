"""The upgrade gate (conformance/results/gate.py, `python -m conformance gate`): every regression kind,
the exit codes 0 / 1 / 2 (missing, truncated, not JSON, other schema, nothing in common), expectations
applied, and like compared with like (a narrower run's unselected cases and unmeasured fingerprints are
"not run" / "not measured", not regressions), on synthetic reports and on real pytest runs."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.results import gate
from conformance.results.expectations import Expectation
from conformance.results.report import build_report, load_report, unknown_run, validate_report, write_report_atomic

ROOT = Path(__file__).resolve().parents[1]

pytest_plugins = ["pytester"]


def rec(rid, outcome="passed", err=None, tol=None, reason=None, backend=None):
    return {"id": rid, "suite": "s", "outcome": outcome, "max_abs_err": err, "tolerance": tol, "reason": reason,
            "backend": backend, "adapter": "a", "repro": "x"}


def report(*recs, fingerprints=None):
    r = build_report(list(recs), sections={"fingerprints": fingerprints or []})
    r["environment"]["packages"]["keras"] = "3.15.1"
    return r


BASE = report(rec("s.py::ok"), rec("s.py::err", err=1e-7, tol=1e-6), rec("s.py::dev", "xfailed", reason="known"),
              rec("s.py::gone"), rec("s.py::broken", "failed", reason="boom"), rec("s.py::skip", "skipped", reason="r"),
              fingerprints=[{"adapter": "a", "properties": {"input mask": "per sequence"}}])


def changed(**edits):
    """BASE with per-id record edits ({id: dict or None to drop}) and optional fingerprints."""
    fps = edits.pop("fingerprints", None)
    out = copy.deepcopy(BASE)
    out["results"] = [{**r, **edits[r["id"]]} if r["id"] in edits and edits[r["id"]] is not None else r
                      for r in out["results"] if not (r["id"] in edits and edits[r["id"]] is None)]
    if fps is not None:
        out["fingerprints"] = fps
    return out


def kinds(v):
    return sorted({k for k, _, _ in v.regressions})


def test_identical_reports_pass():
    v = gate.compare(BASE, copy.deepcopy(BASE))
    assert v.ok and not v.notes


@pytest.mark.parametrize("edits, kind", [
    ({"s.py::ok": {"outcome": "failed", "reason": "AssertionError"}}, "now failing"),
    ({"s.py::ok": {"outcome": "error"}}, "now failing"),
    ({"s.py::dev": {"outcome": "passed"}}, "expected deviation disappeared"),
    ({"s.py::ok": {"outcome": "xfailed"}}, "expected deviation appeared"),
    ({"s.py::err": {"max_abs_err": 2e-6}}, "error grew past its tolerance"),
    ({"s.py::gone": None}, "vanished"),
    ({"fingerprints": [{"adapter": "a", "properties": {"input mask": "per step"}}]}, "fingerprint changed"),
])
def test_each_regression_kind_is_caught(edits, kind):
    v = gate.compare(BASE, changed(**edits))
    assert kinds(v) == [kind], v.regressions


def test_improvements_and_skips_are_notes_not_regressions():
    v = gate.compare(BASE, changed(**{"s.py::broken": {"outcome": "passed"}, "s.py::skip": {"outcome": "passed"}}))
    assert v.ok and sorted(k for k, _, _ in v.notes) == ["fixed", "skip changed"]


def test_expectations_apply_as_in_pytest():
    """A raw failure that an expectation covers is an expected deviation, not a regression."""
    e = Expectation(test="s.py::ok", framework="keras", versions=">=3.15", outcome="failed", reason="known")
    cand = changed(**{"s.py::ok": {"outcome": "failed"}})
    assert kinds(gate.compare(BASE, cand)) == ["now failing"]
    assert kinds(gate.compare(BASE, cand, entries=[e])) == ["expected deviation appeared"]
    base = changed(**{"s.py::ok": {"outcome": "failed"}})
    assert gate.compare(base, cand, entries=[e]).ok  # failing before and after, covered both times
    strict = gate.compare(BASE, BASE, entries=[e], strict=True)  # it passes: the expectation is stale
    assert kinds(strict) == ["unexpected pass (strict)"]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "conformance", "gate", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_cli_exit_codes(tmp_path):
    base, same, bad = tmp_path / "base.json", tmp_path / "same.json", tmp_path / "bad.json"
    for path, rep in ((base, BASE), (same, BASE), (bad, changed(**{"s.py::ok": {"outcome": "failed"}}))):
        write_report_atomic(rep, path)
    r = cli(base, same)
    assert r.returncode == 0 and "**PASS**" in r.stdout
    r = cli(base, bad, "--out", tmp_path / "gate.md")
    assert r.returncode == 1 and "now failing" in r.stdout and "s.py::ok" in r.stdout
    assert (tmp_path / "gate.md").read_text() == r.stdout
    text = base.read_text()
    (tmp_path / "trunc.json").write_text(text[: len(text) // 2])
    (tmp_path / "garbage.json").write_text("not json at all }")
    other = json.loads(text)
    other["schema_version"] = 1
    (tmp_path / "v1.json").write_text(json.dumps(other))
    for name, words in (("missing.json", "not found"), ("trunc.json", "truncated"), ("garbage.json", "is not JSON ("),
                        ("v1.json", "schema_version 1")):
        r = cli(base, tmp_path / name)
        assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, (name, r.stderr)
        assert cli(tmp_path / name, base).returncode == 2


# ------------------------------------------------------------------ like with like: the reports' `run`

def with_run(rep, **run):
    """`rep` (deep-copied) with a plain pytest run's metadata: nothing narrowed unless given."""
    out = copy.deepcopy(rep)
    out["run"] = {**unknown_run(), "command": ["pytest", "suites"], "profile": "ci", "adapters": [],
                  "deselected": [], **run}
    assert validate_report(out) == [], validate_report(out)
    return out


def as_schema_2(rep):
    out = {k: v for k, v in copy.deepcopy(rep).items() if k not in ("run", "registry")}
    out["schema_version"] = 2
    out["results"] = [{k: v for k, v in r.items() if k != "finding"} for r in out["results"]]
    assert validate_report(out) == []
    return out


def notes(v, kind):
    return [(rid, d) for k, rid, d in v.notes if k == kind]


def test_a_deselected_case_is_not_run_not_vanished():
    cand = with_run(changed(**{"s.py::gone": None}), k="not gone", deselected=["s.py::gone"])
    v = gate.compare(BASE, cand)
    assert v.ok and v.shared == len(BASE["results"]) - 1
    assert notes(v, "not run in the candidate") == [("s.py::gone", "deselected; was passed")]
    # the same candidate without its run metadata: the case vanished
    assert kinds(gate.compare(BASE, as_schema_2(cand))) == ["vanished"]
    # deselecting another case does not excuse this one
    assert kinds(gate.compare(BASE, with_run(cand, deselected=["s.py::ok"]))) == ["vanished"]


PARTS_BASE = report(rec("s.py::ok"), rec("s.py::k (keras-jax)"), rec("s.py::k (keras-torch)"),
                    rec("s.py::t (tf-keras)"))


@pytest.mark.parametrize("parts, vanished", [
    ([{"name": "main", "ran": True, "why": None}, {"name": "keras-jax", "ran": False, "why": "jax not installed"},
      {"name": "keras-torch", "ran": True, "why": None},
      {"name": "tf-keras", "ran": False, "why": "tf_keras not in --frameworks"}], ["s.py::k (keras-torch)"]),
    ([{"name": "keras-jax", "ran": True, "why": None}], ["s.py::k (keras-jax)", "s.py::k (keras-torch)",
                                                         "s.py::t (tf-keras)"]),
    (None, ["s.py::k (keras-jax)", "s.py::k (keras-torch)", "s.py::t (tf-keras)"]),
])
def test_a_part_left_out_is_not_run(parts, vanished):
    cand = with_run(report(rec("s.py::ok")), parts=parts)
    v = gate.compare(PARTS_BASE, cand)
    assert sorted(rid for k, rid, _ in v.regressions if k == "vanished") == vanished
    excused = [rid for rid, _ in notes(v, "not run in the candidate")]
    assert sorted(excused + vanished) == ["s.py::k (keras-jax)", "s.py::k (keras-torch)", "s.py::t (tf-keras)"]
    if parts and parts[0]["name"] == "main":
        assert ("s.py::k (keras-jax)", "part keras-jax not run (jax not installed); was passed") in notes(
            v, "not run in the candidate")


def test_frameworks_leave_out_other_frameworks_records():
    base = report(rec("s.py::t"), rec("s.py::f"), rec("s.py::n"), rec("s.py::t2"))
    for r, fw in zip(base["results"], ["torch", "flax.linen", None, "torch"]):
        r["framework"] = fw
    cand = with_run(base, frameworks=["torch"])
    cand["results"] = [r for r in cand["results"] if r["id"] == "s.py::t"]
    v = gate.compare(base, cand)
    assert notes(v, "not run in the candidate") == [
        ("s.py::f", "framework flax.linen not in --frameworks torch; was passed")]
    # a record of no framework, and one of a chosen framework, were meant to run: they vanished
    assert sorted(rid for _, rid, _ in v.regressions) == ["s.py::n", "s.py::t2"]
    # flax.linen counts as flax
    flax = with_run(base, frameworks=["flax", "torch"])
    flax["results"] = [r for r in flax["results"] if r["id"] != "s.py::f"]
    assert kinds(gate.compare(base, flax)) == ["vanished"]


def test_new_cases_the_baseline_did_not_run_are_told_apart():
    base = with_run(changed(**{"s.py::gone": None}), deselected=["s.py::gone"])
    v = gate.compare(base, with_run(BASE))
    assert v.ok and notes(v, "not run in the baseline") == [("s.py::gone", "deselected; now passed")]
    assert not notes(v, "new")
    v = gate.compare(changed(**{"s.py::gone": None}), BASE)
    assert notes(v, "new") == [("s.py::gone", "passed")] and not notes(v, "not run in the baseline")


def test_schema_2_baseline_against_schema_3_candidate():
    old = as_schema_2(BASE)
    narrow = with_run(changed(**{"s.py::gone": None}), deselected=["s.py::gone"])
    v = gate.compare(old, narrow)
    assert v.ok and [rid for rid, _ in notes(v, "not run in the candidate")] == ["s.py::gone"]
    assert kinds(gate.compare(old, with_run(changed(**{"s.py::gone": None})))) == ["vanished"]
    assert "selection: unknown" in gate.markdown(v, old, narrow, names=("old", "new"))


def test_reports_that_share_no_case_are_refused():
    a = with_run(report(rec("s.py::a")), k="a", deselected=["s.py::b"])
    b = with_run(report(rec("s.py::b")), k="b", deselected=["s.py::a"])
    with pytest.raises(gate.GateError, match=r"^the reports share no case: baseline ran 1 case\(s\) \(-k 'a'\), "
                                             r"candidate ran 1 case\(s\) \(-k 'b'\)$"):
        gate.compare(a, b)


FPS = [{"id": "s.py::ok", "adapter": "a", "backend": None, "knob": "dropout",
        "properties": {"input": "per step", "padded steps": "zeros"}},
       {"id": "s.py::ok", "adapter": "a", "backend": None, "knob": "dropout+recurrent_dropout",
        "properties": {"input": "per sequence", "padded steps": "zeros"}},
       {"id": "s.py::dev", "adapter": "k", "backend": "jax", "knob": None, "properties": {"dropout": "no knob declared"}}]


def test_fingerprint_not_measured_is_not_a_regression():
    base = changed(fingerprints=FPS)
    cand = changed(fingerprints=FPS[:2])  # the candidate did not measure k on jax
    v = gate.compare(base, cand)
    assert v.ok and v.fingerprints_compared == 2
    assert notes(v, "fingerprint not measured in the candidate") == [("k (jax)", "measured in the baseline only")]
    assert gate.compare(cand, base).ok
    # a property one side did not measure is not a change
    fewer = copy.deepcopy(FPS)
    del fewer[0]["properties"]["padded steps"]
    v = gate.compare(base, changed(fingerprints=fewer))
    assert v.ok and notes(v, "property not measured") == [("a [dropout]", "padded steps: measured in the baseline only")]
    # an entry whose test the report does not record (not run) measured nothing
    gone = changed(**{"s.py::dev": None}, fingerprints=FPS)
    gone = with_run(gone, deselected=["s.py::dev"])
    gone["fingerprints"] = FPS  # an entry of a test that is not in the results
    v = gate.compare(base, gone)
    assert v.ok and [rid for rid, _ in notes(v, "fingerprint not measured in the candidate")] == ["k (jax)"]


def test_fingerprints_compare_per_knob():
    """The first knob's change is caught although a later knob of the same adapter sets the same property."""
    edited = copy.deepcopy(FPS)
    edited[0]["properties"]["input"] = "per sequence"
    v = gate.compare(changed(fingerprints=FPS), changed(fingerprints=edited))
    assert v.regressions == [("fingerprint changed", "a [dropout]", "input: 'per step' -> 'per sequence'")]


def test_markdown_starts_with_what_was_compared():
    cand = with_run(changed(**{"s.py::gone": None}), frameworks=["torch"], deselected=["s.py::gone"])
    v = gate.compare(BASE, cand)
    text = gate.markdown(v, BASE, cand, names=("base.json", "cand.json"))
    lines = text.splitlines()
    assert lines[2] == ("compared 5 case(s) present in both; 1 not run in the candidate (--frameworks torch); "
                        "0 vanished; 0 new; fingerprints: 1 compared, 0 measured on one side only.")
    assert "  - selection: unknown (a report without `run` metadata" in text  # BASE: build_report's unknown run
    assert ("  - selection: command `pytest suites`; profile `ci`; seed –; frameworks torch; -k –; -m –; "
            "1 deselected") in text
    assert "## Not compared (not run or not measured on one side) (1 not run in the candidate)" in text


# ------------------------------------------------------------------ real pytest runs, gated

SUITE = '''
import pytest

@pytest.mark.framework("torch")
@pytest.mark.parametrize("n", NS)
def test_torch(n, conformance_record, conformance_section):
    conformance_record(framework="torch", adapter="torch.nn.LSTM")
    if n == 1:
        conformance_section("fingerprints", adapter="torch.nn.LSTM", backend=None, knob="dropout",
                            properties={"input": "per step"}, rates=[])

@pytest.mark.framework("keras")
@pytest.mark.parametrize("n", [1, 2])
def test_keras(n, conformance_record, conformance_section):
    conformance_record(framework="keras", adapter="keras.layers.LSTM")
    if n == 1:
        conformance_section("fingerprints", adapter="keras.layers.LSTM", backend="tensorflow", knob="dropout",
                            properties={"input": "per sequence"}, rates=[])

@pytest.mark.framework("reference")
def test_plain():
    pass
'''


@pytest.fixture
def runs(pytester, monkeypatch):
    """run(name, *args, ns=[1, 2]): pytest over the small suite above, its report in NAME/report.json."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    (pytester.path / "no-expectations").mkdir()

    def run(name, *args, ns=(1, 2)):
        pytester.makepyfile(test_fw=SUITE.replace("NS", repr(list(ns))))
        result = pytester.runpytest_subprocess("-p", "conformance.entry.plugin", "-p", "no:cacheprovider",
                                               f"--conformance-report={name}/report.json",
                                               "--hypothesis-profile=default", *args)
        assert result.ret == 0, result.stdout.str()
        return pytester.path / name

    def gate_cli(base, cand):
        return cli(base, cand, "--expectations", pytester.path / "no-expectations")

    run.gate = gate_cli
    return run


def test_gate_of_real_runs_narrower_vanished_disjoint(runs):
    full, torch_only = runs("full"), runs("torch", "--frameworks", "torch")
    assert load_report(torch_only)["run"]["deselected"] == ["test_fw.py::test_keras[1]", "test_fw.py::test_keras[2]"]
    r = runs.gate(full, torch_only)  # directories stand for their report.json
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[2] == ("compared 3 case(s) present in both; 2 not run in the candidate "
                                        "(--frameworks torch); 0 vanished; 0 new; fingerprints: 1 compared, "
                                        "1 measured on one side only.")
    assert "| not run in the candidate | `test_fw.py::test_keras[2]` | deselected; was passed |" in r.stdout
    assert "| fingerprint not measured in the candidate | `keras.layers.LSTM (tensorflow) [dropout]` |" in r.stdout
    assert "**PASS**" in r.stdout and "vanished |" not in r.stdout
    # and the other way round: the full run's extra cases are ones the narrower baseline did not run
    r = runs.gate(torch_only, full)
    assert r.returncode == 0 and "2 not run in the baseline (--frameworks torch)" in r.stdout
    # a case the narrower run should have run, and did not: still a regression
    fewer = runs("fewer", "--frameworks", "torch", ns=[1])
    r = runs.gate(full, fewer)
    assert r.returncode == 1 and "| vanished | `test_fw.py::test_torch[2]` | was passed |" in r.stdout
    assert "compared 2 case(s) present in both; 2 not run in the candidate (--frameworks torch); 1 vanished" in r.stdout
    # nothing in common: refused, exit 2, one line
    keras_only = runs("keras", "-k", "keras")
    r = runs.gate(fewer, keras_only)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == ["gate: the reports share no case: baseline ran 2 case(s) (--frameworks torch), "
                                     "candidate ran 2 case(s) (-k 'keras')"]


def test_a_different_kernel_is_a_change_not_a_regression():
    b = report({**rec("s.py::k"), "kernel": "CPU: fused jax gru"}, rec("s.py::n"))
    c = report({**rec("s.py::k"), "kernel": "CPU: generic RNN loop"}, rec("s.py::n"))
    v = gate.compare(b, c)
    assert v.ok and v.kernels_compared == 1
    assert notes(v, "kernel changed") == [("s.py::k", "CPU: fused jax gru -> CPU: generic RNN loop")]
    assert "kernels: 1 compared, 1 changed" in gate.compared_line(v, b, c)
    assert gate.compare(b, b).kernels_compared == 1 and not notes(gate.compare(b, b), "kernel changed")


def _ratio(ratio, iqr, comparison="input dropout vs off"):
    return {"id": "s.py::bench", "comparison": comparison, "adapter": "torch.nn.LSTM", "size": "medium",
            "mode": "forward", "ratio": ratio, "ratio_iqr": iqr, "rounds": 9, "threads": "one"}


@pytest.mark.parametrize("before, after, moved", [
    ((1.10, 0.05), (1.60, 0.05), True),   # +45 %, intervals apart: listed
    ((1.10, 0.05), (1.30, 0.05), False),  # +18 %: within RATIO_CHANGE
    ((1.10, 0.40), (1.60, 0.40), False),  # +45 % but the IQRs overlap: noise
    ((2.00, 0.05), (1.20, 0.05), True),   # -40 %: listed too
])
def test_benchmark_ratios_that_moved_are_listed(before, after, moved):
    b = build_report([rec("s.py::bench")], sections={"benchmarks": [_ratio(*before), _ratio(1.0, 0.01, "other")]})
    c = build_report([rec("s.py::bench")], sections={"benchmarks": [_ratio(*after), _ratio(1.0, 0.01, "other")]})
    v = gate.compare(b, c)
    assert v.ok and v.benchmarks_compared == 2
    got = notes(v, "benchmark ratio changed")
    assert bool(got) == moved, got
    if moved:
        assert got[0][0] == "torch.nn.LSTM medium forward: input dropout vs off"
        assert f"{before[0]:.2f}x" in got[0][1] and f"{after[0]:.2f}x" in got[0][1]


def test_a_finding_that_starts_to_reproduce_is_told_apart_from_a_fix():
    gone = {**rec("suites/test_findings.py::test_repro[f-1]", "failed",
                  reason="finding f-1 no longer reproduces on keras 3.14.1: fixed?"), "suite": "test_findings",
            "finding": "f-1"}
    back = {**rec("suites/test_findings.py::test_repro[f-1]", reason="reproduced on keras 3.15.1 in 2 s"),
            "suite": "test_findings", "finding": "f-1"}
    v = gate.compare(report(gone), report(back))
    assert v.ok and notes(v, gate.FINDING_APPEARED) == [("suites/test_findings.py::test_repro[f-1]",
                                                         "f-1: reproduced on keras 3.15.1 in 2 s")]
    assert not notes(v, "fixed")
    v = gate.compare(report(back), report(gone))
    assert v.ok and notes(v, gate.FINDING_FIXED)
