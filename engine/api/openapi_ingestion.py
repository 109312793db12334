"""OpenAPI paths and schemas of the Batch Ingestion API, merged by engine/api/openapi.py."""

from __future__ import annotations

from typing import Any

from engine.api.openapi import _json, _op, _path_param

_STR: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer", "format": "int64"}
_PROBLEM = {"400": _json("Problem", "Refused (problem details): unknown or not profile-enabled "
                                    "dataset, bad format, batch not loading, bad file name."),
            "404": _json("Problem", "Unknown batch in this sandbox (problem details).")}
_EMPTY = {"200": {"description": "Done; the body is empty."}}
_BATCH_ID = _path_param("BATCH_ID")

PATHS: dict[str, Any] = {
    "/data/foundation/import/batches": {"post": _op(
        "Create a batch (loading) of a profile-enabled dataset, to upload files into", {
            "201": _json("ImportBatch", "The new batch, loading."),
            "400": _PROBLEM["400"]}, body="ImportBatchInput")},
    "/data/foundation/import/batches/{BATCH_ID}": {"post": _op(
        "COMPLETE a loading batch (it becomes processing; a worker ingests its files and "
        "rebuilds the snapshot; read the outcome from Catalog) or ABORT it (failed)", {
            **_EMPTY, **_PROBLEM},
        params=[_BATCH_ID, {"name": "action", "in": "query", "required": True,
                            "schema": {"type": "string", "enum": ["COMPLETE", "ABORT"]}}])},
    "/data/foundation/import/batches/{BATCH_ID}/datasets/{DATASET_ID}/files/{FILE_NAME}": {
        "put": {**_op(
            "Upload one file of a loading batch, its raw bytes (the same name again replaces "
            "it; at most ENGINE_MAX_UPLOAD_BYTES, else 413)", {
                **_EMPTY, **_PROBLEM,
                "411": _json("GatewayError", "No Content-Length (e.g. a chunked upload).")},
            params=[_BATCH_ID, _path_param("DATASET_ID"), _path_param("FILE_NAME")]),
            "requestBody": {"required": True, "content": {"application/octet-stream": {
                "schema": {"type": "string", "format": "binary"}}}}}},
}

_INPUT_FORMAT = {"type": "object", "required": ["format"], "properties": {
    "format": {"type": "string", "enum": ["json", "parquet", "csv"]},
    "isMultiLineJson": {"type": "boolean", "description": "json: records span lines (one "
                                                          "document, an array or an object)."},
    "delimiter": {"type": "string", "enum": [","]}, "quote": {"type": "string", "enum": ['"']},
    "header": {"type": "string", "enum": ["true"]},
    "charset": {"type": "string", "enum": ["UTF-8"]}}}

SCHEMAS: dict[str, Any] = {
    "ImportBatchInput": {"type": "object", "required": ["datasetId", "inputFormat"],
                         "properties": {"datasetId": _STR, "inputFormat": _INPUT_FORMAT}},
    "ImportBatch": {"type": "object", "properties": {
        "id": _STR, "imsOrg": _STR, "updated": _INT, "created": _INT,
        "status": {"type": "string", "enum": ["loading", "processing", "success", "failed"]},
        "relatedObjects": {"type": "array", "items": {"type": "object", "properties": {
            "type": _STR, "id": _STR}}},
        "version": _STR, "tags": {"type": "object"}, "createdUser": _STR, "updatedUser": _STR,
        "inputFormat": _INPUT_FORMAT}},
}
