"""Connections: admins list, create, edit, disable and test them; everybody switches between
them (and their sandboxes) in the navigation."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from connections import services
from connections.forms import ConnectionForm
from connections.models import Connection
from core.context_processors import switcher
from core.htmx import htmx_template
from core.roles import ADMINS, EVERYONE, role_required, user_role

SAVED = "Connection {name} saved. Test it to check the credentials and fetch its sandboxes."
UPDATED = "Connection {name} saved."
DISABLED = "Connection {name} disabled: nobody can choose it until it is enabled again."
ENABLED = "Connection {name} enabled."
SWITCHED = "Now working in {name} · {sandbox}."
MADE_DEFAULT = ("{name} is now the default: everyone who has not chosen a connection in the "
                "switcher works in it.")


def _row_target(request: HttpRequest, connection: Connection) -> bool:
    """Whether htmx asked for the list's row (rather than the edit page's test panel)."""
    htmx = getattr(request, "htmx", None)
    if not htmx:
        return False
    return bool(htmx.target == f"connection-{connection.pk}")


@role_required(ADMINS)
@require_http_methods(["GET"])
def connection_list(request: HttpRequest) -> HttpResponse:
    connections = Connection.objects.order_by("-is_enabled", "name")
    return TemplateResponse(request, "connections/connection_list.html",
                            {"connections": connections})


def _with_switcher(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    """A fragment's context plus the switcher, sent along out of band: a test can bring new
    sandboxes and a disable removes a connection (fragments get no navigation context)."""
    return {**context, **switcher(request), "user_role": user_role(request.user),
            "switcher_oob": True}


def _saved(request: HttpRequest, connection: Connection) -> HttpResponse:
    """After a save: the edit page (htmx is told to load it as a whole page)."""
    url = reverse("connections:edit", args=[connection.pk])
    return HttpResponseClientRedirect(url) if getattr(request, "htmx", False) else redirect(url)


def _form_page(request: HttpRequest, form: ConnectionForm,
               connection: Connection | None) -> HttpResponse:
    """The form page, or only the form when htmx submitted it (errors shown in place)."""
    template = htmx_template(request, "connections/connection_form.html",
                             partial="connection-form")
    context = {"form": form, "connection": connection,
               "builtin_engine_url": settings.BUILTIN_ENGINE_URL}
    # htmx 2 swaps only 2xx answers, so the form with its errors comes back as a 200 to htmx
    status = 400 if form.errors and not getattr(request, "htmx", False) else 200
    return TemplateResponse(request, template, context, status=status)


@role_required(ADMINS)
@require_http_methods(["GET", "POST"])
def connection_create(request: HttpRequest) -> HttpResponse:
    form = ConnectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        connection = services.connection_create(actor=request.user, **form.cleaned_data)
        messages.success(request, SAVED.format(name=connection.name))
        return _saved(request, connection)
    return _form_page(request, form, None)


@role_required(ADMINS)
@require_http_methods(["GET", "POST"])
def connection_edit(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    form = ConnectionForm(request.POST or None, instance=connection)
    if request.method == "POST" and form.is_valid():
        connection = services.connection_update(actor=request.user, connection=connection,
                                                **form.cleaned_data)
        messages.success(request, UPDATED.format(name=connection.name))
        return _saved(request, connection)
    return _form_page(request, form, connection)


def _toggle(request: HttpRequest, pk: int, *, enabled: bool) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    connection = services.connection_set_enabled(actor=request.user, connection=connection,
                                                 enabled=enabled)
    if _row_target(request, connection):
        return TemplateResponse(request, "connections/connection_list.html#connection-row",
                                _with_switcher(request, {"connection": connection}))
    text = ENABLED if enabled else DISABLED
    messages.success(request, text.format(name=connection.name))
    return redirect("connections:list")


@role_required(ADMINS)
@require_POST
def connection_disable(request: HttpRequest, pk: int) -> HttpResponse:
    return _toggle(request, pk, enabled=False)


@role_required(ADMINS)
@require_POST
def connection_enable(request: HttpRequest, pk: int) -> HttpResponse:
    return _toggle(request, pk, enabled=True)


@role_required(ADMINS)
@require_POST
def connection_default(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    try:
        services.connection_make_default(actor=request.user, connection=connection)
    except services.ConnectionRefused as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, MADE_DEFAULT.format(name=connection.name))
    return redirect("connections:list")


@role_required(ADMINS)
@require_POST
def connection_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Run the test; htmx gets the list's row or the edit page's test panel, a plain POST
    lands on the edit page, which shows the stored result."""
    connection = get_object_or_404(Connection, pk=pk)
    services.connection_test(connection=connection, actor=request.user)
    if _row_target(request, connection):
        return TemplateResponse(request, "connections/connection_list.html#connection-row",
                                _with_switcher(request, {"connection": connection}))
    if getattr(request, "htmx", False):
        return TemplateResponse(request, "connections/connection_form.html#test-panel",
                                _with_switcher(request, {"connection": connection}))
    return redirect("connections:edit", pk=connection.pk)


@role_required(EVERYONE)
@require_POST
def switch(request: HttpRequest) -> HttpResponse:
    """The navigation's switcher: `choice` is "<connection id>:<sandbox>"."""
    connection_id, _, sandbox = request.POST.get("choice", "").partition(":")
    try:
        connection, sandbox = services.connection_choose(
            request=request, connection_id=connection_id, sandbox=sandbox)
    except services.SwitchError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, SWITCHED.format(name=connection.name, sandbox=sandbox))
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = "/"
    return redirect(target)
