"""Execution statistics: a golden two-session scenario (two strategies on two accounts) built from journal
records through the adapter, with every figure computed by hand."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import date, datetime

import pandas as pd
import pytest

from vnpy_rotation.attribution.execution import (
    ExecutionInputs,
    FillRow,
    MarketPrice,
    OrderRow,
    execution_stats,
    quantile,
    render_json,
    render_markdown,
)
from vnpy_rotation.live.execution_inputs import from_journal
from vnpy_rotation.live.plan import DayProgress, FillRecord, LegRecord, OrderRecord
from vnpy_rotation.live.schedule import SHANGHAI
from vnpy_rotation.risk.events import RiskDenial

D1, D2 = date(2024, 1, 8), date(2024, 1, 9)
ETF1, ETF2, ETF3, ETF4, STOCK, STOCK2 = "510300.SSE", "159915.SZSE", "512880.SSE", "510500.SSE", "600519.SSE", "600000.SSE"


def fill(ref, symbol, buy, price, volume, commission, time, stamp=0.0, transfer=0.0):
    return FillRecord(f"t-{ref}-{time}", ref, symbol, buy, price, volume, price * volume, commission, stamp, transfer,
                      0.0, "", time)


def etf_day1() -> dict:
    legs = [LegRecord(ETF1, True, 1200, 1000, ["insufficient_cash"], 1000, True, 0, 4.0),
            LegRecord(ETF2, False, 2000, 2000, [], 2000, True, 0, 2.0),
            LegRecord(ETF3, True, 537, 500, ["lot_rounding"], 200, True, 0, 1.0),
            LegRecord(ETF4, True, 300, 300, ["suspended"], 0, True, 0, 5.0)]
    orders = [OrderRecord("etf|2024-01-08|0|0", ETF1, True, 1000, 4.02, 4.0, 0, "final", "o1", 1000, "filled"),
              OrderRecord("etf|2024-01-08|1|0", ETF2, False, 2000, 1.98, 2.0, 1, "final", "o2", 2000, "filled"),
              OrderRecord("etf|2024-01-08|2|0", ETF3, True, 500, 1.01, 1.0, 2, "final", "o3", 200, "cancelled"),
              OrderRecord("etf|2024-01-08|2|1", ETF3, True, 300, 1.01, 1.0, 2, "unsent")]  # never reached the broker
    fills = [fill("etf|2024-01-08|0|0", ETF1, True, 4.010, 600, 3.0, "2024-01-08T09:30:05"),
             fill("etf|2024-01-08|0|0", ETF1, True, 4.020, 400, 2.0, "2024-01-08T09:30:20"),
             fill("etf|2024-01-08|1|0", ETF2, False, 1.990, 2000, 5.0, "2024-01-08T09:30:10"),
             fill("etf|2024-01-08|2|0", ETF3, True, 1.002, 200, 1.0, "2024-01-08T09:31:00")]
    progress = DayProgress("2024-01-08", "closed", 100_000.0, {}, legs, orders, fills)
    return {"strategy": "etf", "summary": {"day": "2024-01-08"}, "progress": progress.to_json()}


def vqm_day2() -> dict:
    legs = [LegRecord(STOCK, True, 100, 100, [], 100, True, 0, 1700.0),
            LegRecord(STOCK2, True, 200, 200, [], 0, True, 0, 10.0)]
    orders = [OrderRecord("vqm|2024-01-09|0|0", STOCK, True, 100, 1720.0, 1700.0, 0, "final", "o4", 100, "filled"),
              OrderRecord("vqm|2024-01-09|1|0", STOCK2, True, 200, 10.1, 10.0, 1, "final", "", 0, "rejected")]
    fills = [fill("vqm|2024-01-09|0|0", STOCK, True, 1710.0, 100, 5.0, "2024-01-09T09:32:00", transfer=1.71)]
    raw = DayProgress("2024-01-09", "closed", 500_000.0, {}, legs, orders, fills).to_json()
    raw["orders"][0]["sent_at"] = "2024-01-09T09:30:00+08:00"  # an order that records its own sending time
    return {"strategy": "vqm", "summary": {"day": "2024-01-09"}, "progress": raw}


DECISION = {(D1, ETF1): 4.0, (D1, ETF2): 2.0, (D1, ETF3): 1.0, (D1, ETF4): 5.0, (D2, STOCK): 1700.0}
MARKET = {(D1, ETF1): MarketPrice(4.005, 4.015), (D1, ETF2): MarketPrice(1.995, 2.000),
          (D1, ETF3): MarketPrice(1.001, 1.004), (D2, STOCK): MarketPrice(1705.0, 1712.0)}


def inputs():
    etf = from_journal([etf_day1()], "A", decision_prices=DECISION, market=MARKET,
                       sent={D1: datetime(2024, 1, 8, 9, 30, tzinfo=SHANGHAI)})
    denial = RiskDenial("vqm", STOCK2, "buy", 200.0, "REDUCING", "REDUCING: reduce-only, buys are refused",
                        datetime(2024, 1, 9, 9, 30, tzinfo=SHANGHAI))
    vqm = from_journal([vqm_day2(), {"strategy": "vqm", "summary": {"day": "2024-01-10"}, "progress": None}], "B",
                       decision_prices=DECISION, market=MARKET, denials=[denial])
    return ExecutionInputs(etf.orders + vqm.orders, etf.fills + vqm.fills, etf.refusals + vqm.refusals, MARKET)


def by(stats, scope, name, period):
    return next(s for s in stats if (s.scope, s.name, s.period) == (scope, name, period))


def test_golden_session_of_one_strategy():
    stats = execution_stats(inputs(), D1)
    assert [(s.scope, s.name, s.period) for s in stats] == [
        ("strategy", "etf", "day"), ("strategy", "etf", "cumulative"),
        ("account", "A", "day"), ("account", "A", "cumulative")]  # vqm traded only on D2
    s = by(stats, "strategy", "etf", "day")
    assert (s.orders, s.filled_orders, s.ordered_volume, s.filled_volume) == (3, 2, 3500, 3200)
    assert s.fill_rate_volume == pytest.approx(3200 / 3500)
    assert s.fill_rate_orders == pytest.approx(2 / 3)
    # fully filled: o1 last fill 09:30:20 (20 s), o2 09:30:10 (10 s); p90 = 10 + 0.9 * (20 - 10)
    assert (s.timed_orders, s.time_to_fill_median, s.time_to_fill_p90) == (2, pytest.approx(15.0), pytest.approx(19.0))
    assert s.traded_value == pytest.approx(2406 + 1608 + 3980 + 200.4)
    assert s.fees == pytest.approx(11.0) and s.fees_per_cny == pytest.approx(11.0 / 8194.4)
    # buys cost (fill - P), the sale costs (P - fill): decision 6 + 8 + 20 + 0.4 over 2400 + 1600 + 4000 + 200
    assert s.slippage_decision_bp == pytest.approx(34.4 / 8200 * 1e4)
    assert s.slippage_open_bp == pytest.approx((3 + 6 + 10 + 0.2) / (4005 + 3990 + 200.2) * 1e4)
    assert s.slippage_vwap_bp == pytest.approx((-3 + 2 + 20 - 0.4) / (4015 + 4000 + 200.8) * 1e4)
    assert [(r.reason, r.count, r.value) for r in s.refusals] == [
        ("insufficient_cash", 1, pytest.approx(800.0)), ("lot_rounding", 1, pytest.approx(37.0)),
        ("suspended", 1, pytest.approx(1500.0))]
    assert by(stats, "account", "A", "day") == replace(s, scope="account", name="A")  # A trades only etf


def test_golden_second_session_and_cumulative():
    stats = execution_stats(inputs(), D2)
    etf_day = by(stats, "strategy", "etf", "day")
    assert etf_day.orders == 0 and math.isnan(etf_day.fill_rate_volume) and math.isnan(etf_day.slippage_open_bp)
    etf_all = by(stats, "strategy", "etf", "cumulative")
    assert (etf_all.orders, etf_all.filled_volume) == (3, 3200)
    vqm = by(stats, "strategy", "vqm", "day")
    # the rejected order counts as an order (nothing filled) and as a risk denial, matched to the denial log
    assert (vqm.orders, vqm.filled_orders, vqm.fill_rate_volume) == (2, 1, pytest.approx(100 / 300))
    assert (vqm.timed_orders, vqm.time_to_fill_median) == (1, pytest.approx(120.0))
    assert vqm.slippage_decision_bp == pytest.approx(10 / 1700 * 1e4)
    assert vqm.slippage_open_bp == pytest.approx(5 / 1705 * 1e4)
    assert vqm.slippage_vwap_bp == pytest.approx(-2 / 1712 * 1e4)
    assert vqm.fees_per_cny == pytest.approx(6.71 / 171_000)
    assert [(r.reason, r.count, r.value) for r in vqm.refusals] == [("risk_denied", 1, pytest.approx(2000.0))]
    accounts = {(s.name, s.period): s.orders for s in stats if s.scope == "account"}
    assert accounts == {("A", "day"): 0, ("A", "cumulative"): 3, ("B", "day"): 2, ("B", "cumulative"): 2}


def test_a_rejection_without_a_matching_denial_is_the_brokers():
    vqm = from_journal([vqm_day2()], "B")
    assert [(r.reason, r.volume) for r in vqm.refusals] == [("rejected", 200)]


def test_unknown_times_are_not_measured():
    rows = ExecutionInputs((OrderRow(D1, "s", "A", "r", ETF1, True, 100),),
                           (FillRow(D1, "s", "A", "r", ETF1, True, 4.0, 100, 0.5),))
    s = execution_stats(rows, D1)[0]
    assert (s.filled_orders, s.timed_orders) == (1, 0) and math.isnan(s.time_to_fill_median)
    assert math.isnan(s.slippage_decision_bp)


@pytest.mark.parametrize("values,q,expected", [([], 0.5, math.nan), ([7.0], 0.9, 7.0), ([1, 2, 3, 4], 0.5, 2.5),
                                               ([10, 20, 30, 40, 50], 0.9, 46.0)])
def test_quantile(values, q, expected):
    got = quantile(values, q)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def test_renderers():
    stats = execution_stats(inputs(), D2)
    table = json.loads(render_json(stats))
    assert [(r["scope"], r["name"], r["period"]) for r in table] == [(s.scope, s.name, s.period) for s in stats]
    vqm = next(r for r in table if (r["name"], r["period"]) == ("vqm", "day"))
    assert vqm["fill_rate_volume"] == pytest.approx(100 / 300) and vqm["refusals"][0]["reason"] == "risk_denied"
    assert next(r for r in table if (r["name"], r["period"]) == ("etf", "day"))["fill_rate_volume"] is None
    text = render_markdown(stats)
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| strategy") or line.startswith("| account")]
    main = [r for r in rows if len(r) == 11]
    assert [(r[1].strip(), r[2].strip(), r[3].strip()) for r in main] == [(s.name, s.period, str(s.orders)) for s in stats]
    vqm_row = next(r for r in main if (r[1].strip(), r[2].strip()) == ("vqm", "day"))
    assert vqm_row[5].strip() == "33.3 %"
    refusals = [r for r in rows if len(r) == 6]
    assert ("vqm", "day", "risk_denied", "1", "2,000.00") in [tuple(c.strip() for c in r[1:]) for r in refusals]


# ---- the ops reader: a daemon's output folder and the daily panels -------------------------------------------
def panels_for(days, symbols, **columns):
    """Panels of ``days`` × ``symbols`` with the given columns (each a list of rows), the rest NaN, factor 1."""
    from vnpy_rotation.data.panels import Panels

    index = pd.DatetimeIndex([pd.Timestamp(d) for d in days])

    def frame(name, default=math.nan):
        return pd.DataFrame(columns.get(name, [[default] * len(symbols)] * len(days)), index=index, columns=symbols,
                            dtype=float)

    return Panels(frame("open"), frame("high"), frame("low"), frame("close"), frame("volume"), frame("turnover"),
                  frame("factor", 1.0), frame("suspended", 0.0).astype(bool), frame("is_st", 0.0).astype(bool))


def test_benchmarks_from_the_panels_put_the_decision_on_the_sessions_share_basis():
    from vnpy_rotation.ops.execution_run import benchmarks

    days = [date(2024, 1, 5), D1]
    # ETF1 splits 1:2 on D1 (factor doubles on the ex-date): yesterday's close 8.0 is 4.0 in today's units
    panels = panels_for(days, [ETF1, ETF2], open=[[8.0, 2.01], [4.005, 1.995]], close=[[8.0, 2.0], [4.02, 1.99]],
                        volume=[[1e6, 1e6], [2e6, 3e6]], turnover=[[8e6, 2e6], [8.03e6, 6e6]],
                        factor=[[1.0, 1.0], [2.0, 1.0]])
    decision, market = benchmarks(panels, [(D1, ETF1), (D1, ETF2), (date(2024, 1, 5), ETF2), (D1, STOCK)])
    assert decision == {(D1, ETF1): pytest.approx(4.0), (D1, ETF2): 2.0}  # no close before the first day
    assert market[(D1, ETF1)] == MarketPrice(4.005, pytest.approx(4.015))
    assert market[(D1, ETF2)] == MarketPrice(1.995, pytest.approx(2.0))
    assert (D1, STOCK) not in market


def test_run_stats_reads_the_daemons_folder(tmp_path):
    from vnpy_rotation.live.state_file import write_atomic
    from vnpy_rotation.ops.execution_run import run_stats

    write_atomic(tmp_path / "journal" / "2024-01-08.json", etf_day1())
    (tmp_path / "sessions.csv").write_text(
        "date,phase,scheduled_at,started_at,finished_at,outcome,detail\n"
        "2024-01-08,open,2024-01-08T09:30:00.000+08:00,2024-01-08T09:30:00.000+08:00,"
        "2024-01-08T09:30:01.000+08:00,ok,\n", encoding="utf-8")
    symbols = [ETF1, ETF2, ETF3, ETF4]
    panels = panels_for([date(2024, 1, 5), D1], symbols, close=[[4.0, 2.0, 1.0, 5.0], [4.0, 2.0, 1.0, 5.0]],
                        open=[[4.0, 2.0, 1.0, 5.0], [4.005, 1.995, 1.001, math.nan]],
                        volume=[[1.0] * 4, [1.0, 1.0, 1.0, 0.0]], turnover=[[4.0, 2.0, 1.0, 5.0], [4.015, 2.0, 1.004, 0.0]])
    stats = run_stats(tmp_path, "A", panels=panels)
    expected = execution_stats(inputs(), D1)
    assert stats == tuple(s for s in expected)


def test_a_resubmitted_order_without_its_sending_time_is_not_timed():
    record = etf_day1()
    for row in record["progress"]["orders"][:1] + record["progress"]["fills"][:2]:
        row["reference"] = "etf|2024-01-08|0|1"  # o1 as the leg's second order: sent in a later round
    rows = from_journal([record], "A", sent={D1: datetime(2024, 1, 8, 9, 30, tzinfo=SHANGHAI)})
    s = execution_stats(rows, D1)[0]
    assert (s.filled_orders, s.timed_orders, s.time_to_fill_median) == (2, 1, pytest.approx(10.0))
