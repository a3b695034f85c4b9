"""A fake DingTalk robot on loopback (``http.server``) for the notification tests.

``FakeDingTalk`` answers the robot webhook as DingTalk does: it checks ``timestamp``/``sign`` with
``server_side_sign_ok`` (DingTalk's own HMAC-SHA256 check) when it has a secret, records every
request, and can be told to fail (HTTP 500, an ``errcode`` reply, no reply at all). No real network.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .loopback import WAIT


def server_side_sign_ok(secret: str, timestamp: str, sign_value: str) -> bool:
    """DingTalk's check: recompute HMAC-SHA256(secret, f"{timestamp}\\n{secret}") and compare."""
    expected = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    try:
        received = base64.b64decode(sign_value, validate=True)
    except ValueError:
        return False
    return hmac.compare_digest(expected, received)


class FakeDingTalk:
    """A DingTalk robot on 127.0.0.1: verifies ``timestamp``/``sign`` when it has a secret.

    ``script`` gives the behaviour of the first requests in turn, then ``mode`` applies:
    ``ok``, ``http500``, ``errcode`` (HTTP 200 with errcode 130101) or ``hang`` (no reply).
    """

    def __init__(self, secret: str | None = None, mode: str = "ok", script: tuple[str, ...] = ()) -> None:
        self.secret = secret
        self.mode = mode
        self.script = list(script)
        self.requests: list[dict] = []  # every request: query, headers, body, accepted
        self.release = threading.Event()  # ends hanging handlers
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def webhook(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/robot/send?access_token=token123"

    @property
    def accepted(self) -> list[dict]:
        """The JSON bodies of the messages the robot accepted."""
        with self._lock:
            return [r["body"] for r in self.requests if r["accepted"]]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(WAIT)

    def _next_mode(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else self.mode

    def _record(self, entry: dict) -> None:
        with self._lock:
            self.requests.append(entry)

    def _signature_ok(self, query: dict[str, list[str]]) -> bool:
        if self.secret is None:
            return True
        timestamp, signature = query.get("timestamp", [""])[0], query.get("sign", [""])[0]
        if not timestamp.isdigit() or abs(time.time() * 1000 - int(timestamp)) > 3600_000:
            return False
        return server_side_sign_ok(self.secret, timestamp, signature)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                query = parse_qs(urlsplit(self.path).query)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                mode = robot._next_mode()
                signed = robot._signature_ok(query)
                robot._record({"query": query, "headers": dict(self.headers), "body": body,
                               "accepted": signed and mode == "ok"})
                if mode == "hang":
                    robot.release.wait(WAIT)
                    return
                if mode == "http500":
                    self._reply(500, {"error": "internal"})
                elif not signed:
                    self._reply(200, {"errcode": 310000, "errmsg": "sign not match"})
                elif mode == "errcode":
                    self._reply(200, {"errcode": 130101, "errmsg": "send too fast"})
                else:
                    self._reply(200, {"errcode": 0, "errmsg": "ok"})

            def _reply(self, status: int, reply: dict) -> None:
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
                pass

        return Handler
