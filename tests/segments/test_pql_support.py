from __future__ import annotations

import pql
from pql.functions import FUNCTIONS
from pql.schema import Schema
from segments.pql_support import (
    EMPTY_DEFINITION,
    diagnose,
    field_catalog,
    function_reference,
    offset_of,
    schema_from_unions,
)

SCHEMA = Schema.from_dict({"homeAddress.countryCode": "string", "person.birthYear": "integer"},
                          {"commerce.order.priceTotal": "number", "timestamp": "date-time"})


def test_syntax_error_offsets_cover_the_reported_span_on_a_later_line() -> None:
    text = 'person.birthYear > 1980 and\n  homeAddress.countryCode = "US" annd x'
    [problem] = diagnose(text, SCHEMA)
    assert problem.severity == "error" and problem.code == "syntax"
    assert problem.line == 2
    assert text[problem.start:problem.end] == text.split("\n")[1][problem.column - 1:
                                                                  problem.end_column - 1]
    assert problem.start > len("person.birthYear > 1980 and\n") - 1


def test_unknown_field_is_underlined_where_it_was_typed() -> None:
    text = 'homeAddress.countryCod = "US"'
    [problem] = diagnose(text, SCHEMA)
    assert problem.code == "unknown-field"
    assert "countryCod" in text[problem.start:problem.end]


def test_without_a_schema_only_syntax_is_checked() -> None:
    assert diagnose('anything.at.all = "US"', None) == []


def test_empty_text_asks_for_a_definition() -> None:
    [problem] = diagnose("  \n ", SCHEMA)
    assert problem.message == EMPTY_DEFINITION


def test_offset_of_clamps_to_the_text() -> None:
    assert offset_of("ab\ncd", 2, 2) == 4
    assert offset_of("ab\ncd", 9, 9) == 5


def test_field_catalog_lists_profile_then_event_fields_with_types() -> None:
    entries = field_catalog(SCHEMA)
    assert [(e.collection, e.path) for e in entries][:2] == [
        ("profile", "homeAddress.countryCode"), ("profile", "person.birthYear")]
    assert ("xEvent", "commerce.order.priceTotal", "number") in [
        (e.collection, e.path, e.type) for e in entries]


def test_schema_from_unions_reads_json_schema_properties() -> None:
    profile = {"type": "object", "properties": {"person": {"type": "object", "properties": {
        "birthYear": {"type": "integer"}}}}}
    schema = schema_from_unions(profile, None)
    assert schema is not None and str(schema.profile["person.birthYear"]) == "integer"
    assert schema_from_unions(None, None) is None


def test_every_function_has_a_parsing_example() -> None:
    entries = function_reference()
    assert {entry.name for entry in entries} == set(FUNCTIONS)
    for entry in entries:
        pql.parse(entry.example)
