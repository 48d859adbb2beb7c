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


def test_reference_ratios_floor_is_reference_over_floor():
    t = {"reference forward": [6.0, 12.0], "torch forward": [2.0, 4.0], "float64 GEMM floor": [4.0, 8.0],
         "reference forward+backward": [20.0, 40.0], "torch forward+backward": [5.0, 10.0],
         "torch backward": [3.5, 7.0]}
    r = bench.reference_ratios(t)
    assert r["forward / GEMM floor"] == (pytest.approx(1.5), pytest.approx(0.0))
    assert r["forward GEMM floor"][0] == pytest.approx(2.0) and r["forward"][0] == pytest.approx(3.0)
    assert r["backward"][0] == pytest.approx(4.0)


def test_report_states_the_reference_speed_bounds():
    from conformance.results.render import benchmark_bounds, render_details_markdown, render_html, render_markdown
    from conformance.results.report import build_report

    why = "float64 GEMMs alone take ~2.2x torch's float32 forward"
    entries = [dict(adapter="reference vs torch.nn.LSTM", size=size, mode=mode, ratio=ratio, bound=bound,
                    within_bound=ratio <= bound, bound_rule=rule, bound_why=why)
               for size, mode, ratio, bound, rule in [
                   ("medium", "forward / GEMM floor", 1.65, 1.75, "forward <= 1.75x the float64 GEMM floor"),
                   ("medium", "backward", 3.9, 5.0, "backward <= 5x torch backward"),
                   ("large", "forward / GEMM floor", 1.8, 1.75, "forward <= 1.75x the float64 GEMM floor")]]
    entries.append(dict(adapter="reference vs torch.nn.LSTM", size="medium", mode="forward", ratio=3.7))
    report = build_report([], sections={"benchmarks": entries})
    text = benchmark_bounds(report)
    assert text.startswith("Asserted bounds: forward <= 1.75x the float64 GEMM floor (medium 1.65x held, "
                           "large 1.8x FAILED); backward <= 5x torch backward (medium 3.9x held).")
    assert text.count(why) == 1
    assert text in render_markdown(report) and text in render_details_markdown(report)
    assert "forward &lt;= 1.75x the float64 GEMM floor" in render_html(report)
    assert benchmark_bounds(build_report([], sections={"benchmarks": entries[3:]})) == ""
