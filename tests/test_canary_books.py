"""A version's book: dated lots (T+1 follows the real purchase date), valuation, marks, returns net of re-scales,
and an exact JSON round trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vnpy_rotation.canary.books import Lot, VersionBook, transfer

D1, D2, D3 = "2024-01-02", "2024-01-03", "2024-01-04"


def book(version: str = "champion", cash: float = 1000.0, **lots: list[Lot]) -> VersionBook:
    return VersionBook(version, cash, {symbol: list(items) for symbol, items in lots.items()})


def test_sellable_counts_only_lots_bought_before_the_day() -> None:
    b = book(A=[Lot(300, D1, 10.0), Lot(200, D2, 11.0)])
    assert b.shares("A") == 500
    assert b.sellable("A", D1) == 0  # nothing was bought before the first day
    assert b.sellable("A", D2) == 300  # the lot bought on D2 is locked on D2
    assert b.sellable("A", D3) == 500
    assert b.sellable("A", D2, t0=True) == 500  # a T+0 fund sells what it bought today
    assert b.sellable("B", D3) == 0


def test_take_removes_oldest_lots_first_and_splits_one() -> None:
    b = book(A=[Lot(300, D1, 10.0), Lot(200, D2, 11.0)])
    taken = b.take("A", 400)
    assert taken == [Lot(300, D1, 10.0), Lot(100, D2, 11.0)]
    assert b.lots["A"] == [Lot(100, D2, 11.0)]
    assert b.take("A", 100) == [Lot(100, D2, 11.0)]
    assert "A" not in b.lots and b.holdings() == {}


def test_take_under_t1_skips_todays_lots_and_refuses_more_than_sellable() -> None:
    b = book(A=[Lot(200, D2, 11.0), Lot(300, D1, 10.0)])  # out of order on purpose: add sorts, take must not care
    assert b.take("A", 300, before=D2) == [Lot(300, D1, 10.0)]
    with pytest.raises(ValueError, match="cannot take 100 A, 0 sellable"):
        b.take("A", 100, before=D2)
    with pytest.raises(ValueError, match="cannot take 300 A, 200 held"):
        b.take("A", 300)
    assert b.shares("A") == 200  # a refused take changes nothing


def test_add_merges_same_day_same_price_and_keeps_dates_sorted() -> None:
    b = book()
    b.add("A", Lot(100, D2, 10.0))
    b.add("A", Lot(100, D2, 10.0))
    b.add("A", Lot(50, D1, 9.0))
    b.add("A", Lot(0, D3, 9.0))  # nothing to add
    assert b.lots["A"] == [Lot(50, D1, 9.0), Lot(200, D2, 10.0)]


def test_transfer_moves_oldest_lots_with_their_purchase_date_and_the_cash() -> None:
    """T+1: shares the champion bought today and moved to the candidate are not the candidate's to sell today."""
    champion = book("champion", 0.0, A=[Lot(100, D1, 10.0), Lot(300, D2, 11.0)])
    candidate = book("candidate", 5000.0)
    moved = transfer(champion, candidate, "A", 300, 12.0)
    assert moved == [Lot(100, D1, 10.0), Lot(200, D2, 11.0)]
    assert candidate.lots["A"] == [Lot(100, D1, 12.0), Lot(200, D2, 12.0)]  # the real dates, this book's price
    assert candidate.sellable("A", D2) == 100  # the lot bought on D2 stays locked on D2 after the transfer
    assert candidate.sellable("A", D3) == 300
    assert champion.cash == 3600.0 and candidate.cash == 1400.0
    assert champion.lots["A"] == [Lot(100, D2, 11.0)]


def test_value_equity_and_a_missing_price() -> None:
    b = book(cash=500.0, A=[Lot(100, D1, 10.0)], B=[Lot(200, D1, 5.0)])
    prices = {"A": 12.0, "B": 4.5}
    assert b.value(prices) == 2100.0
    assert b.equity_at(prices) == 2600.0
    with pytest.raises(ValueError, match="no price for B"):
        b.value({"A": 12.0, "B": math.nan})


def test_charge_pays_fees_from_cash_but_only_records_slippage() -> None:
    b = book(cash=1000.0)
    b.charge(5.0, 0.5, 0.01, 2.0)
    assert b.cash == pytest.approx(994.49, abs=1e-12)
    assert b.fees == {"commission": 5.0, "stamp_duty": 0.5, "transfer_fee": 0.01, "slippage": 2.0}


def test_mark_is_idempotent_per_day_and_refuses_an_earlier_day() -> None:
    b = book(cash=1000.0, A=[Lot(100, D1, 10.0)])
    assert b.mark(D1, {"A": 10.0}) == 2000.0
    assert b.mark(D1, {"A": 99.0}) == 2000.0  # marked already: the stored equity stands
    assert b.mark(D2, {"A": 11.0}) == 2100.0
    assert b.equity == [(D1, 2000.0), (D2, 2100.0)]
    with pytest.raises(ValueError, match="after 2024-01-03"):
        b.mark("2023-12-29", {"A": 11.0})


def test_daily_returns_exclude_capital_moved_by_a_rescale() -> None:
    """Equity 1000 -> 1100 (+10 %), then 500 moved in at the start of D3 and the book closes at 1760:
    1760 / (1100 + 500) - 1 = +10 %, not +60 %."""
    b = book(cash=0.0)
    b.equity = [(D1, 1000.0), (D2, 1100.0), (D3, 1760.0), ("2024-01-05", 1760.0)]
    b.flows = [(D3, 500.0)]
    np.testing.assert_allclose(b.daily_returns(), [0.10, 0.10, 0.0], atol=1e-15)
    empty = book(cash=0.0)
    empty.equity = [(D1, 0.0), (D2, 0.0), (D3, 1000.0)]
    empty.flows = [(D3, 1000.0)]  # a new candidate: nothing until the slice moves in, then flat
    np.testing.assert_allclose(empty.daily_returns(), [0.0, 0.0], atol=1e-15)
    assert book().daily_returns().shape == (0,)


def test_json_round_trip_is_exact_and_nan_safe() -> None:
    b = VersionBook("candidate", 0.1 + 0.2, {"510300.SSE": [Lot(100, D1, 3.141592653589793)],
                                           "159915.SZSE": [Lot(1 / 3, D2, math.nan)]},
                    {"commission": 5.0, "stamp_duty": math.inf, "transfer_fee": -0.0, "slippage": 1e-300},
                    paper=True, equity=[(D1, 1234.5678901234567), (D2, math.nan)], flows=[(D2, -98.8929)])
    text = b.to_json()
    json.loads(text)  # strict JSON: a bare NaN would not load in other readers
    assert "NaN" not in text
    back = VersionBook.from_json(text)
    assert back.to_json() == text
    assert back.cash == 0.1 + 0.2 and back.lots["159915.SZSE"][0].shares == 1 / 3
    assert math.isnan(back.lots["159915.SZSE"][0].price) and math.isnan(back.equity[1][1])
    assert back.fees["stamp_duty"] == math.inf and math.copysign(1.0, back.fees["transfer_fee"]) == -1.0
    assert back.paper is True and back.flows == [(D2, -98.8929)] and back.equity[0] == (D1, 1234.5678901234567)
