"""The matcher terms of one symbol on one day, from the instrument table (no market data needed)."""

from __future__ import annotations

from datetime import date

from ..backtest.config import BacktestConfig
from ..backtest.matching import SymbolTerms
from ..market.instruments import InstrumentRegistry, default_registry


def terms_on(symbol: str, day: date, config: BacktestConfig, registry: InstrumentRegistry | None = None
             ) -> SymbolTerms:
    """What :func:`~vnpy_rotation.backtest.matching.terms_at` gives for ``symbol`` on ``day``: lots, tick,
    T+0, the commission for its kind, and the day's stamp duty and transfer fee under ``config``'s rules."""
    registry = registry or default_registry()
    instrument = registry.by_vt_symbol(symbol)
    stock = instrument.is_stock
    fee = config.stock_commission if stock else config.etf_commission
    rules = config.rules
    return SymbolTerms(float(instrument.rules.lot), float(instrument.rules.lot_step), float(instrument.rules.tick),
                       stock, instrument.is_t0(day), fee.rate, fee.minimum,
                       registry.stamp_duty_rate(day) if stock and rules.stamp_duty else 0.0,
                       registry.transfer_fee_rate(day) if stock and rules.transfer_fee else 0.0)
