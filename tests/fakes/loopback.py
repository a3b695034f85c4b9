"""Shared pieces of the tests that talk to loopback servers (the notification tests).

``WAIT`` bounds anything that should happen promptly, ``no_proxy`` is the autouse fixture that keeps
loopback HTTP requests away from any proxy configured in the environment (a test module makes it
visible with ``_no_proxy = loopback.no_proxy``), ``closed_port`` gives a port nothing listens on.
"""

from __future__ import annotations

import socket

import pytest

WAIT = 5.0  # upper bound for anything that should happen promptly; tests normally take far less


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """Loopback requests must never go through a proxy configured in the environment."""
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


no_proxy = _no_proxy


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
