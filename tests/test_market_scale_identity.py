"""The whole-market path gives the bytes it gave before its memory work: a full-rules VQM backtest on a small
synthetic market, held in memory and opened memory-mapped from the ``.npy`` store, hashes to the digests the
code before that work produced (captured from a pristine copy of it, same spec, same settings)."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import date

import numpy as np
import pandas as pd
import pytest

from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.backtest.engine import simulate
from vnpy_rotation.research.synthetic import SyntheticSpec, build, generate
from vnpy_rotation.research.synthetic_fundamentals import draw_index, draw_reports, vqm_market
from vnpy_rotation.research.synthetic_store import open_market, save_market
from vnpy_rotation.strategies.vqm import VqmSettings, VqmStrategy

# Three dividend seasons (every stock has an ex-date each year), so held names meet splits and dividends.
SPEC = SyntheticSpec(stocks=150, start=date(2019, 1, 1), end=date(2021, 12, 31), seed=5)
TOP_N = 20
FRAMES = ("equity", "trades", "orders", "positions", "holdings_value", "symbol_pnl", "cash_flows")
# sha256 of each result frame (see ``digest``), computed by the code before the memory work: of the market as
# built, and as opened from the store (whose days come back as datetime64[ns]: other index bytes).
OLD_DIGESTS: dict[str, dict[str, str]] = {
    "built": {
        "equity": "f28da44767642b2fb37f37d431f252457192b79ae45010e221f3393e719521a3",
        "trades": "ae8db0a22dfdda2f931d4dce79cbec2c98b8cb30dbca0da289ed153a5d92bed8",
        "orders": "5f6595ad2348ab678fb782fb1007cec30e36f26269a921a8502c3fe7f42a94cc",
        "positions": "e1796ff689b28880a3fbecb918070e6a7f14c8ce2ad75da5054f9887eaf1df12",
        "holdings_value": "875d1f033f201f22f364ecd528e4f4be2aa4fae68020adf6539d0df159c7eb48",
        "symbol_pnl": "3d8efab0113e967e7984832b7b4e27fead5064e6ebc1b25799054ea04942f9e8",
        "cash_flows": "b9db7e77477816e845437cd78ceecb3ce466ac3823ece541c6ae04be0cc37b20",
    },
    "stored": {
        "equity": "651489d76017d6acabc3a81d5d2308d1af7329e73040067b382877e4095499d7",
        "trades": "99c155204540d6fff6d507e2abaf10ee2c85f4b3642cd1414f7e1972104c9f35",
        "orders": "373824412cbf216e6eeabf04a3d0caf3bc67b7f845eb0bc99419cbd77afe2eba",
        "positions": "064f6ee4c7a3f474944a48c668cc7bd62a659a2bf341bafcaead8a3618d60bcf",
        "holdings_value": "77042b0676a60f03b1586e55ddab1eccb643abf87e03da4b1799d1fd795ffec4",
        "symbol_pnl": "bcb26f48abbe23ed8594876f62c1ebc75a166138293d3aa71bc05a4f2c42ac4d",
        "cash_flows": "2c330ffa7d37d50179a791a33eacd255d57371d125f3ce63b6816fda494ae35d",
    },
}


def digest(frame: pd.DataFrame) -> str:
    """sha256 over the column names, the index and every column's values (numbers as their bytes)."""
    h = hashlib.sha256(repr(list(frame.columns)).encode())
    h.update(np.asarray(frame.index.values).tobytes() if frame.index.dtype.kind in "iufM" else
             "\x1f".join(map(str, frame.index)).encode())
    for name in frame.columns:
        values = frame[name].to_numpy()
        if values.dtype.kind in "biufM":
            h.update(f"{values.dtype}".encode() + np.ascontiguousarray(values).tobytes())
        else:
            h.update("\x1f".join(map(repr, values.tolist())).encode())
    return h.hexdigest()


def digests(market) -> dict[str, str]:
    plan = VqmStrategy(VqmSettings(symbols=list(market.symbols), top_n=TOP_N)).targets(market)
    result = simulate(market, plan, BacktestConfig()).to_result()
    return {name: digest(getattr(result, name)) for name in FRAMES}


@pytest.fixture(scope="module")
def market():
    synthetic = generate(SPEC)
    return vqm_market(build(synthetic), synthetic, draw_reports(synthetic), draw_index(synthetic))


def test_in_memory_run_gives_the_old_bytes(market):
    assert digests(market) == OLD_DIGESTS["built"]


def test_store_opened_run_gives_the_old_bytes(market, tmp_path):
    folder = save_market(market, tmp_path / "market")
    assert digests(open_market(folder)) == OLD_DIGESTS["stored"]
    assert digests(open_market(folder, mmap=False)) == OLD_DIGESTS["stored"]


# The ex-dates: a market (the store's) that carries its per-day action counts is not scanned for them.

def poisoned(market):
    """``market`` with NaN in its split and dividend arrays on every day without a corporate action: a run that
    reads them there (to find the ex-dates, or on a day without any) goes wrong."""
    acted = market.action_counts() > 0
    split, dividend = market.split.copy(), market.dividend.copy()
    split[~acted], dividend[~acted] = np.nan, np.nan
    return dataclasses.replace(market, split=split, dividend=dividend, actions_per_day=market.action_counts())


def test_a_run_reads_split_and_dividend_only_on_the_counted_ex_dates(market):
    assert 0 < (market.action_counts() > 0).sum() < len(market.days) / 2  # ex-dates and plain days both
    assert digests(poisoned(market)) == OLD_DIGESTS["built"]


def test_the_store_keeps_the_counts_of_the_arrays_it_saves(market, tmp_path):
    assert market.actions_per_day is None  # built markets count when asked
    counted = ((market.split != 1.0) | (market.dividend != 0.0)).sum(axis=1)
    opened = open_market(save_market(market, tmp_path / "market"))
    assert opened.actions_per_day is not None and (opened.actions_per_day == counted).all()
    assert (opened.window(date(2020, 6, 1), None).action_counts() == counted[market.days >= "2020-06-01"]).all()


def test_counts_of_another_length_are_refused(market):
    with pytest.raises(ValueError, match="actions_per_day"):
        dataclasses.replace(market, actions_per_day=np.zeros(len(market.days) - 1, dtype=np.int64))
