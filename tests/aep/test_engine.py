"""Every AEPClient method against the built-in engine, in this process (httpx.WSGITransport).

The engine's preview, segment and export work runs in Celery tasks it enqueues after its commit;
``engine_tasks`` runs them eagerly when the request's transaction "commits", as a worker would.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow.parquet as pq
import pytest

from aep import (
    AEPAuthError,
    AEPClient,
    AEPNotFoundError,
    AEPPermanentError,
    Credentials,
    Estimate,
    SegmentDefinition,
)
from tests.aep.conftest import Engine

pytestmark = pytest.mark.django_db

US = 'homeAddress.countryCode = "US"'
US_PEOPLE = {"ann", "bo", "di", "flo"}
RICH_US = {"ann", "di"}


def first_names(rows: list[dict[str, Any]]) -> set[str]:
    return {row["person"]["name"]["firstName"].lower() for row in rows}


def test_token_is_fetched_once_and_reused(engine: Engine) -> None:
    token = engine.client.token()
    assert token and engine.client.token() == token
    engine.client.sandboxes()
    engine.client.merge_policies()
    assert engine.transport.paths.count("/ims/token/v3") == 1


def test_sandboxes(engine: Engine) -> None:
    sandboxes = engine.client.sandboxes()
    assert [(s.name, s.type, s.is_default) for s in sandboxes] == [
        ("prod", "production", True), ("dev", "development", False)]
    assert sandboxes[0].title == "Production" and sandboxes[0].state == "active"
    assert sandboxes[0].raw["name"] == "prod"


def test_definition_create_get_update_delete(engine: Engine) -> None:
    client = engine.client
    created = client.create_definition(name="US", pql_text=US, description="In the US")
    assert isinstance(created, SegmentDefinition)
    assert (created.name, created.expression, created.expression_format) == (
        "US", US, "pql/text")
    assert created.merge_policy_id and created.schema_name == "_xdm.context.profile"
    assert created.evaluation_enabled("batch")
    assert client.get_definition(created.id) == created

    updated = client.update_definition(created.id, name="US people", pql_text=US,
                                       description="changed")
    assert (updated.id, updated.name, updated.description) == (created.id, "US people",
                                                               "changed")
    assert updated.creation_time == created.creation_time

    client.delete_definition(created.id)
    with pytest.raises(AEPNotFoundError) as caught:
        client.get_definition(created.id)
    assert caught.value.status == 404 and caught.value.code


def test_definition_from_pql_json(engine: Engine) -> None:
    tree = json.loads(engine.client.convert_pql(text=US)["expression"]["value"])
    created = engine.client.create_definition(name="US json", pql_json=tree)
    assert created.expression_format == "pql/json"
    assert json.loads(created.expression) == tree


def test_an_invalid_definition_is_a_permanent_error_with_aeps_code(engine: Engine) -> None:
    with pytest.raises(AEPPermanentError) as caught:
        engine.client.create_definition(name="broken", pql_text="homeAddress.countryCode = ")
    assert caught.value.status == 400
    assert caught.value.code and caught.value.message
    assert caught.value.request_id


def test_definitions_follow_the_apis_links(engine: Engine) -> None:
    names = [f"segment {n}" for n in range(5)]
    for name in names:
        engine.client.create_definition(name=name, pql_text=US)
    engine.transport.paths.clear()
    listed = [d.name for d in engine.client.definitions(limit=2, sort="name:asc")]
    assert listed == names
    assert engine.transport.paths.count("/data/core/ups/segment/definitions") == 3

    page = engine.client.definitions_page(start=2, limit=2, sort="name:asc")
    assert [d.name for d in page.items] == names[2:4]
    assert page.total_count == 5 and page.next_link


def test_bulk_get_definitions_leaves_out_unknown_ids(engine: Engine) -> None:
    one = engine.client.create_definition(name="one", pql_text=US)
    two = engine.client.create_definition(name="two", pql_text=US)
    found = engine.client.bulk_get_definitions([one.id, two.id, "no-such-id"])
    assert {key: d.name for key, d in found.items()} == {one.id: "one", two.id: "two"}


def test_convert_pql_both_ways(engine: Engine) -> None:
    as_json = engine.client.convert_pql(text=US)["expression"]
    assert as_json["format"] == "pql/json"
    back = engine.client.convert_pql(json=json.loads(as_json["value"]))["expression"]
    assert back["format"] == "pql/text" and back["value"] == US


def test_preview_and_estimate(engine: Engine, engine_tasks: Any) -> None:
    with engine_tasks():
        preview = engine.client.create_preview(pql_text=US)
    assert preview.id and preview.state in ("NEW", "RUNNING", "RESULT_READY")
    estimate = engine.client.get_estimate(preview.id)
    assert isinstance(estimate, Estimate) and estimate.is_finished
    assert (estimate.state, estimate.estimated_size) == ("RESULT_READY", len(US_PEOPLE))
    assert estimate.profiles_matched_so_far == len(US_PEOPLE)
    assert estimate.total_rows == 6

    page = engine.client.get_preview(preview.id, offset=0, limit=3)
    assert page.state == "RESULT_READY" and len(page.results) == 3 and page.has_next
    rest = engine.client.get_preview(preview.id, offset=3, limit=3)
    assert not rest.has_next
    people = [item for result in page.results + rest.results for item in result.values()]
    assert first_names([p["entity"] for p in people]) == US_PEOPLE

    engine.client.delete_preview(preview.id)
    with pytest.raises(AEPNotFoundError):
        engine.client.get_estimate(preview.id)


def test_preview_sample_status(engine: Engine) -> None:
    status = engine.client.preview_sample_status()
    assert int(status["totalRows"]) == 6


def test_segment_job_run_list_bulk_get_and_cancel(engine: Engine, engine_tasks: Any) -> None:
    client = engine.client
    us = client.create_definition(name="US", pql_text=US)
    rich = client.create_definition(
        name="Rich US", pql_text=f'inSegment("{us.id}") and loyalty.points > 100')
    with engine_tasks():
        job = client.create_segment_job([us.id, rich.id], request_id="our-submission-1")
    assert job.status in ("NEW", "PROCESSING") and set(job.segment_ids) == {us.id, rich.id}

    done = client.get_segment_job(job.id)
    assert done.status == "SUCCEEDED" and done.is_finished and not done.errors
    assert done.segmented_profile_counter == {us.id: len(US_PEOPLE), rich.id: len(RICH_US)}
    assert done.raw["requestId"] == "our-submission-1"

    waiting = client.create_segment_job([us.id])  # no engine_tasks: it never runs
    engine.transport.paths.clear()
    listed = [j.id for j in client.segment_jobs(limit=1)]
    assert sorted(listed) == sorted([job.id, waiting.id])
    assert engine.transport.paths.count("/data/core/ups/segment/jobs") == 2
    assert [j.id for j in client.segment_jobs(status="SUCCEEDED")] == [job.id]
    assert {k: j.status for k, j in client.bulk_get_segment_jobs([job.id, "nope"]).items()} \
        == {job.id: "SUCCEEDED"}

    client.cancel_segment_job(waiting.id)
    assert client.get_segment_job(waiting.id).status in ("CANCELLING", "CANCELLED")


def test_everything_job(engine: Engine, engine_tasks: Any) -> None:
    us = engine.client.create_definition(name="US", pql_text=US)
    with engine_tasks():
        job = engine.client.create_segment_job(["*"])
    done = engine.client.get_segment_job(job.id)
    assert done.status == "SUCCEEDED"
    assert done.segmented_profile_counter == {us.id: len(US_PEOPLE)}


def test_dataset_export_batches_files_and_download(engine: Engine, engine_tasks: Any,
                                                   tmp_path: Any) -> None:
    client = engine.client
    us = client.create_definition(name="US", pql_text=US)
    rich = client.create_definition(
        name="Rich US", pql_text=f'inSegment("{us.id}") and loyalty.points > 100')
    with engine_tasks():
        job = client.create_segment_job([us.id, rich.id])
    assert client.get_segment_job(job.id).status == "SUCCEEDED"

    dataset_id = client.create_dataset(name="Segment Export", description="rich US")
    dataset = client.get_dataset(dataset_id)
    assert (dataset.id, dataset.name) == (dataset_id, "Segment Export")
    assert dataset.schema_ref == "https://ns.adobe.com/xdm/context/profile__union"
    other = client.create_dataset(name="Another")
    assert {d.id for d in client.datasets(limit=1)} >= {dataset_id, other}
    assert [d.id for d in client.datasets(name="Another")] == [other]

    with engine_tasks():
        export = client.create_export_job({
            "fields": "person.name,loyalty.points",
            "filter": {"segments": [{"segmentId": rich.id, "segmentNs": "ups",
                                     "status": ["realized", "existing"]}]},
            "destination": {"datasetId": dataset_id, "segmentPerBatch": False},
            "schema": {"name": "_xdm.context.profile"}})
    finished = client.get_export_job(export.id)
    assert finished.status == "SUCCEEDED", finished.errors
    assert finished.dataset_id == dataset_id and finished.batch_id
    assert finished.total_exported == len(RICH_US)

    batch = client.get_batch(finished.batch_id)
    assert (batch.status, batch.dataset_id) == ("success", dataset_id)
    assert [b.id for b in client.batches(dataset_id=dataset_id)] == [batch.id]

    rows: list[dict[str, Any]] = []
    for batch_file in client.batch_files(batch.id):
        for entry in client.file_listing(batch_file.id):
            assert entry.name
            content = client.download(batch_file.id, entry.name)
            assert entry.length == len(content)
            buffer = io.BytesIO()
            assert client.stream_download(batch_file.id, entry.name, buffer,
                                          chunk_size=256) == len(content)
            assert buffer.getvalue() == content
            rows.extend(pq.read_table(io.BytesIO(content)).to_pylist())
    assert first_names(rows) == RICH_US
    downloads = client.batch_downloads(batch.id)
    assert [(file_id, entry.name) for file_id, entry in downloads] == [
        (f.id, e.name) for f in client.batch_files(batch.id) for e in client.file_listing(f.id)]

    with pytest.raises(AEPNotFoundError):
        client.download(batch_file.id, "../../etc/passwd")

    waiting = client.create_export_job({"destination": {"datasetId": dataset_id},
                                        "schema": {"name": "_xdm.context.profile"}})
    assert [j.id for j in client.export_jobs(limit=1)] == [waiting.id, export.id]
    client.cancel_export_job(waiting.id)
    assert client.get_export_job(waiting.id).status in ("CANCELLING", "CANCELLED")


def test_merge_policies(engine: Engine) -> None:
    policies = engine.client.merge_policies()
    default = next(p for p in policies if p.is_default)
    assert default.schema_name == "_xdm.context.profile"
    assert default.attribute_merge == "timestampOrdered"
    assert engine.client.get_merge_policy(default.id) == default


def test_union_schema_is_read_once_per_sandbox(engine: Engine) -> None:
    schema = engine.client.union_schema()
    assert schema["meta:altId"] == "_xdm.context.profile__union"
    assert "countryCode" in schema["properties"]["homeAddress"]["properties"]
    engine.client.union_schema()
    schema_paths = [p for p in engine.transport.paths if "/schemaregistry/" in p]
    assert len(schema_paths) == 1
    events = engine.client.union_schema("_xdm.context.experienceevent")
    assert "commerce" in events["properties"]


def test_entity_and_its_events(engine: Engine) -> None:
    ann = engine.client.entity("ann@example.com", "Email")
    assert ann.entity["person"]["name"]["firstName"] == "Ann" and ann.entity_id
    events = list(engine.client.entity_events("ann@example.com", "Email", limit=1))
    stamps = [e.timestamp or 0 for e in events]
    assert stamps == sorted(stamps)
    assert len(events) == 2 and all(e.related_entity_id for e in events)
    assert engine.transport.paths.count("/data/core/ups/access/entities") == 1 + 2
    newest = next(engine.client.entity_events("ann@example.com", "Email", newest_first=True))
    assert newest.timestamp == events[-1].timestamp
    with pytest.raises(AEPNotFoundError):
        engine.client.entity("nobody@example.com", "Email")


def test_another_sandbox_sees_its_own_definitions(engine: Engine) -> None:
    engine.client.create_definition(name="prod only", pql_text=US)
    dev = engine.client.with_sandbox("dev")
    assert list(dev.definitions()) == []
    assert [d.name for d in engine.client.definitions()] == ["prod only"]


def test_a_wrong_secret_is_an_auth_error(engine: Engine) -> None:
    creds = Credentials(ims_url="http://testserver", client_id=engine.client_id,
                        client_secret="wrong", org_id=engine.client.credentials.org_id)
    client = AEPClient("http://testserver", creds, "prod", transport=engine.transport,
                       retry=engine.client.retry)
    with pytest.raises(AEPAuthError) as caught:
        client.sandboxes()
    assert caught.value.code == "invalid_client"
    assert str(caught.value) == ("IMS refused the client credentials (invalid_client): "
                                 "invalid client_secret parameter")


def test_an_expired_token_is_refreshed_once(engine: Engine) -> None:
    from engine.models import AccessToken

    engine.client.sandboxes()
    AccessToken.objects.all().delete()  # the engine forgets it: the next call answers 401
    assert len(engine.client.sandboxes()) == 2
    assert engine.transport.paths.count("/ims/token/v3") == 2


def test_a_sandbox_the_client_may_not_use_is_refused(engine: Engine) -> None:
    with pytest.raises(AEPPermanentError) as caught:
        list(engine.client.with_sandbox("elsewhere").definitions())
    assert caught.value.status in (403, 404, 400)


def test_preview_of_pql_json(engine: Engine, engine_tasks: Any) -> None:
    tree = json.loads(engine.client.convert_pql(text=US)["expression"]["value"])
    with engine_tasks():
        preview = engine.client.create_preview(pql_json=tree, graph_type="none")
    assert engine.client.get_estimate(preview.id).estimated_size == len(US_PEOPLE)
