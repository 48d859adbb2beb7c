"""What a run, merge or render writes into its output folder (`write_outputs`).

Kept apart from conformance.entry.runner, which decides what runs and how: the version matrix
(conformance.entry.matrix) hashes that code as an input of its runs, not this one, which only
presents their results.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


def _matrix_beside(out):
    """(the version matrix of ``<out>/../versions/matrix.json``, the relative link to its
    matrix.md), or (None, None): make report's reports/latest sits beside reports/versions."""
    path = Path(out).resolve().parent / "versions" / "matrix.json"
    if not path.is_file():
        return None, None
    try:
        return json.loads(path.read_text()), os.path.relpath(path.with_suffix(".md"), Path(out).resolve())
    except (OSError, ValueError):
        return None, None


def write_outputs(report, out, claims=None):
    """report.json, report.md (the front page), details.md, findings.md, report.html, junit.xml,
    claims.md and drafts/<finding>.md (one upstream issue draft per registry entry) in `out`, each
    atomically; claims.md also to the path `claims` if given. Drafts of findings no longer in the
    report are removed."""
    from conformance.core.files import write_text_atomic
    from conformance.results import claims as ledger
    from conformance.results.findings import draft_markdown
    from conformance.results.render import (render_details_markdown, render_findings_markdown, render_html,
                                            render_junit, render_markdown)
    from conformance.results.report import write_report_atomic

    matrix, link = _matrix_beside(out)
    write_report_atomic(report, out / "report.json")
    write_text_atomic(out / "report.md", render_markdown(report, matrix, link))
    write_text_atomic(out / "details.md", render_details_markdown(report))
    write_text_atomic(out / "findings.md", render_findings_markdown(report))
    write_text_atomic(out / "report.html", render_html(report, matrix, link))
    write_text_atomic(out / "junit.xml", render_junit(report))
    drafts = out / "drafts"
    entries = report.get("registry", [])
    if entries or drafts.is_dir():
        drafts.mkdir(exist_ok=True)
        keep = set()
        for entry in entries:
            keep.add(f"{entry['id']}.md")
            write_text_atomic(drafts / f"{entry['id']}.md", draft_markdown(entry, report.get("environment")))
        for old in drafts.glob("*.md"):
            if old.name not in keep:
                old.unlink()
    page = ledger.render_markdown(report)
    write_text_atomic(out / "claims.md", page)
    if claims:
        write_text_atomic(claims, page)
