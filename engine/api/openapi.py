"""Our own OpenAPI 3 document for the engine's REST API, served at GET /data/openapi.json.

Hand-written and small: the paths we serve, their parameters, bodies and answers, with AEP's
field names. Later issues add their endpoints to PATHS.
"""

from __future__ import annotations

import copy
from typing import Any

from engine.api.paging import LINKS_SCHEMA

PLATFORM_HEADERS = [
    {"$ref": "#/components/parameters/x-api-key"},
    {"$ref": "#/components/parameters/x-gw-ims-org-id"},
    {"$ref": "#/components/parameters/x-sandbox-name"},
]
GATEWAY_ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/Forbidden"},
    "413": {"$ref": "#/components/responses/TooLarge"},
    "429": {"$ref": "#/components/responses/TooManyRequests"},
    "503": {"$ref": "#/components/responses/Unavailable"},
}


def _json(schema_ref: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}}


def _op(summary: str, responses: dict[str, Any], *, body: str | None = None,
        params: list[dict[str, Any]] | None = None, platform: bool = True,
        sandboxed: bool = True) -> dict[str, Any]:
    headers = PLATFORM_HEADERS if sandboxed else PLATFORM_HEADERS[:2]
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": (headers if platform else []) + (params or []),
        "responses": {**responses, **(GATEWAY_ERRORS if platform else {})},
    }
    if platform:
        operation["security"] = [{"bearer": []}]
    if body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body}"}}}}
    return operation


def _query(name: str, kind: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": kind}}


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


NOT_FOUND = {"404": {"$ref": "#/components/responses/NotFound"}}
INVALID = {"400": {"$ref": "#/components/responses/BadRequest"}}

PATHS: dict[str, Any] = {
    "/ims/token/v3": {"post": {
        "summary": "Get an access token (OAuth server-to-server client credentials)",
        "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {
            "schema": {"type": "object", "required": ["grant_type", "client_id",
                                                      "client_secret"],
                       "properties": {"grant_type": {"type": "string",
                                                     "enum": ["client_credentials"]},
                                      "client_id": {"type": "string"},
                                      "client_secret": {"type": "string"},
                                      "scope": {"type": "string"}}}}}},
        "responses": {"200": _json("Token", "A bearer token; expires_in is in seconds."),
                      "400": _json("ImsError", "invalid_client, unsupported_grant_type, or "
                                               "invalid_request (a NUL character, a form "
                                               "that cannot be read).")},
    }},
    "/data/core/ups/segment/definitions": {
        "get": _op("List segment definitions", {
            "200": _json("SegmentDefinitionList", "A page of definitions.")}, params=[
            _query("start", "integer", "Offset of the first definition."),
            _query("limit", "integer", "Page size (default 100)."),
            _query("page", "integer", "Page number, 0-based (used when start is absent)."),
            _query("sort", "string", "field:asc|desc, comma-separated; fields creationTime, "
                                     "updateTime, name, id, description."),
            _query("evaluationInfo.continuous.enabled", "boolean", "Streaming only."),
            _query("evaluationInfo.synchronous.enabled", "boolean", "Edge only."),
        ]),
        "post": _op("Create a segment definition", {
            "200": _json("SegmentDefinition", "Created; X-Location names it."),
            "422": _json("UpsError", "A definition of that name exists in the sandbox."),
        }, body="SegmentDefinitionInput"),
    },
    "/data/core/ups/segment/definitions/bulk-get": {"post": _op(
        "Get several segment definitions", {
            "207": {"description": "results keyed by id: a definition or a 404 entry.",
                    "content": {"application/json": {"schema": {
                        "type": "object", "properties": {"results": {
                            "type": "object", "additionalProperties": {"type": "object"}}}}}}},
        }, body="BulkGet")},
    "/data/core/ups/segment/definitions/{SEGMENT_ID}": {
        "get": _op("Get a segment definition", {
            "200": _json("SegmentDefinition", "The definition."), **NOT_FOUND},
            params=[_path_param("SEGMENT_ID")]),
        "patch": _op("Overwrite a segment definition (whole object)", {
            "200": _json("SegmentDefinition", "The updated definition."), **NOT_FOUND,
            "422": _json("UpsError", "Another definition has that name.")},
            body="SegmentDefinitionInput", params=[_path_param("SEGMENT_ID")]),
        "delete": _op("Delete a segment definition", {
            "200": _json("MessageResponse", "Deleted."), **NOT_FOUND,
            "400": _json("UpsError", "Refused: other definitions use it with inSegment.")},
            params=[_path_param("SEGMENT_ID")]),
    },
    "/data/core/ups/segment/conversion": {"post": _op(
        "Convert an expression between pql/text and pql/json", {
            "200": _json("SegmentDefinition", "The same object, expression converted.")},
        body="SegmentDefinitionInput")},
    "/data/core/ups/config/mergePolicies": {
        "get": _op("List merge policies", {
            "200": _json("MergePolicyList", "A page of merge policies.")}, params=[
            _query("start", "integer", "Offset."), _query("limit", "integer", "Default 20."),
            _query("orderBy", "string", "+name or -name."),
            _query("schema.name", "string", "_xdm.context.profile."),
            _query("default", "boolean", "Only the default (or not)."),
        ]),
        "post": _op("Create a merge policy", {
            "200": _json("MergePolicy", "Created."), **INVALID}, body="MergePolicyInput"),
    },
    "/data/core/ups/config/mergePolicies/{mergePolicyId}": {"get": _op(
        "Get a merge policy", {"200": _json("MergePolicy", "The policy."), **NOT_FOUND},
        params=[_path_param("mergePolicyId")])},
    "/data/foundation/schemaregistry/tenant/unions": {"get": _op(
        "List union schemas", {"200": {"description": "results: $id, meta:altId, title; "
                                       "_links.next.href empty (one page)."}})},
    "/data/foundation/schemaregistry/tenant/schemas/{SCHEMA_ID}": {"get": _op(
        "A union schema, resolved (Accept: application/vnd.adobe.xed-full+json;version=1)", {
            "200": {"description": "JSON Schema with properties, items, additionalProperties "
                                   "(maps) and format date/date-time."},
            "404": _json("ProblemError", "No such union (Schema Registry's error shape)."),
            "406": _json("ProblemError", "Unsupported Accept header.")},
        params=[{"name": "SCHEMA_ID", "in": "path", "required": True,
                 "description": "URL-encoded $id or meta:altId of the union.",
                 "schema": {"type": "string"}}])},
    "/data/foundation/sandbox-management/": {"get": _op(
        "The sandboxes available to the caller (no x-sandbox-name)", {
            "200": _json("SandboxList", "The API client's sandboxes.")}, sandboxed=False,
        params=[_query("limit", "integer", "Page size (default 50)."),
                _query("offset", "integer", "Offset of the first sandbox.")])},
    "/data/foundation/sandbox-management/sandboxes": {"get": _op(
        "List sandboxes (no x-sandbox-name)", {
            "200": _json("SandboxList", "The API client's sandboxes.")}, sandboxed=False,
        params=[_query("limit", "integer", "Page size (default 50)."),
                _query("offset", "integer", "Offset of the first sandbox.")])},
    "/data/foundation/sandbox-management/sandboxes/{sandboxName}": {"get": _op(
        "Get a sandbox (no x-sandbox-name)", {
            "200": _json("SandboxDetail", "The sandbox."), **NOT_FOUND}, sandboxed=False,
        params=[_path_param("sandboxName")])},
    "/data/openapi.json": {"get": {"summary": "This document", "responses": {
        "200": {"description": "OpenAPI 3.0"},
        "400": _json("GatewayError", "A NUL character in the request.")}}},
}

_OBJ: dict[str, Any] = {"type": "object"}
_STR: dict[str, Any] = {"type": "string"}
_ENABLED = {"type": "object", "properties": {"enabled": {"type": "boolean"}}}

COMPONENTS: dict[str, Any] = {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                   "description": "A token from POST /ims/token/v3."}},
    "parameters": {
        "x-api-key": {"name": "x-api-key", "in": "header", "required": True,
                      "description": "The API client's client id.", "schema": _STR},
        "x-gw-ims-org-id": {"name": "x-gw-ims-org-id", "in": "header", "required": True,
                            "description": "The client's org, e.g. ABC@AdobeOrg.",
                            "schema": _STR},
        "x-sandbox-name": {"name": "x-sandbox-name", "in": "header", "required": True,
                           "description": "A sandbox the client may use, e.g. prod.",
                           "schema": _STR},
    },
    "responses": {
        "BadRequest": _json("Error", "Missing header, bad body, invalid PQL (UPS error with "
                                     "line and column)."),
        "Unauthorized": _json("GatewayError", "Token invalid or expired (401013)."),
        "Forbidden": _json("Error", "Token or API key missing, wrong org, sandbox not allowed."),
        "NotFound": _json("UpsError", "Unknown id in this sandbox."),
        "TooLarge": _json("GatewayError", "Body over ENGINE_MAX_BODY_BYTES."),
        "TooManyRequests": {**_json("GatewayError", (
            "Over ENGINE_RATE_LIMIT per minute (429050); or, creating a preview, a segment job "
            "or an export job, the client already runs ENGINE_CLIENT_MAX_PREVIEWS previews "
            "(429051) or ENGINE_CLIENT_MAX_JOBS segment and export jobs (429052).")),
                            "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
        "Unavailable": {**_json("GatewayError", (
            "The job queue cannot be reached (503000): nothing was created; retry after the "
            "Retry-After seconds.")),
                        "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
    },
    "schemas": {
        "Token": {"type": "object", "properties": {
            "access_token": _STR, "token_type": {"type": "string", "enum": ["bearer"]},
            "expires_in": {"type": "integer", "description": "seconds"}}},
        "ImsError": {"type": "object", "properties": {"error": _STR,
                                                      "error_description": _STR}},
        "GatewayError": {"type": "object", "required": ["error_code", "message"],
                         "properties": {"error_code": _STR, "message": _STR}},
        "ProblemError": {"type": "object", "required": ["type", "status", "title", "detail"],
                         "properties": {"type": _STR, "status": {"type": "integer"},
                                        "title": _STR, "detail": _STR}},
        "UpsError": {"type": "object", "required": ["requestId", "errors", "type", "title",
                                                    "status"], "properties": {
            "requestId": _STR, "type": _STR, "title": _STR, "status": {"type": "integer"},
            "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {
                "type": "object", "properties": {
                    "code": _STR, "message": _STR, "line": {"type": "integer"},
                    "column": {"type": "integer"}, "endColumn": {"type": "integer"},
                    "path": _STR}}}}}},
        "Error": {"oneOf": [{"$ref": "#/components/schemas/GatewayError"},
                            {"$ref": "#/components/schemas/UpsError"},
                            {"$ref": "#/components/schemas/ProblemError"}]},
        "MessageResponse": {"type": "object", "properties": {"status": {"type": "boolean"},
                                                             "message": _STR}},
        "Expression": {"type": "object", "required": ["type", "format", "value"], "properties": {
            "type": {"type": "string", "enum": ["PQL"]},
            "format": {"type": "string", "enum": ["pql/text", "pql/json"]},
            "value": {"type": "string", "description": "pql/json trees are serialized"}}},
        "EvaluationInfo": {"type": "object", "properties": {
            "batch": _ENABLED, "continuous": _ENABLED, "synchronous": _ENABLED}},
        "SegmentDefinitionInput": {"type": "object", "required": ["name", "expression",
                                                                  "schema"], "properties": {
            "name": _STR, "description": _STR,
            "expression": {"$ref": "#/components/schemas/Expression"},
            "schema": {"type": "object", "properties": {"name": _STR}},
            "mergePolicyId": _STR,
            "evaluationInfo": {"$ref": "#/components/schemas/EvaluationInfo"},
            "ttlInDays": {"type": "integer"}, "payloadSchema": _STR}},
        "SegmentDefinition": {"allOf": [{"$ref": "#/components/schemas/SegmentDefinitionInput"},
                                        {"type": "object", "properties": {
            "id": _STR, "profileInstanceId": _STR, "imsOrgId": _STR,
            "sandbox": {"$ref": "#/components/schemas/Sandbox"},
            "dataGovernancePolicy": _OBJ,
            "creationTime": {"type": "integer", "format": "int64", "description": "epoch ms"},
            "updateTime": {"type": "integer", "format": "int64", "description": "epoch ms"},
            "updateEpoch": {"type": "integer", "format": "int64",
                            "description": "epoch s"}}}]},
        "SegmentDefinitionList": {"type": "object", "properties": {
            "segments": {"type": "array",
                         "items": {"$ref": "#/components/schemas/SegmentDefinition"}},
            "page": {"type": "object", "properties": {
                name: {"type": "integer"} for name in ("totalCount", "totalPages", "pageSize",
                                                       "limit")} | {"sortField": _STR,
                                                                    "sort": _STR}},
            "link": {"type": "object", "properties": {
                "next": {"type": "string", "description": "path of the next page"}}},
            "_links": LINKS_SCHEMA}},
        "BulkGet": {"type": "object", "properties": {"ids": {
            "type": "array", "items": {"type": "object", "properties": {"id": _STR}}}}},
        "Sandbox": {"type": "object", "properties": {
            "sandboxId": _STR, "sandboxName": _STR,
            "type": {"type": "string", "enum": ["production", "development"]},
            "default": {"type": "boolean"}}},
        "SandboxDetail": {"type": "object", "required": ["name", "title", "state", "type",
                                                          "isDefault"], "properties": {
            "name": _STR, "title": _STR, "state": {"type": "string", "enum": ["active"]},
            "type": {"type": "string", "enum": ["production", "development"]},
            "isDefault": {"type": "boolean"}, "region": _STR,
            "createdDate": {**_STR, "description": "yyyy-mm-dd hh:mm:ss (UTC)"},
            "lastModifiedDate": _STR, "createdBy": _STR, "lastModifiedBy": _STR}},
        "SandboxList": {"type": "object", "required": ["sandboxes", "_page", "_links"],
                        "properties": {
            "sandboxes": {"type": "array",
                          "items": {"$ref": "#/components/schemas/SandboxDetail"}},
            "_page": {"type": "object", "properties": {"limit": {"type": "integer"},
                                                       "count": {"type": "integer"}}},
            "_links": {**LINKS_SCHEMA, "properties": {**LINKS_SCHEMA["properties"], "page": {
                "type": "object", "properties": {"href": _STR,
                                                 "templated": {"type": "boolean"}}}}}}},
        "MergePolicyInput": {"type": "object", "required": ["name", "schema"], "properties": {
            "name": _STR, "schema": {"type": "object", "properties": {"name": _STR}},
            "identityGraph": {"type": "object", "properties": {
                "type": {"type": "string", "enum": ["none", "pdg"]}}},
            "attributeMerge": {"type": "object", "properties": {
                "type": {"type": "string", "enum": ["timestampOrdered", "dataSetPrecedence"]},
                "order": {"type": "array", "items": _STR}}},
            "default": {"type": "boolean"}, "isActiveOnEdge": {"type": "boolean"}}},
        "MergePolicy": {"allOf": [{"$ref": "#/components/schemas/MergePolicyInput"},
                                  {"type": "object", "properties": {
            "id": _STR, "imsOrgId": _STR, "version": {"type": "integer"},
            "sandbox": {"$ref": "#/components/schemas/Sandbox"},
            "updateEpoch": {"type": "integer"}}}]},
        "MergePolicyList": {"type": "object", "properties": {
            "_page": {"type": "object", "properties": {"totalCount": {"type": "integer"},
                                                       "pageSize": {"type": "integer"},
                                                       "count": {"type": "integer"}}},
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/MergePolicy"}},
            "_links": LINKS_SCHEMA}},
    },
}


def document() -> dict[str, Any]:
    from engine.api import openapi_ingestion, openapi_jobs, openapi_preview

    paths = {**PATHS, **openapi_preview.PATHS, **openapi_jobs.PATHS, **openapi_ingestion.PATHS}
    schemas = {**COMPONENTS["schemas"], **openapi_preview.SCHEMAS, **openapi_jobs.SCHEMAS,
               **openapi_ingestion.SCHEMAS}
    return copy.deepcopy({
        "openapi": "3.0.3",
        "info": {"title": "Segment Studio built-in engine",
                 "version": "0.1.0",
                 "description": "An AEP-compatible subset: IMS tokens, segment definitions, "
                                "merge policies and union schemas (see spec/aep-api.md)."},
        "paths": paths,
        "components": {**COMPONENTS, "schemas": schemas},
    })
