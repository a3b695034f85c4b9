"""Alert-storm limiting: at most K alerts per window overall and k per symbol; the excess is held back and
summarised in one alert per window listing the counts by rule.

A pure state machine (:data:`STORM`, a table) driven by the caller's clock: ``now`` is always passed in.
Windows are tumbling: one opens at the first alert after the previous one closed and lasts
``window`` seconds. CRITICAL alerts (a stop crossed) always pass and are not counted.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from enum import Enum
from typing import Iterable, Literal

from .records import Alert, Severity

SUMMARY_RULE = "storm_summary"


class StormState(str, Enum):
    CALM = "calm"  # nothing held back in this window
    STORM = "storm"  # something was held back: a summary is due when the window ends


Event = Literal["within", "over", "window_end"]
Action = Literal["pass", "hold", "summarise", "none"]

# (state, event) -> (next state, action)
STORM: dict[tuple[StormState, Event], tuple[StormState, Action]] = {
    (StormState.CALM, "within"): (StormState.CALM, "pass"),
    (StormState.CALM, "over"): (StormState.STORM, "hold"),
    (StormState.CALM, "window_end"): (StormState.CALM, "none"),
    (StormState.STORM, "within"): (StormState.STORM, "pass"),  # another symbol still under its own limit
    (StormState.STORM, "over"): (StormState.STORM, "hold"),
    (StormState.STORM, "window_end"): (StormState.CALM, "summarise"),
}


class StormLimiter:
    """Lets alerts through up to the limits of the current window; summarises the rest."""

    def __init__(self, window_seconds: float, max_global: int, max_per_symbol: int) -> None:
        self.window = timedelta(seconds=window_seconds)
        self.max_global = max_global
        self.max_per_symbol = max_per_symbol
        self.state = StormState.CALM
        self.start: datetime | None = None
        self.passed = 0
        self.per_symbol: Counter[str] = Counter()
        self.held: Counter[str] = Counter()  # by rule
        self.held_symbols: set[str] = set()

    def admit(self, alerts: Iterable[Alert], now: datetime) -> list[Alert]:
        """The alerts that pass at ``now`` (a summary of the previous window first, when one is due)."""
        out = self.tick(now)
        for alert in alerts:
            if alert.severity is Severity.CRITICAL:
                out.append(alert)
                continue
            if self.start is None:
                self.start = now
            over = self.passed >= self.max_global or self.per_symbol[alert.vt_symbol] >= self.max_per_symbol
            self.state, action = STORM[(self.state, "over" if over else "within")]
            if action == "pass":
                self.passed += 1
                self.per_symbol[alert.vt_symbol] += 1
                out.append(alert)
            else:
                self.held[alert.rule] += 1
                self.held_symbols.add(alert.vt_symbol)
        return out

    def tick(self, now: datetime) -> list[Alert]:
        """Close the window if it is over by ``now``: the summary alert, if anything was held back."""
        if self.start is None or now < self.start + self.window:
            return []
        end = self.start + self.window
        self.state, action = STORM[(self.state, "window_end")]
        out = [self._summary(end)] if action == "summarise" else []
        self.start, self.passed = None, 0
        self.per_symbol.clear()
        self.held.clear()
        self.held_symbols.clear()
        return out

    def _summary(self, end: datetime) -> Alert:
        total = sum(self.held.values())
        counts = sorted(self.held.items())
        listed = ", ".join(f"{rule} {n}" for rule, n in counts)
        seconds = self.window.total_seconds()
        return Alert(SUMMARY_RULE, "*", end, Severity.WARNING,
                     f"{total} alerts held back in {seconds:g} s on {len(self.held_symbols)} symbols: {listed}",
                     (("held", float(total)), ("symbols", float(len(self.held_symbols))))
                     + tuple((rule, float(n)) for rule, n in counts))
