"""check(node, schema): unknown fields, type mismatches and the §11.2 guardrails."""

from __future__ import annotations

import pytest

from pql import check, parse
from pql.schema import FieldType, Problem, Schema

SCHEMA = Schema.from_dict(
    {
        "homeAddress.countryISO": "string",
        "homeAddress.stateProvinceISO": "string",
        "homeAddress.city": "string",
        "workAddress.countryISO": "string",
        "person.birthYear": "integer",
        "person.birthDate": "date",
        "person.isVip": "boolean",
        "person.name.firstName": "string",
        "person.favoriteColors": "array<string>",
        "person.orders": "array<object>",
        "person.orders.price": "number",
        "person.orders.storeId": "string",
        "person.orders.lines": "array<object>",
        "person.orders.lines.sku": "string",
        "identityMap": "map<array<object>>",
        "identityMap.*.id": "string",
        "identityMap.*.primary": "boolean",
        "segmentMembership": "map<map<object>>",
        "segmentMembership.*.*.status": "string",
        "_repo.modifyDate": "date-time",
        "extra": "object",
    },
    {
        "_id": "string",
        "timestamp": "date-time",
        "eventType": "string",
        "commerce.order.priceTotal": "number",
        "commerce.order.currencyCode": "string",
        "productListItems": "array<object>",
        "productListItems.SKU": "string",
        "productListItems.name": "string",
        "metrics.commerce.abandons.value": "number",
    },
)


def problems(text: str, schema: Schema = SCHEMA) -> list[Problem]:
    return check(parse(text), schema, source=text)


def messages(text: str) -> list[str]:
    return [problem.message for problem in problems(text)]


@pytest.mark.parametrize(
    "text",
    [
        'homeAddress.countryISO = "US" and homeAddress.stateProvinceISO in ["CA", "OR"]',
        "homeAddress",
        'person.birthYear >= 2000 and person.birthYear = "1990"',
        'person.isVip = "true"',
        'select X from xEvent where X.commerce.order.currencyCode = "USD"',
        "xEvent.metrics.commerce.abandons.value > 0",
        'xEvent[productListItems[SKU = "PS" or ^^.homeAddress.countryISO = "US"]]',
        'identityMap.get("ECID").id = "x" and "Email" in identityMap.keys()',
        'segmentMembership.get("ups").get("s1").status in ["realized", "existing"]',
        "person.orders.storeId.distinct().count() > 1",
        "person.orders.sum(price) > 100",
        '"red" in person.favoriteColors',
        "person.birthDate occurs > 21 years before today",
        "_repo.modifyDate occurs after date(2019, 4, 1)",
        'chain(xEvent, timestamp, [A: WHAT(eventType = "a") WHEN(< 7 days before now)])',
        "extra.anything.goes = 1",
        "(sum X.commerce.order.priceTotal over X from xEvent) > 10",
        'person.name.firstName.startsWith("J", false)',
        "person.birthDate = date(1990, 1, 1)",
    ],
)
def test_valid_definitions_have_no_problems(text: str) -> None:
    assert problems(text) == []


def test_unknown_field_with_did_you_mean_and_position() -> None:
    text = 'homeAddress.countryIS = "US"'
    (problem,) = problems(text)
    assert problem == Problem(
        severity="error",
        message='There is no field "homeAddress.countryIS". Did you mean "homeAddress.countryISO"?',
        code="unknown-field",
        span=(0, 21),
        line=1,
        column=1,
        end_column=22,
    )


def test_unknown_top_level_field() -> None:
    assert messages('homeAdress.countryISO = "US"') == [
        'There is no field "homeAdress". Did you mean "homeAddress"?'
    ]


def test_unknown_field_without_a_close_name() -> None:
    assert messages("zzz = 1") == ['There is no field "zzz".']


def test_did_you_mean_ignores_case() -> None:
    assert messages('homeaddress.countryISO = "US"') == [
        'There is no field "homeaddress". Did you mean "homeAddress"?'
    ]


def test_unknown_event_field_names_the_events() -> None:
    text = "select X from xEvent where X.commerce.order.priceTotl > 5"
    (problem,) = problems(text)
    assert problem.message == (
        'There is no field "X.commerce.order.priceTotl" on events. '
        'Did you mean "X.commerce.order.priceTotal"?'
    )
    assert (problem.line, problem.column) == (1, 28)


def test_unknown_field_inside_a_filter_and_a_chain_step() -> None:
    assert messages('xEvent[productListItems[SKU = "PS" and nmae = "x"]]') == [
        'There is no field "nmae" on events. Did you mean "name"?'
    ]
    assert messages('chain(xEvent, timestamp, [A: WHAT(eventTyp = "a")])') == [
        'There is no field "eventTyp" on events. Did you mean "eventType"?'
    ]


def test_unknown_field_of_a_map_value() -> None:
    assert messages('identityMap.get("ECID").idd = "x"') == [
        'There is no field "identityMap.get("ECID").idd". '
        'Did you mean "identityMap.get("ECID").id"?'
    ]


def test_position_on_a_later_line() -> None:
    text = 'homeAddress.countryISO = "US"\n  and person.birthYaer > 1980'
    (problem,) = problems(text)
    assert (problem.line, problem.column, problem.end_column) == (2, 7, 23)


def test_comparing_text_with_a_number_is_a_type_mismatch() -> None:
    (problem,) = problems("homeAddress.countryISO = 5")
    assert problem.code == "type-mismatch"
    assert problem.severity == "error"
    assert problem.message == (
        '"homeAddress.countryISO" is text and cannot be compared with a number: 5.'
    )


def test_comparing_a_number_with_non_numeric_text_is_a_type_mismatch() -> None:
    assert messages('person.birthYear > "abc"') == [
        '"person.birthYear" is a number and cannot be compared with text: "abc".'
    ]


def test_comparing_two_fields_of_different_types() -> None:
    assert messages("person.birthYear = homeAddress.city") == [
        '"person.birthYear" is a number and cannot be compared with text: homeAddress.city.'
    ]


def test_ordering_booleans_is_a_type_mismatch() -> None:
    assert messages("person.isVip > true") == [
        '"person.isVip" is true/false; it cannot be compared with < <= > >=.'
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('person.birthYear.startsWith("1")',
         'startsWith works on text, but "person.birthYear" is a number.'),
        ('person.birthYear like "19%"', 'like works on text, but "person.birthYear" is a number.'),
        ("person.name.firstName + 1 > 2",
         "'+' works on numbers, but \"person.name.firstName\" is text."),
        ('homeAddress.city.includes("x")',
         'includes works on a list, but "homeAddress.city" is text.'),
        ('homeAddress.countryISO.get("x") = 1',
         'get works on a map, but "homeAddress.countryISO" is text.'),
        ("person.isVip occurs today",
         'occurs works on dates and times, but "person.isVip" is true/false.'),
        ("person.isVip.getYear() = 2020",
         'getYear works on dates and times, but "person.isVip" is true/false.'),
        ("person.orders.sum(storeId) > 1",
         'sum works on numbers, but "storeId" is text.'),
        ("homeAddress.city.country = 1", '"homeAddress.city" is text; it has no field "country".'),
        ('person.birthYear in ["a", "b"]',
         '"person.birthYear" is a number and cannot be compared with text: ["a", "b"].'),
    ],
)  # fmt: skip
def test_type_mismatches(text: str, message: str) -> None:
    assert messages(text) == [message]


def test_three_chain_steps_are_fine_four_are_an_error() -> None:
    steps = [f'S{i}: WHAT(eventType = "e{i}")' for i in range(4)]
    three = f"chain(xEvent, timestamp, [{', '.join(steps[:3])}])"
    four = f"chain(xEvent, timestamp, [{', '.join(steps)}])"
    assert problems(three) == []
    (problem,) = problems(four)
    assert problem.severity == "error"
    assert problem.code == "too-many-steps"
    assert problem.message == (
        "This sequence has 4 steps; Adobe accepts at most 3 sequential events in a definition."
    )


def test_three_aggregations_are_fine_four_are_a_warning() -> None:
    three = "person.orders.sum(price) + person.orders.min(price) + person.orders.max(price) > 1"
    four = three.replace(" > 1", " + person.orders.count() > 1")
    assert problems(three) == []
    (problem,) = problems(four)
    assert problem.severity == "warning"
    assert problem.code == "too-many-aggregations"
    assert problem.message.startswith("This definition uses 4 aggregations")


def test_keyword_aggregations_count_too() -> None:
    one = "(sum X.commerce.order.priceTotal over X from xEvent)"
    text = " + ".join([one] * 4) + " > 1"
    assert [problem.code for problem in problems(text)] == ["too-many-aggregations"]


def test_two_levels_of_lists_are_fine_three_are_a_warning() -> None:
    assert problems('xEvent[productListItems[SKU = "PS"]]') == []
    text = "person.orders[lines[sku = ^^.person.orders.storeId.head()]].count() > 0"
    assert problems(text) == []
    deep = 'xEvent[productListItems[^^.person.orders[lines[sku = "x"]]]]'
    (problem,) = problems(deep)
    assert problem.severity == "warning"
    assert problem.code == "too-deep"
    assert problem.message == (
        "This condition looks 4 levels deep into lists; more than 2 levels can slow "
        "segmentation down."
    )


def test_select_variables_nest_when_one_reads_another() -> None:
    flat = "select X from xEvent, Y from xEvent, Z from xEvent"
    assert problems(flat) == []
    nested = (
        "select O from person.orders, L from O.lines, I from xEvent.productListItems "
        'where I.SKU = L.sku, J from I.name where J = "x"'
    )
    assert [problem.code for problem in problems(nested)] == []
    deeper = 'select O from person.orders, L from O.lines, M from L.sku where M = "x"'
    assert [problem.code for problem in problems(deeper)] == ["too-deep"]


def test_without_source_there_is_a_span_but_no_position() -> None:
    (problem,) = check(parse("zzz = 1"), SCHEMA)
    assert problem.span == (0, 3)
    assert problem.line is None


def test_empty_schema_reports_every_field_as_unknown() -> None:
    # a sandbox with no data has a union schema without fields: nothing can be checked true
    problems = check(parse('anything.at.all = "x" and xEvent[whatever = 1]'), Schema())
    assert [(p.code, p.message) for p in problems] == [
        ("unknown-field", 'There is no field "anything": this sandbox has no profile data yet, '
                          "so its union schema has no fields. Ingest data first."),
        ("unknown-field", 'There is no field "whatever" on events: this sandbox has no event '
                          "data yet, so its union schema has no fields. Ingest data first."),
    ]


def test_in_segment_names_a_known_segment_id() -> None:
    known = {"3a9c": "Cart abandoners"}
    assert check(parse('inSegment("3a9c")'), Schema(), segments=known) == []
    assert check(parse('inSegment("nope")'), Schema()) == []  # ids unknown: not checked
    [problem] = check(parse('inSegment("no-such-segment")'), Schema(), segments=known)
    assert (problem.code, problem.message) == (
        "unknown-segment", 'There is no segment with the id "no-such-segment" in this sandbox.')
    [by_name] = check(parse('inSegment("cart abandoners")'), Schema(), segments=known)
    assert by_name.message.endswith('To use the segment named "Cart abandoners", write '
                                    'inSegment("3a9c").')


def test_field_types_parse_and_print() -> None:
    assert str(FieldType.parse("map<array<object>>")) == "map<array<object>>"
    assert FieldType.parse("long").kind == "integer"
    with pytest.raises(ValueError, match="unknown field type"):
        FieldType.parse("strnig")


XDM_PROFILE = {
    "type": "object",
    "allOf": [
        {
            "properties": {
                "homeAddress": {
                    "type": "object",
                    "properties": {"countryCode": {"type": "string"}},
                }
            }
        }
    ],
    "properties": {
        "person": {
            "type": "object",
            "properties": {
                "birthDate": {"type": "string", "format": "date"},
                "favoriteColors": {"type": "array", "items": {"type": "string"}},
            },
        },
        "identityMap": {
            "type": "object",
            "additionalProperties": {
                "type": "array",
                "items": {"type": "object", "properties": {"id": {"type": "string"}}},
            },
        },
        "loyalty": {"$ref": "https://ns.adobe.com/xdm/mixins/loyalty"},
        "points": {"type": "integer", "meta:xdmType": "long"},
    },
}
XDM_EVENT = {
    "type": "object",
    "properties": {
        "timestamp": {"type": "string", "format": "date-time"},
        "productListItems": {
            "type": "array",
            "items": {"type": "object", "properties": {"SKU": {"type": "string"}}},
        },
    },
}


def test_schema_from_xdm_json_schema() -> None:
    schema = Schema.from_json_schema(XDM_PROFILE, XDM_EVENT)
    assert str(schema.profile["person.favoriteColors"]) == "array<string>"
    assert str(schema.profile["person.birthDate"]) == "date"
    assert str(schema.profile["identityMap"]) == "map<array<object>>"
    assert str(schema.profile["points"]) == "integer"
    assert str(schema.event["productListItems"]) == "array<object>"
    assert check(parse('homeAddress.countryCode = "US"'), schema) == []
    assert check(parse('identityMap.get("ECID").id = "x"'), schema) == []
    assert check(parse("loyalty.tier.whatever = 1"), schema) == []  # $ref: fields unknown
    assert [p.message for p in check(parse('homeAddress.countrycode = "US"'), schema)] == [
        'There is no field "homeAddress.countrycode". Did you mean "homeAddress.countryCode"?'
    ]
    assert [p.message for p in check(parse('xEvent[productListItems[sku = "x"]]'), schema)] == [
        'There is no field "sku" on events. Did you mean "SKU"?'
    ]


def test_every_example_program_can_be_checked() -> None:
    from test_eval_cases import CASES

    for case in CASES:
        found = check(parse(case.text), SCHEMA, source=case.text)
        assert all(isinstance(problem, Problem) for problem in found), case.name


def test_schema_as_a_plain_dict() -> None:
    schema = {"profile": {"person.birthYear": "integer"}, "xEvent": {"eventType": "string"}}
    assert check(parse('person.birthYear > 1 and xEvent[eventType = "x"]'), schema) == []
    assert [p.code for p in check(parse("person.birthyear > 1"), schema)] == ["unknown-field"]
    assert [p.code for p in check(parse("xEvent[eventTyp = 1]"), schema)] == ["unknown-field"]
