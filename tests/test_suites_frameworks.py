"""Every test of suites/ declares the frameworks it needs, so --frameworks can select it.

The plugin (conformance/entry/plugin.py, "Frameworks") reads a test's frameworks from its
AdapterInfo parameters and its ``framework(name, ...)`` marks; a test that declares none is left
out of every --frameworks run. Here suites/ is collected once (a subprocess, collection only:
no framework is imported) and every item's frameworks are written out by a probe plugin.
Needs no framework: runs in the minimal venv too.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.adapters import registry

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, os
from conformance.entry.plugin import _item_frameworks

def pytest_collection_finish(session):
    with open(os.environ["FRAMEWORKS_PROBE_OUT"], "w") as f:
        json.dump({item.nodeid: sorted(_item_frameworks(item)) for item in session.items}, f)
"""


def collect(tmp_path, *args):
    """{node id: [frameworks]} of the items left after collecting suites/ with `args`."""
    (tmp_path / "frameworks_probe.py").write_text(PROBE)
    out = tmp_path / "items.json"
    env = {k: v for k, v in os.environ.items() if k not in ("RNN_CONFORMANCE_ADAPTERS", "HYPOTHESIS_PROFILE")}
    env.update(PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]), FRAMEWORKS_PROBE_OUT=str(out))
    r = subprocess.run([sys.executable, "-m", "pytest", "suites", "--collect-only", "-q", "-p", "no:cacheprovider",
                        "-p", "frameworks_probe", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    return collect(tmp_path_factory.mktemp("all"))


def test_every_suite_test_declares_its_frameworks(items):
    undeclared = sorted(nodeid for nodeid, names in items.items() if not names)
    assert not undeclared, (f"{len(undeclared)} tests in suites/ declare no framework (mark them "
                            "framework('name') or framework('reference'), or parametrize over AdapterInfo):\n"
                            + "\n".join(undeclared[:50]))


def test_declared_names_are_valid(items):
    valid = set(registry.selectable(registry.ADAPTERS))
    bad = sorted(f"{nodeid}: {names}" for nodeid, names in items.items() if not set(names) <= valid)
    assert not bad, "framework names outside registry.FRAMEWORKS / 'reference':\n" + "\n".join(bad[:50])


def test_each_framework_has_tests(items):
    used = set().union(*map(set, items.values()))
    assert set(registry.FRAMEWORKS) <= used, sorted(set(registry.FRAMEWORKS) - used)


def test_selection_keeps_only_the_chosen_frameworks(tmp_path, items):
    kept = collect(tmp_path, "--frameworks", "onnxruntime")
    assert kept and all(set(names) <= {"onnxruntime", registry.REFERENCE} for names in kept.values()), kept
    want = sorted(n for n, names in items.items() if set(names) <= {"onnxruntime", registry.REFERENCE})
    assert sorted(kept) == want
