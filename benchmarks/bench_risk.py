"""What the risk engine costs: per order, per session, per backtest. One run, each figure against its peer.

    python benchmarks/bench_risk.py [--repeat N] [--days N] [--orders N] [--home DIR] [--only PART,...]

1. ``send_order``: a real vnpy ``MainEngine`` with vnpy_riskmanager and the replay (paper) gateway on one
   session of the bundled ETFs. The same batch of ``--orders`` limit orders (buys and sells of the six
   A-share ETFs, whole lots near the open, ``reference`` naming a strategy) goes through
   ``MainEngine.send_order`` on three sides, interleaved batch by batch (A B C A B C …, ``--repeat``
   rounds after an untimed warm-up round): **none** (vnpy_riskmanager's rule list emptied), **vnpy** (its
   own rules only: the peer), **ours** (its rules plus our ladder rule, registered by the risk app as in
   the live stack). The ladders are ACTIVE, so every order passes (the common path); the limits of
   vnpy_riskmanager's count and size rules are raised so that none of them refuses (on every side alike).
   Two clocks (wall, and the sending thread's CPU time, which leaves out the time the OS gives other
   processes on a shared machine) and two modes: the event thread paused while a batch is timed (its
   queue handled between batches, untimed: the call itself) and live (the event thread running, as in a
   trading process). The added latency is ours − vnpy; since that difference of two noisy tails is
   itself noisy, the rule's own ``check_allowed`` is also timed inside ``send_order`` on every order (the
   rule wrapped where vnpy_riskmanager calls it): that is the added latency per order. Last, a refused
   buy: by vnpy_riskmanager's order-size rule against by our rule with the account ladder REDUCING.
2. A full daily evaluation of a 300-symbol book on seeded synthetic data (a common factor with GARCH
   volatility clustering plus Student-t idiosyncratic returns; volumes and a 20-day momentum factor from
   them), at each of ``--days`` closes: ``evaluate()`` (stock stop, portfolio stop, halving, the account
   ladder and a daily loss limit on a ``Snapshot`` built from the closes), the drift monitors
   (``drift.evaluate`` on the last 20 rows of the 300 symbols' returns, volumes and factor values) and
   the next day's VaR/ES (``var_es_next``: 5 methods × 2 levels on the book's last 250 returns); p50/p99
   per part and of the session's total. Timed apart: the drift calibration on its 500-row reference
   (seconds, once per reference window), the compiled ``check_close`` + ``ladder_close`` on arrays (what
   the backtest loop runs) and the first calls (numba: compile or cache load). No peer: vnpy has none.
3. The backtest slowdown: the bundled ``etf_rotation`` and ``vqm`` defaults from the bundle's first day
   (as ``run.py demo`` runs them), ``simulate`` with the risk engine **off** (no plan rules, no account
   ladder) against **on** (the strategy's own rules -- VQM: stock stop 8 %, portfolio stop 10 %, halving
   at 15 % -- plus the account ladder ``DEFAULT_ACCOUNT_LADDER``) and **armed** (the same rules with
   unreachable thresholds: the cost of evaluating them with the trades of ``off``). ``--repeat``
   interleaved rounds, the side order rotating each round; per round and side the fastest of 3
   ``simulate`` calls, then ``to_result`` once; the slowdown is the median of the per-round ratios. The
   compiled day loop inside ``simulate`` (``kernel.run_days``) is timed on its own as well. The
   first call of each side (numba's compile or cache load) is reported apart, and the orders each side
   produces are counted (risk on sells more: that work is part of its cost). The drift response (off by
   default: ``RiskConfig.drift``) costs far more; risk on with it is timed apart in a few rounds of its own.

The collector is off while a call is timed (as in timeit). A markdown table of every figure closes the
output.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(ROOT))  # measure this checkout (code_version describes it), not another installed copy
from bench_home import code_version, run_in_home  # noqa: E402
from risk_backtest import bench_backtest, report_backtest  # noqa: E402
from risk_common import TARGETS  # noqa: E402,F401
from risk_daily import bench_daily, report_daily, synthetic_book  # noqa: E402,F401
from risk_send_order import bench_send_order, report_send_order  # noqa: E402

PARTS = ("send_order", "daily", "backtest")


# -------------------------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30,
                        help="interleaved rounds: send_order batches per side, backtests per side")
    parser.add_argument("--orders", type=int, default=200, help="orders per send_order batch")
    parser.add_argument("--days", type=int, default=250, help="sessions of the daily evaluation")
    parser.add_argument("--home", type=Path, default=None, help="reuse (or fill) this home; default: a temp dir")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    args = parser.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--only: unknown part(s) {unknown}; choose from {', '.join(PARTS)}")
    run_in_home(args.home, "bench_risk_", lambda home: run_all(args, parts, home))


def run_all(args: argparse.Namespace, parts: list[str], home: Path) -> None:
    from vnpy.trader.setting import SETTINGS

    # vnpy prints every log event (one per order: "委托下单 -> …") on the console; they are still put
    # on the queue and handled (the log engine writes its file), just not printed.
    SETTINGS["log.console"] = False
    print(f"home: {home}; code: {code_version()}; {os.cpu_count()} CPUs; load average {load_text()}; "
          f"repeat {args.repeat}")
    rows: list[tuple[str, str, str]] = []  # (figure, value, what differs)
    steps: dict[str, Callable[[], None]] = {
        "send_order": lambda: rows.extend(report_send_order(bench_send_order(home, args.repeat, args.orders))),
        "daily": lambda: rows.extend(report_daily(bench_daily(args.days))),
        "backtest": lambda: rows.extend(report_backtest(bench_backtest(args.repeat))),
    }
    for part in parts:
        started = time.perf_counter()
        steps[part]()
        print(f"   ({part}: {time.perf_counter() - started:.1f} s)")
    print(f"\nload average at the end: {load_text()} (other processes share the {os.cpu_count()} CPUs: the "
          "wall-clock tails measure them too)")
    print("\n| figure | value | what differs |\n|---|---|---|")
    for figure, value, differs in rows:
        print(f"| {figure} | {value} | {differs} |")


def load_text() -> str:
    """The 1/5/15-minute load averages (runnable processes): how busy the machine was."""
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
