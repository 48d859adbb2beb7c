"""The dropout-semantics check of one adapter path, in the order that names the cause.

`check(adapter, declared, seed=)` is what suites/test_fingerprints.py runs for every path, and
what its repro runs in a fresh interpreter:

1. padded steps: the reference policies the path matches at padded steps (a path with
   "lengths" must match the ``padding`` it declares);
2. diagnosis first: every knob at 0 must compute the reference under the probe layouts and on
   random weights (`fingerprint.dropout_off`); if not, the check stops with "forward/weights
   differ from the reference with dropout off ..." and reports no dropout property (a layout bug
   would read as strange dropout);
3. each knob alone, then all together ("a+b"): the fingerprint at p = 0.5 and the rates at 0.1 and
   0.9 (`fingerprint.measure`);
4. the universal invariants (`fingerprint.INVARIANTS`), each violation named ("kept value 1/p
   instead of 1/(1-p)", "one mask shared by all batch rows", "evaluation mode drops", "mask on c
   ...");
5. the declared semantics (``{knob: declaration}``, a declaration having ``properties``,
   ``source`` and optionally ``link`` and ``reason``): every declared property must equal the
   measured one, differences named part by part ("input: per step instead of per sequence"); an
   undeclared knob is a finding "semantics undeclared: measured ...", a problem when `strict`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from conformance.core import semantics as S
from conformance.oracles import fingerprint as F

__all__ = ["Outcome", "check", "knobs_of", "RATE", "RATE_CHECKS"]

RATE = 0.5
RATE_CHECKS = (0.1, 0.9)


@dataclass
class Outcome:
    adapter: str
    padded: str
    diagnosis: F.DropoutOff | None = None
    entries: list = field(default_factory=list)  # the report's fingerprints entries, one per knob
    findings: list = field(default_factory=list)  # the report's findings entries
    problems: list = field(default_factory=list)  # each a line naming its cause; empty: the check passes
    violations: list = field(default_factory=list)  # (knob, fingerprint.Violation)
    deviation: float = 0.0  # worst distance of a recovered multiplier from a kept value or 0

    @property
    def ok(self):
        return not self.problems

    def problem(self, knob, line, *, link=None, evidence="", first=False):
        """A problem: a line of the failure ("knob: line") and a findings entry of the report."""
        text = f"{knob}: {line}" if knob else line
        entry = dict(adapter=self.adapter, knob=knob, expected=False, summary=line, evidence=evidence or line)
        if link:
            entry["link"] = link
        if first:
            self.problems.insert(0, text)
            self.findings.insert(0, entry)
        else:
            self.problems.append(text)
            self.findings.append(entry)

    def headline(self):
        """One line: the first problem, and how many more."""
        more = len(self.problems) - 1
        rest = f" [and {more} more problem(s): in the failure message and the report's findings]"
        return self.problems[0] + (rest if more > 0 else "")

    def text(self):
        """What a person reads: the problems (or "conforms"), then each knob's fingerprint."""
        lines = [f"{self.adapter}: " + ("the dropout semantics conform" if self.ok else
                                        f"{len(self.problems)} problem(s)")]
        lines += [f"  - {p}" for p in self.problems]
        for e in self.entries:
            lines.append(f"  {e['knob']} at p = {e['rate']}:")
            lines += [f"      {k} = {v}" for k, v in e["properties"].items()]
        if not self.entries:
            lines.append(f"  padded steps = {self.padded}")
        return "\n".join(lines)


def knobs_of(info):
    """Each knob alone, then all together (they may interact)."""
    return list(info.dropout) + (["+".join(info.dropout)] if len(info.dropout) > 1 else [])


def _props(declaration):
    return dict(declaration.properties)


def _named(declaration):
    return S.masked_tensors(declaration.properties)


def check(adapter, declared=None, *, seed=20261123, strict=False, rate=RATE, rate_checks=RATE_CHECKS,
          dropout=True):
    """The `Outcome` of the dropout-semantics check of `adapter` (see the module docstring);
    `declared`: {knob or "*": declaration} (None: nothing declared); ``dropout=False``: the
    padded steps only (an option variant, whose dropout is its plain path's)."""
    info = adapter.info
    declared = declared or {}
    out = Outcome(adapter=info.name, padded=F.padded_steps(adapter, seed=seed))
    if "lengths" in info.features and info.padding not in out.padded.split(" / "):
        # right padding cannot tell repeat_output from carry_h: the declared policy must be among those that match
        out.problem(None, f"padded steps: follow {out.padded!r}, the path declares padding={info.padding!r}")
    star = declared.get("*")
    if star is not None:
        want = _props(star).get(S.PADDED)
        if want is not None and want != out.padded:
            out.problem(None, f"{S.difference(S.PADDED, out.padded, want)} ({star.source})")
    if not info.dropout or not dropout:
        return out
    off = F.dropout_off(adapter, seed=seed)
    out.diagnosis = off
    if not off.ok:
        out.problem(None, off.message(), first=True)
        return out
    alone = {}
    for knob in knobs_of(info):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch: "dropout expects num_layers > 1"
            m = F.measure(adapter, knob, rate, seed=seed)
            kinds = F.masked_probe_kinds(m)  # the other rates: only the probes that show masks
            extra = [F.measure(adapter, knob, p, seed=seed, kinds=kinds, modes=False) for p in rate_checks] \
                if kinds else []
        out.deviation = max([out.deviation, m.deviation] + [e.deviation for e in extra])
        entry = m.entry()
        entry["properties"][S.PADDED] = out.padded
        entry["rates"] = m.rates + [r for mm in extra for r in mm.rates]
        entry["checks"] += [c for mm in extra for c in mm.entry()["checks"]]
        out.entries.append(entry)
        decl = declared.get(knob)
        if "+" not in knob:
            alone[knob] = S.masked_tensors(m.properties)
        named = None if decl is None else _named(decl)
        if named is None and "+" in knob and all(k in declared for k in knob.split("+")):
            named = set().union(*(_named(declared[k]) for k in knob.split("+")))
        together = {k: alone[k] for k in knob.split("+")} if "+" in knob else None
        for v in F.invariants([m] + extra, named=named, alone=together):
            out.violations.append((knob, v))
            out.problem(knob, v.message, evidence=f"universal invariant '{v.invariant}'; rates {m.rates}")
        measured = entry["properties"]
        if decl is None:
            out.findings.append(dict(adapter=info.name, knob=knob, expected=None,
                                     summary=f"semantics undeclared: measured {_compact(measured)}",
                                     evidence="declare it in AdapterInfo.semantics, a --semantics file or "
                                              "expectations/fingerprints/*.toml"))
            if strict:
                out.problems.append(f"{knob}: semantics undeclared (--strict-semantics): measured {_compact(measured)}")
            continue
        for prop, want in sorted(_props(decl).items()):
            got = measured.get(prop)
            if got != want:
                line = S.difference(prop, got if got is not None else "not measured", want)
                out.problem(knob, f"{line} (declared in {decl.source})", link=getattr(decl, "link", None),
                            evidence=f"rates {m.rates}; declared in {decl.source}: {getattr(decl, 'reason', '')}")
    return out


def _compact(props):
    return "; ".join(f"{k} = {v}" for k, v in props.items() if v != "none")
