"""Preview and estimate — /data/core/ups/preview, /estimate, /previewsamplestatus
(spec/aep-api.md §3).

POST stores a preview and enqueues its run on the engine queue; the GETs read the row (the
estimate) or the preview's own snapshot file (the member pages), never the worker.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from django.db import transaction
from django.db.models import Max, Sum
from django.http import HttpRequest, JsonResponse

from engine import previews
from engine.api import broker, caps, errors, services
from engine.api.auth import api_view, int_param, json_body
from engine.api.paging import links
from engine.duck import scalar
from engine.estimate import sample_plan
from engine.models import (
    CLASS_SCHEMA_NAMES,
    Batch,
    BatchStatus,
    IdentityGraph,
    MergePolicy,
    Preview,
    PreviewState,
    Snapshot,
    SnapshotStatus,
    XdmClass,
)
from engine.segments import EvaluationBudgetExceeded
from engine.snapshot import NoSnapshotError, default_merge_policy, open_snapshot_file

UPS_PATH = "/data/core/ups"
PREVIEW_PATH = f"{UPS_PATH}/preview"
ESTIMATE_PATH = f"{UPS_PATH}/estimate"
DEFAULT_LIMIT = 1000  # spec §3.2
MAX_LIMIT = 10_000
PREDICATE_TYPES = {"pql/text": "pql/text", "pql/json": "pql/json", "pql": "pql/text",
                   "PQL": "pql/text"}
GRAPH_TYPES = {"none": IdentityGraph.NONE, "pdg": IdentityGraph.PDG,
               "simple": IdentityGraph.NONE}  # 2019 API: "simple"
PROFILE_MODELS = (CLASS_SCHEMA_NAMES[XdmClass.PROFILE], "xdm.model.profile")

PREVIEW_NOT_FOUND = ("The preview {id} is not found (unknown, deleted or expired). "
                     "Use a valid entity and try again.")
PREVIEW_SNAPSHOT_GONE = ("The preview {id} is not found: the snapshot it read has been "
                         "replaced and removed. Create a new preview.")
PREVIEW_POLICY_GONE = ("The preview {id} is not found: its merge policy {policy} has been "
                       "deleted. Create a new preview.")
NO_SNAPSHOT = ("The sandbox {sandbox} has no profile store yet: ingest data and build a "
               "snapshot first.")
PREDICATE_TYPE_INVALID = "The predicateType must be pql/text or pql/json, not {value}."
GRAPH_TYPE_INVALID = "The graphType must be none or pdg, not {value}."
MODEL_INVALID = "The predicateModel must be _xdm.context.profile, not {value}."
LIMIT_INVALID = "The parameter limit must be between 1 and {max}."


def preview_get(request: HttpRequest, preview_id: str) -> Preview:
    """The sandbox's unexpired preview, or a 404 (another sandbox's preview is not found)."""
    preview = previews.previews_live().filter(
        pk=preview_id, sandbox=request.sandbox).first()  # type: ignore[attr-defined]
    if preview is None:
        raise errors.not_found(PREVIEW_NOT_FOUND.format(id=preview_id))
    return preview


def _policy(request: HttpRequest, value: Any) -> MergePolicy | None:
    if value in (None, ""):
        return None
    policy_id = services.merge_policy_id_read(value, request.sandbox)  # type: ignore[attr-defined]
    return MergePolicy.objects.get(id=uuid.UUID(policy_id))


def preview_location(preview: Preview) -> str:
    return f"{PREVIEW_PATH}/{preview.id}"


def preview_link(preview: Preview) -> str:
    """§3.3's _links.preview, in its current form (``/execution/0?previewQueryId=``)."""
    return f"{PREVIEW_PATH}/{preview.id}/execution/0?previewQueryId={preview.query_id}"


def _create(request: HttpRequest) -> JsonResponse:
    body = json_body(request)
    raw_type = body.get("predicateType") or "pql/text"
    if not isinstance(raw_type, str) or raw_type not in PREDICATE_TYPES:
        raise errors.invalid(PREDICATE_TYPE_INVALID.format(value=raw_type))
    predicate_type = PREDICATE_TYPES[raw_type]
    model = body.get("predicateModel") or PROFILE_MODELS[0]
    if not isinstance(model, str) or model not in PROFILE_MODELS:
        raise errors.invalid(MODEL_INVALID.format(value=model))
    raw_graph = body.get("graphType") or IdentityGraph.PDG
    if not isinstance(raw_graph, str) or raw_graph not in GRAPH_TYPES:
        raise errors.invalid(GRAPH_TYPE_INVALID.format(value=raw_graph))
    value = body.get("predicateExpression")
    if not isinstance(value, str) or not value.strip():
        raise errors.invalid(errors.FIELD_REQUIRED.format(field="predicateExpression"))
    # the same reading as a segment definition's expression: a 400 with line and column
    expression = services.expression_read({"type": "PQL", "format": predicate_type,
                                           "value": value})
    # and judged as a definition is: what a preview runs could be saved
    services.expression_check(expression, sandbox=request.sandbox)  # type: ignore[attr-defined]
    policy = _policy(request, body.get("mergePolicyId"))
    client = request.api_client  # type: ignore[attr-defined]
    broker.require_broker()  # 503 before anything is written
    try:
        with transaction.atomic():  # counted and created under the client's lock
            caps.previews_admit(client)
            preview = previews.preview_create(
                sandbox=request.sandbox,  # type: ignore[attr-defined]
                client=client, expression=expression.value, predicate_type=predicate_type,
                predicate_model=PROFILE_MODELS[0], graph_type=GRAPH_TYPES[raw_graph],
                policy=policy)
    except NoSnapshotError:
        raise errors.invalid(NO_SNAPSHOT.format(
            sandbox=request.sandbox)) from None  # type: ignore[attr-defined]
    response = JsonResponse({
        "state": preview.state,
        "previewQueryId": str(preview.query_id),
        "previewQueryStatus": preview.state,
        "previewId": preview.id,
        "previewExecutionId": 0,
    }, status=201)
    response["X-Location"] = preview_location(preview)
    return response


@api_view("POST")
def preview_create(request: HttpRequest) -> JsonResponse:
    return _create(request)


def _page(request: HttpRequest, preview: Preview) -> JsonResponse:
    offset = int_param(request, "offset", 0)
    limit = int_param(request, "limit", DEFAULT_LIMIT)
    if not 0 < limit <= MAX_LIMIT:
        raise errors.invalid(LIMIT_INVALID.format(max=MAX_LIMIT))
    results: list[dict[str, Any]] = []
    has_next = False
    if preview.state != PreviewState.FAILED:
        try:
            page = previews.member_page(preview, offset=offset, limit=limit)
        except EvaluationBudgetExceeded as error:  # the estimate may have been read in steps
            raise errors.ups_error(errors.UNPROCESSABLE, errors.OVER_BUDGET_TYPE,
                                   error.message) from None
        except NoSnapshotError:
            raise errors.not_found(PREVIEW_SNAPSHOT_GONE.format(id=preview.id)) from None
        except MergePolicy.DoesNotExist:
            raise errors.not_found(PREVIEW_POLICY_GONE.format(
                id=preview.id, policy=preview.merge_policy_id)) from None
        has_next = page.has_next
        for member in page.profiles:
            results.append({member["id"]: {
                "_href": profile_href(member["id"]),
                "endCustomerIds": {
                    f"{item['namespace']['code']}:{item['id']}": {
                        "_href": identity_href(item["namespace"]["code"], item["id"])}
                    for item in member["identities"]},
                "identities": member["identities"],
                "entity": member["entity"],
            }})

    def link(at: int) -> str:
        return f"{preview_location(preview)}?{urlencode({'offset': at, 'limit': limit})}"

    href = link(offset + limit) if has_next else ""
    # links as Adobe's preview example (next "" on the last page), and _links.next.href as
    # AEP's other lists, for clients that follow that one
    return JsonResponse({
        "results": results,
        "state": preview.state,
        "links": {"_self": link(offset), "next": href,
                  "prev": link(max(0, offset - limit)) if offset else ""},
        "_links": links(href),
        "page": {"offset": offset, "size": len(results), "limit": limit},
    })


def profile_href(profile_id: str) -> str:
    query = urlencode({"schema.name": CLASS_SCHEMA_NAMES[XdmClass.PROFILE],
                       "entityId": profile_id})
    return f"{UPS_PATH}/access/entities?{query}"


def identity_href(namespace: str, identity: str) -> str:
    query = urlencode({"schema.name": CLASS_SCHEMA_NAMES[XdmClass.PROFILE],
                       "entityId": identity, "entityIdNS": namespace})
    return f"{UPS_PATH}/access/entities?{query}"


@api_view("GET", "DELETE")
def preview_detail(request: HttpRequest, preview_id: str) -> JsonResponse:
    preview = preview_get(request, preview_id)
    if request.method == "DELETE":
        previews.preview_cancel(preview=preview)
        return JsonResponse({"status": True, "message": "KILLED"})
    return _page(request, preview)


@api_view("GET")
def preview_execution(request: HttpRequest, preview_id: str,
                      execution_id: str) -> JsonResponse:
    """The _links.preview form of the results (``/preview/{id}/execution/0``)."""
    return _page(request, preview_get(request, preview_id))


def estimate_body(preview: Preview) -> dict[str, Any]:
    data = preview.estimate or {}
    return {
        "estimatedSize": data.get("estimated_size", 0),
        "numRowsToRead": data.get("rows_to_read", 0),
        "profilesReadSoFar": data.get("profiles_read", 0),
        "profilesMatchedSoFar": data.get("profiles_matched", 0),
        "totalRows": data.get("total_rows", 0),
        "standardError": data.get("standard_error", 0),
        "confidenceInterval": "95%",
        # ours: the bounds of that 95 % interval (Adobe documents none)
        "confidenceIntervalBounds": {"low": data.get("low", 0), "high": data.get("high", 0)},
        "estimatedNamespaceDistribution": data.get("namespaces", []),
        "state": preview.state,
        "error": preview.error or {"description": "", "traceback": ""},
        "_links": {"preview": preview_link(preview)},
    }


@api_view("GET")
def estimate(request: HttpRequest, preview_id: str) -> JsonResponse:
    return JsonResponse(estimate_body(preview_get(request, preview_id)))


def _iso(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else ""


@api_view("GET")
def preview_sample_status(request: HttpRequest) -> JsonResponse:
    """Store statistics of the current snapshot (§3.5): the sample is the snapshot itself,
    rebuilt when batches are ingested."""
    sandbox = request.sandbox  # type: ignore[attr-defined]
    policy = default_merge_policy(sandbox)
    snapshot = (Snapshot.objects.filter(sandbox=sandbox, status=SnapshotStatus.READY)
                .order_by("-finished_at", "-id").first())
    building = (Snapshot.objects.filter(sandbox=sandbox, status=SnapshotStatus.BUILDING)
                .order_by("-started_at").first())
    batches = Batch.objects.filter(dataset__sandbox=sandbox, status=BatchStatus.SUCCESS)
    last_batch = batches.order_by("-completed_at", "-id").first()
    fragments = (batches.filter(dataset__xdm_class=XdmClass.PROFILE, dataset__profile_enabled=True)
                 .aggregate(n=Sum("record_count"))["n"] or 0)
    total = rows_to_read = 0
    if snapshot is not None:
        counts = snapshot.stats.get("profiles", {})
        total = int(counts.get(str(policy.id), next(iter(counts.values()), 0)))
        plan = sample_plan(total)
        rows_to_read = total
        if plan.buckets < 1024:
            try:
                with open_snapshot_file(sandbox, snapshot.file_name) as con:
                    rows_to_read = scalar(
                        con, "SELECT count(*) FROM profiles WHERE _bucket < ?", [plan.buckets])
            except NoSnapshotError:
                rows_to_read = round(total * plan.ratio)
    last_event = batches.aggregate(at=Max("completed_at"))["at"]
    return JsonResponse({
        # strings, as Adobe's schema and documented example have them ("41003")
        "numRowsToRead": str(rows_to_read),
        "totalRows": str(total),
        "totalFragmentCount": fragments,
        "samplingRatio": round(rows_to_read / total, 6) if total else 0.0,
        "status": "TASK_FINISHED" if snapshot else "NO_SAMPLE",
        "mergeStrategy": f"{policy.attribute_merge}_auto",
        "lastSampledTimestamp": _iso(snapshot.finished_at if snapshot else None),
        "lastSuccessfulBatchTimestamp": _iso(last_event),
        "lastBatchId": last_batch.id if last_batch else "",
        "sampleJobRunning": {
            "status": building is not None,  # a boolean on AEP
            "submissionTimestamp": _iso(building.started_at if building else None)},
        "snapshotFile": snapshot.file_name if snapshot else "",  # ours
    })
