"""Self-tests of the claims ledger: the table (claims/*.toml), the verdict rule, the checks'
source (no hand-written verdict) and the standalone claims.md page."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conformance.results import claims
from conformance.results.report import build_report

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "suites" / "test_claims.py"
SEEDS = ("000_cb32881e81100456.txt", "001_75efd1d4212c307a.txt", "002_25a58052fb8589f7.txt",
         "003_672e3e9b5e5ca57c.txt", "004_ccdb5fc1987d02da.txt")


def suite_tests():
    tree = ast.parse(SUITE.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def test_table_covers_every_document_with_enough_claims():
    table = claims.load()
    assert len(table) >= 25, f"only {len(table)} claims in claims/*.toml"
    per_doc = {doc: [c for c in table.values() if c.source == doc] for doc in SEEDS}
    assert all(per_doc.values()), f"documents without claims: {[d for d, c in per_doc.items() if not c]}"
    assert {c.source for c in table.values()} <= set(SEEDS), "a claim names an unknown document"


def test_every_claim_has_exactly_one_check_and_back():
    table, tests = claims.load(), suite_tests()
    missing = sorted(c.test for c in table.values() if c.test not in tests)
    orphans = sorted(t for t in tests if t.removeprefix("test_") not in table)
    assert not missing, f"claims without a check in {SUITE.name}: {missing}"
    assert not orphans, f"checks without a claim in claims/*.toml: {orphans}"


def test_no_verdict_is_written_in_the_checks():
    """A verdict string literal in the checks would be a hand-written verdict."""
    tree = ast.parse(SUITE.read_text(encoding="utf-8"))
    literals = [(n.lineno, n.value) for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.strip() in claims.VERDICTS]
    assert not literals, f"verdict literals in {SUITE.name}: {literals}"
    assert "verdict=" not in SUITE.read_text(encoding="utf-8"), "a check passes a verdict itself"


C = claims.Claim("x", "000_cb32881e81100456.txt", "quote", ("a", "b"))


@pytest.mark.parametrize("holds, applicable, want", [
    ({"a": True, "b": True}, True, "confirmed"),
    ({"a": False, "b": False}, True, "refuted"),
    ({"a": True, "b": False}, True, "partly true"),
    ({"a": True, "b": True}, False, "not applicable in current versions"),
])
def test_verdict_rule(holds, applicable, want):
    assert claims.verdict(C, holds, applicable) == want


def test_verdict_refuses_unmeasured_or_non_boolean_parts():
    with pytest.raises(claims.ClaimError, match="differ from the declared"):
        claims.verdict(C, {"a": True})
    with pytest.raises(claims.ClaimError, match="bool"):
        claims.verdict(C, {"a": 1, "b": True})


def test_load_rejects_bad_tables(tmp_path):
    (tmp_path / "a.toml").write_text('[[claim]]\nid = "x"\nsource = "s"\nquote = "q"\nparts = ["p"]\n'
                                     '[[claim]]\nid = "x"\nsource = "s"\nquote = "q"\nparts = ["p"]\n')
    with pytest.raises(claims.ClaimError, match="duplicate id"):
        claims.load(tmp_path)
    (tmp_path / "a.toml").write_text('[[claim]]\nid = "x"\nsource = "s"\nparts = ["p"]\nverdict = "refuted"\n')
    with pytest.raises(claims.ClaimError, match=r"missing \['quote'\], unknown \['verdict'\]"):
        claims.load(tmp_path)


def test_claims_page_groups_counts_and_repro():
    c2 = claims.Claim("y", "004_ccdb5fc1987d02da.txt", "dropout | on inputs", ("p",))
    entries = [{"id": "suites/test_claims.py::test_x", **claims.entry(C, {"a": True, "b": False}, "ev 1", "t::x")},
               {"id": "suites/test_claims.py::test_y", **claims.entry(c2, {"p": True}, "ev 2", "t::y")}]
    results = [{"id": e["id"], "suite": "test_claims", "outcome": "passed", "repro": f"python -m pytest '{e['id']}'"}
               for e in entries]
    page = claims.render_markdown(build_report(results, sections={"claims": entries}))
    assert "**2 claims** from 2 documents: 1 confirmed, 1 partly true." in page
    assert page.index("## 000_cb32881e81100456.txt") < page.index("## 004_ccdb5fc1987d02da.txt")
    assert "### PARTLY TRUE: quote" in page and "### CONFIRMED: dropout | on inputs" in page
    assert "- true  — a" in page and "- false — b" in page and "Evidence: ev 1" in page
    assert "python -m pytest 'suites/test_claims.py::test_y'" in page
    row = re.search(r"^\| 000_cb32881e81100456.txt \| (.*) \|$", page, re.M).group(1)
    assert row.split(" | ") == ["0", "0", "1", "0"]


def test_claims_page_without_claims():
    page = claims.render_markdown(build_report([], sections={}))
    assert "No claims in this report" in page
