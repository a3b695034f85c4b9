"""VQM stock selection: value (PE TTM, lower is better) + quality (ROE, higher is better).

Each month's last trading day, at the close, every point-in-time CSI 300 member that can be bought is
ranked by ``w_pe × rank(−PE) + w_roe × rank(ROE) + w_pb × rank(−PB) + w_dy × rank(dividend yield)``
(weights normalised by their sum; PB and dividend yield weigh 0 by default); the top N are held at equal
weight from the next open. PE(TTM) is the unadjusted close over the EPS(TTM) of the latest report announced strictly before
the decision day, ROE from the same rule (see :mod:`vnpy_rotation.fundamentals.panels` for which ROE
reading), PB from :mod:`vnpy_rotation.fundamentals.valuation`, and every per-share value on the day's
share basis by :func:`share_basis_extras`. The risk rules (single-stock stop, portfolio stop, drawdown
halving) run inside the simulation (:class:`~vnpy_rotation.risk.stops.RiskRules`).

Exclusions, each counted per decision in the ``universe`` table: not an index member that day, no bar
or suspended, ST, fewer than ``min_listed_days`` sessions since the first bar, PE ≤ 0 or unknown, ROE
unknown, PB ≤ 0 or unknown (only while PB is weighted), closed at the limit-up price (the next open is unlikely to be buyable; the matcher refuses a
buy at the limit anyway).
"""

from __future__ import annotations

import dataclasses
import math
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar, Literal, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from ..backtest.engine import TargetPlan
from ..backtest.notes import notes_frame
from ..backtest.strategy import rebalance_days, weights_frame
from ..config import StrategySettings
from ..data.market_data import MarketData, derived
from ..fundamentals.panels import KNOWN_PANEL, fundamental_panels, pe_ttm
from ..fundamentals.share_changes import Distribution, eps_share_scale, from_holding_arrays, trailing_cash
from ..fundamentals.universe import coverage_warning, rebuild_membership
from ..fundamentals.valuation import ReportInputs, book_panels
from ..market.calendar import default_calendar
from ..protocol import StrategyBase
from ..risk.stops import RiskRules
from ..rotation.selection import percentile_ranks

if TYPE_CHECKING:
    from ..data.store import BarStore

STALE_AFTER_DAYS = 135  # a quarterly report is due within ~4 months of the last one (statutory deadlines, see fundamentals/pit.py)
EXCLUSIONS = ("not_member", "no_bar", "st", "new_listing", "pe_not_positive", "no_roe", "limit_up")
PB_EXCLUSION = "pb_not_positive"  # counted only while PB is weighted, so default outputs keep their columns
# A year of sessions before the first decision while PB or the dividend yield is weighted. The share basis
# reads every stored ex-date (share_basis_extras) and no longer needs these sessions; kept so such runs
# load the same days as before.
VALUATION_WARMUP_SESSIONS = 250
DIVIDEND_WINDOW_DAYS = 365  # trailing twelve months of ex-dates: e <= day and day - e < 365 days
SHARE_BASIS = ("eps_scale", "bvps_scale", "dividend_cash")  # the extras share_basis_extras attaches


class VqmSettings(StrategySettings):
    # "bundled": the shipped CSI 300 subset; "database": every stock with bars in the database; or a list.
    symbols: Literal["bundled", "database"] | list[str] = "bundled"
    index: str | None = "000300.SSE"  # point-in-time membership filter; None: every symbol is eligible
    w_pe: float = Field(default=0.6, ge=0, le=1)
    w_roe: float | None = Field(default=None, ge=0, le=1)  # None: 1 − w_pe − w_pb − w_dy
    w_pb: float = Field(default=0.0, ge=0, le=1)  # rank(−PB): book value per share, see fundamentals.valuation
    w_dy: float = Field(default=0.0, ge=0, le=1)  # rank(trailing 12-month dividend yield)
    # May a preliminary results report (业绩快报) stand in for its period's periodic report until that is
    # announced? Changes EPS TTM (annual periods), ROE and book value between the two announcements.
    express_stand_in: bool = False
    top_n: int = Field(default=20, ge=1)
    roe: Literal["annualised", "full_year"] = "annualised"
    min_listed_days: int = Field(default=250, ge=0)
    invested: float = Field(default=0.99, gt=0, le=1)
    stock_stop: float | None = Field(default=0.08, gt=0, lt=1)
    portfolio_stop: float | None = Field(default=0.10, gt=0, lt=1)
    drawdown_halve: float | None = Field(default=0.15, gt=0, lt=1)
    halve_to: float = Field(default=0.5, gt=0, lt=1)

    @model_validator(mode="after")
    def _weights(self) -> "VqmSettings":
        if self.w_roe is None and self.w_pe + self.w_pb + self.w_dy > 1 + 1e-12:
            raise ValueError(f"w_pe + w_pb + w_dy = {self.w_pe + self.w_pb + self.w_dy:g} exceeds 1: "
                             "set w_roe explicitly (weights are normalised by their sum)")
        if self.w_pe + self.roe_weight + self.w_pb + self.w_dy <= 0:
            raise ValueError("w_pe, w_roe, w_pb and w_dy cannot all be 0")
        return self

    @property
    def roe_weight(self) -> float:
        return max(0.0, 1.0 - self.w_pe - self.w_pb - self.w_dy) if self.w_roe is None else self.w_roe


class Ranking(NamedTuple):
    """One decision's view per row × symbol (``excluded`` is exclusion × row × symbol)."""

    excluded: np.ndarray
    eligible: np.ndarray
    pe: np.ndarray
    roe: np.ndarray
    score: np.ndarray
    rank: np.ndarray  # 1 = best; inf = not ranked
    pb: np.ndarray | None = None  # while weighted
    pb_approximate: np.ndarray | None = None  # 1.0: book value from netProfit / roeAvg
    dividend_yield: np.ndarray | None = None  # while weighted


class VqmStrategy(StrategyBase):
    """The VQM portfolio strategy; ``prepare_market`` attaches the point-in-time inputs it ranks on."""

    name: ClassVar[str] = "vqm"
    Settings = VqmSettings
    search_space: ClassVar[dict[str, list]] = {"w_pe": [0.4, 0.5, 0.6, 0.7, 0.8], "top_n": [10, 20, 30]}
    market_settings: ClassVar[tuple[str, ...]] = ("symbols", "index", "express_stand_in", "roe")

    def __init__(self, settings: VqmSettings) -> None:
        self.settings = settings
        self.data_warnings: list[str] = []

    @cached_property
    def symbols(self) -> list[str]:
        """The universe (read once per instance: ``database`` asks the bar table)."""
        chosen = self.settings.symbols
        if isinstance(chosen, list):
            return list(chosen)
        if chosen == "bundled":
            from ..bundled import manifest

            return list(manifest()["stocks"])
        from ..data.store import BarStore
        from ..market.instruments import lookup

        return sorted(s for s in BarStore().first_days() if lookup(s).is_stock)

    @property
    def warmup_days(self) -> int:
        if self.settings.w_pb > 0 or self.settings.w_dy > 0:
            return VALUATION_WARMUP_SESSIONS
        return 5  # the limit-up check needs the previous close; fundamentals come from their own table

    @property
    def exclusions(self) -> tuple[str, ...]:
        return EXCLUSIONS + ((PB_EXCLUSION,) if self.settings.w_pb > 0 else ())

    def prepare_market(self, market: MarketData, store: "BarStore") -> MarketData:
        """Attach PE/ROE inputs, index membership and listing age as point-in-time day × symbol arrays."""
        from ..fundamentals.dividends import stored_distributions
        from ..fundamentals.store import FundamentalStore

        fundamentals = FundamentalStore(store.database)
        inputs = read_report_inputs(fundamentals, list(market.symbols), self.settings)
        reports = inputs.reports
        panels = report_extras(inputs, market.days, market.symbols, self.settings)
        extras = {**panels, **share_basis_extras(stored_distributions(store, list(market.symbols)), panels,
                                                 market.days, market.symbols),
                  "listed_days": listed_sessions(store.first_days({s.split(".")[0] for s in market.symbols}),
                                                           market.days, market.symbols)}
        self.data_warnings = []
        missing = [s for s in market.symbols if np.isnan(panels["eps_ttm"][:, market.symbols.index(s)]).all()]
        if missing:
            self.data_warnings.append(f"{len(missing)} symbol(s) have no usable fundamentals and are never "
                                      f"selected: {', '.join(missing[:10])}{' …' if len(missing) > 10 else ''}")
        latest = reports["announced"].max() if len(reports) else None
        if latest is not None and market.days[-1] - latest > pd.Timedelta(days=STALE_AFTER_DAYS):
            self.data_warnings.append(f"the latest stored report was announced on {latest.date()}: decisions after "
                                      f"{(latest + pd.Timedelta(days=STALE_AFTER_DAYS)).date()} rank on stale fundamentals")
        share = approximate_book_share(panels["bvps_approximate"]) if self.settings.w_pb > 0 else 0.0
        if share:
            self.data_warnings.append(f"PB uses the approximate book value netProfit / roeAvg / totalShare on "
                                      f"{share:.0%} of the stock-days with a book value (no balance-sheet equity "
                                      "imported for them; selection.csv column pb_approximate)")
        if self.settings.index:
            extras["member"] = self._membership(fundamentals, market)
        return dataclasses.replace(market, extras={**market.extras, **extras})

    def _membership(self, fundamentals, market: MarketData) -> np.ndarray:
        index = self.settings.index
        snapshots = fundamentals.index_snapshots(index)
        if snapshots.empty:
            self.data_warnings.append(f"no membership data for {index}: every symbol counts as a member on every "
                                      "day (survivorship bias: today's list stands in for the past)")
            return np.ones(market.shape, dtype=bool)
        day = snapshots["day"].max()
        listed = snapshots.loc[snapshots["day"] == day, "vt_symbol"].tolist()
        membership = rebuild_membership(day, listed, fundamentals.index_changes(index), market.days, market.symbols)
        self.data_warnings.extend(membership.warnings)
        coverage = coverage_warning(membership, rebalance_days(market, "month_end"))
        if coverage:
            self.data_warnings.append(coverage)
        return membership.member

    def rank_rows(self, market: MarketData, rows: np.ndarray) -> Ranking:
        """Exclusions, PE, ROE, score and rank of every symbol on the decision ``rows``."""
        s = self.settings
        # What does not depend on the weights is shared by a sweep chunk's runs (the memo); one run computes it.
        key = (rows.tobytes(), s.min_listed_days, s.w_pb > 0, s.w_dy > 0)
        excluded, pe, roe, pb, approximate, dy = derived(self.memo, market, ("vqm_inputs", *key),
                                                         lambda: self._inputs(market, rows))
        eligible = derived(self.memo, market, ("vqm_eligible", *key), lambda: ~excluded.any(axis=0))
        ranks = derived(self.memo, market, ("vqm_ranks", *key), lambda: vqm_factor_ranks(pe, roe, eligible, pb, dy))
        weights = (s.w_pe, s.roe_weight, s.w_pb, s.w_dy)

        def scored() -> tuple[np.ndarray, np.ndarray]:
            score = weighted_vqm(ranks, *weights, pb is not None, dy is not None)
            return score, score_ranks(score)

        score, rank = derived(self.memo, market, ("vqm_score", *key, weights), scored)  # shared by every top_n
        return Ranking(excluded, eligible, pe, roe, score, rank, pb, approximate, dy)

    def _inputs(self, market: MarketData, rows: np.ndarray) -> tuple:
        """(exclusions, PE, ROE, PB, PB approximate flag, dividend yield) on ``rows``; PB, DY: while weighted."""
        s = self.settings
        excluded = exclusion_flags(market, rows, s.min_listed_days)
        pe = pe_ttm(market.close[rows], market.extras["eps_ttm"][rows], share_basis(market)["eps_scale"][rows])
        roe = market.extras["roe"][rows]
        pb = approximate = dy = None
        if s.w_pb > 0:
            pb, approximate = price_to_book(market, rows)
            with np.errstate(invalid="ignore"):
                excluded = np.concatenate([excluded, ~(pb > 0)[None]])
        if s.w_dy > 0:
            dy = trailing_dividend_yield(market)[rows]
        return excluded, pe, roe, pb, approximate, dy

    def targets(self, market: MarketData) -> TargetPlan:
        s = self.settings
        rows = rebalance_days(market, "month_end")
        ranking = self.rank_rows(market, rows)
        excluded, eligible, pe, roe, score, rank = ranking[:6]
        chosen = rank <= s.top_n
        weights = np.where(chosen, s.invested / s.top_n, 0.0)
        frame = weights_frame(market, rows, weights, self.memo)
        notes = _notes(frame, chosen, rank, pe, roe, s.top_n, ranking) if self.notes else None
        tables = {"selection": lambda: _selection_table(frame, chosen, ranking),
                  "universe": lambda: _universe_table(frame.index, excluded, eligible, self.exclusions)}
        risk = RiskRules(stock_stop=s.stock_stop, portfolio_stop=s.portfolio_stop,
                         drawdown_halve=s.drawdown_halve, halve_to=s.halve_to)
        return TargetPlan(frame, reason="vqm", tables=tables, notes=notes, risk=risk)


def read_report_inputs(fundamentals, symbols: list[str], settings: VqmSettings) -> ReportInputs:
    """The fundamentals rows the settings use (express reports only when they may stand in)."""
    reports = fundamentals.reports(symbols)
    balance = fundamentals.balance(symbols)
    express = fundamentals.express(symbols) if settings.express_stand_in else None
    return ReportInputs.build(reports, balance, express, settings.express_stand_in)


def report_extras(inputs: ReportInputs, days: pd.DatetimeIndex, symbols, settings: VqmSettings) -> dict[str, np.ndarray]:
    """The day × symbol report inputs the ranking reads: ``eps_ttm``, ``roe`` and the book-value panels
    (:data:`~vnpy_rotation.fundamentals.valuation.BOOK_PANELS`; always attached, so one loaded market serves
    every weighting of a walk-forward grid). Portfolio and CTA sleeve both call this."""
    panels = fundamental_panels(inputs.reports, days, symbols)
    return {"eps_ttm": panels["eps_ttm"], "roe": panels[f"roe_{settings.roe}"], KNOWN_PANEL: panels[KNOWN_PANEL],
            **book_panels(inputs.book, days, symbols)}


def approximate_book_share(approximate: np.ndarray) -> float:
    """The share of stock-days with a book value whose book value is the netProfit / roeAvg approximation."""
    known = np.isfinite(approximate)
    return float((approximate[known] == 1).mean()) if known.any() else 0.0


def share_basis_extras(distributions: Mapping[str, Sequence[Distribution]], panels: Mapping[str, np.ndarray],
                       days: pd.DatetimeIndex, symbols: Sequence[str]) -> dict[str, np.ndarray]:
    """The day × symbol share-basis inputs of :data:`SHARE_BASIS`, from the distributions of every stored
    ex-date (:func:`~vnpy_rotation.fundamentals.dividends.stored_distributions`) and the report panels of
    :func:`report_extras` (their known days):

    - ``eps_scale`` / ``bvps_scale``: the divisor putting the EPS / book value per share of the report in use
      on the day's shares (:func:`~vnpy_rotation.fundamentals.share_changes.eps_share_scale`);
    - ``dividend_cash``: cash per current share from the ex-dates of the trailing
      :data:`DIVIDEND_WINDOW_DAYS` (:func:`~vnpy_rotation.fundamentals.share_changes.trailing_cash`).

    The portfolio (``prepare_market``) and the CTA sleeve (``PointInTimeUniverse``) both attach these. A
    panel that is absent counts as no report known (scale 1)."""
    none_known = np.full((len(days), len(symbols)), np.nan)
    return {"eps_scale": eps_share_scale(distributions, panels.get(KNOWN_PANEL, none_known), days, symbols),
            "bvps_scale": eps_share_scale(distributions, panels.get("bvps_known", none_known), days, symbols),
            "dividend_cash": trailing_cash(distributions, days, symbols, DIVIDEND_WINDOW_DAYS)}


def share_basis(market: MarketData) -> dict[str, np.ndarray]:
    """The :data:`SHARE_BASIS` arrays of ``market``: those ``prepare_market`` attached, or for a market it
    did not prepare (built by hand) the same rule on the market's own ex-dates (``MarketData.split`` /
    ``.dividend``, which only see the loaded days)."""
    if all(name in market.extras for name in SHARE_BASIS):
        return {name: market.extras[name] for name in SHARE_BASIS}
    loaded = from_holding_arrays(market.days, market.split, market.dividend, market.symbols)
    return share_basis_extras(loaded, market.extras, market.days, market.symbols)


def price_to_book(market: MarketData, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(PB, approximate flag) on ``rows``: unadjusted close over book value per share rebased to the day's
    shares (bonus shares after the report divided out: ``bvps / bvps_scale``)."""
    e = market.extras
    bvps = e["bvps"][rows] / share_basis(market)["bvps_scale"][rows]
    with np.errstate(divide="ignore", invalid="ignore"):
        pb = market.close[rows] / bvps
    pb[~np.isfinite(pb)] = np.nan
    return pb, e["bvps_approximate"][rows]


def trailing_dividend_yield(market: MarketData) -> np.ndarray:
    """Day × symbol trailing 12-month dividend yield: ``dividend_cash`` (cash per current share from the
    ex-dates e <= t with t − e < 365 days) over the day's unadjusted close; NaN where the close is missing or
    not positive, 0 where nothing was paid."""
    close = market.close
    with np.errstate(divide="ignore", invalid="ignore"):
        out = share_basis(market)["dividend_cash"] / close
    out[~(np.isfinite(close) & (close > 0))] = np.nan
    return out


def _known_stock(vt_symbol: str) -> bool:
    from ..errors import UnknownInstrument
    from ..market.instruments import lookup

    try:
        return lookup(vt_symbol).is_stock
    except UnknownInstrument:
        return False


def listed_sessions(first_days: dict, days: pd.DatetimeIndex, symbols) -> np.ndarray:
    """Trading sessions from each symbol's first bar to each day (first bar day = 1; 0 before it).

    The first bar is the listing only when the data starts before it: a series starting on the earliest
    first day of all the symbols is taken as listed before the data begins (its age is unknown, not
    young; inf), otherwise every stock would look newly listed at the start of the data. Only stocks count for
    that earliest day: an index stored under a stock's code (000001.SSE, the SSE Composite, beside 000001.SZSE)
    with a longer history must not make every stock look young.
    """
    sessions = default_calendar().between().values.astype("datetime64[D]")
    at = np.searchsorted(sessions, days.values.astype("datetime64[D]"), side="right")
    stock_starts = [day for symbol, day in first_days.items() if _known_stock(symbol)]
    data_start = min(stock_starts) if stock_starts else None
    out = np.zeros((len(days), len(symbols)))
    for j, symbol in enumerate(symbols):
        first = first_days.get(symbol)
        if first is None:
            continue
        if first == data_start and len(stock_starts) > 1:
            out[:, j] = np.inf
        else:
            out[:, j] = np.maximum(at - np.searchsorted(sessions, np.datetime64(first, "D")), 0)
    return out


def exclusion_flags(market: MarketData, rows: np.ndarray, min_listed_days: int) -> np.ndarray:
    """Bool array (exclusion × decision row × symbol) in :data:`EXCLUSIONS` order."""
    e = market.extras
    close = market.close[rows]
    eps = e["eps_ttm"][rows]
    member = e["member"][rows] if "member" in e else np.ones(close.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.stack([
            ~member,
            ~np.isfinite(close) | market.suspended[rows],
            market.is_st[rows],
            e["listed_days"][rows] < min_listed_days,
            ~(eps > 0),
            ~np.isfinite(e["roe"][rows]),
            np.isfinite(close) & (close >= market.limit_up[rows] - 1e-9),
        ])


def vqm_scores(pe: np.ndarray, roe: np.ndarray, eligible: np.ndarray, w_pe: float, w_roe: float,
               pb: np.ndarray | None = None, w_pb: float = 0.0, dy: np.ndarray | None = None,
               w_dy: float = 0.0) -> np.ndarray:
    """``w_pe × rank(−PE) + w_roe × rank(ROE) + w_pb × rank(−PB) + w_dy × rank(DY)`` over the weights'
    sum, among the eligible names of each row (NaN elsewhere). Unweighted factors add no term at all."""
    ranks = vqm_factor_ranks(pe, roe, eligible, pb if w_pb > 0 else None, dy if w_dy > 0 else None)
    return weighted_vqm(ranks, w_pe, w_roe, w_pb, w_dy, pb is not None, dy is not None)


FactorRanks = tuple[np.ndarray, np.ndarray, "np.ndarray | None", "np.ndarray | None"]


def vqm_factor_ranks(pe: np.ndarray, roe: np.ndarray, eligible: np.ndarray, pb: np.ndarray | None = None,
                     dy: np.ndarray | None = None) -> FactorRanks:
    """Percentile ranks among the eligible names of −PE, ROE and (when given) −PB and DY."""
    def ranked(values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else percentile_ranks(np.where(eligible, values, np.nan))

    return ranked(-pe), ranked(roe), ranked(None if pb is None else -pb), ranked(dy)


def weighted_vqm(ranks: FactorRanks, w_pe: float, w_roe: float, w_pb: float, w_dy: float, pb_given: bool,
                 dy_given: bool) -> np.ndarray:
    """The weighted sum of ``ranks`` over the weights' sum (a factor counts in the sum when it was given)."""
    pe_rank, roe_rank, pb_rank, dy_rank = ranks
    total = w_pe * pe_rank + w_roe * roe_rank
    if w_pb > 0 and pb_rank is not None:
        total = total + w_pb * pb_rank
    if w_dy > 0 and dy_rank is not None:
        total = total + w_dy * dy_rank
    return total / (w_pe + w_roe + (w_pb if pb_given else 0.0) + (w_dy if dy_given else 0.0))


def score_ranks(score: np.ndarray) -> np.ndarray:
    """1 = best per row; ties go to the earlier column; unscored names rank after everyone (inf)."""
    order = np.argsort(-np.where(np.isfinite(score), score, -np.inf), axis=1, kind="stable")
    rank = np.empty(score.shape)
    np.put_along_axis(rank, order, np.arange(1, score.shape[1] + 1, dtype=float)[None, :].repeat(len(score), 0), 1)
    return np.where(np.isfinite(score), rank, np.inf)


def _notes(frame: pd.DataFrame, chosen: np.ndarray, rank: np.ndarray, pe: np.ndarray, roe: np.ndarray,
           top_n: int, ranking: Ranking | None = None) -> pd.DataFrame:
    """Why each name is bought, kept or dropped (the trade records' reason)."""
    notes = np.full(chosen.shape, None, dtype=object)
    previous = np.vstack([np.zeros((1, chosen.shape[1]), dtype=bool), chosen[:-1]])
    # The cells' values are gathered once and formatted as Python numbers (indexing and formatting numpy
    # scalars cell by cell cost about three times as much).
    i, j = np.nonzero(chosen)
    texts = [f"VQM #{int(r)}: PE {p:.1f}, ROE {q:.1%}" for r, p, q in zip(rank[i, j].tolist(), pe[i, j].tolist(),
                                                                        roe[i, j].tolist())]
    if ranking is not None and ranking.pb is not None:
        approximate = (ranking.pb_approximate[i, j] == 1).tolist()
        texts = [f"{t}, PB {b:.2f}{' (approx.)' if a else ''}"
                 for t, b, a in zip(texts, ranking.pb[i, j].tolist(), approximate)]
    if ranking is not None and ranking.dividend_yield is not None:
        texts = [f"{t}, DY {d:.2%}" for t, d in zip(texts, ranking.dividend_yield[i, j].tolist())]
    notes[i, j] = texts
    i, j = np.nonzero(previous & ~chosen)
    notes[i, j] = [f"out of top {top_n}: VQM #{int(r)}" if math.isfinite(r) else "excluded at rebalance"
                   for r in rank[i, j].tolist()]
    return notes_frame(notes, frame.index, frame.columns)


def _selection_table(frame: pd.DataFrame, chosen, ranking: Ranking) -> pd.DataFrame:
    """The chosen names per decision; ``pb`` / ``pb_approximate`` and ``dividend_yield`` while weighted."""
    i, j = np.nonzero(chosen)
    table = pd.DataFrame({"date": frame.index[i], "vt_symbol": frame.columns[j],
                          "rank": ranking.rank[i, j].astype(int), "score": ranking.score[i, j],
                          "pe_ttm": ranking.pe[i, j], "roe": ranking.roe[i, j]})
    if ranking.pb is not None:
        table["pb"] = ranking.pb[i, j]
        table["pb_approximate"] = ranking.pb_approximate[i, j] == 1
    if ranking.dividend_yield is not None:
        table["dividend_yield"] = ranking.dividend_yield[i, j]
    return table


def _universe_table(days: pd.DatetimeIndex, excluded: np.ndarray, eligible: np.ndarray,
                    names: tuple[str, ...] = EXCLUSIONS) -> pd.DataFrame:
    table = pd.DataFrame({"date": days, "eligible": eligible.sum(axis=1)})
    for name, flags in zip(names, excluded):
        table[name] = flags.sum(axis=1)
    return table
