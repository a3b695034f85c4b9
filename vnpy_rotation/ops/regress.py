"""The daily regression gate: re-run each champion and candidate version's backtest and compare with its baseline.

For every strategy with a ``champion`` or ``candidate`` alias, the version's stored config text is validated
again under today's code and backtested over the version's window on the database's bars as of a day; the run
is compared with the version's stored evidence — daily equity (relative tolerance), metrics (a tolerance per
metric) and, for versions with a baseline (:mod:`.baseline`), every fill. A difference names its first
diverging day and its causes:

- ``changed data``: a stored bar of the window (or its warm-up) differs; the symbols and the first changed day;
- ``new data``: bars after the window's end of a version whose window was open-ended (informational);
- ``config default``: the stored config text validates to other settings than the stored ones (a default moved
  in code), naming the fields; or the config no longer validates; or a file it names (the pools) changed;
- ``code``: the code commit differs from the version's.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from ..backtest.loader import load_market
from ..backtest.runner import BacktestRun, RunSpec, read_sections, run_backtest
from ..config import Frozen, read_yaml, validate_section
from ..data.store import BarStore
from ..errors import InputRejected, Problem
from .baseline import FILL_KEY, Baseline, BaselineStore, changed_bars, fills_frame, new_bars
from .versions import DIFF_METRICS, Version, VersionRegistry, _flatten, bars_signature, code_identity, sha256

ALIASES = ("champion", "candidate")
CSV_COLUMNS = ["strategy", "version", "aliases", "check", "status", "first_day", "baseline", "now", "tolerance",
               "detail"]
# ok: within tolerance; differs: beyond it (a regression); info: said, not gated; skipped: not compared (why)
STATUSES = ("ok", "differs", "info", "skipped")
DEFAULT_METRIC_TOLERANCE = {"total_return": 1e-6, "annual_return": 1e-6, "annual_volatility": 1e-6, "sharpe": 1e-4,
                            "max_drawdown": 1e-6, "calmar": 1e-4, "monthly_win_rate": 1e-9, "turnover": 1e-6,
                            "total_cost": 0.01, "trade_count": 0.0}


class RegressThresholds(Frozen):
    """The ``regress:`` section of ``run.py regress --config FILE`` (every field optional)."""

    equity_rel: float = Field(default=1e-6, ge=0)  # |equity_now / equity_baseline - 1| per day
    metrics: dict[str, float] = Field(default_factory=dict)  # absolute tolerance per metric (DIFF_METRICS)
    fill_price_rel: float = Field(default=1e-6, ge=0)  # |vwap_now / vwap_baseline - 1| per day, symbol, side
    fill_volume: float = Field(default=0.0, ge=0)  # shares per day, symbol and side
    config_default_fails: bool = True  # settings drifting from the stored ones is a regression by itself
    new_data_fails: bool = False  # new bars after an open-ended window are reported, not gated

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(DIFF_METRICS))
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; allowed: {', '.join(DIFF_METRICS)}")
        negative = sorted(k for k, v in value.items() if not v >= 0)
        if negative:
            raise ValueError(f"tolerances must be >= 0: {negative}")
        return value

    def metric_tolerance(self, name: str) -> float:
        return self.metrics.get(name, DEFAULT_METRIC_TOLERANCE.get(name, 1e-6))


def read_thresholds(path: Path | None) -> RegressThresholds:
    """The ``regress:`` section of ``path`` (other sections are ignored: a shared ops file may hold them)."""
    if path is None:
        return RegressThresholds()
    return validate_section(RegressThresholds, read_yaml(path).get("regress"), f"{path}: regress")


@dataclass(frozen=True)
class Finding:
    check: str  # equity | metric.<name> | fills | data | new_data | config | config_file | code | baseline
    status: str  # one of STATUSES
    first_day: date | None = None
    baseline: str = ""
    now: str = ""
    tolerance: str = ""
    detail: str = ""


@dataclass(frozen=True)
class VersionCheck:
    strategy: str
    version: Version
    aliases: tuple[str, ...]
    window: tuple[date, date]  # what was compared
    findings: tuple[Finding, ...]
    seconds: float = 0.0

    @property
    def regression(self) -> bool:
        return any(f.status == "differs" for f in self.findings)

    @property
    def first_day(self) -> date | None:
        days = [f.first_day for f in self.findings if f.status == "differs" and f.first_day is not None
                and f.check in ("equity", "fills")]
        return min(days) if days else None

    @property
    def causes(self) -> list[str]:
        """What explains a difference: the findings of the cause checks that are not ok."""
        names = {"data": "changed data", "config": "config default", "config_file": "config file",
                 "new_data": "new data", "code": "code"}  # the most specific first
        rank = {k: i for i, k in enumerate(names)}
        found = sorted((rank[f.check], i, f"{names[f.check]} ({f.detail})") for i, f in enumerate(self.findings)
                       if f.check in names and f.status in ("differs", "info") and f.detail)
        return [text for _, _, text in found]


@dataclass
class RegressReport:
    as_of: date
    thresholds: RegressThresholds
    checks: list[VersionCheck] = field(default_factory=list)

    @property
    def regression(self) -> bool:
        return any(c.regression for c in self.checks)


# -- what to check --------------------------------------------------------------------------------------------
def versions_to_check(registry: VersionRegistry, strategy: str | None) -> list[tuple[str, Version, tuple[str, ...]]]:
    """(strategy, version, its aliases among champion/candidate) for each aliased version; refused when none."""
    strategies = [strategy] if strategy else sorted({v.strategy for v in registry.versions()})
    found = []
    for name in strategies:
        pointing: dict[str, list[str]] = {}
        for alias, vid in registry.aliases(name).items():
            if alias in ALIASES:
                pointing.setdefault(vid, []).append(alias)
        found += [(name, registry.get(vid), tuple(sorted(aliases))) for vid, aliases in sorted(pointing.items())]
    if not found:
        where = f"strategy {strategy!r} has" if strategy else "no strategy has"
        raise InputRejected(Problem("regress", None, f"{where} a champion or candidate version: nothing to check "
                                    "(run.py version alias REF champion --why ...)"))
    return found


# -- the re-run -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Revalidated:
    spec: RunSpec | None  # None: the stored config no longer validates
    findings: tuple[Finding, ...]


def revalidate(v: Version, end: date) -> Revalidated:
    """The version's stored config text validated under today's code: the run spec over ``v.start … end`` and
    the config findings (fields whose validated value differs from the stored one, files that changed)."""
    from ..strategies import create_strategy

    findings: list[Finding] = []
    source = f"version {v.id}: {v.config_path}"
    with tempfile.TemporaryDirectory() as folder:  # read_sections reads a file: the stored text, not today's file
        path = Path(folder) / "config.yaml"
        path.write_text(v.config_text, encoding="utf-8")
        try:
            raw, _, config, benchmark = read_sections(path, None)
            settings = create_strategy(v.strategy, dict(raw.get("strategy") or {}), source).settings
        except InputRejected as exc:
            reasons = "; ".join(str(p).replace(str(path), v.config_path) for p in exc.problems)
            return Revalidated(None, (Finding("config", "differs", detail=f"no longer validates: {reasons}"),))
    now = {**_flatten("strategy", settings.model_dump(mode="json")), **_flatten("backtest", config.model_dump(mode="json"))}
    stored = {**_flatten("strategy", v.settings), **_flatten("backtest", v.backtest)}
    moved = sorted(k for k in set(now) | set(stored) if now.get(k, "<absent>") != stored.get(k, "<absent>"))
    if moved:
        findings.append(Finding("config", "differs", baseline="; ".join(f"{k}={stored.get(k, '<absent>')}" for k in moved),
                                now="; ".join(f"{k}={now.get(k, '<absent>')}" for k in moved),
                                detail="the stored config validates to other values today: " + ", ".join(moved)))
    else:
        findings.append(Finding("config", "ok", detail=""))
    for f in v.files:  # the pools file: the run reads today's file, as the live stack would
        current = Path(f.path)
        digest = sha256(current.read_bytes()) if current.is_file() else "missing"
        if digest != f.sha256:
            findings.append(Finding("config_file", "info", baseline=f.sha256[:12], now=digest[:12],
                                    detail=f"{f.field} {f.path} changed since the version was created"))
    spec = RunSpec(v.strategy, dict(raw.get("strategy") or {}), config, benchmark, v.start, end, source)
    return Revalidated(spec, tuple(findings))


def _num(value: Any) -> float:
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def compare_equity(v: Version, equity: pd.Series, end: date, tolerance: float) -> Finding:
    """Daily equity of the re-run against the stored one over ``v.start … end``: the first day beyond
    ``tolerance`` (relative) or missing on either side."""
    stored = v.equity()
    stored = stored[stored.index <= pd.Timestamp(end)]
    now = pd.Series(np.round(equity.to_numpy(dtype=float), 4), index=pd.DatetimeIndex(equity.index))
    both = stored.index.union(now.index)
    a, b = stored.reindex(both).to_numpy(), now.reindex(both).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(b / a - 1.0)
    bad = ~(rel <= tolerance)  # NaN (a day on one side only) is a difference
    worst = float(np.nanmax(rel)) if np.isfinite(rel).any() else math.nan
    if not bad.any():
        return Finding("equity", "ok", baseline=f"{a[-1]:.2f}", now=f"{b[-1]:.2f}", tolerance=f"{tolerance:g}",
                       detail=f"{len(both)} days, largest relative difference {worst:.3g}")
    i = int(bad.argmax())
    return Finding("equity", "differs", both[i].date(), baseline=f"{a[i]:.2f}", now=f"{b[i]:.2f}",
                   tolerance=f"{tolerance:g}",
                   detail=f"{int(bad.sum())} of {len(both)} days differ, largest relative difference {worst:.3g}")


def compare_metrics(v: Version, metrics: dict[str, Any], thresholds: RegressThresholds) -> list[Finding]:
    findings = []
    for name in DIFF_METRICS:
        a, b = _num(v.metrics.get(name)), _num(metrics.get(name))
        tol = thresholds.metric_tolerance(name)
        same = (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol
        findings.append(Finding(f"metric.{name}", "ok" if same else "differs", baseline=f"{a:.6g}", now=f"{b:.6g}",
                                tolerance=f"{tol:g}"))
    return findings


def _per_key(fills: pd.DataFrame) -> pd.DataFrame:
    """Fills summed per (date, symbol, side): volume and volume-weighted price."""
    if not len(fills):
        return pd.DataFrame(columns=["volume", "price"], index=pd.MultiIndex.from_tuples([], names=list(FILL_KEY)))
    frame = fills.assign(value=fills["price"] * fills["volume"])
    grouped = frame.groupby(list(FILL_KEY))[["volume", "value"]].sum()
    return grouped.assign(price=grouped["value"] / grouped["volume"])[["volume", "price"]]



def compare_fills(stored: pd.DataFrame, now: pd.DataFrame, end: date, thresholds: RegressThresholds) -> Finding:
    """Fills per (day, symbol, side): missing on one side, volume or volume-weighted price beyond tolerance."""
    stored = stored[stored["date"] <= end.isoformat()]
    a, b = _per_key(stored), _per_key(now)
    both = a.index.union(b.index)
    a, b = a.reindex(both), b.reindex(both)
    volume_off = ~((a["volume"] - b["volume"]).abs() <= thresholds.fill_volume)
    with np.errstate(divide="ignore", invalid="ignore"):
        price_off = ~((b["price"] / a["price"] - 1.0).abs() <= thresholds.fill_price_rel)
    bad = (volume_off | price_off).to_numpy()
    tolerance = f"volume {thresholds.fill_volume:g}, price {thresholds.fill_price_rel:g}"
    if not bad.any():
        return Finding("fills", "ok", baseline=str(len(stored)), now=str(len(now)), tolerance=tolerance,
                       detail=f"{len(both)} (day, symbol, side) groups equal")
    first = both[bad][0]
    i = int(bad.argmax())
    describe = [f"{d} {s} {side}: {_fill(a.iloc[k])} → {_fill(b.iloc[k])}"
                for k, (d, s, side) in enumerate(both) if bad[k]][:3]
    return Finding("fills", "differs", date.fromisoformat(first[0]), baseline=_fill(a.iloc[i]), now=_fill(b.iloc[i]),
                   tolerance=tolerance,
                   detail=f"{int(bad.sum())} of {len(both)} (day, symbol, side) groups differ: " + "; ".join(describe))


def _fill(row: pd.Series) -> str:
    return "none" if pd.isna(row["volume"]) else f"{row['volume']:g} @ {row['price']:.4f}"


def data_findings(v: Version, baseline: Baseline | None, run: BacktestRun, as_of: date, window_end: date,
                  store: BarStore) -> list[Finding]:
    """Changed data (per symbol, its first changed day) and new data (after an open-ended window)."""
    from ..strategies import create_strategy

    if baseline is None:  # a version older than baselines: only its per-symbol counts and one hash to go by
        bars, digest = bars_signature(run.market)
        if window_end < v.end:
            return [Finding("data", "skipped", detail=f"window cut at {window_end}: the stored signature covers "
                            f"{v.start} … {v.end}")]
        if digest == v.bars_hash:
            return [Finding("data", "ok", baseline=v.bars_hash, now=digest, detail="bar signature unchanged")]
        moved = sorted(s for s in set(bars) | set(v.bars) if bars.get(s) != v.bars.get(s))
        detail = (f"bars of {', '.join(moved)} differ in count or last day" if moved else
                  "a close in the window changed (the version predates per-day fingerprints: the day is not known)")
        return [Finding("data", "differs", baseline=v.bars_hash, now=digest, detail=detail)]
    strategy = create_strategy(v.strategy, v.settings, f"version {v.id}")
    market = load_market(strategy.symbols, v.start, window_end if not baseline.open_end else as_of,
                         strategy.warmup_days, store)
    findings = []
    changed = changed_bars(baseline, market.window(None, min(window_end, baseline.data_end)))
    if changed:
        findings.append(Finding("data", "differs", changed[0].first_day, detail="; ".join(
            f"{c.vt_symbol} from {c.first_day} ({c.days} day{'s' if c.days > 1 else ''})" for c in changed)))
    else:
        findings.append(Finding("data", "ok", detail="every bar equals the baseline's fingerprint"))
    if baseline.open_end:
        symbols, first, last = new_bars(baseline.data_end, market)
        if symbols:
            findings.append(Finding("new_data", "info", first, detail=f"bars after {baseline.data_end} up to {last} "
                                    f"for {', '.join(symbols)} (the window was open-ended; not compared)"))
    return findings


def _demoted(finding: Finding, status: str) -> Finding:
    return replace(finding, status=status)


def check_version(strategy: str, v: Version, aliases: tuple[str, ...], as_of: date, thresholds: RegressThresholds,
                  store: BarStore, baselines: BaselineStore) -> VersionCheck:
    """Re-run ``v`` on the data as of ``as_of`` and compare it with its stored evidence."""
    import time

    started = time.perf_counter()
    if as_of < v.start:
        raise InputRejected(Problem("--date", None, f"{as_of} is before version {v.id}'s window ({v.start} … {v.end})"))
    end = min(as_of, v.end)
    baseline = baselines.get(v.id)
    revalidated = revalidate(v, end)
    findings: list[Finding] = [_demoted(f, "info") if f.check == "config" and f.status == "differs"
                               and revalidated.spec is not None and not thresholds.config_default_fails else f
                               for f in revalidated.findings]
    commit, diff_hash = code_identity()
    if (commit, diff_hash) != (v.code_commit, v.code_diff_hash):
        findings.append(Finding("code", "info", baseline=v.code_commit, now=commit,
                                detail=f"commit {v.code_commit} → {commit}"))
    else:
        findings.append(Finding("code", "ok", baseline=v.code_commit, now=commit))
    if revalidated.spec is not None:
        run = run_backtest(revalidated.spec, store, lookahead_cuts=0)
        findings.append(compare_equity(v, run.result.equity["equity"], end, thresholds.equity_rel))
        if end < v.end:
            findings.append(Finding("metrics", "skipped", detail=f"window cut at --date {end}: metrics cover "
                                    f"{v.start} … {v.end}"))
        else:
            findings += compare_metrics(v, run.metrics, thresholds)
        if baseline is None:
            findings.append(Finding("fills", "skipped", detail="the version predates stored baselines: equity and "
                                    "metrics only (create the same version again to add one)"))
        else:
            findings.append(compare_fills(baseline.fills, fills_frame(run.result.trades), end, thresholds))
        findings += data_findings(v, baseline, run, as_of, end, store)
    # changed data explains a difference but is not one itself: the gate is the results (and new data if asked)
    findings = [_demoted(f, "info") if f.check == "data" and f.status == "differs" else
                _demoted(f, "differs") if f.check == "new_data" and thresholds.new_data_fails else f for f in findings]
    return VersionCheck(strategy, v, aliases, (v.start, end), tuple(findings), time.perf_counter() - started)


def run_regression(as_of: date, thresholds: RegressThresholds, strategy: str | None = None,
                   registry: VersionRegistry | None = None, store: BarStore | None = None,
                   baselines: BaselineStore | None = None) -> RegressReport:
    registry = registry or VersionRegistry()
    store = store or BarStore()
    baselines = baselines or BaselineStore()
    report = RegressReport(as_of, thresholds)
    for name, version, aliases in versions_to_check(registry, strategy):
        report.checks.append(check_version(name, version, aliases, as_of, thresholds, store, baselines))
    return report


# -- the report ---------------------------------------------------------------------------------------------------
def report_rows(report: RegressReport) -> pd.DataFrame:
    rows = [{"strategy": c.strategy, "version": c.version.id, "aliases": ",".join(c.aliases), "check": f.check,
             "status": f.status, "first_day": f.first_day.isoformat() if f.first_day else "", "baseline": f.baseline,
             "now": f.now, "tolerance": f.tolerance, "detail": f.detail}
            for c in report.checks for f in c.findings]
    return pd.DataFrame(rows, columns=CSV_COLUMNS)


def verdict(check: VersionCheck) -> str:
    if not check.regression:
        return "PASS"
    first = check.first_day
    causes = check.causes or ["unexplained: same data, config and code"]
    where = f"from {first}" if first else "(equity and fills agree: a check without a day differs)"
    return f"REGRESSION {where}; cause: " + "; ".join(causes)


def write_report(report: RegressReport, out: Path) -> tuple[Path, Path]:
    """``out/regress.md`` and ``out/regress.csv`` (fixed columns: CSV_COLUMNS)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = report_rows(report)
    csv = out / "regress.csv"
    rows.to_csv(csv, index=False)
    t = report.thresholds
    lines = [f"# Daily regression as of {report.as_of}", "",
             f"Result: **{'REGRESSION' if report.regression else 'PASS'}** "
             f"({sum(c.regression for c in report.checks)} of {len(report.checks)} versions differ)", "",
             f"Thresholds: equity {t.equity_rel:g} relative per day; fills volume {t.fill_volume:g}, "
             f"price {t.fill_price_rel:g} relative; metrics: "
             + ", ".join(f"{m} {t.metric_tolerance(m):g}" for m in DIFF_METRICS) + "; config default "
             f"{'fails' if t.config_default_fails else 'reported'}; new data {'fails' if t.new_data_fails else 'reported'}.",
             "", "## Summary", "", "| strategy | version | aliases | window | result | first diverging day | causes |",
             "|---|---|---|---|---|---|---|"]
    for c in report.checks:
        lines.append(f"| {c.strategy} | {c.version.id} | {', '.join(c.aliases)} | {c.window[0]} … {c.window[1]} | "
                     f"{'REGRESSION' if c.regression else 'PASS'} | {c.first_day or '-'} | "
                     f"{'; '.join(c.causes) or '-'} |")
    for c in report.checks:
        lines += ["", f"## {c.strategy} {c.version.id} ({', '.join(c.aliases)})", "", verdict(c), "",
                  "| check | status | first day | baseline | now | tolerance | detail |", "|---|---|---|---|---|---|---|"]
        for f in c.findings:
            lines.append(f"| {f.check} | {f.status} | {f.first_day or ''} | {f.baseline} | {f.now} | {f.tolerance} | "
                         f"{f.detail.replace('|', '/')} |")
        lines.append(f"\nre-run in {c.seconds:.1f} s")
    md = out / "regress.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return md, csv


# -- baselines at version create ----------------------------------------------------------------------------------
def save_with_baseline(registry: VersionRegistry, version: Version, run: BacktestRun, open_end: bool,
                       baselines: BaselineStore | None = None, store: BarStore | None = None) -> tuple[Version, bool]:
    """Save ``version`` and, when its id has none yet, the regression baseline of the ``run`` it was made from."""
    saved, new = registry.save(version)  # the same content stored before: same id, same bars, code and config
    strategy = run.strategy
    market = load_market(strategy.symbols, saved.start, saved.end, strategy.warmup_days, store or BarStore())
    (baselines or BaselineStore()).save(saved.id, open_end, run.result.trades, market, version.created_at)
    return saved, new
