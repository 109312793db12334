"""A chain step timed from an earlier step's event: ``WHEN(<= 7 days after A)`` (spec §6.13).

The example programs are in tests/pql/eval/chain.cases (``label_*``), and go through the
differential test; here are the rules those cannot show: what is refused and how, the search
over an earlier step's times, and that a chain naming no step compiles as it always did.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sqlfixture import Fixture, build_database, eval_fixture, infer_schema  # noqa: E402

from pql import ast, evaluate, parse  # noqa: E402
from pql.errors import PQLError  # noqa: E402
from pql.evaluator import (  # noqa: E402
    CHAIN_LABEL_COUNT_ZERO,
    CHAIN_LABEL_FROM,
    CHAIN_LABEL_NEVER,
    CHAIN_LABEL_NOT_A_TIME,
    CHAIN_LABEL_TWICE,
    CHAIN_LATER_LABEL,
    CHAIN_OWN_LABEL,
    PQLChainLabelError,
    chain_plan,
)
from pql.sql import compile_segment, to_sql  # noqa: E402

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)
ADD = 'A: WHAT(eventType = "add")'
BUY = 'B: WHAT(eventType = "buy")'


@cache
def fixture() -> Fixture:
    return eval_fixture()


def chain(*steps: str) -> str:
    return "chain(xEvent, timestamp, [" + ", ".join(steps) + "])"


def event(day: int, kind: str, hour: int = 10) -> dict[str, Any]:
    return {"timestamp": f"2026-03-{day:02d}T{hour:02d}:00:00Z", "eventType": kind}


def parse_chain(text: str) -> ast.Chain:
    node = parse(text)
    assert isinstance(node, ast.Chain)
    return node


def holds(text: str, events: list[dict[str, Any]]) -> bool:
    return evaluate(parse(text), {}, events, now=NOW)


# --- what is refused -----------------------------------------------------------------------------

REFUSED = [
    pytest.param(
        chain('A: WHAT(eventType = "add") WHEN(<= 7 days after A)'),
        CHAIN_OWN_LABEL.format(step="A", label="A"), "A", id="own-label",
    ),
    pytest.param(
        chain('A: WHAT(eventType = "add") WHEN(after B.timestamp)', BUY),
        CHAIN_LATER_LABEL.format(step="A", label="B"), "B.timestamp", id="later-label",
    ),
    pytest.param(
        chain(ADD, 'B: WHAT(eventType = "buy") WHEN(before A)'),
        CHAIN_LABEL_NEVER.format(step="B", label="A", window="before A"), "before A",
        id="before",
    ),
    pytest.param(
        chain(ADD, 'B: WHAT(eventType = "buy") WHEN(< 7 days before A)'),
        CHAIN_LABEL_NEVER.format(step="B", label="A", window="< 7 days before A"),
        "< 7 days before A", id="distance-before",
    ),
    pytest.param(
        chain(ADD, 'B: WHAT(eventType = "buy") WHEN(on A)'),
        CHAIN_LABEL_NEVER.format(step="B", label="A", window="on A"), "on A", id="on",
    ),
    pytest.param(
        chain(ADD, 'B: WHAT(eventType = "buy") WHEN(between yesterday and A)'),
        CHAIN_LABEL_NEVER.format(step="B", label="A", window="between yesterday and A"),
        "between yesterday and A", id="between-end",
    ),
    pytest.param(
        chain(ADD, 'B: WHAT(eventType = "buy") WHEN(< 3 days from A)'),
        CHAIN_LABEL_FROM.format(label="A", window="< 3 days from A"), "< 3 days from A",
        id="from",
    ),
    pytest.param(
        chain(ADD, 'B: WHAT(eventType = "buy") WHEN(after A.commerce.order)'),
        CHAIN_LABEL_NOT_A_TIME.format(step="B", label="A", order_by="timestamp",
                                      text="A.commerce.order"),
        "A.commerce.order", id="a-field-of-the-label",
    ),  # fmt: skip
    pytest.param(
        chain(ADD, 'B: WHAT(eventType = "buy") WHEN(after date(A.getYear(), 1, 1))'),
        CHAIN_LABEL_NOT_A_TIME.format(step="B", label="A", order_by="timestamp",
                                      text="date(A.getYear(), 1, 1)"),
        "date(A.getYear(), 1, 1)", id="inside-an-expression",
    ),  # fmt: skip
    pytest.param(
        chain('A: WHAT(eventType = "add") COUNT(0)', 'B: WHAT(eventType = "buy") WHEN(after A)'),
        CHAIN_LABEL_COUNT_ZERO.format(step="B", label="A"), "A", id="count-zero",
    ),
    pytest.param(
        chain(ADD, 'A: WHAT(eventType = "view")', 'B: WHAT(eventType = "buy") WHEN(after A)'),
        CHAIN_LABEL_TWICE.format(step="B", label="A", count=2), "A", id="label-of-two-steps",
    ),
]


@pytest.mark.parametrize(("text", "message", "underlined"), REFUSED)
def test_a_meaningless_label_is_refused_by_the_evaluator(
    text: str, message: str, underlined: str
) -> None:
    with pytest.raises(PQLChainLabelError) as caught:
        holds(text, [])  # whatever the profile: even one without events
    assert caught.value.message == message
    assert caught.value.span is not None
    start, end = caught.value.span
    assert text[start:end] == underlined


@pytest.mark.parametrize(("text", "message", "underlined"), REFUSED)
def test_a_meaningless_label_is_refused_by_the_compiler(
    text: str, message: str, underlined: str
) -> None:
    node = parse(text)
    for compile_ in (compile_segment, to_sql):
        with pytest.raises(PQLChainLabelError) as caught:
            compile_(node, now=NOW, schema=fixture().schema)
        assert caught.value.message == message


def test_the_refusal_is_a_pql_error_even_inside_not() -> None:
    text = "not(" + chain(ADD, 'B: WHAT(eventType = "buy") WHEN(before A)') + ")"
    with pytest.raises(PQLError):
        holds(text, [event(1, "add"), event(2, "buy")])


def test_a_count_zero_step_may_itself_be_timed_from_an_earlier_step() -> None:
    text = chain(ADD, 'B: WHAT(eventType = "buy") WHEN(< 1 day after A) COUNT(0)')
    assert holds(text, [event(1, "add")])
    assert to_sql(parse(text), now=NOW, schema=fixture().schema)


# --- the plan ------------------------------------------------------------------------------------


def test_the_plan_says_which_steps_each_when_is_timed_from() -> None:
    node = parse_chain(chain(ADD, 'B: WHAT(eventType = "buy") WHEN(< 1 day after A)',
                             'C: WHAT(eventType = "ship") WHEN(between A.timestamp and now)',
                             'D: WHAT(eventType = "review") WHEN(<= 3 days after C)'))  # fmt: skip
    plan = chain_plan(node)
    assert plan.uses == ((), (0,), (0,), (2,))
    assert plan.referenced == {0, 2}
    assert [plan.last_use(index) for index in range(4)] == [2, -1, 3, -1]


def test_a_chain_naming_no_step_keeps_its_whens() -> None:
    node = parse_chain(chain('A: WHAT(eventType = "add") WHEN(< 8 days before now)', BUY))
    plan = chain_plan(node)
    assert plan.whens == (node.steps[0].when, None)
    assert plan.referenced == frozenset()


# --- the search ----------------------------------------------------------------------------------

WITHIN_A_WEEK = chain(ADD, 'B: WHAT(eventType = "buy") WHEN(<= 7 days after A)')


def test_a_named_step_can_use_a_later_occurrence() -> None:
    # A on day 1 and day 10, B on day 15: within a week of the second A only
    assert holds(WITHIN_A_WEEK, [event(1, "add"), event(10, "add"), event(15, "buy")])
    assert not holds(WITHIN_A_WEEK, [event(1, "add"), event(15, "buy")])


def test_a_timed_step_is_still_strictly_later_than_the_step_it_names() -> None:
    assert not holds(WITHIN_A_WEEK, [event(1, "add"), event(1, "buy")])
    assert holds(WITHIN_A_WEEK, [event(1, "add"), event(8, "buy")])  # 7 days exactly


def test_the_named_steps_time_is_its_nth_counted_event() -> None:
    text = chain('A: WHAT(eventType = "add") COUNT(2)',
                 'B: WHAT(eventType = "buy") WHEN(< 1 day after A)')  # fmt: skip
    # the counted events may share a time; the step's time is then that time
    assert holds(text, [event(5, "add"), event(5, "add"), event(5, "buy", hour=20)])
    # the second add is on day 3, the buy two days later: too far; a third add on day 4 works
    events = [event(1, "add"), event(3, "add"), event(5, "buy")]
    assert not holds(text, events)
    assert holds(text, [*events, event(4, "add", hour=12)])


def test_a_step_between_two_named_steps_uses_the_right_pair() -> None:
    text = chain(ADD, 'B: WHAT(eventType = "view") WHEN(< 1 day after A)',
                 'C: WHAT(eventType = "buy") WHEN(< 1 day after B)')  # fmt: skip
    events = [event(1, "add"), event(3, "view"), event(5, "add"), event(5, "view", hour=20),
              event(6, "buy")]  # fmt: skip
    assert holds(text, events)
    assert not holds(text, events[:4] + [event(7, "buy")])


# --- the compiler --------------------------------------------------------------------------------


def test_a_chain_naming_no_step_compiles_to_the_plain_cascade() -> None:
    text = chain('A: WHAT(eventType = "download") COUNT(2)',
                 'B: WHAT(eventType = "commerce.checkouts") WHEN(< 7 days before now)')  # fmt: skip
    assert to_sql(parse(text), now=NOW, schema=fixture().schema) == (
        'SELECT p._profile_id\nFROM "profiles" AS p\nWHERE (p._profile_id IN (SELECT pid FROM '
        '(SELECT e2._profile_id AS pid, min(e2."timestamp") AS t FROM "events" AS e2 JOIN '
        '(SELECT e1._profile_id AS pid, min(e1."timestamp", 2)[2] AS t FROM "events" AS e1 '
        "WHERE e1.\"timestamp\" IS NOT NULL AND (e1.\"eventType\" = 'download') GROUP BY "
        "e1._profile_id HAVING count(*) >= 2) AS s3 ON e2._profile_id = s3.pid WHERE "
        "e2.\"timestamp\" IS NOT NULL AND (e2.\"eventType\" = 'commerce.checkouts') AND "
        "(e2.\"timestamp\" > TIMESTAMP '2026-03-08 12:00:00.000000' AND e2.\"timestamp\" < "
        "TIMESTAMP '2026-03-15 12:00:00.000000') AND e2.\"timestamp\" > s3.t GROUP BY "
        "e2._profile_id)))"
    )


LABELLED = [
    chain(ADD, 'B: WHAT(eventType = "buy") WHEN(<= 7 days after A)'),
    chain(ADD, 'B: WHAT(eventType = "buy") WHEN(< 24 hours after A.timestamp)'),
    chain(ADD, 'B: WHAT(eventType = "buy") WHEN(after A)'),
    chain(ADD, 'B: WHAT(eventType = "buy") WHEN(> 1 month after A)'),
    chain(ADD, 'B: WHAT(eventType = "buy") WHEN(= 2 days after A)'),
    chain(ADD, 'B: WHAT(eventType = "buy") WHEN(!= 1 week after A)'),
    chain(ADD, 'B: WHAT(eventType = "buy") WHEN(between A and today)'),
    chain('A: WHAT(eventType = "add") COUNT(2)', 'B: WHAT(eventType = "buy") WHEN(after A)'),
    chain(ADD, 'B: WHAT(eventType = "buy") WHEN(< 2 days after A) COUNT(2)'),
    chain(ADD, 'B: WHAT(eventType = "view")',
          'C: WHAT(eventType = "buy") WHEN(<= 30 days after A)'),
    chain(ADD, 'B: WHAT(eventType = "view") WHEN(< 1 day after A) COUNT(2)',
          'C: WHAT(eventType = "buy") WHEN(< 1 day after B)', 'D: WHAT(eventType = "x")'),
]  # fmt: skip


@pytest.mark.parametrize("text", LABELLED)
def test_a_label_anchor_compiles_exactly(text: str) -> None:
    compiled = compile_segment(parse(text), now=NOW, schema=fixture().schema)
    assert compiled.exact
    assert '"A"' not in compiled.sql  # never read as an event field


@pytest.mark.parametrize("text", LABELLED)
def test_a_label_anchor_selects_what_the_evaluator_selects(text: str) -> None:
    events_by_profile = {
        "q1": [event(1, "add"), event(10, "add"), event(15, "buy"), event(15, "buy", hour=11)],
        "q2": [event(1, "add"), event(3, "buy"), event(3, "view"), event(3, "view", hour=11),
               event(4, "buy", hour=9)],
        "q3": [event(1, "add"), event(1, "add", hour=12), event(2, "buy"), event(3, "x")],
    }  # fmt: skip
    entries: list[dict[str, Any]] = [
        {"id": pid, "profile": {"name": pid}, "events": events}
        for pid, events in events_by_profile.items()
    ]
    schema = infer_schema(entries)
    fx = build_database(entries, schema)
    node = parse(text)
    expected = {e["id"] for e in entries if evaluate(node, e["profile"], e["events"], now=NOW)}
    found = {row[0] for row in fx.con.execute(to_sql(node, now=NOW, schema=schema)).fetchall()}
    assert found == expected
