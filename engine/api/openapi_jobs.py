"""OpenAPI paths and schemas of the REST API's jobs part, merged by engine/api/openapi.py:
segment jobs, export jobs, Catalog datasets and batches, Data Access files."""

from __future__ import annotations

from typing import Any

from engine.api.openapi import INVALID, NOT_FOUND, _json, _op, _path_param, _query
from engine.api.paging import LINKS_SCHEMA

_STR: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer", "format": "int64"}
_OBJ: dict[str, Any] = {"type": "object"}
_SPAN = {"type": "object", "properties": {"startTimeInMs": _INT, "endTimeInMs": _INT,
                                          "totalTimeInMs": _INT}}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
_JOB_ERRORS = {"type": "array", "items": {"type": "object", "properties": {
    "code": _STR, "msg": _STR, "callStack": _STR}}}
_PROBLEM = {"400": _json("Problem", "Bad parameter or body (problem details)."),
            "404": _json("Problem", "Unknown id in this sandbox (problem details).")}
_KEYED = {"type": "object", "additionalProperties": {"type": "object"},
          "description": "Objects keyed by their id."}
_STATUSES = ["NEW", "QUEUED", "PROCESSING", "CANCELLING", "CANCELLED", "FAILED", "SUCCEEDED"]


def _keyed(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _KEYED}}}


PATHS: dict[str, Any] = {
    "/data/core/ups/segment/jobs": {
        "get": _op("List segment jobs", {
            "200": _json("SegmentJobList", "A page of jobs.")}, params=[
            _query("start", "integer", "Offset."), _query("limit", "integer", "Default 100."),
            _query("status", "string", "One of " + ", ".join(_STATUSES) + "."),
            _query("sort", "string", "creationTime or updateTime, :asc or :desc."),
            _query("property", "string", "segments~segmentId==<id>."),
        ]),
        "post": _op("Create a segment job (evaluated by a worker; poll it)", {
            "200": _json("SegmentJob", "The NEW job."),
            **NOT_FOUND, **INVALID}, body="SegmentJobInput"),
    },
    "/data/core/ups/segment/jobs/bulk-get": {"post": _op(
        "Get several segment jobs", {
            "207": {"description": "results keyed by id: a job or a 404 entry.",
                    "content": {"application/json": {"schema": {
                        "type": "object", "properties": {"results": _KEYED}}}}},
            **INVALID}, body="BulkGet")},
    "/data/core/ups/segment/jobs/{SEGMENT_JOB_ID}": {
        "get": _op("Get a segment job", {"200": _json("SegmentJob", "The job."), **NOT_FOUND},
                   params=[_path_param("SEGMENT_JOB_ID")]),
        "delete": _op("Cancel a segment job (CANCELLING → CANCELLED)", {
            "204": {"description": "Marked for cancelling."}, **NOT_FOUND,
            "400": _json("UpsError", "The job is finished already.")},
            params=[_path_param("SEGMENT_JOB_ID")]),
    },
    "/data/core/ups/export/jobs": {
        "get": _op("List export jobs, newest first", {
            "200": _json("ExportJobList", "records, page, link.next with an offset cursor.")},
            params=[_query("limit", "integer", "Default 100."),
                    _query("offset", "string", "<creationTimeMs>_<jobId> from link.next."),
                    _query("status", "string", "NEW, PROCESSING, SUCCEEDED, FAILED, ...")]),
        "post": _op("Create an export job (run by a worker; poll it)", {
            "200": _json("ExportJob", "The NEW job; X-Location names it."),
            **NOT_FOUND, **INVALID}, body="ExportJobInput"),
    },
    "/data/core/ups/export/jobs/{EXPORT_JOB_ID}": {
        "get": _op("Get an export job", {"200": _json("ExportJob", "The job."), **NOT_FOUND},
                   params=[_path_param("EXPORT_JOB_ID")]),
        "delete": _op("Cancel an export job", {
            "200": _json("MessageResponse", "Marked for cancelling."), **NOT_FOUND,
            "400": _json("UpsError", "The job is finished already.")},
            params=[_path_param("EXPORT_JOB_ID")]),
    },
    "/data/foundation/catalog/dataSets": {
        "get": _op("List datasets (keyed by id)", {"200": _keyed("Datasets."), **_PROBLEM},
                   params=[_query("limit", "integer", "1–100, default 20."),
                           _query("start", "integer", "Offset."),
                           _query("orderBy", "string", "asc:created, desc:created, ..."),
                           _query("properties", "string", "Top-level fields to keep."),
                           _query("name", "string", "Exact name."),
                           _query("createdAfter", "integer", "Epoch ms."),
                           _query("createdBefore", "integer", "Epoch ms.")]),
        "post": _op("Create an export dataset on the profile union schema, or a dataset of "
                    "the Individual Profile or ExperienceEvent class for batch ingestion "
                    '(fed into the profile store with tags.unifiedProfile ["enabled:true"])', {
            "201": {"description": '["@/dataSets/<id>"]; Location names it.',
                    "content": {"application/json": {"schema": {
                        "type": "array", "items": _STR}}}}, **_PROBLEM},
            body="DatasetInput"),
    },
    "/data/foundation/catalog/dataSets/{DATASET_ID}": {
        "get": _op("Get a dataset (keyed by id)", {"200": _keyed("The dataset."), **_PROBLEM},
                   params=[_path_param("DATASET_ID"),
                           _query("properties", "string", "Top-level fields to keep.")]),
        "delete": _op(
            "Delete a dataset with its batches and their files; a profile-enabled one leaves "
            "the profiles once a worker has rebuilt the snapshot", {
                "200": {"description": '["@/dataSets/<id>"], as Catalog answers.',
                        "content": {"application/json": {"schema": {
                            "type": "array", "items": _STR}}}},
                "400": _json("Problem", "A batch of it is being written (processing, or an "
                                        "export): try again once it has finished."),
                "404": _PROBLEM["404"]},
            params=[_path_param("DATASET_ID")]),
    },
    "/data/foundation/catalog/batches": {"get": _op(
        "List batches (keyed by id)", {"200": _keyed("Batches."), **_PROBLEM},
        params=[_query("dataSet", "string", "Dataset id."),
                _query("status", "string", "loading, processing, success, failed."),
                _query("batch", "string", "Batch id."),
                _query("limit", "integer", "1–100, default 20."),
                _query("start", "integer", "Offset."),
                _query("orderBy", "string", "desc:created, ..."),
                _query("createdAfter", "integer", "Epoch ms."),
                _query("createdBefore", "integer", "Epoch ms."),
                _query("properties", "string", "Top-level fields to keep.")])},
    "/data/foundation/catalog/batches/{BATCH_ID}": {"get": _op(
        "Get a batch (keyed by id)", {"200": _keyed("The batch."), **_PROBLEM},
        params=[_path_param("BATCH_ID")])},
    "/data/foundation/export/batches/{BATCH_ID}/files": {"get": _op(
        "List a batch's files", {"200": _json("BatchFiles", "The files."), **_PROBLEM},
        params=[_path_param("BATCH_ID"), _query("start", "integer", "Offset."),
                _query("limit", "integer", "At most 100.")])},
    "/data/foundation/export/files/{dataSetFileId}": {
        "get": _op("A file's listing, or with ?path= its bytes (Range supported)", {
            "200": {"description": "Without path: {data: [{name, length, _links}]}; with "
                                   "path: the bytes (application/octet-stream).",
                    "content": {"application/json": {"schema": _OBJ},
                                "application/octet-stream": {"schema": {
                                    "type": "string", "format": "binary"}}}},
            "206": {"description": "The requested byte range; Content-Range tells which.",
                    "content": {"application/octet-stream": {"schema": {
                        "type": "string", "format": "binary"}}}},
            "416": {"description": "The range is outside the file."}, **_PROBLEM},
            params=[_path_param("dataSetFileId"),
                    _query("path", "string", "The file name from the listing."),
                    {"name": "Range", "in": "header", "required": False,
                     "description": "bytes=a-b, bytes=a- or bytes=-n.", "schema": _STR}]),
        "head": _op("A file's size and type (path required)", {
            "200": {"description": "Content-Length, Content-Type, Accept-Ranges."},
            **_PROBLEM},
            params=[_path_param("dataSetFileId"),
                    _query("path", "string", "The file name from the listing.")]),
    },
}

SCHEMAS: dict[str, Any] = {
    "Problem": {"type": "object", "properties": {
        "type": _STR, "status": {"type": "integer"}, "title": _STR, "detail": _STR}},
    "SegmentJobInput": {"oneOf": [
        {"type": "array", "minItems": 1, "maxItems": 100, "items": {
            "type": "object", "required": ["segmentId"], "properties": {"segmentId": _STR}}},
        {"type": "object", "description": 'Every batch definition: segments [{"segmentId": '
                                          '"*"}].', "properties": {
            "schema": {"type": "object", "properties": {"name": _STR}},
            "segments": {"type": "array", "items": {"type": "object", "properties": {
                "segmentId": {"type": "string", "enum": ["*"]}}}}}}]},
    "SegmentJob": {"type": "object", "properties": {
        "id": _STR, "imsOrgId": _STR, "sandbox": {"$ref": "#/components/schemas/Sandbox"},
        "profileInstanceId": _STR, "source": {"type": "string", "enum": ["api", "scheduler"]},
        "status": {"type": "string", "enum": _STATUSES},
        "segments": {"type": "array", "items": {"type": "object", "properties": {
            "segmentId": _STR, "segment": _OBJ}}},
        "metrics": {"type": "object", "properties": {
            "totalTime": _SPAN, "profileSegmentationTime": _SPAN, "totalProfiles": _INT,
            "segmentedProfileCounter": _COUNTS,
            "segmentedProfileByNamespaceCounter": {"type": "object",
                                                   "additionalProperties": _COUNTS},
            "segmentedProfileByStatusCounter": {"type": "object",
                                                "additionalProperties": _COUNTS},
            "totalProfilesByMergePolicy": _COUNTS}},
        "errors": _JOB_ERRORS, "requestId": _STR, "schema": _OBJ, "modelName": _STR,
        "properties": _OBJ, "_links": _OBJ,
        "creationTime": _INT, "updateTime": _INT, "updateEpoch": _INT}},
    "SegmentJobList": {"type": "object", "properties": {
        "_page": {"type": "object", "properties": {"totalCount": {"type": "integer"},
                                                   "pageSize": {"type": "integer"}}},
        "children": {"type": "array", "items": {"$ref": "#/components/schemas/SegmentJob"}},
        "_links": LINKS_SCHEMA}},
    "ExportJobInput": {"type": "object", "required": ["destination", "schema"], "properties": {
        "fields": {"type": "string", "description": "Comma-separated dot paths."},
        "mergePolicy": {"type": "object", "properties": {"id": _STR,
                                                         "version": {"type": "integer"}}},
        "filter": {"type": "object", "properties": {
            "segments": {"type": "array", "items": {"type": "object", "properties": {
                "segmentId": _STR, "segmentNs": _STR,
                "status": {"type": "array", "items": {
                    "type": "string", "enum": ["realized", "existing", "exited"]}}}}},
            "segmentQualificationTime": {"type": "object", "properties": {
                "startTime": _STR, "endTime": _STR}},
            "fromIngestTimestamp": _STR, "emptyProfiles": {"type": "boolean"}}},
        "additionalFields": {"type": "object", "properties": {"eventList": {
            "type": "object", "properties": {"fields": _STR, "filter": _OBJ}}}},
        "destination": {"type": "object", "properties": {
            "datasetId": _STR, "dataSetId": {"type": "string", "description": "2019 name"},
            "segmentPerBatch": {"type": "boolean", "enum": [False]}}},
        "schema": {"type": "object", "properties": {"name": _STR}}}},
    "ExportJob": {"type": "object", "properties": {
        "id": {"type": "integer"}, "jobType": _STR, "status": {"type": "string",
                                                               "enum": _STATUSES},
        "destination": {"type": "object", "properties": {
            "datasetId": _STR, "segmentPerBatch": {"type": "boolean"}, "batchId": _STR}},
        "fields": _STR, "schema": _OBJ, "filter": _OBJ, "additionalFields": _OBJ,
        "mergePolicy": _OBJ, "imsOrgId": _STR, "requestId": _STR,
        "metrics": {"type": "object", "properties": {
            "totalTime": _SPAN, "profileExportTime": _SPAN, "aCPDatasetWriteTime": _SPAN,
            "totalExportedProfileCounter": _INT,
            "exportedProfileByNamespaceCounter": _COUNTS}},
        "errors": _JOB_ERRORS, "creationTime": _INT, "updateTime": _INT}},
    "ExportJobList": {"type": "object", "properties": {
        "records": {"type": "array", "items": {"$ref": "#/components/schemas/ExportJob"}},
        "page": _OBJ, "link": {"type": "object", "properties": {"next": _STR}},
        "_links": LINKS_SCHEMA}},
    "DatasetInput": {"type": "object", "required": ["name", "schemaRef"], "properties": {
        "name": _STR, "description": _STR,
        "schemaRef": {"type": "object", "properties": {
            "id": {"type": "string",
                   "enum": ["https://ns.adobe.com/xdm/context/profile__union",
                            "https://ns.adobe.com/xdm/context/profile",
                            "https://ns.adobe.com/xdm/context/experienceevent"]},
            "contentType": _STR}},
        "tags": {"type": "object", "additionalProperties": {"type": "array", "items": _STR},
                 "description": 'unifiedProfile ["enabled:true"]: the dataset feeds the '
                                "profile store."}}},
    "BatchFiles": {"type": "object", "properties": {
        "data": {"type": "array", "items": {"type": "object", "properties": {
            "dataSetFileId": _STR, "dataSetViewId": _STR, "version": _STR, "created": _STR,
            "updated": _STR, "records": _STR, "size": _STR, "isValid": {"type": "boolean"},
            "_links": _OBJ}}},
        "_page": _OBJ, "_links": LINKS_SCHEMA}},
}
