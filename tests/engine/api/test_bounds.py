"""Bounded work per request (issue 15), through the REST API as a third-party client sends it:
a regular expression the engine's RE2 cannot run and a definition over the size limits are
400s in AEP's shape, quickly; a definition within them runs normally; and each API client has
a cap of running previews and jobs, answered as Adobe's gateway throttles (429, Retry-After),
which the dashboard's aep client takes for a transient error."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

import pql
from aep import AEPTransientError
from engine.api import caps, errors
from engine.models import ApiClient, ExportJob, JobStatus, Preview, PreviewState, SegmentJob
from engine.previews import FAILED_DESCRIPTION
from engine.segments import BUDGET_ROWS
from engine.tasks import preview_run
from engine.tasks_jobs import segment_job_run
from pql.parser import MAX_TEXT_LENGTH, TOO_LONG
from pql.schema import MAX_EVENT_READS, MAX_NODES, REGEX_NOT_SUPPORTED, TOO_LARGE
from tests.aep.conftest import Engine, engine, fresh_caches  # noqa: F401  (fixtures)
from tests.engine.api.conftest import DEFINITIONS, UPS, Api, definition_body
from tests.engine.api.store import build_store

pytestmark = pytest.mark.django_db

PREVIEW = f"{UPS}/preview"
SEGMENT_JOBS = f"{UPS}/segment/jobs"
EXPORT_JOBS = f"{UPS}/export/jobs"
US = 'homeAddress.countryCode = "US"'
CATASTROPHIC = 'personalEmail.address.matches("^(?=.)(.?){20}.{20}!")'
CLAUSE = 'personalEmail.address = "someone{n}@example.com"'


@pytest.fixture
def store_api(api: Api, tmp_path: Path) -> Api:
    build_store(tmp_path / "input")  # six people with e-mail addresses, and a snapshot
    return api


def or_chain(characters: int) -> str:
    clauses: list[str] = []
    while sum(len(c) + 4 for c in clauses) < characters:
        clauses.append(CLAUSE.format(n=len(clauses)))
    return " or ".join(clauses)


def refusal(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["status"] == 400 and body["type"].endswith(errors.VALIDATION_TYPE)
    (item,) = body["errors"]["400"]
    assert item["message"] == body["title"]
    return item


def preview_body(text: str, fmt: str = "pql/text") -> dict[str, Any]:
    return {"predicateExpression": text, "predicateType": fmt,
            "predicateModel": "_xdm.context.profile"}


# --- refused up front --------------------------------------------------------------------------

def test_the_catastrophic_regex_is_a_400_naming_the_lookahead_at_its_span(
        store_api: Api) -> None:
    message = REGEX_NOT_SUPPORTED.format(pattern="^(?=.)(.?){20}.{20}!",
                                         construct="a lookahead (?=…)")
    expected = {"code": errors.VALIDATION_TYPE, "line": 1, "column": 31,
                "endColumn": len(CATASTROPHIC),
                "message": errors.PQL_INVALID.format(error=f"{message} (line 1, column 31)")}
    assert refusal(store_api.post(DEFINITIONS, definition_body(value=CATASTROPHIC))) == expected
    assert refusal(store_api.post(PREVIEW, preview_body(CATASTROPHIC))) == expected
    assert not Preview.objects.exists()


def test_the_680_kb_or_chain_is_a_400_naming_the_limit_in_well_under_a_second(
        store_api: Api) -> None:
    text = or_chain(680_000)
    for path, body in ((DEFINITIONS, definition_body(value=text)),
                       (PREVIEW, preview_body(text))):
        assert len(json.dumps(body)) < 1024 * 1024  # under the body limit: the parser's to judge
        started = time.perf_counter()
        item = refusal(store_api.post(path, body))
        assert time.perf_counter() - started < 0.5  # 37 s of a worker before
        error = TOO_LONG.format(length=len(text), limit=MAX_TEXT_LENGTH)
        assert item["message"] == errors.PQL_INVALID.format(
            error=f"{error} (line 1, column {MAX_TEXT_LENGTH + 1})")


def test_a_pql_json_tree_of_too_many_parts_is_a_400_naming_the_limit(store_api: Api) -> None:
    chain = pql.parse(" or ".join(CLAUSE.format(n=n) for n in range(1000)))
    tree = pql.to_json(pql.ast.Or(tuple(chain.operands) * 3))  # type: ignore[attr-defined]
    value = json.dumps(tree, separators=(",", ":"))  # 870 KB
    refusal(store_api.post(DEFINITIONS, definition_body(value=value, fmt="pql/json")))
    started = time.perf_counter()  # the second time: the first also loads code (~0.6 s)
    item = refusal(store_api.post(DEFINITIONS, definition_body(value=value, fmt="pql/json")))
    assert time.perf_counter() - started < 1  # ~0.3 s, most of it reading the JSON
    assert item["message"] == errors.PQL_INVALID.format(error=TOO_LARGE.format(limit=MAX_NODES))


def test_a_definition_within_the_limits_runs_normally(store_api: Api) -> None:
    # long, and reading the events in as many places as a definition may
    events = " or ".join(f'(select X from xEvent where X.eventType = "type{n}")'
                         for n in range(MAX_EVENT_READS))
    text = f"({or_chain(20_000)}) or {events} or {US}"
    assert store_api.post(DEFINITIONS, definition_body(value=text)).status_code == 200
    response = store_api.post(PREVIEW, preview_body(text))
    assert response.status_code == 201, response.content
    started = time.perf_counter()
    preview_run(response.json()["previewId"])
    assert time.perf_counter() - started < 5  # ~0.6 s
    preview = Preview.objects.get()
    assert preview.state == PreviewState.RESULT_READY, preview.error
    assert preview.estimate["estimated_size"] == 4  # ann, bo, di and flo live in the US


# --- caps per client ---------------------------------------------------------------------------

def assert_throttled(response: Any, code_message: tuple[str, str], *, count: int,
                     limit: int) -> None:
    assert response.status_code == 429, response.content
    assert response["Retry-After"] == "7"
    code, message = code_message
    assert response.json() == {"error_code": code, "message": message.format(
        count=count, limit=limit, seconds=7)}


def test_previews_over_the_clients_cap_are_429_until_one_finishes(
        store_api: Api, make_api: Any, settings: Any) -> None:
    settings.ENGINE_CLIENT_MAX_PREVIEWS = 2
    settings.ENGINE_CLIENT_RETRY_AFTER_SECONDS = 7
    first, second = (store_api.post(PREVIEW, preview_body(US)).json()["previewId"]
                     for _ in range(2))
    assert_throttled(store_api.post(PREVIEW, preview_body(US)), errors.CLIENT_PREVIEWS_BUSY,
                     count=2, limit=2)
    assert make_api().post(PREVIEW, preview_body(US)).status_code == 201  # another client's
    preview_run(first)
    assert Preview.objects.get(pk=first).state == PreviewState.RESULT_READY
    assert store_api.post(PREVIEW, preview_body(US)).status_code == 201
    running = Preview.objects.filter(client__client_id=store_api.client_id,
                                     state__in=caps.RUNNING_PREVIEWS)
    assert {second} < set(running.values_list("pk", flat=True))
    assert caps.previews_running(ApiClient.objects.get(client_id=store_api.client_id)) == 2


def test_segment_and_export_jobs_share_the_clients_cap_until_one_finishes(
        store_api: Api, settings: Any) -> None:
    settings.ENGINE_CLIENT_MAX_JOBS = 1
    settings.ENGINE_CLIENT_RETRY_AFTER_SECONDS = 7
    definition = store_api.post(DEFINITIONS, definition_body(value=US)).json()["id"]
    job = store_api.post(SEGMENT_JOBS, [{"segmentId": definition}])
    assert job.status_code == 200, job.content
    assert_throttled(store_api.post(SEGMENT_JOBS, [{"segmentId": definition}]),
                     errors.CLIENT_JOBS_BUSY, count=1, limit=1)
    assert_throttled(store_api.post(EXPORT_JOBS, {
        "fields": "person.name", "filter": {"segments": [{"segmentId": definition}]},
        "destination": {"datasetId": "5c8c3c555033b814b69f947f"},
        "schema": {"name": "_xdm.context.profile"}}), errors.CLIENT_JOBS_BUSY, count=1, limit=1)
    assert not ExportJob.objects.exists()
    segment_job_run(job.json()["id"])
    assert SegmentJob.objects.get().status == JobStatus.SUCCEEDED
    assert store_api.post(SEGMENT_JOBS, [{"segmentId": definition}]).status_code == 200


def test_an_exports_own_segment_job_is_not_counted_apart(store_api: Api) -> None:
    row = ApiClient.objects.get(client_id=store_api.client_id)
    export = ExportJob.objects.create(sandbox="prod", client=row, status=JobStatus.PROCESSING)
    SegmentJob.objects.create(sandbox="prod", client=row, status=JobStatus.PROCESSING,
                              request={"exportJobId": export.pk}, export_job=export)
    assert caps.jobs_running(row) == 1


def test_the_dashboards_client_takes_the_429_for_a_transient_error_and_retries_later(
        engine: Engine, settings: Any) -> None:  # noqa: F811
    settings.ENGINE_CLIENT_MAX_PREVIEWS = 1
    settings.ENGINE_CLIENT_RETRY_AFTER_SECONDS = 7
    waiting = engine.client.create_preview(pql_text=US)
    with pytest.raises(AEPTransientError) as caught:  # jobs.tasks retries these
        engine.client.create_preview(pql_text=US)
    assert (caught.value.status, caught.value.code, caught.value.retry_after) == (
        429, errors.CLIENT_PREVIEWS_BUSY[0], 7)
    assert engine.transport.paths.count(PREVIEW) == 3  # retried once, after Retry-After
    preview_run(waiting.id)
    assert engine.client.create_preview(pql_text=US).id != waiting.id


# --- the evaluator's budget, seen through the API -------------------------------------------

FALLBACK = 'homeAddress.filter(countryCode = "US").count() > 0'  # left to the evaluator


def test_a_preview_past_the_evaluators_budget_fails_with_the_reason(
        store_api: Api, settings: Any) -> None:
    settings.ENGINE_EVALUATOR_ROWS = 2
    preview_id = store_api.post(PREVIEW, preview_body(FALLBACK)).json()["previewId"]
    preview_run(preview_id)
    estimate = store_api.get(f"{UPS}/estimate/{preview_id}").json()
    assert estimate["state"] == PreviewState.FAILED
    # the estimate reads its sample in steps: the first step's candidates were too many
    reason = BUDGET_ROWS.format(constructs="filter on object", candidates=999, limit=2)
    expected = re.escape(FAILED_DESCRIPTION.format(error=reason)).replace("999", "[3-6]")
    assert re.fullmatch(expected, estimate["error"]["description"])


def test_a_page_past_the_evaluators_budget_is_a_422_with_the_reason(
        store_api: Api, settings: Any) -> None:
    preview_id = store_api.post(PREVIEW, preview_body(FALLBACK)).json()["previewId"]
    preview_run(preview_id)
    assert store_api.get(f"{PREVIEW}/{preview_id}").status_code == 200
    settings.ENGINE_EVALUATOR_ROWS = 2
    response = store_api.get(f"{PREVIEW}/{preview_id}")
    assert response.status_code == 422
    assert response.json()["title"] == BUDGET_ROWS.format(
        constructs="filter on object", candidates=6, limit=2)
