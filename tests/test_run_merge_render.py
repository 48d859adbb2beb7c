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
            "framework": kw.pop("framework", "a"),
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
        self.ids, self.urls, self.stack, self.imgs, self.srcs, self.hrefs = set(), [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        for key in ("src", "href"):
            if key in a:
                self.urls.append(a[key])
                (self.srcs if key == "src" else self.hrefs).append(a[key])
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
    # nothing is loaded from outside: every resource (src) is a data: URI; links (href) are
    # in-page anchors or plain https links a reader may follow
    external = [u for u in page.srcs if not u.startswith("data:")]
    assert not external, external
    assert all(u.startswith(("#", "https://")) for u in page.hrefs), page.hrefs
    text = render.render_html(FULL)
    assert "url(" not in text and "@import" not in text and "<script" not in text
    if importlib.util.find_spec("matplotlib"):
        assert page.imgs and page.imgs[0].startswith("data:image/png;base64,")


def test_markdown_has_every_section_and_the_deviation_repro():
    md = render.render_markdown(FULL)
    for _, title in render.SECTIONS:
        assert f"## {title}" in md
    assert "### failed: `s.py::bad`" in md and "python -m pytest x" in md
    lines = md.splitlines()
    verdicts = lines.index("## Does it conform?")
    assert verdicts < lines.index("## Failures") < lines.index("## What each framework really does")
    assert "| a | **FAILS: 1 failed** |" in md  # failures first, above everything else
    details = render.render_details_markdown(FULL)
    assert "0.501" in details and "#### xfailed: `s.py::dev`" in details
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


def part_report(ids, deselected, variant=None, **run):
    return build_report([rec(i) for i in ids], run={"command": ["pytest", "suites"], "profile": "ci", "adapters": [],
                                                    "variant": variant, "deselected": deselected, **run})


def test_merge_with_the_runners_run():
    main = part_report(["s.py::a", "s.py::b"], ["s.py::tf"], markers="not tf_keras")
    jax = part_report(["s.py::k (keras-jax)"], ["s.py::a (keras-jax)", "s.py::b (keras-jax)"], "keras-jax", markers="keras")
    parts = [{"name": "main", "ran": True, "why": None}, {"name": "keras-jax", "ran": True, "why": None},
             {"name": "tf-keras", "ran": False, "why": "tf_keras not installed"}]
    given = {"command": ["rnn-conformance", "run", "--profile", "ci"], "profile": "ci", "seed": None, "k": None,
             "frameworks": None, "adapters": [], "parts": parts}
    m = merge_reports([("main", main), ("keras-jax", jax)], run=given)
    assert validate_report(m) == []
    assert m["run"] == {**given, "markers": None, "variant": None,
                        "deselected": ["s.py::a (keras-jax)", "s.py::b (keras-jax)", "s.py::tf"]}
    assert "merged" not in m["run"]
    with pytest.raises(MergeError, match="run: unknown run field"):
        merge_reports([("main", main)], run={"parts_left_out": []})


def test_merge_without_a_run_keeps_the_inputs_runs():
    """The `merge` subcommand (a CI matrix): common values kept, frameworks and parts combined,
    deselected ids some input ran dropped."""
    torch_job = build_report([rec("s.py::t")], run={
        "command": ["rnn-conformance", "run", "--frameworks", "torch"], "profile": "ci", "frameworks": ["torch"],
        "adapters": [], "deselected": ["s.py::k"],
        "parts": [{"name": "main", "ran": True, "why": None},
                  {"name": "keras-jax", "ran": False, "why": "keras not in --frameworks"},
                  {"name": "tf-keras", "ran": False, "why": "tf_keras not in --frameworks"}]})
    keras_job = build_report([rec("s.py::k"), rec("s.py::k (keras-jax)")], run={
        "command": ["rnn-conformance", "run", "--frameworks", "keras"], "profile": "ci", "frameworks": ["keras"],
        "adapters": ["x.y:INFO"], "deselected": ["s.py::t", "s.py::z"],
        "parts": [{"name": "main", "ran": True, "why": None}, {"name": "keras-jax", "ran": True, "why": None},
                  {"name": "tf-keras", "ran": False, "why": "tf_keras not in --frameworks"}]})
    m = merge_reports([("torch", torch_job), ("keras", keras_job)])
    assert validate_report(m) == []
    run = m["run"]
    assert run["command"] is None and run["profile"] == "ci" and run["frameworks"] == ["keras", "torch"]
    assert run["adapters"] == ["x.y:INFO"] and run["deselected"] == ["s.py::z"]
    assert run["parts"] == [{"name": "main", "ran": True, "why": None}, {"name": "keras-jax", "ran": True, "why": None},
                            {"name": "tf-keras", "ran": False, "why": "tf_keras not in --frameworks"}]
    assert run["merged"] == [torch_job["run"], keras_job["run"]]
    # a schema-2 input: its run is unknown (null); nothing common is claimed for it
    old = {k: v for k, v in build_report([rec("s.py::o")]).items() if k != "run"} | {"schema_version": 2}
    old["results"] = [{k: v for k, v in r.items() if k != "finding"} for r in old["results"]]
    m = merge_reports([("torch", torch_job), ("old", old)])
    assert validate_report(m) == [] and m["schema_version"] == 4
    assert m["run"]["merged"] == [torch_job["run"], None]
    assert m["run"]["profile"] is None and m["run"]["frameworks"] is None  # the old one may have run everything
    assert m["run"]["deselected"] == ["s.py::k"]
    # a plain pytest input (no parts) is the part of its variant
    plain = part_report(["s.py::t2 (tf-keras)"], [], variant="tf-keras")
    parts = merge_reports([("torch", torch_job), ("plain", plain)])["run"]["parts"]
    assert {p["name"]: p["ran"] for p in parts} == {"main": True, "keras-jax": False, "tf-keras": True}


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
    v2 = json.loads((tmp_path / "a.json").read_text())
    del v2["run"]
    v2["schema_version"] = 2
    v2["results"] = [{k: v for k, v in r.items() if k != "finding"} for r in v2["results"]]
    (tmp_path / "v2.json").write_text(json.dumps(v2))  # schema 2 is still read
    r = conformance("merge", tmp_path / "v2.json", tmp_path / "b.json", "--out", tmp_path / "v2out")
    assert r.returncode == 0, r.stderr
    merged = json.loads((tmp_path / "v2out" / "report.json").read_text())
    assert merged["schema_version"] == 4 and len(merged["run"]["merged"]) == 2 and merged["run"]["merged"][0] is None
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
    # The fake suite has no torch case: with --frameworks torch only the reference's own case is
    # left, so the parts are left out and the run says nothing was compared (exit 3).
    make_checkout(tmp_path)
    assert run_in(tmp_path, monkeypatch, "--frameworks", "torch") == 3
    captured = capsys.readouterr()
    assert "part keras-jax left out" in captured.out and "part tf-keras left out" in captured.out
    assert "nothing was compared: the 1 selected case(s) are the reference's own" in captured.err


def test_interrupted_run_writes_no_report(tmp_path, monkeypatch, capsys):
    make_checkout(tmp_path, "def test_a():\n    pass\ndef test_b():\n    raise KeyboardInterrupt\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.json").write_text("{}")  # an earlier run's report: set aside, not lost
    code = run_in(tmp_path, monkeypatch)
    err = capsys.readouterr().err
    assert code == 130 and "interrupted" in err and not (tmp_path / "out" / "report.json").exists()
    assert (tmp_path / "out" / "previous" / "report.json").read_text() == "{}"
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


def test_render_and_validate_take_the_report_directory(tmp_path):
    (tmp_path / "d").mkdir()
    write_report_atomic(build_report([rec("a.py::x")]), tmp_path / "d" / "report.json")
    r = conformance("render", tmp_path / "d")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "d" / "report.md").is_file() and not (tmp_path / "report.md").exists()
    r = conformance("validate", tmp_path / "d")
    assert r.returncode == 0 and "valid (1 passed)" in r.stdout


def test_reports_say_how_they_were_made():
    from conformance.results.render import render_html, render_markdown

    run = {"command": ["rnn-conformance", "run", "--frameworks", "torch"], "profile": "ci", "seed": "7",
           "frameworks": ["torch"], "adapters": [], "deselected": ["suites/a.py::x", "suites/a.py::y"],
           "parts": [{"name": "main", "ran": True, "why": None},
                     {"name": "tf-keras", "ran": False, "why": "tf_keras not in --frameworks"}]}
    report = build_report([], run=run)
    md = render_markdown(report).splitlines()
    assert "- command: rnn-conformance run --frameworks torch" in md
    assert "- hypothesis profile ci, seed 7" in md
    assert "- selection: frameworks torch; 2 case(s) deselected" in md
    assert "- parts left out: tf-keras (tf_keras not in --frameworks)" in md
    assert "<li>parts left out: tf-keras (tf_keras not in --frameworks)</li>" in render_html(report)
    assert "- command:" not in render_markdown(build_report([]))  # nothing recorded, nothing said
