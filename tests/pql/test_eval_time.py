"""Calendar arithmetic behind occurs, this/last/next and today (spec/pql.md §6.9)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from pql.timeutil import (
    Interval,
    add_months,
    floor,
    occurs_after,
    occurs_before,
    occurs_between,
    occurs_distance,
    relative_unit,
    shift,
    time_word,
    utc,
)
from pql.values import parse_timestamp

NOW = utc(2026, 3, 15, 12)  # a Sunday


def test_month_arithmetic_clamps_to_the_end_of_the_month() -> None:
    assert add_months(utc(2026, 3, 31), -1) == utc(2026, 2, 28)
    assert add_months(utc(2024, 3, 31), -1) == utc(2024, 2, 29)
    assert add_months(utc(2026, 1, 31), 1) == utc(2026, 2, 28)
    assert add_months(utc(2025, 12, 15), 1) == utc(2026, 1, 15)


def test_a_year_after_a_leap_day_is_the_28th_of_february() -> None:
    assert shift(utc(2024, 2, 29, 10), 1, "years") == utc(2025, 2, 28, 10)
    assert shift(utc(2024, 2, 29), 4, "year") == utc(2028, 2, 29)


def test_fixed_units_are_durations() -> None:
    assert shift(NOW, -3, "hours") == utc(2026, 3, 15, 9)
    assert shift(NOW, 2, "weeks") == utc(2026, 3, 29, 12)
    assert shift(NOW, -1, "millisecond") == datetime(2026, 3, 15, 11, 59, 59, 999000, tzinfo=UTC)


def test_weeks_start_on_monday() -> None:
    assert floor(NOW, "week") == utc(2026, 3, 9)
    assert floor(utc(2026, 3, 9), "week") == utc(2026, 3, 9)
    assert relative_unit("last", "week", NOW) == Interval(utc(2026, 3, 2), utc(2026, 3, 9))
    assert relative_unit("next", "week", NOW) == Interval(utc(2026, 3, 16), utc(2026, 3, 23))


def test_last_month_is_the_whole_previous_calendar_month() -> None:
    # the documented anchor: on 2018-08-28 "last month" is 2018-07-01 … 07-31
    assert relative_unit("last", "month", utc(2018, 8, 28)) == Interval(
        utc(2018, 7, 1), utc(2018, 8, 1)
    )
    assert relative_unit("this", "year", NOW) == Interval(utc(2026, 1, 1), utc(2027, 1, 1))
    assert relative_unit("this", "decade", NOW).start == utc(2020, 1, 1)
    assert relative_unit("last", "century", NOW) == Interval(utc(1900, 1, 1), utc(2000, 1, 1))


def test_today_yesterday_tomorrow_are_utc_days() -> None:
    assert time_word("today", NOW) == Interval(utc(2026, 3, 15), utc(2026, 3, 16))
    assert time_word("yesterday", NOW) == Interval(utc(2026, 3, 14), utc(2026, 3, 15))
    assert time_word("tomorrow", NOW) == Interval(utc(2026, 3, 16), utc(2026, 3, 17))
    assert time_word("now", NOW).is_instant


def test_within_one_month_before_today_matches_the_documented_window() -> None:
    # on 2018-08-28: from 2018-07-28 up to (not including) today
    today = time_word("today", utc(2018, 8, 28, 15))
    assert occurs_distance(utc(2018, 7, 28), "<=", 1, "month", "before", today)
    assert occurs_distance(utc(2018, 8, 27, 23, 59), "<=", 1, "month", "before", today)
    assert not occurs_distance(utc(2018, 8, 28), "<=", 1, "month", "before", today)
    assert not occurs_distance(utc(2018, 7, 27, 23, 59), "<=", 1, "month", "before", today)
    assert not occurs_distance(utc(2018, 7, 28), "<", 1, "month", "before", today)


def test_equal_distance_is_a_bucket_one_unit_long() -> None:
    now = Interval.instant(NOW)
    assert occurs_distance(utc(2026, 3, 15, 9), "=", 3, "hours", "before", now)
    assert occurs_distance(utc(2026, 3, 15, 9, 59), "=", 3, "hours", "before", now)
    assert not occurs_distance(utc(2026, 3, 15, 10), "=", 3, "hours", "before", now)
    today = time_word("today", NOW)
    assert occurs_distance(utc(2026, 3, 18, 5), "=", 3, "days", "after", today)
    assert not occurs_distance(utc(2026, 3, 17, 23), "=", 3, "days", "after", today)
    assert occurs_distance(utc(2026, 3, 12, 5), "=", 3, "days", "before", today)
    assert occurs_distance(utc(2026, 3, 11), "!=", 3, "days", "before", today)
    assert not occurs_distance(utc(2026, 3, 16), "!=", 3, "days", "before", today)


def test_more_than_and_at_least() -> None:
    now = Interval.instant(NOW)
    seven_days_ago = utc(2026, 3, 8, 12)
    assert occurs_distance(seven_days_ago, ">=", 7, "days", "before", now)
    assert not occurs_distance(seven_days_ago, ">", 7, "days", "before", now)
    assert occurs_distance(seven_days_ago, "<=", 7, "days", "before", now)
    assert not occurs_distance(seven_days_ago, "<", 7, "days", "before", now)
    later = utc(2026, 3, 29, 12)
    assert occurs_distance(later, ">=", 2, "weeks", "after", now)
    assert not occurs_distance(later, ">", 2, "weeks", "after", now)
    assert occurs_distance(later, "<=", 2, "weeks", "after", now)
    assert not occurs_distance(later, "<", 2, "weeks", "after", now)
    assert not occurs_distance(NOW, "<", 2, "weeks", "after", now)


def test_before_after_between() -> None:
    today = time_word("today", NOW)
    assert occurs_before(utc(2026, 3, 14, 23, 59), today)
    assert not occurs_before(utc(2026, 3, 15), today)
    assert occurs_after(utc(2026, 3, 16), today)
    assert not occurs_after(utc(2026, 3, 15, 23, 59), today)
    assert not occurs_after(NOW, Interval.instant(NOW))
    first = Interval.of_day(date(2025, 10, 1))
    last = Interval.of_day(date(2025, 12, 31))
    assert occurs_between(utc(2025, 10, 1), first, last)
    assert occurs_between(utc(2025, 12, 31, 23, 59, 59), first, last)
    assert not occurs_between(utc(2026, 1, 1), first, last)
    assert not occurs_between(utc(2025, 9, 30, 23, 59, 59), first, last)
    assert occurs_between(NOW, Interval.instant(utc(2026, 1, 1)), Interval.instant(NOW))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-03-15T10:00:00+01:00", utc(2026, 3, 15, 9)),
        ("2026-03-15T10:00:00Z", utc(2026, 3, 15, 10)),
        ("2026-03-15T10:00:00", utc(2026, 3, 15, 10)),
        ("2024-02-29", utc(2024, 2, 29)),
        (1709200800000, utc(2024, 2, 29, 10)),
        ("not a date", None),
        (None, None),
        (True, None),
    ],
)
def test_timestamps_parse_from_epoch_millis_and_iso_strings(
    raw: object, expected: datetime | None
) -> None:
    assert parse_timestamp(raw) == expected
