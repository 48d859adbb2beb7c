"""`python -m conformance run`: the suites in the right processes, one merged report.

A process has one Keras backend (and tf-keras 2 needs TF_USE_LEGACY_KERAS=1), so a run is
made of *parts*, each a pytest subprocess over ``suites/``:

    main         every test except the tf_keras ones; Keras 3 on its TensorFlow backend
    keras-jax    the tests marked ``keras`` again, KERAS_BACKEND=jax
    keras-torch  the tests marked ``keras`` again, KERAS_BACKEND=torch
    tf-keras     the tests marked ``tf_keras``, TF_USE_LEGACY_KERAS=1

Parts other than main suffix their record ids with `` (part name)``. A part whose framework is
not installed, or not chosen with ``--frameworks``, is left out (and said so). Each part
writes ``DIR/parts/NAME.json`` (``NAME.json.partial.jsonl`` while it runs); when all are done
they are merged (`conformance.results.merge`) into ``DIR/report.json``, ``report.md``, ``report.html``,
``junit.xml`` and ``claims.md`` (the claims ledger on its own page, `conformance.results.claims`; also
to ``--claims PATH``), each written atomically. An interrupted run writes none of these: the
finished parts and the partial file of the interrupted one keep what was done.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from conformance.results.merge import MergeError, merge_reports
from conformance.results.report import ReportError, load_report, validate_report, write_report_atomic

NO_TESTS = 5  # pytest.ExitCode.NO_TESTS_COLLECTED
USAGE_ERROR = 4  # pytest.ExitCode.USAGE_ERROR
INTERRUPTED = 2  # pytest.ExitCode.INTERRUPTED


@dataclass(frozen=True)
class Part:
    name: str
    marker: str  # pytest -m expression
    env: dict = field(default_factory=dict)
    needs: tuple = ()  # modules that must be installed
    framework: str | None = None  # --frameworks name that selects it
    variant: bool = True  # suffix record ids with " (name)"


PARTS = (
    Part("main", "not tf_keras", {"KERAS_BACKEND": "tensorflow"}, variant=False),
    Part("keras-jax", "keras", {"KERAS_BACKEND": "jax"}, needs=("keras", "jax"), framework="keras"),
    Part("keras-torch", "keras", {"KERAS_BACKEND": "torch"}, needs=("keras", "torch"), framework="keras"),
    Part("tf-keras", "tf_keras", {"TF_USE_LEGACY_KERAS": "1"}, needs=("tf_keras",), framework="tf_keras"),
)


def chosen_parts(frameworks, parts=PARTS):
    """[(part, None)] to run and [(part, why not)] left out."""
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


def pytest_command(part, report_path, args, root):
    cmd = [sys.executable, "-m", "pytest", "suites", f"--conformance-report={report_path}",
           f"--hypothesis-profile={args.profile}", "-m", part.marker]
    if part.variant:
        cmd.append(f"--conformance-variant={part.name}")
    if args.k:
        cmd += ["-k", args.k]
    if args.frameworks:
        cmd.append(f"--frameworks={','.join(args.frameworks)}")
    if args.numprocesses:
        cmd += ["-n", str(args.numprocesses)]
    if args.strict_expectations:
        cmd.append("--strict-expectations")
    cmd += [f"--adapter={spec}" for spec in args.adapter or ()]
    return cmd


def child_env(extra):
    """os.environ plus `extra`, relative PYTHONPATH entries made absolute (the pytest process
    runs in the checkout, not the caller's directory)."""
    env = dict(os.environ)
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) if p else os.getcwd()
                                            for p in env["PYTHONPATH"].split(os.pathsep))
    env.update(extra)
    return env


def run_part(part, i, n, out, args, root):
    """(exit code, report or None) of one part, with progress lines around pytest's own."""
    path = out / "parts" / f"{part.name}.json"
    path.unlink(missing_ok=True)
    cmd = pytest_command(part, path, args, root)
    env_text = " ".join(f"{k}={v}" for k, v in part.env.items())
    print(f"==> [{i}/{n}] part {part.name}: {env_text} {' '.join(cmd[1:])}", flush=True)
    start = time.monotonic()
    code = subprocess.call(cmd, cwd=root, env=child_env(part.env))
    took = time.monotonic() - start
    try:
        report = load_report(path)
    except ReportError:
        report = None
    print(f"==> [{i}/{n}] part {part.name}: exit {code} after {took:.0f} s", flush=True)
    return code, report


OUTPUTS = ("report.json", "report.md", "report.html", "junit.xml", "claims.md")


def write_outputs(report, out, claims=None):
    """report.json, report.md, report.html, junit.xml and claims.md in `out`, each atomically;
    claims.md also to the path `claims` if given."""
    from conformance.results import claims as ledger
    from conformance.core.files import write_text_atomic
    from conformance.results.render import render_html, render_junit, render_markdown

    write_report_atomic(report, out / "report.json")
    write_text_atomic(out / "report.md", render_markdown(report))
    write_text_atomic(out / "report.html", render_html(report))
    write_text_atomic(out / "junit.xml", render_junit(report))
    page = ledger.render_markdown(report)
    write_text_atomic(out / "claims.md", page)
    if claims:
        write_text_atomic(claims, page)


def run(args, root):
    """The whole run; returns the exit code (0 all passed; pytest's failure code otherwise)."""
    out = (Path(args.out) if args.out else root / "reports" / "latest").resolve()
    if not (root / "suites").is_dir():
        print(f"conformance: no suites/ directory in {root}", file=sys.stderr)
        return NO_TESTS
    parts, left_out = chosen_parts(set(args.frameworks or ()))
    for part, why in left_out:
        print(f"==> part {part.name} left out: {why}")
    for name in OUTPUTS:
        (out / name).unlink(missing_ok=True)  # never present an earlier run's report as this one's
    named, codes = [], []
    for i, part in enumerate(parts, 1):
        code, report = run_part(part, i, len(parts), out, args, root)
        if code == USAGE_ERROR:
            print("conformance: pytest rejected the run (usage error, exit 4; see its ERROR line above), "
                  "e.g. an --adapter spec it cannot load; no report was written.", file=sys.stderr)
            return code
        if report is None:
            partial = out / "parts" / f"{part.name}.json.partial.jsonl"
            print(f"conformance: part {part.name} ended without a report (exit {code}): the run was "
                  f"interrupted; finished records are in {partial}"
                  + (f" and {out / 'parts'}/*.json" if named else "") + "; no report.json written.",
                  file=sys.stderr)
            return code or INTERRUPTED
        if code not in (0, 1, NO_TESTS):
            print(f"conformance: part {part.name} exited {code}; its records are kept", file=sys.stderr)
        named.append((part.name, report))
        codes.append(code)
    if not named:
        print("conformance: no part could run", file=sys.stderr)
        return NO_TESTS
    try:
        merged = merge_reports(named)
    except MergeError as e:
        print(f"conformance: cannot merge the parts: {e}", file=sys.stderr)
        return 2
    write_outputs(merged, out, claims=getattr(args, "claims", None))
    problems = validate_report(merged)
    for p in problems:
        print(f"conformance: invalid report: {p}", file=sys.stderr)
    from conformance.results.render import summary_line

    print(f"conformance: {out / 'report.json'} (+ report.md, report.html, junit.xml, claims.md): {summary_line(merged)}")
    if all(c == NO_TESTS for c in codes):
        print("conformance: NO TESTS were collected (suites/ empty, or -k matched nothing); "
              "the report has no results. Exit code 5.", file=sys.stderr)
        return NO_TESTS
    worst = max((c for c in codes if c != NO_TESTS), default=0)
    return worst or (2 if problems else 0)
