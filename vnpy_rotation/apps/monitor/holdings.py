"""The rotation app's holdings and their stop levels, for the monitor's ``stop_crossed`` rule.

Each strategy instance's risk book (:class:`~vnpy_rotation.live.risk_stage.RiskBook`, persisted in its state
file) holds the shares at the last close, the volume-weighted entry price (following ex-dates) and the
strategy's own single-stock stop; the level is :func:`~vnpy_rotation.risk.stops.stock_stop_level`, the price
at which the after-close rule would sell. Live positions (``EVENT_POSITION``) override the shares; a position
the book does not know yet (bought today) takes the broker's average cost as its entry.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Mapping

from ...live.plan import StrategyState
from ...live.risk_stage import RiskBook
from ...live.state_file import read_json
from ...monitor.core import Holding
from ...risk.stops import stock_stop_level

ROTATION_APP = "RotationStrategy"  # apps.rotation.engine.APP_NAME (not imported: the monitor runs without it)


def rotation_books(main_engine: Any, state_folder: Path | None = None) -> list[RiskBook]:
    """The risk books of the rotation app's instances: from its running engine when added, else from the
    state files in ``state_folder`` (default: the runtime folder's ``rotation_state``)."""
    engine = getattr(main_engine, "engines", {}).get(ROTATION_APP)
    live = {name: i.cycle.state for name, i in (getattr(engine, "instances", None) or {}).items()
            if i.cycle is not None}  # an initialised instance's state in memory is newer than its file
    if state_folder is None:
        folder = getattr(engine, "state_folder", None)
        if folder is None:
            from vnpy.trader.utility import get_folder_path

            folder = get_folder_path("rotation_state")
        state_folder = Path(folder)
    states = list(live.values())
    for path in sorted(Path(state_folder).glob("*.json")):
        if path.stem in live:
            continue
        raw = read_json(path, None)
        # a strategy's state (StrategyState.to_json); the folder also holds the risk app's state and others
        if isinstance(raw, dict) and {"plan", "progress", "last_close", "risk"} <= raw.keys():
            states.append(StrategyState.from_json(raw))
    return [s.risk for s in states if s.risk is not None]


def holdings_from(books: Iterable[RiskBook], positions: Mapping[str, tuple[float, float]] | None = None
                  ) -> list[Holding]:
    """One Holding per held symbol with a stop level. ``positions``: vt_symbol → (volume, average price) from
    the gateway (None: no position seen yet, the books' shares stand). Several strategies holding one symbol:
    the highest stop level guards it (the first to be crossed)."""
    stops: dict[str, float] = {}
    volumes: dict[str, float] = {}
    for book in books:
        stock_stop = float(book.rules[0])
        for j, symbol in enumerate(book.symbols):
            entry = float(book.entry[j])
            held = float(book.held_close[j])
            if positions is not None and symbol in positions and not entry > 0:
                entry = positions[symbol][1]  # bought since the last close: the broker's average cost
            level = stock_stop_level(entry, stock_stop)
            if (held > 0 or (positions is not None and positions.get(symbol, (0.0, 0.0))[0] > 0)) \
                    and not math.isnan(level):
                stops[symbol] = max(level, stops.get(symbol, -math.inf))
                volumes[symbol] = volumes.get(symbol, 0.0) + held
    out = []
    for symbol, stop in stops.items():
        volume = positions[symbol][0] if positions is not None and symbol in positions else volumes[symbol]
        if volume > 0:
            out.append(Holding(symbol, volume, stop))
    return out
