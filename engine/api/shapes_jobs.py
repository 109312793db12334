"""Segment jobs, export jobs, datasets, batches and batch files as AEP's JSON objects
(spec/aep-api.md §4.2, §5.2, §7)."""

from __future__ import annotations

from typing import Any

from engine.api.shapes import PROFILE_INSTANCE_ID, definition_json, sandbox_json
from engine.models import (
    CLASS_SCHEMA_NAMES,
    Batch,
    Dataset,
    ExportJob,
    SegmentDefinition,
    SegmentJob,
    XdmClass,
)

SEGMENT_JOBS_PATH = "/data/core/ups/segment/jobs"
EXPORT_JOBS_PATH = "/data/core/ups/export/jobs"
CATALOG_PATH = "/data/foundation/catalog"
EXPORT_PATH = "/data/foundation/export"
PROFILE_UNION_ID = "https://ns.adobe.com/xdm/context/profile__union"
SCHEMA_CONTENT_TYPE = "application/vnd.adobe.xed+json;version=1"
ENGINE_USER = "segment-studio-engine"
BATCH_FAILED_CODE = "batch-failed"
RECORD_INVALID_CODE = "record-invalid"  # ours, as batch-failed: Adobe documents no codes here
MORE_BAD_RECORDS = "{count} more bad records (the first {listed} are listed)."
CLASS_IDS = {XdmClass.PROFILE: "https://ns.adobe.com/xdm/context/profile",
             XdmClass.EVENT: "https://ns.adobe.com/xdm/context/experienceevent"}


def segment_job_json(job: SegmentJob, org_id: str,
                     definitions: dict[str, SegmentDefinition]) -> dict[str, Any]:
    segments = []
    for key in job.segment_ids:
        item: dict[str, Any] = {"segmentId": key}
        definition = definitions.get(key)
        if definition is not None:
            body = definition_json(definition)
            item["segment"] = {"id": key, "version": 1, "expression": body["expression"],
                               "mergePolicyId": body["mergePolicyId"],
                               "mergePolicy": {"id": body["mergePolicyId"], "version": 1}}
        segments.append(item)
    href = f"{SEGMENT_JOBS_PATH}/{job.id}"
    return {
        "id": str(job.id),
        "imsOrgId": org_id,
        "sandbox": sandbox_json(job.sandbox),
        "profileInstanceId": PROFILE_INSTANCE_ID,
        "source": "api",
        "status": job.status,
        "segments": segments,
        "metrics": job.metrics or {"totalTime": {}, "profileSegmentationTime": {}},
        "errors": job.errors,
        "requestId": job.request.get("requestId", ""),
        "schema": {"name": CLASS_SCHEMA_NAMES[XdmClass.PROFILE]},
        "modelName": CLASS_SCHEMA_NAMES[XdmClass.PROFILE],
        "properties": {},
        "_links": {"cancel": {"href": href, "method": "DELETE"},
                   "checkStatus": {"href": href, "method": "GET"}},
        "creationTime": job.creation_time,
        "updateTime": job.update_time,
        "updateEpoch": job.update_time // 1000,
    }


def export_job_json(job: ExportJob, org_id: str) -> dict[str, Any]:
    request = job.request
    destination: dict[str, Any] = {
        "datasetId": request.get("destination", {}).get("datasetId", ""),
        "segmentPerBatch": False,
    }
    if job.batch_id:
        destination["batchId"] = job.batch_id
    body: dict[str, Any] = {
        "id": job.pk,
        "jobType": "BATCH",
        "imsOrgId": org_id,
        "sandbox": sandbox_json(job.sandbox),
        "profileInstanceId": PROFILE_INSTANCE_ID,
        "status": job.status,
        "destination": destination,
        "schema": request.get("schema") or {"name": CLASS_SCHEMA_NAMES[XdmClass.PROFILE]},
        "mergePolicy": request.get("mergePolicy", {}),
        "filter": request.get("filter", {}),
        "metrics": job.metrics,
        "errors": job.errors,
        "requestId": request.get("requestId", ""),
        "computeGatewayJobId": {"exportJob": f"export-{job.pk}"},
        "creationTime": job.creation_time,
        "updateTime": job.update_time,
    }
    for name in ("fields", "additionalFields", "evaluationInfo"):
        if name in request:
            body[name] = request[name]
    return body


def _ms(moment: Any) -> int:
    return int(moment.timestamp() * 1000) if moment else 0


def dataset_json(dataset: Dataset, org_id: str) -> dict[str, Any]:
    schema_id = (PROFILE_UNION_ID if dataset.union_persisting
                 else CLASS_IDS.get(XdmClass(dataset.xdm_class), ""))
    last = dataset.batches.order_by("-created_at", "-id").first()
    body: dict[str, Any] = {
        "name": dataset.name,
        "description": dataset.description,
        "imsOrg": org_id,
        "sandboxId": sandbox_json(dataset.sandbox)["sandboxId"],
        "tags": {"unifiedProfile": [f"enabled:{str(dataset.profile_enabled).lower()}"]},
        "version": "1.0.0",
        "created": _ms(dataset.created_at),
        "updated": _ms(dataset.updated_at),
        "createdClient": ENGINE_USER,
        "createdUser": ENGINE_USER,
        "updatedUser": ENGINE_USER,
        "viewId": dataset.id,
        "schemaRef": {"id": schema_id, "contentType": SCHEMA_CONTENT_TYPE},
        "fileDescription": {"persisted": True, "containerFormat": "parquet",
                            "format": "parquet"},
        "files": f"@/dataSetFiles?dataSetId={dataset.id}",
        "aspect": "production",
    }
    if last is not None:
        body["lastBatchId"] = last.id
        body["lastBatchStatus"] = last.status
    return body


def _user(batch: Batch) -> str:
    """Catalog's createdUser: the technical account (``<client id>@AdobeID``) that created it."""
    return f"{batch.client.client_id}@AdobeID" if batch.client else ENGINE_USER


def _rows(lines: list[int]) -> list[str]:
    """Catalog's error rows: single numbers and hyphenated runs, e.g. ["2", "5-7"]."""
    rows: list[str] = []
    numbers = sorted(set(lines))
    start = previous = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        rows.append(str(start) if start == previous else f"{start}-{previous}")
        if number is not None:
            start = previous = number
    return rows


def batch_errors_json(batch: Batch) -> list[dict[str, Any]]:
    """Catalog's batch errors, ``[{"code", "description", "rows"}]``: why the batch failed
    first, then each kind of bad record per file with its rows (line or record numbers)."""
    found: list[dict[str, Any]] = []
    if batch.failure_reason:
        found.append({"code": BATCH_FAILED_CODE, "description": batch.failure_reason})
    kinds: dict[tuple[str, str], list[int]] = {}
    for item in batch.errors:
        kinds.setdefault((item["file"], item["reason"]), []).append(item["line"])
    for (file, reason), lines in kinds.items():
        found.append({"code": RECORD_INVALID_CODE, "description": f"{file}: {reason}",
                      "rows": _rows(lines)})
    if batch.error_count > len(batch.errors):
        found.append({"code": RECORD_INVALID_CODE, "description": MORE_BAD_RECORDS.format(
            count=batch.error_count - len(batch.errors), listed=len(batch.errors))})
    return found


def batch_json(batch: Batch, org_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": batch.id,
        "imsOrg": org_id,
        "status": batch.status,
        "relatedObjects": [{"type": "dataSet", "id": batch.dataset_id}],
        "recordCount": batch.record_count,
        "failedRecordCount": batch.error_count,
        "size": batch.size,
        "metrics": {"recordsRead": batch.record_count + batch.error_count,
                    "recordsWritten": batch.record_count,
                    "recordsFailed": batch.error_count,
                    "failedRecordCount": batch.error_count,
                    "startTime": _ms(batch.created_at),
                    "endTime": _ms(batch.completed_at)},
        "errors": batch_errors_json(batch),
        "created": _ms(batch.created_at),
        "updated": _ms(batch.updated_at),
        "completed": _ms(batch.completed_at),
        "version": "1.0.0",
        "tags": {},
        "createdClient": batch.client.client_id if batch.client else ENGINE_USER,
        "createdUser": _user(batch),
        "updatedUser": _user(batch),
    }
    if batch.input_format:
        body["inputFormat"] = batch.input_format
    return body


# What POST /import/batches answers (AEP's create-batch response).
CREATED_BATCH_KEYS = ("id", "imsOrg", "updated", "status", "created", "relatedObjects",
                      "version", "tags", "createdUser", "updatedUser", "inputFormat")


def created_batch_json(batch: Batch, org_id: str) -> dict[str, Any]:
    body = batch_json(batch, org_id)
    return {key: body[key] for key in CREATED_BATCH_KEYS}


def file_id(batch: Batch, index: int) -> str:
    """dataSetFileId of a batch's file: the batch id and the file's 1-based number."""
    return f"{batch.id}-{index + 1}"
