"""Segment jobs through the REST API (spec/aep-api.md §4) and the memberships they write.

Celery is not running in tests: after each POST the test calls the job's task itself,
synchronously (``run_segment_job``), as a worker of the engine queue would.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import duckdb
import pytest

import pql
from engine.api import errors
from engine.api.services_jobs import SEGMENT_ALL_IN_OBJECT, SEGMENT_ALL_NONE, SEGMENT_JOB_BODY
from engine.memberships import attach_memberships, memberships_path
from engine.models import SegmentJob
from engine.segments import segment_members
from engine.snapshot import open_snapshot
from engine.tasks_jobs import segment_job_run
from tests.engine.api.conftest import DEFINITIONS, UPS, Api, definition_body
from tests.engine.api.store import build_store, schema_store

pytestmark = pytest.mark.django_db

JOBS = f"{UPS}/segment/jobs"
US = 'homeAddress.countryCode = "US"'
RICH = "loyalty.points > 100"


@pytest.fixture
def store(tmp_path: Path) -> None:
    build_store(tmp_path / "input")


def define(api: Api, name: str, value: str) -> str:
    response = api.post(DEFINITIONS, definition_body(name=name, value=value))
    assert response.status_code == 200, response.content
    return str(response.json()["id"])


def run_segment_job(api: Api, *segment_ids: str) -> dict[str, Any]:
    response = api.post(JOBS, [{"segmentId": key} for key in segment_ids])
    assert response.status_code == 200, response.content
    job = response.json()
    assert job["status"] == "NEW"
    segment_job_run(job["id"])  # the Celery task, run eagerly here (no worker in tests)
    return dict(api.get(f"{JOBS}/{job['id']}").json())


def members_of(text: str) -> set[str]:
    with open_snapshot("prod") as con:
        return segment_members(con, pql.parse(text), now=pql_now()).members


def pql_now() -> Any:
    from django.utils import timezone

    return timezone.now()


def memberships() -> dict[tuple[str, str], str]:
    path = memberships_path("prod")
    assert path is not None
    with duckdb.connect(str(path), read_only=True) as con:
        return {(pid, seg): status for pid, seg, status in con.execute(
            "SELECT _profile_id, segment_id, status FROM memberships").fetchall()}


def test_job_evaluates_in_dependency_order_and_counts_members(api: Api, store: None) -> None:
    us = define(api, "US", US)
    rich_us = define(api, "Rich in the US", f'inSegment("{us}") and {RICH}')
    # sent dependent first: the job still evaluates "US" first, so inSegment sees its result
    job = run_segment_job(api, rich_us, us)
    assert job["status"] == "SUCCEEDED", job["errors"]
    expected_us = members_of(US)
    expected_rich = members_of(f"{US} and {RICH}")
    assert len(expected_us) == 4 and len(expected_rich) == 2
    metrics = job["metrics"]
    assert metrics["segmentedProfileCounter"] == {us: 4, rich_us: 2}
    assert metrics["segmentedProfileByStatusCounter"][us] == {"realized": 4, "existing": 0,
                                                              "exited": 0}
    assert metrics["segmentedProfileByNamespaceCounter"][rich_us] == {"Email": 2}
    assert metrics["totalProfiles"] == 6
    for span in ("totalTime", "profileSegmentationTime"):
        assert metrics[span]["totalTimeInMs"] == (metrics[span]["endTimeInMs"]
                                                  - metrics[span]["startTimeInMs"]) >= 0
    assert [s["segmentId"] for s in job["segments"]] == [rich_us, us]
    assert job["segments"][1]["segment"]["expression"]["value"] == US
    assert job["_links"]["checkStatus"] == {"href": f"{JOBS}/{job['id']}", "method": "GET"}
    assert job["errors"] == []
    stored = memberships()
    assert {pid for (pid, seg) in stored if seg == us} == expected_us
    assert {pid for (pid, seg) in stored if seg == rich_us} == expected_rich
    # the memberships are what inSegment reads from now on, on a read-only snapshot connection
    with open_snapshot("prod") as con:
        attach_memberships(con, "prod")
        found = segment_members(con, pql.parse(f'inSegment("{rich_us}")'), now=pql_now(),
                                tables=pql.sql.Tables(memberships="ms.memberships"))
    assert found.members == expected_rich


def test_statuses_realized_existing_exited_across_jobs(api: Api, store: None) -> None:
    seg = define(api, "Audience", US)
    first = run_segment_job(api, seg)
    assert set(memberships().values()) == {"realized"}
    assert first["metrics"]["segmentedProfileByStatusCounter"][seg]["realized"] == 4
    body = definition_body(name="Audience", value=f"{US} and {RICH}")
    assert api.patch(f"{DEFINITIONS}/{seg}", body).status_code == 200
    second = run_segment_job(api, seg)
    assert second["metrics"]["segmentedProfileByStatusCounter"][seg] == {
        "realized": 0, "existing": 2, "exited": 2}
    stored = memberships()
    rich = members_of(f"{US} and {RICH}")
    assert {pid for (pid, _), status in stored.items() if status == "existing"} == rich
    assert {pid for (pid, _), status in stored.items() if status == "exited"} == (
        members_of(US) - rich)
    # back to the wide audience: the exited come back as realized, the others stay existing
    assert api.patch(f"{DEFINITIONS}/{seg}", definition_body(name="Audience",
                                                           value=US)).status_code == 200
    third = run_segment_job(api, seg)
    assert third["metrics"]["segmentedProfileByStatusCounter"][seg] == {
        "realized": 2, "existing": 2, "exited": 0}


def test_a_second_job_keeps_the_memberships_of_other_segments(api: Api, store: None) -> None:
    us = define(api, "US", US)
    rich = define(api, "Rich", RICH)
    run_segment_job(api, us)
    run_segment_job(api, rich)
    segments = {seg for (_, seg) in memberships()}
    assert segments == {us, rich}


def test_cancel_before_the_worker_runs_ends_cancelled(api: Api, store: None) -> None:
    seg = define(api, "US", US)
    job = api.post(JOBS, [{"segmentId": seg}]).json()
    response = api.delete(f"{JOBS}/{job['id']}")
    assert response.status_code == 204
    assert api.get(f"{JOBS}/{job['id']}").json()["status"] == "CANCELLING"
    segment_job_run(job["id"])  # the worker picks it up, sees the cancel, stops
    assert api.get(f"{JOBS}/{job['id']}").json()["status"] == "CANCELLED"
    assert memberships_path("prod") is None  # nothing written
    again = api.delete(f"{JOBS}/{job['id']}")
    assert again.status_code == 400


def test_list_pages_filters_and_links(api: Api, store: None) -> None:
    seg = define(api, "US", US)
    ids = [api.post(JOBS, [{"segmentId": seg}]).json()["id"] for _ in range(3)]
    segment_job_run(ids[0])
    listing = api.get(JOBS, {"limit": 2}).json()
    assert listing["_page"] == {"totalCount": 3, "pageSize": 2}
    assert "start=2" in listing["_links"]["next"]["href"]
    assert {c["id"] for c in api.get(JOBS, {"status": "NEW"}).json()["children"]} == set(ids[1:])
    by_segment = api.get(JOBS, {"property": f"segments~segmentId=={seg}"}).json()
    assert by_segment["_page"]["totalCount"] == 3
    assert api.get(JOBS, {"status": "bogus"}).status_code == 400


@pytest.mark.parametrize("body", [[], {}, [{"segment": "x"}], [{"segmentId": 5}], "text",
                                  [{"segmentId": "*"}]])
def test_bad_bodies_are_400_and_store_nothing(api: Api, body: Any) -> None:
    response = api.post(JOBS, body)
    assert response.status_code == 400
    assert response.json()["status"] == 400
    assert response.json()["type"].startswith(errors.ERROR_TYPE_BASE)
    star = body == [{"segmentId": "*"}]
    assert response.json()["title"] == (SEGMENT_ALL_IN_OBJECT if star else SEGMENT_JOB_BODY)
    assert not SegmentJob.objects.exists()


def test_unknown_or_other_sandbox_definitions_are_404_and_store_nothing(
        api: Api, store: None, tmp_path: Path) -> None:
    schema_store(tmp_path / "dev", "dev")  # the fields the dev definition names
    dev_segment = define(api.in_sandbox("dev"), "US in dev", US)
    for key in (str(uuid.uuid4()), dev_segment, "not-a-uuid"):
        response = api.post(JOBS, [{"segmentId": key}])
        assert response.status_code == 404
        assert response.json()["title"] == errors.DEFINITION_NOT_FOUND.format(id=key)
    assert not SegmentJob.objects.exists()
    prod_job = run_segment_job(api, define(api, "US", US))
    assert api.in_sandbox("dev").get(f"{JOBS}/{prod_job['id']}").status_code == 404
    assert api.in_sandbox("dev").delete(f"{JOBS}/{prod_job['id']}").status_code == 404


def test_job_without_a_snapshot_fails_with_an_error(api: Api, tmp_path: Path) -> None:
    schema_store(tmp_path)  # a dataset (so its fields are known), no snapshot built from it
    seg = define(api, "US", US)
    job = run_segment_job(api, seg)
    assert job["status"] == "FAILED"
    assert job["errors"][0]["code"] == "0080000018"
    assert job["errors"][0]["msg"] == "Sandbox prod has no query snapshot yet."


def test_mutual_insegment_is_a_failed_job(api: Api, store: None) -> None:
    a = define(api, "A", US)
    b = define(api, "B", f'inSegment("{a}")')
    body = definition_body(name="A", value=f'inSegment("{b}")')
    assert api.patch(f"{DEFINITIONS}/{a}", body).status_code == 200
    job = run_segment_job(api, a, b)
    assert job["status"] == "FAILED"
    assert "use each other with inSegment" in job["errors"][0]["msg"]


def test_bulk_get_answers_207_with_jobs_and_404_entries(api: Api, store: None) -> None:
    job = api.post(JOBS, [{"segmentId": define(api, "US", US)}]).json()
    missing = str(uuid.uuid4())
    response = api.post(f"{JOBS}/bulk-get", {"ids": [{"id": job["id"]}, {"id": missing}]})
    assert response.status_code == 207
    results = response.json()["results"]
    assert results[job["id"]]["status"] == "NEW"
    assert "404" in results[missing]["errors"]
    assert api.post(f"{JOBS}/bulk-get", {"ids": []}).status_code == 400


def test_the_star_object_evaluates_every_batch_definition(api: Api, store: None) -> None:
    everything = {"schema": {"name": "_xdm.context.profile"}, "segments": [{"segmentId": "*"}]}
    empty = api.post(JOBS, everything)
    assert empty.status_code == 400 and empty.json()["title"] == SEGMENT_ALL_NONE
    us = define(api, "US", US)
    rich = define(api, "Rich", RICH)
    response = api.post(JOBS, everything)
    assert response.status_code == 200
    segment_job_run(response.json()["id"])  # the Celery task, run eagerly
    job = api.get(f"{JOBS}/{response.json()['id']}").json()
    assert job["status"] == "SUCCEEDED"
    assert set(job["metrics"]["segmentedProfileCounter"]) == {us, rich}


def test_insegment_of_a_segment_outside_the_job_reads_the_stored_memberships(
        api: Api, store: None) -> None:
    us = define(api, "US", US)
    rich_us = define(api, "Rich in the US", f'inSegment("{us}") and {RICH}')
    before = run_segment_job(api, rich_us)  # "US" never evaluated: nobody is in it yet
    assert before["metrics"]["segmentedProfileCounter"] == {rich_us: 0}
    run_segment_job(api, us)
    after = run_segment_job(api, rich_us)
    assert after["metrics"]["segmentedProfileCounter"] == {
        rich_us: len(members_of(f"{US} and {RICH}"))}


def test_cancel_while_processing_stops_between_definitions(api: Api, store: None,
                                                           monkeypatch: Any) -> None:
    import engine.segment_jobs

    first = define(api, "US", US)
    second = define(api, "Rich", RICH)
    job = api.post(JOBS, [{"segmentId": first}, {"segmentId": second}]).json()
    evaluated: list[str] = []
    real = engine.segment_jobs.segment_members

    def cancelling(con: Any, node: Any, **kwargs: Any) -> Any:
        evaluated.append(str(node))
        assert api.delete(f"{JOBS}/{job['id']}").status_code == 204  # arrives mid-job
        return real(con, node, **kwargs)

    monkeypatch.setattr(engine.segment_jobs, "segment_members", cancelling)
    segment_job_run(job["id"])  # the Celery task, run eagerly
    assert len(evaluated) == 1
    assert api.get(f"{JOBS}/{job['id']}").json()["status"] == "CANCELLED"
    path = memberships_path("prod")
    assert path is None or memberships() == {}


def test_post_enqueues_the_task_after_commit_on_the_engine_queue(
        api: Api, store: None, monkeypatch: Any, django_capture_on_commit_callbacks: Any) -> None:
    from config.celery import app

    sent: list[str] = []
    monkeypatch.setattr(segment_job_run, "delay", lambda job_id: sent.append(job_id))
    seg = define(api, "US", US)
    with django_capture_on_commit_callbacks(execute=True):
        job = api.post(JOBS, [{"segmentId": seg}]).json()
    assert sent == [job["id"]]
    route = app.amqp.router.route({}, "engine.tasks_jobs.segment_job_run")
    assert route["queue"].name == "engine"
