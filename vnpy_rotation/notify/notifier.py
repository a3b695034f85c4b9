"""Send notifications from a background thread so trading never waits on the network.

:meth:`Notifier.notify` only puts the message on a queue. A daemon worker delivers each message to
every channel in turn; a channel that fails (raises anything) is logged and skipped, and the worker
goes on with the next channel and the next message. Nothing a channel does raises into the caller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from .config import NotifyConfig, NotifyKind
from .dingtalk import DingTalkChannel

_logger = logging.getLogger(__name__)


class Channel(Protocol):
    """Something that delivers one message or raises."""

    def send(self, subject: str, content: str) -> None: ...


class VnpyChannel:
    """vnpy's ``MainEngine.send_notification`` (email, WeChat per vnpy's settings) as a channel.

    vnpy's argument order is ``(content, subject)``; this adapter takes ``(subject, content)``.
    """

    name = "vnpy"

    def __init__(self, send_notification: Callable[[str, str], None]) -> None:
        self._send_notification = send_notification

    def send(self, subject: str, content: str) -> None:
        self._send_notification(content, subject)


@dataclass(frozen=True)
class Message:
    kind: NotifyKind
    subject: str
    content: str


def vnpy_channels(config: NotifyConfig,
                  send_notification: Callable[[str, str], None] | None) -> list[Channel]:
    """vnpy's channel, when the config enables it and ``send_notification`` is given."""
    if config.vnpy_notification and send_notification is not None:
        return [VnpyChannel(send_notification)]
    return []


def dingtalk_channels(config: NotifyConfig) -> list[Channel]:
    """The DingTalk channel the config describes, if any."""
    settings = config.dingtalk
    if not settings.enabled:
        return []
    assert settings.webhook is not None
    return [DingTalkChannel(settings.webhook, settings.secret, settings.timeout, msgtype=settings.msgtype)]


def channel_name(channel: object) -> str:
    return str(getattr(channel, "name", type(channel).__name__))


class Notifier:
    """Queue notifications and deliver them from one daemon thread.

    ``send_notification`` is vnpy's ``MainEngine.send_notification`` (used when the config's
    ``vnpy_notification`` is on). ``channels`` replaces the channels built from the config's
    DingTalk section (vnpy's channel is still put first). ``log`` receives one line per failure
    (default: this module's :mod:`logging` logger). At most ``max_pending`` messages wait; more
    are dropped (and logged) rather than blocking the caller.
    """

    def __init__(self, config: NotifyConfig,
                 send_notification: Callable[[str, str], None] | None = None,
                 log: Callable[[str], None] | None = None,
                 channels: Iterable[Channel] | None = None, *,
                 max_pending: int = 1000) -> None:
        self.config = config
        self._log_callable = log
        outside = dingtalk_channels(config) if channels is None else list(channels)
        self.channels: tuple[Channel, ...] = (*vnpy_channels(config, send_notification), *outside)
        self._max_pending = max_pending
        self._queue: deque[Message | None] = deque()
        self._pending = 0  # messages queued or being delivered
        self._cond = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._run, name="vnpy_rotation-notify", daemon=True)
        self._worker.start()

    # -- caller side (never blocks on the network, never raises for delivery problems) --

    def notify(self, kind: NotifyKind | str, subject: str, content: str) -> bool:
        """Queue a message; True if queued, False if dropped (kind off or unknown, closed, queue full)."""
        try:
            kind = NotifyKind(kind)
        except ValueError:
            self._log(f"notify: unknown kind {kind!r}; message {subject!r} dropped")
            return False
        if not self.config.enabled(kind):
            return False
        with self._cond:
            if self._closed or self._pending >= self._max_pending:
                reason = "notifier closed" if self._closed else "queue full"
                dropped = True
            else:
                self._queue.append(Message(kind, subject, content))
                self._pending += 1
                self._cond.notify_all()
                dropped = False
        if dropped:
            self._log(f"notify: {reason}; {kind.value} message {subject!r} dropped")
        return not dropped

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued message was delivered or failed; False if ``timeout`` ran out."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._worker.is_alive():
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float = 5.0) -> bool:
        """Stop accepting messages, deliver those queued, stop the worker; True if it stopped in time.

        Safe to call more than once.
        """
        with self._cond:
            if not self._closed:
                self._closed = True
                self._queue.append(None)  # the worker stops when it reaches this
                self._cond.notify_all()
        if self._worker is not threading.current_thread():
            self._worker.join(timeout)
        return not self._worker.is_alive()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Notifier":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- worker side --

    def _run(self) -> None:
        while True:
            message = self._next()
            if message is None:
                return
            try:
                self._deliver(message)
            except Exception as exc:  # a bug here must not kill the worker
                self._log(f"notify: delivering {message.subject!r} failed: {exc!r}")
            finally:
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()

    def _next(self) -> Message | None:
        with self._cond:
            while not self._queue:
                self._cond.wait()
            return self._queue.popleft()

    def _deliver(self, message: Message) -> None:
        for channel in self.channels:
            try:
                channel.send(message.subject, message.content)
            except Exception as exc:
                self._log(f"notify: {channel_name(channel)} failed to send {message.kind.value} "
                          f"message {message.subject!r}: {exc}")

    def _log(self, line: str) -> None:
        """Report through ``log``; a failing ``log`` falls back to :mod:`logging` and never raises."""
        if self._log_callable is not None:
            try:
                self._log_callable(line)
                return
            except Exception:
                _logger.exception("notify: the log callback failed")
        _logger.warning(line)
