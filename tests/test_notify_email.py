"""vnpy's email path, for real: MainEngine.send_notification -> EmailEngine -> SMTP over TLS.

The server is tests/fakes/smtp_server.py's minimal SMTP-over-TLS on loopback, with a throw-away
self-signed certificate. No real network.
"""

from __future__ import annotations

import email
import os
import shutil
import ssl
import subprocess
import threading
from email import policy
from pathlib import Path

import pytest
from fakes import loopback
from fakes.loopback import WAIT
from fakes.smtp_server import LoopbackSMTPS, SMTPState

from vnpy_rotation.notify import Notifier, NotifyConfig

_no_proxy = loopback.no_proxy  # autouse


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory) -> ssl.SSLContext:
    """A server TLS context with a throw-away self-signed certificate (made with the openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl CLI to make a self-signed certificate for the loopback SMTPS server")
    folder: Path = tmp_path_factory.mktemp("smtps_cert")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True, timeout=30, cwd=folder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def smtps(tls_context):
    state = SMTPState(credentials=("robot@example.com", "app-password"))
    server = LoopbackSMTPS(tls_context, state)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(WAIT)


def test_vnpy_email_through_main_engine(monkeypatch, runtime_home, smtps):
    from vnpy.trader.engine import MainEngine
    from vnpy.trader.setting import SETTINGS

    user, password = smtps.state.credentials
    for key, value in {"email.server": "127.0.0.1", "email.port": smtps.server_address[1],
                       "email.username": user, "email.password": password,
                       "email.sender": user, "email.receiver": "trader@example.com"}.items():
        monkeypatch.setitem(SETTINGS, key, value)

    subject, content = "调仓失败 Rebalance failed", "510300.SSE 委托被拒绝\nsecond line"
    cwd = os.getcwd()
    main_engine = MainEngine()  # chdirs into vnpy's runtime folder (the tests' temporary home)
    try:
        with Notifier(NotifyConfig(), send_notification=main_engine.send_notification) as notifier:
            assert notifier.notify("rejected_order", subject, content)
            assert notifier.flush(WAIT)
        assert smtps.state.received.wait(WAIT)
    finally:
        main_engine.close()
        os.chdir(cwd)

    assert smtps.state.logins == [(user, password)]
    [envelope] = smtps.state.envelopes
    assert (envelope.mail_from, envelope.rcpt_to) == (user, ["trader@example.com"])
    message = email.message_from_bytes(envelope.data.replace(b"\r\n", b"\n"), policy=policy.default)
    assert message["Subject"] == subject
    assert (message["From"], message["To"]) == (user, "trader@example.com")
    assert message.get_content().rstrip("\n") == content
