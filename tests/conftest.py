"""Shared fixtures. vnpy is imported once per test process, inside a temporary runtime folder."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

# Property tests explore the same examples on every run: CI results do not depend on luck.
hypothesis_settings.register_profile("repeatable", derandomize=True, deadline=None)  # no timed tests
hypothesis_settings.load_profile("repeatable")

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "vnpy_rotation" / "bundled"


def _real_data() -> Path | None:
    candidates = [os.environ.get("ROTATION_REAL_DATA"), ROOT.parent / "shared" / "data" / "real",
                  Path("/work/shared/data/real")]
    return next((Path(c) for c in candidates if c and Path(c, "PROVENANCE.md").exists()), None)


REAL = _real_data()
needs_real = pytest.mark.skipif(REAL is None, reason="../shared/data/real is not present")


# vnpy fixes its runtime folder at first import, and test modules import vnpy at collection time:
# settle it here, before any test module is imported, in a temporary folder (never ~/.vntrader).
_HOME = Path(tempfile.mkdtemp(prefix="vnpy_rotation_tests_"))
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
from vnpy_rotation.runtime import settle_runtime  # noqa: E402

settle_runtime(_HOME)


@pytest.fixture(scope="session")
def runtime_home() -> Path:
    """The one runtime folder vnpy uses in this test process."""
    return _HOME


def empty_database(bar_store) -> None:
    """Delete every row of vnpy's bar tables and of this project's tables."""
    from vnpy_rotation.data.store import MODELS
    from vnpy_rotation.fundamentals.dividends import DividendRow, DividendStore
    from vnpy_rotation.fundamentals.store import MODELS as FUNDAMENTAL_MODELS
    from vnpy_rotation.fundamentals.store import FundamentalStore

    FundamentalStore(bar_store.database)  # binds its tables to this database
    DividendStore(bar_store.database)
    bar_store.bar_model.delete().execute()
    for model in MODELS + FUNDAMENTAL_MODELS + (DividendRow,):
        model.delete().execute()
    overview = getattr(sys.modules[type(bar_store.database).__module__], "DbBarOverview", None)
    if overview is not None:
        overview.delete().execute()


@pytest.fixture
def runtime_user_file(runtime_home):
    """The path of the test process's user instrument file (``HOME/.vntrader/instruments.yaml``), removed afterwards."""
    from vnpy_rotation.market.instruments import user_table_path

    path = user_table_path()
    assert path is not None and not path.exists()
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture
def store(runtime_home):
    """A :class:`BarStore` on an emptied database."""
    from vnpy_rotation.data.store import BarStore

    bar_store = BarStore()
    empty_database(bar_store)
    return bar_store


def run_cli(*args: str, home: Path, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python run.py ARGS --home HOME`` in a subprocess, from a neutral directory (``env`` adds variables)."""
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args, "--home", str(home)],
                          cwd=home, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen", **(env or {})})


def fresh_bundled_store(stocks: bool = False):
    """A :class:`BarStore` on an emptied database holding exactly the bundled real data (ETFs and indices;
    with ``stocks`` also the CSI 300 stock subset with its fundamentals and membership)."""
    from vnpy_rotation.bundled import bundled_files, bundled_stock_files
    from vnpy_rotation.data.importer import import_paths
    from vnpy_rotation.data.store import BarStore

    bar_store = BarStore()
    empty_database(bar_store)
    result = import_paths(bundled_files() + (bundled_stock_files() if stocks else []), bar_store, progress=False)
    assert result.ok, result.failures
    return bar_store


@contextmanager
def bundled_store_for(vnpy_backtesting):
    """The bundled data in a fresh database, with ``vnpy_backtesting``'s per-process bar cache cleared
    before and after (vnpy caches bars by symbol and dates: never serve another test's)."""
    store = fresh_bundled_store()
    vnpy_backtesting.load_bar_data.cache_clear()
    yield store
    vnpy_backtesting.load_bar_data.cache_clear()


@pytest.fixture(scope="session")
def bundled_market(runtime_home):
    """MarketData of every bundled ETF, loaded once from a freshly imported database (kept in memory)."""
    from vnpy_rotation.backtest.loader import load_market
    from vnpy_rotation.bundled import manifest

    bar_store = fresh_bundled_store()
    pools = manifest()["pools"]
    symbols = [s for name, members in pools.items() if name != "BENCHMARK" for s in members]
    return load_market(symbols, store=bar_store)


@pytest.fixture(scope="session")
def bundled_stock_market(runtime_home):
    """MarketData of the bundled CSI 300 stocks with VQM's point-in-time inputs attached (kept in memory)."""
    from vnpy_rotation.backtest.loader import market_for
    from vnpy_rotation.strategies import create_strategy

    return market_for(create_strategy("vqm"), store=fresh_bundled_store(stocks=True))


def replay_and_backtest(home: Path, strategy: str, span: tuple[str, ...], config: Path):
    """``run.py trade --gateway replay`` and ``run.py backtest`` of the same span and config into ``home``:
    asserts the replay's own consistency check found no difference; returns (live, backtest) trades."""
    import pandas as pd

    done = run_cli("trade", "--gateway", "replay", "--strategy", strategy, *span, "--config", str(config),
                   "--out", str(home / "replay"), home=home)
    assert done.returncode == 0, done.stderr
    daily = pd.read_csv(home / "replay" / "consistency.csv")
    assert daily["backtest_fills"].sum() > 0
    assert (daily["differing_fills"] == 0).all() and daily["equity_diff"].abs().max() == 0
    done = run_cli("backtest", "--strategy", strategy, *span, "--config", str(config),
                   "--out", str(home / "backtest"), home=home)
    assert done.returncode == 0, done.stderr
    return pd.read_csv(home / "replay" / "trades.csv"), pd.read_csv(home / "backtest" / "trades.csv")
