"""Segment definitions — /data/core/ups/segment/definitions (spec/aep-api.md §2)."""

from __future__ import annotations

import math
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from engine.api import errors, services
from engine.api.auth import api_view, bulk_get, int_param, json_body
from engine.api.paging import links, next_query
from engine.api.shapes import (
    DEFINITIONS_PATH,
    definition_json,
    definition_location,
    sandbox_json,
)
from engine.models import SegmentDefinition

DEFAULT_LIMIT = 100
# AEP sort attributes → our columns.
SORT_FIELDS = {"creationTime": "creation_time", "updateTime": "update_time", "name": "name",
               "id": "id", "description": "description"}
BOOLEAN_FILTERS = {
    "evaluationInfo.batch.enabled": "evaluation_info__batch__enabled",
    "evaluationInfo.continuous.enabled": "evaluation_info__continuous__enabled",
    "evaluationInfo.synchronous.enabled": "evaluation_info__synchronous__enabled",
}


def _sort(raw: str) -> list[tuple[str, str]]:
    """``name:asc,updateTime:desc`` → [(field, direction)]; a 400 for anything else."""
    result = []
    for part in raw.split(","):
        field, _, direction = part.strip().partition(":")
        direction = direction or "asc"
        if field not in SORT_FIELDS or direction not in ("asc", "desc"):
            raise errors.invalid(errors.SORT_INVALID.format(sort=raw,
                                                            fields=", ".join(SORT_FIELDS)))
        result.append((field, direction))
    return result


def _list(request: HttpRequest) -> JsonResponse:
    limit = int_param(request, "limit", DEFAULT_LIMIT) or DEFAULT_LIMIT
    page = int_param(request, "page", 0)
    start = int_param(request, "start", page * limit)
    raw_sort = request.GET.get("sort") or "creationTime:desc"
    sort = _sort(raw_sort)
    order = [("-" if direction == "desc" else "") + SORT_FIELDS[field]
             for field, direction in sort]
    definitions = SegmentDefinition.objects.in_sandbox(request.sandbox)  # type: ignore[attr-defined]
    for param, lookup in BOOLEAN_FILTERS.items():
        if param in request.GET:
            definitions = definitions.filter(**{lookup: request.GET[param].lower() == "true"})
    total = definitions.count()
    rows = list(definitions.order_by(*order, "id")[start:start + limit])
    href = ""
    if start + len(rows) < total:
        href = DEFINITIONS_PATH + "?" + next_query(request, replace=("page",),
                                                   start=start + len(rows), limit=limit)
    # Adobe documents ``link`` ({} on the last page) and leaves its next page undocumented;
    # _links.next.href is what AEP's other lists carry: both, so either kind of client pages
    return JsonResponse({
        "segments": [definition_json(row) for row in rows],
        "page": {"totalCount": total, "totalPages": math.ceil(total / limit),
                 "sortField": sort[0][0], "sort": sort[0][1], "pageSize": len(rows),
                 "limit": limit},
        "link": {"next": href} if href else {},
        "_links": links(href),
    })


def _saved(definition: SegmentDefinition) -> JsonResponse:
    response = JsonResponse(definition_json(definition))
    response["X-Location"] = definition_location(definition)
    return response


@api_view("GET", "POST")
def definitions(request: HttpRequest) -> JsonResponse:
    if request.method == "GET":
        return _list(request)
    definition = services.definition_create(
        sandbox=request.sandbox,  # type: ignore[attr-defined]
        org_id=request.api_client.org_id,  # type: ignore[attr-defined]
        body=json_body(request))
    return _saved(definition)


@api_view("GET", "PATCH", "DELETE")
def definition_detail(request: HttpRequest, definition_id: str) -> JsonResponse:
    definition = services.definition_get(sandbox=request.sandbox,  # type: ignore[attr-defined]
                                         definition_id=definition_id)
    if request.method == "PATCH":
        definition = services.definition_overwrite(definition=definition,
                                                   body=json_body(request))
        return _saved(definition)
    if request.method == "DELETE":
        services.definition_delete(definition=definition)
        return JsonResponse({"status": True,
                             "message": f"Segment definition {definition_id} deleted."})
    return JsonResponse(definition_json(definition))


@api_view("POST")
def definitions_bulk_get(request: HttpRequest) -> HttpResponse:
    """207 with every id under ``results``: the definition, or a 404 entry (spec §2.5)."""
    def fetch(wanted: str) -> SegmentDefinition:
        return services.definition_get(sandbox=request.sandbox,  # type: ignore[attr-defined]
                                       definition_id=wanted)

    return bulk_get(request, fetch, definition_json)


@api_view("POST")
def conversion(request: HttpRequest) -> JsonResponse:
    """The posted definition with its expression in the other format (spec §2.8); not stored."""
    body = json_body(request)
    expression = services.expression_read(body.get("expression"))
    fields = services.conversion_fields(body)
    answer: dict[str, Any] = {
        "name": fields.pop("name"),
        "description": fields.pop("description"),
        "schema": fields.pop("schema"),
        "profileInstanceId": "ups",
        "imsOrgId": request.api_client.org_id,  # type: ignore[attr-defined]
        "sandbox": sandbox_json(request.sandbox),  # type: ignore[attr-defined]
        "expression": services.expression_convert(expression),
        **fields,
    }
    return JsonResponse(answer)
