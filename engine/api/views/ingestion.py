"""Batch Ingestion — /data/foundation/import: create a batch, PUT its files, COMPLETE or ABORT
it. What becomes of it is read through Catalog (GET /catalog/batches/{id}).

Answers as AEP's: 201 with the batch, then 200 with an empty body; refusals are Catalog's
problem details (``{"type", "status", "title", "detail"}``).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from engine.api import broker, services_ingestion
from engine.api.auth import FILE_BODY, NO_BODY, api_view, json_body
from engine.api.shapes_jobs import created_batch_json


@api_view("POST")
def batches(request: HttpRequest) -> JsonResponse:
    batch = services_ingestion.batch_create(
        sandbox=request.sandbox, client=request.api_client,  # type: ignore[attr-defined]
        body=json_body(request))
    org = request.api_client.org_id  # type: ignore[attr-defined]
    return JsonResponse(created_batch_json(batch, org), status=201)


@api_view("POST", body=NO_BODY)  # ?action=COMPLETE is sent without a body or a Content-Type
def batch_action(request: HttpRequest, batch_id: str) -> HttpResponse:
    if str(request.GET.get("action", "")).upper() == "COMPLETE":
        broker.require_broker()  # the batch stays loading; COMPLETE can be sent again
    services_ingestion.batch_action(sandbox=request.sandbox,  # type: ignore[attr-defined]
                                    batch_id=batch_id, action=request.GET.get("action"))
    return HttpResponse(status=200)


@api_view("PUT", body=FILE_BODY)
def batch_file(request: HttpRequest, batch_id: str, dataset_id: str,
               file_name: str) -> HttpResponse:
    # the request itself is the stream: request.body would hold the whole file in memory
    services_ingestion.batch_file_upload(
        sandbox=request.sandbox, batch_id=batch_id,  # type: ignore[attr-defined]
        dataset_id=dataset_id, name=file_name, stream=request)
    return HttpResponse(status=200)
