"""One MiniQMT with several accounts logged in, behind the fake ``xtquant``: what a process with several
``XtGateway`` instances (one per account, each with its own gateway name) talks to.

vnpy_xt 1.4 gives every ``XtGateway`` its own ``XtMdApi`` and ``XtTdApi``. The market-data side is
process-wide: the first gateway's connect thread takes vnpy_xt's ``xt_lock`` file lock and starts the one
``xtdatacenter``; a later gateway does not get the lock, skips ``xtdc.init`` and reads the running
service through ``xtdata`` (``XtMdApi.init_xtdc`` / ``connect`` in vnpy_xt/xt_gateway.py). The trading
side is one ``XtQuantTrader`` per gateway, with its own session id (vnpy_xt derives it from the clock in
milliseconds), connected to the one MiniQMT ``userdata`` path and subscribed to its own account.

:class:`FakeMiniQmt` models exactly that: one :class:`~fakes.fake_xtquant.FakeXt` market, one
:class:`~fakes.xt_broker.FakeBroker` per account (its cash, positions and orders), and the client-side
calls routed to the broker of the account they name. Every client is registered with every account; an
account's pushes reach only the clients subscribed to it, so a gateway hears its own account only.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from .fake_xtquant import FakeXt
from .fake_xttrader import install_fake_xt
from .xt_broker import FakeBroker


class FakeMiniQmt:
    """MiniQMT with ``accounts`` (FakeBroker each, one shared market); quacks like a FakeBroker for the
    fake ``XtQuantTrader`` (``trading_modules`` binds it as the client's ``broker``)."""

    def __init__(self, account_ids: tuple[str, ...], cash: float = 1_000_000.0) -> None:
        self.market = FakeXt()
        self.accounts: dict[str, FakeBroker] = {}
        for account_id in account_ids:
            self.accounts[account_id] = FakeBroker(self.market, account_id=account_id, cash=cash)
        self.market.broker = self
        self.pushes: list = []
        self.callback_errors: list = []
        self.clients: list = []

    def __getitem__(self, account_id: str) -> FakeBroker:
        return self.accounts[account_id]

    @property
    def primary(self) -> FakeBroker:
        return next(iter(self.accounts.values()))

    def gateway_setting(self, account_id: str, **overrides: str) -> dict[str, str]:
        return self.accounts[account_id].gateway_setting(**overrides)

    def wait_delivered(self, timeout: float = 3.0) -> None:
        for broker in self.accounts.values():
            broker.wait_delivered(timeout)

    def shutdown(self) -> None:
        for broker in self.accounts.values():
            broker.shutdown()

    # -- client side: each call goes to the broker of the account it names --------------------------
    def _of(self, account: Any) -> FakeBroker:
        account_id = account if isinstance(account, str) else getattr(account, "account_id", None)
        return self.accounts.get(account_id, self.primary)  # an unknown account: refused by that broker

    def _register(self, client: Any) -> None:
        self.clients.append(client)
        for broker in self.accounts.values():
            broker._register(client)

    def _record(self, client: Any, kind: str, args: dict[str, Any]) -> Any:
        return self._of(args.get("account_id"))._record(client, kind, args)

    def _connect(self, client: Any) -> int:
        return self.primary._connect(client)  # sessions are unique across every account's clients

    def _subscribe(self, client: Any, account: Any) -> int:
        return self._of(account)._subscribe(client, account)

    def _order(self, client: Any, seq: int, account: Any, *args: Any) -> bool:
        return self._of(account)._order(client, seq, account, *args)

    def _cancel(self, client: Any, seq: int, account: Any, **kwargs: Any) -> bool:
        return self._of(account)._cancel(client, seq, account, **kwargs)

    def _query(self, kind: str, account: Any, **filters: Any) -> list:
        return self._of(account)._query(kind, account, **filters)

    def _answer(self, client: Any, items: list) -> None:
        self.primary._answer(client, items)


@pytest.fixture
def fake_xt_accounts(monkeypatch: pytest.MonkeyPatch, runtime_home) -> Iterator[FakeMiniQmt]:
    """A :class:`FakeMiniQmt` with accounts ``8880000001`` and ``8880000002`` behind the fake ``xtquant``."""
    qmt = FakeMiniQmt(("8880000001", "8880000002"))
    install_fake_xt(monkeypatch, qmt.primary)
    qmt.market.broker = qmt
    qmt.market.install(monkeypatch)  # the trading modules bound to MiniQMT, not to one account
    yield qmt
    qmt.shutdown()
    for name in [n for n in sys.modules if n.split(".")[0] == "vnpy_xt"]:
        del sys.modules[name]
    errors = qmt.callback_errors + qmt.market.callback_errors
    if errors:
        pytest.fail("callbacks raised inside the fake xtquant:\n" + "\n".join(trace for _, _, trace in errors))
