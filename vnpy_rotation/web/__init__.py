"""The read-only web dashboard served from the trading daemon."""
