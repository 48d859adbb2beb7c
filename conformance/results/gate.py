"""The upgrade gate: compare a candidate report with a baseline, fail on regressions.

    python -m conformance gate BASELINE CANDIDATE [--expectations DIR] [--strict] [--out FILE]

Exit 0: nothing regressed; 1: a regression; 2: either report is missing, truncated,
unparseable, invalid or of another schema version. The expectation files are applied to both
reports first, exactly as in a pytest run (`expectations.apply_to_records`, each report with
its own package versions). A regression is:

- a case that passed (or xpassed) and now fails or errors;
- a fingerprint property of an adapter that changed value;
- an expected deviation that disappeared (xfailed -> passed / xpassed) or appeared
  (passed -> xfailed);
- a recorded error that grew past its tolerance (within it before, beyond it now);
- a case that vanished (in the baseline, not in the candidate);
- with --strict: any xpassed case in the candidate (an expectation that no longer holds).

Also listed, not regressions: new cases, fixed cases, cases that became skipped or unskipped.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from conformance.results import expectations as expect

PASSING = ("passed", "xpassed")
FAILING = ("failed", "error")


@dataclass
class Verdict:
    regressions: list = field(default_factory=list)  # (kind, id, detail)
    notes: list = field(default_factory=list)  # (kind, id, detail)

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


def _fingerprints(report):
    """{(adapter, backend, property): value} of a report's fingerprints section."""
    out = {}
    for fp in report.get("fingerprints", []):
        for prop, value in fp.get("properties", {}).items():
            out[(fp.get("adapter"), fp.get("backend"), prop)] = value
    return out


def compare(baseline, candidate, entries=(), strict=False):
    """The Verdict for two report dicts (already loaded and validated)."""
    v = Verdict()
    apply = lambda rep: {r["id"]: r for r in expect.apply_to_records(  # noqa: E731
        rep["results"], list(entries), rep["environment"].get("packages", {}))}
    base, cand = apply(baseline), apply(candidate)
    for rid in sorted(base):
        if rid not in cand:
            v.regressions.append(("vanished", rid, f"was {base[rid]['outcome']}"))
            continue
        reg, note, detail = _case_changes(base[rid], cand[rid])
        if reg:
            v.regressions.append((reg, rid, detail))
        elif note:
            v.notes.append((note, rid, detail))
    for rid in sorted(set(cand) - set(base)):
        v.notes.append(("new", rid, cand[rid]["outcome"]))
    if strict:
        v.regressions += [("unexpected pass (strict)", rid, r["reason"] or "")
                          for rid, r in sorted(cand.items()) if r["outcome"] == "xpassed"]
    bf, cf = _fingerprints(baseline), _fingerprints(candidate)
    for key in sorted(set(bf) | set(cf), key=str):
        if bf.get(key) != cf.get(key):
            adapter, backend, prop = key
            who = adapter + (f" ({backend})" if backend else "")
            v.regressions.append(("fingerprint changed", who, f"{prop}: {bf.get(key)!r} -> {cf.get(key)!r}"))
    return v


def _versions(report):
    pk = report["environment"].get("packages", {})
    return ", ".join(f"{k} {v}" for k, v in sorted(pk.items()) if v and k in (
        "torch", "tensorflow-cpu", "keras", "tf-keras", "jax", "flax", "onnxruntime"))


def markdown(verdict, baseline, candidate, names):
    from collections import Counter

    out = ["# Conformance gate", "",
           f"- baseline: `{names[0]}` ({baseline['created']}; {_versions(baseline)})",
           f"- candidate: `{names[1]}` ({candidate['created']}; {_versions(candidate)})",
           f"- cases: {len(baseline['results'])} -> {len(candidate['results'])}", "",
           ("**PASS**: nothing regressed." if verdict.ok else f"**FAIL**: {len(verdict.regressions)} regression(s).")]
    for title, rows in (("Regressions", verdict.regressions), ("Other changes", verdict.notes)):
        if not rows:
            continue
        counts = Counter(k for k, _, _ in rows)
        out += ["", f"## {title} ({', '.join(f'{n} {k}' for k, n in sorted(counts.items()))})", "",
                "| kind | case | detail |", "|---|---|---|"]
        out += [f"| {k} | `{rid}` | {str(d).replace('|', '/')[:300]} |" for k, rid, d in rows]
    return "\n".join(out) + "\n"
