"""The claims ledger (issue 9): the seed documents' claims, checked by `suites/test_claims.py`.

The claims are data (``claims/*.toml``): each has an id, the seed document it comes from, a
short quote, and the *parts* its check measures — sub-statements that are each true or false
on the installed versions. A check measures every part and hands the booleans to `verdict`,
which decides (never a literal attached to a claim):

    every part true             confirmed
    no part true                refuted
    some parts true             partly true
    the API no longer exists    not applicable in current versions (the check measures the
                                successor API; its parts and evidence say what it does)

The check then records an entry of the report's ``claims`` section (`entry`):
``{source, claim, verdict, evidence, test, parts}`` (the record ``id`` is added by the plugin).
`render_markdown` turns a report's ledger into the standalone page ``claims.md``: verdict
counts, then each document's claims (in the table's order) with quote, measured parts,
verdict, evidence, test id and a repro command (`conformance run` writes it beside report.json; ``--claims PATH`` also elsewhere).
"""
from __future__ import annotations

import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from conformance.core import paths

CLAIMS_DIR = paths.CLAIMS
VERDICTS = ("confirmed", "refuted", "partly true", "not applicable in current versions")
FIELDS = ("id", "source", "quote", "parts")


class ClaimError(ValueError):
    pass


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    quote: str
    parts: tuple

    @property
    def test(self) -> str:
        """The check's test function in suites/test_claims.py."""
        return f"test_{self.id}"


def load(directory=CLAIMS_DIR) -> dict:
    """{id: Claim} from every claims/*.toml; ClaimError on a malformed entry or a duplicate id."""
    out = {}
    for path in sorted(Path(directory).glob("*.toml")):
        with open(path, "rb") as f:
            data = tomllib.load(f)
        for i, raw in enumerate(data.get("claim", [])):
            where = f"{path.name}: claim #{i + 1}"
            missing = [k for k in FIELDS if not raw.get(k)]
            extra = sorted(set(raw) - set(FIELDS))
            if missing or extra:
                raise ClaimError(f"{where}: missing {missing}, unknown {extra}")
            if not raw["id"].isidentifier():
                raise ClaimError(f"{where}: id {raw['id']!r} must be a Python identifier (test_<id>)")
            if raw["id"] in out:
                raise ClaimError(f"{where}: duplicate id {raw['id']!r}")
            if len(set(raw["parts"])) != len(raw["parts"]):
                raise ClaimError(f"{where}: duplicate parts")
            out[raw["id"]] = Claim(raw["id"], raw["source"], raw["quote"], tuple(raw["parts"]))
    return out


def verdict(claim: Claim, holds: dict, applicable: bool = True) -> str:
    """The verdict from the measured truth of each of the claim's parts."""
    if set(holds) != set(claim.parts):
        raise ClaimError(f"{claim.id}: measured parts {sorted(holds)} differ from the declared {sorted(claim.parts)}")
    if not all(isinstance(v, (bool, np.bool_)) for v in holds.values()):
        raise ClaimError(f"{claim.id}: every part must be measured as a bool, got {holds}")
    if not applicable:
        return VERDICTS[3]
    n = sum(bool(v) for v in holds.values())
    return VERDICTS[0] if n == len(holds) else VERDICTS[1] if n == 0 else VERDICTS[2]


def entry(claim: Claim, holds: dict, evidence: str, test: str, applicable: bool = True) -> dict:
    """The report's claims entry (without id) for a checked claim."""
    return dict(source=claim.source, claim=claim.quote, verdict=verdict(claim, holds, applicable),
                evidence=evidence, test=test, parts={k: bool(holds[k]) for k in claim.parts})


# ---------------------------------------------------------------- the standalone page

def _repro(report, entry):
    rec = next((r for r in report.get("results", []) if r.get("id") == entry.get("id")), None)
    if rec and rec.get("repro"):
        return rec["repro"]
    test = entry.get("test") or entry.get("id", "")
    return f"python -m pytest '{test}' -p no:cacheprovider" if test else ""


def _outcome(report, entry):
    rec = next((r for r in report.get("results", []) if r.get("id") == entry.get("id")), None)
    return rec.get("outcome") if rec else None


def _table_order():
    """Sort key of claims entries: the order of claims/*.toml (the documents' own order), entries
    of unknown tests last, by id."""
    try:
        order = {c.test: i for i, c in enumerate(load().values())}
    except (OSError, ClaimError, tomllib.TOMLDecodeError):
        order = {}

    def key(e):
        name = str(e.get("test") or e.get("id") or "").split("::")[-1].split("[")[0]
        return order.get(name, len(order)), e.get("id", "")
    return key


def render_markdown(report) -> str:
    """claims.md: the ledger of `report` (its ``claims`` section) on its own, by document."""
    entries = report.get("claims", [])
    lines = ["# Claims ledger: the seed documents, checked", "",
             f"Generated from the report of {report.get('created', '?')} by `python -m conformance run`: every verdict "
             "below is computed by a check in `suites/test_claims.py` from its measurements on the installed "
             "versions (claims and their measured parts: `claims/*.toml`). Regenerate with `make report`, or the ledger "
             "alone with `python -m conformance run --out DIR -k claims --claims reports/claims.md`.", ""]
    versions = (report.get("environment") or {}).get("packages") or {}
    if versions:
        lines += ["Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()) if v) + ".", ""]
    if not entries:
        return "\n".join(lines + ["No claims in this report (run `suites/test_claims.py`).", ""])
    counts = Counter(e.get("verdict") for e in entries)
    n, docs = len(entries), len({e.get("source") for e in entries})
    lines += [f"**{n} claim{'s' * (n != 1)}** from {docs} document{'s' * (docs != 1)}: "
              + ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v])
              + "".join(f", {n} {v}" for v, n in counts.items() if v not in VERDICTS) + ".", ""]
    by_doc = {}
    for e in entries:
        by_doc.setdefault(e.get("source", "?"), []).append(e)
    lines += ["| document | " + " | ".join(VERDICTS) + " |", "|---|" + "---|" * len(VERDICTS)]
    for doc in sorted(by_doc):
        c = Counter(e.get("verdict") for e in by_doc[doc])
        lines.append(f"| {doc} | " + " | ".join(str(c[v]) for v in VERDICTS) + " |")
    lines.append("")
    for doc in sorted(by_doc):
        lines += [f"## {doc}", ""]
        for e in sorted(by_doc[doc], key=_table_order()):
            outcome = _outcome(report, e)
            lines += [f"### {e.get('verdict', '?').upper()}: {e.get('claim', '')}", ""]
            parts = e.get("parts") or {}
            if parts:
                lines += [f"- {'true ' if v else 'false'} — {k}" for k, v in parts.items()]
                lines.append("")
            lines += [f"Evidence: {e.get('evidence', '')}", "",
                      f"Test: `{e.get('test', e.get('id', ''))}`"
                      + (f" ({outcome})" if outcome and outcome != "passed" else ""), "",
                      "```sh", _repro(report, e), "```", ""]
    return "\n".join(lines)
