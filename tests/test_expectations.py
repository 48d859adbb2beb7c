"""Self-tests of conformance/results/expectations.py and its pytest integration (plugin)."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conformance.results import expectations as expect

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[1]

ENTRY = """
[[expect]]
test = "test_t.py::test_a*"
framework = "pytest"
versions = ">=1"
outcome = "failed"
reason = "known deviation"
link = "https://example.org/issue/1"
"""


def write(tmp_path, text, name="e.toml"):
    d = tmp_path / "expectations"
    d.mkdir(exist_ok=True)
    (d / name).write_text(textwrap.dedent(text))
    return d


def test_load_and_match(tmp_path):
    (e,) = expect.load_dir(write(tmp_path, ENTRY))
    assert e.matches_id("test_t.py::test_a[x]") and not e.matches_id("test_t.py::test_b")
    assert e.applies("8.0") and not e.applies(None) and not e.applies("0.9")
    assert e.label() == "expected deviation: known deviation [https://example.org/issue/1]"
    assert e.source == "e.toml#1"
    assert expect.load_dir(tmp_path / "nowhere") == []


def test_entry_for(tmp_path):
    entries = expect.load_dir(write(tmp_path, ENTRY))
    (e,) = entries
    assert expect.entry_for(entries, "test_t.py::test_a[x]", {e.framework: "8.0"}, None) is e
    assert expect.entry_for(entries, "test_t.py::test_b", {e.framework: "8.0"}, None) is None
    assert expect.entry_for(entries, "test_t.py::test_a[x]", {e.framework: "0.9"}, None) is None


def test_backend_restricts(tmp_path):
    (e,) = expect.load_dir(write(tmp_path, ENTRY.replace('outcome', 'backend = "jax"\noutcome')))
    assert e.applies("8.0", "jax") and not e.applies("8.0", "tensorflow")


@pytest.mark.parametrize("text, message", [
    ("[[expect]]\ntest = 'x'\n", "missing"),
    (ENTRY.replace('outcome = "failed"', 'outcome = "passed"'), "outcome must be one of"),
    (ENTRY.replace('versions = ">=1"', 'versions = "newest"'), "PEP 440"),
    (ENTRY.replace('link = "https://example.org/issue/1"', 'link = "see the docs"'), "http"),
    (ENTRY + 'colour = "red"\n', "unknown keys"),
    ("[expect]\ntest = 'x'\n", "array of tables"),
    ("[[expect]\n", "not valid TOML"),
    ("foo = 1\n", "unknown top-level"),
    (ENTRY.replace('reason = "known deviation"', 'reason = ""'), "missing"),
])
def test_malformed_files_are_refused(tmp_path, text, message):
    with pytest.raises(expect.ExpectationError, match=message):
        expect.load_dir(write(tmp_path, text))


def test_apply_to_records():
    e = expect.Expectation(test="test_t.py::test_a*", framework="keras", outcome="failed", reason="r", versions="<4")
    recs = [{"id": "test_t.py::test_a", "outcome": "failed", "reason": "boom", "backend": None},
            {"id": "test_t.py::test_a2 (keras-jax)", "outcome": "passed", "reason": None, "backend": "jax"},
            {"id": "test_t.py::test_b", "outcome": "failed", "reason": "boom", "backend": None}]
    out = expect.apply_to_records(recs, [e], {"keras": "3.15.1"})
    assert [r["outcome"] for r in out] == ["xfailed", "xpassed", "failed"]
    assert out[0]["reason"] == "expected deviation: r"
    assert [r["outcome"] for r in expect.apply_to_records(recs, [e], {"keras": "4.0"})] == ["failed", "passed",
                                                                                             "failed"]


TESTS = """
def test_a_fails():
    assert 1 == 2, "the framework deviates"
def test_a_passes():
    pass
def test_b():
    pass
"""


@pytest.fixture
def run(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))

    def go(*args, entry=ENTRY, tests=TESTS):
        pytester.makepyfile(test_t=tests)
        write(pytester.path, entry)
        return pytester.runpytest_subprocess("-p", "conformance.entry.plugin", "-p", "no:cacheprovider",
                                             "--conformance-report=r.json", *args)
    return go


def test_pytest_marks_matching_tests_xfail(pytester, run):
    r = run()
    r.assert_outcomes(passed=1, xfailed=1, xpassed=1)
    recs = {x["id"]: x for x in json.loads((pytester.path / "r.json").read_text())["results"]}
    assert recs["test_t.py::test_a_fails"]["outcome"] == "xfailed"
    assert recs["test_t.py::test_a_fails"]["reason"].startswith("expected deviation: known deviation")
    assert recs["test_t.py::test_a_passes"]["outcome"] == "xpassed"


def test_strict_expectations_fail_an_unexpected_pass(run):
    r = run("--strict-expectations")
    r.assert_outcomes(passed=1, xfailed=1, failed=1)


def test_stale_expectation_is_warned_about(run):
    r = run(entry=ENTRY.replace("test_t.py::test_a*", "test_t.py::test_gone"))
    r.assert_outcomes(passed=2, failed=1)
    assert "matches no collected test" in r.stdout.str()


MARKED = """
import pytest

@pytest.mark.framework("torch")
@pytest.mark.slow
def test_a_fails():
    assert 1 == 2, "the framework deviates"

@pytest.mark.framework("torch")
@pytest.mark.slow
def test_a_passes():
    pass

@pytest.mark.framework("reference")
def test_b():
    pass
"""


@pytest.mark.parametrize("args", [
    ["--frameworks", "reference"], ["-k", "test_b"], ["-m", "not slow"],
    ["--deselect", "test_t.py::test_a_fails", "--deselect", "test_t.py::test_a_passes"],
    ["test_t.py::test_b"],  # the file collected in part: its other tests are not judged
], ids=["frameworks", "k", "m", "deselect", "node id"])
def test_tests_left_out_by_the_user_are_not_stale(run, args):
    r = run(*args, tests=MARKED)
    r.assert_outcomes(passed=1)
    assert "matches no collected test" not in r.stdout.str() + r.stderr.str()


def test_stale_expectation_is_warned_about_whatever_the_selection(run):
    r = run("--frameworks", "reference", "-k", "test_b", tests=MARKED,
            entry=ENTRY + ENTRY.replace("test_t.py::test_a*", "test_t.py::test_gone"))
    r.assert_outcomes(passed=1)
    assert r.stdout.str().count("matches no collected test") == 1
    assert "e.toml#2 (test_t.py::test_gone)" in r.stdout.str()
    r = run("other.py", entry=ENTRY.replace("test_t.py::test_a*", "test_t.py::test_gone"))  # file not collected
    assert "matches no collected test" not in r.stdout.str()


LONG = ("the framework keeps the carried state at a masked step (see its rnn.py: 'Assume the first state is "
        "the previous output'), so the output differs; a second sentence that only the report shows. A third.")


def test_console_shows_one_line_the_report_the_full_reason(pytester, run):
    r = run("-ra", entry=ENTRY.replace("known deviation", LONG))
    r.assert_outcomes(passed=1, xfailed=1, xpassed=1)
    short = ("expected deviation: the framework keeps the carried state at a masked step (see its rnn.py: 'Assume "
             "the first state is the previous... [https://example.org/issue/1]")
    assert expect.Expectation(test="t", framework="f", outcome="failed", reason=LONG,
                              link="https://example.org/issue/1").short_label() == short
    r.stdout.fnmatch_lines([f"XFAIL test_t.py::test_a_fails - {short}", f"XPASS test_t.py::test_a_passes - {short}"])
    assert "second sentence" not in r.stdout.str()
    recs = {x["id"]: x for x in json.loads((pytester.path / "r.json").read_text())["results"]}
    full = f"expected deviation: {LONG} [https://example.org/issue/1]"
    # the record: the full reason, then what the deviating test said (a passing one said nothing)
    assert recs["test_t.py::test_a_fails"]["reason"] == full + " | measured: AssertionError: the framework deviates"
    assert recs["test_t.py::test_a_passes"]["reason"] == full


@pytest.mark.parametrize("reason, short", [
    ("Short. More here.", "Short"),
    ("One clause; another clause.", "One clause"),
    ("a.b.c is fine.", "a.b.c is fine"),
    ("No stop at all", "No stop at all"),
    ("x " * 100, ("x " * 58).strip() + "..."),
    ("a reason whose first sentence is long, with a parenthesis late in it (which runs on past the limit of "
     "one hundred and twenty characters)", "a reason whose first sentence is long, with a parenthesis late in it..."),
])
def test_short_label(reason, short):
    e = expect.Expectation(test="t", framework="f", outcome="failed", reason=reason)
    assert e.short_label() == expect.PREFIX + short
    assert len(e.short_label()) <= len(expect.PREFIX) + expect.SHORT_LIMIT and e.label() == expect.PREFIX + reason


def test_malformed_expectations_are_a_usage_error(run):
    r = run(entry="[[expect]]\ntest = 1\n")
    assert r.ret == 4 and "expectations:" in r.stderr.str()


FINGERPRINT = """
[[fingerprint]]
adapter = {adapter}
knob = "dropout"
framework = "keras"
versions = ">=3.0"
reason = "one cell implementation, two paths"

[fingerprint.properties]
input = "per sequence, gates shared, rows independent, kept value 1/(1-p)"
"""


def test_fingerprint_entry_may_name_several_adapters(tmp_path):
    d = write(tmp_path, FINGERPRINT.format(adapter='["keras.layers.LSTM", "keras.layers.RNN(LSTMCell)"]'), "fp.toml")
    entries = expect.load_fingerprints(d)
    assert [e.adapter for e in entries] == ["keras.layers.LSTM", "keras.layers.RNN(LSTMCell)"]
    assert entries[0].properties == entries[1].properties and entries[0].source == entries[1].source == "fp.toml#1"
    for name in ("keras.layers.LSTM", "keras.layers.RNN(LSTMCell)"):
        assert expect.expected_fingerprint(entries, name, "dropout", "3.15.1").adapter == name
    assert expect.expected_fingerprint(entries, "keras.layers.GRU", "dropout", "3.15.1") is None


@pytest.mark.parametrize("adapter", ['[]', '["a", "a"]', '["a", 3]'])
def test_fingerprint_adapter_list_must_be_distinct_names(tmp_path, adapter):
    d = write(tmp_path, FINGERPRINT.format(adapter=adapter), "fp.toml")
    with pytest.raises(expect.ExpectationError, match="fp.toml#1: adapter must be a name or a list of distinct names"):
        expect.load_fingerprints(d)
