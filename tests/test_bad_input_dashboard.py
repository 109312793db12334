"""A NUL (\\x00) in any field of any dashboard page gets a 4xx with a reason, never a 500, and
never reaches the database.

The walk finds the fields by asking the pages themselves: every URL pattern of the dashboard
(Django's resolver; the engine's REST API and Django's admin aside), with real objects behind
its arguments, is requested once while the parameters its view reads are recorded, and the
forms on its pages are read for their fields and values. Then each field is sent again holding
a NUL, by GET and POST, as a page and as htmx. It runs on the suite's database; run it with
DATABASE_URL=postgres://… for PostgreSQL, which refuses NUL in text: there a slip is a 500.
"""

from __future__ import annotations

import os
import re
import threading
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
from django.db import connection as db_connection
from django.http import QueryDict, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils.datastructures import MultiValueDict

from core.middleware import INVALID_CHARACTER, query_nul
from tests.exports.conftest import US, dataset_id, segment  # noqa: F401 — fixtures
from tests.segments.conftest import Studio, eager_celery, studio  # noqa: F401 — fixtures

NUL = "\x00"
# Walked last: they delete or switch off what the other pages show.
DESTRUCTIVE = re.compile(r"delete|disable|cancel|acknowledge|restore|pause")
SKIPPED_NAMESPACES = {"admin", "engine_api"}  # Django's own admin; the engine's API
SKIPPED_NAMES = {"logout"}  # it would end the walk's session


# --- the fields of a page ----------------------------------------------------------------------

@pytest.fixture
def read_keys(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every key a view looks up in request.GET or request.POST, recorded (in this thread
    only: the live server's threads serve the engine's API)."""
    keys: set[str] = set()
    here = threading.get_ident()
    getitem, getlist, contains = (MultiValueDict.__getitem__, MultiValueDict.getlist,
                                  MultiValueDict.__contains__)

    def record(query: MultiValueDict, key: object) -> None:
        if (isinstance(query, QueryDict) and isinstance(key, str)
                and threading.get_ident() == here):
            keys.add(key)

    def recorded_getitem(self: MultiValueDict, key: str) -> Any:
        record(self, key)
        return getitem(self, key)

    def recorded_getlist(self: MultiValueDict, key: str, default: Any = None) -> Any:
        record(self, key)
        return getlist(self, key, default)

    def recorded_contains(self: MultiValueDict, key: object) -> bool:
        record(self, key)
        return contains(self, key)

    monkeypatch.setattr(MultiValueDict, "__getitem__", recorded_getitem)
    monkeypatch.setattr(MultiValueDict, "getlist", recorded_getlist)
    monkeypatch.setattr(MultiValueDict, "__contains__", recorded_contains)
    return keys


class Forms(HTMLParser):
    """The fields (name → the value the page fills in) of each form and each element making
    an htmx request of its own, by the path they are sent to."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.page = page
        self.found: dict[str, dict[str, str]] = {}
        self.target: str | None = None  # the open <form>'s action
        self.textarea: str | None = None
        self.select: str | None = None

    def fields(self, action: str | None) -> dict[str, str]:
        path = (urlsplit(action).path if action else "") or self.page
        return self.found.setdefault(path, {})

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        for verb in ("hx-get", "hx-post"):
            if a.get(verb):
                found = self.fields(a[verb])
                if a.get("name"):
                    found.setdefault(a["name"], a.get("value", ""))
        if tag == "form":
            self.target = a.get("action") or self.page
            self.fields(self.target)
            return
        if tag == "option" and self.select:
            found = self.fields(self.target)
            if "selected" in a or not found.get(self.select):
                found[self.select] = a.get("value", "")
            return
        name = a.get("name")
        if not name or tag not in ("input", "textarea", "select", "button"):
            return
        found = self.fields(self.target)
        if tag == "textarea":
            self.textarea = name
            found.setdefault(name, "")
        elif tag == "select":
            self.select = name
            found.setdefault(name, "")
        elif a.get("type") in ("radio", "checkbox"):
            found.setdefault(name, "")
            if "checked" in a:
                found[name] = a.get("value", "on")
        else:
            found.setdefault(name, a.get("value", ""))

    def handle_data(self, data: str) -> None:
        if self.textarea:
            self.fields(self.target)[self.textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self.textarea = None
        elif tag == "select":
            self.select = None
        elif tag == "form":
            self.target = None

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


# --- the dashboard's URLs, with real objects behind their arguments ---------------------------

def dashboard_patterns() -> Iterator[tuple[str, URLPattern]]:
    def walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, URLPattern]]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace in SKIPPED_NAMESPACES:
                    continue
                space = f"{prefix}{pattern.namespace}:" if pattern.namespace else prefix
                yield from walk(pattern.url_patterns, space)
            elif (isinstance(pattern, URLPattern) and pattern.name
                  and pattern.name not in SKIPPED_NAMES):
                yield prefix + pattern.name, pattern

    return walk(get_resolver().url_patterns, "")


@pytest.fixture
def objects(studio: Studio, segment: Any, dataset_id: str,  # noqa: F811
            admin_user: Any) -> dict[str, Any]:
    """One of everything a dashboard URL names: a saved segment with two versions, a finished
    preview, an export job with its file, a plan, a schedule, an alert, a dataset. By URL
    namespace, or URL name, the values of the URL's arguments."""
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    from exports import services as exports
    from exports.models import ExportPlan
    from jobs.alerts import alert_raise
    from jobs.models import AlertKind, Job, JobKind, JobStatus
    from schedules.services import schedule_create
    from segments.services import segment_estimate, segment_save

    segment_save(segment=segment, connection=studio.connection, sandbox=studio.sandbox,
                 name=segment.name, description="second version", pql_text=US,
                 merge_policy_id="", evaluation_method="batch", actor=admin_user)
    preview = segment_estimate(connection=studio.connection, sandbox=studio.sandbox,
                               pql_text=US, actor=admin_user)
    body = exports.export_body(segment_ids=[segment.remote_id], dataset_id=dataset_id)
    export = exports.export_start(connection=studio.connection, sandbox=studio.sandbox,
                                  segments=[segment], body=body, label="US", actor=admin_user)
    export.refresh_from_db()
    files = exports.export_files(job=export)
    # a plan's parent is a segment job: a finished one, so that nothing runs from here on
    parent = Job.objects.create(kind=JobKind.SEGMENT, connection=studio.connection,
                                sandbox=studio.sandbox, label="US", status=JobStatus.SUCCEEDED,
                                request={"segments": [{"segmentId": segment.remote_id}]},
                                created_by=admin_user)
    plan = ExportPlan.objects.create(parent=parent, body=body, label="US → Spring",
                                     created_by=admin_user)
    schedule = schedule_create(name="Mornings", connection=studio.connection,
                               sandbox=studio.sandbox, segments=[segment], cron="0 6 * * *",
                               zone="UTC", actor=admin_user)
    alert = alert_raise(kind=AlertKind.TIMED_OUT, key="walk", title="A stuck job", job=parent)
    assert files and alert is not None
    return {
        "connections": {"pk": studio.connection.pk},
        "segments": {"pk": segment.pk, "number": 1, "job_id": preview.pk},
        "exports": {"pk": export.pk, "file_id": files[0].file_id, "name": files[0].name},
        "exports:plan": {"pk": plan.pk},
        "jobs": {"pk": parent.pk},
        "jobs:alert-acknowledge": {"pk": alert.pk},
        "schedules": {"pk": schedule.pk},
        "profiledata": {"dataset_id": dataset_id},
        "core": {"slug": "users", "pk": admin_user.pk},
        # the set-password link an admin sends (core.users): a real one, for this admin
        "password_reset_confirm": {
            "uidb64": urlsafe_base64_encode(force_bytes(admin_user.pk)),
            "token": default_token_generator.make_token(admin_user)},
    }


@pytest.fixture
def quiet_celery(objects: dict[str, Any], settings: Any) -> Iterator[None]:
    """Once the objects exist, tasks go to an in-memory broker nobody reads: a walk that
    starts a job leaves its row and runs nothing (eager tasks would poll within the request).
    And the engine's API takes all the walk's calls (no 429 and its retry waits)."""
    from kombu import pools

    from config.celery import app

    settings.ENGINE_RATE_LIMIT = 1_000_000
    saved = app.conf.task_always_eager, app.conf.broker_url

    def reset() -> None:  # forget pooled connections to the previous broker
        pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.task_always_eager, app.conf.broker_url = False, "memory://"
    reset()
    yield
    app.conf.task_always_eager, app.conf.broker_url = saved
    reset()


def url_for(name: str, pattern: URLPattern, objects: dict[str, Any]) -> str:
    known = {**objects.get(name.partition(":")[0], {}), **objects.get(name, {})}
    return reverse(name, kwargs={key: known[key] for key in pattern.pattern.converters})


# --- the walk ----------------------------------------------------------------------------------

def nul_in(value: str) -> str:
    return f"{value}{NUL}" if value else f"x{NUL}y"


def send(client: Client, method: str, url: str, data: dict[str, str], htmx: bool) -> int:
    """The answer's status; a download is read to its end (an error midway is a 500 that the
    browser sees as a broken file)."""
    headers = {"HX-Request": "true"} if htmx else {}
    if method == "GET":
        response = client.get(url, data, headers=headers)
    else:
        response = client.post(url, data, headers=headers)
    if response.streaming:
        try:
            cast(StreamingHttpResponse, response).getvalue()
        except Exception:
            return 500
    return response.status_code


def test_a_nul_in_any_dashboard_field_is_never_a_server_error(
    studio: Studio, objects: dict[str, Any], admin_user: Any,  # noqa: F811
    quiet_celery: None, read_keys: set[str],
) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    urls = sorted(((name, url_for(name, pattern, objects))
                   for name, pattern in dashboard_patterns()),
                  key=lambda item: (bool(DESTRUCTIVE.search(item[0])), item[0]))

    # Pass 1: the fields — the forms on every page, and what each view reads.
    fields: dict[str, dict[str, str]] = {}
    read: dict[str, set[str]] = {}
    for _, url in urls:
        if DESTRUCTIVE.search(resolve(url).url_name or ""):
            continue  # read in pass 2, after the walk has used what they would destroy
        read_keys.clear()
        page = client.get(url)
        client.post(url, {}, headers={"HX-Request": "true"})
        read[url] = set(read_keys)
        if page.streaming:  # a download: no forms in it
            cast(StreamingHttpResponse, page).getvalue()
            continue
        parser = Forms(url)
        parser.feed(page.content.decode(errors="replace"))
        for target, found in parser.found.items():
            known = fields.setdefault(target, {})
            known.update({k: v for k, v in found.items() if not known.get(k)})

    # Pass 2: each field holding a NUL, by GET and POST, as a page and as htmx.
    outcomes: Counter[int] = Counter()
    failures: list[str] = []
    reached: list[str] = []

    def record_reached(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        """Outermost: a query the database ran (nothing refused it on the way) with a NUL."""
        result = execute(sql, params, many, context)
        if query_nul(sql, params) is not None:
            reached.append(f"{sql[:120]} {params!r:.200}")
        return result

    with db_connection.execute_wrapper(record_reached):
        walk_with_nul(client, urls, fields, read, read_keys, outcomes, failures)
        # Pass 3: a NUL in each text argument of the address (exports' file names).
        for name, pattern in dashboard_patterns():
            for key, converter in pattern.pattern.converters.items():
                if type(converter).__name__ in ("StringConverter", "PathConverter"):
                    known = {**objects.get(name.partition(":")[0], {}), **objects.get(name, {})}
                    kwargs = {k: known[k] for k in pattern.pattern.converters}
                    url = reverse(name, kwargs={**kwargs, key: nul_in(str(kwargs[key]))})
                    for htmx in (False, True):
                        status = send(client, "GET", url, {}, htmx)
                        outcomes[status] += 1
                        if status >= 500:
                            failures.append(f"GET {url!r} → {status} ({name})")

    assert failures == [], "\n".join(failures)
    assert reached == [], "queries that reached the database with a NUL:\n" + "\n".join(reached)
    sent = sum(outcomes.values())
    assert sent >= 300, f"only {sent} requests: the walk found too few fields ({read})"
    assert outcomes[400] > 0, outcomes  # the guard answered some (the others: form errors…)
    print(f"\n{sent} requests with a NUL on {db_connection.vendor}: {dict(outcomes)}")
    assert_no_nul_stored()


def walk_with_nul(client: Client, urls: list[tuple[str, str]], fields: dict[str, dict[str, str]],
                  read: dict[str, set[str]], read_keys: set[str], outcomes: Counter[int],
                  failures: list[str]) -> None:
    for name, url in urls:
        if url not in read:  # a destructive one: what it reads, found on its own request
            read_keys.clear()
            client.post(url, {}, headers={"HX-Request": "true"})
            read[url] = set(read_keys)
        baseline = {k: v for k, v in fields.get(url, {}).items() if k != "csrfmiddlewaretoken"}
        for key in sorted((set(baseline) | read[url]) - {"csrfmiddlewaretoken"}):
            for method in ("GET", "POST"):
                for htmx in (False, True):
                    value = nul_in(baseline.get(key, ""))
                    data = {**baseline, key: value} if method == "POST" else {key: value}
                    status = send(client, method, url, data, htmx)
                    outcomes[status] += 1
                    if status >= 500:
                        failures.append(f"{method} {url} {key}={value!r}"
                                        f"{' (htmx)' if htmx else ''} → {status} ({name})")


def assert_no_nul_stored() -> None:
    """No text or JSON column of any table holds a NUL (SQLite would keep one)."""
    from django.apps import apps
    from django.db import models

    if db_connection.vendor != "sqlite":
        return  # PostgreSQL holds none: it refuses the write
    found = []
    with db_connection.cursor() as cursor:
        for model in apps.get_models():
            for field in model._meta.concrete_fields:
                if not isinstance(field, (models.CharField, models.TextField, models.JSONField)):
                    continue
                table, column = model._meta.db_table, field.column
                cursor.execute(f'SELECT count(*) FROM "{table}" WHERE instr("{column}", char(0))'
                               f" > 0 OR \"{column}\" LIKE '%\\u0000%'")
                if cursor.fetchone()[0]:
                    found.append(f"{table}.{column}")
    assert found == []


# --- the answers themselves --------------------------------------------------------------------

@pytest.mark.django_db
def test_a_nul_in_a_search_box_is_a_400_naming_the_field(client: Client,
                                                         admin_user: Any) -> None:
    client.force_login(admin_user)
    response = client.get(reverse("core:audit"), {"actor": f"ada{NUL}"})

    assert response.status_code == 400
    html = response.content.decode()
    assert INVALID_CHARACTER.format(field="actor") in html
    assert "app.css" in html  # the styled error page, like 404.html


@pytest.mark.django_db
def test_an_htmx_request_gets_a_toast_for_the_toast_stack(client: Client,
                                                           admin_user: Any) -> None:
    client.force_login(admin_user)
    response = client.get(reverse("jobs:list"), {"sandbox": f"prod{NUL}"},
                          headers={"HX-Request": "true"})

    assert response.status_code == 400
    assert response["HX-Retarget"] == ".toasts"
    assert response["HX-Reswap"] == "beforeend"
    html = response.content.decode()
    assert 'class="toast toast-error"' in html
    assert INVALID_CHARACTER.format(field="sandbox") in html
    assert "<html" not in html


@pytest.mark.django_db
def test_a_nul_in_a_form_field_is_the_forms_error_beside_it(client: Client,
                                                            admin_user: Any) -> None:
    client.force_login(admin_user)
    response = client.post(reverse("connections:create"), {
        "name": "Acme", "kind": "adobe", "org_id": "X@AdobeOrg", "client_id": f"abc{NUL}",
        "client_secret": "s", "default_sandbox": "prod"})

    assert response.status_code == 400  # this form page's answer to any error
    html = response.content.decode()
    assert "Null characters are not allowed." in html  # Django's form error, beside the field
    assert 'name="client_id"' in html
    assert "contains an invalid character" not in html


@pytest.mark.django_db
def test_a_download_with_a_nul_is_refused_before_it_streams(client: Client,
                                                            admin_user: Any) -> None:
    client.force_login(admin_user)
    response = client.get(reverse("jobs:csv"), {"sandbox": f"prod{NUL}"})

    assert response.status_code == 400
    assert INVALID_CHARACTER.format(field="sandbox") in response.content.decode()


def test_an_error_a_nul_causes_on_its_way_is_a_400_too(rf: Any, tmp_path: Any) -> None:
    from django.http import HttpResponse

    from core.middleware import BadInputMiddleware

    middleware = BadInputMiddleware(lambda request: HttpResponse())
    request = rf.get("/exports/", {"file": f"a{NUL}b"})
    middleware(request)  # notes the fields with a NUL on its way in
    with pytest.raises(ValueError) as raised:  # "embedded null byte"
        os.stat(tmp_path / request.GET["file"])
    response = middleware.process_exception(request, raised.value)

    assert isinstance(response, TemplateResponse) and response.status_code == 400
    assert INVALID_CHARACTER.format(field="file") in response.render().content.decode()
    plain = rf.get("/exports/", {"file": "a"})
    middleware(plain)
    assert middleware.process_exception(plain, ValueError("a bug")) is None  # stays a 500


def test_the_engine_api_answers_for_itself(client: Client) -> None:
    response = client.get(f"/data/core/ups/segment/definitions?start={NUL}")

    assert response.status_code < 500
    assert response["Content-Type"].startswith("application/json")  # AEP's error body
    assert b"contains an invalid character" not in response.content


def test_djangos_own_400s_get_the_styled_page_too() -> None:
    """A malformed body (a broken multipart, too many fields, too large) is Django's 400: the
    page renders without a request or a reason."""
    from django.template.loader import render_to_string

    html = render_to_string("400.html")
    assert "Something in what was sent could not be read" in html
    assert "app.css" in html
