"""The engine's notifier: DingTalk (signed webhook) and vnpy's own channels, configured in the runtime folder.

``HOME/.vntrader/rotation_notify.json`` (see :mod:`vnpy_rotation.notify.config`). vnpy's
``MainEngine.send_notification`` (e-mail, WeChat) is used only once vnpy's e-mail account is configured
(``email.username`` in vt_setting.json): otherwise vnpy would try its default SMTP server on every message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from vnpy.trader.engine import MainEngine
from vnpy.trader.setting import SETTINGS
from vnpy.trader.utility import TEMP_DIR

from ...notify import Notifier, load_notify_config

NOTIFY_FILENAME = "rotation_notify.json"


def build_notifier(main_engine: MainEngine, log: Callable[[str], None], path: Path | None = None) -> Notifier:
    config = load_notify_config(path or TEMP_DIR / NOTIFY_FILENAME)
    vnpy_ready = bool(SETTINGS.get("email.username"))
    send = main_engine.send_notification if config.vnpy_notification and vnpy_ready else None
    return Notifier(config, send_notification=send, log=log)
