"""`rnn-conformance gpu`: every CUDA case, in one short command, against the frameworks installed
in the current environment (no venv, no network) -- made for a borrowed GPU machine.

It runs the tests marked ``gpu`` (the registry-wide suites' ``@cuda`` cases, suites/test_gpu.py,
test_keras_gpu.py, test_bench_gpu.py, the cuDNN cases of test_torch_dropout.py and
test_jax_experimental_rnn.py) in three parts, each a pytest subprocess with its own time
budget (``--conformance-budget``: a test not begun when the budget is spent is skipped as "not
run: the time budget ... was spent"; a part still running 60 s after it is stopped, its
finished records kept):

    gpu              torch, jax.experimental.rnn, flax: every gpu test not marked keras
                     (KERAS_BACKEND=torch), most important first, the benchmarks last
    gpu-keras-torch  the Keras 3 gpu tests, KERAS_BACKEND=torch
    gpu-keras-jax    the Keras 3 gpu tests, KERAS_BACKEND=jax

JAX's GPU memory preallocation is switched off (XLA_PYTHON_CLIENT_PREALLOCATE=false) so that
torch and JAX share the card. The parts' reports merge into DIR/report.json, report.md,
report.html, junit.xml (as `run` writes them), and DIR/gpu-run.json holds the machine, the
parts' times and budgets.

On a machine without CUDA it is a dry run: every CUDA case skips with a reason starting with
"CUDA is not available on this machine" (`conformance.core.devices.NO_CUDA`); the dry run
passes (exit 0) when nothing failed and every skip is of that kind or "<framework> is not
installed". ``make test`` runs it (tests/test_gpu_run.py), so the command cannot rot.

Exit codes: those of `run` (conformance.entry.runner.EXIT_CODES); 4 also when a budget was
spent before every case ran.

`rnn-conformance gpu-wheels DIR` downloads the wheels the GPU machine lacks (Keras 3 and the
pure-Python or binary packages it needs there; CPython 3.12, manylinux x86-64) into DIR
(default .whl/, git-ignored) and prints their total size.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from conformance.core import paths
from conformance.core.devices import NO_CUDA
from conformance.core.files import write_text_atomic
from conformance.entry.runner import (FAILED, INCOMPLETE, INTERRUPTED, OK, USAGE, Part, _run_metadata,
                                      chosen_parts, child_env, prepare_out, pytest_command, write_outputs)
from conformance.results.merge import MergeError, merge_reports
from conformance.results.report import ReportError, build_report, load_report

#: seconds each part may take on the GPU machine (issue 18: the whole run <= 8 minutes there,
#: about 20 s of it start-up and merging); `--budget` scales them together.
BUDGETS = {"gpu": 300.0, "gpu-keras-torch": 60.0, "gpu-keras-jax": 90.0}
GRACE_S = 60.0  # after its budget a part finishes its current test; past this it is stopped
_GPU_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
GPU_PARTS = (
    Part("gpu", "gpu and not keras", "torch, jax.experimental.rnn and flax on CUDA (the benchmarks last)",
         {"KERAS_BACKEND": "torch", **_GPU_ENV}),
    Part("gpu-keras-torch", "gpu and keras", "Keras 3 on the torch backend on CUDA", {"KERAS_BACKEND": "torch"},
         needs=("keras", "torch"), framework="keras"),
    Part("gpu-keras-jax", "gpu and keras", "Keras 3 on the JAX backend on CUDA", {"KERAS_BACKEND": "jax", **_GPU_ENV},
         needs=("keras", "jax"), framework="keras"),
)
#: suite files in the order the gpu part runs them (what matters most first, so that a spent
#: budget cuts the benchmarks, not the conformance cases); every other suite file follows.
FIRST = ("test_gpu.py", "test_smoke_parity.py", "test_gradient_parity.py", "test_torch_packed.py",
         "test_jax_experimental_rnn.py", "test_torch_dropout.py", "test_fingerprints.py", "test_keras_gpu.py",
         "test_batch_permutation.py", "test_error_growth.py")
LAST = ("test_bench_gpu.py",)

# The wheels the GPU machine lacks (its package list: /work/.library/device/KINDS.md, "Python
# packages already there"): Keras 3 and those of its requirements not installed there (it has
# numpy, absl-py, rich, h5py, ml-dtypes, packaging). Versions: requirements/constraints.txt.
WHEELS = ("keras", "namex", "optree")
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                   "manylinux2014_x86_64", "manylinux1_x86_64")
WHEEL_LIMIT = 32 * 2**20  # the working tree that travels is 64 MiB in all


def suite_files(root):
    """suites/test_*.py in run order: FIRST, then the rest sorted, then LAST."""
    found = sorted(p.name for p in (Path(root) / "suites").glob("test_*.py"))
    first = [n for n in FIRST if n in found]
    last = [n for n in LAST if n in found]
    return first + [n for n in found if n not in first and n not in last] + last


def cuda_visible(env=None):
    """(visible?, how it was told) without touching the GPU in this process: torch in a
    subprocess when installed, else nvidia-smi."""
    code = ("import importlib.util, sys\n"
            "if importlib.util.find_spec('torch') is None: sys.exit(3)\n"
            "import torch; sys.exit(0 if torch.cuda.is_available() else 1)")
    try:
        rc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=120).returncode
    except subprocess.TimeoutExpired:
        return False, "torch.cuda.is_available() did not answer in 120 s"
    if rc in (0, 1):
        return rc == 0, "torch.cuda.is_available()"
    try:
        smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60)
        return smi.returncode == 0 and "GPU" in smi.stdout, "nvidia-smi -L (torch not installed)"
    except (OSError, subprocess.TimeoutExpired):
        return False, "no torch, no nvidia-smi"


def _salvage(path, part, took, code):
    """A report from a killed part's finished records (PATH.partial.jsonl), or None."""
    partial = Path(f"{path}.partial.jsonl")
    if not partial.is_file():
        return None
    records = []
    for line in partial.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # the line being written when it was stopped
    records.append(dict(
        id=f"gpu-run::{part.name} (stopped)", adapter=None, framework=None, framework_version=None, backend=None,
        device=None, kernel=None, suite="gpu-run", feature=f"part {part.name}", outcome="error", max_abs_err=None,
        tolerance=None, seed=None, finding=None, repro=None,
        reason=f"part {part.name} was stopped after {took:.0f} s (exit {code}): its budget plus {GRACE_S:.0f} s "
               f"was spent; {len(records)} finished records kept, the rest did not run"))
    return build_report(records)


def run_gpu_part(part, i, n, out, args, root, scratch, budget):
    """(exit code, report or None, seconds) of one part under its budget."""
    path = out / "parts" / f"{part.name}.json"
    path.unlink(missing_ok=True)
    cmd = pytest_command(part, path, args, root, scratch)
    suites = str(Path(root) / "suites")
    at = cmd.index(suites)
    cmd[at:at + 1] = [str(Path(root) / "suites" / name) for name in suite_files(root)]
    cmd.append(f"--conformance-budget={budget:g}")
    env_text = " ".join(f"{k}={v}" for k, v in part.env.items())
    print(f"==> [{i}/{n}] part {part.name}: {part.what} ({env_text}; budget {budget:.0f} s)", flush=True)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=root, env=child_env(part.env, scratch))
    try:
        code = proc.wait(timeout=budget + GRACE_S)
    except subprocess.TimeoutExpired:
        print(f"==> part {part.name}: still running {budget + GRACE_S:.0f} s after its start; stopping it", flush=True)
        code = None
        for sig, grace in ((signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            proc.send_signal(sig)
            try:
                code = proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    took = time.monotonic() - start
    try:
        report = load_report(path)
    except ReportError:
        report = _salvage(path, part, took, code)
        code = INCOMPLETE if report is not None else code
    print(f"==> [{i}/{n}] part {part.name}: exit {code} after {took:.0f} s", flush=True)
    return code, report, took


def budget_skips(report):
    return [r for r in report["results"] if r["outcome"] == "skipped" and (r["reason"] or "").startswith("not run: the time budget")]


def dry_run_problems(report):
    """Why a dry run (no CUDA) is not clean: failures, errors, skips of another kind."""
    out = []
    for r in report["results"]:
        why = r["reason"] or ""
        if r["outcome"] in ("failed", "error"):
            out.append(f"{r['id']}: {r['outcome']}: {why[:200]}")
        elif r["outcome"] == "skipped" and not (why.startswith(NO_CUDA) or why.endswith("is not installed")):
            out.append(f"{r['id']}: skipped for another reason than a missing GPU: {why[:200]}")
        elif r["device"] == "cuda" and r["outcome"] != "skipped":
            out.append(f"{r['id']}: a CUDA case {r['outcome']} on a machine without CUDA")
    return out


def run(args, root=None):
    root = Path(root or paths.ROOT)
    out = Path(args.out).resolve()
    if not (root / "suites").is_dir():
        print(f"conformance: no suites/ directory in {root}", file=sys.stderr)
        return USAGE
    problem = prepare_out(out)
    if problem:
        print(f"conformance: {problem}", file=sys.stderr)
        return USAGE
    started = time.monotonic()
    visible, how = cuda_visible(child_env({}))
    mode = "GPU run" if visible else "dry run (no CUDA here: every CUDA case must skip)"
    parts, left_out = chosen_parts(set(), GPU_PARTS)
    scale = args.budget / sum(BUDGETS.values())
    print(f"==> rnn-conformance gpu: {mode}; CUDA visible: {visible} ({how}); {len(parts)} part(s) -> {out}; "
          f"budget {args.budget:.0f} s", flush=True)
    for part, why in left_out:
        print(f"==> part {part.name} left out: {why}", flush=True)
    named, codes, times = [], {}, {}
    scratch = tempfile.mkdtemp(prefix="rnn-conformance-gpu-")
    try:
        for i, part in enumerate(parts, 1):
            code, report, took = run_gpu_part(part, i, len(parts), out, args, root, scratch, BUDGETS[part.name] * scale)
            times[part.name] = round(took, 1)
            if report is None:
                print(f"conformance: part {part.name} ended without a report (exit {code})", file=sys.stderr)
                return INCOMPLETE
            named.append((part.name, report))
            codes[part.name] = code
    except KeyboardInterrupt:
        print(f"\nconformance: interrupted; finished records are in {out / 'parts'}", file=sys.stderr)
        return INTERRUPTED
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not named:
        print("conformance: no part could run" + "".join(f"; {p.name}: {w}" for p, w in left_out), file=sys.stderr)
        return USAGE
    try:
        merged = merge_reports(named, run=_run_metadata(args, parts, left_out))
    except MergeError as e:
        print(f"conformance: cannot merge the parts: {e}", file=sys.stderr)
        return INCOMPLETE
    # The findings registry belongs to a full run (its repros run there, not here): without it the
    # report's verdicts and findings speak of the CUDA cases alone.
    merged.pop("registry", None)
    merged["run"]["markers"] = "gpu" + ("" if visible else " (dry run: no CUDA on this machine)")
    write_outputs(merged, out)
    total = time.monotonic() - started
    cuda = [r for r in merged["results"] if r["device"] == "cuda"]
    counts = {o: sum(r["outcome"] == o for r in merged["results"]) for o in ("passed", "failed", "error", "skipped",
                                                                             "xfailed", "xpassed")}
    spent = budget_skips(merged)
    info = {"mode": "gpu" if visible else "dry-run", "cuda_visible": visible, "how": how,
            "budget_s": args.budget, "budgets_s": {p.name: BUDGETS[p.name] * scale for p in parts},
            "parts_s": times, "total_s": round(total, 1), "counts": counts, "cuda_cases": len(cuda),
            "not_run_for_budget": len(spent), "python": sys.version.split()[0]}
    write_text_atomic(out / "gpu-run.json", json.dumps(info, indent=2) + "\n")
    print(f"==> rnn-conformance gpu: {total:.0f} s; {len(merged['results'])} records ({', '.join(f'{v} {k}' for k, v in counts.items() if v)}); "
          f"{len(cuda)} CUDA cases; report in {out / 'report.md'}", flush=True)
    if not visible:
        problems = dry_run_problems(merged)
        for p in problems:
            print(f"conformance: dry run: {p}", file=sys.stderr)
        skipped = sum(r["outcome"] == "skipped" and (r["reason"] or "").startswith(NO_CUDA) for r in cuda)
        print(f"==> dry run: {skipped} of {len(cuda)} CUDA cases skipped with {NO_CUDA!r}; "
              f"{'clean' if not problems else f'{len(problems)} problem(s)'}", flush=True)
        return FAILED if problems else OK
    if spent:
        print(f"conformance: {len(spent)} case(s) not run: a part's time budget was spent (see gpu-run.json)",
              file=sys.stderr)
    worst = max(codes.values(), default=0)
    if worst not in (0, 5, INCOMPLETE) or counts["failed"] or counts["error"]:
        return FAILED
    return INCOMPLETE if spent or worst == INCOMPLETE else OK


def fetch_wheels(dest, python="3.12"):
    """pip download WHEELS (pinned by requirements/constraints.txt) for CPython `python` on
    manylinux x86-64 into `dest`; (exit code, total bytes)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    pins = {}
    constraints = paths.ROOT / "requirements" / "constraints.txt"
    if constraints.is_file():
        for line in constraints.read_text().splitlines():
            name, _, version = line.split("#")[0].strip().partition("==")
            if version:
                pins[name.strip().lower()] = version.strip()
    wanted = [f"{w}=={pins[w]}" if w in pins else w for w in WHEELS]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", python,
           "--implementation", "cp", "--disable-pip-version-check", "--progress-bar", "off", "-d", str(dest)]
    for plat in WHEEL_PLATFORMS:
        cmd += ["--platform", plat]
    print(f"==> downloading {', '.join(wanted)} for CPython {python} (manylinux x86-64) into {dest}", flush=True)
    rc = subprocess.call(cmd + wanted)
    files = sorted(dest.glob("*.whl"))
    total = sum(f.stat().st_size for f in files)
    for f in files:
        print(f"    {f.name}  {f.stat().st_size / 2**20:.2f} MiB")
    print(f"==> {len(files)} wheel(s), {total / 2**20:.2f} MiB in all (limit {WHEEL_LIMIT / 2**20:.0f} MiB)")
    if rc == 0 and total > WHEEL_LIMIT:
        print(f"conformance: the wheels take {total / 2**20:.1f} MiB, over {WHEEL_LIMIT / 2**20:.0f} MiB", file=sys.stderr)
        return FAILED, total
    return (OK if rc == 0 else FAILED), total


def add_parsers(sub, kw):
    gpu = sub.add_parser("gpu", help="every CUDA case in one short run (dry run without CUDA); write DIR/report.*",
                         description="Run every CUDA case (the tests marked gpu) in three pytest parts, each under "
                         "its time budget, against the frameworks installed in this environment (no venv, no "
                         "network); write DIR/report.json, report.md, report.html, junit.xml and gpu-run.json. "
                         "Without CUDA it is a dry run: every CUDA case must skip with 'CUDA is not available on "
                         "this machine' (exit 0 when nothing failed).", **kw)
    gpu.add_argument("--out", required=True, metavar="DIR", help="output directory (created if needed)")
    gpu.add_argument("--budget", type=float, default=sum(BUDGETS.values()), metavar="SECONDS",
                     help=f"time budget of all parts together (default {sum(BUDGETS.values()):.0f} s, split "
                          + ", ".join(f"{k} {v:.0f}" for k, v in BUDGETS.items()) + ")")
    gpu.add_argument("--profile", default="ci", choices=("quick", "dev", "ci", "thorough"),
                     help="hypothesis profile (default: ci, deterministic)")
    gpu.set_defaults(func=cmd_gpu, seed=None, k=None, frameworks=None, numprocesses=None, strict_expectations=False,
                     adapter=None)
    wheels = sub.add_parser("gpu-wheels", help="download the wheels a GPU machine without network lacks (Keras 3 ...)",
                            description="Download " + ", ".join(WHEELS) + " (versions from requirements/"
                            "constraints.txt) as CPython 3.12 manylinux x86-64 wheels into DIR and print their "
                            "total size. On the GPU machine: pip install --no-index --no-deps --target "
                            "/tmp/site DIR/*.whl; export PYTHONPATH=/tmp/site.", **kw)
    wheels.add_argument("dest", nargs="?", default=".whl", metavar="DIR", help="where to put them (default .whl)")
    wheels.add_argument("--python", default="3.12", metavar="X.Y", help="target CPython version (default 3.12)")
    wheels.set_defaults(func=cmd_gpu_wheels)


def cmd_gpu(args) -> int:
    if not args.budget > 0:
        print("rnn-conformance gpu: error: --budget must be a positive number of seconds", file=sys.stderr)
        return USAGE
    return run(args)


def cmd_gpu_wheels(args) -> int:
    return fetch_wheels(args.dest, args.python)[0]

