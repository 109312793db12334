"""The known PQL functions and methods (spec/pql.md §6), in one table.

The parser checks names and argument counts against ``FUNCTIONS``; pql/json decodes ``fnName``
with it; the checker and the editor's function reference read ``returns`` and ``summary``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Function:
    """``kind`` is ``"method"`` (``receiver.name(args)``; the receiver is not counted in the
    arguments) or ``"function"`` (``name(args)``). ``max_args=None`` means any number.
    ``item_args`` are the argument positions evaluated once per item of the receiver, with the
    item as implicit context (``orders.sum(order.price)``). ``returns``: ``boolean``,
    ``number``, ``integer``, ``string``, ``list``, ``map``, ``date``, ``any``."""

    name: str
    kind: str
    min_args: int
    max_args: int | None
    returns: str
    summary: str
    item_args: frozenset[int] = frozenset()

    def arity_text(self) -> str:
        if self.max_args == self.min_args:
            n = self.min_args
            return "no arguments" if n == 0 else f"{n} argument{'s' if n > 1 else ''}"
        if self.max_args is None:
            return f"at least {self.min_args} argument{'s' if self.min_args != 1 else ''}"
        joiner = "or" if self.max_args == self.min_args + 1 else "to"
        return f"{self.min_args} {joiner} {self.max_args} arguments"


def _m(
    name: str, lo: int, hi: int | None, returns: str, summary: str, items: tuple[int, ...] = ()
) -> Function:
    return Function(name, "method", lo, hi, returns, summary, frozenset(items))


def _f(name: str, lo: int, hi: int | None, returns: str, summary: str) -> Function:
    return Function(name, "function", lo, hi, returns, summary)


FUNCTIONS: dict[str, Function] = {
    fn.name: fn
    for fn in (
        # strings (§6.4); the optional last argument is the case-sensitivity flag
        _m("startsWith", 1, 2, "boolean", "text starts with s"),
        _m("doesNotStartWith", 1, 2, "boolean", "text does not start with s"),
        _m("endsWith", 1, 2, "boolean", "text ends with s"),
        _m("doesNotEndWith", 1, 2, "boolean", "text does not end with s"),
        _m("contains", 1, 2, "boolean", "text contains s"),
        _m("doesNotContain", 1, 2, "boolean", "text does not contain s"),
        _m("equals", 1, None, "boolean", "text equals any of the given strings"),
        _m("notEqualTo", 1, 2, "boolean", "text differs from s"),
        _m("matches", 1, 1, "boolean",
           "text matches a regular expression (RE2: no lookaround or backreferences)"),
        _m("regexGroup", 2, 2, "string",
           "capture group n of the first match of a regular expression (RE2)"),
        # arrays, lists and sets (§6.5)
        _m("intersects", 1, 1, "boolean", "the lists share at least one element"),
        _m("intersection", 1, 1, "list", "the elements both lists share"),
        _m("subsetOf", 1, 1, "boolean", "every element is in the other list"),
        _m("supersetOf", 1, 1, "boolean", "contains every element of the other list"),
        _m("includes", 1, 1, "boolean", "the list contains the value"),
        _m("distinct", 0, 0, "list", "the list without duplicates"),
        _m("count", 0, 0, "integer", "number of elements"),
        _m("groupBy", 1, 1, "map", "items grouped by a key", (0,)),
        _m("filter", 1, 1, "list", "items for which a condition holds", (0,)),
        _m("map", 1, 1, "any", "apply an expression to each item", (0,)),
        _m("topN", 2, 2, "list", "the n items with the largest key", (0,)),
        _m("bottomN", 2, 2, "list", "the n items with the smallest key", (0,)),
        _m("head", 0, 0, "any", "the first item"),
        _m("exists", 1, 1, "boolean", "some item satisfies a condition", (0,)),
        # maps (§6.6)
        _m("get", 1, 1, "any", "the value stored under a key"),
        _m("keys", 0, 0, "list", "the keys of a map"),
        _m("values", 0, 0, "list", "the values of a map"),
        _f("mapEntry", 2, 2, "map", "a map entry, inside map((K, V) => …)"),
        # objects (§6.7)
        _m("isNull", 0, 0, "boolean", "the value is missing"),
        _m("isNotNull", 0, 0, "boolean", "the value is present"),
        # aggregation, method form (§6.8)
        _m("sum", 0, 1, "number", "sum over the items", (0,)),
        _m("average", 0, 1, "number", "average over the items", (0,)),
        _m("min", 0, 1, "number", "smallest value over the items", (0,)),
        _m("max", 0, 1, "number", "largest value over the items", (0,)),
        # dates (§6.9)
        _f("currentMonth", 0, 0, "integer", "this month, 1–12 (UTC)"),
        _f("currentYear", 0, 0, "integer", "this year (UTC)"),
        _f("currentDayOfMonth", 0, 0, "integer", "today's day of the month (UTC)"),
        _m("getMonth", 0, 0, "integer", "the month of a timestamp, 1–12"),
        _m("getYear", 0, 0, "integer", "the year of a timestamp"),
        _m("getDayOfMonth", 0, 0, "integer", "the day of the month of a timestamp"),
        _f("date", 3, 3, "date", "the UTC day date(year, month, day)"),
        # logic and segments (§6.2, §6.14)
        _f("if", 3, 3, "any", "if(test, then, else)"),
        _f("inSegment", 1, 1, "boolean", "the profile is in the audience with this id"),
    )
}

# Operator names as pql/json ``fnName`` (not callable by name in text).
OPERATORS = frozenset(
    {"and", "or", "not", "=", "!=", "<", "<=", ">", ">=", "like", "in", "notIn",
     "+", "-", "*", "/", "%", "occurs"}
)  # fmt: skip

# Names people try that PQL spells differently (§6.15).
SUGGESTIONS: dict[str, str] = {
    "avg": "did you mean 'average'?",
    "mean": "did you mean 'average'?",
    "notIncludes": "write not(list.includes(x))",
    "getMapValue": "write map.get(key)",
    "containsKey": "write map.get(key).isNotNull()",
    "first": "write list.head()",
    "any": "write exists X from list where …",
    "all": "write forall X from list where …",
    "some": "write exists X from list where …",
    "now": "write now without parentheses, after 'occurs'",
    "today": "write today without parentheses, after 'occurs'",
    "yesterday": "write yesterday without parentheses, after 'occurs'",
    "tomorrow": "write tomorrow without parentheses, after 'occurs'",
    "age": "write person.birthDate occurs > 21 years before today",
    "within": "write T occurs < 7 days before now",
    "length": "PQL has no string length function",
    "lower": "compare with .equals(s, false) to ignore case",
    "upper": "compare with .equals(s, false) to ignore case",
}

UNKNOWN_FUNCTION = "unknown {kind} '{name}'"


def unknown_function_message(name: str, kind: str | None = None) -> str:
    """``unknown function 'avg' — did you mean 'average'?`` and similar hints; ``kind``
    (``"method"``/``"function"``) narrows the suggestions."""
    message = UNKNOWN_FUNCTION.format(kind=kind or "function", name=name)
    hint = SUGGESTIONS.get(name)
    if hint is None:
        names = [fn.name for fn in FUNCTIONS.values() if kind is None or fn.kind == kind]
        close = suggest(name, names)
        hint = f"did you mean '{close}'?" if close else None
    return f"{message} — {hint}" if hint else message


def suggest(word: str, candidates: object) -> str | None:
    """The closest candidate to ``word`` (case-insensitive), if any is close enough."""
    names = list(candidates)  # type: ignore[call-overload]
    by_lower = {name.lower(): name for name in names}
    if word.lower() in by_lower:
        return by_lower[word.lower()]
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[close[0]] if close else None
