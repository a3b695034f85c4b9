"""ETF rotation across pools: factor scores, top-N with hysteresis, a defensive asset, capacity.

The steps are small and replaceable, each a pure function of point-in-time arrays:

schedule (every k sessions / week end / month end, on the pool's own sessions)
→ universe (members with a bar, enough history and turnover, positive absolute momentum)
→ scores (weighted percentile ranks of library factors)
→ selection (top N, a holding stays while it ranks within N + buffer)
→ weights (N equal slots capped at max_single_weight; empty slots go to the defensive asset)
→ constraints (each order within max_adv_pct of the 20-session average turnover).

Each pool decides on its own sessions and holds target_capital / Σ target_capital of the portfolio;
on a day only one pool decides, the other pools' funds get no instruction (they keep their holdings).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, ClassVar, Literal

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import Field, field_validator, model_validator

from ..backtest.engine import TargetPlan
from ..backtest.strategy import rebalance_days
from ..config import StrategySettings
from ..data.market_data import MarketData, derived, forward_fill
from ..factors.inputs import pool_factors, pool_inputs
from ..factors.library import FACTORS
from ..protocol import StrategyBase
from ..rotation.capacity import cap_order_sizes
from ..rotation.pools import PoolsConfig, read_pools
from ..rotation.selection import percentile_ranks, rank_usable, select_ranked, slot_weights, weighted_ranks

ADV_SESSIONS = 20  # max_adv_pct is a share of the 20-session average turnover


class EtfRotationSettings(StrategySettings):
    pools_file: str | None = None  # default: configs/etf_pools.yaml
    pools: list[str] = Field(default_factory=list)  # pools to trade (default: every pool in the file)
    factors: dict[str, float] = Field(default_factory=lambda: {"mom_60": 0.4, "trend_60": 0.3, "mom_20": 0.2,
                                                                 "vol_20": 0.1})
    top_n: int = Field(default=2, ge=1)
    buffer: int = Field(default=1, ge=0)  # hysteresis: a holding stays while ranked within top_n + buffer
    schedule: Literal["every_k", "week_end", "month_end"] = "week_end"
    every_k: int = Field(default=5, ge=1)  # sessions between decisions when schedule is every_k
    min_history: int = Field(default=120, ge=1)  # sessions with a bar before a fund can be chosen
    min_adv: float = Field(default=5_000_000.0, ge=0)  # CNY, 20-session average turnover
    absolute_factor: str = "mom_120"  # a fund qualifies only if this factor is above the threshold
    absolute_threshold: float = 0.0
    defensive: str | None = "511010.SSE"  # bond ETF for empty slots; None keeps them in cash
    invested: float = Field(default=0.99, gt=0, le=1)
    # True: every decision resets every weight of the deciding pool (keeps the capital split exact);
    # False: a fund whose target did not change gets no order (drift is left alone, fewer trades).
    trim_unchanged: bool = True

    @field_validator("factors")
    @classmethod
    def _known_factors(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(FACTORS))
        if unknown:
            raise ValueError(f"unknown factors {unknown}; available: {', '.join(FACTORS)}")
        if not value or any(w <= 0 for w in value.values()):
            raise ValueError("give at least one factor, each with a positive weight")
        return value

    @field_validator("absolute_factor")
    @classmethod
    def _known_absolute(cls, value: str) -> str:
        if value not in FACTORS:
            raise ValueError(f"unknown factor {value!r}; available: {', '.join(FACTORS)}")
        return value

    @model_validator(mode="after")
    def _pools_exist(self) -> "EtfRotationSettings":
        config = read_pools(self.pools_file)
        unknown = sorted(set(self.pools) - set(config.pools))
        if unknown:
            raise ValueError(f"pools: {unknown} are not in {self.pools_file or 'configs/etf_pools.yaml'}; "
                             f"it defines {', '.join(config.pools)}")
        return self


@dataclass(frozen=True)
class PoolDecisions:
    """One pool's decisions: rows into the day axis and weights of the pool's capital per column."""

    pool: str
    rows: np.ndarray
    columns: list[str]  # members, then the defensive asset when it is not a member
    weights: np.ndarray  # rows × columns, after every constraint
    selected: np.ndarray  # rows × members: the selection before weights
    capacity: Callable[[], pd.DataFrame]  # where a constraint bound (built when asked: sweeps skip it)


@dataclass(frozen=True)
class PoolRanking:
    """One pool's ranking on some rows: per row × member, the factors, the score and the rank (0: unranked)."""

    pool: str
    rows: np.ndarray
    members: list[str]
    factors: dict[str, np.ndarray]  # factor name → rows × members (raw values, before orientation)
    score: np.ndarray
    rank: np.ndarray


class EtfRotationStrategy(StrategyBase):
    """Rotation among ETF pools; ``targets`` is what both the backtester and the live app call."""

    name: ClassVar[str] = "etf_rotation"
    author: ClassVar[str] = "vnpy_rotation"
    parameters: ClassVar[list[str]] = ["top_n", "buffer", "schedule", "every_k", "min_history", "min_adv",
                                       "absolute_factor", "absolute_threshold", "defensive", "invested",
                                       "trim_unchanged"]
    variables: ClassVar[list[str]] = ["last_decision", "holdings"]
    search_space: ClassVar[dict[str, list]] = {"top_n": [1, 2, 3], "buffer": [0, 1, 2],
                                               "schedule": ["week_end", "month_end"],
                                               "absolute_factor": ["mom_60", "mom_120"]}
    market_settings: ClassVar[tuple[str, ...]] = ("pools_file", "pools")
    Settings = EtfRotationSettings

    def __init__(self, settings: EtfRotationSettings) -> None:
        self.settings = settings
        self.pools_config: PoolsConfig = read_pools(settings.pools_file)
        self.pool_names = list(settings.pools or self.pools_config.pools)
        self.last_decision: str = ""
        self.holdings: str = ""
        self._decided: tuple[MarketData, list[PoolDecisions]] | None = None

    @property
    def symbols(self) -> list[str]:
        members = [s for p in self.pool_names for s in self.pools_config.pools[p]]
        defensive = [self.settings.defensive] if self.settings.defensive else []
        return list(dict.fromkeys(members + defensive))

    @property
    def warmup_days(self) -> int:
        windows = [FACTORS[n].window for n in [*self.settings.factors, self.settings.absolute_factor]]
        return max(windows + [self.settings.min_history, ADV_SESSIONS]) + 5

    def pool_columns(self, pool: str) -> list[str]:
        """The funds a pool's decisions cover: its members, then the defensive asset if not a member."""
        members = list(self.pools_config.pools[pool])
        defensive = self.settings.defensive
        return members + ([defensive] if defensive and defensive not in members else [])

    # -- the steps ------------------------------------------------------------------------------
    def decision_rows(self, market: MarketData, sessions: np.ndarray) -> np.ndarray:
        """Decision days among the pool's sessions: a calendar period end, or the pool's next session."""
        s = self.settings
        if s.schedule == "every_k":
            return sessions[::s.every_k]
        ends = rebalance_days(market, s.schedule)
        positions = np.searchsorted(sessions, ends)
        return np.unique(sessions[positions[positions < len(sessions)]])

    def decide_pool(self, market: MarketData, pool: str) -> PoolDecisions:
        s = self.settings
        limits = self.pools_config.capital_constraints[pool]
        members = list(self.pools_config.pools[pool])
        columns = self.pool_columns(pool)
        memo, key = self.memo, tuple(members)
        # Through the memo (a sweep chunk), what depends only on the market, the pool and the schedule is
        # computed once and shared by every combination; a single run computes it afresh, the same way.
        sessions = derived(memo, market, ("sessions", key), lambda: pool_inputs(market, members)[0])
        on = (key, s.schedule, s.every_k)  # the decision rows
        rows = derived(memo, market, ("rows", *on), lambda: self.decision_rows(market, sessions))
        has_bar, history, adv, eligible, scores, ranked = self._scored(market, pool, rows, on)
        selected = select_ranked(*ranked, s.top_n, s.buffer)
        weights, empty = slot_weights(selected, s.top_n, limits.max_single_weight)
        desired = np.zeros((len(rows), len(columns)))
        desired[:, :len(members)] = weights
        if s.defensive:
            d = columns.index(s.defensive)
            desired[:, d] += np.where(has_bar[:, d], empty, 0.0)
        desired *= s.invested
        allowed, binding = cap_order_sizes(desired, adv, limits.target_capital, limits.max_adv_pct)
        capped_single = np.zeros_like(binding)
        capped_single[:, :len(members)] = selected & (1.0 / s.top_n > limits.max_single_weight)
        capacity = partial(_capacity_rows, market, pool, rows, columns, desired, allowed, adv, binding, capped_single,
                           limits.target_capital, limits.max_adv_pct, limits.max_single_weight)
        return PoolDecisions(pool, rows, columns, allowed, selected, capacity)

    def _scored(self, market: MarketData, pool: str, rows: np.ndarray, on: tuple) -> tuple:
        """On ``rows`` (memo key ``on``): has_bar, history, ADV over the pool's columns; the members'
        eligibility, composite score and :func:`rank_usable` ranking."""
        s = self.settings
        members = list(self.pools_config.pools[pool])
        columns = self.pool_columns(pool)
        memo, key = self.memo, tuple(members)

        def factor(name: str) -> np.ndarray:
            return derived(memo, market, ("factor", key, name),
                           lambda: pool_factors(market, members, [name]).values[name])

        has_bar, history, adv = derived(memo, market, ("tradable", *on, tuple(columns)),
                                        lambda: _tradable(market, columns, rows))
        universe = (*on, s.min_history, s.min_adv, s.absolute_factor, s.absolute_threshold)
        eligible = derived(memo, market, ("eligible", *universe), lambda: (
            has_bar[:, :len(members)] & (history[:, :len(members)] >= s.min_history)
            & (adv[:, :len(members)] >= s.min_adv)
            & (np.nan_to_num(factor(s.absolute_factor)[rows], nan=-np.inf) > s.absolute_threshold)))
        mix = tuple(s.factors.items())
        scores = derived(memo, market, ("scores", *on, mix), lambda: weighted_ranks(
            {k: percentile_ranks(FACTORS[k].direction * factor(k)[rows]) for k in s.factors}, s.factors))
        ranked = derived(memo, market, ("ranked", *universe, mix), lambda: rank_usable(scores, eligible))
        return has_bar, history, adv, eligible, scores, ranked

    def pool_ranking(self, market: MarketData, pool: str, rows: np.ndarray) -> PoolRanking:
        """What ``decide_pool`` selects on, for any ``rows`` (e.g. the last close): each weighted factor's
        value, the composite score and the rank among the usable members (1 best, 0 not ranked)."""
        members = list(self.pools_config.pools[pool])
        _, _, _, _, scores, (order, usable) = self._scored(market, pool, rows, (tuple(members), "rows",
                                                                                rows.tobytes()))
        factors = pool_factors(market, members, list(self.settings.factors)).values
        rank = np.zeros(usable.shape, dtype=int)
        for i in range(len(rows)):
            ranked = [j for j in order[i] if usable[i, j]]
            rank[i, ranked] = np.arange(1, len(ranked) + 1)
        return PoolRanking(pool, rows, members, {k: v[rows] for k, v in factors.items()}, scores, rank)

    # -- what the engines call ------------------------------------------------------------------
    def decisions(self, market: MarketData) -> list[PoolDecisions]:
        """Every pool's decisions; the last market's are kept, as ``pool_plans`` asks again for the same one."""
        if self._decided is None or self._decided[0] is not market:
            self._decided = (market, [self.decide_pool(market, pool) for pool in self.pool_names])
        return self._decided[1]

    def targets(self, market: MarketData) -> TargetPlan:
        decided = self.decisions(market)
        shares = self.pools_config.shares(self.pool_names)
        symbols = list(market.symbols)
        all_rows = np.unique(np.concatenate([d.rows for d in decided])) if decided else np.array([], int)
        position = {s: j for j, s in enumerate(symbols)}
        now = np.zeros((len(all_rows), len(symbols)))  # every pool's latest decision, in portfolio weights
        touched = np.zeros(now.shape, dtype=bool)  # the funds of the pools deciding that day
        for d in decided:
            cols = [position[c] for c in d.columns]
            latest = np.searchsorted(d.rows, all_rows, side="right") - 1
            known = latest >= 0
            now[np.ix_(known, cols)] += d.weights[latest[known]] * shares[d.pool]
            deciding = known & (d.rows[np.maximum(latest, 0)] == all_rows)  # all_rows in d.rows (both sorted)
            touched[np.ix_(deciding, cols)] = True
        if not self.settings.trim_unchanged:
            before = np.vstack([np.zeros((1, len(symbols))), now[:-1]])
            touched &= ~np.isclose(now, before, rtol=0.0, atol=1e-9)
        frame = np.where(touched, now, np.nan)
        columns = derived(self.memo, market, "columns", lambda: pd.Index(symbols))
        plan = pd.DataFrame(frame, index=market.days[all_rows], columns=columns)
        tables = {"capacity": lambda: pd.concat([d.capacity() for d in decided], ignore_index=True),
                  "selection": lambda: self._selection_log(market, decided)}
        if len(all_rows):
            last = frame[-1]
            self.last_decision = str(plan.index[-1].date())
            self.holdings = ", ".join(f"{symbols[j]} {last[j]:.0%}" for j in np.nonzero(last > 0)[0])
        return TargetPlan(plan, tables=tables)

    def pool_plans(self, market: MarketData) -> dict[str, TargetPlan]:
        """Each pool alone, on its own capital: for per-pool metrics."""
        plans = {}
        for d in self.decisions(market):
            weights = d.weights.copy()
            if not self.settings.trim_unchanged and len(weights) > 1:
                weights[1:][np.isclose(d.weights[1:], d.weights[:-1], rtol=0.0, atol=1e-9)] = np.nan
            plans[d.pool] = TargetPlan(pd.DataFrame(weights, index=market.days[d.rows], columns=d.columns))
        return plans

    def _selection_log(self, market: MarketData, decided: list[PoolDecisions]) -> pd.DataFrame:
        rows = []
        for d in decided:
            members = d.columns[:d.selected.shape[1]]
            for day, chosen, weights in zip(market.days[d.rows].date, d.selected.tolist(), d.weights.tolist()):
                rows.append({"date": day, "pool": d.pool,
                             "selected": ";".join(m for m, on in zip(members, chosen) if on),
                             "weights": ";".join(f"{c}={w:.4f}" for c, w in zip(d.columns, weights) if w > 0)})
        return pd.DataFrame(rows, columns=["date", "pool", "selected", "weights"])


def _tradable(market: MarketData, columns: list[str], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """On the decision ``rows``: which of ``columns`` has a bar, sessions with a bar so far, and ADV."""
    index = [market.symbols.index(c) for c in columns]
    has_bar = np.isfinite(market.close[:, index]) & ~market.suspended[:, index]
    return has_bar[rows], np.cumsum(has_bar, axis=0)[rows], _average_turnover(market.turnover[:, index])[rows]


def _average_turnover(turnover: np.ndarray) -> np.ndarray:
    """Mean turnover (CNY) over the last ADV_SESSIONS days with bars, per fund; NaN before enough bars."""
    out = np.full(turnover.shape, np.nan)
    for j in range(turnover.shape[1]):
        traded = np.nonzero(np.isfinite(turnover[:, j]))[0]
        if len(traded) >= ADV_SESSIONS:
            means = sliding_window_view(turnover[traded, j], ADV_SESSIONS).mean(axis=-1)
            out[traded[ADV_SESSIONS - 1:], j] = means
    return forward_fill(out)  # a day without a bar keeps the last average (it cannot be traded anyway)


def _capacity_rows(market, pool, rows, columns, desired, allowed, adv, binding, capped_single, capital,
                   max_adv_pct, max_single_weight) -> pd.DataFrame:
    k, j = np.nonzero(binding | capped_single)
    by_adv = binding[k, j]
    return pd.DataFrame({
        "date": market.days[rows[k]].date, "pool": pool, "vt_symbol": np.array(columns, dtype=object)[j],
        "rule": np.where(by_adv, "max_adv_pct", "max_single_weight").astype(object),
        "wanted_weight": desired[k, j], "allowed_weight": allowed[k, j], "adv20_cny": adv[k, j],
        "limit": np.where(by_adv, max_adv_pct * np.nan_to_num(adv[k, j]), max_single_weight * capital),
    })
