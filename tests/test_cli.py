"""`python -m conformance`: exit codes of validate and run, argument errors without tracebacks."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.entry import cli
from conformance.results.report import build_report, write_report_atomic

ROOT = Path(__file__).resolve().parent.parent


def conformance(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "conformance", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def write(tmp_path, results, name="report.json"):
    path = tmp_path / name
    write_report_atomic(build_report(results), path)
    return path


PASSED = {"id": "t.py::a", "suite": "t", "outcome": "passed", "repro": "x"}
SKIPPED_NO_REASON = {"id": "t.py::b", "suite": "t", "outcome": "skipped", "repro": "x"}
ERROR = {"id": "t.py::c", "suite": "t", "outcome": "error", "reason": "RuntimeError: boom", "repro": "x"}


def test_validate_valid(tmp_path):
    r = conformance("validate", str(write(tmp_path, [PASSED])))
    assert r.returncode == 0 and "valid (1 passed)" in r.stdout


@pytest.mark.parametrize("content, message", [
    (None, "report not found"),
    ('{"schema_version": 2, "resu', "truncated"),
    ('{"schema_version": 0, "results": []}', "schema_version 0"),
])
def test_validate_unreadable_is_2(tmp_path, content, message):
    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content)
    r = conformance("validate", str(path))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_validate_invalid_record_is_2(tmp_path):
    path = write(tmp_path, [PASSED])
    report = json.loads(path.read_text())
    report["results"][0]["outcome"] = "exploded"
    path.write_text(json.dumps(report))
    r = conformance("validate", str(path))
    assert r.returncode == 2 and "outcome must be one of" in r.stderr


def test_validate_fail_on_and_require_reasons_are_1(tmp_path):
    path = write(tmp_path, [PASSED, SKIPPED_NO_REASON, ERROR])
    assert conformance("validate", str(path)).returncode == 0
    r = conformance("validate", str(path), "--fail-on", "error")
    assert r.returncode == 1 and "error: t.py::c: RuntimeError: boom" in r.stderr
    r = conformance("validate", str(path), "--require-reasons")
    assert r.returncode == 1 and "t.py::b: (no reason given)" in r.stderr


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["run", "--profile", "fast"], ["validate"],
                                  ["validate", "x", "--fail-on", "bad"], ["run", "--adapter"],
                                  ["run", "--adapter", "hand_lstm"], ["run", "--adapter", "my pkg.mod:INFO"],
                                  ["run", "--adapter", "ok.mod:INFO", "--adapter", "mod:"]])
def test_bad_arguments_are_usage_errors(args):
    r = conformance(*args)
    assert r.returncode == 2 and "usage:" in r.stderr and "Traceback" not in r.stderr


def test_run_with_no_tests_says_so(tmp_path, monkeypatch, capsys):
    """No test collected is exit 3 ("nothing was compared"), with a clear message, never success."""
    (tmp_path / "suites").mkdir()
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    monkeypatch.setattr(cli, "ROOT", tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    code = cli.main(["run", "--out", str(tmp_path / "out"), "--profile", "dev"])
    err = capsys.readouterr().err
    assert code == 3 and "nothing was compared: no test was collected" in err
    assert json.loads((tmp_path / "out" / "report.json").read_text())["results"] == []


def test_run_writes_report(tmp_path, monkeypatch, capsys):
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "test_tiny.py").write_text(
        "import pytest\n"
        "def test_ok(conformance_record):\n    conformance_record(framework='numpy', max_abs_err=0.0)\n"
        "def test_skip():\n    pytest.skip('nothing to see')\n"
        "def test_claim(conformance_section):\n"
        "    conformance_section('claims', source='000.txt', claim='it drops', verdict='refuted', evidence='e', "
        "test='t')\n")
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    monkeypatch.setattr(cli, "ROOT", tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    code = cli.main(["run", "--out", str(tmp_path / "out"), "-k", "ok or skip", "--claims", str(tmp_path / "c.md")])
    assert code == 0 and "1 passed, 1 skipped" in capsys.readouterr().out
    # the claims page is written beside the report and to --claims (here without claims: -k left them out)
    assert "No claims in this report" in (tmp_path / "out" / "claims.md").read_text()
    assert (tmp_path / "c.md").read_text() == (tmp_path / "out" / "claims.md").read_text()
    code = cli.main(["run", "--out", str(tmp_path / "out2"), "-k", "claim"])
    page = (tmp_path / "out2" / "claims.md").read_text()
    assert code == 0 and "### REFUTED: it drops" in page and "**1 claim** from 1 document: 1 refuted." in page
    recs = json.loads((tmp_path / "out" / "report.json").read_text())["results"]
    assert [(r["id"], r["outcome"], r["framework"]) for r in recs] == [
        ("suites/test_tiny.py::test_ok", "passed", "numpy"), ("suites/test_tiny.py::test_skip", "skipped", None)]
    assert recs[0]["repro"].endswith("--hypothesis-profile=ci")


def test_bad_adapter_spec_message():
    r = conformance("run", "--adapter", "hand_lstm")
    assert r.returncode == 2 and "argument --adapter: expected 'package.module:OBJ' naming an AdapterInfo" in r.stderr
    assert "got 'hand_lstm'" in r.stderr


def test_run_passes_adapters_to_pytest(tmp_path, monkeypatch):
    """Each --adapter becomes a pytest --adapter, in order; relative PYTHONPATH entries are made
    absolute (pytest runs in the checkout, not in the caller's directory)."""
    from conformance.entry import runner

    calls = []
    monkeypatch.setattr(runner, "_call", lambda cmd, env, cwd: calls.append((cmd, env)) or 4)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([".", "lib", "/abs/dir"]))
    assert cli.main(["run", "--out", "out", "--adapter", "a.b:INFO", "--adapter", "c:X"]) == 2
    (cmd, env), = calls
    assert [a for a in cmd if a.startswith("--adapter")] == ["--adapter=a.b:INFO", "--adapter=c:X"]
    # the checkout first (pytest runs in a scratch directory), then the caller's entries made absolute
    assert env["PYTHONPATH"].split(os.pathsep) == [str(ROOT), str(tmp_path), str(tmp_path / "lib"), "/abs/dir"]
    calls.clear()
    monkeypatch.delenv("PYTHONPATH")
    cli.main(["run", "--out", "out"])
    assert not [a for a in calls[0][0] if a.startswith("--adapter")] and calls[0][1]["PYTHONPATH"] == str(ROOT)


def test_run_with_unloadable_adapter_is_a_usage_error(tmp_path, monkeypatch, capfd):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "test_tiny.py").write_text("def test_ok():\n    pass\n")
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    monkeypatch.setattr(cli, "ROOT", tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("RNN_CONFORMANCE_ADAPTERS", raising=False)
    code = cli.main(["run", "--out", str(tmp_path / "out"), "--adapter", "no_such_module_xyz:INFO"])
    err = capfd.readouterr().err  # pytest's own ERROR line (the subprocess), then the CLI's
    assert code == 2 and "ERROR: --adapter: spec 'no_such_module_xyz:INFO': no module named" in err
    assert "pytest rejected the run" in err and "no report was written" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "report.json").exists()


MINE = """
import dataclasses
from conformance.adapters.registry import get
MINE = dataclasses.replace(get("torch.nn.LSTM"), name="mine.LSTM", framework="mykernel", distribution="mykernel")
"""


def test_frameworks_argument(tmp_path, monkeypatch):
    """--frameworks takes the valid names only: built-in, reference, an outside adapter's framework
    (given with --adapter, in either order, or in $RNN_CONFORMANCE_ADAPTERS)."""
    monkeypatch.delenv("RNN_CONFORMANCE_ADAPTERS", raising=False)
    p = cli.parser()
    args = p.parse_args(["run", "--frameworks", "torch, flax,reference"])
    assert args.frameworks == ["torch", "flax", "reference"] and cli._check_frameworks(args) is None
    for bad, message in [("nosuch", "unknown framework 'nosuch'; valid: reference, torch, keras, tf_keras, "
                                    "tensorflow, flax, jax, onnxruntime;"),
                         ("flax.nnx", "('flax.nnx' is selected as 'flax')"),
                         ("mykernel", "unknown framework 'mykernel'")]:
        problem = cli._check_frameworks(p.parse_args(["run", "--frameworks", bad]))
        assert problem.startswith("argument --frameworks: ") and message in problem, problem
    (tmp_path / "mineads.py").write_text(MINE)
    monkeypatch.syspath_prepend(str(tmp_path))
    for argv in (["run", "--frameworks", "mykernel,torch", "--adapter", "mineads:MINE"],
                 ["run", "--adapter=mineads:MINE", "--frameworks=mykernel"]):
        assert cli._check_frameworks(p.parse_args(argv)) is None, argv
    monkeypatch.setenv("RNN_CONFORMANCE_ADAPTERS", "mineads:MINE")
    assert cli._check_frameworks(p.parse_args(["run", "--frameworks", "mykernel"])) is None


def test_unknown_framework_message():
    r = conformance("run", "--frameworks", "torch,nosuch")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert ("argument --frameworks: unknown framework 'nosuch'; valid: reference, torch, keras, tf_keras, "
            "tensorflow, flax, jax, onnxruntime") in r.stderr
