"""A person signs in with a real Chromium and finds the navigation their role allows."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page: Any, live_server: Any, username: str) -> None:
    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector(".sidebar")


def test_marketer_signs_in_and_sees_workspace_navigation(
    page: Any, live_server: Any, marketer: Any, screenshot: Any
) -> None:
    page.goto(f"{live_server.url}/")
    screenshot("login")
    sign_in(page, live_server, "maya")
    nav = page.locator(".sidebar .nav-link span").all_inner_texts()
    assert nav == ["Overview", "Segments", "Exports", "Jobs"]
    assert page.inner_text("[data-testid=user-role]") == "Marketer"
    assert page.inner_text(".user-name") == "Maya"
    screenshot("home-marketer")

    page.goto(f"{live_server.url}/audit/")
    assert page.inner_text("h1") == "You don't have access to this page"
    screenshot("403")


def test_admin_sees_admin_navigation_and_the_audit_log(
    page: Any, live_server: Any, admin_user: Any, screenshot: Any
) -> None:
    sign_in(page, live_server, "ada")
    nav = page.locator(".sidebar .nav-link span").all_inner_texts()
    assert nav == ["Overview", "Segments", "Exports", "Jobs", "Schedules", "Alerts",
                   "Connections", "Profile data", "Users & roles", "Audit log"]
    screenshot("home-admin")
    page.click("[data-nav=audit]")
    page.wait_for_selector("#audit-table")
    # the sign-in just now is the first entry
    assert "auth.login" in page.inner_text("#audit-table tbody tr:first-child")
    screenshot("audit-log")

    page.click(".user-menu button[type=submit]")
    page.wait_for_selector("#id_username")
    assert "/login/" in page.url
