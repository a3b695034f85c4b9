"""Panel loader vs vnpy's ``load_bar_data`` loop, same rows, one run.

    python benchmarks/bench_panel_loader.py [--real ../shared/data/real] [--home DIR]

Imports the 265 CSI 300 stocks of ``stocks_daily_unadjusted_baostock`` (2010–2024, unadjusted) into
the embedded SQLite database under ``--home`` (a temporary folder by default; an already-filled home
is reused), then times ``load_panels`` against ``get_database().load_bar_data`` for every symbol, in
interleaved pairs after one untimed call each (see ``fair.py``); both count the same bars.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fair import interleaved, markdown, ratio_line  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=5, help="interleaved timed rounds per side")
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

    timed = interleaved({"vnpy load_bar_data loop": vnpy_loop, "ours load_panels": ours}, args.repeat)
    vnpy, mine = timed["vnpy load_bar_data loop"], timed["ours load_panels"]
    assert mine.value == vnpy.value, (mine.value, vnpy.value)
    print(f"symbols {len(symbols)}, bars {vnpy.value}; {args.repeat} interleaved rounds after one untimed call each "
          f"(first calls: vnpy {vnpy.warmup:.2f}s, ours {mine.warmup:.2f}s)")
    print(ratio_line(vnpy, mine, 1.0, "s"))
    differs = "vnpy: BarData objects per symbol; ours: day × symbol float panels (both read the same rows)"
    print(markdown([("load 265 stocks from SQLite", f"{vnpy.best:.2f} s", f"{mine.best:.2f} s",
                     f"{vnpy.best / mine.best:.1f}×", differs)],
                   ("figure", "vnpy", "ours", "ratio (min)", "what differs")))


if __name__ == "__main__":
    main()
