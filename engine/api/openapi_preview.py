"""OpenAPI paths and schemas of the REST API's preview part, merged by engine/api/openapi.py."""

from __future__ import annotations

from typing import Any

from engine.api.openapi import INVALID, NOT_FOUND, _json, _op, _path_param, _query
from engine.api.paging import LINKS_SCHEMA

_STR: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer"}
_OBJ: dict[str, Any] = {"type": "object"}
_PREVIEW_ID = _path_param("previewId")
_STATES = ["NEW", "RUNNING", "RESULT_READY", "FAILED"]
# A page the engine would need more than its evaluator budget for (engine.segments).
_OVER_BUDGET = {"422": _json("UpsError", "The members of this page need the reference "
                             "evaluator beyond ENGINE_EVALUATOR_SECONDS or ENGINE_EVALUATOR_ROWS "
                             "(the message says which).")}
_PAGE_PARAMS = [
    _query("offset", "integer", "Members skipped (default 0), in storage order: hash bucket,"
           " then profile id."),
    _query("limit", "integer", "Members per page (default 1000, at most 10000)."),
]

PATHS: dict[str, Any] = {
    "/data/core/ups/preview": {"post": _op(
        "Create a preview and its estimate (run on the engine queue)", {
            "201": {**_json("PreviewCreated", "Created; X-Location names the preview."),
                    "headers": {"X-Location": {"schema": _STR}}},
            **INVALID,
        }, body="PreviewInput")},
    "/data/core/ups/preview/{previewId}": {
        "get": _op("A page of the preview's members", {
            "200": _json("PreviewResults",
                         "Members of the estimate's sample, by hash bucket and profile id."),
            **NOT_FOUND, **_OVER_BUDGET}, params=[_PREVIEW_ID, *_PAGE_PARAMS]),
        "delete": _op("Cancel and delete a preview", {
            "200": _json("MessageResponse", '{"status": true, "message": "KILLED"}'),
            **NOT_FOUND}, params=[_PREVIEW_ID]),
    },
    "/data/core/ups/preview/{previewId}/execution/{executionId}": {"get": _op(
        "A page of the preview's members (the estimate's _links.preview form)", {
            "200": _json("PreviewResults", "As GET /preview/{previewId}."), **NOT_FOUND,
            **_OVER_BUDGET},
        params=[_PREVIEW_ID, _path_param("executionId"), *_PAGE_PARAMS,
                _query("previewQueryId", "string", "Ignored (debugging aid).")])},
    "/data/core/ups/estimate/{previewId}": {"get": _op(
        "The preview's estimate, refined step by step while RUNNING", {
            "200": _json("Estimate", "The latest estimate."), **NOT_FOUND},
        params=[_PREVIEW_ID])},
    "/data/core/ups/previewsamplestatus": {"get": _op(
        "Statistics of the profile store and its sample (the current snapshot)", {
            "200": _json("PreviewSampleStatus", "Store statistics.")})},
    "/data/core/ups/access/entities": {"get": _op(
        "A merged profile, or the ExperienceEvents of one", {
            "200": {"description": "Profiles: an object keyed by the profile id (entityId, "
                                   "sources, entity with identities, lastModifiedAt). "
                                   "Events: _page, children, _links.",
                    "content": {"application/json": {"schema": {"oneOf": [
                        {"$ref": "#/components/schemas/ProfileEntities"},
                        {"$ref": "#/components/schemas/EventEntities"}]}}}},
            **INVALID,
            "404": _json("UpsError", "No such profile. Profiles over 50 identities or 5,000 "
                                     "events are excluded from the store, so they are not "
                                     "found either (AEP's 422 does not occur)."),
        }, params=[
            {**_query("schema.name", "string", "_xdm.context.profile or "
                                               "_xdm.context.experienceevent."),
             "required": True},
            _query("entityId", "string", "Profiles: a profile id, or an identity with "
                                         "entityIdNS."),
            _query("entityIdNS", "string", "The namespace code of entityId (e.g. Email)."),
            _query("relatedSchema.name", "string", "Events: _xdm.context.profile."),
            _query("relatedEntityId", "string", "Events: the owning profile's id or "
                                                "identity."),
            _query("relatedEntityIdNS", "string", "Events: the namespace of relatedEntityId."),
            _query("fields", "string", "Comma-separated (dotted) fields to return."),
            _query("mergePolicyId", "string", "Default: the sandbox's default policy."),
            _query("orderby", "string", "Events: +timestamp (default) or -timestamp."),
            _query("startTime", "integer", "Events: from this epoch ms (inclusive)."),
            _query("endTime", "integer", "Events: up to this epoch ms (inclusive)."),
            _query("limit", "integer", "Events per page (default and at most 1000)."),
            _query("start", "string", "Events: the page to fetch (from _links.next)."),
        ])},
}

_IDENTITY = {"type": "object", "properties": {
    "id": _STR, "namespace": {"type": "object", "properties": {"code": _STR}},
    "primary": {"type": "boolean"}, "authenticatedState": _STR}}

SCHEMAS: dict[str, Any] = {
    "PreviewInput": {"type": "object", "required": ["predicateExpression"], "properties": {
        "predicateExpression": {"type": "string",
                                "description": "PQL text, or a serialized pql/json tree."},
        "predicateType": {"type": "string", "enum": ["pql/text", "pql/json"],
                          "default": "pql/text"},
        "predicateModel": {"type": "string", "enum": ["_xdm.context.profile"],
                           "default": "_xdm.context.profile"},
        "graphType": {"type": "string", "enum": ["none", "pdg"], "default": "pdg",
                      "description": "none: profiles without identity stitching (a sandbox "
                                     "merge policy without stitching is used)."},
        "mergePolicyId": {"type": "string", "description": "Default: the sandbox's default."},
    }},
    "PreviewCreated": {"type": "object", "properties": {
        "state": {"type": "string", "enum": _STATES},
        "previewQueryStatus": {"type": "string", "enum": _STATES},
        "previewQueryId": _STR, "previewId": _STR, "previewExecutionId": _INT}},
    "PreviewResults": {"type": "object", "properties": {
        "results": {"type": "array", "items": {
            "type": "object", "description": "One key, the profile id.",
            "additionalProperties": {"type": "object", "properties": {
                "_href": _STR,
                "endCustomerIds": {"type": "object", "description": "namespace:id → _href",
                                   "additionalProperties": {
                                       "type": "object", "properties": {"_href": _STR}}},
                "identities": {"type": "array", "items": _IDENTITY},
                "entity": {**_OBJ, "description": "The merged profile's attributes."}}}}},
        "state": {"type": "string", "enum": _STATES},
        "links": {"type": "object", "properties": {
            "_self": _STR, "next": {**_STR, "description": "empty: no more pages"},
            "prev": _STR}},
        "_links": LINKS_SCHEMA,
        "page": {"type": "object", "properties": {"offset": _INT, "size": _INT,
                                                  "limit": _INT}}}},
    "Estimate": {"type": "object", "properties": {
        "estimatedSize": _INT, "numRowsToRead": _INT, "profilesReadSoFar": _INT,
        "profilesMatchedSoFar": _INT, "totalRows": _INT, "standardError": _INT,
        "confidenceInterval": {"type": "string", "enum": ["95%"]},
        "confidenceIntervalBounds": {
            "type": "object", "description": "Ours: the bounds of the 95 % interval.",
            "properties": {"low": _INT, "high": _INT}},
        "estimatedNamespaceDistribution": {
            "type": "array", "description": "Matches of the sample per identity namespace, "
                                            "with the final estimate ([] before).",
            "items": {"type": "object", "properties": {
                "namespaceId": _STR, "code": _STR, "profilesMatchedSoFar": _INT}}},
        "state": {"type": "string", "enum": _STATES},
        "error": {"type": "object", "properties": {"description": _STR, "traceback": _STR}},
        "_links": {"type": "object", "properties": {"preview": _STR}}}},
    "PreviewSampleStatus": {"type": "object", "properties": {
        "numRowsToRead": {**_STR, "description": "A count, as a string (as on AEP)."},
        "totalRows": {**_STR, "description": "A count, as a string (as on AEP)."},
        "totalFragmentCount": _INT,
        "samplingRatio": {"type": "number"},
        "status": {"type": "string", "enum": ["TASK_FINISHED", "NO_SAMPLE"]},
        "mergeStrategy": _STR, "lastSampledTimestamp": _STR,
        "lastSuccessfulBatchTimestamp": _STR, "lastBatchId": _STR,
        "sampleJobRunning": {"type": "object", "properties": {
            "status": {"type": "boolean", "description": "true while a snapshot builds"},
            "submissionTimestamp": _STR}},
        "snapshotFile": {**_STR, "description": "Ours: the snapshot file read."}}},
    "ProfileEntities": {"type": "object", "additionalProperties": {
        "type": "object", "properties": {
            "entityId": _STR, "sources": {"type": "array", "items": _STR},
            "entity": {"type": "object", "properties": {
                "identities": {"type": "array", "items": _IDENTITY}}},
            "lastModifiedAt": _STR}}},
    "EventEntities": {"type": "object", "properties": {
        "_page": {"type": "object", "properties": {
            "orderby": _STR, "start": _STR, "count": _INT, "next": _STR}},
        "children": {"type": "array", "items": {"type": "object", "properties": {
            "relatedEntityId": _STR, "entityId": _STR,
            "timestamp": {"type": "integer", "description": "epoch ms"},
            "entity": _OBJ, "lastModifiedAt": _STR}}},
        "_links": LINKS_SCHEMA}},
}
