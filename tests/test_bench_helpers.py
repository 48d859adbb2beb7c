"""Self-tests of conformance/core/bench.py: statistics, alternating blocks, modes, dispatch."""
from __future__ import annotations

import numpy as np
import pytest

from conformance.adapters import bench as builders
from conformance.adapters.torch import bench as torch_bench
from conformance.core import bench
from conformance.adapters.base import AdapterInfo


def test_summary_median_and_iqr():
    s = bench.summary([0.001, 0.002, 0.003, 0.004, 0.005], calls=3)
    assert (s.median_ms, s.iqr_ms, s.rounds, s.calls) == (pytest.approx(3.0), pytest.approx(2.0), 5, 3)


def test_paired_ratio_is_per_round():
    # machine-wide noise scales both blocks of a round: the per-round ratio stays exactly 2
    a = np.array([2.0, 20.0, 4.0, 200.0])
    med, iqr = bench.paired_ratio(a, a / 2)
    assert med == pytest.approx(2.0) and iqr == pytest.approx(0.0)
    with pytest.raises(ValueError, match="equal, non-empty"):
        bench.paired_ratio([1.0], [1.0, 2.0])


def test_measure_alternates_and_rotates():
    order = []
    fns = {k: (lambda k=k: order.append(k)) for k in "abc"}
    times, calls = bench.measure(fns, rounds=3, warmup=0)
    assert order == list("abc" "bca" "cab")
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 3} and set(calls.values()) == {1}


def test_modes(monkeypatch):
    assert bench.sizes({}) == ("small",) and bench.plan("large", {}) == bench.QUICK_PLAN
    full = {bench.FULL_ENV: "1"}
    assert bench.sizes(full) == ("small", "medium", "large") and bench.plan("large", full) == bench.PLAN["large"]


def test_run_bench_entries_ratios_and_na():
    b = bench.Bench("x", "small", 16, 8, 32)
    b.add("forward", "off", lambda: None)
    b.add("forward", "input", lambda: None, against=("forward", "off", 1, ""), comparison="input vs off")
    b.na("recurrent", "no knob")
    entries, ratios, _ = bench.run_bench(b, rounds=2, min_block_s=0.0)
    assert [e["dropout"] for e in entries] == ["off", "input", "recurrent", "recurrent"]
    assert entries[2]["median_ms"] is None and entries[2]["note"] == "n/a: no knob"
    assert [r["comparison"] for r in ratios] == ["input vs off"] and ratios[0]["rounds"] == 2


def test_smoke_subset_keeps_one_layer_forward_and_plain_backward():
    keep = [bench.Case("forward", "input", None), bench.Case("forward+backward", "off", None)]
    drop = [bench.Case("forward+backward", "input", None), bench.Case("forward", "off", None, layers=2),
            bench.Case("forward+backward", "off", None, variant="packed")]
    assert all(map(bench.smoke_case, keep)) and not any(map(bench.smoke_case, drop))


def test_builder_dispatch_and_plain():
    info = AdapterInfo(name="other.LSTM", framework="other", distribution="other", cell="lstm", factory="m:f")
    with pytest.raises(bench.NoBuilder, match="no bench builder for other.LSTM"):
        builders.builder(info)
    torch_cell = AdapterInfo(name="torch.nn.LSTMCell", framework="torch", distribution="torch", cell="lstm",
                             factory="m:f")
    assert builders.builder(torch_cell) is torch_bench.torch_cells
    assert torch_cell.plain and not AdapterInfo(
        name="torch.nn.LSTM[batch_first]", framework="torch", distribution="torch", cell="lstm", factory="m:f").plain


def test_single_thread_restores():
    before = bench.blas_threads()
    with bench.single_thread():
        if before is not None:
            assert bench.blas_threads() == 1
    assert bench.blas_threads() == before


def test_merge_benchmark_json_concatenates_and_skips_missing(tmp_path, capsys):
    import json

    a, b, out = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "out.json"
    a.write_text(json.dumps({"machine_info": {"node": "x"}, "benchmarks": [{"name": "one"}]}))
    b.write_text(json.dumps({"machine_info": {"node": "y"}, "benchmarks": [{"name": "two"}, {"name": "three"}]}))
    bench.merge_benchmark_json(str(out), str(a), str(tmp_path / "missing.json"), str(b))
    merged = json.loads(out.read_text())
    assert [x["name"] for x in merged["benchmarks"]] == ["one", "two", "three"]
    assert merged["machine_info"] == {"node": "x"}
    assert "missing.json is missing" in capsys.readouterr().out
