"""The findings registry: one entry per root cause of a framework discrepancy (``findings/``).

Each ``findings/<id>.toml`` is one root cause (the schema is in findings/README.md, checked
here key by key) and ``findings/<id>.py`` beside it its standalone repro, which imports only the
framework(s), NumPy and the standard library and ends with ``REPRODUCED: <id>`` (exit 0),
``NOT REPRODUCED: <id>`` (exit 1) or ``SKIPPED: <reason>`` (exit 2). From the registry come the
report's Findings section, the upstream drafts (`draft_markdown`) and the finding lists of the
docs (`docs_list`); expectation entries name their finding (``finding = "<id>"``).
"""
from __future__ import annotations

import ast
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Finding", "FindingError", "load", "load_dir", "repro_problems", "parse_verdict", "draft_markdown",
           "docs_list", "update_docs", "as_section", "KINDS", "FRAMEWORKS", "REPRO_EXIT", "MAX_REPRO_LINES"]

KINDS = ("wrong values", "crash", "refused input", "inconsistent paths", "docs disagree")
# Registry framework names (conformance.adapters.registry.FRAMEWORKS, repeated here: results/
# does not import the adapters layer; tests/test_findings_registry.py checks they agree).
FRAMEWORKS = ("torch", "keras", "tf_keras", "tensorflow", "flax", "jax", "onnxruntime")
BACKENDS = ("tensorflow", "jax", "torch")
STATUS_WORDS = ("open", "closed, not fixed", "fixed in", "documented", "not reported")
REPRO_EXIT = {"REPRODUCED": 0, "NOT REPRODUCED": 1, "SKIPPED": 2}
MAX_REPRO_LINES = 45  # "at most about 40 lines"
ID_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9_]+)+$")
FORBIDDEN_IMPORTS = ("conformance", "reference", "suites")

_REQUIRED_STR = ("id", "title", "kind", "versions", "what_happens", "expected", "why_expected", "impact",
                 "upstream_status")
_OPTIONAL_STR = ("component", "also_seen", "upstream", "searched")
_LISTS = ("frameworks", "backends", "evidence")
_KEYS = set(_REQUIRED_STR) | set(_OPTIONAL_STR) | set(_LISTS)


class FindingError(ValueError):
    """A registry entry that cannot be read, is malformed, or lacks its repro."""


@dataclass(frozen=True)
class Finding:
    id: str
    title: str
    frameworks: tuple
    kind: str
    versions: str
    what_happens: str
    expected: str
    why_expected: str
    impact: str
    evidence: tuple
    upstream_status: str
    backends: tuple = ()
    component: str = ""
    also_seen: str = ""
    upstream: str = ""
    searched: str = ""
    repro_path: Path = field(default=None, compare=False)

    @property
    def repro(self) -> str:
        return self.repro_path.read_text(encoding="utf-8")

    def where(self) -> str:
        """"keras (jax, torch backends)" / "tensorflow, tf_keras"."""
        text = ", ".join(self.frameworks)
        if self.backends:
            text += f" ({', '.join(self.backends)} backend{'s' if len(self.backends) > 1 else ''})"
        return text


def _one_line(text: str) -> str:
    return " ".join(text.split())


def load(path) -> Finding:
    """The entry of one ``<id>.toml`` (with its ``<id>.py``); FindingError on anything malformed."""
    path = Path(path)
    where = path.name
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise FindingError(f"{where}: cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise FindingError(f"{where}: not valid TOML: {e}") from None
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise FindingError(f"{where}: unknown keys {unknown}; allowed: {sorted(_KEYS)}")
    missing = [k for k in _REQUIRED_STR + ("frameworks", "evidence") if not raw.get(k)]
    if missing:
        raise FindingError(f"{where}: missing {missing}")
    for k in _REQUIRED_STR + _OPTIONAL_STR:
        if k in raw and (not isinstance(raw[k], str) or not raw[k].strip()):
            raise FindingError(f"{where}: {k} must be a non-empty string, got {raw[k]!r}")
    for k in _LISTS:
        if k in raw and (not isinstance(raw[k], list) or not all(isinstance(v, str) and v for v in raw[k])):
            raise FindingError(f"{where}: {k} must be a list of non-empty strings, got {raw[k]!r}")
    if raw["id"] != path.stem:
        raise FindingError(f"{where}: id {raw['id']!r} must equal the file name {path.stem!r}")
    if not ID_RE.match(raw["id"]):
        raise FindingError(f"{where}: id {raw['id']!r} must be lower-case words joined by '-'")
    if raw["kind"] not in KINDS:
        raise FindingError(f"{where}: kind must be one of {KINDS}, got {raw['kind']!r}")
    bad = [f for f in raw["frameworks"] if f not in FRAMEWORKS]
    if bad:
        raise FindingError(f"{where}: unknown framework(s) {bad}; known: {FRAMEWORKS}")
    bad = [b for b in raw.get("backends", []) if b not in BACKENDS]
    if bad:
        raise FindingError(f"{where}: unknown backend(s) {bad}; known: {BACKENDS}")
    if not raw["upstream_status"].startswith(STATUS_WORDS):
        raise FindingError(f"{where}: upstream_status must start with one of {STATUS_WORDS}, "
                           f"got {raw['upstream_status']!r}")
    if "upstream" in raw and not raw["upstream"].startswith("https://"):
        raise FindingError(f"{where}: upstream must be an https URL, got {raw['upstream']!r}")
    if "upstream" not in raw and "searched" not in raw:
        raise FindingError(f"{where}: without an upstream link, say what was searched (searched = \"...\")")
    if "upstream" not in raw and raw["upstream_status"] not in ("not reported", "documented"):
        raise FindingError(f"{where}: upstream_status {raw['upstream_status']!r} needs an upstream link")
    repro = path.with_suffix(".py")
    if not repro.is_file():
        raise FindingError(f"{where}: its repro {repro.name} is missing")
    values = {k: (tuple(v) if k in _LISTS else v) for k, v in raw.items()}
    return Finding(repro_path=repro, **values)


def load_dir(directory) -> list[Finding]:
    """Every entry of ``directory`` (sorted by id); [] if it does not exist. Any Python file
    that is not an entry's repro is an error (nothing else in findings/ is Python)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [load(p) for p in sorted(directory.glob("*.toml"))]
    stray = sorted(p.name for p in directory.glob("*.py") if not p.with_suffix(".toml").is_file())
    if stray:
        raise FindingError(f"{directory}: Python files without an entry: {stray}")
    return found


def repro_problems(finding: Finding) -> list[str]:
    """What in the repro's text breaks the contract (findings/README.md): too long, imports this
    project, no verdict line. Running it is suites/test_findings.py's job."""
    text = finding.repro
    problems = []
    lines = text.rstrip("\n").splitlines()
    if len(lines) > MAX_REPRO_LINES:
        problems.append(f"{len(lines)} lines (at most {MAX_REPRO_LINES})")
    try:
        tree = ast.parse(text, filename=finding.repro_path.name)
    except SyntaxError as e:
        return problems + [f"not valid Python: {e}"]
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
        for name in names:
            if name.split(".")[0] in FORBIDDEN_IMPORTS:
                problems.append(f"imports {name!r} (only the frameworks, numpy and the standard library)")
    for word in ("REPRODUCED", "NOT REPRODUCED", "SKIPPED"):
        if word not in text:
            problems.append(f"never prints {word!r}")
    return problems


def parse_verdict(stdout: str, returncode: int, finding_id: str) -> tuple[str | None, str]:
    """(verdict, detail) from a repro's output: verdict REPRODUCED / NOT REPRODUCED / SKIPPED when
    the last line and the exit code agree, else None with what was wrong."""
    lines = [line for line in stdout.strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else ""
    for verdict in ("NOT REPRODUCED", "REPRODUCED", "SKIPPED"):
        if last.startswith(verdict + ":"):
            rest = last[len(verdict) + 1:].strip()
            if verdict != "SKIPPED" and rest != finding_id:
                return None, f"last line {last!r} names {rest!r}, not {finding_id!r}"
            if returncode != REPRO_EXIT[verdict]:
                return None, f"last line {last!r} but exit code {returncode} (expected {REPRO_EXIT[verdict]})"
            return verdict, rest
    return None, f"exit code {returncode}, last line {last!r}: no verdict line"


def as_section(finding: Finding, status: str | None = None) -> dict:
    """The report's `registry` entry of a finding: its fields, the repro's text, and `status` (what
    this run's repro said: "reproduced", "no longer reproduces", "skipped: ...", None: not run)."""
    out = {"id": finding.id, "title": finding.title, "frameworks": list(finding.frameworks),
           "backends": list(finding.backends), "kind": finding.kind, "versions": finding.versions,
           "component": finding.component or None, "what_happens": _one_line(finding.what_happens),
           "expected": _one_line(finding.expected), "why_expected": _one_line(finding.why_expected),
           "impact": _one_line(finding.impact), "evidence": list(finding.evidence),
           "upstream": finding.upstream or None, "upstream_status": finding.upstream_status,
           "repro_file": f"findings/{finding.repro_path.name}", "repro": finding.repro, "status": status}
    return out


def draft_markdown(entry: dict, environment: dict | None = None) -> str:
    """An issue draft fit to paste into the framework's tracker, from a registry entry (a
    `Finding` or its `as_section` dict) and a report's `environment` (versions, Python, OS)."""
    e = as_section(entry) if isinstance(entry, Finding) else entry
    env = environment or {}
    pkgs = {k: v for k, v in (env.get("packages") or {}).items() if v}
    wanted = {"keras": ("keras",), "tf_keras": ("tf-keras", "tensorflow-cpu"), "tensorflow": ("tensorflow-cpu",),
              "torch": ("torch",), "flax": ("flax", "jax", "jaxlib"), "jax": ("jax", "jaxlib"),
              "onnxruntime": ("onnxruntime", "onnx")}
    names = ["numpy"] + [n for fw in e["frameworks"] for n in wanted.get(fw, ())]
    if "keras" in e["frameworks"]:
        names += {"tensorflow": ["tensorflow-cpu"], "jax": ["jax"], "torch": ["torch"]}.get(
            (e.get("backends") or ["tensorflow"])[0], []) if len(e.get("backends") or []) == 1 else \
            ["tensorflow-cpu", "jax", "torch"]
    versions = ", ".join(f"{n} {pkgs[n]}" for n in dict.fromkeys(names) if n in pkgs) or e["versions"]
    lines = [f"# {e['title']}", "",
             f"**Versions**: {versions}; Python {env.get('python') or '?'}; {env.get('platform') or '?'}"
             + (f"  (registry: {e['versions']})" if versions != e["versions"] else ""), ""]
    if e.get("component"):
        lines += [f"**Where**: `{e['component']}`", ""]
    lines += ["## What happens", "", e["what_happens"], "", "## Expected", "", e["expected"], "",
              "## Why that is the expected behaviour", "", e["why_expected"], "",
              "## Impact", "", e["impact"], "",
              "## Reproduce", "", f"Standalone script (`{e['repro_file']}`; prints observed vs expected and "
              "ends with `REPRODUCED: <id>`, exit code 0, while the behaviour is present):", "",
              "```python", e["repro"].rstrip("\n"), "```", ""]
    if e.get("upstream"):
        lines += [f"Related upstream report: {e['upstream']} ({e['upstream_status']}).", ""]
    lines += [f"_Found by rnn-conformance (finding `{e['id']}`; evidence: "
              + ", ".join(f"`{t}`" for t in e["evidence"]) + ")._", ""]
    return "\n".join(lines)


def docs_list(findings, frameworks=None) -> str:
    """The Markdown list of findings (of `frameworks`, default all) that docs/ pages embed between
    their ``<!-- findings:... -->`` markers (regenerated by `rnn-conformance findings --docs`)."""
    out = []
    for f in findings:
        if frameworks and not set(f.frameworks) & set(frameworks):
            continue
        link = f" ([upstream]({f.upstream}), {f.upstream_status})" if f.upstream else f" ({f.upstream_status})"
        what = _one_line(f.what_happens)
        first = re.match(r"(.{40,}?[.;:])\s", what + " ")
        what = first.group(1) if first and len(first.group(1)) < len(what) else what
        out.append(f"- **{f.title}** (`{f.id}`, {f.where()}, {f.kind}){link}: {what} "
                   f"Repro: [`findings/{f.repro_path.name}`](../findings/{f.repro_path.name}).")
    return "\n".join(out)


DOCS_MARK = re.compile(r"(<!-- findings:([a-z_,]*) -->\n)(.*?)(<!-- /findings -->)", re.S)


def update_docs(text: str, findings) -> str:
    """`text` (a docs page) with every generated list between ``<!-- findings:FW,FW -->`` and
    ``<!-- /findings -->`` rewritten from the registry (``<!-- findings: -->``: all findings)."""
    def fill(m):
        names = [n for n in m.group(2).split(",") if n]
        return m.group(1) + docs_list(findings, names or None) + "\n" + m.group(4)

    return DOCS_MARK.sub(fill, text)
