"""The reference keeps up — the fast check in ``make test``.

The full measurement (medium and large sizes, issue 18's bounds: forward within 1.75x the
float64 GEMM floor, backward within 5x torch's backward) is `suites/test_bench_reference.py`,
run by ``make bench``. Here: the medium size (T=64, B=32, I=H=128), torch and OpenBLAS on one
thread each (see conformance/core/bench.py), a few alternating rounds. Short runs on a shared
machine are noisy: another process only ever adds time, and a median of per-round ratios
swung from 5x to 12x (IQR 10) while `make report` ran beside it. So the guard compares the
fastest round of each side (the best estimate of the uncontended cost).

The forward is judged against the float64 GEMM floor (the same matrix products, nothing else,
timed in the same rounds), as `make bench` judges it, at the same 1.75x. It used to be judged
against torch's float32 forward with headroom (5x), but that ratio is mostly the CPU's float64
vs float32 GEMM speed, not the reference: on the Intel machines the guard was written on the
floor alone was 2.2x torch's forward (5x torch = 2.3x the floor), on the AMD EPYC CI machine of
2026-12-04 it is 3.9-4.1x (5x torch = 1.25x the floor, below the reference's 1.28-1.37x there),
so the guard failed on every run there while the reference had not changed. Against the floor
it measures 1.28-1.37x (fastest rounds) on that machine and 1.46x (median) in ``make bench`` on
the older one: the guard catches a forward whose own work above the products got ~30% slower
on either. The backward stays judged against torch's backward (6x; 4.5x on the EPYC machine,
3.8x on the older one), as no backward GEMM floor is timed.
"""
import pytest

from conformance.adapters.torch import bench as torch_bench
from conformance.core import bench
from conformance.core.frameworks import require

MAX_RATIO = {"forward / GEMM floor": 1.75, "backward": 6.0}
ROUNDS = 5


@pytest.mark.benchmark(group="reference-vs-torch")
def test_reference_lstm_speed_vs_torch(benchmark, conformance_record):
    torch = require("torch")
    fns, ctx = torch_bench.reference_vs_torch("medium", "one")
    with ctx():
        times, _ = bench.measure(fns, ROUNDS, min_block_s=0.0)
    ratios = bench.reference_ratios(times)
    fastest = bench.reference_ratios(times, compare=bench.fastest_ratio)
    summary = ", ".join(f"{k} {fastest[k]:.2f}x fastest rounds, {m:.2f}x median (IQR {i:.2f})"
                        for k, (m, i) in ratios.items())
    summary = f"reference float64 vs torch float32 nn.LSTM, T=64 B=32 H=128, one thread each, {ROUNDS} rounds: {summary}"
    print(summary)
    benchmark.extra_info.update({k: m for k, (m, _) in ratios.items()})
    conformance_record(framework="torch", framework_version=torch.__version__, device="cpu",
                       feature="reference speed", reason=summary)
    with ctx():
        benchmark.pedantic(fns["reference forward"], rounds=1, iterations=1)
    for what, bound in MAX_RATIO.items():
        assert fastest[what] <= bound, f"the reference is too slow ({what}): {summary}"

