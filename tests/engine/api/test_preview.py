"""Preview and estimate through the REST API (spec/aep-api.md §3), on the demo store's real
DuckDB snapshot.

The Celery task is run eagerly, in-process, by calling ``preview_run(preview_id)`` after the
POST (in these tests the POST's on_commit enqueue never fires: the test's transaction is never
committed); the real worker round trip is tested elsewhere (tests/test_celery_worker.py).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

import pql
from engine.api import errors
from engine.models import Preview, PreviewState
from engine.previews import first_window, preview_steps
from engine.segments import segment_members
from engine.tasks import preview_run, previews_expire
from tests.engine.api.conftest import UPS, Api, definition_body
from tests.engine.conftest import DEMO_SANDBOX, DemoStore

pytestmark = pytest.mark.django_db

PREVIEW = f"{UPS}/preview"
ESTIMATE = f"{UPS}/estimate"
US = 'homeAddress.countryCode = "US"'
BUYERS = 'xEvent[eventType = "commerce.purchases"].count() >= 2'


@pytest.fixture
def demo_api(make_api: Any, demo_store: DemoStore, settings: Any) -> Api:
    """An API client of the demo store's sandbox, with the API reading the demo store's files."""
    settings.ENGINE_DATA_DIR = demo_store.engine_dir
    return make_api(sandboxes=(DEMO_SANDBOX, "prod")).in_sandbox(DEMO_SANDBOX)


def preview_body(text: str = US, **extra: Any) -> dict[str, Any]:
    return {"predicateExpression": text, "predicateType": "pql/text",
            "predicateModel": "_xdm.context.profile", "graphType": "pdg", **extra}


def create(api: Api, text: str = US, **extra: Any) -> dict[str, Any]:
    response = api.post(PREVIEW, preview_body(text, **extra))
    assert response.status_code == 201, response.content
    return response.json()


def truth(demo_store: DemoStore, preview_id: str, text: str) -> set[str]:
    """The exact members at the preview's own execution time."""
    now = Preview.objects.get(pk=preview_id).evaluated_at
    assert now is not None
    return segment_members(demo_store.con, pql.parse(text), now=now).members


def test_post_answers_201_new_with_location_and_stores_the_row(demo_api: Api,
                                                               demo_store: DemoStore) -> None:
    response = demo_api.post(PREVIEW, preview_body())
    assert response.status_code == 201
    body = response.json()
    assert body["state"] == body["previewQueryStatus"] == "NEW"
    assert body["previewExecutionId"] == 0
    assert response["X-Location"] == f"{PREVIEW}/{body['previewId']}"
    row = Preview.objects.get(pk=body["previewId"])
    assert str(row.query_id) == body["previewQueryId"]
    assert row.sandbox == DEMO_SANDBOX
    assert demo_store.engine_dir is not None
    assert row.snapshot_file and (demo_store.engine_dir / DEMO_SANDBOX / "snapshots"
                                  / row.snapshot_file).is_file()
    assert row.evaluated_at is not None
    assert row.expires_at - row.evaluated_at == timedelta(seconds=3600)


def test_the_task_makes_the_estimate_result_ready_and_exact_on_a_small_store(
    demo_api: Api, demo_store: DemoStore
) -> None:
    preview_id = create(demo_api, BUYERS)["previewId"]
    running = demo_api.get(f"{ESTIMATE}/{preview_id}").json()
    assert running["state"] == "NEW"

    preview_run(preview_id)

    response = demo_api.get(f"{ESTIMATE}/{preview_id}")
    assert response.status_code == 200
    body = response.json()
    expected = len(truth(demo_store, preview_id, BUYERS))
    total = len(demo_store.profiles)
    assert body["state"] == "RESULT_READY"
    assert body["estimatedSize"] == body["profilesMatchedSoFar"] == expected
    assert body["totalRows"] == body["numRowsToRead"] == body["profilesReadSoFar"] == total
    assert body["standardError"] == 0
    assert body["confidenceInterval"] == "95%"
    assert body["confidenceIntervalBounds"] == {"low": expected, "high": expected}
    assert body["error"] == {"description": "", "traceback": ""}
    query_id = Preview.objects.get(pk=preview_id).query_id
    assert body["_links"]["preview"] == (f"{PREVIEW}/{preview_id}/execution/0"
                                         f"?previewQueryId={query_id}")
    members = truth(demo_store, preview_id, BUYERS)
    per_namespace = Counter(namespace for member in members
                            for namespace in demo_store.profiles[member].profile["identityMap"])
    namespaces = {item["code"]: item for item in body["estimatedNamespaceDistribution"]}
    assert {code: item["profilesMatchedSoFar"] for code, item in namespaces.items()} == dict(
        per_namespace)
    assert namespaces["ECID"]["namespaceId"] == "4"
    assert namespaces["Email"]["namespaceId"] == "6"
    assert namespaces["CRMID"]["namespaceId"] == "CRMID"  # custom namespaces keep their code


def test_the_estimate_refines_progressively(demo_api: Api, demo_store: DemoStore) -> None:
    preview_id = create(demo_api)["previewId"]
    steps = preview_steps(preview_id)
    try:
        next(steps)  # the task's first step only
        body = demo_api.get(f"{ESTIMATE}/{preview_id}").json()
        assert body["state"] == "RUNNING"
        assert 0 < body["profilesReadSoFar"] < body["totalRows"] == len(demo_store.profiles)
        assert body["estimatedSize"] > 0 and body["standardError"] > 0
        low, high = body["confidenceIntervalBounds"].values()
        assert low <= body["estimatedSize"] <= high
    finally:
        steps.close()
    preview_run(preview_id)  # the rerun of a crashed task finishes it
    row = Preview.objects.get(pk=preview_id)
    assert row.state == PreviewState.RESULT_READY
    reads = [step["profilesReadSoFar"] for step in row.estimate["history"]]
    assert reads == sorted(reads) and reads[0] < reads[-1] == len(demo_store.profiles)


def test_preview_pages_are_the_members_in_order_with_identities(
    demo_api: Api, demo_store: DemoStore
) -> None:
    preview_id = create(demo_api)["previewId"]
    preview_run(preview_id)
    expected = truth(demo_store, preview_id, US)
    seen: list[str] = []
    path = f"{PREVIEW}/{preview_id}?offset=0&limit=50"
    pages = 0
    while path:
        response = demo_api.get(path)
        assert response.status_code == 200
        body = response.json()
        assert body["state"] == "RESULT_READY"
        assert body["page"]["size"] == len(body["results"]) <= 50
        assert body["page"]["offset"] == len(seen)
        for result in body["results"]:
            ((profile_id, item),) = result.items()
            seen.append(profile_id)
            assert item["entity"]["homeAddress"]["countryCode"] == "US"
            assert item["identities"], item
            codes = {identity["namespace"]["code"] for identity in item["identities"]}
            assert codes == set(item["entity"]["identityMap"])
            assert set(item["endCustomerIds"]) == {
                f"{i['namespace']['code']}:{i['id']}" for i in item["identities"]}
            assert item["_href"].startswith(f"{UPS}/access/entities?")
        path = body["links"]["next"]
        pages += 1
    # storage order: by hash bucket, then profile id (a page reads only the buckets it needs)
    assert seen == sorted(expected, key=lambda pid: (int(pid[:4], 16) % 1024, pid))
    assert pages == len(expected) // 50 + 1
    # the estimate's link answers the same first page
    link = demo_api.get(f"{ESTIMATE}/{preview_id}").json()["_links"]["preview"]
    first = demo_api.get(link + "&limit=50").json()
    assert [next(iter(r)) for r in first["results"]] == seen[:50]


@pytest.mark.parametrize("steps", ["counted", "running", "none"])
def test_pages_of_a_sparse_segment_are_its_members_whatever_the_estimate_says(
    demo_api: Api, demo_store: DemoStore, steps: str
) -> None:
    """The first window of a page read is sized from the estimate's steps (first_window); a
    window too narrow is widened, one too wide is cut to the page: the pages are the same."""
    preview_id = create(demo_api, BUYERS)["previewId"]
    preview_run(preview_id)
    preview = Preview.objects.get(pk=preview_id)
    if steps == "running":  # only the first step counted, as a poller may read it
        preview.estimate["history"] = preview.estimate["history"][:1]
    elif steps == "none":  # a row written before steps counted their buckets
        for step in preview.estimate["history"]:
            del step["bucketsReadSoFar"]
    preview.save()
    expected = sorted(truth(demo_store, preview_id, BUYERS),
                      key=lambda pid: (int(pid[:4], 16) % 1024, pid))
    assert 10 < len(expected) < len(demo_store.profiles) / 3
    for offset, limit in ((0, 7), (7, 7), (len(expected) - 3, 7), (0, len(expected))):
        body = demo_api.get(f"{PREVIEW}/{preview_id}",
                            {"offset": offset, "limit": limit}).json()
        assert [next(iter(r)) for r in body["results"]] == expected[offset:offset + limit]
        assert bool(body["links"]["next"]) == (offset + limit < len(expected))


@pytest.mark.parametrize(("steps", "wanted", "window"), [
    # dense: the first step holds 60,000 members; 1001 lie in its first ~2 % (with the margin)
    ([(128, 60_000), (256, 120_000)], 1001, 4),
    # sparse: the 20th member lies halfway through the second step (with the margin: 5/8)
    ([(128, 10), (256, 30), (384, 45)], 20, 128 + 80 + 1),
    # the whole sample counted, fewer members than wanted: read it all, once
    ([(512, 100), (1024, 200)], 1001, 1024),
    # still running: the rate so far, projected with the margin, within the sample
    ([(128, 100)], 501, 803),
    ([(128, 100)], 1001, 1024),
    ([(128, 0)], 1001, 128),
    # no steps yet
    ([], 1001, 4),
])
def test_first_window_is_sized_from_the_estimates_steps(
    steps: list[tuple[int, int]], wanted: int, window: int
) -> None:
    history = [{"bucketsReadSoFar": high, "profilesMatchedSoFar": matched}
               for high, matched in steps]
    assert first_window(history, wanted, 1024) == window


def test_preview_page_past_the_end_is_empty(demo_api: Api) -> None:
    preview_id = create(demo_api)["previewId"]
    body = demo_api.get(f"{PREVIEW}/{preview_id}", {"offset": 100_000, "limit": 10}).json()
    assert body["results"] == [] and body["links"]["next"] == ""
    assert body["links"]["prev"].endswith("offset=99990&limit=10")


def test_delete_answers_killed_and_the_preview_is_gone(demo_api: Api) -> None:
    preview_id = create(demo_api)["previewId"]
    response = demo_api.delete(f"{PREVIEW}/{preview_id}")
    assert response.status_code == 200
    assert response.json() == {"status": True, "message": "KILLED"}
    assert not Preview.objects.filter(pk=preview_id).exists()
    preview_run(preview_id)  # the task finds nothing to do
    assert demo_api.get(f"{ESTIMATE}/{preview_id}").status_code == 404
    assert demo_api.get(f"{PREVIEW}/{preview_id}").status_code == 404
    assert demo_api.delete(f"{PREVIEW}/{preview_id}").status_code == 404


def test_a_preview_deleted_while_running_stops_its_estimate(demo_api: Api) -> None:
    preview_id = create(demo_api)["previewId"]
    steps = preview_steps(preview_id)
    next(steps)
    demo_api.delete(f"{PREVIEW}/{preview_id}")
    assert list(steps) == []  # the next write finds no row: no more steps


def test_an_expired_preview_is_404_and_cleaned_up(demo_api: Api) -> None:
    preview_id = create(demo_api)["previewId"]
    preview_run(preview_id)
    Preview.objects.filter(pk=preview_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    for path in (f"{ESTIMATE}/{preview_id}", f"{PREVIEW}/{preview_id}"):
        response = demo_api.get(path)
        assert response.status_code == 404
        assert response.json()["type"] == errors.ERROR_TYPE_BASE + errors.NOT_FOUND_TYPE
    live = create(demo_api)["previewId"]
    assert previews_expire() == 1
    assert list(Preview.objects.values_list("pk", flat=True)) == [live]


def test_bad_pql_is_400_with_its_position_and_nothing_is_stored(demo_api: Api) -> None:
    response = demo_api.post(PREVIEW, preview_body('homeAddress.countryCode = "US" and'))
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == errors.ERROR_TYPE_BASE + errors.VALIDATION_TYPE
    item = body["errors"]["400"][0]
    assert (item["line"], item["column"]) == (1, 35)
    assert "(line 1, column 35)" in body["title"]
    assert not Preview.objects.exists()


def test_pql_json_predicates_are_accepted(demo_api: Api, demo_store: DemoStore) -> None:
    import json

    value = json.dumps(pql.to_json(pql.parse(US)))
    preview_id = create(demo_api, value, predicateType="pql/json")["previewId"]
    preview_run(preview_id)
    body = demo_api.get(f"{ESTIMATE}/{preview_id}").json()
    assert body["estimatedSize"] == len(truth(demo_store, preview_id, US))


@pytest.mark.parametrize(("field", "value"), [("predicateType", "sql"), ("graphType", "full"),
                                              ("predicateModel", "_xdm.context.account"),
                                              ("mergePolicyId", "no-such-policy"),
                                              ("predicateExpression", " ")])
def test_bad_fields_are_400(demo_api: Api, field: str, value: str) -> None:
    response = demo_api.post(PREVIEW, preview_body(**{field: value}))
    assert response.status_code == 400, response.content
    assert not Preview.objects.exists()


def test_another_sandboxs_preview_is_404(demo_api: Api) -> None:
    preview_id = create(demo_api)["previewId"]
    other = demo_api.in_sandbox("prod")
    for response in (other.get(f"{ESTIMATE}/{preview_id}"), other.get(f"{PREVIEW}/{preview_id}"),
                     other.delete(f"{PREVIEW}/{preview_id}")):
        assert response.status_code == 404
    assert Preview.objects.filter(pk=preview_id).exists()


def test_a_sandbox_without_a_snapshot_cannot_preview(demo_api: Api, tmp_path: Any) -> None:
    from tests.engine.api.store import schema_store

    schema_store(tmp_path)  # a dataset (so its fields are known), no snapshot built from it
    response = demo_api.in_sandbox("prod").post(PREVIEW, preview_body())
    assert response.status_code == 400
    assert "no profile store yet" in response.json()["title"]


def test_a_failure_is_written_into_the_row(demo_api: Api) -> None:
    preview_id = create(demo_api)["previewId"]
    Preview.objects.filter(pk=preview_id).update(snapshot_file="gone.duckdb")
    preview_run(preview_id)
    body = demo_api.get(f"{ESTIMATE}/{preview_id}").json()
    assert body["state"] == "FAILED"
    assert body["error"]["description"].startswith("The estimate failed: The snapshot gone")
    assert body["error"]["traceback"] == ""


def test_routes_answer_with_and_without_a_trailing_slash(demo_api: Api) -> None:
    preview_id = create(demo_api)["previewId"]
    assert demo_api.post(f"{PREVIEW}/", preview_body()).status_code == 201
    assert demo_api.get(f"{ESTIMATE}/{preview_id}/").status_code == 200
    assert demo_api.get(f"{PREVIEW}/{preview_id}/").status_code == 200
    assert demo_api.get(f"{UPS}/previewsamplestatus/").status_code == 200


def test_preview_sample_status_describes_the_store(demo_api: Api,
                                                   demo_store: DemoStore) -> None:
    from engine.models import Batch, Snapshot

    response = demo_api.get(f"{UPS}/previewsamplestatus")
    assert response.status_code == 200
    body = response.json()
    total = len(demo_store.profiles)
    assert body["totalRows"] == body["numRowsToRead"] == str(total)  # strings, as on AEP
    assert body["samplingRatio"] == 1.0
    profile_records = sum(b.record_count for b in Batch.objects.filter(
        dataset__sandbox=DEMO_SANDBOX, dataset__xdm_class="profile"))
    assert body["totalFragmentCount"] == profile_records >= total
    assert body["status"] == "TASK_FINISHED"
    assert body["mergeStrategy"] == "timestampOrdered_auto"
    snapshot = Snapshot.objects.get(sandbox=DEMO_SANDBOX, status="ready")
    assert body["snapshotFile"] == snapshot.file_name
    assert snapshot.finished_at is not None
    assert body["lastSampledTimestamp"].startswith(str(snapshot.finished_at.year))
    last = Batch.objects.filter(dataset__sandbox=DEMO_SANDBOX).order_by("-completed_at").first()
    assert last is not None
    assert body["lastBatchId"] == last.id
    assert body["lastSuccessfulBatchTimestamp"]
    assert body["sampleJobRunning"]["status"] is False


def test_preview_sample_status_of_an_empty_sandbox(demo_api: Api) -> None:
    body = demo_api.in_sandbox("prod").get(f"{UPS}/previewsamplestatus").json()
    assert (body["totalRows"], body["status"], body["lastBatchId"]) == ("0", "NO_SAMPLE", "")


def test_the_openapi_document_describes_these_routes_and_every_reference_resolves(
    client: Any,
) -> None:
    import json
    import re

    document = client.get("/data/openapi.json").json()
    for path, methods in {"/data/core/ups/preview": {"post"},
                          "/data/core/ups/preview/{previewId}": {"get", "delete"},
                          "/data/core/ups/estimate/{previewId}": {"get"},
                          "/data/core/ups/previewsamplestatus": {"get"},
                          "/data/core/ups/access/entities": {"get"}}.items():
        assert methods <= set(document["paths"][path]), path
    for ref in set(re.findall(r'"\$ref": "#/components/(\w+)/([\w-]+)"', json.dumps(document))):
        assert ref[1] in document["components"][ref[0]], ref


def test_in_segment_reads_the_memberships_segment_jobs_wrote(api: Api, tmp_path: Any) -> None:
    from engine.memberships import write_memberships
    from engine.snapshot import open_snapshot
    from tests.engine.api.store import build_store

    build_store(tmp_path / "input")  # six people in sandbox prod
    with open_snapshot("prod") as con:
        ids = dict(con.execute("SELECT personalEmail.address, _profile_id FROM profiles")
                   .fetchall())
    # inSegment names a definition of the sandbox (the API checks it); its members are the
    # ones a segment job wrote, whatever its expression says
    segment = api.post(f"{UPS}/segment/definitions", definition_body(
        name="Some", value='homeAddress.countryCode = "FR"')).json()["id"]
    write_memberships("prod", {segment: {ids["ann@example.com"], ids["cy@example.com"]}},
                      timezone.now())
    preview_id = create(api, f'inSegment("{segment}") and homeAddress.countryCode = "US"')[
        "previewId"]
    preview_run(preview_id)
    assert api.get(f"{ESTIMATE}/{preview_id}").json()["estimatedSize"] == 1
    results = api.get(f"{PREVIEW}/{preview_id}").json()["results"]
    assert [next(iter(result)) for result in results] == [ids["ann@example.com"]]


@pytest.mark.parametrize("graph_type", ["none", "pdg"])
def test_graph_type_picks_a_merge_policy_with_or_without_stitching(
    api: Api, tmp_path: Any, graph_type: str
) -> None:
    from engine.models import MergePolicy
    from engine.snapshot import default_merge_policy
    from tests.engine.api.store import build_store

    stitching = default_merge_policy("prod")
    unstitched = MergePolicy.objects.create(sandbox="prod", name="No stitching",
                                            identity_graph="none")
    build_store(tmp_path / "input")  # its tables are built for both policies
    preview_id = create(api, graphType=graph_type)["previewId"]
    preview_run(preview_id)
    row = Preview.objects.get(pk=preview_id)
    assert row.graph_type == graph_type
    assert row.merge_policy_id == str(unstitched.id if graph_type == "none" else stitching.id)
    assert api.get(f"{ESTIMATE}/{preview_id}").json()["estimatedSize"] == 4  # US people
    results = api.get(f"{PREVIEW}/{preview_id}").json()["results"]
    assert len(results) == 4


def test_post_enqueues_the_run_after_commit(demo_api: Api,
                                            django_capture_on_commit_callbacks: Any) -> None:
    from unittest import mock

    with django_capture_on_commit_callbacks() as callbacks:
        preview_id = create(demo_api)["previewId"]
    assert len(callbacks) == 1
    with mock.patch("celery.app.task.Task.apply_async") as apply_async:  # no broker here
        callbacks[0]()
    assert apply_async.call_args.args[0] == (preview_id,)


def test_pages_of_a_preview_whose_snapshot_or_policy_is_gone_are_404(demo_api: Api) -> None:
    preview_id = create(demo_api)["previewId"]
    Preview.objects.filter(pk=preview_id).update(snapshot_file="gone.duckdb")
    response = demo_api.get(f"{PREVIEW}/{preview_id}")
    assert response.status_code == 404
    assert "snapshot it read has been replaced" in response.json()["title"]
    other = create(demo_api)["previewId"]
    Preview.objects.filter(pk=other).update(merge_policy_id="6f1c3a52-8d0e-4d59-9a0b-5e2a7f7b9c10")
    response = demo_api.get(f"{PREVIEW}/{other}")
    assert response.status_code == 404
    assert "merge policy" in response.json()["title"]
