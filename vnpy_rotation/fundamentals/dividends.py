"""Baostock dividend records (``query_dividend_data``): parse, validate, store, read as distributions.

Layout (Baostock documentation, "除权除息信息" ``query_dividend_data``, www.baostock.com), one row per
plan: ``code`` (``sh.600000``), ``dividPreNoticeDate``, ``dividAgmPumDate``, ``dividPlanAnnounceDate``,
``dividPlanDate``, ``dividRegistDate`` (record date), ``dividOperateDate`` (ex-date),
``dividPayDate``, ``dividStockMarketDate``, ``dividCashPsBeforeTax`` (CNY per share before tax),
``dividCashPsAfterTax`` (text: may be two figures, e.g. ``1.8或2``, as the tax depends on the holder),
``dividStocksPs`` (送股 per share), ``dividCashStock``, ``dividReserveToStockPs`` (转增 per share).
Empty cells are zero amounts or unknown dates. A plan without an ex-date (not carried out yet, or
dropped) is not stored: only an ex-date changes holdings.

Stored in ``rotation_dividend`` (same database and prefix as the bars), one row per code and ex-date;
a later import of the same (code, ex-date) replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from peewee import DateField, FloatField
from vnpy.trader.database import BaseDatabase

from ..data.store import BarStore, _chunks, _Row
from ..errors import InputRejected, Problem
from ..market.instruments import lookup
from .formats import _columns, _flag_duplicates, _read, sniff_header
from .share_changes import BAOSTOCK, FACTOR, Distribution, merge, split_step

KIND = "dividends"
REQUIRED = ("code", "dividOperateDate", "dividCashPsBeforeTax", "dividStocksPs", "dividReserveToStockPs")


class DividendRow(_Row):
    ex_date = DateField()
    announced = DateField(null=True)  # dividPlanAnnounceDate
    cash = FloatField()  # CNY per share before tax
    bonus = FloatField()  # 送股 per share
    transfer = FloatField()  # 转增 per share

    class Meta:
        table_name = "rotation_dividend"
        indexes = ((("symbol", "exchange", "ex_date"), True),)


@dataclass(frozen=True)
class DividendFile:
    source: str
    frame: pd.DataFrame  # symbol, exchange, ex_date, announced, cash, bonus, transfer
    plans: int  # rows without an ex-date, not stored


def is_dividend_file(path: Path) -> bool:
    """Whether ``path``'s header is Baostock's dividend layout (it has ``code`` and ``dividOperateDate``)."""
    return {"code", "dividoperatedate"} <= set(_columns(sniff_header(path)))


def parse_dividends(path: Path) -> DividendFile:
    """Read and validate a dividend file; raise :class:`InputRejected` listing every problem."""
    raw = _read(path)
    missing = [c for c in REQUIRED if c.lower() not in raw.frame.columns]
    if missing:
        raise InputRejected(Problem(raw.source, raw.header_line, f"a Baostock dividend file needs the columns "
                                    f"{', '.join(REQUIRED)}; missing: {', '.join(missing)}"))
    carried = (raw.frame["dividoperatedate"] != "").to_numpy()
    symbol, exchange = raw.symbols("code")
    frame = pd.DataFrame({"line": raw.lines, "symbol": symbol, "exchange": exchange,
                          "ex_date": raw.dates("dividoperatedate", "%Y-%m-%d", required=False)})
    frame["announced"] = (raw.dates("dividplanannouncedate", "%Y-%m-%d", required=False)
                          if "dividplanannouncedate" in raw.frame.columns else pd.NaT)
    for column, name in (("dividcashpsbeforetax", "cash"), ("dividstocksps", "bonus"),
                         ("dividreservetostockps", "transfer")):
        values = raw.numbers(column)
        raw.flag((values < 0).to_numpy(), lambda i, c=column, v=values: f"negative {raw.names[c]} {v.iloc[i]:g}")
        frame[name] = values.fillna(0.0).to_numpy()  # an empty amount is none
    frame = frame[carried].reset_index(drop=True)
    _flag_duplicates(raw, frame, ["symbol", "exchange", "ex_date"], "dividend")
    if raw.problems:
        raise InputRejected(sorted(raw.problems, key=lambda p: p.line or 0))
    return DividendFile(raw.source, frame, int((~carried).sum()))


class DividendStore:
    """The ``rotation_dividend`` table; writes expect the caller's open transaction."""

    def __init__(self, database: BaseDatabase) -> None:
        self.db = database.db
        self.db.bind([DividendRow])
        self.db.create_tables([DividendRow])

    def save(self, frame: pd.DataFrame) -> None:
        rows = [{"symbol": r.symbol, "exchange": r.exchange, "ex_date": r.ex_date.date(),
                 "announced": None if pd.isna(r.announced) else r.announced.date(),
                 "cash": float(r.cash), "bonus": float(r.bonus), "transfer": float(r.transfer)}
                for r in frame.itertuples()]
        for chunk in _chunks(rows):
            DividendRow.insert_many(chunk).on_conflict_replace().execute()

    def records(self, vt_symbols: list[str] | None = None) -> dict[str, list[Distribution]]:
        """vt_symbol → its stored dividend records as distributions, by ex-date."""
        m = DividendRow
        query = m.select(m.symbol, m.exchange, m.ex_date, m.cash, m.bonus, m.transfer)
        if vt_symbols is not None:
            query = query.where(m.symbol.in_(sorted({s.partition(".")[0] for s in vt_symbols})))
        wanted = None if vt_symbols is None else set(vt_symbols)
        out: dict[str, list[Distribution]] = {}
        for code, exchange, ex_date, cash, bonus, transfer in self.db.execute_sql(*query.order_by(m.ex_date).sql()):
            vt_symbol = f"{code}.{exchange}"
            if wanted is None or vt_symbol in wanted:
                day = pd.Timestamp(str(ex_date)[:10]).date()
                out.setdefault(vt_symbol, []).append(Distribution(day, 1.0 + bonus + transfer, cash, BAOSTOCK))
        return out


def stored_records(database: BaseDatabase, vt_symbols: list[str] | None = None) -> dict[str, list[Distribution]]:
    """The imported dividend records of ``vt_symbols`` (all when None): what ``build_market_data`` takes."""
    return DividendStore(database).records(vt_symbols)





def stored_distributions(store: BarStore, vt_symbols: list[str]) -> dict[str, list[Distribution]]:
    """vt_symbol → every stored ex-date as a distribution, over the whole stored history.

    The stored adjustment factors are split with the close of the last bar before each ex-date (as
    ``build_market_data`` splits them on its days); an imported dividend record wins on its ex-date.
    """
    wanted = set(vt_symbols)
    events = store.all_events({s.partition(".")[0] for s in wanted})
    events = events[(events["symbol"] + "." + events["exchange"]).isin(wanted)]
    blocks = store.blocks(wanted) if len(events) else {}
    records = stored_records(store.database, vt_symbols)
    out: dict[str, list[Distribution]] = {}
    for (code, exchange), group in events.groupby(["symbol", "exchange"], sort=False):
        vt_symbol = f"{code}.{exchange}"
        instrument = lookup(vt_symbol)
        block = blocks.get(vt_symbol, {"day": np.array([], dtype=np.int32), "close": np.array([])})
        ex = pd.to_datetime(group["ex_date"].astype(str).str.slice(0, 10)).to_numpy().astype("datetime64[D]")
        before = np.searchsorted(block["day"], ex.astype(np.int64), side="left") - 1
        prev_close = np.full(len(ex), np.nan)
        prev_close[before >= 0] = block["close"][before[before >= 0]]
        derived = [Distribution(pd.Timestamp(day).date(),
                                *split_step(float(f), float(p), per_ten=instrument.is_stock, tick=instrument.rules.tick),
                                FACTOR) for day, f, p in zip(ex, group["factor"].to_numpy(dtype=float), prev_close)]
        out[vt_symbol] = merge(derived, records.pop(vt_symbol, ()))
    for vt_symbol, rows in records.items():  # records of symbols without stored factors
        out[vt_symbol] = list(rows)
    return out
