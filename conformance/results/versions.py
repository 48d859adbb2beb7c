"""The version matrix: what each release of a framework does, from the reports `make matrix` ran.

Input: the releases of requirements/matrix.toml (objects with ``name``, ``framework``,
``version``, ``frameworks``), each with ``reports/versions/<name>/report.json`` and
``inputs.json``, and the gate verdicts between consecutive releases. Output:
``reports/versions/matrix.json`` and ``matrix.md``, and `render_section`, the matrix as it
appears in the published report (reports/latest/report.md).

Every report is first *re-judged* with the current expectation files (`rejudge`), as the gate
does: a run made before an expectation entry covered its release shows the deviation as
failed; judged again it is the expected deviation it is. Then, per framework and release:

- **findings** (the registry's root causes that involve one of the release's frameworks): the
  cell is what the finding's standalone repro said in that release's environment
  (suites/test_findings.py::test_repro) — ``deviation`` (REPRODUCED), ``fixed`` (NOT
  REPRODUCED after an earlier release reproduced it), ``conforms`` (never reproduced),
  ``not run`` — with the number of the release's tests that showed it (xfailed with it);
- **paths** (adapter, with the Keras backend) and **suites**: ``conforms`` (every compared case
  passed), ``deviation`` (the findings of its expected deviations), ``fails`` (failed or errored
  cases no finding explains), ``not run`` (every case skipped or absent);
- **changes**: what each gate found between consecutive releases;
- **ranges**: for each expectation entry of a framework the matrix varies, the releases its
  tests ran in (``measured``) and those in which they showed the deviation (failed or xfailed,
  and the entry's finding's repro, where that release ran it, REPRODUCED); `implied_versions`
  writes the latter as exact releases (``==a || ==b``): a range never claims a release nobody
  ran. tests/test_matrix.py holds expectations/*.toml to them.
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from conformance.results import expectations as expect
from conformance.results.report import ReportError, load_report, node_id, part_name

STATES = ("conforms", "deviation", "fails", "fixed", "not run")
DEVIATING = ("failed", "error", "xfailed")
COMPARED = ("passed", "failed", "error", "xfailed", "xpassed")
REPRO = "suites/test_findings.py::test_repro[{}]"
NOT_COMPARED = ("not run in the candidate", "not run in the baseline", "fingerprint not measured in the candidate",
                "fingerprint not measured in the baseline", "property not measured")


def rejudge(report, entries):
    """The report with the expectation `entries` applied to its records (`apply_to_records`), the
    run's own reason kept after the entry's; (report, number of records whose outcome changed)."""
    old = {r["id"]: r for r in report["results"]}
    new = expect.apply_to_records(report["results"], entries, report["environment"].get("packages", {}))
    changed = 0
    out = []
    for rec in new:
        before = old[rec["id"]]
        if rec["outcome"] != before["outcome"]:
            changed += 1
            rec = {**rec, "reason": f"{rec['reason']} (judged again by the version matrix with the current "
                                    f"expectation files; the run said: {before['outcome']}: {before['reason'] or ''})"}
        out.append(rec)
    return {**report, "results": out}, changed


def _top(framework):
    return (framework or "").split(".")[0]


def _row_of_path(rec):
    return rec["adapter"] + (f" ({rec['backend']})" if rec.get("backend") and rec["framework"] == "keras" else "")


def _cell(records):
    """The state of a row in one release from its records."""
    compared = [r for r in records if r["outcome"] in COMPARED]
    if not compared:
        return {"state": "not run", "detail": f"{len(records)} skipped" if records else "no case"}
    fails = [r for r in compared if r["outcome"] in ("failed", "error")]
    devs = sorted({r.get("finding") or "?" for r in compared if r["outcome"] in ("xfailed", "xpassed")})
    n = Counter(r["outcome"] for r in compared)
    detail = ", ".join(f"{v} {k}" for k, v in sorted(n.items()))
    if fails:
        return {"state": "fails", "detail": detail, "failing": sorted(r["id"] for r in fails)[:20],
                "findings": devs}
    if devs:
        return {"state": "deviation", "detail": detail, "findings": devs}
    return {"state": "conforms", "detail": detail}


def _repro_state(records, fid):
    rec = [r for r in records if node_id(r["id"]) == REPRO.format(fid)]
    if not rec:
        return None
    outcomes = {r["outcome"] for r in rec}
    if "passed" in outcomes:
        return "reproduced"
    if outcomes & {"failed", "error", "xfailed"}:
        reason = " ".join(r["reason"] or "" for r in rec)
        return "not reproduced" if "no longer reproduces" in reason else "broken"
    return None  # skipped


def group_findings(fw_envs, reports, registry):
    """Rows of one framework's findings table: [{id, title, cells: {version: cell}}]."""
    frameworks = set().union(*(set(e.frameworks) for e in fw_envs))
    rows = []
    for f in registry:
        if not set(f["frameworks"]) & frameworks:
            continue
        cells, seen = {}, False
        for env in fw_envs:
            rep = reports.get(env.name)
            if rep is None:
                cells[env.version] = {"state": "not run", "detail": "no report"}
                continue
            state = _repro_state(rep["results"], f["id"])
            tests = [r for r in rep["results"] if r.get("finding") == f["id"] and r["outcome"] in DEVIATING
                     and node_id(r["id"]) != REPRO.format(f["id"])]
            if state is None:
                cells[env.version] = {"state": "not run", "detail": "repro skipped or not collected"}
            elif state == "reproduced":
                seen = True
                cells[env.version] = {"state": "deviation", "detail": f"repro REPRODUCED; {len(tests)} test(s) show it"}
            elif state == "not reproduced":
                cells[env.version] = {"state": "fixed" if seen else "conforms",
                                      "detail": "repro NOT REPRODUCED" + (f"; yet {len(tests)} test(s) fail with it"
                                                                          if tests else "")}
                if tests:
                    cells[env.version]["state"] = "fails"
            else:
                cells[env.version] = {"state": "fails", "detail": "the repro itself failed to run"}
        if any(c["state"] != "not run" for c in cells.values()):
            rows.append({"id": f["id"], "title": f.get("title", ""), "cells": cells})
    return rows


def group_rows(fw_envs, reports, key):
    """Rows of a paths (key: record -> row name) or suites table."""
    frameworks = set().union(*(set(e.frameworks) for e in fw_envs))
    names = {}
    for env in fw_envs:
        for rec in (reports.get(env.name) or {}).get("results", []):
            if rec.get("adapter") and _top(rec.get("framework")) in frameworks | {"reference"}:
                names.setdefault(key(rec), {}).setdefault(env.version, []).append(rec)
    rows = []
    for name in sorted(names):
        rows.append({"name": name, "cells": {env.version: _cell(names[name].get(env.version, []))
                                             for env in fw_envs}})
    return rows


def measured_ranges(envs, reports, entries):
    """For each expectation entry of a package the matrix ran: {source, test, backend, framework,
    finding, versions (now), measured (now), measured_in, deviating_in, implied, agrees}."""
    out = []
    for e in entries:
        measured, deviating = set(), set()
        for env in envs:
            rep = reports.get(env.name)
            if rep is None:
                continue
            version = rep["environment"].get("packages", {}).get(e.framework)
            if not version:
                continue
            hits = [r for r in rep["results"] if e.matches_id(node_id(r["id"]))
                    and (e.backend is None or (r.get("backend") or "tensorflow") == e.backend)
                    and r["outcome"] in COMPARED]
            if not hits:
                continue
            v = version.split("+")[0]
            measured.add(v)
            # the deviation showed: its tests failed (or xfailed) there, and the finding's repro, where
            # that release ran it, reproduced it (a test failing for another reason is no evidence)
            repro = _repro_state(rep["results"], e.finding) if e.finding else None
            if any(r["outcome"] in DEVIATING for r in hits) and repro in (None, "reproduced"):
                deviating.add(v)
        if not measured:
            continue
        ordered = lambda vs: sorted(vs, key=_vkey)  # noqa: E731
        implied = implied_versions(ordered(deviating))
        m_text = ", ".join(ordered(measured))
        agrees = e.measured == m_text and all(
            expect.versions_contain(e.versions, v) == (v in deviating) for v in measured) and \
            (e.versions == implied)
        out.append({"source": e.source, "test": e.test, "backend": e.backend, "framework": e.framework,
                    "finding": e.finding, "versions": e.versions, "measured": e.measured,
                    "measured_in": ordered(measured), "deviating_in": ordered(deviating), "implied": implied,
                    "agrees": agrees})
    return out


def _vkey(v):
    from packaging.version import Version

    return Version(v)


def implied_versions(deviating):
    """The exact releases a deviation was measured in, as a `versions` value ("" for none)."""
    return " || ".join(f"=={v}" for v in deviating)


def _gate_entry(fw, a, b, code, path, verdict, root):
    if verdict is None:
        return {"framework": fw, "from": a, "to": b, "exit": code, "path": None, "regressions": [], "changes": [],
                "compared": "not compared"}
    changes = [{"kind": k, "id": i, "detail": str(d)} for k, i, d in verdict.notes if k not in NOT_COMPARED]
    return {"framework": fw, "from": a, "to": b, "exit": code,
            "path": str(Path(path).relative_to(root)) if path else None,
            "regressions": [{"kind": k, "id": i, "detail": str(d)} for k, i, d in verdict.regressions],
            "changes": changes, "shared": verdict.shared, "fingerprints_compared": verdict.fingerprints_compared,
            "not_compared": sum(1 for k, _, _ in verdict.notes if k in NOT_COMPARED),
            "benchmarks_compared": verdict.benchmarks_compared, "kernels_compared": verdict.kernels_compared}


def build(envs, reports, inputs, registry, entries, gate_results, root):
    """The matrix dict (what matrix.json holds)."""
    by_fw = {}
    for e in envs:
        by_fw.setdefault(e.framework, []).append(e)
    groups = []
    for fw, rel in by_fw.items():
        groups.append({"framework": fw, "releases": [e.version for e in rel], "envs": [e.name for e in rel],
                       "frameworks": sorted(set().union(*(set(e.frameworks) for e in rel))),
                       "findings": group_findings(rel, reports, registry),
                       "paths": group_rows(rel, reports, _row_of_path),
                       "suites": group_rows(rel, reports, lambda r: r["suite"])})
    env_rows = []
    for e in envs:
        rep, rec = reports.get(e.name), inputs.get(e.name) or {}
        n = Counter(r["outcome"] for r in rep["results"]) if rep else Counter()
        pk = rep["environment"].get("packages", {}) if rep else {}
        env_rows.append({"name": e.name, "framework": e.framework, "version": e.version,
                         "frameworks": list(e.frameworks), "report": f"{e.name}/report.md" if rep else None,
                         "packages": {k: v for k, v in pk.items() if v and k not in (
                             "numpy", "scipy", "pytest", "hypothesis", "pytest-benchmark")},
                         "install_s": rec.get("install_s"), "run_s": rec.get("run_s"),
                         "disk_bytes": rec.get("disk_bytes"), "exit": rec.get("exit"), "hash": rec.get("hash"),
                         "created": rep["created"] if rep else None, "outcomes": dict(sorted(n.items()))})
    return {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "envs": env_rows,
            "groups": groups,
            "gates": [_gate_entry(*g, root=root) for g in gate_results],
            "ranges": measured_ranges(envs, reports, entries)}


def load_reports(envs, out):
    reports, inputs = {}, {}
    for e in envs:
        try:
            reports[e.name] = load_report(Path(out) / e.name / "report.json")
        except ReportError:
            continue
        try:
            inputs[e.name] = json.loads((Path(out) / e.name / "inputs.json").read_text())
        except (OSError, ValueError):
            inputs[e.name] = {}
    return reports, inputs


def summary_line(matrix):
    n = len([e for e in matrix["envs"] if e["outcomes"]])
    regs = sum(1 for g in matrix["gates"] if g["exit"] == 1)
    bad = [r for r in matrix["ranges"] if not r["agrees"]]
    return (f"{n} of {len(matrix['envs'])} releases with a report; {len(matrix['gates'])} gates, {regs} with "
            f"regressions; {len(matrix['ranges'])} expectation entries measured, {len(bad)} whose versions "
            f"disagree with the measurement")


# ----------------------------------------------------------------------------- markdown

_MARK = {"conforms": "conforms", "deviation": "**deviation**", "fails": "**FAILS**", "fixed": "fixed",
         "not run": "–"}


def _cell_text(cell, with_findings=True):
    text = _MARK[cell["state"]]
    if with_findings and cell.get("findings") and cell["state"] in ("deviation", "fails"):
        text += " (" + ", ".join(f"`{f}`" for f in cell["findings"]) + ")"
    return text


def _table(head, rows):
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *rows]


def _secs(x):
    return "–" if x is None else f"{x:.0f} s"


def render_markdown(matrix):
    out = ["# Version matrix", "",
           f"Made by `make matrix` (`python -m conformance matrix`, requirements/matrix.toml) on {matrix['created']}: "
           "one environment per release, each running every suite of its framework; reports re-judged with the "
           "current expectation files. Cells: **conforms** = every compared case passed; **deviation** = a "
           "known deviation (the finding named) showed; **FAILS** = a case failed that no finding explains; "
           "**fixed** = a finding's repro reproduced in an earlier release and no longer does; – = not run.", "",
           f"{summary_line(matrix)}.", "", "## Releases", ""]
    rows = []
    for e in matrix["envs"]:
        o = e["outcomes"]
        size = "–" if not e["disk_bytes"] else f"{e['disk_bytes'] / 1e9:.2f} GB"
        link = f"[{e['name']}]({e['report']})" if e["report"] else e["name"]
        rows.append(f"| {link} | {', '.join(f'{k} {v}' for k, v in e['packages'].items())} | "
                    f"{_secs(e['install_s'])} | {_secs(e['run_s'])} | {size} | "
                    f"{o.get('passed', 0)} | {o.get('xfailed', 0)} | {o.get('failed', 0) + o.get('error', 0)} | "
                    f"{o.get('skipped', 0)} |")
    out += _table(["release", "installed", "install", "run", "disk", "passed", "xfailed", "failed", "skipped"], rows)
    for g in matrix["groups"]:
        rel = g["releases"]
        out += ["", f"## {g['framework']}: {' → '.join(rel)}", "",
                f"Suites of {', '.join(g['frameworks'])}.", "", "### Findings", ""]
        if g["findings"]:
            out += _table(["finding", *rel], [f"| `{f['id']}` | " + " | ".join(
                _cell_text(f["cells"][v]) for v in rel) + " |" for f in g["findings"]])
        else:
            out.append("No finding of the registry involves these frameworks.")
        out += ["", "### What changed", ""]
        out += gate_lines(matrix, g["framework"])
        out += ["", "### Paths", ""]
        out += _table(["path", *rel], [f"| `{p['name']}` | " + " | ".join(
            _cell_text(p["cells"][v]) for v in rel) + " |" for p in g["paths"]])
        out += ["", "### Suites", ""]
        out += _table(["suite", *rel], [f"| {p['name']} | " + " | ".join(
            _cell_text(p["cells"][v], with_findings=False) + f" ({p['cells'][v]['detail']})"
            if p["cells"][v]["state"] != "not run" else "–" for v in rel) + " |" for p in g["suites"]])
    out += ["", "## Expectation ranges", ""]
    bad = [r for r in matrix["ranges"] if not r["agrees"]]
    out.append(f"{len(matrix['ranges'])} expectation entries have tests the matrix ran; "
               + ("each entry's `versions` names exactly the releases in which its tests showed the deviation, and "
                  "its `measured` the releases that ran them." if not bad else
                  f"{len(bad)} disagree with the measurement:"))
    if bad:
        out += [""] + _table(["entry", "finding", "versions now", "measured now", "measured in", "implied"], [
            f"| {r['source']} | `{r['finding']}` | `{r['versions']}` | {r['measured'] or '–'} | "
            f"{', '.join(r['measured_in'])} | `{r['implied'] or '(no deviation)'}` |" for r in bad])
    return "\n".join(out) + "\n"


def gate_lines(matrix, framework, limit=30, base=""):
    """Markdown list lines of one framework's gates; links relative to `base` (the folder of
    matrix.md as seen from the page, "" on matrix.md itself)."""
    out = []
    for g in (g for g in matrix["gates"] if g["framework"] == framework):
        head = f"- **{g['from']} → {g['to']}**: "
        if g["path"] is None:
            out.append(head + "not compared (a report is missing)")
            continue
        verdict = "PASS" if g["exit"] == 0 else f"{len(g['regressions'])} regression(s)"
        out.append(head + f"{verdict}; compared {g['shared']} cases, {g['fingerprints_compared']} fingerprints, "
                   f"{g.get('kernels_compared', 0)} kernels, {g.get('benchmarks_compared', 0)} benchmark ratios "
                   f"(medium size); gate: [{Path(g['path']).name}]({base}{Path(g['path']).name})")
        items = g["regressions"] + g["changes"]
        if not items:
            out.append("  - no change.")
        for it in items[:limit]:
            out.append(f"  - {it['kind']}: `{it['id']}`: {it['detail'][:240].replace('|', '/')}")
        if len(items) > limit:
            out.append(f"  - ... and {len(items) - limit} more (see the gate)")
    return out


def render_section(matrix, link="../versions/matrix.md"):
    """The matrix in the published report: each framework's findings across its releases and
    what changed, linking the whole matrix."""
    out = [f"The [version matrix]({link}) ({matrix['created']}) ran the suites of each framework under "
           "its current releases, one environment each (`make matrix`; the gate between consecutive releases):", ""]
    for g in matrix["groups"]:
        rel = g["releases"]
        out += [f"### {g['framework']}: {' → '.join(rel)}", ""]
        summary = cases_summary(matrix, g)
        out += ["Cases: " + "; ".join(summary) + ".", ""]
        if g["findings"]:
            out += _table(["finding", *rel], [f"| `{f['id']}` | " + " | ".join(
                _cell_text(f["cells"][v]) for v in rel) + " |" for f in g["findings"]]) + [""]
        base = link.rsplit("/", 1)[0] + "/" if "/" in link else ""
        out += gate_lines(matrix, g["framework"], limit=8, base=base) + [""]
    return "\n".join(out)


def cases_summary(matrix, g):
    """["2.20.0: 253 passed, 28 xfailed, 0 failed", ...] of one framework's releases."""
    summary = []
    for v, name in zip(g["releases"], g["envs"]):
        e = next(x for x in matrix["envs"] if x["name"] == name)
        o = e["outcomes"]
        summary.append(f"{v}: {o.get('passed', 0)} passed, {o.get('xfailed', 0)} xfailed, "
                       f"{o.get('failed', 0) + o.get('error', 0)} failed" if o else f"{v}: no report")
    return summary
