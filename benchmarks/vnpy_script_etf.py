"""A plain vnpy_portfoliostrategy backtest script: the peer process of ``run.py backtest`` in bench_command.py.

What a vnpy user writes for a momentum rotation over ETFs: bars from the vnpy_sqlite database of the runtime
folder, ``BacktestingEngine``, the top-N momentum strategy of ``vnpy_peer.py``, ``calculate_result`` and
``calculate_statistics``, and the results saved to disk (daily results, trades, statistics). It has no A-share
rules (no lots, T+1, price limits or stamp duty), no benchmark, report, attribution, look-ahead check or
experiment record.

    python benchmarks/vnpy_script_etf.py --home HOME --symbols 510300.SSE,... --start 2017-01-18 --end 2024-09-30
        --out DIR

``--home`` is the runtime folder (it holds ``.vntrader``): the script changes into it before importing vnpy, as
vnpy picks its folder at import time. ``--strategy vqm`` runs ``vnpy_vqm_peer.py``'s VQM selection instead
(its point-in-time inputs pre-loaded from the same database by ``build_inputs``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RATE = 2.5e-4  # commission rate on both sides (our default commission rate; vnpy has no minimum or stamp duty)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--symbols", required=True, help="comma-separated vt_symbols")
    parser.add_argument("--start", required=True)
    parser.add_argument("--end", required=True)
    parser.add_argument("--capital", type=float, default=1_000_000.0)
    parser.add_argument("--strategy", choices=["momentum", "vqm"], default="momentum")
    parser.add_argument("--index", default="000300.SSE", help="vqm: the index whose members are eligible")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    out = args.out.absolute()
    os.chdir(args.home)  # vnpy reads ./.vntrader when it exists
    sys.path.insert(0, str(HERE))

    from vnpy.trader.constant import Interval
    from vnpy_peer import default_pricetick
    from vnpy_portfoliostrategy.backtesting import BacktestingEngine

    symbols = args.symbols.split(",")
    start, end = datetime.fromisoformat(args.start), datetime.fromisoformat(args.end)
    if args.strategy == "vqm":
        import vnpy_vqm_peer as peer

        strategy, settings = peer.strategy_class(), {"notional": args.capital}
        inputs = peer.build_inputs(symbols, args.index)
    else:
        import vnpy_peer as peer

        strategy, settings = peer.strategy_class(), {"lookback": 20, "top_n": 2, "rebalance": "week_end",
                                                     "notional": args.capital}
        inputs = None

    engine = BacktestingEngine()
    engine.set_parameters(vt_symbols=symbols, interval=Interval.DAILY, start=start, end=end,
                          rates={s: RATE for s in symbols}, slippages={s: 0.0 for s in symbols},
                          sizes={s: 1.0 for s in symbols},
                          priceticks={s: default_pricetick(s) for s in symbols},
                          capital=args.capital)
    engine.add_strategy(strategy, settings)
    if inputs is not None:
        engine.strategy.inputs = inputs
    engine.load_data()
    engine.run_backtesting()
    daily = engine.calculate_result()
    statistics = engine.calculate_statistics(output=False)

    out.mkdir(parents=True, exist_ok=True)
    if daily is not None:
        daily.drop(columns=[c for c in ("trades",) if c in daily.columns]).to_csv(out / "daily_results.csv")
    with open(out / "trades.csv", "w", encoding="utf-8") as file:
        file.write("datetime,vt_symbol,direction,price,volume\n")
        for trade in engine.trades.values():
            file.write(f"{trade.datetime:%Y-%m-%d},{trade.vt_symbol},{trade.direction.value},{trade.price},"
                       f"{trade.volume}\n")
    (out / "statistics.json").write_text(json.dumps(statistics, default=str, ensure_ascii=False, indent=2),
                                         encoding="utf-8")
    print(f"vnpy: {len(engine.trades)} trades, total return {statistics.get('total_return', 0):.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
