"""Capital allocation across strategies and accounts: pure rules (no vnpy), a frozen record the risk engine
stores, and the sizing hook that caps a strategy's orders by its allocation."""

from .cap import CappedOrder, SizedOrder, cap_to_allocation
from .config import (
           AccountConfig,
           AllocationConfig,
           Schedule,
           StrategyAllocation,
           allocation_config,
           read_allocation_config,
)
from .records import AccountLine, AccountState, AllocationDecision, AllocationLine, Snapshot
from .rules import CanarySplit, allocate, canary_split, clip_to_total, due, realised_volatility, review

__all__ = ["AccountConfig", "AccountLine", "AccountState", "AllocationConfig", "AllocationDecision", "AllocationLine",
           "CanarySplit", "CappedOrder", "Schedule", "SizedOrder", "Snapshot", "StrategyAllocation", "allocate",
           "allocation_config", "canary_split", "cap_to_allocation", "clip_to_total", "due", "read_allocation_config",
           "realised_volatility", "review"]
