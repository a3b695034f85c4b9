"""VQM stock selection (seed 003): value (PE TTM, lower is better) + quality (ROE, higher is better).

Each month's last trading day, at the close, every point-in-time CSI 300 member that can be bought is
ranked by ``w_pe × rank(−PE) + w_roe × rank(ROE)``; the top N are held at equal weight from the next
open. PE(TTM) is the unadjusted close over the EPS(TTM) of the latest report announced strictly before
the decision day, ROE from the same rule (see :mod:`vnpy_rotation.fundamentals.panels` for which ROE
reading). Seed 003 §5's risk rules run inside the simulation (:class:`~vnpy_rotation.backtest.risk_rules.RiskRules`).

Exclusions, each counted per decision in the ``universe`` table: not an index member that day, no bar
or suspended, ST, fewer than ``min_listed_days`` sessions since the first bar, PE ≤ 0 or unknown, ROE
unknown, closed at the limit-up price (the next open is unlikely to be buyable; the matcher refuses a
buy at the limit anyway).
"""

from __future__ import annotations

import dataclasses
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar, Literal, NamedTuple

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from ..backtest.engine import TargetPlan
from ..backtest.market_data import MarketData
from ..backtest.risk_rules import RiskRules
from ..backtest.strategy import StrategySettings, rebalance_days, weights_frame
from ..fundamentals.panels import KNOWN_PANEL, fundamental_panels, pe_ttm
from ..fundamentals.share_changes import eps_share_scale
from ..fundamentals.universe import coverage_warning, rebuild_membership
from ..market.calendar import default_calendar
from ..rotation.selection import percentile_ranks

if TYPE_CHECKING:
    from ..data.store import BarStore

STALE_AFTER_DAYS = 135  # a quarterly report is due within ~4 months of the last one (BRIEF §5 deadlines)
EXCLUSIONS = ("not_member", "no_bar", "st", "new_listing", "pe_not_positive", "no_roe", "limit_up")


class VqmSettings(StrategySettings):
    # "bundled": the shipped CSI 300 subset; "database": every stock with bars in the database; or a list.
    symbols: Literal["bundled", "database"] | list[str] = "bundled"
    index: str | None = "000300.SSE"  # point-in-time membership filter; None: every symbol is eligible
    w_pe: float = Field(default=0.6, ge=0, le=1)
    w_roe: float | None = Field(default=None, ge=0, le=1)  # None: 1 − w_pe
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
        if self.w_pe + self.roe_weight <= 0:
            raise ValueError("w_pe and w_roe cannot both be 0")
        return self

    @property
    def roe_weight(self) -> float:
        return 1.0 - self.w_pe if self.w_roe is None else self.w_roe


class Ranking(NamedTuple):
    """One decision's view per row × symbol (``excluded`` is exclusion × row × symbol)."""

    excluded: np.ndarray
    eligible: np.ndarray
    pe: np.ndarray
    roe: np.ndarray
    score: np.ndarray
    rank: np.ndarray  # 1 = best; inf = not ranked


class VqmStrategy:
    """The VQM portfolio strategy; ``prepare_market`` attaches the point-in-time inputs it ranks on."""

    name: ClassVar[str] = "vqm"
    Settings = VqmSettings
    search_space: ClassVar[dict[str, list]] = {"w_pe": [0.4, 0.5, 0.6, 0.7, 0.8], "top_n": [10, 20, 30]}

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
        return 5  # the limit-up check needs the previous close; fundamentals come from their own table

    def prepare_market(self, market: MarketData, store: "BarStore") -> MarketData:
        """Attach PE/ROE inputs, index membership and listing age as point-in-time day × symbol arrays."""
        from ..fundamentals.dividends import stored_distributions
        from ..fundamentals.store import FundamentalStore

        fundamentals = FundamentalStore(store.database)
        reports = fundamentals.reports(list(market.symbols))
        panels = fundamental_panels(reports, market.days, market.symbols)
        extras = {"eps_ttm": panels["eps_ttm"], "roe": panels[f"roe_{self.settings.roe}"],
                  KNOWN_PANEL: panels[KNOWN_PANEL],
                  "eps_scale": eps_share_scale(stored_distributions(store, list(market.symbols)),
                                               panels[KNOWN_PANEL], market.days, market.symbols),
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
        excluded = exclusion_flags(market, rows, s.min_listed_days)
        scale = market.extras.get("eps_scale")  # prepare_market attaches it; absent: no share changes
        pe = pe_ttm(market.close[rows], market.extras["eps_ttm"][rows], None if scale is None else scale[rows])
        roe = market.extras["roe"][rows]
        eligible = ~excluded.any(axis=0)
        score = vqm_scores(pe, roe, eligible, s.w_pe, s.roe_weight)
        return Ranking(excluded, eligible, pe, roe, score, score_ranks(score))

    def targets(self, market: MarketData) -> TargetPlan:
        s = self.settings
        rows = rebalance_days(market, "month_end")
        excluded, eligible, pe, roe, score, rank = self.rank_rows(market, rows)
        chosen = rank <= s.top_n
        weights = np.where(chosen, s.invested / s.top_n, 0.0)
        frame = weights_frame(market, rows, weights)
        notes = _notes(frame, chosen, rank, pe, roe, s.top_n)
        tables = {"selection": lambda: _selection_table(frame, chosen, rank, score, pe, roe),
                  "universe": lambda: _universe_table(frame.index, excluded, eligible)}
        risk = RiskRules(stock_stop=s.stock_stop, portfolio_stop=s.portfolio_stop,
                         drawdown_halve=s.drawdown_halve, halve_to=s.halve_to)
        return TargetPlan(frame, reason="vqm", tables=tables, notes=notes, risk=risk)


def listed_sessions(first_days: dict, days: pd.DatetimeIndex, symbols) -> np.ndarray:
    """Trading sessions from each symbol's first bar to each day (first bar day = 1; 0 before it).

    The first bar is the listing only when the data starts before it: a series starting on the earliest
    first day of all the symbols is taken as listed before the data begins (its age is unknown, not
    young; inf), otherwise every stock would look newly listed at the start of the data.
    """
    sessions = default_calendar().between().values.astype("datetime64[D]")
    at = np.searchsorted(sessions, days.values.astype("datetime64[D]"), side="right")
    data_start = min(first_days.values()) if first_days else None
    out = np.zeros((len(days), len(symbols)))
    for j, symbol in enumerate(symbols):
        first = first_days.get(symbol)
        if first is None:
            continue
        if first == data_start and len(first_days) > 1:
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


def vqm_scores(pe: np.ndarray, roe: np.ndarray, eligible: np.ndarray, w_pe: float, w_roe: float) -> np.ndarray:
    """``w_pe × rank(−PE) + w_roe × rank(ROE)`` among the eligible names of each row (NaN elsewhere)."""
    pe_rank = percentile_ranks(np.where(eligible, -pe, np.nan))
    roe_rank = percentile_ranks(np.where(eligible, roe, np.nan))
    return (w_pe * pe_rank + w_roe * roe_rank) / (w_pe + w_roe)


def score_ranks(score: np.ndarray) -> np.ndarray:
    """1 = best per row; ties go to the earlier column; unscored names rank after everyone (inf)."""
    order = np.argsort(-np.where(np.isfinite(score), score, -np.inf), axis=1, kind="stable")
    rank = np.empty(score.shape)
    np.put_along_axis(rank, order, np.arange(1, score.shape[1] + 1, dtype=float)[None, :].repeat(len(score), 0), 1)
    return np.where(np.isfinite(score), rank, np.inf)


def _notes(frame: pd.DataFrame, chosen: np.ndarray, rank: np.ndarray, pe: np.ndarray, roe: np.ndarray,
           top_n: int) -> pd.DataFrame:
    """Why each name is bought, kept or dropped (the trade records' reason)."""
    notes = np.full(chosen.shape, None, dtype=object)
    previous = np.vstack([np.zeros((1, chosen.shape[1]), dtype=bool), chosen[:-1]])
    for i, j in zip(*np.nonzero(chosen | previous)):
        if chosen[i, j]:
            notes[i, j] = f"VQM #{int(rank[i, j])}: PE {pe[i, j]:.1f}, ROE {roe[i, j]:.1%}"
        elif np.isfinite(rank[i, j]):
            notes[i, j] = f"out of top {top_n}: VQM #{int(rank[i, j])}"
        else:
            notes[i, j] = "excluded at rebalance"
    return pd.DataFrame(notes, index=frame.index, columns=frame.columns)


def _selection_table(frame: pd.DataFrame, chosen, rank, score, pe, roe) -> pd.DataFrame:
    i, j = np.nonzero(chosen)
    return pd.DataFrame({"date": frame.index[i], "vt_symbol": frame.columns[j], "rank": rank[i, j].astype(int),
                         "score": score[i, j], "pe_ttm": pe[i, j], "roe": roe[i, j]})


def _universe_table(days: pd.DatetimeIndex, excluded: np.ndarray, eligible: np.ndarray) -> pd.DataFrame:
    table = pd.DataFrame({"date": days, "eligible": eligible.sum(axis=1)})
    for name, flags in zip(EXCLUSIONS, excluded):
        table[name] = flags.sum(axis=1)
    return table
