"""The ``kpi:`` section of a run's YAML: each KPI's threshold and the windows, validated once at the edge.

Defaults and where they come from (also in ``docs/kpi.md``):

- ``annual_return``, ``max_drawdown``, ``sharpe``, ``monthly_win_rate``: the backtest alert rules
  (:data:`vnpy_rotation.backtest.alerts.ALERT_RULES`, read from there, never copied);
- ``var_breaches``: more than 4 breaches of the one-day 99 % VaR in the last 250 forecast sessions, i.e. the
  Basel traffic light's yellow zone (Basel Committee, "Supervisory framework for the use of 'backtesting' in
  conjunction with the internal models approach to market risk capital requirements", January 1996);
- ``fill_calibration_bp``: fills worse than the matcher's model price by more than 10 bp on average: one
  0.001 CNY tick (the fund price tick of 上海证券交易所交易规则 and 深圳证券交易所交易规则, 2023
  revisions, as in ``market/instruments.yaml``) on a 1 CNY ETF;
- ``tracking_gap``: |run − baseline cumulative return| above the risk engine's backtest-vs-live deviation
  threshold (:class:`vnpy_rotation.risk.response.ResponsePolicy`, read from there).

Example::

    kpi:
      sharpe_windows: [20, 60]
      var_window: 60
      thresholds:
        sharpe: {op: "<", value: 0.3}
        fill_calibration_bp: null      # no threshold: always n/a
        exposure: {op: ">", value: 1.0}
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from ..backtest.alerts import ALERT_RULES
from ..config import Frozen, read_yaml, validate_section
from ..risk.response import ResponsePolicy

Op = Literal["<", ">", "abs>"]


class Threshold(Frozen):
    """A KPI breaches when ``value op threshold`` holds (``abs>``: ``|value| > threshold``)."""

    op: Op
    value: float = Field(allow_inf_nan=False)
    source: str = "kpi: section"

    def breached(self, x: float) -> bool:
        if self.op == "<":
            return x < self.value
        if self.op == ">":
            return x > self.value
        return abs(x) > self.value

    def text(self) -> str:
        """``"< 0.50"``, ``"> 4.00"``, ``"|x| > 10.00"``: what the history table stores."""
        return f"|x| > {self.value:.2f}" if self.op == "abs>" else f"{self.op} {self.value:.2f}"


def default_thresholds() -> dict[str, Threshold | None]:
    out: dict[str, Threshold | None] = {
        metric: Threshold(op="<" if op == "<" else ">", value=value, source=f"backtest alert rule {label}")
        for metric, op, value, label in ALERT_RULES}
    out["var_breaches"] = Threshold(op=">", value=4, source="Basel 1996 traffic light: yellow zone from 5 of 250")
    out["fill_calibration_bp"] = Threshold(op="abs>", value=10.0,
                                           source="one 0.001 CNY fund tick on a 1 CNY ETF (SSE/SZSE trading rules)")
    deviation = ResponsePolicy.model_fields["deviation_threshold"].default
    out["tracking_gap"] = Threshold(op="abs>", value=float(deviation),
                                    source="risk response deviation_threshold (backtest vs live)")
    return out


class KpiThresholds(Frozen):
    """Thresholds by KPI name (``None``: none, the status is n/a) and the KPI windows."""

    thresholds: dict[str, Threshold | None] = Field(default_factory=default_thresholds)
    sharpe_windows: tuple[int, ...] = (20, 60)  # sessions of daily returns behind each rolling Sharpe
    var_window: int = Field(default=60, ge=10)  # sessions of returns behind each one-day VaR forecast
    var_lookback: int = Field(default=250, ge=1)  # forecast sessions whose breaches are counted

    @field_validator("thresholds", mode="before")
    @classmethod
    def _merge_defaults(cls, value: Any) -> Any:
        """The section names only what it changes; every other KPI keeps its default."""
        if not isinstance(value, dict):
            return value
        from .kpi import KPI_NAMES, known_kpi  # the one list of KPI names

        unknown = sorted(k for k in value if not known_kpi(str(k)))
        if unknown:
            raise ValueError(f"unknown KPI {', '.join(unknown)} (known: {', '.join(KPI_NAMES)})")
        return {**default_thresholds(), **value}

    @field_validator("sharpe_windows")
    @classmethod
    def _windows(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(w < 2 for w in value):
            raise ValueError("each window needs at least 2 sessions")
        return value

    def threshold(self, kpi: str) -> Threshold | None:
        return self.thresholds.get(kpi)

    def status(self, kpi: str, value: float) -> str:
        rule = self.threshold(kpi)
        if rule is None or not math.isfinite(value):
            return "n/a"
        return "breach" if rule.breached(value) else "ok"


def load_kpi_thresholds(config_file: Path | None) -> KpiThresholds:
    """The ``kpi:`` section of ``config_file`` (the defaults without a file or a section)."""
    if config_file is None:
        return KpiThresholds()
    raw = read_yaml(config_file).get("kpi")
    return validate_section(KpiThresholds, raw, f"{config_file}: kpi")
