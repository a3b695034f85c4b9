"""The canary stage of the live cycle: a candidate version beside the champion in one account.

During a canary the champion's book holds (1 − share) of the strategy's capital and the candidate's book
the stage's share (:mod:`vnpy_rotation.canary.machine`). At every open, each version sizes its own target
on its own book (cash, holdings) at the opening prices -- the steps of the backtester's day loop
(:func:`~vnpy_rotation.live.sizing.desired_shares`, :func:`~vnpy_rotation.live.sizing.legs`) -- and the two
versions' deltas are netted (:func:`vnpy_rotation.canary.netting.net`) into **one** share-count order plan,
which the ordinary :class:`~vnpy_rotation.live.cycle.ExecutionCycle` executes, crash-safe, with the risk
stage in front of it. At the close the session's real fills are allocated back to the version books
(:func:`vnpy_rotation.canary.netting.allocate`), so each version's holdings, cash, fees and P&L stay
separate and the books sum to the broker account.

In the shadow stage (share 0) the candidate's book is paper: it is filled by the backtester's matcher at the
open, with every market rule, and sends no order. A stage change (a promotion, a rollback) rescales the real
books at the next open (:func:`vnpy_rotation.canary.netting.rescale`) and re-applies each version's standing
target to its resized book, so the capital moves within that session through the normal order plan.

Everything here is persisted with the strategy's state in one atomic file: a restart at any point neither
nets a session twice nor allocates its fills twice (``open_day`` / ``allocated_day``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Callable

import numpy as np

from ..allocation import SizedOrder, canary_split, cap_to_allocation
from ..backtest import kernel
from ..backtest.config import BacktestConfig
from ..backtest.matching import Bar, SymbolTerms, match, valid_buy, valid_sell
from ..canary import machine as release
from ..canary.books import Lot, VersionBook
from ..canary.config import CanaryConfig
from ..canary.gates import GateValue
from ..canary.machine import CanaryState
from ..canary.netting import Allocation, Netted, RealFill, Transfer, allocate, net, paper_fill, rescale, split
from ..risk.stops import PLAN
from .plan import DayProgress, OrderPlan, _number
from .sizing import Quote, desired_shares, legs

CHAMPION, CANDIDATE = "champion", "candidate"
ROLES = (CHAMPION, CANDIDATE)
TermsFor = Callable[[str, date], SymbolTerms]


def _price(quote: Quote | None) -> float:
    """The execution price of a symbol at the open (NaN: not trading), else NaN."""
    return math.nan if quote is None else quote.price


def _valuation(quote: Quote | None) -> float:
    """What a holding is worth at the open: the open, else the previous close."""
    if quote is None:
        return math.nan
    return quote.price if quote.price == quote.price else quote.previous_close


@dataclass(frozen=True)
class AliasIntent:
    """An alias move the release decided (``version`` None: retire the alias), kept until it is written."""

    alias: str
    version: str | None
    who: str
    why: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SessionRecord:
    """One close of a canary: the stage it was in, what the release did and why, every gate's value."""

    day: str
    stage: str  # the stage the session ran in
    status: str  # the release's status after the step
    share: float  # the candidate's share after the step
    event: str
    reason: str
    halted: bool  # the strategy's risk ladder was HALTED at this close
    reconciled: bool  # the books summed to the broker account
    candidate_equity: float | None
    champion_equity: float | None
    gates: tuple[GateValue, ...] = ()
    slice: tuple[str, ...] = ()  # what the candidate's target cannot hold at a grown stage's capital

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["gates"], data["slice"] = [asdict(g) for g in self.gates], list(self.slice)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SessionRecord":
        data = dict(data)
        data["gates"] = tuple(GateValue(**g) for g in data.get("gates", []))
        data["slice"] = tuple(data.get("slice", ()))
        return cls(**data)


def _netted_json(n: Netted) -> dict[str, Any]:
    return {"symbol": n.symbol, "real": n.real, "parts": n.parts,
            "transfers": [[t.source, t.target, t.shares] for t in n.transfers]}


def _netted_from(data: dict[str, Any]) -> Netted:
    return Netted(data["symbol"], float(data["real"]), {k: float(v) for k, v in data["parts"].items()},
                  tuple(Transfer(s, t, float(n)) for s, t, n in data["transfers"]))


@dataclass
class CanaryLedger:
    """One strategy's canary: the two versions, the release's state machine and the version books."""

    strategy: str
    champion: str  # version ids ("" when the running settings were never registered as a version)
    candidate: str
    candidate_class: str
    candidate_settings: dict[str, Any]
    config: CanaryConfig
    machine: CanaryState
    books: dict[str, VersionBook]
    started: str
    share: float = 0.0  # the candidate's share the real books were last scaled to
    plans: dict[str, OrderPlan] = field(default_factory=dict)  # targets to apply at the next open
    standing: dict[str, OrderPlan] = field(default_factory=dict)  # each version's current target row
    open_day: str = ""  # the last session netted at its open
    open_prices: dict[str, float] = field(default_factory=dict)
    netted: dict[str, Netted] = field(default_factory=dict)
    real_plan: OrderPlan | None = None  # the netted plan of ``open_day``
    allocated_day: str = ""  # the last session whose fills were allocated to the books
    returns: list[tuple[str, float]] = field(default_factory=list)  # candidate's flow-adjusted daily returns
    submitted: list[tuple[str, float, float]] = field(default_factory=list)  # (day, value wanted, moved) CNY
    slippage: list[tuple[str, float, float, float]] = field(default_factory=list)  # (day, value, real, model)
    sessions: list[SessionRecord] = field(default_factory=list)  # one per close
    closed_day: str = ""  # the last session whose close (marks, gates, the release's step) is done
    last_prices: dict[str, float] = field(default_factory=dict)  # the last close seen per symbol
    open_value: float = math.nan  # the candidate's real book at ``open_day``'s open, before a rescale
    aligned: list[str] = field(default_factory=list)  # ``open_day``'s overnight changes shared by the books
    rehearsal: bool = False  # a drill: alias moves go to ``alias_log``, not to the version registry
    handed_over: bool = False  # a completed canary's candidate became the instance's version
    suspense: float = 0.0  # account cash no book owns yet (a dividend paid before or after its ex-date close)
    record_shares: dict[str, dict[str, float]] = field(default_factory=dict)  # each book at ``open_day``'s open
    alias_log: list[AliasIntent] = field(default_factory=list)  # a rehearsal's alias moves
    commands_done: list[str] = field(default_factory=list)  # keys of the human commands applied
    pending_aliases: list[AliasIntent] = field(default_factory=list)  # decided, not yet in the registry

    # -- persistence ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "champion": self.champion, "candidate": self.candidate,
                "candidate_class": self.candidate_class, "candidate_settings": self.candidate_settings,
                "config": self.config.model_dump(mode="json"), "machine": self.machine.to_json(),
                "books": {r: b.to_dict() for r, b in self.books.items()}, "started": self.started,
                "share": self.share, "plans": {r: p.to_json() for r, p in self.plans.items()},
                "standing": {r: p.to_json() for r, p in self.standing.items()}, "open_day": self.open_day,
                "open_prices": self.open_prices,
                "netted": {s: _netted_json(n) for s, n in self.netted.items()},
                "real_plan": None if self.real_plan is None else self.real_plan.to_json(),
                "allocated_day": self.allocated_day, "returns": self.returns,
                "submitted": self.submitted, "slippage": self.slippage, "sessions": [r.to_json() for r in self.sessions],
                "pending_aliases": [m.to_json() for m in self.pending_aliases], "closed_day": self.closed_day,
                "last_prices": self.last_prices, "open_value": _number(self.open_value), "aligned": self.aligned,
                "rehearsal": self.rehearsal, "alias_log": [m.to_json() for m in self.alias_log],
                "handed_over": self.handed_over, "suspense": self.suspense, "record_shares": self.record_shares,
                "commands_done": self.commands_done}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "CanaryLedger":
        return cls(strategy=data["strategy"], champion=data["champion"], candidate=data["candidate"],
                   candidate_class=data["candidate_class"], candidate_settings=dict(data["candidate_settings"]),
                   config=CanaryConfig.model_validate(data["config"]),
                   machine=CanaryState.from_json(data["machine"]),
                   books={r: VersionBook.from_dict(b) for r, b in data["books"].items()}, started=data["started"],
                   share=float(data["share"]),
                   plans={r: OrderPlan.from_json(p) for r, p in data.get("plans", {}).items()},
                   standing={r: OrderPlan.from_json(p) for r, p in data.get("standing", {}).items()},
                   open_day=data.get("open_day", ""), open_prices=dict(data.get("open_prices", {})),
                   netted={s: _netted_from(n) for s, n in data.get("netted", {}).items()},
                   real_plan=None if data.get("real_plan") is None else OrderPlan.from_json(data["real_plan"]),
                   allocated_day=data.get("allocated_day", ""),
                   returns=[(d, float(r)) for d, r in data.get("returns", [])],
                   submitted=[(d, float(w), float(f)) for d, w, f in data.get("submitted", [])],
                   slippage=[(d, float(v), float(a), float(m)) for d, v, a, m in data.get("slippage", [])],
                   sessions=[SessionRecord.from_json(r) for r in data.get("sessions", [])],
                   pending_aliases=[AliasIntent(**m) for m in data.get("pending_aliases", [])],
                   closed_day=data.get("closed_day", ""), commands_done=list(data.get("commands_done", [])),
                   last_prices={k: float(v) for k, v in data.get("last_prices", {}).items()},
                   open_value=math.nan if data.get("open_value") is None else float(data["open_value"]),
                   aligned=list(data.get("aligned", [])), rehearsal=bool(data.get("rehearsal", False)),
                   alias_log=[AliasIntent(**m) for m in data.get("alias_log", [])],
                   handed_over=bool(data.get("handed_over", False)), suspense=float(data.get("suspense", 0.0)),
                   record_shares={r: dict(v) for r, v in data.get("record_shares", {}).items()})

    # -- queries ---------------------------------------------------------------------------------------
    @property
    def target_share(self) -> float:
        """The candidate's share of the capital the release's state asks for now."""
        return release.share(self.machine, self.config.stages)

    def real_books(self) -> dict[str, VersionBook]:
        return {r: b for r, b in self.books.items() if not b.paper}

    def holdings(self) -> dict[str, float]:
        """The real books' shares summed per symbol: what the broker should hold."""
        total: dict[str, float] = {}
        for book in self.real_books().values():
            for symbol, shares in book.holdings().items():
                total[symbol] = total.get(symbol, 0.0) + shares
        return total


def start_ledger(strategy: str, champion: str, candidate: str, candidate_class: str,
                 candidate_settings: dict[str, Any], config: CanaryConfig, machine: CanaryState,
                 holdings: dict[str, float], cash: float, equity: float, day: date) -> CanaryLedger:
    """A new canary: the champion's book is the whole account (its holdings count as bought before
    today), the candidate's a paper book of the same equity (shadow) or an empty real one (a first stage
    with capital, filled from the champion's book by the next open's rescale)."""
    lots = {s: [Lot(float(v), "", math.nan)] for s, v in holdings.items() if v}
    books = {CHAMPION: VersionBook(champion or CHAMPION, float(cash), lots)}
    paper = release.share(machine, config.stages) == 0.0
    books[CANDIDATE] = VersionBook(candidate, float(equity) if paper else 0.0, {}, paper=paper)
    return CanaryLedger(strategy, champion, candidate, candidate_class, dict(candidate_settings), config, machine,
                        books, day.isoformat())


def _role_deltas(book: VersionBook, plan: OrderPlan, prices: dict[str, float], terms_for: TermsFor, day: date,
                 lots_rule: bool) -> dict[str, float]:
    """One version's signed share deltas for its target on its own book (the backtester's sizing steps). A
    holding outside the target's symbols (moved in from the other version, whose pools differ) is sold."""
    others = tuple(s for s in book.holdings() if s not in plan.symbols)
    symbols = tuple(plan.symbols) + others
    shares = np.array([book.shares(s) for s in symbols], dtype=float)
    valued = np.array([prices.get(s, math.nan) for s in symbols], dtype=float)
    target = np.array(list(plan.target) + [0.0] * len(others), dtype=float)
    desired = desired_shares(target, plan.weighted, shares, book.cash, valued)
    lot = np.array([terms_for(s, day).lot for s in symbols], dtype=float)
    sells, buys = legs(symbols, target, plan.weighted, shares, desired, lot, lots_rule)
    out = {}
    for g in sells + buys:  # whole lots, as the broker's sizing takes them (a sale may end an odd-lot holding)
        terms = terms_for(g.symbol, day)
        volume = valid_buy(g.wanted, terms) if g.buy else valid_sell(g.wanted, book.shares(g.symbol), terms)
        if lots_rule and volume > 0:
            out[g.symbol] = volume if g.buy else -volume
        elif not lots_rule:
            out[g.symbol] = g.wanted if g.buy else -g.wanted
    return out


def _paper_trade(book: VersionBook, deltas: dict[str, float], quotes: dict[str, Quote], terms_for: TermsFor,
                 day: date, config: BacktestConfig) -> None:
    """The shadow candidate's fills: the backtester's matcher at the open with every market rule, sells
    first, buys on the cash they leave; no order leaves the process."""
    today = day.isoformat()
    for buy in (False, True):
        for symbol, delta in sorted(deltas.items()):
            if (delta > 0) != buy or delta == 0:
                continue
            quote = quotes.get(symbol) or Quote(math.nan)
            terms = terms_for(symbol, day)
            bar = Bar(quote.price, math.nan, quote.limit_up, quote.limit_down, quote.price == quote.price)
            fill = match(buy, abs(delta), bar, terms, config, held=book.shares(symbol),
                         locked=book.shares(symbol) - book.sellable(symbol, today), cash=book.cash)
            if fill.volume > 0:
                paper_fill(book, symbol, buy, float(fill.volume), float(fill.price), float(fill.commission),
                           float(fill.stamp_duty), float(fill.transfer_fee), float(fill.slippage), today, terms.t0)


def _scale_lots(book: VersionBook, symbol: str, shares: float) -> None:
    """Set ``book``'s holding of ``symbol`` to ``shares``, scaling its lots (purchase dates kept, their price
    per share scaled back)."""
    held = book.shares(symbol)
    if held <= 0:
        book.lots[symbol] = [Lot(shares, "", math.nan)] if shares > 0 else []
        return
    f = shares / held
    book.lots[symbol] = [Lot(lot.shares * f, lot.bought, lot.price / f if f else lot.price) for lot in book.lots[symbol]]


def align(ledger: CanaryLedger, broker_holdings: dict[str, float], broker_cash: float) -> list[str]:
    """Overnight changes of the account the versions did not trade. A holding the broker changed (an
    ex-date's bonus shares or split) scales every book by the broker's ratio, each book rounded down to whole
    shares and the remainder to the largest holder (a broker floors the account's total the same way). Cash
    the broker added or took is held in ``suspense`` until the close explains it (a dividend, by the data's
    cash per share and each book's shares at the record date: :func:`entitle`). Returns what changed."""
    notes = []
    books = ledger.real_books()
    held = ledger.holdings()
    for symbol in sorted(set(held) | {s for s, v in broker_holdings.items() if v}):
        mine, theirs = held.get(symbol, 0.0), float(broker_holdings.get(symbol, 0.0))
        if abs(mine - theirs) <= 1e-6:
            continue
        if mine <= 0:  # the broker holds what no version does: the champion's (it runs the account)
            _scale_lots(books[CHAMPION], symbol, theirs)
        else:
            holders = {r: b.shares(symbol) for r, b in books.items() if b.shares(symbol) > 0}
            new = {r: math.floor(v * theirs / mine + 1e-9) for r, v in holders.items()}
            largest = max(holders, key=lambda r: holders[r])
            new[largest] += theirs - sum(new.values())
            for role, shares in new.items():
                _scale_lots(books[role], symbol, shares)
        notes.append(f"{symbol}: books {mine:g} → broker {theirs:g}")
    gap = broker_cash - sum(b.cash for b in books.values()) - ledger.suspense
    if abs(gap) > 0.005:
        ledger.suspense += gap
        notes.append(f"cash {gap:+,.2f} CNY held until the close explains it")
    return notes


def entitle(ledger: CanaryLedger, split: dict[str, float], dividend: dict[str, float], round_costs: bool) -> float:
    """The close of an ex-date from the data: each real book is credited its dividend (cash per share × its
    shares at the record date, the last close, as the broker pays the account), taken out of ``suspense``;
    the shadow's paper book, which the broker does not hold, also follows the split. Returns the suspense
    left (a dividend the broker pays on a later date, or a change nothing explains)."""
    record = ledger.record_shares
    for role, book in ledger.books.items():
        for symbol, d in dividend.items():
            shares = record.get(role, {}).get(symbol, 0.0)
            if d and shares > 0:
                amount = shares * round(float(d), 4)  # the replay book's and the backtest's rule
                amount = kernel.cents(amount) if round_costs else amount
                book.cash += amount
                if not book.paper:
                    ledger.suspense -= amount
        if book.paper:
            for symbol, ratio in split.items():
                if ratio and ratio != 1.0 and book.shares(symbol) > 0:
                    _scale_lots(book, symbol, math.floor(book.shares(symbol) * ratio + 1e-9))
    if dividend and abs(ledger.suspense) < 0.02:  # cents rounded per book rather than per account
        ledger.books[CHAMPION].cash += ledger.suspense
        ledger.suspense = 0.0
    return ledger.suspense


def net_open(ledger: CanaryLedger, day: date, quotes: dict[str, Quote], terms_for: TermsFor,
             config: BacktestConfig, broker_holdings: dict[str, float] | None = None,
             broker_cash: float | None = None, allocation: float | None = None) -> OrderPlan | None:
    """This open's one order plan (share counts; None: no real order), from both versions' targets, after
    the books are aligned with the account's overnight changes (:func:`align`, when the broker's holdings
    and cash are given).

    ``allocation``: the strategy's CNY under a capital allocation (None: not capped). Each version's buys
    are then capped by its part of it (:func:`~vnpy_rotation.allocation.canary_split`: the candidate the
    stage's share, the champion the rest), on its own book, before the versions are netted.

    Idempotent per session: a restart after the plan was netted gets the same plan back."""
    today = day.isoformat()
    if ledger.open_day == today:
        return ledger.real_plan
    ledger.record_shares = {r: b.holdings() for r, b in ledger.books.items()}  # the record date's holders
    if broker_holdings is not None and broker_cash is not None:
        ledger.aligned = align(ledger, broker_holdings, broker_cash)
    prices = {s: _valuation(q) for s, q in quotes.items()}
    for symbol, price in ledger.last_prices.items():  # no quote today (suspended, no tick): the last close
        if not prices.get(symbol, math.nan) == prices.get(symbol, math.nan):
            prices[symbol] = price
    candidate = ledger.books[CANDIDATE]
    ledger.open_value = candidate.equity_at(prices) if not candidate.paper else math.nan
    share = ledger.target_share
    if share > 0 and ledger.books[CANDIDATE].paper:  # out of shadow: the paper book is set aside
        ledger.books[CANDIDATE] = VersionBook(ledger.candidate, 0.0, {})
    if share != ledger.share:
        real = ledger.real_books()
        lots = {s: terms_for(s, day).lot for s in set(prices)}
        shares = {CHAMPION: 1.0 - share, CANDIDATE: share} if CANDIDATE in real else {CHAMPION: 1.0}
        rescale(real, shares, prices, today, lots)
        ledger.share = share
        for role in ROLES:  # each version's current target on its resized book
            if role not in ledger.plans and role in ledger.standing:
                ledger.plans[role] = ledger.standing[role]
    deltas: dict[str, dict[str, float]] = {}
    for role, book in ledger.books.items():
        plan = ledger.plans.get(role)
        if plan is None:
            continue
        wanted = _role_deltas(book, plan, prices, terms_for, day, config.rules.lots)
        if book.paper:
            _paper_trade(book, wanted, quotes, terms_for, day, config)
            ledger.plans.pop(role)
        else:
            deltas[role] = wanted
    if allocation is not None:
        deltas = _capped_roles(ledger, deltas, prices, allocation, terms_for, day, config.rules.lots)
    lots = {s: terms_for(s, day).lot for d in deltas.values() for s in d}
    ledger.netted = net(deltas, lots)
    ledger.open_day, ledger.open_prices = today, {s: _price(q) for s, q in quotes.items()}
    held = ledger.holdings()
    orders = {s: n.real for s, n in ledger.netted.items() if abs(n.real) > 1e-9}
    if not orders:
        ledger.real_plan = None
        return None
    symbols = sorted(orders)
    reasons = {r: p.reason for r, p in ledger.plans.items()}
    notes = {s: "; ".join(f"{r} {ledger.netted[s].parts[r]:+g}" for r in ROLES if r in ledger.netted[s].parts)
             for s in symbols}
    # dated by the newest decision it carries: the risk stage starts a new row (ending a flat spell, replacing
    # pending halving sales) on a new decision only, as in the backtest, not on every netted session
    decided = max((p.decided for p in ledger.plans.values()), default=today)
    ledger.real_plan = OrderPlan(ledger.strategy, decided, symbols, [held.get(s, 0.0) + orders[s] for s in symbols],
                                 False, "canary: " + ", ".join(f"{r} {why}" for r, why in reasons.items()), notes)
    return ledger.real_plan


def _capped_roles(ledger: CanaryLedger, deltas: dict[str, dict[str, float]], prices: dict[str, float],
                  allocation: float, terms_for: TermsFor, day: date, lots_rule: bool) -> dict[str, dict[str, float]]:
    """Each version's deltas with its buys capped so its book, at ``prices``, stays within its part of the
    strategy's ``allocation`` (:func:`~vnpy_rotation.allocation.canary_split`,
    :func:`~vnpy_rotation.allocation.cap_to_allocation`); sells are never cut."""
    parts = canary_split(allocation, ledger.machine, ledger.config.stages)
    amounts = {CHAMPION: parts.champion, CANDIDATE: parts.candidate}
    out: dict[str, dict[str, float]] = {}
    for role, wanted in deltas.items():
        book = ledger.books[role]
        value = sum(v * prices.get(s, math.nan) for s, v in book.holdings().items() if v)
        orders = [SizedOrder(s, d > 0, abs(d), prices.get(s, math.nan), int(terms_for(s, day).lot) if lots_rule else 1)
                  for s, d in wanted.items()]
        capped = cap_to_allocation(orders, value if value == value else 0.0, amounts[role])
        out[role] = {o.symbol: o.volume if o.buy else -o.volume for o in capped if o.volume > 0}
    return out


def allocate_close(ledger: CanaryLedger, day: date, progress: DayProgress | None, terms_for: TermsFor,
                   resubmit: bool) -> None:
    """Give the session's real fills (and the offsetting transfers) to the version books, once."""
    today = day.isoformat()
    if ledger.allocated_day == today or ledger.open_day != today:
        return
    fills = []
    expected: dict[str, tuple[float, float]] = {}  # symbol -> (shares, shares x expected fill price) of the plan
    if progress is not None:
        order_of = {o.reference: o for o in progress.orders}
        for f in progress.fills:
            order = order_of[f.reference]
            risk = progress.legs[order.leg].cause != PLAN
            fills.append(RealFill(f.symbol, f.buy, f.volume, f.value, f.commission, f.stamp_duty, f.transfer_fee,
                                  f.slippage, risk))
            if not risk:
                shares, value = expected.get(f.symbol, (0.0, 0.0))
                expected[f.symbol] = (shares + f.volume, value + f.volume * order.expected_price)
    fills = within_plan(fills, ledger.netted)
    lots = {s: terms_for(s, day).lot for s in set(ledger.open_prices) | {f.symbol for f in fills}}
    done = allocate(ledger.real_books(), ledger.netted, fills, ledger.open_prices, today, lots)
    _record_execution(ledger, today, done, progress, expected, lots)
    retry = progress is not None and progress.retry and resubmit
    for role in list(ledger.plans):
        unfilled = any(abs(_executed(done, role, s) - n.parts.get(role, 0.0)) > 1e-9 for s, n in ledger.netted.items())
        if not (retry and unfilled):
            ledger.plans.pop(role)
    ledger.allocated_day = today


def within_plan(fills: list[RealFill], netted: dict[str, Netted]) -> list[RealFill]:
    """The plan's fills as the netting planned them; what the risk stage added in front of the plan is a
    risk sale, shared by the books pro rata to their holdings (a REDUCING ladder scales the account's
    target, a stop sells a holding: every version scales by the same rule).

    A sale beyond the netted real order, or against it, becomes a risk sale (a fill is split where it
    crosses the plan's size); a buy the netting did not plan cannot be given to a version and is refused."""
    out: list[RealFill] = []
    left = {s: abs(n.real) for s, n in netted.items()}
    for fill in fills:
        planned = netted.get(fill.symbol)
        same_side = planned is not None and (planned.real > 0) == fill.buy and planned.real != 0
        room = left.get(fill.symbol, 0.0) if same_side and not fill.risk else 0.0
        if fill.buy and (fill.risk or room + 1e-9 < fill.volume):
            raise ValueError(f"{fill.symbol}: a buy of {fill.volume:g} the canary's netting did not plan")
        if room >= fill.volume - 1e-9:
            out.append(fill)
            left[fill.symbol] = room - fill.volume
            continue
        for part, risk in ((room, False), (fill.volume - room, True)):
            if part > 1e-9:
                k = part / fill.volume
                out.append(RealFill(fill.symbol, fill.buy, part, fill.value * k, fill.commission * k,
                                    fill.stamp_duty * k, fill.transfer_fee * k, fill.slippage * k, risk))
        left[fill.symbol] = 0.0
    return out


PLAN_MOVES = frozenset({"buy", "sell", "transfer_in", "transfer_out"})


def _executed(done: Allocation, role: str, symbol: str) -> float:
    """Signed shares of ``symbol`` the session's plan (fills and transfers, not risk sales) moved into ``role``."""
    return sum(m.shares for m in done.for_version(role) if m.symbol == symbol and m.kind in PLAN_MOVES)


def _submitted(ledger: CanaryLedger, role: str, symbol: str, progress: DayProgress | None, lot: float) -> float:
    """Shares of ``symbol`` the broker was asked for on ``role``'s behalf: its transfers (they happen when the
    symbol trades) and its part of what the sizing submitted of the one real order, split by the allocation's
    own rule (:func:`~vnpy_rotation.canary.netting.split`), so a full fill is a fill rate of 1."""
    netted = ledger.netted[symbol]
    residual = netted.residual()
    moved = abs(netted.parts.get(role, 0.0) - residual.get(role, 0.0))
    side = [r for r, v in residual.items() if v * netted.real > 0]
    if progress is None or role not in side:
        return moved
    submitted = sum(leg.submitted for leg in progress.legs
                    if leg.symbol == symbol and leg.cause == PLAN and leg.buy == (netted.real > 0))
    weights = [abs(residual[r]) for r in side]
    parts = split(min(submitted, sum(weights)), weights, lot)
    return moved + parts[side.index(role)]


def _record_execution(ledger: CanaryLedger, today: str, done: Allocation, progress: DayProgress | None,
                      expected: dict[str, tuple[float, float]], lots: dict[str, float]) -> None:
    """The candidate's part of today's plan: the value submitted for it and the value that moved (the fill
    rate, so lot rounding by the broker's sizing is not counted as unfilled), and the value of its real fills
    with their realised slippage (the fill price against the open, signed so that an adverse move is
    positive) and the cost model's (the expected fill price the orders were sized at, against the open)."""
    prices = {s: ledger.open_prices.get(s, math.nan) for s in ledger.netted}
    priced = [s for s, p in prices.items() if p == p and ledger.netted[s].parts.get(CANDIDATE)]
    asked = {s: _submitted(ledger, CANDIDATE, s, progress, lots[s]) for s in priced}
    wanted = float(sum(asked[s] * prices[s] for s in priced))
    if wanted > 0:
        got = float(sum(min(abs(_executed(done, CANDIDATE, s)), asked[s]) * prices[s] for s in priced))
        ledger.submitted.append((today, wanted, got))
    value = real = model = 0.0
    for move in done.for_version(CANDIDATE):
        open_price = ledger.open_prices.get(move.symbol, math.nan)
        if move.kind not in ("buy", "sell") or not open_price == open_price:
            continue
        shares, sign = abs(move.shares), (1.0 if move.kind == "buy" else -1.0)
        value += shares * move.price
        real += sign * (move.price - open_price) * shares  # adverse is positive: a better price counts against
        count, worth = expected.get(move.symbol, (0.0, 0.0))
        if count > 0:
            model += sign * (worth / count - open_price) * shares
    if value > 0:
        ledger.slippage.append((today, value, real, model))


def mark_close(ledger: CanaryLedger, day: date, closes: dict[str, float]) -> None:
    """Each book's equity at the close (a symbol without a close today is valued at its last one); the
    candidate's return of the session, split at the open so capital moved in by a rescale earns only the
    open-to-close part: r = (V_open / E_prev) · (E_close / (V_open + F)) − 1, with V_open the book at the open
    before the rescale and F the value moved in. A real book's first session (no previous close) has none."""
    today = day.isoformat()
    ledger.last_prices.update({s: p for s, p in closes.items() if p == p and p > 0})
    prices = dict(ledger.last_prices)
    candidate = ledger.books[CANDIDATE]
    previous = candidate.equity[-1][1] if candidate.equity and candidate.equity[-1][0] < today else None
    for book in ledger.books.values():
        book.mark(today, prices)
    if (ledger.returns and ledger.returns[-1][0] == today) or not previous or previous <= 0:
        return
    close = candidate.equity[-1][1]
    inflow = sum(amount for when, amount in candidate.flows if when == today)
    if candidate.paper or not inflow or ledger.open_day != today or not ledger.open_value == ledger.open_value:
        ledger.returns.append((today, close / previous - 1.0))
        return
    start = ledger.open_value + inflow
    ledger.returns.append((today, ledger.open_value / previous * (close / start if start > 0 else 1.0) - 1.0))
