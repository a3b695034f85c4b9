"""The A-share session table: phases, closing auctions by exchange and kind, bar minutes."""

from datetime import date, time

import pytest
from monitor_ticks import at

from vnpy_rotation.monitor.session import (
    Phase,
    has_closing_auction,
    minute_index,
    minute_start,
    minutes_elapsed,
    phase,
    phase_at,
    sod,
)


def s(hms: str) -> float:
    return sod(at(hms))


@pytest.mark.parametrize("hms, closing_auction, expected", [
    ("09:14:59", True, Phase.CLOSED),
    ("09:15:00", True, Phase.OPENING_AUCTION),
    ("09:24:59", True, Phase.OPENING_AUCTION),
    ("09:25:00", True, Phase.OPENING_PAUSE),
    ("09:30:00", True, Phase.CONTINUOUS),
    ("11:29:59", True, Phase.CONTINUOUS),
    ("11:30:00", True, Phase.LUNCH),
    ("13:00:00", True, Phase.CONTINUOUS),
    ("14:56:59", True, Phase.CONTINUOUS),
    ("14:57:00", True, Phase.CLOSING_AUCTION),
    ("14:57:00", False, Phase.CONTINUOUS),  # SSE funds trade continuously to the bell
    ("14:59:59", False, Phase.CONTINUOUS),
    ("15:00:00", True, Phase.CLOSED),
    ("15:00:00", False, Phase.CLOSED),
])
def test_phase_table(hms, closing_auction, expected):
    assert phase(s(hms), closing_auction) is expected


def test_a_non_trading_day_is_closed():
    assert phase_at(at("10:00", date(2024, 3, 2))) is Phase.CLOSED  # Saturday
    assert phase_at(at("10:00", date(2024, 10, 1))) is Phase.CLOSED  # National Day
    assert phase_at(at("10:00")) is Phase.CONTINUOUS


@pytest.mark.parametrize("exchange, is_fund, day, expected", [
    ("SZSE", False, date(2016, 1, 4), True),
    ("SZSE", True, date(2024, 3, 1), True),
    ("SSE", False, date(2018, 8, 17), False),
    ("SSE", False, date(2018, 8, 20), True),
    ("SSE", True, date(2024, 3, 1), False),
])
def test_closing_auction_by_exchange_kind_and_date(exchange, is_fund, day, expected):
    assert has_closing_auction(exchange, is_fund, day) is expected


@pytest.mark.parametrize("hms, index", [
    ("09:00:00", None), ("09:15:00", 0), ("09:25:00", 0), ("09:30:59", 0), ("09:31:00", 1),
    ("11:29:59", 119), ("11:30:00", 119), ("12:30:00", 119), ("13:00:00", 120), ("14:57:30", 237),
    ("14:59:59", 239), ("15:00:00", 239), ("15:30:00", 239),
])
def test_minute_index(hms, index):
    assert minute_index(s(hms)) == index


@pytest.mark.parametrize("index, stamp", [(0, time(9, 30)), (119, time(11, 29)), (120, time(13, 0)),
                                          (239, time(14, 59))])
def test_minute_start(index, stamp):
    assert minute_start(index) == stamp


@pytest.mark.parametrize("hms, minutes", [
    ("09:25:00", 1), ("09:30:00", 1), ("09:30:01", 1), ("09:31:00", 1), ("09:31:01", 2), ("10:00:00", 30),
    ("10:00:01", 31), ("12:00:00", 120), ("13:00:00", 120), ("14:00:00", 180), ("15:00:00", 240),
    ("16:00:00", 240),
])
def test_minutes_elapsed(hms, minutes):
    assert minutes_elapsed(s(hms)) == minutes
