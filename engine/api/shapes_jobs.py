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
        "createdClient": "segment-studio-engine",
        "createdUser": "segment-studio-engine",
        "updatedUser": "segment-studio-engine",
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


def batch_json(batch: Batch, org_id: str) -> dict[str, Any]:
    return {
        "id": batch.id,
        "imsOrg": org_id,
        "status": batch.status,
        "relatedObjects": [{"type": "dataSet", "id": batch.dataset_id}],
        "metrics": {"recordsRead": batch.record_count + batch.error_count,
                    "recordsWritten": batch.record_count,
                    "recordsFailed": batch.error_count,
                    "startTime": _ms(batch.created_at),
                    "endTime": _ms(batch.completed_at)},
        "errors": ([{"code": "batch-failed", "description": batch.failure_reason}]
                   if batch.failure_reason else []),
        "created": _ms(batch.created_at),
        "updated": _ms(batch.completed_at or batch.created_at),
        "completed": _ms(batch.completed_at),
        "version": "1.0.0",
    }


def file_id(batch: Batch, index: int) -> str:
    """dataSetFileId of a batch's file: the batch id and the file's 1-based number."""
    return f"{batch.id}-{index + 1}"
