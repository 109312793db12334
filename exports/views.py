"""Pages of the exports app: export jobs, the export form, datasets, and the audience data of a
finished export. Every view checks the role; writes and API reads go through
exports.services. Status fragments read our database only; the audience data is read from the
API when a person opens it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from aep import AEPError
from connections.models import Connection
from connections.services import (
    connection_merge_policy_choices,
    connection_union_schemas,
    current_connection,
)
from core.htmx import htmx_template
from core.roles import EVERYONE, LEADS, has_role, role_required
from exports import reconcile, services
from exports.forms import DatasetForm, ExportForm
from exports.models import ExportPlan, PlanState
from exports.reconcile import Reconciliation
from jobs.models import Job, JobKind
from segments.models import Segment
from segments.pql_support import field_catalog, schema_from_unions

NO_CONNECTION = ("There is no connection yet. An admin adds one under Connections "
                 "(make run creates the built-in engine's).")
EXPORT_STARTED = "Export started: “{label}”."
PLAN_STARTED = ("Segment job started for “{label}”; the export starts by itself when it "
                "succeeds.")
DATASET_CREATED = "Dataset “{name}” created."
FILES_HELP = ("Parquet is the file as the platform wrote it: nested XDM, as the dataset holds "
              "it. The preview and the CSV have one column per field, headed by its path "
              "(person.name.firstName, homeAddress.countryCode); a column per identity "
              "namespace with its ids (identityMap.Email) and identityMap (primary) naming the "
              "primary identity; segmentMembership.ups.<segment id>.status and "
              ".lastQualificationTime; times in ISO 8601 UTC (2026-10-01T10:00:00Z), dates as "
              "2026-10-01; only lists, such as events, as JSON.")
SCHEMA_UNAVAILABLE = ("Field suggestions are off: the union schema could not be read "
                      "({message}). The paths you type are checked when the export starts.")


# --- helpers --------------------------------------------------------------------------------

def _export_job(request: HttpRequest, pk: int) -> Job:
    """An export job this user may see (marketers: their own; leads and admins: all)."""
    jobs = Job.objects.visible_to(request.user).select_related("connection", "created_by",
                                                                "parent")
    return get_object_or_404(jobs, pk=pk, kind=JobKind.EXPORT)


def _catalogs(connection: Connection, sandbox: str) -> tuple[set[str], set[str], str]:
    """The profile and event field paths of the union schemas."""
    try:
        profile, events = connection_union_schemas(connection, sandbox)
    except AEPError as error:
        return set(), set(), SCHEMA_UNAVAILABLE.format(message=error.message)
    entries = field_catalog(schema_from_unions(profile, events))
    return ({e.path for e in entries if e.collection == "profile"},
            {e.path for e in entries if e.collection == "xEvent"}, "")


def _plan_for(job: Job) -> ExportPlan | None:
    return ExportPlan.objects.filter(export_job=job).first()


@dataclass(frozen=True)
class ExportRow:
    """What a list of exports shows of one, from our database: its job, the segments it
    exported (our rows, or the bare id of one we no longer have), the destination's name and
    how its rows compare with the members counted."""

    job: Job
    segments: list[Segment | str]
    dataset_id: str
    dataset_name: str
    reconciliation: Reconciliation | None


def _export_rows(jobs: list[Job]) -> list[ExportRow]:
    wanted = {sid for job in jobs for sid in reconcile.segment_ids(job)}
    known: dict[tuple[int, str, str], Segment] = {
        (s.connection_id, s.sandbox, s.remote_id): s
        for s in Segment.objects.filter(remote_id__in=wanted)} if wanted else {}
    names = services.dataset_names(jobs)
    rows = []
    for job in jobs:
        mine = {sid: known[(job.connection_id, job.sandbox, sid)]
                for sid in reconcile.segment_ids(job)
                if (job.connection_id, job.sandbox, sid) in known}
        rows.append(ExportRow(
            job=job, segments=[mine.get(sid, sid) for sid in reconcile.segment_ids(job)],
            dataset_id=services.destination_id(job), dataset_name=names.get(job.pk, ""),
            reconciliation=reconcile.export_reconcile(job, mine)))
    return rows


# --- export jobs ------------------------------------------------------------------------------

@require_GET
@role_required(EVERYONE)
def export_list(request: HttpRequest) -> HttpResponse:
    services.export_plans_resume()
    connection, sandbox = current_connection(request)
    jobs = Job.objects.visible_to(request.user).filter(kind=JobKind.EXPORT).select_related(
        "connection", "created_by", "parent")
    page = Paginator(jobs, 25).get_page(request.GET.get("page"))
    rows = _export_rows(list(page.object_list))
    waiting = ExportPlan.objects.filter(state=PlanState.WAITING).select_related(
        "parent", "parent__connection", "parent__created_by")
    if not has_role(request.user, LEADS):
        waiting = waiting.filter(created_by_id=request.user.pk)
    template = htmx_template(request, "exports/export_list.html", partial="export-table")
    return TemplateResponse(request, template, {
        "page": page, "rows": rows, "connection": connection, "sandbox": sandbox,
        "waiting": list(waiting[:10]), "user_sees_all": has_role(request.user, LEADS),
        "no_connection": NO_CONNECTION})


@require_GET
@role_required(EVERYONE)
def export_row(request: HttpRequest, pk: int) -> HttpResponse:
    """One export's row of the list, read from our database (an unfinished row polls it)."""
    [row] = _export_rows([_export_job(request, pk)])
    return TemplateResponse(request, "exports/export_list.html#export-row", {"row": row})


def _form_context(request: HttpRequest, connection: Connection, sandbox: str
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    segments = list(Segment.objects.in_sandbox(connection, sandbox).exclude(remote_id=""))
    context: dict[str, Any] = {"connection": connection, "sandbox": sandbox,
                               "segment_count": len(segments)}
    try:
        datasets = services.export_datasets(connection=connection, sandbox=sandbox)
    except services.ExportError as error:
        datasets = []
        context["datasets_error"] = error.message
    context["dataset_count"] = len(datasets)
    profile_fields, event_fields, schema_message = _catalogs(connection, sandbox)
    context.update(schema_message=schema_message, profile_paths=sorted(profile_fields),
                   event_paths=sorted(event_fields))
    kwargs = {"segments": segments,
              "datasets": [(dataset.id, dataset.name) for dataset in datasets],
              "merge_policies": connection_merge_policy_choices(connection, sandbox),
              "profile_fields": profile_fields, "event_fields": event_fields}
    return context, kwargs


@require_http_methods(["GET", "POST"])
@role_required(EVERYONE)
def export_create(request: HttpRequest) -> HttpResponse:
    connection, sandbox = current_connection(request)
    if connection is None:
        messages.error(request, NO_CONNECTION)
        return redirect("exports:list")
    context, kwargs = _form_context(request, connection, sandbox)
    if request.method != "POST":
        initial = {"segments": request.GET.getlist("segment"),
                   "dataset": request.GET.get("dataset", "")}
        context["form"] = ExportForm(initial=initial, **kwargs)
        return TemplateResponse(request, "exports/export_form.html", context)
    form = ExportForm(request.POST, **kwargs)
    context["form"] = form
    if form.is_valid():
        data = form.cleaned_data
        segments = form.chosen_segments
        policy = data["merge_policy"]
        body = services.export_body(
            segment_ids=[segment.remote_id for segment in segments],
            dataset_id=data["dataset"], fields=data["profile_fields"],
            merge_policy=(policy, None) if policy else None, from_ingest=data["from_ingest"],
            include_events=data["include_events"], event_fields=data["event_fields"],
            events_from=data["events_from"], empty_profiles=data["empty_profiles"])
        label = services.export_label(segments, form.dataset_names.get(data["dataset"], ""))
        try:
            if request.POST.get("then") == "run-first":
                plan = services.export_plan_create(segments=segments, body=body,
                                                   label=label, actor=request.user)
                messages.success(request, PLAN_STARTED.format(label=label))
                return redirect("exports:plan", plan.pk)
            job = services.export_start(connection=connection, sandbox=sandbox,
                                        segments=segments, body=body, label=label,
                                        actor=request.user)
        except services.ExportError as error:
            form.add_error(error.field, error.message)
        else:
            messages.success(request, EXPORT_STARTED.format(label=label))
            return redirect("exports:detail", job.pk)
    return TemplateResponse(request, "exports/export_form.html", context, status=400)


@require_GET
@role_required(EVERYONE)
def export_plan(request: HttpRequest, pk: int) -> HttpResponse:
    """A segment job, then its export: the page polls (our database) until the export starts
    or is given up."""
    plans = ExportPlan.objects.select_related("parent", "parent__connection",
                                              "parent__created_by", "export_job")
    if not has_role(request.user, LEADS):
        plans = plans.filter(created_by_id=request.user.pk)
    plan = get_object_or_404(plans, pk=pk)
    template = htmx_template(request, "exports/export_plan.html", partial="plan-status")
    return TemplateResponse(request, template, {"plan": plan, "parent": plan.parent})


def _again_url(job: Job) -> str:
    """The export form, filled in with this export's segments and destination."""
    request = job.request or {}
    ids = [item.get("segmentId") for item in (request.get("filter") or {}).get("segments") or []
           if isinstance(item, dict)]
    segments = Segment.objects.in_sandbox(job.connection, job.sandbox).filter(remote_id__in=ids)
    query = QueryDict(mutable=True)
    query.setlist("segment", [str(pk) for pk in segments.values_list("pk", flat=True)])
    query["dataset"] = str((request.get("destination") or {}).get("datasetId") or "")
    return f"{reverse('exports:create')}?{query.urlencode()}"


@require_GET
@role_required(EVERYONE)
def export_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = _export_job(request, pk)
    [row] = _export_rows([job])
    context: dict[str, Any] = {"job": job, "plan": _plan_for(job), "row": row,
                               "again_url": _again_url(job), "files_help": FILES_HELP}
    template = htmx_template(request, "exports/export_detail.html", partial="export-data")
    if request.htmx and not job.is_finished:  # type: ignore[attr-defined]
        return TemplateResponse(request, template, context)
    if job.status == "succeeded":
        try:
            context["files"] = services.export_files(job=job)
        except services.ExportError as error:
            context["files_error"] = error.message
    return TemplateResponse(request, template, context)


@require_POST
@role_required(EVERYONE)
def export_include_empty(request: HttpRequest, pk: int) -> HttpResponse:
    """“Include them”: the same export again with the members known only from their events."""
    job = _export_job(request, pk)
    try:
        again = services.export_include_empty(job=job, actor=request.user)
    except services.ExportError as error:
        messages.error(request, error.message)
        return redirect("exports:detail", job.pk)
    messages.success(request, EXPORT_STARTED.format(label=again.label))
    return redirect("exports:detail", again.pk)


@require_GET
@role_required(EVERYONE)
def export_preview(request: HttpRequest, pk: int, file_id: str, name: str) -> HttpResponse:
    job = _export_job(request, pk)
    context: dict[str, Any] = {"job": job, "file_name": name}
    try:
        context["preview"] = services.export_preview(job=job, file_id=file_id, name=name)
    except services.ExportError as error:
        if error.message == services.FILE_UNKNOWN:
            raise Http404(error.message) from error
        context["preview_error"] = error.message
    template = htmx_template(request, "exports/export_preview.html", partial="preview-table")
    return TemplateResponse(request, template, context)


def _stream(download: services.Download, content_type: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(download.chunks, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{download.filename}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    if download.size is not None:
        response["Content-Length"] = str(download.size)
    return response


def _download(request: HttpRequest, pk: int, file_id: str, name: str, *,
              as_csv: bool) -> HttpResponse:
    """The file, streamed (core.roles types views as returning HttpResponse, which a
    StreamingHttpResponse is not, hence the ignores)."""
    job = _export_job(request, pk)
    try:
        if as_csv:
            return _stream(services.export_csv(  # type: ignore[return-value]
                job=job, file_id=file_id, name=name, actor=request.user),
                "text/csv; charset=utf-8")
        return _stream(services.export_download(  # type: ignore[return-value]
            job=job, file_id=file_id, name=name, actor=request.user),
            "application/vnd.apache.parquet")
    except services.ExportError as error:
        if error.message == services.FILE_UNKNOWN:
            raise Http404(error.message) from error
        messages.error(request, error.message)
        return redirect("exports:detail", job.pk)


@require_GET
@role_required(EVERYONE)
def export_download(request: HttpRequest, pk: int, file_id: str, name: str) -> HttpResponse:
    return _download(request, pk, file_id, name, as_csv=False)


@require_GET
@role_required(EVERYONE)
def export_download_csv(request: HttpRequest, pk: int, file_id: str, name: str
                        ) -> HttpResponse:
    return _download(request, pk, file_id, name, as_csv=True)


# --- datasets ---------------------------------------------------------------------------------

@require_http_methods(["GET", "POST"])
@role_required(EVERYONE)
def dataset_list(request: HttpRequest) -> HttpResponse:
    connection, sandbox = current_connection(request)
    context: dict[str, Any] = {"connection": connection, "sandbox": sandbox,
                               "no_connection": NO_CONNECTION}
    if connection is None:
        return TemplateResponse(request, "exports/dataset_list.html", context)
    form = DatasetForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.dataset_create(connection=connection, sandbox=sandbox,
                                        name=form.cleaned_data["name"],
                                        description=form.cleaned_data["description"],
                                        actor=request.user)
            except services.ExportError as error:
                form.add_error(error.field, error.message)
            else:
                created = DATASET_CREATED.format(name=form.cleaned_data["name"])
                if not request.htmx:  # type: ignore[attr-defined]
                    messages.success(request, created)
                    return redirect("exports:datasets")
                context["created"] = created
                form = DatasetForm()
        if form.errors and not request.htmx:  # type: ignore[attr-defined]
            status = 400  # htmx swaps only 2xx answers: the errors come back as a 200 panel
    try:
        context["datasets"] = services.export_datasets(connection=connection, sandbox=sandbox)
    except services.ExportError as error:
        context["datasets"] = []
        context["datasets_error"] = error.message
    context["form"] = form
    template = htmx_template(request, "exports/dataset_list.html", partial="dataset-panel")
    return TemplateResponse(request, template, context, status=status)
