"""Speed benchmarks: per-framework bench builders and side-by-side timing.

A *bench* is a set of `Case`s of one adapter path at one size: forward and forward+backward,
each with dropout off / input / recurrent / inter-layer where the path can express it, plus
kernel variants to compare (torch packed vs padded, oneDNN vs native; Keras
``implementation=1``). The layer or module is built ONCE when the bench is built; a case's
``fn`` times only the call (the adapters' ``forward`` builds the layer per call, so the suites
do not time through them). A case the path cannot express is a `Case` with ``fn=None`` and
``note="n/a: <why>"`` — reported, never faked.

Timing (`measure`): every case is warmed up (compilation, oneDNN primitive caches), then run
in *alternating blocks*: round r runs one block of each case in turn (the order rotates each
round), a block being ``calls`` back-to-back calls with ``calls`` chosen so that one block
lasts at least ``min_block_s``. Per case: the median and interquartile range of the per-call
block times. Ratios between two cases are taken *per round* (both blocks of round r ran
within the same few seconds, so machine-wide noise hits both) and summarised by their median
and IQR: compare paths as ratios within one run, never absolute times across runs.

Threads: torch and NumPy (OpenBLAS) are pinned to one thread while their cases run
(`single_thread`): on our shared 2-core machines multi-threaded timings measure the
contention with other processes more than the kernels, and one thread each is the like-for-like
comparison of the float64 reference with torch. Other frameworks run with their own defaults
(TensorFlow/XLA/onnxruntime thread pools cannot be resized once initialised); each entry
says which (``threads``).

Sizes (T, B, H; input size = H): small (16, 8, 32), medium (64, 32, 128), large
(256, 64, 256). ``RNN_BENCH_FULL=1`` (set by ``make bench``) runs all three with several
rounds; otherwise (``make test``) a smoke run: the small size, one round of one call each.
"""
from __future__ import annotations

import contextlib
import ctypes
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

SIZES = {"small": (16, 8, 32), "medium": (64, 32, 128), "large": (256, 64, 256)}
MODES = ("forward", "forward+backward")
DROPOUTS = ("off", "input", "recurrent", "inter-layer")
P = 0.3  # the drop probability of every dropout case
FULL_ENV = "RNN_BENCH_FULL"
# full runs: (rounds, min seconds per block) per size
PLAN = {"small": (15, 0.02), "medium": (9, 0.03), "large": (5, 0.0)}
QUICK_PLAN = (1, 0.0)


def full_mode(env=None):
    """True when ``RNN_BENCH_FULL=1``: all sizes, several rounds (``make bench``)."""
    return (os.environ if env is None else env).get(FULL_ENV, "") == "1"


def sizes(env=None):
    return tuple(SIZES) if full_mode(env) else ("small",)


def plan(size, env=None):
    """(rounds, min seconds per block) for `size`: one round of one call unless full."""
    return PLAN[size] if full_mode(env) else QUICK_PLAN


# ------------------------------------------------------------------ statistics

@dataclass
class Stats:
    median_ms: float
    iqr_ms: float
    rounds: int
    calls: int


def summary(times_s, calls=1):
    """Median and interquartile range (ms) of per-call times in seconds."""
    t = np.asarray(times_s, float) * 1e3
    q1, med, q3 = np.percentile(t, [25, 50, 75])
    return Stats(float(med), float(q3 - q1), len(t), int(calls))


def paired_ratio(a_s, b_s):
    """(median, IQR) of the per-round ratios a[r] / b[r]: blocks of the same round ran side by side."""
    a, b = np.asarray(a_s, float), np.asarray(b_s, float)
    if a.shape != b.shape or not len(a):
        raise ValueError(f"paired_ratio: need equal, non-empty round lists, got {a.shape} and {b.shape}")
    r = a / b
    q1, med, q3 = np.percentile(r, [25, 50, 75])
    return float(med), float(q3 - q1)


def _block_calls(fn, min_block_s, max_calls=50):
    if min_block_s <= 0:
        return 1
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    return int(min(max_calls, max(1, math.ceil(min_block_s / max(once, 1e-6)))))


def measure(fns, rounds, min_block_s=0.0, warmup=1):
    """{key: [seconds per call, one per round]} over alternating blocks (order rotating each
    round) and {key: calls per block}. `fns`: {key: callable}."""
    keys = list(fns)
    for _ in range(warmup):
        for k in keys:
            fns[k]()
    calls = {k: _block_calls(fns[k], min_block_s) for k in keys}
    times = {k: [] for k in keys}
    for r in range(rounds):
        shift = r % len(keys) if keys else 0
        for k in keys[shift:] + keys[:shift]:
            fn, n = fns[k], calls[k]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            times[k].append((time.perf_counter() - start) / n)
    return times, calls


# ------------------------------------------------------------------ threads

def _openblas():
    """NumPy's OpenBLAS as a ctypes library with (set, get) thread functions, or None."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "64_"), ("openblas", "")):
            s, g = f"{prefix}_set_num_threads{suffix}", f"{prefix}_get_num_threads{suffix}"
            if hasattr(lib, s) and hasattr(lib, g):
                return getattr(lib, s), getattr(lib, g)
    return None


def blas_threads():
    """NumPy's BLAS thread count, or None if it cannot be read."""
    fns = _openblas()
    return None if fns is None else int(fns[1]())


@contextlib.contextmanager
def single_thread(torch=None):
    """torch (if given) and NumPy's OpenBLAS on one thread inside; restored after."""
    fns = _openblas()
    old_blas = fns[1]() if fns else None
    old_torch = torch.get_num_threads() if torch is not None else None
    try:
        if fns:
            fns[0](1)
        if torch is not None:
            torch.set_num_threads(1)
        yield
    finally:
        if fns:
            fns[0](old_blas)
        if torch is not None:
            torch.set_num_threads(old_torch)


def merge_benchmark_json(out, *paths):
    """One pytest-benchmark JSON file from several (one per process of ``make bench``): the first
    file's machine and commit info, every file's benchmarks (``pytest-benchmark compare`` reads
    it). Missing files are left out, with a line saying so."""
    import json

    merged = None
    for path in paths:
        if not os.path.exists(path):
            print(f"merge_benchmark_json: {path} is missing (that part wrote no benchmarks); left out")
            continue
        with open(path) as f:
            data = json.load(f)
        if merged is None:
            merged = data
        else:
            merged["benchmarks"] += data.get("benchmarks", [])
    if merged is None:
        raise SystemExit("merge_benchmark_json: none of the files exists")
    from .render import write_text_atomic

    write_text_atomic(out, json.dumps(merged, indent=1))
    print(f"merge_benchmark_json: {len(merged['benchmarks'])} benchmarks -> {out}")


# ------------------------------------------------------------------ cases and benches

@dataclass
class Case:
    """One timed call. key = (mode, dropout, layers, variant)."""
    mode: str
    dropout: str
    fn: Optional[Callable[[], object]]
    layers: int = 1
    variant: str = ""
    note: str = ""
    against: Optional[tuple] = None  # key of the case this one is compared with (a ratio entry)
    comparison: str = ""  # label of that ratio

    @property
    def key(self):
        return (self.mode, self.dropout, self.layers, self.variant)


@dataclass
class Bench:
    adapter: str
    size: str
    T: int
    B: int
    H: int
    cases: list = field(default_factory=list)
    threads: str = "framework default"
    context: Callable = contextlib.nullcontext  # entered around the timing (e.g. single_thread)
    version: str = ""

    def add(self, mode, dropout, fn, **kw):
        self.cases.append(Case(mode, dropout, fn, **kw))

    def na(self, dropout, why, modes=MODES, **kw):
        for mode in modes:
            self.cases.append(Case(mode, dropout, None, note=f"n/a: {why}", **kw))


class NoBuilder(Exception):
    """No bench builder for this adapter path (the test skips with this reason)."""


def smoke_case(case):
    """The cases a smoke run (not full mode) times: the one-layer forward cases, and
    forward+backward with dropout off (compiling every variant's gradient and the two-layer
    stacks would add a minute to ``make test``)."""
    return case.layers == 1 and (case.mode == "forward" or (case.dropout == "off" and not case.variant))


def run_bench(bench, rounds, min_block_s, full=True):
    """Time the runnable cases of `bench` (all when `full`, else the `smoke_case`s); returns
    (measurement entries, comparison entries, raw {key: times}). In full mode the n/a cases
    are entries too."""
    if not full:
        bench.cases = [c for c in bench.cases if smoke_case(c)]
    fns = {c.key: c.fn for c in bench.cases if c.fn is not None}
    with bench.context():
        times, calls = measure(fns, rounds, min_block_s, warmup=1 if full else 0) if fns else ({}, {})
    base = dict(adapter=bench.adapter, size=bench.size, T=bench.T, B=bench.B, H=bench.H)
    entries, ratios = [], []
    for c in bench.cases:
        e = dict(base, mode=c.mode, dropout=c.dropout, layers=c.layers, variant=c.variant or "-")
        if c.fn is None:
            e.update(median_ms=None, iqr_ms=None, rounds=0, note=c.note)
        else:
            s = summary(times[c.key], calls[c.key])
            e.update(median_ms=round(s.median_ms, 4), iqr_ms=round(s.iqr_ms, 4), rounds=s.rounds, calls=s.calls,
                     threads=bench.threads, note=c.note or "")
        entries.append(e)
        if c.against is not None and c.fn is not None and c.against in times:
            med, iqr = paired_ratio(times[c.key], times[c.against])
            ratios.append(dict(comparison=c.comparison, adapter=bench.adapter, size=bench.size, mode=c.mode,
                               ratio=round(med, 4), ratio_iqr=round(iqr, 4), rounds=len(times[c.key]),
                               threads=bench.threads))
    return entries, ratios, times


def _rng_arrays(seed, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


# ------------------------------------------------------------------ torch

def torch_nn(info, size):
    """nn.LSTM / nn.GRU: built once, train() mode (dropout active where set), float32."""
    import torch
    import torch.nn.functional as F
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    T, B, H = SIZES[size]
    torch.manual_seed(0)
    cls = torch.nn.LSTM if info.cell == "lstm" else torch.nn.GRU
    x_np, dy_np = _rng_arrays(0, (T, B, H), (T, B, H))
    x, dy = torch.from_numpy(x_np), torch.from_numpy(dy_np)
    xg = x.clone().requires_grad_(True)
    # all rows full but the last, one step short: the same work as padded within 1/(T*B), and
    # unequal lengths, so the packed call leaves oneDNN for the native kernel as real batches do
    lengths = torch.full((B,), T, dtype=torch.int64)
    lengths[-1] = T - 1

    def module(**kw):
        return cls(H, H, **kw).train()

    def call(m, inp, drop_in=False, packed=None, mkldnn=True):
        if drop_in:
            inp = F.dropout(inp, P, training=True)
        if packed is not None:
            inp = pack_padded_sequence(inp, lengths, enforce_sorted=packed == "sorted")
        with torch.backends.mkldnn.flags(enabled=mkldnn):
            out = m(inp)[0]
        if packed is not None:
            out = pad_packed_sequence(out, total_length=T)[0]
        return out

    def fwd(m, **kw):
        def f():
            with torch.no_grad():
                call(m, x, **kw)
        return f

    def fb(m, **kw):
        def f():
            m.zero_grad(set_to_none=True)
            xg.grad = None
            call(m, xg, **kw).backward(dy)
        return f

    b = Bench(info.name, size, T, B, H, threads="torch 1, BLAS 1",
              context=lambda: single_thread(torch), version=torch.__version__)
    m1, m2, m2d = module(), module(num_layers=2), module(num_layers=2, dropout=P)
    from .adapters.torch_common import kernel_ran

    with torch.no_grad():
        packed_kernel = kernel_ran(lambda: call(m1, x, packed="unsorted"))[1]
        padded_kernel = kernel_ran(lambda: call(m1, x))[1]
    for mode, mk in (("forward", fwd), ("forward+backward", fb)):
        base = (mode, "off", 1, "")
        b.add(mode, "off", mk(m1), note=f"kernel {padded_kernel}")
        b.add(mode, "input", mk(m1, drop_in=True), note="F.dropout(x) before the module",
              against=base, comparison="input dropout vs off")
        b.add(mode, "off", mk(m2), layers=2)
        b.add(mode, "inter-layer", mk(m2d), layers=2, note=f"nn.{cls.__name__}(num_layers=2, dropout={P})",
              against=(mode, "off", 2, ""), comparison="inter-layer dropout vs off (2 layers)")
        # the kernels behind the same call (dropout off)
        for packed in ("unsorted", "sorted"):
            b.add(mode, "off", mk(m1, packed=packed), variant=f"packed,enforce_sorted={packed == 'sorted'}",
                  note=f"lengths T except one row T-1; pack/unpack included; kernel {packed_kernel}",
                  against=base, comparison=f"packed (enforce_sorted={packed == 'sorted'}) vs padded")
        if info.cell == "lstm":
            b.add(mode, "off", mk(m1, mkldnn=False), variant="native (mkldnn off)",
                  note="torch.backends.mkldnn.flags(enabled=False)",
                  against=base, comparison="native vs oneDNN")
            b.add(mode, "inter-layer", mk(m2d, mkldnn=False), layers=2, variant="native (mkldnn off)",
                  against=(mode, "inter-layer", 2, ""), comparison="native vs oneDNN (inter-layer dropout)")
    b.na("recurrent", f"nn.{cls.__name__} has no recurrent dropout (torch has no such knob)")
    return b


def torch_cells(info, size):
    """nn.LSTMCell / nn.GRUCell in a Python loop over time steps, built once."""
    import torch
    import torch.nn.functional as F

    T, B, H = SIZES[size]
    torch.manual_seed(0)
    lstm = info.cell == "lstm"
    cell = (torch.nn.LSTMCell if lstm else torch.nn.GRUCell)(H, H)
    x_np, dy_np = _rng_arrays(0, (T, B, H), (T, B, H))
    x, dy = torch.from_numpy(x_np), torch.from_numpy(dy_np)
    xg = x.clone().requires_grad_(True)

    def loop(inp, drop_in):
        if drop_in:
            inp = F.dropout(inp, P, training=True)
        h = inp.new_zeros(B, H)
        c = inp.new_zeros(B, H)
        outs = []
        for t in range(T):
            if lstm:
                h, c = cell(inp[t], (h, c))
            else:
                h = cell(inp[t], h)
            outs.append(h)
        return torch.stack(outs)

    def fwd(drop_in):
        def f():
            with torch.no_grad():
                loop(x, drop_in)
        return f

    def fb(drop_in):
        def f():
            cell.zero_grad(set_to_none=True)
            xg.grad = None
            loop(xg, drop_in).backward(dy)
        return f

    b = Bench(info.name, size, T, B, H, threads="torch 1, BLAS 1",
              context=lambda: single_thread(torch), version=torch.__version__)
    for mode, mk in (("forward", fwd), ("forward+backward", fb)):
        b.add(mode, "off", mk(False))
        b.add(mode, "input", mk(True), note="F.dropout(x) before the loop",
              against=(mode, "off", 1, ""), comparison="input dropout vs off")
    name = type(cell).__name__
    b.na("recurrent", f"nn.{name} has no dropout knob; a hand-written loop would apply its own")
    b.na("inter-layer", f"nn.{name} has no dropout knob; stacking is the user's loop")
    return b


# ------------------------------------------------------------------ Keras 3

def keras_layers(info, size):
    """keras.layers.LSTM / GRU (and keras.layers.RNN(cell)), built once, called with training=True;
    tf-keras 2's ``tf_keras.layers.LSTM / GRU`` too (TensorFlow only, no ``seed`` argument).

    TensorFlow backend: the call and the gradient tape inside one ``tf.function`` each (as
    ``fit`` runs them); JAX backend: ``model.stateless_call`` inside ``jax.jit`` (as ``fit``
    runs it) and ``jax.grad``; torch backend: eager, torch autograd."""
    if info.framework == "tf_keras":
        import tf_keras as keras

        backend, seeded = "tensorflow", {}
    else:
        import keras

        backend, seeded = keras.backend.backend(), {"seed": 1}
    T, B, H = SIZES[size]
    x_np, dy_np = _rng_arrays(0, (B, T, H), (B, T, H))
    lstm = info.cell == "lstm"
    name = info.name if info.framework == "tf_keras" else f"{info.name} ({backend})"
    b = Bench(name, size, T, B, H, version=keras.__version__)
    rnn_wrapper = info.options.get("layer") == "rnn" or info.name.startswith(f"{info.framework}.layers.RNN(")
    if info.options.get("layer") not in (None, "rnn"):
        raise NoBuilder(f"no Keras bench builder for {info.name}")

    def layer(**kw):
        if rnn_wrapper:
            cell = (keras.layers.LSTMCell if lstm else keras.layers.GRUCell)(H, **seeded, **kw)
            return keras.layers.RNN(cell, return_sequences=True)
        return (keras.layers.LSTM if lstm else keras.layers.GRU)(H, return_sequences=True, **seeded, **kw)

    def model(*layers):
        m = keras.Sequential([keras.Input((T, H), batch_size=B), *layers])
        return m

    if backend == "tensorflow":
        import tensorflow as tf

        b.threads = f"tf intra-op {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}"
        x, dy = tf.constant(x_np), tf.constant(dy_np)

        def fwd(m):
            f = tf.function(lambda t: m(t, training=True))
            return lambda: f(x).numpy()

        def fb(m):
            @tf.function
            def g(t):
                with tf.GradientTape() as tape:
                    tape.watch(t)
                    loss = tf.reduce_sum(m(t, training=True) * dy)
                return tape.gradient(loss, [t] + m.trainable_variables)
            return lambda: g(x)[0].numpy()
    elif backend == "jax":
        fwd, fb = _keras_jax_calls(b, x_np, dy_np)
    else:
        import torch

        b.threads = f"torch {torch.get_num_threads()}"
        x, dy = torch.from_numpy(x_np), torch.from_numpy(dy_np)
        xg = x.clone().requires_grad_(True)

        def fwd(m):
            def f():
                with torch.no_grad():
                    m(x, training=True)
            return f

        def fb(m):
            def f():
                xg.grad = None
                for v in m.trainable_variables:
                    v.value.grad = None
                (m(xg, training=True) * dy).sum().backward()
            return f

    off = model(layer())
    variants = {"off": off, "input": model(layer(dropout=P)), "recurrent": model(layer(recurrent_dropout=P))}
    two_off = model(layer(), layer())
    two_drop = model(layer(), keras.layers.Dropout(P, seed=2), layer())
    impl1 = None if rnn_wrapper else model(layer(implementation=1))
    kind = "LSTM" if lstm else "GRU"
    for mode, mk in (("forward", fwd), ("forward+backward", fb)):
        base = (mode, "off", 1, "")
        b.add(mode, "off", mk(off))
        b.add(mode, "input", mk(variants["input"]), note=f"dropout={P}", against=base,
              comparison="input dropout vs off")
        b.add(mode, "recurrent", mk(variants["recurrent"]), note=f"recurrent_dropout={P}: the generic cell loop, "
              "implementation=1", against=base,
              comparison="keras recurrent_dropout (generic loop, implementation=1) vs off (fused-path eligible)")
        if impl1 is not None:
            b.add(mode, "off", mk(impl1), variant="implementation=1",
                  note="what recurrent_dropout switches to, without its masks", against=base,
                  comparison="keras implementation=1 vs 2 (no dropout)")
        b.add(mode, "off", mk(two_off), layers=2)
        b.add(mode, "inter-layer", mk(two_drop), layers=2, note=f"{kind}, Dropout({P}), {kind}",
              against=(mode, "off", 2, ""), comparison="inter-layer Dropout layer vs off (2 layers)")
    return b


def _keras_jax_calls(b, x_np, dy_np):
    """(fwd(model), fb(model)) for Keras on JAX: ``stateless_call`` under ``jax.jit``; the dropout
    seed state is passed in unchanged, so every call draws the same masks (the cost is the same)."""
    import jax
    import jax.numpy as jnp

    b.threads = "XLA default"
    x, dy = jnp.asarray(x_np), jnp.asarray(dy_np)

    def values(m):
        return [v.value for v in m.trainable_variables], [v.value for v in m.non_trainable_variables]

    def fwd(m):
        tv, ntv = values(m)
        f = jax.jit(lambda tv, ntv, t: m.stateless_call(tv, ntv, t, training=True)[0])
        return lambda: f(tv, ntv, x).block_until_ready()

    def fb(m):
        tv, ntv = values(m)
        loss = lambda tv, t: jnp.sum(m.stateless_call(tv, ntv, t, training=True)[0] * dy)  # noqa: E731
        g = jax.jit(jax.grad(loss, argnums=(0, 1)))
        return lambda: jax.block_until_ready(g(tv, x))

    return fwd, fb


# ------------------------------------------------------------------ TensorFlow raw ops

def tf_block_lstm(info, size):
    """tf.raw_ops.BlockLSTM / BlockLSTMV2 inside tf.function; input dropout = tf.nn.dropout(x)."""
    import tensorflow as tf

    import reference as ref
    from reference import layouts

    T, B, H = SIZES[size]
    w = ref.random_lstm(np.random.default_rng(0), H, H)
    v2 = info.name.endswith("V2")
    d = (layouts.to_block_lstm_v2 if v2 else layouts.to_block_lstm)(w, dtype=np.float32)
    weights = {k: tf.Variable(v) if k in ("w", "b") else v for k, v in d.items()}
    op = tf.raw_ops.BlockLSTMV2 if v2 else tf.raw_ops.BlockLSTM
    x_np, dy_np = _rng_arrays(0, (T, B, H), (T, B, H))
    x, dy = tf.constant(x_np), tf.constant(dy_np)
    zeros = tf.zeros((B, H))

    def call(t, drop_in):
        if drop_in:
            t = tf.nn.dropout(t, P)
        return op(seq_len_max=np.int64(T), x=t, cs_prev=zeros, h_prev=zeros, **weights).h

    def fwd(drop_in):
        f = tf.function(lambda t: call(t, drop_in))
        return lambda: f(x).numpy()

    def fb(drop_in):
        @tf.function
        def g(t):
            with tf.GradientTape() as tape:
                tape.watch(t)
                loss = tf.reduce_sum(call(t, drop_in) * dy)
            return tape.gradient(loss, [t, weights["w"], weights["b"]])
        return lambda: g(x)[0].numpy()

    b = Bench(info.name, size, T, B, H, version=tf.__version__, threads="tf default")
    for mode, mk in (("forward", fwd), ("forward+backward", fb)):
        b.add(mode, "off", mk(False))
        b.add(mode, "input", mk(True), note="tf.nn.dropout(x) before the op", against=(mode, "off", 1, ""),
              comparison="input dropout vs off")
    b.na("recurrent", "a raw op has no dropout knob (the kernel loops over time inside)")
    b.na("inter-layer", "one layer per op; stacking is the caller's graph")
    return b


# ------------------------------------------------------------------ flax.linen

def flax_linen(info, size):
    """nn.RNN(cell) in a module, jax.jit'ed forward and jax.grad; dropout = nn.Dropout on the
    input / between two nn.RNN layers, rngs={"dropout": key}."""
    import jax
    import jax.numpy as jnp
    from flax import linen as nn

    T, B, H = SIZES[size]
    cell_name = info.options.get("cell") or info.name.split(".")[-1]
    if cell_name not in ("LSTMCell", "OptimizedLSTMCell", "GRUCell"):
        raise NoBuilder(f"no flax bench builder for {info.name}")
    Cell = getattr(nn, cell_name)

    class Net(nn.Module):
        layers: int = 1
        p_in: float = 0.0
        p_inter: float = 0.0

        @nn.compact
        def __call__(self, x):
            if self.p_in:
                x = nn.Dropout(self.p_in, deterministic=False)(x)
            for l in range(self.layers):
                if l and self.p_inter:
                    x = nn.Dropout(self.p_inter, deterministic=False)(x)
                x = nn.RNN(Cell(features=H), time_major=True)(x)
            return x

    x_np, dy_np = _rng_arrays(0, (T, B, H), (T, B, H))
    x, dy = jnp.asarray(x_np), jnp.asarray(dy_np)
    key = jax.random.key(1)

    inits = {}

    def compiled(net):
        if net.layers not in inits:  # dropout adds no parameters: one init per depth
            inits[net.layers] = net.init({"params": jax.random.key(0), "dropout": key}, x)
        params = inits[net.layers]
        f = jax.jit(lambda p, t, k: net.apply(p, t, rngs={"dropout": k}))
        g = jax.jit(jax.grad(lambda p, t, k: jnp.sum(net.apply(p, t, rngs={"dropout": k}) * dy), argnums=(0, 1)))
        return (lambda: f(params, x, key).block_until_ready(),
                lambda: jax.block_until_ready(g(params, x, key)))

    return _flax_bench(info, size, Net, compiled, "nn")


def _flax_bench(info, size, Net, compiled, api):
    """The Bench of a flax path (`api` "nn" or "nnx"): one and two layers, dropout off, on the
    input and between the layers; `compiled(net)` gives (forward, forward+backward) callables."""
    import flax

    T, B, H = SIZES[size]
    b = Bench(info.name, size, T, B, H, version=flax.__version__, threads="XLA default")
    nets = {("off", 1): Net(), ("input", 1): Net(p_in=P), ("off", 2): Net(layers=2),
            ("inter-layer", 2): Net(layers=2, p_inter=P)}
    fns = {k: compiled(n) for k, n in nets.items()}
    for i, mode in enumerate(MODES):
        b.add(mode, "off", fns[("off", 1)][i])
        b.add(mode, "input", fns[("input", 1)][i], note=f"{api}.Dropout on x", against=(mode, "off", 1, ""),
              comparison="input dropout vs off")
        b.add(mode, "off", fns[("off", 2)][i], layers=2)
        b.add(mode, "inter-layer", fns[("inter-layer", 2)][i], layers=2, note=f"{api}.Dropout between two {api}.RNN",
              against=(mode, "off", 2, ""), comparison="inter-layer dropout vs off (2 layers)")
    b.na("recurrent", f"{info.name} has no recurrent dropout knob (a custom cell would be user code)")
    return b


def flax_nnx(info, size):
    """nnx.RNN(cell) layers in an nnx.Module, ``nnx.jit`` forward and ``nnx.grad`` (w.r.t. the
    params and x); dropout = nnx.Dropout on the input / between two nnx.RNN layers."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    T, B, H = SIZES[size]
    cell_name = info.options.get("cell") or info.name.split(".")[-1]
    if cell_name not in ("LSTMCell", "OptimizedLSTMCell", "GRUCell"):
        raise NoBuilder(f"no flax.nnx bench builder for {info.name}")
    lstm = cell_name != "GRUCell"

    class Net(nnx.Module):
        def __init__(self, layers=1, p_in=0.0, p_inter=0.0):
            rngs = nnx.Rngs(params=0, dropout=1)
            self.drop_in = nnx.Dropout(p_in, rngs=rngs) if p_in else None
            self.drop_inter = nnx.Dropout(p_inter, rngs=rngs) if p_inter else None
            self.rnns = nnx.List([nnx.RNN(getattr(nnx, cell_name)(H, H, rngs=rngs), time_major=True)
                                  for _ in range(layers)])

        def __call__(self, x):
            zeros = jnp.zeros((B, H), x.dtype)
            carry = (zeros, zeros) if lstm else zeros  # explicit: nnx.RNN's own init draws from rngs
            if self.drop_in is not None:
                x = self.drop_in(x)
            for l, rnn in enumerate(self.rnns):
                if l and self.drop_inter is not None:
                    x = self.drop_inter(x)
                x = rnn(x, initial_carry=carry)
            return x

    x_np, dy_np = _rng_arrays(0, (T, B, H), (T, B, H))
    x, dy = jnp.asarray(x_np), jnp.asarray(dy_np)
    fwd = nnx.jit(lambda net, t: net(t))
    grad = nnx.jit(nnx.grad(lambda net, t: jnp.sum(net(t) * dy), argnums=(0, 1)))

    def compiled(net):
        return (lambda: fwd(net, x).block_until_ready(), lambda: jax.block_until_ready(grad(net, x)))

    return _flax_bench(info, size, Net, compiled, "nnx")


def jax_lstm_ref(info, size):
    """``jax.experimental.rnn.lstm_ref`` (the CPU reference of the cuDNN-only ``lstm``), jitted,
    through the adapter's own function; forward and ``jax.grad`` w.r.t. weights and x. It refuses
    any dropout: "Dropout not supported in LSTM reference because we cannot determine CUDNN
    dropout mask" (jax/experimental/rnn.py)."""
    import jax
    import jax.numpy as jnp

    import reference as ref

    from .adapters.jax_experimental_rnn import JaxExperimentalLSTM, pack_weights

    T, B, H = SIZES[size]
    rng = np.random.default_rng(0)
    x_np, dy_np = _rng_arrays(0, (B, T, H), (B, T, H))
    x, dy, lens = jnp.asarray(x_np), jnp.asarray(dy_np), jnp.full((B,), T, jnp.int32)
    adapter = JaxExperimentalLSTM(info)
    b = Bench(info.name, size, T, B, H, version=jax.__version__, threads="XLA default")
    for L in (1, 2):
        f = adapter.function(H, H, L, 1)
        w = jnp.asarray(pack_weights([[ref.random_lstm(rng, H, H)] for _ in range(L)]))
        h0 = jnp.zeros((L, B, H), jnp.float32)
        fwd = jax.jit(lambda w, t, f=f, h0=h0: f(w, t, h0, h0, lens)[0])
        grad = jax.jit(jax.grad(lambda w, t, fwd=fwd: jnp.sum(fwd(w, t) * dy), argnums=(0, 1)))
        b.add("forward", "off", (lambda fwd=fwd, w=w: fwd(w, x).block_until_ready()), layers=L)
        b.add("forward+backward", "off", (lambda grad=grad, w=w: jax.block_until_ready(grad(w, x))), layers=L)
    why = "lstm_ref refuses dropout != 0 (cuDNN's dropout mask cannot be reproduced); lstm itself is CUDA-only"
    for kind in ("input", "recurrent"):
        b.na(kind, why)
    b.na("inter-layer", why, layers=2)
    return b


# ------------------------------------------------------------------ onnxruntime

def onnxruntime_rnn(info, size):
    """One-node LSTM/GRU model, InferenceSession built once; forward only."""
    import onnxruntime as ort

    import reference as ref
    from reference import layouts

    from .adapters.onnxruntime_rnn import one_node_model

    T, B, H = SIZES[size]
    rng = np.random.default_rng(0)
    lstm = info.cell == "lstm"
    w = ref.random_lstm(rng, H, H) if lstm else ref.random_gru(rng, H, H)
    d = (layouts.to_onnx_lstm if lstm else layouts.to_onnx_gru)([w], dtype=np.float32)
    (x,) = _rng_arrays(0, (T, B, H))
    feeds = {"X": x, "W": d["W"], "R": d["R"], "B": d.get("B")}
    attrs = dict(hidden_size=H, direction="forward")
    if not lstm:
        attrs["linear_before_reset"] = d["linear_before_reset"]
    outs = [(T, 1, B, H), (1, B, H)] + ([(1, B, H)] if lstm else [])
    model = one_node_model("LSTM" if lstm else "GRU", {k: v for k, v in feeds.items() if v is not None},
                           attrs, outs)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    inputs = {k: np.ascontiguousarray(v) for k, v in feeds.items() if v is not None}
    b = Bench(info.name, size, T, B, H, version=ort.__version__, threads="onnxruntime default")
    b.add("forward", "off", lambda: sess.run(None, inputs))
    b.na("off", "an InferenceSession has no backward", modes=("forward+backward",))
    why = "an inference session of one RNN node: no dropout knob (an ONNX Dropout node would be a second model)"
    for kind in ("input", "recurrent", "inter-layer"):
        b.na(kind, why)
    return b


# ------------------------------------------------------------------ dispatch

def builder(info):
    """The bench builder for a registry path, or raise NoBuilder(reason)."""
    n = info.name
    if info.framework == "torch":
        return torch_cells if "Cell" in n.split("[")[0] else torch_nn
    if info.framework in ("keras", "tf_keras"):
        return keras_layers
    if info.framework == "tensorflow" and n.startswith("tf.raw_ops.BlockLSTM"):
        return tf_block_lstm
    if info.framework == "flax.linen":
        return flax_linen
    if info.framework == "flax.nnx":
        return flax_nnx
    if n == "jax.experimental.rnn.lstm_ref":
        return jax_lstm_ref
    if info.framework == "onnxruntime":
        return onnxruntime_rnn
    raise NoBuilder(f"no bench builder for {n} (framework {info.framework}); add one to conformance/bench.py")


# ------------------------------------------------------------------ the reference against torch

def reference_vs_torch(size, threads="one"):
    """Cases for the float64 reference (``reference.run`` / ``run_vjp``) and torch CPU
    ``nn.LSTM`` float32 (forward as users call it, autograd on; backward alone on a retained
    graph; forward+backward). `threads`: "one" (torch and BLAS pinned to one thread) or
    "default" (whatever both use by default)."""
    import torch

    import reference as ref

    T, B, H = SIZES[size]
    rng = np.random.default_rng(0)
    w = ref.random_lstm(rng, H, H)
    x = rng.normal(size=(T, B, H))
    dy = rng.normal(size=(T, B, H))
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(H, H)
    xt = torch.tensor(x, dtype=torch.float32)
    dyt = torch.tensor(dy, dtype=torch.float32)
    xg = xt.clone().requires_grad_(True)
    kept = {}

    def torch_backward():  # backward alone: the graph of one forward, retained
        if "y" not in kept:
            kept["y"] = lstm(xg)[0]
        kept["y"].backward(dyt, retain_graph=True)

    def torch_fb():
        xg.grad = None
        lstm(xg)[0].backward(dyt)

    fns = {"reference forward": lambda: ref.run(w, x), "torch forward": lambda: lstm(xt),
           "float64 GEMM floor": float64_gemm_floor(w.W, w.R, x),
           "reference forward+backward": lambda: ref.run_vjp(w, x, dy), "torch forward+backward": torch_fb,
           "torch backward": torch_backward}
    ctx = (lambda: single_thread(torch)) if threads == "one" else contextlib.nullcontext
    return fns, ctx


def float64_gemm_floor(W, R, x):
    """The matrix products any float64 LSTM forward must do, and nothing else: the input
    projection of all steps (one GEMM) and one recurrent product per step. Its time over torch's
    forward is the least ratio a float64 NumPy reference can reach on this machine."""
    T, B, _ = x.shape
    WT, RT = np.ascontiguousarray(W.T), np.ascontiguousarray(R.T)
    x2, h, out = x.reshape(T * B, -1), np.zeros((B, R.shape[1])), np.empty((B, R.shape[0]))

    def run():
        x2 @ WT
        for _ in range(T):
            np.matmul(h, RT, out=out)
    return run


def fastest_ratio(a_s, b_s):
    """min(a) / min(b): the fastest rounds, each side's best estimate of its uncontended cost."""
    return float(np.min(a_s) / np.min(b_s))


def reference_ratios(times, compare=paired_ratio):
    """`compare(reference times, torch times)` (default: median and IQR of the per-round ratios)
    from `reference_vs_torch` times: forward, forward+backward, the backward alone (reference:
    run_vjp - run of the same round; torch: the retained-graph backward) and the GEMM floor."""
    ref_back = np.subtract(times["reference forward+backward"], times["reference forward"])
    return {
        "forward": compare(times["reference forward"], times["torch forward"]),
        "forward+backward": compare(times["reference forward+backward"], times["torch forward+backward"]),
        "backward": compare(ref_back, times["torch backward"]),
        "forward GEMM floor": compare(times["float64 GEMM floor"], times["torch forward"]),
    }
