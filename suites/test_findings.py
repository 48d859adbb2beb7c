"""The findings registry (findings/): every root cause's standalone repro, run as a user would.

`test_repro[<id>]` runs ``findings/<id>.py`` in a fresh interpreter — from an empty temporary
directory, with no PYTHONPATH, KERAS_BACKEND or TF_USE_LEGACY_KERAS of ours (the repro sets what
it needs) — and reads its verdict (findings/README.md): ``REPRODUCED`` passes (the known
behaviour is still there, as on the pinned versions), ``NOT REPRODUCED`` fails with "no longer
reproduces on <versions>: fixed?", so a fixed framework is seen in the report and the gate, never
silently; ``SKIPPED`` (or a framework of the finding not installed) skips with the reason. The
repros of the selected cases start together on first use, as many at a time as there are CPUs.

`test_registry` checks the registry as data: every entry loads, its repro keeps the contract
(length, imports), every finding an expectation entry names exists, and every piece of
evidence names a test that exists.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conformance.core import paths
from conformance.core.frameworks import installed_version
from conformance.results import expectations, findings

REGISTRY = findings.load_dir(paths.FINDINGS)
BY_ID = {f.id: f for f in REGISTRY}
# The distribution whose version says which release a framework name is (for "fixed in ...").
DISTRIBUTIONS = {"torch": ("torch",), "keras": ("keras",), "tf_keras": ("tf-keras",),
                 "tensorflow": ("tensorflow-cpu", "tensorflow"), "flax": ("flax",), "jax": ("jax",),
                 "onnxruntime": ("onnxruntime",)}
TIMEOUT_S = 120  # a repro is meant to take under 30 s alone; several share the CPUs here
# What the parent process must not hand down: the repro sets its own environment.
CLEAN_ENV = ("PYTHONPATH", "KERAS_BACKEND", "TF_USE_LEGACY_KERAS", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")


def version_of(framework):
    return next((v for d in DISTRIBUTIONS[framework] if (v := installed_version(d))), None)


def run_repro(finding):
    """(returncode, stdout+stderr, seconds) of the repro in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rnn-conformance-repro-") as cwd:
        try:
            r = subprocess.run([sys.executable, str(finding.repro_path)], cwd=cwd, env=env, capture_output=True,
                               text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            return None, out, time.perf_counter() - start
    return r.returncode, r.stdout + (("\n" + r.stderr) if r.returncode not in (0, 1, 2) else ""), \
        time.perf_counter() - start


@pytest.fixture(scope="session")
def repro_runs(request):
    """{id: future of run_repro} for every selected test_repro case, started on first use."""
    wanted = [item.callspec.params["finding_id"] for item in request.session.items
              if item.originalname == "test_repro" and hasattr(item, "callspec")]
    runnable = [BY_ID[i] for i in dict.fromkeys(wanted)
                if all(version_of(fw) for fw in BY_ID[i].frameworks)]
    pool = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)))
    request.addfinalizer(lambda: pool.shutdown(wait=False, cancel_futures=True))
    return {f.id: pool.submit(run_repro, f) for f in runnable}


@pytest.mark.parametrize("finding_id", [pytest.param(f.id, marks=pytest.mark.framework(*f.frameworks))
                                        for f in REGISTRY])
def test_repro(finding_id, repro_runs, conformance_record):
    finding = BY_ID[finding_id]
    versions = {fw: version_of(fw) for fw in finding.frameworks}
    main = finding.frameworks[0]
    conformance_record(finding=finding_id, framework=main, framework_version=versions[main],
                       feature=f"finding repro ({finding.kind})",
                       repro=f"python findings/{finding.repro_path.name}")
    missing = [fw for fw, v in versions.items() if v is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} is not installed")
    code, out, seconds = repro_runs[finding_id].result()
    tail = "\n".join(out.strip().splitlines()[-12:])
    on = ", ".join(f"{fw} {v}" for fw, v in versions.items())
    if code is None:
        pytest.fail(f"findings/{finding_id}.py ran over {TIMEOUT_S} s on {on}; its output so far:\n{tail}")
    verdict, detail = findings.parse_verdict(out, code, finding_id)
    if verdict == "SKIPPED":
        pytest.skip(f"the repro skipped: {detail}")
    if verdict is None:
        pytest.fail(f"findings/{finding_id}.py broke the repro contract ({detail}) on {on}; output:\n{tail}")
    if verdict == "NOT REPRODUCED":
        pytest.fail(f"finding {finding_id} no longer reproduces on {on}: fixed in {on}? The registry says "
                    f"{finding.versions!r}, upstream {finding.upstream or 'not reported'}; update "
                    f"findings/{finding_id}.toml (upstream_status = \"fixed in ...\") and the expectations "
                    f"naming it. Output:\n{tail}")
    conformance_record(reason=f"reproduced on {on} in {seconds:.1f} s")


@pytest.mark.framework("reference")
def test_registry(conformance_record):
    assert REGISTRY, f"no findings in {paths.FINDINGS}"
    problems = [f"findings/{f.repro_path.name}: {p}" for f in REGISTRY for p in findings.repro_problems(f)]
    entries = expectations.load_dir(paths.EXPECTATIONS)
    # Every expected deviation is evidence of one registry root cause, and says which.
    conformance_record(reason=f"{len(REGISTRY)} findings; {sum(bool(e.finding) for e in entries)} of "
                              f"{len(entries)} expectation entries name theirs")
    for e in entries:
        if not e.finding:
            problems.append(f"expectations/{e.source}: the entry for {e.test!r} names no finding "
                            f"(finding = \"<id>\" of findings/<id>.toml)")
        elif e.finding not in BY_ID:
            problems.append(f"expectations/{e.source} names finding {e.finding!r}, which is not in findings/")
    from conformance.adapters.keras import cross_backend  # NumPy only at import
    for k in cross_backend.KNOWN:
        if k.get("finding") not in BY_ID:
            problems.append(f"conformance/adapters/keras/cross_backend.py: KNOWN entry {k['when']} on {k['backend']} "
                            f"names finding {k.get('finding')!r}, which is not in findings/")
    for e in expectations.load_fingerprints(paths.EXPECTATIONS / "fingerprints"):
        if e.finding and e.finding not in BY_ID:
            problems.append(f"expectations/fingerprints/{e.source} names finding {e.finding!r}, not in findings/")
    for f in REGISTRY:
        for ev in f.evidence:
            file, _, test = ev.partition("::")
            path = paths.ROOT / file
            name = test.split("[")[0]
            if not path.is_file():
                problems.append(f"findings/{f.id}.toml: evidence {ev!r}: no file {file}")
            elif name and f"def {name}(" not in path.read_text(encoding="utf-8"):
                problems.append(f"findings/{f.id}.toml: evidence {ev!r}: no test {name} in {file}")
    assert not problems, "\n".join(problems)
