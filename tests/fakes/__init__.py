"""In-memory stand-ins for native services the tests cannot reach (xtquant / MiniQMT)."""
