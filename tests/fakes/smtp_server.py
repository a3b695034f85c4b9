"""A minimal SMTP-over-TLS server on loopback, for vnpy's ``EmailEngine`` in the notification tests.

``LoopbackSMTPS(tls, state)`` serves just enough SMTP (EHLO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA,
QUIT) over implicit TLS; it accepts the login in ``SMTPState.credentials`` and records every login
and every message (``Envelope``) in the ``SMTPState``, setting ``received`` when a message arrived.
"""

from __future__ import annotations

import base64
import re
import socketserver
import ssl
import threading
from dataclasses import dataclass, field

from .loopback import WAIT


@dataclass
class Envelope:
    mail_from: str
    rcpt_to: list[str]
    data: bytes


@dataclass
class SMTPState:
    credentials: tuple[str, str]
    logins: list[tuple[str, str]] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)


class SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (EHLO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, QUIT) over implicit TLS."""

    timeout = WAIT

    def setup(self) -> None:
        self.request.settimeout(WAIT)
        self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()

    def handle(self) -> None:
        state: SMTPState = self.server.state
        authed, mail_from, rcpt_to = False, None, []
        self.reply("220 127.0.0.1 loopback ESMTP")
        while line := self.rfile.readline():
            verb, _, arg = line.decode("utf-8", "replace").rstrip("\r\n").partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self.reply("250-127.0.0.1", "250-AUTH PLAIN LOGIN", "250 8BITMIME")
            elif verb == "HELO" or verb in ("NOOP", "RSET"):
                self.reply("250 OK")
            elif verb == "AUTH":
                login = self.authenticate(arg)
                authed = login == state.credentials
                state.logins.append(login)
                self.reply("235 2.7.0 Authentication successful" if authed else "535 5.7.8 Bad credentials")
            elif verb == "MAIL" and authed:
                mail_from, rcpt_to = address(arg), []
                self.reply("250 OK")
            elif verb == "RCPT" and mail_from is not None:
                rcpt_to.append(address(arg))
                self.reply("250 OK")
            elif verb == "DATA" and rcpt_to:
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                state.envelopes.append(Envelope(mail_from, rcpt_to, self.read_data()))
                mail_from, rcpt_to = None, []
                self.reply("250 OK queued")
                state.received.set()
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("503 Bad sequence of commands")

    def authenticate(self, arg: str) -> tuple[str, str]:
        mechanism, _, initial = arg.partition(" ")
        if mechanism.upper() == "PLAIN":
            _, user, password = b64(initial or self.challenge("")).split("\0")
            return user, password
        user = b64(initial or self.challenge("VXNlcm5hbWU6"))  # LOGIN: "Username:"
        return user, b64(self.challenge("UGFzc3dvcmQ6"))  # "Password:"

    def challenge(self, text: str) -> str:
        self.reply(f"334 {text}")
        return self.rfile.readline().decode().strip()

    def read_data(self) -> bytes:
        lines = []
        while (line := self.rfile.readline()) not in (b".\r\n", b""):
            lines.append(line[1:] if line.startswith(b"..") else line)
        return b"".join(lines)

    def reply(self, *lines: str) -> None:
        self.wfile.write("".join(f"{line}\r\n" for line in lines).encode())


def b64(text: str) -> str:
    return base64.b64decode(text).decode("utf-8")


def address(arg: str) -> str:
    match = re.search(r"<([^>]*)>", arg)
    return match.group(1) if match else ""


class LoopbackSMTPS(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, tls: ssl.SSLContext, state: SMTPState) -> None:
        super().__init__(("127.0.0.1", 0), SMTPHandler)
        self.tls = tls
        self.state = state
