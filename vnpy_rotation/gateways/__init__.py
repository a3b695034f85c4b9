"""Gateways for the live stack: the replay (paper) gateway, and vnpy_xt's XtGateway where xtquant works."""

from __future__ import annotations

from vnpy.trader.gateway import BaseGateway

from .replay import ReplayGateway


def available_gateways() -> list[type[BaseGateway]]:
    """ReplayGateway always; XtGateway when xtquant's native modules import (Windows with MiniQMT)."""
    from ..data.xt_fetch import xtquant_native_problem

    gateways: list[type[BaseGateway]] = [ReplayGateway]
    if xtquant_native_problem() is None:
        from vnpy_xt import XtGateway

        gateways.insert(0, XtGateway)
    return gateways


__all__ = ["ReplayGateway", "available_gateways"]
