"""Canary releases, pure: the stage table, per-version books and their netting, promotion gates and rollback rules."""
