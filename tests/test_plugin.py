"""The conformance pytest plugin, run on small inline test files in subprocesses (pytester)."""
import json
import os
from pathlib import Path

import pytest

from conformance.results.report import RECORD_KEYS, load_report, validate_report

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

CASES = """
import numpy as np
import pytest
from conformance.core.frameworks import require

def test_pass(conformance_record):
    conformance_record(framework="torch", max_abs_err=np.float32(2.0 ** -20), tolerance=1e-5, seed=7)
    conformance_record(device="cpu")  # a second call adds to the first

def test_fail(conformance_record):
    conformance_record(feature="recurrent_dropout")
    assert 1 == 2, "values differ\\nsecond line"

def test_skip():
    pytest.skip("no GPU here")

def test_bare_skip():
    pytest.skip()

@pytest.mark.skipif(True, reason="needs CUDA")
def test_skipif():
    pass

def test_require():
    require("no_such_framework_xyz", "NoSuchFramework")

@pytest.mark.xfail(reason="known upstream bug")
def test_xfail():
    assert False

@pytest.mark.xfail(reason="maybe fixed upstream")
def test_xpass():
    pass

@pytest.fixture
def broken():
    raise RuntimeError("setup exploded")

def test_setup_error(broken):
    pass

@pytest.fixture
def bad_teardown():
    yield
    raise RuntimeError("teardown exploded")

def test_teardown_error(bad_teardown, conformance_record):
    conformance_record(feature="state")

def test_custom(conformance_record):
    conformance_record(repro="python repro.py --case 3", suite="custom")

def test_unknown_field(conformance_record):
    conformance_record(colour="red")

def test_bad_value(conformance_record):
    conformance_record(max_abs_err=float("nan"))

@pytest.mark.parametrize("p", ["it's"])
def test_param(p):
    pass
"""


@pytest.fixture
def run(pytester, monkeypatch):
    """Run pytest in a subprocess with the plugin; the report goes to out/report.json."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)

    def _run(*args):
        # An explicit profile: hypothesis itself picks its "ci" profile when CI is set.
        return pytester.runpytest_subprocess("-p", "conformance.entry.plugin", "--conformance-report=out/report.json",
                                             "--hypothesis-profile=default", *args)

    return _run


def records(pytester):
    report = load_report(pytester.path / "out" / "report.json")
    assert validate_report(report) == []
    return {r["id"].split("::")[-1]: r for r in report["results"]}


def partial_lines(pytester):
    return [json.loads(line) for line in (pytester.path / "out" / "report.json.partial.jsonl").read_text().splitlines()]


def test_outcomes_fields_reasons_repro(pytester, run):
    pytester.makepyfile(test_cases=CASES)
    result = run()
    result.assert_outcomes(passed=4, failed=3, skipped=4, xfailed=1, xpassed=1, errors=2)  # test_teardown_error counts as passed and error
    recs = records(pytester)
    assert len(recs) == 14 and all(list(r) == list(RECORD_KEYS) for r in recs.values())
    assert {k: r["outcome"] for k, r in recs.items()} == {
        "test_pass": "passed", "test_fail": "failed", "test_skip": "skipped", "test_bare_skip": "skipped",
        "test_skipif": "skipped",
        "test_require": "skipped", "test_xfail": "xfailed", "test_xpass": "xpassed",
        "test_setup_error": "error", "test_teardown_error": "error", "test_custom": "passed",
        "test_unknown_field": "failed", "test_bad_value": "failed", "test_param[it's]": "passed",
    }
    p = recs["test_pass"]
    assert (p["framework"], p["device"], p["max_abs_err"], p["tolerance"], p["seed"]) == ("torch", "cpu", 2.0 ** -20, 1e-5, 7)
    assert p["suite"] == "test_cases" and p["id"] == "test_cases.py::test_pass" and p["reason"] is None
    assert p["repro"] == "python -m pytest 'test_cases.py::test_pass' -p no:cacheprovider --hypothesis-profile=default"
    assert recs["test_fail"]["reason"] == "AssertionError: values differ"
    assert recs["test_fail"]["feature"] == "recurrent_dropout"
    assert recs["test_skip"]["reason"] == "no GPU here"
    assert recs["test_bare_skip"]["reason"] is None  # so `validate --require-reasons` can flag it
    assert recs["test_skipif"]["reason"] == "needs CUDA"
    assert recs["test_require"]["reason"] == "NoSuchFramework is not installed"
    assert recs["test_xfail"]["reason"] == "known upstream bug"
    assert recs["test_xpass"]["reason"] == "maybe fixed upstream"
    assert recs["test_setup_error"]["reason"] == "RuntimeError: setup exploded"
    assert recs["test_teardown_error"]["reason"] == "RuntimeError: teardown exploded"
    assert recs["test_teardown_error"]["feature"] == "state"
    assert recs["test_custom"]["repro"] == "python repro.py --case 3" and recs["test_custom"]["suite"] == "custom"
    assert "unknown field 'colour'" in recs["test_unknown_field"]["reason"]
    assert "max_abs_err must be finite" in recs["test_bad_value"]["reason"]
    assert "'test_cases.py::test_param[it'\"'\"'s]'" in recs["test_param[it's]"]["repro"]
    # A completed run leaves the report and no partial or temp files.
    assert os.listdir(pytester.path / "out") == ["report.json"]


def test_hypothesis_seed_in_repro(pytester, run):
    pytester.makepyfile(test_one="def test_a():\n    pass\n")
    run("--hypothesis-seed=123")
    assert records(pytester)["test_a"]["repro"].endswith("--hypothesis-profile=default --hypothesis-seed=123")


META = """
import pytest

@pytest.mark.framework("torch")
def test_a():
    pass

@pytest.mark.framework("keras")
def test_k():
    pass

def test_b():
    pass

@pytest.mark.slow
@pytest.mark.framework("torch")
def test_slow():
    pass

@pytest.mark.framework("reference")
@pytest.mark.parametrize("p", ["x y", "z"])
def test_p(p):
    pass
"""


def report_run(pytester):
    report = load_report(pytester.path / "out" / "report.json")
    assert validate_report(report) == []
    return report["run"], [r["id"] for r in report["results"]]


def test_run_metadata_of_a_plain_run(pytester, run):
    pytester.makepyfile(test_meta=META)
    args = ["-k", "not test_b", "--deselect", "test_meta.py::test_p[z]", "-m", "not slow", "--hypothesis-seed=42",
            "--frameworks", "torch,flax", "-p", "no:cacheprovider"]
    result = run(*args)
    result.assert_outcomes(passed=2)
    meta, ids = report_run(pytester)
    assert ids == ["test_meta.py::test_a", "test_meta.py::test_p[x y]"]
    # pytester adds its own --basetemp=... in front
    meta["command"] = [a for a in meta["command"] if not a.startswith("--basetemp=")]
    assert meta == {
        "command": ["pytest", "-p", "conformance.entry.plugin", "--conformance-report=out/report.json",
                    "--hypothesis-profile=default", *args],
        "profile": "default", "seed": "42", "k": "not test_b", "markers": "not slow", "frameworks": ["torch", "flax"],
        "adapters": [], "variant": None, "parts": None,
        "deselected": ["test_meta.py::test_b", "test_meta.py::test_k", "test_meta.py::test_p[z]",
                       "test_meta.py::test_slow"],
    }
    # the summary line stands on its own line, not after pytest's progress line
    assert "conformance: 2 records written to out/report.json" in result.outlines


@pytest.mark.parametrize("extra", [[], ["-n", "2"]])
def test_run_metadata_variant_and_xdist(pytester, run, monkeypatch, extra):
    """A variant suffixes the deselected ids as it does record ids; under xdist the workers
    deselect and the controller still records every deselected id."""
    pytester.makepyfile(test_meta=META)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    result = run("-k", "test_p or test_a", "--conformance-variant=keras-jax", "-p", "no:cacheprovider", *extra)
    result.assert_outcomes(passed=3)
    meta, ids = report_run(pytester)
    assert ids == ["test_meta.py::test_a (keras-jax)", "test_meta.py::test_p[x y] (keras-jax)",
                   "test_meta.py::test_p[z] (keras-jax)"]
    assert meta["variant"] == "keras-jax" and meta["frameworks"] is None and meta["seed"] is None
    assert meta["deselected"] == ["test_meta.py::test_b (keras-jax)", "test_meta.py::test_k (keras-jax)",
                                  "test_meta.py::test_slow (keras-jax)"]
    assert "conformance: 3 records written to out/report.json" in result.outlines


def test_nothing_deselected_is_an_empty_list(pytester, run):
    pytester.makepyfile(test_one="def test_a():\n    pass\n")
    result = run("-q")
    meta, _ = report_run(pytester)
    assert meta["deselected"] == [] and meta["k"] is None and meta["markers"] is None and meta["profile"] == "default"
    assert "conformance: 1 records written to out/report.json" in result.outlines


@pytest.mark.parametrize("stop", ["pytest.exit('stop here')", "os._exit(3)"])
def test_interrupted_run_keeps_partial_records(pytester, run, stop):
    pytester.makepyfile(test_stop=f"""
import os, pytest
def test_a(conformance_record):
    conformance_record(framework="torch")
def test_b():
    pytest.skip("later")
def test_c():
    {stop}
def test_d():
    pass
""")
    out = pytester.path / "out"
    out.mkdir()
    (out / "report.json.partial.jsonl").write_text('{"id": "stale record of an earlier run"}\n')
    result = run()
    assert result.ret != 0
    assert [(r["id"], r["outcome"]) for r in partial_lines(pytester)] == [
        ("test_stop.py::test_a", "passed"), ("test_stop.py::test_b", "skipped")]
    assert partial_lines(pytester)[0]["framework"] == "torch"
    assert os.listdir(out) == ["report.json.partial.jsonl"]  # no report.json, whole or half
    if stop.startswith("pytest.exit"):  # said on a line of its own (os._exit leaves no time to say it)
        assert ("conformance: run interrupted; 2 finished records kept in out/report.json.partial.jsonl"
                in result.outlines), result.outlines


def test_collection_error_and_module_skip_are_recorded(pytester, run):
    pytester.makepyfile(
        test_broken="import no_such_module_xyz\n\ndef test_x():\n    pass\n",
        test_modskip="import pytest\npytest.importorskip('no_such_module_xyz')\n\ndef test_y():\n    pass\n",
    )
    result = run()
    assert result.ret == pytest.ExitCode.INTERRUPTED  # pytest stops after collection errors
    recs = records(pytester)
    assert recs["test_broken.py"]["outcome"] == "error"
    assert "No module named 'no_such_module_xyz'" in recs["test_broken.py"]["reason"]
    assert recs["test_modskip.py"]["outcome"] == "skipped"
    assert "no_such_module_xyz" in recs["test_modskip.py"]["reason"]


def test_records_gathered_under_xdist(pytester, run):
    pytester.makepyfile(test_cases=CASES)
    result = run("-n", "2")
    result.assert_outcomes(passed=4, failed=3, skipped=4, xfailed=1, xpassed=1, errors=2)  # test_teardown_error counts as passed and error
    recs = records(pytester)
    assert len(recs) == 14
    assert recs["test_pass"]["framework"] == "torch" and recs["test_pass"]["seed"] == 7
    assert recs["test_teardown_error"]["outcome"] == "error"
    assert recs["test_xfail"]["reason"] == "known upstream bug"


@pytest.mark.parametrize("env, args, expected", [
    (None, [], "dev 10"),
    ("thorough", [], "thorough 500"),
    ("thorough", ["--hypothesis-profile=ci"], "ci 25"),  # the command line wins over the environment
])
def test_hypothesis_profiles(pytester, monkeypatch, env, args, expected):
    """The root conftest's profiles: dev by default, HYPOTHESIS_PROFILE, --hypothesis-profile."""
    pytester.makeconftest((ROOT / "conftest.py").read_text())
    pytester.makepyfile(test_profile="""
from hypothesis import settings
def test_p(conformance_record):
    conformance_record(reason=f"{settings.get_current_profile_name()} {settings().max_examples}")
""")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    if env:
        monkeypatch.setenv("HYPOTHESIS_PROFILE", env)
    else:
        monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    pytester.runpytest_subprocess("--conformance-report=out/report.json", *args).assert_outcomes(passed=1)
    rec = records(pytester)["test_p"]
    assert rec["reason"] == expected
    assert rec["repro"].endswith(f"--hypothesis-profile={expected.split()[0]}")


def test_require_and_installed_version(tmp_path, monkeypatch):
    from conformance.core.frameworks import installed_version, require

    assert require("json").__name__ == "json"
    with pytest.raises(pytest.skip.Exception, match="NoSuch is not installed"):
        require("no_such_framework_xyz.sub", "NoSuch")
    # Installed but broken (a dependency of it is missing): an error, never a silent skip.
    (tmp_path / "brokenfw").mkdir()
    (tmp_path / "brokenfw" / "__init__.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
        require("brokenfw")
    assert installed_version("pytest") == pytest.__version__
    assert installed_version("no-such-distribution-xyz") is None


# ------------------------------------------------------------------ --adapter

FAKE_ADAPTERS = """
import dataclasses
from conformance.adapters.registry import get
A = dataclasses.replace(get("torch.nn.LSTM"), name="fake.A")
B = dataclasses.replace(get("torch.nn.GRU"), name="fake.B")
SAME_AS_A = dataclasses.replace(get("torch.nn.GRU"), name="fake.A")
TORCH = dataclasses.replace(get("torch.nn.GRU"), name="torch.nn.LSTM")
NOT_INFO = 3
def make(info=None, *, device="cpu", dtype="float32"):
    pass
"""

# Parametrized at collection time, as the suites are: the outside adapters must be there already.
OUTSIDE = """
import os
import pytest
from conformance.adapters import registry

@pytest.mark.parametrize("info", registry.adapters()[len(registry.ADAPTERS):], ids=lambda i: i.name)
def test_outside(info):
    pass

def test_env():
    print("ENV=" + os.environ.get(registry.ENV_VAR, "<unset>"))
"""


@pytest.fixture
def adapter_run(pytester, monkeypatch):
    pytester.makepyfile(fakeads=FAKE_ADAPTERS, test_outside=OUTSIDE)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(pytester.path), str(ROOT)]))
    monkeypatch.delenv("RNN_CONFORMANCE_ADAPTERS", raising=False)

    def _run(*args):
        return pytester.runpytest_subprocess("-p", "conformance.entry.plugin", "-p", "no:cacheprovider", "-s", "-v", *args)

    return _run


def test_adapter_option_repeatable_and_seen_at_collection(adapter_run):
    result = adapter_run("--adapter", "fakeads:A", "--adapter=fakeads:B")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_outside[[]fake.A[]] PASSED*", "*test_outside[[]fake.B[]] PASSED*",
                                 "*ENV=fakeads:A,fakeads:B"])


def test_adapter_option_merges_with_environment(adapter_run, monkeypatch):
    monkeypatch.setenv("RNN_CONFORMANCE_ADAPTERS", "fakeads:B")
    # fakeads:B is already in the variable and fakeads:A is given twice: each is added once
    result = adapter_run("--adapter", "fakeads:A", "--adapter", "fakeads:B", "--adapter", "fakeads:A")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_outside[[]fake.B[]] PASSED*", "*test_outside[[]fake.A[]] PASSED*",
                                 "*ENV=fakeads:B,fakeads:A"])


def test_adapter_specs_in_run_metadata(adapter_run, pytester, monkeypatch):
    monkeypatch.setenv("RNN_CONFORMANCE_ADAPTERS", "fakeads:B")
    adapter_run("--adapter", "fakeads:A", "--conformance-report=out/report.json").assert_outcomes(passed=3)
    assert load_report(pytester.path / "out" / "report.json")["run"]["adapters"] == ["fakeads:B", "fakeads:A"]


def test_adapter_option_under_xdist(adapter_run):
    adapter_run("-n", "2", "--adapter", "fakeads:A", "--adapter", "fakeads:B").assert_outcomes(passed=3)


def test_no_adapter_option_leaves_environment_alone(adapter_run):
    result = adapter_run()
    result.assert_outcomes(passed=1, skipped=1)  # test_outside has no parameters: one skip
    result.stdout.fnmatch_lines(["*ENV=<unset>"])


@pytest.mark.parametrize("spec, message", [
    ("fakeads", "--adapter: expected 'package.module:OBJ' naming an AdapterInfo (e.g. examples.hand_lstm:INFO), got 'fakeads'"),
    ("fake ads:A", "--adapter: expected 'package.module:OBJ'*got 'fake ads:A'"),
    ("no_such_module_xyz:A", "--adapter: spec 'no_such_module_xyz:A': no module named 'no_such_module_xyz'"),
    ("fakeads:C", "--adapter: spec 'fakeads:C': module 'fakeads' has no attribute 'C'"),
    ("fakeads:NOT_INFO", "--adapter: spec 'fakeads:NOT_INFO' names a int, expected an AdapterInfo*"),
    ("fakeads:make", "--adapter: spec 'fakeads:make' names a function, expected an AdapterInfo*"),
    ("fakeads:TORCH", "--adapter: *adapter name 'torch.nn.LSTM' (fakeads:TORCH) is already registered"),
    ("brokenads:A", "--adapter: importing the module of 'brokenads:A' failed (RuntimeError: plugin bug here):"),
])
def test_bad_adapter_spec_is_a_usage_error(pytester, adapter_run, spec, message):
    pytester.makepyfile(brokenads="import os\nraise RuntimeError('plugin bug here')\n")
    result = adapter_run("--adapter", spec, "--conformance-report=out/report.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    if spec.startswith("brokenads"):  # the module's own traceback, not the importer's frames
        result.stderr.fnmatch_lines(["Traceback*", '  File "*brokenads.py", line 2, in <module>',
                                     "RuntimeError: plugin bug here"])
        assert "importlib" not in result.stderr.str() and "registry.py" not in result.stderr.str()
    else:
        assert "Traceback" not in result.stderr.str()
    assert not (pytester.path / "out").exists()  # nothing ran, no report or partial file


def test_duplicate_names_across_adapter_options(adapter_run):
    result = adapter_run("--adapter", "fakeads:A", "--adapter", "fakeads:SAME_AS_A")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --adapter: *adapter name 'fake.A' (fakeads:SAME_AS_A) is already registered"])


def test_adapter_option_restores_environment(pytester, monkeypatch):
    """In-process runs (pytester, IDEs) get the variable back as it was when the run ends."""
    from conformance.adapters import registry

    pytester.makepyfile(fakeads=FAKE_ADAPTERS, test_outside=OUTSIDE)
    monkeypatch.syspath_prepend(str(pytester.path))
    monkeypatch.setenv(registry.ENV_VAR, "fakeads:B")
    pytester.inline_run("-p", "conformance.entry.plugin", "--adapter", "fakeads:A").assertoutcome(passed=3)
    assert os.environ[registry.ENV_VAR] == "fakeads:B"
    monkeypatch.delenv(registry.ENV_VAR)
    pytester.inline_run("-p", "conformance.entry.plugin", "--adapter", "fakeads:A").assertoutcome(passed=2)
    assert registry.ENV_VAR not in os.environ
    assert pytester.inline_run("-p", "conformance.entry.plugin", "--adapter", "fakeads:TORCH").ret == pytest.ExitCode.USAGE_ERROR
    assert registry.ENV_VAR not in os.environ


# ------------------------------------------------------------------ --frameworks

FRAMEWORK_TESTS = """
import pytest
from conformance.adapters import registry

@pytest.mark.parametrize("info", [registry.get("torch.nn.LSTM"), registry.get("keras.layers.LSTM"),
                                  registry.get("flax.nnx.LSTMCell")], ids=lambda i: i.name)
def test_param(info):
    pass

@pytest.mark.framework("torch")
def test_torch():
    pass

@pytest.mark.framework("tensorflow", "keras")
def test_tf_and_keras():
    pass

@pytest.mark.framework("flax.linen")
def test_linen():
    pass

@pytest.mark.framework("reference")
def test_reference():
    pass

@pytest.mark.framework("reference")
@pytest.mark.framework("torch")
def test_reference_and_torch():
    pass

@pytest.mark.parametrize("x", [pytest.param(1, marks=pytest.mark.framework("jax")),
                               pytest.param(2, marks=pytest.mark.framework("onnxruntime"))])
def test_params(x):
    pass

def test_undeclared():
    pass
"""


@pytest.mark.parametrize("chosen, kept", [
    (None, ["test_param[torch.nn.LSTM]", "test_param[keras.layers.LSTM]", "test_param[flax.nnx.LSTMCell]",
            "test_torch", "test_tf_and_keras", "test_linen", "test_reference", "test_reference_and_torch",
            "test_params[1]", "test_params[2]", "test_undeclared"]),
    ("torch", ["test_param[torch.nn.LSTM]", "test_torch", "test_reference", "test_reference_and_torch"]),
    ("keras", ["test_param[keras.layers.LSTM]", "test_reference"]),  # test_tf_and_keras needs tensorflow too
    ("keras, tensorflow", ["test_param[keras.layers.LSTM]", "test_tf_and_keras", "test_reference"]),
    ("flax", ["test_param[flax.nnx.LSTMCell]", "test_linen", "test_reference"]),  # flax.linen, flax.nnx: flax
    ("reference", ["test_reference"]),
    ("jax,onnxruntime", ["test_reference", "test_params[1]", "test_params[2]"]),
])
def test_frameworks_select(pytester, run, chosen, kept):
    pytester.makepyfile(test_fw=FRAMEWORK_TESTS)
    result = run(*([f"--frameworks={chosen}"] if chosen else []))
    result.assert_outcomes(passed=len(kept))
    assert sorted(records(pytester)) == sorted(kept)
    if chosen:
        result.stdout.fnmatch_lines([f"*{11 - len(kept)} deselected*"])


@pytest.mark.parametrize("chosen, message", [
    ("nosuch", "--frameworks: unknown framework 'nosuch'; valid: reference, torch, keras, tf_keras, tensorflow, "
               "flax, jax, onnxruntime; an outside adapter's framework is valid once the adapter is registered*"),
    ("torch,Keras,mykernel", "--frameworks: unknown frameworks 'Keras', 'mykernel'; valid: reference, torch,*"),
    ("flax.linen", "--frameworks: unknown framework 'flax.linen'; valid: *('flax.linen' is selected as 'flax')*"),
    (",", "--frameworks: expected comma-separated framework names, got ','"),
])
def test_unknown_framework_is_a_usage_error(pytester, run, chosen, message):
    pytester.makepyfile(test_fw=FRAMEWORK_TESTS)
    result = run(f"--frameworks={chosen}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "Traceback" not in result.stderr.str() and not (pytester.path / "out").exists()


MINE = """
import dataclasses
from conformance.adapters.registry import get
MINE = dataclasses.replace(get("torch.nn.LSTM"), name="mine.LSTM", framework="mykernel", distribution="mykernel")
"""


def test_outside_adapter_framework_is_selectable(pytester, adapter_run, monkeypatch):
    """An outside adapter's own framework is valid for --frameworks once it is registered."""
    pytester.makepyfile(mineads=MINE)
    result = adapter_run("--adapter", "mineads:MINE", "--adapter", "fakeads:A", "--frameworks", "mykernel")
    result.assert_outcomes(passed=1)  # fake.A is torch, test_env declares nothing
    result.stdout.fnmatch_lines(["*test_outside[[]mine.LSTM[]] PASSED*", "*2 deselected*"])
    monkeypatch.setenv("RNN_CONFORMANCE_ADAPTERS", "mineads:MINE")  # registered by the variable: the same
    adapter_run("--frameworks", "mykernel,torch").assert_outcomes(passed=1)
    monkeypatch.delenv("RNN_CONFORMANCE_ADAPTERS")
    result = adapter_run("--frameworks", "mykernel")  # not registered in this run
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --frameworks: unknown framework 'mykernel'; valid: reference, torch,*"])
