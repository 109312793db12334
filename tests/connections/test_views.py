"""The connections pages through HTTP: who may open them, the create/edit/disable flow with
and without htmx, the write-only secret, the audit log, and the navigation's switcher."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from connections.forms import NAME_TAKEN, ORG_INVALID, SECRET_REQUIRED
from connections.models import Connection
from connections.services import SWITCH_INVALID, UNREACHABLE
from core.models import AuditEntry
from tests.connections.conftest import ORG, SECRET

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
NEW_SECRET = "p8e-REPLACED-secret-4e1d0c77aa"
CLIENT_ID = "0123456789abcdef0123456789abcdef"  # make_connection's


def form_data(**override: str) -> dict[str, str]:
    return {"name": "Acme dev", "kind": "adobe", "base_url": "https://platform.adobe.io",
            "ims_url": "https://ims-na1.adobelogin.com", "org_id": ORG,
            "client_id": "abcdef0123456789", "client_secret": SECRET, "scopes": "",
            "default_sandbox": "dev", **override}


def admin_pages(pk: int) -> list[str]:
    return [reverse("connections:list"), reverse("connections:create"),
            reverse("connections:edit", args=[pk])]


def admin_posts(pk: int) -> list[str]:
    return [reverse("connections:create"), reverse("connections:edit", args=[pk]),
            reverse("connections:test", args=[pk]), reverse("connections:disable", args=[pk]),
            reverse("connections:enable", args=[pk])]


# --- who may do what --------------------------------------------------------------------------

@pytest.mark.parametrize("role_fixture", ["marketer", "lead"])
def test_marketers_and_leads_get_403_on_every_admin_page_and_post(
        client: Client, request: pytest.FixtureRequest, make_connection: Any,
        role_fixture: str) -> None:
    connection = make_connection()
    client.force_login(request.getfixturevalue(role_fixture))
    for url in admin_pages(connection.pk):
        assert client.get(url).status_code == 403, url
        assert client.get(url, headers=HTMX).status_code == 403, url
    for url in admin_posts(connection.pk):
        assert client.post(url, form_data(name="Hijack")).status_code == 403, url
        assert client.post(url, form_data(name="Hijack"), headers=HTMX).status_code == 403, url
    connection.refresh_from_db()
    assert connection.is_enabled and connection.last_tested_at is None
    assert list(Connection.objects.values_list("name", flat=True)) == ["Acme production"]


def test_anonymous_visitors_are_sent_to_sign_in(client: Client, make_connection: Any) -> None:
    connection = make_connection()
    for url in [*admin_pages(connection.pk), reverse("connections:switch")]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    for url in [*admin_posts(connection.pk), reverse("connections:switch")]:
        response = client.post(url, form_data())
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_sidebar_links_connections_to_the_list_for_admins_only(
        client: Client, admin_user: Any, marketer: Any) -> None:
    client.force_login(admin_user)
    assert f'href="{reverse("connections:list")}" data-nav="connections"' in \
        client.get("/").content.decode()
    client.force_login(marketer)
    assert 'data-nav="connections"' not in client.get("/").content.decode()


# --- list, create, edit, disable --------------------------------------------------------------

def test_empty_list_says_what_to_do(client: Client, admin_user: Any) -> None:
    client.force_login(admin_user)
    html = client.get(reverse("connections:list")).content.decode()
    assert "No connections yet" in html
    assert f'href="{reverse("connections:create")}"' in html


def test_list_shows_each_connection_with_its_state(client: Client, admin_user: Any,
                                                   make_connection: Any) -> None:
    make_connection(default_sandbox="prod")
    make_connection("Old org", is_enabled=False)
    client.force_login(admin_user)
    html = client.get(reverse("connections:list")).content.decode()
    for text in ("Acme production", "Adobe Experience Platform", "https://platform.adobe.io",
                 ORG, "Enabled", "Disabled", "Never tested", "Old org"):
        assert text in html


def test_create_without_htmx_redirects_to_the_edit_page(client: Client,
                                                        admin_user: Any) -> None:
    client.force_login(admin_user)
    assert client.get(reverse("connections:create")).status_code == 200
    response = client.post(reverse("connections:create"), form_data())
    connection = Connection.objects.get(name="Acme dev")
    assert response.status_code == 302
    assert response["Location"] == reverse("connections:edit", args=[connection.pk])
    assert connection.client_secret() == SECRET
    assert SECRET not in connection.client_secret_encrypted
    assert (connection.kind, connection.default_sandbox, connection.created_by) == (
        "adobe", "dev", admin_user)
    assert connection.scopes.startswith("openid,AdobeID")
    page = client.get(response["Location"]).content.decode()
    assert "Connection Acme dev saved" in page
    assert "•••••• stored" in page


def test_create_with_htmx_tells_htmx_to_load_the_edit_page(client: Client,
                                                           admin_user: Any) -> None:
    client.force_login(admin_user)
    response = client.post(reverse("connections:create"), form_data(), headers=HTMX)
    connection = Connection.objects.get(name="Acme dev")
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("connections:edit", args=[connection.pk])


def test_builtin_kind_gets_the_engine_urls_when_left_empty(client: Client, admin_user: Any,
                                                           settings: Any) -> None:
    client.force_login(admin_user)
    client.post(reverse("connections:create"),
                form_data(kind="builtin", base_url="", ims_url="", name="Local"))
    connection = Connection.objects.get(name="Local")
    assert connection.base_url == connection.ims_url == settings.BUILTIN_ENGINE_URL


def test_single_label_hosts_such_as_compose_services_are_accepted(
        client: Client, admin_user: Any) -> None:
    client.force_login(admin_user)
    client.post(reverse("connections:create"), form_data(
        kind="builtin", base_url="http://web:8000", ims_url="http://web:8000"))
    assert Connection.objects.get(name="Acme dev").base_url == "http://web:8000"


def test_form_errors_say_what_to_do_and_never_echo_the_secret(
        client: Client, admin_user: Any, make_connection: Any) -> None:
    make_connection("Taken")
    client.force_login(admin_user)
    bad = form_data(name="taken", org_id="not-an-org", base_url="platform.adobe.io")
    for headers in ({}, HTMX):
        response = client.post(reverse("connections:create"), bad, headers=headers)
        html = response.content.decode()
        assert response.status_code == (200 if headers else 400)
        assert NAME_TAKEN.format(name="taken").replace("'", "&#x27;") in html
        assert ORG_INVALID in html
        assert "Enter a full URL starting with http:// or https://" in html
        assert SECRET not in html
    assert 'id="connection-form"' in html and "<html" not in html  # htmx: the form only
    response = client.post(reverse("connections:create"), form_data(client_secret=""))
    assert SECRET_REQUIRED in response.content.decode()


def test_edit_with_an_empty_secret_keeps_the_stored_one(client: Client, admin_user: Any,
                                                        make_connection: Any) -> None:
    connection = make_connection()
    client.force_login(admin_user)
    response = client.post(reverse("connections:edit", args=[connection.pk]),
                           form_data(name="Acme production", client_secret="",
                                     default_sandbox="dev", client_id=CLIENT_ID))
    assert response.status_code == 302
    connection.refresh_from_db()
    assert (connection.default_sandbox, connection.client_secret()) == ("dev", SECRET)
    entry = AuditEntry.objects.filter(action="connection.update").get()
    assert entry.before == {"default_sandbox": "prod"}
    assert entry.after == {"default_sandbox": "dev"}


@pytest.mark.parametrize(("field", "value", "label"), [
    ("ims_url", "https://ims.attacker.example", "IMS URL"),
    ("base_url", "https://platform.attacker.example", "platform URL"),
    ("client_id", "newid", "client id"),
    ("org_id", "OTHER@AdobeOrg", "org id"),
])
def test_moving_where_the_secret_goes_needs_the_secret_again(
        client: Client, admin_user: Any, make_connection: Any, field: str, value: str,
        label: str) -> None:
    """The stored secret is never sent to a host, client or org it was not entered for."""
    from connections.forms import SECRET_AGAIN

    connection = make_connection()
    client.force_login(admin_user)
    data = form_data(name="Acme production", client_secret="", default_sandbox="prod",
                     **{"client_id": CLIENT_ID, field: value})
    response = client.post(reverse("connections:edit", args=[connection.pk]), data)
    assert response.status_code == 400
    assert html.unescape(response.content.decode()).count(SECRET_AGAIN.format(fields=label)) == 1
    connection.refresh_from_db()
    assert getattr(connection, field) != value
    assert not AuditEntry.objects.filter(action="connection.update").exists()
    data["client_secret"] = NEW_SECRET  # typed again: saved
    assert client.post(reverse("connections:edit", args=[connection.pk]),
                       data).status_code == 302
    connection.refresh_from_db()
    assert (getattr(connection, field), connection.client_secret()) == (value, NEW_SECRET)


def test_edit_with_a_new_secret_replaces_it_and_audits_it_masked(
        client: Client, admin_user: Any, make_connection: Any) -> None:
    connection = make_connection()
    client.force_login(admin_user)
    response = client.post(reverse("connections:edit", args=[connection.pk]),
                           form_data(name="Acme production", client_secret=NEW_SECRET,
                                     default_sandbox="prod"), headers=HTMX)
    assert response["HX-Redirect"] == reverse("connections:edit", args=[connection.pk])
    connection.refresh_from_db()
    assert connection.client_secret() == NEW_SECRET
    entry = AuditEntry.objects.filter(action="connection.update").get()
    assert entry.actor == admin_user
    assert (entry.before or {})["client_secret"] == (entry.after or {})["client_secret"] == "••••••"
    assert NEW_SECRET not in str(entry.before) + str(entry.after)


def test_disable_and_enable_without_htmx(client: Client, admin_user: Any,
                                         make_connection: Any) -> None:
    connection = make_connection()
    client.force_login(admin_user)
    response = client.post(reverse("connections:disable", args=[connection.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("connections:list")
    connection.refresh_from_db()
    assert not connection.is_enabled
    page = client.get(response["Location"]).content.decode()
    assert "Connection Acme production disabled" in page
    client.post(reverse("connections:enable", args=[connection.pk]))
    connection.refresh_from_db()
    assert connection.is_enabled
    assert list(AuditEntry.objects.filter(object_type="connections.connection")
                .order_by("pk").values_list("action", flat=True)) == [
        "connection.create", "connection.disable", "connection.enable"]


def test_disable_with_htmx_answers_the_row_and_the_switcher(client: Client, admin_user: Any,
                                                            make_connection: Any) -> None:
    connection = make_connection()
    client.force_login(admin_user)
    response = client.post(reverse("connections:disable", args=[connection.pk]),
                           headers={**HTMX, "HX-Target": f"connection-{connection.pk}"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<tr id="connection-{connection.pk}"')
    assert "Disabled" in html and "Enable</button>" in html
    assert 'id="switcher" class="switcher" hx-swap-oob="true"' in html
    assert "No connection" in html  # the only connection left the switcher


def test_unknown_connection_is_404(client: Client, admin_user: Any) -> None:
    client.force_login(admin_user)
    assert client.get(reverse("connections:edit", args=[999])).status_code == 404
    assert client.post(reverse("connections:test", args=[999])).status_code == 404


# --- test connection through the views ----------------------------------------------------

def unreachable(make_connection: Any) -> Connection:
    # port 9 (discard) on the loopback: refused at once, no network needed
    return make_connection(base_url="http://127.0.0.1:9", ims_url="http://127.0.0.1:9")


def test_test_button_with_htmx_swaps_in_the_panel(client: Client, admin_user: Any,
                                                  make_connection: Any) -> None:
    connection = unreachable(make_connection)
    client.force_login(admin_user)
    response = client.post(reverse("connections:test", args=[connection.pk]), headers=HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="test-panel"')
    assert "Failed" in html
    assert UNREACHABLE.format(host="127.0.0.1:9") in html
    assert "Fetch an access token" in html and "Not run: an earlier step failed." in html
    # the sidebar's switcher comes along, out of band, still offering this connection
    assert 'id="switcher" class="switcher" hx-swap-oob="true"' in html
    assert f'value="{connection.pk}:prod" selected' in html


def test_test_button_on_the_list_swaps_in_the_row(client: Client, admin_user: Any,
                                                  make_connection: Any) -> None:
    connection = unreachable(make_connection)
    client.force_login(admin_user)
    response = client.post(reverse("connections:test", args=[connection.pk]),
                           headers={**HTMX, "HX-Target": f"connection-{connection.pk}"})
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="connection-{connection.pk}"')
    assert "Failed" in html and "Unreachable host" in html


def test_test_button_without_js_posts_and_lands_on_the_edit_page(
        client: Client, admin_user: Any, make_connection: Any) -> None:
    connection = unreachable(make_connection)
    client.force_login(admin_user)
    response = client.post(reverse("connections:test", args=[connection.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("connections:edit", args=[connection.pk])
    html = client.get(response["Location"]).content.decode()
    assert "Unreachable host" in html and "Fetch an access token" in html


# --- the secret is never sent back ---------------------------------------------------------

def test_the_secret_never_appears_in_any_response(client: Client, admin_user: Any,
                                                  make_connection: Any) -> None:
    client.force_login(admin_user)
    bodies: list[bytes] = []
    bodies.append(client.post(reverse("connections:create"), form_data()).content)
    connection = Connection.objects.get(name="Acme dev")
    other = unreachable(make_connection)
    edit = reverse("connections:edit", args=[connection.pk])
    bodies.append(client.post(edit, form_data(client_secret=NEW_SECRET, org_id="bad")).content)
    bodies.append(client.post(edit, form_data(client_secret=NEW_SECRET)).content)
    bodies.append(client.post(reverse("connections:test", args=[other.pk]), headers=HTMX).content)
    bodies.append(client.post(reverse("connections:test", args=[other.pk])).content)
    for url in [reverse("connections:list"), reverse("connections:create"), edit,
                reverse("connections:edit", args=[other.pk]), reverse("core:audit"), "/"]:
        for headers in ({}, HTMX):
            response = client.get(url, headers=headers)
            assert response.status_code == 200, url
            bodies.append(response.content)
    connection.refresh_from_db()
    stored = [connection.client_secret_encrypted, other.client_secret_encrypted]
    for body in bodies:
        text = body.decode()
        for secret in (SECRET, NEW_SECRET, *stored):
            assert secret not in text
    # and what the audit log shows is the mask
    assert "••••••" in client.get(reverse("core:audit")).content.decode()


def test_audit_entries_mask_the_secret(admin_user: Any, make_connection: Any) -> None:
    make_connection(actor=admin_user)
    entry = AuditEntry.objects.get(action="connection.create")
    assert (entry.after or {})["client_secret"] == "••••••"
    assert (entry.after or {})["org_id"] == ORG and entry.actor == admin_user
    assert SECRET not in str(entry.after)


# --- the switcher ------------------------------------------------------------------------------

@pytest.mark.parametrize("role_fixture", ["marketer", "lead", "admin_user"])
def test_every_role_sees_and_uses_the_switcher(client: Client, request: pytest.FixtureRequest,
                                               make_connection: Any, role_fixture: str) -> None:
    first = make_connection("A first", sandboxes=["prod", "dev"])
    second = make_connection("B second", default_sandbox="stage")
    make_connection("C off", is_enabled=False)
    client.force_login(request.getfixturevalue(role_fixture))
    html = client.get("/").content.decode()
    assert 'data-testid="switcher"' in html
    assert f'value="{first.pk}:prod" selected' in html
    assert f'value="{first.pk}:dev"' in html and f'value="{second.pk}:stage"' in html
    assert "C off" not in html

    response = client.post(reverse("connections:switch"),
                           {"choice": f"{second.pk}:stage", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    html = client.get("/").content.decode()
    assert f'value="{second.pk}:stage" selected' in html
    assert "Now working in B second · stage" in html


def test_the_switcher_refuses_what_it_does_not_offer(client: Client, marketer: Any,
                                                     make_connection: Any) -> None:
    first = make_connection("A first", sandboxes=["prod", "dev"])
    off = make_connection("C off", is_enabled=False)
    client.force_login(marketer)
    for choice in (f"{first.pk}:elsewhere", f"{off.pk}:prod", "x:prod", ""):
        response = client.post(reverse("connections:switch"),
                               {"choice": choice, "next": "https://evil.example/"})
        assert response["Location"] == "/"  # never off-site
        assert SWITCH_INVALID.replace("'", "&#x27;") in client.get("/").content.decode()
    assert client.session.get("connection_id") is None


def test_current_connection_falls_back_to_the_first_enabled(rf: Any, make_connection: Any
                                                            ) -> None:
    from django.contrib.sessions.backends.db import SessionStore

    from connections.services import current_connection

    request = rf.get("/")
    request.session = SessionStore()
    assert current_connection(request) == (None, "")
    first = make_connection("A first", default_sandbox="dev")
    second = make_connection("B second")
    request = rf.get("/")
    request.session = SessionStore()
    assert current_connection(request) == (first, "dev")
    request = rf.get("/")
    request.session = SessionStore()
    request.session.update({"connection_id": second.pk, "sandbox": "gone"})
    assert current_connection(request) == (second, "prod")
    second.is_enabled = False
    second.save()
    request = rf.get("/")
    request.session = SessionStore()
    request.session.update({"connection_id": second.pk, "sandbox": "prod"})
    assert current_connection(request) == (first, "dev")


def test_no_connection_yet_the_switcher_says_so(client: Client, admin_user: Any,
                                                marketer: Any) -> None:
    client.force_login(admin_user)
    html = client.get("/").content.decode()
    assert "No connection" in html and "Add a connection" in html
    client.force_login(marketer)
    html = client.get("/").content.decode()
    assert "Ask an admin to add one." in html


def test_a_new_connection_never_moves_anybody(client: Client, marketer: Any, admin_user: Any,
                                              make_connection: Any) -> None:
    """Nobody chose a connection: everyone works in the oldest until an admin makes another
    the default — whatever the new one is called (it used to be the first by name)."""
    from connections.services import DEFAULT_UNTESTED

    def working_in() -> str:
        description = client.get("/segments/").content.decode().split("page-description")[1]
        return description.split("</p>")[0]

    make_connection("Zeta production")
    client.force_login(marketer)
    assert "Zeta production" in working_in()
    newer = make_connection("Acme staging")
    assert "Zeta production" in working_in()

    client.force_login(admin_user)
    response = client.post(reverse("connections:default", args=[newer.pk]), follow=True)
    assert DEFAULT_UNTESTED.format(name="Acme staging") in html.unescape(
        response.content.decode())
    Connection.objects.filter(pk=newer.pk).update(last_test_ok=True)
    client.post(reverse("connections:default", args=[newer.pk]))
    assert Connection.objects.get(is_default=True) == newer
    entry = AuditEntry.objects.get(action="connection.default")
    assert (entry.before, entry.after) == ({"default": None}, {"default": "Acme staging"})

    client.force_login(marketer)
    assert "Acme staging" in working_in()
    client.force_login(admin_user)
    client.post(reverse("connections:disable", args=[newer.pk]))
    assert not Connection.objects.filter(is_default=True).exists()


def test_only_admins_make_a_connection_the_default(client: Client, lead: Any,
                                                   make_connection: Any) -> None:
    connection = make_connection()
    Connection.objects.filter(pk=connection.pk).update(last_test_ok=True)
    client.force_login(lead)
    assert client.post(reverse("connections:default", args=[connection.pk])).status_code == 403
    assert not Connection.objects.filter(is_default=True).exists()
