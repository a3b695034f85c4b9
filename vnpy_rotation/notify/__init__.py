"""Notifications for the live engine: DingTalk (signed webhook) and vnpy's own email/WeChat.

Typical use::

    config = load_notify_config(path)
    notifier = Notifier(config, send_notification=main_engine.send_notification, log=write_log)
    notifier.notify("failure", "Rebalance failed", details)   # returns at once
    ...
    notifier.close()
"""

from .config import ALL_KINDS, DingTalkSettings, NotifyConfig, NotifyKind, load_notify_config
from .dingtalk import DingTalkChannel, NotifyError, sign, signed_url
from .notifier import Channel, Notifier, VnpyChannel

__all__ = [
    "ALL_KINDS",
    "Channel",
    "DingTalkChannel",
    "DingTalkSettings",
    "Notifier",
    "NotifyConfig",
    "NotifyError",
    "NotifyKind",
    "VnpyChannel",
    "load_notify_config",
    "sign",
    "signed_url",
]
