"""Backtest alert rules (回测指标告警), evaluated on every backtest's metrics.

Annual return < 8 %, max drawdown worse than -30 %, Sharpe < 0.5, monthly win rate < 45 %: the
project's default thresholds, not a market fact. They flag a run as weak in the report and
``metrics.json``; they never stop or change it. A rule whose metric is missing (too short a run) is
reported as not evaluated.
"""

from __future__ import annotations

import math
import operator
from typing import Any

# (metric, comparison that triggers the alert, threshold, label)
ALERT_RULES: tuple[tuple[str, str, float, str], ...] = (
    ("annual_return", "<", 0.08, "年化收益 < 8%"),
    ("max_drawdown", "<", -0.30, "最大回撤 < -30%"),
    ("sharpe", "<", 0.5, "夏普比率 < 0.5"),
    ("monthly_win_rate", "<", 0.45, "月胜率 < 45%"),
)
_COMPARE = {"<": operator.lt, ">": operator.gt}


def evaluate_alerts(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per rule: metric, value, threshold, whether it triggered (None: not evaluated)."""
    out = []
    for metric, op, threshold, label in ALERT_RULES:
        value = metrics.get(metric)
        known = isinstance(value, (int, float)) and math.isfinite(value)
        out.append({"rule": label, "metric": metric, "op": op, "threshold": threshold,
                    "value": value if known else None,
                    "triggered": bool(_COMPARE[op](value, threshold)) if known else None})
    return out


def triggered(alerts: list[dict[str, Any]]) -> list[str]:
    return [a["rule"] for a in alerts if a["triggered"]]
