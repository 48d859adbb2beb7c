"""`rnn-conformance run`: the suites in the right processes, one merged report.

A process has one Keras backend (and tf-keras 2 needs TF_USE_LEGACY_KERAS=1), so a run is
made of *parts*, each a pytest subprocess over the suites (``conformance.core.paths.SUITES``:
the checkout's ``suites/``, or the installed package's copy):

    main         every test except the tf_keras ones; Keras 3 on its TensorFlow backend
    keras-jax    the tests marked ``keras`` again, KERAS_BACKEND=jax
    keras-torch  the tests marked ``keras`` again, KERAS_BACKEND=torch
    tf-keras     the tests marked ``tf_keras``, TF_USE_LEGACY_KERAS=1

Parts other than main suffix their record ids with `` (part name)``. A part whose framework is
not installed, or not chosen with ``--frameworks``, is left out (and said so). Each part
writes ``DIR/parts/NAME.json`` (``NAME.json.partial.jsonl`` while it runs); when all are done
they are merged (`conformance.results.merge`) into ``DIR/report.json``, ``report.md``,
``report.html``, ``junit.xml`` and ``claims.md`` (the claims ledger on its own page; also to
``--claims PATH``), each written atomically. Outputs of an earlier run in DIR are moved to
``DIR/previous/`` when the run starts and deleted when it completes: an interrupted run loses
nothing and never presents the earlier report as its own.

Without ``--out`` a run writes to ``./rnn-conformance-runs/<UTC time>/`` (git-ignored in the
checkout): a run never touches the published reports unless told to (``make report`` passes
``--out reports/latest``). pytest runs with its cache provider off and hypothesis' and
pytest-benchmark's storage in a temporary directory removed afterwards, so no run leaves
``.pytest_cache/``, ``.hypothesis/`` or ``.benchmarks/`` behind; it gets the checkout's pyproject.toml or the package's own pytest.ini
(``-c``), never the configuration of the caller's project. Exit codes: see `conformance.entry.cli`.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from conformance.core import paths
from conformance.entry.outputs import write_outputs  # noqa: F401 (also used by gpu.py and cli.py)
from conformance.results.merge import MergeError, merge_reports
from conformance.results.report import ReportError, compared, load_report, validate_report

# The exit codes of every subcommand (conformance.entry.cli shows the table in each --help).
OK, FAILED, USAGE, NOTHING_COMPARED, INCOMPLETE, INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_CODES = (
    (OK, "success: every compared case passed or is an expected deviation; gate: nothing regressed"),
    (FAILED, "a case failed or errored; gate: a regression; validate: a --fail-on outcome or a missing reason"),
    (USAGE, "usage error or invalid input: bad arguments, an --out that is not a writable directory, a "
            "report that is missing, not JSON, truncated or of another schema, a missing --expectations "
            "directory, an --adapter spec that cannot be loaded, reports with nothing in common"),
    (NOTHING_COMPARED, "nothing was compared: no test collected, or every selected case skipped "
                       "(e.g. the framework is not installed)"),
    (INCOMPLETE, "run: a part ended without a report (pytest crashed or was killed); the finished records are kept"),
    (INTERRUPTED, "interrupted (Ctrl-C); the finished records are kept"),
)
# pytest's own exit codes (pytest.ExitCode), read from the parts
PYTEST_FAILED, PYTEST_INTERRUPTED, PYTEST_INTERNAL, PYTEST_USAGE, PYTEST_NO_TESTS = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class Part:
    name: str
    marker: str  # pytest -m expression
    what: str  # what it runs, for the part header
    env: dict = field(default_factory=dict)
    needs: tuple = ()  # modules that must be installed
    framework: str | None = None  # --frameworks name that selects it
    variant: bool = True  # suffix record ids with " (name)"


PARTS = (
    Part("main", "not tf_keras", "every suite except the tf_keras tests; Keras 3 on TensorFlow",
         {"KERAS_BACKEND": "tensorflow"}, variant=False),
    Part("keras-jax", "keras", "the Keras 3 tests again on the JAX backend", {"KERAS_BACKEND": "jax"},
         needs=("keras", "jax"), framework="keras"),
    Part("keras-torch", "keras", "the Keras 3 tests again on the torch backend", {"KERAS_BACKEND": "torch"},
         needs=("keras", "torch"), framework="keras"),
    Part("tf-keras", "tf_keras", "the tf-keras 2 tests", {"TF_USE_LEGACY_KERAS": "1"},
         needs=("tf_keras",), framework="tf_keras"),
)


def chosen_parts(frameworks, parts=PARTS):
    """[part] to run and [(part, why not)] left out."""
    run, skipped = [], []
    for part in parts:
        missing = [m for m in part.needs if importlib.util.find_spec(m) is None]
        if missing:
            skipped.append((part, f"{', '.join(missing)} not installed"))
        elif frameworks and part.framework and part.framework not in frameworks:
            skipped.append((part, f"{part.framework} not in --frameworks"))
        else:
            run.append(part)
    return run, skipped


def pytest_config(root):
    """The configuration file pytest gets: the checkout's pyproject.toml, else the package's own
    minimal pytest.ini (never the caller's project configuration)."""
    own = Path(root) / "pyproject.toml"
    return own if own.is_file() else paths.PACKAGE / "entry" / "pytest.ini"


def pytest_command(part, report_path, args, root, scratch=None):
    root = Path(root)
    cmd = [sys.executable, "-m", "pytest", str(root / "suites"), f"--rootdir={root}", "-c", str(pytest_config(root)),
           "-p", "conformance.entry.plugin", "-p", "no:cacheprovider", f"--conformance-report={report_path}",
           f"--hypothesis-profile={args.profile}", "-m", part.marker]
    if scratch is not None and importlib.util.find_spec("pytest_benchmark") is not None:
        cmd.append(f"--benchmark-storage=file://{Path(scratch) / 'benchmarks'}")  # not ./.benchmarks
    if part.variant:
        cmd.append(f"--conformance-variant={part.name}")
    if getattr(args, "seed", None) is not None:
        cmd.append(f"--hypothesis-seed={args.seed}")
    if args.k:
        cmd += ["-k", args.k]
    if args.frameworks:
        cmd.append(f"--frameworks={','.join(args.frameworks)}")
    if args.numprocesses:
        cmd += ["-n", str(args.numprocesses)]
    if args.strict_expectations:
        cmd.append("--strict-expectations")
    cmd += [f"--adapter={spec}" for spec in args.adapter or ()]
    cmd += [f"--semantics={path}" for path in getattr(args, "semantics", None) or ()]
    if getattr(args, "strict_semantics", False):
        cmd.append("--strict-semantics")
    return cmd


def child_env(extra, scratch=None):
    """os.environ plus `extra`; relative PYTHONPATH entries made absolute (pytest runs in the
    tool's root, not the caller's directory), a checkout's root put first, hypothesis' storage
    moved into `scratch`."""
    env = dict(os.environ)
    entries = [os.path.abspath(p) if p else os.getcwd() for p in env.get("PYTHONPATH", "").split(os.pathsep) if p] \
        if env.get("PYTHONPATH") else []
    home = str(paths.PACKAGE.parent)
    if not paths.INSTALLED and home not in entries:
        entries.insert(0, home)
    if entries:
        env["PYTHONPATH"] = os.pathsep.join(entries)
    if scratch is not None:
        env["HYPOTHESIS_STORAGE_DIRECTORY"] = str(Path(scratch) / "hypothesis")
    env.update(extra)
    return env


class Interrupted(Exception):
    pass


def _call(cmd, env, cwd):
    """Run one part; on Ctrl-C stop it and raise Interrupted. Ctrl-C in a terminal reaches the
    part too (one process group): give it a few seconds to end on its own (pytest keeps its
    finished records), then SIGINT, SIGTERM, SIGKILL."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        for sig, grace in ((None, 10), (signal.SIGINT, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                if sig is not None:
                    proc.send_signal(sig)
                proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
            except KeyboardInterrupt:  # a second Ctrl-C: stop at once
                proc.kill()
                proc.wait()
                break
        raise Interrupted from None


def run_part(part, i, n, out, args, root, scratch):
    """(exit code, report or None) of one part, with progress lines around pytest's own."""
    path = out / "parts" / f"{part.name}.json"
    path.unlink(missing_ok=True)
    cmd = pytest_command(part, path, args, root, scratch)
    env_text = " ".join(f"{k}={v}" for k, v in part.env.items())
    chosen = f"; frameworks {','.join(args.frameworks)}" if args.frameworks else ""
    chosen += f"; -k {args.k!r}" if args.k else ""
    print(f"==> [{i}/{n}] part {part.name}: {part.what} ({env_text}; profile {args.profile}{chosen})", flush=True)
    print(f"    {' '.join(cmd[1:])}", flush=True)
    start = time.monotonic()
    code = _call(cmd, child_env(part.env, scratch), cwd=root)
    took = time.monotonic() - start
    try:
        report = load_report(path)
    except ReportError:
        report = None
    print(f"==> [{i}/{n}] part {part.name}: exit {code} after {took:.0f} s", flush=True)
    return code, report


OUTPUTS = ("report.json", "report.md", "details.md", "findings.md", "report.html", "junit.xml", "claims.md",
           "drafts/")


def default_out(now=None):
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
    return Path.cwd() / "rnn-conformance-runs" / stamp


def prepare_out(out):
    """Make `out` a writable directory; a message (str) saying why it cannot be, else None."""
    if out.exists() and not out.is_dir():
        return f"--out {out}: exists and is not a directory"
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as e:
        return f"--out {out}: cannot write there ({e.strerror or e})"
    return None


def _set_aside(out):
    """Move an earlier run's outputs in `out` to out/previous/; the moved names."""
    earlier = [n for n in OUTPUTS if (out / n).exists()]
    if earlier:
        prev = out / "previous"
        shutil.rmtree(prev, ignore_errors=True)
        prev.mkdir()
        for n in earlier:
            os.replace(out / n, prev / n)
    return earlier


def _run_metadata(args, parts, left_out):
    """The merged report's `run` (docs/report-schema.md); `deselected` comes from the parts."""
    ran = [{"name": p.name, "ran": True, "why": None} for p in parts]
    out = [{"name": p.name, "ran": False, "why": why} for p, why in left_out]
    order = [p.name for p in PARTS]
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    prog = "python -m conformance" if prog in ("__main__.py", "-m", "") else prog
    return {"command": [prog, *sys.argv[1:]],
            "profile": args.profile, "seed": getattr(args, "seed", None), "k": args.k, "markers": None,
            "frameworks": list(args.frameworks) if args.frameworks else None,
            "adapters": list(args.adapter or ()), "variant": None,
            "parts": sorted(ran + out, key=lambda p: order.index(p["name"]) if p["name"] in order else len(order))}


def _stderr(msg):
    print(f"conformance: {msg}", file=sys.stderr, flush=True)


def run(args, root):
    """The whole run; returns the exit code (the table in conformance.entry.cli)."""
    root = Path(root)
    out = (Path(args.out) if args.out else default_out()).resolve()
    if not (root / "suites").is_dir():
        _stderr(f"no suites/ directory in {root}")
        return USAGE
    problem = prepare_out(out)
    if problem:
        _stderr(problem)
        return USAGE
    parts, left_out = chosen_parts(set(args.frameworks or ()))
    print(f"==> rnn-conformance run: {len(parts)} part(s) -> {out}", flush=True)
    for part, why in left_out:
        print(f"==> part {part.name} left out: {why}", flush=True)
    earlier = _set_aside(out)
    if earlier:
        print(f"==> an earlier run's {', '.join(earlier)} moved to {out / 'previous'} (deleted when this run completes)")
    named, codes = [], {}
    scratch = tempfile.mkdtemp(prefix="rnn-conformance-")
    try:
        for i, part in enumerate(parts, 1):
            code, report = run_part(part, i, len(parts), out, args, root, scratch)
            if code == PYTEST_USAGE:
                _stderr("pytest rejected the run (usage error; see its ERROR line above), e.g. an --adapter "
                        "spec it cannot load; no report was written.")
                return USAGE
            if report is None:
                partial = out / "parts" / f"{part.name}.json.partial.jsonl"
                _stderr(f"part {part.name} ended without a report (exit {code}); finished records are in {partial}"
                        + (f" and {out / 'parts'}/*.json" if named else "") + "; no report.json written.")
                return INTERRUPTED if code == PYTEST_INTERRUPTED else INCOMPLETE
            if code not in (0, PYTEST_FAILED, PYTEST_NO_TESTS):
                _stderr(f"part {part.name} exited {code}; its records are kept")
            named.append((part.name, report))
            codes[part.name] = code
    except Interrupted:
        print(file=sys.stderr)
        _stderr(f"interrupted; finished records are in {out / 'parts'} (*.json, *.partial.jsonl); "
                "no report.json written" + (f"; the earlier report is in {out / 'previous'}" if earlier else ""))
        return INTERRUPTED
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not named:
        _stderr("no part could run" + "".join(f"; {p.name}: {why}" for p, why in left_out))
        return NOTHING_COMPARED
    try:
        merged = merge_reports(named, run=_run_metadata(args, parts, left_out))
    except MergeError as e:
        _stderr(f"cannot merge the parts: {e}")
        return INCOMPLETE
    write_outputs(merged, out, claims=getattr(args, "claims", None))
    shutil.rmtree(out / "previous", ignore_errors=True)
    problems = validate_report(merged)
    for p in problems:
        _stderr(f"invalid report: {p}")
    from conformance.results.render import summary_line

    print(f"conformance: {out / 'report.json'} (+ report.md, details.md, findings.md, report.html, junit.xml, "
          f"claims.md, drafts/): {summary_line(merged)}")
    if not compared(merged):
        _stderr(nothing_compared_message(merged))
        return NOTHING_COMPARED
    worst = max(codes.values(), default=0)
    if problems:
        return USAGE
    return FAILED if worst not in (0, PYTEST_NO_TESTS) else OK


def nothing_compared_message(report):
    """'nothing was compared: ...' with the commonest skip reasons."""
    from collections import Counter

    results = report["results"]
    if not results:
        return "nothing was compared: no test was collected (-k or --frameworks matched nothing?)"
    skipped = [r for r in results if r["outcome"] == "skipped"]
    reasons = Counter((r["reason"] or "no reason given") for r in skipped)
    top = "; ".join(f"{n} x {why}" for why, n in reasons.most_common(3))
    own = len(results) - len(skipped)
    if not skipped:
        return (f"nothing was compared: the {own} selected case(s) are the reference's own; no case of a "
                "framework was selected (-k or --frameworks left none?)")
    rest = f"; the other {own} are the reference's own cases" if own else ""
    return (f"nothing was compared: {'all ' if not own else ''}{len(skipped)} of {len(results)} selected cases "
            f"skipped ({top}){rest}")
