"""The reference keeps up: float64 ``reference.run`` / ``run_vjp`` against the float64 GEMM floor
and torch CPU ``nn.LSTM`` float32, at the medium (T=64, B=32, H=128) and large (T=256, B=64,
H=256) sizes.

Bounds (issue 18, restating issue 8's): the reference forward within 1.75x the **float64 GEMM
floor**, the reference backward within 5x torch's backward. The floor (`bench.float64_gemm_floor`)
times exactly the matrix products any float64 LSTM forward must do (the input projection of all
steps at once, one recurrent product per step) and nothing else, with the reference's shapes, side
by side; the reference forward over it is the reference's own overhead (64 or 256 steps of
element-wise NumPy work). Backward alone: torch's ``y.backward(dy, retain_graph=True)`` on one
retained forward graph; the reference's ``run_vjp - run`` of the same round (run_vjp is forward +
BPTT in one call).

Why not against torch's forward (issue 8 asked for 3x): the reference computes in float64, so its
matrix products run at about half the float32 rate, and on this CPU OpenBLAS's float64 products
alone take ~2.2x torch's whole float32 forward at the medium size ("forward GEMM floor", 1.8-2.4x).
3x torch would leave 0.8x of torch's forward for 64 steps of element-wise NumPy work, less than
they take here, and it moves with the BLAS rather than with the reference. So the ratio to torch's forward
("forward") is reported, not asserted, beside the floor's own ratio to torch; forward+backward
ratios are reported too.

Everything is measured side by side in one run, in alternating blocks, and compared as per-round
ratios (median and IQR) — never as absolute times across runs. Two thread settings:

- "one": torch and NumPy's OpenBLAS each pinned to one thread. Like for like, and stable on
  our shared 2-core machines (multi-threaded timings there measure the contention with other
  processes). The bounds are asserted here.
- "default": both as they come (torch 2 threads, OpenBLAS 2 threads on 2 cores). Reported,
  with ``within_bound``; not asserted (see the module `_DEFAULT_NOTE`).

Each bounded comparison entry carries ``bound``, the asserted ones ("one") ``bound_rule`` and
``bound_why`` too; the report's benchmarks section states them (conformance/results/render.py
`benchmark_bounds`). A smoke run (``make test``) measures the small size once and asserts nothing.
"""
from __future__ import annotations

import pytest

from conformance.adapters.torch import bench as torch_bench
from conformance.core import bench
from conformance.core.frameworks import installed_version, require

pytestmark = pytest.mark.framework("torch")

BOUNDS = {"forward / GEMM floor": 1.75, "backward": 5.0}
BOUND_RULES = {"forward / GEMM floor": f"forward <= {BOUNDS['forward / GEMM floor']}x the float64 GEMM floor",
               "backward": f"backward <= {BOUNDS['backward']:g}x torch backward"}
BOUND_WHY = ("float64 GEMMs alone take ~2.2x torch's float32 forward on our CPUs at the medium size (1.8-2.4x, "
             "the \"forward GEMM floor\" entries), so 3x torch's forward is not a bound on the reference's own "
             "overhead: the forward is bounded by the float64 GEMM floor (the same "
             "matrix products, nothing else, timed side by side) and its ratio to torch's forward is reported, "
             "not asserted; the backward stays bounded by torch's backward")
THREADS = ("one", "default")
# make bench: medium and large; make matrix (RNN_BENCH_SIZES=medium): medium; else the smoke run
SIZES = (tuple(s for s in bench.sizes() if s != "small") or ("small",)) if bench.full_mode() else ("small",)
ROUNDS = {"small": (1, 0.0), "medium": (9, 0.05), "large": (5, 0.0)}
_NOTES = {"reference": "float64 NumPy", "float64": "float64 NumPy matrix products only", "torch": "float32, oneDNN"}
_COMPARED = {"forward / GEMM floor": "reference float64 vs float64 GEMM floor"}
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
            rule = dict(bound_rule=BOUND_RULES[what], bound_why=BOUND_WHY) if bound and threads == "one" else {}
            compared = _COMPARED.get(what, "reference float64 vs torch float32")
            conformance_section("benchmarks", comparison=f"{compared} ({threads} thread(s))",
                                adapter="reference vs torch.nn.LSTM", size=size, mode=what, ratio=round(med, 4),
                                ratio_iqr=round(iqr, 4), rounds=rounds, threads=used, bound=bound,
                                within_bound=None if bound is None else bool(med <= bound),
                                note=_note(threads, what, bound, ratios), **rule)
        lines.append(f"{threads} thread(s) [{used}]: " + ", ".join(
            f"{what} {med:.2f}x (IQR {iqr:.2f})" for what, (med, iqr) in ratios.items()))
    summary = (f"{size} T={T} B={B} H={H}, {rounds} alternating rounds: " + "; ".join(lines)
               + f". Asserted (one thread): {'; '.join(BOUND_RULES.values())}")
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
    for what, bound in BOUNDS.items():
        assert one[what][0] <= bound, f"reference {BOUND_RULES[what]} fails ({one[what][0]:.2f}x): {summary}"


def _note(threads, what, bound, ratios):
    """The note of a comparison entry: asserted or not, and why."""
    if threads == "default":
        return _DEFAULT_NOTE
    if bound:
        return "asserted"
    if what == "forward":
        return (f"reported, not asserted: the float64 GEMM floor alone is {ratios['forward GEMM floor'][0]:.2f}x "
                "torch's float32 forward here; the bound is forward / GEMM floor")
    return ""
