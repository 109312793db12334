"""evaluate(): the public signature, run-time errors and rules not covered by the fixtures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pql import PQLError, ast, evaluate, parse
from pql.evaluator import PQLEvaluationError, PQLTypeError

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)


def ev(text: str, profile: dict[str, Any] | None = None, events: list[Any] | None = None,
       **kwargs: Any) -> bool:  # fmt: skip
    return evaluate(parse(text), profile or {}, events or [], now=kwargs.pop("now", NOW), **kwargs)


def test_memberships_argument_overrides_the_profile_map() -> None:
    profile = {"segmentMembership": {"ups": {"s1": {"status": "realized"}}}}
    assert ev('inSegment("s1")', profile)
    assert not ev('inSegment("s1")', profile, memberships={"s1": "exited"})
    assert ev('inSegment("s2")', profile, memberships={"s2": "existing"})


def test_naive_now_is_utc() -> None:
    events = [{"timestamp": "2026-03-15T00:30:00Z"}]
    assert ev("xEvent.timestamp occurs today", {}, events, now=datetime(2026, 3, 15, 1))


def test_today_is_the_utc_day_even_near_midnight() -> None:
    # 23:30 on 03-14 in New York is 03:30 on 03-15 UTC: today, in UTC terms
    events = [{"timestamp": "2026-03-14T23:30:00-04:00"}]
    assert ev("xEvent.timestamp occurs today", {}, events)


def test_errors_are_pql_errors_with_spans() -> None:
    text = 'person.age.startsWith("1")'
    with pytest.raises(PQLTypeError) as caught:
        ev(text, {"person": {"age": 12}})
    assert isinstance(caught.value, PQLError)
    assert caught.value.message == "startsWith needs text, but got a number"
    assert caught.value.span is not None
    start, end = caught.value.span
    assert text[start:end] == text


@pytest.mark.parametrize(
    ("text", "profile", "message"),
    [
        ('a + "x" > 1', {"a": 1}, "'+' needs a number, but got text"),
        ("a > 1", {"a": {"b": 1}}, "cannot compare an object with a number"),
        ('a = "yes"', {"a": 3}, "cannot compare a number with text"),
        ("a in 3", {"a": 3}, "the right side of in/notIn needs a list, but got a number"),
        ("a.b = 1", {"a": "text"}, 'cannot read the field "b" of text'),
        ("a occurs today", {"a": "last tuesday"}, "occurs needs a date or date-time, but got "
                                                  "'last tuesday'"),
        # RE2's reason: patterns run as the engine's SQL runs them
        ('a.matches("(")', {"a": "x"}, "the regular expression '(' is not valid: "
                                        "missing ): ("),
        ("a.keys().count() = 1", {"a": [1]}, "keys needs a map or object, but got a list"),
        ("a.sum() > 1", {"a": ["1"]}, "sum needs a number, but got text"),
    ],
)  # fmt: skip
def test_type_errors_at_run_time(text: str, profile: dict[str, Any], message: str) -> None:
    with pytest.raises(PQLEvaluationError) as caught:
        ev(text, profile)
    assert caught.value.message == message


def test_invalid_calendar_date_is_an_evaluation_error() -> None:
    with pytest.raises(PQLEvaluationError, match=r"date\(2026, 2, 30\) is not a calendar day"):
        ev("a occurs on date(2026, 2, 30)", {"a": "2026-02-28"})


def test_leap_day_date_is_valid() -> None:
    assert ev("a occurs on date(2024, 2, 29)", {"a": "2024-02-29T23:59:59Z"})


def test_comparisons_coerce_the_right_operand_to_the_left_type() -> None:
    assert ev('a = "42"', {"a": 42})
    assert ev("a = 42", {"a": "42"})
    assert ev('a = "true"', {"a": True})
    assert ev("a < date(2020, 1, 1)", {"a": "2019-12-31T23:00:00Z"})
    assert ev("a = date(2020, 1, 1)", {"a": "2020-01-01"})


def test_division_by_zero_is_null_and_remainder_too() -> None:
    assert not ev("a / 0 = 0", {"a": 1})
    assert not ev("a % 0 = 0", {"a": 1})
    assert ev("(a / 0).isNull()", {"a": 1})


def test_unknown_variable_is_reported() -> None:
    node = ast.Binary("=", ast.Field("x", ast.Var("Y")), ast.Literal(1))
    with pytest.raises(PQLEvaluationError, match='unknown variable "Y"'):
        evaluate(node, {}, [], now=NOW)


def test_up_above_the_profile_is_reported() -> None:
    node = ast.Field("a", ast.Up(1))
    with pytest.raises(PQLEvaluationError, match=r"'\^' reaches above the profile"):
        evaluate(node, {}, [], now=NOW)


def test_hand_built_tree_without_spans_evaluates() -> None:
    node = ast.And(
        (
            ast.Binary("=", ast.Field("b", ast.Field("a")), ast.Literal("x")),
            ast.Not(ast.Method("isNull", ast.Field("c"), ())),
        )
    )
    assert evaluate(node, {"a": {"b": "x"}, "c": 0}, [], now=NOW)


def test_second_parameter_is_the_events() -> None:
    assert ev("$2.count() = 1", {}, [{"timestamp": 0}])


def test_from_is_before_for_a_past_time_and_after_for_a_future_one() -> None:
    profile = {"old": "2026-03-01T00:00:00Z", "new": "2026-03-20T00:00:00Z"}
    assert ev("old occurs < 20 days from now", profile)
    assert ev("new occurs from tomorrow", profile)
    assert not ev("old occurs from tomorrow", profile)


def test_chain_needs_strictly_increasing_times() -> None:
    events = [
        {"timestamp": "2026-03-15T10:00:00Z", "eventType": "a"},
        {"timestamp": "2026-03-15T10:00:00Z", "eventType": "b"},
    ]
    text = 'chain(xEvent, timestamp, [A: WHAT(eventType = "a"), B: WHAT(eventType = "b")])'
    assert not ev(text, {}, events)


def test_chain_ignores_events_without_a_timestamp() -> None:
    events = [{"eventType": "a"}, {"timestamp": "2026-03-15T10:00:00Z", "eventType": "a"}]
    text = 'chain(xEvent, timestamp, [A: WHAT(eventType = "a") COUNT(2)])'
    assert not ev(text, {}, events)


def test_chain_count_events_may_share_a_time() -> None:
    events = [{"timestamp": "2026-03-15T10:00:00Z", "eventType": "a"}] * 2
    assert ev('chain(xEvent, timestamp, [A: WHAT(eventType = "a") COUNT(2)])', {}, events)


def test_forall_with_two_variables() -> None:
    events = [
        {"items": [{"price": 5}, {"price": 7}]},
        {"items": [{"price": 9}]},
    ]
    assert ev("forall E from xEvent: E.items, I from E.items: I.price > 4", {}, events)
    assert not ev("forall E from xEvent: E.items, I from E.items: I.price > 6", {}, events)


def test_select_with_two_variables_returns_pairs() -> None:
    profile = {"a": [1, 2], "b": [2, 3]}
    assert ev("(select X from a, Y from b where Y > X).count() = 3", profile)


def test_object_literal_and_map_entry() -> None:
    profile = {"orders": [{"s": "x", "p": 1}, {"s": "x", "p": 2}, {"s": "y", "p": 5}]}
    text = 'orders.groupBy(s).map((K, G) => mapEntry(K, {"n": G.count()})).get("x").n = 2'
    assert ev(text, profile)


def test_matches_supports_java_style_inline_flags() -> None:
    assert ev('name.matches("(?i)^JOHN")', {"name": "john smith"})


def test_list_compared_with_list_is_ordered() -> None:
    assert ev('a = ["x", "y"]', {"a": ["x", "y"]})
    assert not ev('a = ["y", "x"]', {"a": ["x", "y"]})
    assert ev('a != ["y", "x"]', {"a": ["x", "y"]})


def test_ordering_two_lists_is_an_error() -> None:
    with pytest.raises(PQLTypeError):
        ev("a < [1]", {"a": [1]})
