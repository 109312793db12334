"""Pages and fragments of the segments app. Every view checks the role; every write goes through
segments.services; status fragments read our database, never the API."""

from __future__ import annotations

import difflib
import json
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Max
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

import pql
from aep import AEPError
from connections.models import Connection
from connections.services import (
    connection_client,
    connection_merge_policy_choices,
    current_connection,
)
from core.htmx import htmx_template
from core.roles import EVERYONE, LEADS, has_role, role_required
from jobs.models import Job, JobKind
from segments.forms import PQLJsonImportForm, SegmentForm
from segments.models import EvaluationMethod, Segment, SegmentVersion
from segments.pql_support import diagnose, field_catalog, function_reference, preview_rows
from segments.services import (
    SegmentError,
    definition_check,
    segment_delete,
    segment_dependents,
    segment_estimate,
    segment_restore,
    segment_save,
    segment_union_schema,
    segments_run,
)

SORTS = {
    "name": "name", "-name": "-name", "updated": "updated_at", "-updated": "-updated_at",
    "count": "last_count", "-count": "-last_count", "run": "last_run_at", "-run": "-last_run_at",
}
PREVIEW_PAGE = 20
MAX_EVENTS = 1000  # read for "why it matches"; the drawer shows the newest 20
NO_CONNECTION = ("There is no connection yet. An admin adds one under Connections "
                 "(make run creates the built-in engine's).")
COPY_NAME = "Copy of {name}"
NOT_YOURS = ("Only {owner} (who made it), team leads and admins can change or delete this "
             "segment. Copy it to make a version of your own.")


# --- helpers --------------------------------------------------------------------------------

def _where(request: HttpRequest) -> tuple[Connection | None, str]:
    return current_connection(request)


def _editor_context(request: HttpRequest, *, connection: Connection, sandbox: str,
                    form: SegmentForm, segment: Segment | None) -> dict[str, Any]:
    schema, schema_message = segment_union_schema(connection=connection, sandbox=sandbox)
    fields = field_catalog(schema)
    text = form["pql"].value() or ""
    checked = (definition_check(connection=connection, sandbox=sandbox, text=text,
                                segment=segment) if text else None)
    return {
        "form": form,
        "segment": segment,
        "connection": connection,
        "sandbox": sandbox,
        "diagnostics": checked.diagnostics if checked else [],
        "schema_message": schema_message,
        "fields": fields,
        "fields_data": [{"collection": f.collection, "path": f.path, "type": f.type}
                        for f in fields],
        # inSegment(…) completes segment names and inserts their ids
        "segments_data": [{"id": other.remote_id, "name": other.name} for other in
                          Segment.objects.in_sandbox(connection, sandbox).exclude(remote_id="")
                          .exclude(pk=segment.pk if segment else 0).order_by("name")],
        "functions": function_reference(),
        "import_form": PQLJsonImportForm(),
        "is_builtin": connection.kind == "builtin",
    }


def _segment_for(request: HttpRequest, pk: int) -> Segment:
    return get_object_or_404(Segment.objects.select_related("connection"), pk=pk)


def can_change(user: Any, segment: Segment) -> bool:
    """Marketers run, estimate, export and copy any segment, but change or delete only their
    own; team leads and admins change all."""
    return has_role(user, LEADS) or (segment.created_by_id is not None
                                     and segment.created_by_id == user.pk)


def _refuse_change(request: HttpRequest, segment: Segment) -> None:
    if not can_change(request.user, segment):
        owner = segment.created_by
        name = (owner.get_full_name() or owner.get_username()) if owner else "its owner"
        raise PermissionDenied(NOT_YOURS.format(owner=name))


# --- list and run -----------------------------------------------------------------------------

@require_GET
@role_required(EVERYONE)
def segment_list(request: HttpRequest) -> HttpResponse:
    connection, sandbox = _where(request)
    params = request.GET
    segments = Segment.objects.select_related("connection", "created_by", "updated_by").annotate(
        current_version=Max("versions__number"))
    if connection is not None:
        segments = segments.filter(connection=connection, sandbox=sandbox)
    segments = segments.search(params.get("q", "").strip())
    owner = params.get("owner", "")
    if owner == "me":
        segments = segments.filter(created_by_id=request.user.pk)
    elif owner.isascii() and owner.isdigit():
        segments = segments.filter(created_by_id=int(owner))
    method = params.get("method", "")
    if method in EvaluationMethod.values:
        segments = segments.filter(evaluation_method=method)
    sort = params.get("sort", "name")
    segments = segments.order_by(SORTS.get(sort, "name"), "pk")
    page = Paginator(segments, 25).get_page(params.get("page"))
    query = params.copy()
    query.pop("page", None)
    owners = get_user_model().objects.filter(
        pk__in=Segment.objects.values("created_by")).order_by("username")
    recent_jobs = Job.objects.visible_to(request.user).filter(
        kind=JobKind.SEGMENT, segments__isnull=False).distinct()[:5]
    context = {
        "page": page, "connection": connection, "sandbox": sandbox, "sort": sort,
        "filters": {"q": params.get("q", ""), "owner": owner, "method": method},
        "query": query.urlencode(), "owners": owners, "methods": EvaluationMethod.choices,
        "recent_jobs": recent_jobs, "no_connection": NO_CONNECTION,
        "filtered": bool(params.get("q") or owner or method),
    }
    template = htmx_template(request, "segments/segment_list.html", partial="segment-table")
    return TemplateResponse(request, template, context)


@require_POST
@role_required(EVERYONE)
def segment_run(request: HttpRequest) -> HttpResponse:
    ids = [int(value) for value in request.POST.getlist("segment")
           if value.isascii() and value.isdigit()]
    segments = list(Segment.objects.select_related("connection").filter(pk__in=ids))
    try:
        jobs = segments_run(segments=segments, actor=request.user)
    except SegmentError as error:
        messages.error(request, error.message)
        return redirect("segments:list")
    if getattr(request, "htmx", False):  # the job rows appear in place and say it themselves
        return TemplateResponse(request, "segments/segment_list.html#run-result",
                                {"jobs": jobs})
    names = ", ".join(segment.name for segment in segments)
    messages.success(request, f"Segment job started for {names}.")
    return redirect("segments:list")


# --- editor -----------------------------------------------------------------------------------

def _save(request: HttpRequest, form: SegmentForm, *, segment: Segment | None,
          connection: Connection, sandbox: str) -> HttpResponse | None:
    """Save a valid form (remote definition, our row, a version) and go to the editor; None
    when the form or the save has errors, which are then on the form."""
    if not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        segment = segment_save(segment=segment, connection=connection, sandbox=sandbox,
                               name=data["name"], description=data["description"],
                               pql_text=data["pql"], merge_policy_id=data["merge_policy_id"],
                               evaluation_method=data["evaluation_method"], actor=request.user)
    except SegmentError as error:
        form.add_error(error.field, error.message)
        return None
    version = segment.versions.first()
    messages.success(request, f"Saved “{segment.name}” as version {version.number}."
                     if version else f"Saved “{segment.name}”.")
    return redirect("segments:edit", segment.pk)


@require_http_methods(["GET", "POST"])
@role_required(EVERYONE)
def segment_create(request: HttpRequest) -> HttpResponse:
    connection, sandbox = _where(request)
    if connection is None:
        messages.error(request, NO_CONNECTION)
        return redirect("segments:list")
    policies = connection_merge_policy_choices(connection, sandbox)
    if request.method == "POST":
        form = SegmentForm(request.POST, merge_policies=policies)
        if saved := _save(request, form, segment=None, connection=connection, sandbox=sandbox):
            return saved
    else:
        form = SegmentForm(initial=_copy_of(request, connection, sandbox)
                           or {"pql": request.GET.get("pql", "")}, merge_policies=policies)
    context = _editor_context(request, connection=connection, sandbox=sandbox, form=form,
                              segment=None)
    return TemplateResponse(request, "segments/segment_edit.html", context)


def _copy_of(request: HttpRequest, connection: Connection, sandbox: str) -> dict[str, Any]:
    """The new-segment form filled in from ``?copy=<segment>`` of this sandbox (anybody may
    copy any segment they can run)."""
    wanted = request.GET.get("copy", "")
    if not (wanted.isascii() and wanted.isdigit()):
        return {}
    original = Segment.objects.in_sandbox(connection, sandbox).filter(pk=int(wanted)).first()
    if original is None:
        return {}
    return {"name": COPY_NAME.format(name=original.name)[:200], "pql": original.pql,
            "description": original.description,
            "merge_policy_id": original.merge_policy_id,
            "evaluation_method": original.evaluation_method}


@require_http_methods(["GET", "POST"])
@role_required(EVERYONE)
def segment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _segment_for(request, pk)
    connection, sandbox = segment.connection, segment.sandbox
    policies = connection_merge_policy_choices(connection, sandbox)
    if request.method == "POST":
        _refuse_change(request, segment)
        form = SegmentForm(request.POST, merge_policies=policies)
        if saved := _save(request, form, segment=segment, connection=connection, sandbox=sandbox):
            return saved
    else:
        form = SegmentForm(initial={
            "name": segment.name, "description": segment.description, "pql": segment.pql,
            "merge_policy_id": segment.merge_policy_id,
            "evaluation_method": segment.evaluation_method,
        }, merge_policies=policies)
    context = _editor_context(request, connection=connection, sandbox=sandbox, form=form,
                              segment=segment)
    context["versions"] = segment.versions.select_related("created_by")[:5]
    context["can_change"] = can_change(request.user, segment)
    if not context["can_change"]:
        owner = segment.created_by
        context["not_yours"] = NOT_YOURS.format(
            owner=(owner.get_full_name() or owner.get_username()) if owner else "its owner")
    context["last_job"] = segment.jobs.order_by("-created_at").first()
    return TemplateResponse(request, "segments/segment_edit.html", context)


@require_POST
@role_required(EVERYONE)
def segment_validate(request: HttpRequest) -> HttpResponse:
    """The editor's live check: the diagnostics fragment for the posted text."""
    connection, sandbox, segment = _editing(request)
    text = request.POST.get("pql", "")
    if not text.strip():  # an empty editor is not an error yet; saving it is
        return TemplateResponse(request, "segments/segment_edit.html#pql-diagnostics", {})
    context: dict[str, Any] = {"checked": True}
    if connection is None:
        context["diagnostics"] = diagnose(text, None)
    else:
        checked = definition_check(connection=connection, sandbox=sandbox, text=text,
                                   segment=segment)
        context.update(diagnostics=checked.diagnostics, schema_message=checked.schema_message)
    return TemplateResponse(request, "segments/segment_edit.html#pql-diagnostics", context)


def _editing(request: HttpRequest) -> tuple[Connection | None, str, Segment | None]:
    """The editor posts the segment it edits (its connection and sandbox win) or nothing (the
    switcher's choice)."""
    segment_id = request.POST.get("segment_id", "")
    if segment_id.isascii() and segment_id.isdigit():
        segment = _segment_for(request, int(segment_id))
        return segment.connection, segment.sandbox, segment
    return (*_where(request), None)



@require_POST
@role_required(EVERYONE)
def segment_convert(request: HttpRequest) -> HttpResponse:
    """pql/text → pql/json through the connection's conversion endpoint (the API's answer is
    what AEP would store), or an imported pql/json → text."""
    connection, sandbox, segment = _editing(request)
    context: dict[str, Any] = {}
    if connection is None:
        context["convert_error"] = NO_CONNECTION
    else:
        try:
            with connection_client(connection, sandbox=sandbox) as client:
                context.update(_convert(request, client))
        except pql.PQLSyntaxError as error:
            context["convert_error"] = f"Fix the definition first: {error}"
        except AEPError as error:
            context["convert_error"] = f"{connection.name} could not convert it: {error.message}"
        if context.get("imported_text"):  # judged as the editor and the save will judge it
            checked = definition_check(connection=connection, sandbox=sandbox,
                                       text=context["imported_text"], segment=segment)
            context["imported_problems"] = checked.diagnostics
    return TemplateResponse(request, "segments/segment_edit.html#pql-json", context)


def _convert(request: HttpRequest, client: Any) -> dict[str, Any]:
    if "pql_json" in request.POST:
        try:
            tree = json.loads(request.POST["pql_json"])
        except json.JSONDecodeError as error:
            return {"convert_error": f"This is not JSON (line {error.lineno}, column "
                                     f"{error.colno}): {error.msg}."}
        expression = client.convert_pql(json=tree).get("expression") or {}
        return {"imported_text": expression.get("value", "")}
    text = request.POST.get("pql", "")
    pql.parse(text)
    value = (client.convert_pql(text=text).get("expression") or {}).get("value", "")
    tree = json.loads(value) if isinstance(value, str) else value
    return {"pql_json": json.dumps(tree, indent=2)}


# --- versions ---------------------------------------------------------------------------------

@require_GET
@role_required(EVERYONE)
def segment_versions(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _segment_for(request, pk)
    versions = list(segment.versions.select_related("created_by"))
    numbers = [version.number for version in versions]
    left = _int(request.GET.get("a"), numbers[1] if len(numbers) > 1 else (numbers or [0])[0])
    right = _int(request.GET.get("b"), (numbers or [0])[0])
    by_number = {version.number: version for version in versions}
    diff_rows = []
    if left in by_number and right in by_number:
        diff_rows = _side_by_side(by_number[left], by_number[right])
    context = {"segment": segment, "versions": versions, "left": by_number.get(left),
               "can_change": can_change(request.user, segment),
               "right": by_number.get(right), "diff_rows": diff_rows}
    template = htmx_template(request, "segments/segment_versions.html", partial="version-diff")
    return TemplateResponse(request, template, context)


def _int(value: str | None, default: int) -> int:
    return int(value) if value and value.isascii() and value.isdigit() else default


def _side_by_side(left: SegmentVersion, right: SegmentVersion) -> list[dict[str, Any]]:
    """Rows of (left line, right line, kind) for the name, description and PQL."""
    rows: list[dict[str, Any]] = []
    for label, a, b in (("Name", left.name, right.name),
                        ("Description", left.description, right.description),
                        ("PQL", left.pql, right.pql)):
        rows.append({"section": label})
        a_lines, b_lines = a.splitlines() or [""], b.splitlines() or [""]
        matcher = difflib.SequenceMatcher(a=a_lines, b=b_lines, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            span = max(i2 - i1, j2 - j1)
            for k in range(span):
                rows.append({
                    "kind": tag,
                    "left": a_lines[i1 + k] if i1 + k < i2 else None,
                    "right": b_lines[j1 + k] if j1 + k < j2 else None,
                    "left_no": i1 + k + 1 if i1 + k < i2 else None,
                    "right_no": j1 + k + 1 if j1 + k < j2 else None,
                })
    return rows


@require_POST
@role_required(EVERYONE)
def segment_version_restore(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    segment = _segment_for(request, pk)
    _refuse_change(request, segment)
    version = get_object_or_404(SegmentVersion, segment=segment, number=number)
    try:
        segment = segment_restore(segment=segment, version=version, actor=request.user)
    except SegmentError as error:
        messages.error(request, error.message)
        return redirect("segments:versions", segment.pk)
    messages.success(request, f"Restored version {number}; it is saved as a new version.")
    return redirect("segments:edit", segment.pk)


# --- delete -----------------------------------------------------------------------------------

@require_http_methods(["GET", "POST"])
@role_required(EVERYONE)
def segment_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _segment_for(request, pk)
    _refuse_change(request, segment)
    dependents = segment_dependents(segment=segment)
    error = ""
    if request.method == "POST":
        try:
            segment_delete(segment=segment, actor=request.user)
        except SegmentError as refused:
            error = refused.message
        else:
            messages.success(request, f"Deleted “{segment.name}”.")
            return redirect("segments:list")
    return TemplateResponse(request, "segments/segment_delete.html",
                            {"segment": segment, "dependents": dependents, "error": error})


# --- estimate and preview -------------------------------------------------------------------

@require_POST
@role_required(EVERYONE)
def segment_estimate_start(request: HttpRequest) -> HttpResponse:
    connection, sandbox, segment = _editing(request)
    context: dict[str, Any] = {}
    if connection is None:
        context["estimate_error"] = NO_CONNECTION
    else:
        try:
            job = segment_estimate(connection=connection, sandbox=sandbox,
                                   pql_text=request.POST.get("pql", ""), actor=request.user,
                                   segment=segment)
        except SegmentError as error:
            context["estimate_error"] = error.message
        else:
            context["job"] = job
    return TemplateResponse(request, "segments/segment_edit.html#estimate-panel", context)


def _preview_job(request: HttpRequest, job_id: int) -> Job:
    job = get_object_or_404(Job.objects.visible_to(request.user).select_related("connection"),
                            pk=job_id, kind=JobKind.PREVIEW)
    return job


@require_GET
@role_required(EVERYONE)
def segment_estimate_panel(request: HttpRequest, job_id: int) -> HttpResponse:
    """The estimate panel of one preview job, from our database only (it polls itself while
    the job runs)."""
    job = _preview_job(request, job_id)
    return TemplateResponse(request, "segments/segment_edit.html#estimate-panel", {"job": job})


@require_GET
@role_required(EVERYONE)
def segment_preview_page(request: HttpRequest, job_id: int) -> HttpResponse:
    """One page of the preview's members: a person asked for it, so this one call goes to the
    API (the sample is the engine's or AEP's, not ours to copy)."""
    job = _preview_job(request, job_id)
    offset = max(_int(request.GET.get("offset"), 0), 0)
    context: dict[str, Any] = {"job": job, "offset": offset, "limit": PREVIEW_PAGE}
    if not job.remote_id:
        raise Http404("This preview has not started yet.")
    try:
        with connection_client(job.connection, sandbox=job.sandbox) as client:
            page = client.get_preview(job.remote_id, offset=offset, limit=PREVIEW_PAGE)
    except AEPError as error:
        context["preview_error"] = error.message
    else:
        context["rows"] = rows = preview_rows(page.results)
        context["first_number"] = offset + 1
        context["last_number"] = offset + len(rows)
        context["has_next"] = page.has_next
        context["next_offset"] = offset + PREVIEW_PAGE
        context["prev_offset"] = max(offset - PREVIEW_PAGE, 0)
    return TemplateResponse(request, "segments/segment_edit.html#preview-table", context)


@require_GET
@role_required(EVERYONE)
def segment_profile(request: HttpRequest, job_id: int) -> HttpResponse:
    """The profile drawer: the merged profile, its recent events and — on the built-in
    engine — why it matches, condition by condition."""
    job = _preview_job(request, job_id)
    entity_id = request.GET.get("id", "")
    namespace = request.GET.get("ns", "")
    if not entity_id or not namespace:
        raise Http404("Which profile?")
    context: dict[str, Any] = {"job": job, "entity_id": entity_id, "namespace": namespace}
    try:
        with connection_client(job.connection, sandbox=job.sandbox) as client:
            profile = client.entity(entity_id, namespace).entity
            events = [event.entity for event in islice(
                client.entity_events(entity_id, namespace, newest_first=True), MAX_EVENTS)]
    except AEPError as error:
        context["profile_error"] = error.message
        return TemplateResponse(request, "segments/segment_edit.html#profile-drawer", context)
    context["profile"] = profile
    context["events"] = events[:20]
    context["attributes"] = _key_attributes(profile)
    text = job.request.get("predicateExpression", "")
    if job.connection.kind == "builtin" and text:
        try:
            context["explanation"] = pql.explain(pql.parse(text), profile, events,
                                                 now=datetime.now(UTC))
        except pql.PQLError as error:
            context["explain_error"] = str(error)
    return TemplateResponse(request, "segments/segment_edit.html#profile-drawer", context)


def _key_attributes(profile: dict[str, Any]) -> list[tuple[str, Any]]:
    """A few readable top-level facts of a merged profile: scalars first, flattened one level."""
    found: list[tuple[str, Any]] = []
    for key, value in profile.items():
        if key.startswith("_") or key in {"identityMap", "segmentMembership"}:
            continue
        if isinstance(value, dict):
            for inner, item in value.items():
                if not isinstance(item, (dict, list)):
                    found.append((f"{key}.{inner}", item))
        elif not isinstance(value, list):
            found.append((key, value))
    return found[:24]

