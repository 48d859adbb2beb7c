"""The declarative registry of adapter paths. Importing it imports no framework.

``ADAPTERS`` holds one `AdapterInfo` per built-in adapter path. Each names its factory as a
"module:function" string, resolved only when the adapter is built, so reading the registry
(collecting the suites, listing the paths, a minimal install without any framework) never
imports torch, TensorFlow, Keras, JAX, Flax or ONNX.

``load(name_or_spec, device="cpu", dtype="float32")`` builds an adapter:

- a registered name, e.g. ``load("torch.nn.LSTM")``;
- an outside spec ``"package.module:object"`` where the object is an `AdapterInfo` (its own
  ``factory`` is then used, exactly as for a built-in path) or a factory function
  ``f(info, *, device, dtype)``, called with ``info=None``, whose adapter carries its own info.

Outside paths join the suites through the environment variable ``RNN_CONFORMANCE_ADAPTERS``
(comma-separated specs of `AdapterInfo` objects): `adapters()` returns the built-ins followed
by those, and the suites parametrize over `adapters()`.
"""
from __future__ import annotations

import importlib
import os

from .adapters.base import AdapterInfo, _check_spec

__all__ = ["ADAPTERS", "ENV_VAR", "adapters", "get", "info_of", "load", "resolve"]

ENV_VAR = "RNN_CONFORMANCE_ADAPTERS"
_A = "conformance.adapters."

ADAPTERS = (
    AdapterInfo(name="torch.nn.LSTM", framework="torch", distribution="torch", cell="lstm",
                devices=("cpu", "cuda"), factory=_A + "torch_nn:make",
                features=frozenset({"stacked", "bidirectional", "initial_state", "projection", "float64"})),
    AdapterInfo(name="torch.nn.GRU", framework="torch", distribution="torch", cell="gru",
                devices=("cpu", "cuda"), factory=_A + "torch_nn:make",
                features=frozenset({"stacked", "bidirectional", "initial_state", "float64"})),
    # Keras 3: the backend is the process's (KERAS_BACKEND); the adapter reports it.
    AdapterInfo(name="keras.layers.LSTM", framework="keras", distribution="keras", cell="lstm",
                factory=_A + "keras_rnn:make",
                features=frozenset({"stacked", "bidirectional", "initial_state"})),
    AdapterInfo(name="keras.layers.GRU", framework="keras", distribution="keras", cell="gru",
                factory=_A + "keras_rnn:make",
                features=frozenset({"stacked", "bidirectional", "initial_state", "reset_before"})),
    AdapterInfo(name="tf.raw_ops.BlockLSTM", framework="tensorflow", distribution="tensorflow-cpu", cell="lstm",
                factory=_A + "tf_block_lstm:make",
                features=frozenset({"initial_state", "peephole", "forget_bias", "cell_clip"})),
    # V2 has no forget_bias attribute: a canonical forget_bias folds into b (exact in reals).
    AdapterInfo(name="tf.raw_ops.BlockLSTMV2", framework="tensorflow", distribution="tensorflow-cpu", cell="lstm",
                factory=_A + "tf_block_lstm:make",
                features=frozenset({"initial_state", "peephole", "cell_clip"})),
    AdapterInfo(name="flax.linen.LSTMCell", framework="flax.linen", distribution="flax", cell="lstm",
                factory=_A + "flax_linen:make", features=frozenset({"initial_state"})),
    AdapterInfo(name="flax.linen.OptimizedLSTMCell", framework="flax.linen", distribution="flax", cell="lstm",
                factory=_A + "flax_linen:make", features=frozenset({"initial_state"})),
    AdapterInfo(name="flax.linen.GRUCell", framework="flax.linen", distribution="flax", cell="gru",
                factory=_A + "flax_linen:make", features=frozenset({"initial_state"})),
    AdapterInfo(name="onnxruntime.LSTM", framework="onnxruntime", distribution="onnxruntime", cell="lstm",
                factory=_A + "onnxruntime_rnn:make", requires=("onnx",),
                features=frozenset({"bidirectional", "initial_state", "peephole"})),
    AdapterInfo(name="onnxruntime.GRU", framework="onnxruntime", distribution="onnxruntime", cell="gru",
                factory=_A + "onnxruntime_rnn:make", requires=("onnx",),
                features=frozenset({"bidirectional", "initial_state", "reset_before"})),
)

_BY_NAME = {info.name: info for info in ADAPTERS}
if len(_BY_NAME) != len(ADAPTERS):  # pragma: no cover - guarded by tests/test_registry.py
    raise RuntimeError("registry: adapter names must be unique")


def resolve(spec):
    """The object a "package.module:attr" spec names; ValueError if it cannot be found.

    Only a missing module or attribute becomes a ValueError: a module that exists but fails
    while importing raises its own error (a broken plugin is a finding, not a bad name)."""
    _check_spec("spec", spec)
    module_name, attr = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is not None and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise ValueError(f"spec {spec!r}: no module named {e.name!r}") from e
        raise
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"spec {spec!r}: module {module_name!r} has no attribute {attr!r}") from None
    return obj


def get(name):
    """The registered AdapterInfo called `name`; ValueError listing the known names otherwise."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown adapter {name!r}; known: {', '.join(_BY_NAME)}; "
                         "or give an outside adapter as 'package.module:object'") from None


def info_of(name_or_spec):
    """AdapterInfo of a registered name or of a spec naming an AdapterInfo."""
    if isinstance(name_or_spec, AdapterInfo):
        return name_or_spec
    if isinstance(name_or_spec, str) and name_or_spec in _BY_NAME:
        return _BY_NAME[name_or_spec]
    if isinstance(name_or_spec, str) and ":" in name_or_spec:
        obj = resolve(name_or_spec)
        if not isinstance(obj, AdapterInfo):
            raise ValueError(f"spec {name_or_spec!r}: expected an AdapterInfo, got {type(obj).__name__}")
        return obj
    return get(name_or_spec)


def load(name_or_spec, *, device="cpu", dtype="float32"):
    """Build an adapter: a registered name, an AdapterInfo, or an outside "package.module:object"
    spec (an AdapterInfo, or a factory ``f(info, *, device, dtype)`` called with info=None)."""
    if isinstance(name_or_spec, AdapterInfo):
        info = name_or_spec
    elif isinstance(name_or_spec, str) and name_or_spec in _BY_NAME:
        info = _BY_NAME[name_or_spec]
    elif isinstance(name_or_spec, str) and ":" in name_or_spec:
        obj = resolve(name_or_spec)
        if isinstance(obj, AdapterInfo):
            info = obj
        elif callable(obj):
            return _checked(obj(None, device=device, dtype=dtype), name_or_spec)
        else:
            raise ValueError(f"spec {name_or_spec!r}: expected an AdapterInfo or a factory function, "
                             f"got {type(obj).__name__}")
    else:
        info = get(name_or_spec)
    factory = resolve(info.factory)
    if not callable(factory):
        raise ValueError(f"{info.name}: factory {info.factory!r} is not callable")
    return _checked(factory(info, device=device, dtype=dtype), info.factory)


def _checked(adapter, where):
    if not isinstance(getattr(adapter, "info", None), AdapterInfo) or not callable(getattr(adapter, "forward", None)):
        raise ValueError(f"{where}: the factory must return an adapter with an AdapterInfo `info` "
                         f"and a `forward` method, got {type(adapter).__name__}")
    return adapter


def adapters(env=None):
    """The built-in ADAPTERS followed by the outside ones named in $RNN_CONFORMANCE_ADAPTERS
    (comma-separated "package.module:INFO" specs); names must stay unique."""
    env = os.environ if env is None else env
    extra = [s.strip() for s in env.get(ENV_VAR, "").split(",") if s.strip()]
    out = list(ADAPTERS)
    for spec in extra:
        info = info_of(spec)
        if info.name in {i.name for i in out}:
            raise ValueError(f"{ENV_VAR}: adapter name {info.name!r} ({spec}) is already registered")
        out.append(info)
    return tuple(out)
