"""Expectations: known framework deviations, as data, applied alike in pytest runs and in the gate.

Each file ``expectations/*.toml`` holds entries::

    [[expect]]
    test = "suites/test_keras_padding.py::test_masked_steps[keras.layers.GRU*]"  # fnmatch on the node id
    framework = "keras"        # the distribution whose version is checked
    versions = "==3.14.1 || ==3.15.1"  # PEP 440 specifier(s), " || " between alternatives; omitted: any
    measured = "3.13.2, 3.14.1, 3.15.1"  # the releases the version matrix ran (reports/versions/)
    backend = "jax"            # optional: only on this Keras backend
    outcome = "failed"         # what the deviation makes the test do: "failed" or "error"
    reason = "what the framework does, and why it differs"
    link = "https://github.com/..."  # optional: the upstream issue
    finding = "keras-jax-unroll-ignores-zero-output"  # the root cause's id in findings/ (findings/<id>.toml)

An entry *applies* where its framework is installed at a matching version (and the backend
matches). In a pytest run an applicable entry marks every test it matches ``xfail`` with
"expected deviation: <reason> [<link>]", the console showing its first sentence
(`Expectation.short_label`; ``--strict-expectations``: a test that then passes
fails, so a fixed deviation cannot go unnoticed); an applicable entry that matches no
collected test of a collected file is warned about (the expectation has gone stale). The gate
applies the same entries to a report's records (`apply_to_records`): a failed/errored record
an entry matches becomes ``xfailed``, a passed one ``xpassed``.

Where the version matrix (``make matrix``, reports/versions/) runs an entry's framework, its
``versions`` is what the matrix measured: the releases in which the deviation showed, each
exactly (``==``), and ``measured`` lists every release the matrix ran the entry's tests in
(tests/test_matrix.py holds the files to reports/versions/matrix.json).
"""
from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from conformance.core import semantics
from conformance.results.report import node_id

__all__ = ["Expectation", "ExpectationError", "load", "load_dir", "applicable", "apply_to_records", "PREFIX",
           "ExpectedFingerprint", "load_fingerprints", "load_semantics", "expected_fingerprint"]

OUTCOMES = ("failed", "error")
PREFIX = "expected deviation: "
SHORT_LIMIT = 120  # characters of the reason in the one-line (console) form
_KEYS = {"test", "framework", "versions", "backend", "outcome", "reason", "link", "finding", "measured"}
ALTERNATIVE = "||"  # between the specifier sets of one `versions`: any of them


def check_versions(text):
    """InvalidSpecifier unless `text` is "" or PEP 440 specifier sets joined by " || "."""
    for alt in text.split(ALTERNATIVE) if text.strip() else ():
        if not alt.strip():
            raise InvalidSpecifier(f"empty alternative in {text!r}")
        SpecifierSet(alt.strip())


def versions_contain(text, version):
    """True when `version` (a string) is in `text` ("" = any; alternatives joined by " || ");
    False for a version PEP 440 cannot read."""
    try:
        v = Version(version)
    except InvalidVersion:
        return False
    return any(SpecifierSet(alt.strip()).contains(v, prereleases=True) for alt in (text or "").split(ALTERNATIVE))
_REQUIRED = ("test", "framework", "outcome", "reason")


class ExpectationError(ValueError):
    """An expectation file that cannot be read or has a malformed entry."""


@dataclass(frozen=True)
class Expectation:
    test: str
    framework: str
    outcome: str
    reason: str
    versions: str = ""
    backend: Optional[str] = None
    link: Optional[str] = None
    finding: Optional[str] = None  # id of the findings/ entry this deviation is evidence of
    measured: str = ""  # the releases the version matrix ran its tests in ("3.13.2, 3.14.1")
    source: str = ""  # "file.toml#N", for messages

    def matches_id(self, nodeid):
        return fnmatch.fnmatchcase(nodeid, self.test)

    def applies(self, version, backend=None):
        """True where the framework is at `version` (None: not installed) and on `backend`."""
        if version is None:
            return False
        if self.backend is not None and backend != self.backend:
            return False
        return versions_contain(self.versions, version)

    def label(self):
        """The full reason a matched test's record carries: "expected deviation: <reason> [<link>]"."""
        return PREFIX + self.reason + (f" [{self.link}]" if self.link else "")

    def short_label(self, limit=SHORT_LIMIT):
        """One console line: the label with the reason cut to its first sentence (at a ". " or
        "; "), at most `limit` characters (cut at a word, "..." added), the link kept."""
        text = " ".join(self.reason.split())
        end = re.search(r"[.;](?=\s)", text)
        first = text[:end.start()] if end else text.rstrip(".;")
        if len(first) > limit:
            first = first[:limit - 3].rsplit(" ", 1)[0]
            open_at = first.rfind("(")
            if open_at > limit // 2 and first.count("(") > first.count(")"):  # no half parenthesis
                first = first[:open_at]
            first = first.rstrip(" ,;:") + "..."
        return PREFIX + first + (f" [{self.link}]" if self.link else "")


def _entry(raw, source):
    if not isinstance(raw, dict):
        raise ExpectationError(f"{source}: expected a table, got {type(raw).__name__}")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ExpectationError(f"{source}: unknown keys {unknown}; allowed: {sorted(_KEYS)}")
    missing = [k for k in _REQUIRED if not raw.get(k)]
    if missing:
        raise ExpectationError(f"{source}: missing {missing}")
    for k, v in raw.items():
        if not isinstance(v, str) or not v.strip():
            raise ExpectationError(f"{source}: {k} must be a non-empty string, got {v!r}")
    if raw["outcome"] not in OUTCOMES:
        raise ExpectationError(f"{source}: outcome must be one of {OUTCOMES}, got {raw['outcome']!r}")
    try:
        check_versions(raw.get("versions", ""))
    except InvalidSpecifier:
        raise ExpectationError(f"{source}: versions {raw['versions']!r} is not a PEP 440 specifier "
                               f"(or several joined by ' || ')") from None
    if "link" in raw and not raw["link"].startswith(("https://", "http://")):
        raise ExpectationError(f"{source}: link must be an http(s) URL, got {raw['link']!r}")
    return Expectation(source=source, **raw)


def load(path):
    """The entries of one TOML file; ExpectationError on anything malformed."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ExpectationError(f"{path}: cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ExpectationError(f"{path}: not valid TOML: {e}") from None
    unknown = sorted(set(data) - {"expect"})
    if unknown:
        raise ExpectationError(f"{path}: unknown top-level keys {unknown}; entries go in [[expect]] tables")
    entries = data.get("expect", [])
    if not isinstance(entries, list):
        raise ExpectationError(f"{path}: 'expect' must be an array of tables ([[expect]])")
    return [_entry(raw, f"{path.name}#{i + 1}") for i, raw in enumerate(entries)]


def load_dir(directory):
    """Every entry of every ``*.toml`` in `directory` (sorted by file name); [] if it does not exist."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return [e for path in sorted(directory.glob("*.toml")) for e in load(path)]


def current_backend():
    """The Keras backend this process would use (KERAS_BACKEND, Keras' default tensorflow)."""
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def applicable(entries, versions, backend):
    """Entries that apply given {distribution: version or None} and the backend."""
    return [e for e in entries if e.applies(versions.get(e.framework), backend)]


def entry_for(entries, nodeid, versions, backend):
    """The first entry that applies (`applicable`) and matches test `nodeid`, or None."""
    return next((e for e in applicable(entries, versions, backend) if e.matches_id(nodeid)), None)


def apply_to_records(records, entries, versions):
    """Records with the applicable entries applied, as in a pytest run: a failed/error record
    an entry matches becomes "xfailed", a passed one "xpassed", with the entry's label as the
    reason. `versions` is the report's environment.packages; the backend is each record's;
    entries match the pytest node id (the record id without its process-variant suffix)."""
    out = []
    for rec in records:
        hit = next((e for e in entries if e.matches_id(node_id(rec["id"]))
                    and e.applies(versions.get(e.framework), rec.get("backend") or "tensorflow")), None)
        if hit is not None and rec["outcome"] in ("failed", "error", "passed"):
            rec = {**rec, "outcome": "xpassed" if rec["outcome"] == "passed" else "xfailed", "reason": hit.label(),
                   "finding": rec.get("finding") or hit.finding}
        out.append(rec)
    return out


# ---------------------------------------------------------------- expected fingerprints
# expectations/fingerprints/*.toml: [[fingerprint]] tables with adapter, knob, framework,
# versions, optional backend, reason, optional link, and a [fingerprint.properties] table of
# the measured property strings (conformance/oracles/fingerprint.py) the path is expected to show.

_FP_KEYS = {"adapter", "knob", "framework", "versions", "backend", "reason", "link", "finding", "properties"}


@dataclass(frozen=True)
class ExpectedFingerprint:
    adapter: str
    knob: str
    framework: str
    reason: str
    properties: tuple  # ((name, value), ...)
    versions: str = ""
    backend: Optional[str] = None
    link: Optional[str] = None
    finding: Optional[str] = None
    source: str = ""

    def applies(self, version, backend=None):
        """Without `versions` it applies to any version, none included (a kernel that is no pip
        distribution); otherwise as an Expectation."""
        if not self.versions:
            return self.backend is None or backend == self.backend
        return Expectation(test="", framework=self.framework, outcome="failed", reason=self.reason,
                           versions=self.versions, backend=self.backend).applies(version, backend)


def _fingerprints(raw, source, required=("adapter", "knob", "framework", "reason", "properties")):
    """The `ExpectedFingerprint` of one [[fingerprint]] table, one per adapter when `adapter` is a
    list of names (paths that share one implementation, e.g. a layer and RNN(its cell))."""
    names = raw.get("adapter") if isinstance(raw, dict) else None
    if isinstance(names, list):
        if not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
            raise ExpectationError(f"{source}: adapter must be a name or a list of distinct names, got {names!r}")
        return [_fingerprint({**raw, "adapter": n}, source, required) for n in names]
    return [_fingerprint(raw, source, required)]


def _fingerprint(raw, source, required=("adapter", "knob", "framework", "reason", "properties")):
    if not isinstance(raw, dict):
        raise ExpectationError(f"{source}: expected a table")
    unknown = sorted(set(raw) - _FP_KEYS)
    missing = [k for k in required if k not in raw]
    if unknown or missing:
        raise ExpectationError(f"{source}: unknown keys {unknown} / missing {missing}")
    props = raw["properties"]
    if not isinstance(props, dict) or not all(isinstance(v, str) for v in props.values()):
        raise ExpectationError(f"{source}: properties must be a table of strings")
    try:
        semantics.check_declaration(props, where=f"{source} ({raw.get('adapter')} {raw.get('knob')})")
    except ValueError as e:
        raise ExpectationError(str(e)) from None
    raw = {"framework": "", "reason": "declared by the adapter's author", **raw}
    try:
        check_versions(raw.get("versions", ""))
    except InvalidSpecifier:
        raise ExpectationError(f"{source}: versions {raw['versions']!r} is not a PEP 440 specifier "
                               f"(or several joined by ' || ')") from None
    return ExpectedFingerprint(source=source, properties=tuple(sorted(props.items())),
                               **{k: v for k, v in raw.items() if k != "properties"})


def load_fingerprints(directory):
    """Every [[fingerprint]] of every *.toml in `directory` ([] if it does not exist)."""
    out = []
    for path in sorted(Path(directory).glob("*.toml")) if Path(directory).is_dir() else []:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ExpectationError(f"{path}: not valid TOML: {e}") from None
        if set(data) - {"fingerprint"}:
            raise ExpectationError(f"{path}: only [[fingerprint]] tables belong here")
        out += [e for i, raw in enumerate(data.get("fingerprint", []))
                for e in _fingerprints(raw, f"{path.name}#{i + 1}")]
    return out


def load_semantics(path):
    """The [[fingerprint]] tables of a semantics file an adapter's author gives (``--semantics``,
    $RNN_CONFORMANCE_SEMANTICS): as in expectations/fingerprints/*.toml, but only adapter, knob and
    properties are required (no `versions`: any version of the path, none included)."""
    path = Path(path)
    if not path.is_file():
        raise ExpectationError(f"semantics file {path}: no such file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ExpectationError(f"semantics file {path}: not valid TOML: {e}") from None
    if set(data) - {"fingerprint"} or not data.get("fingerprint"):
        raise ExpectationError(f"semantics file {path}: expected [[fingerprint]] tables (adapter, knob, "
                               "[fingerprint.properties]) and nothing else")
    return [e for i, raw in enumerate(data["fingerprint"])
            for e in _fingerprints(raw, f"{path.name}#{i + 1}", required=("adapter", "knob", "properties"))]


def expected_fingerprint(entries, adapter, knob, version, backend=None):
    """The first applicable expected fingerprint of (adapter, knob), or None."""
    return next((e for e in entries if e.adapter == adapter and e.knob == knob and e.applies(version, backend)), None)


def declared_semantics(info, version, backend=None, files=(), builtin=()):
    """{knob: declaration} of path `info` (an AdapterInfo): its own ``semantics`` first, then the
    authors' semantics files (`load_semantics`), then the checkout's expected fingerprints; each
    declaration an `ExpectedFingerprint` whose ``source`` says where it was declared."""
    out = {knob: ExpectedFingerprint(adapter=info.name, knob=knob, framework=info.framework,
                                     reason="declared in its AdapterInfo.semantics",
                                     properties=tuple(sorted(props.items())), source=f"{info.name}: AdapterInfo.semantics")
           for knob, props in info.semantics.items()}
    for e in list(files) + list(builtin):
        if e.adapter == info.name and e.knob not in out and e.applies(version, backend):
            out[e.knob] = e
    return out


def semantics_files(env=None):
    """The semantics files named by $RNN_CONFORMANCE_SEMANTICS (os.pathsep-separated; set by
    ``--semantics``), loaded."""
    env = os.environ if env is None else env
    return [e for p in env.get(SEMANTICS_ENV, "").split(os.pathsep) if p.strip() for e in load_semantics(p.strip())]


SEMANTICS_ENV = "RNN_CONFORMANCE_SEMANTICS"
STRICT_SEMANTICS_ENV = "RNN_CONFORMANCE_STRICT_SEMANTICS"
