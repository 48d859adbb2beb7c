"""Merging reports: the processes of one run, or the jobs of a CI matrix, into one report.

Records are concatenated (sorted by id); an id present in two inputs is refused (two jobs
ran the same case: the matrix is mis-split); every input must be a valid report of a schema
version this tool reads (`load_report`: 3, or 2 without `run`). The merged report's environment
is the first input's; the ``parts`` section lists every input's name, creation time and
environment, and the other sections are concatenated.

The merged report's ``run`` (docs/report-schema.md, "run"):

- ``merge_reports(named, run={...})`` (the runner, `rnn-conformance run`): the given run, every
  field it lacks null, with ``deselected`` = the union of the inputs' ``deselected`` (and of the
  given one), less the ids that some input did run.
- ``merge_reports(named)`` (the ``merge`` subcommand): ``command`` null; ``profile``, ``seed``,
  ``k``, ``markers``, ``variant`` the inputs' common value (null where they differ or one is
  unknown); ``frameworks`` the union when every input names its frameworks (else null: all);
  ``adapters`` the union of the known lists; ``parts`` per part name, ran when any input ran it
  (an input without parts, a plain pytest run, is the part of its variant, ``main`` without one);
  ``deselected`` as above; and ``merged``: every input's run (null for a schema-2 input).
"""
from __future__ import annotations

from conformance.results.report import (
    RUN_KEYS, SECTIONS, build_report, complete_run, run_of, validate_report,
)

__all__ = ["MergeError", "merge_reports", "merged_run"]


class MergeError(ValueError):
    """The reports cannot be merged (duplicate ids, or an input that is not a valid report)."""


def merge_reports(named_reports, run: dict | None = None):
    """One report from [(name, report dict), ...]; MergeError on a duplicate id, an invalid input
    or an unknown field in `run`. `run`: the merged report's run (see the module doc); None: one
    made from the inputs' runs."""
    if not named_reports:
        raise MergeError("nothing to merge")
    owner, results, sections = {}, [], {name: [] for name in SECTIONS if name != "parts"}
    parts = []
    for name, report in named_reports:
        problems = validate_report(report)
        if problems:
            raise MergeError(f"{name}: not a valid report: {problems[0]}" +
                             (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
        for rec in report["results"]:
            if rec["id"] in owner:
                raise MergeError(f"duplicate id {rec['id']!r} in {owner[rec['id']]} and {name}: "
                                 "each case must come from one input")
            owner[rec["id"]] = name
            results.append(rec)
        for section in sections:
            sections[section] += report.get(section, [])
        parts += report.get("parts") or [{"name": name, "created": report["created"],
                                          "environment": report["environment"]}]
    inputs = [report for _, report in named_reports]
    try:
        if run is None:
            run = merged_run(inputs)
        else:
            run = complete_run(run)
    except ValueError as e:
        raise MergeError(f"run: {e}") from None
    run["deselected"] = _deselected(inputs, set(owner), extra=run["deselected"])
    sections["registry"] = _one_per_finding(sections["registry"])
    merged = build_report(sorted(results, key=lambda r: r["id"]), sections={**sections, "parts": parts}, run=run)
    merged["environment"] = named_reports[0][1]["environment"]
    return merged


def _one_per_finding(entries):
    """The `registry` entries of several inputs, one per finding id (every part of a run lists
    the registry; the part that ran the finding's repro has its status): the first with a status,
    else the first."""
    chosen = {}
    for e in entries:
        if e.get("id") not in chosen or (chosen[e["id"]].get("status") is None and e.get("status") is not None):
            chosen[e.get("id")] = e
    return sorted(chosen.values(), key=lambda e: str(e.get("id")))


def _deselected(reports, ran, extra=None):
    """Sorted union of the reports' `run.deselected` (and `extra`), less the ids in `ran`; None
    when no input knows what it deselected."""
    known = [run_of(r)["deselected"] for r in reports] + [extra]
    known = [d for d in known if d is not None]
    if not known:
        return None
    return sorted(set().union(*known) - ran)


def _common(values):
    values = list(values)
    return values[0] if values and all(v == values[0] for v in values) else None


def merged_run(reports) -> dict:
    """The run of a merge of `reports` that was given none (the `merge` subcommand): see the
    module doc. `deselected` is filled by merge_reports (it needs the merged results)."""
    runs = [r.get("run") for r in reports]  # None: a schema-2 input
    known = [complete_run(r) for r in runs if r is not None]
    everyone = [run_of(r) for r in reports]
    out = dict.fromkeys(RUN_KEYS)
    for key in ("profile", "seed", "k", "markers", "variant"):
        out[key] = _common(r[key] for r in everyone)
    if everyone and all(r["frameworks"] is not None for r in everyone):
        out["frameworks"] = sorted(set().union(*(r["frameworks"] for r in everyone)))
    adapters = [r["adapters"] for r in known if r["adapters"] is not None]
    if adapters:
        out["adapters"] = list(dict.fromkeys(spec for specs in adapters for spec in specs))
    out["parts"] = _merged_parts(known)
    out["merged"] = runs
    return out


def _merged_parts(runs):
    """Per part name (first-seen order): ran if any run ran it. A run without parts that knows
    its command (a plain pytest run) is the part of its variant, "main" without one. None when
    no run says anything about parts."""
    if not any(r["parts"] is not None for r in runs):
        return None
    by_name = {}
    for r in runs:
        parts = r["parts"]
        if parts is None:
            if r["command"] is None:
                continue  # unknown: says nothing
            parts = [{"name": r["variant"] or "main", "ran": True, "why": None}]
        for p in parts:
            seen = by_name.setdefault(p["name"], {"name": p["name"], "ran": False, "why": None})
            if p["ran"]:
                seen.update(ran=True, why=None)
            elif not seen["ran"] and p["why"] and p["why"] != seen["why"]:
                seen["why"] = p["why"] if seen["why"] is None else f"{seen['why']}; {p['why']}"
    return list(by_name.values())
