"""vnpy CTA sleeves: single-symbol ``CtaTemplate`` strategies that call the same strategy functions and risk
rules as the portfolio backtest, so CtaStrategy and CtaBacktester users can run them."""
