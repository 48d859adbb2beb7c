"""Keras 3 recurrent layers on the process's backend (``KERAS_BACKEND``): ``keras.layers.LSTM`` /
``GRU`` (``reset_after`` both ways, from the weights), ``RNN(LSTMCell | GRUCell)``, one
``RNN(StackedRNNCells([...]))`` over a whole stack, ``Bidirectional`` (merge mode "concat").

Variants are registry entries whose ``options`` this factory reads:

    layer                 "layer" (default: LSTM / GRU), "rnn" (``RNN(LSTMCell | GRUCell)``, one per
                          canonical layer) or "stacked_cells" (ONE ``RNN(StackedRNNCells(cells))`` for
                          the whole stack; unidirectional only)
    implementation        1 or 2 (LSTM / GRU constructor argument; default 2)
    unroll                bool (default False)
    zero_output_for_mask  bool (default False): the output at a masked step (0 with True; with False
                          the previous output, zeros before the first valid step, on the TF backend)

Every path builds its layers fresh for each call (``return_sequences=True, return_state=True``),
sets the canonical weights (``reference.layouts.to_keras_*``, checked by name) and runs them in
inference mode (``training=False``). Keras is batch-major: x goes in as ``(B, T, I)``, y comes
back transposed to ``(T, B, ...)``. Lengths are passed as the Keras ``mask=`` argument
(``(B, T)`` booleans, right padding), the documented way to mask a recurrent layer.

State order. The reference (and torch) index states ``l*D + d``. Keras 3's ``Bidirectional``
takes ``initial_state`` as one flat list whose first half goes to the forward layer and second
half to the backward layer (keras/src/layers/rnn/bidirectional.py ``call``), i.e.
``[h_fw, c_fw, h_bw, c_bw]`` for an LSTM, and returns the final states in the same order. The
backward layer runs with go_backwards=True; its final state is the state after step 0, as the
reference's reverse direction. ``RNN(StackedRNNCells)`` takes and returns the states of every
cell in order ``[h_0, c_0, h_1, c_1, ...]``.

Gradients (``vjp``) per backend: TensorFlow ``tf.GradientTape``, torch autograd (Keras variables
are ``torch.nn.Parameter``), JAX ``jax.vjp`` through ``keras.StatelessScope``. Keras' single LSTM
bias is ``b_x + b_h`` (and a reset-before GRU's is ``b_x + b_h``), so its gradient is the gradient
of each canonical bias.

Mask injection (``run(..., inject=)``): a dict ``{(l, d): {"dropout": mask(s), "recurrent_dropout":
mask(s)}}`` of NumPy arrays (B, F) -- or a list of one per gate in Keras' gate order (LSTM i, f,
c, o; GRU z, r, h) -- returned by the cell's ``get_dropout_mask`` / ``get_recurrent_dropout_mask``
(keras/src/layers/rnn/dropout_rnn_cell.py), so the layer runs, in training mode, with exactly
those masks.

``backend`` on the adapter is ``keras.backend.backend()`` at construction; the registry entry
says None (it depends on the process: run each backend in its own process).
"""
from __future__ import annotations

import numpy as np

from reference import Grads, Result, layouts
from reference.params import LSTMWeights

from conformance.adapters.base import BaseAdapter, UnsupportedCase, as_stack

LAYER_KINDS = ("layer", "rnn", "stacked_cells")
OPTIONS = {"layer", "implementation", "unroll", "zero_output_for_mask", "use_cudnn", "go_backwards"}


def _short(variable):
    return str(getattr(variable, "path", variable.name)).split("/")[-1].split(":")[0]


def _flatten(items):
    out = []
    for a in items:
        out.extend(_flatten(a) if isinstance(a, (list, tuple)) else [a])
    return out


def check_options(info):
    unknown = sorted(set(info.options) - OPTIONS)
    if unknown:
        raise ValueError(f"{info.name}: unknown options {unknown}; known: {sorted(OPTIONS)}")
    if info.option("layer", "layer") not in LAYER_KINDS:
        raise ValueError(f"{info.name}: option layer must be one of {LAYER_KINDS}")


def grads_to_canonical(w, grads):
    """Gradients {kernel, recurrent_kernel, bias} of one Keras cell -> a weights object shaped
    like `w` (canonical layout; a folded bias's gradient goes to each canonical bias it sums)."""
    from dataclasses import replace

    if isinstance(w, LSTMWeights):
        g = layouts.from_keras_lstm(grads["kernel"], grads["recurrent_kernel"], grads.get("bias"))
        db = g.b_x
        return replace(w, W=g.W, R=g.R, b_x=None if w.b_x is None else db, b_h=None if w.b_h is None else db)
    g = layouts.from_keras_gru(grads["kernel"], grads["recurrent_kernel"], grads.get("bias"),
                               reset_after=w.reset_after)
    if w.reset_after:
        b_x, b_h = g.b_x, g.b_h
    else:
        b_x = b_h = g.b_x
    return replace(w, W=g.W, R=g.R, b_x=None if w.b_x is None else b_x, b_h=None if w.b_h is None else b_h)


class KerasRNN(BaseAdapter):
    def __init__(self, info, *, device="cpu", dtype="float32"):
        check_options(info)
        super().__init__(info, device=device, dtype=dtype)
        import keras

        if not keras.__version__.startswith("3."):
            raise RuntimeError(f"{info.name}: needs Keras 3, found keras {keras.__version__}")
        self.keras = keras
        self._backend = keras.backend.backend()
        self.kind = info.option("layer", "layer")

    @property
    def backend(self):
        return self._backend

    def numpy(self, tensor):
        """A backend tensor as NumPy (torch tensors may require grad: convert_to_numpy detaches)."""
        return np.asarray(self.keras.ops.convert_to_numpy(tensor))

    # ------------------------------------------------------------------ construction

    def layer_kwargs(self):
        """Constructor arguments of the LSTM / GRU / RNN layer from the entry's options."""
        kw = dict(return_sequences=True, return_state=True, dtype=self.dtype)
        for key in ("unroll", "zero_output_for_mask", "go_backwards"):
            if key in self.info.options:
                kw[key] = bool(self.info.options[key])
        if self.kind == "layer" and "use_cudnn" in self.info.options:
            kw["use_cudnn"] = self.info.options["use_cudnn"]
        return kw

    def _cell(self, w, H, **dropout):
        k = self.keras
        kw = dict(dtype=self.dtype, **dropout)
        if "implementation" in self.info.options:
            kw["implementation"] = int(self.info.options["implementation"])
        if self.info.cell == "lstm":
            return k.layers.LSTMCell(H, **kw)
        return k.layers.GRUCell(H, reset_after=w.reset_after, **kw)

    def _cell_layer(self, w, H, **dropout):
        k = self.keras
        kw = self.layer_kwargs()
        if self.kind == "rnn":
            return k.layers.RNN(self._cell(w, H, **dropout), **kw)
        if "implementation" in self.info.options:
            kw["implementation"] = int(self.info.options["implementation"])
        if self.info.cell == "lstm":
            return k.layers.LSTM(H, **kw, **dropout)
        return k.layers.GRU(H, reset_after=w.reset_after, **kw, **dropout)

    def _set_cell(self, cell, w):
        if self.info.cell == "lstm":
            d = layouts.to_keras_lstm(w, dtype=self.dtype)
        else:
            d = layouts.to_keras_gru(w, dtype=self.dtype)
        names = [_short(v) for v in cell.weights]
        if names != list(d):
            raise RuntimeError(f"{self.info.name}: Keras weights {names} differ from the layout {list(d)}")
        cell.set_weights(list(d.values()))

    def build(self, stack, steps, dropout=None):
        """The Keras layers of a stack, weights set: one per canonical layer, or one
        ``RNN(StackedRNNCells)`` for the "stacked_cells" variant. `dropout` ({"dropout": p,
        "recurrent_dropout": q, "seed": s}) configures dropout, layer l seeded s + l."""
        def kw(l):
            if not dropout:
                return {}
            return dict(dropout=dropout.get("dropout", 0.0), recurrent_dropout=dropout.get("recurrent_dropout", 0.0),
                        **self.seed_kwargs(dropout["seed"], l))

        size = stack[0][0].input_size
        if self.kind == "stacked_cells":
            if len(stack[0]) != 1:
                raise UnsupportedCase(f"{self.info.name}: RNN(StackedRNNCells) is unidirectional")
            cells = [self._cell(row[0], row[0].hidden_size, **kw(l)) for l, row in enumerate(stack)]
            layer = self.keras.layers.RNN(self.keras.layers.StackedRNNCells(cells), **self.layer_kwargs())
            layer.build((None, steps, size))
            for cell, row in zip(cells, stack):
                self._set_cell(cell, row[0])
            return [layer]
        layers = []
        for l, row in enumerate(stack):
            H = row[0].hidden_size
            inner = self._cell_layer(row[0], H, **kw(l))
            if len(row) == 2:
                layer = self.keras.layers.Bidirectional(inner, merge_mode="concat", dtype=self.dtype)
            else:
                layer = inner
            layer.build((None, steps, size))
            for cell, w in zip(self.cells_of(layer), row):
                self._set_cell(cell, w)
            layers.append(layer)
            size = len(row) * row[0].output_size
        return layers

    def seed_kwargs(self, seed, l):
        """How layer l of a dropout session is seeded: Keras 3 layers and cells take ``seed=``."""
        return {"seed": seed + l}

    def cells_of(self, layer):
        """The cells of a built layer, in canonical order (directions; or the stacked cells)."""
        if isinstance(layer, self.keras.layers.Bidirectional):
            return [layer.forward_layer.cell, layer.backward_layer.cell]
        if isinstance(layer.cell, self.keras.layers.StackedRNNCells):
            return list(layer.cell.cells)
        return [layer.cell]

    # ------------------------------------------------------------------ running

    def forward(self, stack, x, h0=None, c0=None, lengths=None):
        return self.run(stack, x, h0, c0, lengths=lengths)[0]

    def vjp(self, stack, x, dy, dh_n=None, dc_n=None, h0=None, c0=None, lengths=None):
        return self.run(stack, x, h0, c0, lengths=lengths, cotangents=(dy, dh_n, dc_n))

    def run(self, stack, x, h0=None, c0=None, lengths=None, *, training=False, inject=None, cotangents=None,
            layers=None, step_mask=None):
        """Build (unless `layers` are given) and run; (Result, Grads or None). `inject` as in
        the module docstring (implies nothing about `training`: pass training=True to use it).
        `step_mask` (T, B) booleans: any Keras mask (leading or inner masked steps), instead of
        `lengths`."""
        stack, x, h0, c0 = self.prepare(stack, x, h0, c0)
        lengths = self.checked_lengths(lengths, x.shape)
        layers = self.build(stack, x.shape[0]) if layers is None else layers
        if inject:
            self.inject(layers, inject)
        mask = None
        if step_mask is not None:
            mask = np.ascontiguousarray(np.asarray(step_mask, bool).T)
        elif lengths is not None:
            mask = np.arange(x.shape[0])[None, :] < lengths[:, None]
        return self._execute(layers, stack, x, h0, c0, mask, training, cotangents)

    def inject(self, layers, inject):
        """Make the cells of `layers` return the given masks from their mask hooks."""
        cells = [c for layer in layers for c in self.cells_of(layer)]
        per = len(self.cells_of(layers[0])) if self.kind != "stacked_cells" else 1
        for (l, d), hooks in inject.items():
            cell = cells[l * per + d]
            for knob, method in (("dropout", "get_dropout_mask"), ("recurrent_dropout", "get_recurrent_dropout_mask")):
                if hooks.get(knob) is None:
                    continue
                m = hooks[knob]
                val = ([self.keras.ops.convert_to_tensor(np.asarray(a, self.dtype)) for a in m] if isinstance(m, list)
                       else self.keras.ops.convert_to_tensor(np.asarray(m, self.dtype)))
                setattr(cell, method, (lambda v: lambda step_input: v)(val))

    def run_layers(self, layers, stack, x, h0, c0, training):
        """Run built layers on time-major x with optional h0/c0; a reference.Result."""
        return self._execute(layers, as_stack(stack), np.asarray(x, self.dtype), h0, c0, None, training, None)[0]

    def _inits(self, stack, B, h0, c0, want_grad):
        """Flat initial-state arrays per Keras layer (None: Keras' zeros), or None."""
        lstm = self.info.cell == "lstm"
        D = len(stack[0])
        n = len(stack) * D
        if h0 is None and c0 is None and not want_grad:
            return None
        dt = np.dtype(self.dtype)
        hout, H = stack[0][0].output_size, stack[0][0].hidden_size
        h0 = np.zeros((n, B, hout), dt) if h0 is None else h0
        if lstm and c0 is None:
            c0 = np.zeros((n, B, H), dt)
        flat = []
        for i in range(n):
            flat.append(h0[i])
            if lstm:
                flat.append(c0[i])
        if self.kind == "stacked_cells":
            return [flat]
        per = (2 if lstm else 1) * D
        return [flat[l * per:(l + 1) * per] for l in range(len(stack))]

    def _call(self, layers, seq, inits, mask, training):
        """(y batch-major, flat list of final states in canonical order)."""
        states = []
        for i, layer in enumerate(layers):
            kw = {} if inits is None else {"initial_state": list(inits[i])}
            if inits is not None and self.kind == "stacked_cells":  # one [h, c] list per cell
                per = 2 if self.info.cell == "lstm" else 1
                flat = list(inits[i])
                kw["initial_state"] = [flat[j:j + per] for j in range(0, len(flat), per)]
            if mask is not None:
                kw["mask"] = self.mask_tensor(mask)
            out = layer(seq, training=training, **kw)
            seq = out[0]
            states.extend(_flatten(out[1:]))
        return seq, states

    def mask_tensor(self, mask):
        return mask

    def _execute(self, layers, stack, x, h0, c0, mask, training, cotangents):
        T, B, _ = x.shape
        lstm = self.info.cell == "lstm"
        per = 2 if lstm else 1
        n = len(stack) * len(stack[0])
        seq = np.ascontiguousarray(np.swapaxes(x, 0, 1))  # (B, T, I)
        inits = self._inits(stack, B, h0, c0, cotangents is not None)
        if cotangents is None:
            y, states = self._call(layers, seq, inits, mask, training)
            states = [self.numpy(s) for s in states]
            grads = None
        else:
            dy, dh, dc = cotangents
            dt = np.dtype(self.dtype)
            dh = np.zeros((n, B, stack[0][0].output_size), dt) if dh is None else np.asarray(dh, dt)
            if lstm:
                dc = np.zeros((n, B, stack[0][0].hidden_size), dt) if dc is None else np.asarray(dc, dt)
            ds = []
            for i in range(n):
                ds.append(dh[i])
                if lstm:
                    ds.append(dc[i])
            dyb = np.ascontiguousarray(np.swapaxes(np.asarray(dy, dt), 0, 1))
            y, states, gx, ginit, gvars = getattr(self, "_grad_" + self._backend)(
                layers, seq, inits, mask, training, dyb, ds)
            flat_dinit = [g for part in ginit for g in part]
            dh0 = np.stack([flat_dinit[i * per] for i in range(n)])
            dc0 = np.stack([flat_dinit[i * per + 1] for i in range(n)]) if lstm else None
            cells = [c for layer in layers for c in self.cells_of(layer)]
            D = len(stack[0])
            wg = []
            for l, row in enumerate(stack):
                wg.append([grads_to_canonical(w, {_short(v): gvars[id(v)] for v in cells[l * D + d].weights})
                           for d, w in enumerate(row)])
            grads = Grads(dx=np.ascontiguousarray(np.swapaxes(gx, 0, 1)), dh0=dh0, dc0=dc0, weights=wg)
        if len(states) != per * n:
            raise RuntimeError(f"{self.info.name}: expected {per * n} states, got {len(states)}")
        y = np.swapaxes(self.numpy(y) if not isinstance(y, np.ndarray) else y, 0, 1)
        result = Result(y=np.ascontiguousarray(y), h_n=np.stack([states[i * per] for i in range(n)]),
                        c_n=np.stack([states[i * per + 1] for i in range(n)]) if lstm else None)
        return result, grads

    # -- gradients, one function per backend: (y, states (NumPy), dx, d_inits, {id(var): grad})

    def _variables(self, layers):
        return [v for layer in layers for c in self.cells_of(layer) for v in c.weights]

    def _grad_tensorflow(self, layers, seq, inits, mask, training, dyb, ds):
        import tensorflow as tf

        xt = tf.constant(seq)
        it = [[tf.constant(a) for a in part] for part in inits]
        vs = self._variables(layers)
        with tf.GradientTape() as tape:
            tape.watch([xt] + [a for p in it for a in p])
            y, states = self._call(layers, xt, it, mask, training)
            loss = tf.reduce_sum(y * dyb) + sum(tf.reduce_sum(s * d) for s, d in zip(states, ds))
        flat = [a for p in it for a in p]
        g = tape.gradient(loss, [xt] + flat + [v if callable(v.value) else v.value for v in vs],
                          unconnected_gradients=tf.UnconnectedGradients.ZERO)
        gx, gi, gv = g[0].numpy(), [a.numpy() for a in g[1:1 + len(flat)]], g[1 + len(flat):]
        return (y.numpy(), [s.numpy() for s in states], gx, self._regroup(gi, inits),
                {id(v): np.asarray(gr) for v, gr in zip(vs, gv)})

    def _grad_torch(self, layers, seq, inits, mask, training, dyb, ds):
        import torch

        xt = torch.tensor(seq, requires_grad=True)
        it = [[torch.tensor(a, requires_grad=True) for a in part] for part in inits]
        vs = self._variables(layers)
        y, states = self._call(layers, xt, it, mask, training)
        loss = (y * torch.tensor(dyb)).sum() + sum((s * torch.tensor(d)).sum() for s, d in zip(states, ds))
        flat = [a for p in it for a in p]
        params = [v.value for v in vs]
        g = torch.autograd.grad(loss, [xt] + flat + params, allow_unused=True)
        z = lambda gr, ref: np.zeros(tuple(ref.shape), self.dtype) if gr is None else gr.detach().numpy()  # noqa
        gx = z(g[0], xt)
        gi = [z(gr, a) for gr, a in zip(g[1:1 + len(flat)], flat)]
        gv = {id(v): z(gr, p) for v, gr, p in zip(vs, g[1 + len(flat):], params)}
        return (y.detach().numpy(), [s.detach().numpy() for s in states], gx, self._regroup(gi, inits), gv)

    def _grad_jax(self, layers, seq, inits, mask, training, dyb, ds):
        import jax
        import jax.numpy as jnp

        vs = self._variables(layers)
        keras = self.keras

        def f(vals, x, flat):
            parts, i = [], 0
            for p in inits:
                parts.append(flat[i:i + len(p)])
                i += len(p)
            with keras.StatelessScope(state_mapping=list(zip(vs, vals))):
                y, states = self._call(layers, x, parts, mask, training)
            return y, list(states)

        vals = [jnp.asarray(v.value) for v in vs]
        flat = [jnp.asarray(a) for p in inits for a in p]
        (y, states), pull = jax.vjp(f, vals, jnp.asarray(seq), flat)
        gvals, gx, gflat = pull((jnp.asarray(dyb), [jnp.asarray(d) for d in ds]))
        return (np.asarray(y), [np.asarray(s) for s in states], np.asarray(gx),
                self._regroup([np.asarray(a) for a in gflat], inits), {id(v): np.asarray(g) for v, g in zip(vs, gvals)})

    @staticmethod
    def _regroup(flat, inits):
        out, i = [], 0
        for p in inits:
            out.append(flat[i:i + len(p)])
            i += len(p)
        return out

    # ------------------------------------------------------------------ kernel decision

    def kernel_of(self, stack, x, h0=None, c0=None, lengths=None):
        """The kernel this case ran (observed: `keras_kernels.observe`) and whether Keras' own
        decision code would pick cuDNN with a GPU (`keras_kernels.gpu_eligible`)."""
        from conformance.adapters.keras import kernels as kk

        st, xx, hh, cc = self.prepare(stack, x, h0, c0)
        layers = self.build(st, xx.shape[0])
        _, rec = kk.observe(self.keras, lambda: self.run(st, xx, hh, cc, lengths=lengths, layers=layers))
        d = kk.decision(self.keras, layers[0], mask=lengths)
        return f"{kk.kernel_name(rec, self._backend)}; with a GPU: {'cuDNN' if d['gpu_eligible'] else 'no cuDNN'} ({d['why']})"

    # ------------------------------------------------------------------ dropout sessions

    def dropout_session(self, stack, rates, seed):
        """Layers built with ``dropout`` / ``recurrent_dropout`` and ``seed`` (Keras' own seed
        generators, one per layer); successive calls continue them."""
        unknown = sorted(set(rates) - set(self.info.dropout))
        if unknown:
            raise ValueError(f"{self.info.name}: unknown dropout knobs {unknown}; it has {self.info.dropout}")
        if self._backend == "jax":
            # XLA's CPU client maps the code of every executable it compiles, and Keras on JAX compiles
            # per layer: a fingerprint's ~10^5 calls over fresh sessions passed the kernel's
            # vm.max_map_count (65530) and XLA segfaulted while compiling. The previous sessions'
            # layers are discarded, so their executables can go.
            import jax

            jax.clear_caches()
        return KerasSession(self, stack, rates, seed)


class KerasSession:
    """The layers of one dropout configuration, built on the first call, reused after."""

    def __init__(self, adapter, stack, rates, seed):
        self.adapter, self.rates, self.seed = adapter, dict(rates), int(seed)
        self.stack = as_stack(stack)
        self.layers = None

    def __call__(self, x, h0=None, c0=None, training=True):
        a = self.adapter
        stack, x, h0, c0 = a.prepare(self.stack, x, h0, c0)
        if self.layers is None:
            self.layers = a.build(stack, x.shape[0], dropout={**self.rates, "seed": self.seed})
        return a.run_layers(self.layers, stack, x, h0, c0, training=training)


def make(info, *, device="cpu", dtype="float32"):
    """Factory for every Keras 3 path (LSTM, GRU, RNN(cell), RNN(StackedRNNCells) and their
    options)."""
    return KerasRNN(info, device=device, dtype=dtype)
