"""Sandbox management — /data/foundation/sandbox-management (spec/aep-api.md §1.1).

The sandboxes an API client may use are the ones it was created with (``ApiClient.sandboxes``);
the engine has no other notion of a sandbox, so ``/sandboxes`` (all of the org's, for an admin
on AEP) and ``/`` (the caller's) list the same ones. These routes need the token, API key and
org headers but no ``x-sandbox-name`` — listing sandboxes is how a client learns their names.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from engine.api import errors
from engine.api.auth import api_view, int_param
from engine.api.paging import links
from engine.models import DEFAULT_SANDBOX, ApiClient

SANDBOXES_PATH = "/data/foundation/sandbox-management/sandboxes"
DEFAULT_LIMIT = 50  # Adobe's default page (limit 50, offset 0)
REGION = "local"  # AEP answers its data centre (VA7, NLD2, ...); the engine runs here
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"  # Adobe's "2019-09-04 04:57:24"


def sandbox_names(client: ApiClient) -> list[str]:
    """The client's sandboxes, each once, in the order it was given them."""
    return list(dict.fromkeys(str(name) for name in client.sandboxes))


def sandbox_json(name: str, client: ApiClient) -> dict[str, Any]:
    production = name == DEFAULT_SANDBOX
    created = client.created.strftime(DATE_FORMAT)
    return {
        "name": name,
        "title": "Production" if production else name.replace("-", " ").title(),
        "state": "active",
        "type": "production" if production else "development",
        "isDefault": production,
        "region": REGION,
        "createdDate": created,
        "lastModifiedDate": created,
        "createdBy": client.client_id,
        "lastModifiedBy": client.client_id,
    }


@api_view("GET", sandboxed=False)
def sandboxes(request: HttpRequest) -> JsonResponse:
    """GET /sandboxes and GET / (the caller's): {sandboxes, _page {limit, count}, _links}."""
    client: ApiClient = request.api_client  # type: ignore[attr-defined]
    limit = int_param(request, "limit", DEFAULT_LIMIT) or DEFAULT_LIMIT
    offset = int_param(request, "offset", 0)
    every = sandbox_names(client)
    names = every[offset:offset + limit]
    base = request.build_absolute_uri(SANDBOXES_PATH)
    # ours: the next page, for clients that follow links (Adobe documents only "page")
    href = (f"{base}/?limit={limit}&offset={offset + limit}"
            if offset + limit < len(every) else "")
    return JsonResponse({
        "sandboxes": [sandbox_json(name, client) for name in names],
        "_page": {"limit": limit, "count": len(names)},
        "_links": links(href, page={"href": base + "/?limit={limit}&offset={offset}",
                                    "templated": True}),
    })


@api_view("GET", sandboxed=False)
def sandbox_detail(request: HttpRequest, name: str) -> JsonResponse:
    client: ApiClient = request.api_client  # type: ignore[attr-defined]
    if name not in sandbox_names(client):
        raise errors.not_found(errors.SANDBOX_NOT_FOUND.format(sandbox=name))
    return JsonResponse(sandbox_json(name, client))
