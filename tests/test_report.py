"""report.json: build, validate, atomic write, load, and the schema document kept in sync."""
import json
import os
import re
from pathlib import Path

import pytest

from conformance.results.report import (
    ENVIRONMENT_KEYS, OUTCOMES, PACKAGES, RECORD_KEYS, RUN_KEYS, RUN_PART_KEYS, SCHEMA_VERSION, ReportError,
    build_report, compared, load_report, part_name, run_of, unknown_run, validate_report, write_report_atomic,
)

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DOC = ROOT / "docs" / "report-schema.md"


def sample():
    return build_report([
        {"id": "suites/test_a.py::test_ok", "suite": "test_a", "outcome": "passed",
         "framework": "torch", "max_abs_err": 1.5e-7, "tolerance": 1e-5, "seed": 3},
        {"id": "suites/test_a.py::test_skip", "suite": "test_a", "outcome": "skipped",
         "reason": "torch is not installed"},
    ])


def test_build_fills_every_key_and_validates():
    report = sample()
    assert report["schema_version"] == SCHEMA_VERSION
    assert [list(r) for r in report["results"]] == [list(RECORD_KEYS)] * 2
    assert report["results"][1]["max_abs_err"] is None
    assert set(report["environment"]) == set(ENVIRONMENT_KEYS)
    assert set(report["environment"]["packages"]) == set(PACKAGES)
    assert report["environment"]["packages"]["pytest"] == pytest.__version__
    assert validate_report(report) == []


def test_round_trip_and_no_temp_files(tmp_path):
    report = sample()
    path = tmp_path / "out" / "report.json"
    write_report_atomic(report, path)
    write_report_atomic(report, path)  # replacing an existing report works too
    assert load_report(path) == report
    assert os.listdir(path.parent) == ["report.json"]


def test_failed_write_keeps_old_report_and_leaves_no_temp(tmp_path):
    path = tmp_path / "report.json"
    write_report_atomic(sample(), path)
    before = path.read_text()
    bad = sample()
    bad["results"][0]["max_abs_err"] = float("nan")  # JSON cannot hold it: the write fails
    with pytest.raises(ValueError):
        write_report_atomic(bad, path)
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["report.json"]


@pytest.mark.parametrize("content, message", [
    (None, "not found"),
    ("", "empty"),
    ('{"schema_version": 1, "results": [', "truncated"),
    ('{"schema_version": 3, "results": [{"id": "suites/x.py::y', "truncated"),  # cut inside a string
    ('{"schema_version": 3, "run": {"k": nu', "truncated"),  # cut inside a literal
    ('{"schema_version": 3,\n "created"', "truncated"),
    ("{nonsense}", r"report.json is not JSON \(line 1, column 2: Expecting property name"),
    ("hello, world", r"report.json is not JSON \(line 1, column 1: Expecting value\)"),
    ('{"schema_version": 3} {"again": 1}', r"is not JSON \(line 1, column 23: Extra data\)"),
    ("[1, 2]", "not a JSON object"),
    ('{"schema_version": 1}', r"schema_version 1; this tool reads versions 2, 3, 4"),
    ('{"schema_version": 5}', "schema_version 5"),
    ('{"schema_version": "3"}', "schema_version '3'"),
    ('{"results": []}', "schema_version None"),
])
def test_load_errors_are_clear(tmp_path, content, message):
    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ReportError, match=message):
        load_report(path)


@pytest.mark.parametrize("content", ["hello, world", "{nonsense}", '{"a": 1,, "b": 2}'])
def test_not_json_is_never_called_truncated(tmp_path, content):
    path = tmp_path / "report.json"
    path.write_text(content)
    with pytest.raises(ReportError) as e:
        load_report(path)
    assert "is not JSON" in str(e.value) and "truncated" not in str(e.value)


def test_directory_means_its_report_json(tmp_path):
    write_report_atomic(sample(), tmp_path / "report.json")
    assert load_report(tmp_path) == load_report(tmp_path / "report.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match=r"report not found: .*empty/report\.json"):
        load_report(tmp_path / "empty")


def as_schema_2(report):
    old = {k: v for k, v in report.items() if k not in ("run", "registry")}
    old["schema_version"] = 2
    old["results"] = [{k: v for k, v in r.items() if k != "finding"} for r in old["results"]]
    return old


def test_schema_2_reports_still_load_with_unknown_run(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps(as_schema_2(sample())))
    old = load_report(path)
    assert old["schema_version"] == 2 and "run" not in old and validate_report(old) == []
    assert run_of(old) == unknown_run() == dict.fromkeys(RUN_KEYS)
    # the committed upgrade reports were written as schema 2
    for name in ("keras314", "keras315"):
        committed = load_report(ROOT / "reports" / "upgrade" / name)
        assert committed["schema_version"] == 2 and validate_report(committed) == []
    # a schema-2 report with a run, or a schema-3 one without, is invalid
    assert "unknown top-level key 'run' (schema version 2 has none; version 3 has)" in validate_report(
        {**old, "run": unknown_run()})
    assert validate_report(as_schema_2(sample()) | {"schema_version": 3}) == ["missing top-level key 'run'"]


def test_build_report_run():
    r = build_report([], run={"k": "torch", "deselected": ["a.py::x"]})
    assert list(r["run"]) == list(RUN_KEYS) and r["run"]["k"] == "torch" and r["run"]["command"] is None
    assert build_report([])["run"] == unknown_run() and validate_report(r) == []
    with pytest.raises(ValueError, match="unknown run field"):
        build_report([], run={"keyword": "torch"})


def test_compared_counts_what_was_compared():
    outcomes = ["passed", "failed", "skipped", "xfailed", "xpassed", "error", "skipped", "passed"]
    r = build_report([{"id": f"t.py::{i}", "suite": "t", "outcome": o} for i, o in enumerate(outcomes)])
    assert compared(r) == 6
    assert compared(build_report([])) == 0


@pytest.mark.parametrize("rid, part", [
    ("suites/a.py::t[x]", "main"), ("suites/a.py::t[x] (keras-jax)", "keras-jax"),
    ("suites/a.py::t[a (b)] (tf-keras)", "tf-keras"), ("<collection>", "main"),
])
def test_part_name(rid, part):
    assert part_name(rid) == part


def test_truncated_real_report(tmp_path):
    path = tmp_path / "report.json"
    write_report_atomic(sample(), path)
    path.write_text(path.read_text()[:-40])
    with pytest.raises(ReportError, match="truncated"):
        load_report(path)


def _problems_after(change):
    report = sample()
    change(report)
    return validate_report(json.loads(json.dumps(report)))


@pytest.mark.parametrize("change, expected", [
    (lambda r: r["results"][0].update(outcome="crashed"), "outcome must be one of"),
    (lambda r: r["results"][0].pop("tolerance"), "missing keys ['tolerance']"),
    (lambda r: r["results"][0].update(colour="red"), "unknown keys ['colour']"),
    (lambda r: r["results"][0].update(max_abs_err="small"), "max_abs_err must be a number"),
    (lambda r: r["results"][0].update(max_abs_err=True), "max_abs_err must be a number"),
    (lambda r: r["results"][0].update(seed=1.5), "seed must be an integer"),
    (lambda r: r["results"][0].update(framework=3), "framework must be a string"),
    (lambda r: r["results"][0].update(id=""), "id must be a non-empty string"),
    (lambda r: r["results"][1].update(id=r["results"][0]["id"]), "duplicate id"),
    (lambda r: r.update(created="yesterday"), "ISO-8601"),
    (lambda r: r.update(created="2026-01-01T00:00:00+02:00"), "UTC"),
    (lambda r: r.update(schema_version=7), "schema_version must be 4"),
    (lambda r: r.pop("run"), "missing top-level key 'run'"),
    (lambda r: r.update(run=[]), "run must be an object"),
    (lambda r: r["run"].pop("deselected"), "run: missing key 'deselected'"),
    (lambda r: r["run"].update(when="now"), "run: unknown keys ['when']"),
    (lambda r: r["run"].update(seed=123), "run.seed must be a string or null"),
    (lambda r: r["run"].update(k=["torch"]), "run.k must be a string or null"),
    (lambda r: r["run"].update(frameworks="torch"), "run.frameworks must be a list of strings or null"),
    (lambda r: r["run"].update(command="pytest -k x"), "run.command must be a list of strings"),
    (lambda r: r["run"].update(deselected=["b", "a"]), "run.deselected must be sorted, without duplicates"),
    (lambda r: r["run"].update(deselected=["a", "a"]), "run.deselected must be sorted, without duplicates"),
    (lambda r: r["run"].update(parts={"main": True}), "run.parts must be a list of objects or null"),
    (lambda r: r["run"].update(parts=[{"name": "main", "ran": True}]), "run.parts[0] must be an object with exactly"),
    (lambda r: r["run"].update(parts=[{"name": "main", "ran": "yes", "why": None}]), "run.parts[0].ran must be true"),
    (lambda r: r["run"].update(parts=[{"name": "", "ran": False, "why": 3}]), "run.parts[0].why must be a string"),
    (lambda r: r["run"].update(merged={}), "run.merged must be a list"),
    (lambda r: r["run"].update(merged=[None, {"k": None}]), "run.merged[1]: missing key 'command'"),
    (lambda r: r.pop("environment"), "missing top-level key 'environment'"),
    (lambda r: r["environment"].update(cpu_count="2"), "cpu_count"),
    (lambda r: r["environment"]["packages"].update(torch=2), "packages['torch']"),
    (lambda r: r.update(results={}), "results must be a list"),
])
def test_validate_catches(change, expected):
    problems = _problems_after(change)
    assert any(expected in p for p in problems), problems


def test_validate_non_object():
    assert validate_report([]) == ["report must be a JSON object, got list"]


def test_schema_doc_names_every_field():
    """docs/report-schema.md documents every key and outcome that validate_report knows."""
    doc = SCHEMA_DOC.read_text()
    documented = set(re.findall(r"`([a-z_.\-]+)`", doc))
    names = {"schema_version", "created", "environment", "results", "run", *RECORD_KEYS, *OUTCOMES,
             *(f"environment.{k}" for k in ENVIRONMENT_KEYS), *PACKAGES,
             *(f"run.{k}" for k in RUN_KEYS), "run.merged", *RUN_PART_KEYS}
    assert names - documented == set()


def test_sections_are_validated():
    from conformance.results.report import build_report

    r = build_report([], sections={"claims": [{"claim": "c"}], "benchmarks": []})
    assert "claims" in r and "benchmarks" not in r and validate_report(r) == []
    assert validate_report({**r, "claims": {"a": 1}}) == ["claims must be a list of objects"]
    assert validate_report({**r, "extra": []}) == ["unknown top-level key 'extra'"]
    with pytest.raises(ValueError, match="unknown report section"):
        build_report([], sections={"nonsense": [{}]})


def _fp(adapter, knob, backend=None, **props):
    base = {"input": "none", "recurrent": "none", "output": "none", "evaluation mode": "nothing dropped"}
    return {"adapter": adapter, "knob": knob, "rate": 0.5, "backend": backend, "properties": {**base, **props}}


def test_dropout_matrix_merges_alike_paths_and_shortens_hidden_cells():
    from conformance.results import render

    step = "per step, gates shared, rows independent, kept value 1/(1-p)"
    report = {"fingerprints": [
        _fp("tf.raw_ops.BlockLSTM", "tf.nn.dropout(y)", input="unknown (output masked)", output=step),
        _fp("tf.raw_ops.BlockLSTMV2", "tf.nn.dropout(y)", input="unknown (output masked)", output=step),
        _fp("tf.raw_ops.BlockLSTMV2", "tf.nn.dropout(x)", input=step),
        _fp("flax.linen.LSTMCell", "nn.Dropout(x_t)", input=step),  # another framework: its own row
    ]}
    _, (header, rows), _ = render.semantics_tables(report)
    by = {(r[1], r[2]): dict(zip(header, r)) for r in rows}
    merged = by[("tf.raw_ops.BlockLSTM, tf.raw_ops.BlockLSTMV2", "tf.nn.dropout(y)=0.5")]
    assert merged["input"] == "? (output)" and merged["output"] == "step, shared, rows, x1/(1-p)"
    assert ("tf.raw_ops.BlockLSTMV2", "tf.nn.dropout(x)=0.5") in by  # measured differently: not merged
    assert ("flax.linen.LSTMCell", "nn.Dropout(x_t)=0.5") in by and len(rows) == 3
    assert render.short_cell("unknown (input masked)") == "?"
    html = render.render_html({**sample(), "fingerprints": report["fingerprints"]})
    assert "tf.raw_ops.BlockLSTM, tf.raw_ops.BlockLSTMV2" in html and "An empty cell" in html
