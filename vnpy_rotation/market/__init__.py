"""The A-share market model as data: instruments, rules, fees and the trading calendar (pure)."""
