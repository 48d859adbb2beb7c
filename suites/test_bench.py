"""Speed benchmarks of every adapter path (plain variant): what dropout costs on each.

For each plain registry path and size (`conformance.core.bench.SIZES`), one test builds the
framework layer once (`conformance.adapters.bench.builder`) and times, side by side in alternating
blocks, forward and forward+backward with dropout off / input / recurrent / inter-layer, and
the kernel variants the path has (torch: packed vs padded, native vs oneDNN; Keras:
implementation=1). Each measured case becomes one ``benchmarks`` entry (median and IQR in ms
per call); each "X vs Y" pair a ratio entry (median and IQR of per-round ratios). A case the
path cannot express is an entry with ``note="n/a: ..."``.

``make bench`` sets ``RNN_BENCH_FULL=1``: small, medium and large, several rounds. A plain
pytest run (``make test``) is a smoke test: the small size, one round of one call each.
pytest-benchmark times the dropout-off forward of each bench (``--benchmark-json`` keeps it).
"""
from __future__ import annotations

import pytest

from conformance.adapters import bench as builders
from conformance.core import bench
from conformance.core.frameworks import installed_version, require
from conformance.checks.parity import registry_params

PLAIN = [p for p in registry_params() if p.values[0].plain and p.values[1] == "cpu"]
PARAMS = [pytest.param(*p.values, size, id=f"{p.id}-{size}", marks=p.marks)
          for p in PLAIN for size in bench.sizes()]


@pytest.mark.benchmark(group="adapter paths")
@pytest.mark.parametrize("info, device, size", PARAMS)
def test_bench_path(info, device, size, benchmark, conformance_record, conformance_section):
    conformance_record(adapter=info.name, framework=info.framework, device=device,
                       framework_version=installed_version(info.distribution), feature=f"benchmark ({size})")
    require(info.framework)
    for module in info.requires:
        require(module)
    try:
        build = builders.builder(info)
        b = build(info, size)
    except bench.NoBuilder as e:
        pytest.skip(str(e))
    rounds, min_block = bench.plan(size)
    entries, ratios, times = bench.run_bench(b, rounds, min_block, full=bench.full_mode())
    for e in entries:
        conformance_section("benchmarks", **e)
    for r in ratios:
        conformance_section("benchmarks", **r)
    if "(" in b.adapter:  # Keras: the backend is part of the name
        conformance_record(backend=b.adapter.rsplit("(", 1)[1].rstrip(")"))
    base = next(c for c in b.cases if c.fn is not None and c.key == ("forward", "off", 1, ""))
    benchmark.extra_info.update(size=size, adapter=b.adapter, threads=b.threads,
                                cases={" / ".join(map(str, e_key)): v for e_key, v in
                                       ((c.key, e["median_ms"]) for c, e in zip(b.cases, entries))},
                                ratios={f"{r['comparison']} ({r['mode']})": r["ratio"] for r in ratios})
    with b.context():
        benchmark.pedantic(base.fn, rounds=rounds, iterations=1, warmup_rounds=0)  # compiled: timed above
    summary = "; ".join(f"{r['comparison']} ({r['mode']}): {r['ratio']:.2f}x" for r in ratios)
    conformance_record(reason=f"{size} T={b.T} B={b.B} H={b.H}, {rounds} rounds; {summary}"[:2000])
    assert all(e["rounds"] == rounds for e in entries if e["median_ms"] is not None)
