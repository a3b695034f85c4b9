"""One strategy's session: the order plan becomes orders at the open, fills are tracked, unfilled parts are
resubmitted until the deadline, and the day is closed with a summary.

Pure Python over a :class:`~vnpy_rotation.live.ports.BrokerPort`; the vnpy engine feeds it events. The
session's phases are a table (:data:`TRANSITIONS`). Every order is written down with its reference
before the broker is called and the state is saved atomically after every change, so a restart asks
the broker for the references it wrote and never sends an order twice (:meth:`ExecutionCycle.recover`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Callable

import numpy as np

from ..allocation import SizedOrder, cap_to_allocation
from ..backtest import kernel
from ..backtest.config import BacktestConfig
from ..backtest.matching import SymbolTerms, fees
from ..canary.machine import TERMINAL
from ..errors import RotationError
from ..risk.stops import PLAN, risk_reason
from .plan import FINAL, INTENT, SENT, UNSENT, DayProgress, FillRecord, LegRecord, OrderPlan, OrderRecord, StrategyState
from .ports import CANCELLED, FILLED, REJECTED, SUBMITTING, BrokerOrder, BrokerPort, BrokerTrade
from .risk_stage import RiskBook
from .sizing import RETRYABLE, Leg, Quote, buy_cost, desired_shares, legs, limit_price, size_order, sizing_config

IDLE, RISK_SELLING, SELLING, BUYING, WORKING, CLOSING, CLOSED = (
    "idle", "risk_selling", "selling", "buying", "working", "closing", "closed")
# (phase, event) -> next phase. "settled": no order of the phase waits for the broker any more. The risk
# sales the last close decided go first; the plan's legs are sized when they are done (the backtest's order).
TRANSITIONS: dict[tuple[str, str], str] = {
    (IDLE, "open"): SELLING,
    (IDLE, "risk"): RISK_SELLING,
    (RISK_SELLING, "settled"): SELLING,
    (RISK_SELLING, "deadline"): CLOSING,
    (SELLING, "settled"): BUYING,
    (BUYING, "settled"): WORKING,
    (WORKING, "retry"): SELLING,
    (SELLING, "deadline"): CLOSING,
    (BUYING, "deadline"): CLOSING,
    (WORKING, "deadline"): CLOSING,
    (CLOSING, "settled"): CLOSED,
}


class PhaseError(RotationError):
    """An event arrived in a phase where it means nothing (a scheduling bug); the state is unchanged."""


def advance(phase: str, event: str) -> str:
    try:
        return TRANSITIONS[(phase, event)]
    except KeyError:
        raise PhaseError(f"no transition from phase {phase!r} on {event!r}") from None


@dataclass(frozen=True)
class ExecutionSettings:
    """How plans become orders: the backtest's cost and sizing rules, the limit tolerance, the retries."""

    config: BacktestConfig = BacktestConfig()
    tolerance_bps: float = 0.0  # limit = expected fill price moved this far against us (0: the price itself)
    max_rounds: int = 3  # sending rounds per session: the open plus resubmissions

    def __post_init__(self) -> None:
        if self.tolerance_bps < 0 or self.max_rounds < 1:
            raise ValueError("tolerance_bps must be >= 0 and max_rounds >= 1")


@dataclass(frozen=True)
class RiskInputs:
    """What the risk stage reads at a close from the stored bars (as the backtest reads them): each
    symbol's close (carried over a suspension), and the day's ex-date steps (share ratio, cash per share)."""

    closes: dict[str, float]
    split: dict[str, float]
    dividend: dict[str, float]


HISTORY_DAYS = 260  # daily summaries kept in the state (a year); the journal keeps everything
TermsFor = Callable[[str, date], SymbolTerms]


class ExecutionCycle:
    """Executes one strategy's :class:`OrderPlan` through a broker; ``save`` persists the state."""

    def __init__(self, name: str, settings: ExecutionSettings, broker: BrokerPort, terms_for: TermsFor,
                 state: StrategyState, save: Callable[[StrategyState], None],
                 log: Callable[[str], None] = lambda _: None,
                 journal: Callable[[DayProgress | None, dict], None] = lambda progress, summary: None) -> None:
        self.name, self.settings, self.broker = name, settings, broker
        self.terms_for, self.state, self._save, self.log = terms_for, state, save, log
        self.journal = journal  # keeps the closed day's record; called again if a crash repeats the close
        self._sizing = sizing_config(settings.config)
        self.quotes: dict[str, Quote] = {}
        self.dropped = False  # the last close's risk stage dropped the target being executed
        # the CNY the strategy may hold (its allocation record; None: not allocated, buys are not capped)
        self.allocation: Callable[[], float | None] = lambda: None

    # -- the session's events --------------------------------------------------------------------
    def open(self, day: date, quotes: dict[str, Quote]) -> None:
        """Start the session: the risk sales the last close decided, then the plan's legs (sells first)."""
        self.quotes = dict(quotes)
        progress = self.state.progress
        if progress is not None and progress.day == day.isoformat():
            self._advance()  # already open (a restart): carry on
            return
        book = self.state.risk
        plan = self.state.plan
        if book is not None and plan is not None and plan.decided != book.plan_decided:
            self.state.plan = plan = book.start_plan(plan)
        holdings, cash = self.broker.holdings(), float(self.broker.cash())
        sales = book.sales(holdings) if book is not None else []
        if plan is None and not sales:
            self.save()
            return
        progress = DayProgress(day.isoformat(), advance(IDLE, "risk" if sales else "open"), cash,
                               holdings_open={s: float(v) for s, v in holdings.items() if v},
                               legs=[LegRecord(r.symbol, False, r.wanted, 0.0, cause=r.cause, trigger=r.trigger)
                                     for r in sales])
        if not sales:
            progress.legs += self._plan_legs(progress, day)
        self.state.progress = progress
        self.save()
        self._advance()

    def _plan_legs(self, progress: DayProgress, day: date) -> list[LegRecord]:
        """The plan's legs from the holdings and cash after the risk sales (the backtest sizes its target
        after them too); a symbol a stock stop holds is left alone, buys are refused while a ladder
        reduces."""
        plan = self.state.plan
        if plan is None:
            return []
        book = self.state.risk
        symbols = tuple(plan.symbols)
        shares = np.array([self._held(progress, s)[0] for s in symbols], dtype=float)
        prices = np.array([self._valuation(s) for s in symbols], dtype=float)
        target = np.array(plan.target, dtype=float)
        desired = desired_shares(target, plan.weighted, shares, self._cash(progress), prices)
        lot = np.array([self.terms_for(s, day).lot for s in symbols], dtype=float)
        sells, buys = legs(symbols, target, plan.weighted, shares, desired, lot, self.settings.config.rules.lots)
        out = []
        for g in sells + buys:
            if book is not None and book.blocked(g.symbol):
                continue
            if g.buy and book is not None and book.denies_buys:
                out.append(LegRecord(g.symbol, True, g.wanted, 0.0, ["risk_denied"], sized=True))
                continue
            out.append(LegRecord(g.symbol, g.buy, g.wanted, 0.0))
        return out

    def retry(self, quotes: dict[str, Quote]) -> None:
        """Resubmit what is still unfilled, at fresh prices (up to ``max_rounds`` rounds a session)."""
        progress = self.state.progress
        if progress is None or progress.phase != WORKING or progress.round + 1 >= self.settings.max_rounds:
            return
        if not any(leg.remaining > 0 and leg.sized for leg in progress.legs):
            return
        self.quotes.update(quotes)
        progress.round += 1
        progress.phase = advance(progress.phase, "retry")
        self.save()
        self._advance()

    def deadline(self) -> None:
        """Cancel every working order; the session closes when the broker has confirmed them."""
        progress = self.state.progress
        if progress is None or progress.phase in (CLOSING, CLOSED):
            return
        progress.phase = advance(progress.phase, "deadline")
        self.save()
        for order in progress.orders:
            if order.state == SENT and order.order_id:
                self.broker.cancel(order.order_id)
        self._advance()

    def on_order(self, update: BrokerOrder) -> None:
        order = self._order(update.reference, update.order_id)
        if order is None:
            return
        order.order_id = order.order_id or update.order_id
        order.status, order.broker_traded = update.status, update.traded
        if order.state in (INTENT, UNSENT):
            order.state = SENT  # the broker has it (a restart adopted it, or its update beat our bookkeeping)
        if update.final:
            order.state = FINAL
        self.save()
        self._advance()

    def on_trade(self, trade: BrokerTrade) -> None:
        progress = self.state.progress
        order = next((o for o in progress.orders if o.order_id == trade.order_id), None) if progress else None
        if order is None or any(f.trade_id == trade.trade_id for f in progress.fills):
            return
        self._record_fill(progress, order, trade)
        self.save()
        self._advance()

    def close(self, day: date, closes: dict[str, float], risk: RiskInputs | None = None,
              settle: Callable[[], None] | None = None) -> dict | None:
        """End the session: decide whether the plan is tried again tomorrow, run the risk stage on the
        close (``risk``: the day's closes and ex-date steps from the data), summarise, clear the day.
        ``settle`` runs after the risk stage and before the session is marked closed (a canary's close)."""
        if self.state.last_close == day.isoformat():
            return None
        progress = self.state.progress  # None: no plan reached an open today (it stays for the next one)
        summary = self._summary(day, progress, closes)
        if progress is not None:
            retry = progress.retry or any(leg.remaining > 0 for leg in progress.legs if leg.cause == PLAN)
            if not (retry and self.settings.config.resubmit):
                self.state.plan = None  # done: nothing more to execute until the next decision
            summary["carried"] = self.state.plan is not None
        book = self.state.risk
        self.dropped = False
        if book is not None:
            if self._close_risk(book, day, progress, risk):
                self.state.plan = None
                summary["carried"] = False
                self.dropped = True  # the risk stage dropped the target (read by ``settle``)
            summary["risk"] = book.status()
        if settle is not None:
            settle()
        self.journal(progress, summary)  # before the day is marked closed: a restart writes it again
        self.state.history = (self.state.history + [summary])[-HISTORY_DAYS:]
        self.state.progress = None
        self.state.last_close = day.isoformat()
        self.save()
        return summary

    def adopt(self, plan: OrderPlan) -> None:
        """A new decision replaces whatever target was being executed (the backtester's rule)."""
        self.state.plan = plan
        self.save()

    def recover(self) -> list[str]:
        """After a restart: find every order we wrote down in the broker's book, adopt it and its fills;
        an order the broker never received is marked unsent (sent again by the next round). Returns what
        was found, for the log.

        Orders are matched by reference, then by the broker's order id we recorded, then -- for an order
        whose id we never learnt (killed while sending) on a gateway that does not echo references, like
        vnpy_xt -- by symbol, side, volume and limit among the broker's orders nobody has claimed.
        """
        progress = self.state.progress
        if progress is None:
            return []
        pending = {o.reference for o in progress.orders if o.state in (INTENT, SENT)}
        matched = match_orders(progress.orders, self.broker.orders())
        notes = []
        for order in progress.orders:
            found = matched.get(order.reference)
            if found is None:
                if order.reference in pending:
                    order.state = UNSENT
                    notes.append(f"{order.reference}: never reached the broker")
                continue
            order.order_id, order.status, order.broker_traded = found.order_id, found.status, found.traded
            order.state = FINAL if found.final else SENT
            for trade in self.broker.trades_of(found.order_id):
                if not any(f.trade_id == trade.trade_id for f in progress.fills):
                    self._record_fill(progress, order, trade)
            if order.reference in pending:
                notes.append(f"{order.reference}: adopted from the broker ({found.status})")
        for leg_index, leg in enumerate(progress.legs):
            if any(o.leg == leg_index and o.state == UNSENT for o in progress.orders):
                leg.round = -1 if progress.round == 0 else min(leg.round, progress.round - 1)
        self.save()
        return notes

    def _close_risk(self, book: RiskBook, day: date, progress: DayProgress | None, risk: RiskInputs | None) -> bool:
        holdings_open = dict(progress.holdings_open) if progress is not None else self.broker.holdings()
        fills: list[tuple[str, bool, float, float]] = []
        if progress is not None:
            for leg in progress.legs:
                if leg.cause != PLAN:
                    book.sale_done(leg.symbol, leg.cause, leg.remaining > 0 or bool(RETRYABLE & set(leg.cuts)))
            order_leg = {o.reference: o.leg for o in progress.orders}
            risk_first = sorted(progress.fills, key=lambda f: progress.legs[order_leg[f.reference]].cause == PLAN)
            fills = [(f.symbol, f.buy, f.volume, f.price) for f in risk_first]
        if risk is None:  # no bar for today: keep the fills, the rules wait for the data
            return book.close(day, float(self.broker.cash()), holdings_open, fills, None, {}, {})
        return book.close(day, float(self.broker.cash()), holdings_open, fills, risk.closes, risk.split,
                          risk.dividend)

    # -- bookkeeping -------------------------------------------------------------------------------
    def save(self) -> None:
        self._save(self.state)

    def _order(self, reference: str, order_id: str = "") -> OrderRecord | None:
        """Our record of a broker order: by reference, else by the broker's id (vnpy_xt's later updates
        carry no reference)."""
        progress = self.state.progress
        if progress is None:
            return None
        return next((o for o in progress.orders if (reference and o.reference == reference)
                     or (not reference and order_id and o.order_id == order_id)), None)

    def owns(self, order_id: str) -> bool:
        progress = self.state.progress
        return progress is not None and any(o.order_id == order_id for o in progress.orders)

    def _valuation(self, symbol: str) -> float:
        quote = self.quotes.get(symbol)
        if quote is None:
            return math.nan
        return quote.price if quote.price == quote.price else quote.previous_close

    def _record_fill(self, progress: DayProgress, order: OrderRecord, trade: BrokerTrade) -> None:
        day = date.fromisoformat(progress.day)
        terms = self.terms_for(order.symbol, day)
        round_costs = self.settings.config.rules.round_costs
        value = kernel.cents(trade.volume * trade.price) if round_costs else trade.volume * trade.price
        commission, stamp, transfer = fees(value, not order.buy, terms, round_costs)
        leg = progress.legs[order.leg]
        slippage = abs(trade.price - leg.price) * trade.volume if leg.price == leg.price else 0.0
        plan = self.state.plan
        if leg.cause != PLAN:
            reason = risk_reason(leg.cause, leg.trigger)
        else:
            reason = plan.note(order.symbol) if plan else ""
        progress.fills.append(FillRecord(trade.trade_id, order.reference, order.symbol, order.buy, trade.price,
                                         trade.volume, value, commission, stamp, transfer, slippage, reason,
                                         trade.time))
        order.traded += trade.volume
        leg.filled += trade.volume

    def _cash(self, progress: DayProgress) -> float:
        """The session's cash from our own fills, less what working buys hold (as a broker freezes it)."""
        cash = progress.cash_open
        for f in progress.fills:
            cost = f.commission + f.stamp_duty + f.transfer_fee
            cash += (-f.value if f.buy else f.value) - cost
        day = date.fromisoformat(progress.day)
        for o in progress.orders:
            if o.buy and o.state == SENT and o.status not in (FILLED, CANCELLED, REJECTED):
                open_volume = o.volume - o.traded
                if open_volume > 0:
                    cash -= buy_cost(open_volume, o.price, self.terms_for(o.symbol, day),
                                     self.settings.config.rules.round_costs)
        return cash

    def _held(self, progress: DayProgress, symbol: str) -> tuple[float, float]:
        """(shares held now, shares bought today) from the opening holdings and our fills."""
        held = progress.holdings_open.get(symbol, 0.0)
        bought = 0.0
        for f in progress.fills:
            if f.symbol == symbol:
                held += f.volume if f.buy else -f.volume
                bought += f.volume if f.buy else 0.0
        return held, bought

    def _unsettled(self, progress: DayProgress, buy: bool | None = None) -> list[OrderRecord]:
        """Orders still waiting for the broker: not yet final, or final with fills we have not seen."""
        return [o for o in progress.orders if (buy is None or o.buy == buy) and (
            o.state in (INTENT, SENT) or (o.state == FINAL and o.traded + 1e-9 < o.broker_traded))]

    def _advance(self) -> None:
        """Move the session on as far as the broker's answers allow."""
        progress = self.state.progress
        while progress is not None:
            phase = progress.phase
            if phase == RISK_SELLING:
                self._send(progress, buy=False, first_only=False)
                # The plan is sized once every risk sale has the broker's answer: one resting at limit-down
                # brings no cash (the backtest refuses it and still executes the plan that morning).
                if any(o.status in ("", SUBMITTING) for o in self._unsettled(progress, buy=False)):
                    return
                progress.legs += self._plan_legs(progress, date.fromisoformat(progress.day))
            elif phase == SELLING:
                self._send(progress, buy=False, first_only=False)
                # The plan's own sales settle before its buys are sized on their cash; a risk sale that has
                # the broker's answer but rests (limit-down) brings no cash today, as in the backtest.
                if any(progress.legs[o.leg].cause == PLAN or o.status in ("", SUBMITTING)
                       for o in self._unsettled(progress, buy=False)):
                    return
            elif phase == BUYING:
                if any(o.status in ("", SUBMITTING) for o in self._unsettled(progress, buy=True)):
                    return  # the next buy is sized once the broker has answered the last one
                if self._send(progress, buy=True, first_only=True):
                    continue
            elif phase == CLOSING:
                if self._unsettled(progress):
                    return
            else:
                return
            progress.phase = advance(phase, "settled")
            self.save()

    def _eligible(self, progress: DayProgress, index: int, leg: LegRecord) -> bool:
        if leg.round >= progress.round:
            return False
        if any(o.leg == index for o in self._unsettled(progress)):
            return False
        return not leg.sized or leg.remaining > 0

    def _send(self, progress: DayProgress, buy: bool, first_only: bool) -> bool:
        """Size and send the round's eligible legs of one side (or only the first); True if any was."""
        handled = False
        for index, leg in enumerate(progress.legs):
            if leg.buy == buy and self._eligible(progress, index, leg):
                self._size_and_send(progress, index, leg)
                handled = True
                if first_only:
                    break
        return handled

    def _size_and_send(self, progress: DayProgress, index: int, leg: LegRecord) -> None:
        day = date.fromisoformat(progress.day)
        leg.round = progress.round
        quote = self.quotes.get(leg.symbol) or Quote(math.nan)
        terms = self.terms_for(leg.symbol, day)
        held, bought = self._held(progress, leg.symbol)
        wanted = leg.remaining if leg.sized else leg.wanted
        price = quote.price if quote.price == quote.price else quote.previous_close
        fill = size_order(Leg(leg.symbol, leg.buy, wanted), Quote(price, quote.limit_up, quote.limit_down),
                          terms, self._sizing, held=held, locked=bought, cash=self._cash(progress))
        if not leg.sized:
            submitted = float(fill.submitted)
            cuts = list(fill.reasons)
            if leg.buy and submitted > 0:  # the allocation caps what the strategy holds (sizing, not the target)
                submitted = self._capped(progress, leg.symbol, submitted, fill.price, terms.lot, cuts)
            leg.sized, leg.submitted, leg.price = True, submitted, price
            leg.cuts = cuts
            if RETRYABLE & set(fill.reasons) and leg.cause == PLAN:
                progress.retry = True
        volume = min(float(fill.submitted), leg.remaining)
        if quote.price != quote.price:  # not trading today (suspended, no quote): nothing can fill
            if "suspended" not in leg.cuts:
                leg.cuts.append("suspended")
            progress.retry = progress.retry or leg.cause == PLAN
            self.save()
            return
        if volume <= 0:
            self.save()
            return
        # strategy|day|leg|n-th order of the leg: unique, so an order that never reached the broker (a crash)
        # is not confused with the one sent in its place
        sequence = sum(1 for o in progress.orders if o.leg == index)
        order = OrderRecord(f"{self.name}|{progress.day}|{index}|{sequence}", leg.symbol, leg.buy, volume,
                            limit_price(fill.price, leg.buy, self.settings.tolerance_bps, quote, terms.tick),
                            fill.price, index)
        progress.orders.append(order)
        self.save()  # the intent is on disk before the broker hears of it
        order_id = self.broker.send(leg.symbol, leg.buy, volume, order.price, order.reference)
        if not order_id:
            order.state, order.status = FINAL, REJECTED
        else:
            order.order_id = order_id
            if order.state == INTENT:
                order.state = SENT
        self.save()

    def _capped(self, progress: DayProgress, symbol: str, volume: float, price: float, lot: int,
                cuts: list[str]) -> float:
        """``volume`` cut so the strategy's book (its holdings and working buys at the sizing prices) stays
        within its allocation (:func:`~vnpy_rotation.allocation.cap_to_allocation`; during a canary the versions
        were capped apart, :func:`~vnpy_rotation.live.canary_stage.net_open`); a cut adds ``allocation``
        to ``cuts`` and is logged with its reason."""
        amount = self.allocation()
        canary = self.state.canary
        if amount is None or (canary is not None and canary.open_day == progress.day
                              and canary.machine.status not in TERMINAL):
            return volume  # a canary's plan: each version was capped by its part when netted (net_open)
        held = {s: self._held(progress, s)[0] for s in set(progress.holdings_open) | {f.symbol for f in progress.fills}}
        values = [v * self._valuation(s) for s, v in held.items() if v]
        book = sum(x for x in values if x == x)  # a holding with no price today: not counted
        book += sum((o.volume - o.traded) * o.expected_price for o in progress.orders
                    if o.buy and o.state in (INTENT, SENT))  # working buys hold the room they may fill
        capped = cap_to_allocation([SizedOrder(symbol, True, volume, price, int(lot))], book, amount)[0]
        if capped.cut:
            cuts.append("allocation")
            self.log(f"{symbol}: {capped.reason}")
        return capped.volume

    # -- the day's summary -----------------------------------------------------------------------
    def _summary(self, day: date, progress: DayProgress | None, closes: dict[str, float]) -> dict:
        holdings = self.broker.holdings()
        cash = float(self.broker.cash())
        value = sum(v * closes.get(s, math.nan) for s, v in holdings.items() if v)
        equity = cash + (value if value == value else 0.0)
        previous = self.state.history[-1]["equity"] if self.state.history else None
        summary = {"day": day.isoformat(), "cash": round(cash, 2), "market_value": round(value, 2),
                   "equity": round(equity, 2), "pnl": None if previous is None else round(equity - previous, 2),
                   "positions": {s: v for s, v in sorted(holdings.items()) if v},
                   "orders": 0, "fills": 0, "unfilled": {}, "reconciliation": []}
        if progress is not None:
            summary["orders"] = len(progress.orders)
            summary["fills"] = len(progress.fills)
            summary["unfilled"] = {leg.symbol: leg.remaining for leg in progress.legs if leg.remaining > 0}
            summary["reconciliation"] = reconcile(self._expected_holdings(progress), holdings)
        return summary

    def _expected_holdings(self, progress: DayProgress) -> dict[str, float]:
        expected = dict(progress.holdings_open)
        for f in progress.fills:
            expected[f.symbol] = expected.get(f.symbol, 0.0) + (f.volume if f.buy else -f.volume)
        return expected


def match_orders(records: list[OrderRecord], broker: list[BrokerOrder]) -> dict[str, BrokerOrder]:
    """Our reference -> the broker's order, each broker order claimed at most once."""
    matched: dict[str, BrokerOrder] = {}
    claimed: set[str] = set()
    rules = (lambda r, b: bool(b.reference) and b.reference == r.reference,
             lambda r, b: bool(r.order_id) and b.order_id == r.order_id,
             lambda r, b: not r.order_id and not b.reference and (b.symbol, b.buy, b.volume) == (r.symbol, r.buy, r.volume)
             and abs(b.price - r.price) < 1e-9)
    for rule in rules:
        for record in records:
            if record.reference in matched:
                continue
            found = next((b for b in broker if b.order_id not in claimed and rule(record, b)), None)
            if found is not None:
                matched[record.reference] = found
                claimed.add(found.order_id)
    return matched


def reconcile(expected: dict[str, float], broker: dict[str, float]) -> list[dict]:
    """Symbols whose broker holding differs from what our records say it should be."""
    return [{"symbol": s, "expected": expected.get(s, 0.0), "broker": broker.get(s, 0.0)}
            for s in sorted(set(expected) | set(broker))
            if abs(expected.get(s, 0.0) - broker.get(s, 0.0)) > 1e-6]
