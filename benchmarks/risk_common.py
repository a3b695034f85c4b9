"""What the risk benchmark's parts share: the targets and the percentile helper."""

from __future__ import annotations

import numpy as np

TARGETS = {"send_order_p99_us": 50.0, "daily_ms": 50.0, "slowdown": 0.10}


def pct(values: np.ndarray | list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))
