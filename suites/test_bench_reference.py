"""The reference keeps up with torch: float64 ``reference.run`` / ``run_vjp`` against torch CPU
``nn.LSTM`` float32, at the medium (T=64, B=32, H=128) and large (T=256, B=64, H=256) sizes.

Bounds (issue 8): the reference forward within 3x torch's forward (``lstm(x)``, autograd on, as
users call it), the reference backward within 5x torch's backward. Backward alone: torch's
``y.backward(dy, retain_graph=True)`` on one retained forward graph; the reference's
``run_vjp - run`` of the same round (run_vjp is forward + BPTT in one call). forward+backward
ratios are reported too.

Everything is measured side by side in one run, in alternating blocks, and compared as
per-round ratios (median and IQR) — never as absolute times across runs. Two thread settings:

- "one": torch and NumPy's OpenBLAS each pinned to one thread. Like for like, and stable on
  our shared 2-core machines (multi-threaded timings there measure the contention with other
  processes). The bounds are asserted here.
- "default": both as they come (torch 2 threads, OpenBLAS 2 threads on 2 cores). Reported,
  with ``within_bound``; not asserted (see the module `_DEFAULT_NOTE`).

Why 3x is tight: the reference computes in float64, so its matrix products (the input
projection of all steps at once, then one recurrent product per step) run at about half the
float32 rate. "float64 GEMM floor" times exactly those products and nothing else, side by side:
its ratio to torch's forward ("forward GEMM floor", 2.2-2.4x at the medium size on this CPU) is
the least any float64 NumPy forward can reach here; the 64 steps of element-wise NumPy calls
add the rest. A smoke run (``make test``) measures the small size once and asserts nothing.
"""
from __future__ import annotations

import pytest

from conformance.adapters.torch import bench as torch_bench
from conformance.core import bench
from conformance.core.frameworks import installed_version, require

pytestmark = pytest.mark.framework("torch")

BOUNDS = {"forward": 3.0, "backward": 5.0}
THREADS = ("one", "default")
SIZES = ("medium", "large") if bench.full_mode() else ("small",)
ROUNDS = {"small": (1, 0.0), "medium": (9, 0.05), "large": (5, 0.0)}
_NOTES = {"reference": "float64 NumPy", "float64": "float64 NumPy matrix products only", "torch": "float32, oneDNN"}
_DEFAULT_NOTE = ("default threads: torch and OpenBLAS each start 2 threads on 2 shared cores; the "
                 "ratio then depends on the machine's other load, so it is reported, not asserted")


@pytest.mark.benchmark(group="reference vs torch")
@pytest.mark.parametrize("size", SIZES)
def test_reference_vs_torch(size, benchmark, conformance_record, conformance_section):
    conformance_record(adapter="reference vs torch.nn.LSTM", framework="torch", device="cpu",
                       framework_version=installed_version("torch"), feature=f"reference speed ({size})")
    torch = require("torch")
    T, B, H = bench.SIZES[size]
    rounds, min_block = ROUNDS[size] if bench.full_mode() else (1, 0.0)
    results, lines = {}, []
    for threads in THREADS:
        fns, ctx = torch_bench.reference_vs_torch(size, threads)
        with ctx():
            times, calls = bench.measure(fns, rounds, min_block, warmup=1 if bench.full_mode() else 0)
            used = f"torch {torch.get_num_threads()}, BLAS {bench.blas_threads()}"
        for name, t in times.items():
            s = bench.summary(t, calls[name])
            conformance_section("benchmarks", adapter=name, size=size, T=T, B=B, H=H,
                                mode=name.split(" ", 1)[1], dropout="off", layers=1, variant=f"{threads} thread(s)",
                                median_ms=round(s.median_ms, 4), iqr_ms=round(s.iqr_ms, 4), rounds=s.rounds,
                                calls=s.calls, threads=used,
                                note=_NOTES[name.split(" ", 1)[0]])
        ratios = bench.reference_ratios(times)
        results[threads] = ratios
        for what, (med, iqr) in ratios.items():
            bound = BOUNDS.get(what)
            conformance_section("benchmarks", comparison=f"reference float64 vs torch float32 ({threads} thread(s))",
                                adapter="reference vs torch.nn.LSTM", size=size, mode=what, ratio=round(med, 4),
                                ratio_iqr=round(iqr, 4), rounds=rounds, threads=used, bound=bound,
                                within_bound=None if bound is None else bool(med <= bound),
                                note=_DEFAULT_NOTE if threads == "default" else "asserted" if bound else "")
        lines.append(f"{threads} thread(s) [{used}]: " + ", ".join(
            f"{what} {med:.2f}x (IQR {iqr:.2f})" for what, (med, iqr) in ratios.items()))
    summary = f"{size} T={T} B={B} H={H}, {rounds} alternating rounds: " + "; ".join(lines)
    print(summary)
    conformance_record(reason=summary)
    benchmark.extra_info.update(size=size, **{f"{th} {what}": med for th, r in results.items()
                                              for what, (med, _) in r.items()})
    fns, ctx = torch_bench.reference_vs_torch(size, "one")
    with ctx():
        benchmark.pedantic(fns["reference forward"], rounds=rounds, iterations=1)
    if not bench.full_mode():
        return  # smoke run: one round at the small size proves nothing about the bounds
    one = results["one"]
    assert one["forward"][0] <= BOUNDS["forward"], f"reference forward above {BOUNDS['forward']}x: {summary}"
    assert one["backward"][0] <= BOUNDS["backward"], f"reference backward above {BOUNDS['backward']}x: {summary}"
