"""Point-in-time report availability: deadlines for every month of the year and announcement dates."""

from datetime import date

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnpy_rotation.fundamentals.pit import as_of, latest_usable_period, statutory_deadline, usable_from

# Decision on the 15th of each month of 2023 → the latest report usable by the statutory deadlines alone.
EXPECTED_2023 = {
    1: date(2022, 9, 30), 2: date(2022, 9, 30), 3: date(2022, 9, 30), 4: date(2022, 9, 30),
    5: date(2023, 3, 31), 6: date(2023, 3, 31), 7: date(2023, 3, 31), 8: date(2023, 3, 31),
    9: date(2023, 6, 30), 10: date(2023, 6, 30), 11: date(2023, 9, 30), 12: date(2023, 9, 30),
}


@pytest.mark.parametrize("month", range(1, 13))
def test_latest_usable_period_in_every_month(month):
    assert latest_usable_period(date(2023, month, 15)) == EXPECTED_2023[month]


@pytest.mark.parametrize("decision,period", [
    (date(2023, 3, 1), date(2022, 9, 30)),  # the 2022 annual report is not due until 04-30
    (date(2023, 11, 15), date(2023, 9, 30)),  # checking "May or later" before "November or later" gives 2022 annual
    (date(2023, 4, 30), date(2022, 9, 30)),  # deadline day itself: not yet
    (date(2023, 5, 1), date(2023, 3, 31)),
    (date(2023, 12, 31), date(2023, 9, 30)),
    (date(2024, 1, 1), date(2023, 9, 30)),
])
def test_brief_examples_and_edges(decision, period):
    assert latest_usable_period(decision) == period


def test_deadlines():
    assert statutory_deadline(date(2022, 12, 31)) == date(2023, 4, 30)
    assert statutory_deadline(date(2023, 6, 30)) == date(2023, 8, 31)
    with pytest.raises(ValueError):
        statutory_deadline(date(2023, 5, 31))


@given(st.dates(min_value=date(2001, 1, 1), max_value=date(2099, 12, 31)))
def test_the_latest_usable_period_is_never_after_its_deadline_and_the_next_is_not_due(decision):
    period = latest_usable_period(decision)
    assert usable_from(period) <= decision
    following = [p for p in (date(period.year, 6, 30), date(period.year, 9, 30), date(period.year, 12, 31),
                             date(period.year + 1, 3, 31)) if p > period][0]
    assert usable_from(following) > decision


def test_as_of_uses_announcements_strictly_before_the_decision():
    reports = pd.DataFrame([
        {"code": "600000", "period_end": "2022-12-31", "announced": "2023-03-30", "eps_ttm": 1.0},
        {"code": "600000", "period_end": "2023-03-31", "announced": "2023-04-27", "eps_ttm": 1.1},
        {"code": "600036", "period_end": "2022-09-30", "announced": None, "eps_ttm": 5.0},
        {"code": "600036", "period_end": "2022-12-31", "announced": None, "eps_ttm": 5.5},
    ])
    on_27 = as_of(reports, date(2023, 4, 27)).set_index("code")["eps_ttm"]
    assert on_27.to_dict() == {"600000": 1.0, "600036": 5.0}  # the 04-27 announcement is not seen on 04-27
    on_28 = as_of(reports, date(2023, 4, 28)).set_index("code")["eps_ttm"]
    assert on_28.to_dict() == {"600000": 1.1, "600036": 5.0}  # 600036's annual: deadline 04-30 not passed
    on_may = as_of(reports, date(2023, 5, 1)).set_index("code")["eps_ttm"]
    assert on_may.to_dict() == {"600000": 1.1, "600036": 5.5}
    assert as_of(reports, date(2022, 1, 1)).empty


def test_a_restatement_counts_from_its_own_announcement():
    reports = pd.DataFrame([
        {"code": "600000", "period_end": "2023-03-31", "announced": "2023-04-27", "eps_ttm": 1.1},
        {"code": "600000", "period_end": "2023-03-31", "announced": "2023-06-01", "eps_ttm": 1.2},
    ])
    assert as_of(reports, date(2023, 5, 1))["eps_ttm"].tolist() == [1.1]
    assert as_of(reports, date(2023, 6, 2))["eps_ttm"].tolist() == [1.2]
