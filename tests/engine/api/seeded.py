"""One of each API resource in a sandbox, made through the REST API (and the engine's tasks, run
eagerly as a worker would): the ids that generated and conformance requests point at."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.tasks import preview_run
from engine.tasks_jobs import export_job_run, segment_job_run
from tests.engine.api.conftest import DEFINITIONS, UPS, Api, definition_body
from tests.engine.api.store import build_store

US = 'homeAddress.countryCode = "US"'


@dataclass(frozen=True)
class Seeded:
    definition_id: str
    merge_policy_id: str
    preview_id: str
    segment_job_id: str
    export_job_id: int
    dataset_id: str
    batch_id: str
    file_id: str
    file_name: str
    entity_id: str = "ann@example.com"
    entity_ns: str = "email"

    def path_parameters(self) -> dict[str, Any]:
        """Values for every path parameter name of /data/openapi.json."""
        return {"SEGMENT_ID": self.definition_id, "mergePolicyId": self.merge_policy_id,
                "previewId": self.preview_id, "executionId": 0,
                "SEGMENT_JOB_ID": self.segment_job_id,
                "EXPORT_JOB_ID": str(self.export_job_id), "DATASET_ID": self.dataset_id,
                "BATCH_ID": self.batch_id, "dataSetFileId": self.file_id,
                "FILE_NAME": self.file_name,
                "SCHEMA_ID": "_xdm.context.profile__union", "sandboxName": "prod"}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.content
    return response.json()


def seed(api: Api, folder: Path) -> Seeded:
    build_store(folder, sandbox=api.sandbox)
    definition = ok(api.post(DEFINITIONS, definition_body(name="US customers", value=US)))
    preview = ok(api.post(f"{UPS}/preview", {"predicateExpression": US,
                                             "predicateType": "pql/text",
                                             "predicateModel": "_xdm.context.profile"}), 201)
    preview_run(preview["previewId"])
    job = ok(api.post(f"{UPS}/segment/jobs", [{"segmentId": definition["id"]}]))
    segment_job_run(job["id"])
    dataset = ok(api.post("/data/foundation/catalog/dataSets", {
        "name": "Segment Export",
        "schemaRef": {"id": "https://ns.adobe.com/xdm/context/profile__union",
                      "contentType": "application/vnd.adobe.xed+json;version=1"}}), 201)
    dataset_id = dataset[0].rsplit("/", 1)[1]
    export = ok(api.post(f"{UPS}/export/jobs", {
        "fields": "person.name,personalEmail.address",
        "filter": {"segments": [{"segmentId": definition["id"]}]},
        "destination": {"datasetId": dataset_id},
        "schema": {"name": "_xdm.context.profile"}}))
    export_job_run(export["id"])
    export = ok(api.get(f"{UPS}/export/jobs/{export['id']}"))
    assert export["status"] == "SUCCEEDED", export
    batch_id = export["destination"]["batchId"]
    files = ok(api.get(f"/data/foundation/export/batches/{batch_id}/files"))["data"]
    file_id = files[0]["dataSetFileId"]
    listing = ok(api.get(f"/data/foundation/export/files/{file_id}"))["data"]
    return Seeded(definition_id=definition["id"],
                  merge_policy_id=definition["mergePolicyId"],
                  preview_id=preview["previewId"], segment_job_id=job["id"],
                  export_job_id=export["id"], dataset_id=dataset_id, batch_id=batch_id,
                  file_id=file_id, file_name=listing[0]["name"])
