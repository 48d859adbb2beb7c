"""The README's worked third-party adapter (examples/hand_lstm.py), used as a stranger would.

The README's code block is the example file, verbatim. Copied into a package of its own outside
the checkout and added with `--adapter`, it passes the smoke parity suite; a copy with two gate
blocks swapped fails it (the suite catches a wrong kernel). Bad specs are clear usage errors.
"""
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
EXAMPLE = ROOT / "examples" / "hand_lstm.py"
NAME = "examples.HandLSTM"  # the adapter name the example declares
GATES = "i, f, g, o = gates.chunk(4, dim=1)"

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="torch is not installed (the example adapter runs on torch)")


def readme_block():
    """The first python block of the README section "Writing your own adapter"."""
    text = README.read_text()
    start = text.index("\n## Writing your own adapter\n")
    end = text.find("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:end if end != -1 else None], flags=re.S)
    assert blocks, "README: the section 'Writing your own adapter' has no python block"
    return blocks[0]


def child_env(*paths):
    env = {k: v for k, v in os.environ.items() if k not in ("RNN_CONFORMANCE_ADAPTERS", "HYPOTHESIS_PROFILE")}
    env["PYTHONPATH"] = os.pathsep.join(map(str, paths))
    return env


def install_copy(tmp_path, source):
    """Write `source` as myadapters/hand_lstm.py under tmp_path, a package outside the checkout."""
    pkg = tmp_path / "site" / "myadapters"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "hand_lstm.py").write_text(source)
    return pkg.parent


def run_smoke(tmp_path, site, suite="suites/test_smoke_parity.py", *args):
    report = tmp_path / "report.json"
    r = subprocess.run([sys.executable, "-m", "pytest", suite,
                        "--adapter", "myadapters.hand_lstm:INFO", "-k", "HandLSTM", "-p", "no:cacheprovider",
                        "--hypothesis-profile=ci", f"--conformance-report={report}", *args],
                       cwd=ROOT, env=child_env(site, ROOT), capture_output=True, text=True, timeout=300)
    results = json.loads(report.read_text())["results"] if report.exists() else []
    return r, [rec for rec in results if rec["adapter"] == NAME]


UNSCALED = ".to(dt) / (1 - p)"  # the example's kept values 1/(1-p)


def test_readme_block_is_the_example_file():
    assert readme_block() == EXAMPLE.read_text(), (
        "README.md 'Writing your own adapter' must show examples/hand_lstm.py verbatim")


def test_example_declares_itself():
    from conformance.adapters import registry
    from conformance.adapters.base import Adapter

    info = registry.info_of("examples.hand_lstm:INFO")
    assert (info.name, info.framework, info.cell) == (NAME, "torch", "lstm")
    assert info.factory == "examples.hand_lstm:make"
    # importing it (collecting the suites) imports no framework
    probe = "import sys, examples.hand_lstm; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=child_env(ROOT), capture_output=True, text=True)
    assert r.stdout.strip() == "False", r.stderr
    if importlib.util.find_spec("torch") is not None:
        assert isinstance(registry.load("examples.hand_lstm:INFO"), Adapter)


@needs_torch
def test_copied_readme_adapter_passes_the_smoke_suite(tmp_path):
    r, recs = run_smoke(tmp_path, install_copy(tmp_path, readme_block()))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert [rec["outcome"] for rec in recs] == ["passed"], recs
    assert recs[0]["max_abs_err"] <= recs[0]["tolerance"]
    assert "--adapter=myadapters.hand_lstm:INFO" in recs[0]["repro"]  # the pytest repro collects the path too


@pytest.fixture(scope="module")
def swapped(tmp_path_factory):
    """The smoke suite run on a copy with the input and forget gates swapped: (result, records, site)."""
    tmp_path = tmp_path_factory.mktemp("swapped")
    source = readme_block()
    assert source.count(GATES) == 1
    site = install_copy(tmp_path, source.replace(GATES, "f, i, g, o = gates.chunk(4, dim=1)"))
    return (*run_smoke(tmp_path, site), site)


@needs_torch
def test_swapped_gates_fail_the_smoke_suite(swapped):
    r, recs, _ = swapped
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    assert [rec["outcome"] for rec in recs] == ["failed"], recs
    assert "differs from the reference" in recs[0]["reason"]
    assert "repro" in r.stdout and "seed=" in r.stdout


@needs_torch
def test_repro_of_a_failing_outside_case_runs(swapped, tmp_path):
    """The repro loads the outside adapter by its spec (what --adapter got, not its name, which
    only the run's registry knows) and, run in a fresh interpreter, shows the failure."""
    r, recs, site = swapped
    (rec,) = recs
    repro = rec["repro"]
    load = "registry.load('myadapters.hand_lstm:INFO', dtype="
    assert load in repro and load in r.stdout, repro  # the record's repro is the one the failure printed
    out = subprocess.run([sys.executable, "-c", repro], cwd=tmp_path, env=child_env(site, ROOT),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    errors = {k: float(v) for k, v in (line.split() for line in out.stdout.strip().splitlines())}
    assert set(errors) == {"y", "h_n", "c_n"} and max(errors.values()) > rec["tolerance"], (errors, rec)


@needs_torch
def test_copied_readme_adapter_passes_the_fingerprint_suite(tmp_path):
    """Its dropout knob, measured against what its AdapterInfo declares, strictly."""
    r, recs = run_smoke(tmp_path, install_copy(tmp_path, readme_block()), "suites/test_fingerprints.py",
                        "--strict-semantics")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert [rec["outcome"] for rec in recs] == ["passed"], recs
    assert "recurrent: per sequence, gates shared, rows independent, kept value 1/(1-p)" in recs[0]["reason"]


@needs_torch
def test_unscaled_copy_fails_the_fingerprint_suite_by_name(tmp_path):
    """A copy whose kept values are not scaled by 1/(1-p) fails, the cause named first."""
    source = readme_block()
    assert source.count(UNSCALED) == 1
    r, recs = run_smoke(tmp_path, install_copy(tmp_path, source.replace(UNSCALED, ".to(dt)")),
                        "suites/test_fingerprints.py")
    assert r.returncode == 1 and [rec["outcome"] for rec in recs] == ["failed"], r.stdout[-3000:]
    assert "kept value 1 (unscaled) instead of 1/(1-p): recurrent at p = 0.5" in recs[0]["reason"], recs[0]["reason"]
    assert "registry.load('myadapters.hand_lstm:INFO')" in recs[0]["repro"]


@needs_torch
def test_cli_run_passes_adapter_through(tmp_path):
    """`python -m conformance run --adapter`, from another directory, with a relative PYTHONPATH."""
    site = install_copy(tmp_path, readme_block())
    r = subprocess.run([sys.executable, "-m", "conformance", "run", "--out", "out", "-k", "HandLSTM",
                        "--adapter", "myadapters.hand_lstm:INFO"],
                       cwd=site, env=child_env(".", ROOT), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    recs = json.loads((site / "out" / "report.json").read_text())["results"]
    # every registry-wide suite the adapter's features admit (no "gradients": no gradient suite;
    # its dropout knob is fingerprinted; the benchmark smoke runs one round)
    assert sorted((rec["adapter"], rec["feature"], rec["outcome"]) for rec in recs) == [
        (NAME, "batch-permutation invariance", "passed"), (NAME, "benchmark (small)", "passed"),
        (NAME, "dropout fingerprint", "passed"),
        (NAME, "dropout-off parity", "passed"), (NAME, "error growth over sequence length", "passed")]


@pytest.mark.parametrize("spec, code, message", [
    ("hand_lstm", 2, "expected 'package.module:OBJ' naming an AdapterInfo"),
    ("no_such_pkg_xyz.hand_lstm:INFO", 2, "no module named 'no_such_pkg_xyz'"),
    ("examples.hand_lstm:NOPE", 2, "has no attribute 'NOPE'"),
    ("examples.hand_lstm:make", 2, "names a function, expected an AdapterInfo"),
])
def test_cli_run_bad_adapter_spec(tmp_path, spec, code, message):
    r = subprocess.run([sys.executable, "-m", "conformance", "run", "--out", str(tmp_path), "--adapter", spec],
                       cwd=ROOT, env=child_env(ROOT), capture_output=True, text=True, timeout=120)
    assert r.returncode == code and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "INTERNALERROR" not in r.stderr + r.stdout
    if code == 4:
        assert "pytest rejected the run" in r.stderr
    assert not (tmp_path / "report.json").exists()
