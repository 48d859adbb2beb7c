"""The upgrade gate (conformance/results/gate.py, `python -m conformance gate`): every regression kind,
the exit codes 0 / 1 / 2 (missing, truncated, unparseable, other schema), expectations applied."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.results import gate
from conformance.results.expectations import Expectation
from conformance.results.report import build_report, write_report_atomic

ROOT = Path(__file__).resolve().parents[1]


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
