"""The Profile data page (admins): what the current connection's profile store holds, and a
form that sends a file into a dataset."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_POST

from connections.models import Connection
from connections.services import current_connection
from core.roles import ADMINS, role_required
from profiledata import services
from profiledata.forms import NEW, AddDataForm

NO_CONNECTION = ("There is no connection yet. Add one under Connections (the built-in engine "
                 "is created by `make run`), then come back to load data.")
DATASET_DELETED = ("Dataset “{name}” deleted with its batches. The profiles are rebuilt without "
                   "its records in a moment.")
INGESTION_STARTED = ("“{file}” is on its way into “{dataset}”. The row below follows the "
                     "batch until its records are part of the profiles.")


def _page(request: HttpRequest, form: AddDataForm | None = None, *,
          store: services.Store | None = None, status: int = 200) -> HttpResponse:
    """The page; `store` when the caller has just read it (the form's answer)."""
    connection, sandbox = current_connection(request)
    context: dict[str, Any] = {"connection": connection, "sandbox": sandbox,
                               "no_connection": NO_CONNECTION}
    if connection is None:
        return TemplateResponse(request, "profiledata/overview.html", context, status=status)
    if store is None:
        try:
            store = services.store_read(connection=connection, sandbox=sandbox)
        except services.DataError as error:
            context["store_error"] = error.message
    context["store"] = store
    context["form"] = form or AddDataForm(datasets=_choices(store))
    context["ingestions"] = services.recent_ingestions(connection=connection, sandbox=sandbox)
    return TemplateResponse(request, "profiledata/overview.html", context, status=status)


def _choices(store: services.Store | None) -> list[tuple[str, Any]]:
    """The datasets a file can go into, grouped by what they hold."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for row in store.datasets if store else []:
        if row.ingestable:
            groups.setdefault(row.kind, []).append((row.dataset.id, row.dataset.name))
    return list(groups.items())


@require_GET
@role_required(ADMINS)
def overview(request: HttpRequest) -> HttpResponse:
    return _page(request)


@require_POST
@role_required(ADMINS)
def add_data(request: HttpRequest) -> HttpResponse:
    connection, sandbox = current_connection(request)
    if connection is None:
        return redirect("profiledata:overview")
    try:
        store = services.store_read(connection=connection, sandbox=sandbox)
    except services.DataError as error:
        messages.error(request, error.message)
        return redirect("profiledata:overview")
    form = AddDataForm(request.POST, request.FILES, datasets=_choices(store))
    if form.is_valid():
        try:
            job = _start(form, connection=connection, sandbox=sandbox, store=store,
                         actor=request.user)
        except services.DataError as error:
            form.add_error(error.field, error.message)
        else:
            messages.success(request, INGESTION_STARTED.format(
                file=job.request["fileName"], dataset=job.request["datasetName"]))
            return redirect("profiledata:overview")
    return _page(request, form, store=store, status=400)


def _start(form: AddDataForm, *, connection: Connection, sandbox: str,
           store: services.Store, actor: Any) -> Any:
    data = form.cleaned_data
    upload = data["file"]
    services.file_format(upload.name)  # refused before a dataset is created for it
    if data["dataset"] == NEW:
        name = data["name"].strip()
        dataset_id = services.dataset_create(connection=connection, sandbox=sandbox, name=name,
                                             kind=data["kind"], actor=actor)
    else:
        dataset_id = data["dataset"]
        name = next(row.dataset.name for row in store.datasets if row.dataset.id == dataset_id)
    return services.ingestion_start(connection=connection, sandbox=sandbox,
                                    dataset_id=dataset_id, dataset_name=name, upload=upload,
                                    actor=actor)


@require_POST
@role_required(ADMINS)
def dataset_delete(request: HttpRequest, dataset_id: str) -> HttpResponse:
    connection, sandbox = current_connection(request)
    if connection is not None:
        name = request.POST.get("name", "")[:200] or dataset_id
        try:
            services.dataset_delete(connection=connection, sandbox=sandbox,
                                    dataset_id=dataset_id, name=name, actor=request.user)
        except services.DataError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, DATASET_DELETED.format(name=name))
    return redirect("profiledata:overview")
