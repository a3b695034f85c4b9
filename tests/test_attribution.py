"""P&L attribution, each component on a few hand-written bars with hand-computed results; Brinson–Fachler on
Bacon's published example; Carino linking over two periods; a property test that the lines sum to the P&L."""

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnpy_rotation.attribution import AttributionInput, Bars, Benchmark, Fills, Unfilled, attribute
from vnpy_rotation.attribution.brinson import brinson_fachler, carino_link, segment_attribution
from vnpy_rotation.attribution.decompose import decompose, holdings_grid, previous_reference
from vnpy_rotation.attribution.markouts import markouts


@dataclass
class Book:
    """A hand-written book: per-day closes and open (the fill basis), fills, refusals; holdings and equity
    follow from the fills (a split floors the shares, a dividend pays on the shares held before)."""

    close: list[list[float]]
    basis: list[list[float]] | None = None
    prev_close: list[float] | None = None
    start_holdings: list[float] | None = None
    fills: list[tuple] = field(default_factory=list)  # (day, symbol, signed qty, price, commission, stamp, transfer)
    unfilled: list[tuple] = field(default_factory=list)  # (day, symbol, signed qty, reason)
    split: list[list[float]] | None = None
    dividend: list[list[float]] | None = None
    capital: float = 100_000.0
    extra_shares: dict[tuple[int, int], float] = field(default_factory=dict)  # a broker's different count
    benchmark: Benchmark | None = None
    suspended: list[list[bool]] | None = None

    def build(self) -> AttributionInput:
        close = np.array(self.close, dtype=float)
        n, m = close.shape
        basis = close.copy() if self.basis is None else np.array(self.basis, dtype=float)
        split = np.ones((n, m)) if self.split is None else np.array(self.split, dtype=float)
        dividend = np.zeros((n, m)) if self.dividend is None else np.array(self.dividend, dtype=float)
        prev = np.array(self.prev_close if self.prev_close is not None else close[0], dtype=float)
        held = np.zeros(m) if self.start_holdings is None else np.array(self.start_holdings, dtype=float)
        start_value = float((held * prev).sum())
        cash = self.capital - start_value
        holdings, equity, dividend_cash = np.zeros((n, m)), np.zeros(n), np.zeros((n, m))
        for t in range(n):
            dividend_cash[t] = np.round(held * dividend[t], 2)
            cash += dividend_cash[t].sum()
            held = np.where(split[t] != 1, np.floor(held * split[t] + 1e-9), held)
            for day, j, q, price, *fees in self.fills:
                if day == t:
                    held[j] += q
                    cash -= q * price + sum(fees)
            for (day, j), extra in self.extra_shares.items():
                if day == t:
                    held[j] += extra
            holdings[t] = held
            equity[t] = cash + float((held * close[t]).sum())
        days = pd.bdate_range("2024-01-02", periods=n)
        fills = Fills(np.array([f[0] for f in self.fills], dtype=np.int64), np.array([f[1] for f in self.fills], dtype=np.int64),
                      np.array([f[2] for f in self.fills], dtype=float), np.array([f[3] for f in self.fills], dtype=float),
                      *(np.array([f[k] for f in self.fills], dtype=float) for k in (4, 5, 6)))
        unfilled = Unfilled(np.array([u[0] for u in self.unfilled], dtype=np.int64),
                            np.array([u[1] for u in self.unfilled], dtype=np.int64),
                            np.array([u[2] for u in self.unfilled], dtype=float), tuple(u[3] for u in self.unfilled))
        bars = Bars(days, tuple(f"S{j}" for j in range(m)), prev, close, basis, split, dividend,
                    None if self.suspended is None else np.array(self.suspended, dtype=bool))
        start = np.zeros(m) if self.start_holdings is None else np.array(self.start_holdings, dtype=float)
        return AttributionInput("test", bars, start, holdings, self.capital, equity, fills, unfilled, dividend_cash,
                                self.benchmark)


def lines(book: Book) -> dict[str, float]:
    """Each component summed over the book, plus the P&L and the opportunity per reason."""
    parts = decompose(book.build())
    out = {name: round(float(grid.sum()), 6) for name, grid in parts.components.items()}
    out["pnl"] = round(float(parts.pnl.sum()), 6)
    out.update({f"opportunity:{k}": round(float(v.sum()), 6) for k, v in parts.opportunity.items()})
    return out


# ---------------------------------------------------------------- implementation shortfall, fees, actions


def test_delay_is_the_move_from_the_decision_close_to_the_open():
    # close 10.00 yesterday, open 10.20, close 10.50; 1000 bought at the open
    got = lines(Book(close=[[10.5]], basis=[[10.2]], prev_close=[10.0], fills=[(0, 0, 1000, 10.2, 0, 0, 0)]))
    assert got["holdings"] == 500.0  # 1000 × (10.50 − 10.00), as if bought at the decision close
    assert got["delay"] == -200.0  # −1000 × (10.20 − 10.00)
    assert got["execution"] == 0.0
    assert got["pnl"] == 300.0 and got["residual"] == 0.0  # 1000 × 10.50 − 10 200


def test_execution_is_the_slippage_from_the_open_to_the_fill():
    got = lines(Book(close=[[10.5]], basis=[[10.2]], prev_close=[10.0], fills=[(0, 0, 1000, 10.25, 0, 0, 0)]))
    assert (got["holdings"], got["delay"], got["execution"], got["pnl"]) == (500.0, -200.0, -50.0, 250.0)


def test_a_sale_after_a_fall_pays_delay_and_slippage_too():
    # 1000 held at 10.00; open 9.95, sold at 9.90, close 9.80
    got = lines(Book(close=[[9.8]], basis=[[9.95]], prev_close=[10.0], start_holdings=[1000],
                     fills=[(0, 0, -1000, 9.90, 0, 0, 0)]))
    assert got["holdings"] == 0.0  # nothing held at the close
    assert got["delay"] == -50.0  # selling at 9.95 what was worth 10.00 at the decision
    assert got["execution"] == -50.0
    assert got["pnl"] == -100.0 and got["residual"] == 0.0


def test_fees_by_kind():
    got = lines(Book(close=[[10.0]], prev_close=[10.0], start_holdings=[1000],
                     fills=[(0, 0, -1000, 10.0, 5.0, 5.0, 0.1)]))
    assert (got["commission"], got["stamp_duty"], got["transfer_fee"]) == (-5.0, -5.0, -0.1)
    assert got["pnl"] == -10.1 and got["residual"] == 0.0


def test_a_refused_limit_up_buy_costs_the_paper_portfolio_the_day_move():
    # the plan bought 1000 at the decision close 10.00; the stock opened and closed limit-up at 11.00
    book = Book(close=[[11.0]], basis=[[11.0]], prev_close=[10.0], unfilled=[(0, 0, 1000, "limit_up")])
    got = lines(book)
    assert got["pnl"] == 0.0 and got["holdings"] == 0.0
    assert got["opportunity:limit_up"] == 1000.0  # 1000 × (11.00 − 10.00): not part of the actual P&L
    report = attribute(book.build())
    paper = report.summary.set_index("component")["cny"]
    assert paper["paper holdings P&L"] == 1000.0 and paper["total (equity change)"] == 0.0


def test_a_t1_locked_sale_keeps_the_days_gain_the_plan_would_have_given_up():
    # 1000 bought at 10.00; the same day's sale of 500 is refused (T+1); close 10.50
    got = lines(Book(close=[[10.5]], basis=[[10.0]], prev_close=[10.0], fills=[(0, 0, 1000, 10.0, 0, 0, 0)],
                     unfilled=[(0, 0, -500, "t1_locked")]))
    assert got["holdings"] == 500.0
    assert got["opportunity:t1_locked"] == -250.0  # the paper book would have held 500 fewer: −500 × 0.50


def test_a_sale_refused_over_a_suspension_is_measured_to_the_resumption_open():
    # 1000 held at 10.00; the sale decided at day 0's close is refused on days 1-2 (suspended, close carried
    # at 10.00); trading resumes on day 3 opening 9.20 (−8 %) and the sale fills there; close 9.10
    book = Book(close=[[10.0], [10.0], [10.0], [9.1]], basis=[[10.0], [10.0], [10.0], [9.2]], prev_close=[10.0],
                start_holdings=[1000], suspended=[[False], [True], [True], [False]],
                fills=[(3, 0, -1000, 9.2, 0, 0, 0)],
                unfilled=[(1, 0, -1000, "suspended"), (2, 0, -1000, "suspended")])
    parts = decompose(book.build())
    opportunity = parts.opportunity["suspended"].dense()[:, 0]
    assert list(opportunity) == pytest.approx([0.0, 0.0, 800.0, 0.0])  # −1000 × (9.20 − 10.00), counted once
    assert parts.dense(parts.components["delay"])[3, 0] == pytest.approx(-800.0)  # the actual sale still pays the gap


def test_a_refusal_suspended_to_the_end_of_the_window_has_no_resumption():
    # 1000 held; the sale is refused on days 1-2, suspended to the end: no price to measure the gap to
    book = Book(close=[[10.0], [10.0], [10.0]], prev_close=[10.0], start_holdings=[1000],
                suspended=[[False], [True], [True]],
                unfilled=[(1, 0, -1000, "suspended"), (2, 0, -1000, "suspended")])
    parts = decompose(book.build())
    assert list(parts.opportunity["suspended"].dense()[:, 0]) == [0.0, 0.0, 0.0]
    book = Book(close=[[10.0], [10.0]], prev_close=[10.0], start_holdings=[1000], suspended=[[True], [True]],
                unfilled=[(0, 0, -1000, "suspended")])  # suspended on every day of the window
    assert decompose(book.build()).opportunity["suspended"].sum() == 0.0


def test_a_split_on_the_ex_date_compares_on_the_new_share_basis():
    # 1000 held at 10.00; 2-for-1 on the ex-date; close 5.10
    got = lines(Book(close=[[5.1]], prev_close=[10.0], start_holdings=[1000], split=[[2.0]]))
    assert got["holdings"] == 200.0  # 2000 × (5.10 − 10.00 / 2)
    assert got["corporate_action"] == 0.0 and got["pnl"] == 200.0 and got["residual"] == 0.0


def test_a_split_that_leaves_a_fraction_shows_the_lost_fraction():
    # 1001 held at 10.00; 3-for-2 gives 1501.5, the broker keeps 1501 (no cash in lieu); close 6.70
    got = lines(Book(close=[[6.7]], prev_close=[10.0], start_holdings=[1001], split=[[1.5]]))
    assert got["holdings"] == pytest.approx(1501 * (6.7 - 10 / 1.5), abs=1e-6)  # 50.0333
    assert got["corporate_action"] == pytest.approx(-0.5 * 10 / 1.5, abs=1e-6)  # half a share at 6.6667
    assert got["pnl"] == pytest.approx(46.7, abs=1e-6)  # 1501 × 6.70 − 10 010


def test_a_dividend_is_cash_beside_the_ex_date_drop():
    got = lines(Book(close=[[9.85]], prev_close=[10.0], start_holdings=[1000], dividend=[[0.2]]))
    assert (got["holdings"], got["dividends"], got["pnl"]) == (-150.0, 200.0, 50.0)


def test_the_residual_holds_what_the_fills_do_not_explain():
    # the broker's book shows one share more than the fills give: 10.50 unexplained at the close
    got = lines(Book(close=[[10.5]], prev_close=[10.0], fills=[(0, 0, 1000, 10.0, 0, 0, 0)],
                     extra_shares={(0, 0): 1}))
    assert got["residual"] == pytest.approx(10.0)  # P̃ × (h − h′ − q) = 10.00 × 1 share
    assert got["holdings"] == pytest.approx(1001 * 0.5)


def test_markouts_after_one_and_five_sessions_by_side():
    close = [[10.3], [10.4], [10.1], [10.2], [10.0], [10.0], [9.9]]
    book = Book(close=close, fills=[(0, 0, 1000, 10.25, 0, 0, 0), (1, 0, -1000, 10.4, 0, 0, 0)])
    table = markouts(book.build())
    buy, sell = table.iloc[0], table.iloc[1]
    assert buy["markout_t1_cny"] == pytest.approx(150.0)  # (10.40 − 10.25) × 1000
    assert buy["markout_t1_bp"] == pytest.approx((10.4 / 10.25 - 1) * 1e4)  # 146.34 bp
    assert buy["markout_t5_cny"] == pytest.approx(-250.0)  # (10.00 − 10.25) × 1000
    assert sell["markout_t1_cny"] == pytest.approx(300.0)  # sold at 10.40, next close 10.10: (10.10 − 10.40) × −1000
    assert sell["markout_t1_bp"] == pytest.approx((10.1 / 10.4 - 1) * -1e4)
    assert sell["markout_t5_cny"] == pytest.approx(500.0)


def test_markouts_follow_a_split_in_between():
    book = Book(close=[[10.0], [5.2]], split=[[1.0], [2.0]], fills=[(0, 0, 1000, 10.0, 0, 0, 0)])
    assert markouts(book.build())["markout_t1_cny"].iloc[0] == pytest.approx(400.0)  # 5.20 × 2 − 10.00


def test_previous_reference_divides_by_the_split():
    data = Book(close=[[10.0], [5.1]], split=[[1.0], [2.0]], prev_close=[9.0]).build()
    assert previous_reference(data)[:, 0].tolist() == [9.0, 5.0]


# ---------------------------------------------------------------- Brinson–Fachler and Carino

# Bacon, C. (2008) "Practical Portfolio Performance Measurement and Attribution", 2nd ed., Wiley, the
# three-country example of ch. 5 (pp. 126–129; also the first quarter of empyrical's bf_perf_attrib test):
# UK 40 %/40 %, Japan 30 %/20 %, US 30 %/40 % (portfolio/benchmark weights); returns 20 %/10 %,
# −5 %/−4 %, 6 %/8 %. Portfolio 8.3 %, benchmark 6.4 %.
BACON_WP = np.array([0.4, 0.3, 0.3])
BACON_WB = np.array([0.4, 0.2, 0.4])
BACON_RP = np.array([0.20, -0.05, 0.06])
BACON_RB = np.array([0.10, -0.04, 0.08])


def test_brinson_fachler_reproduces_bacons_three_country_example():
    effects = brinson_fachler(BACON_WP, BACON_WB, BACON_RP, BACON_RB)
    # allocation (w_p − w_b)(R_b,i − R_b): UK 0, Japan 0.1 × (−4 % − 6.4 %), US −0.1 × (8 % − 6.4 %)
    assert effects["allocation"] == pytest.approx([0.0, -0.0104, -0.0016])
    # selection w_b(R_p,i − R_b,i): UK 0.4 × 10 %, Japan 0.2 × −1 %, US 0.4 × −2 %
    assert effects["selection"] == pytest.approx([0.04, -0.002, -0.008])
    # interaction (w_p − w_b)(R_p,i − R_b,i): UK 0, Japan 0.1 × −1 %, US −0.1 × −2 %
    assert effects["interaction"] == pytest.approx([0.0, -0.001, 0.002])
    totals = {k: v.sum() for k, v in effects.items()}
    assert totals == pytest.approx({"allocation": -0.012, "selection": 0.030, "interaction": 0.001})
    assert sum(totals.values()) == pytest.approx(0.083 - 0.064)  # = the excess return, 1.9 %


def test_carino_linking_over_two_periods_sums_to_the_compounded_excess():
    # period 1: Bacon's first quarter (8.3 % vs 6.4 %); period 2 its second quarter:
    # weights 70/20/10 vs 40/30/30, returns −5 %/3 %/−5 % vs −7 %/4 %/−10 % → −3.4 % vs −4.6 %
    wp = np.array([BACON_WP, [0.7, 0.2, 0.1]])
    wb = np.array([BACON_WB, [0.4, 0.3, 0.3]])
    rp = np.array([BACON_RP, [-0.05, 0.03, -0.05]])
    rb = np.array([BACON_RB, [-0.07, 0.04, -0.10]])
    port, bench = (wp * rp).sum(axis=1), (wb * rb).sum(axis=1)
    assert port == pytest.approx([0.083, -0.034]) and bench == pytest.approx([0.064, -0.046])
    effects = brinson_fachler(wp, wb, rp, rb)
    linked = {k: carino_link(v, port, bench) for k, v in effects.items()}
    # compounded: 1.083 × 0.966 − 1 = 4.6178 %, 1.064 × 0.954 − 1 = 1.5056 %
    assert sum(v.sum() for v in linked.values()) == pytest.approx(0.046178 - 0.015056, abs=1e-9)
    # by hand: k_t = ln((1+R_p)/(1+R_b)) / (R_p − R_b), k the same on the compounded returns
    k1 = math.log(1.083 / 1.064) / 0.019
    k2 = math.log(0.966 / 0.954) / 0.012
    k = math.log(1.046178 / 1.015056) / 0.031122
    alloc_japan = (-0.0104 * k1 + (0.2 - 0.3) * (0.04 - -0.046) * k2) / k
    assert linked["allocation"][1] == pytest.approx(alloc_japan, rel=1e-6)


def test_cash_is_a_segment_whose_allocation_is_the_drag():
    # segments A and B (one stock each), benchmark 50/50; the book holds A with 80 % of 100 000, 20 % cash;
    # A +10 %, B 0 %: R_b = 5 %, R_p = 8 %
    bench = Benchmark("test", ("A", "B"), ("A", "B"), np.array([[0.5, 0.5]]), np.array([[True, True]]))
    book = Book(close=[[11.0, 10.0]], prev_close=[10.0, 10.0], start_holdings=[8000, 0], benchmark=bench)
    data = book.build()
    ref = previous_reference(data)
    seg = segment_attribution(data, holdings_grid(data, ref), ref, bench)
    assert seg.segments == ("A", "B", "CASH")
    assert seg.w_p[0] == pytest.approx([0.8, 0.0, 0.2])
    assert seg.effects["allocation"][0] == pytest.approx([0.3 * 0.05, -0.5 * -0.05, 0.2 * -0.05])
    assert seg.effects["selection"][0] == pytest.approx([0.0, 0.0, 0.0])
    daily = seg.daily()
    assert daily.loc[daily["segment"] == "CASH", "allocation_cny"].item() == pytest.approx(-1000.0)
    # in CNY: benchmark 5 000 + the effects = the holdings P&L 8 000
    effects_cny = sum(daily[f"{k}_cny"].sum() for k in ("allocation", "selection", "interaction"))
    assert seg.benchmark_cny() + effects_cny == pytest.approx(8000.0)


# ---------------------------------------------------------------- the sum is exact on random books


@st.composite
def random_books(draw):
    n = draw(st.integers(2, 6))
    m = draw(st.integers(1, 3))
    price = st.floats(1.0, 50.0, allow_nan=False).map(lambda x: round(x, 3))
    close = [[draw(price) for _ in range(m)] for _ in range(n)]
    basis = [[draw(price) for _ in range(m)] for _ in range(n)]
    split = [[draw(st.sampled_from([1.0, 1.0, 1.0, 2.0, 1.3])) for _ in range(m)] for _ in range(n)]
    dividend = [[draw(st.sampled_from([0.0, 0.0, 0.15])) for _ in range(m)] for _ in range(n)]
    fills = []
    for t in range(n):
        for j in range(m):
            if draw(st.booleans()):
                q = draw(st.integers(-5, 10)) * 100
                fills.append((t, j, float(q), round(basis[t][j] * draw(st.floats(0.99, 1.01)), 3),
                              draw(st.floats(0, 10)), draw(st.floats(0, 5)), draw(st.floats(0, 1))))
    unfilled = [(t, j, float(draw(st.integers(-500, 500))), draw(st.sampled_from(["limit_up", "t1_locked"])))
                for t in range(n) for j in range(m) if draw(st.booleans())]
    start = [float(draw(st.integers(0, 30)) * 100) for _ in range(m)]
    return Book(close=close, basis=basis, prev_close=[draw(price) for _ in range(m)], start_holdings=start,
                fills=fills, unfilled=unfilled, split=split, dividend=dividend)


@settings(max_examples=200, deadline=None)
@given(random_books())
def test_the_lines_sum_to_the_equity_change_exactly(book):
    data = book.build()
    report = attribute(data)
    rows = report.summary.set_index("component")["cny"]
    actual = [c for c in report.summary.loc[report.summary["group"] == "actual", "component"] if not c.startswith("total")]
    change = float(data.equity[-1] - data.start_equity)
    assert rows[actual].sum() == pytest.approx(change, abs=1e-6)
    assert abs(rows["residual"]) < 1e-6  # the book follows its fills
    parts = decompose(data)
    per_cell = sum(v for k, v in parts.components.items() if k != "residual")
    assert np.allclose(per_cell, parts.pnl, atol=1e-6)  # per day and symbol, not just in total


def test_a_window_starts_from_the_book_and_close_before_it():
    # day 0 buys 1000 at 10.00; day 1 closes 10.50; day 2 is a 2-for-1 ex-date (2000 shares), sells 1000 at
    # 5.30 and closes 5.20. The window from day 1 starts from day 0's book, equity and close
    book = Book(close=[[10.0], [10.5], [5.2]], basis=[[10.0], [10.4], [5.3]], prev_close=[10.0], split=[[1], [1], [2]],
                fills=[(0, 0, 1000, 10.0, 5, 0, 0), (2, 0, -1000, 5.3, 2, 0, 0)])
    data = book.build()
    whole = attribute(data).daily
    later = attribute(data, start=data.bars.days[1].date()).summary.set_index("component")["cny"]
    expected = whole[whole["date"] >= data.bars.days[1]]
    assert later["holdings"] == pytest.approx(expected["holdings"].sum())  # 1000×0.50 + 1000×(5.20 − 5.25)
    assert later["holdings"] == pytest.approx(500.0 - 50.0)
    assert later["delay"] == pytest.approx(1000 * (5.3 - 5.25))  # selling 1000 at 5.30 above P̃ = 5.25
    assert later["total (equity change)"] == pytest.approx(data.equity[-1] - data.equity[0])


# ---------------------------------------------------------------- the residual is checked per day


def _held_book() -> AttributionInput:
    # 1000 held at 10.00 over four days closing 10.50, 10.20, 10.80, 11.00: every line explained
    return Book(close=[[10.5], [10.2], [10.8], [11.0]], prev_close=[10.0], start_holdings=[1000]).build()


def test_an_unexplained_equity_jump_is_the_residual_of_its_day():
    data = _held_book()
    clean = attribute(data)
    assert clean.residual_abs < 1e-6 and clean.residual_days == 0 and clean.residual_ok
    equity = data.equity.copy()
    equity[1:] += 20_000  # a phantom 20 000 CNY from day 1 on
    report = attribute(replace(data, equity=equity))
    assert report.daily_residual().round(6).to_dict() == {day: (20_000.0 if t == 1 else 0.0)
                                                          for t, day in enumerate(data.bars.days)}
    assert report.residual_abs == pytest.approx(20_000.0) and report.residual_days == 1
    assert report.gross == pytest.approx(500 + 300 + 600 + 200)  # the symbols' |daily P&L|, not the residual
    assert report.net == pytest.approx(21_000.0)
    assert not report.residual_ok and report.coverage < 0.0


def test_a_glitch_that_reverts_is_not_netted_away():
    data = _held_book()
    equity = data.equity.copy()
    equity[1] += 50_000  # booked one day, reversed the next: the net residual is 0
    report = attribute(replace(data, equity=equity))
    rows = report.summary.set_index("component")["cny"]
    assert rows["residual"] == pytest.approx(0.0, abs=1e-6)
    assert rows["residual, sum of absolute daily residuals"] == pytest.approx(100_000.0)
    assert report.residual_days == 2 and not report.residual_ok


def test_shares_are_undefined_without_gross():
    # nothing held, nothing traded: no gross, so no share; the markdown shows "–" as the CSV leaves it empty
    report = attribute(Book(close=[[10.0], [10.5]], prev_close=[10.0]).build())
    assert report.gross == 0.0 and report.coverage == 1.0
    assert report.summary["share_of_gross"].isna().all()
    table = [line for line in report.markdown().splitlines() if line.startswith("| actual | holdings |")]
    assert table == ["| actual | holdings | 0.00 | – |"]


def test_brinson_starts_at_the_first_fill_and_states_the_warm_up():
    # segments A and B, benchmark 50/50; the book is in cash on days 0-1 (A rises 10 % on day 1) and buys
    # 1000 A at 11.00 on day 2, when A rises to 12.00 and B stays at 10.00
    bench = Benchmark("test", ("A", "B"), ("A", "B"), np.full((3, 2), 0.5), np.ones((3, 2), dtype=bool))
    book = Book(close=[[10.0, 10.0], [11.0, 10.0], [12.0, 10.0]], basis=[[10.0, 10.0], [11.0, 10.0], [11.0, 10.0]],
                prev_close=[10.0, 10.0], fills=[(2, 0, 1000, 11.0, 0, 0, 0)], benchmark=bench)
    report = attribute(book.build())
    rows = report.summary.set_index("component")["cny"]
    warm = report.summary[report.summary["group"] == "warm-up (not attributed)"]
    assert warm["cny"].tolist() == pytest.approx([0.5 * 0.10 * 100_000])  # day 1's benchmark, not a drag
    r_b = 0.5 * (12 / 11 - 1)
    assert rows["cash drag (CASH allocation)"] == pytest.approx(-(1 - 0.11) * r_b * 100_000)  # day 2 only
    brinson = report.summary.loc[report.summary["group"] == "brinson", "cny"].sum()
    assert brinson == pytest.approx(rows["holdings"]) and rows["holdings"] == pytest.approx(1000.0)
    assert list(report.table("segment")["segment"]) == ["A", "B", "CASH"]


def test_the_defensive_assets_drag_is_its_own_line():
    # segments A (S0) and OTHER (S1, the defensive bond ETF), benchmark 50/50; the book parks 50 000 in S1
    # and keeps 50 000 cash; S0 +10 %, S1 +1 %: R_b = 0.5·10 % + 0.5·1 % = 5.5 %
    bench = Benchmark("test", ("A", "OTHER"), ("A", "OTHER"), np.array([[0.5, 0.5]]), np.array([[True, True]]),
                      defensive=("S1",))
    book = Book(close=[[11.0, 10.1]], prev_close=[10.0, 10.0], start_holdings=[0, 5000], benchmark=bench)
    rows = attribute(book.build()).summary.set_index("component")["cny"]
    drag = [c for c in rows.index if c.startswith("defensive-asset drag (S1")]
    assert rows[drag].tolist() == pytest.approx([5000 * 0.1 - 50_000 * 0.055])  # w·(r_def − R_b)·equity
    assert rows["cash drag (CASH allocation)"] == pytest.approx(-0.5 * 0.055 * 100_000)
