"""Calendar arithmetic in UTC for PQL's date and time functions (spec/pql.md §6.9).

Everything here works on timezone-aware ``datetime`` values in UTC. The evaluator resolves a
time reference (``today``, ``last month``, ``date(2020, 3, 14)``, ``Y.timestamp`` …) to an
``Interval`` and asks one of the ``occurs_*`` functions whether a timestamp falls where the
``occurs`` expression says.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

# Canonical unit for every spelling of §3.1 (the old doc's "millenium" included).
UNITS: dict[str, str] = {
    "millisecond": "millisecond",
    "milliseconds": "millisecond",
    "second": "second",
    "seconds": "second",
    "minute": "minute",
    "minutes": "minute",
    "hour": "hour",
    "hours": "hour",
    "day": "day",
    "days": "day",
    "week": "week",
    "weeks": "week",
    "month": "month",
    "months": "month",
    "year": "year",
    "years": "year",
    "decade": "decade",
    "decades": "decade",
    "century": "century",
    "centuries": "century",
    "millennium": "millennium",
    "millenium": "millennium",
    "millennia": "millennium",
    "millenniums": "millennium",
}

# Units of fixed length; the others are calendar units counted in months.
FIXED_UNITS: dict[str, timedelta] = {
    "millisecond": timedelta(milliseconds=1),
    "second": timedelta(seconds=1),
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}
MONTHS_IN: dict[str, int] = {
    "month": 1,
    "year": 12,
    "decade": 120,
    "century": 1200,
    "millennium": 12000,
}

# ISO weeks start on Monday (spec §6.9 step 1: "pick ISO Monday and make it configurable").
WEEK_START = 0  # datetime.weekday(): Monday = 0 … Sunday = 6


def canonical_unit(unit: str) -> str:
    """The canonical name of a time unit, e.g. ``"Days"`` → ``"day"``; KeyError if unknown."""
    return UNITS[unit.lower()]


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar month arithmetic: the same day and time ``months`` later, the day clamped to the
    target month's length (Jan 31 + 1 month = Feb 28, or Feb 29 in a leap year)."""
    index = moment.year * 12 + (moment.month - 1) + months
    year, month0 = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise OverflowError("date out of range")
    day = min(moment.day, calendar.monthrange(year, month0 + 1)[1])
    return moment.replace(year=year, month=month0 + 1, day=day)


def shift(moment: datetime, amount: int, unit: str) -> datetime:
    """``moment`` moved by ``amount`` units (negative = into the past). Fixed-length units
    (ms … week) add a duration; month, year, decade, century and millennium are calendar
    arithmetic."""
    unit = canonical_unit(unit)
    if unit in FIXED_UNITS:
        return moment + FIXED_UNITS[unit] * amount
    return add_months(moment, MONTHS_IN[unit] * amount)


def floor(moment: datetime, unit: str, week_start: int = WEEK_START) -> datetime:
    """The first instant of the calendar unit that contains ``moment``."""
    unit = canonical_unit(unit)
    if unit == "millisecond":
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    if unit == "second":
        return moment.replace(microsecond=0)
    if unit == "minute":
        return moment.replace(second=0, microsecond=0)
    if unit == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=(day.weekday() - week_start) % 7)
    if unit == "month":
        return day.replace(day=1)
    if unit == "year":
        return day.replace(month=1, day=1)
    # Decades start at years divisible by 10, centuries by 100, millennia by 1000
    # (2026 is in the decade 2020-2029, the century 2000-2099, the millennium 2000-2999).
    span = MONTHS_IN[unit] // 12
    return day.replace(year=max(1, moment.year // span * span), month=1, day=1)


@dataclass(frozen=True)
class Interval:
    """A time reference resolved to ``[start, end)``; an instant has ``start == end``."""

    start: datetime
    end: datetime

    @property
    def is_instant(self) -> bool:
        return self.start == self.end

    @classmethod
    def instant(cls, moment: datetime) -> Interval:
        return cls(moment, moment)

    @classmethod
    def of_unit(cls, moment: datetime, unit: str, week_start: int = WEEK_START) -> Interval:
        """The whole calendar unit (day, week, month …) that contains ``moment``."""
        start = floor(moment, unit, week_start)
        return cls(start, shift(start, 1, unit))

    @classmethod
    def of_day(cls, day: date) -> Interval:
        start = utc(day.year, day.month, day.day)
        return cls(start, start + timedelta(days=1))

    def contains(self, moment: datetime) -> bool:
        if self.is_instant:
            return moment == self.start
        return self.start <= moment < self.end


def time_word(word: str, now: datetime) -> Interval:
    """``now`` is an instant; ``today``, ``yesterday`` and ``tomorrow`` are UTC days."""
    word = word.lower()
    if word == "now":
        return Interval.instant(now)
    today = Interval.of_unit(now, "day")
    if word == "today":
        return today
    if word == "yesterday":
        return Interval(today.start - timedelta(days=1), today.start)
    if word == "tomorrow":
        return Interval(today.end, today.end + timedelta(days=1))
    raise KeyError(word)


RELATIVE_OFFSETS: dict[str, int] = {"this": 0, "last": -1, "next": 1}


def relative_unit(which: str, unit: str, now: datetime, week_start: int = WEEK_START) -> Interval:
    """``this|last|next <unit>``: the current, previous or next whole calendar unit."""
    current = floor(now, unit, week_start)
    start = shift(current, RELATIVE_OFFSETS[which.lower()], unit)
    return Interval(start, shift(start, 1, unit))


# --- occurs (spec §6.9 "occurs — semantics", steps 2 and 3) -------------------------------------


def occurs_on(moment: datetime, when: Interval) -> bool:
    """``T occurs [on] <time>``: inside the interval (equal to an instant)."""
    return when.contains(moment)


def occurs_before(moment: datetime, when: Interval) -> bool:
    """``T occurs before <time>``: strictly before its start."""
    return moment < when.start


def occurs_after(moment: datetime, when: Interval) -> bool:
    """``T occurs after <time>``: at or past the end of an interval (a day is over at the next
    midnight), strictly later than an instant."""
    if when.is_instant:
        return moment > when.end
    return moment >= when.end


def occurs_between(moment: datetime, first: Interval, last: Interval) -> bool:
    """``T occurs between A and B``: inclusive of both ends; a day bound counts as a whole day."""
    if moment < first.start:
        return False
    if last.is_instant:
        return moment <= last.end
    return moment < last.end


def occurs_distance(
    moment: datetime, cmp: str, amount: int, unit: str, direction: str, when: Interval
) -> bool:
    """``T occurs <cmp> n <unit> before|after <time>``.

    Before: anchor ``a`` = start of ``<time>`` and ``T`` must be earlier than ``a``;
    ``< n`` ⇔ a − n·unit < T < a; ``<= n`` ⇔ a − n·unit ≤ T < a; ``> n`` ⇔ T < a − n·unit;
    ``>= n`` ⇔ T ≤ a − n·unit; ``= n`` ⇔ T in the bucket [a − n·unit, a − (n−1)·unit);
    ``!= n`` ⇔ T < a and not in that bucket.
    After mirrors this forward from ``a`` = end of ``<time>`` (so ``= 3 days after today`` is the
    day three days after today), where "later than ``a``" means ``T > a`` for an instant and
    ``T ≥ a`` for an interval, whose end is exclusive. Month and longer units are calendar
    arithmetic (1 month before 03-31 is 02-28).
    """
    if direction == "before":
        anchor = when.start
        far = shift(anchor, -amount, unit)  # the bound n units away
        bucket = (far, shift(anchor, -(amount - 1), unit))
        inside = moment < anchor
        if cmp == "<":
            return far < moment < anchor
        if cmp == "<=":
            return far <= moment < anchor
        if cmp == ">":
            return moment < far
        if cmp == ">=":
            return moment <= far
    elif direction == "after":
        anchor = when.end
        far = shift(anchor, amount, unit)
        bucket = (shift(anchor, amount - 1, unit), far)
        inside = moment > anchor if when.is_instant else moment >= anchor
        if cmp == "<":
            return inside and moment < far
        if cmp == "<=":
            return inside and moment <= far
        if cmp == ">":
            return moment > far
        if cmp == ">=":
            return moment >= far
    else:
        raise ValueError(f"unknown direction {direction!r}")
    in_bucket = bucket[0] <= moment < bucket[1]
    if cmp == "=":
        return in_bucket
    if cmp == "!=":
        return inside and not in_bucket
    raise ValueError(f"unknown comparison {cmp!r}")
