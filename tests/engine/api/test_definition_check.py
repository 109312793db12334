"""One judge of a definition on the engine's API: POST /segment/definitions, PATCH
/segment/definitions/{id} and POST /preview refuse what pql.check finds an error in — checked
against the sandbox's union schema (the one the Schema Registry serves, which the editor reads)
with the sandbox's segment definitions as the ids inSegment may name — with a 400 in AEP's
shape carrying the first error's message and, for pql/text, its line and columns; the same
answer on all three routes. Warnings never refuse, the programs of tests/engine/programs.pql are
accepted over the demo data they were written for, and the conversion endpoint only parses.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

import pql
from engine.api import errors
from pql.schema import NO_FIELDS_AT_ALL, Problem, Schema
from tests.engine.api.conftest import DEFINITIONS, UPS, Api, definition_body
from tests.engine.api.test_bad_input import assert_aep_error, row_counts
from tests.engine.conftest import DEMO_SANDBOX, DemoStore
from tests.engine.test_differential import DEMO_PROGRAMS

pytestmark = pytest.mark.django_db

PREVIEW = f"{UPS}/preview"
REGISTRY = "/data/foundation/schemaregistry/tenant/schemas"
FULL = "application/vnd.adobe.xed-full+json;version=1"
EXISTING = "Loyal customers"  # a definition of the demo sandbox, made by the fixture

# (text, what its first error must say): unknown fields, a misspelling, unknown segments, a
# segment named instead of its id, type mismatches — each parses, none can be evaluated.
INVALID = [
    ("nosuch.field = 1", ['"nosuch"']),
    ('homeAdress.countryCode = "US"', ['"homeAdress"', 'Did you mean "homeAddress"?']),
    ('inSegment("no-such-segment")', ['"no-such-segment"']),
    (f'inSegment("{EXISTING}")', [f'named "{EXISTING}"', "write inSegment(\"{id}\")"]),
    ('loyalty.points = "many"', ['"loyalty.points"', "number"]),
    ('xEvent[eventType = "commerce.purchases"].sum(productListItems.priceTotal) > 500',
     ["sum", '"productListItems.priceTotal"']),
    ('homeAddress.countryCode = "US" and\n  person.name.firstName + 1 > 2',
     ['"person.name.firstName"']),
]
INVALID_IDS = [text.split("(")[0].split(" ")[0][:24] for text, _ in INVALID]


@pytest.fixture
def demo_api(make_api: Any, demo_store: DemoStore, settings: Any) -> Api:
    settings.ENGINE_DATA_DIR = demo_store.engine_dir
    return make_api(sandboxes=(DEMO_SANDBOX, "prod")).in_sandbox(DEMO_SANDBOX)


@pytest.fixture
def existing(demo_api: Api) -> dict[str, Any]:
    response = demo_api.post(DEFINITIONS, definition_body(name=EXISTING,
                                                          value="loyalty.points > 1000"))
    assert response.status_code == 200, response.content
    return dict(response.json())


@pytest.fixture
def target(demo_api: Api, existing: dict[str, Any]) -> dict[str, Any]:
    """Another definition, to PATCH (a definition's own id is no segment it may use)."""
    response = demo_api.post(DEFINITIONS, definition_body(name="Target",
                                                          value="loyalty.points > 10"))
    assert response.status_code == 200, response.content
    return dict(response.json())


def editors_schema(api: Api) -> Schema:
    """The schema as the dashboard's editor builds it: from the Schema Registry's unions."""
    unions = [api.get(f"{REGISTRY}/{quote(name, safe='')}", Accept=FULL).json()
              for name in ("_xdm.context.profile__union", "_xdm.context.experienceevent__union")]
    return Schema.from_json_schema(*unions)


def first_error(api: Api, text: str, existing: dict[str, Any]) -> Problem:
    problems = pql.check(pql.parse(text), editors_schema(api), source=text,
                         segments={existing["id"]: existing["name"]})
    return next(problem for problem in problems if problem.severity == "error")


def refusal(text: str, problem: Problem) -> dict[str, Any]:
    """What the API must answer: AEP's error item with the checker's message and place."""
    return {"code": errors.VALIDATION_TYPE,
            "message": errors.PQL_INVALID.format(
                error=f"{problem.message} (line {problem.line}, column {problem.column})"),
            "line": problem.line, "column": problem.column, "endColumn": problem.end_column}


@pytest.mark.parametrize(("text", "says"), INVALID, ids=INVALID_IDS)
def test_an_invalid_definition_is_refused_alike_by_create_patch_and_preview(
    demo_api: Api, existing: dict[str, Any], target: dict[str, Any], text: str, says: list[str]
) -> None:
    problem = first_error(demo_api, text, existing)
    for part in says:
        assert part.replace("{id}", existing["id"]) in problem.message
    expected = refusal(text, problem)
    before = row_counts()
    answers = {
        "create": demo_api.post(DEFINITIONS, definition_body(name="New", value=text)),
        "patch": demo_api.patch(f"{DEFINITIONS}/{target['id']}",
                                definition_body(name="Target", value=text)),
        "preview": demo_api.post(PREVIEW, {"predicateExpression": text,
                                           "predicateType": "pql/text"}),
    }
    for route, response in answers.items():
        body = assert_aep_error(response, 400)
        assert body["errors"]["400"] == [expected], route
        assert body["title"] == expected["message"]
    assert row_counts() == before
    assert demo_api.get(f"{DEFINITIONS}/{target['id']}").json() == target


@pytest.mark.parametrize(("text", "says"), INVALID, ids=INVALID_IDS)
def test_an_invalid_pql_json_definition_is_refused_with_the_message_alone(
    demo_api: Api, existing: dict[str, Any], target: dict[str, Any], text: str, says: list[str]
) -> None:
    """pql/json has no text the client wrote: the message, without a position."""
    problem = first_error(demo_api, text, existing)
    value = json.dumps(pql.to_json(pql.parse(text)))
    before = row_counts()
    for response in (
            demo_api.post(DEFINITIONS, definition_body(name="New", value=value, fmt="pql/json")),
            demo_api.patch(f"{DEFINITIONS}/{target['id']}",
                           definition_body(name="Target", value=value, fmt="pql/json")),
            demo_api.post(PREVIEW, {"predicateExpression": value, "predicateType": "pql/json"})):
        body = assert_aep_error(response, 400)
        assert body["errors"]["400"] == [{
            "code": errors.VALIDATION_TYPE,
            "message": errors.PQL_INVALID.format(error=problem.message)}]
    assert row_counts() == before


def test_the_conversion_endpoint_only_parses(demo_api: Api) -> None:
    for text, _ in INVALID:
        response = demo_api.post(f"{UPS}/segment/conversion", definition_body(value=text))
        assert response.status_code == 200, (text, response.content)


@pytest.mark.parametrize("text", DEMO_PROGRAMS)
def test_the_demo_programs_are_accepted_by_create_and_preview(
    demo_api: Api, existing: dict[str, Any], text: str
) -> None:
    created = demo_api.post(DEFINITIONS, definition_body(name="Program", value=text))
    assert created.status_code == 200, created.content
    as_json = json.dumps(pql.to_json(pql.parse(text)))
    renamed = definition_body(name="Program (json)", value=as_json, fmt="pql/json")
    response = demo_api.patch(f"{DEFINITIONS}/{created.json()['id']}", renamed)
    assert response.status_code == 200, response.content
    preview = demo_api.post(PREVIEW, {"predicateExpression": text, "predicateType": "pql/text"})
    assert preview.status_code == 201, preview.content


def test_a_definition_may_name_a_segment_of_its_sandbox(demo_api: Api,
                                                       existing: dict[str, Any]) -> None:
    text = f'inSegment("{existing["id"]}") and homeAddress.countryCode = "US"'
    assert demo_api.post(DEFINITIONS, definition_body(name="Loyal in the US",
                                                      value=text)).status_code == 200
    assert demo_api.post(PREVIEW, {"predicateExpression": text}).status_code == 201


def test_warnings_never_refuse(demo_api: Api, existing: dict[str, Any]) -> None:
    total = "xEvent.commerce.order.priceTotal"
    text = (f"{total}.max() > 1 and {total}.min() > 1 and {total}.sum() > 1 "
            f"and {total}.average() > 1")
    problems = pql.check(pql.parse(text), editors_schema(demo_api), source=text)
    assert {p.severity for p in problems} == {"warning"}  # too many aggregations, no error
    assert demo_api.post(DEFINITIONS, definition_body(name="Busy", value=text)).status_code == 200
    assert demo_api.post(PREVIEW, {"predicateExpression": text}).status_code == 201


def test_a_sandbox_without_data_knows_no_field(demo_api: Api) -> None:
    prod = demo_api.in_sandbox("prod")
    text = 'homeAddress.countryCode = "US"'
    message = NO_FIELDS_AT_ALL.format(path="homeAddress", where="", what="profile")
    for response in (prod.post(DEFINITIONS, definition_body(value=text)),
                     prod.post(PREVIEW, {"predicateExpression": text})):
        body = assert_aep_error(response, 400)
        assert body["title"] == errors.PQL_INVALID.format(error=f"{message} (line 1, column 1)")


def test_a_definition_cannot_use_itself(demo_api: Api, existing: dict[str, Any]) -> None:
    """As the editor refuses it: inSegment of the definition's own id, in either format."""
    own = existing["id"]
    message = errors.DEFINITION_SELF_REFERENCE.format(id=own)
    text = f'loyalty.points > 1 and\n  inSegment("{own}")'
    response = demo_api.patch(f"{DEFINITIONS}/{own}", definition_body(name=EXISTING,
                                                                       value=text))
    item = assert_aep_error(response, 400)["errors"]["400"][0]
    assert item["message"] == errors.PQL_INVALID.format(error=f"{message} (line 2, column 13)")
    assert (item["line"], item["column"], item["endColumn"]) == (2, 13, 13 + len(own) + 2)
    as_json = json.dumps(pql.to_json(pql.parse(text)))
    response = demo_api.patch(f"{DEFINITIONS}/{own}", definition_body(
        name=EXISTING, value=as_json, fmt="pql/json"))
    assert assert_aep_error(response, 400)["title"] == errors.PQL_INVALID.format(error=message)
    assert demo_api.get(f"{DEFINITIONS}/{own}").json() == existing
    # another definition may use it
    other = demo_api.post(DEFINITIONS, definition_body(name="Other", value=text))
    assert other.status_code == 200, other.content
