"""The panel loader against the raw files it was fed."""

from datetime import date

import numpy as np
import pandas as pd
import pytest
from conftest import BUNDLED

from vnpy_rotation.bundled import bundled_files
from vnpy_rotation.data.formats import parse
from vnpy_rotation.data.importer import import_paths
from vnpy_rotation.data.panels import load_panels


@pytest.fixture
def bundled_store(store):
    result = import_paths(bundled_files(), store, progress=False)
    assert result.ok, result.failures
    return store


@pytest.mark.parametrize("relative,vt_symbol", [
    ("etf/unadjusted_em/510300.csv", "510300.SSE"),
    ("etf/unadjusted_tdx/159941.csv", "159941.SZSE"),
    ("etf/unadjusted_em/159915.csv", "159915.SZSE"),
])
def test_panels_equal_raw_file(bundled_store, relative, vt_symbol):
    raw = parse(BUNDLED / relative).frame.set_index("date")
    panels = load_panels([vt_symbol], store=bundled_store)
    for field in ("open", "high", "low", "close", "volume"):
        got = panels.__getattribute__(field)[vt_symbol].dropna()
        pd.testing.assert_series_equal(got, raw[field].astype(float), check_names=False, check_freq=False,
                                       check_index_type=False)  # datetime unit (ns/us) is immaterial


def test_volume_is_in_shares(bundled_store):
    # Eastmoney counts lots of 100: the stored volume is the file's figure × 100.
    text = (BUNDLED / "etf/unadjusted_em/510300.csv").read_text(encoding="utf-8").splitlines()[1].split(",")
    panels = load_panels(["510300.SSE"], date(2017, 1, 18), date(2017, 1, 18), store=bundled_store)
    assert panels.volume.iloc[0, 0] == float(text[5]) * 100


def test_missing_day_is_suspended_and_window(bundled_store):
    panels = load_panels(["159915.SZSE", "510300.SSE"], date(2021, 2, 1), date(2021, 2, 10), store=bundled_store)
    assert panels.days[0] == pd.Timestamp("2021-02-01") and panels.days[-1] == pd.Timestamp("2021-02-10")
    assert panels.suspended.loc["2021-02-08", "159915.SZSE"]
    assert np.isnan(panels.close.loc["2021-02-08", "159915.SZSE"])
    assert not panels.suspended["510300.SSE"].any()


def test_adjusted_prices_are_continuous_through_split_and_distributions(bundled_store):
    panels = load_panels(["159941.SZSE", "510300.SSE"], store=bundled_store)
    adj = panels.adjusted("close")
    moves = adj.pct_change(fill_method=None).abs()
    assert moves["159941.SZSE"].max() < 0.105  # the −74.7 % unit split of 2022-07-05 is gone
    raw_moves = panels.close.pct_change(fill_method=None).abs()
    assert raw_moves.loc["2022-07-05", "159941.SZSE"] > 0.7
    # 510300's 2024-01-18 distribution: raw close drops, the adjusted return is the market move.
    assert panels.factor.loc["2024-01-18", "510300.SSE"] > panels.factor.loc["2024-01-17", "510300.SSE"]


def test_adjusted_history_is_point_in_time(bundled_store):
    """Adjusted prices up to t do not depend on data after t (backward adjustment)."""
    full = load_panels(["510300.SSE"], store=bundled_store).adjusted("close")
    early = load_panels(["510300.SSE"], end=date(2020, 6, 30), store=bundled_store).adjusted("close")
    pd.testing.assert_frame_equal(full.loc[:"2020-06-30"], early, check_freq=False)


def test_a_bar_on_a_day_the_calendar_lacks_gets_its_own_row(bundled_store):
    from vnpy_rotation.market.calendar import TradingCalendar, default_calendar

    full = default_calendar().days
    gap = pd.Timestamp("2021-02-04")
    calendar = TradingCalendar(full[full != gap])
    panels = load_panels(["159915.SZSE", "510300.SSE"], date(2021, 2, 1), date(2021, 2, 10), store=bundled_store,
                         calendar=calendar)
    reference = load_panels(["159915.SZSE", "510300.SSE"], date(2021, 2, 1), date(2021, 2, 10),
                            store=bundled_store)
    assert gap in panels.days
    pd.testing.assert_frame_equal(panels.close, reference.close, check_freq=False)
    pd.testing.assert_frame_equal(panels.suspended, reference.suspended, check_freq=False)


def test_bars_saved_after_a_read_show_in_the_next_read(bundled_store):
    """The columnar block is rebuilt when vnpy's bar table changed for that symbol."""
    from vnpy.trader.constant import Exchange, Interval
    from vnpy.trader.object import BarData

    from vnpy_rotation.data.store import SHANGHAI

    before = load_panels(["510300.SSE"], store=bundled_store)
    last = before.days[-1]
    assert last == pd.Timestamp("2024-09-30")
    new_day = pd.Timestamp("2024-10-08")  # the next trading day (National Day holiday in between)
    bar = BarData(gateway_name="DB", symbol="510300", exchange=Exchange.SSE,
                  datetime=new_day.to_pydatetime().replace(tzinfo=SHANGHAI), interval=Interval.DAILY,
                  open_price=3.5, high_price=3.6, low_price=3.4, close_price=3.55, volume=1e6, turnover=3.55e6)
    bundled_store.database.save_bar_data([bar])
    after = load_panels(["510300.SSE"], store=bundled_store)
    assert after.days[-1] == new_day and after.close.loc[new_day, "510300.SSE"] == 3.55
    pd.testing.assert_frame_equal(after.close.loc[:last], before.close, check_freq=False)
