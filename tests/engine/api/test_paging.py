"""Every list of the API pages as AEP's do: a client written against Adobe's API, given a small
limit, follows ``_links.next.href`` from the first page until an empty href and so reads every
item exactly once, in as many requests as there are pages (no empty page at the end). Catalog
lists (objects keyed by id) carry no links among their ids and page by ``start``/``limit``."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from engine.models import Batch, BatchStatus, Dataset
from engine.tasks import preview_run
from tests.engine.api.conftest import DEFINITIONS, UPS, Api, definition_body
from tests.engine.api.store import PEOPLE, build_store

pytestmark = pytest.mark.django_db

CATALOG = "/data/foundation/catalog"
EXPORT = "/data/foundation/export"
SANDBOXES = "/data/foundation/sandbox-management/sandboxes"
MERGE_POLICIES = f"{UPS}/config/mergePolicies"
DATASET_BODY = {"schemaRef": {"id": "https://ns.adobe.com/xdm/context/profile__union",
                              "contentType": "application/vnd.adobe.xed+json;version=1"}}
COUNTRIES = ["US", "FR", "DE"]


def resolve(href: str, collection: str) -> str:
    """A next link as Adobe's docs tell clients to read it: absolute URLs as they are,
    ``@/name`` relative to the collection's parent (§9.1), ``/entities?…`` under
    ``/access`` (§9.2), paths from the host root as they are."""
    if href.startswith("@/"):
        return collection.rsplit("/", 1)[0] + "/" + href[2:]
    if href.startswith("/entities"):
        return f"{UPS}/access{href}"
    parts = urlsplit(href)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def follow(api: Api, path: str, params: dict[str, Any], items: Callable[[Any], list[Any]],
           **headers: str | None) -> tuple[list[Any], list[dict[str, Any]]]:
    """Every item, reading only ``_links.next.href``; and every page's body."""
    found: list[Any] = []
    pages: list[dict[str, Any]] = []
    response = api.get(path, params, **headers)
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append(body)
        found += items(body)
        href = body["_links"]["next"]["href"]
        if href == "":
            return found, pages
        assert len(pages) < 50, "the links never end"
        response = api.get(resolve(href, path), **headers)


@pytest.fixture
def store(api: Api, tmp_path: Path) -> dict[str, Any]:
    """More of everything than one page of 2 holds: 6 profiles, 6 definitions, 5 merge
    policies, 5 segment jobs, 3 export jobs, 5 sandboxes, a batch of 5 files, 4 datasets."""
    build_store(tmp_path / "input")
    definitions = [api.post(DEFINITIONS, definition_body(
        name=f"{country} {n}", value=f'homeAddress.countryCode = "{country}"')).json()["id"]
        for n in range(2) for country in COUNTRIES]
    for name in ("A", "B", "C", "D"):
        assert api.post(MERGE_POLICIES, {"name": name, "schema": {
            "name": "_xdm.context.profile"}}).status_code == 200
    jobs = [api.post(f"{UPS}/segment/jobs", [{"segmentId": definitions[n]}]).json()["id"]
            for n in range(5)]
    for name in ("Exports", "More exports"):
        assert api.post(f"{CATALOG}/dataSets", {**DATASET_BODY, "name": name}).status_code == 201
    dataset = Dataset.objects.get(sandbox="prod", name="Exports")
    exports = [api.post(f"{UPS}/export/jobs", {
        "fields": "person.name", "filter": {"segments": [{"segmentId": definitions[n]}]},
        "destination": {"datasetId": dataset.id},
        "schema": {"name": "_xdm.context.profile"}}).json()["id"] for n in range(3)]
    # a batch of several files (an export writes one): the row Catalog and Data Access read
    batch = Batch.objects.create(dataset=dataset, status=BatchStatus.SUCCESS, files=[
        {"name": f"part-{n:05d}.parquet", "size": 100 + n, "records": n} for n in range(5)])
    preview = api.post(f"{UPS}/preview", {"predicateExpression": 'person.name.lastName = "Doe"',
                                          "predicateType": "pql/text"}).json()
    preview_run(preview["previewId"])
    return {"definitions": definitions, "jobs": jobs, "exports": exports, "batch": batch.id,
            "preview": preview["previewId"]}


@pytest.mark.parametrize("limit", [1, 2, 4])
def test_a_client_following_only_the_links_reads_every_item_once(
    make_api: Any, store: dict[str, Any], limit: int
) -> None:
    api: Api = make_api(sandboxes=("prod", "dev", "qa", "stage", "test"))
    lists: list[tuple[str, dict[str, Any], Callable[[Any], list[Any]], dict[str, Any], set[Any]]]
    lists = [
        (DEFINITIONS, {"limit": limit}, lambda b: [s["id"] for s in b["segments"]], {},
         set(store["definitions"])),
        (MERGE_POLICIES, {"limit": limit}, lambda b: [p["name"] for p in b["children"]], {},
         {"A", "B", "C", "D", "Default timestamp-ordered"}),
        (f"{UPS}/segment/jobs", {"limit": limit}, lambda b: [j["id"] for j in b["children"]],
         {}, set(store["jobs"])),
        (f"{UPS}/export/jobs", {"limit": limit}, lambda b: [j["id"] for j in b["records"]], {},
         set(store["exports"])),
        (f"{EXPORT}/batches/{store['batch']}/files", {"limit": limit},
         lambda b: [f["dataSetFileId"] for f in b["data"]], {},
         {f"{store['batch']}-{n}" for n in range(1, 6)}),
        (f"{UPS}/preview/{store['preview']}", {"limit": limit},
         lambda b: [next(iter(r)) for r in b["results"]], {}, None),
        (f"{UPS}/access/entities", {"schema.name": "_xdm.context.experienceevent",
                                    "relatedEntityId": "ann@example.com",
                                    "relatedEntityIdNS": "Email", "limit": limit},
         lambda b: [c["entityId"] for c in b["children"]], {}, None),
        (SANDBOXES, {"limit": limit}, lambda b: [s["name"] for s in b["sandboxes"]],
         {"x_sandbox_name": None}, {"prod", "dev", "qa", "stage", "test"}),
    ]
    for path, params, items, headers, expected in lists:
        found, pages = follow(api, path, params, items, **headers)
        assert len(found) == len(set(found)), (path, found)
        if expected is not None:
            assert set(found) == expected, path
        else:  # the preview's members and ann's events: counted from the store
            assert len(found) == (len(PEOPLE) if "preview" in path else 2), (path, found)
        # exactly the pages the items fill: the last item's page has the empty href
        assert len(pages) == math.ceil(len(found) / limit), (path, limit, len(pages))
        assert all(page["_links"]["next"]["href"] for page in pages[:-1])


@pytest.mark.parametrize("limit", [1, 2, 4])
def test_link_next_and_links_next_agree_where_adobe_documents_link(
    api: Api, store: dict[str, Any], limit: int
) -> None:
    """Definitions and export jobs: a client reading ``link.next`` (a string) pages the same."""
    for path, key, expected in ((DEFINITIONS, "segments", store["definitions"]),
                                (f"{UPS}/export/jobs", "records", store["exports"])):
        body = api.get(path, {"limit": limit}).json()
        found = [item["id"] for item in body[key]]
        while body["link"].get("next"):
            assert body["link"]["next"] == body["_links"]["next"]["href"]
            body = api.get(body["link"]["next"]).json()
            found += [item["id"] for item in body[key]]
        assert body["_links"]["next"]["href"] == ""
        assert sorted(found) == sorted(expected)


@pytest.mark.parametrize(("path", "total"), [(f"{CATALOG}/dataSets", 4),
                                             (f"{CATALOG}/batches", 3)])
@pytest.mark.parametrize("limit", [1, 2, 3])
def test_catalog_lists_page_by_start_and_limit_with_only_ids_as_keys(
    api: Api, store: dict[str, Any], path: str, total: int, limit: int
) -> None:
    found: list[str] = []
    start = 0
    while True:
        response = api.get(path, {"start": start, "limit": limit})
        body = response.json()
        assert all(isinstance(value, dict) and "_links" not in key for key, value in body.items())
        found += list(body)
        if len(body) < limit:  # Catalog's paging: a short (or empty) page is the last
            break
        start += len(body)
    assert len(found) == len(set(found)) == total
    everything = api.get(path, {"limit": 100}).json()
    assert set(found) == set(everything)
