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
by those, and the suites parametrize over `adapters()`. `loadable_name(info)` is what `load()`
rebuilds a path from in a fresh interpreter (repros): a built-in's name, an outside path's spec.

``FRAMEWORKS`` are the framework names the suites declare (pytest mark ``framework(name, ...)``)
and ``--frameworks`` selects: the top-level import names of the built-in paths' frameworks
(``flax.linen`` and ``flax.nnx`` are both ``flax``). `selectable()` adds ``REFERENCE`` (tests
that need only NumPy and the reference) and the frameworks of the outside paths;
`check_frameworks()` refuses any other name, listing the valid ones.
"""
from __future__ import annotations

import importlib
import os

from conformance.adapters.base import AdapterInfo, _check_spec

__all__ = ["ADAPTERS", "ENV_VAR", "FRAMEWORKS", "REFERENCE", "adapters", "check_frameworks", "get", "info_of",
           "load", "loadable_name", "resolve", "selectable", "top_level"]

ENV_VAR = "RNN_CONFORMANCE_ADAPTERS"
# Top-level framework names (AdapterInfo.framework up to its first dot); tests/test_registry.py
# checks that every built-in path's framework is one of them.
FRAMEWORKS = ("torch", "keras", "tf_keras", "tensorflow", "flax", "jax", "onnxruntime")
REFERENCE = "reference"  # the pseudo-framework of tests that need only NumPy and the reference
_A = "conformance.adapters."

# torch: each module declared once, then one path per input variant (see adapters/torch/common.py).
_TORCH = (  # (name, cell, module, own features, dropout knobs)
    ("torch.nn.LSTM", "lstm", "torch.nn", {"projection"}, ("dropout",)),
    ("torch.nn.GRU", "gru", "torch.nn", set(), ("dropout",)),
    ("torch.nn.LSTMCell", "lstm", "torch.cells", set(), ()),  # a Python loop over the cell, per layer
    ("torch.nn.GRUCell", "gru", "torch.cells", set(), ()),
)
_TORCH_VARIANTS = (  # (name suffix, options, extra features)
    ("", {}, set()),
    ("[batch_first]", {"batch_first": True}, set()),
    ("[packed,enforce_sorted=True]", {"packed": "sorted"}, {"lengths"}),
    ("[packed,enforce_sorted=True,batch_first]", {"packed": "sorted", "batch_first": True}, {"lengths"}),
    ("[packed,enforce_sorted=False]", {"packed": "unsorted"}, {"lengths"}),
    ("[packed,enforce_sorted=False,batch_first]", {"packed": "unsorted", "batch_first": True}, {"lengths"}),
)
_TORCH_FEATURES = {"stacked", "bidirectional", "initial_state", "float64", "gradients"}

ADAPTERS = tuple(
    AdapterInfo(name=name + suffix, framework="torch", distribution="torch", cell=cell, devices=("cpu", "cuda"),
                factory=_A + module + ":make", features=frozenset(_TORCH_FEATURES | own | extra),
                padding="zero_output" if "lengths" in extra else None, options=options,
                dropout=knobs if not options else ())  # dropout is fingerprinted on the plain variant
    for name, cell, module, own, knobs in _TORCH for suffix, options, extra in _TORCH_VARIANTS
) + (
    # Keras 3: the backend is the process's (KERAS_BACKEND); the adapter reports it. One entry per
    # (layer, variant); adapters/keras/rnn.py reads the options. Bidirectional is the "bidirectional"
    # feature (keras.layers.Bidirectional around each layer).
    *(AdapterInfo(name=name + suffix, framework="keras", distribution="keras", cell=cell,
                  factory=_A + "keras.rnn:make", options={**kind, **options}, padding=padding,
                  dropout=("dropout", "recurrent_dropout") if not suffix and kind.get("layer") in (None, "rnn") else (),
                  features=frozenset((feats - ({"bidirectional"} if kind.get("layer") == "stacked_cells" else set()))
                                     | ({"reset_before"} if cell == "gru" else set())))
      for name, cell, kind, variants in (
          ("keras.layers.LSTM", "lstm", {}, "all"), ("keras.layers.GRU", "gru", {}, "all"),
          ("keras.layers.RNN(LSTMCell)", "lstm", {"layer": "rnn"}, "base"),
          ("keras.layers.RNN(GRUCell)", "gru", {"layer": "rnn"}, "base"))
      # RNN(StackedRNNCells) (option layer="stacked_cells") is not an entry: with one cell it
      # crashes always on JAX, under a mask on TF (and on torch for LSTMCell), with unroll=True
      # on every backend (finding keras-stacked-rnn-cells-one-cell-state-unnested), and the
      # generic strategies draw one-layer stacks and masks
      for suffix, options, feats, padding in (  # (name suffix, options, features, padding policy)
          ("", {}, {"stacked", "bidirectional", "initial_state", "gradients"}, None),
          # mask= from lengths (right padding): state carried, the previous output repeated
          ("[mask]", {}, {"stacked", "initial_state", "gradients", "lengths"}, "repeat_output"),
          # Bidirectional forces zero_output_for_mask = return_sequences (keras bidirectional.py)
          ("[mask,zero_output_for_mask]", {"zero_output_for_mask": True},
           {"stacked", "bidirectional", "initial_state", "gradients", "lengths"}, "zero_output"),
          ("[unroll,mask,zero_output_for_mask]", {"unroll": True, "zero_output_for_mask": True},
           {"stacked", "bidirectional", "initial_state", "gradients", "lengths"}, "zero_output"))
      # implementation=1 and unroll without a mask are drawn by suites/test_keras_dropout.py and
      # test_keras_coverage.py; here only the variants with their own padding behaviour
      if variants == "all" or (variants == "base" and suffix == "") or (variants == "mask" and suffix == "[mask]")),
    # tf-keras 2 (``import tf_keras``; adapters/keras/tf_keras.py), mask= with zero_output_for_mask=True.
    *(AdapterInfo(name=f"tf_keras.layers.{layer}", framework="tf_keras", distribution="tf-keras", cell=layer.lower(),
                  factory=_A + "keras.tf_keras:make", options={"zero_output_for_mask": True}, padding="zero_output",
                  dropout=("dropout", "recurrent_dropout"),
                  features=frozenset({"stacked", "bidirectional", "initial_state", "gradients", "lengths"} | own))
      for layer, own in (("LSTM", set()), ("GRU", {"reset_before"}))),
    # dropout: tf.nn.dropout on x before the op / on its output after it, as users write it
    # (adapters/tensorflow/block_lstm.py)
    AdapterInfo(name="tf.raw_ops.BlockLSTM", framework="tensorflow", distribution="tensorflow-cpu", cell="lstm",
                factory=_A + "tensorflow.block_lstm:make", dropout=("tf.nn.dropout(x)", "tf.nn.dropout(y)"),
                features=frozenset({"initial_state", "peephole", "forget_bias", "cell_clip"})),
    # V2 has no forget_bias attribute: a canonical forget_bias folds into b (exact in reals).
    AdapterInfo(name="tf.raw_ops.BlockLSTMV2", framework="tensorflow", distribution="tensorflow-cpu", cell="lstm",
                factory=_A + "tensorflow.block_lstm:make", dropout=("tf.nn.dropout(x)", "tf.nn.dropout(y)"),
                features=frozenset({"initial_state", "peephole", "cell_clip"})),
    # TensorFlow's frozen-tf.keras cell wrapper around a Keras 3 LSTMCell, stepped by hand (it runs in no
    # Keras 3 RNN layer; adapters/tensorflow/dropout_wrapper.py). TensorFlow's code, so framework "tensorflow"
    # (not re-run per Keras backend); Keras 3 is required and must be on its TensorFlow backend: on another
    # backend the adapter raises BackendUnavailable, a skip with its reason. Only what it expresses exactly:
    # one layer, one direction, float32, [h0, c0]. variational_recurrent=True is no knob: its mask is drawn once
    # at construction (finding tf-dropout-wrapper-variational-mask-fixed-at-construction; test_tf_dropout_wrapper).
    AdapterInfo(name="tf.nn.RNNCellDropoutWrapper(keras.layers.LSTMCell)", framework="tensorflow",
                distribution="tensorflow-cpu", cell="lstm", backend="tensorflow", requires=("keras",),
                factory=_A + "tensorflow.dropout_wrapper:make", features=frozenset({"initial_state"}),
                dropout=("input_keep_prob", "state_keep_prob", "output_keep_prob")),
    # flax.linen: nn.RNN per direction, nn.Bidirectional for two, layers composed (adapters/flax/linen.py);
    # no "lengths": nn.RNN's seq_lengths follows no reference policy (suites/test_flax_rnn.py).
    *(AdapterInfo(name=f"flax.linen.{cell}", framework="flax.linen", distribution="flax", cell=kind,
                  factory=_A + "flax.linen:make", options={"cell": cell},
                  features=frozenset({"stacked", "bidirectional", "initial_state", "gradients"}),
                  # no dropout argument in flax: nn.Dropout on x_t / on h_(t-1) inside a custom cell
                  # (adapters/flax/linen.py DROPOUT_KNOBS, dropout_session)
                  dropout=("nn.Dropout(x_t)", "nn.Dropout(h_t-1)"))
      for cell, kind in (("LSTMCell", "lstm"), ("OptimizedLSTMCell", "lstm"), ("GRUCell", "gru"))),
    # flax.nnx: nnx.RNN / nnx.Bidirectional (adapters/flax/nnx.py). The nnx GRUCell has no b_hn, so it
    # cannot take the suites' GRU weights; suites/test_flax_rnn.py covers it.
    *(AdapterInfo(name=f"flax.nnx.{cell}", framework="flax.nnx", distribution="flax", cell="lstm",
                  factory=_A + "flax.nnx:make", options={"cell": cell},
                  features=frozenset({"stacked", "bidirectional", "initial_state", "gradients"}))
      for cell in ("LSTMCell", "OptimizedLSTMCell")),
    # onnxruntime: one-node models (adapters/onnxruntime/rnn.py); sequence_lens zero-fills padded outputs.
    # layout=1 is refused by the CPU kernels (suites/test_onnxruntime_rnn.py), so no variant here.
    AdapterInfo(name="onnxruntime.LSTM", framework="onnxruntime", distribution="onnxruntime", cell="lstm",
                factory=_A + "onnxruntime.rnn:make", requires=("onnx",), padding="zero_output",
                features=frozenset({"bidirectional", "initial_state", "peephole", "lengths"})),
    AdapterInfo(name="onnxruntime.GRU", framework="onnxruntime", distribution="onnxruntime", cell="gru",
                factory=_A + "onnxruntime.rnn:make", requires=("onnx",), padding="zero_output",
                features=frozenset({"bidirectional", "initial_state", "reset_before", "lengths"})),
    # jax.experimental.rnn.lstm_ref: the pure-JAX CPU reference of the cuDNN-only lstm, whose
    # CUDA run is suites/test_jax_experimental_rnn.py (the registry requires a "cpu" device).
    AdapterInfo(name="jax.experimental.rnn.lstm_ref", framework="jax", distribution="jax", cell="lstm",
                factory=_A + "jax.experimental_rnn:make", padding="zero_output", requires=("jax.experimental.rnn",),
                features=frozenset({"stacked", "bidirectional", "initial_state", "lengths", "gradients"})),
)

_BY_NAME = {info.name: info for info in ADAPTERS}
if len(_BY_NAME) != len(ADAPTERS):  # pragma: no cover - guarded by tests/test_registry.py
    raise RuntimeError("registry: adapter names must be unique")


def top_level(framework):
    """The name --frameworks selects a framework by: "flax.linen" -> "flax"."""
    return framework.split(".")[0]


def selectable(infos=None):
    """Every name --frameworks accepts: REFERENCE, FRAMEWORKS, then the top-level frameworks of
    the outside paths among `infos` (default: `adapters()`, which reads $RNN_CONFORMANCE_ADAPTERS)."""
    infos = adapters() if infos is None else infos
    return tuple(dict.fromkeys((REFERENCE, *FRAMEWORKS, *(top_level(i.framework) for i in infos))))


def check_frameworks(names, infos=None):
    """`names` as a list if every one is in `selectable(infos)`; else ValueError naming the
    unknown ones and listing the valid names. A dotted name ("flax.linen") is refused with the
    top-level name to use instead."""
    names = list(names)
    valid = selectable(infos)
    unknown = [n for n in names if n not in valid]
    if unknown:
        hints = [f"{n!r} is selected as {top_level(n)!r}" for n in unknown if top_level(n) in valid]
        raise ValueError(f"unknown framework{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                         f"valid: {', '.join(valid)}" + (f" ({'; '.join(hints)})" if hints else "")
                         + "; an outside adapter's framework is valid once the adapter is registered "
                           "(--adapter or $" + ENV_VAR + ")")
    return names


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


def _env_specs(env):
    return [s.strip() for s in env.get(ENV_VAR, "").split(",") if s.strip()]


def loadable_name(info, env=None):
    """What `load()` rebuilds path `info` from in a fresh interpreter, for repros: the name of a
    built-in path, the "package.module:INFO" spec that registered an outside one through
    $RNN_CONFORMANCE_ADAPTERS (what --adapter got); the name if no spec registered it."""
    if info.name in _BY_NAME:
        return info.name
    env = os.environ if env is None else env
    for spec in _env_specs(env):
        try:
            if info_of(spec).name == info.name:
                return spec
        except Exception:  # noqa: BLE001 - a broken spec is adapters()'s to report, not a repro's
            continue
    return info.name


def adapters(env=None):
    """The built-in ADAPTERS followed by the outside ones named in $RNN_CONFORMANCE_ADAPTERS
    (comma-separated "package.module:INFO" specs); names must stay unique."""
    env = os.environ if env is None else env
    out = list(ADAPTERS)
    for spec in _env_specs(env):
        info = info_of(spec)
        if info.name in {i.name for i in out}:
            raise ValueError(f"{ENV_VAR}: adapter name {info.name!r} ({spec}) is already registered")
        out.append(info)
    return tuple(out)
