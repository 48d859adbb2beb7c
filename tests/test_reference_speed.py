"""The reference keeps up with torch — the fast check in ``make test``.

The full measurement (medium and large sizes, issue 18's bounds: forward within 1.75x the
float64 GEMM floor, backward within 5x torch's backward) is `suites/test_bench_reference.py`,
run by ``make bench``. Here: the medium size (T=64, B=32, I=H=128), torch and OpenBLAS on one
thread each (see conformance/core/bench.py), a few alternating rounds. Short runs on a shared
machine are noisy: another process only ever adds time, and a median of per-round ratios
swung from 5x to 12x (IQR 10) while `make report` ran beside it. So the guard compares the
fastest round of each side (the best estimate of the uncontended cost) and leaves headroom
over today's values (uncontended, `make bench`: 3.7x torch's forward, 3.8x its backward, the
float64 GEMM floor alone 2.2x torch's forward): it catches a reference that got ~35% (forward)
/ ~55% (backward) slower, it does not re-assert the issue's bounds (the forward here is against
torch, which a guard can do with headroom; the bound proper is against the floor).
"""
import pytest

from conformance.adapters.torch import bench as torch_bench
from conformance.core import bench
from conformance.core.frameworks import require

MAX_RATIO = {"forward": 5.0, "backward": 6.0}
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

