"""Serving the dashboard: where it may listen, and a uvicorn server in the foreground or a background thread.

Loopback (127.0.0.1, ::1, localhost) needs no token; any other address is reachable from other machines,
so the dashboard refuses to listen there without one.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from dataclasses import dataclass

import uvicorn

from ..errors import InputRejected, Problem
from .app import create_app
from .data import RunFolder

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
TOKEN_ENV = "ROTATION_DASHBOARD_TOKEN"  # the token without putting it on the command line (process lists show it)


@dataclass(frozen=True)
class Bind:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: it may resolve to anything
            return False

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_bind(text: str, flag: str = "--bind") -> Bind:
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` (the host defaults to 127.0.0.1; port 0: any free port)."""
    host, _, port = text.strip().rpartition(":")
    host = host.strip("[]") or DEFAULT_HOST
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InputRejected(Problem(flag, None, f"{text!r} is not [HOST:]PORT with a port 0…65535 "
                                    "(e.g. 8765 or 127.0.0.1:8765)"))
    return Bind(host, int(port))


def check_bind(bind: Bind, token: str | None, flag: str = "--bind") -> None:
    """Refuse a non-loopback address without a token: the page would be open to the network."""
    if token is not None and not token.strip():
        raise InputRejected(Problem("--token", None, "the token is empty"))
    if not bind.loopback and not token:
        raise InputRejected(Problem(flag, None, f"{bind} is not a loopback address: the dashboard would be "
                                    f"readable from other machines; give --token T (or set {TOKEN_ENV}), or "
                                    f"bind to 127.0.0.1"))


def listening_socket(bind: Bind, flag: str = "--bind") -> socket.socket:
    """A bound, listening socket (so port 0 becomes a real port before the server starts, and a request made
    before it serves waits in the queue instead of being refused); a taken port is an error."""
    family = socket.AF_INET6 if ":" in bind.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((bind.host, bind.port))
        sock.listen(128)  # (the server listens again when it starts: only the queue's length changes)
    except OSError as exc:
        sock.close()
        raise InputRejected(Problem(flag, None, f"cannot listen on {bind}: {exc.strerror or exc}")) from None
    return sock


class DashboardServer:
    """The dashboard of ``run`` on ``bind``: :meth:`serve` in the foreground, or :meth:`start` / :meth:`stop`
    on a daemon thread beside the trading daemon."""

    def __init__(self, run: RunFolder, bind: Bind, token: str | None = None, refresh: int = 30,
                 flag: str = "--bind") -> None:
        check_bind(bind, token, flag)
        self.bind = bind
        self.socket = listening_socket(bind, flag)
        self.port: int = self.socket.getsockname()[1]
        config = uvicorn.Config(create_app(run, token, refresh), log_level="warning", access_log=False,
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.bind.host}]" if ":" in self.bind.host else self.bind.host
        return f"http://{host}:{self.port}/"

    def serve(self) -> None:
        """Serve until interrupted (uvicorn handles Ctrl-C in the main thread)."""
        self.server.run(sockets=[self.socket])

    def start(self, timeout: float = 10.0) -> "DashboardServer":
        """Serve on a daemon thread; returns once the server accepts connections."""
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       name="vnpy_rotation-dashboard", daemon=True)
        self.thread.start()
        started = threading.Event()
        while not self.server.started and self.thread.is_alive() and not started.wait(0.02):
            timeout -= 0.02
            if timeout <= 0:
                raise RuntimeError(f"the dashboard did not start on {self.bind} in time")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to finish its open requests and exit; wait for its thread."""
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
        self.socket.close()
