"""The package as a user installs it: a wheel with everything, run outside any checkout.

`pip install .` must give the complete tool: every subpackage, the suites, the expectations,
the claims data, the findings registry (entries and repros), the `rnn-conformance` console script and the pytest plugin's `pytest11`
entry point. The wheel is built once (pip, isolated build), installed with --target into a
temporary folder, and run from an unrelated directory with only that folder added to the
path: the checkout is not importable there.
"""
from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "conformance").rglob("__init__.py")}
    assert found - listed == set(), "packages missing from pyproject.toml [tool.setuptools] packages"
    assert {"reference", "conformance.suites", "conformance.expectations", "conformance.claims"} <= listed


def test_requirements_are_ranges_not_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    assert reqs and not [r for r in reqs if "==" in r or "<" in r], reqs
    assert not [r for r in project["dependencies"] if r.split(">")[0] in ("torch", "tensorflow", "keras", "jax")]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pkg")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    if build.returncode != 0 and "Could not find a version that satisfies the requirement setuptools" in build.stderr:
        pytest.skip("the build backend (setuptools>=68) cannot be installed here")
    assert build.returncode == 0, build.stderr
    wheel, = (tmp / "dist").glob("rnn_conformance-*.whl")
    target = tmp / "site"
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stderr
    work = tmp / "elsewhere"
    work.mkdir()
    return wheel, target, work


def run_installed(installed, *args, timeout=600):
    _, target, work = installed
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RNN_CONFORMANCE_ADAPTERS")}
    env["PYTHONPATH"] = str(target)
    return subprocess.run([sys.executable, *args], cwd=work, env=env, capture_output=True, text=True, timeout=timeout)


def test_wheel_carries_the_whole_tool(installed):
    wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    suites = {n.rsplit("/", 1)[1] for n in names if n.startswith("conformance/suites/")}
    assert suites == {p.name for p in (ROOT / "suites").glob("*.py")}
    registry = {n.rsplit("/", 1)[1] for n in names if n.startswith("conformance/findings/")}
    assert registry == {p.name for p in (ROOT / "findings").iterdir() if p.is_file()}  # entries, repros, README
    for data in ("expectations/keras.toml", "expectations/fingerprints/torch.toml", "claims/seeds.toml",
                 "entry/pytest.ini", "adapters/torch/bench.py", "adapters/keras/coverage.py"):
        assert f"conformance/{data}" in names, data
    assert any(n.startswith("reference/") for n in names)
    ep = configparser.ConfigParser()
    ep.read_string(zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode())
    assert ep["console_scripts"]["rnn-conformance"] == "conformance.entry.cli:main"
    assert ep["pytest11"]["conformance.entry.plugin"] == "conformance.entry.plugin"


def test_installed_copy_finds_its_data_without_a_checkout(installed):
    r = run_installed(installed, "-c", "import conformance, reference; from conformance.core import paths; "
                                       "from conformance.results import claims; "
                                       "print(paths.INSTALLED, paths.ROOT, len(claims.load()))")
    assert r.returncode == 0, r.stderr
    flag, root, n = r.stdout.split()
    assert flag == "True" and Path(root) == installed[1] / "conformance" and int(n) > 10


SELECT = "test_smoke_parity and torch.nn.GRU and not Cell and not cuda and not packed and not batch_first"


def test_installed_run_and_plain_pytest(installed):
    """`rnn-conformance run` on the installed suites (one small torch selection), and the suites
    under plain pytest from another directory (--pyargs): records named suites/... in both.
    Without torch (the minimal venv) the same run compared nothing: exit 3, said so."""
    import importlib.util

    has_torch = importlib.util.find_spec("torch") is not None
    out = installed[2] / "out"
    r = run_installed(installed, "-m", "conformance", "run", "--out", str(out), "--profile", "quick", "-k", SELECT)
    report = json.loads((out / "report.json").read_text())
    ids = [rec["id"] for rec in report["results"]]
    assert ids and all(i.startswith("suites/test_smoke_parity.py::") for i in ids), ids
    assert not [p for p in installed[2].rglob("*") if p.name in (".pytest_cache", ".hypothesis", ".benchmarks")]
    if not has_torch:
        assert r.returncode == 3 and "nothing was compared" in r.stderr, r.stderr[-3000:]
        return
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert {rec["outcome"] for rec in report["results"]} == {"passed"}
    r = run_installed(installed, "-m", "pytest", "--pyargs", "conformance.suites", "-q", "-p", "no:cacheprovider",
                      "--hypothesis-profile=quick", "-k", SELECT, "--conformance-report=plain.json")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    plain = json.loads((installed[2] / "plain.json").read_text())
    assert sorted(rec["id"] for rec in plain["results"]) == sorted(ids)
