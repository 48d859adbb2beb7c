"""`python -m conformance run` in parts, `merge`, and the rendered reports (md, html, junit)."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conformance.results import render
from conformance.results.merge import MergeError, merge_reports
from conformance.results.report import build_report, validate_report, write_report_atomic

ROOT = Path(__file__).resolve().parents[1]


def rec(rid, outcome="passed", **kw):
    return {"id": rid, "suite": rid.split(".py")[0], "outcome": outcome, "adapter": kw.pop("adapter", "a.LSTM"),
            "repro": "python -m pytest x", **kw}


FULL = build_report(
    [rec("s.py::ok", max_abs_err=1e-7, tolerance=1e-6, kernel="oneDNN (3 cases)"),
     rec("s.py::bad", "failed", reason="AssertionError: differs", seed=7, max_abs_err=0.1, tolerance=1e-6),
     rec("s.py::dev", "xfailed", reason="expected deviation: known [https://example.org/1]"),
     rec("s.py::skip", "skipped", reason="CUDA is not available", adapter="b.GRU")],
    sections={"fingerprints": [{"adapter": "a.LSTM", "properties": {"input mask": "per sequence", "scale": "1/(1-p)"},
                                "rates": [{"kind": "input", "configured": 0.5, "observed": 0.501, "ci_low": 0.49,
                                           "ci_high": 0.51, "n": 100000}]}],
              "error_growth": [{"adapter": "a.LSTM", "dtype": "float32", "steps": t, "max_abs_err": 1e-7 * t ** 0.5,
                                "tolerance": 1e-6 * t ** 0.5} for t in (1, 4, 16)],
              "benchmarks": [{"adapter": "a.LSTM", "size": "small", "median_ms": 1.5, "iqr_ms": 0.1}],
              "claims": [{"source": "000.md", "claim": "x", "verdict": "refuted", "evidence": "y", "test": "t"}]})


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.urls, self.stack, self.imgs = set(), [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        for key in ("src", "href"):
            if key in a:
                self.urls.append(a[key])
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag not in ("meta", "img", "br", "link"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, f"unbalanced </{tag}>"


def test_html_is_self_contained_and_has_every_section():
    page = Page()
    page.feed(render.render_html(FULL))
    page.close()
    assert not page.stack, page.stack
    assert {sid for sid, _ in render.SECTIONS} <= page.ids
    external = [u for u in page.urls if not (u.startswith("#") or u.startswith("data:"))]
    assert not external, external
    text = render.render_html(FULL)
    assert "url(" not in text and "@import" not in text and "<script" not in text
    if importlib.util.find_spec("matplotlib"):
        assert page.imgs and page.imgs[0].startswith("data:image/png;base64,")


def test_markdown_has_every_section_and_the_deviation_repro():
    md = render.render_markdown(FULL)
    for _, title in render.SECTIONS:
        assert f"## {title}" in md
    assert "### failed: `s.py::bad`" in md and "python -m pytest x" in md and "0.501" in md
    empty = render.render_markdown(build_report([]))
    assert "No fingerprints in this report." in empty and "No benchmarks in this report." in empty


def test_junit_counts():
    root = ET.fromstring(render.render_junit(FULL))
    suite = root.find("testsuite[@name='s']")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "2")
    assert suite.find("testcase[@name='s.py::bad']/failure").get("message") == "AssertionError: differs"


def test_merge_concatenates_and_refuses_duplicates():
    a = build_report([rec("a.py::x")], sections={"claims": [{"claim": "1"}]})
    b = build_report([rec("b.py::y", "failed", reason="r")], sections={"claims": [{"claim": "2"}]})
    m = merge_reports([("a", a), ("b", b)])
    assert not validate_report(m)
    assert [r["id"] for r in m["results"]] == ["a.py::x", "b.py::y"]
    assert [p["name"] for p in m["parts"]] == ["a", "b"] and len(m["claims"]) == 2
    assert [p["name"] for p in merge_reports([("m", m)])["parts"]] == ["a", "b"]  # nested merges keep parts
    with pytest.raises(MergeError, match="duplicate id 'a.py::x'"):
        merge_reports([("a", a), ("again", a)])
    broken = dict(a, results=[{"id": "z"}])
    with pytest.raises(MergeError, match="not a valid report"):
        merge_reports([("a", a), ("broken", broken)])


def conformance(*args, cwd=ROOT, env=None):
    return subprocess.run([sys.executable, "-m", "conformance", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=env)


def test_merge_cli(tmp_path):
    write_report_atomic(build_report([rec("a.py::x")]), tmp_path / "a.json")
    write_report_atomic(build_report([rec("b.py::y")]), tmp_path / "b.json")
    r = conformance("merge", tmp_path / "a.json", tmp_path / "b.json", "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"report.json", "report.md", "report.html", "junit.xml"}
    r = conformance("merge", tmp_path / "a.json", tmp_path / "a.json", "--out", tmp_path / "dup")
    assert r.returncode == 2 and "duplicate id" in r.stderr and not (tmp_path / "dup" / "report.json").exists()
    old = json.loads((tmp_path / "a.json").read_text())
    old["schema_version"] = 1
    (tmp_path / "old.json").write_text(json.dumps(old))
    r = conformance("merge", tmp_path / "b.json", tmp_path / "old.json", "--out", tmp_path / "old")
    assert r.returncode == 2 and "schema_version 1" in r.stderr


SUITE = '''
import os, pytest
@pytest.mark.keras
@pytest.mark.framework("keras")
def test_backend(conformance_record):
    conformance_record(backend=os.environ.get("KERAS_BACKEND"))
@pytest.mark.framework("reference")
def test_plain(conformance_section):
    conformance_section("error_growth", adapter="x", steps=4)
'''


def make_checkout(tmp_path, suite=SUITE):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "test_parts.py").write_text(suite)
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")


def run_in(tmp_path, monkeypatch, *args):
    from conformance.entry import cli

    monkeypatch.setattr(cli, "ROOT", tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    return cli.main(["run", "--out", str(tmp_path / "out"), "--profile", "quick", *args])


def test_run_in_parts_one_per_keras_backend(tmp_path, monkeypatch, capsys):
    make_checkout(tmp_path)
    code = run_in(tmp_path, monkeypatch)
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    recs = {r["id"]: r for r in report["results"]}
    assert code == 0 and "==> [1/" in out
    assert report["error_growth"] == [{"id": "suites/test_parts.py::test_plain", "adapter": "x", "steps": 4}]
    assert recs["suites/test_parts.py::test_backend"]["backend"] == "tensorflow"
    if importlib.util.find_spec("keras") is None:
        assert "part keras-jax left out: keras, jax not installed" in out
        return
    for b in ("jax", "torch"):
        r = recs[f"suites/test_parts.py::test_backend (keras-{b})"]
        assert r["backend"] == b and r["repro"].startswith(f"KERAS_BACKEND={b} python -m pytest")
    assert "suites/test_parts.py::test_plain (keras-jax)" not in recs


def test_run_frameworks_leaves_parts_out(tmp_path, monkeypatch, capsys):
    make_checkout(tmp_path)
    assert run_in(tmp_path, monkeypatch, "--frameworks", "torch") == 0
    out = capsys.readouterr().out
    assert "part keras-jax left out" in out and "part tf-keras left out" in out


def test_interrupted_run_writes_no_report(tmp_path, monkeypatch, capsys):
    make_checkout(tmp_path, "def test_a():\n    pass\ndef test_b():\n    raise KeyboardInterrupt\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.json").write_text("{}")  # an earlier run's report must not survive
    code = run_in(tmp_path, monkeypatch)
    err = capsys.readouterr().err
    assert code == 2 and "interrupted" in err and not (tmp_path / "out" / "report.json").exists()
    partial = tmp_path / "out" / "parts" / "main.json.partial.jsonl"
    assert [json.loads(line)["id"] for line in partial.read_text().splitlines()] == ["suites/test_parts.py::test_a"]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_xdist_gives_identical_results(tmp_path):
    def records(*extra):
        out = tmp_path / f"r{len(extra)}.json"
        subprocess.run([sys.executable, "-m", "pytest", "suites/test_batch_permutation.py", "-k",
                        "torch.nn.GRU and not Cell and not cuda", "-p", "no:cacheprovider", "--hypothesis-profile=ci",
                        f"--conformance-report={out}", *extra], cwd=ROOT, capture_output=True, timeout=300)
        return json.loads(out.read_text())["results"]

    serial, parallel = records(), records("-n", "2")
    assert len(serial) == 6 and serial == parallel
