"""What a walk-forward is configured with, validated once at the edge (YAML, ``--grid``, Python).

The grid comes from the most specific source that gives one, whole: ``--grid`` arguments, else the YAML
``walkforward.grid``, else the strategy class's ``search_space``. Every value is parsed by the strategy's
own settings model, so ``--grid top_n=5,x`` is rejected naming ``top_n``, and ``"10"`` becomes ``10``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field

from ..backtest.config import BacktestConfig
from ..backtest.loader import BENCHMARKS
from ..backtest.runner import RunSpec, read_sections
from ..backtest.sweep import grid as cartesian
from ..config import validate_section
from ..errors import InputRejected, Problem

Objective = Literal["sharpe", "annual_return", "calmar", "total_return"]


class WalkForwardSettings(BaseModel):
    """The ``walkforward:`` section (command-line options override it field by field)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: date | None = None  # first day of the first train span (--start overrides)
    end: date | None = None  # last day of the holdout (--end overrides)
    train_years: int = Field(default=3, ge=1)
    test_years: int = Field(default=1, ge=1)
    holdout_years: int = Field(default=1, ge=0)  # 0: no holdout
    mode: Literal["rolling", "expanding"] = "rolling"
    objective: Objective = "sharpe"  # higher is better; NaN loses; ties go to the first combination
    grid: dict[str, list[Any]] | None = None
    # Overfit check: flagged when |holdout − mean walk-forward test| annual return exceeds this (project default).
    overfit_threshold: float = Field(default=0.05, gt=0)


@dataclass(frozen=True)
class WalkForwardSpec:
    run: RunSpec  # the strategy, its base settings, the backtest config, benchmark and the overall span
    options: WalkForwardSettings
    grid: dict[str, tuple[Any, ...]]  # typed values per parameter, in grid order
    grid_source: str

    @property
    def combos(self) -> list[dict[str, Any]]:
        return cartesian(**self.grid)


def parse_grid_args(items: list[str]) -> dict[str, list[str]]:
    """``["top_n=1,2", "lookback=20,60"]`` → ``{"top_n": ["1", "2"], ...}`` (values still text)."""
    grid: dict[str, list[str]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name or not values.strip():
            raise InputRejected(Problem("--grid", None, f"{item!r}: expected name=value1,value2,..."))
        if name in grid:
            raise InputRejected(Problem("--grid", None, f"{name}: given twice"))
        grid[name] = [v.strip() for v in values.split(",")]
    return grid


def typed_grid(strategy_name: str, base: dict[str, Any], raw: dict[str, Any], source: str,
               base_source: str = "strategy") -> dict[str, tuple]:
    """Each grid value validated by the strategy's settings (with the base settings), as plain JSON values;
    errors name ``source`` (``base_source`` for the base settings) and the field."""
    from ..strategies import create_strategy

    strategy = create_strategy(strategy_name, base, base_source)
    settings_model = type(strategy.settings)
    typed: dict[str, tuple] = {}
    problems: list[Problem] = []
    for name, values in raw.items():
        values = values if isinstance(values, (list, tuple)) else [values]
        if not values:
            problems.append(Problem(source, None, f"{name}: no values"))
            continue
        if name in strategy.market_settings and len(values) > 1:
            problems.append(Problem(source, None, f"{name}: {strategy_name} reads it when the market is loaded and "
                                    "prepared, once for the whole grid; give one value (run one sweep per value)"))
            continue
        parsed = []
        for value in values:
            try:
                settings = validate_section(settings_model, {**base, name: value}, source)
            except InputRejected as exc:  # one problem per parameter: its other values fail alike
                field = settings_model.model_fields.get(name)
                if isinstance(value, str) and field is not None and _structured(field.annotation):
                    problems.append(Problem(source, None, f"{name}: a list or dict value cannot be given as "
                                            f"comma-separated text; set it in the config's walkforward.grid"))
                else:
                    problems += exc.problems[:1]
                break
            number = getattr(settings, name, None)
            if isinstance(number, float) and not math.isfinite(number):
                problems.append(Problem(source, None, f"{name}: {value!r} is not a finite number"))
                break
            parsed.append(settings.model_dump(mode="json")[name])
        else:
            if len(set(map(repr, parsed))) < len(parsed):
                problems.append(Problem(source, None, f"{name}: repeated value in {values}"))
            typed[name] = tuple(parsed)
    if problems:
        raise InputRejected(problems)
    return typed


def _structured(annotation: Any) -> bool:
    """Whether a settings field takes lists or dicts (which ``--grid name=v1,v2`` text cannot spell)."""
    if get_origin(annotation) in (list, dict, tuple, set) or annotation in (list, dict, tuple, set):
        return True
    return any(_structured(arg) for arg in get_args(annotation))


def no_grid(strategy_name: str, source: str) -> Problem:
    """The strategy declares no ``search_space`` and none was given: the fields a grid may vary."""
    from ..strategies import create_strategy

    fields = ", ".join(type(create_strategy(strategy_name).settings).model_fields)
    return Problem(source, None, f"no grid for {strategy_name} (it declares no search_space): give --grid "
                   f"name=v1,v2 or a walkforward.grid section; its settings fields: {fields}")


def make_spec(strategy: str, settings: dict[str, Any] | None = None, config: BacktestConfig | None = None,
              benchmark: tuple[str, ...] = BENCHMARKS, source: str = "command line", grid_source: str | None = None,
              **options: Any) -> WalkForwardSpec:
    """A validated spec; ``options`` are :class:`WalkForwardSettings` fields (``start=date(2018, 1, 1)``,
    ``train_years=2``, ``grid={"top_n": [1, 2]}`` ...); without a grid the class's ``search_space`` is used."""
    from ..strategies import STRATEGIES

    wf = validate_section(WalkForwardSettings, options, f"{source}: walkforward")
    if wf.start and wf.end and wf.start > wf.end:
        raise InputRejected(Problem(source, None, f"walkforward: start {wf.start} is after end {wf.end}"))
    base = dict(settings or {})
    if wf.grid is not None:
        raw, where = wf.grid, grid_source or f"{source}: walkforward.grid"
    else:
        raw, where = STRATEGIES[strategy].search_space if strategy in STRATEGIES else {}, f"{strategy}.search_space"
    if not raw:
        raise InputRejected(no_grid(strategy, source))
    typed = typed_grid(strategy, base, raw, where, f"{source}: strategy")
    run = RunSpec(strategy, base, config or BacktestConfig(), benchmark, wf.start, wf.end, source)
    return WalkForwardSpec(run, wf, typed, where)


def read_walkforward_spec(strategy: str, config_file: Path | None, start: date | None, end: date | None,
                          capital: float | None, overrides: dict[str, Any],
                          grid_args: list[str] | None) -> WalkForwardSpec:
    """The YAML's sections (as ``run.py backtest`` reads them, plus ``walkforward:``) with command-line
    overrides (``None`` values are not given); every error names the file or option and the field."""
    raw, source, config, benchmark = read_sections(config_file, capital, ("walkforward",))
    options = raw.get("walkforward") or {}
    if not isinstance(options, dict):
        raise InputRejected(Problem(source, None, "walkforward: expected a mapping"))
    grid = parse_grid_args(grid_args) if grid_args else None
    given = {**overrides, "start": start, "end": end, "grid": grid}
    options = {**options, **{k: v for k, v in given.items() if v is not None}}
    return make_spec(strategy, raw.get("strategy") or {}, config, benchmark, source, "--grid" if grid else None,
                     **options)
