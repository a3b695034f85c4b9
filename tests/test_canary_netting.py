"""Netting champion and candidate into one order per symbol, and booking the session back to their books.

Every scenario keeps a broker account by hand (shares and cash, as a broker would report them) and checks the
books' sum against it to the cent. Numbers are hand-computed in the comments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnpy_rotation.canary.books import EPS, Lot, VersionBook
from vnpy_rotation.canary.netting import (
    Difference,
    Netted,
    RealFill,
    Transfer,
    allocate,
    net,
    paper_fill,
    reconcile,
    rescale,
    split,
)

OLD, DAY, NEXT = "2024-01-02", "2024-01-03", "2024-01-04"
LOTS = {"A": 100.0, "B": 100.0, "C": 100.0}


@dataclass
class Broker:
    """The real account, kept by hand: it only sees real fills."""

    cash: float
    holdings: dict[str, float] = field(default_factory=dict)

    def fill(self, fill: RealFill) -> None:
        sign = 1.0 if fill.buy else -1.0
        self.holdings[fill.symbol] = self.holdings.get(fill.symbol, 0.0) + sign * fill.volume
        self.cash -= sign * fill.value + fill.commission + fill.stamp_duty + fill.transfer_fee


def two_books(champion_a: float = 1000.0, candidate_a: float = 0.0, champion_cash: float = 10000.0,
              candidate_cash: float = 5000.0) -> tuple[dict[str, VersionBook], Broker]:
    books = {"champion": VersionBook("champion", champion_cash), "candidate": VersionBook("candidate", candidate_cash)}
    if champion_a:
        books["champion"].add("A", Lot(champion_a, OLD, 10.0))
    if candidate_a:
        books["candidate"].add("A", Lot(candidate_a, OLD, 10.0))
    return books, Broker(champion_cash + candidate_cash, {"A": champion_a + candidate_a})


def session(books: dict[str, VersionBook], broker: Broker, deltas: dict[str, dict[str, float]],
            fills: list[RealFill], prices: dict[str, float]):  # type: ignore[no-untyped-def]
    plan = net(deltas)
    for fill in fills:
        broker.fill(fill)
    allocation = allocate(books, plan, fills, prices, DAY, LOTS)
    assert reconcile(books, broker.holdings, broker.cash, 0.005) == []  # to the cent
    return plan, allocation


# --------------------------------------------------------------------------- net

@pytest.mark.parametrize("deltas, lots, real, transfers", [
    # champion sells 300, candidate buys 200: 200 move between the books, the real order sells 100
    ({"champion": {"A": -300}, "candidate": {"A": 200}}, None, -100, [("champion", "candidate", 200)]),
    # candidate sells 100, champion buys 500: 100 move, the real order buys 400
    ({"champion": {"A": 500}, "candidate": {"A": -100}}, None, 400, [("candidate", "champion", 100)]),
    # both buy: nothing offsets, one buy of 500
    ({"champion": {"A": 300}, "candidate": {"A": 200}}, None, 500, []),
    # exactly offsetting: no real order at all
    ({"champion": {"A": -200}, "candidate": {"A": 200}}, None, 0, [("champion", "candidate", 200)]),
    # three versions, two sellers 300 + 100 against a buyer of 200: offset 200 shared 3:1 in whole shares
    ({"v1": {"A": -300}, "v2": {"A": -100}, "v3": {"A": 200}}, None, -200, [("v1", "v3", 150), ("v2", "v3", 50)]),
    # the same in whole lots: v2's 50 rounds down to 0 lots, v1 (the largest) takes the remainder, 200
    ({"v1": {"A": -300}, "v2": {"A": -100}, "v3": {"A": 200}}, {"A": 100}, -200, [("v1", "v3", 200)]),
    # one seller against two buyers 300 + 100 of a 200 sale: each buyer takes its pro-rata share
    ({"v1": {"A": 300}, "v2": {"A": 100}, "v3": {"A": -200}}, None, 200, [("v3", "v1", 150), ("v3", "v2", 50)]),
])
def test_net_offsets_versions_and_leaves_one_real_order(deltas, lots, real, transfers) -> None:  # type: ignore[no-untyped-def]
    plan = net(deltas, lots)["A"]
    assert plan.real == real
    assert [(t.source, t.target, t.shares) for t in plan.transfers] == transfers
    residual = plan.residual()
    assert sum(residual.values()) == real  # the real order is exactly the versions' residual parts
    for version, part in plan.parts.items():  # a residual never turns a version's side around
        assert residual[version] * part >= 0 and abs(residual[version]) <= abs(part)


def test_net_keeps_symbols_apart_and_drops_zero_deltas() -> None:
    plan = net({"champion": {"A": -300, "B": 0}, "candidate": {"B": 100}})
    assert set(plan) == {"A", "B"}
    assert plan["A"] == Netted("A", -300, {"champion": -300}, ())
    assert plan["B"] == Netted("B", 100, {"candidate": 100}, ())


@pytest.mark.parametrize("total, weights, unit, caps, expected", [
    (300, [300, 200], 100, None, [200, 100]),  # 180 / 120: the smaller rounds down to 100, the larger takes 200
    (500, [300, 200], 100, None, [300, 200]),
    (450, [300, 200], 100, None, [300, 150]),  # 270 / 180: 100 + 350 would exceed 300, so 50 goes to the other
    (100, [850, 150], 100, None, [100, 0]),
    (100, [50, 50], 100, None, [50, 50]),  # the caps (the parts) hold: neither may take more than its 50
    (100, [50, 50], 100, [math.inf, math.inf], [100, 0]),  # uncapped ties: the first is the largest
    (7, [1, 1, 1], 0, [math.inf] * 3, [7 / 3, 7 / 3, 7 - 14 / 3]),  # unit 0: exact
])
def test_split_rounds_all_but_the_largest_down_to_whole_units(total, weights, unit, caps, expected) -> None:  # type: ignore[no-untyped-def]
    assert split(total, weights, unit, caps) == pytest.approx(expected, abs=1e-12)


# --------------------------------------------------------------------------- allocate: scenarios

def test_champion_sells_300_candidate_buys_200() -> None:
    """Real sell of 100 at 10.50; 200 move to the candidate at the fill price 10.50 (2100 CNY) with no fee; the
    sale's fees (5 + 0.525 + 0.0105) are the champion's alone."""
    books, broker = two_books()
    fill = RealFill("A", False, 100, 1050.0, 5.0, 0.525, 0.0105, 1.0)
    plan, allocation = session(books, broker, {"champion": {"A": -300}, "candidate": {"A": 200}}, [fill],
                               {"A": 10.40})
    assert plan["A"].real == -100
    champion, candidate = books["champion"], books["candidate"]
    assert champion.shares("A") == 700 and candidate.shares("A") == 200
    assert champion.cash == pytest.approx(10000 + 1050 - 5.5355 + 2100, abs=1e-9)  # 13144.4645
    assert candidate.cash == pytest.approx(5000 - 2100, abs=1e-9)
    assert champion.fees == {"commission": 5.0, "stamp_duty": 0.525, "transfer_fee": 0.0105, "slippage": 1.0}
    assert candidate.fees == dict.fromkeys(champion.fees, 0.0)
    assert candidate.lots["A"] == [Lot(200, OLD, 10.5)]  # the real purchase date, the transfer price
    assert allocation.shares("candidate", "A") == 200 and allocation.cash("candidate") == pytest.approx(-2100)
    assert [m.kind for m in allocation.for_version("champion")] == ["sell", "transfer_out"]


def test_transfer_price_is_the_value_weighted_price_of_the_days_fills() -> None:
    """Two fills, 60 at 10.00 and 40 at 10.50: the transfer price is 1020 / 100 = 10.20, not the open."""
    books, broker = two_books()
    fills = [RealFill("A", False, 60, 600.0, 3.0), RealFill("A", False, 40, 420.0, 2.0)]
    session(books, broker, {"champion": {"A": -300}, "candidate": {"A": 200}}, fills, {"A": 9.0})
    assert books["candidate"].cash == pytest.approx(5000 - 200 * 10.20, abs=1e-9)
    assert books["champion"].cash == pytest.approx(10000 + 1020 - 5 + 2040, abs=1e-9)


def test_both_buy_one_order_fees_split_3_to_2() -> None:
    """300 + 200 -> one buy of 500 at 10.00 (5000 CNY, commission 5, transfer fee 0.05, slippage 2.5):
    the champion pays 3000 + 3 + 0.03, the candidate 2000 + 2 + 0.02."""
    books, broker = two_books(champion_a=0, candidate_a=0)
    fill = RealFill("A", True, 500, 5000.0, 5.0, 0.0, 0.05, 2.5)
    plan, _ = session(books, broker, {"champion": {"A": 300}, "candidate": {"A": 200}}, [fill], {"A": 10.0})
    assert plan["A"].real == 500 and plan["A"].transfers == ()
    champion, candidate = books["champion"], books["candidate"]
    assert (champion.shares("A"), candidate.shares("A")) == (300, 200)
    assert champion.cash == pytest.approx(10000 - 3003.03, abs=1e-9)
    assert candidate.cash == pytest.approx(5000 - 2002.02, abs=1e-9)
    assert champion.fees["commission"] == pytest.approx(3.0) and candidate.fees["commission"] == pytest.approx(2.0)
    assert champion.fees["slippage"] == pytest.approx(1.5) and candidate.fees["slippage"] == pytest.approx(1.0)
    assert candidate.lots["A"] == [Lot(200, DAY, 10.0)]
    assert candidate.sellable("A", DAY) == 0 and candidate.sellable("A", NEXT) == 200  # bought today: T+1


def test_partial_fill_300_of_500_splits_200_100_in_lots() -> None:
    """Pro rata 180 / 120; the candidate's 120 rounds down to one lot (100), the champion (larger part) takes 200.
    Value 3000 and commission 6 split 2:1 by the shares each got: 2000 + 4 and 1000 + 2."""
    books, broker = two_books(champion_a=0, candidate_a=0)
    fill = RealFill("A", True, 300, 3000.0, 6.0)
    session(books, broker, {"champion": {"A": 300}, "candidate": {"A": 200}}, [fill], {"A": 10.0})
    champion, candidate = books["champion"], books["candidate"]
    assert (champion.shares("A"), candidate.shares("A")) == (200, 100)
    assert champion.cash == pytest.approx(10000 - 2004, abs=1e-9)
    assert candidate.cash == pytest.approx(5000 - 1002, abs=1e-9)


def test_limit_down_refused_sale_with_an_offsetting_buy_transfers_at_the_open() -> None:
    """The real sell of 100 does not fill (limit-down); the 200 still move, at the open 9.00: 1800 CNY."""
    books, broker = two_books()
    _, allocation = session(books, broker, {"champion": {"A": -300}, "candidate": {"A": 200}}, [], {"A": 9.0})
    assert books["champion"].shares("A") == 800 and books["candidate"].shares("A") == 200
    assert books["champion"].cash == 11800.0 and books["candidate"].cash == 3200.0
    assert books["champion"].fees["commission"] == 0.0 and allocation.skipped == ()


@pytest.mark.parametrize("prices", [{}, {"A": math.nan}, {"A": 0.0}])
def test_suspended_no_price_no_transfer(prices) -> None:  # type: ignore[no-untyped-def]
    books, broker = two_books()
    before = {version: book.to_json() for version, book in books.items()}
    _, allocation = session(books, broker, {"champion": {"A": -300}, "candidate": {"A": 200}}, [], prices)
    assert allocation.skipped == ("A",) and allocation.moves == ()
    assert {version: book.to_json() for version, book in books.items()} == before


def test_risk_sale_split_by_holdings() -> None:
    """The risk engine sells 500 at 9.00 (4500 CNY, commission 5, stamp duty 2.25, transfer fee 0.045) of holdings
    800 / 200: 400 / 100, cash 3600 - 5.836 and 900 - 1.459."""
    books, broker = two_books(champion_a=800, candidate_a=200)
    fill = RealFill("A", False, 500, 4500.0, 5.0, 2.25, 0.045, 0.0, risk=True)
    _, allocation = session(books, broker, {}, [fill], {"A": 9.2})
    assert books["champion"].shares("A") == 400 and books["candidate"].shares("A") == 100
    assert books["champion"].cash == pytest.approx(10000 + 3600 - 5.836, abs=1e-9)
    assert books["candidate"].cash == pytest.approx(5000 + 900 - 1.459, abs=1e-9)
    assert {m.kind for m in allocation.moves} == {"risk_sell"}


def test_risk_sale_of_one_lot_goes_whole_to_the_larger_holder() -> None:
    """Holdings 850 / 150, a risk sale of 100: pro rata 85 / 15; the candidate's 15 rounds down to 0 lots."""
    books, broker = two_books(champion_a=850, candidate_a=150)
    session(books, broker, {}, [RealFill("A", False, 100, 900.0, 5.0, risk=True)], {"A": 9.0})
    assert books["champion"].shares("A") == 750 and books["candidate"].shares("A") == 150


def test_risk_sale_beside_a_plan_sale_of_the_same_symbol() -> None:
    """The plan sells the champion's 300 and the risk engine sells 400 more, split by the holdings left after the
    plan (700 / 300 -> 280 / 120, in lots 300 / 100)."""
    books, broker = two_books(champion_a=1000, candidate_a=300)
    fills = [RealFill("A", False, 300, 3000.0, 5.0), RealFill("A", False, 400, 4000.0, 5.0, risk=True)]
    session(books, broker, {"champion": {"A": -300}}, fills, {"A": 10.0})
    assert books["champion"].shares("A") == 400 and books["candidate"].shares("A") == 200


def test_risk_sale_never_sells_a_versions_locked_shares() -> None:
    """Holdings 800 (old) / 200 (moved in today, bought today): pro rata 400 / 100, but the candidate has nothing
    sellable today, so the champion's books carry the whole 500."""
    books, broker = two_books(champion_a=800)
    books["candidate"].add("A", Lot(200, DAY, 10.0))
    broker.holdings["A"] = 1000
    session(books, broker, {}, [RealFill("A", False, 500, 4500.0, 5.0, risk=True)], {"A": 9.0})
    assert books["champion"].shares("A") == 300 and books["candidate"].shares("A") == 200


def test_t1_shares_bought_today_and_moved_stay_locked_for_the_new_holder() -> None:
    """The champion buys 500 today; a mid-session risk cut moves part of its book to the candidate the same day:
    the candidate cannot sell those shares today, and can the next day. Lots it got from old purchases it can."""
    books = {"champion": VersionBook("champion", 10000.0), "candidate": VersionBook("candidate", 0.0)}
    allocate(books, net({"champion": {"A": 500}}), [RealFill("A", True, 500, 5000.0)], {"A": 10.0}, DAY, LOTS)
    rescale(books, {"champion": 0.5, "candidate": 0.5}, {"A": 10.0}, DAY, LOTS)
    candidate = books["candidate"]
    assert candidate.shares("A") == 200  # 10000 / 2 = 5000 to give: 0.5 of 500 is 250 -> 200 in lots + 3000 cash
    assert candidate.cash == 3000.0
    assert candidate.sellable("A", DAY) == 0 and candidate.sellable("A", NEXT) == 200
    old = two_books()[0]
    allocate(old, net({"champion": {"A": -200}, "candidate": {"A": 200}}), [], {"A": 10.0}, DAY, LOTS)
    assert old["candidate"].sellable("A", DAY) == 200  # bought on OLD by the champion: sellable today


def test_real_sale_takes_sellable_lots_and_transfers_the_rest() -> None:
    """The champion holds 300 old and 200 bought today (a T+0 fund need not apply): it sells 300 for real and
    hands 200 over; the sale takes the old lots, the transfer the young ones, so the candidate gets today's date."""
    books, broker = two_books(champion_a=300)
    books["champion"].add("A", Lot(200, DAY, 10.0))
    broker.holdings["A"] = 500
    session(books, broker, {"champion": {"A": -500}, "candidate": {"A": 200}},
            [RealFill("A", False, 300, 3000.0, 5.0)], {"A": 10.0})
    assert books["candidate"].lots["A"] == [Lot(200, DAY, 10.0)]
    assert books["champion"].shares("A") == 0


@pytest.mark.parametrize("fills, message", [
    ([RealFill("B", True, 100, 1000.0)], "B: real fills but no real order"),
    ([RealFill("A", True, 100, 1000.0)], "A: a plan fill on the side opposite"),
    ([RealFill("A", False, 200, 2000.0)], "cannot split 200 shares"),
    ([RealFill("A", True, 100, 1000.0, risk=True)], "a risk fill is a sale"),
])
def test_fills_the_plan_cannot_explain_are_refused(fills, message) -> None:  # type: ignore[no-untyped-def]
    books, _ = two_books()
    with pytest.raises(ValueError, match=message):
        allocate(books, net({"champion": {"A": -300}, "candidate": {"A": 200}}), fills, {"A": 10.0}, DAY, LOTS)


def test_a_refused_session_leaves_every_book_as_it_was() -> None:
    """A's sale books fine, then B's fill is on the wrong side: nothing of A stays booked either."""
    books, _ = two_books()
    books["candidate"].add("B", Lot(100, OLD, 5.0))
    before = {version: book.to_json() for version, book in books.items()}
    plan = net({"champion": {"A": -300}, "candidate": {"A": 200, "B": -100}})
    with pytest.raises(ValueError, match="B: a plan fill on the side opposite"):
        allocate(books, plan, [RealFill("A", False, 100, 1000.0, 5.0), RealFill("B", True, 100, 500.0)],
                 {"A": 10.0, "B": 5.0}, DAY, LOTS)
    assert {version: book.to_json() for version, book in books.items()} == before


# --------------------------------------------------------------------------- rescale, reconcile, paper

def test_rescale_5_to_20_percent() -> None:
    """Champion: 15000 cash + 8000 A at 10 = 95000; candidate 1000 + 400 A = 5000; total 100000.
    The candidate's 20 % is 20000: the champion gives 15000 = 15000/95000 of its book: of 8000 A that is 1263.2,
    1200 in whole lots (12000 CNY, its oldest lot), and 3000 in cash."""
    champion = VersionBook("champion", 15000.0, {"A": [Lot(5000, OLD, 9.0), Lot(3000, DAY, 9.5)]})
    candidate = VersionBook("candidate", 1000.0, {"A": [Lot(400, OLD, 9.0)]})
    books = {"champion": champion, "candidate": candidate}
    champion.mark(DAY, {"A": 10.0})
    candidate.mark(DAY, {"A": 10.0})
    allocation = rescale(books, {"champion": 0.8, "candidate": 0.2}, {"A": 10.0}, NEXT, LOTS)
    assert (champion.shares("A"), champion.cash) == (6800, 12000.0)
    assert (candidate.shares("A"), candidate.cash) == (1600, 4000.0)
    assert candidate.lots["A"] == [Lot(400, OLD, 9.0), Lot(1200, OLD, 10.0)]
    assert champion.equity_at({"A": 10.0}) == 80000.0 and candidate.equity_at({"A": 10.0}) == 20000.0
    assert champion.flows == [(NEXT, -15000.0)] and candidate.flows == [(NEXT, 15000.0)]
    assert allocation.cash("candidate") == 3000.0 and allocation.shares("candidate", "A") == 1200
    assert reconcile(books, {"A": 8400}, 16000.0) == []  # a re-scale never touches the broker
    # A closes at 11 on NEXT: candidate 4000 + 1600 * 11 = 21600 on 5000 + 15000 moved in: +8 %, not +332 %;
    # champion 12000 + 6800 * 11 = 86800 on 95000 - 15000: +8.5 %
    champion.mark(NEXT, {"A": 11.0})
    candidate.mark(NEXT, {"A": 11.0})
    assert candidate.daily_returns().tolist() == pytest.approx([0.08], abs=1e-12)
    assert champion.daily_returns().tolist() == pytest.approx([0.085], abs=1e-12)


def test_rescale_falls_back_to_whole_shares_when_cash_is_short() -> None:
    """A fully invested champion (no cash) gives 0.05 of 1000 A = 50 shares: whole lots (0) would need 500 CNY
    in cash it does not have, so the slice is 50 whole shares."""
    champion = VersionBook("champion", 0.0, {"A": [Lot(1000, OLD, 10.0)]})
    candidate = VersionBook("candidate", 0.0)
    rescale({"champion": champion, "candidate": candidate}, {"champion": 0.95, "candidate": 0.05}, {"A": 10.0},
            NEXT, LOTS)
    assert candidate.shares("A") == 50 and candidate.cash == 0.0 and champion.shares("A") == 950


def test_rollback_moves_the_whole_candidate_book_back() -> None:
    champion = VersionBook("champion", 1000.0, {"A": [Lot(800, OLD, 10.0)]})
    candidate = VersionBook("candidate", 123.45, {"A": [Lot(150, OLD, 10.0)], "B": [Lot(100, DAY, 5.0)]})
    books = {"champion": champion, "candidate": candidate}
    rescale(books, {"champion": 1.0, "candidate": 0.0}, {"A": 11.0, "B": 5.5}, NEXT, LOTS)
    assert candidate.holdings() == {} and candidate.cash == pytest.approx(0.0, abs=1e-9)
    assert champion.holdings() == {"A": 950, "B": 100} and champion.cash == pytest.approx(1123.45, abs=1e-9)
    assert champion.sellable("B", DAY) == 0  # the candidate's purchase date came along


def test_rescale_refuses_shares_that_do_not_fit_the_books() -> None:
    books, _ = two_books()
    with pytest.raises(ValueError, match="sum to 1"):
        rescale(books, {"champion": 0.8, "candidate": 0.3}, {"A": 10.0}, NEXT, LOTS)
    with pytest.raises(ValueError, match="real books are"):
        rescale(books, {"champion": 1.0}, {"A": 10.0}, NEXT, LOTS)
    books["candidate"].mark(NEXT, {"A": 10.0})
    with pytest.raises(ValueError, match="marked on 2024-01-04"):  # after NEXT's close: it belongs to the next day
        rescale(books, {"champion": 0.5, "candidate": 0.5}, {"A": 10.0}, NEXT, LOTS)
    assert books["champion"].cash == 10000.0 and books["champion"].flows == []


def test_reconcile_reports_each_difference_and_leaves_paper_books_out() -> None:
    books, _ = two_books(champion_a=1000, candidate_a=200)
    books["shadow"] = VersionBook("shadow", 1e6, {"A": [Lot(5000, OLD, 10.0)]}, paper=True)
    assert reconcile(books, {"A": 1200}, 15000.0) == []
    assert reconcile(books, {"A": 1100, "B": 100}, 15000.02) == [
        Difference("A", 1200, 1100), Difference("B", 0.0, 100), Difference("cash", 15000.0, 15000.02)]
    assert reconcile(books, {"A": 1200}, 15000.02, tolerance=0.05) == []


def test_paper_fill_books_like_a_fill_without_an_order() -> None:
    shadow = VersionBook("candidate", 10000.0)
    move = paper_fill(shadow, "A", True, 300, 10.0, 5.0, 0.0, 0.03, 1.0, DAY)
    assert shadow.paper and shadow.shares("A") == 300 and shadow.cash == pytest.approx(10000 - 3005.03)
    assert move.shares == 300 and move.cash == pytest.approx(-3005.03)
    with pytest.raises(ValueError, match="0 sellable"):
        paper_fill(shadow, "A", False, 100, 10.0, 5.0, 0.5, 0.01, 0.0, DAY)  # T+1
    paper_fill(shadow, "A", False, 100, 11.0, 5.0, 0.55, 0.011, 0.0, NEXT)
    assert shadow.shares("A") == 200 and shadow.cash == pytest.approx(10000 - 3005.03 + 1100 - 5.561)
    with pytest.raises(ValueError, match="has no real book"):  # a paper book is never part of a real plan
        allocate({"champion": VersionBook("champion", 0.0), "candidate": shadow},
                 net({"candidate": {"A": 100}}), [], {"A": 10.0}, NEXT, LOTS)


# --------------------------------------------------------------------------- property

@st.composite
def sessions(draw):  # type: ignore[no-untyped-def]
    versions = ["champion", "candidate", "third"][: draw(st.integers(2, 3))]
    symbols = ["A", "B", "C"]
    books, broker = {}, Broker(0.0)
    deltas: dict[str, dict[str, float]] = {}
    for version in versions:
        book = VersionBook(version, float(draw(st.integers(0, 200_000))))
        broker.cash += book.cash
        deltas[version] = {}
        for symbol in symbols:
            old = 100 * draw(st.integers(0, 20))
            young = 100 * draw(st.integers(0, 5))
            book.add(symbol, Lot(old, OLD, 10.0))
            book.add(symbol, Lot(young, DAY, 10.0))  # bought today earlier (a T+0 fund): may be handed over
            broker.holdings[symbol] = broker.holdings.get(symbol, 0.0) + old + young
            deltas[version][symbol] = float(draw(st.integers(-(old + young) // 100, 20)) * 100)
        books[version] = book
    plan = net(deltas, LOTS)
    prices = {symbol: draw(st.sampled_from([math.nan, 9.0, 10.0, 11.37])) for symbol in symbols}
    fills = []
    for symbol, netted in plan.items():
        if netted.real == 0 or math.isnan(prices[symbol]):
            continue
        volume = abs(netted.real)
        filled = draw(st.integers(0, int(volume)))  # any partial fill, odd lots included
        pieces = draw(st.integers(1, 3))
        for piece in range(pieces):
            part = filled // pieces + (filled % pieces if piece == 0 else 0)
            if part:
                price = prices[symbol] * draw(st.sampled_from([0.98, 1.0, 1.013]))
                value = round(part * price, 2)
                fills.append(RealFill(symbol, netted.real > 0, part, value, max(5.0, round(value * 2.5e-4, 2)),
                                      0.0 if netted.real > 0 else round(value * 5e-4, 2), round(value * 1e-5, 2),
                                      abs(price - prices[symbol]) * part))
    if draw(st.booleans()):
        symbol = draw(st.sampled_from(symbols))
        held_after = sum(b.sellable(symbol, DAY) for b in books.values()) - sum(
            f.volume for f in fills if f.symbol == symbol and not f.buy) - sum(
            max(-d[symbol], 0.0) for d in deltas.values())  # what surely stays sellable after the plan
        volume = draw(st.integers(0, max(int(held_after), 0)))
        if volume:
            fills.append(RealFill(symbol, False, volume, volume * 9.0, 5.0, 0.0, 0.0, 0.0, risk=True))
    return books, broker, plan, fills, prices


@settings(max_examples=150)
@given(sessions())
def test_property_books_always_reconcile_and_never_go_negative(case) -> None:  # type: ignore[no-untyped-def]
    books, broker, plan, fills, prices = case
    before = {version: {symbol: book.shares(symbol) for symbol in "ABC"} for version, book in books.items()}
    for fill in fills:
        broker.fill(fill)
    allocate(books, plan, fills, prices, DAY, LOTS)
    assert reconcile(books, broker.holdings, broker.cash, 0.005) == []
    for version, book in books.items():
        for lots in book.lots.values():
            assert all(lot.shares > 0 for lot in lots)
        for symbol in "ABC":
            delta = plan[symbol].parts.get(version, 0.0) if symbol in plan else 0.0
            change = book.shares(symbol) - before[version][symbol]
            if delta >= 0 and not any(f.risk and f.symbol == symbol for f in fills):
                assert -EPS <= change <= delta + EPS  # a version never gets more than it asked, nor the wrong way
    total = sum(book.equity_at({s: 10.0 for s in "ABC"}) for book in books.values())
    rescale(books, {version: 1 / len(books) for version in books}, {s: 10.0 for s in "ABC"}, DAY, LOTS)
    assert reconcile(books, broker.holdings, broker.cash, 0.005) == []
    for book in books.values():
        assert book.equity_at({s: 10.0 for s in "ABC"}) == pytest.approx(total / len(books), abs=1e-6)
        assert all(lot.shares > 0 for lots in book.lots.values() for lot in lots)


def test_transfer_dataclass_is_what_net_returns() -> None:
    assert net({"a": {"A": -1}, "b": {"A": 1}})["A"].transfers == (Transfer("a", "b", 1.0),)
