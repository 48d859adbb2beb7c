"""`rnn-conformance` as a user meets it: safe defaults, clear errors, Ctrl-C, nothing compared.

Each bad input ends in one message naming what was wrong and the documented exit code
(conformance/entry/runner.py EXIT_CODES), never a Python traceback.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conformance.results.report import build_report, write_report_atomic

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, root=None, cwd=None, timeout=180):
    """`python -m conformance ARGS` in a fresh interpreter; with `root`, the suites of that folder."""
    code = "import sys\nfrom conformance.entry import cli\n"
    if root is not None:
        code += f"cli.ROOT = {str(root)!r}\n"
    code += f"sys.exit(cli.main({[str(a) for a in args]!r}))\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd or ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def tiny_checkout(tmp_path, body):
    root = tmp_path / "checkout"
    (root / "suites").mkdir(parents=True)
    (root / "suites" / "test_tiny.py").write_text(textwrap.dedent(body))
    return root


def report_file(tmp_path, results, name="r"):
    d = tmp_path / name
    write_report_atomic(build_report(results), d / "report.json")
    return d


PASSED = {"id": "suites/t.py::a", "suite": "t", "outcome": "passed", "repro": "x"}
SKIPPED = {"id": "suites/t.py::b", "suite": "t", "outcome": "skipped", "reason": "torch is not installed",
           "repro": "x"}


def no_traceback(r):
    assert "Traceback" not in r.stderr + r.stdout, r.stderr


def test_run_defaults_to_a_fresh_ignored_directory_and_leaves_no_caches(tmp_path):
    root = tiny_checkout(tmp_path, """
        from hypothesis import given, strategies as st
        @given(st.integers())
        def test_ok(n):
            assert n == n
        def test_timed(benchmark):
            benchmark(lambda: None)
    """)
    work = tmp_path / "work"
    work.mkdir()
    r = cli("run", "--profile", "dev", root=root, cwd=work)
    no_traceback(r)
    runs = list((work / "rnn-conformance-runs").iterdir())
    assert r.returncode == 0 and len(runs) == 1 and (runs[0] / "report.json").is_file(), r.stdout + r.stderr
    leftovers = [p for d in (root, work) for p in d.rglob("*")
                 if p.name in (".pytest_cache", ".hypothesis", ".benchmarks")]
    assert not leftovers
    assert "rnn-conformance-runs/" in (ROOT / ".gitignore").read_text().split()


@pytest.mark.parametrize("make, args, message", [
    (lambda d: (d / "f.txt").write_text("x"), ["run", "--out", "{d}/f.txt"], "exists and is not a directory"),
    (lambda d: (d / "f.txt").write_text("x"), ["merge", "{r}", "--out", "{d}/f.txt"], "exists and is not a directory"),
    (lambda d: None, ["gate", "{r}", "{r}", "--expectations", "{d}/nope"], "--expectations {d}/nope: no such directory"),
    (lambda d: None, ["gate", "{r}", "{r}", "--out", "{d}"], "is a directory"),
    (lambda d: (d / "x.json").write_text("<html>"), ["validate", "{d}/x.json"], "not JSON"),
    (lambda d: None, ["validate", "{d}/missing"], "not found"),
])
def test_bad_inputs_are_clear_usage_errors(tmp_path, make, args, message):
    make(tmp_path)
    r_dir = report_file(tmp_path, [PASSED])
    args = [a.format(d=tmp_path, r=r_dir) for a in args]
    r = cli(*args)
    no_traceback(r)
    assert r.returncode == 2 and message.format(d=tmp_path) in r.stderr, r.stderr


def test_unwritable_out_is_a_usage_error(tmp_path):
    if os.geteuid() == 0:  # root writes anywhere; a path under a file is unwritable for everyone
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "sub"
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        out = tmp_path / "ro" / "sub"
    r = cli("run", "--out", out)
    no_traceback(r)
    assert r.returncode == 2 and f"--out {out}: cannot write there" in r.stderr


def test_directories_are_accepted_for_reports(tmp_path):
    d = report_file(tmp_path, [PASSED])
    for args in (["validate", d], ["render", d], ["gate", d, d], ["merge", d, "--out", tmp_path / "m"]):
        r = cli(*args)
        assert r.returncode == 0, (args, r.stderr)
    assert (d / "report.html").is_file() and (tmp_path / "m" / "report.json").is_file()


def test_a_run_that_compared_nothing_fails(tmp_path):
    root = tiny_checkout(tmp_path, """
        import pytest
        def test_needs_torch():
            pytest.skip("torch is not installed")
    """)
    r = cli("run", "--out", tmp_path / "out", "--profile", "quick", root=root)
    no_traceback(r)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "nothing was compared: all 1 of 1 selected cases skipped (1 x torch is not installed)" in r.stderr
    # the reference's own cases compare no framework: with them passed, still nothing was compared
    root2 = tiny_checkout(tmp_path / "two", """
        import pytest
        @pytest.mark.framework("reference")
        def test_reference_only():
            pass
        @pytest.mark.framework("torch")
        def test_needs_torch():
            pytest.skip("torch is not installed")
    """)
    r2 = cli("run", "--out", tmp_path / "out2", "--profile", "quick", root=root2)
    assert r2.returncode == 3 and "1 of 2 selected cases skipped" in r2.stderr, r2.stderr
    v = cli("validate", tmp_path / "out")
    assert v.returncode == 3 and "nothing was compared" in v.stderr
    ok = cli("validate", report_file(tmp_path, [PASSED, SKIPPED]))
    assert ok.returncode == 0


def test_ctrl_c_stops_the_run_with_one_line(tmp_path):
    root = tiny_checkout(tmp_path, """
        import time
        def test_fast():
            pass
        def test_slow():
            time.sleep(60)
    """)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.json").write_text('{"earlier": true}')
    code = ("import sys\nfrom conformance.entry import cli\n"
            f"cli.ROOT = {str(root)!r}\nsys.exit(cli.main(['run', '--out', {str(tmp_path / 'out')!r}, '--profile', 'quick']))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    partial = tmp_path / "out" / "parts" / "main.json.partial.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "test_fast" not in (partial.read_text() if partial.exists() else ""):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("conformance:")]
    assert len(lines) == 1 and "interrupted; finished records are in" in lines[0], err
    assert "test_fast" in partial.read_text()
    assert json.loads((tmp_path / "out" / "previous" / "report.json").read_text()) == {"earlier": True}
    assert not (tmp_path / "out" / "report.json").exists()


def test_every_help_shows_the_exit_codes_and_positional_help():
    for sub in ("run", "merge", "gate", "render", "validate"):
        r = cli(sub, "--help")
        assert r.returncode == 0 and "exit codes (every subcommand):" in r.stdout and "130  interrupted" in r.stdout
        if sub != "run":
            assert "report.json" in r.stdout.split("options:")[0], sub  # the positional argument is explained
