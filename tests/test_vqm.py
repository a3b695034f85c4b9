"""VQM selection: hand-computed scores, every exclusion, monthly decisions, notes and risk rules attached."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scenario_market import bar, flat, make_panels

from vnpy_rotation.data.market_data import build_market_data
from vnpy_rotation.strategies import create_strategy
from vnpy_rotation.strategies.vqm import EXCLUSIONS, score_ranks, vqm_scores

STOCKS = ["600000.SSE", "600036.SSE", "000001.SZSE", "601318.SSE", "600519.SSE", "000002.SZSE", "600030.SSE"]
# 2023-08-28 … 2023-09-01: 08-31 is the month's last trading day, the only decision day.
DAYS = ["2023-08-28", "2023-08-29", "2023-08-30", "2023-08-31", "2023-09-01"]


def test_scores_match_hand_computation():
    pe = np.array([[10.0, 20.0, 5.0, -3.0]])
    roe = np.array([[0.10, 0.20, 0.05, 0.30]])
    eligible = np.array([[True, True, True, False]])  # negative PE excluded before ranking
    score = vqm_scores(pe, roe, eligible, 0.6, 0.4)
    # Among three: rank(−PE) = 2/3, 1/3, 1 and rank(ROE) = 2/3, 1, 1/3.
    np.testing.assert_allclose(score[0, :3], [0.6 * 2 / 3 + 0.4 * 2 / 3, 0.6 / 3 + 0.4, 0.6 + 0.4 / 3])
    assert np.isnan(score[0, 3])
    np.testing.assert_array_equal(score_ranks(score)[0], [2, 3, 1, np.inf])


def test_equal_scores_rank_by_column_order():
    np.testing.assert_array_equal(score_ranks(np.array([[0.5, 0.7, 0.5]]))[0], [2, 1, 3])


def scenario_market():
    """Seven stocks; each but the first two fails exactly one exclusion on 2023-08-31."""
    normal = [flat(10.0)] * 5
    bars = {s: list(normal) for s in STOCKS}
    bars["601318.SSE"][3] = None  # no bar (suspended) on the decision day
    bars["600030.SSE"][3] = bar(10.0, 11.0, 10.0, 11.0)  # closes at the +10 % limit
    panels = make_panels(DAYS, bars, is_st={"000002.SZSE": [True] * 5})
    market = build_market_data(panels)
    shape = market.shape
    eps = np.full(shape, 1.0)
    eps[:, STOCKS.index("000001.SZSE")] = -0.5  # a loss: PE ≤ 0
    roe = np.full(shape, 0.10)
    roe[:, STOCKS.index("600036.SSE")] = 0.20
    listed = np.full(shape, 1000.0)
    member = np.ones(shape, dtype=bool)
    extras = {"eps_ttm": eps, "roe": roe, "listed_days": listed, "member": member}
    return dataclasses.replace(market, extras=extras)


def strategy(**settings):
    return create_strategy("vqm", {"symbols": STOCKS, **settings})


def test_every_exclusion_is_applied_and_counted():
    market = scenario_market()
    market.extras["listed_days"][:, STOCKS.index("600519.SSE")] = 100  # listed too recently
    plan = strategy(top_n=5).targets(market)
    assert list(plan.frame.index) == [pd.Timestamp("2023-08-31")]
    held = plan.frame.iloc[0]
    assert set(held[held > 0].index) == {"600000.SSE", "600036.SSE"}  # fewer eligible than top_n: cash stays
    assert held["600036.SSE"] == pytest.approx(0.99 / 5)
    universe = plan.table("universe").iloc[0]
    assert universe["eligible"] == 2
    for name, count in zip(EXCLUSIONS, [0, 1, 1, 1, 1, 0, 1]):
        assert universe[name] == count, name
    notes = plan.notes.iloc[0]
    assert notes["600036.SSE"].startswith("VQM #1")  # same PE, higher ROE


def test_risk_rules_follow_the_settings():
    plan = strategy(stock_stop=0.05, portfolio_stop=None).targets(scenario_market())
    assert plan.risk.stock_stop == 0.05 and plan.risk.portfolio_stop is None and plan.risk.drawdown_halve == 0.15


def test_non_members_are_never_selected():
    market = scenario_market()
    market.extras["member"][:, STOCKS.index("600036.SSE")] = False
    held = strategy(top_n=5).targets(market).frame.iloc[0]
    assert held["600036.SSE"] == 0 and held["600000.SSE"] > 0


@pytest.mark.parametrize("field,value", [("w_pe", 1.5), ("top_n", 0), ("roe", "quarterly"), ("stock_stop", 1.2)])
def test_bad_settings_name_the_field(field, value):
    from vnpy_rotation.errors import InputRejected

    with pytest.raises(InputRejected) as caught:
        create_strategy("vqm", {field: value}, "cfg.yaml: strategy")
    assert field in str(caught.value)


# -- PB and dividend yield as weighted factors ----------------------------------------------------------
THREE = ["600000.SSE", "600036.SSE", "601318.SSE"]


def valuation_market(bvps=(10.0, 5.0, 2.0), approximate=(1.0, 0.0, 0.0)):
    """Three stocks closing at 10 every day; EPS 1, 0.5, 2 (PE 10, 20, 5); ROE equal; book value per share
    ``bvps`` from reports known on 2023-04-29 (PB 1, 2, 5 by default)."""
    panels = make_panels(DAYS, {s: [flat(10.0)] * 5 for s in THREE})
    market = build_market_data(panels)
    shape = market.shape
    known = float(pd.Timestamp("2023-04-29").value // 86_400_000_000_000)
    extras = {"eps_ttm": np.tile([1.0, 0.5, 2.0], (5, 1)), "roe": np.full(shape, 0.10),
              "listed_days": np.full(shape, 1000.0), "member": np.ones(shape, dtype=bool),
              "bvps": np.tile(bvps, (5, 1)), "bvps_known": np.full(shape, known),
              "bvps_approximate": np.tile(approximate, (5, 1))}
    return dataclasses.replace(market, extras=extras)


def chosen(plan) -> list[str]:
    held = plan.frame.iloc[0]
    return list(held[held > 0].index)


def three(**settings):
    return create_strategy("vqm", {"symbols": THREE, **settings})


def test_pb_weight_changes_the_choice_by_hand_computed_scores():
    market = valuation_market()
    # PE only: rank(−PE) = 2/3, 1/3, 1 → 601318 first.
    assert chosen(three(w_pe=1.0, w_roe=0.0, top_n=1).targets(market)) == ["601318.SSE"]
    # Half PE, half PB: rank(−PB) = 1, 2/3, 1/3 → scores 5/6, 1/2, 2/3 → 600000 first.
    plan = three(w_pe=0.5, w_pb=0.5, top_n=1).targets(market)
    assert chosen(plan) == ["600000.SSE"]
    row = plan.table("selection").iloc[0]
    assert (row["vt_symbol"], row["score"], row["pb"], bool(row["pb_approximate"])) == \
        ("600000.SSE", pytest.approx(5 / 6), 1.0, True)
    assert "PB 1.00 (approx.)" in plan.notes.iloc[0]["600000.SSE"]


def test_pb_follows_bonus_shares_after_the_report():
    market = valuation_market()
    split = np.ones(market.shape)
    split[2, 0] = 2.0  # 10转10 for 600000 on 2023-08-30, after its report: book value per share halves
    market = dataclasses.replace(market, split=split)
    ranking = three(w_pe=0.5, w_pb=0.5).rank_rows(market, np.array([3]))
    np.testing.assert_allclose(ranking.pb[0], [2.0, 2.0, 5.0])


def test_pb_weighted_excludes_names_without_positive_book_value_and_counts_them():
    plan = three(w_pe=0.5, w_pb=0.5, top_n=3).targets(valuation_market(bvps=(10.0, NAN_BVPS, -1.0)))
    assert chosen(plan) == ["600000.SSE"]
    universe = plan.table("universe").iloc[0]
    assert (universe["eligible"], universe["pb_not_positive"]) == (1, 2)


NAN_BVPS = float("nan")


def test_dividend_yield_weight_prefers_the_higher_trailing_yield():
    market = valuation_market()
    dividend = np.zeros(market.shape)
    dividend[1, 1], dividend[1, 2] = 0.5, 0.2  # cash per share on 2023-08-29: yields 5 % and 2 % at 10
    market = dataclasses.replace(market, dividend=dividend)
    plan = three(w_pe=0.0, w_roe=0.0, w_dy=1.0, top_n=1).targets(market)
    assert chosen(plan) == ["600036.SSE"]
    assert plan.table("selection").iloc[0]["dividend_yield"] == pytest.approx(0.05)


def test_default_weights_and_outputs_are_unchanged():
    s = three()
    assert (s.settings.w_pe, s.settings.roe_weight, s.settings.w_pb, s.settings.w_dy) == (0.6, 0.4, 0.0, 0.0)
    assert s.warmup_days == 5 and not s.settings.express_stand_in
    plan = s.targets(valuation_market())
    assert list(plan.table("selection").columns) == ["date", "vt_symbol", "rank", "score", "pe_ttm", "roe"]
    assert list(plan.table("universe").columns) == ["date", "eligible", *EXCLUSIONS]
    assert three(w_dy=0.1).warmup_days == 250  # a year of ex-dates before the first decision


@pytest.mark.parametrize("settings", [{"w_pe": 0.6, "w_pb": 0.5}, {"w_pb": -0.1}, {"w_dy": 2},
                                      {"w_pe": 0, "w_roe": 0}])
def test_bad_factor_weights_are_refused(settings):
    from vnpy_rotation.errors import InputRejected

    with pytest.raises(InputRejected):
        create_strategy("vqm", settings, "cfg.yaml: strategy")


def test_w_roe_defaults_to_the_rest_of_the_weights():
    assert three(w_pe=0.5, w_pb=0.2, w_dy=0.1).settings.roe_weight == pytest.approx(0.2)


def test_the_share_of_approximate_book_values_is_counted_for_the_data_warning():
    from vnpy_rotation.strategies.vqm import approximate_book_share

    assert approximate_book_share(np.array([[NAN_BVPS, 0.0], [0.0, 0.0]])) == 0.0
    assert approximate_book_share(np.array([[NAN_BVPS, 1.0], [0.0, 1.0], [1.0, 0.0]])) == pytest.approx(0.6)


def test_an_index_sharing_a_stock_code_does_not_make_stocks_look_newly_listed():
    """000001.SSE (the SSE Composite) shares its code with 000001.SZSE: its longer history is not the data's start."""
    from datetime import date

    from vnpy_rotation.strategies.vqm import listed_sessions

    days = pd.DatetimeIndex([pd.Timestamp("2013-06-28")])
    stocks = {"000001.SZSE": date(2013, 1, 4), "000002.SZSE": date(2013, 1, 4), "600000.SSE": date(2013, 3, 1)}
    alone = listed_sessions(stocks, days, list(stocks))
    with_index = listed_sessions({**stocks, "000001.SSE": date(2005, 1, 4)}, days, list(stocks))
    assert np.isinf(alone[0, :2]).all() and 0 < alone[0, 2] < 100  # unknown age; listed in March: young
    assert np.array_equal(with_index, alone)


def test_notes_say_why_each_name_is_bought_kept_dropped_or_excluded():
    """Chosen names carry their rank and inputs; a name chosen at the previous decision and not now says whether
    it fell out of the top or was excluded; every other cell is empty. The cells are Python strings (objects)."""
    from types import SimpleNamespace

    from vnpy_rotation.strategies.vqm import _notes

    rank = np.array([[1.0, 2.0, 3.0, np.inf], [3.0, 1.0, np.inf, 2.0], [np.nan, 2.0, 1.0, 3.0]])
    chosen = rank <= 2
    pe, roe = np.full(rank.shape, 12.345), np.full(rank.shape, 0.1234)
    pb, approximate = np.full(rank.shape, 1.5), np.zeros(rank.shape)
    approximate[1, 1] = 1
    frame = pd.DataFrame(0.0, index=pd.date_range("2023-01-31", periods=3, freq="ME"), columns=list("ABCD"))
    ranking = SimpleNamespace(pb=pb, pb_approximate=approximate, dividend_yield=np.full(rank.shape, 0.031))
    notes = _notes(frame, chosen, rank, pe, roe, 2, ranking)
    assert all(dtype == np.dtype(object) for dtype in notes.dtypes)
    expected = [["VQM #1: PE 12.3, ROE 12.3%, PB 1.50, DY 3.10%", "VQM #2: PE 12.3, ROE 12.3%, PB 1.50, DY 3.10%",
                 None, None],
                ["out of top 2: VQM #3", "VQM #1: PE 12.3, ROE 12.3%, PB 1.50 (approx.), DY 3.10%", None,
                 "VQM #2: PE 12.3, ROE 12.3%, PB 1.50, DY 3.10%"],
                [None, "VQM #2: PE 12.3, ROE 12.3%, PB 1.50, DY 3.10%", "VQM #1: PE 12.3, ROE 12.3%, PB 1.50, DY 3.10%",
                 "out of top 2: VQM #3"]]
    assert notes.to_numpy().tolist() == expected
    rank[2, 3] = np.inf  # unranked now: excluded at this decision
    assert _notes(frame, rank <= 2, rank, pe, roe, 2).iloc[2]["D"] == "excluded at rebalance"
