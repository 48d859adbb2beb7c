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
rounds; ``RNN_BENCH_SIZES=medium`` (set by ``make matrix`` in each release's run) runs only the
sizes named (comma-separated), with the same rounds as a full run; otherwise (``make test``) a
smoke run: the small size, one round of one call each.
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
SIZES_ENV = "RNN_BENCH_SIZES"
# full runs: (rounds, min seconds per block) per size
PLAN = {"small": (15, 0.02), "medium": (9, 0.03), "large": (5, 0.0)}
QUICK_PLAN = (1, 0.0)


def chosen_sizes(env=None):
    """The sizes ``RNN_BENCH_SIZES`` names (comma-separated), () when unset; ValueError on an
    unknown size."""
    text = (os.environ if env is None else env).get(SIZES_ENV, "").strip()
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in names if s not in SIZES]
    if unknown:
        raise ValueError(f"{SIZES_ENV}={text!r}: unknown size(s) {', '.join(unknown)}; known: {', '.join(SIZES)}")
    return names


def full_mode(env=None):
    """True when ``RNN_BENCH_FULL=1`` (``make bench``: all sizes) or ``RNN_BENCH_SIZES`` names
    sizes (``make matrix``: those): every case, several rounds."""
    return (os.environ if env is None else env).get(FULL_ENV, "") == "1" or bool(chosen_sizes(env))


def sizes(env=None):
    return chosen_sizes(env) or (tuple(SIZES) if full_mode(env) else ("small",))


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
    from conformance.core.files import write_text_atomic

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


def rng_arrays(seed, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def float64_gemm_floor(W, R, x):
    """The matrix products any float64 LSTM forward must do, and nothing else: the input
    projection of all steps (one GEMM) and one recurrent product per step. Its time over torch's
    forward is the least ratio a float64 NumPy reference can reach on this machine; the
    reference forward over it is the bound `suites/test_bench_reference.py` asserts."""
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
    """`compare(a, b)` (default: median and IQR of the per-round ratios) from `reference_vs_torch`
    times. Against torch: forward, forward+backward, the backward alone (reference: run_vjp - run
    of the same round; torch: the retained-graph backward) and the GEMM floor ("forward GEMM
    floor": float64 GEMM floor / torch forward). "forward / GEMM floor": the reference forward
    over the float64 GEMM floor of the same round, the reference's own overhead above the matrix
    products any float64 forward must do."""
    ref_back = np.subtract(times["reference forward+backward"], times["reference forward"])
    return {
        "forward": compare(times["reference forward"], times["torch forward"]),
        "forward+backward": compare(times["reference forward+backward"], times["torch forward+backward"]),
        "backward": compare(ref_back, times["torch backward"]),
        "forward GEMM floor": compare(times["float64 GEMM floor"], times["torch forward"]),
        "forward / GEMM floor": compare(times["reference forward"], times["float64 GEMM floor"]),
    }
