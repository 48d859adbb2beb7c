"""The reference keeps up: float64 LSTM forward within 3x torch's float32 nn.LSTM forward.

Measured side by side in one run, interleaved round by round so that machine noise hits
both alike; medians are compared. torch runs as a user would call it (`lstm(x)`, autograd
on, the module in training mode with no dropout); its inference-mode time (no_grad) is
measured and reported too.
"""
import time

import numpy as np
import pytest

import reference as ref
from conformance.frameworks import require

T, B, F, H = 128, 32, 128, 128
MAX_RATIO = 3.0
ROUNDS = 9


def _median_times(fns, rounds):
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


@pytest.mark.benchmark(group="reference-vs-torch")
def test_reference_lstm_forward_within_3x_torch(benchmark, conformance_record):
    torch = require("torch")
    rng = np.random.default_rng(0)
    w = ref.random_lstm(rng, F, H)
    x = rng.normal(size=(T, B, F))
    lstm = torch.nn.LSTM(F, H)
    xt = torch.tensor(x, dtype=torch.float32)

    def torch_forward():
        lstm(xt)

    def torch_inference():
        with torch.no_grad():
            lstm(xt)

    def reference_forward():
        ref.run(w, x)

    fns = {"torch": torch_forward, "torch_no_grad": torch_inference, "reference": reference_forward}
    _median_times(fns, 2)  # warm-up: oneDNN primitive caches, BLAS threads
    med = _median_times(fns, ROUNDS)
    ratio = med["reference"] / med["torch"]
    ratio_inference = med["reference"] / med["torch_no_grad"]
    summary = (f"reference float64 {med['reference'] * 1e3:.1f} ms, torch float32 forward {med['torch'] * 1e3:.1f} ms "
               f"(ratio {ratio:.2f}), torch no_grad {med['torch_no_grad'] * 1e3:.1f} ms (ratio {ratio_inference:.2f}); "
               f"T={T} B={B} F=H={H}, medians of {ROUNDS} interleaved rounds, {torch.get_num_threads()} torch threads")
    print(summary)
    benchmark.extra_info.update(ratio=ratio, ratio_inference=ratio_inference,
                                **{f"{k}_ms": v * 1e3 for k, v in med.items()})
    conformance_record(framework="torch", framework_version=torch.__version__, device="cpu",
                       feature="reference speed", reason=summary)
    benchmark.pedantic(reference_forward, rounds=3, iterations=1)
    assert ratio <= MAX_RATIO, f"the reference is too slow: {summary}"
