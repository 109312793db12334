"""Size limits of a definition, named in the refusal: its text (pql.parser.MAX_TEXT_LENGTH,
refused before it is read) and its parts (pql.schema.MAX_NODES, whatever the format). Issue 15:
a 680 KB chain of ORs, under the API's 1 MB body limit, took 37 s of a worker."""

from __future__ import annotations

import time

import pytest

from pql import PQLSyntaxError, check, from_json, parse, to_json, to_text
from pql.ast import Binary, ListLiteral, Literal, Or
from pql.parser import MAX_TEXT_LENGTH, TOO_LONG
from pql.schema import MAX_EVENT_READS, MAX_NODES, TOO_LARGE, TOO_MANY_READS, Schema
from pql.schema import TOO_LONG as TEXT_TOO_LONG

SCHEMA = Schema.from_dict({"personalEmail.address": "string"})
CLAUSE = 'personalEmail.address = "someone{n}@example.com"'


def or_chain(characters: int) -> str:
    clauses: list[str] = []
    size = 0
    while size < characters:
        clauses.append(CLAUSE.format(n=len(clauses)))
        size += len(clauses[-1]) + 4
    return " or ".join(clauses)


def test_the_680_kb_or_chain_is_refused_before_it_is_read() -> None:
    text = or_chain(680_000)
    started = time.perf_counter()
    with pytest.raises(PQLSyntaxError) as caught:
        parse(text)
    assert time.perf_counter() - started < 0.05  # reading it took a second
    assert caught.value.message == TOO_LONG.format(length=len(text), limit=MAX_TEXT_LENGTH)
    assert caught.value.message.endswith("a definition may have at most 65,536")
    assert (caught.value.line, caught.value.column) == (1, MAX_TEXT_LENGTH + 1)


def test_a_definition_just_within_the_limits_checks_clean_quickly() -> None:
    text = or_chain(MAX_TEXT_LENGTH - 100)
    assert len(text) <= MAX_TEXT_LENGTH
    started = time.perf_counter()
    assert check(parse(text), SCHEMA, source=text) == []
    assert time.perf_counter() - started < 1.0  # ~0.1 s here


def test_a_pql_json_tree_of_too_many_parts_is_refused_with_the_limit() -> None:
    clauses = [parse(CLAUSE.format(n=n)) for n in range(MAX_NODES // 4 + 1)]
    tree = to_json(Or(tuple(clauses)))
    node = from_json(tree)
    started = time.perf_counter()
    problems = check(node, SCHEMA)
    assert time.perf_counter() - started < 0.5
    assert [(p.code, p.message) for p in problems] == [
        ("too-large", TOO_LARGE.format(limit=MAX_NODES))]
    assert "more than 10,000 parts" in problems[0].message


def test_a_pql_json_tree_too_long_as_text_is_refused_with_the_limit() -> None:
    # few parts, long values: stored and run as its text, which pql.parse would refuse
    values = ListLiteral(tuple(Literal(f"{n:03}" + "x" * 997) for n in range(70)))
    node = from_json(to_json(Binary("in", parse("personalEmail.address"), values)))
    length = len(to_text(node))
    assert length > MAX_TEXT_LENGTH
    assert [(p.code, p.message) for p in check(node, SCHEMA)] == [
        ("too-large", TEXT_TOO_LONG.format(length=length, limit=MAX_TEXT_LENGTH))]


EVENT_CONDITION = '(select X from xEvent where X.eventType = "type{n}")'
EVENT_SCHEMA = Schema.from_dict({"personalEmail.address": "string"}, {"eventType": "string"})


def test_more_event_reads_than_the_limit_are_refused_at_the_first_one_over() -> None:
    text = " or ".join(EVENT_CONDITION.format(n=n) for n in range(MAX_EVENT_READS + 1))
    (problem,) = check(parse(text), EVENT_SCHEMA, source=text)
    assert (problem.code, problem.message) == (
        "too-complex", TOO_MANY_READS.format(limit=MAX_EVENT_READS))
    assert "in more than 100 places" in problem.message
    last = text.rindex("xEvent")
    assert problem.span == (last, last + len("xEvent"))


def test_as_many_event_reads_as_the_limit_check_clean() -> None:
    reads = [EVENT_CONDITION.format(n=n) for n in range(MAX_EVENT_READS - 2)]
    reads += ['$2.eventType = "type"', 'inSegment("seg-1")']
    text = " or ".join(reads)
    assert check(parse(text), EVENT_SCHEMA, source=text, segments={"seg-1": "One"}) == []
