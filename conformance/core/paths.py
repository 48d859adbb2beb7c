"""Where the tool's data lives: a checkout, or an installed package.

In a checkout the suites, expectations, claims and findings are top-level folders beside the
``conformance`` package (the layout DESIGN.md asks for). An installed wheel carries the same
folders inside the package (``conformance/suites``, ``conformance/expectations``,
``conformance/claims``, ``conformance/findings``; pyproject.toml maps them), so ``ROOT`` is the folder holding them
either way, and record ids read ``suites/test_x.py::...`` in both.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # the conformance package
INSTALLED = (PACKAGE / "suites").is_dir()  # a wheel (or non-editable install) carries the data inside
ROOT = PACKAGE if INSTALLED else PACKAGE.parent
SUITES = ROOT / "suites"
EXPECTATIONS = ROOT / "expectations"
CLAIMS = ROOT / "claims"
FINDINGS = ROOT / "findings"
