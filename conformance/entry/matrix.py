"""`rnn-conformance matrix`: every release of requirements/matrix.toml, judged and gated.

    python -m conformance matrix [--only NAME,...] [--force] [--keep-envs] [--dry-run]

For each ``[[env]]`` (one release of one framework), in the file's order:

1. *Resume*: its inputs (the env's table, the Python version, requirements/core.txt, the
   constraints it installs with, and the code that measures: reference/, suites/, findings/*.py
   and the conformance packages that run and measure, not the ones that judge and render) hash
   to one value. ``reports/versions/<name>/inputs.json`` records the hash its report was made
   from; when it matches and the report is valid, the env is skipped ("up to date").
2. *Install*: a venv in ``.matrix/<name>/`` with requirements/core.txt and the env's
   ``install`` packages (then ``nodeps`` with --no-deps), constrained by
   requirements/constraints.txt without the env's ``vary`` packages, with the env's ``pip_env``.
3. *Run*: ``python -m conformance run --frameworks ... --out reports/versions/<name>`` in that
   venv, with RNN_BENCH_SIZES=medium (the benchmarks at the medium size, full rounds). Exit 0 or
   1 (a case failed: a result) keep the report; any other exit stops this env, keeps what it
   wrote, and the matrix goes on with the next env.
4. *Record and clean*: inputs.json gets the install, run and disk figures and the versions
   installed; the venv is removed (unless --keep-envs): the matrix never holds more than one
   env on disk (the largest, torch 2.14.1 / 2.15.0 with their NVIDIA libraries, ~5 GB).

Then the gate compares each release with the next of the same framework
(``gate-<framework>-<a>-to-<b>.md``; a regression is a result, recorded in matrix.json, not a
failure of this command), and `conformance.results.versions` assembles
``reports/versions/matrix.{json,md}``: the env reports re-judged with the current expectation
files, the findings' and paths' cells per release, what each gate found, and the expectation
ranges the measurement implies. Exit codes as for every subcommand: 0 all envs have a report,
4 an env ended without one (install failed, the run broke), 130 interrupted (the finished envs
keep their reports; the next call resumes).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from conformance.core import paths
from conformance.core.files import write_text_atomic
from conformance.entry.runner import INCOMPLETE, INTERRUPTED, OK, USAGE

SPEC = paths.ROOT / "requirements" / "matrix.toml"
OUT = paths.ROOT / "reports" / "versions"
WORK = paths.ROOT / ".matrix"
KEEP = ("report.json", "report.md", "details.md", "findings.md")  # what a release's folder keeps
# The code whose change changes what a run measures (the judging and rendering code, and the
# expectation files, are applied again when the matrix is assembled: they do not invalidate a run).
MEASURING = ("reference", "suites", "findings", "conformance/adapters", "conformance/checks", "conformance/core",
             "conformance/oracles", "conformance/entry/plugin.py", "conformance/entry/runner.py",
             "conformance/entry/profiles.py", "conformance/entry/pytest.ini", "conftest.py", "pyproject.toml")
_ENV_KEYS = {"framework", "version", "frameworks", "install", "nodeps", "vary", "pip_env"}


class SpecError(ValueError):
    pass


@dataclass(frozen=True)
class Env:
    framework: str
    version: str
    frameworks: tuple
    install: tuple
    nodeps: tuple = ()
    vary: tuple = ()
    pip_env: dict = field(default_factory=dict)

    @property
    def name(self):
        return f"{self.framework}-{self.version}"

    def table(self):
        return {"framework": self.framework, "version": self.version, "frameworks": list(self.frameworks),
                "install": list(self.install), "nodeps": list(self.nodeps), "vary": list(self.vary),
                "pip_env": dict(self.pip_env)}


def load_spec(path=SPEC):
    """[Env] of the matrix file, in its order; SpecError naming the problem."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SpecError(f"{path}: {e}") from None
    envs = []
    for i, t in enumerate(raw.get("env", []), 1):
        unknown = set(t) - _ENV_KEYS
        missing = {"framework", "version", "frameworks", "install"} - set(t)
        if unknown or missing:
            raise SpecError(f"{path}: env {i}: " + "; ".join(
                ([f"unknown key(s) {', '.join(sorted(unknown))}"] if unknown else [])
                + ([f"missing {', '.join(sorted(missing))}"] if missing else [])))
        envs.append(Env(t["framework"], t["version"], tuple(t["frameworks"]), tuple(t["install"]),
                        tuple(t.get("nodeps", ())), tuple(t.get("vary", ())), dict(t.get("pip_env", {}))))
    names = [e.name for e in envs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SpecError(f"{path}: env(s) listed twice: {', '.join(dup)}")
    if not envs:
        raise SpecError(f"{path}: no [[env]] table")
    return envs


def _norm(name):
    return name.lower().replace("_", "-").replace(".", "-")


def constraints_for(env, text):
    """requirements/constraints.txt's text without the pins of the env's `vary` packages."""
    vary = {_norm(v) for v in env.vary}
    keep = []
    for line in text.splitlines():
        pkg = line.split("==")[0].strip()
        if line.strip() and not line.startswith("#") and _norm(pkg) in vary:
            continue
        keep.append(line)
    return "\n".join(keep) + "\n"


def _repro_frameworks(root):
    """{repro file name: frameworks of its finding} (findings/<id>.toml's `frameworks`)."""
    out = {}
    for toml in sorted((Path(root) / "findings").glob("*.toml")):
        try:
            out[toml.stem + ".py"] = set(tomllib.loads(toml.read_text()).get("frameworks", ()))
        except tomllib.TOMLDecodeError:
            out[toml.stem + ".py"] = set()
    return out


def code_digest(root, frameworks=None):
    """sha256 over the measuring code's files (path and content), in a fixed order. With
    `frameworks`, of findings/*.py only the repros such a run selects (those whose finding's
    frameworks all lie within them): a new repro of another framework changes nothing here."""
    h = hashlib.sha256()
    root = Path(root)
    repro_fw = _repro_frameworks(root) if frameworks is not None else {}
    for top in MEASURING:
        p = root / top
        files = sorted(f for f in p.rglob("*") if f.is_file() and "__pycache__" not in f.parts
                       and f.suffix in (".py", ".toml", ".ini", ".txt", ".json")) if p.is_dir() else [p]
        for f in files:
            if not f.is_file() or (top == "findings" and f.suffix != ".py"):
                continue
            if top == "findings" and frameworks is not None and f.name in repro_fw \
                    and not repro_fw[f.name] <= set(frameworks):
                continue
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def judgement(entries, fingerprints, packages):
    """sha256 of the expectation entries and declared fingerprints that apply at these package
    versions (what the run's pytest marks xfail and what the coverage suites count as known;
    their wording and file positions do not count). An entry's backend is not a version: it is
    passed as its own, so only the version decides."""
    live = sorted({(e.framework, e.test, e.backend or "", e.outcome, e.finding or "") for e in entries
                   if e.applies(packages.get(e.framework), e.backend)})
    fps = sorted({(e.framework, e.adapter, e.knob, e.backend or "", e.properties) for e in fingerprints
                  if e.applies(packages.get(e.framework), e.backend)}, key=str)
    return hashlib.sha256(json.dumps([live, fps], default=str).encode()).hexdigest()[:16]


def load_judging():
    """(expectation entries, declared fingerprints) of the expectation files."""
    from conformance.results import expectations as expect

    return expect.load_dir(paths.EXPECTATIONS), expect.load_fingerprints(paths.EXPECTATIONS / "fingerprints")


def inputs_of(env, root, profile="ci"):
    """(inputs dict, its sha256) for one env: what it installs and the code that measures (the
    expectations it is judged with are checked separately: `up_to_date`)."""
    req = Path(root) / "requirements"
    inputs = {"env": env.table(), "python": ".".join(map(str, sys.version_info[:2])),
              "core": (req / "core.txt").read_text(),
              "constraints": constraints_for(env, (req / "constraints.txt").read_text()),
              "code": code_digest(root, env.frameworks), "bench_sizes": "medium", "profile": profile}
    return inputs, hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def up_to_date(out_dir, digest, judging):
    """"" when the folder's report is valid, was made from inputs hashing to `digest`, and was
    judged with the expectations that apply to its package versions now; else why not."""
    from conformance.results.report import ReportError, load_report, validate_report

    try:
        recorded = json.loads((out_dir / "inputs.json").read_text())
        report = load_report(out_dir / "report.json")
    except (OSError, ValueError, ReportError):
        return "no report yet"
    if recorded.get("exit") not in (0, 1) or validate_report(report):
        return "its last run broke"
    if recorded.get("hash") != digest:
        return f"inputs changed ({recorded.get('hash')} -> {digest})"
    now = judgement(*judging, report["environment"].get("packages", {}))
    if recorded.get("judged_with") != now:
        return f"the expectations that apply to it changed ({recorded.get('judged_with')} -> {now})"
    return ""


def _du(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file() and not f.is_symlink())


def _gb(n):
    return f"{n / 1e9:.2f} GB"


def _pip(venv, args, env, log):
    cmd = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar",
           "off", "-q", *args]
    print("    " + " ".join(cmd[1:]), flush=True)
    with open(log, "a") as fh:
        return subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode


def install(env, venv, root, log):
    """Create and fill the venv; None, or the reason it could not be."""
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
    if r.returncode:
        return f"python -m venv failed: {r.stderr.strip()[-300:]}"
    cons = venv / "constraints-matrix.txt"
    cons.write_text(constraints_for(env, (Path(root) / "requirements" / "constraints.txt").read_text()))
    pip_env = {**os.environ, **env.pip_env}
    if _pip(venv, ["-r", str(Path(root) / "requirements" / "core.txt"), *env.install, "-c", str(cons)], pip_env, log):
        return f"pip install failed (log: {log})"
    if env.nodeps and _pip(venv, ["--no-deps", *env.nodeps], pip_env, log):
        return f"pip install --no-deps failed (log: {log})"
    return None


def installed_versions(venv):
    r = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json",
                        "--disable-pip-version-check"], capture_output=True, text=True)
    try:
        return {p["name"]: p["version"] for p in json.loads(r.stdout)}
    except ValueError:
        return {}


def run_env(env, i, n, root, out, work, profile, keep_env):
    """Install, run, record and clean one env; its inputs.json dict (``exit`` None: no report)."""
    venv, folder = work / env.name, out / env.name
    folder.mkdir(parents=True, exist_ok=True)
    log = work / f"{env.name}.pip.log"
    log.unlink(missing_ok=True)
    inputs, digest = inputs_of(env, root, profile)
    rec = {"name": env.name, "framework": env.framework, "version": env.version, "hash": digest, "inputs": inputs}
    print(f"==> [{i}/{n}] {env.name}: installing into {venv}", flush=True)
    t0 = time.monotonic()
    why = install(env, venv, root, log)
    rec["install_s"] = round(time.monotonic() - t0, 1)
    rec["disk_bytes"] = _du(venv) if venv.exists() else 0
    if why:
        print(f"==> [{i}/{n}] {env.name}: {why}", file=sys.stderr, flush=True)
        rec.update(exit=None, problem=why)
        return rec
    rec["installed"] = installed_versions(venv)
    print(f"==> [{i}/{n}] {env.name}: installed in {rec['install_s']:.0f} s, {_gb(rec['disk_bytes'])}; "
          f"running --frameworks {','.join(env.frameworks)}", flush=True)
    shown = os.path.relpath(folder, root) if folder.resolve().is_relative_to(Path(root).resolve()) else str(folder)
    cmd = [str(venv / "bin" / "python"), "-m", "conformance", "run", "--frameworks", ",".join(env.frameworks),
           "--out", shown, "--profile", profile]  # relative: the report's command names no machine's paths
    child = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_USE_LEGACY_KERAS", "VIRTUAL_ENV")}
    child.update(RNN_BENCH_SIZES="medium", PYTHONPATH=str(root))
    child.pop("RNN_BENCH_FULL", None)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=root, env=child)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.wait()  # the run stops its part and keeps its records (conformance.entry.runner)
        raise
    rec["run_s"] = round(time.monotonic() - t0, 1)
    rec["exit"] = code if code in (0, 1) else None
    if code not in (0, 1):
        rec["problem"] = f"conformance run exited {code}"
    else:
        from conformance.results.report import ReportError, load_report

        try:  # the expectations it was judged with, at the versions it ran (see up_to_date)
            packages = load_report(folder / "report.json")["environment"].get("packages", {})
            rec["judged_with"] = judgement(*load_judging(), packages)
        except ReportError as e:
            rec.update(exit=None, problem=f"no readable report: {e}")
    for extra in folder.iterdir():
        if extra.name not in KEEP + ("inputs.json",):
            shutil.rmtree(extra) if extra.is_dir() else extra.unlink()
    if not keep_env:
        shutil.rmtree(venv, ignore_errors=True)
    log.unlink(missing_ok=True)
    return rec


def gates(envs, out):
    """Gate each release against the next of its framework; [(framework, a, b, exit, path, verdict)]."""
    from conformance.results import expectations as expect
    from conformance.results import gate
    from conformance.results.report import ReportError, load_report

    entries = expect.load_dir(paths.EXPECTATIONS)
    done = []
    by_fw = {}
    for e in envs:
        by_fw.setdefault(e.framework, []).append(e)
    for fw, rel in by_fw.items():
        for a, b in zip(rel, rel[1:]):
            path = out / f"gate-{fw}-{a.version}-to-{b.version}.md"
            try:
                reports = [load_report(out / x.name / "report.json") for x in (a, b)]
                verdict = gate.compare(*reports, entries=entries)
            except (ReportError, gate.GateError) as err:
                print(f"==> gate {fw} {a.version} -> {b.version}: cannot compare ({err})", file=sys.stderr)
                done.append((fw, a.version, b.version, 2, None, None))
                continue
            names = (f"reports/versions/{a.name}/report.json", f"reports/versions/{b.name}/report.json")
            write_text_atomic(path, gate.markdown(verdict, *reports, names=names))
            code = 0 if verdict.ok else 1
            print(f"==> gate {fw} {a.version} -> {b.version}: "
                  f"{'PASS' if code == 0 else f'{len(verdict.regressions)} regression(s)'}; {path}", flush=True)
            done.append((fw, a.version, b.version, code, path, verdict))
    return done


def rejudge_reports(envs, out, entries):
    """Apply the current expectation files to each release's report; rewrite the reports whose
    outcomes that changes (report.json, report.md, details.md, findings.md). {name: report}, {name: inputs}."""
    from conformance.results import versions
    from conformance.results.render import render_details_markdown, render_findings_markdown, render_markdown
    from conformance.results.report import write_report_atomic

    reports, inputs = versions.load_reports(envs, out)
    for name, rep in list(reports.items()):
        judged, changed = versions.rejudge(rep, entries)
        if changed:
            folder = out / name
            write_report_atomic(judged, folder / "report.json")
            write_text_atomic(folder / "report.md", render_markdown(judged))
            write_text_atomic(folder / "details.md", render_details_markdown(judged))
            write_text_atomic(folder / "findings.md", render_findings_markdown(judged))
            print(f"==> {name}: {changed} record(s) judged again with the current expectation files", flush=True)
        reports[name] = judged
    return reports, inputs


def assemble(envs, out, done):
    """reports/versions/matrix.json and matrix.md from the releases' reports and the gates."""
    from conformance.results import expectations as expect
    from conformance.results import findings, versions

    entries = expect.load_dir(paths.EXPECTATIONS)
    reports, inputs = rejudge_reports(envs, out, entries)
    registry = [{"id": f.id, "title": f.title, "frameworks": list(f.frameworks)}
                for f in findings.load_dir(paths.FINDINGS)]
    matrix = versions.build(envs, reports, inputs, registry, entries, done, paths.ROOT)
    write_text_atomic(out / "matrix.json", json.dumps(matrix, indent=1, sort_keys=True) + "\n")
    write_text_atomic(out / "matrix.md", versions.render_markdown(matrix))
    return matrix


def cmd_matrix(args) -> int:
    root = paths.ROOT
    try:
        envs = load_spec(args.spec)
    except SpecError as e:
        print(f"rnn-conformance matrix: error: {e}", file=sys.stderr)
        return USAGE
    if args.only:
        names = {e.name for e in envs}
        unknown = sorted(set(args.only) - names)
        if unknown:
            print(f"rnn-conformance matrix: error: --only {', '.join(unknown)}: not in {args.spec} "
                  f"(envs: {', '.join(e.name for e in envs)})", file=sys.stderr)
            return USAGE
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    todo = [e for e in envs if not args.only or e.name in args.only]
    judging = load_judging()
    start, code = time.monotonic(), OK
    print(f"==> rnn-conformance matrix: {len(todo)} env(s) from {args.spec} -> {out}", flush=True)
    try:
        for i, env in enumerate(todo, 1):
            folder = out / env.name
            _, h = inputs_of(env, root, args.profile)
            stale = "forced (--force)" if args.force else up_to_date(folder, h, judging)
            if not stale:
                print(f"==> [{i}/{len(todo)}] {env.name}: up to date (inputs {h}), skipped", flush=True)
                continue
            print(f"==> [{i}/{len(todo)}] {env.name}: to run: {stale}", flush=True)
            if args.dry_run:
                print(f"==> [{i}/{len(todo)}] {env.name}: would install {' '.join(env.install + env.nodeps)} and run "
                      f"--frameworks {','.join(env.frameworks)} (inputs {h})", flush=True)
                continue
            rec = run_env(env, i, len(todo), root, out, work, args.profile, args.keep_envs)
            write_text_atomic(folder / "inputs.json", json.dumps(rec, indent=1, sort_keys=True) + "\n")
            if rec["exit"] is None:
                code = INCOMPLETE
            print(f"==> [{i}/{len(todo)}] {env.name}: " + (
                f"exit {rec['exit']} after {rec['run_s']:.0f} s (install {rec['install_s']:.0f} s, "
                f"{_gb(rec['disk_bytes'])}); {out / env.name / 'report.md'}" if rec["exit"] is not None
                else f"no report: {rec['problem']}"), flush=True)
    except KeyboardInterrupt:
        print("\nrnn-conformance matrix: interrupted; the finished envs keep their reports, the next call resumes",
              file=sys.stderr)
        return INTERRUPTED
    if args.dry_run:
        return OK
    from conformance.results import versions

    done = gates(envs, out)
    matrix = assemble(envs, out, done)
    print(f"==> matrix: {out / 'matrix.md'} ({versions.summary_line(matrix)}); "
          f"{time.monotonic() - start:.0f} s", flush=True)
    if args.update_expectations:
        for source, what in update_expectations(matrix):
            print(f"==> expectations/{source}: {what}", flush=True)
        matrix = assemble(envs, out, done)
        judging = load_judging()
        stale = [e.name for e in envs if up_to_date(out / e.name, inputs_of(e, root, args.profile)[1], judging)]
        print(f"==> matrix: {versions.summary_line(matrix)}" + (
            f"; judged with other expectations now, to run again: {', '.join(stale)}" if stale else ""), flush=True)
    return code


def update_expectations(matrix, directory=None):
    """Rewrite `versions` and `measured` of each expectation entry whose values disagree with the
    measured matrix (matrix["ranges"]): versions = the releases its tests showed the deviation in,
    measured = the releases that ran them. An entry whose tests showed it in no release is left
    alone (an empty `versions` would mean every version) and listed. [(source, what)]."""
    import re

    directory = Path(directory or paths.EXPECTATIONS)
    done = []
    by_file = {}
    for r in matrix["ranges"]:
        if not r["agrees"]:
            by_file.setdefault(r["source"].split("#")[0], []).append(r)
    for name, rows in sorted(by_file.items()):
        path = directory / name
        text = path.read_text()
        starts = [m.start() for m in re.finditer(r"^\[\[expect\]\]\s*$", text, flags=re.M)] + [len(text)]
        blocks = [text[:starts[0]]] + [text[a:b] for a, b in zip(starts, starts[1:])]
        for r in rows:
            i = int(r["source"].split("#")[1])
            if not r["implied"]:
                done.append((r["source"], f"left alone: its tests ran in {', '.join(r['measured_in'])} and showed "
                                          f"no deviation there (the entry keeps {r['versions']!r})"))
                continue
            block = blocks[i]
            block = re.sub(r'^(versions|measured) = .*\n', "", block, flags=re.M)
            block = re.sub(r'^(framework = .*\n)', lambda m: m.group(1) + f'versions = "{r["implied"]}"\n'
                           f'measured = "{", ".join(r["measured_in"])}"\n', block, count=1, flags=re.M)
            blocks[i] = block
            done.append((r["source"], f"versions {r['versions']!r} -> {r['implied']!r}; measured "
                                      f"{', '.join(r['measured_in'])}"))
        write_text_atomic(path, "".join(blocks))
    return done


def _names(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def add_parsers(sub, kw):
    m = sub.add_parser("matrix", help="every release of requirements/matrix.toml: install, run, gate -> "
                                      "reports/versions/",
                       description="One venv per release of requirements/matrix.toml: install it, run the suites "
                                   "of its framework into reports/versions/<framework>-<version>/, remove the venv; "
                                   "gate consecutive releases; write reports/versions/matrix.md and matrix.json. "
                                   "An env whose report matches its inputs is skipped (the matrix resumes).", **kw)
    m.add_argument("--spec", default=str(SPEC), metavar="FILE", help="the matrix file (default requirements/matrix.toml)")
    m.add_argument("--out", default=str(OUT), metavar="DIR", help="where the reports go (default reports/versions)")
    m.add_argument("--work", default=str(WORK), metavar="DIR", help="where the venvs are built (default .matrix)")
    m.add_argument("--only", type=_names, metavar="NAME,...", help="only these envs (e.g. torch-2.15.0)")
    m.add_argument("--force", action="store_true", help="run the envs even when their reports are up to date")
    m.add_argument("--keep-envs", action="store_true", help="keep each venv after its run")
    m.add_argument("--dry-run", action="store_true", help="say what would run; install and run nothing")
    m.add_argument("--update-expectations", action="store_true",
                   help="after assembling, rewrite the `versions` / `measured` of every expectation entry that "
                        "disagrees with the measurement (expectations/*.toml); the releases whose judgement that "
                        "changes run again on the next call")
    m.add_argument("--profile", default="ci", choices=("quick", "dev", "ci", "thorough"),
                   help="hypothesis profile (default: ci, deterministic)")
    m.set_defaults(func=cmd_matrix)
