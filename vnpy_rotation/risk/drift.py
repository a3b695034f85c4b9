"""Drift monitors: is the recent window still drawn from the reference window's world?

Each monitor is a statistic of (reference window, recent window) where a larger value means more drift:

- ``volatility`` (returns): recent realised volatility / the reference's (a ratio: 2.0 = doubled);
- ``volume`` (traded volume or turnover): ``|log(mean recent / mean reference)|`` (surges and droughts);
- ``factor_psi`` (factor panel): population stability index over quantile bins of the reference;
- ``factor_ks`` (factor panel) and ``return_ks`` (returns): two-sample Kolmogorov–Smirnov distance D;
- ``return_mean`` (returns): ``|mean recent − mean reference|`` in reference standard deviations;
- ``order_book`` (tick bid/ask volumes): KS distance D of the imbalance ``(bid − ask) / (bid + ask)``.

Inputs are rows (a trading day; a tick for the order book) by columns (symbols); a 2-D panel is pooled
(NaN dropped), except that volatility uses the equal-weight basket's return (row mean) and volume the row
total. The threshold of every monitor comes from its NULL distribution: the statistic of ``null_draws``
windows of the recent window's length resampled (seeded, in contiguous blocks) from the reference itself,
each compared with the reference less its own rows, at the configured quantile (99 % by default). Folklore thresholds (PSI 0.1 / 0.25) assume large iid
samples; 20 daily points of a 300-symbol panel are neither, and the null says how large the statistic
gets by chance on this very reference. A monitor whose input is missing or too short reports
``available=False`` with the reason instead of a number.

:func:`calibrate` once per reference window (cache its :class:`Calibration`, keyed by
:attr:`Calibration.key`), :func:`evaluate` every session; :func:`drift_history` runs the same over a
history, recalibrating every ``recalibrate_every`` rows.
"""

from __future__ import annotations

import functools
import hashlib
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

Array = npt.NDArray[np.float64]
MonitorName = Literal["volatility", "volume", "factor_psi", "factor_ks", "return_ks", "return_mean",
                      "order_book"]
InputName = Literal["returns", "volume", "factor", "imbalance"]
ALL_MONITORS: tuple[MonitorName, ...] = get_args(MonitorName)
_CHUNK_VALUES = 1_000_000  # values per batch of null windows: bounds memory (~100 MB of temporaries)


class DriftConfig(BaseModel):
    """The drift monitors' settings, validated once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reference_days: int = Field(default=500, ge=20)  # rows of the reference window (two trading years)
    recent_days: int = Field(default=20, ge=2)  # rows of the recent window (a trading month)
    quantile: float = Field(default=0.99, gt=0.5, lt=1.0)  # of the null distribution: the threshold
    bins: int = Field(default=10, ge=2)  # PSI quantile bins (fewer when the reference has ties)
    # PSI: a bin share below this is raised to it, so an empty bin costs a large but finite amount.
    psi_epsilon: float = Field(default=1e-4, gt=0.0, lt=0.01)
    null_draws: int = Field(default=1000, ge=100)
    # Resampling block in rows (a trading week): blocks keep the serial dependence inside them, and more
    # blocks give more distinct null windows. None: one contiguous block of the recent window's length,
    # whose overlapping windows make the 99 % quantile noisy (measured: ~2.5 % false alarms at R = 250).
    block: int | None = Field(default=5, ge=1)
    seed: int = 20240101
    tick_window: int = Field(default=4800, ge=10)  # order book: recent ticks compared (a day of 3 s snapshots)
    tick_reference: int = Field(default=48000, ge=20)  # order book: reference ticks
    tick_block: int = Field(default=200, ge=1)  # order book: resampling block in ticks (10 minutes at 3 s)
    monitors: tuple[MonitorName, ...] = ALL_MONITORS
    # Monitors whose breach is a drift alert (feeds the response ladder); the others are reported only.
    # Volume is out by default: ETF turnover trends with fund size, and on the bundled ETFs it breaches
    # on 15-35 % of days (docs/risk/drift.md), which is information, not an alarm.
    alerting: tuple[MonitorName, ...] = tuple(m for m in ALL_MONITORS if m != "volume")

    @model_validator(mode="after")
    def _consistent(self) -> DriftConfig:
        if self.recent_days * 2 > self.reference_days:
            raise ValueError(f"reference_days ({self.reference_days}) must be at least twice recent_days "
                             f"({self.recent_days})")
        if self.tick_window * 2 > self.tick_reference:
            raise ValueError(f"tick_reference ({self.tick_reference}) must be at least twice tick_window "
                             f"({self.tick_window})")
        if self.block is not None and self.block > self.recent_days:
            raise ValueError(f"block ({self.block}) must not exceed recent_days ({self.recent_days})")
        if self.tick_block > self.tick_window:
            raise ValueError(f"tick_block ({self.tick_block}) must not exceed tick_window ({self.tick_window})")
        if self.null_draws * (1 - self.quantile) < 5:
            raise ValueError(f"null_draws ({self.null_draws}) leaves fewer than 5 draws above the "
                             f"{self.quantile:g} quantile: the threshold would be a guess")
        if len(set(self.monitors)) != len(self.monitors):
            raise ValueError(f"monitors repeats a name: {list(self.monitors)}")
        return self

    def window(self, monitor: MonitorName) -> tuple[int, int, int]:
        """(reference rows, recent rows, resampling block) of ``monitor``."""
        if monitor == "order_book":
            return self.tick_reference, self.tick_window, self.tick_block
        return self.reference_days, self.recent_days, self.block or self.recent_days


@dataclass(frozen=True)
class DriftInputs:
    """One window of every monitor's input; ``None`` where the input does not exist.

    ``returns``, ``volume``, ``factor``: rows are trading days, columns symbols (1-D: one series).
    ``bid_volume``/``ask_volume``: level-1 volumes of consecutive ticks (1-D), where ticks are recorded.
    """

    returns: Array | None = None
    volume: Array | None = None
    factor: Array | None = None
    bid_volume: Array | None = None
    ask_volume: Array | None = None


@dataclass(frozen=True)
class DriftResult:
    """One monitor on one recent window."""

    monitor: MonitorName
    available: bool
    statistic: float | None  # None when not available
    threshold: float | None  # the null distribution's quantile; None when not available
    breached: bool  # statistic > threshold (never when not available)
    reason: str


@dataclass(frozen=True)
class DriftReport:
    results: tuple[DriftResult, ...]
    alerting: tuple[MonitorName, ...]  # the config's alerting monitors

    @property
    def breached(self) -> tuple[MonitorName, ...]:
        """Every monitor that breached."""
        return tuple(r.monitor for r in self.results if r.breached)

    @property
    def alerts(self) -> tuple[MonitorName, ...]:
        """The breached monitors that raise a drift alert (``Observations.drift`` of the response)."""
        return tuple(m for m in self.breached if m in self.alerting)

    def get(self, monitor: MonitorName) -> DriftResult:
        return next(r for r in self.results if r.monitor == monitor)


# --- statistics: each a function of the prepared reference and a batch of windows (B, rows, columns) ---
# With ``leave_out`` (the null draws) every window is compared with the reference WITHOUT its own rows:
# a window taken from the reference is part of it and would otherwise look closer to it than an
# independent recent window does (by about m/R of the variance: 1.9-2.6 % false alarms instead of ~1 %
# at R = 250, m = 20 in a synthetic check). The reference's sufficient statistics make this cheap.

@dataclass(frozen=True)
class _Reference:
    """What the statistics need from the reference, computed once."""

    rows: Array  # (rows, columns) as the monitor sees them
    pooled_sorted: Array  # finite values, sorted
    mean: float
    std: float
    centred_sum: float  # of (value − mean) over finite values (0 up to rounding)
    centred_squares: float  # of (value − mean)²
    edges: Array  # PSI interior bin edges (strictly increasing)
    counts: Array  # PSI reference count per bin


def _prepare(rows: Array, bins: int) -> _Reference:
    pooled = np.sort(rows[np.isfinite(rows)])
    quantiles = np.quantile(pooled, np.arange(1, bins) / bins) if pooled.size else np.array([])
    edges = np.unique(quantiles)  # ties in the reference merge bins rather than leave empty ones
    counts = np.bincount(np.searchsorted(edges, pooled, side="right"), minlength=edges.size + 1)
    mean = float(pooled.mean()) if pooled.size else math.nan
    centred = pooled - mean
    std = float(pooled.std(ddof=1)) if pooled.size > 1 else math.nan
    return _Reference(rows, pooled, mean, std, float(centred.sum()), float((centred ** 2).sum()), edges,
                      counts.astype(float))


def _flat(windows: Array) -> Array:
    return windows.reshape(windows.shape[0], -1)


@dataclass(frozen=True)
class _Moments:
    """Per window: finite count, mean, sample sd; and the base's (reference, less the window with leave-out)."""

    mean: Array
    std: Array
    base_mean: Array
    base_std: Array


def _moments(ref: _Reference, windows: Array, leave_out: bool) -> _Moments:
    flat = _flat(windows)
    finite = np.isfinite(flat)
    n = finite.sum(axis=1)
    centred = np.where(finite, flat - ref.mean, 0.0)
    s1, s2 = centred.sum(axis=1), (centred ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_c = s1 / n
        std = np.sqrt((s2 - n * mean_c ** 2) / (n - 1))
        size = ref.pooled_sorted.size
        if leave_out:
            nb = size - n
            base_c = (ref.centred_sum - s1) / nb
            base_std = np.sqrt((ref.centred_squares - s2 - nb * base_c ** 2) / (nb - 1))
        else:
            base_c = np.full(len(n), ref.centred_sum / size)
            base_std = np.full(len(n), ref.std)
    return _Moments(mean_c + ref.mean, std, base_c + ref.mean, base_std)


def _volatility(ref: _Reference, windows: Array, epsilon: float, leave_out: bool) -> Array:
    m = _moments(ref, windows, leave_out)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(m.std / m.base_std, dtype=float)


def _log_level(ref: _Reference, windows: Array, epsilon: float, leave_out: bool) -> Array:
    m = _moments(ref, windows, leave_out)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.abs(np.log(m.mean / m.base_mean)), dtype=float)


def _mean_shift(ref: _Reference, windows: Array, epsilon: float, leave_out: bool) -> Array:
    m = _moments(ref, windows, leave_out)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.abs(m.mean - m.base_mean) / m.base_std, dtype=float)


def _psi(ref: _Reference, windows: Array, epsilon: float, leave_out: bool) -> Array:
    flat = _flat(windows)
    k = ref.edges.size + 1
    finite = np.isfinite(flat)
    index = np.where(finite, np.searchsorted(ref.edges, np.where(finite, flat, 0.0), side="right"), k)
    offsets = (np.arange(flat.shape[0]) * (k + 1))[:, None]
    counts = np.bincount((index + offsets).ravel(), minlength=flat.shape[0] * (k + 1))
    counts = counts.reshape(flat.shape[0], k + 1)[:, :k].astype(float)
    base = ref.counts[None, :] - counts if leave_out else np.broadcast_to(ref.counts, counts.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.maximum(counts / counts.sum(axis=1, keepdims=True), epsilon)
        base_shares = np.maximum(base / base.sum(axis=1, keepdims=True), epsilon)
        return np.asarray(((shares - base_shares) * np.log(shares / base_shares)).sum(axis=1), dtype=float)


def ks_distance(reference_sorted: Array, windows: Array, leave_out: bool = False) -> Array:
    """Two-sample KS distance D = sup |F_ref − F_window| of each row of ``windows`` (NaN ignored) against
    the sorted finite ``reference_sorted``; equals ``scipy.stats.ks_2samp(...).statistic`` row by row.
    With ``leave_out`` each row's values are taken out of the reference first (they must be among its
    values, as in a null draw).

    Both ECDFs are step functions; between two consecutive window values the window's is flat while the
    reference's rises, so the supremum is reached at a window value x, either at x (both right-continuous)
    or just before it (both left limits). Ties within the window count each run of equal values as one step.
    """
    flat = np.sort(_flat(windows), axis=1)  # NaN sorts last
    n = np.isfinite(flat).sum(axis=1, keepdims=True)
    width = flat.shape[1]
    position = np.arange(width)[None, :]
    valid = position < n
    # Run boundaries of equal values: the window's count of values below and up to each value.
    new_run = np.ones_like(valid)
    new_run[:, 1:] = flat[:, 1:] != flat[:, :-1]
    run_end = np.ones_like(valid)
    run_end[:, :-1] = new_run[:, 1:]
    below = np.maximum.accumulate(np.where(new_run, position, 0), axis=1)
    upto = np.minimum.accumulate(np.where(run_end, position, width)[:, ::-1], axis=1)[:, ::-1] + 1
    right = np.searchsorted(reference_sorted, flat, side="right").astype(float)
    left = np.searchsorted(reference_sorted, flat, side="left").astype(float)
    size = np.full(n.shape, float(reference_sorted.size))
    if leave_out:
        right, left, size = right - upto, left - below, size - n
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.maximum(np.abs(right / size - upto / n), np.abs(left / size - below / n))
    gap = np.where(valid, gap, 0.0)
    return np.where(n[:, 0] > 0, gap.max(axis=1), np.nan)


def _ks(ref: _Reference, windows: Array, epsilon: float, leave_out: bool) -> Array:
    return ks_distance(ref.pooled_sorted, windows, leave_out)


Statistic = Callable[[_Reference, Array, float, bool], Array]


@dataclass(frozen=True)
class MonitorSpec:
    """A row of the monitor table: which input, how rows are formed, the statistic."""

    input: InputName
    reduce: Literal["mean", "sum", "pool"]  # a 2-D input: row mean (basket), row total, or pooled values
    statistic: Statistic
    describes: str


MONITORS: Mapping[MonitorName, MonitorSpec] = {
    "volatility": MonitorSpec("returns", "mean", _volatility, "realised volatility ratio"),
    "volume": MonitorSpec("volume", "sum", _log_level, "|log volume intensity ratio|"),
    "factor_psi": MonitorSpec("factor", "pool", _psi, "PSI of the factor panel"),
    "factor_ks": MonitorSpec("factor", "pool", _ks, "KS distance of the factor panel"),
    "return_ks": MonitorSpec("returns", "pool", _ks, "KS distance of returns"),
    "return_mean": MonitorSpec("returns", "pool", _mean_shift, "mean shift of returns in reference sd"),
    "order_book": MonitorSpec("imbalance", "pool", _ks, "KS distance of the order-book imbalance"),
}


# --- inputs ------------------------------------------------------------------------------------------

def _input(inputs: DriftInputs, name: InputName) -> tuple[Array | None, str]:
    """The monitor's raw rows, or None with the reason they do not exist."""
    if name == "imbalance":
        if inputs.bid_volume is None or inputs.ask_volume is None:
            return None, "no tick data: daily bars carry no bid/ask volumes (needs live XT or recorded ticks)"
        bid = np.asarray(inputs.bid_volume, dtype=float)
        ask = np.asarray(inputs.ask_volume, dtype=float)
        if bid.shape != ask.shape or bid.ndim != 1:
            raise ValueError(f"bid_volume {bid.shape} and ask_volume {ask.shape} must be 1-D of one length")
        total = bid + ask
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, (bid - ask) / total, np.nan), ""
    raw = getattr(inputs, name)
    if raw is None:
        return None, f"no {name} input"
    values = np.asarray(raw, dtype=float)
    if values.ndim not in (1, 2):
        raise ValueError(f"{name}: expected rows or rows x columns, got shape {values.shape}")
    return values, ""


def _rows(values: Array, reduce: Literal["mean", "sum", "pool"]) -> Array:
    if values.ndim == 1:
        return values[:, None]
    if reduce == "pool":
        return values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN row (no symbol traded) stays NaN
        reduced = np.nanmean(values, axis=1) if reduce == "mean" else np.nansum(values, axis=1)
    if reduce == "sum":
        reduced = np.where(np.isfinite(values).any(axis=1), reduced, np.nan)
    return np.asarray(reduced, dtype=float)[:, None]


def _tail(rows: Array, length: int) -> Array | None:
    return rows[-length:] if rows.shape[0] >= length else None


# --- calibration -------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=64)
def null_windows(rows: int, length: int, draws: int, block: int, seed: int) -> npt.NDArray[np.int64]:
    """Row indices (draws × length) of windows resampled from ``rows`` reference rows (seeded).

    Each window is ``ceil(length / block)`` distinct contiguous blocks, picked without replacement from
    the blocks that tile the reference from a random phase, and cut to ``length``: no row repeats within
    a window (so leaving the window out of the reference is exact), and a block keeps the serial
    dependence of the data inside it.
    """
    rng = np.random.default_rng(seed)
    blocks = -(-length // block)
    phase = rng.integers(0, block, size=draws)
    available = (rows - phase) // block  # whole blocks after the phase
    if int(available.min()) < blocks:
        raise ValueError(f"{rows} rows cannot hold {blocks} blocks of {block}")
    keys = rng.random((draws, int(available.max())))
    keys[np.arange(keys.shape[1])[None, :] >= available[:, None]] = np.inf
    chosen = np.argsort(keys, axis=1)[:, :blocks]
    starts = phase[:, None] + chosen * block
    index = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(draws, -1)
    # Cached (a history recalibrates on windows of one shape many times): callers only read it.
    out = np.ascontiguousarray(index[:, :length], dtype=np.int64)
    out.flags.writeable = False
    return out


def null_distribution(reference: _Reference, statistic: Statistic, length: int, block: int,
                      config: DriftConfig, seed: int) -> Array:
    """The statistic on ``config.null_draws`` windows of ``length`` rows resampled from the reference,
    each compared with the reference less its own rows."""
    index = null_windows(reference.rows.shape[0], length, config.null_draws, block, seed)
    chunk = max(1, _CHUNK_VALUES // (length * reference.rows.shape[1]))
    parts = [statistic(reference, reference.rows[index[k:k + chunk]], config.psi_epsilon, True)
             for k in range(0, len(index), chunk)]
    return np.concatenate(parts)


@dataclass(frozen=True)
class MonitorCalibration:
    monitor: MonitorName
    available: bool
    reason: str  # why not available ("" when available)
    threshold: float | None
    null: Array = field(repr=False)  # the null draws (empty when not available)
    reference: _Reference | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Calibration:
    """Thresholds and prepared references of every configured monitor for one reference window."""

    config: DriftConfig
    key: str  # digest of the config and the reference inputs: equal keys, equal calibrations
    monitors: tuple[MonitorCalibration, ...]

    def get(self, monitor: MonitorName) -> MonitorCalibration:
        return next(m for m in self.monitors if m.monitor == monitor)


def calibration_key(reference: DriftInputs, config: DriftConfig) -> str:
    """A digest of what a calibration depends on (for caching across sessions)."""
    digest = hashlib.sha256(config.model_dump_json().encode())
    for name in ("returns", "volume", "factor", "bid_volume", "ask_volume"):
        value = getattr(reference, name)
        digest.update(name.encode())
        if value is not None:
            array = np.ascontiguousarray(value, dtype=float)
            digest.update(str(array.shape).encode() + array.tobytes())
    return digest.hexdigest()


def _calibrate_one(monitor: MonitorName, reference: DriftInputs, config: DriftConfig) -> MonitorCalibration:
    spec = MONITORS[monitor]
    values, reason = _input(reference, spec.input)
    empty = np.array([], dtype=float)
    if values is None:
        return MonitorCalibration(monitor, False, reason, None, empty)
    need, length, block = config.window(monitor)
    rows = _tail(_rows(values, spec.reduce), need)
    if rows is None:
        return MonitorCalibration(monitor, False, f"reference has {values.shape[0]} rows of {spec.input}, "
                                  f"needs {need}", None, empty)
    prepared = _prepare(rows, config.bins)
    if prepared.pooled_sorted.size < 2 or not prepared.std > 0:
        return MonitorCalibration(monitor, False, f"reference {spec.input} is constant or empty", None, empty)
    # One stream per monitor, derived from the seed and the name: adding a monitor changes no other's draws.
    seed = int.from_bytes(hashlib.sha256(f"{config.seed}:{monitor}".encode()).digest()[:8], "little")
    null = null_distribution(prepared, spec.statistic, length, block, config, seed)
    finite = null[np.isfinite(null)]
    if finite.size < config.null_draws // 2:
        return MonitorCalibration(monitor, False, "the null distribution is mostly undefined (too many gaps "
                                  "in the reference)", None, empty)
    threshold = float(np.quantile(finite, config.quantile, method="higher"))
    return MonitorCalibration(monitor, True, "", threshold, null, prepared)


def calibrate(reference: DriftInputs, config: DriftConfig | None = None) -> Calibration:
    """Every configured monitor's threshold from its null distribution on ``reference`` (the last
    ``reference_days`` rows / ``tick_reference`` ticks are used). Deterministic: same inputs, same result."""
    config = config or DriftConfig()
    monitors = tuple(_calibrate_one(m, reference, config) for m in config.monitors)
    return Calibration(config, calibration_key(reference, config), monitors)


# --- evaluation --------------------------------------------------------------------------------------

def _judge(cal: MonitorCalibration, statistic: float, quantile: float) -> DriftResult:
    assert cal.threshold is not None
    if math.isnan(statistic):
        return DriftResult(cal.monitor, False, None, cal.threshold, False,
                           "the recent window has no usable values")
    breached = statistic > cal.threshold
    verb = "above" if breached else "within"
    return DriftResult(cal.monitor, True, statistic, cal.threshold, breached,
                       f"{MONITORS[cal.monitor].describes} {statistic:.4g} {verb} the threshold "
                       f"{cal.threshold:.4g} (the {quantile:.1%} quantile of {cal.null.size} null draws)")


def evaluate(calibration: Calibration, recent: DriftInputs) -> DriftReport:
    """Every calibrated monitor on the recent window (its last ``recent_days`` rows / ``tick_window`` ticks)."""
    results = []
    for cal in calibration.monitors:
        if not cal.available or cal.reference is None:
            results.append(DriftResult(cal.monitor, False, None, None, False, cal.reason))
            continue
        spec = MONITORS[cal.monitor]
        values, reason = _input(recent, spec.input)
        _, length, _ = calibration.config.window(cal.monitor)
        rows = None if values is None else _tail(_rows(values, spec.reduce), length)
        if values is None or rows is None:
            why = reason or f"recent window has {values.shape[0] if values is not None else 0} rows of " \
                            f"{spec.input}, needs {length}"
            results.append(DriftResult(cal.monitor, False, None, cal.threshold, False, why))
            continue
        statistic = float(spec.statistic(cal.reference, rows[None], calibration.config.psi_epsilon, False)[0])
        results.append(_judge(cal, statistic, calibration.config.quantile))
    return DriftReport(tuple(results), calibration.config.alerting)


def monitor(name: MonitorName, reference: DriftInputs, recent: DriftInputs,
            config: DriftConfig | None = None) -> DriftResult:
    """One monitor as a pure function of (reference window, recent window): calibrate, then evaluate."""
    config = (config or DriftConfig()).model_copy(update={"monitors": (name,)})
    return evaluate(calibrate(reference, config), recent).results[0]


@dataclass(frozen=True)
class DriftHistory:
    """Daily monitors over a history: per monitor the statistic, threshold and verdict on each of ``days``
    (NaN / False where the monitor was not available)."""

    days: npt.NDArray[np.datetime64]
    statistic: Mapping[MonitorName, Array]
    threshold: Mapping[MonitorName, Array]
    breached: Mapping[MonitorName, npt.NDArray[np.bool_]]

    def false_alarm_rate(self, monitor: MonitorName) -> float:
        """Share of the days with a statistic on which ``monitor`` breached (NaN when it never ran)."""
        known = np.isfinite(self.statistic[monitor])
        return float(self.breached[monitor][known].mean()) if known.any() else math.nan


def drift_history(inputs: DriftInputs, days: npt.ArrayLike, config: DriftConfig | None = None,
                  recalibrate_every: int = 20) -> DriftHistory:
    """Daily monitors over a history of daily inputs (rows aligned with ``days``; no order book).

    The recent window on day t is rows t−recent+1 … t. It is judged against a calibration on the
    ``reference_days`` rows that end just before the recent window of the last calibration day, redone
    every ``recalibrate_every`` rows, so reference and recent never overlap and nothing after t is used.
    Days before the first full reference are left out.
    """
    config = config or DriftConfig()
    config = config.model_copy(update={"monitors": tuple(m for m in config.monitors if m != "order_book")})
    all_days = np.asarray(days, dtype="datetime64[D]")
    first = config.reference_days + config.recent_days - 1
    stats: dict[MonitorName, list[Array]] = {m: [] for m in config.monitors}
    limits: dict[MonitorName, list[Array]] = {m: [] for m in config.monitors}
    for start in range(first, len(all_days), recalibrate_every):
        stop = min(start + recalibrate_every, len(all_days))
        ref_end = start - config.recent_days + 1  # exclusive: the reference ends before the recent window
        cal = calibrate(_slice(inputs, ref_end - config.reference_days, ref_end), config)
        for mc in cal.monitors:
            spec = MONITORS[mc.monitor]
            values, _ = _input(inputs, spec.input)
            part = np.full(stop - start, np.nan)
            if mc.reference is not None and values is not None:
                index = np.arange(start, stop)[:, None] + np.arange(-config.recent_days + 1, 1)[None, :]
                part = spec.statistic(mc.reference, _rows(values, spec.reduce)[index], config.psi_epsilon, False)
            stats[mc.monitor].append(part)
            limits[mc.monitor].append(np.full(stop - start, np.nan if mc.threshold is None else mc.threshold))

    def joined(parts: list[Array]) -> Array:
        return np.concatenate(parts) if parts else np.array([], dtype=float)

    statistic = {m: joined(v) for m, v in stats.items()}
    threshold = {m: joined(v) for m, v in limits.items()}
    breached = {m: np.asarray(statistic[m] > threshold[m], dtype=bool) for m in statistic}
    return DriftHistory(all_days[first:], statistic, threshold, breached)


def _slice(inputs: DriftInputs, start: int, stop: int) -> DriftInputs:
    def cut(value: Array | None) -> Array | None:
        return None if value is None else np.asarray(value, dtype=float)[start:stop]

    return DriftInputs(cut(inputs.returns), cut(inputs.volume), cut(inputs.factor))
