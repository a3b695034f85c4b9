"""The factor panel's CI fuses: each one fails on a deliberately broken panel and every one holds on the real
bundled panels; ``run.py panel`` end to end (four files per pool, exit codes, pools-file errors)."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from vnpy_rotation.backtest.loader import ensure_bundled, with_benchmark
from vnpy_rotation.errors import RotationError
from vnpy_rotation.factors import fuses, stats
from vnpy_rotation.factors.fuses import FuseBlown, FuseResult, require_fuses, run_fuses
from vnpy_rotation.factors.library import FACTORS, FactorSpec, momentum
from vnpy_rotation.factors.panel import FactorPanel, produce_panel
from vnpy_rotation.rotation.pools import read_pools

POOLS = read_pools().pools


@pytest.fixture(scope="module")
def market(bundled_market):
    """The bundled market with the CSI 300 total-return close attached (as ``run.py panel`` does)."""
    from vnpy_rotation.data.store import BarStore

    bar_store = BarStore()
    ensure_bundled(["H00300.SSE"], bar_store)
    market, benchmark = with_benchmark(bundled_market, bar_store)
    assert benchmark == "H00300.SSE"
    return market


@pytest.fixture(scope="module")
def panels(market):
    return {name: produce_panel(market, name, members) for name, members in POOLS.items()}


@pytest.fixture
def a_share(panels):
    return panels["A_SHARE"]


def with_frame(panel: FactorPanel, frame: pd.DataFrame, **meta) -> FactorPanel:
    return FactorPanel(frame, {**panel.meta, **meta}, panel.forward_return)


@pytest.mark.parametrize("pool", sorted(POOLS))
def test_real_panels_pass_every_fuse(market, panels, pool):
    results = run_fuses(panels[pool], market, POOLS[pool])
    assert [r.name for r in results] == ["t1_shift", "coverage", "effective_factors", "zero_variance",
                                         "index_format", "metadata"]
    assert all(r.ok for r in results), [(r.name, r.detail) for r in results if not r.ok]
    require_fuses(results)  # does not raise


def test_real_panels_drop_only_genuine_duplicates(panels):
    summary = panels["A_SHARE"].summary().set_index("factor")
    # relative strength is momentum minus a per-date constant: the same cross-sectional order
    assert summary.loc["rs_csi300_60", "duplicate_of"] == "mom_60"
    assert summary["effective"].sum() == len(summary) - 1
    other = panels["OTHER"].summary().set_index("factor")
    assert other.loc["vol_60", "duplicate_of"] == "vol_20"  # gold is always more volatile than bonds


# t1_shift -----------------------------------------------------------------------------------------

def test_t1_shift_catches_a_factor_shifted_into_the_future(a_share):
    frame = a_share.frame.copy()
    frame["mom_20"] = frame.groupby(level="vt_symbol")["mom_20"].shift(-1)  # t's value = t+1's
    result = fuses.t1_shift(with_frame(a_share, frame))
    assert not result.ok and "mom_20" in result.detail
    ic = stats.summarise(frame, a_share.meta, a_share.forward_return).set_index("factor")["mean_rank_ic"]
    assert ic["mom_20"] > 0.15 and ic.drop("mom_20").abs().max() < 0.06


def test_t1_shift_perturbation_catches_a_peek_the_statistic_misses(market, monkeypatch):
    def peek(x):  # 120-session momentum ending one session ahead: too diluted for the IC screen
        values = momentum(x, 120)
        out = np.full(values.shape, np.nan)
        out[:-1] = values[1:]
        return out

    monkeypatch.setitem(FACTORS, "peek_120", FactorSpec("peek_120", 1, peek, 121, "peeks one session ahead"))
    members = POOLS["A_SHARE"]
    panel = produce_panel(market, "A_SHARE", members, ["mom_20", "peek_120", "vol_20"])
    statistical = fuses.t1_shift(panel)
    assert statistical.ok  # |IC| below the screen's limit
    result = fuses.t1_shift(panel, market, members)
    assert not result.ok and "peek_120" in result.detail and "mom_20" not in result.detail


# coverage ---------------------------------------------------------------------------------------

def test_coverage_fails_on_a_factor_missing_half_the_dates(a_share):
    frame = a_share.frame.copy()
    dates = frame.index.get_level_values(0)
    frame.loc[dates >= dates.unique()[len(dates.unique()) // 2], "trend_60"] = np.nan
    result = fuses.coverage(with_frame(a_share, frame))
    assert not result.ok and "trend_60" in result.detail and "mom_20" not in result.detail


def test_coverage_fails_on_a_date_where_a_third_of_the_pool_lacks_values(a_share):
    frame = a_share.frame.copy()
    day = pd.Timestamp("2021-03-01")
    frame.loc[(day, ["510300.SSE", "510500.SSE"]), "vol_20"] = np.nan  # 4 of 6: 67 %
    result = fuses.coverage(with_frame(a_share, frame))
    assert not result.ok and "vol_20" in result.detail and "2021-03-01" in result.detail
    one = a_share.frame.copy()
    one.loc[(day, "510300.SSE"), "vol_20"] = np.nan  # 5 of 6: 83 %, above the floor
    assert fuses.coverage(with_frame(a_share, one)).ok


def test_coverage_drop_rule_below_a_lowered_floor(a_share, monkeypatch):
    """Below an 80 % floor every fall of > 20 points already breaks the floor; with a lower floor (say
    70 %) the drop rule is what catches 100 % → 67 % from one session to the next."""
    monkeypatch.setattr(stats, "MIN_COVERAGE", 0.6)
    frame = a_share.frame.copy()
    frame.loc[(pd.Timestamp("2021-03-01"), ["510300.SSE", "510500.SSE"]), "vol_20"] = np.nan
    result = fuses.coverage(with_frame(a_share, frame))
    assert not result.ok and "2021-02-26" in result.detail  # the session before the fall


def test_warm_up_nans_do_not_count(a_share):
    summary = a_share.summary().set_index("factor")
    assert a_share.frame["mom_120"].isna().sum() >= 120 * 6  # the first 120 sessions have no value
    assert summary.loc["mom_120", "coverage"] == 1.0


# effective_factors ------------------------------------------------------------------------------

def test_effective_factors_fails_on_duplicates(a_share):
    keep = ["mom_20", "mom_60", "vol_20", "mdd_60", "trend_60", "ma_gap_120", "turnover_int_20_120",
            "volume_int_5_60"]
    frame = a_share.frame[keep].copy()
    assert fuses.effective_factors(with_frame(a_share, frame)).ok  # 8 distinct factors
    frame["trend_60"] = frame["mom_20"] * 3 + 1  # same order as mom_20 on every date
    frame["ma_gap_120"] = frame["mom_60"]
    result = fuses.effective_factors(with_frame(a_share, frame))
    assert not result.ok
    summary = stats.summarise(frame).set_index("factor")
    assert summary["effective"].sum() == 6
    assert summary.loc["trend_60", "duplicate_of"] == "mom_20" and summary.loc["ma_gap_120", "duplicate_of"] == "mom_60"


def test_effective_factors_excludes_uncovered_and_constant_factors(a_share):
    frame = a_share.frame.iloc[:, :8].copy()
    frame["mom_20"] = 1.0
    frame["mom_60"] = np.nan
    summary = stats.summarise(frame).set_index("factor")
    assert not summary.loc["mom_20", "effective"] and not summary.loc["mom_60", "effective"]
    assert not fuses.effective_factors(with_frame(a_share, frame)).ok


# zero_variance ----------------------------------------------------------------------------------

def test_zero_variance_flags_constant_columns_and_fails_above_ten(a_share):
    frame = a_share.frame.copy()
    frame["flat_0"] = 0.5
    one = fuses.zero_variance(with_frame(a_share, frame))
    assert one.ok and "flat_0" in one.detail
    for k in range(1, 11):
        frame[f"flat_{k}"] = float(k)
    frame["same_by_date"] = frame.groupby(level="date")["mom_20"].transform("mean")  # varies over time only
    eleven = fuses.zero_variance(with_frame(a_share, frame))
    assert not eleven.ok and "same_by_date" in eleven.detail
    assert stats.summarise(frame)["zero_variance"].sum() == 12
    assert stats.summarise(frame).set_index("factor").loc["mom_20", "zero_variance"] == False  # noqa: E712


# index_format -----------------------------------------------------------------------------------

@pytest.mark.parametrize("breakage", ["unsorted", "duplicated", "names", "time_of_day", "tz", "weekend",
                                      "int_column", "inf", "stranger"])
def test_index_format_fails(market, a_share, breakage):
    frame = a_share.frame.copy()
    dates, symbols = frame.index.get_level_values(0), frame.index.get_level_values(1)
    if breakage == "unsorted":
        frame = frame.iloc[::-1]
    elif breakage == "duplicated":
        frame = pd.concat([frame, frame.iloc[[100]]]).sort_index()
    elif breakage == "names":
        frame.index = frame.index.set_names(["day", "symbol"])
    elif breakage == "time_of_day":
        frame.index = pd.MultiIndex.from_arrays([dates + pd.Timedelta(hours=15), symbols], names=frame.index.names)
    elif breakage == "tz":
        frame.index = pd.MultiIndex.from_arrays([dates.tz_localize("Asia/Shanghai"), symbols], names=frame.index.names)
    elif breakage == "weekend":
        moved = dates.where(dates != dates[-1], pd.Timestamp("2024-09-29"))  # a Sunday
        frame.index = pd.MultiIndex.from_arrays([moved, symbols], names=frame.index.names)
        frame = frame.sort_index()
    elif breakage == "int_column":
        frame["vol_20"] = (frame["vol_20"].fillna(0) * 100).astype(int)
    elif breakage == "inf":
        frame.iloc[500, 3] = np.inf
    elif breakage == "stranger":
        extra = frame.iloc[[-1]].copy()
        extra.index = pd.MultiIndex.from_tuples([(dates[-1], "600000.SSE")], names=frame.index.names)
        frame = pd.concat([frame, extra]).sort_index()
    result = fuses.index_format(with_frame(a_share, frame), market)
    assert not result.ok
    assert fuses.index_format(a_share, market).ok


def test_a_broken_index_fails_its_fuse_without_crashing_the_others(a_share):
    frame = pd.concat([a_share.frame, a_share.frame.iloc[:50]])  # duplicated and unsorted
    results = {r.name: r for r in run_fuses(with_frame(a_share, frame))}
    assert not results["index_format"].ok
    assert results["coverage"].ok and results["zero_variance"].ok  # evaluated on the de-duplicated rows


# metadata ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("change", ["missing_version", "missing_pool", "n_dates", "start", "factors",
                                    "production"])
def test_metadata_fails(a_share, change):
    meta = dict(a_share.meta)
    if change == "missing_version":
        del meta["code_version"]
    elif change == "missing_pool":
        del meta["pool"]
    elif change == "n_dates":
        meta["n_dates"] += 1
    elif change == "start":
        meta["start"] = "2016-01-04"
    elif change == "factors":
        meta["factors"] = {k: v for k, v in meta["factors"].items() if k != "vol_20"}
    elif change == "production":
        meta["production_factors"] = [*meta["production_factors"], "alpha_42"]
    assert not fuses.metadata(FactorPanel(a_share.frame, meta)).ok
    assert fuses.metadata(a_share).ok


# require_fuses ----------------------------------------------------------------------------------

def test_require_fuses_lists_every_failure():
    results = [FuseResult("coverage", False, "trend_60: coverage 0 %"), FuseResult("metadata", True, "ok"),
               FuseResult("index_format", False, "3 duplicated rows")]
    with pytest.raises(FuseBlown) as caught:
        require_fuses(results, "QDII")
    assert isinstance(caught.value, RotationError)
    assert [r.name for r in caught.value.failed] == ["coverage", "index_format"]
    assert caught.value.problems == ["QDII: coverage: trend_60: coverage 0 %", "QDII: index_format: 3 duplicated rows"]


# run.py panel -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("panel_home")


def test_cli_writes_four_files_per_pool(home):
    out = home / "out"
    done = run_cli("panel", "--out", str(out), home=home)
    assert done.returncode == 0, done.stderr
    for pool in POOLS:
        folder = out / f"panel_{pool}"
        names = sorted(p.name for p in folder.iterdir())
        assert names == ["factor_summary_20170118_20240930.csv", "panel_FULL_20170118_20240930.parquet",
                         "panel_meta.json", "production_factors.txt"]
        meta = json.loads((folder / "panel_meta.json").read_text())
        assert meta["pool"] == pool and meta["members"] == POOLS[pool] and meta["benchmark"] is True
        assert all(f["ok"] for f in meta["fuses"]) and len(meta["fuses"]) == 6
        production = (folder / "production_factors.txt").read_text().split()
        assert production == meta["production_factors"] and len(production) >= 8
        frame = pd.read_parquet(folder / "panel_FULL_20170118_20240930.parquet")
        assert list(frame.columns) == list(FACTORS) and len(frame) > 3000
        assert sum(line.split()[:1] == [pool] for line in done.stdout.splitlines()) == 6  # one line per fuse


def test_cli_window_and_pool_selection(home):
    out = home / "window"
    done = run_cli("panel", "--pool", "QDII", "--start", "2020-01-02", "--end", "2020-12-31", "--out", str(out),
                   home=home)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in out.iterdir()] == ["panel_QDII"]
    assert (out / "panel_QDII" / "panel_FULL_20200102_20201231.parquet").exists()


def test_cli_fails_when_a_fuse_fails(home):
    """A one-fund pool has no cross-section: every factor is zero-variance and none is effective."""
    pools = home / "solo.yaml"
    pools.write_text("pools:\n  SOLO: [510300.SSE]\ncapital_constraints:\n"
                     "  SOLO: {target_capital: 1000000, max_single_weight: 1.0, max_adv_pct: 0.05}\n")
    done = run_cli("panel", "--pools", str(pools), "--out", str(home / "solo"), home=home)
    assert done.returncode == 1
    assert "zero_variance" in done.stderr and "effective_factors" in done.stderr and "Traceback" not in done.stderr
    assert (home / "solo" / "panel_SOLO" / "panel_meta.json").exists()  # written for inspection


def test_cli_rejects_a_broken_pools_file(home):
    pools = home / "broken.yaml"
    pools.write_text("pools:\n  A_SHARE: [510300.SSE, 510300.XSHG]\ncapital_constraints:\n"
                     "  A_SHARE: {target_capital: 1000000, max_single_weight: 1.5, max_adv_pct: 0.05}\n")
    done = run_cli("panel", "--pools", str(pools), "--out", str(home / "broken"), home=home)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert str(pools) in done.stderr
    assert "pools" in done.stderr and "capital_constraints.A_SHARE.max_single_weight" in done.stderr
    assert not (home / "broken").exists()
    unknown = run_cli("panel", "--pool", "NOPE", "--out", str(home / "broken"), home=home)
    assert unknown.returncode == 2 and "NOPE" in unknown.stderr
