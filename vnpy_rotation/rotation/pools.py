"""ETF pools and their capital constraints (``configs/etf_pools.yaml``).

Each pool is scored on its own sessions: the days on which most of its listed members traded. A QDII
fund can stop trading on a foreign holiday while the A-share market is open; scoring it on those
days would read stale prices (分池计算因子，避免时区/节假日错窗).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..config import read_yaml, validate_section

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POOLS_FILE = ROOT / "configs" / "etf_pools.yaml"


class PoolConstraints(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    target_capital: float = Field(gt=0)  # CNY the pool is meant to run with (sets its share and the ADV cap)
    max_single_weight: float = Field(gt=0, le=1)  # of the pool's capital, per fund
    max_adv_pct: float = Field(gt=0, le=1)  # of the fund's 20-session average turnover, per order


class PoolsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pools: dict[str, list[str]]
    capital_constraints: dict[str, PoolConstraints]

    @field_validator("pools")
    @classmethod
    def _members(cls, pools: dict[str, list[str]]) -> dict[str, list[str]]:
        if not pools:
            raise ValueError("at least one pool is needed")
        seen: dict[str, str] = {}
        for name, members in pools.items():
            if not members:
                raise ValueError(f"pool {name} has no symbols")
            for symbol in members:
                code, _, exchange = symbol.partition(".")
                if not code or exchange not in ("SSE", "SZSE"):
                    raise ValueError(f"pool {name}: {symbol!r} is not CODE.SSE or CODE.SZSE")
                if symbol in seen:
                    raise ValueError(f"{symbol} is in pools {seen[symbol]} and {name}: a fund belongs to one pool")
                seen[symbol] = name
        return pools

    @model_validator(mode="after")
    def _constraints_match(self) -> "PoolsConfig":
        missing = sorted(set(self.pools) - set(self.capital_constraints))
        extra = sorted(set(self.capital_constraints) - set(self.pools))
        if missing:
            raise ValueError(f"capital_constraints lacks pools {missing}")
        if extra:
            raise ValueError(f"capital_constraints names unknown pools {extra}")
        return self

    def shares(self, names: list[str]) -> dict[str, float]:
        """Each named pool's fraction of the portfolio: its target capital over the named pools' total."""
        total = sum(self.capital_constraints[n].target_capital for n in names)
        return {n: self.capital_constraints[n].target_capital / total for n in names}


def read_pools(path: Path | str | None = None) -> PoolsConfig:
    """The pools file, validated; errors name the file and the field.

    A relative path is looked up in the current directory, then in the project folder (so
    ``configs/etf_pools_wide.yaml`` works from anywhere in a clone).
    """
    path = pools_path(path)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None  # read_yaml names the missing file
    return _read_pools(path, stamp)


def pools_path(path: Path | str | None = None) -> Path:
    """The pools file ``path`` names (default :data:`DEFAULT_POOLS_FILE`): a relative path is looked up in the
    current directory, then in the project folder."""
    path = Path(path) if path else DEFAULT_POOLS_FILE
    if not path.is_absolute() and not path.exists() and (ROOT / path).exists():
        path = ROOT / path
    return path


@lru_cache(maxsize=32)
def _read_pools(path: Path, stamp: int | None) -> PoolsConfig:
    """Parsed once per file version: a parameter sweep creates hundreds of strategies."""
    return validate_section(PoolsConfig, read_yaml(path), str(path))


def pool_sessions(has_bar: np.ndarray, listed: np.ndarray, quorum: float = 0.5) -> np.ndarray:
    """Row positions where more than ``quorum`` of the pool's listed members traded.

    ``has_bar`` and ``listed`` are day × member booleans (listed: traded on or before that day).
    """
    count = listed.sum(axis=1)
    traded = (has_bar & listed).sum(axis=1)
    return np.nonzero((count > 0) & (traded > quorum * count))[0]
