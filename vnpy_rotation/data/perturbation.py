"""A market whose rows after a cut carry different values: the look-ahead checks' counterfactual.

Every array a decision could read is changed after the cut: prices scaled by one random factor per cell
(the same for open, high, low and close, so a bar stays a bar), volumes by another, the turnover recomputed
from both, the carried close, the benchmark, and every attached input (point-in-time fundamentals, index
membership). Rows up to the cut are the original bytes.

Each changed array is built the first time it is read, from its own random stream (so the order of reads
does not matter), and kept while the market lives. A decision path reads few of them (a fundamentals
ranking: the close and its inputs; a momentum rotation: the close, volume and turnover), so the check copies
only those: on a whole market one day × symbol array is hundreds of MB, and copying all of them for every cut
cost more memory than the backtest itself.
"""

from __future__ import annotations

import zlib
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from .formats import PRICE_FIELDS
from .market_data import MarketData, forward_fill

CHANGED_FIELDS = (*PRICE_FIELDS, "volume", "turnover", "last_close", "benchmark")
_SCALE, _VOLUME, _BENCHMARK, _EXTRA = range(4)  # random streams


class _Changes:
    """The changed arrays of one perturbed market, built when first asked for."""

    def __init__(self, base: MarketData, cut: int, seed: int) -> None:
        self.base, self.tail, self.seed = base, slice(cut + 1, None), seed
        self.built: dict[str, Any] = {}  # field name → changed array (None: the base has none)
        self.extras: dict[str, np.ndarray] = {}

    def rng(self, *stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *stream])

    def field(self, name: str) -> Any:
        if name not in self.built:
            self.built[name] = self._build(name)
        return self.built[name]

    def extra(self, name: str) -> np.ndarray:
        if name not in self.extras:
            values = np.array(self.base.extras[name])  # a writable copy (a window's extras are read-only views)
            tail = values[self.tail]
            rng = self.rng(_EXTRA, zlib.crc32(name.encode()))
            if values.dtype == bool:
                values[self.tail] = rng.random(tail.shape) < 0.5
            elif np.issubdtype(values.dtype, np.integer):  # counts (e.g. sessions listed): stay whole
                values[self.tail] = np.rint(tail * rng.uniform(0.5, 1.5, size=tail.shape)).astype(values.dtype)
            else:
                values[self.tail] *= rng.uniform(0.5, 1.5, size=tail.shape)
            self.extras[name] = values
        return self.extras[name]

    def _build(self, name: str) -> np.ndarray | None:
        base, tail = self.base, self.tail
        if name == "last_close":  # carried from the base market's own value at the cut (a window may start
            # inside a suspension, where the base carries a close from before its first day)
            changed = np.array(base.last_close)
            if len(changed[tail]):
                cut = tail.start - 1
                carried = changed[cut:cut + 1] if cut >= 0 else np.full((1, changed.shape[1]), np.nan)
                changed[tail] = forward_fill(np.vstack([carried, self.field("close")[tail]]))[1:]
            return changed
        if name == "benchmark":
            if base.benchmark is None:
                return None
            changed = np.array(base.benchmark)
            changed[tail] *= self.rng(_BENCHMARK).uniform(0.7, 1.3, size=changed[tail].shape)
            return changed
        if name == "turnover":
            changed = np.array(base.turnover)
            changed[tail] = self.field("volume")[tail] * self.field("close")[tail]
            return changed
        changed = np.array(getattr(base, name))
        stream, low, high = (_VOLUME, 0.2, 5.0) if name == "volume" else (_SCALE, 0.7, 1.3)
        changed[tail] *= self.rng(stream).uniform(low, high, size=changed[tail].shape)
        return changed


class _ChangedExtras(Mapping[str, np.ndarray]):
    """The base market's extras, each changed after the cut when first read."""

    def __init__(self, names: tuple[str, ...], build: Callable[[str], np.ndarray]) -> None:
        self._names, self._build = names, build

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._names:
            raise KeyError(name)
        return self._build(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class PerturbedMarket(MarketData):
    """``MarketData`` with the changed arrays read from its :class:`_Changes` (made by :func:`perturb_after`;
    a copy made with ``dataclasses.replace`` holds the arrays it read, as a plain market does)."""

    def __getattribute__(self, name: str) -> Any:
        if name in CHANGED_FIELDS:
            changes = object.__getattribute__(self, "__dict__").get("_changes")
            if changes is not None:
                return changes.field(name)
        return object.__getattribute__(self, name)


def perturb_after(md: MarketData, cut: int, seed: int = 0) -> MarketData:
    """``md`` with every row after ``cut`` changed (see the module's docstring); nothing is copied until read."""
    changes = _Changes(md, cut, seed)
    market = object.__new__(PerturbedMarket)
    state = {name: getattr(md, name) for name in MarketData.__dataclass_fields__ if name not in CHANGED_FIELDS}
    state["extras"] = _ChangedExtras(tuple(md.extras), changes.extra)
    state["_changes"] = changes
    market.__dict__.update(state)
    return market
