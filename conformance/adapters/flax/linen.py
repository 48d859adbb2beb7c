"""flax.linen ``nn.RNN(cell)`` with ``nn.LSTMCell``, ``nn.OptimizedLSTMCell`` or ``nn.GRUCell``.

float32 (JAX's default; float64 would need the process-wide ``jax_enable_x64`` switch), CPU.
One direction is ``nn.RNN(cell, time_major=True, return_carry=True)``; two directions are
``nn.Bidirectional(nn.RNN(cell), nn.RNN(cell), time_major=True, return_carry=True)`` (its
backward RNN runs ``reverse=True, keep_order=True``); a stack is those layers applied one
after the other, each with its own parameters, as a user composes them (flax has no
multi-layer RNN module). The carry is ``(c, h)`` for the LSTM cells and ``h`` for the GRU cell
and goes in through ``initial_carry`` (absent: the cell's own zeros). Parameters come from
``reference.layouts.to_flax_lstm / to_flax_gru`` under ``cell`` (``forward_rnn/cell`` and
``backward_rnn/cell`` when bidirectional); each layer's tree is checked once against
``init``'s shapes (once per number of directions). Option ``time_major=False`` hands flax batch-major (B, T, I) input instead.

``vjp`` differentiates the same composed function with ``jax.vjp``; parameter gradients come
back through ``from_flax_*`` and are spread onto the canonical fields that were folded
together (`canonical_grads`).

Dropout (``dropout_session``; knobs `DROPOUT_KNOBS`): flax has no dropout argument, so the knobs
are what a user writes inside a custom cell run by nn.RNN: "nn.Dropout(x_t)" (on the cell's
input) and "nn.Dropout(h_t-1)" (on the incoming hidden state). The stack is one module applied
once per call with ``rngs={'dropout': key}``, each layer
``nn.RNN(cell, split_rngs={'params': False, 'dropout': True})``: nn.RNN's default split_rngs,
``{'params': False}``, passes no 'dropout' stream into the scan at all (an nn.Dropout in the cell
raises InvalidRngError), so the user must name it; True gives a fresh mask per step. Each layer
and direction draws its own masks (flax derives make_rng streams from the module path). The
key of training call n is ``jax.random.fold_in(jax.random.key(seed), n)`` (the flax dropout
guide's ``fold_in(dropout_key, state.step)``); evaluation calls (deterministic=True) take no step.

Variable lengths (``seq_lengths``) are NOT declared: nn.RNN computes straight through the
padding (outputs at padded steps are not zeroed, as its docstring says) while the returned
carry is the state at each row's last valid step, which matches no reference policy; see
``suites/test_flax_rnn.py``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from reference import Grads, Result, layouts

from conformance.adapters.base import BaseAdapter, as_stack, checked_rates
from conformance.adapters.jax.device import jax_device, on_device

CELLS = {"flax.linen.LSTMCell": "LSTMCell", "flax.linen.OptimizedLSTMCell": "OptimizedLSTMCell",
         "flax.linen.GRUCell": "GRUCell"}


def shapes(tree):
    """The shapes of a nested mapping of arrays (for comparing parameter trees; FrozenDicts, nnx
    pure dicts and eval_shape's ShapeDtypeStructs too)."""
    return {k: shapes(v) if isinstance(v, Mapping) else tuple(np.shape(v)) for k, v in tree.items()}


def canonical_grads(w, g):
    """Gradients `g` (canonical weights read back from a flax layout, biases folded) spread
    onto the fields of `w`: a folded bias's gradient is each folded field's gradient."""
    if w.cell == "lstm":
        db = g.b_h if g.b_h is not None else g.b_x
        return replace(w, W=g.W, R=g.R, b_x=None if w.b_x is None else db, b_h=None if w.b_h is None else db)
    H = w.hidden_size
    db_x = g.b_x
    db_hn = np.zeros(H) if g.b_h is None else g.b_h[2 * H:]
    db_h = np.concatenate([db_x[:2 * H], db_hn])  # b_h[r], b_h[z] were folded into the input side
    return replace(w, W=g.W, R=g.R, b_x=None if w.b_x is None else db_x, b_h=None if w.b_h is None else db_h)


def to_carry(lstm, h, c):
    """A flax cell carry from h (B, H) and c (B, H): (c, h) for the LSTM cells, h for a GRU."""
    return (c, h) if lstm else h


def from_carry(lstm, carry):
    """(h, c) of a flax cell carry (c None for a GRU)."""
    if lstm:
        c, h = carry
        return h, c
    return carry, None


class JaxStack:
    """The framework-neutral half of a flax adapter: a stack of layers composed in JAX.

    Subclasses give ``layer_params(w_row)`` (a layer's parameters as a pytree of float32
    arrays), ``apply_layer(l, params, x, carry)`` -> (carry, y) (carry None: the layer's own
    zeros; a pair (forward, backward) for two directions) and ``grads_of(w_row, g)`` -> the
    canonical weights' gradients."""

    lstm = True
    time_major = True

    def compose(self, params, x, h0, c0, D):
        """y (T, B, D*H), h_n, c_n of the layers applied in turn (h0 None: own zeros)."""
        import jax.numpy as jnp

        hs, cs = [], []
        for l, p in enumerate(params):
            carry = None
            if h0 is not None:
                carries = [to_carry(self.lstm, h0[l * D + d], None if c0 is None else c0[l * D + d])
                           for d in range(D)]
                carry = carries[0] if D == 1 else tuple(carries)
            xin = x if self.time_major else jnp.swapaxes(x, 0, 1)
            carry, y = self.apply_layer(l, p, xin, carry)
            x = y if self.time_major else jnp.swapaxes(y, 0, 1)
            for final in ([carry] if D == 1 else list(carry)):
                h, c = from_carry(self.lstm, final)
                hs.append(h)
                cs.append(c)
        return x, jnp.stack(hs), (jnp.stack(cs) if self.lstm else None)

    def check_device(self):
        """"cuda": DeviceUnavailable unless JAX sees a GPU (`conformance.adapters.jax.device`)."""
        if self.device == "cuda":
            jax_device("cuda", self.info.name)
        else:
            super().check_device()

    def run(self, stack, x, h0, c0, cotangents=None):
        """(Result, Grads or None) for a prepared stack (float32 arrays) on the adapter's device
        (the host CPU for "cpu", even where JAX's default device is a GPU)."""
        with on_device(self.device, self.info.name):  # on a GPU also no TF32
            return self._run_here(stack, x, h0, c0, cotangents)

    def _run_here(self, stack, x, h0, c0, cotangents=None):
        """`run` on JAX's current default device; one jitted function per stack structure, so a
        shape seen before is not compiled again."""
        import jax
        import jax.numpy as jnp

        D = len(stack[0])
        params = [self.layer_params(row) for row in stack]
        T, B, _ = x.shape
        n, H = len(stack) * D, stack[0][0].hidden_size
        zeros = lambda: np.zeros((n, B, H), np.float32)  # noqa: E731
        if cotangents is None:
            if h0 is None and c0 is None:  # the layers' own zero carries
                y, h_n, c_n = self._jitted("fwd0", D)(params, jnp.asarray(x))
            else:
                h0 = zeros() if h0 is None else h0
                c0 = (zeros() if c0 is None else c0) if self.lstm else None
                y, h_n, c_n = self._jitted("fwd", D)(params, jnp.asarray(x), jnp.asarray(h0), _opt(c0))
            return Result(y=np.asarray(y), h_n=np.asarray(h_n), c_n=_np(c_n)), None
        h0 = zeros() if h0 is None else h0
        c0 = (zeros() if c0 is None else c0) if self.lstm else None
        dy, dh_n, dc_n = cotangents
        cot = (np.asarray(dy, np.float32), np.zeros((n, B, H), np.float32) if dh_n is None else np.asarray(dh_n, np.float32),
               None if not self.lstm else (zeros() if dc_n is None else np.asarray(dc_n, np.float32)))
        (y, h_n, c_n), (dparams, dx, dh0, dc0) = self._jitted("vjp", D)(
            params, jnp.asarray(x), jnp.asarray(h0), _opt(c0), jax.tree_util.tree_map(jnp.asarray, cot))
        weights = [self.grads_of(row, jax.tree_util.tree_map(np.asarray, g)) for row, g in zip(stack, dparams)]
        return (Result(y=np.asarray(y), h_n=np.asarray(h_n), c_n=_np(c_n)),
                Grads(dx=np.asarray(dx), dh0=np.asarray(dh0), dc0=_np(dc0), weights=weights))

    def _jitted(self, kind, D):
        """jax.jit of the forward (with or without initial state) or forward + vjp, per D."""
        import jax

        cache = self.__dict__.setdefault("_jit_cache", {})
        if (kind, D) not in cache:
            if kind == "fwd0":
                fn = lambda p, x: self.compose(p, x, None, None, D)  # noqa: E731
            elif kind == "fwd":
                fn = lambda p, x, h, c: self.compose(p, x, h, c, D)  # noqa: E731
            else:
                def fn(p, x, h, c, cot):
                    out, pull = jax.vjp(lambda *a: self.compose(*a, D), p, x, h, c)
                    return out, pull(cot)
            cache[(kind, D)] = jax.jit(fn)
        return cache[(kind, D)]


def _opt(a):
    import jax.numpy as jnp

    return None if a is None else jnp.asarray(a)


def _np(a):
    return None if a is None else np.asarray(a)


class FlaxLinenRNN(JaxStack, BaseAdapter):
    def __init__(self, info, *, device="cpu", dtype="float32"):
        super().__init__(info, device=device, dtype=dtype)
        self.cell_name = info.option("cell") or CELLS.get(info.name) or (
            "GRUCell" if info.cell == "gru" else "LSTMCell")
        self.lstm = info.cell == "lstm"
        self.time_major = bool(info.option("time_major", True))
        self._checked = set()

    def forward(self, stack, x, h0=None, c0=None, lengths=None):
        self.checked_lengths(lengths, np.shape(x))  # UnsupportedCase: "lengths" is not declared
        stack, x, h0, c0 = self.prepare(stack, x, h0, c0)
        return self.run(stack, x, h0, c0)[0]

    def vjp(self, stack, x, dy, dh_n=None, dc_n=None, h0=None, c0=None, lengths=None):
        self.checked_lengths(lengths, np.shape(x))
        stack, x, h0, c0 = self.prepare(stack, x, h0, c0)
        return self.run(stack, x, h0, c0, cotangents=(dy, dh_n, dc_n))

    def module(self, H, D):
        """The flax module of one layer: nn.RNN, or nn.Bidirectional of two for D = 2."""
        from flax import linen as nn

        cell = lambda: getattr(nn, self.cell_name)(features=H)  # noqa: E731
        if D == 1:
            return nn.RNN(cell(), time_major=self.time_major, return_carry=True)
        return nn.Bidirectional(nn.RNN(cell()), nn.RNN(cell()), time_major=self.time_major, return_carry=True)

    def layer_params(self, row):
        to = layouts.to_flax_lstm if self.lstm else layouts.to_flax_gru
        trees = [to(w, dtype=np.float32)["params"] for w in row]
        if len(row) == 1:
            return {"cell": trees[0]}
        return {"forward_rnn": {"cell": trees[0]}, "backward_rnn": {"cell": trees[1]}}

    def dropout_layer_params(self, row):
        """A layer's parameters under the dropout cell (the flax cell is its submodule "rnn_cell")."""
        wrap = lambda tree: {"rnn_cell": tree}  # noqa: E731
        p = self.layer_params(row)
        if "cell" in p:
            return {"cell": wrap(p["cell"])}
        return {d: {"cell": wrap(p[d]["cell"])} for d in ("forward_rnn", "backward_rnn")}

    def apply_layer(self, l, params, x, carry):
        rnn = self.module(params_hidden(params), 1 if "cell" in params else 2)
        self._check_tree(rnn, params, x)
        return rnn.apply({"params": params}, x, initial_carry=carry)

    def dropout_session(self, stack, rates, seed):
        """`FlaxDropoutSession`: ``stack`` under nn.RNN with a custom cell holding nn.Dropout on
        x_t ("nn.Dropout(x_t)") and on h_(t-1) ("nn.Dropout(h_t-1)") at ``rates`` ({knob: p}, a
        knob left out is 0), ``split_rngs=DROPOUT_SPLIT_RNGS``, the dropout key
        ``jax.random.key(seed)`` folded with the training step (see the session)."""
        bad = sorted(set(self.info.dropout) - set(DROPOUT_KNOBS))
        if bad:
            raise ValueError(f"{self.info.name}: AdapterInfo.dropout names {bad}, which this adapter does not "
                             f"implement (it implements {tuple(DROPOUT_KNOBS)})")
        if not self.info.dropout:
            raise ValueError(f"{self.info.name}: no dropout knobs declared (AdapterInfo.dropout)")
        return FlaxDropoutSession(self, stack, rates, seed)

    def _dropout_jitted(self, rates, L, D, H, state):
        """jax.jit of the dropout stack's apply for ``rates`` (None: evaluation, deterministic),
        L layers of D directions of H units, with or without an initial state; other shapes retrace."""
        import jax
        import jax.numpy as jnp

        cache = self.__dict__.setdefault("_dropout_jit", {})
        key = (None if rates is None else tuple(sorted(rates.items())), L, D, H, state)
        if key in cache:
            return cache[key]

        def fn(params, x, h0, c0, dropout_key, step):
            module = dropout_stack_module(self.cell_name, H, D, rates or {},
                                          deterministic=rates is None, time_major=self.time_major)
            carries = [None] * L
            if state:
                carries = []
                for l in range(L):
                    cs = [to_carry(self.lstm, h0[l * D + d], None if c0 is None else c0[l * D + d]) for d in range(D)]
                    carries.append(cs[0] if D == 1 else tuple(cs))
            rngs = {} if rates is None else {"dropout": jax.random.fold_in(dropout_key, step)}
            finals, y = module.apply({"params": params}, x, carries, rngs=rngs)
            hs, cs = [], []
            for carry in finals:
                for final in ([carry] if D == 1 else list(carry)):
                    h, c = from_carry(self.lstm, final)
                    hs.append(h)
                    cs.append(c)
            return y, jnp.stack(hs), (jnp.stack(cs) if self.lstm else None)

        def checked(params, x, h0, c0, dropout_key, step):
            self._check_dropout_tree(params, x, L, D, H)
            return jitted(params, x, h0, c0, dropout_key, step)

        jitted = jax.jit(fn)
        cache[key] = checked
        return checked

    def _check_dropout_tree(self, params, x, L, D, H):
        """Once per (layers, directions): the session's parameter tree must be the one flax's init
        of the dropout stack builds (traced with every nn.Dropout deterministic)."""
        import jax

        key = ("dropout", L, D)
        if key in self._checked:
            return
        module = dropout_stack_module(self.cell_name, H, D, {}, deterministic=True, time_major=self.time_major)
        want = jax.eval_shape(module.init, jax.random.key(0), jax.ShapeDtypeStruct(x.shape, x.dtype), [None] * L)
        if shapes(dict(want["params"])) != shapes(params):
            raise RuntimeError(f"{self.info.name}: dropout stack's parameter tree differs from flax's: "
                               f"{shapes(dict(want['params']))} vs {shapes(params)}")
        self._checked.add(key)

    def grads_of(self, row, g):
        frm = layouts.from_flax_lstm if self.lstm else layouts.from_flax_gru
        trees = [g["cell"]] if "cell" in g else [g["forward_rnn"]["cell"], g["backward_rnn"]["cell"]]
        return [canonical_grads(w, frm(t)) for w, t in zip(row, trees)]

    def _check_tree(self, rnn, params, x):
        """Once per number of directions: our parameter tree must be the one flax's init builds
        (init is traced, not run; its cost is in every new shape, so it is not repeated)."""
        import jax

        key = "cell" in params
        if key in self._checked:
            return
        want = jax.eval_shape(rnn.init, jax.random.key(0), jax.ShapeDtypeStruct(x.shape, x.dtype))["params"]
        if shapes(dict(want)) != shapes(params):
            raise RuntimeError(f"{self.info.name}: parameter tree differs from flax's: "
                               f"{shapes(dict(want))} vs {shapes(params)}")
        self._checked.add(key)


def params_hidden(params):
    """The hidden size of a layer's parameter tree (from any hidden-side kernel)."""
    cell = params["cell"] if "cell" in params else params["forward_rnn"]["cell"]
    first = cell["hi"] if "hi" in cell else cell["hr"]
    return first["kernel"].shape[0]


def make(info, *, device="cpu", dtype="float32"):
    """Factory for the flax.linen paths (cell from option "cell" or the name)."""
    return FlaxLinenRNN(info, device=device, dtype=dtype)


# ------------------------------------------------------------------ nn.RNN's own knobs (suites/test_flax_rnn.py)

def rnn_call(cell_name, w, x, h0=None, c0=None, **knobs):
    """One direction of ``nn.RNN(nn.<cell_name>, time_major=True)`` with canonical weights `w`
    (rounded to float32) on time-major `x`, initial state h0 / c0 (B, H) (None: zeros), and
    nn.RNN's call knobs (``seq_lengths``, ``reverse``, ``keep_order``, ``return_carry``).
    Returns (h_n, c_n, y) as NumPy, h_n / c_n None without return_carry."""
    import jax.numpy as jnp
    from flax import linen as nn

    lstm = w.cell == "lstm"
    T, B, _ = np.shape(x)
    H = w.hidden_size
    h0 = np.zeros((B, H)) if h0 is None else h0
    c0 = np.zeros((B, H)) if c0 is None else c0
    params = (layouts.to_flax_lstm if lstm else layouts.to_flax_gru)(w, dtype=np.float32)["params"]
    f32 = lambda a: jnp.asarray(np.asarray(a, np.float32))  # noqa: E731
    if knobs.get("seq_lengths") is not None:
        knobs["seq_lengths"] = jnp.asarray(np.asarray(knobs["seq_lengths"], np.int32))
    rnn = nn.RNN(getattr(nn, cell_name)(features=H), time_major=True)
    out = rnn.apply({"params": {"cell": params}}, f32(x), initial_carry=to_carry(lstm, f32(h0), f32(c0)), **knobs)
    if not knobs.get("return_carry"):
        return None, None, np.asarray(out)
    carry, y = out
    h, c = from_carry(lstm, carry)
    return np.asarray(h), None if c is None else np.asarray(c), np.asarray(y)


def flip_within_lengths(x, lengths):
    """NumPy model of flax's ``flip_sequences`` (time-major): each row's first lengths[b] steps
    reversed, and its padding reversed after them: index (T-1-t + lengths[b]) mod T."""
    T = np.shape(x)[0]
    idx = (np.arange(T - 1, -1, -1)[:, None] + np.asarray(lengths)[None, :]) % T
    return np.take_along_axis(np.asarray(x), idx[:, :, None], axis=0)


# ------------------------------------------------------------------ dropout the flax way

def dropout_cell_class():
    """A linen LSTM cell with ``nn.Dropout`` on its input x_t (rate_in) and on h_{t-1} before
    the recurrent kernel (rate_rec: the carried c and the new h are untouched, because an
    LSTMCell uses h_{t-1} only in its hidden-side Dense layers). Its output is
    (h_t, dropped x_t, dropped h_{t-1}), so the masks can be read back exactly."""
    from flax import linen as nn

    class DropoutLSTMCell(nn.RNNCellBase):
        features: int
        rate_in: float = 0.0
        rate_rec: float = 0.0

        @nn.compact
        def __call__(self, carry, x):
            c, h = carry
            xd = nn.Dropout(self.rate_in, deterministic=False, name="drop_in")(x)
            hd = nn.Dropout(self.rate_rec, deterministic=False, name="drop_rec")(h)
            (c, h_new), y = nn.LSTMCell(self.features, name="lstm")((c, hd), xd)
            return (c, h_new), (y, xd, hd)

        @property
        def num_feature_axes(self):
            return 1

    return DropoutLSTMCell


def dropout_rnn_call(w, x, h0, c0, rate_in, rate_rec, per_step, seed):
    """``nn.RNN(DropoutLSTMCell, split_rngs={'params': False, 'dropout': per_step})`` with
    canonical LSTM weights `w`, ``rngs={'dropout': jax.random.key(seed)}``. Returns
    (y, h_n, c_n, dropped_x, dropped_h), time-major NumPy."""
    import jax
    import jax.numpy as jnp
    from flax import linen as nn

    cell = dropout_cell_class()(features=w.hidden_size, rate_in=rate_in, rate_rec=rate_rec)
    rnn = nn.RNN(cell, time_major=True, return_carry=True, split_rngs={"params": False, "dropout": per_step})
    params = {"cell": {"lstm": layouts.to_flax_lstm(w, dtype=np.float32)["params"]}}
    f32 = lambda a: jnp.asarray(np.asarray(a, np.float32))  # noqa: E731
    (c, h), (y, xd, hd) = rnn.apply({"params": params}, f32(x), initial_carry=(f32(c0), f32(h0)),
                                    rngs={"dropout": jax.random.key(seed)})
    return tuple(np.asarray(a) for a in (y, h, c, xd, hd))


# ------------------------------------------------------------------ dropout knobs (suites/test_fingerprints.py)

#: The dropout knobs of the flax.linen paths, named for what the user writes inside a custom cell
#: (flax has no dropout argument of its own), and the tensor each ``nn.Dropout`` is applied to.
DROPOUT_KNOBS = {"nn.Dropout(x_t)": "x", "nn.Dropout(h_t-1)": "h"}
#: nn.RNN's ``split_rngs`` in the dropout sessions. nn.RNN's default, ``{'params': False}``, does
#: not hand the 'dropout' stream to the scanned cell at all (flax.core.lift.pack passes only the
#: streams split_rngs names: an nn.Dropout in the cell raises InvalidRngError "needs PRNG for
#: 'dropout'"), so a user must add 'dropout'; True (a key split per step: "values different at
#: each step", nn.RNN's docstring) is what public nn.RNN code with dropout writes. False (one mask
#: per sequence) is covered by suites/test_flax_rnn.py::test_dropout_in_custom_cell.
DROPOUT_SPLIT_RNGS = {"params": False, "dropout": True}


def dropout_cell(cell_name):
    """The custom cell a user writes: ``nn.<cell_name>`` (submodule "rnn_cell") with
    ``nn.Dropout(rate_x)`` on its input x_t and ``nn.Dropout(rate_h)`` on the incoming hidden
    state h_(t-1) (for the LSTM cells the h of the carry (c, h), c untouched; for the GRU the
    carry h itself, which GRUCell reads in its hidden-side Dense layers AND in its update
    ``(1 - z) * n + z * h``). ``deterministic`` switches both off (evaluation)."""
    cls = _DROPOUT_CELLS.get(cell_name)
    if cls is not None:
        return cls
    from flax import linen as nn

    base = getattr(nn, cell_name)
    lstm = cell_name != "GRUCell"

    class DropoutCell(nn.RNNCellBase):
        features: int
        rate_x: float = 0.0
        rate_h: float = 0.0
        deterministic: bool = False

        @nn.compact
        def __call__(self, carry, x):
            x = nn.Dropout(self.rate_x, deterministic=self.deterministic, name="drop_x")(x)
            drop_h = nn.Dropout(self.rate_h, deterministic=self.deterministic, name="drop_h")
            carry = (carry[0], drop_h(carry[1])) if lstm else drop_h(carry)
            return base(self.features, name="rnn_cell")(carry, x)

        @nn.nowrap
        def initialize_carry(self, rng, input_shape):
            return base(self.features, parent=None).initialize_carry(rng, input_shape)

        @property
        def num_feature_axes(self):
            return 1

    DropoutCell.__name__ = DropoutCell.__qualname__ = f"Dropout{cell_name}"
    _DROPOUT_CELLS[cell_name] = DropoutCell
    return DropoutCell


_DROPOUT_CELLS = {}


def dropout_stack_module(cell_name, hidden, D, rates, deterministic, time_major=True):
    """The whole stack as ONE linen module, applied once per call with ``rngs={'dropout': key}``
    (as a user composes layers: flax derives each layer's and each direction's dropout stream
    from that key and the module path, so no two layers share masks): layer l is
    ``nn.RNN(DropoutCell, split_rngs=DROPOUT_SPLIT_RNGS)`` named "layers_l", or
    ``nn.Bidirectional`` of two. The cells (and a bidirectional layer's two nn.RNN) are built
    unbound (``parent=None``) so that each nn.RNN owns its cell under "cell" (the parameter tree of
    `FlaxLinenRNN.layer_params`, "rnn_cell" below it); built bare inside this compact method flax
    would adopt them into the stack module ("DropoutLSTMCell_0", ...): the same computation under
    other parameter paths. Called as ``(x, carries)`` (a carry per layer, None: the cell's
    zeros; a pair for two directions) -> (final carries, y)."""
    from flax import linen as nn

    cell = dropout_cell(cell_name)
    rate_x, rate_h = (float(rates.get(k, 0.0)) for k in ("nn.Dropout(x_t)", "nn.Dropout(h_t-1)"))

    class DropoutStack(nn.Module):
        @nn.compact
        def __call__(self, x, carries):
            finals = []
            for l, carry in enumerate(carries):
                mk = lambda: cell(features=hidden, rate_x=rate_x, rate_h=rate_h,  # noqa: E731
                                  deterministic=deterministic, parent=None)
                if D == 1:
                    layer = nn.RNN(mk(), time_major=time_major, return_carry=True, split_rngs=DROPOUT_SPLIT_RNGS,
                                   name=f"layers_{l}")
                else:
                    layer = nn.Bidirectional(nn.RNN(mk(), split_rngs=DROPOUT_SPLIT_RNGS, parent=None),
                                             nn.RNN(mk(), split_rngs=DROPOUT_SPLIT_RNGS, parent=None),
                                             time_major=time_major, return_carry=True, name=f"layers_{l}")
                carry, x = layer(x, initial_carry=carry)
                finals.append(carry)
            return finals, x

    return DropoutStack()


class FlaxDropoutSession:
    """One dropout configuration of a flax.linen path, as a user's training loop runs it.

    Built with ``stack`` (the canonical weights, converted once through ``to_flax_*``), the
    drop rates and ``seed``: ``key = jax.random.key(seed)``. Training call n (0, 1, 2, ... counted
    over training calls only) applies the stack with ``rngs={'dropout': jax.random.fold_in(key,
    n)}`` -- the flax dropout guide's ``fold_in(dropout_key, state.step)`` -- and advances n; an
    evaluation call (training=False) applies the same parameters with every nn.Dropout
    ``deterministic=True`` and no rngs, and does not advance n (an evaluation step has no
    ``state.step`` of its own). One jitted function per (rates, structure, training, initial
    state given) on the adapter, so new shapes compile once and repeated calls are cheap."""

    def __init__(self, adapter, stack, rates, seed):
        import jax

        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"seed: expected an integer, got {seed!r}")
        self.adapter, self.rates = adapter, checked_rates(adapter.info, rates)
        I = as_stack(stack)[0][0].input_size
        self.stack, _, _, _ = adapter.prepare(stack, np.zeros((1, 1, I)))
        self.D = len(self.stack[0])
        rows = [adapter.dropout_layer_params(row) for row in self.stack]
        self.params = {f"layers_{l}": p for l, p in enumerate(rows)}
        self.key = jax.random.key(int(seed))
        self.step = 0

    def __call__(self, x, h0=None, c0=None, training=True):
        a = self.adapter
        with on_device(a.device, a.info.name):
            return self._call(x, h0, c0, bool(training))

    def _call(self, x, h0, c0, training):
        import jax.numpy as jnp

        a = self.adapter
        _, x, h0, c0 = a.prepare(self.stack, x, h0, c0)
        L, D = len(self.stack), self.D
        T, B, _ = x.shape
        H = self.stack[0][0].hidden_size
        state = h0 is not None or c0 is not None
        if state:
            zeros = np.zeros((L * D, B, H), np.float32)
            h0 = zeros if h0 is None else h0
            c0 = (zeros if c0 is None else c0) if a.lstm else None
        fn = a._dropout_jitted(self.rates if training else None, L, D, H, state)
        xin = jnp.asarray(x if a.time_major else np.swapaxes(x, 0, 1))
        y, h_n, c_n = fn(self.params, xin, _opt(h0), _opt(c0), self.key, np.uint32(self.step))
        if training:
            self.step += 1
        y = np.asarray(y)
        return Result(y=y if a.time_major else np.swapaxes(y, 0, 1), h_n=np.asarray(h_n), c_n=_np(c_n))
