"""The sweeps and walk-forwards whose outputs must not change with the speed work, and their canonical form.

``tests/golden/`` holds what the code before the speed work produced for them; ``test_sweep_identity.py``
compares against it. To capture them again from another checkout (e.g. a pristine copy of the main branch):

    python tests/sweep_cases.py --root /path/to/that/checkout --out tests/golden

``--root`` is put first on ``sys.path``, so the checkout's own ``vnpy_rotation`` computes the goldens.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

# The five factor mixes of benchmarks/bench_rotation_sweep.py: 200 combinations share them.
FACTOR_MIXES = (
    {"mom_60": 0.4, "trend_60": 0.3, "mom_20": 0.2, "vol_20": 0.1},
    {"mom_20": 1.0},
    {"mom_60": 0.5, "rs_csi300_60": 0.5},
    {"risk_adj_mom_60": 0.6, "trend_60": 0.4},
    {"mom_120": 0.4, "ma_gap_120": 0.3, "mdd_60": 0.3},
)
WALKFORWARD_FILES = ("windows.csv", "grid_train.csv", "stability.csv", "holdout.json", "trades.csv", "equity.csv")
WALKFORWARDS = {  # name → (first train day, train years, --grid arguments): a short walk-forward of each template
    "etf_rotation": ("2020-01-02", 1, ["top_n=1,2", "buffer=0,2"]),
    "vqm": ("2020-01-02", 1, ["top_n=5,10"]),
}


def walkforward_args(name: str) -> list[str]:
    """The ``run.py walkforward`` arguments of the case ``name``."""
    start, years, grid_args = WALKFORWARDS[name]
    return ["--strategy", name, "--start", start, "--train-years", str(years),
            *(a for g in grid_args for a in ("--grid", g))]


def etf_combos() -> list[dict[str, Any]]:
    from vnpy_rotation.backtest.sweep import grid

    return grid(top_n=[1, 2], buffer=[0, 1, 2, 3, 4], schedule=["week_end", "month_end"],
                absolute_factor=["mom_60", "mom_120"], factors=list(FACTOR_MIXES))


def vqm_combos() -> list[dict[str, Any]]:
    from vnpy_rotation.backtest.sweep import grid

    return grid(w_pe=[0.4, 0.5, 0.6, 0.7, 0.8], top_n=[5, 10, 20], stock_stop=[0.08, None])


def momentum_combos() -> list[dict[str, Any]]:
    from vnpy_rotation.backtest.sweep import grid

    return grid(lookback=[1, 20, 60], top_n=[1, 3], rebalance=["week_end", "daily"], adjusted=[True, False],
                sizing=["weight", "shares"])


def canonical_csv(frame) -> str:
    """Every value at full float precision; a factor mix as ``name=weight;...``."""
    shown = frame.copy()
    if "factors" in shown:
        shown["factors"] = [";".join(f"{k}={v!r}" for k, v in f.items()) for f in shown["factors"]]
    buffer = io.StringIO()
    shown.to_csv(buffer, index=False, float_format="%.17g", lineterminator="\n")
    return buffer.getvalue()


def markets(stocks_store) -> dict[str, Any]:
    """The bundled market each template decides on (``market_for``: bars, benchmark, VQM's inputs)."""
    from vnpy_rotation.backtest.loader import market_for
    from vnpy_rotation.strategies import create_strategy

    return {name: market_for(create_strategy(name), store=stocks_store) for name in ("etf_rotation", "vqm")}


def sweeps(found: dict[str, Any]) -> dict[str, Any]:
    from vnpy_rotation.backtest.config import BacktestConfig
    from vnpy_rotation.backtest.sweep import sweep

    config = BacktestConfig()
    return {"etf_rotation": sweep(found["etf_rotation"], "etf_rotation", etf_combos(), config),
            "momentum_topn": sweep(found["etf_rotation"], "momentum_topn", momentum_combos(), config),
            "vqm": sweep(found["vqm"], "vqm", vqm_combos(), config)}


def walkforward_hashes(root: Path, home: Path, name: str) -> dict[str, str]:
    """sha256 of each result file of ``run.py walkforward`` (run from ``root``) for the case ``name``."""
    out = home / f"wf_{name}"
    done = subprocess.run([sys.executable, str(root / "run.py"), "walkforward", *walkforward_args(name),
                           "--out", str(out), "--home", str(home)], cwd=home, capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return {f: hashlib.sha256((out / f).read_bytes()).hexdigest() for f in WALKFORWARD_FILES}


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
    home = conftest._HOME
    found = markets(conftest.fresh_bundled_store(stocks=True))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, frame in sweeps(found).items():
        (args.out / f"sweep_{name}.csv").write_text(canonical_csv(frame), encoding="utf-8")
    hashes = {name: walkforward_hashes(root, home, name) for name in WALKFORWARDS}
    (args.out / "walkforward_sha256.json").write_text(json.dumps(hashes, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
