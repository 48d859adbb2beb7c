"""Reports for people and CI systems: Markdown pages, a self-contained HTML page, JUnit XML.

All are rendered from a report dict (report.json) alone. The front page (report.md, and the
HTML page's top) answers "does X conform?" first; its sections, in Markdown and HTML (HTML ids in
brackets):

    Does it conform? [verdicts]       one verdict per framework and Keras backend, failures first:
                                      FAILS / known deviations (their findings) / conforms / not compared
    Failures [failures]               every failed, errored or unexpectedly passing case, its repro
    What each framework really does [semantics]
                                      the measured fingerprints grouped by framework, short cells
                                      with a legend: padded-step policies (per backend where the
                                      backends differ) and dropout, per path and knob
    Findings [findings]               the registry's root causes (`registry`): what happens, status
                                      this run, upstream; each one's section with its repro is in
                                      findings.md (HTML: expandable in place)
    Expected deviations [deviations]  the xfailed cases grouped under their finding; every record's
                                      details in details.md (HTML: expandable)
    Cases per adapter [summary]       passed / failed / errors / skipped / expected deviations
    Error growth [error-growth]       worst error/tolerance per path (plot in HTML); all points in details.md
    Drop rates [drop-rates]           recovered drop rates with confidence intervals
    Benchmarks [benchmarks]           median ms per path and size (dropout off); every entry in details.md
    Claims [claims]                   verdicts per seed document (the ledger: claims.md)
    Environment [environment]         versions, machine, the merged parts

After the verdicts, "Releases covered" [releases] names the framework releases this report ran
and, given the version matrix (``reports/versions/matrix.json``, `conformance.results.versions`),
shows each framework's findings across its other releases and what changed between them.

A Keras path is always named with its backend ("keras.layers.GRU [jax]"). A section whose data
the report lacks says so. The HTML page loads nothing from outside: the style is inline, plots
are PNGs embedded as data URIs, links to upstream issues are plain links (nothing is fetched).
"""
from __future__ import annotations

import base64
import html
import io
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict

from conformance.results.report import OUTCOMES, part_name

SECTIONS = (("verdicts", "Does it conform?"), ("releases", "Releases covered"), ("failures", "Failures"),
            ("semantics", "What each framework really does"), ("findings", "Findings"),
            ("deviations", "Expected deviations"), ("summary", "Cases per adapter"),
            ("error-growth", "Error growth over sequence length"), ("drop-rates", "Recovered drop rates"),
            ("benchmarks", "Benchmarks"), ("claims", "Claims"), ("environment", "Environment"))
DEVIATION_OUTCOMES = ("failed", "error", "xfailed", "xpassed")
FAILURE_OUTCOMES = ("failed", "error", "xpassed")
SUMMARY_COLUMNS = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
COLUMN_TITLES = {"xfailed": "expected deviations", "xpassed": "unexpectedly passing", "error": "errors"}
VERDICT_ORDER = ("FAILS", "known deviations", "conforms", "not compared")
DETAILS_PAGE, FINDINGS_PAGE = "details.md", "findings.md"


def summary_line(report):
    counts = Counter(r["outcome"] for r in report["results"])
    return ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts[o]) or "no results"


# ---------------------------------------------------------------- names

def backend_of(entry):
    """The Keras backend of a record or section entry: its `backend`, else its id's part
    ("... (keras-jax)" -> jax); None where it says neither."""
    b = entry.get("backend")
    if b:
        return b
    part = part_name(entry.get("id") or "")
    return part.split("-", 1)[1] if part.startswith("keras-") else None


def path_label(entry):
    """An adapter name as readers see it: Keras paths carry their backend, "keras.layers.GRU [jax]"."""
    name = entry.get("adapter") or "?"
    if name.startswith("keras."):
        return f"{name} [{backend_of(entry) or 'tensorflow'}]"
    return name


def framework_of_adapter(name):
    head = (name or "?").split(".")[0]
    return {"tf": "tensorflow"}.get(head, head)


def verdict_group(rec):
    """The unit a verdict is given for: the top-level framework, Keras with its backend."""
    fw = (rec.get("framework") or "").split(".")[0]
    if not fw:
        return "(no framework)"
    if fw == "keras":
        b = backend_of(rec)
        if b and "," in b:
            return "keras (cross-backend)"
        return f"keras ({b or 'tensorflow'})"
    return fw


def _group_matches(entry, group):
    """Whether a registry entry belongs to a verdict group ("keras (jax)", "torch")."""
    fw, _, rest = group.partition(" (")
    if fw not in entry.get("frameworks", ()):
        return False
    if fw != "keras":
        return True
    backend = rest.rstrip(")")
    if backend == "cross-backend":
        return False
    return not entry.get("backends") or backend in entry["backends"]


# ---------------------------------------------------------------- tables (shared by md and html)

REPRO_TEST = "suites/test_findings.py::test_repro["


def verdict_rows(report):
    """[{group, verdict, counts, findings}] one per verdict group, FAILS first, then known
    deviations, conforms, not compared; `findings`: the ids of the registry findings of the group
    and of its expected deviations."""
    by = defaultdict(Counter)
    found = defaultdict(dict)
    for r in report["results"]:
        g = verdict_group(r)
        by[g][r["outcome"]] += 1
        # A repro record runs in whichever process runs suites/test_findings.py (Keras on
        # tensorflow): the groups its finding belongs to are the registry entry's own, below.
        if r.get("finding") and r["outcome"] in ("xfailed", "xpassed", "passed") \
                and not r["id"].startswith(REPRO_TEST):
            found[g][r["finding"]] = None
        elif r["outcome"] == "xfailed":
            by[g]["unnamed"] += 1
        elif r["outcome"] == "passed" and (r.get("reason") or "").startswith("finding:"):
            by[g]["noted"] += 1  # a passing test that recorded a framework finding (no registry id)
    for e in report.get("registry", []):  # a finding whose repro reproduced it in this run (a run
        for g in by:                      # of the benchmarks alone or of the GPU cases runs none)
            if _group_matches(e, g) and e.get("status") == "reproduced":
                found[g].setdefault(e["id"], None)
    rows = []
    for g, c in by.items():
        if g in ("(no framework)", "reference"):  # the harness's own cases: no framework to judge
            continue
        bad = c["failed"] + c["error"] + c["xpassed"]
        compared = sum(c[o] for o in ("passed", "failed", "error", "xfailed", "xpassed"))
        verdict = ("FAILS" if bad else "known deviations" if c["xfailed"] or found[g] or c["noted"] else
                   "conforms" if compared else "not compared")
        rows.append({"group": g, "verdict": verdict, "counts": c, "findings": list(found[g])})
    return sorted(rows, key=lambda r: (VERDICT_ORDER.index(r["verdict"]), r["group"]))


def verdict_text(row):
    c = row["counts"]
    if row["verdict"] == "FAILS":
        parts = [f"{c[o]} {w}" for o, w in (("failed", "failed"), ("error", "errors"),
                                              ("xpassed", "unexpectedly passing")) if c[o]]
        return "FAILS: " + ", ".join(parts)
    if row["verdict"] == "known deviations":
        n = len(row["findings"])
        said = []
        if c["xfailed"]:
            said.append(f"{c['xfailed']} expected-deviation case{'s' if c['xfailed'] != 1 else ''}"
                        + (f", {c['unnamed']} without a named finding" if c["unnamed"] and n else ""))
        if c["noted"]:
            said.append(f"{c['noted']} passing case{'s' if c['noted'] != 1 else ''} that recorded a finding")
        head = f"{n} known deviation{'s' if n != 1 else ''}" if n else "known deviations"
        return head + (f" ({'; '.join(said)})" if said else "")
    if row["verdict"] == "conforms":
        return "conforms"
    return "not compared (every case skipped)"


def verdict_counts(row):
    c = row["counts"]
    return ", ".join(f"{c[o]} {COLUMN_TITLES.get(o, o)}" for o in SUMMARY_COLUMNS if c[o])


def summary_rows(report):
    """[[adapter, counts per SUMMARY_COLUMNS..., total]] sorted by adapter (Keras paths with their
    backend); records without an adapter are grouped under their suite."""
    by = defaultdict(Counter)
    for r in report["results"]:
        by[path_label(r) if r["adapter"] else f"({r['suite']})"][r["outcome"]] += 1
    return [[name] + [c[o] for o in SUMMARY_COLUMNS] + [sum(c.values())] for name, c in sorted(by.items())]


PROPERTY_ORDER = ("input", "recurrent", "recurrent_c", "inter_layer", "output", "state_h", "state_c", "evaluation mode",
                  "seeds", "inference call")
PROPERTY_TITLES = {"recurrent_c": "carried c", "inter_layer": "between layers", "state_h": "state h", "state_c": "state c",
                   "evaluation mode": "eval mode", "inference call": "inference call"}
# Short cells of the semantics matrix: (measured phrase, short form, meaning for the legend).
SHORT = (("per sequence", "seq", "one mask per sequence, reused at every step"),
         ("per step", "step", "a fresh mask at every step"),
         ("gates shared", "shared", "one mask for all gates"),
         ("per gate", "per gate", "a mask of its own for each gate"),
         ("rows independent", "rows", "each batch row draws its own mask"),
         ("kept value 1/(1-p)", "x1/(1-p)", "kept values scaled by 1/(1-p)"),
         ("unknown (input masked)", "?", "not measurable: the input mask hides it"),
         ("unknown (<tensor> masked)", "? (<tensor>)", "not measurable: the mask on that tensor (output, state_h) hides it"),
         ("nothing dropped", "off", "nothing is dropped in evaluation mode"),
         ("same seed same masks; other seed other masks", "seeded", "same seed, same masks; other seed, other masks"),
         ("does not advance the random state", "no draw", "an inference call leaves the random state as it was"),
         ("advances the random state", "draws", "an inference call advances the random state"),
         ("none", "-", "nothing dropped there"))
BLANK = ("An empty cell: the path has no such tensor (no cell state c in a GRU; no layer above the first "
         "where the path runs one layer only).")
PADDING_TITLES = {"zero_output": "zero_output (masked steps output 0, state carried)",
                  "repeat_output / carry_h": "repeat_output / carry_h (masked steps repeat the last output)"}


def short_cell(value):
    text = str(value or "")
    if text == "none":
        return "-"
    for phrase, short, _ in SHORT:
        if phrase != "none":
            text = text.replace(phrase, short)
    return re.sub(r"unknown \((\w+) masked\)", r"? (\1)", text)


def _by_backend(values):
    """{backend: value} as one cell: the value if all backends agree, else "tensorflow: a; jax: b"."""
    distinct = list(dict.fromkeys(values.values()))
    if len(distinct) == 1:
        return distinct[0]
    inverse = defaultdict(list)
    for b, v in values.items():
        inverse[v].append(b or "-")
    return "; ".join(f"{', '.join(bs)}: {v}" for v, bs in inverse.items())


def semantics_tables(report):
    """(padding, dropout, without): `padding` rows [framework, path, policy] for the paths that
    take lengths or a mask (one cell per path: per backend where the Keras backends differ);
    `dropout` rows [framework, paths, knob, properties...] (short cells, see SHORT; the paths of a
    framework whose cells are all alike for a knob share one row, their names joined); `without`:
    {framework: [paths]} measured with no dropout knob declared and no lengths input."""
    fps = report.get("fingerprints", [])
    padding, dropout, plain = defaultdict(dict), defaultdict(dict), defaultdict(set)
    for fp in fps:
        props, adapter = fp.get("properties", {}), fp.get("adapter", "?")
        backend = fp.get("backend") if adapter.startswith("keras.") else None
        pad = props.get("padded steps")
        if pad and pad != "no lengths input":
            padding[adapter][backend] = pad
        if fp.get("knob"):
            knob = fp["knob"].replace("+", " + ")  # "dropout + recurrent_dropout" may wrap
            dropout[(adapter, f"{knob}={_cell(fp.get('rate'))}")][backend] = props
        elif props.get("dropout") == "no knob declared" and (not pad or pad == "no lengths input"):
            plain[framework_of_adapter(adapter)].add(adapter)
    variants = defaultdict(list)  # the variants of one path that measured the same: one row
    for a, v in padding.items():
        base, _, variant = a.partition("[")
        variants[(framework_of_adapter(a), base, _by_backend(v))].append(variant.rstrip("]"))
    pad_rows = sorted([fw, base + _variants_label(vs), policy] for (fw, base, policy), vs in variants.items())
    cols = [p for p in PROPERTY_ORDER if any(p in props for v in dropout.values() for props in v.values())]
    same = defaultdict(list)  # paths of one framework that measured the same for a knob: one row
    for (a, knob), v in dropout.items():
        cells = tuple(_by_backend({b: short_cell(props.get(p, "")) for b, props in v.items()}) for p in cols)
        same[(framework_of_adapter(a), knob, cells)].append(a)
    drop_rows = sorted([fw, ", ".join(sorted(paths)), knob, *cells] for (fw, knob, cells), paths in same.items())
    header = ["framework", "path", "knob"] + [PROPERTY_TITLES.get(p, p) for p in cols]
    return pad_rows, (header, drop_rows), {k: sorted(v) for k, v in sorted(plain.items())}


def _variants_label(variants):
    """"[mask]" for one variant; for several, what they share and how they vary:
    "[packed; enforce_sorted=False/True; batch_first or not] (4 variants)"."""
    if len(variants) == 1:
        return f"[{variants[0]}]" if variants[0] else ""
    token_sets = [[t for t in v.split(",") if t] for v in variants]
    common = [t for t in token_sets[0] if all(t in ts for ts in token_sets)]
    keyed, flags = defaultdict(set), set()
    for ts in token_sets:
        for t in ts:
            if t not in common:
                (keyed[t.split("=", 1)[0]].add(t.split("=", 1)[1]) if "=" in t else flags.add(t))
    parts = common + [f"{k}={'/'.join(sorted(v))}" for k, v in sorted(keyed.items())]
    parts += [f"{f} or not" for f in sorted(flags)]
    return f"[{'; '.join(parts)}] ({len(variants)} variants)"


def semantics_table(report):
    """(columns, rows) of every fingerprint as measured, one row per adapter (and backend), one
    column per property (the long form of the matrix, in details.md)."""
    fps = report.get("fingerprints", [])
    found = {k for fp in fps for k in fp.get("properties", {})}
    order = PROPERTY_ORDER + ("padded steps", "dropout")
    props = [k for k in order if k in found] + sorted(found - set(order))
    rows = []
    for fp in fps:
        knob = f"{fp['knob']}={fp.get('rate')}" if fp.get("knob") else "-"
        rows.append([path_label(fp), knob] + [_cell(fp.get("properties", {}).get(p, "")) for p in props])
    return ["adapter", "knob"] + props, rows


def finding_rows(report):
    """The measured-fact findings of fingerprint and coverage tests (`findings` section): the
    registry id of the root cause where the test knows it (an expected deviation), else its link."""
    return [[path_label(f), f.get("knob") or "", {True: "yes", False: "no"}.get(f.get("expected"), "undeclared"),
             f.get("summary", ""), f.get("evidence", ""), f.get("finding") or f.get("link") or ""]
            for f in report.get("findings", [])]


FINDING_HEADER = ["adapter", "case", "expected", "summary", "evidence", "finding / link"]


def registry_status(entry):
    status = entry.get("status")
    if status is None:
        return "repro not run"
    return status.split(":", 1)[0] if status.startswith(("no longer", "skipped")) else status


def registry_rows(report):
    """[id, title, where, kind, status this run, upstream] per registry entry; the ones that no
    longer reproduce first."""
    rows = []
    for e in report.get("registry", []):
        where = ", ".join(e.get("frameworks", ())) + (f" ({', '.join(e['backends'])})" if e.get("backends") else "")
        rows.append([e["id"], e["title"], where, e.get("kind", ""), registry_status(e),
                     e.get("upstream") or e.get("upstream_status", "")])
    return sorted(rows, key=lambda r: (not r[4].startswith("no longer"), r[2], r[0]))


def deviation_rows(report):
    return [r for r in report["results"] if r["outcome"] in DEVIATION_OUTCOMES]


def deviations_by_finding(report):
    """[(finding id or None, title, [xfailed records])], the largest groups first, None last."""
    titles = {e["id"]: e["title"] for e in report.get("registry", [])}
    groups = defaultdict(list)
    for r in report["results"]:
        if r["outcome"] == "xfailed":
            groups[r.get("finding")].append(r)
    order = sorted(groups, key=lambda k: (k is None, -len(groups[k]), str(k)))
    return [(k, titles.get(k, "(finding not in this report's registry)" if k else "(no finding named)"), groups[k])
            for k in order]


def measured_part(reason):
    """What a test measured, from an expected deviation's reason ("... | measured: X")."""
    return reason.split(" | measured: ", 1)[1] if reason and " | measured: " in reason else ""


def error_growth_rows(report):
    rows = [[path_label(e), e.get("dtype"), e.get("steps"), e.get("max_abs_err"), e.get("tolerance")]
            for e in report.get("error_growth", [])]
    return sorted(rows, key=lambda r: (str(r[0]), str(r[1]), r[2] or 0))


def error_growth_summary(report):
    """[path, dtype, T range, worst error/tolerance, at T] per path and dtype."""
    by = defaultdict(list)
    for path, dtype, steps, err, tol in error_growth_rows(report):
        if err is not None and tol:
            by[(path, dtype)].append((err / tol, steps))
    rows = []
    for (path, dtype), pts in sorted(by.items()):
        worst, at = max(pts)
        ts = [t for _, t in pts]
        rows.append([path, dtype, f"{min(ts)}..{max(ts)}", f"{worst:.3g}", at])
    return rows


def benchmark_table(report):
    entries = report.get("benchmarks", [])
    cols = []
    for e in entries:
        cols += [k for k in e if k not in ("id", "adapter", "bound_why") and k not in cols]  # why: benchmark_bounds
    return ["path"] + cols, [[path_label(e)] + [_cell(e.get(c, "")) for c in cols] for e in entries]


def benchmark_summary(report):
    """(sizes, rows): median ms of the dropout-off forward, one row per path, a column per size."""
    by = defaultdict(dict)
    sizes = []
    for e in report.get("benchmarks", []):
        if e.get("dropout", "off") == "off" and e.get("mode", "forward") == "forward" and e.get("median_ms") is not None:
            size = str(e.get("size", "?"))
            sizes += [size] if size not in sizes else []
            by[path_label(e)].setdefault(size, e["median_ms"])
    return sizes, [[p] + [_num(v.get(s)) for s in sizes] for p, v in sorted(by.items())]


def benchmark_bounds(report):
    """One sentence on the asserted speed bounds, from the benchmark entries that carry
    ``bound_rule`` (the reference speed suite, one thread): each distinct rule with this run's
    ratios per size and whether they held, then why those bounds (``bound_why``); "" when no entry
    carries one."""
    rules, whys = {}, []
    for x in report.get("benchmarks", []):
        rule = x.get("bound_rule")
        if not rule:
            continue
        held = {True: "held", False: "FAILED"}.get(x.get("within_bound"), "not judged")
        rules.setdefault(rule, []).append(f"{x.get('size', '?')} {_num(x.get('ratio'))}x {held}")
        if x.get("bound_why") and x["bound_why"] not in whys:
            whys.append(x["bound_why"])
    if not rules:
        return ""
    order = sorted(rules, key=lambda r: (not r.startswith("forward"), r))  # the forward bound first
    return ("Asserted bounds: " + "; ".join(f"{r} ({', '.join(rules[r])})" for r in order) + "."
            + (" Why: " + " ".join(w.rstrip(".") + "." for w in whys) if whys else ""))


def claim_rows(report):
    return [[c.get("source", ""), c.get("claim", ""), c.get("verdict", ""), c.get("evidence", ""),
             c.get("test", c.get("id", ""))] for c in report.get("claims", [])]


def claim_summary(report):
    by = defaultdict(Counter)
    for c in report.get("claims", []):
        by[c.get("source", "?")][c.get("verdict", "?")] += 1
    return [[src, ", ".join(f"{n} {v}" for v, n in c.most_common())] for src, c in sorted(by.items())]


def rate_rows(report):
    """[path, mask kind, configured rate, observed, 99% CI, draws] from fingerprint entries' rates."""
    rows = []
    for fp in report.get("fingerprints", []):
        for r in fp.get("rates", []):
            rows.append([path_label(fp), r.get("kind", "?"), _cell(r.get("configured")),
                         _cell(r.get("observed")), f"[{_cell(r.get('ci_low'))}, {_cell(r.get('ci_high'))}]",
                         _cell(r.get("n"))])
    return rows


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


def _anchor(text):
    return re.sub(r"[^a-z0-9 -]", "", text.lower()).replace(" ", "-")


def _fence(text, lang=""):
    ticks = "````" if "```" in (text or "") else "```"
    return [ticks + lang, (text or "").rstrip("\n"), ticks]


def _first(text, limit=160):
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[:limit - 3].rsplit(" ", 1)[0] + "..."


def _record_md(r, level="####"):
    return [f"{level} {r['outcome']}: `{r['id']}`", "",
            f"- adapter: {path_label(r) if r['adapter'] else '-'} ({r['framework'] or '-'} "
            f"{r['framework_version'] or ''}, device {r['device'] or '-'}, kernel {r['kernel'] or '-'})",
            f"- finding: {r.get('finding') or '-'}; feature: {r['feature'] or '-'}",
            f"- reason: {r['reason'] or '-'}",
            f"- max |error| {_num(r['max_abs_err'])}, tolerance {_num(r['tolerance'])}, seed {r['seed']}",
            "- repro:", "", *_fence(r["repro"], "sh" if (r["repro"] or "").startswith(("python -m", "KERAS_", "TF_"))
                                     else ""), ""]


def _legend_md():
    return ("Legend: " + "; ".join(f"`{short}` {meaning}" for _, short, meaning in SHORT)
            + ". " + BLANK + " Cells that differ by Keras backend read `backend: value`.")


FRAMEWORK_DISTRIBUTIONS = ("torch", "tensorflow-cpu", "tensorflow", "keras", "tf-keras", "jax", "jaxlib", "flax",
                           "onnx", "onnxruntime")


def releases_covered(report):
    """"torch 2.13.0+cpu, tensorflow-cpu 2.21.0, ..." of the frameworks the report's run had."""
    pk = report.get("environment", {}).get("packages", {})
    return ", ".join(f"{k} {pk[k]}" for k in FRAMEWORK_DISTRIBUTIONS if pk.get(k)) or "no framework"


def _releases_md(report, matrix, link):
    from conformance.results import versions

    out = ["## Releases covered", "", f"This report ran {releases_covered(report)}.", ""]
    if matrix:
        out += [versions.render_section(matrix, link), ""]
    else:
        out += ["No version matrix beside this report (`make matrix` writes reports/versions/).", ""]
    return out


def _releases_html(report, matrix, link):
    from conformance.results import versions

    e = html.escape
    body = f"<p>This report ran {e(releases_covered(report))}.</p>"
    if not matrix:
        return body + _none("No version matrix beside this report (make matrix writes reports/versions/).")
    body += (f"<p>The <a href=\"{e(link)}\">version matrix</a> ({e(matrix['created'])}) ran the "
             "suites of each framework under its current releases, one environment each (make matrix; the gate "
             "between consecutive releases):</p>")
    for g in matrix["groups"]:
        rel = g["releases"]
        body += f"<h3>{e(g['framework'])}: {e(' → '.join(rel))}</h3>"
        body += f"<p>Cases: {e('; '.join(versions.cases_summary(matrix, g)))}.</p>"
        if g["findings"]:
            cls = {"deviation": "xf", "fails": "bad", "conforms": "ok", "fixed": "ok"}
            rows = [[f"<code>{e(f['id'])}</code>"] + [
                f"<span class=\"{cls.get(f['cells'][v]['state'], '')}\">{e(f['cells'][v]['state'])}</span>"
                for v in rel] for f in g["findings"]]
            body += _h_table(["finding", *rel], rows, raw=tuple(range(len(rel) + 1)))
        body += "<ul>" + "".join(_gate_html(gate, link) for gate in matrix["gates"]
                                 if gate["framework"] == g["framework"]) + "</ul>"
    return body


def _gate_html(g, link, limit=8):
    """One gate of the version matrix as an HTML list item (its changes nested)."""
    import posixpath

    e = html.escape
    head = f"<b>{e(g['from'])} → {e(g['to'])}</b>: "
    if g["path"] is None:
        return f"<li>{head}not compared (a report is missing)</li>"
    verdict = "PASS" if g["exit"] == 0 else f"{len(g['regressions'])} regression(s)"
    href = posixpath.join(posixpath.dirname(link), posixpath.basename(g["path"]))
    items = g["regressions"] + g["changes"]
    sub = "".join(f"<li>{e(it['kind'])}: <code>{e(it['id'])}</code>: {e(it['detail'][:240])}</li>"
                  for it in items[:limit]) or "<li>no change.</li>"
    if len(items) > limit:
        sub += f"<li>... and {len(items) - limit} more (see the gate)</li>"
    return (f"<li>{head}{e(verdict)}; compared {g['shared']} cases, {g['fingerprints_compared']} fingerprints, "
            f"{g.get('kernels_compared', 0)} kernels, {g.get('benchmarks_compared', 0)} benchmark ratios (medium "
            f"size); <a href=\"{e(href)}\">the gate</a><ul>{sub}</ul></li>")


def render_markdown(report, matrix=None, matrix_link="../versions/matrix.md"):
    """report.md, the front page: verdicts first; the long lists are in details.md and findings.md.
    `matrix` (reports/versions/matrix.json's dict) adds the releases' section under the verdicts."""
    out = ["# Conformance report", "", f"Created {report['created']}: {summary_line(report)}.", ""]
    made = run_lines(report)
    if made:
        out += [f"- {line}" for line in made] + [""]
    out += [f"Pages beside this one: [{FINDINGS_PAGE}]({FINDINGS_PAGE}) (each root cause with its repro), "
            f"[{DETAILS_PAGE}]({DETAILS_PAGE}) (every deviating case, all measurements), "
            "`drafts/` (upstream issue drafts), report.html, report.json.", ""]
    rows = verdict_rows(report)
    out += ["## Does it conform?", ""]
    out += [_md_table(["framework", "verdict", "findings", "cases"],
                      [[r["group"], f"**{verdict_text(r)}**" if r["verdict"] == "FAILS" else verdict_text(r),
                        ", ".join(f"[{f}]({FINDINGS_PAGE}#{_anchor(f)})" for f in r["findings"]) or "-",
                        verdict_counts(r)] for r in rows]) if rows else "No results in this report.", ""]
    out += _releases_md(report, matrix, matrix_link)
    fails = [r for r in report["results"] if r["outcome"] in FAILURE_OUTCOMES]
    out += ["## Failures", ""]
    if not fails:
        out += ["None: no case failed, errored or passed unexpectedly.", ""]
    for r in fails:
        out += _record_md(r, "###")
    pad, (header, drop), plain = semantics_tables(report)
    out += ["## What each framework really does", ""]
    if not (pad or drop):
        out += ["No fingerprints in this report.", ""]
    else:
        out += ["### Padded steps (lengths or a mask)", "",
                _md_table(["framework", "path", "policy at padded steps"], pad) if pad else "None measured.", "",
                "### Dropout", "", _legend_md(), "", _md_table(header, drop) if drop else "None measured.", ""]
        if plain:
            out += ["Measured with no dropout knob and no lengths input: "
                    + "; ".join(f"{fw}: {', '.join(paths)}" for fw, paths in plain.items()) + ".", ""]
    reg = registry_rows(report)
    out += ["## Findings", ""]
    out += [_md_table(["finding", "what happens", "where", "kind", "repro this run", "upstream"],
                      [[f"[{i}]({FINDINGS_PAGE}#{_anchor(i)})", t, w, k, st, up] for i, t, w, k, st, up in reg])
            if reg else "No findings registry in this report.", ""]
    measured = finding_rows(report)
    if measured:
        out += [f"Measured facts recorded by the fingerprint and coverage tests: {len(measured)} "
                f"(listed in [{DETAILS_PAGE}]({DETAILS_PAGE}#measured-findings)).", ""]
    groups = deviations_by_finding(report)
    out += ["## Expected deviations", ""]
    out += [_md_table(["finding", "cases", "paths", "one measured example"],
                      [[f"[{k}]({FINDINGS_PAGE}#{_anchor(k)}) {t}" if k else t, len(recs),
                        ", ".join(sorted({path_label(r) for r in recs if r["adapter"]}))[:200] or "-",
                        _first(measured_part(recs[0]["reason"]) or recs[0]["reason"], 120)]
                       for k, t, recs in groups])
            + f"\n\nEvery case with its reason and repro: [{DETAILS_PAGE}]({DETAILS_PAGE}#expected-deviations)."
            if groups else "None.", ""]
    summary = summary_rows(report)
    out += ["## Cases per adapter", ""]
    out += [f"{len(summary)} adapter paths; the cases of each, by outcome: "
            f"[{DETAILS_PAGE}]({DETAILS_PAGE}#cases-per-adapter)." if summary else "No results.", ""]
    growth = error_growth_summary(report)
    out += ["## Error growth over sequence length", ""]
    out += [_md_table(["path", "dtype", "T", "worst error / tolerance", "at T"], growth)
            + f"\n\nEvery point: [{DETAILS_PAGE}]({DETAILS_PAGE}#error-growth)." if growth
            else "No error-growth measurements in this report.", ""]
    rates = rate_rows(report)
    out += ["## Recovered drop rates", ""]
    if rates:
        outside = [r for r in rates if not _in_ci(r)]
        out += [_rates_sentence(rates, outside)
                + f" All of them: [{DETAILS_PAGE}]({DETAILS_PAGE}#recovered-drop-rates).", ""]
        if outside:
            out += [_md_table(["path", "mask", "configured", "observed", "99% CI", "draws"], outside), ""]
    else:
        out += ["No drop-rate measurements in this report.", ""]
    sizes, bench = benchmark_summary(report)
    out += ["## Benchmarks", ""]
    out += [_md_table(["path"] + [f"{s} (ms)" for s in sizes], bench)
            + f"\n\nMedian ms of the forward pass, dropout off. Every entry: [{DETAILS_PAGE}]({DETAILS_PAGE}#benchmarks)."
            if bench else "No benchmarks in this report.", ""]
    bounds = benchmark_bounds(report)
    out += [bounds, ""] if bounds else []
    claims = claim_summary(report)
    out += ["## Claims", ""]
    out += [_md_table(["document", "verdicts"], claims) + "\n\nEach claim with its evidence: claims.md."
            if claims else "No claims in this report.", ""]
    out += ["## Environment", "", _md_table(["", ""], environment_rows(report)), ""]
    return "\n".join(out)


def _rates_sentence(rates, outside):
    return (f"{len(rates)} recovered drop rates; {len(outside)} with the configured rate outside its 99% "
            f"confidence interval (by chance alone about {len(rates) / 100:.1f} of {len(rates)} would be; the "
            "fingerprint tests judge each measurement at a family false-alarm probability of 1e-6, Holm-corrected, "
            "and their verdicts are the records).")


def _in_ci(row):
    try:
        low, high = (float(x) for x in row[4].strip("[]").split(","))
        return low <= float(row[2]) <= high
    except ValueError:
        return True


def render_details_markdown(report):
    """details.md: every deviating case grouped under its finding, the measured facts, and every
    error-growth point, drop rate and benchmark entry."""
    out = ["# Conformance report: details", "", f"Created {report['created']}: {summary_line(report)}. "
           "The front page is report.md.", "", "## Expected deviations", ""]
    groups = deviations_by_finding(report)
    if not groups:
        out += ["None.", ""]
    for k, title, recs in groups:
        out += [f"### {k or 'no finding'}: {title} ({len(recs)} cases)", ""]
        for r in recs:
            out += _record_md(r)
    summary = summary_rows(report)
    out += ["## Cases per adapter", ""]
    out += [_md_table(["adapter"] + [COLUMN_TITLES.get(c, c) for c in SUMMARY_COLUMNS] + ["total"], summary)
            if summary else "No results.", ""]
    measured = finding_rows(report)
    out += ["## Measured findings", ""]
    out += [_md_table(FINDING_HEADER, measured) if measured else "None.", ""]
    cols, rows = semantics_table(report)
    out += ["## Fingerprints as measured", "", _md_table(cols, rows) if rows else "None.", ""]
    growth = error_growth_rows(report)
    out += ["## Error growth", ""]
    out += [_md_table(["path", "dtype", "T", "max |error|", "tolerance"],
                      [[a, d, t, _num(e), _num(tol)] for a, d, t, e, tol in growth]) if growth else "None.", ""]
    rates = rate_rows(report)
    out += ["## Recovered drop rates", ""]
    out += [_md_table(["path", "mask", "configured", "observed", "99% CI", "draws"], rates) if rates else "None.", ""]
    cols, rows = benchmark_table(report)
    bounds = benchmark_bounds(report)
    out += ["## Benchmarks", ""] + ([bounds, ""] if bounds else []) + [_md_table(cols, rows) if rows else "None.", ""]
    return "\n".join(out)


def render_findings_markdown(report):
    """findings.md: one section per root cause of the report's registry, its repro fenced."""
    out = ["# Findings", "", "One section per root cause (the registry, `findings/` in the repository). Each "
           "repro is standalone: paste it into a fresh interpreter with the framework installed; its last "
           "line says `REPRODUCED: <id>` while the behaviour is present. Issue drafts: `drafts/<id>.md`.", ""]
    entries = sorted(report.get("registry", []), key=lambda e: e["id"])
    if not entries:
        out += ["No findings registry in this report.", ""]
    for e in entries:
        out += [f"## {e['id']}", "", f"**{e['title']}**", "",
                f"- where: {', '.join(e['frameworks'])}" + (f" ({', '.join(e['backends'])} backend)"
                                                           if e.get("backends") else "")
                + (f"; `{e['component']}`" if e.get("component") else ""),
                f"- kind: {e['kind']}; versions: {e['versions']}; repro this run: {e.get('status') or 'not run'}",
                f"- upstream: {e.get('upstream') or '-'} ({e['upstream_status']})",
                f"- what happens: {e['what_happens']}", f"- expected: {e['expected']}",
                f"- why: {e['why_expected']}", f"- impact: {e['impact']}",
                "- evidence: " + ", ".join(f"`{t}`" for t in e["evidence"]), "",
                f"Repro (`{e['repro_file']}`):", "", *_fence(e["repro"], "python"), ""]
    return "\n".join(out)


# ---------------------------------------------------------------- html

STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1360px;padding:0 1em 2em;color:#222}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:.4em 0;z-index:1;
display:flex;flex-wrap:wrap;gap:.2em 1em}
.tw{overflow-x:auto;max-width:100%}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top;overflow-wrap:break-word;
max-width:36em}th{background:#f3f3f3}td.n{text-align:right;white-space:nowrap}
tr.bad td{background:#fde8e8}tr.xf td{background:#fff6da}tr.ok td{background:#eaf6ea}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;white-space:pre-wrap;overflow-wrap:anywhere}
details{margin:.3em 0}summary{cursor:pointer}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em;
scroll-margin-top:3em}section{scroll-margin-top:3em}.muted{color:#777}.v-FAILS{color:#b00;font-weight:bold}
dl.legend{display:grid;grid-template-columns:max-content auto;gap:0 1em}dl.legend dt{font-family:monospace}"""


def _h_table(header, rows, numeric=(), row_class=None, raw=()):
    """An HTML table; columns in `raw` hold markup already escaped."""
    e = html.escape
    head = "".join(f"<th>{e(str(h))}</th>" for h in header)
    body = []
    for row in rows:
        cls = row_class(row) if row_class else ""
        cells = "".join(f"<td class=\"n\">{e(str(c))}</td>" if j in numeric else
                        f"<td>{c if j in raw else e(str(c))}</td>" for j, c in enumerate(row))
        body.append(f"<tr class=\"{cls}\">{cells}</tr>" if cls else f"<tr>{cells}</tr>")
    return f"<div class=\"tw\"><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


def _none(text):
    return f"<p class=\"muted\">{html.escape(text)}</p>"


def growth_plot_png(report):
    """A log-log PNG of error and tolerance over T per path (float32), or None without
    matplotlib or data. Every series has a colour and marker of its own."""
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
    for path, dtype, steps, err, tol in rows:
        series[(path, dtype)].append((steps, max(err, 1e-18), tol))
    fig, ax = plt.subplots(figsize=(12, 5.5), dpi=100)
    cmap = plt.get_cmap("tab20")
    markers = "o^sDv<>pP*Xh"
    for i, ((path, dtype), pts) in enumerate(sorted(series.items())):
        pts.sort()
        colour = cmap((i * 2) % 20 + (i // 10) % 2)  # 20 distinct colours, light/dark pairs split apart
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=markers[i % len(markers)], color=colour,
                linestyle="-" if i < 20 else "--", label=f"{path} {dtype}")
        ax.plot([p[0] for p in pts], [p[2] for p in pts], linestyle=":", color=colour)
    ax.set(xscale="log", yscale="log", xlabel="sequence length T", ylabel="max |error| (dotted: tolerance)",
           title="Error against the float64 reference over sequence length")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _record_html(r):
    e = html.escape
    return (f"<details><summary>{e(r['outcome'])}: <code>{e(r['id'])}</code></summary><ul>"
            f"<li>adapter: {e(path_label(r) if r['adapter'] else '-')} ({e(r['framework'] or '-')} "
            f"{e(r['framework_version'] or '')}, device {e(r['device'] or '-')}, kernel {e(r['kernel'] or '-')})</li>"
            f"<li>finding: {e(r.get('finding') or '-')}; feature: {e(r['feature'] or '-')}</li>"
            f"<li>reason: {e(r['reason'] or '-')}</li>"
            f"<li>max |error| {_num(r['max_abs_err'])}, tolerance {_num(r['tolerance'])}, seed {r['seed']}</li>"
            f"</ul><pre>{e(r['repro'] or '')}</pre></details>")


def _link(url):
    e = html.escape
    return f"<a href=\"{e(url)}\">{e(url)}</a>" if url and url.startswith("https://") else e(url or "-")


def render_html(report, matrix=None, matrix_link="../versions/matrix.md"):
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Conformance report</title>"
             f"<meta name=\"viewport\" content=\"width=device-width\"><style>{STYLE}</style></head><body>"
             "<nav>" + "".join(f"<a href=\"#{sid}\">{e(title)}</a>" for sid, title in SECTIONS) + "</nav>"
             f"<h1>Conformance report</h1><p>Created {e(report['created'])}: {e(summary_line(report))}.</p>"
             + ("<ul class=\"run\">" + "".join(f"<li>{e(line)}</li>" for line in run_lines(report)) + "</ul>"
                if run_lines(report) else "")]

    def section(sid, body):
        parts.append(f"<section id=\"{sid}\"><h2>{e(dict(SECTIONS)[sid])}</h2>{body}</section>")

    rows = verdict_rows(report)
    section("verdicts", _h_table(
        ["framework", "verdict", "findings", "cases"],
        [[r["group"], f"<span class=\"v-{r['verdict'].split()[0]}\">{e(verdict_text(r))}</span>",
          ", ".join(f"<a href=\"#f-{e(f)}\">{e(f)}</a>" for f in r["findings"]) or "-", verdict_counts(r)]
         for r in rows], raw=(1, 2),
        row_class=lambda row: "bad" if "FAILS" in row[1] else "xf" if "known" in row[1] else
        "ok" if "conforms" in row[1] else "") if rows else _none("No results in this report."))
    section("releases", _releases_html(report, matrix, matrix_link))
    fails = [r for r in report["results"] if r["outcome"] in FAILURE_OUTCOMES]
    section("failures", "".join(_record_html(r).replace("<details>", "<details open>", 1) for r in fails)
            or _none("None: no case failed, errored or passed unexpectedly."))
    pad, (header, drop), plain = semantics_tables(report)
    if pad or drop:
        legend = "<dl class=\"legend\">" + "".join(f"<dt>{e(s)}</dt><dd>{e(m)}</dd>" for _, s, m in SHORT) + "</dl>"
        body = ("<h3>Padded steps (lengths or a mask)</h3>"
                + (_h_table(["framework", "path", "policy at padded steps"], pad) if pad else _none("None measured."))
                + "<h3>Dropout</h3><details><summary>legend</summary>" + legend
                + f"<p>{e(BLANK)} Cells that differ by Keras backend read <code>backend: value</code>.</p></details>"
                + (_h_table(header, [[r[0], e(r[1]).replace("(", "(<wbr>"), *r[2:]] for r in drop], raw=(1,))
                   if drop else _none("None measured.")))
        if plain:
            body += ("<p>Measured with no dropout knob and no lengths input: "
                     + "; ".join(f"{e(fw)}: {e(', '.join(ps))}" for fw, ps in plain.items()) + ".</p>")
    else:
        body = _none("No fingerprints in this report.")
    section("semantics", body)
    entries = sorted(report.get("registry", []), key=lambda x: x["id"])
    reg = registry_rows(report)
    body = (_h_table(["finding", "what happens", "where", "kind", "repro this run", "upstream"],
                     [[f"<a href=\"#f-{e(i)}\">{e(i)}</a>", t, w, k, s, _link(u) if u.startswith("https://") else e(u)]
                      for i, t, w, k, s, u in reg], raw=(0, 5),
                     row_class=lambda row: "bad" if row[4].startswith("no longer") else "")
            if reg else _none("No findings registry in this report."))
    for x in entries:
        body += (f"<details id=\"f-{e(x['id'])}\"><summary><b>{e(x['id'])}</b>: {e(x['title'])}</summary><ul>"
                 f"<li>where: {e(', '.join(x['frameworks']))}"
                 + (f" ({e(', '.join(x['backends']))} backend)" if x.get("backends") else "")
                 + (f"; <code>{e(x['component'])}</code>" if x.get("component") else "") + "</li>"
                 f"<li>kind: {e(x['kind'])}; versions: {e(x['versions'])}; repro this run: "
                 f"{e(x.get('status') or 'not run')}</li>"
                 f"<li>upstream: {_link(x.get('upstream'))} ({e(x['upstream_status'])})</li>"
                 f"<li>what happens: {e(x['what_happens'])}</li><li>expected: {e(x['expected'])}</li>"
                 f"<li>why: {e(x['why_expected'])}</li><li>impact: {e(x['impact'])}</li>"
                 f"<li>evidence: {e(', '.join(x['evidence']))}</li></ul>"
                 f"<p>Repro (<code>{e(x['repro_file'])}</code>):</p><pre>{e(x['repro'])}</pre></details>")
    measured = finding_rows(report)
    if measured:
        body += ("<details><summary>measured facts recorded by the fingerprint and coverage tests "
                 f"({len(measured)})</summary>" + _h_table(FINDING_HEADER, measured) + "</details>")
    section("findings", body)
    groups = deviations_by_finding(report)
    body = ""
    for k, title, recs in groups:
        head = f"<a href=\"#f-{e(k)}\">{e(k)}</a>: " if k else ""
        body += (f"<details><summary>{head}{e(title)} "
                 f"&mdash; {len(recs)} case{'s' if len(recs) != 1 else ''}</summary>"
                 + "".join(_record_html(r) for r in recs) + "</details>")
    section("deviations", body or _none("None."))
    n = len(SUMMARY_COLUMNS) + 2
    summary = summary_rows(report)
    section("summary", "<details><summary>per adapter path (" + str(len(summary)) + " rows)</summary>"
            + _h_table(["adapter"] + [COLUMN_TITLES.get(c, c) for c in SUMMARY_COLUMNS] + ["total"], summary,
                       numeric=range(1, n), row_class=lambda r: "bad" if r[2] or r[3] or r[6] else
                       ("xf" if r[5] else "")) + "</details>" if summary else _none("No results."))
    growth = error_growth_rows(report)
    png = growth_plot_png(report)
    body = (f"<img alt=\"error growth plot\" style=\"max-width:100%\" src=\"data:image/png;base64,{png}\">" if png else
            _none("No plot (no measurements, or matplotlib is not installed)."))
    body += (_h_table(["path", "dtype", "T", "worst error / tolerance", "at T"], error_growth_summary(report),
                      numeric=(3, 4))
             + "<details><summary>every point</summary>"
             + _h_table(["path", "dtype", "T", "max |error|", "tolerance"],
                        [[a, d, t, _num(er), _num(tol)] for a, d, t, er, tol in growth], numeric=(2, 3, 4))
             + "</details>" if growth else _none("No error-growth measurements in this report."))
    section("error-growth", body)
    rates = rate_rows(report)
    section("drop-rates", f"<p>{e(_rates_sentence(rates, [r for r in rates if not _in_ci(r)]))}</p>"
            "<details><summary>all of them</summary>"
            + _h_table(["path", "mask", "configured", "observed", "99% CI", "draws"], rates,
                       row_class=lambda r: "" if _in_ci(r) else "bad") + "</details>"
            if rates else _none("No drop-rate measurements in this report."))
    sizes, bench = benchmark_summary(report)
    cols, rows = benchmark_table(report)
    section("benchmarks", _h_table(["path"] + [f"{s} (ms)" for s in sizes], bench, numeric=range(1, len(sizes) + 1))
            + "<p>Median ms of the forward pass, dropout off.</p>"
            + (f"<p>{e(benchmark_bounds(report))}</p>" if benchmark_bounds(report) else "")
            + "<details><summary>every entry</summary>"
            + _h_table(cols, rows) + "</details>" if rows else _none("No benchmarks in this report."))
    claims = claim_rows(report)
    section("claims", _h_table(["document", "verdicts"], claim_summary(report))
            + "<details><summary>each claim</summary>"
            + _h_table(["source", "claim", "verdict", "evidence", "test"], claims) + "</details>"
            if claims else _none("No claims in this report."))
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
