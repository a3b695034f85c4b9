"""The XT data path: vnpy_xt's real Datafeed over a fake xtquant, into vnpy's bar table."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import BUNDLED, REAL, ROOT
from fakes.fake_xtquant import FakeXt

START, END = date(2020, 1, 1), date(2021, 6, 30)
XT_CODES = {("510300", "SSE"): "510300.SH", ("159915", "SZSE"): "159915.SZ"}
SCRIPT = ROOT / "scripts" / "fetch_xt_bars.py"

# Used only when neither the bundled nor the shared real data is present. Hand-written, not market data.
HAND_WRITTEN = {
    ("510300", "SSE"): [("2021-06-28", 5.290, 5.305, 5.250, 5.268, 61_873_400, 326_418_101.0),
                        ("2021-06-29", 5.262, 5.270, 5.205, 5.216, 70_015_300, 366_032_950.0),
                        ("2021-06-30", 5.220, 5.278, 5.212, 5.270, 66_402_900, 348_994_640.0),
                        ("2021-07-01", 5.275, 5.281, 5.190, 5.231, 83_337_600, 436_880_470.0)],
    ("159915", "SZSE"): [("2021-06-28", 3.281, 3.345, 3.275, 3.339, 480_772_500, 1_594_361_770.0),
                         ("2021-06-29", 3.330, 3.349, 3.280, 3.297, 512_007_800, 1_697_433_160.0),
                         ("2021-06-30", 3.300, 3.355, 3.288, 3.352, 455_320_100, 1_516_101_440.0),
                         ("2021-07-01", 3.355, 3.377, 3.290, 3.321, 530_118_900, 1_763_775_300.0)],
}


def served_series(code: str, exchange: str) -> dict[str, pd.DataFrame]:
    """{dividend type: bars} for one symbol: bundled files, else the shared real data, else HAND_WRITTEN."""
    from vnpy_rotation.data.formats import parse, symbol_from_name

    for root in (BUNDLED, REAL):
        found: dict[str, pd.DataFrame] = {}
        for path in sorted(root.rglob("*")) if root and root.is_dir() else []:
            if path.is_file() and path.name.lower().endswith((".csv", ".csv.gz")) \
                    and symbol_from_name(path) == (code, exchange):
                parsed = parse(path)
                found.setdefault("front_ratio" if parsed.adjustment == "qfq" else "none", parsed.frame)
        if "none" in found:
            return found
    rows = pd.DataFrame(HAND_WRITTEN[(code, exchange)],
                        columns=["date", "open", "high", "low", "close", "volume", "turnover"])
    rows["date"] = pd.to_datetime(rows["date"])
    return {"none": rows}


def stored_bars(store, code: str, exchange: str) -> pd.DataFrame:
    """vnpy's bar table for one symbol, straight from SQL (vnpy_sqlite's loader reads dates in local time)."""
    from vnpy_rotation.data.store import to_dates

    m = store.bar_model
    query = (m.select(m.datetime, m.open_price, m.high_price, m.low_price, m.close_price, m.volume, m.turnover)
             .where((m.symbol == code) & (m.exchange == exchange) & (m.interval == "d")).order_by(m.datetime))
    frame = pd.DataFrame(store.db.execute_sql(*query.sql()).fetchall(),
                         columns=["date", "open", "high", "low", "close", "volume", "turnover"])
    frame["date"] = to_dates(frame["date"])
    return frame


def expected_bars(series: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """What XT (front_ratio) serves in the window, without no-trade days."""
    frame = series.get("front_ratio", series["none"])
    frame = frame[(frame["date"] >= pd.Timestamp(START)) & (frame["date"] <= pd.Timestamp(END)) & (frame["volume"] > 0)]
    return frame[["date", "open", "high", "low", "close", "volume", "turnover"]].reset_index(drop=True)


@pytest.fixture
def fake_xt(monkeypatch, runtime_home):
    """A fake xtquant in sys.modules, vnpy_xt re-imported on top of it, token credentials set."""
    from vnpy.trader.setting import SETTINGS

    ours = [name for name in sys.modules if name.split(".")[0] in ("xtquant", "vnpy_xt")]
    for name in ours:
        monkeypatch.delitem(sys.modules, name)
    fake = FakeXt()
    fake.install(monkeypatch)
    monkeypatch.setitem(SETTINGS, "datafeed.name", "xt")
    monkeypatch.setitem(SETTINGS, "datafeed.username", "token")
    monkeypatch.setitem(SETTINGS, "datafeed.password", "test-token")
    yield fake
    for name in [n for n in sys.modules if n.split(".")[0] == "vnpy_xt"]:
        del sys.modules[name]


@pytest.fixture
def datafeed(fake_xt):
    """vnpy_xt's real Datafeed, freshly imported so it binds to the fake xtquant."""
    module = importlib.import_module("vnpy_xt.xt_datafeed")
    assert module.xtdata is sys.modules["xtquant.xtdata"]
    feed = importlib.import_module("vnpy_xt").Datafeed()
    yield feed
    if feed.lock is not None:
        feed.lock.release()


@pytest.fixture
def served(fake_xt):
    """Both symbols served by the fake; returns {(code, exchange): {dividend type: bars}}."""
    result = {}
    for (code, exchange), xt_code in XT_CODES.items():
        result[(code, exchange)] = series = served_series(code, exchange)
        for dividend_type, frame in series.items():
            fake_xt.serve(xt_code, frame, dividend_type)
    return result


@pytest.fixture(params=["Asia/Shanghai", "UTC", "America/New_York"])
def machine_zone(request, monkeypatch):
    """Run with the process in another time zone: vnpy_xt converts XT's epochs in local time."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


def test_fetch_stores_the_served_bars(store, datafeed, fake_xt, served, machine_zone):
    from vnpy_rotation.data.xt_fetch import fetch_into_database

    reports = fetch_into_database(["510300.SSE", "159915.SZSE"], START, END, store, datafeed)

    assert [r.vt_symbol for r in reports] == ["510300.SSE", "159915.SZSE"]
    assert all(r.ok for r in reports), [p for r in reports for p in r.problems]
    for (code, exchange), series in served.items():
        expected = expected_bars(series)
        pd.testing.assert_frame_equal(stored_bars(store, code, exchange), expected, check_dtype=False,
                                      check_exact=False, rtol=1e-12)
        assert store.basis(code, exchange) == "qfq"
        assert np.allclose(store.qfq_close(code, exchange).to_numpy(), expected["close"].to_numpy())
    # vnpy_xt really went through xtquant: token login, download, then forward-adjusted local data.
    assert fake_xt.called("set_token") == [{"token": "test-token"}]
    assert [c["stock_code"] for c in fake_xt.called("download_history_data")] == ["510300.SH", "159915.SZ"]
    assert {c["dividend_type"] for c in fake_xt.called("get_local_data")} == {"front_ratio"}


def test_unadjusted_bars_already_stored_are_kept(store, datafeed, fake_xt, served):
    from vnpy_rotation.data.xt_fetch import fetch_into_database

    code, exchange = "510300", "SSE"
    unadjusted = served[(code, exchange)]["none"]
    unadjusted = unadjusted[(unadjusted["date"] >= pd.Timestamp(START)) & (unadjusted["date"] <= pd.Timestamp(END))]
    with store.transaction():
        store.save_bars(code, exchange, unadjusted)
        store.set_basis(code, exchange, "unadjusted")
    before = stored_bars(store, code, exchange)

    [report] = fetch_into_database(["510300.SSE"], START, END, store, datafeed)

    assert report.ok
    pd.testing.assert_frame_equal(stored_bars(store, code, exchange), before)
    assert store.basis(code, exchange) == "unadjusted"
    assert len(store.qfq_close(code, exchange)) == report.rows
    assert all(e.source == "qfq_pair" for e in report.events)


def test_unknown_code_is_rejected_before_anything_is_asked(store, datafeed, fake_xt, served):
    from vnpy_rotation.data.xt_fetch import fetch_into_database
    from vnpy_rotation.errors import UnknownInstrument

    with pytest.raises(UnknownInstrument, match="999999.SSE"):
        fetch_into_database(["510300.SSE", "999999.SSE"], START, END, store, datafeed)
    assert fake_xt.calls == []
    assert stored_bars(store, "510300", "SSE").empty


def test_invalid_series_is_not_written(store, datafeed, fake_xt):
    from vnpy_rotation.data.xt_fetch import fetch_into_database

    bars = pd.DataFrame({"date": pd.to_datetime(["2021-06-28", "2021-06-29"]), "open": [5.29, 5.26],
                         "high": [5.20, 5.27], "low": [5.25, 5.20], "close": [5.27, 5.22],
                         "volume": [1e6, 1e6], "turnover": [5.3e6, 5.2e6]})
    fake_xt.serve("510300.SH", bars)

    [report] = fetch_into_database(["510300.SSE"], START, END, store, datafeed)

    assert not report.ok and "high 5.2 is below" in str(report.problems[0])
    assert stored_bars(store, "510300", "SSE").empty and store.basis("510300", "SSE") is None


def test_a_rejected_token_stops_before_writing(store, datafeed, fake_xt, served):
    from vnpy_rotation.data.xt_fetch import DatafeedFailed, fetch_into_database

    fake_xt.tokens.clear()
    with pytest.raises(DatafeedFailed, match="未获取到市场权限"):
        fetch_into_database(["510300.SSE"], START, END, store, datafeed)
    assert stored_bars(store, "510300", "SSE").empty


def test_load_datafeed_goes_through_vnpys_datafeed_layer(store, fake_xt, served, monkeypatch):
    import vnpy.trader.datafeed as layer
    from vnpy.trader.setting import SETTINGS

    from vnpy_rotation.data.xt_fetch import fetch_into_database, load_datafeed

    monkeypatch.setattr(layer, "datafeed", None)
    monkeypatch.setitem(SETTINGS, "datafeed.name", "")
    monkeypatch.setitem(SETTINGS, "datafeed.password", "")
    feed = load_datafeed(token="test-token")
    try:
        assert type(feed).__module__ == "vnpy_xt.xt_datafeed" and SETTINGS["datafeed.name"] == "xt"
        [report] = fetch_into_database(["159915.SZSE"], START, END, store, feed)
        assert report.ok and report.rows == len(expected_bars(served[("159915", "SZSE")]))
    finally:
        if feed.lock is not None:
            feed.lock.release()


def test_script_main_with_fake_xt(store, fake_xt, served, runtime_home, monkeypatch, capsys):
    import vnpy.trader.datafeed as layer

    spec = importlib.util.spec_from_file_location("fetch_xt_bars", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(layer, "datafeed", None)
    try:
        code = script.main(["510300.SSE", "159915.SZSE", "--start", str(START), "--end", str(END),
                            "--home", str(runtime_home), "--token", "test-token"])
    finally:
        if layer.datafeed is not None and layer.datafeed.lock is not None:
            layer.datafeed.lock.release()

    out = capsys.readouterr().out
    assert code == 0 and out.count("ok   ") == 2 and "[xt, qfq]" in out
    assert len(stored_bars(store, "510300", "SSE")) == len(expected_bars(served[("510300", "SSE")]))


def run_script(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args, "--home", str(home)], cwd=home,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})


@pytest.mark.skipif(sys.platform == "win32", reason="xtquant's native modules load on Windows")
def test_script_without_xtquant_exits_3_and_writes_nothing(tmp_path):
    result = run_script("510300.SSE", "159915.SZSE", "--start", "2020-01-01", home=tmp_path)

    assert result.returncode == 3, result.stderr
    assert "Windows" in result.stderr and "Traceback" not in result.stderr
    assert "run.py import" in result.stderr
    assert not (tmp_path / ".vntrader" / "database.db").exists()


def test_script_rejects_an_unknown_code(tmp_path):
    result = run_script("510300.SSE", "999999.SSE", "--start", "2020-01-01", home=tmp_path)

    assert result.returncode == 2
    assert "999999.SSE" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / ".vntrader" / "database.db").exists()


# XT's instrument detail checked against the instrument table: what XT serves → the fields that disagree.
XT_DETAIL_SCENARIOS = [
    # names match (the table's name inside XT's), 159915's +20 % band as the table says since 2020-08-24
    ({"510300.SH": dict(name="沪深300ETF华泰柏瑞", pre_close=4.000, up_stop=4.400),
      "159915.SZ": dict(name="创业板ETF易方达", pre_close=2.000, up_stop=2.400)},
     {"510300.SH": {"fund": True, "etf": True}}, []),
    # a +20 % band on 510300 (table: ±10 %) and a stock type: the kind is wrong somewhere
    ({"510300.SH": dict(name="沪深300ETF", pre_close=4.000, up_stop=4.800)},
     {"510300.SH": {"stock": True}}, [("510300.SSE", "price_limit"), ("510300.SSE", "type")]),
    # a renamed fund and a tick of 0.01
    ({"159915.SZ": dict(name="创业板指数ETF", price_tick=0.01, pre_close=2.00, up_stop=2.40)}, {},
     [("159915.SZSE", "name"), ("159915.SZSE", "tick")]),
    # an ETF that XT lists as a fund but not an ETF
    ({}, {"159915.SZ": {"fund": True}}, [("159915.SZSE", "type")]),
]


@pytest.mark.parametrize("details,types,expected", XT_DETAIL_SCENARIOS)
def test_xt_instrument_detail_is_checked_against_the_table(store, datafeed, fake_xt, served, details, types,
                                                           expected):
    from vnpy_rotation.data.xt_fetch import fetch_into_database

    for code, fields in details.items():
        fake_xt.add_instrument(code, TradingDay="20240102", **fields)
    fake_xt.instrument_types.update(types)

    reports = fetch_into_database(["510300.SSE", "159915.SZSE"], START, END, store, datafeed)

    assert all(r.ok for r in reports)
    assert [(m.vt_symbol, m.field) for r in reports for m in r.xt_mismatches] == expected
    assert all(str(m) in r.warnings for r in reports for m in r.xt_mismatches)  # and the user is told
