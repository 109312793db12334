"""The Batch Ingestion API (/data/foundation/import) and profile-enabled datasets, through plain
HTTP: create a dataset and a batch, PUT files, COMPLETE, and the profiles appear.

Celery is not running in tests: after COMPLETE the test calls the batch's task itself
(engine.tasks_jobs.batch_process), as a worker of the engine queue would; the on_commit enqueue
never fires inside the test's transaction.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.api import services_ingestion, services_jobs
from engine.api.shapes_jobs import MORE_BAD_RECORDS
from engine.exports import DESTINATION_NOT_EXPORT
from engine.ingest import NO_IDENTITY, NO_TIMESTAMP, TOO_MANY_ERRORS
from engine.models import Batch, BatchStatus, Dataset, Snapshot
from engine.storage import partial_dir, upload_dir
from engine.tasks import preview_run
from engine.tasks_jobs import batch_process, export_job_run
from tests.engine.api.conftest import UPS, Api
from tests.engine.api.store import person
from tests.engine.api.test_adobe_conformance import Conformance

pytestmark = pytest.mark.django_db

CATALOG = "/data/foundation/catalog"
IMPORT = "/data/foundation/import/batches"
PROFILE_CLASS = "https://ns.adobe.com/xdm/context/profile"
EVENT_CLASS = "https://ns.adobe.com/xdm/context/experienceevent"
UNION = "https://ns.adobe.com/xdm/context/profile__union"
ENABLED = {"unifiedProfile": ["enabled:true"], "unifiedIdentity": ["enabled:true"]}
BAD_REQUEST = {"type": "/placeholder/type/uri", "status": 400, "title": "BadRequestError"}
NOT_FOUND = {"type": "/placeholder/type/uri", "status": 404, "title": "NotFoundError"}


# --- the client's side, in plain HTTP ----------------------------------------------------------

def create_dataset(api: Api, name: str, schema_id: str = PROFILE_CLASS,
                   tags: dict[str, Any] | None = ENABLED) -> str:
    body: dict[str, Any] = {"name": name, "schemaRef": {
        "id": schema_id, "contentType": "application/vnd.adobe.xed+json;version=1"}}
    if tags is not None:
        body["tags"] = tags
    response = api.post(f"{CATALOG}/dataSets", body)
    assert response.status_code == 201, response.content
    reference = response.json()
    assert len(reference) == 1 and reference[0].startswith("@/dataSets/")
    return str(reference[0].rsplit("/", 1)[1])


def create_batch(api: Api, dataset_id: str, fmt: str = "json", **options: Any) -> dict[str, Any]:
    response = api.post(IMPORT, {"datasetId": dataset_id,
                                 "inputFormat": {"format": fmt, **options}})
    assert response.status_code == 201, response.content
    return dict(response.json())


def put_file(api: Api, batch_id: str, dataset_id: str, name: str, content: bytes,
             content_type: str = "application/octet-stream", **headers: str | None) -> Any:
    return api.client.put(f"{IMPORT}/{batch_id}/datasets/{dataset_id}/files/{name}", content,
                          content_type=content_type, headers=api.headers(**headers))


def action(api: Api, batch_id: str, name: str = "COMPLETE") -> Any:
    # as the aep client sends it: no body, no Content-Type
    return api.client.generic("POST", f"{IMPORT}/{batch_id}?action={name}", content_type=None,
                              headers=api.headers())


def catalog_batch(api: Api, batch_id: str) -> dict[str, Any]:
    response = api.get(f"{CATALOG}/batches/{batch_id}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert list(body) == [batch_id]
    return dict(body[batch_id])


def jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def event(name: str, day: int, kind: str = "commerce.purchases") -> dict[str, Any]:
    return {"identityMap": {"Email": [{"id": f"{name}@example.com", "primary": True}]},
            "timestamp": f"2026-10-{day:02d}T10:00:00Z", "eventType": kind}


def parquet_events(rows: list[tuple[str, int]]) -> bytes:
    """Events as Parquet typed the way XDM means them (identityMap a map, timestamp a
    timestamp), so the engine copies them with DuckDB."""
    identity = pa.struct([("id", pa.string()), ("primary", pa.bool_())])
    schema = pa.schema([("identityMap", pa.map_(pa.string(), pa.list_(identity))),
                        ("timestamp", pa.timestamp("us", tz="UTC")),
                        ("eventType", pa.string())])
    table = pa.Table.from_pylist([
        {"identityMap": [("Email", [{"id": f"{name}@example.com", "primary": True}])],
         "timestamp": datetime(2026, 10, day, 10, tzinfo=UTC), "eventType": "web.pageViews"}
        for name, day in rows], schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def estimate(api: Api, text: str) -> int:
    response = api.post(f"{UPS}/preview", {"predicateExpression": text,
                                           "predicateType": "pql/text",
                                           "predicateModel": "_xdm.context.profile"})
    assert response.status_code == 201, response.content
    preview_id = response.json()["previewId"]
    preview_run(preview_id)  # the Celery task, run eagerly
    body = api.get(f"{UPS}/estimate/{preview_id}").json()
    assert body["state"] == "RESULT_READY", body
    return int(body["estimatedSize"])


def profile(api: Api, email: str) -> Any:
    return api.get(f"{UPS}/access/entities", {"schema.name": "_xdm.context.profile",
                                              "entityId": email, "entityIdNS": "email"})


def uploads(batch_id: str, sandbox: str = "prod") -> list[str]:
    folder = upload_dir(sandbox, batch_id)
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# --- the whole flow ------------------------------------------------------------------------------

def test_files_uploaded_into_batches_become_profiles_and_events(api: Api) -> None:
    crm = create_dataset(api, "CRM upload")
    web = create_dataset(api, "Web upload", EVENT_CLASS)
    shown = api.get(f"{CATALOG}/dataSets/{crm}").json()[crm]
    assert shown["schemaRef"]["id"] == PROFILE_CLASS
    assert shown["tags"]["unifiedProfile"] == ["enabled:true"]
    assert api.get(f"{CATALOG}/dataSets/{web}").json()[web]["schemaRef"]["id"] == EVENT_CLASS

    created = create_batch(api, crm)
    assert set(created) == {"id", "imsOrg", "updated", "status", "created", "relatedObjects",
                            "version", "tags", "createdUser", "updatedUser", "inputFormat"}
    assert created["status"] == "loading"
    assert created["relatedObjects"] == [{"type": "dataSet", "id": crm}]
    assert created["imsOrg"] == api.org and created["version"] == "1.0.0"
    assert created["tags"] == {}
    assert created["createdUser"] == created["updatedUser"] == f"{api.client_id}@AdobeID"
    assert created["inputFormat"] == {"format": "json", "isMultiLineJson": False}
    assert isinstance(created["created"], int) and created["created"] > 1_700_000_000_000
    batch_id = created["id"]

    lines = jsonl([person("ann", "NL", 10), person("bo", "NL", 20)])
    first = put_file(api, batch_id, crm, "crm-1.json", lines)
    assert first.status_code == 200 and first.content == b""
    # a multi-line JSON array in a JSON batch is read whole, as AEP's isMultiLineJson
    array = json.dumps([person("cy", "BE", 30)], indent=2).encode()
    second = put_file(api, batch_id, crm, "crm-2.json", array)
    assert second.status_code == 200
    assert catalog_batch(api, batch_id)["status"] == "loading"

    done = action(api, batch_id)
    assert done.status_code == 200 and done.content == b""
    processing = catalog_batch(api, batch_id)
    assert processing["status"] == "processing"
    assert api.get(f"{CATALOG}/batches", {"status": "processing"}).json().keys() == {batch_id}

    batch_process(batch_id)  # the Celery task, run eagerly

    loaded = catalog_batch(api, batch_id)
    assert loaded["status"] == "success"
    assert loaded["recordCount"] == 3 and loaded["failedRecordCount"] == 0
    assert loaded["metrics"]["recordsRead"] == loaded["metrics"]["recordsWritten"] == 3
    assert loaded["metrics"]["failedRecordCount"] == loaded["metrics"]["recordsFailed"] == 0
    assert loaded["errors"] == []
    assert loaded["relatedObjects"] == [{"type": "dataSet", "id": crm}]
    assert loaded["completed"] >= loaded["created"] and loaded["updated"] >= loaded["created"]
    assert loaded["size"] == len(lines) + len(array)
    assert uploads(batch_id) == []  # ingested: the uploads are gone
    assert api.get(f"{CATALOG}/dataSets/{crm}").json()[crm]["lastBatchStatus"] == "success"

    # the snapshot was rebuilt: the new profiles are there, estimates count them
    ann = profile(api, "ann@example.com")
    assert ann.status_code == 200, ann.content
    entity = next(iter(ann.json().values()))["entity"]
    assert entity["homeAddress"]["countryCode"] == "NL"
    assert estimate(api, 'homeAddress.countryCode = "NL"') == 2

    # events, from a Parquet file
    events = create_batch(api, web, "parquet")
    put = put_file(api, events["id"], web, "web.parquet",
                   parquet_events([("ann", 1), ("ann", 2), ("cy", 3)]))
    assert put.status_code == 200
    assert action(api, events["id"]).status_code == 200
    batch_process(events["id"])
    assert catalog_batch(api, events["id"])["status"] == "success"
    assert catalog_batch(api, events["id"])["recordCount"] == 3
    assert estimate(api, 'xEvent[eventType = "web.pageViews"].count() >= 2') == 1
    assert estimate(api, 'xEvent[eventType = "web.pageViews"].count() >= 1') == 2


def test_a_file_sent_again_replaces_the_first_and_a_redelivered_task_does_nothing(
    api: Api,
) -> None:
    crm = create_dataset(api, "CRM upload")
    batch_id = create_batch(api, crm)["id"]
    put_file(api, batch_id, crm, "people.json", jsonl([person("ann", "NL", 1)]))
    put_file(api, batch_id, crm, "people.json",
             jsonl([person("bo", "NL", 1), person("cy", "NL", 1)]))
    assert uploads(batch_id) == ["people.json"]
    assert action(api, batch_id).status_code == 200
    batch_process(batch_id)
    snapshots = Snapshot.objects.filter(sandbox="prod").count()
    batch_process(batch_id)  # acks_late: a worker that died after the work delivers it again
    assert Snapshot.objects.filter(sandbox="prod").count() == snapshots
    assert catalog_batch(api, batch_id)["recordCount"] == 2
    assert profile(api, "ann@example.com").status_code == 404
    assert profile(api, "bo@example.com").status_code == 200


def test_a_task_delivered_again_while_the_first_ran_leaves_the_finished_batch_alone(
    api: Api,
) -> None:
    """Two workers may hold the same processing batch (a redelivery while the first still
    works): the second waits for the dataset's lock, then finds the batch finished and its
    uploads gone — it must neither load again nor fail the batch for the missing files."""
    from engine.batches import batch_process as process

    crm = create_dataset(api, "CRM upload")
    batch_id = create_batch(api, crm)["id"]
    put_file(api, batch_id, crm, "people.json", jsonl([person("ann", "NL", 1)]))
    assert action(api, batch_id).status_code == 200
    stale = Batch.objects.select_related("dataset").get(pk=batch_id)  # processing, as read
    batch_process(batch_id)
    assert uploads(batch_id) == []
    again = process(batch=stale)
    assert again.status == BatchStatus.SUCCESS and again.failure_reason == ""
    body = catalog_batch(api, batch_id)
    assert body["status"] == "success" and body["recordCount"] == 1
    assert profile(api, "ann@example.com").status_code == 200


def test_csv_batches_are_read_by_their_declared_format_whatever_the_file_is_called(
    api: Api,
) -> None:
    crm = create_dataset(api, "CRM upload")
    batch_id = create_batch(api, crm, "csv", delimiter=",", header="true")["id"]
    # a CSV row names its identity as endUserIDs columns (identityMap is a map of lists)
    content = (b"endUserIDs._experience.emailid.id,endUserIDs._experience.emailid.namespace.code,"
               b"person.name.firstName,homeAddress.countryCode\n"
               b"ann@example.com,Email,Ann,NL\n"
               b",,Nobody,NL\n")
    put_file(api, batch_id, crm, "people.json", content)
    action(api, batch_id)
    batch_process(batch_id)
    body = catalog_batch(api, batch_id)
    assert body["inputFormat"] == {"format": "csv", "delimiter": ",", "header": "true"}
    assert body["status"] == "failed"  # 1 of 2 records is bad: over the 10 % allowed
    assert body["errors"][1] == {"code": "record-invalid", "rows": ["3"],
                                 "description": f"people.json: {NO_IDENTITY}"}

    batch_id = create_batch(api, crm, "csv")["id"]
    put_file(api, batch_id, crm, "people.json", content.rsplit(b",,", 1)[0])
    action(api, batch_id)
    batch_process(batch_id)
    assert catalog_batch(api, batch_id)["status"] == "success"
    entity = next(iter(profile(api, "ann@example.com").json().values()))["entity"]
    assert entity["person"]["name"]["firstName"] == "Ann"


# --- bad records ---------------------------------------------------------------------------------

def test_bad_records_are_counted_and_listed_with_their_rows(api: Api) -> None:
    web = create_dataset(api, "Web upload", EVENT_CLASS)
    batch_id = create_batch(api, web)["id"]
    records = [event(f"p{i}", 1 + i % 28) for i in range(60)]
    records[4] = {"timestamp": "2026-10-01T00:00:00Z", "eventType": "x"}  # no identity
    records[5] = {"timestamp": "2026-10-01T00:00:00Z", "eventType": "x"}
    records[6] = {"timestamp": "2026-10-01T00:00:00Z", "eventType": "x"}
    records[20] = {**event("q", 1), "timestamp": "yesterday"}
    content = jsonl(records).replace(b'{"identityMap": {"Email": [{"id": "p9@',
                                     b'{not json "p9@', 1)
    put_file(api, batch_id, web, "web.jsonl", content)
    action(api, batch_id)
    batch_process(batch_id)

    body = catalog_batch(api, batch_id)
    assert body["status"] == "success"
    assert body["recordCount"] == 55 and body["failedRecordCount"] == 5
    assert body["metrics"]["recordsRead"] == 60 and body["metrics"]["failedRecordCount"] == 5
    by_description = {e["description"]: e for e in body["errors"]}
    assert by_description[f"web.jsonl: {NO_IDENTITY}"] == {
        "code": "record-invalid", "description": f"web.jsonl: {NO_IDENTITY}",
        "rows": ["5-7"]}
    assert by_description[f"web.jsonl: {NO_TIMESTAMP}"]["rows"] == ["21"]
    assert any(e["rows"] == ["10"] and "not valid JSON" in e["description"]
               for e in body["errors"])
    # the good records are visible
    assert estimate(api, 'xEvent[eventType = "commerce.purchases"].count() >= 1') == 55


def test_a_batch_over_the_error_ratio_fails_saying_why_and_nothing_becomes_visible(
    api: Api,
) -> None:
    crm = create_dataset(api, "CRM upload")
    good = create_batch(api, crm)["id"]
    put_file(api, good, crm, "one.json", jsonl([person("ann", "NL", 1)]))
    action(api, good)
    batch_process(good)
    snapshots = Snapshot.objects.filter(sandbox="prod").count()

    batch_id = create_batch(api, crm)["id"]
    records = [person(f"p{i}", "FR", i) for i in range(8)]
    for record in records[:3]:
        del record["identityMap"]
    put_file(api, batch_id, crm, "people.json", jsonl(records))
    action(api, batch_id)
    batch_process(batch_id)

    body = catalog_batch(api, batch_id)
    assert body["status"] == "failed"
    reason = TOO_MANY_ERRORS.format(errors=3, total=8, limit=0.1)
    assert body["errors"][0] == {"code": "batch-failed", "description": reason}
    assert body["errors"][1]["rows"] == ["1-3"]
    assert body["recordCount"] == 0 and body["failedRecordCount"] == 3
    assert uploads(batch_id) == []
    assert Snapshot.objects.filter(sandbox="prod").count() == snapshots  # not rebuilt
    assert estimate(api, 'homeAddress.countryCode = "FR"') == 0
    assert profile(api, "p5@example.com").status_code == 404
    files = api.get(f"/data/foundation/export/batches/{batch_id}/files").json()
    assert files["data"] == []


def test_a_file_that_is_not_what_the_batch_says_fails_the_batch_without_paths(api: Api) -> None:
    crm = create_dataset(api, "CRM upload")
    batch_id = create_batch(api, crm, "parquet")["id"]
    put_file(api, batch_id, crm, "people.parquet", jsonl([person("ann", "NL", 1)]))
    action(api, batch_id)
    batch_process(batch_id)
    body = catalog_batch(api, batch_id)
    assert body["status"] == "failed"
    description = body["errors"][0]["description"]
    assert description.startswith("Cannot read the files: ")
    assert "people.parquet" in description and "uploads" not in description


def test_more_bad_records_than_are_kept_are_counted(api: Api) -> None:
    crm = create_dataset(api, "CRM upload")
    batch_id = create_batch(api, crm)["id"]
    records = [person(f"p{i}", "NL", i) for i in range(1200)]
    for record in records[:110]:
        del record["identityMap"]
    put_file(api, batch_id, crm, "people.json", jsonl(records))
    action(api, batch_id)
    batch_process(batch_id)
    body = catalog_batch(api, batch_id)
    assert body["status"] == "success" and body["failedRecordCount"] == 110
    assert body["errors"][0]["rows"] == ["1-100"]
    assert body["errors"][-1]["description"] == MORE_BAD_RECORDS.format(count=10, listed=100)


# --- abort ---------------------------------------------------------------------------------------

def test_abort_fails_the_batch_and_removes_its_files(api: Api) -> None:
    crm = create_dataset(api, "CRM upload")
    batch_id = create_batch(api, crm)["id"]
    put_file(api, batch_id, crm, "people.json", jsonl([person("ann", "NL", 1)]))
    assert uploads(batch_id) == ["people.json"]
    response = action(api, batch_id, "ABORT")
    assert response.status_code == 200 and response.content == b""
    body = catalog_batch(api, batch_id)
    assert body["status"] == "failed"
    assert body["errors"] == [{"code": "batch-failed", "description": "aborted"}]
    assert uploads(batch_id) == []
    # nothing more can be done with it
    for name in ("COMPLETE", "ABORT"):
        again = action(api, batch_id, name)
        assert again.status_code == 400
        assert again.json() == {**BAD_REQUEST, "detail": services_ingestion.BATCH_NOT_LOADING
                                .format(id=batch_id, status="failed")}
    late = put_file(api, batch_id, crm, "more.json", jsonl([person("bo", "NL", 1)]))
    assert late.status_code == 400
    assert uploads(batch_id) == []


def test_a_batch_left_loading_is_failed_as_abandoned_after_a_day(api: Api) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from engine.api.services_ingestion import batches_sweep
    from engine.models import Batch

    crm = create_dataset(api, "CRM upload")
    stale, fresh = create_batch(api, crm)["id"], create_batch(api, crm)["id"]
    for batch_id in (stale, fresh):
        put_file(api, batch_id, crm, "people.json", jsonl([person("ann", "NL", 1)]))
    Batch.objects.filter(pk=stale).update(updated_at=timezone.now() - timedelta(hours=25))
    assert batches_sweep().abandoned == 1
    body = catalog_batch(api, stale)
    assert body["status"] == "failed"
    assert body["errors"] == [{"code": "batch-failed",
                               "description": services_ingestion.ABANDONED}]
    assert uploads(stale) == [] and uploads(fresh) == ["people.json"]
    assert catalog_batch(api, fresh)["status"] == "loading"
    assert batches_sweep().abandoned == 0


def test_a_batch_stalled_in_processing_is_sent_to_a_worker_again_once_per_period(
        api: Api, monkeypatch: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from engine.api.services_ingestion import batches_sweep

    sent: list[str] = []
    monkeypatch.setattr(batch_process, "delay", sent.append)  # no broker here
    crm = create_dataset(api, "CRM upload")
    stalled, working = create_batch(api, crm)["id"], create_batch(api, crm)["id"]
    for batch_id in (stalled, working):
        put_file(api, batch_id, crm, "people.json", jsonl([person("ann", "NL", 1)]))
        assert action(api, batch_id).status_code == 200  # processing; its worker never came
    Batch.objects.filter(pk=stalled).update(updated_at=timezone.now() - timedelta(minutes=61))
    assert batches_sweep().resent == 1 and sent == [stalled]
    assert batches_sweep().resent == 0  # not again within the period
    batch_process(stalled)  # the worker it was sent to
    assert catalog_batch(api, stalled)["status"] == "success"
    assert catalog_batch(api, working)["status"] == "processing"


# --- refusals ------------------------------------------------------------------------------------

def test_profile_datasets_are_created_disabled_without_the_tag_and_names_stay_unique(
    api: Api,
) -> None:
    plain = create_dataset(api, "Lake only", tags=None)
    row = Dataset.objects.get(pk=plain)
    assert (row.xdm_class, row.profile_enabled, row.union_persisting) == ("profile", False, False)
    shown = api.get(f"{CATALOG}/dataSets/{plain}").json()[plain]
    assert shown["tags"]["unifiedProfile"] == ["enabled:false"]
    assert shown["schemaRef"]["id"] == PROFILE_CLASS
    spaced = create_dataset(api, "Spaced", EVENT_CLASS, tags={"unifiedProfile": ["enabled: true"]})
    assert Dataset.objects.get(pk=spaced).profile_enabled
    assert Dataset.objects.get(pk=spaced).xdm_class == "event"

    again = api.post(f"{CATALOG}/dataSets", {"name": "Lake only", "schemaRef": {
        "id": EVENT_CLASS}, "tags": ENABLED})
    assert again.status_code == 400
    assert again.json() == {**BAD_REQUEST, "detail": services_jobs.DATASET_EXISTS.format(
        name="Lake only")}
    bad_tags = api.post(f"{CATALOG}/dataSets", {"name": "Bad tags", "schemaRef": {
        "id": PROFILE_CLASS}, "tags": {"unifiedProfile": "enabled:true"}})
    assert bad_tags.status_code == 400
    assert Dataset.objects.filter(sandbox="prod").count() == 2


@pytest.mark.parametrize(("body", "detail"), [
    ({"inputFormat": {"format": "json"}}, "The field datasetId is required."),
    ({"datasetId": "5c8c3c555033b814b69f947f", "inputFormat": {"format": "json"}},
     services_ingestion.DATASET_UNKNOWN.format(id="5c8c3c555033b814b69f947f")),
    ({"datasetId": "CRM", "inputFormat": {"format": "xml"}}, services_ingestion.FORMAT_INVALID),
    ({"datasetId": "CRM"}, services_ingestion.FORMAT_INVALID),
    ({"datasetId": "CRM", "inputFormat": "json"}, services_ingestion.FORMAT_INVALID),
    ({"datasetId": "CRM", "inputFormat": {"format": "json", "isMultiLineJson": "yes"}},
     "The field inputFormat.isMultiLineJson is not valid: true or false is needed."),
    ({"datasetId": "CRM", "inputFormat": {"format": "csv", "delimiter": ";"}},
     services_ingestion.FORMAT_OPTION_UNSUPPORTED.format(name="delimiter")),
    ({"datasetId": "LAKE", "inputFormat": {"format": "json"}},
     services_ingestion.DATASET_NOT_PROFILE.format(id="LAKE")),
    ({"datasetId": "EXPORT", "inputFormat": {"format": "json"}},
     services_ingestion.DATASET_NOT_PROFILE.format(id="EXPORT")),
])
def test_bad_batch_bodies_are_400_naming_the_problem_and_store_nothing(
    api: Api, body: dict[str, Any], detail: str
) -> None:
    ids = {"CRM": create_dataset(api, "CRM upload"),
           "LAKE": create_dataset(api, "Lake only", tags=None),
           "EXPORT": create_dataset(api, "Export", UNION, tags=None)}
    if body.get("datasetId") in ids:
        detail = detail.replace(body["datasetId"], ids[body["datasetId"]])
        body = {**body, "datasetId": ids[body["datasetId"]]}
    response = api.post(IMPORT, body)
    assert response.status_code == 400
    assert response.json() == {**BAD_REQUEST, "detail": detail}
    assert not Batch.objects.filter(dataset__sandbox="prod").exists()


def test_upload_refusals_are_aep_errors_and_store_nothing(api: Api, settings: Any) -> None:
    crm = create_dataset(api, "CRM upload")
    other = create_dataset(api, "Other upload")
    batch_id = create_batch(api, crm)["id"]
    content = jsonl([person("ann", "NL", 1)])

    unknown = put_file(api, "f" * 32, crm, "a.json", content)
    assert unknown.status_code == 404
    assert unknown.json() == {**NOT_FOUND, "detail": services_ingestion.BATCH_NOT_FOUND.format(
        id="f" * 32)}
    wrong = put_file(api, batch_id, other, "a.json", content)
    assert wrong.status_code == 400
    assert wrong.json()["detail"] == services_ingestion.BATCH_OTHER_DATASET.format(
        id=batch_id, dataset=other)
    for name in ("..", "a..json", "dir%2Fa.json", "dir/a.json", "a%5Cb.json", "%2E%2E"):
        refused = put_file(api, batch_id, crm, name, content)
        assert refused.status_code == 400, name
        assert refused.json()["title"] == "BadRequestError"
        assert refused.json()["detail"].startswith("The file name "), name
    chunked = api.client.put(f"{IMPORT}/{batch_id}/datasets/{crm}/files/a.json", content,
                             content_type="application/octet-stream", headers=api.headers(),
                             CONTENT_LENGTH="")  # as a chunked upload arrives: no length
    assert chunked.status_code == 411
    assert chunked.json() == {"error_code": "411000", "message": "Content-Length is required: "
                              "send the file with its length"}
    typed = put_file(api, batch_id, crm, "a.json", content, content_type="application/json")
    assert typed.status_code == 400
    assert typed.json()["detail"] == "A valid content-type must be specified"

    settings.ENGINE_MAX_UPLOAD_BYTES = 100
    large = put_file(api, batch_id, crm, "big.json", b"x" * 101)
    assert large.status_code == 413
    assert large.json() == {"error_code": "413000", "message": "The file is larger than the "
                            "100 bytes a batch file may have"}
    assert put_file(api, batch_id, crm, "small.json", b"x" * 100).status_code == 200
    assert uploads(batch_id) == ["small.json"]
    assert not any(partial_dir("prod").iterdir())


def test_the_json_body_limit_does_not_apply_to_files(api: Api, settings: Any) -> None:
    settings.ENGINE_MAX_BODY_BYTES = 1_000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    crm = create_dataset(api, "CRM upload")
    batch_id = create_batch(api, crm)["id"]
    records = [person(f"p{i}", "NL", i) for i in range(200)]
    content = jsonl(records)
    assert len(content) > 20_000
    assert put_file(api, batch_id, crm, "people.json", content).status_code == 200
    assert (upload_dir("prod", batch_id) / "people.json").read_bytes() == content


def test_complete_refusals(api: Api) -> None:
    crm = create_dataset(api, "CRM upload")
    batch_id = create_batch(api, crm)["id"]

    empty = action(api, batch_id)
    assert empty.status_code == 400
    assert empty.json() == {**BAD_REQUEST, "detail": services_ingestion.BATCH_NO_FILES.format(
        id=batch_id)}
    assert Batch.objects.get(pk=batch_id).status == BatchStatus.LOADING  # still loading

    for name in ("", "DONE", "complete"):
        bad = action(api, batch_id, name)
        assert bad.status_code == 400
        assert bad.json() == {**BAD_REQUEST, "detail": services_ingestion.ACTION_INVALID}
    missing = action(api, "0" * 32)
    assert missing.status_code == 404
    assert missing.json()["title"] == "NotFoundError"

    put_file(api, batch_id, crm, "people.json", jsonl([person("ann", "NL", 1)]))
    assert action(api, batch_id).status_code == 200
    twice = action(api, batch_id)
    assert twice.status_code == 400
    assert twice.json()["detail"] == services_ingestion.BATCH_NOT_LOADING.format(
        id=batch_id, status="processing")
    late = put_file(api, batch_id, crm, "more.json", jsonl([person("bo", "NL", 1)]))
    assert late.status_code == 400
    assert uploads(batch_id) == ["people.json"]
    assert Batch.objects.get(pk=batch_id).source_files == ["people.json"]


def test_methods_and_trailing_slashes(api: Api) -> None:
    crm = create_dataset(api, "CRM upload")
    response = api.post(f"{IMPORT}/", {"datasetId": crm, "inputFormat": {"format": "json"}})
    assert response.status_code == 201
    batch_id = response.json()["id"]
    assert put_file(api, batch_id, crm, "a.json/",
                    jsonl([person("ann", "NL", 1)])).status_code == 200
    assert uploads(batch_id) == ["a.json"]
    done = api.client.generic("POST", f"{IMPORT}/{batch_id}/?action=COMPLETE",
                              content_type=None, headers=api.headers())
    assert done.status_code == 200
    assert api.get(IMPORT).status_code == 405
    assert api.get(f"{IMPORT}/{batch_id}").status_code == 405


def test_headers_are_checked_as_everywhere(api: Api) -> None:
    crm = create_dataset(api, "CRM upload")
    batch_id = create_batch(api, crm)["id"]
    content = jsonl([person("ann", "NL", 1)])
    no_token = put_file(api, batch_id, crm, "a.json", content, Authorization=None)
    assert no_token.status_code == 403
    assert no_token.json() == {"error_code": "403010", "message": "Oauth token is missing."}
    no_sandbox = put_file(api, batch_id, crm, "a.json", content, x_sandbox_name=None)
    assert no_sandbox.status_code == 400
    no_key = api.post(IMPORT, {"datasetId": crm, "inputFormat": {"format": "json"}},
                      x_api_key=None)
    assert no_key.status_code == 403
    forbidden = api.client.generic("POST", f"{IMPORT}/{batch_id}?action=COMPLETE",
                                   content_type=None,
                                   headers=api.headers(x_sandbox_name="stage"))
    assert forbidden.status_code == 403
    assert uploads(batch_id) == []
    assert Batch.objects.get(pk=batch_id).status == BatchStatus.LOADING


def test_sandboxes_isolate_datasets_and_batches(api: Api) -> None:
    crm = create_dataset(api, "CRM upload")
    batch_id = create_batch(api, crm)["id"]
    put_file(api, batch_id, crm, "people.json", jsonl([person("ann", "NL", 1)]))
    dev = api.in_sandbox("dev")

    foreign = dev.post(IMPORT, {"datasetId": crm, "inputFormat": {"format": "json"}})
    assert foreign.status_code == 400
    assert foreign.json()["detail"] == services_ingestion.DATASET_UNKNOWN.format(id=crm)
    put = put_file(dev, batch_id, crm, "more.json", jsonl([person("bo", "NL", 1)]))
    assert put.status_code == 404
    assert put.json() == {**NOT_FOUND, "detail": services_ingestion.BATCH_NOT_FOUND.format(
        id=batch_id)}
    for name in ("COMPLETE", "ABORT"):
        assert action(dev, batch_id, name).status_code == 404
    assert dev.get(f"{CATALOG}/batches/{batch_id}").status_code == 404
    assert dev.get(f"{CATALOG}/batches").json() == {}
    assert uploads(batch_id) == ["people.json"] and uploads(batch_id, "dev") == []
    assert Batch.objects.get(pk=batch_id).status == BatchStatus.LOADING

    # a dataset of the same name in dev is another dataset
    dev_crm = create_dataset(dev, "CRM upload")
    assert dev_crm != crm
    assert action(api, batch_id).status_code == 200
    batch_process(batch_id)
    assert profile(api, "ann@example.com").status_code == 200
    assert profile(dev, "ann@example.com").status_code in (404, 422)


# --- Catalog's schema, and exports ---------------------------------------------------------------

def test_ingestion_batches_answer_in_adobes_catalog_schema(api: Api) -> None:
    crm = create_dataset(api, "CRM upload")
    loading = create_batch(api, crm, "csv", header=True, charset="utf-8")["id"]
    batch_id = create_batch(api, crm)["id"]
    records = [person(f"p{i}", "NL", i) for i in range(20)]
    del records[3]["identityMap"]
    put_file(api, batch_id, crm, "people.json", jsonl(records))
    action(api, batch_id)
    conformance = Conformance()
    conformance.check(api.get(f"{CATALOG}/batches").json(), "GET", "catalog:/batches", 200)
    batch_process(batch_id)
    assert catalog_batch(api, batch_id)["errors"][0]["rows"] == ["4"]
    for key in (loading, batch_id):
        conformance.check(api.get(f"{CATALOG}/batches/{key}").json(), "GET",
                          "catalog:/batches/{BATCH_ID}", 200)
    assert catalog_batch(api, loading)["inputFormat"] == {"format": "csv", "header": "true",
                                                          "charset": "UTF-8"}
    assert not conformance.failures, "\n".join(conformance.failures)


def test_a_dataset_of_ingested_records_never_receives_an_export(api: Api) -> None:
    crm = create_dataset(api, "CRM upload")
    batch_id = create_batch(api, crm)["id"]
    put_file(api, batch_id, crm, "people.json", jsonl([person("ann", "NL", 1)]))
    action(api, batch_id)
    batch_process(batch_id)
    response = api.post(f"{UPS}/export/jobs", {"destination": {"datasetId": crm},
                                               "schema": {"name": "_xdm.context.profile"}})
    assert response.status_code == 200, response.content
    export_job_run(response.json()["id"])
    job = api.get(f"{UPS}/export/jobs/{response.json()['id']}").json()
    assert job["status"] == "FAILED"
    assert job["errors"][0]["msg"] == DESTINATION_NOT_EXPORT.format(id=crm)
    assert list(api.get(f"{CATALOG}/batches", {"dataSet": crm}).json()) == [batch_id]
