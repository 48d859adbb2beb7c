"""`rnn-conformance gpu` on a machine without CUDA: the dry run (issue 18) -- so the GPU command
cannot rot between the rare runs on a GPU machine -- and its time budget, ordering and salvage.

The dry run runs the real command against this environment's frameworks (torch, jax, flax,
Keras): every CUDA case must skip with "CUDA is not available on this machine", nothing may fail,
and it must stay within the 2 minutes the issue allows.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conformance.core.devices import NO_CUDA
from conformance.entry import gpu
from conformance.entry.plugin import BUDGET_SPENT

ROOT = Path(__file__).resolve().parent.parent


def cuda_here():
    return gpu.cuda_visible()[0]


@pytest.mark.skipif("cuda_here()", reason="this machine has CUDA: the dry run is for machines without it")
def test_dry_run_skips_every_cuda_case_and_passes(tmp_path):
    out = tmp_path / "gpu"
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "conformance", "gpu", "--out", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    took = time.monotonic() - start
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    report = json.loads((out / "report.json").read_text())
    info = json.loads((out / "gpu-run.json").read_text())
    cuda = [x for x in report["results"] if x["device"] == "cuda"]
    # the registry-wide @cuda cases (24 torch paths x 4 suites, packed, fingerprints), the
    # half-precision and CPU-vs-GPU cases, the Keras / benchmark modules
    assert len(cuda) >= 150, f"only {len(cuda)} CUDA cases collected"
    assert all(x["outcome"] == "skipped" and x["reason"].startswith(NO_CUDA) for x in cuda), \
        [x["id"] for x in cuda if not (x["reason"] or "").startswith(NO_CUDA)][:5]
    assert not [x for x in report["results"] if x["outcome"] in ("failed", "error")]
    assert info["mode"] == "dry-run" and info["cuda_visible"] is False
    assert set(info["parts_s"]) == {"gpu", "gpu-keras-torch", "gpu-keras-jax"}
    assert "dry run: " in r.stdout and "clean" in r.stdout
    assert took <= 120, f"the dry run took {took:.0f} s (issue 18: at most 2 minutes)"
    for name in ("report.md", "report.html", "junit.xml"):
        assert (out / name).is_file()
    assert "registry" not in report  # the findings' repros run in a full run, not here


def test_suite_order_puts_conformance_first_and_benchmarks_last():
    files = gpu.suite_files(ROOT)
    assert files[0] == "test_gpu.py" and files[-1] == "test_bench_gpu.py"
    assert sorted(files) == sorted(p.name for p in (ROOT / "suites").glob("test_*.py"))  # none left out


def test_budget_skips_what_has_not_begun(tmp_path):
    (tmp_path / "test_slow.py").write_text(textwrap.dedent("""
        import time
        def test_a():
            time.sleep(0.3)
        def test_b():
            pass
    """))
    report = tmp_path / "r.json"
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "conformance.entry.plugin", "-p", "no:cacheprovider",
                        str(tmp_path / "test_slow.py"), f"--rootdir={tmp_path}", "--conformance-budget=0.1",
                        f"--conformance-report={report}", "-q"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert report.is_file(), r.stdout + r.stderr
    records = {x["id"].split("::")[-1]: x for x in json.loads(report.read_text())["results"]}
    assert records["test_a"]["outcome"] == "passed", r.stdout
    assert records["test_b"]["outcome"] == "skipped"
    assert records["test_b"]["reason"] == BUDGET_SPENT.format(s="0.1")
    assert len(gpu.budget_skips({"results": list(records.values())})) == 1


def test_a_stopped_part_keeps_its_finished_records(tmp_path):
    path = tmp_path / "gpu.json"
    done = {"id": "suites/test_gpu.py::test_x", "outcome": "passed", "reason": None}
    Path(f"{path}.partial.jsonl").write_text(json.dumps(done) + "\n" + '{"id": "cut sh')
    part = gpu.GPU_PARTS[0]
    report = gpu._salvage(path, part, 361.0, -2)
    ids = [x["id"] for x in report["results"]]
    assert ids[0] == done["id"] and ids[1] == "gpu-run::gpu (stopped)"
    assert report["results"][1]["outcome"] == "error" and "stopped after 361 s" in report["results"][1]["reason"]
    assert gpu._salvage(tmp_path / "none.json", part, 1.0, 0) is None


def test_dry_run_problems_name_what_is_wrong():
    ok = {"id": "a", "outcome": "skipped", "device": "cuda", "reason": NO_CUDA + " (x)"}
    other = {"id": "b", "outcome": "skipped", "device": "cuda", "reason": "something else"}
    ran = {"id": "c", "outcome": "passed", "device": "cuda", "reason": None}
    failed = {"id": "d", "outcome": "failed", "device": "cpu", "reason": "boom"}
    assert gpu.dry_run_problems({"results": [ok]}) == []
    problems = gpu.dry_run_problems({"results": [ok, other, ran, failed]})
    assert [p.split(":")[0] for p in problems] == ["b", "c", "d"]


def test_bad_budget_is_a_usage_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "conformance", "gpu", "--out", str(tmp_path), "--budget", "0"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--budget must be a positive number" in r.stderr and "Traceback" not in r.stderr
