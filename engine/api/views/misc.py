"""The public OpenAPI document, and JSON answers for unknown API paths."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from engine.api import errors
from engine.api.auth import api_view
from engine.api.openapi import document


@api_view("GET", platform=False)
def openapi(request: HttpRequest) -> JsonResponse:
    return JsonResponse(document())


@api_view("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", platform=False)
def route_not_found(request: HttpRequest) -> JsonResponse:
    raise errors.not_found(errors.ROUTE_NOT_FOUND.format(path=request.path))
