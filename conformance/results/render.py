"""Reports for people and CI systems: Markdown, a self-contained HTML page, JUnit XML.

All three are rendered from a report dict (report.json) alone. Sections, in both Markdown and
HTML (HTML ids in brackets):

    Summary [summary]                 per adapter: passed / failed / errors / skipped / expected deviations
    Semantics matrix [semantics]      the `fingerprints` section, one row per adapter path and knob
    Findings [findings]               the `findings` section: measured facts that differ from the declared ones
    Deviations [deviations]           every failed, errored, xfailed and xpassed case: reason, error, seed, repro
    Error growth [error-growth]       the `error_growth` section: error and tolerance over sequence length (plot)
    Drop rates [drop-rates]           recovered drop rates with confidence intervals (from `fingerprints`)
    Benchmarks [benchmarks]           the `benchmarks` section
    Claims [claims]                   the `claims` section
    Environment [environment]         versions, machine, the merged parts

A section whose data the report lacks says so. The HTML page loads nothing from outside: the
style is inline, plots are PNGs embedded as data URIs, links to upstream issues are shown as
text (not fetched, not clickable resources).
"""
from __future__ import annotations

import base64
import html
import io
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict

from conformance.results.report import OUTCOMES

SECTIONS = (("summary", "Summary"), ("semantics", "Semantics matrix"), ("findings", "Findings"),
            ("deviations", "Deviations"),
            ("error-growth", "Error growth over sequence length"), ("drop-rates", "Recovered drop rates"),
            ("benchmarks", "Benchmarks"), ("claims", "Claims"), ("environment", "Environment"))
DEVIATION_OUTCOMES = ("failed", "error", "xfailed", "xpassed")
SUMMARY_COLUMNS = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
COLUMN_TITLES = {"xfailed": "expected deviations", "xpassed": "unexpectedly passing", "error": "errors"}


def summary_line(report):
    counts = Counter(r["outcome"] for r in report["results"])
    return ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts[o]) or "no results"



# ---------------------------------------------------------------- tables (shared by md and html)

def summary_rows(report):
    """[[adapter, counts per SUMMARY_COLUMNS..., total]] sorted by adapter; records without an
    adapter are grouped under their suite."""
    by = defaultdict(Counter)
    for r in report["results"]:
        by[r["adapter"] or f"({r['suite']})"][r["outcome"]] += 1
    return [[name] + [c[o] for o in SUMMARY_COLUMNS] + [sum(c.values())] for name, c in sorted(by.items())]


PROPERTY_ORDER = ("input", "recurrent", "inter_layer", "output", "state_h", "state_c", "evaluation mode", "seeds",
                  "inference call", "padded steps", "dropout")


def semantics_table(report):
    """(columns, rows) of the fingerprints: one row per adapter (and backend/device), one column
    per property measured anywhere; cells are the measured values."""
    fps = report.get("fingerprints", [])
    found = {k for fp in fps for k in fp.get("properties", {})}
    props = [k for k in PROPERTY_ORDER if k in found] + sorted(found - set(PROPERTY_ORDER))
    rows = []
    for fp in fps:
        label = fp.get("adapter", "?") + (f" ({fp['backend']})" if fp.get("backend") else "")
        knob = f"{fp['knob']}={fp.get('rate')}" if fp.get("knob") else "-"
        rows.append([label, knob] + [_cell(fp.get("properties", {}).get(p, "")) for p in props])
    return ["adapter", "knob"] + props, rows


def finding_rows(report):
    return [[f.get("adapter", ""), f.get("knob") or "", {True: "yes", False: "no"}.get(f.get("expected"), "undeclared"),
             f.get("summary", ""), f.get("evidence", ""), f.get("link") or ""] for f in report.get("findings", [])]


FINDING_HEADER = ["adapter", "knob", "expected", "summary", "evidence", "link"]


def rate_rows(report):
    """[adapter, mask kind, configured rate, observed, 99% CI, draws] from fingerprint entries' rates."""
    rows = []
    for fp in report.get("fingerprints", []):
        for r in fp.get("rates", []):
            rows.append([fp.get("adapter", "?"), r.get("kind", "?"), _cell(r.get("configured")),
                         _cell(r.get("observed")), f"[{_cell(r.get('ci_low'))}, {_cell(r.get('ci_high'))}]",
                         _cell(r.get("n"))])
    return rows


def deviation_rows(report):
    return [r for r in report["results"] if r["outcome"] in DEVIATION_OUTCOMES]


def error_growth_rows(report):
    rows = [[e.get("adapter"), e.get("dtype"), e.get("steps"), e.get("max_abs_err"), e.get("tolerance")]
            for e in report.get("error_growth", [])]
    return sorted(rows, key=lambda r: (str(r[0]), str(r[1]), r[2] or 0))


def benchmark_table(report):
    entries = report.get("benchmarks", [])
    cols = []
    for e in entries:
        cols += [k for k in e if k != "id" and k not in cols]
    return cols, [[_cell(e.get(c, "")) for c in cols] for e in entries]


def claim_rows(report):
    return [[c.get("source", ""), c.get("claim", ""), c.get("verdict", ""), c.get("evidence", ""),
             c.get("test", c.get("id", ""))] for c in report.get("claims", [])]


def run_lines(report):
    """How the report was made (its `run`), a few short lines: the command, the profile and
    seed, the selection, the parts left out and why. Empty for a report that does not say."""
    from conformance.results.report import run_of

    run = run_of(report)
    lines = []
    if run.get("command"):
        lines.append("command: " + " ".join(run["command"]))
    if run.get("profile"):
        lines.append(f"hypothesis profile {run['profile']}" + (f", seed {run['seed']}" if run.get("seed") else ""))
    chosen = [f"frameworks {', '.join(run['frameworks'])}" if run.get("frameworks") else "",
              f"-k {run['k']}" if run.get("k") else "", f"-m {run['markers']}" if run.get("markers") else "",
              f"outside adapters {', '.join(run['adapters'])}" if run.get("adapters") else ""]
    if any(chosen) or run.get("deselected"):
        lines.append("selection: " + "; ".join([c for c in chosen if c] + (
            [f"{len(run['deselected'])} case(s) deselected"] if run.get("deselected") else [])))
    left = [p for p in run.get("parts") or () if not p["ran"]]
    if left:
        lines.append("parts left out: " + "; ".join(f"{p['name']} ({p['why']})" for p in left))
    return lines


def environment_rows(report):
    env = report["environment"]
    rows = [["python", env.get("python")], ["platform", env.get("platform")], ["cpu", env.get("cpu")],
            ["cpu_count", env.get("cpu_count")]]
    rows += [[name, ver] for name, ver in sorted(env.get("packages", {}).items()) if ver]
    rows += [[f"part {p.get('name')}", p.get("created")] for p in report.get("parts", [])]
    return [[k, _cell(v)] for k, v in rows]


def _cell(v):
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(map(_cell, v))
    return "" if v is None else str(v)


def _num(v):
    return "" if v is None else f"{v:.3g}"


# ---------------------------------------------------------------- markdown

def _md_table(header, rows):
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(report):
    out = [f"# Conformance report", "", f"Created {report['created']}: {summary_line(report)}.", ""]
    made = run_lines(report)
    if made:
        out += [f"- {line}" for line in made] + [""]
    out += ["## Summary", "", _md_table(["adapter"] + [COLUMN_TITLES.get(c, c) for c in SUMMARY_COLUMNS] + ["total"],
                                        summary_rows(report)), ""]
    cols, rows = semantics_table(report)
    out += ["## Semantics matrix", "", _md_table(cols, rows) if rows else "No fingerprints in this report.", ""]
    findings = finding_rows(report)
    out += ["## Findings", "", _md_table(FINDING_HEADER, findings) if findings else "No findings in this report.", ""]
    out += ["## Deviations", ""]
    devs = deviation_rows(report)
    if not devs:
        out += ["None: every case that ran passed.", ""]
    for r in devs:
        out += [f"### {r['outcome']}: `{r['id']}`", "",
                f"- adapter: {r['adapter'] or '-'} ({r['framework'] or '-'} {r['framework_version'] or ''}, "
                f"backend {r['backend'] or '-'}, device {r['device'] or '-'}, kernel {r['kernel'] or '-'})",
                f"- feature: {r['feature'] or '-'}", f"- reason: {r['reason'] or '-'}",
                f"- max |error| {_num(r['max_abs_err'])}, tolerance {_num(r['tolerance'])}, seed {r['seed']}",
                "- repro:", "", "```", r["repro"] or "", "```", ""]
    growth = error_growth_rows(report)
    out += ["## Error growth over sequence length", "",
            _md_table(["adapter", "dtype", "T", "max |error|", "tolerance"],
                      [[a, d, t, _num(e), _num(tol)] for a, d, t, e, tol in growth]) if growth
            else "No error-growth measurements in this report.", ""]
    rates = rate_rows(report)
    out += ["## Recovered drop rates", "",
            _md_table(["adapter", "mask", "configured", "observed", "99% CI", "draws"], rates) if rates
            else "No drop-rate measurements in this report.", ""]
    cols, rows = benchmark_table(report)
    out += ["## Benchmarks", "", _md_table(cols, rows) if rows else "No benchmarks in this report.", ""]
    claims = claim_rows(report)
    out += ["## Claims", "", _md_table(["source", "claim", "verdict", "evidence", "test"], claims) if claims
            else "No claims in this report.", ""]
    out += ["## Environment", "", _md_table(["", ""], environment_rows(report)), ""]
    return "\n".join(out)


# ---------------------------------------------------------------- html

STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:78em;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;
vertical-align:top}th{background:#f3f3f3}td.n{text-align:right}tr.bad td{background:#fde8e8}
tr.xf td{background:#fff6da}pre{background:#f6f6f6;padding:.5em;overflow-x:auto;white-space:pre-wrap}
nav a{margin-right:1em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}.muted{color:#777}"""


def _h_table(header, rows, numeric=(), row_class=None):
    e = html.escape
    head = "".join(f"<th>{e(str(h))}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = row_class(row) if row_class else ""
        cells = "".join(f"<td class=\"n\">{e(str(c))}</td>" if j in numeric else f"<td>{e(str(c))}</td>"
                        for j, c in enumerate(row))
        body.append(f"<tr class=\"{cls}\">{cells}</tr>" if cls else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _none(text):
    return f"<p class=\"muted\">{html.escape(text)}</p>"


def growth_plot_png(report):
    """A log-log PNG of error and tolerance over T per adapter (float32), or None without
    matplotlib or data."""
    rows = [r for r in error_growth_rows(report) if r[2] and r[3] is not None]
    if not rows:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    series = defaultdict(list)
    for adapter, dtype, steps, err, tol in rows:
        series[(adapter, dtype)].append((steps, max(err, 1e-18), tol))
    fig, ax = plt.subplots(figsize=(11, 5), dpi=100)
    for (adapter, dtype), pts in sorted(series.items()):
        pts.sort()
        line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{adapter} {dtype}")
        ax.plot([p[0] for p in pts], [p[2] for p in pts], linestyle=":", color=line.get_color())
    ax.set(xscale="log", yscale="log", xlabel="sequence length T", ylabel="max |error| (dotted: tolerance)",
           title="Error against the float64 reference over sequence length")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def render_html(report):
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Conformance report</title>"
             f"<style>{STYLE}</style></head><body><h1>Conformance report</h1>"
             f"<p>Created {e(report['created'])}: {e(summary_line(report))}.</p>"
             + ("<ul class=\"run\">" + "".join(f"<li>{e(line)}</li>" for line in run_lines(report)) + "</ul>"
                if run_lines(report) else "") + "<nav>"
             + "".join(f"<a href=\"#{sid}\">{e(title)}</a>" for sid, title in SECTIONS) + "</nav>"]

    def section(sid, body):
        parts.append(f"<section id=\"{sid}\"><h2>{e(dict(SECTIONS)[sid])}</h2>{body}</section>")

    n = len(SUMMARY_COLUMNS) + 2
    section("summary", _h_table(["adapter"] + [COLUMN_TITLES.get(c, c) for c in SUMMARY_COLUMNS] + ["total"],
                                summary_rows(report), numeric=range(1, n),
                                row_class=lambda r: "bad" if r[2] or r[3] else ("xf" if r[5] else "")))
    cols, rows = semantics_table(report)
    section("semantics", _h_table(cols, rows) if rows else _none("No fingerprints in this report."))
    findings = finding_rows(report)
    section("findings", _h_table(FINDING_HEADER, findings) if findings else _none("No findings in this report."))
    devs = deviation_rows(report)
    items = []
    for r in devs:
        items.append(
            f"<h3>{e(r['outcome'])}: <code>{e(r['id'])}</code></h3><ul>"
            f"<li>adapter: {e(r['adapter'] or '-')} ({e(r['framework'] or '-')} {e(r['framework_version'] or '')}, "
            f"backend {e(r['backend'] or '-')}, device {e(r['device'] or '-')}, kernel {e(r['kernel'] or '-')})</li>"
            f"<li>feature: {e(r['feature'] or '-')}</li><li>reason: {e(r['reason'] or '-')}</li>"
            f"<li>max |error| {_num(r['max_abs_err'])}, tolerance {_num(r['tolerance'])}, seed {r['seed']}</li>"
            f"</ul><pre>{e(r['repro'] or '')}</pre>")
    section("deviations", "".join(items) or _none("None: every case that ran passed."))
    growth = error_growth_rows(report)
    png = growth_plot_png(report)
    body = (f"<img alt=\"error growth plot\" src=\"data:image/png;base64,{png}\">" if png else
            _none("No plot (no measurements, or matplotlib is not installed)."))
    body += ("<details><summary>the measurements</summary>"
             + _h_table(["adapter", "dtype", "T", "max |error|", "tolerance"],
                        [[a, d, t, _num(er), _num(tol)] for a, d, t, er, tol in growth], numeric=(2, 3, 4))
             + "</details>" if growth else _none("No error-growth measurements in this report."))
    section("error-growth", body)
    rates = rate_rows(report)
    section("drop-rates", _h_table(["adapter", "mask", "configured", "observed", "99% CI", "draws"], rates)
            if rates else _none("No drop-rate measurements in this report."))
    cols, rows = benchmark_table(report)
    section("benchmarks", _h_table(cols, rows) if rows else _none("No benchmarks in this report."))
    claims = claim_rows(report)
    section("claims", _h_table(["source", "claim", "verdict", "evidence", "test"], claims) if claims
            else _none("No claims in this report."))
    section("environment", _h_table(["", ""], environment_rows(report)))
    parts.append("</body></html>")
    return "".join(parts)


# ---------------------------------------------------------------- junit

def render_junit(report):
    """JUnit XML: one testsuite per suite; failed -> <failure>, error -> <error>, skipped and
    xfailed -> <skipped> (with the reason), the repro as the element text."""
    by_suite = defaultdict(list)
    for r in report["results"]:
        by_suite[r["suite"]].append(r)
    root = ET.Element("testsuites", name="rnn-conformance", tests=str(len(report["results"])))
    for suite, recs in sorted(by_suite.items()):
        counts = Counter(r["outcome"] for r in recs)
        ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(recs)), failures=str(counts["failed"]),
                           errors=str(counts["error"]), skipped=str(counts["skipped"] + counts["xfailed"]),
                           timestamp=report["created"])
        for r in recs:
            case = ET.SubElement(ts, "testcase", classname=suite, name=r["id"])
            tag = {"failed": "failure", "error": "error", "skipped": "skipped", "xfailed": "skipped"}.get(r["outcome"])
            if tag:
                el = ET.SubElement(case, tag, message=(r["reason"] or r["outcome"])[:1000])
                if tag != "skipped":
                    el.text = r["repro"] or ""
            if r["outcome"] == "xpassed":
                ET.SubElement(case, "system-out").text = f"unexpectedly passing: {r['reason'] or ''}"
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
