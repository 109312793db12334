"""explain: why a profile is in or out, condition by condition."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pql import evaluate, explain, parse
from pql.explain import Explanation

FIXTURES = json.loads((Path(__file__).parent / "eval" / "profiles.json").read_text())
PROFILES: dict[str, dict[str, Any]] = {entry["id"]: entry for entry in FIXTURES["profiles"]}
NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)


def explain_for(pid: str, text: str) -> Explanation:
    entry = PROFILES[pid]
    return explain(parse(text), entry["profile"], entry["events"], now=NOW)


def by_text(explanation: Explanation) -> dict[str, Explanation]:
    return {entry.text: entry for entry in explanation.walk()}


def test_each_condition_has_its_own_verdict() -> None:
    result = explain_for("p3", 'homeAddress.countryISO = "US" and person.birthYear < 1980')
    entries = by_text(result)
    assert result.verdict is False
    assert entries['homeAddress.countryISO = "US"'].verdict is True
    assert entries["person.birthYear < 1980"].verdict is False
    assert entries["person.birthYear"].value == 2001
    assert entries["person.birthYear"].verdict is None  # an operand, not a condition


def test_and_is_not_short_circuited_so_every_condition_is_shown() -> None:
    result = explain_for("p2", 'homeAddress.countryISO = "US" and person.gender = "male"')
    assert [entry.verdict for entry in result.conditions()] == [False, False, True]


def test_missing_operand_explains_a_false_negative_comparison() -> None:
    result = explain_for("p4", 'homeAddress.countryISO != "CA"')
    entries = by_text(result)
    assert result.verdict is False
    assert entries["homeAddress.countryISO"].shown == "missing"


def test_not_flips_a_false_comparison() -> None:
    result = explain_for("p4", 'not(homeAddress.countryISO = "CA")')
    assert [entry.verdict for entry in result.conditions()] == [True, False]


def test_root_verdict_matches_evaluate_on_every_profile() -> None:
    texts = [
        'homeAddress.countryISO = "US" or person.birthYear >= 2000',
        "select X from xEvent where X.commerce.order",
        'chain(xEvent, timestamp, [A: WHAT(eventType = "homePageView") COUNT(2)])',
        "person.orders.sum(price) > 50",
        "homeAddress",
    ]
    for text in texts:
        node = parse(text)
        for entry in PROFILES.values():
            expected = evaluate(node, entry["profile"], entry["events"], now=NOW)
            got = explain(node, entry["profile"], entry["events"], now=NOW)
            assert got.verdict is expected, (text, entry["id"])


def test_a_select_reports_its_matches_not_each_event() -> None:
    result = explain_for("p1", "select X from xEvent where X.commerce.order")
    assert result.verdict is True
    assert result.shown == "2 matches (2026-03-10T10:00:00Z, 2026-03-14T15:00:00Z)"
    assert [child.text for child in result.children] == ["xEvent"]


def test_bare_path_in_boolean_position_gets_a_verdict() -> None:
    result = explain_for("p5", "workAddress or homeAddress")
    entries = by_text(result)
    assert entries["workAddress"].verdict is False
    assert entries["homeAddress"].verdict is True


def test_labels_are_canonical_text() -> None:
    result = explain_for("p1", 'NOT (homeAddress.countryISO="CA")')
    assert result.text == 'not(homeAddress.countryISO = "CA")'


def test_spans_point_into_the_parsed_text() -> None:
    text = 'person.birthYear > 1980 and homeAddress.countryISO = "US"'
    result = explain_for("p1", text)
    comparison = by_text(result)['homeAddress.countryISO = "US"']
    assert comparison.span is not None
    start, end = comparison.span
    assert text[start:end] == 'homeAddress.countryISO = "US"'


def test_render_shows_ticks_crosses_and_values() -> None:
    result = explain_for("p5", 'homeAddress.countryISO = "US" and person.name.firstName = "Erin"')
    assert result.render().splitlines() == [
        '✗ homeAddress.countryISO = "US" and person.name.firstName = "Erin"',
        '  ✗ homeAddress.countryISO = "US"',
        "    · homeAddress.countryISO = missing",
        '  ✓ person.name.firstName = "Erin"',
        '    · person.name.firstName = "Erin"',
    ]


def test_to_dict_is_json_ready() -> None:
    result = explain_for("p11", 'xEvent.timestamp occurs today or inSegment("seg-silver")')
    data = result.to_dict()
    json.dumps(data)
    assert data["verdict"] is True
    assert [child["verdict"] for child in data["children"]] == [False, True]


def test_explain_values_inside_let_and_arithmetic() -> None:
    result = explain_for("p12", "let S = product.inventory * product.price in S > 20")
    entries = by_text(result)
    assert entries["product.inventory * product.price"].value == 28.5
    assert entries["S > 20"].verdict is True


def test_chain_steps_are_explained_one_by_one() -> None:
    text = (
        'chain(xEvent, timestamp, [A: WHAT(eventType = "download") COUNT(3), '
        'B: WHAT(eventType = "commerce.checkouts"), C: WHAT(eventType = "refund")])'
    )
    result = explain_for("p11", text)
    steps = [entry for entry in result.children if entry.text.startswith(("A:", "B:", "C:"))]
    assert result.verdict is False
    assert [(step.verdict, step.shown) for step in steps] == [
        (True, "4 matching events, 3 needed"),
        (True, "first match at 2026-03-13T10:00:00Z"),
        (False, "no matching event after 2026-03-13T10:00:00Z"),
    ]


def test_chain_steps_after_a_failed_step_are_not_reached() -> None:
    text = 'chain(xEvent, timestamp, [A: WHAT(eventType = "refund"), B: WHAT(eventType = "x")])'
    result = explain_for("p1", text)
    assert [(step.verdict, step.shown) for step in result.conditions()[1:]] == [
        (False, "no matching event"),
        (False, "no matching event"),
    ]


WITHIN_3_DAYS_OF_A_DOWNLOAD = (
    'chain(xEvent, timestamp, [A: WHAT(eventType = "download"), '
    'B: WHAT(eventType = "commerce.checkouts") WHEN(<= 3 days after A)])'
)


def test_a_step_timed_from_an_earlier_step_shows_the_time_it_used() -> None:
    # p11 downloaded on 03-01, 03-11, 03-12 and 03-14; the checkout of 03-13 is 12 days after
    # the first download, so the second is the one used
    result = explain_for("p11", WITHIN_3_DAYS_OF_A_DOWNLOAD)
    steps = [entry for entry in result.children if entry.text.startswith(("A:", "B:"))]
    assert result.verdict is True
    assert [(step.verdict, step.shown) for step in steps] == [
        (True, "first match at 2026-03-01T10:00:00Z (4 in all), the one at "
               "2026-03-11T10:00:00Z used"),
        (True, "first match at 2026-03-13T10:00:00Z, timed from A at 2026-03-11T10:00:00Z"),
    ]  # fmt: skip


def test_a_failed_timed_step_says_how_many_times_were_tried() -> None:
    text = WITHIN_3_DAYS_OF_A_DOWNLOAD.replace("<= 3 days", "< 1 day")
    result = explain_for("p11", text)
    assert result.verdict is False
    assert [(step.verdict, step.shown) for step in result.conditions()[1:]] == [
        (True, "first match at 2026-03-01T10:00:00Z (4 in all)"),
        (False, "no matching event after 2026-03-01T10:00:00Z, timed from A at "
                "2026-03-01T10:00:00Z (3 other times of A tried too)"),
    ]  # fmt: skip


def test_each_step_of_a_chain_of_timed_steps_shows_its_time() -> None:
    text = (
        'chain(xEvent, timestamp, [A: WHAT(eventType = "download") COUNT(2), '
        'B: WHAT(eventType = "commerce.checkouts") WHEN(<= 1 day after A), '
        'C: WHAT(eventType = "download") WHEN(< 2 days after B)])'
    )
    result = explain_for("p11", text)
    shown = [entry.shown for entry in result.conditions()[1:]]
    assert result.verdict is True
    assert shown == [
        "4 matching events, 2 needed, the one at 2026-03-12T10:00:00Z used",
        "first match at 2026-03-13T10:00:00Z, timed from A at 2026-03-12T10:00:00Z",
        "first match at 2026-03-14T10:00:00Z, timed from B at 2026-03-13T10:00:00Z",
    ]


def test_root_verdict_matches_evaluate_for_chains_timed_from_a_step() -> None:
    texts = [
        WITHIN_3_DAYS_OF_A_DOWNLOAD,
        'not(chain(xEvent, timestamp, [A: WHAT(eventType = "commerce.abandons"), '
        'B: WHAT(eventType = "commerce.purchases") WHEN(< 24 hours after A.timestamp)]))',
        'chain(xEvent, timestamp, [A: WHAT(eventType = "homePageView"), '
        'B: WHAT(eventType = "homePageView") WHEN(< 12 hours after A) COUNT(3)])',
    ]
    for text in texts:
        node = parse(text)
        for entry in PROFILES.values():
            expected = evaluate(node, entry["profile"], entry["events"], now=NOW)
            got = explain(node, entry["profile"], entry["events"], now=NOW)
            assert got.verdict is expected, (text, entry["id"])
