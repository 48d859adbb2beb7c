"""Self-tests of the findings registry (conformance/results/findings.py), its place in reports
(records' `finding`, the `registry` section, drafts) and the docs generated from it."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conformance.adapters import registry as adapters
from conformance.core import paths
from conformance.results import findings
from conformance.results.merge import merge_reports
from conformance.results.report import build_report, validate_report

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[1]

ENTRY = """
id = "keras-example-thing"
title = "Keras: an example"
frameworks = ["keras"]
backends = ["jax"]
kind = "wrong values"
versions = "keras 3.15.1"
what_happens = "it does x"
expected = "y"
why_expected = "the docs say y"
impact = "users of z"
evidence = ["suites/test_keras_padding.py::test_masked_steps"]
upstream_status = "not reported"
searched = "keras issues: 'x y'"
"""
REPRO = """import sys
try:
    import keras
except ImportError as e:
    print(f"SKIPPED: {e}")
    sys.exit(2)
print("observed x, expected y")
print("REPRODUCED: keras-example-thing")  # else NOT REPRODUCED
"""


def write(tmp_path, entry=ENTRY, repro=REPRO, name="keras-example-thing"):
    d = tmp_path / "findings"
    d.mkdir(exist_ok=True)
    (d / f"{name}.toml").write_text(textwrap.dedent(entry))
    if repro is not None:
        (d / f"{name}.py").write_text(repro)
    return d


def test_load_and_contract(tmp_path):
    (f,) = findings.load_dir(write(tmp_path))
    assert f.id == "keras-example-thing" and f.backends == ("jax",) and f.where() == "keras (jax backend)"
    assert findings.repro_problems(f) == []
    assert findings.load_dir(tmp_path / "nowhere") == []


def test_framework_names_match_the_adapter_registry():
    assert findings.FRAMEWORKS == adapters.FRAMEWORKS


@pytest.mark.parametrize("change, message", [
    (lambda e: e + 'colour = "red"\n', "unknown keys"),
    (lambda e: e.replace('kind = "wrong values"', 'kind = "bad"'), "kind must be one of"),
    (lambda e: e.replace('frameworks = ["keras"]', 'frameworks = ["kerass"]'), "unknown framework"),
    (lambda e: e.replace('id = "keras-example-thing"', 'id = "other-id"'), "must equal the file name"),
    (lambda e: e.replace('searched = "keras issues: \'x y\'"', ''), "say what was searched"),
    (lambda e: e.replace('upstream_status = "not reported"', 'upstream_status = "open"'), "needs an upstream link"),
    (lambda e: e + 'upstream = "github.com/x"\n', "https URL"),
    (lambda e: e.replace('title = "Keras: an example"', ''), "missing"),
    (lambda e: e + "[[", "not valid TOML"),
])
def test_malformed_entries_are_refused(tmp_path, change, message):
    with pytest.raises(findings.FindingError, match=message):
        findings.load_dir(write(tmp_path, change(ENTRY)))


def test_a_missing_repro_and_stray_python_are_refused(tmp_path):
    with pytest.raises(findings.FindingError, match="repro keras-example-thing.py is missing"):
        findings.load_dir(write(tmp_path, repro=None))
    d = write(tmp_path)
    (d / "helpers.py").write_text("x = 1\n")
    with pytest.raises(findings.FindingError, match="Python files without an entry"):
        findings.load_dir(d)


def test_repro_problems_catch_project_imports_and_length(tmp_path):
    bad = "import numpy\nfrom conformance.adapters import registry\nimport reference\n" + "x = 1\n" * 50
    (f,) = findings.load_dir(write(tmp_path, repro=bad))
    problems = findings.repro_problems(f)
    assert any("'conformance.adapters'" in p for p in problems) and any("'reference'" in p for p in problems)
    assert any("lines (at most" in p for p in problems) and any("REPRODUCED" in p for p in problems)


@pytest.mark.parametrize("out, code, verdict", [
    ("x\nREPRODUCED: a-b\n", 0, "REPRODUCED"),
    ("NOT REPRODUCED: a-b", 1, "NOT REPRODUCED"),
    ("SKIPPED: keras is not installed\n", 2, "SKIPPED"),
    ("REPRODUCED: a-b", 1, None),          # exit code disagrees
    ("REPRODUCED: other", 0, None),        # names another finding
    ("Traceback ...\nValueError: x", 1, None),
])
def test_parse_verdict(out, code, verdict):
    assert findings.parse_verdict(out, code, "a-b")[0] == verdict


def test_draft_and_docs_list(tmp_path):
    (f,) = findings.load_dir(write(tmp_path))
    env = {"python": "3.11.7", "platform": "Linux-x", "packages": {"keras": "3.15.1", "jax": "0.10.2", "numpy": "2"}}
    draft = findings.draft_markdown(f, env)
    assert draft.startswith("# Keras: an example") and "keras 3.15.1" in draft and "jax 0.10.2" in draft
    assert "```python\nimport sys" in draft and "Python 3.11.7" in draft and "## Expected" in draft
    page = "intro\n<!-- findings:keras -->\nold text\n<!-- /findings -->\nend\n"
    new = findings.update_docs(page, [f])
    assert "old text" not in new and "**Keras: an example** (`keras-example-thing`" in new and new.endswith("end\n")
    assert findings.update_docs(page.replace("keras -->", "torch -->"), [f]).count("keras-example-thing") == 0


def test_the_docs_lists_are_the_registry():
    """The finding lists in docs/ are generated (`rnn-conformance findings --docs`): they cannot
    disagree with the registry."""
    entries = findings.load_dir(paths.FINDINGS)
    stale = [p.name for p in sorted((ROOT / "docs").glob("*.md"))
             if findings.update_docs(p.read_text(encoding="utf-8"), entries) != p.read_text(encoding="utf-8")]
    assert not stale, f"run `python -m conformance findings --docs`: {stale}"


def test_registry_section_validates_and_merges_one_per_finding(tmp_path):
    (f,) = findings.load_dir(write(tmp_path))
    a = build_report([], sections={"registry": [findings.as_section(f, None)]})
    b = build_report([{"id": "suites/test_findings.py::test_repro[keras-example-thing]", "suite": "test_findings",
                       "outcome": "passed", "finding": f.id}],
                     sections={"registry": [findings.as_section(f, "reproduced")]})
    assert not validate_report(a) and not validate_report(b)
    m = merge_reports([("a", a), ("b", b)])
    assert [e["status"] for e in m["registry"]] == ["reproduced"]
    old = dict(a, schema_version=3)
    assert any("registry" in p for p in validate_report(old))  # schema 3 has no registry


def test_expected_deviation_records_carry_finding_and_measurement(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_t="def test_a():\n    assert 1 == 2, 'worst ratio 4e5'\n")
    (pytester.path / "expectations").mkdir()
    (pytester.path / "expectations" / "e.toml").write_text(
        '[[expect]]\ntest = "test_t.py::test_a"\nframework = "pytest"\noutcome = "failed"\n'
        'reason = "the framework drops c"\nfinding = "keras-example-thing"\n')
    r = pytester.runpytest_subprocess("-p", "conformance.entry.plugin", "-p", "no:cacheprovider",
                                      "--conformance-report=r.json")
    r.assert_outcomes(xfailed=1)
    report = json.loads((pytester.path / "r.json").read_text())
    (rec,) = report["results"]
    assert rec["finding"] == "keras-example-thing"
    assert rec["reason"].startswith("expected deviation: the framework drops c | measured: ")
    assert "worst ratio 4e5" in rec["reason"]
    assert {e["id"] for e in report.get("registry", [])} == {f.id for f in findings.load_dir(paths.FINDINGS)}


def test_gate_lists_a_finding_that_stopped_reproducing_apart():
    from conformance.results import gate

    rid = "suites/test_findings.py::test_repro[keras-x-y]"
    base = build_report([{"id": rid, "suite": "test_findings", "outcome": "passed", "finding": "keras-x-y"}])
    cand = build_report([{"id": rid, "suite": "test_findings", "outcome": "failed", "finding": "keras-x-y",
                          "reason": "Failed: finding keras-x-y no longer reproduces on keras 3.16.0: fixed?"}])
    v = gate.compare(base, cand)
    assert v.ok and [n[0] for n in v.notes] == [gate.FINDING_FIXED]


def test_a_repro_record_lists_its_finding_only_under_the_backends_the_registry_names():
    """The repros run in the Keras-on-tensorflow process; a JAX-only finding's repro record must
    not put that finding in the "keras (tensorflow)" verdict (the registry entry places it)."""
    from conformance.results import render

    def rec(rid, outcome, **kw):
        return {"id": rid, "suite": rid.split("::")[0], "outcome": outcome, "framework": "keras",
                "backend": "tensorflow", **kw}

    report = build_report([rec("suites/test_findings.py::test_repro[keras-jax-only]", "passed", finding="keras-jax-only"),
                           rec("suites/test_keras_padding.py::test_masked_steps[a]", "xfailed", finding="keras-tf-one"),
                           {**rec("suites/test_keras_padding.py::test_masked_steps[b]", "passed"), "backend": "jax"}])
    report["registry"] = [{"id": "keras-jax-only", "frameworks": ["keras"], "backends": ["jax"], "status": "reproduced"}]
    rows = {r["group"]: r["findings"] for r in render.verdict_rows(report)}
    assert rows == {"keras (tensorflow)": ["keras-tf-one"], "keras (jax)": ["keras-jax-only"]}, rows


def test_a_finding_whose_repro_did_not_run_is_no_verdict():
    """A run of the benchmarks or of the GPU cases carries the registry but runs no repro (status
    None, "skipped: ..."): its verdicts speak of its own cases, not of the registry's findings."""
    from conformance.results import render

    report = build_report([{"id": "suites/test_bench.py::test_bench_path[t]", "suite": "test_bench", "outcome": "passed",
                            "framework": "keras", "backend": "jax"}])
    entry = {"id": "keras-jax-only", "frameworks": ["keras"], "backends": ["jax"]}
    for status, verdict, found in ((None, "conforms", []), ("skipped: keras is not installed", "conforms", []),
                                   ("reproduced", "known deviations", ["keras-jax-only"])):
        report["registry"] = [{**entry, "status": status}]
        (row,) = render.verdict_rows(report)
        assert (row["verdict"], row["findings"]) == (verdict, found), (status, row)
