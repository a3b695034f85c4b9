"""The monitor's thresholds: one frozen, validated record with defaults (read with
:func:`vnpy_rotation.config.validate_section` from a YAML section)."""

from __future__ import annotations

from pydantic import Field, model_validator

from ..config import Frozen

DAY = 86400.0


class MonitorConfig(Frozen):
    """Every threshold of the anomaly rules, the cool-down, the bar clock and the storm limiter."""

    spike_minutes: int = Field(default=5, ge=1, le=60, description="price spike/drop look-back, minutes")
    spike_pct: float = Field(default=0.03, gt=0, lt=1, description="price move over spike_minutes that alerts")
    surge_ratio: float = Field(default=5.0, gt=1, description="minute volume / mean of the previous minutes")
    surge_lookback: int = Field(default=10, ge=1, le=120, description="previous minutes averaged for the surge")
    surge_min_volume: float = Field(default=0.0, ge=0, description="a surge minute needs at least this volume")
    approach_pct: float = Field(default=0.01, gt=0, lt=0.3, description="distance to a limit that counts as near")
    gap_pct: float = Field(default=0.02, gt=0, lt=1, description="|open / pre_close - 1| that counts as a gap")
    stale_seconds: float = Field(default=60.0, gt=0, description="continuous-trading seconds without a quote")
    cooldown_seconds: float = Field(default=300.0, ge=0, description="a rule re-alerts a symbol no sooner")
    bar_grace_seconds: float = Field(default=3.0, ge=0, description="a minute's bar closes this long after it ends")
    session_end_grace_seconds: float = Field(default=60.0, ge=0,
                                             description="the same for the 11:29 and 14:59 bars (late snapshots)")
    storm_window_seconds: float = Field(default=60.0, gt=0)
    storm_max_global: int = Field(default=30, ge=1, description="alerts let through per window, all symbols")
    storm_max_per_symbol: int = Field(default=5, ge=1, description="alerts let through per window and symbol")

    @model_validator(mode="after")
    def _per_symbol_within_global(self) -> "MonitorConfig":
        if self.storm_max_per_symbol > self.storm_max_global:
            raise ValueError("storm_max_per_symbol must not exceed storm_max_global")
        return self
