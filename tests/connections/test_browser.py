"""An admin, in a real Chromium, creates a connection to the built-in engine (served by the
live server), tests it, sees a failure named plainly, and switches sandbox in the navigation."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from tests.test_browser_shell import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ORG = "SEGMENTSTUDIO@AdobeOrg"


@pytest.fixture
def engine_client(settings: Any, live_server: Any) -> dict[str, str]:
    """An API client of the engine, as an admin would copy it from `create_api_client`."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher",
                                 *settings.PASSWORD_HASHERS]
    settings.BUILTIN_ENGINE_URL = live_server.url
    out = StringIO()
    call_command("create_api_client", "--name", "browser test", "--org", ORG,
                 "--sandbox", "prod", "--sandbox", "dev", "--json", stdout=out)
    created: dict[str, str] = json.loads(out.getvalue())
    return created


def test_admin_creates_tests_and_switches_to_a_connection(
        page: Any, live_server: Any, admin_user: Any, engine_client: dict[str, str],
        shot: Any) -> None:
    sign_in(page, live_server, "ada")
    assert "No connection" in page.inner_text("#switcher")
    page.click("[data-nav=connections]")
    page.wait_for_selector("text=No connections yet")
    shot("connections-empty")

    page.click(".page-header >> text=New connection")
    page.check("input[name=kind][value=builtin]")
    page.fill("#id_name", "Local engine")
    page.fill("#id_org_id", "not an org")
    page.fill("#id_client_id", engine_client["client_id"])
    page.fill("#id_client_secret", engine_client["client_secret"])
    page.click("#connection-form button[type=submit]")
    page.wait_for_selector("#connection-form .error")  # htmx swapped the form with its errors
    assert "ends in @AdobeOrg" in page.inner_text("#connection-form")
    assert page.input_value("#id_client_secret") == ""  # never sent back
    shot("connection-form-errors")

    page.fill("#id_org_id", ORG)
    page.fill("#id_client_secret", engine_client["client_secret"])
    shot("connection-form")
    page.click("#connection-form button[type=submit]")
    page.wait_for_selector("#test-panel")
    assert "Connection Local engine saved" in page.inner_text(".toasts")
    assert "•••••• stored" in page.inner_text("#connection-form")

    page.click("[data-testid=test-button]")
    page.wait_for_selector("#test-panel .badge-succeeded")
    panel = page.inner_text("#test-panel")
    assert "Connected: token, 2 sandboxes, definitions in prod." in panel
    assert "Read 0 segment definitions in prod." in panel
    shot("connection-test-passed")

    # the test's answer brought the sandboxes into the switcher: switch to dev
    page.select_option("#switcher-choice", label="dev · Local engine")
    page.wait_for_selector(".switcher-sandbox strong:text-is('dev')")
    assert "Now working in Local engine · dev" in page.inner_text(".toasts")
    assert "/connections/" in page.url  # back on the page it was chosen from

    # a wrong secret is named as such
    page.fill("#id_client_secret", "p8e-wrong")
    page.click("#connection-form button[type=submit]")
    page.wait_for_selector("text=Connection Local engine saved.")
    page.click("[data-testid=test-button]")
    page.wait_for_selector("#test-panel .badge-failed")
    assert "Bad secret: IMS refused the client secret" in page.inner_text("#test-panel")
    shot("connection-test-failed")

    page.click(".breadcrumbs >> text=Connections")
    page.wait_for_selector(".connections-table")
    row = page.inner_text(".connections-table tbody tr")
    assert "Local engine" in row and "Failed" in row and "Bad secret" in row
    shot("connections-list")

    # the list's Test button swaps the row in place
    page.click(".connections-table tbody tr >> text=Test")
    page.wait_for_function("document.querySelector('.connections-table tbody tr')"
                           ".innerText.includes('Failed')")
    assert page.url.endswith("/connections/")
    assert page.inner_text(".switcher-sandbox strong") == "dev"


def test_a_marketer_switches_connection_and_sandbox_without_seeing_admin_pages(
        page: Any, live_server: Any, marketer: Any, shot: Any) -> None:
    from connections.services import connection_create

    for name, sandboxes in (("Acme production", ["prod", "dev"]), ("Acme staging", ["prod"])):
        connection_create(actor=None, name=name, kind="adobe", org_id=ORG, client_id="id",
                          client_secret="s3cr3t", sandboxes=sandboxes)
    sign_in(page, live_server, "maya")
    assert page.inner_text(".switcher-name") == "Acme production"
    options = page.locator("#switcher-choice option").all_inner_texts()
    assert options == ["prod · Acme production", "dev · Acme production",
                       "prod · Acme staging"]
    page.select_option("#switcher-choice", label="prod · Acme staging")
    page.wait_for_selector(".switcher-name:text-is('Acme staging')")
    assert page.inner_text(".switcher-sandbox strong") == "prod"
    shot("switcher-marketer")
    page.reload()
    assert page.inner_text(".switcher-name") == "Acme staging"  # kept in the session
    assert page.locator("[data-nav=connections]").count() == 0
