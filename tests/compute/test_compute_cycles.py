"""The cycle calendar: Monday 00:00 local to the Sunday after next, whatever the time zone or DST does."""
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.checks import run_checks

from compute.cycles import Calendar, Phase

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def berlin() -> Calendar:
    return Calendar(tz=BERLIN, anchor=date(2024, 1, 1), review_days=3)


def test_a_cycle_runs_from_monday_midnight_to_the_sunday_after_next(berlin):
    window = berlin.window_containing(datetime(2025, 5, 14, 12, 0, tzinfo=UTC))
    assert window.start == datetime(2025, 5, 5, 0, 0, tzinfo=BERLIN)
    assert window.first_day.weekday() == 0
    assert window.last_day == date(2025, 5, 18) and window.last_day.weekday() == 6
    assert window.end == datetime(2025, 5, 19, 0, 0, tzinfo=BERLIN)
    assert window.hours == Decimal(14 * 24)
    assert berlin.window_after(window).start == window.end


@pytest.mark.parametrize(
    ("moment", "cycle_start"),
    [
        # Sunday 23:59:59 local is the last second of the old cycle...
        (datetime(2025, 3, 23, 23, 59, 59, tzinfo=BERLIN), date(2025, 3, 10)),
        # ...and 23:30 UTC that Sunday is already Monday 00:30 in Berlin: the new cycle.
        (datetime(2025, 3, 23, 23, 30, tzinfo=UTC), date(2025, 3, 24)),
        (datetime(2025, 3, 24, 0, 0, tzinfo=BERLIN), date(2025, 3, 24)),
    ],
)
def test_boundaries_are_decided_in_the_site_time_zone(berlin, moment, cycle_start):
    assert berlin.window_containing(moment).first_day == cycle_start


def test_a_cycle_with_the_spring_dst_switch_is_335_hours_and_still_ends_at_local_midnight(berlin):
    window = berlin.window_containing(datetime(2025, 3, 30, 12, 0, tzinfo=BERLIN))
    assert window.first_day == date(2025, 3, 24)
    assert window.hours == Decimal(335)
    assert (window.start.hour, window.end.hour) == (0, 0)
    assert window.start.utcoffset() == timedelta(hours=1) and window.end.utcoffset() == timedelta(hours=2)


def test_a_cycle_with_the_autumn_dst_switch_is_337_hours(berlin):
    window = berlin.window_containing(datetime(2025, 10, 26, 2, 30, tzinfo=UTC))
    assert window.first_day == date(2025, 10, 20)
    assert window.hours == Decimal(337)
    assert window.end == datetime(2025, 11, 3, 0, 0, tzinfo=BERLIN)


def test_another_time_zone_moves_the_boundary(berlin):
    moment = datetime(2025, 3, 24, 3, 0, tzinfo=UTC)  # Monday in Berlin, still Sunday in Los Angeles
    los_angeles = Calendar(tz=ZoneInfo("America/Los_Angeles"), anchor=berlin.anchor, review_days=3)
    assert berlin.window_containing(moment).first_day == date(2025, 3, 24)
    assert los_angeles.window_containing(moment).first_day == date(2025, 3, 10)
    assert los_angeles.window_containing(moment).end == datetime(2025, 3, 24, 0, 0, tzinfo=ZoneInfo("America/Los_Angeles"))


def test_the_schedule_opens_a_cycle_two_weeks_ahead_and_reviews_it_before_it_starts(berlin):
    window = berlin.window_starting(date(2025, 5, 5))
    assert berlin.opens_at(window) == datetime(2025, 4, 21, 0, 0, tzinfo=BERLIN)
    review = datetime(2025, 5, 2, 0, 0, tzinfo=BERLIN)
    assert berlin.phase_due(window, review - timedelta(seconds=1)) == Phase.OPEN
    assert berlin.phase_due(window, review) == Phase.IN_REVIEW
    assert berlin.phase_due(window, window.start) == Phase.PUBLISHED
    assert berlin.phase_due(window, window.end) == Phase.CLOSED


def test_a_date_off_the_two_week_grid_is_not_a_cycle_start(berlin):
    with pytest.raises(ValueError, match="not a cycle start"):
        berlin.window_starting(date(2025, 5, 12))


@pytest.mark.parametrize(
    ("setting", "value", "check_id"),
    [
        ("FLIGHTDECK_COMPUTE_CYCLE_ANCHOR", "2024-01-02", "compute.E001"),
        ("FLIGHTDECK_COMPUTE_CYCLE_ANCHOR", "next monday", "compute.E001"),
        ("FLIGHTDECK_COMPUTE_REVIEW_DAYS", 14, "compute.E002"),
        ("FLIGHTDECK_COMPUTE_TARGET_UTILISATION", "1.5", "compute.E003"),
        ("FLIGHTDECK_COMPUTE_TARGET_UTILISATION", "lots", "compute.E003"),
    ],
)
def test_misconfigured_calendar_settings_fail_the_system_checks(settings, setting, value, check_id):
    setattr(settings, setting, value)
    assert check_id in {message.id for message in run_checks()}
