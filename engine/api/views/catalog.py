"""Catalog — /data/foundation/catalog: datasets and batches (spec/aep-api.md §7.1, §7.2); a
dataset is deleted with its batches and files (DELETE /dataSets/{id}, as Catalog's
deleteDataset: 200 with ``["@/dataSets/<id>"]``).

Answers are objects keyed by id; errors are Catalog's problem details
(``{"type", "status", "title": "NotFoundError", "detail": "DataSet not found."}``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse

from engine.api import errors, services_jobs
from engine.api.auth import MAX_EPOCH_MS, api_view, json_body, natural
from engine.api.shapes_jobs import CATALOG_PATH, batch_json, dataset_json
from engine.models import Batch, BatchStatus, Dataset

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
LIMIT_INVALID = f"limit must be an integer from 1 to {MAX_LIMIT}."
START_INVALID = "start must be a non-negative integer."
ORDER_INVALID = "orderBy must be asc:created, desc:created, asc:updated or desc:updated."
TIME_INVALID = "{name} must be epoch milliseconds (before the year 10000)."
STATUS_INVALID = "status must be one of " + ", ".join(BatchStatus.values) + "."
BATCH_NOT_FOUND = "Batch not found."


def _bad(detail: str) -> errors.ApiError:
    return errors.problem_error(errors.BAD_REQUEST, "BadRequestError", detail)


def _page(request: HttpRequest) -> tuple[int, int]:
    """Catalog paging: limit default 20, at most 100; 0 or garbage is a 400 (spec §7.2)."""
    limit = natural(request.GET.get("limit", str(DEFAULT_LIMIT)), MAX_LIMIT)
    if not limit:
        raise _bad(LIMIT_INVALID)
    start = natural(request.GET.get("start", "0"))
    if start is None:
        raise _bad(START_INVALID)
    return limit, start


def _order(request: HttpRequest, columns: dict[str, str]) -> list[str]:
    raw = request.GET.get("orderBy") or request.GET.get("sort") or "desc:created"
    direction, _, field = raw.partition(":")
    if direction not in ("asc", "desc") or field not in columns:
        raise _bad(ORDER_INVALID)
    prefix = "-" if direction == "desc" else ""
    return [prefix + columns[field], prefix + "id"]


def _trim(body: dict[str, Any], request: HttpRequest) -> dict[str, Any]:
    wanted = [p.strip() for p in request.GET.get("properties", "").split(",") if p.strip()]
    return {k: v for k, v in body.items() if k in wanted} if wanted else body


def _time_filter(request: HttpRequest, rows: QuerySet[Any], column: str) -> QuerySet[Any]:
    for name, lookup in (("createdAfter", "gt"), ("createdBefore", "lt")):
        raw = request.GET.get(name)
        if raw is None:
            continue
        millis = natural(raw, MAX_EPOCH_MS)
        if millis is None:
            raise _bad(TIME_INVALID.format(name=name))
        moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
        rows = rows.filter(**{f"{column}__{lookup}": moment})
    return rows


@api_view("GET", "POST")
def datasets(request: HttpRequest) -> JsonResponse:
    sandbox = request.sandbox  # type: ignore[attr-defined]
    if request.method == "POST":
        dataset = services_jobs.dataset_create(sandbox=sandbox, body=json_body(request))
        response = JsonResponse([f"@/dataSets/{dataset.id}"], status=201, safe=False)
        response["Location"] = f"{CATALOG_PATH}/dataSets/{dataset.id}"
        return response
    limit, start = _page(request)
    rows: QuerySet[Dataset] = Dataset.objects.in_sandbox(sandbox)
    if "name" in request.GET:
        rows = rows.filter(name=request.GET["name"])
    rows = _time_filter(request, rows, "created_at")
    rows = rows.order_by(*_order(request, {"created": "created_at", "updated": "updated_at"}))
    org = request.api_client.org_id  # type: ignore[attr-defined]
    return JsonResponse({d.id: _trim(dataset_json(d, org), request)
                         for d in rows[start:start + limit]})


@api_view("GET", "DELETE")
def dataset_detail(request: HttpRequest, dataset_id: str) -> JsonResponse:
    dataset = services_jobs.dataset_get(sandbox=request.sandbox,  # type: ignore[attr-defined]
                                        dataset_id=dataset_id)
    if request.method == "DELETE":
        reference = f"@/dataSets/{dataset.id}"  # as Catalog answers
        services_jobs.dataset_delete(dataset=dataset)
        return JsonResponse([reference], safe=False)
    org = request.api_client.org_id  # type: ignore[attr-defined]
    return JsonResponse({dataset.id: _trim(dataset_json(dataset, org), request)})


@api_view("GET")
def batches(request: HttpRequest) -> JsonResponse:
    limit, start = _page(request)
    rows: QuerySet[Batch] = Batch.objects.select_related("client").filter(
        dataset__sandbox=request.sandbox)  # type: ignore[attr-defined]
    if "dataSet" in request.GET:
        rows = rows.filter(dataset_id=request.GET["dataSet"])
    if "batch" in request.GET:
        rows = rows.filter(id=request.GET["batch"])
    if "status" in request.GET:
        if request.GET["status"] not in BatchStatus.values:
            raise _bad(STATUS_INVALID)
        rows = rows.filter(status=request.GET["status"])
    rows = _time_filter(request, rows, "created_at")
    rows = rows.order_by(*_order(request, {"created": "created_at", "updated": "updated_at"}))
    org = request.api_client.org_id  # type: ignore[attr-defined]
    return JsonResponse({b.id: _trim(batch_json(b, org), request)
                         for b in rows[start:start + limit]})


def batch_get(request: HttpRequest, batch_id: str) -> Batch:
    batch = (Batch.objects.select_related("dataset", "client")
             .filter(dataset__sandbox=request.sandbox, id=batch_id)  # type: ignore[attr-defined]
             .first())
    if batch is None:
        raise errors.problem_error(errors.NOT_FOUND, "NotFoundError", BATCH_NOT_FOUND)
    return batch


@api_view("GET")
def batch_detail(request: HttpRequest, batch_id: str) -> JsonResponse:
    batch = batch_get(request, batch_id)
    org = request.api_client.org_id  # type: ignore[attr-defined]
    return JsonResponse({batch.id: _trim(batch_json(batch, org), request)})
