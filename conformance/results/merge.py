"""Merging reports: the processes of one run, or the jobs of a CI matrix, into one report.

Records are concatenated (sorted by id); an id present in two inputs is refused (two jobs
ran the same case: the matrix is mis-split); every input must be a valid report of this
schema version (`load_report`). The merged report's environment is the first input's; the
``parts`` section lists every input's name, creation time and environment, and the other
sections are concatenated.
"""
from __future__ import annotations

from conformance.results.report import SECTIONS, build_report, validate_report

__all__ = ["MergeError", "merge_reports"]


class MergeError(ValueError):
    """The reports cannot be merged (duplicate ids, or an input that is not a valid report)."""


def merge_reports(named_reports, run=None):  # TEMP: run ignored until the meta branch lands
    """One report from [(name, report dict), ...]; MergeError on a duplicate id or an invalid input."""
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
    merged = build_report(sorted(results, key=lambda r: r["id"]), sections={**sections, "parts": parts})
    merged["environment"] = named_reports[0][1]["environment"]
    return merged
