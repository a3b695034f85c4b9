"""The attribution of one book over a window: the summary, the tables behind it and their files.

The residual is checked per day, independently of the lines: the day's residual is the equity change
minus every explained line of every symbol (the ``residual`` column summed over the day's rows, the
unassigned cash row ``CASH`` included). An error that reverts (+50 000 one day, −50 000 the next) cancels in
a net sum, so the check adds absolute daily residuals: residual_abs = Σ_days |daily residual|.

Gross P&L (the denominator of every share and of the coverage) is Σ over days and symbols of |daily symbol
P&L|, the symbols' book P&L only (not the unassigned cash, so a residual does not enlarge its own
denominator). Net P&L would let gains and losses cancel, so a flat period would make a 1 % bound
meaningless. coverage = 1 − residual_abs / gross; the bound is residual_abs ≤ 1 % of gross. The residual is
also reported in CNY and as a share of |net P&L| (a 20 000 CNY hole is small beside a year's gross but not
beside its net), with the number of days whose |residual| reaches RESIDUAL_TOLERANCE.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from .brinson import EFFECTS, SegmentAttribution, segment_attribution
from .csv_text import write_csv
from .decompose import ACTUAL, daily_table, decompose, holdings_grid, previous_reference
from .markouts import HORIZONS, markouts
from .records import CASH_SEGMENT, AttributionInput, Bars, Fills, Unfilled

By = Literal["day", "symbol", "segment"]
RESIDUAL_TOLERANCE = 0.01  # CNY: a day whose |residual| reaches one fen is not explained by the fills
RESIDUAL_BOUND = 0.01  # residual_abs ≤ 1 % of gross
CSV_DECIMALS = 4  # the long tables' amounts, to 0.0001 CNY (dates as YYYY-MM-DD)
FILES = ("attribution.csv", "attribution_summary.csv", "attribution_segments.csv",
         "attribution_segments_daily.csv", "markouts.csv", "attribution.md")


@dataclass(frozen=True)
class AttributionReport:
    strategy: str
    start: date
    end: date
    daily: pd.DataFrame  # one row per day and symbol: the ACTUAL lines, pnl, opportunity:<reason>
    summary: pd.DataFrame  # group, component, cny, share_of_gross
    gross: float
    coverage: float
    segments: SegmentAttribution | None
    markouts: pd.DataFrame
    source: str = ""
    residual_abs: float = 0.0  # Σ_days |daily residual|
    residual_days: int = 0  # days with |daily residual| ≥ RESIDUAL_TOLERANCE
    net: float = 0.0  # the equity change over the window
    brinson_start: pd.Timestamp | None = None  # the first day with a position or a fill (after the warm-up)
    warnings: tuple[str, ...] = ()  # the run's data warnings (membership coverage, missing bars): shown with it

    @cached_property  # frozen: computed once per report (the markdown, the tables and the files read it)
    def brinson(self) -> SegmentAttribution | None:
        """The segments from ``brinson_start`` on (``segments`` keeps every day, for re-reading)."""
        if self.segments is None or self.brinson_start is None:
            return self.segments
        return self.segments.between(self.brinson_start, pd.Timestamp(self.end))

    def daily_residual(self) -> pd.Series:
        """The residual per day: the equity change minus every explained line (all rows of the day)."""
        return self.daily.groupby("date")["residual"].sum()

    @property
    def residual_ok(self) -> bool:
        """The residual bound: Σ_days |daily residual| ≤ 1 % of gross (0 when there is no gross)."""
        return self.residual_abs <= RESIDUAL_BOUND * self.gross if self.gross else self.residual_abs < RESIDUAL_TOLERANCE

    def table(self, by: By) -> pd.DataFrame:
        """The ACTUAL lines and the paper bridge summed per day, per symbol, or (Brinson) per segment."""
        if by == "segment":
            if self.brinson is None:
                return pd.DataFrame({"result": ["no benchmark segments for this book"]})
            return self.brinson.linked()
        key = "date" if by == "day" else "vt_symbol"
        numeric = [c for c in self.daily.columns if c not in ("date", "strategy", "vt_symbol")]
        out = self.daily.groupby(key)[numeric].sum().reset_index()
        if by == "day":
            out["date"] = pd.to_datetime(out["date"]).dt.strftime("%Y-%m-%d")
        return out

    def markout_summary(self) -> pd.DataFrame:
        rows = []
        for k in HORIZONS:
            bp, cny = self.markouts[f"markout_t{k}_bp"], self.markouts[f"markout_t{k}_cny"]
            weights = (self.markouts["quantity"] * self.markouts["price"]).abs()
            known = bp.notna()
            mean_bp = float((bp[known] * weights[known]).sum() / weights[known].sum()) if known.any() else float("nan")
            rows.append({"horizon": f"T+{k}", "fills": int(known.sum()), "value_weighted_bp": round(mean_bp, 2),
                         "cny": round(float(cny[known].sum()), 2)})
        return pd.DataFrame(rows)

    def markdown(self) -> str:
        lines = [f"# P&L attribution: {self.strategy} {self.start} … {self.end}", ""]
        if self.source:
            lines += [f"source: {self.source}", ""]
        if self.warnings:
            lines += ["Data warnings of the run (the benchmark is built from the same data):", "",
                      *(f"- {w}" for w in self.warnings), ""]
        verdict = "within" if self.residual_ok else "OUTSIDE"
        lines += [f"gross P&L (Σ |daily symbol P&L|) {_cny(self.gross)} CNY; net P&L {_cny(self.net)} CNY; "
                  f"coverage {_share(self.coverage)} (1 − Σ|daily residual| / gross)", "",
                  f"residual: Σ_days |daily residual| {_cny(self.residual_abs)} CNY = "
                  f"{_share(self.residual_abs / self.gross if self.gross else float('nan'))} of gross "
                  f"({verdict} the {RESIDUAL_BOUND:.0%} bound), "
                  f"{_share(self.residual_abs / abs(self.net) if self.net else float('nan'))} of |net P&L|; "
                  f"{self.residual_days} day(s) with |residual| ≥ {RESIDUAL_TOLERANCE} CNY", "",
                  "Lines in `actual` sum to the equity change; `paper_bridge` adds the refused or reduced orders' "
                  "missed move to the holdings P&L; `brinson` splits the holdings P&L against the benchmark.", "",
                  _markdown_table(self.summary.assign(cny=self.summary["cny"].map(_cny),
                                                      share_of_gross=self.summary["share_of_gross"].map(_share)))]
        if self.brinson is not None:
            linked = self.brinson.linked()
            shown = linked.round({c: 2 if c.endswith("_cny") else 6 for c in linked.columns[1:]})
            shown[shown.columns[1:]] = shown[shown.columns[1:]] + 0.0  # no "-0.0"
            total_p = float(np.prod(1 + self.brinson.port_return) - 1)
            total_b = float(np.prod(1 + self.brinson.bench_return) - 1)
            lines += ["", "## Brinson–Fachler by segment (Carino-linked returns; CNY sums)", "",
                      _markdown_table(shown), "",
                      f"holdings return {total_p:.4%}, benchmark {total_b:.4%}, excess {total_p - total_b:.4%} = "
                      f"Σ linked effects {float(linked[list(EFFECTS)].to_numpy().sum()):.4%}"]
        lines += ["", "## Post-fill markouts (diagnostic, not a P&L line)", "",
                  _markdown_table(self.markout_summary())]
        return "\n".join(lines) + "\n"

    def write(self, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / name for name in FILES]
        write_csv(self.daily, paths[0], CSV_DECIMALS)
        self.summary.to_csv(paths[1], index=False)
        (self.brinson.linked() if self.brinson is not None else pd.DataFrame(columns=["segment"])).to_csv(
            paths[2], index=False)
        if self.segments is not None:  # full precision: `run.py attribution` links these again
            write_csv(self.segments.daily(), paths[3])
        else:
            pd.DataFrame(columns=["date", "segment"]).to_csv(paths[3], index=False)
        write_csv(self.markouts, paths[4], CSV_DECIMALS)
        paths[5].write_text(self.markdown(), encoding="utf-8")
        return paths


def _cny(value: float) -> str:
    """Amounts to the fen; "–" for an undefined one, and no "-0.00"."""
    return "–" if not np.isfinite(value) else f"{round(float(value), 2) + 0.0:,.2f}"


def _share(value: float) -> str:
    """A share in percent; "–" when undefined (a zero denominator), as the CSV leaves it empty."""
    return "–" if not np.isfinite(value) else f"{round(float(value), 4) + 0.0:.2%}"


def _markdown_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def span(days: pd.DatetimeIndex, start: date | None, end: date | None) -> tuple[int, int, str]:
    """The positions ``lo`` … ``hi`` (exclusive) of the book's days inside ``start`` … ``end`` and a note
    when the requested window reaches past the book (it is clamped to it); no day inside → ValueError."""
    lo = 0 if start is None else int(days.searchsorted(pd.Timestamp(start)))
    hi = len(days) if end is None else int(days.searchsorted(pd.Timestamp(end), side="right"))
    if lo >= hi:
        raise ValueError(f"no trading day of the run between {start} and {end} (the run covers "
                         f"{days[0].date()} … {days[-1].date()})")
    outside = (start is not None and pd.Timestamp(start) < days[0]) or (end is not None and pd.Timestamp(end) > days[-1])
    note = (f"the requested window {start or 'the start'} … {end or 'the end'} is clamped to the run's span "
            f"{days[0].date()} … {days[-1].date()}" if outside else "")
    return lo, hi, note


def _joined(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def window(data: AttributionInput, start: date | None, end: date | None) -> AttributionInput:
    """The book restricted to ``start`` … ``end``: the close, holdings and equity before start carry over."""
    days = data.bars.days
    lo, hi, _ = span(days, start, end)
    if lo == 0 and hi == len(days):
        return data
    bars = data.bars
    cut = slice(lo, hi)
    new_bars = Bars(days[cut], bars.symbols, bars.prev_close if lo == 0 else bars.close[lo - 1],
                    bars.close[cut], bars.basis[cut], bars.split[cut], bars.dividend[cut],
                    None if bars.suspended is None else bars.suspended[cut])
    f, u = data.fills, data.unfilled
    keep_f = (f.day >= lo) & (f.day < hi)
    keep_u = (u.day >= lo) & (u.day < hi)
    fills = Fills(f.day[keep_f] - lo, f.symbol[keep_f], f.quantity[keep_f], f.price[keep_f], f.commission[keep_f],
                  f.stamp_duty[keep_f], f.transfer_fee[keep_f])
    unfilled = Unfilled(u.day[keep_u] - lo, u.symbol[keep_u], u.quantity[keep_u],
                        tuple(r for r, k in zip(u.reason, keep_u) if k))
    bench = data.benchmark
    if bench is not None:
        bench = replace(bench, weights=bench.weights[cut], members=bench.members[cut])
    return replace(data, bars=new_bars, fills=fills, unfilled=unfilled, benchmark=bench,
                   start_holdings=data.start_holdings if lo == 0 else data.holdings[lo - 1],
                   holdings=data.holdings[cut], dividend_cash=data.dividend_cash[cut],
                   start_equity=data.start_equity if lo == 0 else float(data.equity[lo - 1]),
                   equity=data.equity[cut])


def attribute(data: AttributionInput, start: date | None = None, end: date | None = None,
              source: str = "") -> AttributionReport:
    """Decompose the book's P&L over ``start`` … ``end`` (default: all its days)."""
    marks = markouts(data)  # on the whole book: a fill near the window's end still has its T+5
    source = _joined(source, span(data.bars.days, start, end)[2])
    data = window(data, start, end)
    parts = decompose(data)
    segments = None
    if data.benchmark is not None:
        ref = previous_reference(data)  # (the segments weigh every day and symbol: whole grids)
        segments = segment_attribution(data, holdings_grid(data, ref), ref, data.benchmark)
    return assemble(data.strategy, daily_table(data, parts), segments, marks, source, days=data.bars.days)


def assemble(strategy: str, daily: pd.DataFrame, segments: SegmentAttribution | None, marks: pd.DataFrame,
             source: str = "", start: date | None = None, end: date | None = None,
             days: pd.DatetimeIndex | None = None) -> AttributionReport:
    """The report from its tables (the daily lines, the segments' daily effects, the markouts) cut to
    ``start`` … ``end``: how a stored backtest's attribution is re-read for another window. ``days``: the
    book's days (default: the segments', else the daily lines')."""
    if days is None:
        days = pd.DatetimeIndex(pd.to_datetime(daily["date"]).unique()).sort_values() if segments is None \
            else pd.DatetimeIndex(segments.days)
    if not len(days):
        raise ValueError("the run has no attributed day")
    first, last, note = span(days, start, end)
    lo, hi = days[first], days[last - 1]
    source = _joined(source, note)
    dates = pd.to_datetime(daily["date"])
    daily = daily[(dates >= lo) & (dates <= hi)].reset_index(drop=True)
    mark_dates = pd.to_datetime(marks["date"])
    marks = marks[(mark_dates >= lo) & (mark_dates <= hi)].reset_index(drop=True)
    if segments is not None:
        segments = segments.between(lo, hi)
    book = daily["vt_symbol"] != CASH_SEGMENT
    gross = float(daily.loc[book, "pnl"].abs().sum())
    per_day = daily.groupby("date")["residual"].sum().abs()
    residual_abs = float(per_day.sum())
    totals = {name: float(daily[name].sum()) for name in ACTUAL}
    rows = [("actual", name, value) for name, value in totals.items()]
    rows.append(("actual", "total (equity change)", float(daily["pnl"].sum())))
    opportunity = {c.split(":", 1)[1]: float(daily[c].sum()) for c in daily.columns if c.startswith("opportunity:")}
    rows += [("paper_bridge", f"opportunity:{reason}", value) for reason, value in opportunity.items()]
    rows.append(("paper_bridge", "paper holdings P&L", totals["holdings"] + sum(opportunity.values())))
    brinson_start = None
    if segments is not None:
        # Before the first fill (a backtest starts in cash and waits for its first decision) the book holds
        # nothing: the Brinson split starts at the first day with a position or a fill, the benchmark's P&L
        # over the warm-up is stated apart.
        held = pd.to_datetime(daily.loc[book & ((daily["holdings"] != 0) | (daily["pnl"] != 0)), "date"])
        first = held.min() if len(held) else hi + pd.Timedelta(days=1)
        if first > lo:
            warm = segments.between(lo, first - pd.Timedelta(days=1))
            shown = f"{lo.date()} … {warm.days[-1].date()}" if len(warm.days) else ""
            rows.append(("warm-up (not attributed)", f"benchmark P&L before the first fill {shown} "
                         f"({len(warm.days)} days)", warm.benchmark_cny()))
        brinson_start = first
        attributed = segments.between(first, hi)
        linked = attributed.linked()
        rows.append(("brinson", f"benchmark ({segments.name})", attributed.benchmark_cny()))
        rows += [("brinson", name, float(linked[f"{name}_cny"].sum())) for name in EFFECTS]
        cash = linked[linked["segment"] == CASH_SEGMENT]
        rows.append(("brinson (of which)", "cash drag (CASH allocation)", float(cash["allocation_cny"].sum())))
        if attributed.defensive_cny is not None:
            rows.append(("brinson (beside)", f"defensive-asset drag ({attributed.defensive_name}: its P&L − "
                         "its value × benchmark return)", float(attributed.defensive_cny.sum())))
    rows.append(("check", "residual, sum of absolute daily residuals", residual_abs))
    summary = pd.DataFrame(rows, columns=["group", "component", "cny"])
    summary["share_of_gross"] = summary["cny"] / gross if gross else float("nan")
    if gross:
        coverage = 1.0 - residual_abs / gross
    else:  # nothing held or traded: covered when nothing is unexplained either
        coverage = 1.0 if residual_abs < RESIDUAL_TOLERANCE else 0.0
    return AttributionReport(strategy, lo.date(), hi.date(), daily, summary, gross, coverage, segments, marks, source,
                             residual_abs, int((per_day >= RESIDUAL_TOLERANCE).sum()), float(daily["pnl"].sum()),
                             brinson_start)
