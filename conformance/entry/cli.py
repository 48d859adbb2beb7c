"""Command line: `rnn-conformance run|merge|gate|findings|render|validate|gpu|gpu-wheels` (also `python -m conformance`).

run       runs the suites against the frameworks installed here, in pytest subprocesses (one
          per Keras backend; see conformance/entry/runner.py), shows progress, and writes
          DIR/report.json, report.md, report.html, junit.xml and claims.md (default DIR:
          ./rnn-conformance-runs/<UTC time>/; --claims PATH writes the ledger there too).
merge     combines reports (the jobs of a CI matrix) into DIR/...: duplicate ids or an
          invalid/other-schema input are refused.
gate      compares CANDIDATE with BASELINE, like with like: cases one report's run did not
          select are "not run", not vanished; prints a markdown summary; reports that share
          no case are refused (see conformance/results/gate.py).
findings  lists the findings registry (findings/), writes upstream issue drafts (--drafts DIR),
          regenerates the finding lists in docs/ (--docs; --check-docs exits 1 if stale).
render    (re)writes report.md, details.md, findings.md, report.html, junit.xml, claims.md and
          drafts/ beside a report.json.
validate  checks a report.json against the schema (docs/report-schema.md).
matrix    every release of requirements/matrix.toml in its own venv (installed, run, removed),
          the gate between consecutive releases, reports/versions/matrix.{json,md}; resumes
          (see conformance/entry/matrix.py).
gpu       every CUDA case in one short run against the installed frameworks, for a borrowed GPU
          machine (a dry run where there is no CUDA; see conformance/entry/gpu.py);
          gpu-wheels DIR downloads the wheels such a machine lacks.

A REPORT argument may be a report.json or the directory holding one (what `run --out DIR`
wrote).
"""
from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from conformance.core import paths
from conformance.results.report import OUTCOMES, ReportError, load_report, validate_report

from conformance.entry.runner import EXIT_CODES, INTERRUPTED, NOTHING_COMPARED, USAGE

ROOT = paths.ROOT  # suites/, expectations/, claims/: the checkout, or the installed package
PROFILES = ("quick", "dev", "ci", "thorough")
EXIT_TABLE = "exit codes (every subcommand):\n" + "\n".join(
    textwrap.fill(text, 79, initial_indent=f"  {code:>3}  ", subsequent_indent=" " * 7) for code, text in EXIT_CODES)


def _load_valid(path):
    """The report at `path`, or None after printing why it cannot be used."""
    try:
        report = load_report(path)
    except ReportError as e:
        print(f"invalid: {e}", file=sys.stderr)
        return None
    problems = validate_report(report)
    for p in problems:
        print(f"invalid: {path}: {p}", file=sys.stderr)
    return None if problems else report


def _out_dir(text):
    """--out DIR checked before any work: USAGE and a message if it cannot be a writable directory."""
    from conformance.entry.runner import prepare_out

    problem = prepare_out(Path(text).resolve())
    if problem:
        print(f"conformance: {problem}", file=sys.stderr)
    return problem


def cmd_run(args) -> int:
    from conformance.entry.runner import run

    problem = _check_frameworks(args)
    if problem:
        print(f"rnn-conformance run: error: {problem}", file=sys.stderr)
        return USAGE
    return run(args, ROOT)


def cmd_merge(args) -> int:
    from conformance.results.merge import MergeError, merge_reports
    from conformance.results.render import summary_line
    from conformance.entry.runner import write_outputs

    named = []
    for path in args.paths:
        report = _load_valid(path)
        if report is None:
            return USAGE
        named.append((path, report))
    try:
        merged = merge_reports(named)
    except MergeError as e:
        print(f"merge: {e}", file=sys.stderr)
        return USAGE
    if _out_dir(args.out):
        return USAGE
    out = Path(args.out)
    write_outputs(merged, out)
    print(f"merged {len(named)} reports into {out / 'report.json'}: {summary_line(merged)}")
    return 0


def cmd_gate(args) -> int:
    from conformance.results import expectations as expect
    from conformance.results import gate
    from conformance.core.files import write_text_atomic

    reports = [_load_valid(p) for p in (args.baseline, args.candidate)]
    if any(r is None for r in reports):
        return USAGE
    if args.out and Path(args.out).is_dir():
        print(f"gate: --out {args.out}: is a directory (give a file name, e.g. {Path(args.out) / 'gate.md'})",
              file=sys.stderr)
        return USAGE
    if args.expectations and not Path(args.expectations).is_dir():
        print(f"gate: --expectations {args.expectations}: no such directory", file=sys.stderr)
        return USAGE
    try:
        entries = expect.load_dir(args.expectations or paths.EXPECTATIONS)
    except expect.ExpectationError as e:
        print(f"gate: {e}", file=sys.stderr)
        return 2
    try:
        verdict = gate.compare(*reports, entries=entries, strict=args.strict)
    except gate.GateError as e:
        print(f"gate: {e}", file=sys.stderr)
        return 2
    text = gate.markdown(verdict, *reports, names=(args.baseline, args.candidate))
    print(text, end="")
    if args.out:
        try:
            write_text_atomic(args.out, text)
        except OSError as e:
            print(f"gate: --out {args.out}: cannot write ({e.strerror or e})", file=sys.stderr)
            return USAGE
    return 0 if verdict.ok else 1


def cmd_render(args) -> int:
    from conformance.entry.runner import write_outputs

    report = _load_valid(args.path)
    if report is None:
        return USAGE
    where = Path(args.path) if Path(args.path).is_dir() else Path(args.path).parent
    write_outputs(report, where)
    print(f"wrote report.md, details.md, findings.md, report.html, junit.xml, claims.md and drafts/ in {where}")
    return 0


def cmd_validate(args) -> int:
    from conformance.results.render import summary_line

    from conformance.entry.runner import nothing_compared_message
    from conformance.results.report import compared

    report = _load_valid(args.path)
    if report is None:
        print(f"{args.path}: not a valid report", file=sys.stderr)
        return USAGE
    if not compared(report):
        print(f"{args.path}: valid, but {nothing_compared_message(report)}", file=sys.stderr)
        return NOTHING_COMPARED
    print(f"{args.path}: valid ({summary_line(report)})")
    bad = [r for r in report["results"] if r["outcome"] in (args.fail_on or ())]
    if args.require_reasons:
        bad += [r for r in report["results"] if r["outcome"] != "passed" and not r["reason"] and r not in bad]
    for r in bad:
        print(f"{r['outcome']}: {r['id']}: {r['reason'] or '(no reason given)'}", file=sys.stderr)
    return 1 if bad else 0


def _adapter_spec(text: str) -> str:
    from conformance.adapters.base import SPEC_PATTERN

    if not SPEC_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"expected 'package.module:OBJ' naming an AdapterInfo "
                                         f"(e.g. examples.hand_lstm:INFO), got {text!r}")
    return text


def _semantics_file(text: str) -> str:
    """--semantics FILE: an existing file, as an absolute path (the parts run elsewhere)."""
    path = Path(text).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return str(path.resolve())


def _frameworks(text: str) -> list:
    """--frameworks: comma-separated names (checked in `_check_frameworks` once the outside
    adapters are known)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated framework names, got {text!r}")
    return names


def _check_frameworks(args):
    """A message if a --frameworks name is none of: built-in, "reference", or the framework of
    an outside adapter (--adapter, $RNN_CONFORMANCE_ADAPTERS); None if all are known. A spec
    that cannot be resolved here is left to pytest's own check (a usage error there)."""
    from conformance.adapters import registry

    names = args.frameworks or []
    if all(n in (registry.REFERENCE, *registry.FRAMEWORKS) for n in names):
        return None
    try:
        infos = list(registry.adapters()) + [registry.info_of(spec) for spec in args.adapter or ()]
    except Exception:  # noqa: BLE001 - pytest reports the bad spec or variable
        return None
    try:
        registry.check_frameworks(names, infos)
    except ValueError as e:
        return f"argument --frameworks: {e}"
    return None


def _jobs(text: str):
    if text == "auto" or (text.isdigit() and int(text) > 0):
        return text
    raise argparse.ArgumentTypeError(f"expected a positive number or 'auto', got {text!r}")


def _seed(text: str) -> str:
    if text.isdigit():
        return text
    raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")


def cmd_findings(args) -> int:
    from conformance.results import findings as registry
    from conformance.results.report import environment
    from conformance.core.files import write_text_atomic

    try:
        entries = registry.load_dir(paths.FINDINGS)
    except registry.FindingError as e:
        print(f"findings: {e}", file=sys.stderr)
        return USAGE
    if args.drafts:
        out = Path(args.drafts)
        if out.exists() and not out.is_dir():
            print(f"findings: --drafts {out}: exists and is not a directory", file=sys.stderr)
            return USAGE
        out.mkdir(parents=True, exist_ok=True)
        env = environment()
        for f in entries:
            write_text_atomic(out / f"{f.id}.md", registry.draft_markdown(f, env))
        print(f"wrote {len(entries)} drafts in {out}")
    if args.docs or args.check_docs:
        docs = sorted((paths.ROOT / "docs").glob("*.md"))
        stale = []
        for page in docs:
            text = page.read_text(encoding="utf-8")
            new = registry.update_docs(text, entries)
            if new != text:
                stale.append(page.name)
                if args.docs:
                    write_text_atomic(page, new)
        if args.check_docs and stale:
            print(f"findings: the finding lists of docs/{', docs/'.join(stale)} differ from the registry; "
                  "run `rnn-conformance findings --docs`", file=sys.stderr)
            return 1
        print(f"docs: {len(stale)} page(s) {'rewritten' if args.docs else 'out of date'}")
    if not (args.drafts or args.docs or args.check_docs):
        for f in entries:
            up = f.upstream or f.upstream_status
            print(f"{f.id}\n    {f.title}\n    {f.where()}; {f.kind}; upstream: {up}")
        print(f"{len(entries)} findings ({sum(bool(f.upstream) for f in entries)} with an upstream link) "
              f"in {paths.FINDINGS}")
    return 0


def parser() -> argparse.ArgumentParser:
    kw = dict(formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXIT_TABLE)
    p = argparse.ArgumentParser(prog="rnn-conformance", description=__doc__, **kw)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run the conformance suites and write DIR/report.{json,md,html}, junit.xml",
                         description="Run the conformance suites against the frameworks installed in this "
                                     "environment and write DIR/report.json, report.md, report.html, junit.xml "
                                     "and claims.md.", **kw)
    run.add_argument("--out", metavar="DIR",
                     help="output directory, created if needed (default: a fresh ./rnn-conformance-runs/<UTC time>/; "
                          "an earlier run's report in DIR is kept in DIR/previous/ until this one completes)")
    run.add_argument("--profile", default="ci", choices=PROFILES,
                     help="hypothesis profile (default: ci, deterministic; quick: fewer examples; "
                          "dev/thorough: random, 10/500 examples)")
    run.add_argument("--seed", type=_seed, metavar="N",
                     help="hypothesis seed (--hypothesis-seed) for the random profiles; recorded in the report")
    run.add_argument("--claims", metavar="PATH",
                     help="also write the claims ledger page (claims.md) to PATH (make report: reports/claims.md)")
    run.add_argument("-k", metavar="EXPR", help="only tests matching this pytest -k expression")
    run.add_argument("--adapter", action="append", type=_adapter_spec, metavar="MODULE:OBJ",
                     help="also run the outside adapter path this 'package.module:INFO' spec names "
                          "(an AdapterInfo), as $RNN_CONFORMANCE_ADAPTERS does; repeatable")
    run.add_argument("--frameworks", type=_frameworks, metavar="A,B",
                     help="only these frameworks' tests (torch, keras, tensorflow, tf_keras, flax, jax, "
                          "onnxruntime); parts of other frameworks are left out")
    run.add_argument("-n", "--numprocesses", type=_jobs, metavar="N",
                     help="pytest-xdist workers per part (a number or 'auto')")
    run.add_argument("--strict-expectations", action="store_true",
                     help="a test an expectation marks xfail fails if it passes")
    run.add_argument("--semantics", action="append", type=_semantics_file, metavar="FILE",
                     help="a TOML file declaring the dropout semantics of outside adapter paths "
                          "([[fingerprint]] tables: adapter, knob, [fingerprint.properties]); repeatable")
    run.add_argument("--strict-semantics", action="store_true",
                     help="a dropout knob whose semantics nobody declared fails its fingerprint test")
    run.set_defaults(func=cmd_run)
    merge = sub.add_parser("merge", help="merge reports (e.g. one per CI job) into DIR",
                           description="Merge reports (e.g. one per CI job) into DIR/report.json, report.md, "
                                       "report.html, junit.xml and claims.md.", **kw)
    merge.add_argument("paths", nargs="+", metavar="REPORT", help="report.json files (or directories holding one)")
    merge.add_argument("--out", required=True, metavar="DIR", help="output directory (created if needed)")
    merge.set_defaults(func=cmd_merge)
    gate = sub.add_parser("gate", help="compare CANDIDATE with BASELINE; exit 1 on a regression",
                          description="Compare a candidate report with a baseline, like with like; exit 1 on a "
                                      "regression (see conformance/results/gate.py for what counts as one).", **kw)
    gate.add_argument("baseline", metavar="BASELINE", help="the trusted report (report.json or its directory)")
    gate.add_argument("candidate", metavar="CANDIDATE", help="the report to judge (report.json or its directory)")
    gate.add_argument("--expectations", metavar="DIR",
                      help="expectation files (default: the expectations/ this tool ships)")
    gate.add_argument("--strict", action="store_true", help="an unexpected pass (xpassed) is a regression")
    gate.add_argument("--out", metavar="FILE", help="also write the markdown summary to FILE")
    gate.set_defaults(func=cmd_gate)
    fnd = sub.add_parser("findings", help="list the findings registry; write upstream drafts; update the docs' lists",
                         description="The findings registry (findings/: one entry per root cause, each with a "
                                     "standalone repro): list it, write an upstream issue draft per finding with "
                                     "this environment's versions, or regenerate the finding lists in docs/.", **kw)
    fnd.add_argument("--drafts", metavar="DIR", help="write DIR/<id>.md, one issue draft per finding")
    fnd.add_argument("--docs", action="store_true",
                     help="rewrite the lists between <!-- findings:... --> markers in docs/*.md")
    fnd.add_argument("--check-docs", action="store_true", help="exit 1 if those lists differ from the registry")
    fnd.set_defaults(func=cmd_findings)
    render = sub.add_parser("render", help="write report.md, report.html, junit.xml, claims.md beside a report.json",
                            description="(Re)write report.md, report.html, junit.xml and claims.md beside a "
                                        "report.json.", **kw)
    render.add_argument("path", metavar="REPORT", help="a report.json (or the directory holding one)")
    render.set_defaults(func=cmd_render)
    val = sub.add_parser("validate", help="check a report.json against the schema",
                         description="Check a report.json against the schema (docs/report-schema.md); a valid "
                                     "report in which nothing was compared (every case skipped) exits 3.", **kw)
    val.add_argument("path", metavar="REPORT", help="a report.json (or the directory holding one)")
    val.add_argument("--fail-on", action="append", choices=OUTCOMES, metavar="OUTCOME",
                     help=f"exit 1 if any result has this outcome (repeatable; one of {', '.join(OUTCOMES)})")
    val.add_argument("--require-reasons", action="store_true",
                     help="exit 1 if a result other than passed has no reason")
    val.set_defaults(func=cmd_validate)
    from conformance.entry.gpu import add_parsers as add_gpu_parsers

    add_gpu_parsers(sub, kw)
    from conformance.entry.matrix import add_parsers as add_matrix_parsers

    add_matrix_parsers(sub, kw)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("\nconformance: interrupted", file=sys.stderr)
        return INTERRUPTED
