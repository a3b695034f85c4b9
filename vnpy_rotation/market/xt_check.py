"""Check the instrument table against what XT (xtquant / MiniQMT) says about a code.

Pure: the caller passes ``xtdata.get_instrument_detail(code)`` (fields ``InstrumentName``,
``PriceTick``, ``PreClose``, ``UpStopPrice``, ``DownStopPrice``, ``TradingDay``) and, where
available, ``xtdata.get_instrument_type(code)`` (the varieties that are true, e.g. ``{"fund": True,
"etf": True}``; ``{}`` for an unknown code).
A disagreement is a warning, not an error: XT's names change with renames, and its limit prices are
for one trading day; but a limit band or type that contradicts the table usually means a wrong kind.

:func:`check_contract` does the same for the ``ContractData`` vnpy_xt's gateway publishes (name and
price tick from the same instrument detail; vnpy's product passed as its value string, so this module
stays free of vnpy imports).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .instruments import Instrument

XT_MARKETS = {"SSE": "SH", "SZSE": "SZ", "BSE": "BJ"}


@dataclass(frozen=True)
class XtMismatch:
    """One field on which XT and the instrument table disagree."""

    vt_symbol: str
    field: str  # name, tick, price_limit, type
    table: str
    xt: str

    def __str__(self) -> str:
        return f"{self.vt_symbol}: XT says {self.field} {self.xt}, the instrument table says {self.table}"


def xt_code(instrument: Instrument) -> str:
    """XT's spelling of a code: ``159901.SZ``."""
    return f"{instrument.code}.{XT_MARKETS[instrument.exchange]}"


def _normal(name: str) -> str:
    """Names compared without spaces, case or full-width forms (XT and Tushare write ＥＴＦ, ＬＯＦ, ３００)."""
    return "".join(unicodedata.normalize("NFKC", name).split()).upper()


def _limit_price(pre_close: float, pct: float, tick: float) -> Decimal:
    """The exchange's limit price: pre-close × (1 ± pct), rounded half-up to the tick."""
    step = Decimal(str(tick))
    raw = Decimal(str(pre_close)) * (Decimal(1) + Decimal(str(pct)))
    return (raw / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step


def _trading_day(detail: Mapping[str, Any]) -> date | None:
    try:
        return datetime.strptime(str(detail.get("TradingDay") or ""), "%Y%m%d").date()
    except ValueError:
        return None


def check_instrument_detail(instrument: Instrument, detail: Mapping[str, Any] | None,
                            type_flags: Mapping[str, Any] | None = None) -> list[XtMismatch]:
    """Every field on which XT's instrument detail / type contradicts ``instrument``."""
    vt = instrument.vt_symbol
    if not detail:
        return [XtMismatch(vt, "listing", "a listed code", f"nothing for {xt_code(instrument)}")]
    found = _name_mismatch(instrument, str(detail.get("InstrumentName") or ""))
    found += _tick_mismatch(instrument, detail.get("PriceTick"))
    found += _limit_mismatch(instrument, detail)
    found += _type_mismatch(instrument, type_flags or {})
    return found


# vnpy_xt 1.4.6 (XtMdApi.query_stock_contracts) sets a contract's product from the code alone: SZ 00xxxx,
# SH 60/68xxxx and every BJ code are EQUITY, SZ 159xxx and SH 51xxxx FUND, and everything else INDEX,
# ChiNext stocks (300xxx), SH 56/58xxxx ETFs and SZ 16xxxx LOFs included. INDEX therefore says nothing.
PRODUCT_CLASSES = {"Stock": "stock", "Fund": "fund", "ETF": "fund"}


def check_contract(instrument: Instrument | None, name: str, product: str,
                   pricetick: float | None) -> list[XtMismatch]:
    """Every field on which a gateway's contract contradicts ``instrument``; nothing for an unknown code.

    ``product`` is vnpy's ``Product`` value (``"Stock"``, ``"Fund"``, ``"ETF"``, ``"Index"`` ...).
    """
    if instrument is None:
        return []
    found = _name_mismatch(instrument, name)
    found += _tick_mismatch(instrument, pricetick)
    found += _class_mismatch(instrument, PRODUCT_CLASSES.get(product))
    return found


def _name_mismatch(instrument: Instrument, name: str) -> list[XtMismatch]:
    ours, theirs = _normal(instrument.name), _normal(name)
    if ours and theirs and ours not in theirs and theirs not in ours:  # "深证100ETF" in "深证100ETF易方达"
        return [XtMismatch(instrument.vt_symbol, "name", instrument.name, name)]
    return []


def _tick_mismatch(instrument: Instrument, tick: Any) -> list[XtMismatch]:
    if tick and abs(float(tick) - instrument.rules.tick) > 1e-9:
        return [XtMismatch(instrument.vt_symbol, "tick", f"{instrument.rules.tick:g}", f"{float(tick):g}")]
    return []


def _limit_mismatch(instrument: Instrument, detail: Mapping[str, Any]) -> list[XtMismatch]:
    pre, up = detail.get("PreClose"), detail.get("UpStopPrice")
    day = _trading_day(detail)
    if not pre or not up or day is None or not instrument.rules.tradable:
        return []
    pct = instrument.price_limit(day)
    if pct is None:
        return []
    tick = instrument.rules.tick
    expected = _limit_price(float(pre), pct, tick)
    if abs(Decimal(str(up)) - expected) <= Decimal(str(tick)) / 2:
        return []
    implied = float(up) / float(pre) - 1
    return [XtMismatch(instrument.vt_symbol, "price_limit", f"±{pct:.0%} (limit-up {expected})",
                       f"limit-up {up} on pre-close {pre} (+{implied:.1%}) on {day}")]


def _class_mismatch(instrument: Instrument, xt_class: str | None) -> list[XtMismatch]:
    """XT's broad class (``stock``, ``fund``, ``index``; None: unknown) against the table's kind."""
    kind = instrument.kind
    agrees = {"stock": kind.is_stock, "fund": kind.is_fund, "index": kind.value == "index"}
    if xt_class is None or agrees[xt_class]:
        return []
    return [XtMismatch(instrument.vt_symbol, "type", kind.value, xt_class)]


def _type_mismatch(instrument: Instrument, flags: Mapping[str, Any]) -> list[XtMismatch]:
    kind = instrument.kind
    for xt_class, flagged in (("stock", flags.get("stock")), ("fund", flags.get("fund") or flags.get("etf")),
                              ("index", flags.get("index"))):
        if flagged:
            found = _class_mismatch(instrument, xt_class)
            if found:
                return found
    # xtquant returns only the varieties that are true: a fund without "etf" is not an ETF.
    if flags.get("fund") and not flags.get("etf") and kind.value.endswith("_etf"):
        return [XtMismatch(instrument.vt_symbol, "type", kind.value, "a fund that is not an ETF")]
    return []
