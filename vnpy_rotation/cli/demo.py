"""``run.py demo``: import the bundled real data (once), summarise it per pool, backtest the templates
(the ETF rotation on the bundled ETFs, VQM on the bundled CSI 300 stocks with their fundamentals), then
replay the last weeks through the live stack in paper mode and check it against the backtest."""

from __future__ import annotations

import argparse
import json
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from ..backtest.runner import read_spec
from ..bundled import bundled_files, bundled_stock_files, manifest
from ..data.importer import ImportResult, import_paths
from ..data.panels import load_panels
from ..data.store import BarStore
from .backtest_cmd import backtest_and_report
from .import_cmd import print_result

DEMO_STRATEGIES = ("etf_rotation", "vqm")  # backtested on the bundled data, reports under HOME/demo_output/


def pool_summary(store: BarStore) -> pd.DataFrame:
    """One row per bundled symbol: pool, span, rows, suspended days, corporate actions."""
    pools = manifest()["pools"]
    symbols = [s for members in pools.values() for s in members]
    panels = load_panels(symbols, store=store)
    rows = []
    for pool, members in pools.items():
        for vt_symbol in members:
            close = panels.close[vt_symbol].dropna()
            events = store.events(*vt_symbol.split("."))
            rows.append({
                "pool": pool, "vt_symbol": vt_symbol,
                "first": close.index.min().date() if len(close) else None,
                "last": close.index.max().date() if len(close) else None,
                "rows": len(close), "suspended": int(panels.suspended[vt_symbol].sum()),
                "corporate_actions": len(events),
                "sources": ",".join(sorted({e.source for e in events})) or "-",
                "latest_action": f"{events[-1].ex_date} ×{events[-1].factor:.4f}" if events else "-",
            })
    return pd.DataFrame(rows)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    store = BarStore()
    result: ImportResult = import_paths(bundled_files() + bundled_stock_files(), store)
    if not result.ok:
        print_result(result)
        return 1
    new_rows = sum(r.new for r in result.reports)
    print(f"bundled data: {len(result.reports)} files, {new_rows} new rows imported "
          f"({sum(r.skipped for r in result.reports)} already in the database)")
    summary = pool_summary(store)
    with pd.option_context("display.width", 200, "display.max_colwidth", 90, "display.max_rows", 100):
        for pool, table in summary.groupby("pool", sort=False):
            print(f"\n== {pool}: {len(table)} symbols")
            print(table.drop(columns="pool").to_string(index=False))
    code = 0
    for strategy in DEMO_STRATEGIES:
        print()
        out = Path(getattr(args, "home", None) or Path.cwd()).resolve() / "demo_output" / strategy
        # From the benchmark's first bundled day, so every template is measured against CSI 300.
        start = manifest()["span"]["start"]
        code |= backtest_and_report(read_spec(strategy, None, start, None, None), out)
    code |= replay_demo(Path(getattr(args, "home", None) or Path.cwd()).resolve() / "demo_output" / "replay")
    code |= canary_demo(Path(getattr(args, "home", None) or Path.cwd()).resolve() / "demo_output" / "canary")
    operating_demo(Path(getattr(args, "home", None) or Path.cwd()).resolve() / "demo_output")
    print(f"\ndemo finished in {time.perf_counter() - started:.1f}s")
    return code


REPLAY_WEEKS = 6


def operating_demo(demo_output: Path) -> None:
    """The operating routine on the replayed weeks: the daemon's KPI snapshot of the last session, the P&L
    attribution of the run and the weekly audit of its last complete week (informational: a target the demo
    cannot meet, such as traceability without recorded experiments, does not fail the demo)."""
    from ..ops.attribution_run import attribute_folder
    from ..ops.weekly_audit import run_audit

    replay = demo_output / "replay"
    print("\n== operating routine on the replayed weeks (run.py kpi / attribution / weekly-audit)")
    pages = sorted((replay / "kpi").glob("kpi_*.json"))
    if pages:
        rows = json.loads(pages[-1].read_text(encoding="utf-8"))["rows"]
        breaches = [f"{r['scope']} {r['kpi']}" for r in rows if r["status"] == "breach"]
        print(f"KPI snapshot after each session by the daemon; the last: {pages[-1].with_suffix('.md')} "
              f"({len(rows)} KPIs, breaches: {', '.join(breaches) or 'none'})")
    report = attribute_folder(replay)
    written = report.write(demo_output / "attribution")
    summary = report.summary
    total = summary[summary["group"] == "actual"].set_index("component")["cny"]
    print(f"attribution: equity change {total.get('total (equity change)', float('nan')):,.2f} CNY = holdings "
          f"{total.get('holdings', float('nan')):,.2f} + delay, execution, fees, dividends; coverage "
          f"{report.coverage:.2%} ({written[0].parent})")
    audit = run_audit(replay, demo_output / "audit")
    print(f"weekly audit {audit.week.label}: " + ", ".join(f"{t.name} {t.shown()} {t.status}" for t in audit.targets)
          + f" ({audit.folder / 'index.md'})")


def replay_demo(out: Path) -> int:
    """The last weeks of the bundled ETF data through the live stack in paper mode (ReplayGateway,
    RotationEngine, vnpy_riskmanager), compared fill by fill with the backtest of the same span."""
    import shutil

    from vnpy.trader.setting import SETTINGS

    from ..apps.rotation.daemon import TradeSpec, claim_out_folder, run_parameters, run_replay
    from ..backtest.config import BacktestConfig
    from ..market.calendar import default_calendar

    end = date.fromisoformat(str(manifest()["span"]["end"]))
    start = default_calendar().between(end - timedelta(weeks=REPLAY_WEEKS), end)[0].date()
    shutil.rmtree(out, ignore_errors=True)  # a fresh paper account each time
    print(f"\n== live stack, paper mode: etf_rotation replayed {start} … {end} through the replay gateway")
    SETTINGS["log.active"] = False  # the engine's log lines would bury the result
    spec = TradeSpec("etf_rotation", {}, BacktestConfig(), out, start, end)
    claim_out_folder(out, run_parameters(spec, "replay"))  # as run.py trade does: the run folder says what it ran
    result = run_replay(spec, output=lambda _: None)
    print(f"consistency with the backtest: {result.headline()}")
    print(f"  daily differences: {out / 'consistency.md'}; fills: {out / 'trades.csv'}")
    return 0 if result.consistent else 1


CANARY_WEEKS = 12
# Both versions trade under the account drawdown ladder of configs/etf_rotation.yaml (a version without risk
# thresholds may not enter a canary: run.py release check's risk_thresholds gate).
LADDER = ("backtest:\n  risk:\n    ladder: {reduce_at: 0.10, halt_at: 0.15, recover_at: 0.05, cooldown: 20, "
          "halt_cooldown: 20, flatten: true}\n")
# The candidate's Sharpe over the research window before the drill is about 0.49, under the default release
# gate of 0.5: the demo states its own threshold (a release: section), as a user's config would.
RELEASE = "release:\n  min_sharpe: 0.3\n"
CHAMPION_CONFIG = "strategy: {}\n" + LADDER + RELEASE
CANDIDATE_CONFIG = "strategy:\n  top_n: 3  # the candidate holds three funds instead of two\n" + LADDER + RELEASE


def canary_demo(out: Path) -> int:
    """Two registered versions of the ETF rotation (the template, and a candidate holding three funds), then a
    short canary drill over the last weeks of the bundled data: shadow, real stages, injected trouble, the
    rollback; prints the stage history."""
    import shutil

    from ..canary.config import CanaryConfig, Stage
    from ..live.trouble import Trouble
    from ..market.calendar import default_calendar
    from ..ops.regress import save_with_baseline
    from ..ops.versions import VersionRegistry, build_version_run
    from .canary_cmd import DRILL_STAGES, DRILL_TROUBLE, run_drill

    end = date.fromisoformat(str(manifest()["span"]["end"]))
    sessions = default_calendar().between(end - timedelta(weeks=CANARY_WEEKS), end)
    start = sessions[0].date()
    print(f"\n== canary release drill: etf_rotation, a candidate version beside the champion, {start} … {end}")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / "champion.yaml").write_text(CHAMPION_CONFIG, encoding="utf-8")
    (out / "candidate.yaml").write_text(CANDIDATE_CONFIG, encoding="utf-8")
    registry = VersionRegistry()
    window_end = sessions[0].date() - timedelta(days=1)  # researched on the data before the drill
    champion, candidate = (  # each with its regression baseline (fills, bar fingerprints): run.py regress
        save_with_baseline(registry, *build_version_run("etf_rotation", out / name, None, window_end, note=note),
                           open_end=False)[0]
        for name, note in (("champion.yaml", "demo: the template"), ("candidate.yaml", "demo: three funds")))
    print(f"versions: champion {champion.id} (top_n 2), candidate {candidate.id} (top_n 3)")
    stages = tuple(Stage(name=n, share=s, min_sessions=m) for n, s, m in DRILL_STAGES)
    config = CanaryConfig(stages=stages)
    at = sum(s.min_sessions for s in stages[:2]) + 1
    trouble = Trouble(start=sessions[at].date(), **DRILL_TROUBLE)
    return run_drill("etf_rotation", champion, candidate, config, trouble, start, end, out / "drill", True)
