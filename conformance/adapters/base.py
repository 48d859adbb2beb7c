"""The adapter API: how a framework path plugs into the suites.

An *adapter path* is one way of running an LSTM or GRU in one framework (``torch.nn.LSTM``,
``keras.layers.GRU``, ``tf.raw_ops.BlockLSTM`` ...). Each path is declared once as an
`AdapterInfo` (the built-in ones in ``conformance/adapters/registry.py``) and implemented by an object
satisfying the `Adapter` protocol, built by the function that ``AdapterInfo.factory`` names.
An outside implementation (a custom CUDA/Triton kernel, another framework) plugs in exactly
the same way; see ``conformance.adapters.registry.load``.

Writing an adapter::

    # mypkg/my_lstm.py  -- import nothing heavy at module level
    from conformance.adapters.base import AdapterInfo, BaseAdapter
    import reference

    INFO = AdapterInfo(name="mypkg.MyLSTM", framework="mypkg", distribution="mypkg", cell="lstm",
                       features=frozenset({"initial_state"}), factory="mypkg.my_lstm:make")

    class MyLSTM(BaseAdapter):
        def forward(self, stack, x, h0=None, c0=None):
            stack, x, h0, c0 = self.prepare(stack, x, h0, c0)   # checks + cast to self.dtype
            import mypkg                                          # the framework, on use only
            ...
            return reference.Result(y=..., h_n=..., c_n=...)

    def make(info=None, *, device="cpu", dtype="float32"):
        return MyLSTM(info or INFO, device=device, dtype=dtype)

then ``conformance.adapters.registry.load("mypkg.my_lstm:INFO")`` (or ``:make``) builds it, and
``RNN_CONFORMANCE_ADAPTERS=mypkg.my_lstm:INFO pytest suites`` runs every suite against it.

Conventions every adapter follows (the suites rely on them):

- ``forward(stack, x, h0=None, c0=None) -> reference.Result``. ``stack`` holds canonical weights
  (``reference.params``: a list over layers of a list over directions of `LSTMWeights` /
  `GRUWeights`; a bare weights object means one layer, one direction) as NumPy arrays of any
  float dtype; ``x`` is time-major NumPy ``(T, B, I)``; ``h0`` ``(L*D, B, Hout)`` and ``c0``
  ``(L*D, B, H)`` are optional (None: zeros), index ``l*D + d`` as in torch. The adapter casts
  everything to its working dtype (``self.dtype``, "float32" unless asked otherwise) itself.
- It returns NumPy arrays in the reference's shapes: ``y (T, B, D*Hout)`` (both directions
  concatenated, each output at its own time position), ``h_n (L*D, B, Hout)``,
  ``c_n (L*D, B, H)`` for an LSTM, None for a GRU.
- A path declaring "lengths" takes ``forward(..., lengths=)``: ints (B,) in 1..T, right padding;
  it must then behave like ``reference.run(..., lengths=, padding=info.padding)`` (the suites
  pass ``lengths`` only to such paths; `checked_lengths` validates them).
- A path declaring "gradients" implements ``vjp(stack, x, dy, dh_n=None, dc_n=None, h0=None,
  c0=None, lengths=None) -> (reference.Result, reference.Grads)``: the forward result and the
  gradient of ``sum(dy*y) + sum(dh_n*h_n) + sum(dc_n*c_n)`` w.r.t. x, h0, c0 and every weight,
  in the canonical layout (as ``reference.run_vjp``).
- Optionally ``kernel_of(stack, x, h0=None, c0=None, lengths=None) -> str`` names the kernel
  the framework actually ran for that case (e.g. "oneDNN", "native", "cuDNN"); the suites
  record it.
- A path with dropout knobs (``AdapterInfo.dropout``) implements
  ``dropout_session(stack, rates, seed) -> session``: the layer built once with the given
  weights and drop rates (``{knob: p}``, probabilities of dropping, whatever the framework's
  own parametrization), its random state seeded with `seed` the framework's way; then
  ``session(x, h0=None, c0=None, training=True) -> reference.Result`` runs it, successive calls
  continuing the framework's random state. The mask oracles and statistics
  (`conformance.oracles.probe`, `conformance.oracles.fingerprint`) work through it alone.
- A case the path cannot express raises `UnsupportedCase` (a ValueError) naming the feature;
  `supports` tells in advance. A device the machine lacks raises `DeviceUnavailable` when the
  adapter is built; the suites turn it into a skip with its message as the reason.
- ``forward`` and ``vjp``: nothing random, no dropout, inference mode.
"""
from __future__ import annotations

import numbers
import re
from dataclasses import dataclass, field
from typing import Optional, Protocol, Tuple, runtime_checkable

import numpy as np

from reference import Result
from reference.params import GRUWeights, LSTMWeights

from conformance.core import semantics

__all__ = [
    "FEATURES", "PADDINGS", "CELLS", "DTYPES", "AdapterInfo", "Adapter", "BaseAdapter", "DeviceUnavailable",
    "UnsupportedCase", "supports", "required_features", "as_stack", "checked_rates",
]

#: The feature vocabulary. A feature an AdapterInfo declares is one the path can express
#: exactly; every adapter runs one layer, one direction, float32, no initial state.
FEATURES = {
    "stacked": "more than one layer (num_layers > 1)",
    "bidirectional": "two directions per layer; the second runs in reverse over time",
    "initial_state": "h0 (and c0 for an LSTM) given instead of zeros",
    "projection": "LSTM output projection W_proj (torch proj_size): Hout = P < H",
    "peephole": "LSTM peephole weights (i and f peek at c_{t-1}, o at c_t)",
    "forget_bias": "a nonzero LSTM forget_bias held as its own term, unfolded (TF BlockLSTM's "
                   "attribute); layouts that fold it into the bias do not declare it",
    "cell_clip": "LSTM cell state clipped to [-cell_clip, cell_clip] after each update (TF)",
    "reset_before": "GRU reset gate applied before the recurrent matmul (reset_after=False); "
                    "every GRU path computes reset_after=True",
    "float64": "the path can run in float64 (dtype='float64')",
    "lengths": "variable sequence lengths (right padding, 1..T): ``forward(..., lengths=)``; padded "
               "steps follow the path's declared ``padding`` policy (reference.POLICIES)",
    "gradients": "the adapter implements ``vjp``: gradients w.r.t. x, h0, c0 and every weight",
}
#: Reference padding policies an adapter with "lengths" may declare (reference.POLICIES).
PADDINGS = ("zero_output", "repeat_output", "carry_h", "compute")
CELLS = ("lstm", "gru")
DTYPES = ("float32", "float64")
#: A "package.module:object" spec naming an adapter path or factory.
SPEC_PATTERN = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
_LSTM_ONLY = {"projection", "peephole", "forget_bias", "cell_clip"}


class DeviceUnavailable(RuntimeError):
    """The adapter was asked for a device this machine does not have (e.g. CUDA)."""


class UnsupportedCase(ValueError):
    """The case uses a feature the adapter path cannot express."""


def _check_spec(what, spec):
    if not isinstance(spec, str) or not SPEC_PATTERN.match(spec):
        raise ValueError(f"{what}: expected 'package.module:function', got {spec!r}")
    return spec


@dataclass(frozen=True)
class AdapterInfo:
    """Declaration of one adapter path (no framework import needed to read it).

    name          unique, e.g. "torch.nn.LSTM" (used as the test id)
    framework     import name of the framework, e.g. "torch", "flax.linen" (the suites
                  ``require()`` it and skip when it is absent)
    distribution  pip distribution whose version is reported, e.g. "tensorflow-cpu"
    cell          "lstm" or "gru"
    backend       Keras backend the path runs on, None when not a Keras path (the Keras
                  adapters report the process's backend; see their `backend` attribute)
    devices       devices the path can run on, e.g. ("cpu", "cuda")
    features      frozenset of names from `FEATURES`
    factory       "module:function" building the adapter: ``function(info, *, device, dtype)``
    requires      further modules the path imports besides `framework` (e.g. "onnx" to build
                  the model onnxruntime runs); the suites require() them too
    padding       with the "lengths" feature: the reference policy the path follows at padded
                  steps (one of PADDINGS; torch's PackedSequence is "zero_output")
    options       constructor options that make this path a variant of another (e.g. torch's
                  ``{"batch_first": True, "packed": "unsorted"}``); the factory reads them
    dropout       the path's dropout knobs, by the framework's own names (torch nn.LSTM:
                  ("dropout",); Keras LSTM: ("dropout", "recurrent_dropout")); a path with
                  knobs implements ``dropout_session`` (see the module docstring)
    semantics     the dropout semantics the path is meant to have, per knob (or "a+b" for
                  knobs set together): ``{knob: {property: value}}`` in the words the report
                  prints (`conformance.core.semantics`; copy a measured block). The
                  fingerprint suite compares every declared property with the measured one;
                  a knob declared nowhere (here, a ``--semantics`` file, ``expectations/``)
                  is a finding "semantics undeclared", a failure with ``--strict-semantics``.
                  May hold "padded steps" alone for a path without knobs.
    version       the path's own version, for a kernel that is no installed pip
                  distribution (None: the version of `distribution`, if installed)
    """

    name: str
    framework: str
    distribution: str
    cell: str
    factory: str
    backend: Optional[str] = None
    devices: Tuple[str, ...] = ("cpu",)
    features: frozenset = field(default_factory=frozenset)
    requires: Tuple[str, ...] = ()
    padding: Optional[str] = None
    options: dict = field(default_factory=dict, hash=False)
    dropout: Tuple[str, ...] = ()
    semantics: dict = field(default_factory=dict, hash=False)
    version: Optional[str] = None

    def __post_init__(self):
        for attr in ("name", "framework", "distribution"):
            v = getattr(self, attr)
            if not isinstance(v, str) or not v:
                raise ValueError(f"AdapterInfo.{attr}: expected a non-empty string, got {v!r}")
        if self.cell not in CELLS:
            raise ValueError(f"AdapterInfo.cell: expected one of {CELLS}, got {self.cell!r}")
        if self.backend is not None and not isinstance(self.backend, str):
            raise ValueError(f"AdapterInfo.backend: expected a string or None, got {self.backend!r}")
        devices = self.devices
        if isinstance(devices, str) or not devices or not all(isinstance(d, str) and d for d in devices):
            raise ValueError(f"AdapterInfo.devices: expected a non-empty tuple of names, got {devices!r}")
        object.__setattr__(self, "devices", tuple(devices))
        if isinstance(self.features, str):
            raise ValueError(f"AdapterInfo.features: expected a set of names, got the string {self.features!r}")
        feats = frozenset(self.features)
        unknown = sorted(feats - set(FEATURES))
        if unknown:
            raise ValueError(f"AdapterInfo.features: unknown {unknown}; the vocabulary is {sorted(FEATURES)}")
        if self.cell == "gru" and feats & _LSTM_ONLY:
            raise ValueError(f"AdapterInfo.features: {sorted(feats & _LSTM_ONLY)} are LSTM features, cell is 'gru'")
        if self.cell == "lstm" and "reset_before" in feats:
            raise ValueError("AdapterInfo.features: 'reset_before' is a GRU feature, cell is 'lstm'")
        object.__setattr__(self, "features", feats)
        requires = self.requires
        if isinstance(requires, str) or not all(isinstance(r, str) and r for r in requires):
            raise ValueError(f"AdapterInfo.requires: expected a tuple of module names, got {requires!r}")
        object.__setattr__(self, "requires", tuple(requires))
        _check_spec("AdapterInfo.factory", self.factory)
        if ("lengths" in feats) != (self.padding is not None):
            raise ValueError("AdapterInfo.padding: declare a padding policy exactly when the path has the "
                             f"'lengths' feature (features {sorted(feats)}, padding {self.padding!r})")
        if self.padding is not None and self.padding not in PADDINGS:
            raise ValueError(f"AdapterInfo.padding: expected one of {PADDINGS}, got {self.padding!r}")
        if not isinstance(self.options, dict) or not all(isinstance(k, str) for k in self.options):
            raise ValueError(f"AdapterInfo.options: expected a dict with string keys, got {self.options!r}")
        object.__setattr__(self, "options", dict(self.options))
        knobs = self.dropout
        if isinstance(knobs, str) or not all(isinstance(k, str) and k for k in knobs):
            raise ValueError(f"AdapterInfo.dropout: expected a tuple of knob names, got {knobs!r}")
        object.__setattr__(self, "dropout", tuple(knobs))
        if self.version is not None and (not isinstance(self.version, str) or not self.version):
            raise ValueError(f"AdapterInfo.version: expected a non-empty string or None, got {self.version!r}")
        if not isinstance(self.semantics, dict):
            raise ValueError(f"AdapterInfo.semantics: expected {{knob: {{property: value}}}}, got {self.semantics!r}")
        checked = {}
        for knob, props in self.semantics.items():
            parts = knob.split("+") if isinstance(knob, str) else [None]
            if knob != "*" and (not all(k in knobs for k in parts) or len(set(parts)) != len(parts)):
                raise ValueError(f"AdapterInfo.semantics: {knob!r} is not a dropout knob of the path (dropout = "
                                 f"{tuple(knobs)}; 'a+b' for knobs set together, '*' for 'padded steps' alone)")
            where = f"AdapterInfo.semantics[{knob!r}]"
            checked[knob] = semantics.check_declaration(props, self.cell, where)
            if knob == "*" and set(checked[knob]) != {semantics.PADDED}:
                raise ValueError(f"{where}: '*' holds only {semantics.PADDED!r} (the other properties belong to a knob)")
        object.__setattr__(self, "semantics", checked)

    @property
    def plain(self):
        """A path of its own, not an option variant of another ("torch.nn.LSTM[batch_first]")."""
        return "[" not in self.name

    def option(self, key, default=None):
        """The value of constructor option `key` (see `options`), or `default`."""
        return self.options.get(key, default)


@runtime_checkable
class Adapter(Protocol):
    """What the suites call. See the module docstring for the conventions."""

    info: AdapterInfo
    device: str
    dtype: str

    def forward(self, stack, x, h0=None, c0=None) -> Result:  # + lengths= with "lengths"
        ...


# ------------------------------------------------------------------ stack features

def as_stack(stack):
    """A bare weights object or list of directions -> a list of layers of lists of directions."""
    if isinstance(stack, (LSTMWeights, GRUWeights)):
        return [[stack]]
    if not isinstance(stack, (list, tuple)) or not stack:
        raise ValueError("stack: expected a weights object or a non-empty list of layers (lists of directions)")
    return [[layer] if isinstance(layer, (LSTMWeights, GRUWeights)) else list(layer) for layer in stack]


def checked_rates(info, rates, *, one=True, why=""):
    """`rates` ({knob: p}) of a ``dropout_session`` as {knob: float p}: a dict of the path's knobs
    (`info.dropout`), each p a real number in [0, 1] ([0, 1) with ``one=False``, `why` saying
    why 1 is out); a ValueError naming the knob otherwise."""
    if not isinstance(rates, dict):
        raise ValueError(f"{info.name}: rates: expected {{knob: drop probability}} over {info.dropout}, got {rates!r}")
    unknown = sorted(set(rates) - set(info.dropout))
    if unknown:
        raise ValueError(f"{info.name}: unknown dropout knobs {unknown}; it has {info.dropout}")
    out = {}
    for knob, p in rates.items():
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not (0.0 <= float(p) <= 1.0 if one
                                                                         else 0.0 <= float(p) < 1.0):
            raise ValueError(f"{info.name}: {knob}: expected a drop probability p in [0, {'1]' if one else '1)'}"
                             f"{' (' + why + ')' if why else ''}, got {p!r}")
        out[knob] = float(p)
    return out


def required_features(stack, *, initial_state=False, dtype="float32", lengths=False):
    """(cell, frozenset of FEATURES) a case needs: its stack, whether it gives h0/c0 and lengths,
    its dtype."""
    stack = as_stack(stack)
    ws = [w for layer in stack for w in layer]
    if not all(isinstance(w, (LSTMWeights, GRUWeights)) for w in ws):
        raise ValueError("stack: every entry must be LSTMWeights or GRUWeights")
    cells = {w.cell for w in ws}
    if len(cells) != 1:
        raise ValueError("stack: all layers must be the same cell type")
    need = set()
    if len(stack) > 1:
        need.add("stacked")
    if any(len(layer) == 2 for layer in stack):
        need.add("bidirectional")
    if initial_state:
        need.add("initial_state")
    if lengths:
        need.add("lengths")
    if np.dtype(dtype) == np.float64:
        need.add("float64")
    for w in ws:
        if isinstance(w, LSTMWeights):
            if w.W_proj is not None:
                need.add("projection")
            if w.peephole is not None:
                need.add("peephole")
            if w.forget_bias:
                need.add("forget_bias")
            if w.cell_clip is not None:
                need.add("cell_clip")
        elif not w.reset_after:
            need.add("reset_before")
    return cells.pop(), frozenset(need)


def supports(info, stack, *, initial_state=False, dtype="float32", lengths=False):
    """(True, "") if `info` declares every feature the case needs, else (False, reason)."""
    cell, need = required_features(stack, initial_state=initial_state, dtype=dtype, lengths=lengths)
    if cell != info.cell:
        return False, f"{info.name} runs {info.cell.upper()} cells, the stack holds {cell.upper()} weights"
    missing = sorted(need - info.features)
    if missing:
        return False, f"{info.name} does not support {', '.join(missing)}"
    return True, ""


# ------------------------------------------------------------------ a convenient base class

class BaseAdapter:
    """Optional base class: device/dtype checks and `prepare` (validation + cast).

    Subclasses implement ``forward``; they may override ``check_device`` to raise
    `DeviceUnavailable` for a device the machine lacks.
    """

    def __init__(self, info, *, device="cpu", dtype="float32"):
        if not isinstance(info, AdapterInfo):
            raise ValueError(f"info: expected an AdapterInfo, got {type(info).__name__}")
        if device not in info.devices:
            raise ValueError(f"device: {info.name} runs on {info.devices}, got {device!r}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype: expected one of {DTYPES}, got {dtype!r}")
        if dtype == "float64" and "float64" not in info.features:
            raise UnsupportedCase(f"dtype: {info.name} does not support float64")
        self.info = info
        self.device = device
        self.dtype = dtype
        self.check_device()

    def check_device(self):
        if self.device != "cpu":
            raise DeviceUnavailable(f"{self.info.name}: device {self.device!r} is not available")

    @property
    def backend(self):
        return self.info.backend

    def __repr__(self):
        return f"<{type(self).__name__} {self.info.name} device={self.device} dtype={self.dtype}>"

    def prepare(self, stack, x, h0=None, c0=None):
        """Check the case against info.features, validate shapes (through the reference's own
        checks) and cast: returns (stack, x, h0, c0) in self.dtype, stack as layers x directions."""
        stack = as_stack(stack)
        ok, why = supports(self.info, stack, initial_state=h0 is not None or c0 is not None, dtype=self.dtype)
        if not ok:
            raise UnsupportedCase(why)
        from reference.rnn import _as_stack

        dt = np.dtype(self.dtype)
        stack = _as_stack(stack, dt)
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[2] != stack[0][0].input_size or x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"x: expected shape (T, B, {stack[0][0].input_size}), got {x.shape}")
        T, B, _ = x.shape
        n = sum(len(layer) for layer in stack)
        hout, H = stack[0][0].output_size, stack[0][0].hidden_size
        if h0 is not None:
            h0 = np.asarray(h0)
            if h0.shape != (n, B, hout):
                raise ValueError(f"h0: expected shape {(n, B, hout)}, got {h0.shape}")
            h0 = h0.astype(dt)
        if c0 is not None:
            if self.info.cell == "gru":
                raise ValueError("c0: a GRU has no cell state")
            c0 = np.asarray(c0)
            if c0.shape != (n, B, H):
                raise ValueError(f"c0: expected shape {(n, B, H)}, got {c0.shape}")
            c0 = c0.astype(dt)
        return stack, x.astype(dt), h0, c0

    def checked_lengths(self, lengths, shape):
        """`lengths` as an int64 array (B,) with values in 1..T for an input of `shape` (T, B, I),
        or None; UnsupportedCase if the path does not declare "lengths"."""
        if lengths is None:
            return None
        if "lengths" not in self.info.features:
            raise UnsupportedCase(f"{self.info.name} does not support lengths")
        T, B = shape[0], shape[1]
        arr = np.asarray(lengths)
        if arr.shape != (B,) or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"lengths: expected {B} integers (one per batch row), got {lengths!r}")
        if arr.min() < 1 or arr.max() > T:
            raise ValueError(f"lengths: expected values in 1..{T} (the padded length), got {arr.tolist()}")
        return arr.astype(np.int64)

    def forward(self, stack, x, h0=None, c0=None) -> Result:  # pragma: no cover - abstract
        raise NotImplementedError
