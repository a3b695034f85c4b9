"""The monitor benchmark's script runs on a small watchlist and measures what it claims (no timing asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_monitor  # noqa: E402


def test_script_has_the_auction_the_burst_and_3_second_rounds_in_arrival_order():
    names = bench_monitor.symbols(40)
    assert len(set(names)) == 40 and {n.split(".")[1] for n in names} == {"SSE", "SZSE"}
    stream = bench_monitor.script(names, 1, seed=3)
    assert len(stream.quotes) == 40 * 2 + 40 * 19
    assert stream.arrivals == sorted(stream.arrivals)
    burst = [a for a, p in zip(stream.arrivals, stream.phases) if p == "09:30 burst"]
    assert len(burst) == 40 and max(burst) - min(burst) < 1.0
    assert [q.vt_symbol for q in stream.quotes[:40]] == names  # the auction print for every symbol


def test_run_measures_every_quote_and_raises_alerts():
    service, cpu, latency, timers, alerts, _ = bench_monitor.run(40, 1, seed=3)
    assert {k: len(v) for k, v in service.items()} == {"09:25 auction": 40, "09:30 burst": 40,
                                                        "3-s snapshots": 40 * 19}
    assert {k: len(v) for k, v in cpu.items()} == {k: len(v) for k, v in latency.items()} == \
        {k: len(v) for k, v in service.items()}
    assert all(w >= s - 1e-9 for k in service for w, s in zip(latency[k], service[k]))  # waiting only adds
    last = bench_monitor.script(bench_monitor.symbols(40), 1, seed=3).arrivals[-1]
    assert len(timers) == int(last) and alerts > 0  # one timer call per simulated second up to the last quote
