"""The live canary stage on hand-made sessions: two versions' targets netted into one share-count plan at the
open, the session's real fills given back to the version books at the close, the books reconciled with a
hand-kept broker account; a risk cut the netting did not plan is shared by the books pro rata."""

from __future__ import annotations

import math
from datetime import date

import pytest

from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.backtest.matching import fees
from vnpy_rotation.canary import machine
from vnpy_rotation.canary.config import CanaryConfig, Stage
from vnpy_rotation.canary.netting import RealFill, Transfer, reconcile
from vnpy_rotation.live.canary_stage import (
    CANDIDATE,
    CHAMPION,
    CanaryLedger,
    allocate_close,
    entitle,
    mark_close,
    net_open,
    start_ledger,
    within_plan,
)
from vnpy_rotation.live.plan import DayProgress, FillRecord, LegRecord, OrderPlan, OrderRecord
from vnpy_rotation.live.sizing import Quote
from vnpy_rotation.live.terms import terms_on

A, B = "510300.SSE", "510500.SSE"
DAY0, DAY1 = date(2024, 6, 3), date(2024, 6, 4)
CONFIG = BacktestConfig()
STAGES = (Stage(name="half", share=0.5, min_sessions=2), Stage(name="full", share=1.0, min_sessions=2))


def terms_for(symbol: str, day: date):
    return terms_on(symbol, day, CONFIG)


def ledger_with(holdings: dict[str, float], cash: float, prices: dict[str, float]) -> CanaryLedger:
    config = CanaryConfig(stages=STAGES)
    equity = cash + sum(v * prices[s] for s, v in holdings.items())
    return start_ledger("s", "v1", "v2", "EtfRotationStrategy", {}, config, machine.start(STAGES, DAY0),
                        holdings, cash, equity, DAY0)


def plan(weights: dict[str, float]) -> OrderPlan:
    return OrderPlan("s", DAY0.isoformat(), list(weights), list(weights.values()), True)


def fill_all(real: OrderPlan, ledger: CanaryLedger, quotes: dict[str, Quote], extra_sell: dict[str, float] | None = None
             ) -> tuple[DayProgress, dict[str, float], float]:
    """The broker fills every leg of ``real`` at the open (and ``extra_sell`` more, as a risk cut would):
    returns the day's progress, the broker's holdings and cash after it."""
    held = ledger.holdings()
    cash = sum(b.cash for b in ledger.real_books().values())
    progress = DayProgress(DAY1.isoformat(), "closed", cash, dict(held))
    for symbol, target in zip(real.symbols, real.target):
        volume = target - held.get(symbol, 0.0)
        volume -= (extra_sell or {}).get(symbol, 0.0)
        if abs(volume) < 1e-9:
            continue
        buy = volume > 0
        price = quotes[symbol].price
        value = abs(volume) * price
        commission, stamp, transfer = fees(value, not buy, terms_for(symbol, DAY1), CONFIG.rules.round_costs)
        index = len(progress.legs)
        progress.legs.append(LegRecord(symbol, buy, abs(volume), abs(volume), filled=abs(volume), sized=True))
        reference = f"s|{DAY1}|{index}|0"
        progress.orders.append(OrderRecord(reference, symbol, buy, abs(volume), price, price, index, "final"))
        progress.fills.append(FillRecord(f"t{index}", reference, symbol, buy, price, abs(volume), value, commission,
                                         stamp, transfer, 0.0, "", "09:30"))
        held[symbol] = held.get(symbol, 0.0) + volume
        cash += (-value if buy else value) - commission - stamp - transfer
    return progress, {s: v for s, v in held.items() if v}, cash


def test_two_targets_become_one_plan_and_the_books_reconcile_with_the_broker():
    prices = {A: 4.0, B: 6.0}
    quotes = {s: Quote(p, previous_close=p) for s, p in prices.items()}
    ledger = ledger_with({A: 10_000}, 50_000.0, prices)  # equity 90,000: the champion's whole account
    ledger.plans = {CHAMPION: plan({A: 1.0, B: 0.0}), CANDIDATE: plan({A: 0.0, B: 1.0})}
    ledger.standing = dict(ledger.plans)
    real = net_open(ledger, DAY1, quotes, terms_for, CONFIG)
    # the first stage gives the candidate half the account (5,000 A and 25,000 cash moved to its book); the
    # champion then wants everything in A, the candidate everything in B: the candidate's 5,000 A move to the
    # champion without an order and only the rest is traded
    assert ledger.books[CANDIDATE].equity_at(prices) == pytest.approx(45_000.0)
    assert real is not None and not real.weighted
    assert sorted(real.symbols) == [A, B]  # one order per symbol
    a = ledger.netted[A]
    assert a.transfers == (Transfer(CANDIDATE, CHAMPION, 5_000.0),)
    assert a.real > 0 and ledger.netted[B].real > 0
    assert net_open(ledger, DAY1, quotes, terms_for, CONFIG) is real  # a restart gets the same plan back
    progress, broker_holdings, broker_cash = fill_all(real, ledger, quotes)
    allocate_close(ledger, DAY1, progress, terms_for, CONFIG.resubmit)
    assert reconcile(ledger.real_books(), broker_holdings, broker_cash) == []
    assert ledger.books[CANDIDATE].shares(A) == 0 and ledger.books[CHAMPION].shares(B) == 0
    fees_books = sum(b.fees["commission"] for b in ledger.real_books().values())
    assert fees_books == pytest.approx(sum(f.commission for f in progress.fills))
    allocate_close(ledger, DAY1, progress, terms_for, CONFIG.resubmit)  # once per session
    assert reconcile(ledger.real_books(), broker_holdings, broker_cash) == []
    mark_close(ledger, DAY1, prices)
    assert ledger.returns == []  # a real book's first session has no previous close to measure from
    first = ledger.books[CANDIDATE].equity[-1][1]
    mark_close(ledger, date(2024, 6, 5), {A: 4.0, B: 6.6})
    assert ledger.returns[-1][1] == pytest.approx(ledger.books[CANDIDATE].equity[-1][1] / first - 1)
    assert CanaryLedger.from_json(ledger.to_json()).to_json() == ledger.to_json()


def test_a_risk_cut_beyond_the_netted_plan_is_shared_by_holdings():
    prices = {A: 4.0, B: 6.0}
    quotes = {s: Quote(p, previous_close=p) for s, p in prices.items()}
    ledger = ledger_with({A: 10_000}, 0.0, prices)
    ledger.plans = {CHAMPION: plan({A: 1.0}), CANDIDATE: plan({A: 1.0})}
    ledger.standing = dict(ledger.plans)
    assert net_open(ledger, DAY1, quotes, terms_for, CONFIG) is None  # both hold A already: nothing to trade
    # a REDUCING ladder halves the account's target in front of the plan: 5,000 A sold that no version asked for
    held = ledger.holdings()
    progress = DayProgress(DAY1.isoformat(), "closed", 0.0, dict(held))
    value = 5_000 * 4.0
    commission, stamp, transfer = fees(value, True, terms_for(A, DAY1), True)
    progress.legs.append(LegRecord(A, False, 5_000, 5_000, filled=5_000, sized=True, cause=0))
    progress.orders.append(OrderRecord(f"s|{DAY1}|0|0", A, False, 5_000, 4.0, 4.0, 0, "final"))
    progress.fills.append(FillRecord("t0", f"s|{DAY1}|0|0", A, False, 4.0, 5_000, value, commission, stamp,
                                     transfer, 0.0, "", "09:30"))
    allocate_close(ledger, DAY1, progress, terms_for, CONFIG.resubmit)
    assert reconcile(ledger.real_books(), {A: 5_000}, value - commission - stamp - transfer) == []
    assert ledger.books[CHAMPION].shares(A) == ledger.books[CANDIDATE].shares(A) == 2_500  # the same rule


def test_within_plan_splits_a_fill_where_it_crosses_the_plan():
    netted = {A: _netted(A, -300.0)}
    fills = [RealFill(A, False, 500.0, 2_000.0, 5.0, 0.0, 0.0, 0.0, False)]
    plan_part, risk_part = within_plan(fills, netted)
    assert (plan_part.volume, plan_part.risk, risk_part.volume, risk_part.risk) == (300.0, False, 200.0, True)
    assert plan_part.value + risk_part.value == 2_000.0 and plan_part.commission == pytest.approx(3.0)
    with pytest.raises(ValueError):  # a buy nobody planned cannot be given to a version
        within_plan([RealFill(B, True, 100.0, 600.0)], netted)


def _netted(symbol: str, real: float):
    from vnpy_rotation.canary.netting import Netted

    return Netted(symbol, real, {CHAMPION: real}, ())


def test_the_shadow_candidate_is_paper_filled_and_sends_nothing():
    prices = {A: 4.0, B: 6.0}
    quotes = {s: Quote(p, previous_close=p, limit_up=p * 1.1, limit_down=p * 0.9) for s, p in prices.items()}
    stages = (Stage(name="shadow", share=0.0, min_sessions=2), Stage(name="full", share=1.0, min_sessions=2))
    config = CanaryConfig(stages=stages)
    ledger = start_ledger("s", "v1", "v2", "EtfRotationStrategy", {}, config, machine.start(stages, DAY0),
                          {A: 10_000}, 0.0, 40_000.0, DAY0)
    ledger.plans = {CANDIDATE: plan({B: 1.0})}
    assert net_open(ledger, DAY1, quotes, terms_for, CONFIG) is None  # no real order
    paper = ledger.books[CANDIDATE]
    assert paper.paper and paper.shares(B) > 0 and paper.cash < 40_000 - (paper.shares(B) * 6.0) + 1e-6
    assert math.isclose(ledger.books[CHAMPION].shares(A), 10_000)


def test_a_holding_outside_a_versions_target_is_sold():
    """The candidate's pools differ: the champion's book holds B, which its own target does not name (it came
    from the other version): it is sold, not kept forever outside every target."""
    prices = {A: 4.0, B: 6.0}
    quotes = {s: Quote(p, previous_close=p) for s, p in prices.items()}
    ledger = ledger_with({A: 10_000, B: 1_000}, 0.0, prices)
    ledger.share = 0.5  # the books were scaled already: no rescale this session
    ledger.plans = {CHAMPION: plan({A: 1.0})}
    real = net_open(ledger, DAY1, quotes, terms_for, CONFIG)
    assert real is not None and ledger.netted[B].real == -1_000.0
    assert dict(zip(real.symbols, real.target))[B] == 0.0


def test_a_rescale_earns_only_the_open_to_close_return():
    """Capital moved in at the open earns the session from the open: an overnight gap on the old capital is
    the book's own (a candidate that tracks its backtest exactly shows the backtest's close-to-close return)."""
    prices0 = {A: 4.0}
    ledger = ledger_with({A: 10_000}, 0.0, prices0)
    ledger.share = 0.5
    ledger.plans = {}
    ledger.machine = machine.step(ledger.machine, "hold", DAY0, "", STAGES)
    half = ledger.books[CANDIDATE]
    half.lots[A] = [ledger.books[CHAMPION].lots[A][0].__class__(5_000, "", 4.0)]
    ledger.books[CHAMPION].lots[A] = [ledger.books[CHAMPION].lots[A][0].__class__(5_000, "", 4.0)]
    for book in ledger.real_books().values():
        book.mark(DAY0.isoformat(), prices0)
    # promoted to the full stage: at the next open (+1 % gap) the champion's half moves to the candidate,
    # then the day is flat from the open
    ledger.machine = machine.step(ledger.machine, "promote", DAY0, "", STAGES)
    quotes = {A: Quote(4.04, previous_close=4.0)}
    ledger.standing = {CANDIDATE: plan({A: 1.0}), CHAMPION: plan({A: 1.0})}
    net_open(ledger, DAY1, quotes, terms_for, CONFIG, {A: 10_000}, 0.0)
    assert ledger.books[CANDIDATE].shares(A) == 10_000
    allocate_close(ledger, DAY1, None, terms_for, CONFIG.resubmit)
    mark_close(ledger, DAY1, {A: 4.04})
    assert ledger.returns[-1][1] == pytest.approx(0.01)  # the close-to-close return, not diluted to 0.5 %


def test_an_ex_date_splits_by_the_brokers_ratio_and_pays_each_book_its_own_dividend():
    """Bonus shares: each book scaled and rounded down, the remainder to the largest holder, so the books sum
    to the broker's floored total in whole shares. A dividend: each book is paid cash per share × its own
    shares at the record date (not shared by equity), out of the cash the broker added at the open."""
    prices = {A: 4.0, B: 6.0}
    ledger = ledger_with({A: 19_300, B: 52_900}, 0.0, prices)
    ledger.share = 0.5
    ledger.books[CANDIDATE].lots = {A: [ledger.books[CHAMPION].lots[A][0].__class__(13_000, "", 4.0)],
                                    B: [ledger.books[CHAMPION].lots[B][0].__class__(35_400, "", 6.0)]}
    for book in ledger.real_books().values():
        book.mark(DAY0.isoformat(), prices)
    broker = {A: math.floor(32_300 * 1.1453 + 1e-9), B: 88_300}  # 36,993 A after ×1.1453 bonus shares
    dividend = 88_300 * 0.086  # 7,593.80 CNY paid on B at the open
    quotes = {A: Quote(4.0 / 1.1453, previous_close=4.0 / 1.1453), B: Quote(6.0, previous_close=6.0)}
    net_open(ledger, DAY1, quotes, terms_for, CONFIG, broker, dividend)
    champion, candidate = ledger.books[CHAMPION], ledger.books[CANDIDATE]
    assert (champion.shares(A), candidate.shares(A)) == (22_105, 14_888)  # 22,104 + 14,888 + the 1 left over
    assert ledger.suspense == pytest.approx(dividend)  # held until the close says whose it is
    entitle(ledger, {A: 1.1453}, {B: 0.086}, True)
    assert (champion.cash, candidate.cash) == (pytest.approx(4_549.40), pytest.approx(3_044.40))
    assert ledger.suspense == pytest.approx(0.0)
    assert reconcile(ledger.real_books(), broker, dividend) == []


def champion_in_a_candidate_in_b() -> tuple[dict[str, Quote], CanaryLedger]:
    """10,000 A at 4 and 50,000 cash; the champion wants everything in A, the candidate everything in B at 6."""
    prices = {A: 4.0, B: 6.0}
    ledger = ledger_with({A: 10_000}, 50_000.0, prices)
    ledger.plans = {CHAMPION: plan({A: 1.0, B: 0.0}), CANDIDATE: plan({A: 0.0, B: 1.0})}
    ledger.standing = dict(ledger.plans)
    return {s: Quote(p, previous_close=p) for s, p in prices.items()}, ledger


def test_under_an_allocation_each_version_is_capped_by_its_canary_split():
    # the account is worth 90,000 (10,000 A at 4 and 50,000 cash); the strategy's allocation is 60,000, the
    # first stage's share 0.5: champion 30,000, candidate 30,000 (canary_split). After the rescale each book
    # holds 5,000 A (20,000) and 25,000 cash. The champion wants all in A: its room is 30,000 - 20,000 =
    # 10,000, so it buys 2,500 A (not the ~6,200 its 45,000 book would buy). The candidate sells its 5,000 A
    # (never cut) and wants all in B: room 30,000 - 0 buys 5,000 B at 6 (not ~7,400). Netted: 2,500 of the
    # candidate's A move to the champion, 2,500 A are sold and 5,000 B bought.
    quotes, ledger = champion_in_a_candidate_in_b()
    real = net_open(ledger, DAY1, quotes, terms_for, CONFIG, allocation=60_000.0)
    assert real is not None
    assert ledger.netted[A].parts == {CHAMPION: 2_500.0, CANDIDATE: -5_000.0}
    assert ledger.netted[B].parts == {CANDIDATE: 5_000.0}
    assert ledger.netted[A].transfers == (Transfer(CANDIDATE, CHAMPION, 2_500.0),)
    assert dict(zip(real.symbols, real.target)) == {A: 7_500.0, B: 5_000.0}
    progress, broker_holdings, broker_cash = fill_all(real, ledger, quotes)
    allocate_close(ledger, DAY1, progress, terms_for, CONFIG.resubmit)
    assert reconcile(ledger.real_books(), broker_holdings, broker_cash) == []
    assert ledger.books[CHAMPION].holdings() == {A: 7_500.0}
    assert ledger.books[CANDIDATE].holdings() == {B: 5_000.0}


def test_without_an_allocation_the_versions_are_not_capped():
    quotes, ledger = champion_in_a_candidate_in_b()
    net_open(ledger, DAY1, quotes, terms_for, CONFIG)
    assert ledger.netted[A].parts[CHAMPION] > 6_000 and ledger.netted[B].parts[CANDIDATE] > 7_000
