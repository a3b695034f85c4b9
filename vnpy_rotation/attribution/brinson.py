"""Brinson–Fachler attribution of the holdings return per day, a cash segment, and Carino linking.

Per day t and segment s (portfolio weights w_p at the decision close: end-of-day holdings valued at the
previous close over the previous equity; cash is the rest, return 0; benchmark weights w_b, each
segment's benchmark return R_b,s its members' mean close-to-close return on the same share basis):

    allocation  = (w_p − w_b)·(R_b,s − R_b)
    selection   = w_b·(R_p,s − R_b,s)
    interaction = (w_p − w_b)·(R_p,s − R_b,s)

Σ_s of the three = R_p − R_b exactly, since Σ w_p = Σ w_b = 1 (Brinson & Fachler, "Measuring Non-US
Equity Portfolio Performance", Journal of Portfolio Management, Spring 1985). A segment the portfolio does
not hold gets R_p,s := R_b,s (no selection). The cash segment has w_b = 0, so its allocation
−w_cash·R_b is the cash drag. A defensive asset (the bond ETF a rotation parks empty slots in) sits in its
pool's segment, so its drag is reported beside the split: Σ w_def·(r_def − R_b)·equity_prev = its holdings
P&L − its decision-close value × R_b (CNY per day). In CNY each effect is multiplied by the previous
equity: holdings P&L = benchmark P&L + allocation + selection + interaction, exactly, every day.

Linking over days: Carino, D. (1999) "Combining Attribution Effects Over Time", The Journal of
Performance Measurement 3(4), 5–14. Each day's effects are scaled by k_t / k with
k_t = (ln(1+R_p,t) − ln(1+R_b,t)) / (R_p,t − R_b,t) and k the same over the whole period on the
compounded returns, so the linked effects sum to the compounded excess return R_P − R_B.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .records import CASH_SEGMENT, AttributionInput, Benchmark, FloatArray

EFFECTS = ("allocation", "selection", "interaction")


def brinson_fachler(w_p: FloatArray, w_b: FloatArray, r_p: FloatArray, r_b: FloatArray
                    ) -> dict[str, FloatArray]:
    """One period's effects per segment (the last axis); weights sum to 1 along it."""
    r_p = np.where(w_p == 0, r_b, r_p)
    total_b = (w_b * r_b).sum(axis=-1, keepdims=True)
    return {"allocation": (w_p - w_b) * (r_b - total_b),
            "selection": w_b * (r_p - r_b),
            "interaction": (w_p - w_b) * (r_p - r_b)}


def _carino_k(r_p: FloatArray, r_b: FloatArray) -> FloatArray:
    diff = r_p - r_b
    same = np.abs(diff) < 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        k = (np.log1p(r_p) - np.log1p(r_b)) / np.where(same, 1.0, diff)
    return np.asarray(np.where(same, 1.0 / (1.0 + r_p), k), dtype=np.float64)


def carino_link(effects: FloatArray, r_p: FloatArray, r_b: FloatArray) -> FloatArray:
    """Link ``effects`` (periods × anything) given each period's portfolio and benchmark returns."""
    total_p = float(np.prod(1.0 + r_p) - 1.0)
    total_b = float(np.prod(1.0 + r_b) - 1.0)
    k_t = _carino_k(r_p, r_b)
    k = float(_carino_k(np.array([total_p]), np.array([total_b]))[0])
    shape = (len(r_p),) + (1,) * (effects.ndim - 1)
    return np.asarray((effects * (k_t / k).reshape(shape)).sum(axis=0), dtype=np.float64)


@dataclass(frozen=True)
class SegmentAttribution:
    name: str  # the benchmark's
    days: pd.DatetimeIndex
    segments: tuple[str, ...]  # the benchmark's segments, then any other held, then CASH
    w_p: FloatArray  # days × segments
    w_b: FloatArray
    r_p: FloatArray
    r_b: FloatArray
    effects: dict[str, FloatArray]  # days × segments, returns
    port_return: FloatArray  # (days,) holdings return
    bench_return: FloatArray  # (days,)
    equity_prev: FloatArray  # (days,)
    defensive_cny: FloatArray | None = None  # (days,) the defensive asset's drag, when there is one
    defensive_name: str = ""

    def daily(self) -> pd.DataFrame:
        """One row per day and segment, in returns and CNY (``from_daily`` reads it back)."""
        n, k = self.w_p.shape
        table = pd.DataFrame({"date": np.repeat(self.days, k), "benchmark": self.name,
                              "equity_prev": np.repeat(self.equity_prev, k), "segment": np.tile(np.array(self.segments, dtype=object), n),
                              "w_p": self.w_p.reshape(-1), "w_b": self.w_b.reshape(-1),
                              "r_p": self.r_p.reshape(-1), "r_b": self.r_b.reshape(-1)})
        for name in EFFECTS:
            table[name] = self.effects[name].reshape(-1)
            table[f"{name}_cny"] = (self.effects[name] * self.equity_prev[:, None]).reshape(-1)
        if self.defensive_cny is not None:
            table["defensive"] = self.defensive_name
            table["defensive_drag_cny"] = np.repeat(self.defensive_cny, k)
        return table

    @classmethod
    def from_daily(cls, table: pd.DataFrame) -> "SegmentAttribution":
        """Rebuild from :meth:`daily`'s table."""
        days = pd.DatetimeIndex(pd.to_datetime(table["date"]).unique())
        segments = tuple(str(s) for s in table["segment"].iloc[:len(table) // len(days)])
        shape = (len(days), len(segments))

        def grid(column: str) -> FloatArray:
            return np.asarray(table[column].to_numpy(float).reshape(shape), dtype=np.float64)

        w_p, w_b, r_p, r_b = grid("w_p"), grid("w_b"), grid("r_p"), grid("r_b")
        drag = grid("defensive_drag_cny")[:, 0] if "defensive_drag_cny" in table.columns else None
        return cls(str(table["benchmark"].iloc[0]), days, segments, w_p, w_b, r_p, r_b,
                   {name: grid(name) for name in EFFECTS}, (w_p * r_p).sum(axis=1), (w_b * r_b).sum(axis=1),
                   grid("equity_prev")[:, 0], drag,
                   str(table["defensive"].iloc[0]) if drag is not None else "")

    def between(self, start: pd.Timestamp, end: pd.Timestamp) -> "SegmentAttribution":
        keep = (self.days >= start) & (self.days <= end)
        return SegmentAttribution(self.name, self.days[keep], self.segments, self.w_p[keep], self.w_b[keep],
                                  self.r_p[keep], self.r_b[keep], {k: v[keep] for k, v in self.effects.items()},
                                  self.port_return[keep], self.bench_return[keep], self.equity_prev[keep],
                                  None if self.defensive_cny is None else self.defensive_cny[keep], self.defensive_name)

    def linked(self) -> pd.DataFrame:
        """Carino-linked effects per segment over the period (returns) and the CNY sums."""
        rows = {"segment": list(self.segments)}
        for name in EFFECTS:
            rows[name] = list(carino_link(self.effects[name], self.port_return, self.bench_return))
            rows[f"{name}_cny"] = list((self.effects[name] * self.equity_prev[:, None]).sum(axis=0))
        return pd.DataFrame(rows)

    def benchmark_cny(self) -> float:
        return float((self.bench_return * self.equity_prev).sum())


def segment_attribution(data: AttributionInput, holdings_pnl: FloatArray, prev_ref: FloatArray,
                        benchmark: Benchmark) -> SegmentAttribution:
    bars = data.bars
    held_segments = [s for s in dict.fromkeys(benchmark.segment_of) if s not in benchmark.segments]
    segments = (*benchmark.segments, *held_segments, CASH_SEGMENT)
    index = {s: k for k, s in enumerate(segments)}
    onehot = np.zeros((len(bars.symbols), len(segments)))
    onehot[np.arange(len(bars.symbols)), [index[s] for s in benchmark.segment_of]] = 1.0
    equity_prev = np.concatenate([[data.start_equity], data.equity[:-1]])
    # Day × symbol work arrays are computed in place, one at a time (a whole market's are hundreds of MB each).
    held_value = np.multiply(data.holdings, prev_ref)
    value = np.nan_to_num(held_value, copy=False) @ onehot  # decision-close value per segment
    del held_value
    w_p = value / equity_prev[:, None]
    w_p[:, -1] = 1.0 - w_p[:, :-1].sum(axis=1)
    pnl = holdings_pnl @ onehot
    with np.errstate(divide="ignore", invalid="ignore"):
        r_p = np.where(value != 0, pnl / value, 0.0)
        member_return = np.divide(bars.close, prev_ref)
    member_return -= 1.0
    valid = benchmark.members & np.isfinite(member_return)
    counts = valid.astype(np.float64) @ onehot
    member_return[~valid] = 0.0
    sums = member_return @ onehot
    del member_return
    with np.errstate(divide="ignore", invalid="ignore"):
        r_b = np.where(counts > 0, sums / counts, 0.0)
    r_b[:, -1] = 0.0  # cash earns nothing here
    w_b = np.zeros_like(w_p)
    w_b[:, :len(benchmark.segments)] = benchmark.weights
    effects = brinson_fachler(w_p, w_b, r_p, r_b)
    bench_return = (w_b * r_b).sum(axis=1)
    defensive = [bars.symbols.index(s) for s in benchmark.defensive if s in bars.symbols]
    drag = None
    if defensive:  # its P&L − its decision-close value × R_b
        drag = (holdings_pnl[:, defensive].sum(axis=1)
                - np.nan_to_num(data.holdings[:, defensive] * prev_ref[:, defensive]).sum(axis=1) * bench_return)
    return SegmentAttribution(benchmark.name, bars.days, segments, w_p, w_b, np.where(w_p == 0, r_b, r_p), r_b, effects,
                              holdings_pnl.sum(axis=1) / equity_prev, bench_return, equity_prev, drag,
                              ", ".join(bars.symbols[j] for j in defensive))
