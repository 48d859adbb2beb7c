"""Benchmarks on a CUDA machine: cuDNN against the CPU kernel, dropout off / on, packed vs padded.

torch ``nn.LSTM`` and ``nn.GRU``, 2 layers (so inter-layer dropout exists), float32, input size =
hidden size, train() mode, built once per device with the same weights. Three variants, each
timed forward (``torch.no_grad()``) and forward+backward (``y.backward(dy)``), on the GPU
(cuDNN) and on the CPU (oneDNN for padded LSTMs, torch's native kernel otherwise; the profiler
names it in each entry's note):

- ``padded``: a padded (T, B, H) tensor, dropout 0 (the base);
- ``padded, dropout 0.5``: ``nn.LSTM(..., num_layers=2, dropout=0.5)``, train mode;
- ``packed``: ``pack_padded_sequence(x, lengths, enforce_sorted=False)`` with random lengths
  in [1, T] (one row full; seeded), dropout 0, pack and unpack inside the timed call. It does
  less work than padded: the note gives the fraction of valid steps (about 0.5).

Proof that cuDNN ran: before any timing, every GPU case (forward and forward+backward) runs
once under ``torch.profiler`` (`conformance.adapters.torch.common.kernel_ran`, as the nn adapter
checks its CUDA calls) and must show ``aten::_cudnn_rnn``, and its outputs (and, for
forward+backward, dx) must be finite. Anything else fails the test before anything is timed: a
fallback is a failure, never a pass. The CPU forward cases are profiled too, for the kernel
name. Warm-up: that profiled call, then one timed unprofiled call of every case (GPU cases two
more after it); the timed call says whether the rounds must be cut.

Timing: alternating blocks as `conformance.core.bench.measure` (each round runs one block of
every case, CPU and GPU blocks interleaved, the order rotating each round); a GPU call ends with
``torch.cuda.synchronize()``, so a block's wall time covers its kernels. cuDNN runs with torch's
defaults (``torch.backends.cudnn.allow_tf32``, True by default, lets float32 RNNs use TF32 on
the H200; the GPU notes give its value). Reported per case:
median and IQR of ms per call. Ratios are per round (median, IQR): "cuDNN speed-up over CPU"
(CPU time / GPU time), "inter-layer dropout 0.5 vs off" (on / off) and "packed vs padded"
(packed / padded), per device and mode. The numbers are reported, never asserted. The CPU side
runs with torch's default thread count (recorded in ``threads``; 16 on the GPU machine), not
pinned to one thread as in test_bench.py: there is no other load on a borrowed machine, and a
GPU against one core says little.

Sizes and rounds (`PLAN`; fixed here: the GPU run does not set RNN_BENCH_FULL, and a run that
does gets the same plan): small (16, 8, 32) 7 rounds, blocks of >= 10 ms; medium (64, 32, 128)
5 rounds, >= 20 ms; large (256, 64, 256) 2 rounds, GPU blocks >= 50 ms, CPU blocks one call
(the CPU large calls are the slow part). Rounds are cut (to at least 1, said in the notes and
the reason) where the timed warm-up calls say one round would take longer than `ROUND_BUDGET_S`
allows (4 / 8 / 16 s). Expected on the H200 machine (an estimate, not yet measured there): small
and medium about 2-4 s per cell; large: the CPU side is the cost, about three CPU rounds (the
warm-up pass and 2 timed rounds) — one round of the six CPU large cases took 6.5 s (LSTM) and
5.6 s (GRU) on one core of the development machine, so at most about 20 s per cell, less with
16 threads; the JAX timing about 5 s (compiles included). About 30-60 s for the module, under
the 90 s the benchmarks get.

Optional: ``jax.experimental.rnn.lstm`` (cuDNN, GPU) against ``lstm_ref`` (jax.lax.scan, CPU),
one layer, medium size, forward only, if JAX sees a GPU; the lowered GPU computation must hold
the cuDNN RNN custom call (as the JAX adapter checks). It needs torch and jax (the module's
framework mark and its own).

Without CUDA every case skips before building or timing anything, with a reason starting
``conformance.core.devices.NO_CUDA``.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from conformance.core import bench
from conformance.core.devices import no_cuda
from conformance.core.frameworks import installed_version, require

pytestmark = [pytest.mark.gpu, pytest.mark.framework("torch")]

CELLS = ("lstm", "gru")
SIZES = ("small", "medium", "large")
LAYERS = 2
P = 0.5  # inter-layer dropout of the dropout variant
SEED = 20260118
MODES = bench.MODES  # ("forward", "forward+backward")
# size: (rounds, min seconds per GPU block, min seconds per CPU block)
PLAN = {"small": (7, 0.01, 0.01), "medium": (5, 0.02, 0.02), "large": (2, 0.05, 0.0)}
# size: seconds the timed rounds of one test may take, judged from the timed warm-up calls
ROUND_BUDGET_S = {"small": 4.0, "medium": 8.0, "large": 16.0}
GPU_WARMUP = 2  # extra warm-up calls of each GPU case after its timed warm-up call

BASE, DROP, PACK = "padded", f"padded, dropout {P}", "packed"
# variant name: (entry dropout field, p, packed)
VARIANTS = {BASE: ("off", 0.0, False), DROP: ("inter-layer", P, False), PACK: ("off", 0.0, True)}
SIDES = ("cpu", "gpu")  # the roles; their devices are arguments ("cuda" and "cpu" in the tests)
NOT_ASSERTED = "timings and ratios are reported, not asserted; asserted: cuDNN ran every GPU case, outputs finite"


def cls_name(cell):
    return "LSTM" if cell == "lstm" else "GRU"


def lengths_of(T, B, seed=SEED):
    """Random lengths in [1, T], the first row T (the padded output keeps T steps)."""
    lengths = np.random.default_rng(seed).integers(1, T + 1, size=B)
    lengths[0] = T
    return lengths


# ------------------------------------------------------------------ cases

class CellBench:
    """The 12 cases of one cell and size: {(side, mode, variant): fn}, fn() -> tensors to check.
    The modules are built once per side, the dropout module with the base module's weights."""

    def __init__(self, torch, cell, size, devices=None, seed=SEED):
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        self.torch, self.cell, self.size = torch, cell, size
        self.devices = dict(zip(SIDES, ("cpu", "cuda"))) if devices is None else dict(devices)
        self.T, self.B, self.H = T, B, H = bench.SIZES[size]
        cls = getattr(torch.nn, cls_name(cell))
        torch.manual_seed(seed)
        base = cls(H, H, num_layers=LAYERS)
        x_np, dy_np = bench.rng_arrays(seed, (T, B, H), (T, B, H))
        self.lengths = lengths_of(T, B, seed)
        lengths = torch.from_numpy(self.lengths.astype(np.int64))  # pack_padded_sequence wants them on the CPU
        self.fns, self.cuda = {}, {}
        for side, device in self.devices.items():
            mods = {}
            for name, (_, p, _) in VARIANTS.items():
                m = cls(H, H, num_layers=LAYERS, dropout=p)
                m.load_state_dict(base.state_dict())
                mods[name] = m.to(device).train()
            x = torch.from_numpy(x_np).to(device)
            dy = torch.from_numpy(dy_np).to(device)
            xg = x.clone().requires_grad_(True)
            sync = torch.cuda.synchronize if device.startswith("cuda") else None
            for name, (_, _, packed) in VARIANTS.items():
                m = mods[name]

                def call(inp, m=m, packed=packed):
                    if packed:
                        inp = pack_padded_sequence(inp, lengths, enforce_sorted=False)
                    out = m(inp)[0]
                    return pad_packed_sequence(out, total_length=T)[0] if packed else out

                def fwd(call=call, x=x, sync=sync):
                    with torch.no_grad():
                        y = call(x)
                    if sync:
                        sync()
                    return (y,)

                def fb(call=call, m=m, xg=xg, dy=dy, sync=sync):
                    m.zero_grad(set_to_none=True)
                    xg.grad = None
                    y = call(xg)
                    y.backward(dy)
                    if sync:
                        sync()
                    return y.detach(), xg.grad

                self.fns[(side, "forward", name)] = fwd
                self.fns[(side, "forward+backward", name)] = fb
                self.cuda[side] = sync is not None

    def keys(self):
        """CPU and GPU blocks of the same case next to each other."""
        return [(side, mode, v) for mode in MODES for v in VARIANTS for side in SIDES]

    def valid_fraction(self):
        return float(self.lengths.sum() / (self.T * self.B))

    def prove(self):
        """Run each GPU case and each CPU forward case once under the profiler (their first
        warm-up): {key: (kernel, finite)}; a CPU forward+backward case gets the kernel of its
        forward (the same module call) and no finiteness check of its own (None)."""
        from conformance.adapters.torch.common import kernel_ran

        out = {}
        for key in self.keys():
            side, mode, v = key
            if side == "cpu" and mode != "forward":
                continue
            tensors, kernel = kernel_ran(self.fns[key])
            out[key] = (kernel, all(t is not None and bool(self.torch.isfinite(t).all()) for t in tensors))
        for key in self.keys():
            if key not in out:
                out[key] = (out[(key[0], "forward", key[2])][0], None)
        return out

    def warm(self):
        """One timed, unprofiled call of every case (GPU cases GPU_WARMUP more after it): {key: seconds}."""
        took = {}
        for key in self.keys():
            start = time.perf_counter()
            self.fns[key]()
            took[key] = time.perf_counter() - start
            for _ in range(GPU_WARMUP if self.cuda[key[0]] else 0):
                self.fns[key]()
        return took

    def plan(self, took, rounds=None):
        """(rounds, {key: min block seconds}, cut note): PLAN[size], rounds cut to fit
        ROUND_BUDGET_S judged from the warm-up calls `took` ({key: seconds})."""
        planned, gpu_block, cpu_block = PLAN[self.size]
        rounds = planned if rounds is None else rounds
        blocks = {k: gpu_block if self.cuda[k[0]] else cpu_block for k in self.keys()}
        one_round = sum(max(took[k], blocks[k]) for k in self.keys())
        fit = max(1, int(ROUND_BUDGET_S[self.size] // max(one_round, 1e-9)))
        note = ""
        if fit < rounds:
            note = (f"rounds cut from {rounds} to {fit}: one round ~{one_round:.1f} s (warm-up calls), "
                    f"budget {ROUND_BUDGET_S[self.size]:.0f} s")
            rounds = fit
        return rounds, blocks, note

    def measure(self, rounds, blocks):
        """Alternating blocks as bench.measure, with a minimum block length per case."""
        keys = self.keys()
        calls = {k: bench._block_calls(self.fns[k], blocks[k]) for k in keys}
        times = {k: [] for k in keys}
        for r in range(rounds):
            shift = r % len(keys)
            for k in keys[shift:] + keys[:shift]:
                fn, n = self.fns[k], calls[k]
                start = time.perf_counter()
                for _ in range(n):
                    fn()
                times[k].append((time.perf_counter() - start) / n)
        return times, calls


def adapter_label(cell, device):
    return f"torch.nn.{cls_name(cell)} ({device})"


def summarize(cb, proof, times, calls, threads, cut_note=""):
    """(measurement entries, ratio entries, summary line) for the benchmarks section."""
    T, B, H = cb.T, cb.B, cb.H
    frac = cb.valid_fraction()
    entries, ratios = [], []
    for side, mode, v in cb.keys():
        key, device = (side, mode, v), cb.devices[side]
        dropout, p, packed = VARIANTS[v]
        s = bench.summary(times[key], calls[key])
        note = f"kernel {proof[key][0]}"
        note += f"; nn.{cls_name(cb.cell)}(num_layers={LAYERS}, dropout={p}), train()"
        if packed:
            note += f"; enforce_sorted=False, random lengths, valid steps {frac:.2f} of T*B; pack/unpack included"
        if cb.cuda[side]:
            note += ("; torch.cuda.synchronize() after each call; torch.backends.cudnn.allow_tf32="
                     f"{cb.torch.backends.cudnn.allow_tf32}")
        if cut_note:
            note += f"; {cut_note}"
        entries.append(dict(adapter=adapter_label(cb.cell, device), device=device, size=cb.size, T=T, B=B, H=H,
                            mode=mode, dropout=dropout, layers=LAYERS,
                            variant="packed, enforce_sorted=False" if packed else "padded",
                            median_ms=round(s.median_ms, 4), iqr_ms=round(s.iqr_ms, 4), rounds=s.rounds,
                            calls=s.calls, threads="CUDA" if cb.cuda[side] else threads, note=note))

    def ratio(comparison, a, b, adapter, mode, variant, note=""):
        med, iqr = bench.paired_ratio(times[a], times[b])
        ratios.append(dict(comparison=comparison, adapter=adapter, size=cb.size, mode=mode, variant=variant,
                           ratio=round(med, 4), ratio_iqr=round(iqr, 4), rounds=len(times[a]), threads=threads,
                           note=note or NOT_ASSERTED))
        return med

    gpu, cpu = cb.devices["gpu"], cb.devices["cpu"]
    speedup, line = {}, []
    for mode in MODES:
        for v in VARIANTS:
            speedup[(mode, v)] = ratio("cuDNN speed-up over CPU (CPU time / GPU time)", ("cpu", mode, v),
                                       ("gpu", mode, v), f"torch.nn.{cls_name(cb.cell)} ({gpu} vs {cpu})", mode, v)
        for side in SIDES:
            label = adapter_label(cb.cell, cb.devices[side])
            drop = ratio(f"inter-layer dropout {P} vs off", (side, mode, DROP), (side, mode, BASE), label, mode, BASE)
            pack = ratio("packed vs padded", (side, mode, PACK), (side, mode, BASE), label, mode, PACK,
                         note=f"packed does {frac:.2f} of the padded steps (random lengths); " + NOT_ASSERTED)
            line.append(f"{cb.devices[side]} {mode}: dropout on/off x{drop:.2f}, packed/padded x{pack:.2f}")
    med = {k: bench.summary(t).median_ms for k, t in times.items()}
    head = "; ".join(f"{mode}: {gpu} {med[('gpu', mode, BASE)]:.3g} ms vs {cpu} {med[('cpu', mode, BASE)]:.3g} ms, "
                     f"speed-up padded {speedup[(mode, BASE)]:.1f}x / dropout {P} {speedup[(mode, DROP)]:.1f}x / "
                     f"packed {speedup[(mode, PACK)]:.1f}x" for mode in MODES)
    rounds = len(next(iter(times.values())))
    summary = (f"{cb.size} T={T} B={B} H={H}, {LAYERS} layers, {rounds} alternating rounds, CPU {threads}. {head}. "
               "Cost ratios: " + "; ".join(line) + (f"; {cut_note}" if cut_note else "") + f". {NOT_ASSERTED}")
    return entries, ratios, summary


def repro(cell, size):
    """A standalone torch snippet: the three variants on both devices, cuDNN proof, ms per call."""
    T, B, H = bench.SIZES[size]
    n = 3 if size == "large" else 20
    return f"""import time, torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
T, B, H = {T}, {B}, {H}
torch.manual_seed(0)
lengths = torch.randint(1, T + 1, (B,)); lengths[0] = T
for dev in ("cpu", "cuda"):
    for dropout, packed in ((0.0, False), ({P}, False), (0.0, True)):
        m = torch.nn.{cls_name(cell)}(H, H, num_layers={LAYERS}, dropout=dropout).to(dev).train()
        x = torch.randn(T, B, H, device=dev, requires_grad=True)
        def run(backward):
            with torch.set_grad_enabled(backward):
                inp = pack_padded_sequence(x, lengths, enforce_sorted=False) if packed else x
                y = m(inp)[0]
                y = pad_packed_sequence(y, total_length=T)[0] if packed else y
                if backward:
                    y.backward(torch.ones_like(y))
            if dev == "cuda":
                torch.cuda.synchronize()
            return y
        with torch.profiler.profile() as prof:
            y = run(False)
        names = {{e.name for e in prof.events()}}
        print(dev, "dropout", dropout, "packed", packed, "cuDNN ran:", any("_cudnn_rnn" in s for s in names),
              "finite:", bool(torch.isfinite(y).all()))
        for backward in (False, True):
            run(backward); run(backward)  # warm-up
            t = time.perf_counter()
            for _ in range({n}):
                run(backward)
            print("   ", "forward+backward" if backward else "forward", f"{{(time.perf_counter() - t) / {n} * 1e3:.3f}} ms")
"""


def check_proof(cb, proof):
    """Failures of the proof pass: a GPU case that ran no cuDNN, or non-finite outputs."""
    bad = []
    for key, (kernel, finite) in proof.items():
        side = key[0]
        if side == "gpu" and kernel != "cuDNN":
            bad.append(f"{key[1]} {key[2]} on {cb.devices[side]} ran the {kernel} kernel, not cuDNN (a fallback)")
        if side == "gpu" and finite is not True:
            bad.append(f"{key[1]} {key[2]} on {cb.devices[side]}: non-finite outputs or gradients")
    return bad


def run_and_record(torch, cell, size, devices, benchmark, conformance_record, conformance_section, rounds=None):
    """Build, prove, time and report one cell and size (the test's body after the CUDA check).
    `devices`: {"cpu": device, "gpu": device}; `rounds`: override PLAN (None: PLAN)."""
    cb = CellBench(torch, cell, size, devices)
    proof = cb.prove()
    kernels = {side: sorted({proof[k][0] for k in cb.keys() if k[0] == side}) for side in SIDES}
    conformance_record(kernel="; ".join(f"{cb.devices[s]}: {', '.join(kernels[s])}" for s in SIDES))
    bad = check_proof(cb, proof)
    if bad:
        conformance_record(reason=("cuDNN proof failed: " + "; ".join(bad))[:2000])
        pytest.fail("cuDNN proof failed (nothing timed): " + "; ".join(bad) + f"\nrepro:\n{repro(cell, size)}")
    n, blocks, cut = cb.plan(cb.warm(), rounds)
    times, calls = cb.measure(n, blocks)
    n_threads = torch.get_num_threads()
    threads = f"torch {n_threads} thread{'s' if n_threads != 1 else ''}"
    entries, ratios, summary = summarize(cb, proof, times, calls, threads, cut)
    for e in entries + ratios:
        conformance_section("benchmarks", **e)
    conformance_record(reason=summary[:2000])
    print(summary)
    benchmark.extra_info.update(size=size, cell=cell, threads=threads, rounds=n,
                                cases={" / ".join(k): e["median_ms"] for k, e in zip(cb.keys(), entries)},
                                ratios={f"{r['comparison']} ({r['adapter']}, {r['mode']}, {r['variant']})": r["ratio"]
                                        for r in ratios})
    benchmark.pedantic(cb.fns[("gpu", "forward", BASE)], rounds=max(n, 3), iterations=1, warmup_rounds=0)
    return cb, proof, times, entries, ratios, summary


def cuda_or_skip(torch, what):
    """Skip (reason NO_CUDA ...) without CUDA; fail where CUDA is there but cuDNN is not."""
    __tracebackhide__ = True  # the skip points at the test
    if not torch.cuda.is_available():
        pytest.skip(no_cuda(what))
    from conformance.adapters.base import DeviceUnavailable
    from conformance.adapters.torch.common import check_cuda

    try:
        check_cuda(what, need_cudnn=True)
    except DeviceUnavailable as e:
        pytest.fail(f"CUDA is available but cuDNN is not: {e}")


# ------------------------------------------------------------------ torch

# size-major: where the run's --conformance-budget stops the module early, the large sizes
# (the slow CPU side) are what is left out
GRID = [(c, s) for s in SIZES for c in CELLS]


@pytest.mark.benchmark(group="cuDNN vs CPU")
@pytest.mark.parametrize("cell, size", GRID, ids=[f"{c}-{s}" for c, s in GRID])
def test_cudnn_vs_cpu(cell, size, benchmark, conformance_record, conformance_section):
    """cuDNN vs the CPU kernel for one cell and size: forward and forward+backward, padded,
    dropout 0.5, packed. Asserted: cuDNN ran every GPU case, outputs finite; timings reported."""
    T, B, H = bench.SIZES[size]
    conformance_record(adapter=f"torch.nn.{cls_name(cell)}", framework="torch",
                       framework_version=installed_version("torch"), device="cuda", backend="cudnn", seed=SEED,
                       feature=f"benchmark cuDNN vs CPU ({size}, T={T} B={B} H={H}, {LAYERS} layers)",
                       repro=repro(cell, size))
    torch = require("torch")
    cuda_or_skip(torch, f"cuDNN vs CPU benchmark of nn.{cls_name(cell)} not run")
    run_and_record(torch, cell, size, {"cpu": "cpu", "gpu": "cuda"}, benchmark, conformance_record,
                   conformance_section)


# ------------------------------------------------------------------ jax.experimental.rnn (optional)

JAX_SIZE = "medium"
JAX_PLAN = (7, 0.02)  # rounds, min seconds per block


def jax_gpu_or_skip():
    """jax with a GPU device, or a skip whose reason starts with NO_CUDA."""
    __tracebackhide__ = True
    try:
        import jax
    except ModuleNotFoundError:
        torch = require("torch")
        if not torch.cuda.is_available():
            pytest.skip(no_cuda("and jax is not installed: the jax.experimental.rnn.lstm benchmark is not run"))
        require("jax")
    from conformance.adapters.jax.device import gpus as jax_gpus

    gpus = jax_gpus()
    if not gpus:
        pytest.skip(no_cuda("no GPU visible to JAX: jax.devices('gpu') fails; "
                            "the jax.experimental.rnn.lstm benchmark is not run"))
    return jax, gpus[0]


def jax_cases(jax, gpu, cpu, size=JAX_SIZE, seed=SEED):
    """{"gpu": f, "cpu": f}: lstm (cuDNN) on `gpu`, lstm_ref on `cpu`; one layer, forward, jitted,
    arguments committed to each device; f() blocks until ready. Also the GPU lowering's text."""
    import jax.numpy as jnp
    from jax.experimental import rnn

    T, B, H = bench.SIZES[size]
    I, L, bidi = H, 1, False
    w = rnn.init_lstm_weight(jax.random.PRNGKey(seed), I, H, L, bidi)
    x_np, = bench.rng_arrays(seed, (B, T, I))
    h0 = np.zeros((L, B, H), np.float32)
    lens = np.full(B, T, np.int32)

    def lstm(w, x, h, c, s):
        return rnn.lstm(x, h, c, w, s, I, H, L, 0.0, bidi)

    def ref(w, x, h, c, s):
        W_ih, W_hh, b_ih, b_hh = rnn.unpack_lstm_weights(w, I, H, L, bidi)
        return rnn.lstm_ref(x, h, c, W_ih, W_hh, b_ih, b_hh, s, I, H, L, 0.0, bidi)

    fns, text = {}, None
    for side, device, f in (("gpu", gpu, lstm), ("cpu", cpu, ref)):
        args = [jax.device_put(jnp.asarray(a), device) for a in (np.asarray(w), x_np, h0, h0, lens)]
        jf = jax.jit(f)
        if side == "gpu":
            text = jf.lower(*args).as_text()

        def run(jf=jf, args=args):
            out = jf(*args)
            jax.block_until_ready(out)
            return out
        fns[side] = run
    return fns, text


@pytest.mark.framework("jax")
@pytest.mark.benchmark(group="cuDNN vs CPU")
def test_jax_cudnn_lstm_vs_lstm_ref(benchmark, conformance_record, conformance_section):
    """jax.experimental.rnn.lstm (cuDNN) vs lstm_ref on the CPU: one layer, medium size, forward.
    Asserted: the GPU lowering holds the cuDNN RNN call, outputs finite; timings reported."""
    T, B, H = bench.SIZES[JAX_SIZE]
    conformance_record(adapter="jax.experimental.rnn.lstm", framework="jax",
                       framework_version=installed_version("jax"), device="cuda", backend="cudnn", seed=SEED,
                       feature=f"benchmark cuDNN lstm vs lstm_ref on the CPU ({JAX_SIZE}, T={T} B={B} H={H}, 1 layer)",
                       repro=("import jax; from suites.test_bench_gpu import jax_cases\n"
                              "fns, text = jax_cases(jax, jax.devices('gpu')[0], jax.devices('cpu')[0])\n"
                              "print('cudnn_rnn' in text); import timeit\n"
                              "for side, f in fns.items(): f(); print(side, timeit.timeit(f, number=20) / 20 * 1e3, 'ms')"))
    jax, gpu = jax_gpu_or_skip()
    from conformance.adapters.jax.experimental_rnn import CUDNN_CALL

    try:
        from jax.experimental import rnn
    except ImportError as e:
        pytest.skip(f"jax {jax.__version__}: jax.experimental.rnn cannot be imported ({e})")
    missing = [n for n in ("lstm", "lstm_ref", "init_lstm_weight", "unpack_lstm_weights") if not hasattr(rnn, n)]
    if missing:
        pytest.skip(f"jax {jax.__version__}: jax.experimental.rnn has no {', '.join(missing)}")

    fns, text = jax_cases(jax, gpu, jax.devices("cpu")[0])
    conformance_record(kernel=f"cuda: {'cuDNN' if CUDNN_CALL in text else 'no cuDNN call in the lowering'}; "
                              "cpu: lstm_ref (jax.lax.scan)")
    if CUDNN_CALL not in text:
        conformance_record(reason=f"the GPU lowering holds no {CUDNN_CALL!r} custom call: not cuDNN (a fallback)")
        pytest.fail(f"jax.experimental.rnn.lstm on {gpu}: the lowering holds no {CUDNN_CALL!r} custom call")
    outs = {side: f() for side, f in fns.items()}  # compile and first warm-up
    finite = all(bool(np.isfinite(np.asarray(a)).all()) for a in jax.tree_util.tree_leaves(outs["gpu"]))
    if not finite:
        conformance_record(reason="non-finite cuDNN outputs")
        pytest.fail("jax.experimental.rnn.lstm on the GPU gave non-finite outputs")
    rounds, min_block = JAX_PLAN
    times, calls = bench.measure(fns, rounds, min_block, warmup=1)
    med, iqr = bench.paired_ratio(times["cpu"], times["gpu"])
    threads = "XLA CPU default"
    for side, label, kernel in (("gpu", "jax.experimental.rnn.lstm", "cuDNN"),
                                ("cpu", "jax.experimental.rnn.lstm_ref", "lstm_ref (jax.lax.scan)")):
        s = bench.summary(times[side], calls[side])
        conformance_section("benchmarks", adapter=f"{label} ({'cuda' if side == 'gpu' else 'cpu'})",
                            device=str(gpu if side == "gpu" else "cpu"), size=JAX_SIZE, T=T, B=B, H=H,
                            mode="forward", dropout="off", layers=1, variant="padded",
                            median_ms=round(s.median_ms, 4), iqr_ms=round(s.iqr_ms, 4), rounds=s.rounds,
                            calls=s.calls, threads="CUDA" if side == "gpu" else threads,
                            note=f"kernel {kernel}; jitted, arguments committed to the device, block_until_ready")
    conformance_section("benchmarks", comparison="cuDNN speed-up over CPU (CPU time / GPU time)",
                        adapter="jax.experimental.rnn.lstm (cuda) vs lstm_ref (cpu)", size=JAX_SIZE, mode="forward",
                        variant="padded", ratio=round(med, 4), ratio_iqr=round(iqr, 4), rounds=rounds, threads=threads,
                        note=NOT_ASSERTED)
    summary = (f"{JAX_SIZE} T={T} B={B} H={H}, 1 layer, forward, {rounds} alternating rounds: lstm (cuDNN) "
               f"{bench.summary(times['gpu']).median_ms:.3g} ms vs lstm_ref (CPU) "
               f"{bench.summary(times['cpu']).median_ms:.3g} ms, speed-up {med:.1f}x (IQR {iqr:.2f}). {NOT_ASSERTED}")
    conformance_record(reason=summary)
    print(summary)
    benchmark.extra_info.update(size=JAX_SIZE, speedup=med)
    benchmark.pedantic(fns["gpu"], rounds=rounds, iterations=1, warmup_rounds=0)
