"""The Batch Ingestion calls on a fake AEP (httpx.MockTransport): a batch is created for a
dataset, a file is streamed into it as raw bytes with its length, and completed; an upload is
a PUT, so a 503 sends the whole file again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aep import AEPClient, AEPPermanentError
from aep.client import EVENT_CLASS
from tests.aep.conftest import FakeAEP, FakeTime, reply

DATASET = "5c8c3c555033b814b69f947f"
BATCH = "5d01230fc78a4e4f8c0c6b387b4b8d1c"
CREATED = {"id": BATCH, "imsOrg": "{ORG_ID}", "updated": 1552694873602,
           "status": "loading", "created": 1552694873602,
           "relatedObjects": [{"type": "dataSet", "id": DATASET}], "version": "1.0.0",
           "tags": {}, "createdUser": "{USER_ID}", "updatedUser": "{USER_ID}"}


def test_a_file_goes_into_a_new_batch_and_the_batch_is_completed(
        fake: FakeAEP, aep_client: AEPClient, tmp_path: Path) -> None:
    data = tmp_path / "crm.jsonl"
    data.write_bytes(b'{"a": 1}\n' * 300_000)  # bigger than one chunk
    fake.script = [reply(201, CREATED), reply(200), reply(200)]
    batch = aep_client.create_batch(DATASET, file_format="json")
    aep_client.upload_batch_file(batch.id, DATASET, "crm.jsonl", data)
    aep_client.complete_batch(batch.id)
    create, upload, complete = fake.requests
    assert (batch.id, batch.status, batch.dataset_id) == (BATCH, "loading", DATASET)
    assert create.method == "POST" and create.url.path == "/data/foundation/import/batches"
    assert json.loads(create.content) == {"datasetId": DATASET, "inputFormat": {"format": "json"}}
    assert upload.method == "PUT"
    assert upload.url.path == (f"/data/foundation/import/batches/{BATCH}/datasets/{DATASET}"
                               "/files/crm.jsonl")
    assert upload.headers["Content-Type"] == "application/octet-stream"
    assert upload.headers["Content-Length"] == str(data.stat().st_size)
    assert "Transfer-Encoding" not in upload.headers
    assert upload.read() == data.read_bytes()
    assert complete.method == "POST" and complete.url.params["action"] == "COMPLETE"


def test_an_upload_that_meets_a_503_is_sent_again_whole(
        fake: FakeAEP, fake_time: FakeTime, aep_client: AEPClient, tmp_path: Path) -> None:
    data = tmp_path / "web.json"
    data.write_bytes(b"[" + b'{"b": 2},' * 200_000 + b'{"b": 2}]')
    fake.script = [reply(503, {"title": "Service Unavailable"}), reply(200)]
    aep_client.upload_batch_file(BATCH, DATASET, "web.json", data)
    first, second = fake.requests
    assert first.read() == second.read() == data.read_bytes()
    assert len(fake_time.sleeps) == 1


def test_a_refused_batch_says_why(fake: FakeAEP, aep_client: AEPClient) -> None:
    fake.script = [reply(400, {"type": "https://ns.adobe.com/aep/errors/XDM-1010-400",
                               "title": "Dataset not found", "status": 400,
                               "detail": f"Dataset {DATASET} does not exist"})]
    with pytest.raises(AEPPermanentError) as raised:
        aep_client.create_batch(DATASET)
    assert raised.value.status == 400
    assert len(fake.requests) == 1  # a create is not retried


def test_a_profile_enabled_dataset_is_created_with_its_class_and_tags(
        fake: FakeAEP, aep_client: AEPClient) -> None:
    fake.script = [reply(201, [f"@/dataSets/{DATASET}"])]
    assert aep_client.create_dataset(name="Web events", schema_ref=EVENT_CLASS,
                                     profile_enabled=True) == DATASET
    body = json.loads(fake.requests[0].content)
    assert body["schemaRef"]["id"] == EVENT_CLASS
    assert body["tags"] == {"unifiedProfile": ["enabled:true"],
                            "unifiedIdentity": ["enabled:true"]}


def test_a_dataset_is_deleted_by_its_id(fake: FakeAEP, aep_client: AEPClient) -> None:
    fake.script = [reply(200, [f"@/dataSets/{DATASET}"])]
    aep_client.delete_dataset(DATASET)
    (request,) = fake.requests
    assert request.method == "DELETE"
    assert request.url.path == f"/data/foundation/catalog/dataSets/{DATASET}"
