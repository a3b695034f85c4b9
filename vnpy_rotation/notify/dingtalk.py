"""DingTalk custom-robot channel with a signed webhook ("加签").

DingTalk's signing rule: ``string_to_sign = f"{timestamp}\\n{secret}"``, HMAC-SHA256 keyed with the
secret, Base64, then URL-encoded; the webhook gets ``&timestamp=...&sign=...`` appended, with the
timestamp in milliseconds (DingTalk rejects timestamps more than an hour away from its clock).

DingTalk answers HTTP 200 even when it refuses a message (``{"errcode": 310000, ...}`` for a bad
signature), so the reply's ``errcode`` is checked as well as the HTTP status.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, Literal

from ..errors import RotationError

MsgType = Literal["markdown", "text"]

# A DingTalk reply is a tiny JSON object; never read more than this from a misbehaving server.
_MAX_REPLY_BYTES = 64 * 1024


class NotifyError(RotationError):
    """A channel could not deliver a message (network, HTTP status or the service refused it).

    The message is not retried; the :class:`~vnpy_rotation.notify.notifier.Notifier` logs it and goes on.
    """


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's ``sign`` query value for ``secret`` at ``timestamp_ms`` (already URL-encoded)."""
    string_to_sign = f"{timestamp_ms}\n{secret}"
    digest = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode("ascii"))


def signed_url(webhook: str, secret: str | None, timestamp_ms: int) -> str:
    """``webhook`` with ``timestamp`` and ``sign`` appended; unchanged when there is no secret."""
    if not secret:
        return webhook
    separator = "&" if urllib.parse.urlsplit(webhook).query else ("" if webhook.endswith("?") else "?")
    return f"{webhook}{separator}timestamp={timestamp_ms}&sign={sign(secret, timestamp_ms)}"


def payload(subject: str, content: str, msgtype: MsgType = "markdown") -> dict[str, Any]:
    """The JSON body DingTalk expects: markdown (title = subject, subject as heading) or plain text."""
    if msgtype == "markdown":
        return {"msgtype": "markdown", "markdown": {"title": subject, "text": f"#### {subject}\n\n{content}"}}
    return {"msgtype": "text", "text": {"content": f"{subject}\n{content}"}}


def check_reply(body: bytes) -> None:
    """Raise :class:`NotifyError` unless ``body`` is DingTalk's success reply (``errcode`` 0)."""
    try:
        reply = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise NotifyError(f"DingTalk: reply is not JSON: {body[:200]!r}") from None
    if not isinstance(reply, dict) or reply.get("errcode") != 0:
        code = reply.get("errcode") if isinstance(reply, dict) else None
        message = reply.get("errmsg") if isinstance(reply, dict) else None
        raise NotifyError(f"DingTalk refused the message: errcode={code} errmsg={message}")


class DingTalkChannel:
    """Posts messages to one DingTalk custom robot.

    ``timeout`` (seconds) bounds the connection and each read. Proxies follow urllib's usual
    environment variables. Error messages never contain the webhook (it carries the access token).
    """

    name = "dingtalk"

    def __init__(self, webhook: str, secret: str | None = None, timeout: float = 5.0, *,
                 msgtype: MsgType = "markdown", clock: Callable[[], float] = time.time) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.webhook = webhook
        self.secret = secret or None
        self.timeout = timeout
        self.msgtype: MsgType = msgtype
        self._clock = clock

    def __repr__(self) -> str:
        return f"DingTalkChannel(host={urllib.parse.urlsplit(self.webhook).netloc!r}, signed={bool(self.secret)})"

    def url(self) -> str:
        """The webhook to post to now (signed with the current time when there is a secret)."""
        return signed_url(self.webhook, self.secret, int(round(self._clock() * 1000)))

    def send(self, subject: str, content: str) -> None:
        """Post one message; raise :class:`NotifyError` if it was not accepted."""
        data = json.dumps(payload(subject, content, self.msgtype), ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.url(), data=data, method="POST",
                                         headers={"Content-Type": "application/json;charset=utf-8"})
        check_reply(self._post(request))

    def _post(self, request: urllib.request.Request) -> bytes:
        """The reply body of ``request``; any transport or HTTP failure becomes :class:`NotifyError`."""
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read(_MAX_REPLY_BYTES)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise NotifyError(f"DingTalk: HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise NotifyError(f"DingTalk: cannot reach the webhook: {exc.reason}") from None
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise NotifyError(f"DingTalk: {type(exc).__name__}: {exc}") from None
