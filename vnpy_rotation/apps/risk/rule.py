"""The vnpy_riskmanager rule that enforces the ladder's rungs on every order (``RuleTemplate`` 2.x API).

It is registered explicitly by :func:`attach` (never found by vnpy_riskmanager's folder scan: its class name
does not end in ``Rule``, so a copy in a ``rules/`` folder would not be loaded twice). The decision is
:meth:`RiskEngine.allow` (a dict lookup per order); this class only adapts it to vnpy_riskmanager:

- an exception inside ``check_allowed`` would propagate out of ``MainEngine.send_order`` into the caller
  (vnpy_riskmanager does not catch it): it is caught here, and the order is refused (fail closed);
- the rule's ``active`` switch (a check box in RiskManager's window, saved to ``risk_manager_setting.json``)
  cannot turn the ladder off: the ladder is configured, or a scope reset with a reason, never silenced.
"""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING, Any

from vnpy.trader.object import OrderRequest
from vnpy_riskmanager.template import RuleTemplate

if TYPE_CHECKING:
    from .engine import RiskEngine

RULE_NAME = "回撤阶梯检查"  # "drawdown ladder check", the name RiskManager's window shows


class LadderGate(RuleTemplate):  # type: ignore[misc]  # a Cython class without type information
    """REDUCING refuses buys; HALTED lets only the flattening sells through, or nothing (freeze)."""

    name: str = RULE_NAME
    parameters: dict[str, str] = {}
    variables: dict[str, str] = {}

    owner: RiskEngine | None = None  # set by attach()

    @property
    def active(self) -> bool:
        return True

    @active.setter
    def active(self, value: Any) -> None:
        if not value and self.owner is not None:
            self.owner.write_log(f"{RULE_NAME} 不能停用 (风控阶梯用配置关闭, 或用 risk reset 附理由复位)")

    def check_allowed(self, req: OrderRequest, gateway_name: str) -> bool:
        owner = self.owner
        if owner is None:
            return True  # not attached to a risk app: nothing to enforce
        try:
            if owner.allow(req):
                return True
            self.write_log(f"{RULE_NAME}: {req.reference or '-'} {req.vt_symbol} {req.direction.value} "
                           f"{req.volume:g}")  # RiskManager's own log line and its EVENT_RISK_NOTIFY
            return False
        except Exception:
            text = traceback.format_exc()
            try:
                owner.deny(req, "", "ERROR", f"risk rule error (order refused): {text.splitlines()[-1]}")
                owner.write_log(f"{RULE_NAME} 异常, 委托已拒绝:\n{text}")
            except Exception:  # never raise into MainEngine.send_order
                pass
            return False


def attach(manager: Any, owner: RiskEngine) -> LadderGate:
    """Build the rule on vnpy_riskmanager's ``manager`` and put it first in ``manager.rules`` (replacing
    an earlier one of the same name: a second RiskApp, or a user rule that took the name)."""
    rule = LadderGate(manager, manager.setting.get(RULE_NAME, {}))
    rule.owner = owner
    manager.rules = {RULE_NAME: rule, **{k: v for k, v in manager.rules.items() if k != RULE_NAME}}
    manager.field_name_map.update(rule.parameters)
    return rule
