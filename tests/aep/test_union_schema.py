"""The union schema cache: per (base URL, org, sandbox, class), with a TTL, shared by clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from aep import AEPClient, clear_schema_cache, union_schema_cache
from tests.aep.conftest import FakeAEP, FakeTime, reply

SCHEMAS = "/data/foundation/schemaregistry/tenant/schemas"


@pytest.fixture(autouse=True)
def schema_clock(fake_time: FakeTime) -> Iterator[None]:
    real = union_schema_cache.clock
    union_schema_cache.clock = fake_time.clock
    yield
    union_schema_cache.clock = real


@pytest.fixture
def schemas(fake: FakeAEP) -> list[httpx.Request]:
    def answer(request: httpx.Request) -> httpx.Response:
        return reply(200, {"meta:altId": request.url.path.rsplit("/", 1)[1],
                           "sandbox": request.headers["x-sandbox-name"],
                           "properties": {"homeAddress": {"type": "object"}}})

    fake.default = answer
    return fake.requests


def test_the_union_schema_request(schemas: list[httpx.Request], aep_client: AEPClient) -> None:
    schema = aep_client.union_schema()
    assert schema["meta:altId"] == "_xdm.context.profile__union"
    request = schemas[0]
    assert request.url.path == f"{SCHEMAS}/_xdm.context.profile__union"
    assert request.headers["Accept"] == "application/vnd.adobe.xed-full+json;version=1"


def test_cached_per_sandbox_and_class_for_the_ttl(
        schemas: list[httpx.Request], fake_time: FakeTime,
        make_client: Callable[..., AEPClient]) -> None:
    prod, again, dev = make_client("prod"), make_client("prod"), make_client("dev")
    assert prod.union_schema()["sandbox"] == "prod"
    assert again.union_schema()["sandbox"] == "prod"  # another client, same connection
    assert dev.union_schema()["sandbox"] == "dev"
    prod.union_schema("_xdm.context.experienceevent")
    assert len(schemas) == 3
    fake_time.now += 299
    prod.union_schema()
    assert len(schemas) == 3
    fake_time.now += 1
    prod.union_schema()
    assert len(schemas) == 4


def test_clear_schema_cache(schemas: list[httpx.Request], aep_client: AEPClient) -> None:
    aep_client.union_schema()
    clear_schema_cache()
    aep_client.union_schema()
    assert len(schemas) == 2
