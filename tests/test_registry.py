"""Self-tests of conformance/adapters/registry.py and the adapter API (conformance/adapters/base.py).

None of these needs a framework: they run in the minimal venv too.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import reference as ref
from conformance.adapters import registry
from conformance.adapters import base
from conformance.adapters.base import AdapterInfo, BaseAdapter, DeviceUnavailable, UnsupportedCase, supports

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("torch", "tensorflow", "keras", "tf_keras", "jax", "jaxlib", "flax", "onnx", "onnxruntime")


def _run_python(code):
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_registry_imports_no_framework():
    """Importing the registry, the adapter API, every adapter module and resolving every factory
    leaves every framework out of sys.modules (a fresh interpreter, so nothing was imported before)."""
    loaded = _run_python(f"""
        import json, sys
        import conformance.adapters.registry as r
        import conformance.adapters, conformance.core.tolerances, conformance.core.adapter_strategies
        after_registry = [m for m in {FRAMEWORKS!r} if m in sys.modules]
        for info in r.adapters():
            r.resolve(info.factory)
        print(json.dumps({{"registry": after_registry,
                          "factories": [m for m in {FRAMEWORKS!r} if m in sys.modules]}}))
    """)
    assert loaded == {"registry": [], "factories": []}


def test_names_are_unique():
    names = [info.name for info in registry.ADAPTERS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("info", registry.ADAPTERS, ids=lambda i: i.name)
def test_entry_is_well_formed(info):
    assert isinstance(info, AdapterInfo)
    assert info.cell in base.CELLS
    assert info.features <= set(base.FEATURES), sorted(info.features - set(base.FEATURES))
    assert "cpu" in info.devices
    factory = registry.resolve(info.factory)
    assert callable(factory), info.factory
    assert registry.get(info.name) is info and registry.info_of(info.name) is info


def test_feature_vocabulary_is_documented():
    """Every feature name is described in base.FEATURES and named in the API docstring."""
    for name, text in base.FEATURES.items():
        assert isinstance(text, str) and text, name
    used = set().union(*(i.features for i in registry.ADAPTERS))
    assert used <= set(base.FEATURES)


@pytest.mark.parametrize("bad", ["no.such.adapter", "torch.nn.lstm", "", "LSTM"])
def test_load_unknown_name_raises_value_error(bad):
    with pytest.raises(ValueError, match="unknown adapter"):
        registry.load(bad)


@pytest.mark.parametrize("spec, match", [
    ("no_such_pkg_xyz.mod:factory", "no module named 'no_such_pkg_xyz'"),
    ("conformance.no_such_module:factory", "no module named 'conformance.no_such_module'"),
    ("conformance.adapters.registry:no_such_object", "has no attribute 'no_such_object'"),
    ("conformance.adapters.registry:ENV_VAR", "expected an AdapterInfo or a factory function"),
    ("a:b:c", "expected 'package.module:function'"),
    ("pkg.mod:", "expected 'package.module:function'"),
    (":obj", "expected 'package.module:function'"),
])
def test_load_bad_spec_raises_value_error(spec, match):
    with pytest.raises(ValueError, match=match):
        registry.load(spec)


def test_adapter_info_validation():
    ok = dict(name="x.LSTM", framework="x", distribution="x", cell="lstm", factory="x.mod:make")
    AdapterInfo(**ok)
    for bad, match in [
        (dict(cell="rnn"), "cell"),
        (dict(features={"dropout"}), "unknown"),
        (dict(features="stacked"), "features"),
        (dict(features={"reset_before"}), "GRU feature"),
        (dict(cell="gru", features={"peephole"}), "LSTM features"),
        (dict(factory="x.mod"), "factory"),
        (dict(devices=()), "devices"),
        (dict(devices="cpu"), "devices"),
        (dict(name=""), "name"),
        (dict(requires="onnx"), "requires"),
        (dict(features={"lengths"}), "padding"),  # lengths without a padding policy
        (dict(padding="zero_output"), "padding"),  # a policy without lengths
        (dict(features={"lengths"}, padding="zeros"), "padding"),
        (dict(options=[("batch_first", True)]), "options"),
    ]:
        with pytest.raises(ValueError, match=match):
            AdapterInfo(**{**ok, **bad})
    info = AdapterInfo(**ok, features=["stacked"], devices=["cpu", "cuda"])
    assert info.features == frozenset({"stacked"}) and info.devices == ("cpu", "cuda")
    info = AdapterInfo(**ok, features={"lengths"}, padding="carry_h", options={"batch_first": True})
    assert info.option("batch_first") is True and info.option("packed", "no") == "no"
    assert hash(info) == hash(replace(info, options={}))  # options do not enter the hash


def test_torch_variants_declare_what_they_do():
    """Every torch module path exists in the six input variants; packed ones take lengths and
    follow torch's zero_output policy; every torch path has gradients."""
    torch_paths = [i for i in registry.ADAPTERS if i.framework == "torch"]
    assert len(torch_paths) == 24
    for info in torch_paths:
        packed = info.option("packed")
        assert packed in (None, "sorted", "unsorted")
        assert ("lengths" in info.features) == (packed is not None) == ("[packed" in info.name)
        assert info.padding == ("zero_output" if packed else None)
        assert ("batch_first" in info.name) == bool(info.option("batch_first"))
        assert "gradients" in info.features


def test_checked_lengths():
    a = NumpyLSTM(replace(OUTSIDE, features=OUTSIDE.features | {"lengths"}, padding="zero_output"))
    assert a.checked_lengths(None, (4, 2, 3)) is None
    assert a.checked_lengths([4, 1], (4, 2, 3)).tolist() == [4, 1]
    for bad, match in [([4], "2 integers"), ([4.0, 1.0], "2 integers"), ([0, 1], "1..4"), ([5, 1], "1..4"),
                       ([[4, 1]], "2 integers")]:
        with pytest.raises(ValueError, match=match):
            a.checked_lengths(bad, (4, 2, 3))
    with pytest.raises(UnsupportedCase, match="lengths"):
        NumpyLSTM(OUTSIDE).checked_lengths([4, 1], (4, 2, 3))


def test_supports_names_missing_features():
    rng = np.random.default_rng(0)
    lstm = registry.get("onnxruntime.LSTM")  # bidirectional, initial_state, peephole
    assert supports(lstm, ref.random_stack(rng, "lstm", 2, 3, 1, True, peephole=True), initial_state=True) == (True, "")
    ok, why = supports(lstm, ref.random_stack(rng, "lstm", 2, 3, 2))
    assert not ok and "stacked" in why
    ok, why = supports(lstm, ref.random_lstm(rng, 2, 3, cell_clip=1.0, forget_bias=1.0))
    assert not ok and "cell_clip" in why and "forget_bias" in why
    ok, why = supports(lstm, ref.random_lstm(rng, 2, 3), dtype="float64")
    assert not ok and "float64" in why
    ok, why = supports(lstm, ref.random_gru(rng, 2, 3))
    assert not ok and "GRU" in why
    gru = registry.get("torch.nn.GRU")
    ok, why = supports(gru, ref.random_gru(rng, 2, 3, reset_after=False))
    assert not ok and "reset_before" in why
    ok, why = supports(registry.get("torch.nn.LSTM"), ref.random_lstm(rng, 2, 3, proj_size=2), dtype="float64")
    assert ok, why


# ------------------------------------------------------------------ outside adapters plug in the same way

class NumpyLSTM(BaseAdapter):
    """An 'outside' adapter: the reference itself, in the working dtype."""

    def forward(self, stack, x, h0=None, c0=None):
        stack, x, h0, c0 = self.prepare(stack, x, h0, c0)
        return ref.run(stack, x, h0, c0, dtype=self.dtype)


OUTSIDE = AdapterInfo(name="tests.NumpyLSTM", framework="numpy", distribution="numpy", cell="lstm",
                      factory="tests.test_registry:make_outside",
                      features=frozenset({"stacked", "bidirectional", "initial_state", "float64"}))


def make_outside(info, *, device="cpu", dtype="float32"):
    return NumpyLSTM(info or OUTSIDE, device=device, dtype=dtype)


def test_outside_adapter_by_info_and_by_factory(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    for spec in ("tests.test_registry:OUTSIDE", "tests.test_registry:make_outside"):
        a = registry.load(spec, dtype="float64")
        assert isinstance(a, base.Adapter) and a.info.name == "tests.NumpyLSTM" and a.dtype == "float64"
        rng = np.random.default_rng(1)
        stack = ref.random_stack(rng, "lstm", 2, 3, 2, True)
        x = rng.normal(size=(4, 2, 2))
        got, want = a.forward(stack, x), ref.run(stack, x)
        np.testing.assert_array_equal(got.y, want.y)
        with pytest.raises(UnsupportedCase, match="peephole"):
            a.forward([[ref.random_lstm(rng, 2, 3, peephole=True)]], x)
    monkeypatch.setenv(registry.ENV_VAR, "tests.test_registry:OUTSIDE")
    assert registry.adapters()[-1] == OUTSIDE and registry.adapters()[:-1] == registry.ADAPTERS
    monkeypatch.setenv(registry.ENV_VAR, "tests.test_registry:OUTSIDE, tests.test_registry:OUTSIDE")
    with pytest.raises(ValueError, match="already registered"):
        registry.adapters()


def test_base_adapter_device_dtype_and_shape_checks():
    info = replace(OUTSIDE, devices=("cpu", "cuda"))
    with pytest.raises(DeviceUnavailable):
        NumpyLSTM(info, device="cuda")  # the base class knows no device but the CPU
    with pytest.raises(ValueError, match="device"):
        NumpyLSTM(info, device="tpu")
    with pytest.raises(ValueError, match="dtype"):
        NumpyLSTM(info, dtype="float16")
    with pytest.raises(UnsupportedCase, match="float64"):
        NumpyLSTM(replace(OUTSIDE, features=frozenset()), dtype="float64")
    a = NumpyLSTM(info)
    rng = np.random.default_rng(2)
    w = ref.random_lstm(rng, 2, 3)
    x = rng.normal(size=(4, 2, 2))
    with pytest.raises(ValueError, match="x: expected shape"):
        a.forward(w, x[..., :1])
    with pytest.raises(ValueError, match="h0: expected shape"):
        a.forward(w, x, h0=np.zeros((1, 3, 3)))
    with pytest.raises(ValueError, match="c0: expected shape"):
        a.forward(w, x, h0=np.zeros((1, 2, 3)), c0=np.zeros((2, 2, 3)))
    got = a.forward(w, x)
    assert got.y.dtype == np.float32 and got.y.shape == (4, 2, 3)


def test_tolerance_formula_and_bad_input():
    from conformance.core import tolerances as T

    assert T.tolerance("float32", 6, 9) == pytest.approx(T.K * 2.0**-23 * 3 * math.sqrt(6))
    assert T.tolerance(np.float64, 1, 4) == pytest.approx(T.K * 2.0**-52 * 2)
    # K covers every measured ratio with a 4x margin (the rule it was chosen by)
    assert all(T.K >= 4 * ratio for _, _, ratio, _ in T.MEASURED.values())
    for args, match in [(("int8", 1, 1), "dtype"), (("float32", 0, 1), "steps"), (("float32", 1, 0), "fan_in"),
                        (("float32", 1.5, 1), "steps"), (("float32", True, 1), "steps")]:
        with pytest.raises(ValueError, match=match):
            T.tolerance(*args)


def test_frameworks_are_the_builtin_paths_top_level_frameworks():
    assert {registry.top_level(i.framework) for i in registry.ADAPTERS} == set(registry.FRAMEWORKS)
    assert registry.top_level("flax.linen") == registry.top_level("flax.nnx") == "flax"
    assert registry.REFERENCE not in registry.FRAMEWORKS


def test_selectable_names_and_check_frameworks():
    mine = replace(registry.get("torch.nn.LSTM"), name="mine.LSTM", framework="mykernel.ops", distribution="mykernel")
    assert registry.selectable(registry.ADAPTERS) == (registry.REFERENCE, *registry.FRAMEWORKS)
    assert registry.selectable((*registry.ADAPTERS, mine))[-1] == "mykernel"
    assert registry.check_frameworks(["torch", "reference"], registry.ADAPTERS) == ["torch", "reference"]
    assert registry.check_frameworks(["mykernel"], (mine,)) == ["mykernel"]
    with pytest.raises(ValueError, match=r"unknown framework 'mykernel'; valid: reference, torch, keras, "
                                         r"tf_keras, tensorflow, flax, jax, onnxruntime;"):
        registry.check_frameworks(["torch", "mykernel"], registry.ADAPTERS)
    with pytest.raises(ValueError, match=r"\('flax.linen' is selected as 'flax'\)"):
        registry.check_frameworks(["flax.linen"], registry.ADAPTERS)


def test_loadable_name():
    """What a repro passes to load(): a built-in's name, an outside path's registering spec."""
    assert registry.loadable_name(registry.get("torch.nn.GRU")) == "torch.nn.GRU"
    spec = "examples.hand_lstm:INFO"
    info = registry.info_of(spec)
    env = {registry.ENV_VAR: f"no_such_module_xyz:INFO, {spec}"}  # a broken spec is skipped here
    assert registry.loadable_name(info, env) == spec
    assert registry.loadable_name(info, {}) == info.name  # registered by no spec: its name
