"""Backtests whose result frames (``RawRun.to_result``) must not change when building them gets faster, and a
digest of a frame that sees every value's bytes, every dtype and the index and column objects.

``tests/golden/result_frames.json`` holds the digests the code before that work produced; ``test_result_frames.py``
compares against it. To capture them again from another checkout (e.g. a pristine copy of the main branch):

    python tests/result_cases.py --root /path/to/that/checkout --out tests/golden/result_frames.json

``--root`` is put first on ``sys.path``, so the checkout's own ``vnpy_rotation`` runs the cases.
"""

from __future__ import annotations

import hashlib
import sys
from datetime import date
from pathlib import Path
from typing import Any

FRAMES = ("equity", "trades", "orders", "positions", "holdings_value", "symbol_pnl", "cash_flows", "risk_days")


def _array_bytes(values: Any) -> bytes:
    """The bytes of a column or index: numbers and datetimes as stored, anything else value by value (repr)."""
    import numpy as np

    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "biufcmM":
        return np.asarray(values).tobytes()
    return "\x1f".join(repr(v) for v in np.asarray(values, dtype=object).tolist()).encode()


def _index_digest(index: Any) -> list[str]:
    return [type(index).__name__, repr(index.name), str(index.dtype), repr(getattr(index, "freq", None)),
            hashlib.sha256(_array_bytes(index)).hexdigest()[:16]]


def frame_digest(frame: Any) -> Any:
    """Everything that tells two frames apart: class and dtype of index and columns, each column's dtype and
    bytes (-0.0 and NaN payloads included). None stays None."""
    if frame is None:
        return None
    return {"index": _index_digest(frame.index), "columns": _index_digest(frame.columns),
            "dtypes": [str(t) for t in frame.dtypes],
            "values": [hashlib.sha256(_array_bytes(frame.iloc[:, k])).hexdigest()[:16] for k in range(frame.shape[1])]}


def result_digest(result: Any) -> dict[str, Any]:
    return {**{name: frame_digest(getattr(result, name)) for name in FRAMES},
            "initial_capital": repr(result.initial_capital), "settings": result.settings,
            "drift_events": frame_digest(result.drift_events)}


def _ladders():
    from vnpy_rotation.backtest.config import BacktestConfig
    from vnpy_rotation.risk.config import RiskConfig
    from vnpy_rotation.risk.ladder import LadderConfig

    return BacktestConfig(risk=RiskConfig(
        ladder=LadderConfig(reduce_at=0.04, halt_at=0.12, recover_at=0.02, reduce_exposure=0.5, cooldown=5,
                            halt_cooldown=5),
        daily_loss=LadderConfig(measure="day_return", reduce_at=0.015, cooldown=1)))


def runs(etf_store: Any) -> dict[str, Any]:
    """name → RawRun: the bundled ETFs under momentum (one reason for every order) and etf_rotation; a
    synthetic VQM year with notes, stops and two drawdown ladders; a daily full turnover of 130 of 260 stocks
    with notes on some cells, partial fills, refusals and an ex-date; an empty plan."""
    import numpy as np
    import pandas as pd
    from test_kernel_once import _rotating_market

    from vnpy_rotation.backtest.config import BacktestConfig
    from vnpy_rotation.backtest.engine import TargetPlan, simulate
    from vnpy_rotation.backtest.loader import load_market, market_for
    from vnpy_rotation.bundled import manifest
    from vnpy_rotation.research.synthetic import SyntheticSpec, build, generate
    from vnpy_rotation.research.synthetic_fundamentals import draw_index, draw_reports, vqm_market
    from vnpy_rotation.strategies import create_strategy
    from vnpy_rotation.strategies.vqm import VqmSettings, VqmStrategy

    found: dict[str, Any] = {}
    symbols = [s for name, members in manifest()["pools"].items() if name != "BENCHMARK" for s in members]
    etfs = load_market(symbols, store=etf_store)
    momentum = create_strategy("momentum_topn", {"lookback": 20, "top_n": 2, "symbols": list(etfs.symbols)})
    found["momentum_bundled"] = simulate(etfs, momentum.targets(etfs), BacktestConfig())
    rotation = create_strategy("etf_rotation")
    market = market_for(rotation, store=etf_store)
    found["etf_rotation_bundled"] = simulate(market, rotation.targets(market), _ladders())

    synthetic = generate(SyntheticSpec(stocks=120, start=date(2021, 1, 1), end=date(2021, 12, 31), seed=11))
    settings = VqmSettings(symbols=list(build(synthetic).symbols), top_n=15)
    stocks = vqm_market(build(synthetic), synthetic, draw_reports(synthetic), draw_index(synthetic), settings)
    found["vqm_synthetic_ladders"] = simulate(stocks, VqmStrategy(settings).targets(stocks), _ladders())

    md, plan = _rotating_market()
    notes = pd.DataFrame(None, index=plan.frame.index, columns=plan.frame.columns, dtype=object)
    notes.iloc[::3, ::7] = "rank 1"
    notes.iloc[1::3, 2::7] = ""
    noted = TargetPlan(plan.frame, reason="rotate", notes=notes)
    found["rotating_partial"] = simulate(md, noted, BacktestConfig(capital=1e8, participation_cap=0.001))
    found["empty"] = simulate(md, TargetPlan(plan.frame.iloc[:0]), BacktestConfig())
    assert np.isfinite(found["rotating_partial"].action_rows).all()
    return found


def main() -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    root = args.root.resolve()
    sys.path.insert(0, str(root))
    sys.path.insert(1, str(Path(__file__).resolve().parent))
    import conftest  # settles vnpy's runtime folder in a temporary directory, as in the tests

    import vnpy_rotation

    assert Path(vnpy_rotation.__file__).resolve().is_relative_to(root), vnpy_rotation.__file__
    digests = {name: result_digest(run.to_result())
               for name, run in runs(conftest.fresh_bundled_store()).items()}
    args.out.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
