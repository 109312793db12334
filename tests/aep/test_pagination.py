"""Pagination follows the API's own links, in each API's own shape (spec §2.2, §4.3, §5.3,
§7.2, §7.3, §9.1, §9.2), and never leaves the connection's host."""

from __future__ import annotations

from typing import Any

import httpx

from aep import AEPClient
from tests.aep.conftest import FakeAEP, reply

UPS = "/data/core/ups"


def definition(n: int) -> dict[str, Any]:
    return {"id": f"def-{n}", "name": f"segment {n}", "schema": {"name": "_xdm.context.profile"},
            "expression": {"type": "PQL", "format": "pql/text", "value": "true"}}


def routed(fake: FakeAEP, pages: dict[str, Any]) -> None:
    """Answer each path-with-query from ``pages`` (keys as the client must request them)."""

    def answer(request: httpx.Request) -> httpx.Response:
        key = request.url.raw_path.decode()
        assert key in pages, f"unexpected request {key}"
        return reply(200, pages[key])

    fake.default = answer


def requested(fake: FakeAEP) -> list[str]:
    return [r.url.raw_path.decode() for r in fake.requests]


def test_definitions_follow_link_next(fake: FakeAEP, aep_client: AEPClient) -> None:
    routed(fake, {
        f"{UPS}/segment/definitions?start=0&limit=2": {
            "segments": [definition(1), definition(2)],
            "page": {"totalCount": 3, "totalPages": 2, "pageSize": 2, "limit": 2},
            "link": {"next": f"{UPS}/segment/definitions?start=2&limit=2"}},
        f"{UPS}/segment/definitions?start=2&limit=2": {
            "segments": [definition(3)], "page": {"totalCount": 3}, "link": {}},
    })
    assert [d.id for d in aep_client.definitions(limit=2)] == ["def-1", "def-2", "def-3"]
    assert len(fake.requests) == 2


def test_definitions_page(fake: FakeAEP, aep_client: AEPClient) -> None:
    routed(fake, {f"{UPS}/segment/definitions?start=20&limit=20&sort=name%3Aasc": {
        "segments": [definition(21)], "page": {"totalCount": 21}, "link": {}}})
    page = aep_client.definitions_page(start=20, sort="name:asc")
    assert [d.name for d in page.items] == ["segment 21"]
    assert (page.total_count, page.next_link) == (21, None)


def test_segment_jobs_follow_links_next_href_even_absolute(fake: FakeAEP,
                                                          aep_client: AEPClient) -> None:
    routed(fake, {
        f"{UPS}/segment/jobs?start=0&limit=1&status=SUCCEEDED": {
            "_page": {"totalCount": 2, "pageSize": 1},
            "children": [{"id": "job-1", "status": "SUCCEEDED"}],
            # an absolute link, on the platform's host with its port: we keep only the path
            "_links": {"next": {"href": "https://platform.adobe.io:443/data/core/ups/segment/"
                                        "jobs?start=1&limit=1&status=SUCCEEDED"}}},
        f"{UPS}/segment/jobs?start=1&limit=1&status=SUCCEEDED": {
            "_page": {"totalCount": 2, "pageSize": 1},
            "children": [{"id": "job-2", "status": "SUCCEEDED"}], "_links": {"next": {}}},
    })
    assert [j.id for j in aep_client.segment_jobs(status="SUCCEEDED", limit=1)] == [
        "job-1", "job-2"]


def test_a_link_to_another_host_stays_on_ours(fake: FakeAEP, aep_client: AEPClient) -> None:
    routed(fake, {
        f"{UPS}/segment/jobs?start=0&limit=100": {
            "children": [{"id": "job-1"}],
            "_links": {"next": {"href": "https://evil.example.com/data/core/ups/segment/jobs"
                                        "?start=1"}}},
        f"{UPS}/segment/jobs?start=1": {"children": [], "_links": {}},
    })
    list(aep_client.segment_jobs())
    assert {r.url.host for r in fake.requests} == {"platform.adobe.io"}


def test_merge_policies_follow_at_links(fake: FakeAEP, aep_client: AEPClient) -> None:
    policy = {"id": "timestampOrdered-none-mp", "name": "profile-default",
              "schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "none"},
              "attributeMerge": {"type": "timestampOrdered"}, "default": True, "version": 1}
    routed(fake, {
        f"{UPS}/config/mergePolicies?limit=100": {
            "_page": {"totalCount": 2, "pageSize": 1}, "children": [policy],
            "_links": {"next": {"href": "@/mergePolicies?start=K1&orderBy=&limit=100"}}},
        f"{UPS}/config/mergePolicies?start=K1&orderBy=&limit=100": {
            "_page": {"totalCount": 2, "pageSize": 1},
            "children": [{**policy, "id": "ups-default", "default": False}], "_links": {}},
    })
    policies = aep_client.merge_policies()
    assert [(p.id, p.is_default, p.identity_graph) for p in policies] == [
        ("timestampOrdered-none-mp", True, "none"), ("ups-default", False, "none")]


def test_export_jobs_follow_the_offset_cursor(fake: FakeAEP, aep_client: AEPClient) -> None:
    routed(fake, {
        f"{UPS}/export/jobs?limit=2": {
            "records": [{"id": 11037, "status": "SUCCEEDED",
                         "destination": {"dataSetId": "5b7c", "batchId": "b1"}},
                        {"id": 11036, "status": "FAILED", "destination": {"datasetId": "5b7c"},
                         "errors": [{"code": "0100000003", "msg": "Error in Export Job"}]}],
            "page": {"sortField": "createdTime", "sort": "desc", "pageSize": 2},
            # Adobe's docs print the link relative to the UPS base
            "link": {"next": "/export/jobs/?limit=2&offset=1538573416687_722"}},
        f"{UPS}/export/jobs/?limit=2&offset=1538573416687_722": {
            "records": [{"id": 722, "status": "SUCCEEDED",
                         "destination": {"datasetId": "5b7c", "segmentPerBatch": True,
                                         "batches": [{"segmentId": "s", "batchId": "b2"},
                                                     {"segmentId": "t", "batchId": "b3"}]}}],
            "page": {}, "link": {"next": ""}},
    })
    jobs = list(aep_client.export_jobs(limit=2))
    assert [(j.id, j.status, j.dataset_id, j.batch_ids) for j in jobs] == [
        ("11037", "SUCCEEDED", "5b7c", ["b1"]), ("11036", "FAILED", "5b7c", []),
        ("722", "SUCCEEDED", "5b7c", ["b2", "b3"])]
    assert jobs[1].errors[0].code == "0100000003"


def test_catalog_pages_by_start_and_limit_until_a_short_page(fake: FakeAEP,
                                                            aep_client: AEPClient) -> None:
    def batch(n: int) -> dict[str, Any]:
        return {"status": "success", "relatedObjects": [{"type": "dataSet", "id": "ds"}],
                "metrics": {"recordsWritten": n}, "created": 1558522305708}

    routed(fake, {
        "/data/foundation/catalog/batches?orderBy=desc%3Acreated&dataSet=ds&start=0&limit=2":
            {"b1": batch(1), "b2": batch(2)},
        "/data/foundation/catalog/batches?orderBy=desc%3Acreated&dataSet=ds&start=2&limit=2":
            {"b3": batch(3)},
    })
    batches = list(aep_client.batches(dataset_id="ds", limit=2))
    assert [(b.id, b.dataset_id, b.records_written) for b in batches] == [
        ("b1", "ds", 1), ("b2", "ds", 2), ("b3", "ds", 3)]


def test_batch_files_follow_absolute_links(fake: FakeAEP, aep_client: AEPClient) -> None:
    base = "/data/foundation/export/batches/b1/files"
    item = {"dataSetFileId": "8dce-1", "records": "2", "size": "249058", "isValid": True}
    routed(fake, {
        f"{base}?start=0&limit=100": {
            "data": [item], "_page": {"limit": 1, "count": 1},
            "_links": {"next": {"href": f"https://platform.adobe.io{base}?start=1&limit=1"},
                       "page": {"href": f"{base}?start=0&limit=1", "templated": True}}},
        f"{base}?start=1&limit=1": {"data": [{**item, "dataSetFileId": "8dce-2"}],
                                    "_page": {"limit": 1, "count": 1}, "_links": {}},
    })
    files = aep_client.batch_files("b1")
    assert [(f.id, f.records, f.size) for f in files] == [("8dce-1", 2, 249058),
                                                         ("8dce-2", 2, 249058)]


def test_entity_events_follow_relative_entities_links(fake: FakeAEP,
                                                      aep_client: AEPClient) -> None:
    first = "schema.name=_xdm.context.experienceevent&relatedSchema.name=_xdm.context.profile"
    routed(fake, {
        f"{UPS}/access/entities?{first}&relatedEntityId=ann%40example.com&limit=1"
        "&orderby=%2Btimestamp&relatedEntityIdNS=Email": {
            "_page": {"count": 1, "next": "e2"},
            "children": [{"entityId": "e1", "relatedEntityId": "X1", "timestamp": 1}],
            "_links": {"next": {"href": "/entities?start=e2&limit=1"}}},
        f"{UPS}/access/entities?start=e2&limit=1": {
            "_page": {"count": 1, "next": ""},
            "children": [{"entityId": "e2", "relatedEntityId": "X1", "timestamp": 2}],
            "_links": {}},
    })
    events = list(aep_client.entity_events("ann@example.com", "Email", limit=1))
    assert [(e.entity_id, e.timestamp) for e in events] == [("e1", 1), ("e2", 2)]


def test_a_link_loop_ends(fake: FakeAEP, aep_client: AEPClient) -> None:
    fake.default = lambda request: reply(200, {
        "children": [{"id": "job"}],
        "_links": {"next": {"href": f"{UPS}/segment/jobs?start=1"}}})
    assert len(list(aep_client.segment_jobs())) == 2
    assert len(fake.requests) == 2


def test_sandboxes_in_adobes_shape(fake: FakeAEP, aep_client: AEPClient) -> None:
    fake.script = [reply(200, {
        "sandboxes": [
            {"name": "prod", "title": "Production", "state": "active", "type": "production",
             "isDefault": True, "region": "VA7", "createdDate": "2019-09-04 04:57:24"},
            {"name": "dev-2", "title": "Development 2", "state": "creating",
             "type": "development", "isDefault": False, "region": "VA7"}],
        "_page": {"limit": 100, "count": 2},
        "_links": {"page": {"href": "https://platform.adobe.io:443/data/foundation/"
                                    "sandbox-management/sandboxes?&limit={limit}"
                                    "&offset={offset}", "templated": True}}})]
    sandboxes = aep_client.sandboxes()
    assert [(s.name, s.state, s.is_default, s.region) for s in sandboxes] == [
        ("prod", "active", True, "VA7"), ("dev-2", "creating", False, "VA7")]
    assert len(fake.requests) == 1


def test_bulk_get_sends_at_most_100_ids_per_request(fake: FakeAEP,
                                                   aep_client: AEPClient) -> None:
    import json

    def answer(request: httpx.Request) -> httpx.Response:
        ids = [item["id"] for item in json.loads(request.read())["ids"]]
        results: dict[str, Any] = {i: {"id": i, "status": "PROCESSING"} for i in ids
                                   if i != "gone"}
        results["gone"] = {"errors": {"404": [{"code": 404, "message": "Not found."}]}}
        return reply(207, {"results": results})

    fake.default = answer
    ids = [f"job-{n}" for n in range(250)] + ["gone"]
    found = aep_client.bulk_get_segment_jobs(ids)
    assert len(found) == 250 and "gone" not in found
    assert len(fake.requests) == 3


def test_absolute_links_under_a_base_path(fake: FakeAEP) -> None:
    from tests.aep.conftest import CREDS

    client = AEPClient("https://gateway.example.com/aep", CREDS, transport=fake.transport())
    routed(fake, {
        "/aep/data/core/ups/segment/jobs?start=0&limit=100": {
            "children": [{"id": "job-1"}],
            "_links": {"next": {"href": "https://gateway.example.com/aep/data/core/ups/"
                                        "segment/jobs?start=1"}}},
        "/aep/data/core/ups/segment/jobs?start=1": {"children": [{"id": "job-2"}]},
    })
    assert [j.id for j in client.segment_jobs()] == ["job-1", "job-2"]


def test_batch_downloads_follow_nested_file_ids(fake: FakeAEP, aep_client: AEPClient) -> None:
    files = "/data/foundation/export/files"
    routed(fake, {
        "/data/foundation/export/batches/b1/files?start=0&limit=100": {
            "data": [{"dataSetFileId": "dir-1"}], "_links": {}},
        f"{files}/dir-1": {"data": [
            {"dataSetFileId": "part-1", "_links": {"self": {"href": f"{files}/part-1"}}},
            {"name": "top.parquet", "length": "10",
             "_links": {"self": {"href": f"{files}/dir-1?path=top.parquet"}}}]},
        f"{files}/part-1": {"data": [{"name": "a.parquet", "length": "20"},
                                     {"name": "b.parquet", "length": "30"}]},
    })
    found = [(file_id, entry.name, entry.length)
             for file_id, entry in aep_client.batch_downloads("b1")]
    assert found == [("dir-1", "top.parquet", 10), ("part-1", "a.parquet", 20),
                     ("part-1", "b.parquet", 30)]


LAST = {"next": {"href": ""}}  # AEP's last page (Adobe's entities example; the engine's too)


def test_an_empty_next_href_ends_every_linked_list(fake: FakeAEP,
                                                   aep_client: AEPClient) -> None:
    """The last page as AEP (and the built-in engine) sends it: ``_links.next.href`` empty,
    and beside it ``link: {}`` (definitions) or ``link.next`` empty (export jobs)."""
    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/segment/definitions"):
            return reply(200, {"segments": [definition(1)], "page": {"totalCount": 1},
                               "link": {}, "_links": LAST})
        if path.endswith("/export/jobs"):
            return reply(200, {"records": [{"id": 1, "status": "NEW"}], "page": {},
                               "link": {"next": ""}, "_links": LAST})
        if path.endswith("/files"):
            return reply(200, {"data": [{"dataSetFileId": "b1-1", "records": "1", "size": "9"}],
                               "_page": {"limit": 100, "count": 1},
                               "_links": {**LAST, "page": {"href": "x", "templated": True}}})
        key = {"jobs": "children", "mergePolicies": "children", "entities": "children",
               "sandboxes": "sandboxes"}[path.rsplit("/", 1)[1]]
        item = {"name": "prod"} if key == "sandboxes" else {"id": "one", "entityId": "e1"}
        return reply(200, {"_page": {"count": 1, "next": ""}, key: [item], "_links": LAST})

    fake.default = answer
    for read in (lambda: list(aep_client.definitions(limit=1)),
                 lambda: list(aep_client.export_jobs(limit=1)),
                 lambda: aep_client.batch_files("b1"),
                 lambda: list(aep_client.segment_jobs(limit=1)),
                 aep_client.merge_policies,
                 lambda: list(aep_client.entity_events("ann@example.com", "Email", limit=1)),
                 aep_client.sandboxes):
        fake.requests.clear()
        assert len(read()) == 1
        assert len(fake.requests) == 1, requested(fake)
