"""DELETE /data/foundation/catalog/dataSets/{id} (Catalog's deleteDataset), through plain HTTP:
the dataset goes with its batches and their files, and a profile-enabled one leaves the profiles
once the snapshot task has rebuilt the store.

Celery is not running in tests: the rebuild the deletion enqueues after its commit is captured
(django_capture_on_commit_callbacks) and run as a worker of the engine queue would run it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from engine.api import services_ingestion, services_jobs
from engine.exports import DESTINATION_MISSING
from engine.ingest import DatasetDeleted, batch_load
from engine.models import Batch, BatchStatus, Dataset, ExportJob, Snapshot
from engine.storage import dataset_dir, folder_lock, upload_dir
from engine.tasks_jobs import batch_process, export_job_run, segment_job_run, snapshot_rebuild
from pql.schema import NO_FIELDS_AT_ALL
from tests.engine.api.conftest import DEFINITIONS, UPS, Api, definition_body
from tests.engine.api.store import build_store, person
from tests.engine.api.test_adobe_conformance import Conformance
from tests.engine.api.test_batch_ingestion import (
    BAD_REQUEST,
    CATALOG,
    EVENT_CLASS,
    NOT_FOUND,
    UNION,
    action,
    catalog_batch,
    create_batch,
    create_dataset,
    estimate,
    event,
    jsonl,
    profile,
    put_file,
    uploads,
)

pytestmark = pytest.mark.django_db

EXPORT = "/data/foundation/export"
DATASET_NOT_FOUND = {**NOT_FOUND, "detail": services_jobs.DATASET_NOT_FOUND}
NL = 'homeAddress.countryCode = "NL"'


def ingest(api: Api, dataset_id: str, records: list[dict[str, Any]]) -> str:
    """One batch through Batch Ingestion, run by its task; the batch id."""
    batch_id = str(create_batch(api, dataset_id)["id"])
    assert put_file(api, batch_id, dataset_id, "records.json", jsonl(records)).status_code == 200
    assert action(api, batch_id).status_code == 200
    batch_process(batch_id)  # the Celery task, run eagerly
    assert catalog_batch(api, batch_id)["status"] == "success"
    return batch_id


def delete(api: Api, dataset_id: str, capture: Any, slash: str = "") -> tuple[Any, list[Any]]:
    """DELETE, and what it enqueued after its commit (snapshot_rebuild's arguments, if any)."""
    with capture() as callbacks:
        response = api.delete(f"{CATALOG}/dataSets/{dataset_id}{slash}")
    with mock.patch.object(snapshot_rebuild, "delay") as delay:  # no broker here
        for callback in callbacks:
            callback()
    return response, [call.args for call in delay.call_args_list]


def first_file(api: Api, batch_id: str) -> str:
    files = api.get(f"{EXPORT}/batches/{batch_id}/files").json()["data"]
    return str(files[0]["dataSetFileId"])


def gone(api: Api, dataset_id: str, batch_ids: list[str], file_ids: list[str]) -> None:
    """Nothing of the dataset can be read through Catalog or Data Access."""
    shown = api.get(f"{CATALOG}/dataSets/{dataset_id}")
    assert shown.status_code == 404 and shown.json() == DATASET_NOT_FOUND
    assert dataset_id not in api.get(f"{CATALOG}/dataSets").json()
    assert api.get(f"{CATALOG}/batches", {"dataSet": dataset_id}).json() == {}
    for batch_id in batch_ids:
        assert api.get(f"{CATALOG}/batches/{batch_id}").status_code == 404
        assert api.get(f"{EXPORT}/batches/{batch_id}/files").status_code == 404
    for file_id in file_ids:
        assert api.get(f"{EXPORT}/files/{file_id}").status_code == 404
        assert api.get(f"{EXPORT}/files/{file_id}",
                       {"path": "part-00000.parquet"}).status_code == 404
    assert not Batch.objects.filter(pk__in=batch_ids).exists()


# --- profile-enabled datasets ----------------------------------------------------------------

def test_deleting_a_profile_dataset_removes_its_records_once_the_snapshot_is_rebuilt(
    api: Api, django_capture_on_commit_callbacks: Any,
) -> None:
    crm = create_dataset(api, "CRM upload")
    other = create_dataset(api, "Loyalty upload")
    first = ingest(api, crm, [person("ann", "NL", 1), person("bo", "NL", 2)])
    second = ingest(api, crm, [person("di", "NL", 3)])
    ingest(api, other, [person("cy", "NL", 4)])
    files = [first_file(api, first), first_file(api, second)]
    assert estimate(api, NL) == 4
    snapshots = Snapshot.objects.filter(sandbox="prod").count()

    response, enqueued = delete(api, crm, django_capture_on_commit_callbacks)

    assert response.status_code == 200, response.content
    assert response.json() == [f"@/dataSets/{crm}"]
    assert response["Content-Type"] == "application/json"
    gone(api, crm, [first, second], files)
    assert not dataset_dir("prod", crm).exists()
    # the deletion did not wait for the rebuild: the current snapshot still counts them
    assert Snapshot.objects.filter(sandbox="prod").count() == snapshots
    assert estimate(api, NL) == 4
    assert len(enqueued) == 1 and enqueued[0][0] == "prod"

    snapshot_rebuild(*enqueued[0])  # the Celery task, run eagerly

    assert estimate(api, NL) == 1
    assert profile(api, "ann@example.com").status_code == 404
    assert profile(api, "di@example.com").status_code == 404
    assert profile(api, "cy@example.com").status_code == 200
    # a redelivered task (acks_late) finds a snapshot started since and builds nothing
    built = Snapshot.objects.filter(sandbox="prod").count()
    snapshot_rebuild(*enqueued[0])
    assert Snapshot.objects.filter(sandbox="prod").count() == built


def test_deleting_an_event_dataset_removes_its_events(
    api: Api, django_capture_on_commit_callbacks: Any,
) -> None:
    crm = create_dataset(api, "CRM upload")
    web = create_dataset(api, "Web upload", EVENT_CLASS)
    app = create_dataset(api, "App upload", EVENT_CLASS)  # keeps eventType in the union
    ingest(api, crm, [person("ann", "NL", 1)])
    ingest(api, web, [event("ann", 1), event("ann", 2)])
    ingest(api, app, [event("bo", 3, "web.webpagedetails.pageViews")])
    purchases = 'xEvent[eventType = "commerce.purchases"].count() >= 1'
    assert estimate(api, purchases) == 1

    response, enqueued = delete(api, web, django_capture_on_commit_callbacks)
    assert response.status_code == 200
    snapshot_rebuild(*enqueued[0])

    assert estimate(api, purchases) == 0
    assert profile(api, "ann@example.com").status_code == 200  # the CRM record stays

    response, enqueued = delete(api, crm, django_capture_on_commit_callbacks)
    snapshot_rebuild(*enqueued[0])  # no profile records left to build from
    assert profile(api, "ann@example.com").status_code == 404
    # and no profile fields: a definition naming one is refused, as the editor refuses it
    response = api.post(f"{UPS}/preview", {"predicateExpression": NL})
    assert response.status_code == 400
    assert NO_FIELDS_AT_ALL.format(path="homeAddress", where="", what="profile") \
        in response.json()["title"]


def test_a_dataset_with_no_successful_batch_is_deleted_without_a_rebuild(
    api: Api, django_capture_on_commit_callbacks: Any,
) -> None:
    crm = create_dataset(api, "CRM upload")
    failed = create_batch(api, crm)["id"]
    put_file(api, failed, crm, "bad.json", jsonl([{"person": {"name": {"firstName": "X"}}}]))
    action(api, failed)
    batch_process(failed)
    assert catalog_batch(api, failed)["status"] == "failed"
    lake = create_dataset(api, "Lake only", tags=None)  # not enabled for Profile

    for dataset_id in (crm, lake):
        response, enqueued = delete(api, dataset_id, django_capture_on_commit_callbacks)
        assert response.status_code == 200
        assert enqueued == []
    gone(api, crm, [failed], [])


def test_loading_batches_are_deleted_with_their_uploads_and_cannot_be_completed(
    api: Api, django_capture_on_commit_callbacks: Any,
) -> None:
    crm = create_dataset(api, "CRM upload")
    loading = create_batch(api, crm)["id"]
    put_file(api, loading, crm, "people.json", jsonl([person("ann", "NL", 1)]))
    assert uploads(loading) == ["people.json"]

    response, enqueued = delete(api, crm, django_capture_on_commit_callbacks)

    assert response.status_code == 200 and enqueued == []
    assert uploads(loading) == [] and not upload_dir("prod", loading).exists()
    gone(api, crm, [loading], [])
    assert action(api, loading).status_code == 404
    late = put_file(api, loading, crm, "more.json", jsonl([person("bo", "NL", 1)]))
    assert late.status_code == 404
    assert not upload_dir("prod", loading).exists()
    batch_process(loading)  # a task delivered anyway finds no row and does nothing
    assert not dataset_dir("prod", crm).exists()


# --- refusals and races ------------------------------------------------------------------------

def test_a_dataset_with_a_processing_batch_is_refused_and_nothing_is_deleted(
    api: Api, django_capture_on_commit_callbacks: Any,
) -> None:
    crm = create_dataset(api, "CRM upload")
    done = ingest(api, crm, [person("ann", "NL", 1)])
    loading = create_batch(api, crm)["id"]
    put_file(api, loading, crm, "later.json", jsonl([person("cy", "NL", 1)]))
    processing = create_batch(api, crm)["id"]
    put_file(api, processing, crm, "people.json", jsonl([person("bo", "NL", 1)]))
    assert action(api, processing).status_code == 200  # COMPLETE: a worker is ingesting it

    response, enqueued = delete(api, crm, django_capture_on_commit_callbacks)

    assert response.status_code == 400
    assert response.json() == {**BAD_REQUEST,
                               "detail": services_jobs.DATASET_BUSY.format(id=crm)}
    assert enqueued == []
    assert api.get(f"{CATALOG}/dataSets/{crm}").status_code == 200
    assert catalog_batch(api, done)["status"] == "success"
    assert catalog_batch(api, loading)["status"] == "loading"  # rolled back with the rest
    assert catalog_batch(api, processing)["status"] == "processing"
    assert uploads(loading) == ["later.json"] and uploads(processing) == ["people.json"]
    assert api.get(f"{EXPORT}/files/{first_file(api, done)}").status_code == 200

    batch_process(processing)  # the batch finishes: now it can go
    response, enqueued = delete(api, crm, django_capture_on_commit_callbacks)
    assert response.status_code == 200 and len(enqueued) == 1
    gone(api, crm, [done, loading, processing], [])
    assert uploads(loading) == []


def test_a_dataset_a_worker_is_writing_into_is_refused_without_waiting(
    api: Api, django_capture_on_commit_callbacks: Any,
) -> None:
    crm = create_dataset(api, "CRM upload")
    ingest(api, crm, [person("ann", "NL", 1)])
    # a worker loading a batch holds the dataset's lock (engine.ingest.batch_load), an export
    # a shared one (engine.exports); the deletion does not wait for either
    for shared in (False, True):
        with folder_lock(dataset_dir("prod", crm), shared=shared):
            response, enqueued = delete(api, crm, django_capture_on_commit_callbacks)
        assert response.status_code == 400
        assert response.json()["detail"] == services_jobs.DATASET_BUSY.format(id=crm)
        assert enqueued == []
    assert api.get(f"{CATALOG}/dataSets/{crm}").status_code == 200
    assert delete(api, crm, django_capture_on_commit_callbacks)[0].status_code == 200


def test_a_batch_whose_dataset_was_deleted_after_the_worker_read_it_writes_nothing(
    api: Api,
) -> None:
    """The window after COMPLETE: a worker holds the batch row it read, the dataset goes
    before the worker gets the dataset's lock. Under the lock it finds no dataset."""
    from engine.batches import batch_process as process

    crm = create_dataset(api, "CRM upload")
    batch_id = create_batch(api, crm)["id"]
    put_file(api, batch_id, crm, "people.json", jsonl([person("ann", "NL", 1)]))
    action(api, batch_id)
    read_by_worker = Batch.objects.select_related("dataset").get(pk=batch_id)
    Dataset.objects.filter(pk=crm).delete()  # as if deleted in that window
    snapshots = Snapshot.objects.filter(sandbox="prod").count()

    batch = process(batch=read_by_worker)

    assert batch.status == BatchStatus.PROCESSING  # nothing recorded, nothing inserted again
    assert not Batch.objects.filter(pk=batch_id).exists()
    assert not Dataset.objects.filter(pk=crm).exists()
    assert not dataset_dir("prod", crm).exists()
    assert uploads(batch_id) == []
    assert Snapshot.objects.filter(sandbox="prod").count() == snapshots
    with pytest.raises(DatasetDeleted):
        batch_load(batch=read_by_worker, paths=[])


def test_an_upload_racing_the_deletion_is_refused_and_leaves_no_folder(
    api: Api, monkeypatch: pytest.MonkeyPatch,
) -> None:
    crm = create_dataset(api, "CRM upload")
    batch_id = create_batch(api, crm)["id"]
    real_get: Callable[..., Batch] = services_ingestion.batch_get

    def deleted_after_the_read(*, sandbox: str, batch_id: str) -> Batch:
        batch = real_get(sandbox=sandbox, batch_id=batch_id)
        services_jobs.dataset_delete(dataset=batch.dataset)  # lands between read and write
        return batch

    monkeypatch.setattr(services_ingestion, "batch_get", deleted_after_the_read)
    response = put_file(api, batch_id, crm, "people.json", jsonl([person("ann", "NL", 1)]))
    assert response.status_code == 404
    assert response.json() == {**NOT_FOUND, "detail": services_ingestion.BATCH_NOT_FOUND.format(
        id=batch_id)}
    assert not upload_dir("prod", batch_id).exists()


def test_a_file_removed_under_a_reader_is_404_not_500(api: Api) -> None:
    """A reader that found the batch row just before the deletion removed its files."""
    import shutil

    crm = create_dataset(api, "CRM upload")
    batch_id = ingest(api, crm, [person("ann", "NL", 1)])
    file_id = first_file(api, batch_id)
    shutil.rmtree(dataset_dir("prod", crm) / batch_id)
    for method in (api.client.get, api.client.head):
        response = method(f"{EXPORT}/files/{file_id}?path=part-00000.parquet",
                          headers=api.headers())
        assert response.status_code == 404


# --- not found, sandboxes, the route ----------------------------------------------------------

def test_unknown_ids_and_other_sandboxes_datasets_are_404_and_nothing_is_deleted(
    api: Api, django_capture_on_commit_callbacks: Any,
) -> None:
    crm = create_dataset(api, "CRM upload")
    batch_id = ingest(api, crm, [person("ann", "NL", 1)])
    dev = api.in_sandbox("dev")
    dev_crm = create_dataset(dev, "CRM upload")  # the same name in dev is another dataset

    for client, dataset_id in ((api, "5c8c3c555033b814b69f947f"), (api, "x" * 300),
                               (dev, crm), (api, dev_crm)):
        response, enqueued = delete(client, dataset_id, django_capture_on_commit_callbacks)
        assert response.status_code == 404, dataset_id
        # the body of every other Catalog 404: nothing says the id exists elsewhere
        assert response.json() == DATASET_NOT_FOUND
        assert response.json() == client.get(f"{CATALOG}/dataSets/{dataset_id}").json()
        assert enqueued == []
    assert api.get(f"{CATALOG}/dataSets/{crm}").status_code == 200
    assert dev.get(f"{CATALOG}/dataSets/{dev_crm}").status_code == 200
    assert catalog_batch(api, batch_id)["status"] == "success"
    assert api.get(f"{EXPORT}/files/{first_file(api, batch_id)}").status_code == 200

    response, _ = delete(dev, dev_crm, django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert api.get(f"{CATALOG}/dataSets/{crm}").status_code == 200
    assert profile(api, "ann@example.com").status_code == 200
    again, _ = delete(dev, dev_crm, django_capture_on_commit_callbacks)
    assert again.status_code == 404 and again.json() == DATASET_NOT_FOUND


def test_the_route_answers_with_a_trailing_slash_and_checks_headers(
    api: Api, django_capture_on_commit_callbacks: Any,
) -> None:
    crm = create_dataset(api, "CRM upload")
    path = f"{CATALOG}/dataSets/{crm}"
    no_token = api.client.delete(path, headers=api.headers(Authorization=None))
    assert no_token.status_code == 403
    assert no_token.json() == {"error_code": "403010", "message": "Oauth token is missing."}
    assert api.client.delete(path, headers=api.headers(x_api_key=None)).status_code == 403
    assert api.client.delete(path, headers=api.headers(x_sandbox_name=None)).status_code == 400
    assert api.client.delete(path, headers=api.headers(
        x_sandbox_name="stage")).status_code == 403  # not one of the client's sandboxes
    assert api.client.put(path, "{}", content_type="application/json",
                          headers=api.headers()).status_code == 405
    assert api.get(path).status_code == 200

    response, _ = delete(api, crm, django_capture_on_commit_callbacks, slash="/")
    assert response.status_code == 200
    assert response.json() == [f"@/dataSets/{crm}"]


def test_the_answer_is_catalogs_delete_dataset_response(
    api: Api, django_capture_on_commit_callbacks: Any,
) -> None:
    crm = create_dataset(api, "CRM upload")
    conformance = Conformance()
    response, _ = delete(api, crm, django_capture_on_commit_callbacks)
    conformance.check(response.json(), "DELETE", "catalog:/dataSets/{DATASET_ID}", 200)
    assert not conformance.failures, "\n".join(conformance.failures)


def test_the_rebuild_runs_on_the_engine_queue() -> None:
    from config.celery import app

    route = app.amqp.router.route({}, snapshot_rebuild.name)
    assert snapshot_rebuild.name == "engine.tasks_jobs.snapshot_rebuild"
    assert route["queue"].name == "engine"


# --- export datasets ---------------------------------------------------------------------------

def export_into(api: Api, dataset_id: str, definition_id: str) -> int:
    response = api.post(f"{UPS}/export/jobs", {
        "fields": "person.name", "filter": {"segments": [{"segmentId": definition_id}]},
        "destination": {"datasetId": dataset_id}, "schema": {"name": "_xdm.context.profile"}})
    assert response.status_code == 200, response.content
    return int(response.json()["id"])


@pytest.fixture
def audience(api: Api, tmp_path: Path) -> str:
    """A store, a definition and its evaluated memberships: the definition's id."""
    build_store(tmp_path / "input")
    definition = api.post(DEFINITIONS, definition_body(name="US", value=(
        'homeAddress.countryCode = "US"'))).json()
    job = api.post(f"{UPS}/segment/jobs", [{"segmentId": definition["id"]}]).json()
    segment_job_run(job["id"])
    return str(definition["id"])


def test_an_export_dataset_is_deleted_without_a_rebuild_and_its_jobs_still_answer(
    api: Api, audience: str, django_capture_on_commit_callbacks: Any,
) -> None:
    export = create_dataset(api, "Audience export", UNION, tags=None)
    job_id = export_into(api, export, audience)
    export_job_run(job_id)
    job = api.get(f"{UPS}/export/jobs/{job_id}").json()
    assert job["status"] == "SUCCEEDED"
    batch_id = job["destination"]["batchId"]
    file_id = first_file(api, batch_id)
    waiting = export_into(api, export, audience)  # NEW: its worker has not started yet
    snapshots = Snapshot.objects.filter(sandbox="prod").count()

    response, enqueued = delete(api, export, django_capture_on_commit_callbacks)

    assert response.status_code == 200 and response.json() == [f"@/dataSets/{export}"]
    assert enqueued == []  # never in the profile store: nothing to rebuild
    assert Snapshot.objects.filter(sandbox="prod").count() == snapshots
    gone(api, export, [batch_id], [file_id])
    assert not dataset_dir("prod", export).exists()

    # the job keeps its row and answers; its batch is gone with the dataset
    shown = api.get(f"{UPS}/export/jobs/{job_id}")
    assert shown.status_code == 200, shown.content
    body = shown.json()
    assert body["status"] == "SUCCEEDED"
    assert body["destination"] == {"datasetId": export, "segmentPerBatch": False}
    assert body["metrics"] == job["metrics"]
    listed = api.get(f"{UPS}/export/jobs")
    assert listed.status_code == 200
    assert {r["id"] for r in listed.json()["records"]} == {job_id, waiting}
    assert ExportJob.objects.filter(pk__in=[job_id, waiting]).count() == 2

    # a job queued before the deletion fails saying its destination is not found
    export_job_run(waiting)
    failed = api.get(f"{UPS}/export/jobs/{waiting}").json()
    assert failed["status"] == "FAILED"
    assert failed["errors"][0]["msg"] == DESTINATION_MISSING.format(id=export)
    assert not dataset_dir("prod", export).exists()


def test_an_export_writing_into_the_dataset_refuses_its_deletion(
    api: Api, audience: str, django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import engine.exports

    export = create_dataset(api, "Audience export", UNION, tags=None)
    job_id = export_into(api, export, audience)
    real_write = engine.exports._write
    answers: list[Any] = []

    def write(*args: Any) -> None:  # the deletion arrives while the worker writes
        answers.append(delete(api, export, django_capture_on_commit_callbacks)[0])
        real_write(*args)

    monkeypatch.setattr(engine.exports, "_write", write)
    export_job_run(job_id)

    assert answers[0].status_code == 400
    assert answers[0].json()["detail"] == services_jobs.DATASET_BUSY.format(id=export)
    job = api.get(f"{UPS}/export/jobs/{job_id}").json()
    assert job["status"] == "SUCCEEDED"
    assert catalog_batch(api, job["destination"]["batchId"])["status"] == "success"
