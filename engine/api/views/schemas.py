"""Schema Registry union schemas — /data/foundation/schemaregistry/tenant/... (read only).

The union of a class is what the engine inferred from every profile-enabled dataset of the
sandbox (engine.snapshot.union_tree), served as a resolved JSON Schema.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from engine import xdm
from engine.api import errors
from engine.api.auth import api_view
from engine.api.paging import links
from engine.models import XdmClass
from engine.snapshot import union_tree

UNIONS = {
    XdmClass.PROFILE: {
        "$id": "https://ns.adobe.com/xdm/context/profile__union",
        "meta:altId": "_xdm.context.profile__union",
        "meta:class": "https://ns.adobe.com/xdm/context/profile",
        "title": "XDM Individual Profile union",
    },
    XdmClass.EVENT: {
        "$id": "https://ns.adobe.com/xdm/context/experienceevent__union",
        "meta:altId": "_xdm.context.experienceevent__union",
        "meta:class": "https://ns.adobe.com/xdm/context/experienceevent",
        "title": "XDM ExperienceEvent union",
    },
}
FULL_MEDIA_TYPES = ("application/vnd.adobe.xed-full+json", "application/vnd.adobe.xed+json")


def json_schema(tree: xdm.Tree) -> dict[str, Any]:
    """An engine type tree as JSON Schema: objects, arrays, maps (additionalProperties), dates."""
    kind = tree["type"]
    if kind == "object":
        return {"type": "object",
                "properties": {name: json_schema(sub)
                               for name, sub in tree.get("fields", {}).items()}}
    if kind == "array":
        return {"type": "array", "items": json_schema(tree["items"])}
    if kind == "map":
        return {"type": "object", "meta:xdmType": "map",
                "additionalProperties": json_schema(tree["values"])}
    if kind in ("date", "date-time"):
        return {"type": "string", "format": kind}
    if kind == "null":
        return {"type": "string"}
    return {"type": kind}


def _class_of(schema_id: str) -> XdmClass | None:
    wanted = schema_id.rstrip("/")
    for xdm_class, meta in UNIONS.items():
        if wanted in (meta["$id"], meta["meta:altId"]):
            return xdm_class
    return None


@api_view("GET")
def unions(request: HttpRequest) -> JsonResponse:
    results = [{"$id": meta["$id"], "meta:altId": meta["meta:altId"], "version": "1.0",
                "title": meta["title"]} for meta in UNIONS.values()]
    return JsonResponse({"results": results, "_page": {"orderby": "title", "next": None,
                                                        "count": len(results)},
                         "_links": links(None)})  # one page: every union


@api_view("GET")
def union_schema(request: HttpRequest, schema_id: str) -> JsonResponse:
    xdm_class = _class_of(schema_id)
    if xdm_class is None:
        raise errors.problem_error(errors.NOT_FOUND, "NotFoundError",
                                   errors.SCHEMA_NOT_FOUND.format(id=schema_id))
    accept = request.headers.get("Accept", "")
    media_type = accept.split(";")[0].strip().lower()
    if media_type not in FULL_MEDIA_TYPES:
        raise errors.problem_error(errors.NOT_ACCEPTABLE, "NotAcceptableError",
                                   errors.ACCEPT_INVALID.format(accept=accept))
    meta = UNIONS[xdm_class]
    tree = union_tree(request.sandbox, xdm_class)  # type: ignore[attr-defined]
    body = {**meta, "$schema": "http://json-schema.org/draft-06/schema#",
            "type": "object", "meta:resourceType": "unions", "meta:containerId": "tenant",
            "version": "1.0", "properties": json_schema(tree)["properties"]}
    return JsonResponse(body)
