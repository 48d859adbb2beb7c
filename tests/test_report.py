"""report.json: build, validate, atomic write, load, and the schema document kept in sync."""
import json
import os
import re
from pathlib import Path

import pytest

from conformance.results.report import (
    ENVIRONMENT_KEYS, OUTCOMES, PACKAGES, RECORD_KEYS, SCHEMA_VERSION, ReportError, build_report,
    load_report, validate_report, write_report_atomic,
)

SCHEMA_DOC = Path(__file__).resolve().parent.parent / "docs" / "report-schema.md"


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
    ("{nonsense}", "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"schema_version": 3}', "schema_version 3"),
    ('{"results": []}', "schema_version None"),
])
def test_load_errors_are_clear(tmp_path, content, message):
    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ReportError, match=message):
        load_report(path)


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
    (lambda r: r.update(schema_version=7), "schema_version must be 2"),
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
    names = {"schema_version", "created", "environment", "results", *RECORD_KEYS, *OUTCOMES,
             *(f"environment.{k}" for k in ENVIRONMENT_KEYS), *PACKAGES}
    assert names - documented == set()


def test_sections_are_validated():
    from conformance.results.report import build_report

    r = build_report([], sections={"claims": [{"claim": "c"}], "benchmarks": []})
    assert "claims" in r and "benchmarks" not in r and validate_report(r) == []
    assert validate_report({**r, "claims": {"a": 1}}) == ["claims must be a list of objects"]
    assert validate_report({**r, "extra": []}) == ["unknown top-level key 'extra'"]
    with pytest.raises(ValueError, match="unknown report section"):
        build_report([], sections={"nonsense": [{}]})
