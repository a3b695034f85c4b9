"""Alert-storm limiting: at most K alerts per window overall and k per symbol; the excess is held back and
summarised in one alert per window listing, per rule, the events held and their symbols (the first
:data:`LISTED` of them). An event held back is counted once however often its rule retries it in the window.

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
LISTED = 5  # symbols named per rule in a summary


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
        self.held: dict[str, dict[str, None]] = {}  # rule -> the symbols held back, in order

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
                self.held.setdefault(alert.rule, {})[alert.vt_symbol] = None
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
        self.held = {}
        return out

    def _summary(self, end: datetime) -> Alert:
        counts = sorted((rule, len(symbols)) for rule, symbols in self.held.items())
        total = sum(n for _, n in counts)
        symbols = len({s for held in self.held.values() for s in held})
        listed = "; ".join(f"{rule}: {self._names(rule)}" for rule, _ in counts)
        seconds = self.window.total_seconds()
        return Alert(SUMMARY_RULE, "*", end, Severity.WARNING,
                     f"{total} alerts held back in {seconds:g} s on {symbols} symbols: {listed}",
                     (("held", float(total)), ("symbols", float(symbols)))
                     + tuple((rule, float(n)) for rule, n in counts))

    def _names(self, rule: str) -> str:
        names = list(self.held[rule])
        more = f", +{len(names) - LISTED} more" if len(names) > LISTED else ""
        return ", ".join(names[:LISTED]) + more
