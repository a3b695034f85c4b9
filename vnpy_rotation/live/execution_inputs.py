"""The execution statistics' inputs (:mod:`vnpy_rotation.attribution.execution`) from what the daemon records.

The daemon's journal (``OUT/journal/<day>.json``, one per closed session: ``{"strategy", "summary",
"progress"}`` with the :class:`~vnpy_rotation.live.plan.DayProgress` of the session) holds every leg as
sized at the open (what sizing cut and why), every order sent (volume, the limit, the price it was sized
at, the broker's status) and every fill (price, volume, fees, the broker's time). What it does not hold is
supplied by the caller:

- ``account``: the account the strategy trades (one journal folder per strategy instance);
- ``decision_prices``: (session, symbol) -> the close the session's target was decided on (the previous
  session's close, from the bar store);
- ``market``: (session, symbol) -> the session's open and VWAP (from the bar store: open, turnover / volume);
- ``sent``: session -> when its opening orders went out (the ``open`` phase's ``started_at`` in
  ``sessions.csv``), used for a leg's first order (reference ``strategy|day|leg|0``) when it carries no
  ``sent_at`` of its own: an upper bound on its time to fill, since orders go out at or after the phase starts
  (buys wait for the sells' cash); a resubmitted order without ``sent_at`` is not timed;
- ``denials``: the risk engine's denial log rows (``risk_denials.jsonl``): an order the broker port refused
  that matches one (strategy, symbol, side, volume, session) is a ``risk_denied`` refusal, else ``rejected``.

Refusals from the legs: a leg sized below what the target wanted is one refusal row per reason the sizing
gave (the matcher's reason names: ``t1_locked``, ``lot_rounding``, ``insufficient_cash``, ...), the cut
volume and its value (at the price the leg was sized at) on the first reason, the order they are checked in;
a leg that could not trade (``suspended``) refuses its whole volume.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import date, datetime
from typing import Any

from ..attribution.execution import ExecutionInputs, FillRow, MarketPrice, OrderRow, RefusalRow
from ..risk.events import RiskDenial
from .plan import INTENT, UNSENT, DayProgress, OrderRecord
from .ports import REJECTED
from .schedule import SHANGHAI


def _moment(text: str | None) -> datetime | None:
    """An ISO time; a naive one is Asia/Shanghai (the broker's clock), so every time compares."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=SHANGHAI)


def _aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment if moment.tzinfo is not None else moment.replace(tzinfo=SHANGHAI)


def from_journal(records: Iterable[Mapping[str, Any]], account: str, *,
                 decision_prices: Mapping[tuple[date, str], float] | None = None,
                 market: Mapping[tuple[date, str], MarketPrice] | None = None,
                 sent: Mapping[date, datetime] | None = None,
                 denials: Iterable[RiskDenial] = ()) -> ExecutionInputs:
    """Orders, fills and refusals of the journal ``records`` (see the module docstring)."""
    decision_prices, market, sent = decision_prices or {}, market or {}, sent or {}
    denied = [(d.strategy, d.vt_symbol, d.direction == "buy", float(d.volume), d.time.date()) for d in denials]
    orders: list[OrderRow] = []
    fills: list[FillRow] = []
    refusals: list[RefusalRow] = []
    for record in records:
        raw = record.get("progress")
        if not raw:
            continue
        strategy = str(record["strategy"])
        known = {f.name for f in fields(OrderRecord)}  # an order may carry more (its ``sent_at``)
        progress = DayProgress.from_json({**raw, "orders": [{k: v for k, v in o.items() if k in known}
                                                            for o in raw.get("orders", [])]})
        day = date.fromisoformat(progress.day)
        opened = _aware(sent.get(day))
        extra = {o.get("reference"): o for o in raw.get("orders", [])}
        for o in progress.orders:
            if o.state in (INTENT, UNSENT):  # never reached the broker
                continue
            if o.status == REJECTED and o.traded <= 0:
                key = (strategy, o.symbol, o.buy, float(o.volume), day)
                reason = "risk_denied" if key in denied else "rejected"
                if reason == "risk_denied":
                    denied.remove(key)
                refusals.append(RefusalRow(day, strategy, account, o.symbol, o.buy, reason, o.volume,
                                           o.volume * o.expected_price))
            # a leg's first order goes out in the opening round; a later one (a resubmission) at a time not recorded
            first = o.reference.rsplit("|", 1)[-1] == "0"
            at = _moment(extra.get(o.reference, {}).get("sent_at")) or (opened if first else None)
            orders.append(OrderRow(day, strategy, account, o.reference, o.symbol, o.buy, o.volume,
                                   decision_prices.get((day, o.symbol), math.nan), at))
        for f in progress.fills:
            fills.append(FillRow(day, strategy, account, f.reference, f.symbol, f.buy, f.price, f.volume,
                                 f.commission + f.stamp_duty + f.transfer_fee, _moment(f.time)))
        for leg in progress.legs:
            if not leg.cuts:
                continue
            refused = leg.wanted if "suspended" in leg.cuts else max(leg.wanted - leg.submitted, 0.0)
            price = leg.price if leg.price == leg.price else decision_prices.get((day, leg.symbol), math.nan)
            value = refused * price if price == price else 0.0
            for k, reason in enumerate(leg.cuts):
                first = k == 0 if "suspended" not in leg.cuts else reason == "suspended"
                refusals.append(RefusalRow(day, strategy, account, leg.symbol, leg.buy, reason,
                                           refused if first else 0.0, value if first else 0.0))
    return ExecutionInputs(tuple(orders), tuple(fills), tuple(refusals), dict(market))
