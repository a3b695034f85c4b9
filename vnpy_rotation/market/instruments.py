"""Instrument classification and A-share trading rules, loaded from ``instruments.yaml``.

Every fact lives in the YAML table with its source; this module only validates the table and
answers questions about it. An unknown code raises :class:`UnknownInstrument`: rules are never
guessed.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import InputRejected, Problem, UnknownInstrument

TABLE_PATH = Path(__file__).with_name("instruments.yaml")
ExchangeCode = Literal["SSE", "SZSE", "BSE"]


class InstrumentKind(str, Enum):
    MAIN_BOARD_STOCK = "main_board_stock"
    CHINEXT_STOCK = "chinext_stock"
    STAR_STOCK = "star_stock"
    BSE_STOCK = "bse_stock"
    EQUITY_ETF = "equity_etf"
    CROSS_BORDER_ETF = "cross_border_etf"
    BOND_ETF = "bond_etf"
    GOLD_ETF = "gold_etf"
    MONEY_MARKET_ETF = "money_market_etf"
    LOF = "lof"
    INDEX = "index"

    @property
    def is_stock(self) -> bool:
        return self in _STOCK_KINDS


_STOCK_KINDS = {
    InstrumentKind.MAIN_BOARD_STOCK,
    InstrumentKind.CHINEXT_STOCK,
    InstrumentKind.STAR_STOCK,
    InstrumentKind.BSE_STOCK,
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class DatedPct(_Frozen):
    start: date = Field(alias="from")
    pct: float = Field(gt=0, lt=1)


class DatedRate(_Frozen):
    start: date = Field(alias="from")
    rate: float = Field(ge=0, lt=0.01)


def _check_ascending(items: list) -> list:
    starts = [item.start for item in items]
    if starts != sorted(set(starts)):
        raise ValueError("dates must be strictly ascending")
    return items


# A dated schedule: entries sorted by their `from` date, each date once.
PctSchedule = Annotated[list[DatedPct], AfterValidator(_check_ascending)]
RateSchedule = Annotated[list[DatedRate], AfterValidator(_check_ascending)]


class RuleSet(_Frozen):
    """Lot, tick, price-limit, settlement and tax rules shared by a family of instruments."""

    lot: int = Field(gt=0)
    lot_step: int = Field(gt=0)
    tick: float = Field(gt=0)
    t0_from: date | None
    stamp_duty: bool
    transfer_fee: bool
    price_limits: PctSchedule
    st_price_limits: PctSchedule = []
    tradable: bool = True
    source: list[str]



class NamedInstrument(_Frozen):
    code: str = Field(pattern=r"^[0-9A-Z]{6}$")
    exchange: ExchangeCode
    kind: InstrumentKind
    rules: str
    name: str = ""


class FeeTable(_Frozen):
    stamp_duty_sell: RateSchedule
    transfer_fee: RateSchedule



class InstrumentTable(_Frozen):
    rule_sets: dict[str, RuleSet]
    prefixes: dict[ExchangeCode, dict[str, tuple[InstrumentKind, str]]]
    instruments: list[NamedInstrument]
    fees: FeeTable

    @model_validator(mode="after")
    def _references_exist(self) -> "InstrumentTable":
        names = set(self.rule_sets)
        for exchange, rules in self.prefixes.items():
            for prefix, (_, rule_name) in rules.items():
                if rule_name not in names:
                    raise ValueError(f"prefixes.{exchange}.{prefix}: unknown rule set {rule_name!r}")
        seen: set[tuple[str, str]] = set()
        for item in self.instruments:
            if item.rules not in names:
                raise ValueError(f"instruments {item.code}: unknown rule set {item.rules!r}")
            key = (item.code, item.exchange)
            if key in seen:
                raise ValueError(f"instruments {item.code}.{item.exchange}: listed twice")
            seen.add(key)
        return self


def _dated_value(items: list, on: date, attr: str) -> float | None:
    starts = [item.start for item in items]
    index = bisect.bisect_right(starts, on) - 1
    return getattr(items[index], attr) if index >= 0 else None


@dataclass(frozen=True)
class Instrument:
    """One tradable code with the rules that apply to it."""

    code: str
    exchange: str
    kind: InstrumentKind
    rules: RuleSet
    name: str = ""

    @property
    def vt_symbol(self) -> str:
        return f"{self.code}.{self.exchange}"

    @property
    def is_stock(self) -> bool:
        return self.kind.is_stock

    def price_limit(self, on: date, is_st: bool = False) -> float | None:
        """The daily price-limit fraction on ``on`` (None: no limit, e.g. indices, pre-history)."""
        table = self.rules.st_price_limits if is_st and self.rules.st_price_limits else self.rules.price_limits
        return _dated_value(table, on, "pct")

    def is_t0(self, on: date) -> bool:
        """Whether shares bought on ``on`` may be sold the same day."""
        return self.rules.t0_from is not None and on >= self.rules.t0_from

    def round_buy(self, volume: float) -> int:
        """Largest valid buy quantity not above ``volume`` (0 when below the minimum lot)."""
        lot, step = self.rules.lot, self.rules.lot_step
        if volume < lot:
            return 0
        return int(lot + ((int(volume) - lot) // step) * step)


class InstrumentRegistry:
    """Answers ``lookup(code, exchange)`` from the validated table."""

    def __init__(self, table: InstrumentTable) -> None:
        self.table = table
        self._named = {(i.code, i.exchange): i for i in table.instruments}

    def lookup(self, code: str, exchange: str) -> Instrument:
        named = self._named.get((code, exchange))
        if named is not None:
            return Instrument(code, exchange, named.kind, self.table.rule_sets[named.rules], named.name)
        rules = self.table.prefixes.get(exchange, {})  # type: ignore[call-overload]
        for length in range(len(code), 0, -1):
            match = rules.get(code[:length])
            if match is not None:
                kind, rule_name = match
                return Instrument(code, exchange, kind, self.table.rule_sets[rule_name])
        raise UnknownInstrument(
            f"{code}.{exchange}: no rule in {TABLE_PATH.name} covers this code; "
            "add it under `instruments:` with its kind and rule set"
        )

    def by_vt_symbol(self, vt_symbol: str) -> Instrument:
        code, _, exchange = vt_symbol.partition(".")
        return self.lookup(code, exchange)

    def stamp_duty_rate(self, on: date) -> float:
        return _dated_value(self.table.fees.stamp_duty_sell, on, "rate") or 0.0

    def transfer_fee_rate(self, on: date) -> float:
        return _dated_value(self.table.fees.transfer_fee, on, "rate") or 0.0


def load_table(path: Path = TABLE_PATH) -> InstrumentTable:
    """Read and validate an instrument table, naming the file and field of any error."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise InputRejected(Problem(str(path), None if line is None else line + 1, str(exc))) from None
    try:
        return InstrumentTable.model_validate(raw)
    except ValidationError as exc:
        raise InputRejected(
            [Problem(str(path), None, f"{'.'.join(map(str, e['loc']))}: {e['msg']}") for e in exc.errors()]
        ) from None


@lru_cache(maxsize=1)
def default_registry() -> InstrumentRegistry:
    return InstrumentRegistry(load_table())


def lookup(vt_symbol: str) -> Instrument:
    """Shortcut: the instrument for a vnpy ``vt_symbol`` such as ``510300.SSE``."""
    return default_registry().by_vt_symbol(vt_symbol)
