"""Netting two (or more) versions' trades into one order per symbol, and allocating what really happened back.

During a canary the champion and the candidate share ONE broker account. Each session every version computes a
signed delta per symbol from its own book (+ buy, - sell). ``net`` turns them into one real order per symbol:
where deltas offset, the offsetting shares move between the books with no order (a ``Transfer``); only the
residual is sent. After the session ``allocate`` books the broker's fills back to the versions so each version's
holdings, cash, fees and P&L stay separate and the books sum exactly to the account (``reconcile`` checks it).

Units: shares in shares, prices in CNY per share, cash and fees in CNY, days as ISO dates. ``lots`` maps a symbol
to its board lot in shares (100 for most A-shares and ETFs, 200 for STAR stocks).

The rules (docs/canary/netting.md has a worked example):

a) Transfers happen at the session's fill price: the value-weighted price of the symbol's real fills today, or the
   ``prices`` entry (the open, or the undisturbed execution price) when nothing traded. With no price (a suspended
   symbol) there is no transfer: the versions keep their shares and try again next session. A transfer pays no fee.
   The giving version's oldest lots move and keep their real purchase date, so T+1 follows the shares.
b) A real plan fill is split among the versions whose residual parts (after transfers) are on its side, pro rata to
   those residual parts, in whole lots for all but one version: the one with the largest part takes the remainder,
   so no odd lots appear from rounding. A partial fill is split the same way. No version gets more than its part.
c) A real fill's commission, stamp duty, transfer fee and slippage are each split pro rata to each version's share
   of that fill's volume (the largest share takes the remainder, so the parts sum exactly to the fill's).
d) A risk sale (``RealFill.risk``: a sale no version asked for) is split pro rata to the versions' holdings of the
   symbol before it (after the session's transfers and plan fills), in whole lots as in b), no version selling more
   than its sellable shares (T+1), and sold from each book's sellable lots, oldest first.
e) Cash moves with every transfer and fill: a buyer pays the traded value plus its fees, a seller receives the
   traded value less its fees; a transfer's target pays the source ``shares * price``. Each book's cash is its own
   (it may dip below zero by a transfer priced above the open the buyer sized at; the account's sum is unchanged).
   Slippage is recorded in the books' fees but moves no cash: it is already in the traded value.

Re-scale (``rescale``) when the stage changes: each version's target is its share of the versions' total equity at
``prices``. A version above its target gives the difference ``D`` as a pro-rata slice of its book: of each holding
``q`` the fraction ``D / equity``, rounded down to whole lots, and the rest of ``D`` in cash. If its cash cannot
cover that rest, the slice is taken in whole shares, and failing that exactly (fractional shares). Versions below
their target receive the slices pro rata to their shortfall. Both books therefore scale by the same rule, and each
version's equity equals its share of the total exactly at ``prices``; the moved value is recorded as a flow so
the versions' returns exclude it.

``allocate`` and ``rescale`` change the books all or nothing: a refusal (``ValueError``) leaves them as they were.
Only the real books (``paper=False``) are in the broker account; a shadow-stage candidate is paper-filled with
``paper_fill`` and left out of ``allocate``, ``rescale`` and ``reconcile``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields

from vnpy_rotation.canary.books import EPS, Lot, VersionBook, transfer

MONEY_TOLERANCE = 0.01  # CNY: the default agreement of the books' cash with the broker's (one cent)


@dataclass(frozen=True)
class Transfer:
    """Shares of one symbol moving from one version's book to another's, with no order and no fee."""

    source: str
    target: str
    shares: float


@dataclass(frozen=True)
class Netted:
    """One symbol's netted plan: the one real order and how the versions' deltas make it up."""

    symbol: str
    real: float  # signed shares of the one real order (+ buy, - sell, 0 none)
    parts: dict[str, float]  # each version's signed delta as asked
    transfers: tuple[Transfer, ...]  # the offsetting shares, moved between the books instead of traded

    def residual(self) -> dict[str, float]:
        """Each version's signed part of the real order: its delta less what transfers cover."""
        left = dict(self.parts)
        for item in self.transfers:
            left[item.source] = left.get(item.source, 0.0) + item.shares
            left[item.target] = left.get(item.target, 0.0) - item.shares
        return left


@dataclass(frozen=True)
class RealFill:
    """One real fill of the session in the shared broker account."""

    symbol: str
    buy: bool
    volume: float  # shares
    value: float  # CNY traded (volume * price), before fees
    commission: float = 0.0  # CNY
    stamp_duty: float = 0.0  # CNY
    transfer_fee: float = 0.0  # CNY
    slippage: float = 0.0  # CNY against the undisturbed price (recorded, not paid: it is in the value)
    risk: bool = False  # a risk-engine sale that no version asked for


@dataclass(frozen=True)
class Movement:
    """What moved into (+) or out of (-) one version's book."""

    version: str
    symbol: str  # "" for a cash-only movement
    kind: str  # buy, sell, risk_sell, transfer_in, transfer_out, rescale_in, rescale_out, paper_buy, paper_sell
    shares: float  # signed shares into the book
    price: float  # CNY per share (nan for a cash-only movement)
    cash: float  # signed CNY into the book, fees included
    commission: float = 0.0
    stamp_duty: float = 0.0
    transfer_fee: float = 0.0
    slippage: float = 0.0


@dataclass(frozen=True)
class Allocation:
    """What a session's (or a re-scale's) bookkeeping moved, per version, for the journal and the tests."""

    day: str
    moves: tuple[Movement, ...]
    skipped: tuple[str, ...] = ()  # symbols whose transfers did not happen (no price: suspended)

    def for_version(self, version: str) -> tuple[Movement, ...]:
        return tuple(move for move in self.moves if move.version == version)

    def shares(self, version: str, symbol: str) -> float:
        """Net shares of ``symbol`` that moved into ``version``'s book."""
        return sum(move.shares for move in self.moves if move.version == version and move.symbol == symbol)

    def cash(self, version: str) -> float:
        """Net CNY that moved into ``version``'s book."""
        return sum(move.cash for move in self.moves if move.version == version)


@dataclass(frozen=True)
class Difference:
    """One disagreement between the books' sum and the broker account."""

    item: str  # a symbol, or "cash"
    books: float  # the real books' sum (shares, or CNY for cash)
    broker: float  # the broker's figure

    @property
    def gap(self) -> float:
        return self.books - self.broker


# --------------------------------------------------------------------------- splitting

def split(total: float, weights: Sequence[float], unit: float, caps: Sequence[float] | None = None) -> list[float]:
    """Split ``total`` shares pro rata to ``weights``: every part but the largest weight's (the first on a tie) is
    rounded down to a whole ``unit`` (0: not rounded); the largest takes the remainder. No part exceeds its cap
    (``caps``, default the weights): an excess goes to the others, whole units first, larger weights first.
    Requires ``total <= sum(caps)``."""
    count = len(weights)
    limits = list(weights if caps is None else caps)
    parts = [0.0] * count
    weight = float(sum(weights))
    if total <= EPS or weight <= EPS:
        return parts
    if total > sum(limits) + EPS:
        raise ValueError(f"cannot split {total:g} shares within caps summing to {sum(limits):g}")
    largest = max(range(count), key=lambda index: weights[index])
    for index in range(count):
        if index != largest:
            raw = total * weights[index] / weight
            parts[index] = min(math.floor(raw / unit + EPS) * unit if unit > 0 else raw, limits[index])
    parts[largest] = total - sum(parts)
    excess = parts[largest] - limits[largest]
    if excess > EPS:
        parts[largest] = limits[largest]
        order = sorted((index for index in range(count) if index != largest), key=lambda index: -weights[index])
        for step in (unit, 0.0) if unit > 0 else (0.0,):  # whole units first, then whatever is left
            for index in order:
                room = min(excess, limits[index] - parts[index])
                give = math.floor(room / step + EPS) * step if step > 0 else room
                if give > EPS:
                    parts[index] += give
                    excess -= give
    return parts


def _money(amount: float, fractions: Sequence[float]) -> list[float]:
    """``amount`` split by ``fractions`` (summing to 1); the largest fraction takes the remainder (exact sum)."""
    largest = max(range(len(fractions)), key=lambda index: fractions[index])
    parts = [amount * fraction for fraction in fractions]
    parts[largest] = amount - sum(part for index, part in enumerate(parts) if index != largest)
    return parts


# --------------------------------------------------------------------------- netting

def net(deltas: Mapping[str, Mapping[str, float]], lots: Mapping[str, float] | None = None) -> dict[str, Netted]:
    """Net the versions' signed deltas (``deltas[version][symbol]``, shares) into one real order per symbol.

    Sells and buys of a symbol offset up to ``min(total sold, total bought)``; those shares move between the books
    (``transfers``) and only the residual is a real order. The side that is fully offset gives or takes its whole
    delta; on the other side the offset is shared pro rata to the deltas with ``split`` (whole shares, or whole
    ``lots[symbol]`` when given, the largest delta taking the remainder). Returns every symbol with a non-zero delta.
    """
    symbols: list[str] = []
    for per_symbol in deltas.values():
        symbols.extend(symbol for symbol, delta in per_symbol.items() if abs(delta) > EPS and symbol not in symbols)
    out: dict[str, Netted] = {}
    for symbol in symbols:
        parts = {version: float(per_symbol.get(symbol, 0.0)) for version, per_symbol in deltas.items()}
        sellers = [version for version, delta in parts.items() if delta < -EPS]
        buyers = [version for version, delta in parts.items() if delta > EPS]
        sold = sum(-parts[version] for version in sellers)
        bought = sum(parts[version] for version in buyers)
        offset = min(sold, bought)
        unit = float(lots.get(symbol, 1.0)) if lots is not None else 1.0
        give = split(offset, [-parts[version] for version in sellers], unit)
        take = split(offset, [parts[version] for version in buyers], unit)
        transfers: list[Transfer] = []
        seller, buyer = 0, 0
        while seller < len(sellers) and buyer < len(buyers):  # pair givers and takers in order
            shares = min(give[seller], take[buyer])
            if shares > EPS:
                transfers.append(Transfer(sellers[seller], buyers[buyer], shares))
                give[seller] -= shares
                take[buyer] -= shares
            if give[seller] <= EPS:
                seller += 1
            if take[buyer] <= EPS:
                buyer += 1
        out[symbol] = Netted(symbol, bought - sold, {v: d for v, d in parts.items() if abs(d) > EPS},
                             tuple(transfers))
    return out


# --------------------------------------------------------------------------- allocation

@contextmanager
def _all_or_nothing(books: Mapping[str, VersionBook]) -> Iterator[None]:
    """Restore every book as it was when the block raises: a refused session leaves no half-booked state."""
    saved = {version: book.to_dict() for version, book in books.items()}
    try:
        yield
    except BaseException:
        for version, book in books.items():
            old = VersionBook.from_dict(saved[version])
            for item in fields(VersionBook):
                setattr(book, item.name, getattr(old, item.name))
        raise


def _unit(lots: Mapping[str, float], symbol: str) -> float:
    if symbol not in lots:
        raise ValueError(f"no board lot given for {symbol}")
    return float(lots[symbol])


def _real_books(books: Mapping[str, VersionBook]) -> dict[str, VersionBook]:
    return {version: book for version, book in books.items() if not book.paper}


def _sell(book: VersionBook, symbol: str, shares: float, day: str) -> None:
    """Remove sold shares: sellable lots (bought before ``day``) first; the broker filled the sale, so any rest is
    a T+0 fund's shares bought today."""
    first = min(shares, book.sellable(symbol, day))
    book.take(symbol, first, before=day)
    book.take(symbol, shares - first)


def _book_fills(books: Mapping[str, VersionBook], symbol: str, fills: Sequence[RealFill], buy: bool,
                versions: Sequence[str], amounts: Sequence[float], day: str, kind: str) -> list[Movement]:
    """Book ``fills`` (one symbol, one side) into the versions' books, ``amounts[i]`` shares to ``versions[i]``."""
    volume = sum(fill.volume for fill in fills)
    chosen = [(version, amount) for version, amount in zip(versions, amounts) if amount > EPS]
    if not chosen or volume <= EPS:
        return []
    fractions = [amount / volume for _, amount in chosen]
    totals = [sum(getattr(fill, name) for fill in fills)
              for name in ("value", "commission", "stamp_duty", "transfer_fee", "slippage")]
    shares_of = [_money(total, fractions) for total in totals]
    moves = []
    for index, (version, amount) in enumerate(chosen):
        book = books[version]
        value, commission, stamp, transfer_fee, slippage = (column[index] for column in shares_of)
        price = value / amount
        if buy:
            book.add(symbol, Lot(amount, day, price))
            book.cash -= value
        else:
            _sell(book, symbol, amount, day)
            book.cash += value
        book.charge(commission, stamp, transfer_fee, slippage)
        sign = 1.0 if buy else -1.0
        moves.append(Movement(version, symbol, kind, sign * amount, price,
                              -sign * value - commission - stamp - transfer_fee,
                              commission, stamp, transfer_fee, slippage))
    return moves


def allocate(books: Mapping[str, VersionBook], netted: Mapping[str, Netted], fills: Sequence[RealFill],
             prices: Mapping[str, float], day: str, lots: Mapping[str, float]) -> Allocation:
    """Book the session into the versions' real books (rules a-e in the module docstring), in this order per
    symbol: the plan's real fills, then the transfers, then the risk sales. ``netted`` is what ``net`` returned
    for the session, ``fills`` every real fill of the session, ``prices`` the open (or undisturbed execution)
    prices, ``day`` the session, ``lots`` the board lot per symbol. Mutates ``books``; returns what moved.

    Refused with ``ValueError``, the books left as they were: a plan fill with no plan, on the side opposite the
    plan, or beyond the plan's residual; a risk buy; a paper book in a plan; shares a book lacks.
    """
    with _all_or_nothing(books):
        return _allocate(books, netted, fills, prices, day, lots)


def _allocate(books: Mapping[str, VersionBook], netted: Mapping[str, Netted], fills: Sequence[RealFill],
              prices: Mapping[str, float], day: str, lots: Mapping[str, float]) -> Allocation:
    real_books = _real_books(books)
    symbols = list(netted)
    symbols.extend(fill.symbol for fill in fills if fill.symbol not in symbols)
    for planned in netted.values():
        for version in planned.parts:
            if version not in real_books:
                raise ValueError(f"{planned.symbol}: version {version} has no real book")
    moves: list[Movement] = []
    skipped: list[str] = []
    for symbol in symbols:
        mine = [fill for fill in fills if fill.symbol == symbol]
        plan_fills = [fill for fill in mine if not fill.risk]
        risk_fills = [fill for fill in mine if fill.risk]
        if any(fill.buy for fill in risk_fills):
            raise ValueError(f"{symbol}: a risk fill is a sale, got a buy")
        plan = netted.get(symbol)
        if plan_fills:
            if plan is None or abs(plan.real) <= EPS:
                raise ValueError(f"{symbol}: real fills but no real order in the plan")
            buy = plan.real > 0
            if any(fill.buy != buy for fill in plan_fills):
                raise ValueError(f"{symbol}: a plan fill on the side opposite the plan's real order")
            residual = plan.residual()
            versions = [version for version, part in residual.items() if (part > EPS if buy else part < -EPS)]
            wanted = [abs(residual[version]) for version in versions]
            amounts = split(sum(fill.volume for fill in plan_fills), wanted, _unit(lots, symbol))
            moves += _book_fills(real_books, symbol, plan_fills, buy, versions, amounts, day,
                                 "buy" if buy else "sell")
        if plan is not None and plan.transfers:
            price = _transfer_price(mine, prices.get(symbol, math.nan))
            if price is None:
                skipped.append(symbol)
            else:
                for item in plan.transfers:
                    transfer(real_books[item.source], real_books[item.target], symbol, item.shares, price)
                    cash = item.shares * price
                    moves.append(Movement(item.source, symbol, "transfer_out", -item.shares, price, cash))
                    moves.append(Movement(item.target, symbol, "transfer_in", item.shares, price, -cash))
        if risk_fills:
            versions = list(real_books)
            held = [real_books[version].shares(symbol) for version in versions]
            sellable = [real_books[version].sellable(symbol, day) for version in versions]
            volume = sum(fill.volume for fill in risk_fills)
            # no version sells more than it may (T+1) unless the broker sold more than the books hold sellable
            # (a T+0 fund): then up to its holdings
            caps = sellable if sum(sellable) >= volume - EPS else held
            amounts = split(volume, held, _unit(lots, symbol), caps)
            moves += _book_fills(real_books, symbol, risk_fills, False, versions, amounts, day, "risk_sell")
    return Allocation(day, tuple(moves), tuple(skipped))


def _transfer_price(fills: Sequence[RealFill], fallback: float) -> float | None:
    """Rule a): the value-weighted price of the symbol's fills today, else the fallback price, else none."""
    volume = sum(fill.volume for fill in fills)
    if volume > EPS:
        return sum(fill.value for fill in fills) / volume
    return fallback if math.isfinite(fallback) and fallback > 0 else None


# --------------------------------------------------------------------------- re-scale

def rescale(books: Mapping[str, VersionBook], shares: Mapping[str, float], prices: Mapping[str, float], day: str,
            lots: Mapping[str, float]) -> Allocation:
    """Move value between the real books so each version's equity is ``shares[version]`` of their total at
    ``prices`` (the rule is in the module docstring). ``shares`` must name every real book, be >= 0 and sum to 1.
    ``day`` is the session the re-scale opens (a re-scale decided after a close belongs to the next session: a day
    a book has already marked is refused, since the moved capital must count in the next session's return).
    Mutates ``books`` (all or nothing); returns what moved (the coordinator may ignore it)."""
    with _all_or_nothing(books):
        return _rescale(books, shares, prices, day, lots)


def _rescale(books: Mapping[str, VersionBook], shares: Mapping[str, float], prices: Mapping[str, float], day: str,
             lots: Mapping[str, float]) -> Allocation:
    real_books = _real_books(books)
    for book in real_books.values():
        if book.equity and book.equity[-1][0] >= day:
            raise ValueError(f"book {book.version} is marked on {book.equity[-1][0]}: a re-scale on {day} is too late")
    if set(shares) != set(real_books):
        raise ValueError(f"re-scale shares name {sorted(shares)}, the real books are {sorted(real_books)}")
    if any(share < 0 for share in shares.values()) or abs(sum(shares.values()) - 1.0) > 1e-9:
        raise ValueError(f"re-scale shares must be >= 0 and sum to 1, got {dict(shares)}")
    equity = {version: book.equity_at(prices) for version, book in real_books.items()}
    total = sum(equity.values())
    gap = {version: equity[version] - shares[version] * total for version in real_books}
    givers = [version for version in real_books if gap[version] > EPS * max(1.0, abs(total))]
    takers = [version for version in real_books if gap[version] < -EPS * max(1.0, abs(total))]
    moves: list[Movement] = []
    if not givers or not takers:
        return Allocation(day, ())
    need = [-gap[version] for version in takers]
    portions = [amount / sum(need) for amount in need]
    for giver in givers:
        book = real_books[giver]
        slice_shares = _slice(book, gap[giver] / equity[giver], gap[giver], prices, lots)
        parts = {symbol: split(amount, portions, _slice_unit(amount, lots, symbol), [math.inf] * len(takers))
                 for symbol, amount in slice_shares.items()}
        values = [gap[giver] * portion for portion in portions]
        for index, taker in enumerate(takers):
            target = real_books[taker]
            moved = 0.0
            for symbol, split_shares in parts.items():
                amount = split_shares[index]
                if amount <= EPS:
                    continue
                price = prices[symbol]
                transfer(book, target, symbol, amount, price)  # the taker pays here; handed back below
                moved += amount * price
                moves.append(Movement(giver, symbol, "rescale_out", -amount, price, 0.0))
                moves.append(Movement(taker, symbol, "rescale_in", amount, price, 0.0))
            book.cash -= values[index]  # the transfers' payments back, plus the rest of the slice in cash
            target.cash += values[index]
            cash = values[index] - moved
            if abs(cash) > EPS:
                moves.append(Movement(giver, "", "rescale_out", 0.0, math.nan, -cash))
                moves.append(Movement(taker, "", "rescale_in", 0.0, math.nan, cash))
            book.flows.append((day, -values[index]))
            target.flows.append((day, values[index]))
    return Allocation(day, tuple(moves))


def _slice_unit(amount: float, lots: Mapping[str, float], symbol: str) -> float:
    """Split a slice among takers in whole lots when the slice is whole lots, else in whole shares, else exactly."""
    lot = _unit(lots, symbol)
    if abs(amount / lot - round(amount / lot)) < EPS:
        return lot
    return 1.0 if abs(amount - round(amount)) < EPS else 0.0


def _slice(book: VersionBook, fraction: float, value: float, prices: Mapping[str, float],
           lots: Mapping[str, float]) -> dict[str, float]:
    """The shares per symbol and the cash a giver hands over: ``fraction`` of each holding in whole lots, the rest
    of ``value`` in cash; whole shares when its cash cannot cover that rest; exactly when even that fails."""
    holdings = book.holdings()
    for rounding in ("lot", "share"):
        slice_shares = {}
        for symbol, held in holdings.items():
            step = _unit(lots, symbol) if rounding == "lot" else 1.0
            slice_shares[symbol] = min(math.floor(held * fraction / step + EPS) * step, held)
        cash = value - sum(amount * prices[symbol] for symbol, amount in slice_shares.items())
        if -EPS <= cash <= book.cash + EPS:
            return {symbol: amount for symbol, amount in slice_shares.items() if amount > EPS}
    return {symbol: held * fraction for symbol, held in holdings.items()}


# --------------------------------------------------------------------------- reconcile, paper

def reconcile(books: Mapping[str, VersionBook], broker_holdings: Mapping[str, float], broker_cash: float,
              tolerance: float = MONEY_TOLERANCE) -> list[Difference]:
    """The real books' summed shares per symbol and cash against the broker's; empty when every figure agrees
    within ``tolerance`` (shares, or CNY for cash). Paper books are not in the account and are left out."""
    real_books = _real_books(books)
    summed: dict[str, float] = {}
    for book in real_books.values():
        for symbol, held in book.holdings().items():
            summed[symbol] = summed.get(symbol, 0.0) + held
    out = []
    for symbol in sorted(set(summed) | {symbol for symbol, held in broker_holdings.items() if abs(held) > EPS}):
        mine, theirs = summed.get(symbol, 0.0), float(broker_holdings.get(symbol, 0.0))
        if abs(mine - theirs) > tolerance:
            out.append(Difference(symbol, mine, theirs))
    cash = sum(book.cash for book in real_books.values())
    if abs(cash - broker_cash) > tolerance:
        out.append(Difference("cash", cash, broker_cash))
    return out


def paper_fill(book: VersionBook, symbol: str, buy: bool, volume: float, price: float, commission: float,
               stamp_duty: float, transfer_fee: float, slippage: float, day: str, t0: bool = False) -> Movement:
    """Paper-fill the shadow stage's candidate beside the champion, without an order: the same bookkeeping as a
    real fill (a buy adds a lot bought ``day``; a sale takes sellable lots, oldest first, all lots when ``t0``).
    Marks the book ``paper``."""
    book.paper = True
    value = volume * price
    if buy:
        book.add(symbol, Lot(volume, day, price))
        book.cash -= value
    else:
        book.take(symbol, volume, before=None if t0 else day)
        book.cash += value
    book.charge(commission, stamp_duty, transfer_fee, slippage)
    sign = 1.0 if buy else -1.0
    return Movement(book.version, symbol, "paper_buy" if buy else "paper_sell", sign * volume, price,
                    -sign * value - commission - stamp_duty - transfer_fee, commission, stamp_duty, transfer_fee,
                    slippage)
