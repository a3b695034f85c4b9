"""Ex-dates split into new shares and cash per old share; holdings and PE(TTM) across 送转 ex-dates."""

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import BUNDLED, REAL, needs_real
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scenario_market import STOCK, STOCK_B, at, backtest, days, equity_on, flat, make_panels, money, positions_on

from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.data.market_data import build_market_data
from vnpy_rotation.fundamentals.panels import KNOWN_PANEL, fundamental_panels, pe_ttm
from vnpy_rotation.fundamentals.share_changes import (
    BAOSTOCK,
    FACTOR,
    MARKET,
    Distribution,
    eps_share_scale,
    from_holding_arrays,
    from_steps,
    split_step,
    trailing_cash,
)
from vnpy_rotation.live.replay_book import ReplayBook

NAN = np.nan

# ---------------------------------------------------------------------------------------------------
# The decomposition of one factor step
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("step,prev_close,per_ten,expected", [
    # 10转10 + 0.10 cash at 20.10: reference (20.10 − 0.10) / 2 = 10.00, step 2.01
    (20.10 / 10.00, 20.10, True, (2.0, 0.10)),
    # 10送1 + 4.374 cash (贵州茅台 2014-06-25, close 163.57 → reference 144.72)
    (163.57 / 144.72, 163.57, True, (1.1, 163.57 - 1.1 * 144.72)),
    # cash only: 0.50 at 10.00 → reference 9.50
    (10.00 / 9.50, 10.00, True, (1.0, 0.50)),
    # 10转10, no cash, the reference rounded up half a fen: 20.01 → 10.01 (true 10.005)
    (20.01 / 10.01, 20.01, True, (2.0, 0.0)),
    # a consolidation (缩股) 2 → 1
    (0.5, 10.0, True, (0.5, 0.0)),
    # fund unit split 1:4 (the step itself, not a whole ratio per 10) and a fund consolidation
    (3.996, 4.0, False, (3.996, 0.0)),
    (0.25, 1.0, False, (0.25, 0.0)),
    # fund cash distribution: 4.00 → 3.95
    (4.00 / 3.95, 4.00, False, (1.0, 0.05)),
])
def test_split_step(step, prev_close, per_ten, expected):
    ratio, cash = split_step(step, prev_close, per_ten=per_ten, tick=0.01 if per_ten else 0.001)
    assert ratio == pytest.approx(expected[0], abs=1e-12)
    assert cash == pytest.approx(expected[1], abs=1e-9)


@settings(max_examples=400, deadline=None)
@given(k=st.integers(0, 40), prev_cents=st.integers(200, 200_000), yield_bp=st.integers(0, 10_000))
def test_split_step_round_trip(k, prev_cents, yield_bp):
    """A step built from a whole ratio per 10 and a realistic cash remainder (at most half the next
    tenth's share of the price: cash / close ≤ 0.5 × 0.1 / (r + 0.1)), with the reference quoted to the
    fen as the exchange quotes it and at least 2 CNY, gives back the ratio and the cash to within the
    rounding."""
    ratio = 1 + k / 10
    prev = prev_cents / 100
    cash = round(prev * 0.5 * 0.1 / (ratio + 0.1) * yield_bp / 10_000, 2)
    reference = round((prev - cash) / ratio, 2)
    assume(reference >= 2.0)
    got_ratio, got_cash = split_step(prev / reference, prev)
    assert got_ratio == pytest.approx(ratio, abs=1e-12)
    assert got_cash == pytest.approx(cash, abs=ratio * 0.005 + 1e-9)  # the reference's half-fen rounding


def test_from_steps_keeps_every_ex_date():
    d = pd.DatetimeIndex(pd.to_datetime(["2023-06-01", "2023-06-02", "2023-06-05"]))
    got = from_steps(d, np.array([1.0, 20.10 / 10.00, 1.0]), np.array([np.nan, 20.10, 10.0]), per_ten=True)
    assert [(x.ex_date, x.share_ratio, round(x.cash, 6), x.source) for x in got] == [
        (date(2023, 6, 2), 2.0, 0.1, FACTOR)]


# ---------------------------------------------------------------------------------------------------
# Holdings: the backtest kernel and the replay book (both read MarketData.split / .dividend)
# ---------------------------------------------------------------------------------------------------

# 10转10 + 0.10 CNY per share before tax on 08-24: close 20.10 on 08-23, reference (20.10 − 0.10) / 2 = 10.00
TEN_FOR_TEN = {STOCK: [flat(20.10), flat(20.10), flat(20.10), flat(10.00), flat(10.00)]}
TEN_FOR_TEN_FACTOR = {STOCK: [1, 1, 1, 2.01, 2.01]}


def test_ten_for_ten_plus_cash_in_the_backtest():
    d = days("2023-08-21", 5)
    md, result = backtest(make_panels(d, TEN_FOR_TEN, factor=TEN_FOR_TEN_FACTOR),
                          {"2023-08-21": {STOCK: 1000}})  # buy 1 000 on 08-22 at 20.10
    assert at(md, md.split, STOCK, "2023-08-24") == 2.0
    assert at(md, md.dividend, STOCK, "2023-08-24") == pytest.approx(0.10)
    flows = result.cash_flows
    assert flows[["vt_symbol", "kind", "volume_before", "volume_after", "cash"]].values.tolist() == [
        [STOCK, "split", 1000.0, 2000.0, 0.0],
        [STOCK, "dividend", 1000.0, 2000.0, 100.00],  # 1 000 old shares × 0.10
    ]
    assert positions_on(result, "2023-08-24") == [[STOCK, 2000.0, 10.0]]
    # 08-22 buy 20 100.00, commission 5.03 (0.025 %), transfer 0.20 (0.001 %): cash 79 894.77
    cash_before = equity_on(result, "2023-08-23", "cash")
    assert equity_on(result, "2023-08-24", "cash") == money(cash_before + 100.00)
    # no jump in equity across the ex-date: 2 000 × 10.00 + 100.00 = 1 000 × 20.10
    assert equity_on(result, "2023-08-24") == money(equity_on(result, "2023-08-23"))


def test_ten_for_ten_plus_cash_in_the_replay_book():
    d = days("2023-08-21", 5)
    md = build_market_data(make_panels(d, TEN_FOR_TEN, factor=TEN_FOR_TEN_FACTOR))
    book = ReplayBook(BacktestConfig())
    book.market = md
    book.state.positions[STOCK] = 1000.0
    cash = book.state.cash
    book.begin_day(pd.Timestamp("2023-08-24"))
    assert book.state.positions[STOCK] == 2000.0
    assert book.state.cash == money(cash + 100.00)
    assert [(a["kind"], a["before"], a.get("after"), a.get("cash")) for a in book.state.actions] == [
        ("split", 1000.0, 2000.0, None), ("dividend", 1000.0, None, 100.00)]


def test_dividend_record_replaces_the_factor_split():
    """An imported record wins on its ex-date: here 10送3 + 转增2 + 0.30 cash, step 1.5 × 20.30 / 20.00."""
    d = days("2023-08-21", 5)
    bars = {STOCK: [flat(20.30), flat(20.30), flat(20.30), flat(13.40), flat(13.40)]}
    factor = {STOCK: [1, 1, 1, 20.30 / 13.40, 20.30 / 13.40]}
    records = {STOCK: [Distribution(date(2023, 8, 24), 1.5, 0.3, BAOSTOCK)]}
    md = build_market_data(make_panels(d, bars, factor=factor), records=records)
    assert at(md, md.split, STOCK, "2023-08-24") == 1.5
    assert at(md, md.dividend, STOCK, "2023-08-24") == 0.3


# ---------------------------------------------------------------------------------------------------
# PE(TTM) across 送转 ex-dates
# ---------------------------------------------------------------------------------------------------


def _pe_around(reports: pd.DataFrame, trading_days: list[str], close: list[float],
               distributions: list[Distribution]) -> tuple[np.ndarray, np.ndarray]:
    d = pd.DatetimeIndex(pd.to_datetime(trading_days))
    panels = fundamental_panels(reports, d, [STOCK])
    scale = eps_share_scale({STOCK: distributions}, panels[KNOWN_PANEL], d, [STOCK])
    closes = np.array(close)[:, None]
    return pe_ttm(closes, panels["eps_ttm"])[:, 0], pe_ttm(closes, panels["eps_ttm"], scale)[:, 0]


def _report(announced: str, eps: float) -> pd.DataFrame:
    return pd.DataFrame({"vt_symbol": [STOCK], "period_end": [pd.Timestamp("2023-03-31")],
                         "announced": [pd.Timestamp(announced)], "eps_ttm": [eps]})


TEN_FOR_TEN_ON_0601 = [Distribution(date(2023, 6, 1), 2.0, 0.1, FACTOR)]


def test_pe_after_ten_for_ten_uses_the_new_share_basis():
    """Report (EPS 1.00 per old share) announced 04-20, 10转10 ex-date 06-01: PE 20.10 / 1.00 before,
    10.00 / 0.50 after — moves with the price alone (10.00 × 2 / 20.10), not halved."""
    old, new = _pe_around(_report("2023-04-20", 1.0), ["2023-05-31", "2023-06-01"], [20.10, 10.00],
                          TEN_FOR_TEN_ON_0601)
    assert new.tolist() == pytest.approx([20.10, 20.00])
    assert old.tolist() == pytest.approx([20.10, 10.00])  # what an unscaled EPS gives: half


def test_report_announced_after_the_ex_date_is_not_scaled():
    """A report announced after the ex-date already counts the bonus shares (CAS 34 §13)."""
    old, new = _pe_around(_report("2023-06-05", 0.5), ["2023-06-06", "2023-06-07"], [10.00, 10.20],
                          TEN_FOR_TEN_ON_0601)
    assert new.tolist() == pytest.approx([20.00, 20.40])
    assert new.tolist() == old.tolist()


def _pe_jumps(stocks: Path, profit_file: Path) -> list[tuple]:
    """Every stock's 送转 ex-date (Baostock preclose step ≥ 1.2) with the same report in use on both
    sides: (code, ex-date, PE move / adjusted-price move with and without the share scale)."""
    profit = pd.read_csv(profit_file)
    out = []
    for path in sorted(stocks.glob("*.csv.gz")):
        bars = pd.read_csv(path)
        code = bars["code"].iloc[0]
        rows = profit[profit["code"] == code]
        if rows.empty:
            continue
        vt = f"{code[3:]}.{'SSE' if code.startswith('sh') else 'SZSE'}"
        d = pd.DatetimeIndex(pd.to_datetime(bars["date"]))
        reports = pd.DataFrame({"vt_symbol": vt, "period_end": pd.to_datetime(rows["statDate"]),
                                "announced": pd.to_datetime(rows["pubDate"]), "eps_ttm": rows["epsTTM"]})
        panels = fundamental_panels(reports, d, [vt])
        close = bars["close"].to_numpy()
        prev = np.r_[np.nan, close[:-1]]
        step = prev / bars["preclose"].to_numpy()
        step[0] = 1.0
        distributions = from_steps(d, np.where(np.abs(step - 1) > 1e-3, step, 1.0), prev, per_ten=True)
        scale = eps_share_scale({vt: distributions}, panels[KNOWN_PANEL], d, [vt])
        old = pe_ttm(close[:, None], panels["eps_ttm"])[:, 0]
        new = pe_ttm(close[:, None], panels["eps_ttm"], scale)[:, 0]
        for i in np.flatnonzero(step >= 1.2):
            if panels[KNOWN_PANEL][i, 0] != panels[KNOWN_PANEL][i - 1, 0] or not np.isfinite(old[i - 1]):
                continue
            adjusted_move = close[i] * step[i] / close[i - 1]
            out.append((vt, d[i].date(), old[i] / old[i - 1] / adjusted_move, new[i] / new[i - 1] / adjusted_move))
    return out


# PE move / adjusted-price move across an ex-date with the same report: the cash paid lowers the price
# per share (yields on one ex-date stay below 10 %), the reference price's half-fen rounding adds ≤ 0.3 %.
MOVE_WITH_PRICE = (0.90, 1.003)


def _check_pe_jumps(jumps: list[tuple]) -> None:
    low, high = MOVE_WITH_PRICE
    assert [(vt, day, round(new, 3)) for vt, day, _, new in jumps if not low <= new <= high] == []
    assert [(vt, day, round(old, 3)) for vt, day, old, _ in jumps if old >= 0.85] == []  # ratio ≥ 1.2: ≤ 1/1.2


def test_pe_moves_with_the_price_across_real_bonus_ex_dates():
    """Real 送转 in the bundled Baostock data: across the ex-date PE moves with the adjusted price up to the
    cash paid, and no longer drops by the bonus ratio."""
    jumps = _pe_jumps(BUNDLED / "stocks", BUNDLED / "fundamentals" / "profit_data.csv.gz")
    assert len(jumps) >= 60  # e.g. 000651.SZSE 2015-07-03 (10转10), 002466.SZSE 2016-05-27 (10转28)
    _check_pe_jumps(jumps)


@needs_real
def test_pe_moves_with_the_price_across_the_shared_bonus_ex_dates():
    """The same on the shared real set (265 stocks, 270+ such ex-dates)."""
    jumps = _pe_jumps(REAL / "stocks_daily_unadjusted_baostock", REAL / "fundamentals_baostock" / "profit_data.csv")
    assert len(jumps) >= 250
    _check_pe_jumps(jumps)


# The ratios are checked against Baostock's totalShare of the reports around the ex-date (2015Q3 / 2015H1
# 18 280 241 410 / 9 140 120 705 = 2.0; 2016H1 / 2016Q1 993 582 200 / 261 469 000 = 3.8).
@pytest.mark.parametrize("vt_symbol,ex_date,bonus", [
    ("601318.SSE", "2015-07-27", 2.0),    # 中国平安 10转10 + cash
    ("002466.SZSE", "2016-05-27", 3.8),   # 天齐锂业 10转28 + cash
])
def test_vqm_ranks_on_pe_without_the_bonus_jump(bundled_stock_market, vt_symbol, ex_date, bonus):
    """The VQM template's PE (the one its CTA sleeve ranks with too: ``VqmStrategy.rank_rows``) on the
    imported bundled data, the day before and on a 送转 ex-date: it moves with the adjusted price up to
    the cash paid, and does not drop by the bonus ratio."""
    from vnpy_rotation.strategies import create_strategy

    market = bundled_stock_market
    i = market.days.get_loc(pd.Timestamp(ex_date))
    j = market.symbols.index(vt_symbol)
    pe = create_strategy("vqm").rank_rows(market, np.array([i - 1, i])).pe[:, j]
    adjusted_move = market.adjusted()[i, j] / market.adjusted()[i - 1, j]
    assert MOVE_WITH_PRICE[0] <= pe[1] / pe[0] / adjusted_move <= MOVE_WITH_PRICE[1]
    assert market.split[i, j] == pytest.approx(bonus)


@settings(max_examples=200, deadline=None)
@given(ex_offsets=st.lists(st.integers(0, 60), max_size=5, unique=True),
       ratios=st.lists(st.sampled_from([0.5, 1.0, 1.1, 1.5, 2.0, 3.8]), min_size=5, max_size=5),
       known_offsets=st.lists(st.one_of(st.none(), st.integers(-5, 60)), min_size=61, max_size=61))
def test_eps_share_scale_is_the_product_after_the_announcement(ex_offsets, ratios, known_offsets):
    """Against the definition, day by day: the product of the ratios of ex-dates e with known < e <= day."""
    start = pd.Timestamp("2023-01-02")
    d = pd.date_range(start, periods=61, freq="D")
    distributions = [Distribution((start + pd.Timedelta(days=o)).date(), r, 0.0, FACTOR)
                     for o, r in zip(ex_offsets, ratios)]
    epoch = (start - pd.Timestamp("1970-01-01")).days
    known = np.array([[np.nan if k is None else epoch + k] for k in known_offsets], dtype=float)
    scale = eps_share_scale({STOCK: distributions}, known, d, [STOCK])[:, 0]
    for i, k in enumerate(known_offsets):
        expected = 1.0 if k is None else float(np.prod([r for o, r in zip(ex_offsets, ratios) if k < o <= i]))
        assert scale[i] == pytest.approx(expected)


def test_trailing_cash_is_per_current_share():
    """10转10 + 0.10 on 2023-06-01, then 0.20 on 2023-09-01: 0.05 + 0.20 per current share in between,
    the first leaving the 365-day window after 2024-05-30."""
    d = pd.DatetimeIndex(pd.to_datetime(["2023-05-31", "2023-06-01", "2023-09-01", "2024-05-30", "2024-05-31"]))
    distributions = {STOCK: [Distribution(date(2023, 6, 1), 2.0, 0.10, FACTOR),
                             Distribution(date(2023, 9, 1), 1.0, 0.20, FACTOR)]}
    got = trailing_cash(distributions, d, [STOCK])[:, 0]
    assert got.tolist() == pytest.approx([0.0, 0.05, 0.25, 0.25, 0.20])


def test_trailing_cash_counts_the_365_days_up_to_the_day_on_current_shares():
    """2022-06-10: 0.50 cash per share. 2023-06-09: 10转10 (ratio 2) and 0.30 per share held before it.
    Over the close this is the dividend yield VQM ranks on (``trailing_dividend_yield``)."""
    d = pd.DatetimeIndex(pd.to_datetime(["2022-06-09", "2022-06-10", "2023-06-08", "2023-06-09", "2023-06-10",
                                         "2023-06-12"]))
    close = np.array([10.0, 9.5, 12.0, 6.0, 6.0, 5.0])
    distributions = {STOCK: [Distribution(date(2022, 6, 10), 1.0, 0.5, FACTOR),
                             Distribution(date(2023, 6, 9), 2.0, 0.3, FACTOR)]}

    dy = trailing_cash(distributions, d, [STOCK])[:, 0] / close

    expected = [0.0,  # the ex-date is after the day: not counted
                0.5 / 9.5,  # counted from its ex-date
                0.5 / 12.0,  # 363 days later, still inside
                (0.5 / 2 + 0.3 / 2) / 6.0,  # 364 days: both, each on the doubled share count
                (0.3 / 2) / 6.0,  # 365 days after 2022-06-10: that one has left the window
                (0.3 / 2) / 5.0]
    np.testing.assert_allclose(dy, expected, rtol=0, atol=1e-15)


def test_book_value_is_rebased_by_bonus_shares_after_the_announcement_only():
    """10转10 on 2023-06-09 for both stocks; the first's report was announced 2023-04-29, the second's on
    2023-06-15 (none known on the first day). PB divides the report's book value per share by this scale."""
    d = pd.DatetimeIndex(pd.to_datetime(["2023-05-04", "2023-06-09", "2023-06-20"]))
    ten_for_ten = [Distribution(date(2023, 6, 9), 2.0, 0.0, FACTOR)]
    bvps = np.array([[10.0, NAN], [10.0, 10.0], [10.0, 10.0]])
    epoch = pd.Timestamp("1970-01-01")
    known = np.array([[(pd.Timestamp("2023-04-29") - epoch).days, (pd.Timestamp("2023-06-15") - epoch).days]] * 3,
                     dtype=float)
    known[0, 1] = NAN

    out = bvps / eps_share_scale({STOCK: ten_for_ten, STOCK_B: ten_for_ten}, known, d, [STOCK, STOCK_B])

    np.testing.assert_allclose(out[:, 0], [10.0, 5.0, 5.0])  # announced before the ex-date: halved from it on
    np.testing.assert_allclose(out[1:, 1], [10.0, 10.0])  # announced after: already on the new shares
    assert np.isnan(out[0, 1])


def test_a_hand_built_market_reads_its_own_ex_dates():
    """A market ``prepare_market`` did not prepare gets the same share basis from ``MarketData.split`` /
    ``.dividend``: the arrays read back as the distributions they were built from."""
    d = pd.DatetimeIndex(pd.to_datetime(["2023-06-08", "2023-06-09", "2023-06-12"]))
    split = np.array([[1.0, 1.0], [2.0, np.nan], [1.0, 1.0]])
    cash = np.array([[0.0, 0.0], [0.3, 0.0], [0.0, 0.2]])
    assert from_holding_arrays(d, split, cash, [STOCK, STOCK_B]) == {
        STOCK: [Distribution(date(2023, 6, 9), 2.0, 0.3, MARKET)],
        STOCK_B: [Distribution(date(2023, 6, 12), 1.0, 0.2, MARKET)]}
