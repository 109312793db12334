"""Runtime values of PQL and the rules that relate them (spec/pql.md §1, §5).

Values are plain Python: ``None`` (missing or null), ``bool``, ``int``/``float``, ``str``,
``list`` (arrays and lists), ``dict`` (XDM objects and maps), plus ``datetime`` (an instant, from
``now`` or a parsed timestamp) and ``date`` (a UTC day, from ``date(y, m, d)``).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def type_name(value: Any) -> str:
    """A marketer-readable name of a value's type, for error messages."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a true/false value"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, datetime):
        return "a date-time"
    if isinstance(value, date):
        return "a date"
    return type(value).__name__


def is_number(value: Any) -> bool:
    """Numbers are ints and floats, never booleans (Python's bool is an int)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def truthy(value: Any) -> bool:
    """Spec §1 "Result type": a value in boolean position. Null → false; a boolean is itself;
    a list/array → true iff non-empty; any other defined value (object, string, number, even ``""``
    or ``0``) → true, because a bare reference means "is defined"."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, list):
        return len(value) > 0
    return True


def parse_timestamp(value: Any) -> datetime | None:
    """A timestamp-valued field as an aware UTC datetime (spec §1 "Timestamp representations"):
    epoch milliseconds, an ISO-8601 string with offset (``Z`` or ``+01:00``; no offset = UTC), a
    ``YYYY-MM-DD`` XDM date (its 00:00 UTC), or an already-parsed datetime/date. None when the
    value is null or does not look like a timestamp."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if is_number(value):
        try:
            return _EPOCH + timedelta(milliseconds=value)
        except (OverflowError, ValueError):
            return None  # beyond the years 1–9999
    if isinstance(value, str):
        text = value.strip()
        if _ISO_DATE.match(text):
            text += "T00:00:00"
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    return None


def flatten_into(out: list[Any], value: Any) -> None:
    """Append ``value`` to ``out``; a list is spliced in (spec §3.3: a path through an array
    maps over the items and flattens). Nulls are dropped, so that ``xEvent.commerce.order``
    lists only the orders that exist."""
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            flatten_into(out, item)
    else:
        out.append(value)


def hashable(value: Any) -> Any:
    """A hashable stand-in for a value, so lists and objects can be grouped and de-duplicated."""
    if isinstance(value, list):
        return ("list", tuple(hashable(item) for item in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k), hashable(v)) for k, v in value.items())))
    if is_number(value):
        return ("number", value)
    return (type(value).__name__, value)
