"""Adobe's 2019 segmentation tutorial, end to end through the REST API only: token, segment
definition, preview and estimate, segment job (with a second definition that uses inSegment of
the first), export dataset, export job, batch files, download, and the Parquet rows read back
with pyarrow are exactly the audience.

Celery is not running in tests: after each POST of a job or preview the test calls its task
itself, synchronously, as a worker of the engine queue would. The preview step runs only when
the preview routes are there (``reverse`` finds them); otherwise it is skipped inside the test.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from django.urls import NoReverseMatch, reverse

from engine.tasks_jobs import export_job_run, segment_job_run
from tests.engine.api.conftest import DEFINITIONS, UPS, Api, definition_body
from tests.engine.api.store import PEOPLE, build_store

pytestmark = pytest.mark.django_db

US = 'homeAddress.countryCode = "US"'
EXPECTED_US = {name for name, country, _ in PEOPLE if country == "US"}
EXPECTED_RICH_US = {name for name, country, points in PEOPLE
                    if country == "US" and (points or 0) > 100}


def preview_routes_exist() -> bool:
    try:
        reverse("engine_api:preview-create")
    except NoReverseMatch:
        return False
    return True


def preview_and_estimate(api: Api, text: str) -> None:
    from engine.tasks import preview_run  # the preview part's task (engine/tasks.py)

    created = api.post(f"{UPS}/preview", {"predicateExpression": text,
                                          "predicateType": "pql/text",
                                          "predicateModel": "_xdm.context.profile"})
    assert created.status_code == 201, created.content
    preview_id = created.json()["previewId"]
    preview_run(preview_id)  # the Celery task, run eagerly
    estimate = api.get(f"{UPS}/estimate/{preview_id}").json()
    assert estimate["state"] == "RESULT_READY"
    assert estimate["estimatedSize"] == len(EXPECTED_US)
    results = api.get(f"{UPS}/preview/{preview_id}", {"offset": 0, "limit": 50}).json()
    names = {item["entity"]["person"]["name"]["firstName"].lower()
             for result in results["results"] for item in result.values()}
    assert names == EXPECTED_US


def wait_for(api: Api, path: str) -> dict[str, Any]:
    """One poll: the task already ran, so the job is finished."""
    body = api.get(path).json()
    assert body["status"] in ("SUCCEEDED", "FAILED", "CANCELLED")
    return dict(body)


def test_the_2019_tutorial_through_http(api: Api, tmp_path: Path) -> None:
    build_store(tmp_path / "input")

    # 1. a segment definition (the token came from /ims/token/v3 in the api fixture)
    created = api.post(DEFINITIONS, definition_body(name="US customers", value=US))
    assert created.status_code == 200
    us = created.json()["id"]
    rich = api.post(DEFINITIONS, definition_body(
        name="Loyal US customers", value=f'inSegment("{us}") and loyalty.points > 100'))
    rich_id = rich.json()["id"]

    # 2. preview and estimate
    if preview_routes_exist():
        preview_and_estimate(api, US)

    # 3. a segment job for both definitions
    job = api.post(f"{UPS}/segment/jobs", [{"segmentId": us}, {"segmentId": rich_id}]).json()
    segment_job_run(job["id"])  # the Celery task, run eagerly
    job = wait_for(api, job["_links"]["checkStatus"]["href"])
    assert job["status"] == "SUCCEEDED", job["errors"]
    assert job["metrics"]["segmentedProfileCounter"] == {us: len(EXPECTED_US),
                                                         rich_id: len(EXPECTED_RICH_US)}

    # 4. an export dataset on the profile union schema (the 2019 body, with fileDescription)
    dataset = api.post("/data/foundation/catalog/dataSets", {
        "name": "Segment Export", "description": "The loyal US customers",
        "schemaRef": {"id": "https://ns.adobe.com/xdm/context/profile__union",
                      "contentType": "application/vnd.adobe.xed+json;version=1"},
        "fileDescription": {"persisted": True, "containerFormat": "parquet",
                            "format": "parquet"}, "aspect": "production"})
    assert dataset.status_code == 201
    dataset_id = dataset.json()[0].rsplit("/", 1)[1]

    # 5. an export job of the second segment, 2019 spelling of the destination
    export = api.post(f"{UPS}/export/jobs", {
        "fields": "person.name,personalEmail.address,loyalty.points",
        "mergePolicy": {"id": job["segments"][1]["segment"]["mergePolicyId"], "version": 1},
        "filter": {"segments": [{"segmentId": rich_id, "segmentNs": "ups",
                                 "status": ["realized", "existing"]}]},
        "destination": {"dataSetId": dataset_id},
        "schema": {"name": "_xdm.context.profile"}}).json()
    export_job_run(export["id"])  # the Celery task, run eagerly
    export = wait_for(api, f"{UPS}/export/jobs/{export['id']}")
    assert export["status"] == "SUCCEEDED", export["errors"]
    batch_id = export["destination"]["batchId"]
    batches = api.get("/data/foundation/catalog/batches", {"dataSet": dataset_id}).json()
    assert batches[batch_id]["status"] == "success"

    # 6. the batch's files, downloaded and read
    files = api.get(f"/data/foundation/export/batches/{batch_id}/files").json()["data"]
    rows: list[dict[str, Any]] = []
    for item in files:
        listing = api.client.get(item["_links"]["self"]["href"], headers=api.headers()).json()
        for entry in listing["data"]:
            response = api.client.get(entry["_links"]["self"]["href"], headers=api.headers())
            content = response.getvalue()
            rows.extend(pq.read_table(io.BytesIO(content)).to_pylist())
    assert {row["person"]["name"]["firstName"].lower() for row in rows} == EXPECTED_RICH_US
    assert all(row["loyalty"]["points"] > 100 for row in rows)
    assert all(dict(dict(row["segmentMembership"])["ups"])[rich_id]["status"] == "realized"
               for row in rows)
