"""Panel loader vs vnpy's ``load_bar_data`` loop, same rows, one run.

    python benchmarks/bench_panel_loader.py [--real ../shared/data/real] [--home DIR]

Imports the 265 CSI 300 stocks of ``stocks_daily_unadjusted_baostock`` (2010–2024, unadjusted) into
the embedded SQLite database under ``--home`` (a temporary folder by default; an already-filled home
is reused), then times ``load_panels`` against ``get_database().load_bar_data`` for every symbol.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="bench_loader_"))

    from vnpy_rotation.runtime import settle_runtime

    settle_runtime(home)
    from vnpy.trader.constant import Exchange, Interval
    from vnpy.trader.database import get_database

    from vnpy_rotation.data.importer import import_paths
    from vnpy_rotation.data.panels import load_panels
    from vnpy_rotation.data.store import BarStore

    store = BarStore()
    started = time.perf_counter()
    result = import_paths([args.real / "stocks_daily_unadjusted_baostock"], store)
    print(f"import: {len(result.reports)} files, {len(result.failures)} rejected, {time.perf_counter() - started:.1f}s")
    symbols = sorted(f"{code}.{exchange}" for code, exchange in store.bar_signatures())

    def ours() -> int:
        panels = load_panels(symbols, store=store)
        return int(panels.close.notna().to_numpy().sum())

    database = get_database()

    def vnpy_loop() -> int:
        count = 0
        for vt_symbol in symbols:
            code, exchange = vt_symbol.split(".")
            bars = database.load_bar_data(code, Exchange(exchange), Interval.DAILY,
                                          datetime(2000, 1, 1), datetime(2030, 1, 1))
            count += len(bars)
        return count

    def best(func) -> tuple[float, int]:
        times, rows = [], 0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            rows = func()
            times.append(time.perf_counter() - t0)
        return min(times), rows

    t_ours, rows_ours = best(ours)
    t_vnpy, rows_vnpy = best(vnpy_loop)
    assert rows_ours == rows_vnpy, (rows_ours, rows_vnpy)
    print(f"symbols {len(symbols)}, bars {rows_vnpy}")
    print(f"load_panels           {t_ours:7.2f}s  {rows_ours / t_ours / 1e3:8.0f} k bars/s")
    print(f"vnpy load_bar_data    {t_vnpy:7.2f}s  {rows_vnpy / t_vnpy / 1e3:8.0f} k bars/s")
    print(f"speed-up              {t_vnpy / t_ours:7.1f}x")


if __name__ == "__main__":
    main()
