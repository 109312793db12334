"""The public API of pql.sql: to_sql, compile_segment's fallback, the profile filter, table
names, quoting (nothing a user types can break out of the SQL), and purity of the module."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sqlfixture import Fixture, build_database, eval_fixture  # noqa: E402

from pql import ast  # noqa: E402
from pql.errors import PQLError  # noqa: E402
from pql.evaluator import evaluate  # noqa: E402
from pql.parser import parse  # noqa: E402
from pql.schema import Schema  # noqa: E402
from pql.sql import (  # noqa: E402
    PQLNotCompiledError,
    Tables,
    compile_segment,
    quote_identifier,
    quote_string,
    to_sql,
)

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)
LAMBDA_MAP = 'identityMap.map((K, V) => mapEntry(K, V.count())).get("ECID") = 2'
NASTY = "x'; DROP TABLE profiles; --\\ \"quoted\" \\' ''"
ODD_FIELD = 'it\'s "odd"; DROP TABLE events --'


@cache
def fixture() -> Fixture:
    return eval_fixture()


def members(sql: str, fx: Fixture | None = None) -> set[str]:
    return {row[0] for row in (fx or fixture()).con.execute(sql).fetchall()}


def reference(node: ast.Node, fx: Fixture | None = None) -> set[str]:
    entries = (fx or fixture()).entries
    return {
        pid
        for pid, entry in entries.items()
        if evaluate(node, entry["profile"], entry["events"], now=NOW)
    }


def test_to_sql_gives_the_sql_of_an_exact_compilation() -> None:
    node = parse('homeAddress.countryISO = "US"')
    sql = to_sql(node, now=NOW, schema=fixture().schema)
    assert sql == compile_segment(node, now=NOW, schema=fixture().schema).sql
    assert members(sql) == {"p1", "p3", "p7", "p10", "p11"}


def test_to_sql_refuses_a_definition_that_needs_the_evaluator() -> None:
    with pytest.raises(PQLNotCompiledError) as raised:
        to_sql(parse(LAMBDA_MAP), now=NOW, schema=fixture().schema)
    assert isinstance(raised.value, PQLError)
    assert raised.value.fallbacks == ("map with a lambda over a map",)


def test_a_fallback_conjunct_leaves_the_others_as_a_filter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    node = parse(f'homeAddress.countryISO = "US" and {LAMBDA_MAP}')
    with caplog.at_level(logging.WARNING, logger="pql.sql"):
        compiled = compile_segment(node, now=NOW, schema=fixture().schema)
    assert not compiled.exact
    assert compiled.fallbacks == ("map with a lambda over a map",)
    assert "map with a lambda" in caplog.text
    candidates = members(compiled.sql)
    assert candidates == {"p1", "p3", "p7", "p10", "p11"}
    assert reference(node) == {"p11"} <= candidates


def test_a_compiler_bug_falls_back_instead_of_failing(monkeypatch: pytest.MonkeyPatch) -> None:
    import pql.sql

    def broken(*args: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(pql.sql._Compiler, "like", broken)
    node = parse('homeAddress.countryISO = "US" and workEmail.address like "%.edu"')
    compiled = compile_segment(node, now=NOW, schema=fixture().schema)
    assert compiled.fallbacks == ("an internal error of the compiler",)
    assert reference(node) == {"p1", "p3"} <= members(compiled.sql)


def test_the_profile_filter_is_anded_in() -> None:
    node = parse("xEvent")
    schema = fixture().schema
    everyone = members(to_sql(node, now=NOW, schema=schema))
    assert members(to_sql(node, now=NOW, schema=schema, profile_filter="_bucket < 0")) == set()
    sampled = members(to_sql(node, now=NOW, schema=schema, profile_filter="p._bucket < 512"))
    buckets = dict(fixture().con.execute("SELECT _profile_id, _bucket FROM profiles").fetchall())
    assert sampled == {pid for pid in everyone if buckets[pid] < 512}


def test_the_event_filter_applies_to_every_read_of_the_events() -> None:
    schema = fixture().schema
    text = (
        'xEvent[eventType = "download"].count() >= 0 and not(chain(xEvent, timestamp, '
        '[A: WHAT(eventType = "homePageView")])) and (sum X.commerce.order.priceTotal + '
        "Y.commerce.order.priceTotal over X from xEvent, Y from xEvent) >= 0"
    )
    node = parse(text)
    assert members(to_sql(node, now=NOW, schema=schema)) == reference(node)
    filtered = to_sql(node, now=NOW, schema=schema, event_filter="_bucket < 0")
    assert filtered.count("_bucket < 0") == 4  # one per events table read
    # Without events every profile has a zero sum and no chain.
    assert members(filtered) == set(fixture().entries)
    sampled = to_sql(parse("xEvent"), now=NOW, schema=schema, event_filter="_bucket < 512")
    buckets = dict(fixture().con.execute("SELECT _profile_id, _bucket FROM events").fetchall())
    assert members(sampled) == {pid for pid, value in buckets.items() if value < 512}


def test_table_names_are_parameters() -> None:
    con = fixture().con
    for table in ("profiles", "events", "memberships"):
        con.execute(f'CREATE OR REPLACE VIEW "snap ""{table}""" AS SELECT * FROM {table}')
    tables = Tables(
        profiles='snap "profiles"', events='snap "events"', memberships='snap "memberships"'
    )
    node = parse('inSegment("seg-gold") and xEvent[eventType = "commerce.checkouts"]')
    sql = to_sql(node, now=NOW, schema=fixture().schema, tables=tables)
    assert '"snap ""events"""' in sql
    assert members(sql) == reference(node) == {"p1"}


def test_unknown_fields_compile_to_null() -> None:
    schema = fixture().schema
    assert members(to_sql(parse('nosuch.field = "x"'), now=NOW, schema=schema)) == set()
    assert members(to_sql(parse('not(nosuch.field = "x")'), now=NOW, schema=schema)) == set(
        fixture().entries
    )
    assert members(to_sql(parse("xEvent[nosuch > 1]"), now=NOW, schema=schema)) == set()


def test_quoting_doubles_quotes_and_keeps_backslashes() -> None:
    assert quote_string("it's") == "'it''s'"
    assert quote_string("a\\b") == "'a\\b'"
    assert quote_identifier('we"ird') == '"we""ird"'


@cache
def nasty_fixture() -> Fixture:
    entries = [
        {
            "id": "n1",
            "profile": {
                "homeAddress": {"city": NASTY},
                ODD_FIELD: {ODD_FIELD: NASTY},
                "segmentMembership": {"ups": {NASTY: {"status": "realized"}}},
            },
            "events": [{"timestamp": "2026-03-14T10:00:00Z", "eventType": NASTY}],
        },
        {"id": "n2", "profile": {"homeAddress": {"city": "x"}, ODD_FIELD: {ODD_FIELD: "y"}},
         "events": []},
    ]  # fmt: skip
    return build_database(entries)


def odd_path() -> ast.Node:
    return ast.Field(ODD_FIELD, ast.Field(ODD_FIELD))


@pytest.mark.parametrize(
    "node",
    [
        ast.Binary("=", ast.Field("city", ast.Field("homeAddress")), ast.Literal(NASTY)),
        ast.Binary("like", ast.Field("city", ast.Field("homeAddress")), ast.Literal(NASTY)),
        ast.Method("contains", ast.Field("city", ast.Field("homeAddress")), (ast.Literal("'"),)),
        ast.Binary(
            "in",
            ast.Field("city", ast.Field("homeAddress")),
            ast.ListLiteral((ast.Literal(NASTY), ast.Literal("'"))),
        ),  # fmt: skip
        ast.Binary("=", odd_path(), ast.Literal(NASTY)),
        ast.Binary("!=", odd_path(), ast.Literal("y")),
        ast.Call("inSegment", (ast.Literal(NASTY),)),
        ast.Filter(
            ast.Field("xEvent"), ast.Binary("=", ast.Field("eventType"), ast.Literal(NASTY))
        ),  # fmt: skip
        ast.Binary("=", ast.Field("eventType", ast.Field("xEvent")), ast.Literal(NASTY)),
    ],
    ids=[
        "equals",
        "like",
        "contains",
        "in",
        "odd-field",
        "odd-field-differs",
        "inSegment",
        "event-filter",
        "event-path",
    ],  # fmt: skip
)
def test_strings_and_field_names_cannot_break_out_of_the_sql(node: ast.Node) -> None:
    fx = nasty_fixture()
    sql = to_sql(node, now=NOW, schema=fx.schema)
    found = members(sql, fx)
    assert found == reference(node, fx)
    assert found <= {"n1"}
    tables = {row[0] for row in fx.con.execute("SHOW TABLES").fetchall()}
    assert {"profiles", "events", "memberships", "identities"} <= tables


def test_the_odd_field_is_found_exactly() -> None:
    fx = nasty_fixture()
    node = ast.Binary("=", odd_path(), ast.Literal(NASTY))
    assert members(to_sql(node, now=NOW, schema=fx.schema), fx) == {"n1"}


def test_pql_sql_imports_neither_duckdb_nor_django() -> None:
    code = (
        "import sys, pql.sql; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('duckdb', 'django')))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_event_timestamp_is_the_contract_column_even_when_the_schema_omits_it() -> None:
    schema = Schema.from_dict({}, {"eventType": "string"})
    node = parse('xEvent[eventType = "flight" and timestamp occurs last month]')
    sql = to_sql(node, now=NOW, schema=schema)
    assert members(sql) == reference(node) == {"p6"}


def test_an_object_without_declared_fields_falls_back() -> None:
    schema = Schema.from_dict({"homeAddress": "object", "person.name.firstName": "string"})
    compiled = compile_segment(parse('homeAddress.countryISO = "US"'), now=NOW, schema=schema)
    assert compiled.fallbacks == ("a field of an object the schema does not describe",)
    assert to_sql(parse('person.name.lastName = "x"'), now=NOW, schema=schema)


def test_compile_needs_no_database() -> None:
    schema = Schema.from_dict({"homeAddress.countryISO": "string"})
    sql = to_sql(parse('homeAddress.countryISO = "US"'), now=NOW, schema=schema)
    assert sql.startswith("SELECT p._profile_id")
    assert "'US'" in sql
