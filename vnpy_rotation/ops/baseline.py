"""The regression baseline of a strategy version: what its backtest filled and the bars it saw, day by day.

A version (``rotation_version``) stores its daily equity and metrics; the daily regression also needs the fills
and enough of the bars to say on which day of which symbol the data changed. Those live in their own
insert-only table, ``rotation_baseline``, keyed by version id and written by ``run.py version create``:

- the version table and the way its ids are computed stay as they are (stored versions keep their ids);
- a version stored before baselines existed simply has no row: the regression compares its equity and metrics
  only and says so; creating the same content again (same id: same bars, code and config) adds its row.

The bar fingerprint is one 32-bit hash per day and symbol of (open, high, low, close, volume, turnover) over the
backtest's whole input, warm-up included: 4 bytes a cell (12 ETFs × 1 871 days: 150 KB stored), enough to name the first
changed day of each symbol.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from peewee import BooleanField, CharField, Database, Model, TextField

from ..data.market_data import MarketData
from .version_store import open_tables

BASELINE_TABLE = "rotation_baseline"
FINGERPRINT_FIELDS = ("open", "high", "low", "close", "volume", "turnover")
# An experiment's data signature also covers the corporate actions a simulation applies (adjusted prices,
# splits and dividends): a revised factor changes results as surely as a revised close.
SIGNATURE_FIELDS = (*FINGERPRINT_FIELDS, "factor", "split", "dividend")
FILL_KEY = ("date", "vt_symbol", "direction")
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)  # 64-bit FNV-1a, applied to whole 8-byte words
_FNV_PRIME = np.uint64(0x100000001B3)


class BaselineRow(Model):
    version = CharField(primary_key=True)  # the version id
    open_end = BooleanField()  # the window's end was not given: the window grows with new data
    data_end = CharField()  # the last day of bars the backtest read
    fills_json = TextField()  # [[date, vt_symbol, direction, price, volume], ...]
    bars_json = TextField()  # {"days": [...], "symbols": {vt_symbol: base64 of uint32 per day}}
    created_at = CharField()

    class Meta:
        table_name = BASELINE_TABLE


@dataclass(frozen=True)
class Baseline:
    version: str
    open_end: bool
    data_end: date
    fills: pd.DataFrame  # FILL_KEY + price, volume
    days: pd.DatetimeIndex
    fingerprints: dict[str, np.ndarray]  # vt_symbol → uint32 per day of ``days``


class BaselineStore:
    """Reads and inserts baseline rows on ``db`` (default: vnpy's database, beside the versions)."""

    def __init__(self, db: Database | None = None) -> None:
        open_tables((BaselineRow,), db)

    def get(self, version_id: str) -> Baseline | None:
        row: dict[str, Any] | None = BaselineRow.select().where(BaselineRow.version == version_id).dicts().first()
        if row is None:
            return None
        bars = json.loads(row["bars_json"])
        fills = pd.DataFrame(json.loads(row["fills_json"]), columns=[*FILL_KEY, "price", "volume"])
        return Baseline(row["version"], bool(row["open_end"]), date.fromisoformat(row["data_end"]), fills,
                        pd.DatetimeIndex(bars["days"]),
                        {s: np.frombuffer(base64.b64decode(b), dtype="<u4") for s, b in bars["symbols"].items()})

    def save(self, version_id: str, open_end: bool, trades: pd.DataFrame, market: MarketData, created_at: str) -> bool:
        """Insert the baseline of ``version_id`` unless it has one (a baseline is never replaced)."""
        if self.get(version_id) is not None:
            return False
        fills = fills_frame(trades)
        BaselineRow.insert(version=version_id, open_end=open_end, data_end=str(market.days[-1].date()),
                           fills_json=json.dumps(fills.to_numpy().tolist(), default=str),
                           bars_json=json.dumps(encode_fingerprints(market)), created_at=created_at).execute()
        return True


def fills_frame(trades: pd.DataFrame) -> pd.DataFrame:
    """A backtest's (or a replay's) trades as ``date, vt_symbol, direction, price, volume`` rows."""
    days = pd.to_datetime(trades["datetime"]).dt.strftime("%Y-%m-%d") if len(trades) else pd.Series([], dtype=str)
    return pd.DataFrame({"date": days.to_numpy(), "vt_symbol": trades["vt_symbol"].to_numpy(),
                         "direction": trades["direction"].to_numpy(),
                         "price": trades["price"].to_numpy(dtype=float),
                         "volume": trades["volume"].to_numpy(dtype=float)})


def bar_fingerprints(market: MarketData, fields: tuple[str, ...] = FINGERPRINT_FIELDS) -> np.ndarray:
    """days × symbols uint32: a hash of each bar's ``fields`` (open, high, low, close, volume, turnover); no bar
    hashes as every field -1. Vectorised over days and symbols (a loop over the fields only)."""
    h = np.full(market.close.shape, _FNV_OFFSET, dtype=np.uint64)
    for name in fields:
        words = np.ascontiguousarray(np.nan_to_num(getattr(market, name).astype(np.float64), nan=-1.0)).view(np.uint64)
        h = (h ^ words) * _FNV_PRIME  # wraps modulo 2**64, as FNV intends
    return (h ^ (h >> np.uint64(32))).astype(np.uint32)


def data_signature(market: MarketData) -> tuple[int, str]:
    """(symbols with a bar, 16 hex digits) of every bar of ``market``: its days, symbols and each bar's
    :data:`SIGNATURE_FIELDS`. Give it everything a run read, warm-up included, so any revised bar changes it."""
    prints = bar_fingerprints(market, SIGNATURE_FIELDS)
    head = json.dumps([[str(d.date()) for d in market.days[[0, -1]]] if len(market.days) else [], len(market.days),
                       list(market.symbols)])
    symbols = int(np.isfinite(market.close).any(axis=0).sum())
    return symbols, hashlib.sha256(head.encode("utf-8") + prints.astype("<u4").tobytes()).hexdigest()[:16]


def encode_fingerprints(market: MarketData) -> dict[str, Any]:
    prints = bar_fingerprints(market)
    return {"days": [str(d.date()) for d in market.days],
            "symbols": {s: base64.b64encode(prints[:, j].astype("<u4").tobytes()).decode("ascii")
                        for j, s in enumerate(market.symbols)}}


@dataclass(frozen=True)
class ChangedBars:
    vt_symbol: str
    first_day: date
    days: int  # how many days of the compared span differ


def changed_bars(baseline: Baseline, market: MarketData) -> list[ChangedBars]:
    """Symbols whose bars differ from the baseline's over the baseline's days (a revised, added or removed bar),
    each with its first changed day, earliest first."""
    now = bar_fingerprints(market)
    span = market.days[market.days <= baseline.days[-1]]
    changed = []
    for j, symbol in enumerate(market.symbols):
        stored = baseline.fingerprints.get(symbol)
        if stored is None:
            continue  # a symbol the version did not read: not part of its evidence
        old = pd.Series(stored, index=baseline.days)
        new = pd.Series(now[: len(span), j], index=span)
        both = old.index.union(new.index)
        differs = old.reindex(both).to_numpy(dtype=float) != new.reindex(both).to_numpy(dtype=float)
        if differs.any():
            changed.append(ChangedBars(symbol, both[differs.argmax()].date(), int(differs.sum())))
    return sorted(changed, key=lambda c: (c.first_day, c.vt_symbol))


def new_bars(baseline_end: date, market: MarketData) -> tuple[list[str], date | None, date | None]:
    """Symbols with bars after ``baseline_end`` in ``market``, and the first and last such day."""
    after = market.days > pd.Timestamp(baseline_end)
    has = np.isfinite(market.close[after])
    if not has.any():
        return [], None, None
    days = market.days[after][has.any(axis=1)]
    return [s for s, any_bar in zip(market.symbols, has.any(axis=0)) if any_bar], days[0].date(), days[-1].date()
