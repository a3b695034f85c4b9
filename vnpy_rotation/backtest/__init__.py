"""The A-share-exact portfolio backtester: a pure core (no vnpy imports) over numpy panels."""
