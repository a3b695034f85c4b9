"""Attribution on real runs of the bundled data: every backtest writes it and its lines sum to the equity
change with a residual within 1 % of gross; ``run.py attribution`` on a backtest and on a replay folder;
the industry file and user mistakes as ``file:line`` errors."""

import dataclasses
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_cli

from vnpy_rotation.attribution import attribute
from vnpy_rotation.attribution.industry import read_industries
from vnpy_rotation.attribution.report import span
from vnpy_rotation.errors import InputRejected

ROOT_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("attribution_home")


def _backtest(home, name, strategy, config, start, end):
    out = home / name
    done = run_cli("backtest", "--strategy", strategy, "--config", str(ROOT_CONFIGS / config), "--start", start,
                   "--end", end, "--out", str(out), home=home)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def etf_out(home):
    return _backtest(home, "etf", "etf_rotation", "etf_rotation.yaml", "2022-01-04", "2022-06-30")


@pytest.fixture(scope="module")
def vqm_out(home):
    return _backtest(home, "vqm", "vqm", "vqm.yaml", "2021-01-04", "2021-04-30")


@pytest.mark.parametrize("which", ["etf_out", "vqm_out"])
def test_every_backtest_attributes_its_equity_change(which, request):
    out = request.getfixturevalue(which)
    daily = pd.read_csv(out / "attribution.csv", parse_dates=["date"])
    equity = pd.read_csv(out / "equity.csv", parse_dates=["date"]).set_index("date")["equity"]
    change = equity.diff().fillna(equity.iloc[0] - 1_000_000)
    per_day = daily.groupby("date")["pnl"].sum().reindex(equity.index, fill_value=0.0)
    assert (per_day - change).abs().max() < 1e-3  # the daily lines are the day's equity change
    lines = ["holdings", "delay", "execution", "commission", "stamp_duty", "transfer_fee", "dividends",
             "corporate_action", "residual"]
    assert daily[lines].sum().sum() == pytest.approx(equity.iloc[-1] - 1_000_000, abs=0.01)
    per_day_residual = daily.groupby("date")["residual"].sum().abs()
    assert per_day_residual.max() < 0.01  # every day: equity change − every explained line
    summary = pd.read_csv(out / "attribution_summary.csv").set_index("component")
    assert summary.loc["residual, sum of absolute daily residuals", "cny"] < 0.01 * len(equity)
    assert daily["delay"].abs().sum() > 0  # real fills moved from the decision close
    brinson = summary[summary["group"] == "brinson"]["cny"].sum()
    assert brinson == pytest.approx(summary.loc["holdings", "cny"], abs=0.01)  # benchmark + effects = holdings
    segments = pd.read_csv(out / "attribution_segments.csv")
    assert "CASH" in set(segments["segment"])


@pytest.fixture(scope="module")
def etf_book(home):
    """The same ETF backtest in process, as the attribution's input."""
    from conftest import fresh_bundled_store

    from vnpy_rotation.backtest.attribution_inputs import from_backtest
    from vnpy_rotation.backtest.runner import read_spec, run_backtest

    spec = read_spec("etf_rotation", ROOT_CONFIGS / "etf_rotation.yaml", date(2022, 1, 4), date(2022, 6, 30), None)
    return from_backtest(run_backtest(spec, fresh_bundled_store(), lookahead_cuts=0))


def test_a_corrupted_equity_is_detected_on_a_real_backtest(etf_book):
    clean = attribute(etf_book)
    assert clean.residual_days == 0 and clean.residual_ok and clean.gross > 100_000
    jump = etf_book.equity.copy()
    jump[60:] += 20_000  # a phantom 20 000 CNY from day 60 on
    report = attribute(dataclasses.replace(etf_book, equity=jump))
    residual = report.daily_residual()
    assert residual.abs().idxmax() == etf_book.bars.days[60] and residual.abs().max() == pytest.approx(20_000, abs=0.01)
    assert report.residual_days == 1 and report.residual_abs == pytest.approx(20_000, abs=0.01)
    glitch = etf_book.equity.copy()
    glitch[60] += 50_000  # reverted the next day: nets to zero
    report = attribute(dataclasses.replace(etf_book, equity=glitch))
    assert report.residual_abs == pytest.approx(100_000, abs=0.01) and report.residual_days == 2
    assert not report.residual_ok and report.coverage < 0.99


def test_the_reports_carry_the_attribution_table(etf_out):
    assert "收益归因 P&L attribution" in (etf_out / "report.md").read_text(encoding="utf-8")
    html = (etf_out / "report.html").read_text(encoding="utf-8")
    assert 'id="attribution-table"' in html
    segments = set(pd.read_csv(etf_out / "attribution_segments.csv")["segment"])
    assert segments == {"A_SHARE", "QDII", "OTHER", "CASH"}
    summary = pd.read_csv(etf_out / "attribution_summary.csv")
    assert summary["component"].str.startswith("defensive-asset drag (511010.SSE").sum() == 1


def test_vqm_is_measured_by_board_against_the_index_members(vqm_out):
    summary = pd.read_csv(vqm_out / "attribution_summary.csv")
    assert summary["component"].str.contains("index members equal-weighted, by board").any()
    assert set(pd.read_csv(vqm_out / "attribution_segments.csv")["segment"]) <= {"main", "ChiNext", "STAR", "CASH"}


def test_cli_on_a_backtest_folder_cuts_the_window(home, etf_out):
    out = home / "attr_bt"
    done = run_cli("attribution", "--run", str(etf_out), "--out", str(out), "--start", "2022-03-01",
                   "--end", "2022-04-29", "--by", "day", home=home)
    assert done.returncode == 0, done.stderr
    equity = pd.read_csv(etf_out / "equity.csv", parse_dates=["date"]).set_index("date")["equity"]
    expected = equity.loc["2022-04-29"] - equity.loc[:"2022-02-28"].iloc[-1]
    summary = pd.read_csv(out / "attribution_summary.csv").set_index("component")["cny"]
    assert summary["total (equity change)"] == pytest.approx(expected, abs=0.01)
    by_day = pd.read_csv(out / "attribution_by_day.csv")
    assert by_day["date"].min() >= "2022-03-01" and by_day["date"].max() <= "2022-04-29"
    segments = pd.read_csv(out / "attribution_segments.csv")
    assert set(segments.columns) >= {"segment", "allocation", "selection", "interaction"}
    stored = pd.read_csv(etf_out / "attribution_segments_daily.csv", parse_dates=["date"])
    drag = stored.drop_duplicates("date").set_index("date").loc["2022-03-01":"2022-04-29", "defensive_drag_cny"]
    defensive = summary[summary.index.str.startswith("defensive-asset drag")]
    assert defensive.tolist() == pytest.approx([drag.sum()], abs=0.01)


def test_cli_on_a_replay_folder(home):
    replay = home / "replay"
    done = run_cli("trade", "--gateway", "replay", "--strategy", "etf_rotation", "--config",
                   str(ROOT_CONFIGS / "etf_rotation.yaml"), "--start", "2022-01-04", "--end", "2022-02-28",
                   "--out", str(replay), home=home)
    assert done.returncode == 0, done.stderr
    out = home / "attr_replay"
    done = run_cli("attribution", "--run", str(replay), "--out", str(out), "--by", "symbol", home=home)
    assert done.returncode == 0, done.stderr
    summary = pd.read_csv(replay / "daily_summary.csv")
    expected = summary["equity"].iloc[-1] - summary["equity"].iloc[0]  # the first session is the base
    table = pd.read_csv(out / "attribution_summary.csv").set_index("component")["cny"]
    assert table["total (equity change)"] == pytest.approx(expected, abs=0.01)
    daily = pd.read_csv(out / "attribution.csv")
    assert daily.groupby("date")["residual"].sum().abs().max() < 0.01
    assert table["dividends"] > 0  # 510880 paid on 2022-01-17 while held
    marks = pd.read_csv(out / "markouts.csv")
    assert len(marks) == len(pd.read_csv(replay / "trades.csv").query("datetime > '2022-01-04'"))


def test_cli_refuses_a_folder_that_is_no_run(home):
    done = run_cli("attribution", "--run", str(home / "nowhere"), "--out", str(home / "x"), home=home)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"{home / 'nowhere'}: not a run folder" in done.stderr
    assert not (home / "x").exists()


# ---------------------------------------------------------------- the industry file (Baostock layout)

BAOSTOCK = ("updateDate,code,code_name,industry,industryClassification\n"
            "2024-01-02,sh.600000,浦发银行,J66货币金融服务,证监会行业分类\n"
            "2024-01-02,sz.000001,平安银行,J66货币金融服务,证监会行业分类\n"
            "2024-01-02,sh.600519,贵州茅台,C15酒、饮料和精制茶制造业,证监会行业分类\n"
            "2024-01-02,sz.300750,宁德时代,,证监会行业分类\n")


def test_reads_baostocks_industry_layout(tmp_path):
    path = tmp_path / "industry.csv"
    path.write_text(BAOSTOCK, encoding="utf-8")
    assert read_industries(path) == {"600000.SSE": "J66货币金融服务", "000001.SZSE": "J66货币金融服务",
                                     "600519.SSE": "C15酒、饮料和精制茶制造业", "300750.SZSE": "unclassified"}
    path.write_bytes(BAOSTOCK.encode("gbk"))
    assert read_industries(path)["600519.SSE"] == "C15酒、饮料和精制茶制造业"


@pytest.mark.parametrize("text, where", [
    (BAOSTOCK.replace("sz.000001", "000001"), ":3: code"),
    (BAOSTOCK.replace("2024-01-02,sh.600519", "2024-13-02,sh.600519"), ":4: updateDate"),
    ("code,industry\nsh.600000,J66\n", ":1: not Baostock's"),
])
def test_a_bad_industry_file_names_file_and_line(tmp_path, text, where):
    path = tmp_path / "industry.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputRejected) as caught:
        read_industries(path)
    assert f"{path}{where}" in str(caught.value)


def test_cli_reports_a_bad_industry_file_by_line(home, etf_out):
    path = home / "industry.csv"
    path.write_text(BAOSTOCK.replace("sz.000001", "000001"), encoding="utf-8")
    done = run_cli("attribution", "--run", str(etf_out), "--out", str(home / "y"), "--industry", str(path),
                   home=home)
    assert done.returncode != 0 and f"{path}:3: code" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("inside", [False, True])
def test_cli_refuses_to_write_into_the_run_folder(home, etf_out, inside):
    stored = (etf_out / "attribution.csv").read_bytes()
    out = etf_out / "sub" if inside else etf_out
    done = run_cli("attribution", "--run", str(etf_out), "--out", str(out), "--start", "2022-03-01", home=home)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "error: --out:" in done.stderr
    assert (etf_out / "attribution.csv").read_bytes() == stored and not (etf_out / "sub").exists()


def test_cli_refuses_a_window_without_a_trading_day_on_a_backtest_folder(home, etf_out):
    out = home / "weekend"
    done = run_cli("attribution", "--run", str(etf_out), "--out", str(out), "--start", "2022-03-05",
                   "--end", "2022-03-06", home=home)  # a Saturday and a Sunday
    assert done.returncode == 2 and "error: --start/--end:" in done.stderr and not out.exists()


def test_a_window_past_the_run_is_clamped_and_says_so():
    days = pd.bdate_range("2024-01-02", periods=5)
    assert span(days, date(2024, 1, 3), date(2024, 1, 5))[:2] == (1, 4) and not span(days, date(2024, 1, 3), None)[2]
    lo, hi, note = span(days, date(2023, 12, 1), date(2024, 2, 1))
    assert (lo, hi) == (0, 5) and note
    with pytest.raises(ValueError):
        span(days, date(2024, 1, 6), date(2024, 1, 7))  # a weekend inside the run
