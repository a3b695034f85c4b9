"""The VQM stock selection (``vqm``) written for vnpy_portfoliostrategy, as a vnpy user would.

Used by ``benchmarks/bench_vqm.py``: on the same bars and the same point-in-time inputs, this strategy in
vnpy's ``BacktestingEngine`` must pick the same stocks as ``VqmStrategy.targets`` on every decision day,
and its fills must be those of our engine in ``BacktestConfig.vnpy_compatible`` mode given that
selection as the same share targets.

vnpy's bars carry prices and volume only, so a vnpy user pre-loads everything else the selection needs;
:func:`build_inputs` does that from the same database tables our side reads (``FundamentalStore`` reports,
index changes and snapshot, the day flags, the adjustment events, the first bar per symbol), as plain
Python per symbol -- no day × symbol panel:

- fundamentals: per symbol the steps ``(usable-from date, EPS TTM, ROE annualised)``, one per report in
  the order reports became known (announcement, else the statutory deadline; usable from the next day),
  each step holding the values of the latest-period report known by then (a restatement of a period
  counts from its own announcement) and the day that report became known;
- share changes: per symbol the ex-dates whose share ratio (1 + 送股 + 转增 per share) is not 1, from the
  stored distributions (``stored_distributions``: the adjustment-factor steps split into shares and cash,
  an imported Baostock dividend record winning on its ex-date);
- index membership: the latest snapshot's list and the change history; the member set on a day is the
  snapshot with every later change undone;
- ST and suspension days (Baostock's flags), each symbol's first bar day and the exchange sessions (for
  the listing age; a symbol whose first bar is the earliest of all counts as listed before the data
  began, its age unknown rather than young), and the ex-date factor steps (the exchange's reference
  price on an ex-date is the previous close divided by the step -- needed for the limit-up price).

The strategy (``on_bars`` → ``set_target`` → ``rebalance_portfolio``) keeps each symbol's last close and,
on the exchange calendar's month ends, ranks every eligible symbol by
``w_pe × pct_rank(−PE) + w_roe × pct_rank(ROE)`` (percentile ranks with ties averaged, as pandas'
``rank(pct=True)``; ties in the score go to the earlier symbol) and holds the
``top_n`` best at equal notional: target = whole lots of ``notional × invested / top_n / close``.
Exclusions: not a member that day, no bar / zero volume / flagged suspended, ST, fewer than
``min_listed_days`` sessions since the first bar, EPS ≤ 0 or unknown, ROE unknown, close at the
limit-up price. The chosen symbols of every decision day are kept in ``selections``.

PE = close / (EPS TTM / share scale), on the close's share basis: the report's EPS counts the shares
outstanding when it was published (a bonus issue or transfer before then restates it, 《企业会计准则第34号
——每股收益》第十三条), while the close after a later ex-date is per new share. The share scale is therefore
the product of the share ratios of the ex-dates ``e`` with ``known < e <= day`` (``known``: the day the
report in use became public); e.g. Kweichow Moutai's 10送1 ex 2014-06-25 after its 2014Q1 report
(2014-04-25) puts that report's EPS TTM 14.68 at 13.35 per current share on 2014-07-31.

vnpy is imported lazily so that the caller can settle vnpy's runtime folder first.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Sequence

from vnpy_peer import PRICE_ADD, PeerRun, VnpyPeer, decision_days

CHINEXT_REFORM = date(2020, 8, 24)  # ChiNext (300/301) stocks, ST included: ±20 % from this day
ST_MAIN_10PCT = date(2025, 7, 7)  # main-board ST limit 5 % → 10 %


@dataclass
class VqmInputs:
    """What the vnpy strategy pre-loads besides the bars (plain Python, keyed by vt_symbol)."""

    # vt_symbol → (usable_from dates ascending, eps_ttm, roe, known) of the report steps; known: the day the
    # report in use became public (its announcement, else the statutory deadline)
    reports: dict[str, tuple[list[date], list[float], list[float], list[date]]] = field(default_factory=dict)
    # vt_symbol → (ex-dates ascending, cumulative share ratio up to and including each) where the ratio is not 1
    share_changes: dict[str, tuple[list[date], list[float]]] = field(default_factory=dict)
    snapshot_day: date | None = None
    snapshot: frozenset[str] = frozenset()
    changes: list[tuple[date, str, int]] = field(default_factory=list)  # (day, vt_symbol, ±1), ascending
    st_days: dict[str, set[date]] = field(default_factory=dict)
    suspended_days: dict[str, set[date]] = field(default_factory=dict)
    first_day: dict[str, date] = field(default_factory=dict)
    data_start: date | None = None  # the earliest first bar day of all the symbols (when more than one)
    sessions: list[date] = field(default_factory=list)  # exchange sessions, ascending
    ex_steps: dict[str, dict[date, float]] = field(default_factory=dict)  # session on/after ex-date → step


def build_inputs(vt_symbols: Sequence[str], index: str | None, roe: str = "annualised", bar_store=None,
                 fundamental_store=None) -> VqmInputs:
    """Pre-load the fundamentals, membership, flags, listing days and ex-date steps of ``vt_symbols``."""
    import pandas as pd

    from vnpy_rotation.data.store import BarStore
    from vnpy_rotation.fundamentals.dividends import stored_distributions
    from vnpy_rotation.fundamentals.pit import usable_from
    from vnpy_rotation.fundamentals.store import FundamentalStore
    from vnpy_rotation.market.calendar import default_calendar

    bars = bar_store or BarStore()
    fundamentals = fundamental_store or FundamentalStore(bars.database)
    wanted = set(vt_symbols)
    codes = {s.split(".")[0] for s in vt_symbols}
    inputs = VqmInputs()

    frame = fundamentals.reports(list(vt_symbols))
    for vt_symbol, group in frame.groupby("vt_symbol", sort=False):
        rows = []
        for period, announced, eps, roe_ytd in zip(group["period_end"], group["announced"], group["eps_ttm"],
                                                    group["roe_ytd"]):
            period_day = period.date()
            known = usable_from(period_day, None if pd.isna(announced) else announced.date())
            if roe == "annualised":
                value = roe_ytd * 4.0 / (period_day.month // 3)
            else:  # full_year: the latest annual report's ROE, its own steps
                value = roe_ytd if period_day.month == 12 else math.nan
            rows.append((known, period_day, float(eps), float(value)))
        rows.sort(key=lambda r: (r[0], r[1]))  # the order reports became known (same day: by period)
        days, eps_steps, roe_steps, known_steps = [], [], [], []
        best = None
        annual = None
        for row in rows:
            if best is None or row[1] >= best[1]:
                best = row
            if row[1].month == 12 and (annual is None or row[1] >= annual[1]):
                annual = row
            days.append(row[0])
            eps_steps.append(best[2])
            roe_steps.append(best[3] if roe == "annualised" else (annual[3] if annual else math.nan))
            known_steps.append(best[0] - timedelta(days=1))  # usable from the day after it became public
        inputs.reports[vt_symbol] = (days, eps_steps, roe_steps, known_steps)

    for vt_symbol, distributions in stored_distributions(bars, list(vt_symbols)).items():
        changes = sorted((d for d in distributions if d.share_ratio != 1.0), key=lambda d: d.ex_date)
        if changes:
            cumulative, product = [], 1.0
            for change in changes:
                product *= change.share_ratio
                cumulative.append(product)
            inputs.share_changes[vt_symbol] = ([d.ex_date for d in changes], cumulative)

    if index:
        snapshots = fundamentals.index_snapshots(index)
        if len(snapshots):
            day = snapshots["day"].max()
            inputs.snapshot_day = day.date()
            inputs.snapshot = frozenset(snapshots.loc[snapshots["day"] == day, "vt_symbol"])
            changes = fundamentals.index_changes(index)
            inputs.changes = [(d.date(), s, int(c)) for d, s, c in
                              zip(changes["day"], changes["vt_symbol"], changes["change"]) if d <= day]

    flags = bars.all_flags(codes)
    for code, exchange, day, suspended, st in flags.itertuples(index=False, name=None):
        vt_symbol = f"{code}.{exchange}"
        if vt_symbol not in wanted:
            continue
        day = date.fromisoformat(str(day)[:10])
        if st:
            inputs.st_days.setdefault(vt_symbol, set()).add(day)
        if suspended:
            inputs.suspended_days.setdefault(vt_symbol, set()).add(day)

    inputs.first_day = {s: d for s, d in bars.first_days(codes).items() if s in wanted}
    if len(inputs.first_day) > 1:
        inputs.data_start = min(inputs.first_day.values())
    inputs.sessions = [d.date() for d in default_calendar().between()]
    for code, exchange, ex_date, step in bars.all_events(codes).itertuples(index=False, name=None):
        vt_symbol = f"{code}.{exchange}"
        if vt_symbol not in wanted:
            continue
        ex_day = date.fromisoformat(str(ex_date)[:10])
        at = bisect_left(inputs.sessions, ex_day)
        if at == len(inputs.sessions):
            continue
        steps = inputs.ex_steps.setdefault(vt_symbol, {})
        steps[inputs.sessions[at]] = steps.get(inputs.sessions[at], 1.0) * float(step)
    return inputs


def limit_pct(vt_symbol: str, day: date, st: bool) -> float:
    """The daily price limit of an SSE/SZSE stock (main board, ChiNext, STAR) on ``day``."""
    code = vt_symbol.split(".")[0]
    if code.startswith("688"):
        return 0.20
    if code.startswith(("300", "301")) and day >= CHINEXT_REFORM:
        return 0.20
    if st:
        return 0.10 if day >= ST_MAIN_10PCT else 0.05
    return 0.10


def pct_ranks(values: list[float]) -> list[float]:
    """Percentile rank in (0, 1] of each value (ties share their mean rank), as pandas' rank(pct=True)."""
    n = len(values)
    order = sorted(range(n), key=values.__getitem__)
    ranks = [0.0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and values[order[j + 1]] == values[order[i]]:
            j += 1
        mean = sum(range(i + 1, j + 2)) / (j - i + 1)
        for k in order[i:j + 1]:
            ranks[k] = mean / n
        i = j + 1
    return ranks


def strategy_class():
    """The vnpy strategy class (built on first use: vnpy must not be imported before the runtime is set)."""
    global _STRATEGY
    if _STRATEGY is None:
        _STRATEGY = _build_strategy_class()
    return _STRATEGY


_STRATEGY = None


def _build_strategy_class():
    from vnpy.trader.constant import Direction
    from vnpy.trader.object import BarData
    from vnpy_portfoliostrategy import StrategyTemplate

    class VqmPortfolioStrategy(StrategyTemplate):
        """Value (PE TTM) + quality (ROE) top-N among point-in-time index members, monthly."""

        author = "vnpy_rotation benchmark"

        w_pe: float = 0.6
        w_roe: float = 0.4
        top_n: int = 20
        min_listed_days: int = 250
        invested: float = 0.99
        notional: float = 10_000_000.0
        lot: int = 100
        price_add: float = PRICE_ADD

        parameters = ["w_pe", "w_roe", "top_n", "min_listed_days", "invested", "notional", "lot", "price_add"]
        variables = ["rebalances"]

        inputs: VqmInputs = VqmInputs()  # set by the runner after add_strategy

        def on_init(self) -> None:
            self.ends = decision_days("month_end")
            self.last_close: dict[str, float] = {}
            self.selections: dict[date, list[str]] = {}
            self.rebalances = 0
            self.load_bars(0)  # no warm-up: trade from the first bar, like our engine over the same span

        def members_on(self, day: date) -> frozenset[str] | None:
            """Index members on ``day``: the snapshot with every change dated after ``day`` undone."""
            inputs = self.inputs
            if inputs.snapshot_day is None:
                return None
            members = set(inputs.snapshot)
            for change_day, vt_symbol, change in reversed(inputs.changes):
                if change_day <= day:
                    break
                if change > 0:
                    members.discard(vt_symbol)
                else:
                    members.add(vt_symbol)
            return frozenset(members)

        def listed_days(self, vt_symbol: str, day: date) -> float:
            first = self.inputs.first_day.get(vt_symbol)
            if first is None:
                return 0
            if first == self.inputs.data_start:
                return math.inf  # listed before the data begins: not a new listing
            sessions = self.inputs.sessions
            return max(bisect_right(sessions, day) - bisect_left(sessions, first), 0)

        def fundamentals_on(self, vt_symbol: str, day: date) -> tuple[float, float]:
            """(EPS TTM on ``day``'s share basis, ROE) of the report in use on ``day``."""
            steps = self.inputs.reports.get(vt_symbol)
            if steps is None:
                return math.nan, math.nan
            k = bisect_right(steps[0], day) - 1
            if k < 0:
                return math.nan, math.nan
            return steps[1][k] / self.share_scale(vt_symbol, steps[3][k], day), steps[2][k]

        def share_scale(self, vt_symbol: str, known: date, day: date) -> float:
            """New shares per share of a report known on ``known``: the ratios of the ex-dates in (known, day]."""
            changes = self.inputs.share_changes.get(vt_symbol)
            if changes is None:
                return 1.0
            ex_dates, cumulative = changes
            at_day, at_known = bisect_right(ex_dates, day), bisect_right(ex_dates, known)
            if at_day == at_known:
                return 1.0
            return cumulative[at_day - 1] / (cumulative[at_known - 1] if at_known else 1.0)

        def at_limit_up(self, vt_symbol: str, day: date, close: float, st: bool) -> bool:
            previous = self.last_close.get(vt_symbol)
            if previous is None:
                return False
            reference = previous / self.inputs.ex_steps.get(vt_symbol, {}).get(day, 1.0)
            limit = math.floor(reference * (1 + limit_pct(vt_symbol, day, st)) * 100 + 0.5 + 1e-9) / 100
            return close >= limit - 1e-9

        def select(self, day: date, bars: dict[str, BarData]) -> list[str]:
            inputs = self.inputs
            members = self.members_on(day)
            candidates: list[tuple[int, str, float, float]] = []  # (position, vt_symbol, pe, roe)
            for position, vt_symbol in enumerate(self.vt_symbols):
                if members is not None and vt_symbol not in members:
                    continue
                bar = bars.get(vt_symbol)
                if bar is None or not bar.volume > 0 or day in inputs.suspended_days.get(vt_symbol, ()):
                    continue
                st = day in inputs.st_days.get(vt_symbol, ())
                if st or self.listed_days(vt_symbol, day) < self.min_listed_days:
                    continue
                eps, roe = self.fundamentals_on(vt_symbol, day)
                if not eps > 0 or roe != roe:
                    continue
                close = bar.close_price
                if self.at_limit_up(vt_symbol, day, close, st):
                    continue
                candidates.append((position, vt_symbol, close / eps, roe))
            if not candidates:
                return []
            pe_rank = pct_ranks([-c[2] for c in candidates])
            roe_rank = pct_ranks([c[3] for c in candidates])
            total = self.w_pe + self.w_roe
            scored = sorted(((-(self.w_pe * p + self.w_roe * r) / total, c[0], c[1])
                             for c, p, r in zip(candidates, pe_rank, roe_rank)))
            return [vt_symbol for _, _, vt_symbol in scored[:self.top_n]]

        def on_bars(self, bars: dict[str, BarData]) -> None:
            if bars:
                day = next(iter(bars.values())).datetime.date()
                if day in self.ends:
                    chosen = self.select(day, bars)
                    self.selections[day] = chosen
                    budget = self.notional * self.invested / self.top_n
                    picked = set(chosen)
                    for vt_symbol, bar in bars.items():
                        volume = int(budget / bar.close_price / self.lot) * self.lot if vt_symbol in picked else 0
                        self.set_target(vt_symbol, volume)
                    self.rebalance_portfolio(bars)
                    self.rebalances += 1
                    self.put_event()
            for vt_symbol, bar in bars.items():
                self.last_close[vt_symbol] = bar.close_price

        def calculate_price(self, vt_symbol: str, direction: Direction, reference: float) -> float:
            if direction == Direction.LONG:
                return reference + self.price_add
            return self.get_pricetick(vt_symbol)

    return VqmPortfolioStrategy


@dataclass
class VqmPeerRun:
    selections: dict[date, list[str]]  # decision day → chosen vt_symbols, best first
    run: PeerRun  # fills, days, daily equity, run_seconds (run_backtesting + calculate_result)


class VnpyVqmPeer(VnpyPeer):
    """One vnpy ``BacktestingEngine`` with its bars loaded once and any number of VQM runs on them."""

    def strategy_class(self) -> type:
        return strategy_class()

    def run(self, settings: dict[str, Any], inputs: VqmInputs) -> VqmPeerRun:  # type: ignore[override]
        """``run_backtesting`` + ``calculate_result`` for one parameter set, on the loaded bars."""
        run = super().run(settings, attach={"inputs": inputs})
        return VqmPeerRun(dict(self.engine.strategy.selections), run)
