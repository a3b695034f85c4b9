"""The rotation window's batch operations on two replay accounts (the engine of tests/test_accounts.py): the
account's button cancels exactly its working orders, the strategy's flatten button adopts the flatten plan
and the next session sells exactly what the strategy holds; a cancelled confirmation changes nothing."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pytestqt")

from test_accounts import build, sessions, store  # noqa: E402,F401  (store: the module's bars fixture)
from test_gui import names  # noqa: E402
from vnpy.trader.constant import Direction  # noqa: E402
from vnpy.trader.ui import QtWidgets  # noqa: E402

from vnpy_rotation.apps.rotation.engine import FLATTEN  # noqa: E402
from vnpy_rotation.apps.rotation.ui import widget as ui  # noqa: E402


def test_window_cancels_an_accounts_orders_and_flattens_a_strategy(store, tmp_path, qtbot, monkeypatch):  # noqa: F811
    monkeypatch.setattr(QtWidgets.QMessageBox, "question",
                        staticmethod(lambda *a, **k: QtWidgets.QMessageBox.StandardButton.Yes))
    stack = build(tmp_path, trouble_b=json.dumps({"extra_slippage_bps": 50}))  # B's orders rest unfilled
    engine = stack.engine
    try:
        manager = ui.RotationManager(stack.main_engine, stack.event_engine)
        qtbot.addWidget(manager)
        QtWidgets.QWidget.show(manager)
        days = sessions(stack)
        gateways = list(stack.gateways.values())
        engine.clock.replay_session(gateways, days[0])  # the first decision
        day = days[1].date()
        for gateway in gateways:
            gateway.begin_day(days[1])
        stack.drain()
        stack.phase("open", day)
        working = [o.vt_orderid for o in stack.main_engine.get_all_active_orders()]
        assert [o.split(".")[0] for o in working] == ["REPLAY_B"]
        called: list[tuple] = []
        cancel = engine.cancel_orders
        monkeypatch.setattr(engine, "cancel_orders", lambda **kw: called.append(kw) or cancel(**kw))

        stack.drain()
        qtbot.waitUntil(lambda: manager.strategy_table.rowCount() == 3, timeout=5000)
        manager.strategy_table.selectRow(names(manager.strategy_table).index("s3"))
        assert manager.cancel_account_button.isEnabled()
        manager.cancel_account_button.click()
        stack.drain()
        assert called == [{"account": "REPLAY_B"}]
        assert stack.main_engine.get_all_active_orders() == []
        assert all(o in manager.log_edit.toPlainText() for o in working)
        stack.phase("retry", day)  # the cancelled session sends nothing more
        assert [o.vt_orderid for o in stack.main_engine.get_all_orders() if o.gateway_name == "REPLAY_B"] == working
        stack.phase("deadline", day)
        for gateway in gateways:
            gateway.end_day(days[1])
        stack.drain()
        stack.phase("close", day)
        held = engine.instances["s1"].cycle.broker.holdings()["510300.SSE"]

        # flatten s1 through its confirmation: cancelled first (nothing adopted), then accepted with a reason
        manager.strategy_table.selectRow(names(manager.strategy_table).index("s1"))
        shown: list[list[str]] = []

        def answer(accepted: bool):
            def exec_(dialog):
                shown.append([dialog.table.item(r, 1).text() for r in range(dialog.table.rowCount())])
                dialog.reason_edit.setText("window test")
                return QtWidgets.QDialog.DialogCode.Accepted if accepted else QtWidgets.QDialog.DialogCode.Rejected
            monkeypatch.setattr(ui.FlattenDialog, "exec", exec_)

        before = engine.instances["s1"].cycle.state.plan
        answer(False)
        manager.flatten_button.click()
        assert engine.instances["s1"].cycle.state.plan == before
        answer(True)
        manager.flatten_button.click()
        plan = engine.instances["s1"].cycle.state.plan
        assert (plan.symbols, plan.target, plan.reason) == (["510300.SSE"], [0.0], FLATTEN)
        assert plan.notes["510300.SSE"].endswith("window test")
        assert shown[-1] == [f"{held:,.0f}"]
        before_orders = {o.vt_orderid for o in stack.main_engine.get_all_orders()}
        engine.clock.replay_session(gateways, days[2])
        new = [o for o in stack.main_engine.get_all_orders() if o.vt_orderid not in before_orders
               and o.reference.startswith("s1|")]
        assert [(o.vt_symbol, o.direction, o.volume) for o in new] == [("510300.SSE", Direction.SHORT, held)]
    finally:
        stack.close()
