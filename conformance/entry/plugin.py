"""pytest plugin: one structured result per test case, written to report.json.

Tests attach fields with the `conformance_record` fixture:

    def test_x(conformance_record):
        conformance_record(framework="torch", max_abs_err=err, tolerance=tol)

`record()` stores the fields in `item.user_properties` under the key "conformance". Records are
assembled in `pytest_runtest_logreport` from the setup/call/teardown reports, which carry the
user_properties. That hook also runs on the pytest-xdist controller with the workers' reports,
so under xdist the controller gathers every worker's records and alone writes the files.

With `--conformance-report PATH`:
- after each test its record is appended as one JSON line to PATH.partial.jsonl (flushed), so
  a run that is killed keeps every finished record there;
- a partial file left by an earlier run is discarded when a run starts (it starts fresh);
- when the session ends, PATH is written atomically and the partial file removed; if the
  session was interrupted (Ctrl-C, pytest.exit, a crash) PATH is not written, and the partial
  file is left as the record of what finished. Collection errors and -x/--maxfail stops are
  ordinary ends: the report is written and includes them.

With `--adapter package.module:INFO` (repeatable): outside adapter paths join the registry for
this run, exactly as if named in $RNN_CONFORMANCE_ADAPTERS. At configure time, before any suite
is collected, the specs are merged into that variable (after the ones it already holds,
duplicates dropped) and every spec is resolved: a spec that names no importable module, no
attribute, not an `AdapterInfo`, or an adapter name already registered is a usage error (exit 4).
A module that exists but fails while importing is a usage error too, with its traceback.
The variable is restored when the run ends.

Expectations (`conformance.results.expectations`): the entries in ``--expectations DIR`` (default
``expectations/`` under the rootdir) that apply to the installed versions mark the tests they
match ``xfail``; ``--strict-expectations`` makes such a test that passes fail. The console
(pytest's ``-ra`` summary) shows the entry's one-line form (`Expectation.short_label`: first
sentence, link); the record in the report keeps the full reason (`Expectation.label`). An
applicable entry that matches no test of the full collection of a file collected whole is
warned about (stale): tests that -k, -m, --deselect or --frameworks leave out still count as
matched, and files not collected, or collected only in part (a ``file.py::test`` argument),
are not judged.

Frameworks. Every test declares the frameworks it needs: parametrized with an `AdapterInfo`
(its ``framework``), and/or marked ``framework(name, ...)`` (module ``pytestmark``, class,
function or ``pytest.param(..., marks=...)``; several names: the test needs all of them).
Names are top-level (``flax.linen`` counts as ``flax``): `registry.FRAMEWORKS` (torch, keras,
tf_keras, tensorflow, flax, jax, onnxruntime), the frameworks of the outside adapters
registered for the run, and ``reference``: a test marked ``framework("reference")`` needs only
NumPy and the reference (the baseline). The Keras backend is not a framework here: a Keras
test needs ``keras`` on whichever backend the process runs (the ``keras`` marker re-runs it).
``--frameworks torch,keras`` keeps a test only if every framework it needs is chosen, or is
``reference``: reference tests run under every selection (``--frameworks reference`` runs only
them), and a test that declares no framework at all is left out (tests/test_suites_frameworks.py
keeps suites/ free of those). An unknown name is a usage error listing the valid ones.

``--conformance-variant NAME`` suffixes every record id with `` (NAME)``, so the records of one
suite run in several processes (one per Keras backend) can be merged; repros then start with
the environment variables that select the variant.
"""
from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import traceback
import time
from pathlib import Path

import pytest

from conformance.core import paths
from conformance.entry import profiles
from conformance.results import expectations as expect
from conformance.results import findings as findings_registry
from conformance.core.frameworks import installed_version
from conformance.results.report import RECORD_KEYS, SECTIONS, build_report, check_field, variant_id, write_report_atomic

USER_PROPERTY = "conformance"
SECTION_PROPERTY = "conformance-section"
# (short, full) reason of the expectation that marked a test xfail: the console shows the short
# one (report.wasxfail), the record the full one.
EXPECTATION_PROPERTY = "conformance-expectation"
# Fields a test may set with record(); the others come from pytest.
SETTABLE = tuple(k for k in RECORD_KEYS if k not in ("id", "outcome"))
# Environment variables that select a process variant; repros name them when set.
VARIANT_ENV = ("KERAS_BACKEND", "TF_USE_LEGACY_KERAS")


def pytest_addoption(parser):
    group = parser.getgroup("conformance")
    group.addoption("--conformance-report", metavar="PATH", default=None,
                    help="write one structured record per test to PATH (JSON); "
                         "PATH.partial.jsonl holds finished records while the run goes on")
    group.addoption("--adapter", action="append", default=[], metavar="MODULE:OBJ", dest="conformance_adapters",
                    help="add the outside adapter path named by this 'package.module:INFO' spec (an "
                         "AdapterInfo) to the suites, as $RNN_CONFORMANCE_ADAPTERS does; repeatable")
    group.addoption("--semantics", action="append", default=[], metavar="FILE", dest="conformance_semantics",
                    help="a TOML file of [[fingerprint]] tables declaring the dropout semantics outside adapter "
                         "paths should have (adapter, knob, [fingerprint.properties]), as "
                         "$RNN_CONFORMANCE_SEMANTICS does; repeatable")
    group.addoption("--strict-semantics", action="store_true", default=False, dest="conformance_strict_semantics",
                    help="a dropout knob whose semantics nobody declared fails the fingerprint test "
                         "(without it: a finding 'semantics undeclared')")
    group.addoption("--expectations", metavar="DIR", default=None,
                    help="directory of expectation files (*.toml; default: expectations/ under the rootdir)")
    group.addoption("--strict-expectations", action="store_true", default=False,
                    help="a test marked xfail by an expectation fails if it passes (the deviation is gone)")
    group.addoption("--frameworks", metavar="A,B", default=None,
                    help="run only the tests whose frameworks are all among these (torch, keras, tf_keras, "
                         "tensorflow, flax, jax, onnxruntime, an outside adapter's framework); tests needing "
                         "only the reference always run")
    group.addoption("--conformance-variant", metavar="NAME", default=None,
                    help="suffix every record id with ' (NAME)' (one process of a multi-process run)")
    group.addoption("--conformance-budget", metavar="SECONDS", type=float, default=None,
                    help="time budget of the session: once SECONDS have passed since it started, every "
                         "test not yet begun is skipped with the reason " + repr(BUDGET_SPENT.format(s="N"))
                         + " (rnn-conformance gpu uses it; such a run is incomplete, never a pass)")


#: The skip reason of a test that the --conformance-budget left unrun.
BUDGET_SPENT = "not run: the time budget of {s} s for this part was spent"
_BUDGET_START = "_conformance_budget_start"


def pytest_sessionstart(session):
    setattr(session.config, _BUDGET_START, time.monotonic())


def pytest_runtest_setup(item):
    budget = item.config.getoption("conformance_budget", None)
    start = getattr(item.config, _BUDGET_START, None)
    if budget is not None and start is not None and time.monotonic() - start > budget:
        pytest.skip(BUDGET_SPENT.format(s=f"{budget:g}"))


_IMPORTERS = {__file__, importlib.__file__, os.path.join(paths.PACKAGE, "adapters", "registry.py")}


def _add_adapters(config, specs):
    """Merge `specs` into $RNN_CONFORMANCE_ADAPTERS and check the result; UsageError if bad."""
    from conformance.adapters import registry
    from conformance.adapters.base import SPEC_PATTERN, AdapterInfo

    old = os.environ.get(registry.ENV_VAR)
    current = [s.strip() for s in (old or "").split(",") if s.strip()]
    merged = current + [s for s in dict.fromkeys(specs) if s not in current]
    for spec in specs:
        if not SPEC_PATTERN.match(spec):
            raise pytest.UsageError(f"--adapter: expected 'package.module:OBJ' naming an AdapterInfo "
                                    f"(e.g. examples.hand_lstm:INFO), got {spec!r}")
        try:
            obj = registry.resolve(spec)
        except ValueError as e:
            raise pytest.UsageError(f"--adapter: {e}") from None
        except Exception as e:  # the module exists but is broken: show where, without an INTERNALERROR
            tb = traceback.TracebackException.from_exception(e)
            tb.stack = traceback.StackSummary.from_list(  # the module's own frames, not the importer's
                [f for f in tb.stack if not f.filename.startswith("<frozen") and f.filename not in _IMPORTERS])
            tb = "".join(tb.format()).rstrip()
            raise pytest.UsageError(f"--adapter: importing the module of {spec!r} failed "
                                    f"({type(e).__name__}: {e}):\n{tb}") from None
        if not isinstance(obj, AdapterInfo):
            raise pytest.UsageError(f"--adapter: spec {spec!r} names a {type(obj).__name__}, expected an "
                                    "AdapterInfo (the suites read its cell and features before building it)")
    _set_env(config, registry.ENV_VAR, ",".join(merged))
    try:
        registry.adapters()  # the set the suites will see: names must be unique
    except ValueError as e:
        _restore_env(config, registry.ENV_VAR)
        raise pytest.UsageError(f"--adapter: {e}") from None


def _set_env(config, name, value):
    """Set $name for this session; its value before (or its absence) is restored by `_restore_env`."""
    config.__dict__.setdefault("_conformance_env_saved", {}).setdefault(name, os.environ.get(name))
    os.environ[name] = value


def _restore_env(config, *names):
    """Restore the variables `_set_env` set (only `names`, when given)."""
    saved = config.__dict__.get("_conformance_env_saved", {})
    for name in names or list(saved):
        if name in saved:
            before = saved.pop(name)
            if before is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = before


def _set_semantics(config):
    """--semantics FILE (checked now: a usage error names a bad file) and --strict-semantics into
    $RNN_CONFORMANCE_SEMANTICS / $RNN_CONFORMANCE_STRICT_SEMANTICS, which the fingerprint suite reads."""
    files = [str(Path(f).resolve()) for f in config.getoption("conformance_semantics") or () if f.strip()]
    strict = config.getoption("conformance_strict_semantics")
    if files:
        current = [f for f in os.environ.get(expect.SEMANTICS_ENV, "").split(os.pathsep) if f]
        _set_env(config, expect.SEMANTICS_ENV, os.pathsep.join(current + [f for f in files if f not in current]))
        try:
            expect.semantics_files()
        except expect.ExpectationError as e:
            _restore_env(config, expect.SEMANTICS_ENV)
            raise pytest.UsageError(f"--semantics: {e}") from None
    if strict:
        _set_env(config, expect.STRICT_SEMANTICS_ENV, "1")


def pytest_unconfigure(config):
    _restore_env(config)


def _load_expectations(config):
    directory = config.getoption("expectations")
    directory = Path(directory) if directory else Path(str(config.rootpath)) / "expectations"
    if config.getoption("expectations") and not directory.is_dir():
        raise pytest.UsageError(f"--expectations: {directory} is not a directory")
    try:
        return expect.load_dir(directory)
    except expect.ExpectationError as e:
        raise pytest.UsageError(f"expectations: {e}") from None


profiles.register()  # before hypothesis's own plugin reads --hypothesis-profile (pytest_configure)

MARKERS = (
    "slow: takes more than a few seconds",
    "gpu: needs a CUDA device; skips with a reason elsewhere",
    "framework(name, ...): needs all the named framework(s) (top-level names, or 'reference': NumPy and the "
    "reference only); --frameworks selects by them",
    "statistical: a statistical assertion with a documented false-alarm probability",
    "tf_keras: runs tf-keras 2 (TF_USE_LEGACY_KERAS=1); `conformance run` runs these in a process of their own",
    "keras: depends on the Keras 3 backend (KERAS_BACKEND); `conformance run` runs these once per backend, "
    "each in its own process",
)


def pytest_configure(config):
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    specs = [s.strip() for s in config.getoption("conformance_adapters") or () if s.strip()]
    if specs:
        _add_adapters(config, specs)
    _set_semantics(config)
    config._conformance_frameworks = _chosen_frameworks(config)
    config._conformance_expectations = _load_expectations(config)
    path = config.getoption("conformance_report")
    # xdist workers only produce reports; the controller (or a plain run) records them.
    if path and not hasattr(config, "workerinput"):
        config.pluginmanager.register(Recorder(config, path), "conformance-recorder")


def _chosen_frameworks(config):
    """The --frameworks names, checked against the valid ones (built-in, reference and the
    outside adapters of this run); None without the option. UsageError on an unknown name."""
    from conformance.adapters import registry

    chosen = config.getoption("frameworks")
    if chosen is None:
        return None
    names = [n.strip() for n in chosen.split(",") if n.strip()]
    if not names:
        raise pytest.UsageError(f"--frameworks: expected comma-separated framework names, got {chosen!r}")
    infos = registry.ADAPTERS
    if not set(names) <= set(registry.selectable(infos)):  # then ask the outside adapters too
        try:  # --adapter specs are in the variable by now (_add_adapters)
            infos = registry.adapters()
        except Exception as e:  # noqa: BLE001 - a broken $RNN_CONFORMANCE_ADAPTERS spec
            raise pytest.UsageError(f"--frameworks: cannot read the outside adapters: {registry.ENV_VAR}: "
                                    f"{type(e).__name__}: {e}") from None
    try:
        return registry.check_frameworks(names, infos)
    except ValueError as e:
        raise pytest.UsageError(f"--frameworks: {e}") from None


def _item_frameworks(item):
    """Top-level framework names an item needs: its AdapterInfo params and framework() marks
    (every name of every mark); "reference" stands for NumPy and the reference alone."""
    from conformance.adapters.base import AdapterInfo
    from conformance.adapters.registry import top_level

    names = {str(name) for m in item.iter_markers("framework") for name in m.args}
    params = getattr(getattr(item, "callspec", None), "params", {})
    names |= {v.framework for v in params.values() if isinstance(v, AdapterInfo)}
    return {top_level(n) for n in names}


def _select_frameworks(config, items):
    from conformance.adapters.registry import REFERENCE

    chosen = getattr(config, "_conformance_frameworks", None)
    if chosen is None:
        return
    allowed = set(chosen) | {REFERENCE}
    keep, drop = [], []
    for item in items:
        needs = _item_frameworks(item)
        (keep if needs and needs <= allowed else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _partly_collected(config):
    """Files named with a test inside them (``file.py::test``) among the arguments: collected
    in part, so their expectations are not judged stale."""
    base = Path(str(config.invocation_params.dir))
    return {(base / arg.split("::")[0]).resolve() for arg in config.args if "::" in arg}


def _apply_expectations(config, items):
    """Mark the tests applicable entries match xfail; warn about stale entries. Runs on the full
    collection, before any deselection (ours by --frameworks, pytest's by -k, -m, --deselect)."""
    entries = getattr(config, "_conformance_expectations", [])
    if not entries:
        return
    versions = {e.framework: installed_version(e.framework) for e in entries}
    live = expect.applicable(entries, versions, expect.current_backend())
    used = set()
    strict = config.getoption("strict_expectations")
    for item in items:
        hit = next((e for e in live if e.matches_id(canonical_id(config, item.nodeid))), None)
        if hit is not None:
            used.add(hit)
            item.add_marker(pytest.mark.xfail(reason=hit.short_label(), strict=strict))
            item.user_properties.append((EXPECTATION_PROPERTY, (hit.short_label(), hit.label(), hit.finding)))
    partial = _partly_collected(config)
    files = {canonical_id(config, item.nodeid).split("::")[0] for item in items
             if Path(str(item.path)).resolve() not in partial}
    for e in live:
        if e not in used and any(expect.fnmatch.fnmatchcase(f, e.test.split("::")[0]) for f in files):
            config.issue_config_time_warning(pytest.PytestWarning(
                f"expectation {e.source} ({e.test}) applies to {e.framework} {versions[e.framework]} "
                "but matches no collected test: remove or fix it"), stacklevel=2)


def canonical_id(config, nodeid: str, path=None) -> str:
    """The node id as a checkout names it, ``suites/test_x.py::...``, wherever pytest's rootdir
    is (plain ``pytest --pyargs conformance.suites`` from another directory names the file
    relative to the package): record ids and expectation patterns are the same everywhere.
    `path`: the item's file, where known; else the collected items' ids, else the rootdir."""
    known = getattr(config, "_conformance_ids", {})
    if path is None and nodeid in known:
        return known[nodeid]
    file, sep, rest = nodeid.partition("::")
    try:
        where = Path(path) if path is not None else Path(str(config.rootpath)) / file
        rel = where.resolve().relative_to(paths.SUITES)
    except ValueError:
        return nodeid
    return f"suites/{rel.as_posix()}{sep}{rest}"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    config._conformance_ids = {item.nodeid: canonical_id(config, item.nodeid, item.path) for item in items}
    config._conformance_reference_only = {item.nodeid for item in items if _item_frameworks(item) == {"reference"}}
    _apply_expectations(config, items)  # first: on the full collection (tryfirst: before -k, -m, --deselect)
    _select_frameworks(config, items)


@pytest.fixture
def conformance_record(request):
    """Callable `record(**fields)` attaching fields to this test's conformance record."""
    node = request.node

    def record(**fields):
        clean = {}
        for key, value in fields.items():
            if key not in SETTABLE:
                raise TypeError(f"conformance_record: unknown field {key!r}; allowed: {', '.join(SETTABLE)}")
            value = value.item() if hasattr(value, "item") else value  # numpy scalars -> Python
            problem = check_field(key, value)
            if problem:
                raise ValueError(f"conformance_record: {problem}")
            clean[key] = value
        props = node.user_properties  # one ("conformance", {fields}) entry, merged across calls
        for i, (name, old) in enumerate(props):
            if name == USER_PROPERTY:
                props[i] = (USER_PROPERTY, {**old, **clean})
                return
        props.append((USER_PROPERTY, clean))

    return record


@pytest.fixture
def conformance_section(request):
    """Callable `add(section, **entry)` appending a JSON object to a report section (one of
    report.SECTIONS other than "parts": fingerprints, findings, claims, benchmarks,
    error_growth); the entry gets this test's record id as "id"."""
    node = request.node

    def add(section, **entry):
        if section not in SECTIONS or section == "parts":
            raise TypeError(f"conformance_section: unknown section {section!r}; allowed: "
                            f"{', '.join(s for s in SECTIONS if s != 'parts')}")
        try:
            entry = json.loads(json.dumps(entry, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise ValueError(f"conformance_section: entry is not strict JSON ({e})") from None
        node.user_properties.append((SECTION_PROPERTY, (section, entry)))

    return add


def _first_line(text) -> str | None:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else None


_EXC_LINE = re.compile(r"^E\s+([A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*)")


def _error_line(report) -> str | None:
    """First line of the error of a failed report, e.g. "AssertionError: values differ"."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and crash.message:
        return _first_line(crash.message)
    # Collection errors carry text only: take its "E   SomeError: ..." line if there is one.
    text = report.longreprtext
    found = [m.group(1) for m in map(_EXC_LINE.match, text.splitlines()) if m]
    return found[0].strip() if found else _first_line(text)


def _xfail_reason(report) -> str | None:
    """Why a test xfailed/xpassed: the full reason of the expectation that marked it (pytest,
    and so the console, has its one-line form), else pytest's own."""
    for name, value in report.user_properties:
        if name == EXPECTATION_PROPERTY and list(value)[0] == report.wasxfail:
            return list(value)[1]
    return report.wasxfail or None


def _skip_reason(report) -> str | None:
    if hasattr(report, "wasxfail"):
        return _xfail_reason(report)
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    if text in ("", "Skipped"):  # what pytest shows for a skip given no reason
        return None
    return _first_line(text.removeprefix("Skipped: "))


def _classify(report) -> tuple[str | None, str | None]:
    """(outcome, reason) that this phase's report implies; (None, None) if it implies nothing."""
    if report.failed:
        return ("failed" if report.when == "call" else "error"), _error_line(report)
    if report.skipped:
        return ("xfailed" if hasattr(report, "wasxfail") else "skipped"), _skip_reason(report)
    if report.when == "call":
        return ("xpassed", _xfail_reason(report)) if hasattr(report, "wasxfail") else ("passed", None)
    return None, None


def _adapter_args() -> str:
    """" --adapter=SPEC" for each outside adapter of this run (--adapter and the variable): a
    pytest repro needs them to collect the outside paths' test ids."""
    from conformance.adapters import registry

    specs = [s.strip() for s in os.environ.get(registry.ENV_VAR, "").split(",") if s.strip()]
    return "".join(f" --adapter={shlex.quote(spec)}" for spec in specs)


class Recorder:
    """Gathers the records (and sections) of a run and writes the report (``--conformance-report``).

    The report's ``run`` object (`run_metadata`) says how the run was made: the command line,
    the hypothesis profile and seed, ``-k``, ``-m``, ``--frameworks``, the outside adapter specs,
    the variant, and the record ids of the collected items that were deselected (this hook's
    `pytest_deselected`; under xdist the workers deselect and send their ids back, see the
    module-level `pytest_deselected`). The gate reads it to tell "not run" from "vanished".
    """

    def __init__(self, config, path):
        self.config = config
        self.path = Path(path)
        self.partial = Path(f"{path}.partial.jsonl")
        self.records = {}  # id -> finished record (a later record for the same id replaces it)
        self.sections = {}  # id -> [(section, entry)] added by that test
        self._pending = {}  # nodeid -> record being assembled over setup/call/teardown
        self.interrupted = False
        self.deselected = set()  # record ids of the collected items that were deselected
        from conformance.adapters import registry  # the outside specs, --adapter ones merged in

        self.adapters = [s.strip() for s in os.environ.get(registry.ENV_VAR, "").split(",") if s.strip()]
        try:
            self.findings = findings_registry.load_dir(paths.FINDINGS)
        except findings_registry.FindingError as e:
            raise pytest.UsageError(f"findings: {e}") from None

    def pytest_deselected(self, items):
        # -k, -m, --frameworks, --deselect: collected, not run (the gate tells these from vanished)
        variant = self.config.getoption("conformance_variant")
        self.deselected.update(variant_id(item.nodeid, variant) for item in items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        # xdist: the workers collect and deselect; each sends its ids (pytest_deselected below)
        self.deselected.update(getattr(node, "workeroutput", {}).get(WORKER_DESELECTED, ()))

    def run_metadata(self) -> dict:
        """The report's `run` object (docs/report-schema.md): how this pytest run was made."""
        from hypothesis import settings

        seed = self.config.getoption("--hypothesis-seed", None)
        frameworks = self.config.getoption("frameworks")
        return {
            "command": ["pytest", *self.config.invocation_params.args],
            "profile": settings.get_current_profile_name(),
            "seed": None if seed is None else str(seed),
            "k": getattr(self.config.option, "keyword", "") or None,
            "markers": getattr(self.config.option, "markexpr", "") or None,
            "frameworks": [n.strip() for n in frameworks.split(",") if n.strip()] if frameworks else None,
            "adapters": self.adapters,
            "variant": self.config.getoption("conformance_variant"),
            "parts": None,  # a plain pytest run; `rnn-conformance run` sets its parts on the merged report
            "deselected": sorted(self.deselected - set(self.records)),  # (an id that also ran is not "not run")
        }

    def registry_section(self, results) -> list:
        """The report's `registry`: the findings of the frameworks this run could compare (all of
        them without --frameworks), each with what its repro said in this run (`status`:
        "reproduced", "no longer reproduces: ...", "skipped: ...", None where it did not run)."""
        chosen = getattr(self.config, "_conformance_frameworks", None)
        status = {}
        for rec in results:
            if rec["finding"] and rec["suite"] == "test_findings":
                status[rec["finding"]] = {"passed": "reproduced", "skipped": f"skipped: {rec['reason']}"}.get(
                    rec["outcome"], f"no longer reproduces: {rec['reason']}" if rec["outcome"] == "failed"
                    else f"{rec['outcome']}: {rec['reason']}")
        return [findings_registry.as_section(f, status.get(f.id)) for f in self.findings
                if chosen is None or set(f.frameworks) & set(chosen)]

    def say(self, line: str) -> None:
        """`line` on a line of its own, after pytest's progress line (which has no newline yet)."""
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is None:
            print(line)
            return
        tr.ensure_newline()
        tw = getattr(tr, "_tw", None)  # under xdist the progress dots leave the line open
        if tw is not None and tw.width_of_current_line:
            tr.line("")
        tr.write_line(line)

    def pytest_sessionstart(self, session):
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        self.partial.write_text("")  # start fresh, even if an earlier run left a partial file

    def env_prefix(self) -> str:
        """"KERAS_BACKEND=jax " etc.: in a variant process, the variables that select it."""
        if not self.config.getoption("conformance_variant"):
            return ""
        return "".join(f"{k}={shlex.quote(os.environ[k])} " for k in VARIANT_ENV if k in os.environ)

    def repro(self, nodeid: str) -> str:
        """The command that reruns this case: from the checkout, or (an installed package) by
        the absolute path of its suite file, from any directory."""
        from hypothesis import settings

        where = canonical_id(self.config, nodeid)
        if paths.INSTALLED and where.startswith("suites/"):
            where = f"{paths.ROOT}/{where}"
        quoted = "'" + where.replace("'", "'\"'\"'") + "'"
        cmd = (f"{self.env_prefix()}python -m pytest {quoted} -p no:cacheprovider "
               f"--hypothesis-profile={settings.get_current_profile_name()}")
        seed = self.config.getoption("--hypothesis-seed", None)
        cmd += _adapter_args()
        return cmd + (f" --hypothesis-seed={shlex.quote(str(seed))}" if seed is not None else "")

    def _new(self, nodeid: str) -> dict:
        rec = dict.fromkeys(RECORD_KEYS)
        rec.update(id=variant_id(canonical_id(self.config, nodeid), self.config.getoption("conformance_variant")),
                   suite=Path(nodeid.split("::")[0]).stem or nodeid)
        rec["_nodeid"] = nodeid
        return rec

    def pytest_runtest_logreport(self, report):
        rec = self._pending.setdefault(report.nodeid, self._new(report.nodeid))
        added = []
        for name, fields in report.user_properties:
            if name == USER_PROPERTY:
                rec.update(fields)
            elif name == SECTION_PROPERTY:
                added.append(tuple(fields))
            elif name == EXPECTATION_PROPERTY:
                rec["_expectation"] = tuple(fields)
        if added:  # every phase's report carries all properties so far: keep the latest list
            self.sections[rec["id"]] = added
        outcome, reason = _classify(report)
        if outcome == "xfailed" and report.when == "call" and not isinstance(report.longrepr, tuple):
            rec["_measured"] = _error_line(report)  # what the deviating test said, beside the why
        if outcome is not None and rec["outcome"] != "error":  # an error is never downgraded
            rec["outcome"] = outcome
            if outcome != "passed":
                rec["reason"] = reason
        # The teardown report ends a test; xdist reports a crashed worker's test with when="???".
        if report.when not in ("setup", "call"):
            self._finish(self._pending.pop(report.nodeid))

    def pytest_collectreport(self, report):
        # A module that fails to import, or skips itself at import, leaves no test reports.
        if report.failed or report.skipped:
            rec = self._new(report.nodeid or "<collection>")
            outcome, reason = ("error", _error_line(report)) if report.failed else ("skipped", _skip_reason(report))
            rec.update(outcome=outcome, reason=reason)
            self._finish(rec)

    def _finish(self, rec):
        nodeid = rec.pop("_nodeid", rec["id"])
        expectation = rec.pop("_expectation", None)
        measured = rec.pop("_measured", None)
        if expectation is not None and rec["outcome"] in ("xfailed", "xpassed"):
            # The record says why (the expectation's full reason and its finding) and, beside it,
            # what the test measured this time (its own reason, else its failure line).
            _, full, finding = (list(expectation) + [None, None])[:3]
            if rec["reason"] and not rec["reason"].startswith(expect.PREFIX):
                measured = rec["reason"]
            rec["reason"] = full + (f" | measured: {measured}" if measured else "")
            rec["finding"] = rec["finding"] or finding
        if rec["framework"] is None and nodeid in getattr(self.config, "_conformance_reference_only", ()):
            rec["framework"] = "reference"  # a reference-only case: it compares no framework
        if rec["outcome"] is None:  # the call phase never reported (e.g. setup passed, then a crash)
            rec["outcome"] = "error"
        if rec["repro"] is None:
            rec["repro"] = self.repro(nodeid)
        elif self.env_prefix():  # a test's own snippet: say which environment it needs
            rec["repro"] = f"# in an environment with {self.env_prefix().strip()}\n{rec['repro']}"
        self.records[rec["id"]] = rec
        with open(self.partial, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
            f.flush()

    def pytest_keyboard_interrupt(self, excinfo):
        # session.Interrupted is what pytest raises after collection errors or -x: a normal end.
        self.interrupted = not isinstance(excinfo.value, pytest.Session.Interrupted)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        say = self.say
        if self.interrupted or exitstatus == pytest.ExitCode.INTERNAL_ERROR:
            say(f"conformance: run interrupted; {len(self.records)} finished records kept in {self.partial}")
            return
        results = sorted(self.records.values(), key=lambda r: r["id"])  # stable under xdist too
        sections = {}
        for rec_id in sorted(self.sections):
            for name, entry in self.sections[rec_id]:
                sections.setdefault(name, []).append({"id": rec_id, **entry})
        registry_entries = self.registry_section(results)
        if registry_entries:
            sections["registry"] = registry_entries
        write_report_atomic(build_report(results, sections=sections, run=self.run_metadata()), self.path)
        os.remove(self.partial)
        say(f"conformance: {len(self.records)} records written to {self.path}")


WORKER_DESELECTED = "conformance_deselected"  # key of the worker's ids in xdist's workeroutput


def pytest_deselected(items):
    """On an xdist worker (which collects, so deselects, in the controller's stead): keep the
    deselected record ids in `workeroutput`, which the controller's Recorder reads when the
    worker is done (Recorder.pytest_testnodedown)."""
    config = items[0].config if items else None
    if config is None or not hasattr(config, "workeroutput") or not config.getoption("conformance_report"):
        return
    variant = config.getoption("conformance_variant")
    ids = config.workeroutput.setdefault(WORKER_DESELECTED, [])
    ids += [variant_id(item.nodeid, variant) for item in items]
