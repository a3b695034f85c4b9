"""The regression baseline's bar fingerprints on hand-written bars: a revised price, a revised volume, a removed
bar and an added one each name their symbol and first day; bars after an open-ended window are new data."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from scenario_market import bar, flat, make_panels

from vnpy_rotation.data.market_data import build_market_data
from vnpy_rotation.ops.baseline import Baseline, bar_fingerprints, changed_bars, new_bars

DAYS = ["2023-08-21", "2023-08-22", "2023-08-23", "2023-08-24"]
BASE = {"510300.SSE": [flat(4.0), flat(4.1), flat(4.2), flat(4.3)],
        "510500.SSE": [flat(6.0), flat(6.1), None, flat(6.3)]}


def market(bars, days=DAYS):
    return build_market_data(make_panels(days, bars))


def baseline_of(md) -> Baseline:
    prints = bar_fingerprints(md)
    return Baseline("v", True, md.days[-1].date(), pd.DataFrame(), md.days,
                    {s: prints[:, j] for j, s in enumerate(md.symbols)})


def changed(bars, days=DAYS):
    return [(c.vt_symbol, c.first_day.isoformat(), c.days) for c in changed_bars(baseline_of(market(BASE)),
                                                                                   market(bars, days))]


def test_identical_bars_fingerprint_the_same_and_differ_between_cells():
    prints = bar_fingerprints(market(BASE))
    assert prints.dtype == np.uint32 and prints.shape == (4, 2)
    assert (prints == bar_fingerprints(market(BASE))).all()
    assert len(set(prints[:, 0].tolist())) == 4  # four different bars, four fingerprints
    assert changed(BASE) == []


def test_each_kind_of_change_names_its_symbol_and_first_day():
    revised_close = {**BASE, "510300.SSE": [flat(4.0), flat(4.1), flat(4.25), flat(4.3)]}
    assert changed(revised_close) == [("510300.SSE", "2023-08-23", 1)]
    revised_volume = {**BASE, "510500.SSE": [flat(6.0), flat(6.1, volume=2_000_000.0), None, flat(6.3)]}
    assert changed(revised_volume) == [("510500.SSE", "2023-08-22", 1)]
    filled_gap = {**BASE, "510500.SSE": [flat(6.0), flat(6.1), flat(6.2), flat(6.3)]}
    assert changed(filled_gap) == [("510500.SSE", "2023-08-23", 1)]
    two = {"510300.SSE": [bar(4.0, 4.1, 3.9, 4.0), flat(4.1), flat(4.2), flat(4.0)],
           "510500.SSE": [flat(6.0), flat(6.1), None, flat(6.4)]}
    assert changed(two) == [("510300.SSE", "2023-08-21", 2), ("510500.SSE", "2023-08-24", 1)]


def test_bars_after_the_baseline_are_new_data_not_changed_data():
    longer = DAYS + ["2023-08-25"]
    grown = {"510300.SSE": [*BASE["510300.SSE"], flat(4.4)], "510500.SSE": [*BASE["510500.SSE"], None]}
    assert changed(grown, longer) == []
    assert new_bars(date(2023, 8, 24), market(grown, longer)) == (["510300.SSE"], date(2023, 8, 25),
                                                                  date(2023, 8, 25))
    assert new_bars(date(2023, 8, 24), market(BASE)) == ([], None, None)
