"""A parameter sweep's pure parts: its grid read from the strategy's search space, the config's
``walkforward.grid`` and ``--grid`` (validated by the strategy's settings), the results table and the best rows.
``run.py sweep`` (cli) and any Python caller use them; the backtests themselves run in ``backtest.sweep`` or on a
cluster (``research.cluster``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputRejected

if TYPE_CHECKING:  # pandas and numpy only when a sweep runs: importing the CLI must stay cheap
    import pandas as pd

METRICS = (("total_return", "pct"), ("annual_return", "pct"), ("sharpe", "num"), ("max_drawdown", "pct"),
           ("calmar", "num"), ("trade_count", "int"), ("total_cost", "money"))


@dataclass(frozen=True)
class SweepSpec:
    run: Any  # backtest.runner.RunSpec: strategy, base settings, backtest config, benchmark, span
    grid: dict[str, tuple[Any, ...]]  # typed values per parameter, in grid order
    grid_source: str  # where the values came from, e.g. "vqm.search_space + --grid"

    @property
    def combos(self) -> list[dict[str, Any]]:
        from ..backtest.sweep import grid

        return grid(**self.grid)


def read_sweep_spec(strategy: str, config_file: Path | None, start: date | None, end: date | None,
                    capital: float | None, grid_args: list[str] | None) -> SweepSpec:
    """The grid: the YAML's ``walkforward.grid``, else the strategy's ``search_space`` (the walk-forward's
    default), with each ``--grid`` parameter replacing (or adding) that parameter's values; every value is
    typed by the strategy's settings model, an error naming where the value came from and the parameter."""
    from ..backtest.runner import RunSpec, read_sections
    from ..config import validate_section
    from ..research.wf_config import WalkForwardSettings, no_grid, parse_grid_args, typed_grid
    from ..strategies import STRATEGIES

    raw, source, config, benchmark = read_sections(config_file, capital, ("walkforward",))
    base = dict(raw.get("strategy") or {})
    options = validate_section(WalkForwardSettings, raw.get("walkforward") or {}, f"{source}: walkforward")
    if options.grid is not None:
        default, where = options.grid, f"{source}: walkforward.grid"
    else:
        default, where = STRATEGIES[strategy].search_space if strategy in STRATEGIES else {}, f"{strategy}.search_space"
    given = parse_grid_args(grid_args) if grid_args else {}
    typed = {**typed_grid(strategy, base, default, where, f"{source}: strategy"),
             **typed_grid(strategy, base, given, "--grid", f"{source}: strategy")}
    if not typed:
        raise InputRejected(no_grid(strategy, "--grid"))
    sources = [where] * bool(default) + ["--grid"] * bool(given)
    return SweepSpec(RunSpec(strategy, base, config, benchmark, start, end, source), typed, " + ".join(sources))


def cell(value: Any) -> str:
    """A parameter's value in sweep.csv and best.md: lists and dicts as JSON (keys sorted), others as text."""
    import json

    return json.dumps(value, sort_keys=True) if _is_structured(value) else str(value)


def _is_structured(value: Any) -> bool:
    return isinstance(value, (dict, list, tuple))


def sweep_csv(frame: pd.DataFrame, params: list[str]) -> str:
    """sweep.csv's text: the frame, its list and dict parameters as JSON cells."""
    structured = [name for name in params if name in frame and frame[name].map(_is_structured).any()]
    return frame.assign(**{name: frame[name].map(cell) for name in structured}).to_csv(index=False)


def write_together(folder: Path, texts: dict[str, str]) -> None:
    """Every file written to a temporary name first, then each renamed over its target: a failure while
    writing leaves the folder's earlier files as they were (never a new sweep.csv beside an old best.md)."""
    import os
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    try:
        for name, text in texts.items():
            handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
            written[name] = temporary
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
                out.write(text)
        for name, temporary in written.items():
            os.replace(temporary, folder / name)
    finally:
        for temporary in written.values():
            Path(temporary).unlink(missing_ok=True)


def best_rows(frame: pd.DataFrame, objective: str, top: int) -> pd.DataFrame:
    """The ``top`` rows by ``objective``, higher first; NaN last; a tie keeps grid order."""
    import numpy as np
    import pandas as pd

    scores = pd.to_numeric(frame[objective], errors="coerce").fillna(-np.inf)
    order = np.argsort(-scores.to_numpy(), kind="stable")
    return frame.iloc[order[:top]].assign(combination=order[:top] + 1)


def best_markdown(spec: SweepSpec, frame: pd.DataFrame, objective: str, top: int, span: str, where: str) -> str:
    from ..backtest.report_md import format_value

    best = best_rows(frame, objective, top)
    params = list(spec.grid)
    metrics = [(name, kind) for name, kind in METRICS if name in frame]
    head = ["rank", "combination", *params, *(name for name, _ in metrics)]
    lines = [f"# Sweep: {spec.run.strategy_name}", "",
             f"{len(frame)} combinations ({spec.grid_source}) on {span}, run {where}; the best {len(best)} by "
             f"{objective} (higher is better; a missing value ranks last; a tie keeps grid order).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rank, row in enumerate(best.to_dict("records"), 1):  # records keep each column's type
        cells = [str(rank), str(row["combination"]), *(cell(row[p]) for p in params),
                 *(format_value(row[name], kind) for name, kind in metrics)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "All combinations, in grid order: sweep.csv (metrics: backtest/sweep.py quick_metrics)."]
    return "\n".join(lines) + "\n"
