"""Text no database can hold and JSON nested past a limit are 400s with AEP's error bodies,
never 500s, and store nothing: a NUL (\\u0000) anywhere — a JSON string (key or value) of every
write route, a query parameter, a header, the path, the IMS token form — an unpaired surrogate
in JSON, a body nested deeper than MAX_JSON_DEPTH, a pql/json tree deeper than its own limit.

PostgreSQL cannot store NUL in text: run this module with DATABASE_URL pointing at PostgreSQL
too (the answers must be the same)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from engine.api import errors
from engine.api.inputs import MAX_JSON_DEPTH, MAX_PQL_JSON_DEPTH
from tests.engine.api.conftest import DEFINITIONS, UPS, Api, definition_body, get_token
from tests.engine.api.seeded import US, Seeded, seed
from tests.engine.api.test_bad_input import (
    LISTS,
    WRITE_IDS,
    WRITES,
    assert_aep_error,
    fill,
    row_counts,
    send,
)

pytestmark = pytest.mark.django_db

NUL = "\x00"
TOKEN = "/ims/token/v3"


def nul_message(place: str) -> str:
    return errors.CHARACTER_INVALID.format(place=place, character=errors.CHARACTER_NUL)


def field(name: str) -> str:
    return errors.PLACE_FIELD.format(name=name)


def with_nul(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, a copy of ``value`` with a NUL added to the string at path), for every string."""
    if isinstance(value, str):
        yield path, value + NUL
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else key
            for where, changed in with_nul(item, inner):
                yield where, {**value, key: changed}
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for where, changed in with_nul(item, f"{path}[{index}]"):
                yield where, [*value[:index], changed, *value[index + 1:]]


@pytest.fixture
def seeded(api: Api, tmp_path: Path) -> Seeded:
    return seed(api, tmp_path / "input")


@pytest.mark.parametrize(("method", "path", "good", "bad"), WRITES, ids=WRITE_IDS)
def test_a_nul_in_any_json_string_of_a_write_is_400_naming_it(
    api: Api, seeded: Seeded, method: str, path: str, good: Any, bad: Any
) -> None:
    path = fill(path, seeded)
    body = fill(good, seeded)
    before = row_counts()
    variants = list(with_nul(body))
    assert variants  # every write body has strings
    for where, changed in variants:
        response = send(api, method, path, json.dumps(changed))
        error = assert_aep_error(response, 400)
        assert error["title"] == nul_message(field(where)), (where, error)
    if isinstance(body, dict):  # a NUL in a key, written as its escape in the message
        response = send(api, method, path, json.dumps({**body, "na\x00me": "x"}))
        assert assert_aep_error(response, 400)["title"] == nul_message(field("na\\u0000me"))
    assert row_counts() == before


@pytest.mark.parametrize(("method", "path", "good", "bad"), WRITES, ids=WRITE_IDS)
def test_json_nested_past_the_limit_is_400_before_it_is_read(
    api: Api, seeded: Seeded, method: str, path: str, good: Any, bad: Any
) -> None:
    path = fill(path, seeded)
    before = row_counts()
    too_deep = errors.JSON_TOO_DEEP.format(place=errors.PLACE_BODY, limit=MAX_JSON_DEPTH)
    # at the limit the body is read (and refused for what it says, not for its depth) ...
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert assert_aep_error(send(api, method, path, at_limit), 400)["title"] != too_deep
    # ... one level more, or a hundred thousand (a recursion bomb), is refused unread
    for depth in (MAX_JSON_DEPTH + 1, 100_000):
        for opening, closing in (("[", "]"), ('{"a":', "}")):
            body = opening * depth + "1" + closing * depth
            assert assert_aep_error(send(api, method, path, body), 400)["title"] == too_deep
    assert row_counts() == before


def test_brackets_inside_strings_are_text_not_nesting(api: Api, seeded: Seeded) -> None:
    body = definition_body(name='[{"', value=US, description='\\"' + "[{" * 5_000)
    response = api.post(DEFINITIONS, body)
    assert response.status_code == 200, response.content
    assert response.json()["description"] == body["description"]


def test_an_unpaired_surrogate_in_json_is_400(api: Api, seeded: Seeded) -> None:
    before = row_counts()
    body = json.dumps(definition_body(name="x", value=US)).replace('"x"', '"a\\ud800b"')
    response = send(api, "POST", DEFINITIONS, body)
    assert assert_aep_error(response, 400)["title"] == errors.CHARACTER_INVALID.format(
        place=field("name"), character=errors.CHARACTER_SURROGATE)
    assert row_counts() == before


@pytest.mark.parametrize("route", ["create", "patch", "preview", "conversion"])
def test_a_nul_inside_a_pql_expression_is_400_in_either_format(
    api: Api, seeded: Seeded, route: str
) -> None:
    """A NUL a pql/text escape writes, or one in a pql/json tree's strings (escaped once more
    inside the value, so no raw NUL is in the body)."""
    text = 'homeAddress.countryCode = "U\\u0000S"'
    tree = json.dumps({"nodeType": "fnApply", "fnName": "=", "params": [
        {"nodeType": "fieldLookup", "fieldName": "countryCode", "object": {
            "nodeType": "fieldLookup", "fieldName": "homeAddress",
            "object": {"nodeType": "parameterReference", "position": 1}}},
        {"nodeType": "literal", "literalType": "String", "value": "U\x00S"}]})
    assert "\x00" not in tree
    before = row_counts()
    for value, fmt in ((text, "pql/text"), (tree, "pql/json")):
        if route == "preview":
            response = api.post(f"{UPS}/preview", {"predicateExpression": value,
                                                   "predicateType": fmt})
        elif route == "patch":
            response = api.patch(f"{DEFINITIONS}/{seeded.definition_id}",
                                 definition_body(value=value, fmt=fmt))
        else:
            path = DEFINITIONS if route == "create" else f"{UPS}/segment/conversion"
            response = api.post(path, definition_body(value=value, fmt=fmt))
        error = assert_aep_error(response, 400)
        assert error["title"] == nul_message(field("expression.value.params[1].value")), fmt
    assert row_counts() == before


def test_a_pql_json_tree_nested_past_its_limit_is_400(api: Api, seeded: Seeded) -> None:
    before = row_counts()
    for depth in (MAX_PQL_JSON_DEPTH + 1, 10_000):
        value = '{"nodeType": "fnApply", "params": [' * depth + "1" + "]}" * depth
        for path in (DEFINITIONS, f"{UPS}/segment/conversion"):
            response = api.post(path, definition_body(value=value, fmt="pql/json"))
            assert assert_aep_error(response, 400)["title"] == errors.JSON_TOO_DEEP.format(
                place=field("expression.value"), limit=MAX_PQL_JSON_DEPTH)
        response = api.post(f"{UPS}/preview", {"predicateExpression": value,
                                               "predicateType": "pql/json"})
        assert assert_aep_error(response, 400)["status"] == 400
    assert row_counts() == before


PARAMETER_ROUTES = [*LISTS, f"{UPS}/access/entities",
                    "/data/foundation/schemaregistry/tenant/unions"]


@pytest.mark.parametrize("path", PARAMETER_ROUTES)
def test_a_nul_in_a_query_parameter_is_the_gateways_400(api: Api, seeded: Seeded,
                                                        path: str) -> None:
    headers = {"x_sandbox_name": None} if "sandbox-management" in path else {}
    for name, value in (("limit", "1\x00"), ("name", "x\x00"), ("sort\x00", "1")):
        response = api.get(path, {name: value}, **headers)
        assert assert_aep_error(response, 400) == {
            "error_code": errors.BAD_CHARACTER_CODE,
            "message": nul_message(errors.PLACE_QUERY.format(name=name.replace(NUL, "\\u0000")))}


def test_a_nul_in_the_path_is_400(api: Api, seeded: Seeded) -> None:
    before = row_counts()
    for method, path in (("get", f"{DEFINITIONS}/{seeded.definition_id}%00"),
                         ("delete", f"{DEFINITIONS}/%00"),
                         ("get", f"/data/foundation/catalog/dataSets/{seeded.dataset_id}%00"),
                         ("get", f"/data/foundation/export/files/{seeded.file_id}%00"),
                         ("get", "/data/core/ups/no%00such")):
        response = getattr(api, method)(path)
        assert assert_aep_error(response, 400)["message"] == nul_message(errors.PLACE_PATH)
    assert row_counts() == before


@pytest.mark.parametrize("header", ["x-sandbox-name", "x-request-id", "x-api-key",
                                    "x-gw-ims-org-id", "Authorization"])
def test_a_nul_in_a_header_is_the_gateways_400(api: Api, seeded: Seeded, header: str) -> None:
    before = row_counts()
    value = api.headers().get(header, "request-1")
    headers = {header.replace("-", "_"): value[:3] + NUL + value[3:]}
    for response in (api.get(DEFINITIONS, **headers),
                     api.post(f"{UPS}/segment/jobs", [{"segmentId": seeded.definition_id}],
                              **headers)):
        assert assert_aep_error(response, 400) == {
            "error_code": errors.BAD_CHARACTER_CODE,
            "message": nul_message(errors.PLACE_HEADER.format(name=header.lower()))}
    assert row_counts() == before


@pytest.mark.parametrize("name", ["client_id", "client_secret", "grant_type", "scope"])
def test_a_nul_in_the_token_form_is_ims_invalid_request(client: Client, make_api: Any,
                                                        name: str) -> None:
    api: Api = make_api()
    before = row_counts()
    form = {"grant_type": "client_credentials", "client_id": api.client_id,
            "client_secret": api.secret, "scope": "openid"}
    for where in ("form", "query"):
        changed = {**form, name: form[name] + NUL}
        if where == "form":  # form-encoded, as IMS is called
            response = client.post(TOKEN, urlencode(changed),
                                   content_type="application/x-www-form-urlencoded")
        else:
            response = client.post(f"{TOKEN}?{name}=x%00", urlencode(form),
                                   content_type="application/x-www-form-urlencoded")
        assert response.status_code == 400
        place = errors.PLACE_FORM if where == "form" else errors.PLACE_QUERY
        assert response.json() == {"error": "invalid_request",
                                   "error_description": nul_message(place.format(name=name))}
    assert row_counts() == before
    assert get_token(client, api.client_id, api.secret).status_code == 200  # still works


def test_the_token_form_as_multipart_with_a_nul_is_400_too(client: Client, make_api: Any) -> None:
    api: Api = make_api()
    response = client.post(TOKEN, {"grant_type": "client_credentials",  # the test client's
                                   "client_id": api.client_id + NUL,  # default: multipart
                                   "client_secret": "x"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    broken = client.post(TOKEN, b"--nope\r\n", content_type="multipart/form-data")
    assert broken.status_code == 400 and broken.json()["error"] == "invalid_request"
