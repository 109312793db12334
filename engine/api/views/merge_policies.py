"""Merge policies — /data/core/ups/config/mergePolicies (spec/aep-api.md §9.1)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from engine.api import errors, services
from engine.api.auth import api_view, int_param, json_body
from engine.api.paging import links, next_query
from engine.api.shapes import merge_policy_json
from engine.models import CLASS_SCHEMA_NAMES, MergePolicy, XdmClass
from engine.snapshot import default_merge_policy

DEFAULT_LIMIT = 20
ORDER_BY = {"": "name", "name": "name", "+name": "name", "-name": "-name",
            "updateEpoch": "updated_at", "+updateEpoch": "updated_at",
            "-updateEpoch": "-updated_at"}
ORDER_INVALID = "The parameter orderBy must be +name or -name."


def _list(request: HttpRequest) -> JsonResponse:
    sandbox = request.sandbox  # type: ignore[attr-defined]
    default_merge_policy(sandbox)  # every sandbox has a default policy
    limit = int_param(request, "limit", DEFAULT_LIMIT) or DEFAULT_LIMIT
    start = int_param(request, "start", 0)
    order_by = request.GET.get("orderBy", request.GET.get("orderby", ""))
    if order_by not in ORDER_BY:
        raise errors.invalid(ORDER_INVALID)
    policies = MergePolicy.objects.filter(sandbox=sandbox)
    schema_name = request.GET.get("schema.name")
    if schema_name and schema_name != CLASS_SCHEMA_NAMES[XdmClass.PROFILE]:
        policies = policies.none()
    if "default" in request.GET:
        policies = policies.filter(default=request.GET["default"].lower() == "true")
    for param, column in (("identityGraph.type", "identity_graph"),
                          ("attributeMerge.type", "attribute_merge")):
        if param in request.GET:
            policies = policies.filter(**{column: request.GET[param]})
    if "isActiveOnEdge" in request.GET:
        policies = policies.filter(is_active_on_edge=request.GET["isActiveOnEdge"] == "true")
    total = policies.count()
    rows = list(policies.order_by(ORDER_BY[order_by], "id")[start:start + limit])
    org = request.api_client.org_id  # type: ignore[attr-defined]
    href = ""
    if start + len(rows) < total:  # Adobe's "@/" form: relative to /config (spec §9.1)
        href = "@/mergePolicies?" + next_query(request, start=start + len(rows), limit=limit)
    # totalCount and pageSize as documented; count as Adobe's schema requires (Page.count,
    # "number of merge policies per page"): docs/adobe-schema-deviations.md, answered both ways
    return JsonResponse({"_page": {"totalCount": total, "pageSize": len(rows),
                                   "count": len(rows)},
                         "children": [merge_policy_json(row, org) for row in rows],
                         "_links": links(href)})


@api_view("GET", "POST")
def merge_policies(request: HttpRequest) -> JsonResponse:
    if request.method == "GET":
        return _list(request)
    policy = services.merge_policy_create(sandbox=request.sandbox,  # type: ignore[attr-defined]
                                          body=json_body(request))
    return JsonResponse(merge_policy_json(policy, request.api_client.org_id))  # type: ignore[attr-defined]


@api_view("GET")
def merge_policy_detail(request: HttpRequest, policy_id: str) -> JsonResponse:
    policy = services.merge_policy_get(sandbox=request.sandbox,  # type: ignore[attr-defined]
                                       policy_id=policy_id)
    return JsonResponse(merge_policy_json(policy, request.api_client.org_id))  # type: ignore[attr-defined]
