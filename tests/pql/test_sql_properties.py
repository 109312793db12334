"""Differential properties beyond the hand-written fixture: the compiled SQL and the evaluator
agree at any execution time, and on profiles recombined from the fixture's parts (fields
swapped between profiles, events moved between profiles and shifted in time)."""

from __future__ import annotations

import copy
import random
import sys
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

from sqlfixture import FIXTURES, Fixture, build_database, infer_schema  # noqa: E402
from test_eval_cases import CASES  # noqa: E402

from pql import ast  # noqa: E402
from pql.ast import Node  # noqa: E402
from pql.errors import PQLError  # noqa: E402
from pql.evaluator import evaluate  # noqa: E402
from pql.parser import parse  # noqa: E402
from pql.printer import to_text  # noqa: E402
from pql.schema import Schema  # noqa: E402
from pql.sql import compile_segment  # noqa: E402
from pql.tokens import COMPARISON_OPS  # noqa: E402
from pql.values import parse_timestamp  # noqa: E402

ENTRIES: list[dict[str, Any]] = FIXTURES["profiles"]
TIME_GROUPS = ("time.cases", "chain.cases", "select.cases", "arrays.cases")
# Offsets that land events on the boundaries the programs test (days, weeks, hours, months).
SHIFTS = [timedelta(0), timedelta(days=1), timedelta(days=-1), timedelta(days=7),
          timedelta(days=-7), timedelta(hours=3), timedelta(hours=-24), timedelta(days=-30),
          timedelta(days=14), timedelta(minutes=-15), timedelta(days=-365)]  # fmt: skip


@cache
def schema() -> Schema:
    return infer_schema(ENTRIES)


@cache
def nodes() -> list[tuple[str, Node]]:
    return [(case.name, parse(case.text)) for case in CASES]


def disagreements(fx: Fixture, programs: list[tuple[str, Node]], now: datetime) -> list[str]:
    wrong = []
    for name, node in programs:
        try:
            expected = {
                pid
                for pid, entry in fx.entries.items()
                if evaluate(node, entry["profile"], entry["events"], now=now)
            }
        except PQLError:
            continue  # the evaluator cannot run it on this data: nothing to compare
        compiled = compile_segment(node, now=now, schema=fx.schema)
        found = {row[0] for row in fx.con.execute(compiled.sql).fetchall()}
        if compiled.exact and found != expected:
            wrong.append(f"{name}: sql {sorted(found)} evaluator {sorted(expected)}")
        elif not compiled.exact and not expected <= found:
            wrong.append(f"{name}: candidates {sorted(found)} miss {sorted(expected - found)}")
    return wrong


@cache
def base_fixture() -> Fixture:
    return build_database(ENTRIES, schema())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    now=st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
    )
)
def test_time_programs_agree_at_any_now(now: datetime) -> None:
    programs = [
        (name, node)
        for (name, node), case in zip(nodes(), CASES, strict=True)
        if case.where.split(":")[0] in TIME_GROUPS
    ]
    assert disagreements(base_fixture(), programs, now) == []


def _shifted(event: dict[str, Any], shift: timedelta) -> dict[str, Any]:
    moved = copy.deepcopy(event)
    moment = parse_timestamp(moved.get("timestamp"))
    if moment is not None:
        moved["timestamp"] = (moment + shift).isoformat().replace("+00:00", "Z")
    return moved


@st.composite
def recombined(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Three to six profiles whose top-level fields and events come from random fixture
    profiles; events keep their shape but may move in time."""
    out = []
    for number in range(draw(st.integers(3, 6))):
        base = draw(st.sampled_from(ENTRIES))
        profile = copy.deepcopy(base["profile"])
        for donor in draw(st.lists(st.sampled_from(ENTRIES), max_size=3)):
            for name, value in donor["profile"].items():
                if draw(st.booleans()):
                    profile[name] = copy.deepcopy(value)
        for name in list(profile):
            if draw(st.integers(0, 5)) == 0:
                del profile[name]
        events = []
        for donor in draw(st.lists(st.sampled_from(ENTRIES), max_size=3)):
            for event in donor["events"]:
                if draw(st.booleans()):
                    events.append(_shifted(event, draw(st.sampled_from(SHIFTS))))
        out.append({"id": f"r{number}", "profile": profile, "events": events})
    return out


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=recombined())
def test_programs_agree_on_recombined_profiles(entries: list[dict[str, Any]]) -> None:
    fx = build_database(entries, schema())
    now = datetime.fromisoformat(FIXTURES["now"].replace("Z", "+00:00"))
    assert disagreements(fx, nodes(), now) == []


# --- mutated example programs -------------------------------------------------------------------


def _leaf_values(value: Any, out: dict[type, set[Any]]) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _leaf_values(item, out)
    elif isinstance(value, list):
        for item in value:
            _leaf_values(item, out)
    elif isinstance(value, bool | int | float | str):
        out.setdefault(type(value), set()).add(value)


@cache
def literal_pool() -> dict[type, list[Any]]:
    found: dict[type, set[Any]] = {int: {0, 1, 2, 3, 5, 7, 24, 30, 100, 2000}, float: {9.5, 0.5}}
    for entry in ENTRIES:
        _leaf_values(entry["profile"], found)
        for event in entry["events"]:
            _leaf_values(event, found)
    for node in (node for _, node in nodes()):
        for inner in node.walk():
            if isinstance(inner, ast.Literal):
                found.setdefault(type(inner.value), set()).add(inner.value)
    return {kind: sorted(values, key=repr) for kind, values in found.items()}


def mutate(node: ast.Node, rng: random.Random) -> ast.Node:
    """A nearby program: literals swapped for fixture values of the same type, comparison and
    occurs operators, amounts and units changed, and/or flipped, conditions negated."""
    changes: dict[str, Any] = {}
    for item in fields(node):
        if item.name == "span":
            continue
        value = getattr(node, item.name)
        if isinstance(value, ast.Node):
            changes[item.name] = mutate(value, rng)
        elif isinstance(value, tuple):
            changes[item.name] = tuple(
                mutate(part, rng) if isinstance(part, ast.Node)
                else (part[0], mutate(part[1], rng)) if isinstance(part, tuple)
                else part
                for part in value
            )  # fmt: skip
    node = replace(node, **changes) if changes else node
    roll = rng.random()
    if isinstance(node, ast.Literal) and roll < 0.4:
        pool = literal_pool().get(type(node.value))
        if pool:
            return ast.Literal(rng.choice(pool))
    if isinstance(node, ast.Binary) and node.op in COMPARISON_OPS and roll < 0.3:
        return replace(node, op=rng.choice(sorted(COMPARISON_OPS)))
    if isinstance(node, ast.TimeWindow) and node.op is not None and roll < 0.5:
        return replace(
            node, op=rng.choice(sorted(COMPARISON_OPS)), amount=rng.choice([0, 1, 2, 3, 7, 24]),
            unit=rng.choice(["hours", "days", "weeks", "months", "years", "minutes"]),
        )  # fmt: skip
    if isinstance(node, ast.And) and roll < 0.2:
        return ast.Or(node.operands)
    if isinstance(node, ast.Or) and roll < 0.2:
        return ast.And(node.operands)
    if isinstance(node, ast.Binary | ast.Method | ast.Occurs | ast.Chain) and roll > 0.93:
        return ast.Not(node)
    return node


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(CASES) - 1), seed=st.integers(0, 2**32 - 1))
def test_mutated_programs_agree(index: int, seed: int) -> None:
    name, node = nodes()[index]
    mutated = mutate(node, random.Random(seed))
    now = datetime.fromisoformat(FIXTURES["now"].replace("Z", "+00:00"))
    assert disagreements(base_fixture(), [(to_text(mutated), mutated)], now) == []
