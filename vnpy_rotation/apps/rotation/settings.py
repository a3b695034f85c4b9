"""A strategy instance's settings as persisted in the runtime folder, validated once when read or edited."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ...backtest.config import BacktestConfig
from ...config import validate_section
from ...live.cycle import ExecutionSettings

SETTING_FILENAME = "rotation_strategy_setting.json"


class InstanceSetting(BaseModel):
    """One strategy instance: its class and settings, the account it trades and how it executes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    class_name: str
    version: str = ""  # the registered strategy version the settings are ("": never registered)
    gateway: str = "REPLAY"
    settings: dict[str, Any] = Field(default_factory=dict)  # the strategy class's own (validated by it)
    backtest: BacktestConfig = BacktestConfig()  # costs and A-share sizing rules, as in the backtests
    bars: Literal["database", "xt", "gateway"] = "database"  # where the after-close update gets bars
    history_start: date | None = None  # the first day of data the strategy decides on (None: all stored)
    tolerance_bps: float = Field(default=0.0, ge=0, le=1000)
    max_rounds: int = Field(default=3, ge=1, le=20)

    def execution(self) -> ExecutionSettings:
        return ExecutionSettings(self.backtest, self.tolerance_bps, self.max_rounds)


def read_instance(name: str, raw: Any, source: str) -> InstanceSetting:
    """Validate ``raw``; errors name the source, the instance and the field."""
    return validate_section(InstanceSetting, raw, f"{source}: {name}")
