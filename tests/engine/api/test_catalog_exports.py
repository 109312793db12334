"""Catalog datasets and batches, export jobs and Data Access through the REST API
(spec/aep-api.md §5, §7).

Celery is not running in tests: after each POST of a job the test calls the job's task
itself, synchronously, as a worker of the engine queue would.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from engine.api import services_jobs
from engine.api.views import catalog
from engine.exports import DESTINATION_MISSING
from engine.models import Batch, BatchStatus, Dataset, ExportJob
from engine.storage import sandbox_dir
from engine.tasks_jobs import export_job_run, segment_job_run
from tests.engine.api.conftest import DEFINITIONS, UPS, Api, definition_body
from tests.engine.api.store import build_store

pytestmark = pytest.mark.django_db

CATALOG = "/data/foundation/catalog"
EXPORT = "/data/foundation/export"
EXPORT_JOBS = f"{UPS}/export/jobs"
US = 'homeAddress.countryCode = "US"'
UNION = {"id": "https://ns.adobe.com/xdm/context/profile__union",
         "contentType": "application/vnd.adobe.xed+json;version=1"}


@pytest.fixture
def store(tmp_path: Path) -> None:
    build_store(tmp_path / "input")


def create_dataset(api: Api, name: str = "Segment Export") -> str:
    response = api.post(f"{CATALOG}/dataSets", {"name": name, "schemaRef": UNION})
    assert response.status_code == 201, response.content
    reference = response.json()
    assert len(reference) == 1 and reference[0].startswith("@/dataSets/")
    return str(reference[0].rsplit("/", 1)[1])


def segment(api: Api, name: str, value: str) -> str:
    seg = str(api.post(DEFINITIONS, definition_body(name=name, value=value)).json()["id"])
    job = api.post(f"{UPS}/segment/jobs", [{"segmentId": seg}]).json()
    segment_job_run(job["id"])  # the Celery task, run eagerly (no worker in tests)
    assert api.get(f"{UPS}/segment/jobs/{job['id']}").json()["status"] == "SUCCEEDED"
    return seg


def export(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(EXPORT_JOBS, body)
    assert response.status_code == 200, response.content
    job = response.json()
    assert isinstance(job["id"], int) and job["status"] == "NEW"
    export_job_run(job["id"])  # the Celery task, run eagerly (no worker in tests)
    return dict(api.get(f"{EXPORT_JOBS}/{job['id']}").json())


def export_body(dataset_id: str, seg: str, **extra: Any) -> dict[str, Any]:
    return {"fields": "person.name.firstName,personalEmail.address",
            "filter": {"segments": [{"segmentId": seg, "segmentNs": "ups",
                                     "status": ["realized", "existing"]}]},
            "destination": {"datasetId": dataset_id},
            "schema": {"name": "_xdm.context.profile"}, **extra}


def download(api: Api, batch_id: str) -> bytes:
    files = api.get(f"{EXPORT}/batches/{batch_id}/files").json()
    assert files["_page"]["count"] == len(files["data"]) == 1
    file_id = files["data"][0]["dataSetFileId"]
    listing = api.get(f"{EXPORT}/files/{file_id}").json()
    name = listing["data"][0]["name"]
    response = api.get(f"{EXPORT}/files/{file_id}", {"path": name})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    return b"".join(response.streaming_content)


# --- Catalog ---------------------------------------------------------------------------------

def test_dataset_create_list_get(api: Api) -> None:
    response = api.post(f"{CATALOG}/dataSets", {"name": "Segment Export", "description": "d",
                                                 "schemaRef": UNION})
    dataset_id = response.json()[0].split("/")[-1]
    assert response["Location"] == f"{CATALOG}/dataSets/{dataset_id}"
    row = Dataset.objects.get(id=dataset_id)
    assert (row.profile_enabled, row.union_persisting, row.sandbox) == (False, True, "prod")
    body = api.get(f"{CATALOG}/dataSets/{dataset_id}").json()
    assert list(body) == [dataset_id]
    assert body[dataset_id]["name"] == "Segment Export"
    assert body[dataset_id]["schemaRef"] == UNION
    assert body[dataset_id]["files"] == f"@/dataSetFiles?dataSetId={dataset_id}"
    assert body[dataset_id]["tags"] == {"unifiedProfile": ["enabled:false"]}
    trimmed = api.get(f"{CATALOG}/dataSets/{dataset_id}", {"properties": "name,schemaRef"})
    assert trimmed.json() == {dataset_id: {"name": "Segment Export", "schemaRef": UNION}}
    other = create_dataset(api, "Second")
    listing = api.get(f"{CATALOG}/dataSets", {"limit": 1, "orderBy": "asc:created"}).json()
    assert list(listing) == [dataset_id]
    assert list(api.get(f"{CATALOG}/dataSets", {"limit": 1, "start": 1,
                                                "orderBy": "asc:created"}).json()) == [other]
    assert set(api.get(f"{CATALOG}/dataSets").json()) == {dataset_id, other}
    for limit in ("0", "101", "x"):
        bad = api.get(f"{CATALOG}/dataSets", {"limit": limit})
        assert bad.status_code == 400
        assert bad.json()["detail"] == catalog.LIMIT_INVALID


@pytest.mark.parametrize(("body", "detail"), [
    ({"schemaRef": UNION}, "The field name is required."),
    ({"name": "x"}, services_jobs.SCHEMA_REF_INVALID),
    ({"name": "x", "schemaRef": {"id": "https://ns.adobe.com/xdm/context/experienceevent__union"}},
     services_jobs.SCHEMA_REF_INVALID),
    ({"name": 5, "schemaRef": UNION}, "The field name is required."),
])
def test_bad_dataset_bodies_are_400_and_store_nothing(api: Api, body: Any, detail: str) -> None:
    response = api.post(f"{CATALOG}/dataSets", body)
    assert response.status_code == 400
    assert response.json() == {"type": "/placeholder/type/uri", "status": 400,
                               "title": "BadRequestError", "detail": detail}
    assert not Dataset.objects.filter(sandbox="prod").exists()


def test_duplicate_dataset_name_is_400(api: Api) -> None:
    create_dataset(api)
    response = api.post(f"{CATALOG}/dataSets", {"name": "Segment Export", "schemaRef": UNION})
    assert response.status_code == 400
    assert Dataset.objects.filter(sandbox="prod").count() == 1


def test_other_sandboxes_datasets_and_batches_are_404(api: Api, store: None) -> None:
    dataset_id = create_dataset(api)
    batch = Batch.objects.filter(dataset__sandbox="prod").first()
    assert batch is not None
    dev = api.in_sandbox("dev")
    missing = dev.get(f"{CATALOG}/dataSets/{dataset_id}")
    assert missing.status_code == 404
    assert missing.json()["title"] == "NotFoundError"
    assert missing.json()["detail"] == services_jobs.DATASET_NOT_FOUND
    assert dev.get(f"{CATALOG}/dataSets").json() == {}
    assert dev.get(f"{CATALOG}/batches/{batch.id}").status_code == 404
    assert dev.get(f"{EXPORT}/batches/{batch.id}/files").status_code == 404
    assert dev.get(f"{EXPORT}/files/{batch.id}-1").status_code == 404
    assert dev.get(f"{CATALOG}/batches").json() == {}


def test_batches_list_filters_by_dataset_and_get_is_keyed(api: Api, store: None) -> None:
    crm = Dataset.objects.get(sandbox="prod", name="CRM")
    listing = api.get(f"{CATALOG}/batches", {"dataSet": crm.id}).json()
    assert len(listing) == 1
    batch_id, body = next(iter(listing.items()))
    assert body["status"] == "success"
    assert body["relatedObjects"] == [{"type": "dataSet", "id": crm.id}]
    assert body["metrics"]["recordsWritten"] == 6
    assert api.get(f"{CATALOG}/batches/{batch_id}").json() == {batch_id: body}
    assert len(api.get(f"{CATALOG}/batches").json()) == 2


# --- export jobs -----------------------------------------------------------------------------

def test_export_of_a_segment_writes_its_members_into_a_success_batch(api: Api,
                                                                     store: None) -> None:
    seg = segment(api, "US", US)
    dataset_id = create_dataset(api)
    job = export(api, export_body(dataset_id, seg))
    assert job["status"] == "SUCCEEDED", job["errors"]
    batch_id = job["destination"]["batchId"]
    assert job["destination"]["datasetId"] == dataset_id
    assert job["metrics"]["totalExportedProfileCounter"] == 4
    assert job["metrics"]["exportedProfileByNamespaceCounter"] == {"Email": 4}
    definition = api.get(f"{DEFINITIONS}/{seg}").json()
    assert job["mergePolicy"] == {"id": definition["mergePolicyId"], "version": 1}
    batch = api.get(f"{CATALOG}/batches/{batch_id}").json()[batch_id]
    assert batch["status"] == "success" and batch["metrics"]["recordsWritten"] == 4
    table = pq.read_table(io.BytesIO(download(api, batch_id)))
    assert table.column_names == ["identityMap", "person", "personalEmail",
                                  "segmentMembership"]
    rows = table.to_pylist()
    assert sorted(r["person"]["name"]["firstName"] for r in rows) == ["Ann", "Bo", "Di", "Flo"]
    assert all(r["person"] == {"name": {"firstName": r["person"]["name"]["firstName"]}}
               for r in rows)  # only the requested sub-field
    emails = {r["personalEmail"]["address"] for r in rows}
    assert emails == {f"{n}@example.com" for n in ("ann", "bo", "di", "flo")}
    ids = {dict(r["identityMap"])["Email"][0]["id"] for r in rows}
    assert ids == emails
    memberships = [dict(dict(r["segmentMembership"])["ups"])[seg] for r in rows]
    assert {m["status"] for m in memberships} == {"realized"}


def test_export_by_status_and_with_events(api: Api, store: None) -> None:
    seg = segment(api, "US", US)
    body = definition_body(name="US", value=f"{US} and loyalty.points > 100")
    assert api.patch(f"{DEFINITIONS}/{seg}", body).status_code == 200
    job = api.post(f"{UPS}/segment/jobs", [{"segmentId": seg}]).json()
    segment_job_run(job["id"])
    dataset_id = create_dataset(api)
    exited = export_body(dataset_id, seg)
    exited["filter"]["segments"][0]["status"] = ["exited"]
    done = export(api, exited)
    rows = pq.read_table(io.BytesIO(download(api, done["destination"]["batchId"]))).to_pylist()
    assert sorted(r["person"]["name"]["firstName"] for r in rows) == ["Bo", "Flo"]
    with_events = export_body(dataset_id, seg, additionalFields={"eventList": {
        "fields": "timestamp,commerce.order.priceTotal"}})
    done = export(api, with_events)
    rows = pq.read_table(io.BytesIO(download(api, done["destination"]["batchId"]))).to_pylist()
    by_name = {r["person"]["name"]["firstName"]: r for r in rows}
    assert set(by_name) == {"Ann", "Di"}
    assert [e["commerce"]["order"]["priceTotal"] for e in by_name["Ann"]["events"]] == [10, 20]
    assert by_name["Di"]["events"] is None


def test_export_to_an_unknown_dataset_fails_and_leaves_no_batch(api: Api, store: None) -> None:
    seg = segment(api, "US", US)
    before = Batch.objects.filter(dataset__sandbox="prod").count()
    job = export(api, export_body("5b7c86968f7b6501e21ba9df", seg))
    assert job["status"] == "FAILED"
    assert job["errors"] == [{"code": "0100000003", "callStack": "",
                              "msg": DESTINATION_MISSING.format(id="5b7c86968f7b6501e21ba9df")}]
    assert "batchId" not in job["destination"]
    assert Batch.objects.filter(dataset__sandbox="prod").count() == before


def test_failed_export_leaves_a_failed_batch_and_no_files(api: Api, store: None,
                                                          monkeypatch: Any) -> None:
    seg = segment(api, "US", US)
    dataset_id = create_dataset(api)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("engine.exports.os.replace", broken)
    job = export(api, export_body(dataset_id, seg))
    assert job["status"] == "FAILED"
    assert job["errors"][0]["msg"] == "Error in Export Job: RuntimeError"
    batch = Batch.objects.get(dataset_id=dataset_id)
    assert batch.status == BatchStatus.FAILED and batch.files == []
    assert api.get(f"{EXPORT}/batches/{batch.id}/files").json()["data"] == []
    folder = sandbox_dir("prod") / "datasets" / dataset_id
    # nothing but the lock file exports write under (engine.storage.folder_lock)
    assert not folder.exists() or [p.name for p in folder.iterdir()] == [".lock"]


def test_cancelled_export_writes_nothing(api: Api, store: None) -> None:
    seg = segment(api, "US", US)
    dataset_id = create_dataset(api)
    job = api.post(EXPORT_JOBS, export_body(dataset_id, seg)).json()
    response = api.delete(f"{EXPORT_JOBS}/{job['id']}")
    assert response.json() == {"status": True,
                               "message": "Export job has been marked for cancelling"}
    export_job_run(job["id"])
    assert api.get(f"{EXPORT_JOBS}/{job['id']}").json()["status"] == "CANCELLED"
    assert not Batch.objects.filter(dataset_id=dataset_id, status="success").exists()


@pytest.mark.parametrize("body", [
    {"destination": {}, "schema": {"name": "_xdm.context.profile"}},
    {"destination": {"datasetId": "x"}},
    {"destination": {"datasetId": "x"}, "schema": {"name": "_xdm.context.profile"},
     "fields": "nope.nothing"},
    {"destination": {"datasetId": "x"}, "schema": {"name": "_xdm.context.profile"},
     "filter": {"segments": [{"segmentId": "s", "status": ["gone"]}]}},
    {"destination": {"datasetId": "x"}, "schema": {"name": "_xdm.context.profile"},
     "filter": {"fromIngestTimestamp": "yesterday"}},
    [1, 2],
])
def test_bad_export_bodies_are_400_and_store_nothing(api: Api, store: None, body: Any) -> None:
    response = api.post(EXPORT_JOBS, body)
    assert response.status_code == 400
    assert response.json()["status"] == 400 and response.json()["title"]
    assert not ExportJob.objects.exists()


def test_export_with_another_sandboxes_segment_is_404(api: Api, store: None) -> None:
    seg = segment(api, "US", US)
    dev = api.in_sandbox("dev")
    body = export_body("x", seg)
    del body["fields"]  # dev has no profile fields at all
    response = dev.post(EXPORT_JOBS, body)
    assert response.status_code == 404
    assert not ExportJob.objects.exists()


def test_export_list_pages_with_offset_cursor_and_accepts_dataSetId(api: Api,
                                                                    store: None) -> None:
    seg = segment(api, "US", US)
    dataset_id = create_dataset(api)
    ids = []
    for _ in range(3):
        body = export_body(dataset_id, seg)
        body["destination"] = {"dataSetId": dataset_id}  # the 2019 spelling
        ids.append(api.post(EXPORT_JOBS, body).json()["id"])
    first = api.get(EXPORT_JOBS, {"limit": 2}).json()
    assert [r["id"] for r in first["records"]] == [ids[2], ids[1]]
    assert first["page"]["pageSize"] == 2
    assert first["records"][0]["destination"]["datasetId"] == dataset_id
    assert first["_links"]["next"]["href"] == first["link"]["next"]
    second = api.client.get(first["link"]["next"], headers=api.headers()).json()
    assert [r["id"] for r in second["records"]] == [ids[0]]
    assert second["link"] == {"next": ""}  # "If there are no more records, this value is empty"
    assert second["_links"] == {"next": {"href": ""}}
    assert api.in_sandbox("dev").get(f"{EXPORT_JOBS}/{ids[0]}").status_code == 404


# --- Data Access -----------------------------------------------------------------------------

def test_file_download_with_ranges(api: Api, store: None) -> None:
    seg = segment(api, "US", US)
    dataset_id = create_dataset(api)
    batch_id = export(api, export_body(dataset_id, seg))["destination"]["batchId"]
    whole = download(api, batch_id)
    files = api.get(f"{EXPORT}/batches/{batch_id}/files").json()["data"]
    assert files[0]["size"] == str(len(whole)) and files[0]["records"] == "4"
    file_id = files[0]["dataSetFileId"]
    listing = api.get(f"{EXPORT}/files/{file_id}").json()
    assert listing["data"][0]["length"] == str(len(whole))
    assert str(sandbox_dir("prod")) not in str(listing) + str(files)  # no filesystem paths
    path = {"path": listing["data"][0]["name"]}
    part = api.get(f"{EXPORT}/files/{file_id}", path, Range="bytes=0-99")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 0-99/{len(whole)}"
    assert part.content == whole[:100]
    tail = api.get(f"{EXPORT}/files/{file_id}", path, Range="bytes=-10")
    assert tail.content == whole[-10:]
    rest = api.get(f"{EXPORT}/files/{file_id}", path, Range=f"bytes={len(whole) - 5}-")
    assert rest.content == whole[-5:]
    beyond = api.get(f"{EXPORT}/files/{file_id}", path, Range=f"bytes={len(whole)}-")
    assert beyond.status_code == 416
    for bad in ("../../../etc/passwd", "part-00001.parquet"):
        assert api.get(f"{EXPORT}/files/{file_id}", {"path": bad}).status_code == 404
    assert api.get(f"{EXPORT}/files/{batch_id}-2").status_code == 404
    head = api.client.head(f"{EXPORT}/files/{file_id}", path, headers=api.headers())
    assert head.status_code == 200 and head["Content-Length"] == str(len(whole))


def test_openapi_describes_the_jobs_routes_and_every_reference_resolves(api: Api) -> None:
    import json
    import re

    document = api.client.get("/data/openapi.json").json()
    for path, methods in {
        f"{UPS}/segment/jobs": {"get", "post"},
        f"{UPS}/segment/jobs/{{SEGMENT_JOB_ID}}": {"get", "delete"},
        EXPORT_JOBS: {"get", "post"},
        f"{EXPORT_JOBS}/{{EXPORT_JOB_ID}}": {"get", "delete"},
        f"{CATALOG}/dataSets": {"get", "post"},
        f"{CATALOG}/dataSets/{{DATASET_ID}}": {"get"},
        f"{CATALOG}/batches": {"get"},
        f"{CATALOG}/batches/{{BATCH_ID}}": {"get"},
        f"{EXPORT}/batches/{{BATCH_ID}}/files": {"get"},
        f"{EXPORT}/files/{{dataSetFileId}}": {"get", "head"},
    }.items():
        assert methods <= set(document["paths"][path]), path
    for ref in set(re.findall(r'"\$ref": "#/components/(\w+)/([\w-]+)"', json.dumps(document))):
        assert ref[1] in document["components"][ref[0]], ref


@pytest.mark.parametrize("path", [f"{UPS}/segment/jobs/", f"{EXPORT_JOBS}/",
                                  f"{CATALOG}/dataSets/", f"{CATALOG}/batches/"])
def test_routes_answer_with_a_trailing_slash(api: Api, path: str) -> None:
    assert api.get(path).status_code == 200


def test_export_with_segmentation_evaluates_the_segment_first(api: Api, store: None) -> None:
    seg = str(api.post(DEFINITIONS, definition_body(name="US", value=US)).json()["id"])
    dataset_id = create_dataset(api)
    job = export(api, export_body(dataset_id, seg, evaluationInfo={"segmentation": True}))
    assert job["status"] == "SUCCEEDED", job["errors"]
    assert job["evaluationInfo"] == {"segmentation": True}
    assert job["metrics"]["totalExportedProfileCounter"] == 4
    jobs = api.get(f"{UPS}/segment/jobs").json()["children"]
    assert [(j["status"], j["segments"][0]["segmentId"]) for j in jobs] == [("SUCCEEDED", seg)]


def test_export_without_a_segment_filter_exports_every_profile_with_records(
        api: Api, store: None, tmp_path: Path) -> None:
    from engine.ingest import batch_ingest, dataset_get_or_create
    from engine.models import XdmClass
    from engine.snapshot import snapshot_build

    # a profile known only from its events
    web = dataset_get_or_create(sandbox="prod", name="Web", xdm_class=XdmClass.EVENT)
    events = tmp_path / "ghost.jsonl"
    events.write_text('{"identityMap": {"Email": [{"id": "ghost@example.com"}]}, '
                      '"timestamp": "2026-10-05T10:00:00Z", "eventType": "web.pageViews"}\n')
    assert batch_ingest(dataset=web, paths=[events]).status == "success"
    snapshot_build(sandbox="prod")
    dataset_id = create_dataset(api)
    body = {"destination": {"datasetId": dataset_id}, "schema": {"name": "_xdm.context.profile"}}
    records_only = export(api, body)
    assert records_only["metrics"]["totalExportedProfileCounter"] == 6
    rows = pq.read_table(io.BytesIO(download(api, records_only["destination"]["batchId"])))
    assert {"person", "homeAddress", "loyalty", "identityMap"} <= set(rows.column_names)
    everyone = export(api, {**body, "filter": {"emptyProfiles": True}})
    assert everyone["metrics"]["totalExportedProfileCounter"] == 7


def test_export_within_a_qualification_window(api: Api, store: None) -> None:
    seg = segment(api, "US", US)
    dataset_id = create_dataset(api)
    late = export_body(dataset_id, seg)
    late["filter"]["segmentQualificationTime"] = {"startTime": "2099-01-01T00:00:00Z"}
    assert export(api, late)["metrics"]["totalExportedProfileCounter"] == 0
    early = export_body(dataset_id, seg)
    early["filter"]["segmentQualificationTime"] = {"startTime": "2020-01-01T00:00:00Z",
                                                   "endTime": "2099-01-01T00:00:00Z"}
    assert export(api, early)["metrics"]["totalExportedProfileCounter"] == 4


def test_export_from_an_ingest_timestamp_keeps_profiles_updated_since(
        api: Api, store: None, tmp_path: Path) -> None:
    import json

    from engine.ingest import batch_ingest, dataset_get_or_create
    from engine.models import XdmClass
    from engine.snapshot import snapshot_build
    from tests.engine.api.store import person

    first = Batch.objects.get(dataset__sandbox="prod", dataset__name="CRM")
    assert first.completed_at is not None
    crm = dataset_get_or_create(sandbox="prod", name="CRM", xdm_class=XdmClass.PROFILE)
    update = tmp_path / "update.jsonl"
    update.write_text(json.dumps(person("bo", "US", 75)) + "\n")
    assert batch_ingest(dataset=crm, paths=[update]).status == "success"
    snapshot_build(sandbox="prod")
    dataset_id = create_dataset(api)
    body = {"destination": {"datasetId": dataset_id}, "schema": {"name": "_xdm.context.profile"},
            "fields": "person.name.firstName,loyalty.points",
            "filter": {"fromIngestTimestamp": first.completed_at.isoformat()}}
    job = export(api, body)
    assert job["status"] == "SUCCEEDED", job["errors"]
    rows = pq.read_table(io.BytesIO(download(api, job["destination"]["batchId"]))).to_pylist()
    assert [(r["person"]["name"]["firstName"], r["loyalty"]["points"]) for r in rows] == [
        ("Bo", 75)]


def test_exported_events_are_those_ingested_within_the_window(
        api: Api, store: None, tmp_path: Path) -> None:
    import json

    from engine.ingest import batch_ingest, dataset_get_or_create
    from engine.models import XdmClass
    from engine.snapshot import snapshot_build
    from tests.engine.api.store import person

    first = Batch.objects.get(dataset__sandbox="prod", dataset__name="Web")
    assert first.completed_at is not None
    web = dataset_get_or_create(sandbox="prod", name="Web", xdm_class=XdmClass.EVENT)
    late = tmp_path / "late.jsonl"  # an event of an earlier day, ingested later
    late.write_text(json.dumps({
        "identityMap": {"Email": [{"id": "ann@example.com", "primary": True}]},
        "timestamp": "2026-09-30T10:00:00Z", "eventType": "commerce.purchases",
        "commerce": {"order": {"priceTotal": 5.0}}}) + "\n")
    assert batch_ingest(dataset=web, paths=[late]).status == "success"
    crm = dataset_get_or_create(sandbox="prod", name="CRM", xdm_class=XdmClass.PROFILE)
    update = tmp_path / "update.jsonl"  # and Ann's record, updated
    update.write_text(json.dumps(person("ann", "US", 510)) + "\n")
    assert batch_ingest(dataset=crm, paths=[update]).status == "success"
    snapshot_build(sandbox="prod")
    seg = segment(api, "US", US)
    segment_job_run(api.post(f"{UPS}/segment/jobs", [{"segmentId": seg}]).json()["id"])
    dataset_id = create_dataset(api)
    boundary = first.completed_at.isoformat()

    def prices(window: dict[str, str] | None, **extra: Any) -> dict[str, Any]:
        event_list: dict[str, Any] = {"fields": "commerce.order.priceTotal"}
        if window:
            event_list["filter"] = window
        body = export_body(dataset_id, seg, additionalFields={"eventList": event_list})
        body["filter"].update(extra)
        job = export(api, body)
        assert job["status"] == "SUCCEEDED", job["errors"]
        rows = pq.read_table(io.BytesIO(download(api, job["destination"]["batchId"])))
        return {r["person"]["name"]["firstName"]: [e["commerce"]["order"]["priceTotal"]
                                                    for e in r["events"] or []]
                for r in rows.to_pylist()}

    # in time order, whatever the batch
    assert prices(None)["Ann"] == [5, 10, 20]
    assert prices({"fromIngestTimestamp": boundary})["Ann"] == [5]
    assert prices({"toIngestTimestamp": boundary})["Ann"] == [10, 20]
    assert prices({"fromIngestTimestamp": "2099-01-01T00:00:00Z"})["Ann"] == []
    # the export's own fromIngestTimestamp keeps the profiles updated since, and of their
    # events those ingested since
    assert prices(None, fromIngestTimestamp=boundary) == {"Ann": [5]}


def test_an_event_window_on_a_snapshot_without_ingest_times_fails_and_says_what_to_do(
        api: Api, store: None) -> None:
    import duckdb

    from engine.exports import EVENTS_WITHOUT_INGEST_TIMES
    from engine.snapshot import current_path

    with duckdb.connect(str(current_path("prod"))) as con:  # as built before they were kept
        con.execute("ALTER TABLE events DROP COLUMN _ingested_at")
    seg = segment(api, "US", US)
    dataset_id = create_dataset(api)
    body = export_body(dataset_id, seg, additionalFields={"eventList": {
        "filter": {"fromIngestTimestamp": "2020-01-01T00:00:00Z"}}})
    job = export(api, body)
    assert job["status"] == "FAILED"
    assert EVENTS_WITHOUT_INGEST_TIMES in job["errors"][0]["msg"]
    assert Batch.objects.get(pk=job["destination"]["batchId"]).status == "failed"
    # without a window the same snapshot still exports its events
    assert export(api, export_body(dataset_id, seg, additionalFields={"eventList": {}})
                  )["status"] == "SUCCEEDED"
