"""The structured conformance report (report.json): build, validate, write atomically, load.

The format is documented field by field in docs/report-schema.md; `validate_report` is the
executable form of that document, so change both together.
"""
from __future__ import annotations

import json
import math
import os
import platform
from datetime import datetime, timezone

from conformance.core.files import write_text_atomic
from conformance.core.frameworks import installed_version

SCHEMA_VERSION = 4  # 2: records gained `kernel`; 3: the `run` object; 4: records' `finding`, `registry`
# Versions load_report reads: version 2 has no `run` (its selection is unknown: read as "everything ran");
# versions 2 and 3 have no record field `finding` (load_report fills it with null).
READABLE_VERSIONS = (2, 3, 4)

# Every record carries all of these keys (None where unknown), in this order.
RECORD_KEYS = (
    "id", "adapter", "framework", "framework_version", "backend", "device", "kernel", "suite",
    "feature", "outcome", "max_abs_err", "tolerance", "seed", "reason", "finding", "repro",
)
OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")
# Distributions whose versions go into environment.packages (looked up, never imported).
PACKAGES = (
    "numpy", "scipy", "pytest", "hypothesis", "pytest-benchmark", "torch", "tensorflow-cpu",
    "keras", "tf-keras", "jax", "jaxlib", "flax", "onnx", "onnxruntime",
)
ENVIRONMENT_KEYS = ("python", "platform", "cpu", "cpu_count", "packages")
# Optional top-level sections: lists of JSON objects that tests add through the plugin's
# `conformance_section` fixture (and `parts`, the inputs of a merged report).
SECTIONS = ("parts", "fingerprints", "findings", "registry", "claims", "benchmarks", "error_growth")

# The `run` object: how the report was made (docs/report-schema.md, "run"). Every key is present,
# null where unknown; a report merged without a run of its own (`merge`) also has "merged".
RUN_KEYS = ("command", "profile", "seed", "k", "markers", "frameworks", "adapters", "variant", "parts",
            "deselected")
RUN_PART_KEYS = ("name", "ran", "why")
_RUN_STR = ("profile", "seed", "k", "markers", "variant")
_RUN_STR_LIST = ("command", "frameworks", "adapters", "deselected")
# Outcomes that mean the case was actually compared (skips were not).
COMPARED_OUTCOMES = ("passed", "failed", "xfailed", "xpassed", "error")

# Type rules of the record fields that tests may set; `id`, `suite`, `outcome` are checked apart.
_STR_OR_NONE = ("adapter", "framework", "framework_version", "backend", "device", "kernel", "feature",
                "reason", "finding", "repro")
_NUMBER_OR_NONE = ("max_abs_err", "tolerance")


class ReportError(Exception):
    """A report file is missing, truncated, unparseable or of another schema version."""


def check_field(key: str, value) -> str | None:
    """Problem with one record field's value, or None. Shared by the validator and record()."""
    if key in ("id", "suite"):
        ok = isinstance(value, str) and value != ""
        return None if ok else f"{key} must be a non-empty string, got {value!r}"
    if key == "outcome":
        return None if value in OUTCOMES else f"outcome must be one of {OUTCOMES}, got {value!r}"
    if value is None:
        return None
    if key in _STR_OR_NONE:
        return None if isinstance(value, str) else f"{key} must be a string or null, got {value!r}"
    if key in _NUMBER_OR_NONE:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{key} must be a number or null, got {value!r}"
        return None if math.isfinite(value) else f"{key} must be finite (JSON has no NaN/inf), got {value!r}"
    if key == "seed":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"seed must be an integer or null, got {value!r}"
    return f"unknown field {key!r}"


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def environment() -> dict:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "packages": {name: installed_version(name) for name in PACKAGES},
    }


def variant_id(nodeid: str, variant: str | None) -> str:
    """The record id of `nodeid` run in process variant `variant` ("keras-jax"): "<nodeid> (keras-jax)"."""
    return f"{nodeid} ({variant})" if variant else nodeid


def node_id(record_id: str) -> str:
    """The pytest node id of a record id (without a variant suffix)."""
    if record_id.endswith(")") and " (" in record_id:
        return record_id.rsplit(" (", 1)[0]
    return record_id


def part_name(record_id: str) -> str:
    """The part (process variant) a record id belongs to: its suffix ("keras-jax"), else "main"."""
    nodeid = node_id(record_id)
    return record_id[len(nodeid) + 2:-1] if nodeid != record_id else "main"


def unknown_run() -> dict:
    """The `run` of a report whose making is unknown (schema 2): every field null."""
    return dict.fromkeys(RUN_KEYS)


def complete_run(run: dict | None) -> dict:
    """`run` with every RUN_KEYS key (None where absent); ValueError on an unknown key."""
    run = dict(run or {})
    extra = sorted(set(run) - set(RUN_KEYS) - {"merged"})
    if extra:
        raise ValueError(f"unknown run field(s) {extra}; known: {RUN_KEYS + ('merged',)}")
    out = {k: run.get(k) for k in RUN_KEYS}
    if "merged" in run:
        out["merged"] = run["merged"]
    return out


def run_of(report: dict) -> dict:
    """The `run` object of a loaded report; for a schema-2 report (no `run`), `unknown_run()`."""
    run = report.get("run")
    return complete_run(run) if isinstance(run, dict) else unknown_run()


def compared(report: dict) -> int:
    """How many records were actually compared: outcome passed, failed, xfailed, xpassed or
    error (skipped records were not), leaving out the reference's own cases (framework
    "reference": they run with any selection, and compare no framework)."""
    return sum(1 for r in report.get("results", ())
               if r.get("outcome") in COMPARED_OUTCOMES and r.get("framework") != "reference")


def build_report(results, created: str | None = None, sections: dict | None = None, run: dict | None = None) -> dict:
    """The report dict. Each result is completed with every RECORD_KEYS key (None if absent);
    `sections` ({name: [objects]}, names from SECTIONS) are added when non-empty; `run` (how the
    report was made, RUN_KEYS) is completed with None for every key it lacks (None: all unknown)."""
    if created is None:
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report = {
        "schema_version": SCHEMA_VERSION,
        "created": created,
        "environment": environment(),
        "run": complete_run(run),
        "results": [{k: r.get(k) for k in RECORD_KEYS} for r in results],
    }
    for name, entries in (sections or {}).items():
        if name not in SECTIONS:
            raise ValueError(f"unknown report section {name!r}; known: {SECTIONS}")
        if entries:
            report[name] = list(entries)
    return report


def validate_report(report) -> list[str]:
    """Problems with a report dict (empty list: valid). Hand-written; mirrors docs/report-schema.md."""
    if not isinstance(report, dict):
        return [f"report must be a JSON object, got {type(report).__name__}"]
    problems = []
    version = report.get("schema_version")
    # Schema 2 (read for old reports) is schema 3 without `run`.
    required = ("schema_version", "created", "environment", "results") + (("run",) if version != 2 else ())
    for key in required:
        if key not in report:
            problems.append(f"missing top-level key {key!r}")
    if "schema_version" in report and version not in READABLE_VERSIONS:
        problems.append(f"schema_version must be {SCHEMA_VERSION} (or 3, an older report without records' "
                        f"`finding`, or 2, one without `run` either), got {version!r}")
    if "created" in report:
        problems += _check_created(report["created"])
    if "environment" in report:
        problems += _check_environment(report["environment"])
    if "run" in report and version != 2:
        problems += _check_run(report["run"], "run")
    for key in sorted(set(report) - set(required)):
        if key == "run" and version == 2:
            problems.append("unknown top-level key 'run' (schema version 2 has none; version 3 has)")
        elif key not in SECTIONS or (key == "registry" and version in (2, 3)):
            problems.append(f"unknown top-level key {key!r}")
        elif not isinstance(report[key], list) or not all(isinstance(e, dict) for e in report[key]):
            problems.append(f"{key} must be a list of objects")
    results = report.get("results", [])
    if not isinstance(results, list):
        return problems + ["results must be a list"]
    keys = RECORD_KEYS if version not in (2, 3) else tuple(k for k in RECORD_KEYS if k != "finding")
    seen = set()
    for i, rec in enumerate(results):
        where = f"results[{i}]"
        if not isinstance(rec, dict):
            problems.append(f"{where} must be an object")
            continue
        where = f"results[{i}] ({rec.get('id')!r})"
        missing = [k for k in keys if k not in rec]
        extra = sorted(set(rec) - set(keys))
        if missing:
            problems.append(f"{where}: missing keys {missing}")
        if extra:
            problems.append(f"{where}: unknown keys {extra}")
        problems += [f"{where}: {p}" for k in keys if k in rec and (p := check_field(k, rec[k]))]
        if rec.get("id") in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(rec.get("id"))
    return problems


def _is_str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _check_run(run, where: str) -> list[str]:
    """Problems with a `run` object (or one of a merged report's `run.merged` entries)."""
    if not isinstance(run, dict):
        return [f"{where} must be an object"]
    problems = [f"{where}: missing key {k!r}" for k in RUN_KEYS if k not in run]
    extra = sorted(set(run) - set(RUN_KEYS) - {"merged"})
    if extra:
        problems.append(f"{where}: unknown keys {extra}")
    for k in _RUN_STR:
        if run.get(k) is not None and not isinstance(run[k], str):
            problems.append(f"{where}.{k} must be a string or null, got {run[k]!r}")
    for k in _RUN_STR_LIST:
        if run.get(k) is not None and not _is_str_list(run[k]):
            problems.append(f"{where}.{k} must be a list of strings or null")
    des = run.get("deselected")
    if _is_str_list(des) and des != sorted(set(des)):
        problems.append(f"{where}.deselected must be sorted, without duplicates")
    parts = run.get("parts")
    if parts is not None:
        if not isinstance(parts, list):
            problems.append(f"{where}.parts must be a list of objects or null")
        else:
            for i, p in enumerate(parts):
                at = f"{where}.parts[{i}]"
                if not isinstance(p, dict) or sorted(p) != sorted(RUN_PART_KEYS):
                    problems.append(f"{at} must be an object with exactly the keys {list(RUN_PART_KEYS)}")
                    continue
                if not isinstance(p["name"], str) or not p["name"]:
                    problems.append(f"{at}.name must be a non-empty string")
                if not isinstance(p["ran"], bool):
                    problems.append(f"{at}.ran must be true or false")
                if p["why"] is not None and not isinstance(p["why"], str):
                    problems.append(f"{at}.why must be a string or null")
    if "merged" in run:
        merged = run["merged"]
        if not isinstance(merged, list):
            problems.append(f"{where}.merged must be a list")
        else:
            for i, sub in enumerate(merged):
                if sub is not None:
                    problems += _check_run(sub, f"{where}.merged[{i}]")
    return problems


def _check_created(created) -> list[str]:
    try:
        when = datetime.fromisoformat(created)
    except (TypeError, ValueError):
        return [f"created must be an ISO-8601 timestamp, got {created!r}"]
    if when.utcoffset() is None or when.utcoffset().total_seconds() != 0:
        return [f"created must be in UTC (offset +00:00 or Z), got {created!r}"]
    return []


def _check_environment(env) -> list[str]:
    if not isinstance(env, dict):
        return ["environment must be an object"]
    problems = [f"environment: missing key {k!r}" for k in ENVIRONMENT_KEYS if k not in env]
    for k in ("python", "platform", "cpu"):
        if k in env and env[k] is not None and not isinstance(env[k], str):
            problems.append(f"environment.{k} must be a string or null")
    count = env.get("cpu_count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
        problems.append("environment.cpu_count must be an integer or null")
    pkgs = env.get("packages", {})
    if not isinstance(pkgs, dict):
        problems.append("environment.packages must be an object")
    else:
        for name, ver in pkgs.items():
            if ver is not None and not isinstance(ver, str):
                problems.append(f"environment.packages[{name!r}] must be a version string or null")
    return problems


def write_report_atomic(report: dict, path) -> None:
    """Write the report as JSON to `path` so that readers see either the old file or the whole new one."""
    write_text_atomic(path, json.dumps(report, indent=1, allow_nan=False) + "\n")


def _cut_short(text: str, error: json.JSONDecodeError) -> bool:
    """Whether `text`, which failed to parse with `error`, is JSON that ends early (a cut file):
    it opens an object or array and the parser ran off its end (the error is in its last token)."""
    if not text.lstrip().startswith(("{", "[")):
        return False
    if error.msg.startswith("Unterminated string"):  # the string runs to the end of the text
        return True
    rest = text[error.pos:].rstrip()
    return not any(c in rest for c in ' \t\r\n{}[],:"')


def load_report(path) -> dict:
    """Read a report.json (a directory means DIR/report.json); ReportError if it is missing,
    empty, not JSON, truncated, not an object, or of a schema version this tool does not read."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "report.json")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ReportError(f"report not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(f"cannot read report {path}: {e}") from None
    if not text.strip():
        raise ReportError(f"report {path} is empty")
    try:
        report = json.loads(text)
    except json.JSONDecodeError as e:
        where = f"line {e.lineno}, column {e.colno}: {e.msg}"
        if _cut_short(text, e):
            raise ReportError(f"report {path} is truncated: it ends early ({where})") from None
        raise ReportError(f"{path} is not JSON ({where})") from None
    if not isinstance(report, dict):
        raise ReportError(f"report {path} is not a JSON object")
    version = report.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise ReportError(f"report {path} has schema_version {version!r}; this tool reads versions "
                          f"{', '.join(map(str, READABLE_VERSIONS))}")
    return report


def upgraded(report: dict) -> dict:
    """A loaded report of an older readable schema (2, 3) as the current one: records get
    `finding` null, a missing `run` becomes `unknown_run()`. For merging and comparing; a report
    that is already current is returned as it is."""
    if report.get("schema_version") == SCHEMA_VERSION:
        return report
    out = dict(report, schema_version=SCHEMA_VERSION, run=run_of(report))
    out["results"] = [{k: r.get(k) for k in RECORD_KEYS} for r in report.get("results", [])]
    return out
