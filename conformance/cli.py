"""Command line: `python -m conformance run|validate`.

run       runs the suites in a pytest subprocess (frameworks load in their own process) and
          writes DIR/report.json; exits with pytest's code. --adapter MODULE:INFO (repeatable)
          adds an outside adapter path (passed on as pytest's --adapter); the module must be
          importable from the checkout or the PYTHONPATH.
validate  checks a report.json: exit 0 valid, 2 missing or invalid, 1 valid but a --fail-on
          outcome occurs (or, with --require-reasons, a non-passed result has no reason).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from .report import OUTCOMES, ReportError, load_report, validate_report

ROOT = Path(__file__).resolve().parent.parent  # the checkout: suites/ and conftest.py live here
NO_TESTS = 5  # pytest.ExitCode.NO_TESTS_COLLECTED
USAGE_ERROR = 4  # pytest.ExitCode.USAGE_ERROR


def _summary(report: dict) -> str:
    counts = Counter(r.get("outcome") for r in report.get("results", []))
    return ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts[o]) or "no results"


def cmd_run(args) -> int:
    report_path = (Path(args.out) if args.out else ROOT / "reports" / "latest").resolve() / "report.json"
    cmd = [sys.executable, "-m", "pytest", "suites", f"--conformance-report={report_path}",
           f"--hypothesis-profile={args.profile}"]
    if args.k:
        cmd += ["-k", args.k]
    cmd += [f"--adapter={spec}" for spec in args.adapter or ()]
    if not (ROOT / "suites").is_dir():
        print(f"conformance: no suites/ directory in {ROOT}", file=sys.stderr)
        return NO_TESTS
    report_path.unlink(missing_ok=True)  # never summarise a previous run's report as this one's
    print("conformance: running", " ".join(cmd[1:]), f"(in {ROOT})", flush=True)
    code = subprocess.call(cmd, cwd=ROOT, env=_child_env())
    if code == USAGE_ERROR:
        print("conformance: pytest rejected the run (usage error, exit 4; see its ERROR line above), "
              "e.g. an --adapter spec it cannot load; no report was written.", file=sys.stderr)
        return code
    if code == NO_TESTS:
        print("conformance: NO TESTS were collected (suites/ empty, or -k matched nothing); "
              "the report has no results. Exit code 5.", file=sys.stderr)
    try:
        report = load_report(report_path)
    except ReportError as e:
        print(f"conformance: no report: {e}", file=sys.stderr)
        partial = Path(f"{report_path}.partial.jsonl")
        if partial.exists():
            print(f"conformance: the run was interrupted; finished records are in {partial}", file=sys.stderr)
        return code or 2
    problems = validate_report(report)
    for p in problems:
        print(f"conformance: invalid report: {p}", file=sys.stderr)
    print(f"conformance: {report_path}: {_summary(report)}")
    return code or (2 if problems else 0)


def _child_env() -> dict:
    """os.environ with relative PYTHONPATH entries made absolute: they are relative to the
    caller's directory, and the pytest subprocess runs in the checkout."""
    env = dict(os.environ)
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) if p else os.getcwd()
                                            for p in env["PYTHONPATH"].split(os.pathsep))
    return env


def _adapter_spec(text: str) -> str:
    from .adapters.base import _SPEC

    if not _SPEC.match(text):
        raise argparse.ArgumentTypeError(f"expected 'package.module:OBJ' naming an AdapterInfo "
                                         f"(e.g. examples.hand_lstm:INFO), got {text!r}")
    return text


def cmd_validate(args) -> int:
    try:
        report = load_report(args.path)
    except ReportError as e:
        print(f"invalid: {e}", file=sys.stderr)
        return 2
    problems = validate_report(report)
    for p in problems:
        print(f"invalid: {p}", file=sys.stderr)
    if problems:
        print(f"{args.path}: {len(problems)} problem(s)", file=sys.stderr)
        return 2
    print(f"{args.path}: valid ({_summary(report)})")
    bad = [r for r in report["results"] if r["outcome"] in (args.fail_on or ())]
    if args.require_reasons:
        bad += [r for r in report["results"] if r["outcome"] != "passed" and not r["reason"] and r not in bad]
    for r in bad:
        print(f"{r['outcome']}: {r['id']}: {r['reason'] or '(no reason given)'}", file=sys.stderr)
    return 1 if bad else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m conformance", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run the conformance suites and write DIR/report.json")
    run.add_argument("--out", metavar="DIR", help="output directory (default: reports/latest in the checkout)")
    run.add_argument("--profile", default="ci", choices=("dev", "ci", "thorough"),
                     help="hypothesis profile (default: ci, deterministic)")
    run.add_argument("-k", metavar="EXPR", help="only tests matching this pytest -k expression")
    run.add_argument("--adapter", action="append", type=_adapter_spec, metavar="MODULE:OBJ",
                     help="also run the outside adapter path this 'package.module:INFO' spec names "
                          "(an AdapterInfo), as $RNN_CONFORMANCE_ADAPTERS does; repeatable")
    run.set_defaults(func=cmd_run)
    val = sub.add_parser("validate", help="check a report.json against the schema")
    val.add_argument("path", metavar="PATH")
    val.add_argument("--fail-on", action="append", choices=OUTCOMES, metavar="OUTCOME",
                     help="exit 1 if any result has this outcome (repeatable)")
    val.add_argument("--require-reasons", action="store_true",
                     help="exit 1 if a result other than passed has no reason")
    val.set_defaults(func=cmd_validate)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)
