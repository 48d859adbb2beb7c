"""The version matrix (`make matrix`, conformance/entry/matrix.py, conformance/results/versions.py):
its spec and constraints, the resume rule, the cells, the expectation ranges it implies, and the
committed reports/versions/ against the expectation files (every range follows from measurement)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.entry import matrix as M
from conformance.results import expectations as expect
from conformance.results import versions
from conformance.results.report import build_report

ROOT = Path(__file__).resolve().parents[1]
VERSIONS = ROOT / "reports" / "versions"
SPEC = M.load_spec()


def pins(text):
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def test_spec_envs_and_their_constraints():
    names = [e.name for e in SPEC]
    assert len(names) == len(set(names))
    constraints = (ROOT / "requirements" / "constraints.txt").read_text()
    for env in SPEC:
        mine = pins(M.constraints_for(env, constraints))
        gone = set(pins(constraints)) - set(mine)
        # exactly the varied packages' pins leave (tensorflow_cpu / tf_keras spelled with "_" there)
        assert {M._norm(p.split("==")[0]) for p in gone} == {M._norm(v) for v in env.vary}, env.name
        assert env.install[0].endswith(f"=={env.version}"), env.name  # the release itself is pinned first
    fw = {}
    for env in SPEC:
        fw.setdefault(env.framework, []).append(env.version)
    assert fw["torch"] == ["2.13.0", "2.14.1", "2.15.0"] and fw["keras"] == ["3.13.2", "3.14.1", "3.15.1"]
    assert fw["tensorflow"] == ["2.20.0", "2.21.0"] and fw["onnxruntime"] == ["1.31.1", "1.32.0"]


def test_makefile_runs_the_driver():
    make = (ROOT / "Makefile").read_text()
    assert "matrix: venv\n\t$(VENV)/bin/python -m conformance matrix" in make


def test_bad_spec_and_unknown_env_are_usage_errors(tmp_path):
    bad = tmp_path / "m.toml"
    bad.write_text('[[env]]\nframework = "torch"\nversion = "1"\nframeworks = ["torch"]\ninstall = []\ncolour = 1\n')
    with pytest.raises(M.SpecError, match="unknown key"):
        M.load_spec(bad)
    r = subprocess.run([sys.executable, "-m", "conformance", "matrix", "--only", "torch-9.9", "--dry-run"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "torch-9.9: not in" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "conformance", "matrix", "--spec", str(bad), "--dry-run"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "unknown key" in r.stderr


def test_inputs_hash_follows_the_measuring_code_and_the_env(tmp_path):
    root = tmp_path / "r"
    for top in ("requirements", "suites", "findings", "conformance/core"):
        (root / top).mkdir(parents=True)
    (root / "requirements" / "core.txt").write_text("numpy==1\n")
    (root / "requirements" / "constraints.txt").write_text("numpy==1\ntorch==1\n")
    (root / "suites" / "test_a.py").write_text("x = 1\n")
    (root / "findings" / "onnx-bug.toml").write_text('frameworks = ["onnxruntime"]\n')
    (root / "findings" / "onnx-bug.py").write_text("print(1)\n")
    env = M.Env("torch", "1", ("torch",), ("torch==1",), vary=("torch",))
    _, h = M.inputs_of(env, root)
    (root / "findings" / "onnx-bug.py").write_text("print(2)\n")  # another framework's repro
    (root / "findings" / "README.md").write_text("docs\n")
    assert M.inputs_of(env, root)[1] == h
    (root / "suites" / "test_a.py").write_text("x = 2\n")
    assert M.inputs_of(env, root)[1] != h
    other = M.Env("torch", "1", ("torch",), ("torch==2",), vary=("torch",))
    assert M.inputs_of(other, root)[1] != M.inputs_of(env, root)[1]


def test_up_to_date_says_why_not(tmp_path):
    folder = tmp_path / "torch-1"
    folder.mkdir()
    judging = ([], [])
    assert M.up_to_date(folder, "h", judging) == "no report yet"
    rep = build_report([{"id": "s.py::a", "suite": "s", "outcome": "passed", "adapter": "a", "repro": "x"}])
    (folder / "report.json").write_text(json.dumps(rep))
    now = M.judgement([], [], rep["environment"]["packages"])
    (folder / "inputs.json").write_text(json.dumps({"hash": "h", "exit": 0, "judged_with": now}))
    assert M.up_to_date(folder, "h", judging) == ""
    assert M.up_to_date(folder, "g", judging).startswith("inputs changed")
    e = expect.Expectation(test="s.py::a", framework="numpy", outcome="failed", reason="r", versions="")
    assert M.up_to_date(folder, "h", ([e], [])).startswith("the expectations that apply to it changed")
    (folder / "inputs.json").write_text(json.dumps({"hash": "h", "exit": None}))
    assert M.up_to_date(folder, "h", judging) == "its last run broke"


def test_versions_alternatives():
    assert expect.versions_contain("==3.13.2 || ==3.15.1", "3.15.1")
    assert not expect.versions_contain("==3.13.2 || ==3.15.1", "3.14.1")
    assert expect.versions_contain("==2.13.0", "2.13.0+cpu") and expect.versions_contain("", "1.0")
    with pytest.raises(Exception):
        expect.check_versions("==1 ||")
    assert versions.implied_versions(["3.13.2", "3.15.1"]) == "==3.13.2 || ==3.15.1"
    assert versions.implied_versions([]) == ""


def _env(name, fw, version, frameworks):
    return M.Env(fw, version, tuple(frameworks), (f"{fw}=={version}",))


def _rep(version, *recs):
    r = build_report([{"suite": "test_s", "adapter": "keras.layers.LSTM", "framework": "keras", "backend": "jax",
                       "repro": "x", "reason": None, **x} for x in recs])
    r["environment"]["packages"]["keras"] = version
    return r


def test_cells_ranges_and_rewriting(tmp_path):
    envs = [_env("keras-1.0.0", "keras", "1.0.0", ["keras"]), _env("keras-1.1.0", "keras", "1.1.0", ["keras"]),
            _env("keras-1.2.0", "keras", "1.2.0", ["keras"])]
    repro = "suites/test_findings.py::test_repro[k-bug]"
    reports = {
        "keras-1.0.0": _rep("1.0.0", {"id": "suites/test_s.py::t[a] (keras-jax)", "outcome": "failed"},
                            {"id": repro, "outcome": "passed", "finding": "k-bug", "suite": "test_findings", "adapter": None}),
        "keras-1.1.0": _rep("1.1.0", {"id": "suites/test_s.py::t[a] (keras-jax)", "outcome": "xfailed",
                                      "finding": "k-bug"},
                            {"id": repro, "outcome": "passed", "finding": "k-bug", "suite": "test_findings", "adapter": None}),
        "keras-1.2.0": _rep("1.2.0", {"id": "suites/test_s.py::t[a] (keras-jax)", "outcome": "passed"},
                            {"id": repro, "outcome": "failed", "finding": "k-bug", "suite": "test_findings", "adapter": None,
                             "reason": "finding k-bug no longer reproduces on keras 1.2.0: fixed?"})}
    (tmp_path / "keras.toml").write_text('# head\n[[expect]]\ntest = "suites/test_s.py::t[[]a[]]"\nframework = "keras"\n'
                                         'versions = ">=1.1,<1.2"\nbackend = "jax"\noutcome = "failed"\n'
                                         'reason = "r"\nfinding = "k-bug"\n')
    entries = expect.load_dir(tmp_path)
    judged = {k: versions.rejudge(v, entries)[0] for k, v in reports.items()}
    assert judged["keras-1.0.0"]["results"][0]["outcome"] == "failed"  # 1.0.0 not in the entry's range yet
    matrix = versions.build(envs, judged, {}, [{"id": "k-bug", "title": "t", "frameworks": ["keras"]}], entries, [],
                            tmp_path)
    row = matrix["groups"][0]["findings"][0]
    assert [row["cells"][v]["state"] for v in ("1.0.0", "1.1.0", "1.2.0")] == ["deviation", "deviation", "fixed"]
    path = matrix["groups"][0]["paths"][0]
    assert [path["cells"][v]["state"] for v in ("1.0.0", "1.1.0", "1.2.0")] == ["fails", "deviation", "conforms"]
    (r,) = matrix["ranges"]
    assert r["measured_in"] == ["1.0.0", "1.1.0", "1.2.0"] and r["deviating_in"] == ["1.0.0", "1.1.0"]
    assert r["implied"] == "==1.0.0 || ==1.1.0" and not r["agrees"]
    done = M.update_expectations(matrix, tmp_path)
    assert done == [("keras.toml#1", "versions '>=1.1,<1.2' -> '==1.0.0 || ==1.1.0'; measured 1.0.0, 1.1.0, 1.2.0")]
    (e,) = expect.load_dir(tmp_path)
    assert e.versions == "==1.0.0 || ==1.1.0" and e.measured == "1.0.0, 1.1.0, 1.2.0" and e.test == entries[0].test
    judged = {k: versions.rejudge(v, [e])[0] for k, v in reports.items()}
    assert judged["keras-1.0.0"]["results"][0]["outcome"] == "xfailed"
    assert "the run said: failed" in judged["keras-1.0.0"]["results"][0]["reason"]
    again = versions.build(envs, judged, {}, [], [e], [], tmp_path)
    assert again["ranges"][0]["agrees"]
    assert "fixed" in versions.render_markdown(matrix) and "k-bug" in versions.render_section(matrix)


# ------------------------------------------------------------------- the committed matrix

def _committed():
    reports, _ = versions.load_reports(SPEC, VERSIONS)
    return reports


@pytest.mark.skipif(not (VERSIONS / "matrix.json").is_file(), reason="no committed matrix (make matrix)")
def test_committed_matrix_has_every_release_and_gate():
    matrix = json.loads((VERSIONS / "matrix.json").read_text())
    assert [e["name"] for e in matrix["envs"]] == [e.name for e in SPEC]
    for env in SPEC:
        folder = VERSIONS / env.name
        assert (folder / "report.json").is_file() and (folder / "report.md").is_file(), env.name
        rec = json.loads((folder / "inputs.json").read_text())
        assert rec["exit"] in (0, 1) and rec["install_s"] > 0 and rec["run_s"] > 0 and rec["disk_bytes"] > 0
    for g in matrix["gates"]:
        assert (VERSIONS / f"gate-{g['framework']}-{g['from']}-to-{g['to']}.md").is_file()
    assert len(matrix["gates"]) == sum(len([e for e in SPEC if e.framework == fw]) - 1
                                       for fw in {e.framework for e in SPEC})


@pytest.mark.skipif(not (VERSIONS / "matrix.json").is_file(), reason="no committed matrix (make matrix)")
def test_expectation_ranges_follow_the_measured_matrix():
    """Every expectation entry whose tests the matrix ran names exactly the releases in which they
    showed the deviation (`versions`) and every release that ran them (`measured`): measured from
    the committed release reports, judged with the current files."""
    entries = expect.load_dir(ROOT / "expectations")
    reports = {k: versions.rejudge(v, entries)[0] for k, v in _committed().items()}
    rows = versions.measured_ranges(SPEC, reports, entries)
    assert rows, "the matrix measured no expectation entry"
    bad = [f"expectations/{r['source']}: versions {r['versions']!r}, measured {r['measured']!r}; the matrix: "
           f"deviation in {r['deviating_in']} of {r['measured_in']} -> versions {r['implied']!r}" for r in rows
           if not r["agrees"]]
    assert not bad, "\n".join(bad) + "\n(python -m conformance matrix --update-expectations rewrites them)"
    measured = {r["source"] for r in rows}
    for e in entries:
        if e.measured:
            assert e.source in measured, f"{e.source} says measured {e.measured!r}; the matrix ran none of its tests"
