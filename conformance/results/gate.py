"""The upgrade gate: compare a candidate report with a baseline, fail on regressions.

    python -m conformance gate BASELINE CANDIDATE [--expectations DIR] [--strict] [--out FILE]

Exit 0: nothing regressed; 1: a regression; 2: either report is missing, truncated,
unparseable, invalid or of another schema version, or the two share no case (GateError:
nothing to compare). The expectation files are applied to both reports first, exactly as in a
pytest run (`expectations.apply_to_records`, each report with its own package versions).

Like is compared with like, from each report's `run` (how it was made; a schema-2 report has
none: everything counts as run). A baseline case the candidate lacks is *not run in the
candidate* (a note) when the candidate's run deselected it (`run.deselected`: -k, -m,
--frameworks, --deselect), left its part out (`run.parts` with ran=false; the part is the id's
variant suffix, ``main`` without one), or named --frameworks without the record's framework
(``flax.linen`` counts as ``flax``); otherwise it *vanished* (a regression). The same rules,
read against the baseline's run, tell a new case from one the baseline did not run.
Fingerprints are compared per (adapter, backend, knob): one measured in one report only is
*not measured* on the other side (a note), and so is a property that one side lacks.

A regression is:

- a case that passed (or xpassed) and now fails or errors;
- a fingerprint property of an adapter that changed value (measured on both sides);
- an expected deviation that disappeared (xfailed -> passed / xpassed) or appeared
  (passed -> xfailed);
- a recorded error that grew past its tolerance (within it before, beyond it now);
- a case that vanished (in the baseline, not in the candidate, and not left out by the
  candidate's selection);
- with --strict: any xpassed case in the candidate (an expectation that no longer holds).

Also listed, not regressions (changes, each with its evidence): a different kernel in a shared
case's record ("kernel changed", e.g. a fused path that now falls back), a benchmark ratio that
moved ("benchmark ratio changed": by more than RATIO_CHANGE and beyond both sides' interquartile
ranges; speed is a measurement on a shared machine, not a verdict), a finding whose repro (suites/test_findings.py) no longer
reproduces ("finding no longer reproduces (fixed?)": the framework changed; update the
registry), a finding whose repro did not reproduce in the baseline and does now ("finding now
reproduces": the deviation appeared; its tests' expectations say whether that is a regression),
new cases, fixed cases, cases that became skipped or unskipped,
cases not run and fingerprints not measured on one side. The summary starts with what was
compared and shows both reports' selections.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from conformance.results import expectations as expect
from conformance.results.report import compared, part_name, run_of

PASSING = ("passed", "xpassed")
RATIO_CHANGE = 0.25  # a benchmark ratio that moves by more than this fraction (and beyond the IQRs) is listed
FINDING_FIXED = "finding no longer reproduces (fixed?)"
FINDING_APPEARED = "finding now reproduces (it did not in the baseline)"
FAILING = ("failed", "error")


@dataclass
class Verdict:
    regressions: list = field(default_factory=list)  # (kind, id, detail)
    notes: list = field(default_factory=list)  # (kind, id, detail)
    shared: int = 0  # case ids present in both reports
    fingerprints_compared: int = 0  # fingerprints (adapter, backend, knob) measured in both
    kernels_compared: int = 0  # shared cases whose record names the kernel that ran, on both sides
    benchmarks_compared: int = 0  # benchmark ratios (adapter, size, mode, comparison) measured in both

    @property
    def ok(self):
        return not self.regressions


def _grew_past_tolerance(b, c):
    tol = c["tolerance"] if c["tolerance"] is not None else b["tolerance"]
    if c["max_abs_err"] is None or tol is None or c["max_abs_err"] <= tol:
        return False
    return b["max_abs_err"] is None or b["tolerance"] is None or b["max_abs_err"] <= b["tolerance"]


def _case_changes(b, c):
    """(regression kind or None, note kind or None, detail) for one id present in both."""
    bo, co = b["outcome"], c["outcome"]
    detail = f"{bo} -> {co}" + (f": {c['reason']}" if c["reason"] and co != "passed" else "")
    if (c.get("finding") and c.get("suite") == "test_findings" and bo in PASSING and co in FAILING
            and "no longer reproduces" in (c["reason"] or "")):
        # a finding's repro stopped reproducing: the framework changed (fixed?), not a regression
        return None, FINDING_FIXED, f"{c['finding']}: {c['reason']}"
    if (c.get("suite") == "test_findings" and b.get("finding") and bo in FAILING and co in PASSING
            and "no longer reproduces" in (b["reason"] or "")):
        # a finding's repro that did not reproduce in the baseline does now: the deviation appeared
        return None, FINDING_APPEARED, f"{c['finding'] or b['finding']}: {c['reason'] or 'reproduced'}"
    if bo in PASSING and co in FAILING:
        return "now failing", None, detail
    if bo == "xfailed" and co in PASSING:
        return "expected deviation disappeared", None, detail
    if bo in PASSING and co == "xfailed":
        return "expected deviation appeared", None, detail
    if _grew_past_tolerance(b, c):
        return "error grew past its tolerance", None, (
            f"max |error| {b['max_abs_err']} -> {c['max_abs_err']} (tolerance {c['tolerance']})")
    if bo in FAILING and co in PASSING:
        return None, "fixed", detail
    if bo != co and "skipped" in (bo, co):
        return None, "skip changed", detail
    return None, None, detail


class GateError(ValueError):
    """The two reports cannot be compared (they share no case)."""


def _top(framework: str) -> str:
    return framework.split(".")[0]  # flax.linen -> flax


class Selection:
    """What one report's run left out (its `run`; a schema-2 report: nothing, everything ran)."""

    def __init__(self, report):
        self.run = run_of(report)
        self.deselected = set(self.run["deselected"] or ())
        self.parts_out = {p["name"]: p["why"] for p in self.run["parts"] or () if not p["ran"]}
        fws = self.run["frameworks"]
        self.frameworks = {_top(f) for f in fws} if fws else None
        self.known = any(v is not None for v in self.run.values())  # False: no `run` (schema 2) or all null

    def why_not_run(self, rec) -> str | None:
        """Why this run did not run the case of record `rec` (from the other report); None when
        it should have (its absence is then a vanished or a new case)."""
        if rec["id"] in self.deselected:
            return "deselected"
        part = part_name(rec["id"])
        if part in self.parts_out:
            why = self.parts_out[part]
            return f"part {part} not run" + (f" ({why})" if why else "")
        if self.frameworks is not None and rec.get("framework") and _top(rec["framework"]) not in self.frameworks:
            return f"framework {rec['framework']} not in --frameworks {','.join(self.run['frameworks'])}"
        return None

    def summary(self) -> str:
        """The selection in a few words: what it narrowed ("--frameworks torch", "-k 'x'", ...)."""
        run = self.run
        if not self.known:
            return "selection unknown, read as everything"
        bits = []
        if run["frameworks"]:
            bits.append(f"--frameworks {','.join(run['frameworks'])}")
        if run["k"]:
            bits.append(f"-k {run['k']!r}")
        if run["markers"]:
            bits.append(f"-m {run['markers']!r}")
        if self.parts_out:
            bits.append(f"parts left out: {', '.join(self.parts_out)}")
        if not bits and self.deselected:
            bits.append(f"{len(self.deselected)} deselected")
        return "; ".join(bits) or "everything"

    def describe(self) -> str:
        """The whole selection: command, profile, seed, frameworks, -k, -m, adapters, parts."""
        run = self.run
        if not self.known:
            return "unknown (a report without `run` metadata: every case counts as run)"

        def show(v):
            return "–" if v is None else f"`{v}`"

        cmd = " ".join(run["command"]) if run["command"] else None
        bits = [f"command {show(cmd)}" if "merged" not in run else f"merged from {len(run['merged'])} reports",
                f"profile {show(run['profile'])}", f"seed {show(run['seed'])}",
                f"frameworks {', '.join(run['frameworks']) if run['frameworks'] else 'all'}",
                f"-k {show(run['k'])}", f"-m {show(run['markers'])}"]
        if run["variant"]:
            bits.append(f"variant `{run['variant']}`")
        if run["adapters"]:
            bits.append(f"adapters {', '.join(f'`{a}`' for a in run['adapters'])}")
        if run["parts"] is not None:
            bits.append("parts " + ", ".join(p["name"] + ("" if p["ran"] else f" (left out: {p['why'] or '?'})")
                                             for p in run["parts"]))
        bits.append(f"{len(self.deselected)} deselected" if run["deselected"] is not None else "deselected unknown")
        return "; ".join(bits)


def _fingerprints(report):
    """{(adapter, backend, knob): {property: value}} of a report's fingerprints section (an entry
    whose test the report records as not run is left out: nothing was measured)."""
    ran = {r["id"] for r in report["results"]}
    out = {}
    for fp in report.get("fingerprints", []):
        if fp.get("id") is not None and fp["id"] not in ran:
            continue
        out.setdefault((fp.get("adapter"), fp.get("backend"), fp.get("knob")), {}).update(fp.get("properties", {}))
    return out


def _who(key):
    adapter, backend, knob = key
    return f"{adapter}" + (f" ({backend})" if backend else "") + (f" [{knob}]" if knob else "")


def compare(baseline, candidate, entries=(), strict=False):
    """The Verdict for two report dicts (already loaded and validated); GateError when they share
    no case id (nothing to compare)."""
    v = Verdict()
    apply = lambda rep: {r["id"]: r for r in expect.apply_to_records(  # noqa: E731
        rep["results"], list(entries), rep["environment"].get("packages", {}))}
    base, cand = apply(baseline), apply(candidate)
    bsel, csel = Selection(baseline), Selection(candidate)
    shared = sorted(set(base) & set(cand))
    if not shared:
        raise GateError(f"the reports share no case: baseline ran {len(base)} case(s) ({bsel.summary()}), "
                        f"candidate ran {len(cand)} case(s) ({csel.summary()})")
    v.shared = len(shared)
    for rid in sorted(base):
        if rid not in cand:
            why = csel.why_not_run(base[rid])
            if why:
                v.notes.append(("not run in the candidate", rid, f"{why}; was {base[rid]['outcome']}"))
            else:
                v.regressions.append(("vanished", rid, f"was {base[rid]['outcome']}"))
            continue
        reg, note, detail = _case_changes(base[rid], cand[rid])
        if reg:
            v.regressions.append((reg, rid, detail))
        elif note:
            v.notes.append((note, rid, detail))
    for rid in sorted(set(cand) - set(base)):
        why = bsel.why_not_run(cand[rid])
        if why:
            v.notes.append(("not run in the baseline", rid, f"{why}; now {cand[rid]['outcome']}"))
        else:
            v.notes.append(("new", rid, cand[rid]["outcome"]))
    if strict:
        v.regressions += [("unexpected pass (strict)", rid, r["reason"] or "")
                          for rid, r in sorted(cand.items()) if r["outcome"] == "xpassed"]
    for rid in shared:
        bk, ck = base[rid].get("kernel"), cand[rid].get("kernel")
        if bk and ck:
            v.kernels_compared += 1
            if bk != ck:
                v.notes.append(("kernel changed", rid, f"{bk} -> {ck}"))
    _compare_benchmarks(v, baseline, candidate)
    bf, cf = _fingerprints(baseline), _fingerprints(candidate)
    for key in sorted(set(bf) | set(cf), key=str):
        if key not in cf:
            v.notes.append(("fingerprint not measured in the candidate", _who(key), "measured in the baseline only"))
            continue
        if key not in bf:
            v.notes.append(("fingerprint not measured in the baseline", _who(key), "measured in the candidate only"))
            continue
        v.fingerprints_compared += 1
        for prop in sorted(set(bf[key]) | set(cf[key])):
            b, c = bf[key].get(prop), cf[key].get(prop)
            if b == c:
                continue
            if b is None or c is None:  # measured on one side only: not a change
                side = "baseline" if c is None else "candidate"
                v.notes.append(("property not measured", _who(key), f"{prop}: measured in the {side} only"))
            else:
                v.regressions.append(("fingerprint changed", _who(key), f"{prop}: {b!r} -> {c!r}"))
    return v


def _ratios(report):
    """{(adapter, size, mode, comparison): entry} of a report's benchmark ratio entries."""
    return {(b.get("adapter"), b.get("size"), b.get("mode"), b["comparison"]): b
            for b in report.get("benchmarks", []) if b.get("comparison") and b.get("ratio") is not None}


def _compare_benchmarks(v, baseline, candidate):
    br, cr = _ratios(baseline), _ratios(candidate)
    for key in sorted(set(br) & set(cr), key=str):
        b, c = br[key], cr[key]
        v.benchmarks_compared += 1
        lo_b, hi_b = b["ratio"] - (b.get("ratio_iqr") or 0), b["ratio"] + (b.get("ratio_iqr") or 0)
        lo_c, hi_c = c["ratio"] - (c.get("ratio_iqr") or 0), c["ratio"] + (c.get("ratio_iqr") or 0)
        moved = abs(c["ratio"] / b["ratio"] - 1) > RATIO_CHANGE if b["ratio"] > 0 else False
        if moved and (hi_c < lo_b or hi_b < lo_c):
            adapter, size, mode, comparison = key
            v.notes.append(("benchmark ratio changed", f"{adapter} {size} {mode}: {comparison}",
                            f"{b['ratio']:.2f}x (IQR {b.get('ratio_iqr') or 0:.2f}, {b.get('rounds')} rounds) -> "
                            f"{c['ratio']:.2f}x (IQR {c.get('ratio_iqr') or 0:.2f}, {c.get('rounds')} rounds)"))


def _versions(report):
    pk = report["environment"].get("packages", {})
    return ", ".join(f"{k} {v}" for k, v in sorted(pk.items()) if v and k in (
        "torch", "tensorflow-cpu", "keras", "tf-keras", "jax", "flax", "onnxruntime"))


NOT_COMPARED = ("not run in the candidate", "not run in the baseline", "fingerprint not measured in the candidate",
                "fingerprint not measured in the baseline", "property not measured")


def compared_line(verdict, baseline, candidate) -> str:
    """What was compared, in one line: "compared 263 cases present in both; 488 not run in the
    candidate (--frameworks torch); 0 vanished; ..."."""
    from collections import Counter

    n = Counter(k for k, _, _ in verdict.notes + verdict.regressions)
    bsel, csel = Selection(baseline), Selection(candidate)
    bits = [f"compared {verdict.shared} case(s) present in both",
            f"{n['not run in the candidate']} not run in the candidate"
            + (f" ({csel.summary()})" if n["not run in the candidate"] else ""),
            f"{n['vanished']} vanished"]
    if n["not run in the baseline"]:
        bits.append(f"{n['not run in the baseline']} not run in the baseline ({bsel.summary()})")
    bits.append(f"{n['new']} new")
    fp_out = n["fingerprint not measured in the candidate"] + n["fingerprint not measured in the baseline"]
    if verdict.fingerprints_compared or fp_out:
        bits.append(f"fingerprints: {verdict.fingerprints_compared} compared, {fp_out} measured on one side only")
    if verdict.kernels_compared:
        bits.append(f"kernels: {verdict.kernels_compared} compared, {n['kernel changed']} changed")
    if verdict.benchmarks_compared:
        bits.append(f"benchmark ratios: {verdict.benchmarks_compared} compared, {n['benchmark ratio changed']} moved "
                    f"by more than {RATIO_CHANGE:.0%}")
    return "; ".join(bits)


def markdown(verdict, baseline, candidate, names):
    from collections import Counter

    def side(label, name, report):
        return [f"- {label}: `{name}` ({report['created']}; {_versions(report)}); {len(report['results'])} "
                f"records, {compared(report)} compared (not skipped)",
                f"  - selection: {Selection(report).describe()}"]

    out = ["# Conformance gate", "", compared_line(verdict, baseline, candidate) + ".", "",
           *side("baseline", names[0], baseline), *side("candidate", names[1], candidate),
           f"- cases: {len(baseline['results'])} -> {len(candidate['results'])}", "",
           ("**PASS**: nothing regressed." if verdict.ok else f"**FAIL**: {len(verdict.regressions)} regression(s).")]
    fixed = [row for row in verdict.notes if row[0] == FINDING_FIXED]
    notes = [row for row in verdict.notes if row[0] not in NOT_COMPARED and row[0] != FINDING_FIXED]
    skipped = [row for row in verdict.notes if row[0] in NOT_COMPARED]
    for title, rows in (("Regressions", verdict.regressions),
                        ("Findings that no longer reproduce (the framework changed: fixed? update findings/)", fixed),
                        ("Other changes", notes),
                        ("Not compared (not run or not measured on one side)", skipped)):
        if not rows:
            continue
        counts = Counter(k for k, _, _ in rows)
        out += ["", f"## {title} ({', '.join(f'{n} {k}' for k, n in sorted(counts.items()))})", "",
                "| kind | case | detail |", "|---|---|---|"]
        out += [f"| {k} | `{rid}` | {str(d).replace('|', '/')[:300]} |" for k, rid, d in rows]
    return "\n".join(out) + "\n"
