"""Notification settings, validated once at the edge (a JSON file → :class:`NotifyConfig`).

File format (every key optional; a missing file means the defaults: vnpy's own channels, no DingTalk)::

    {
        "dingtalk": {
            "webhook": "https://oapi.dingtalk.com/robot/send?access_token=...",
            "secret": "SEC...",
            "msgtype": "markdown",
            "timeout": 5.0
        },
        "kinds": ["failure", "daily_summary", "rejected_order", "risk_state"],
        "vnpy_notification": true
    }
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from ..config import Frozen, validate_section
from ..errors import InputRejected, Problem


class NotifyKind(str, Enum):
    """What a message is about; the config chooses which kinds go out."""

    FAILURE = "failure"
    DAILY_SUMMARY = "daily_summary"
    REJECTED_ORDER = "rejected_order"
    RISK_STATE = "risk_state"  # a risk ladder's rung changed, or a risk alert
    KPI_BREACH = "kpi_breach"  # a daily KPI crossed its threshold (run.py kpi snapshot)
    MARKET_ALERT = "market_alert"  # the market monitor's anomaly alert (after its storm limiter)


ALL_KINDS: frozenset[NotifyKind] = frozenset(NotifyKind)


class DingTalkSettings(Frozen):
    """One DingTalk custom robot; disabled while ``webhook`` is empty."""

    webhook: str | None = None
    secret: str | None = None  # the robot's "加签" secret (``SEC...``); None: unsigned webhook
    msgtype: Literal["markdown", "text"] = "markdown"
    timeout: float = Field(default=5.0, gt=0, le=60)

    @field_validator("webhook", "secret", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    @field_validator("webhook")
    @classmethod
    def _is_http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("expected an http(s) URL")
        return value

    @model_validator(mode="after")
    def _secret_needs_webhook(self) -> "DingTalkSettings":
        if self.secret and not self.webhook:
            raise ValueError("a secret is given without a webhook")
        return self

    @property
    def enabled(self) -> bool:
        return self.webhook is not None


class NotifyConfig(Frozen):
    """Where notifications go and which kinds are sent."""

    dingtalk: DingTalkSettings = DingTalkSettings()
    kinds: frozenset[NotifyKind] = ALL_KINDS
    vnpy_notification: bool = True  # also call vnpy's MainEngine.send_notification (email/WeChat)

    def enabled(self, kind: NotifyKind | str) -> bool:
        """Whether messages of ``kind`` go out (unknown kinds never do)."""
        try:
            return NotifyKind(kind) in self.kinds
        except ValueError:
            return False


def load_notify_config(path: Path | str) -> NotifyConfig:
    """The settings in the JSON file ``path``; the defaults when it does not exist.

    Raises :class:`~vnpy_rotation.errors.InputRejected` naming the file (and the line or field)
    when the file is not valid JSON or a field is wrong.
    """
    path = Path(path)
    if not path.exists():
        return NotifyConfig()
    return validate_section(NotifyConfig, _read_json_object(path), str(path))


def _read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; errors name the file (and line)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputRejected(Problem(str(path), exc.lineno, exc.msg)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputRejected(Problem(str(path), None, f"cannot read: {exc}")) from None
    if not isinstance(raw, dict):
        raise InputRejected(Problem(str(path), None, "expected a JSON object at the top level"))
    return raw
