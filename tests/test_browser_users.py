"""An admin adds a person in a real Chromium, changes their role and deactivates them; the
person's link opens the set-password page."""

from __future__ import annotations

from typing import Any

import pytest

from core import users
from tests.test_browser_shell import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_adds_a_user_changes_the_role_and_deactivates(
    page: Any, browser: Any, live_server: Any, admin_user: Any, make_user: Any, shot: Any,
) -> None:
    from core.roles import Role

    make_user("leo", Role.TEAM_LEAD, email="leo@example.com", last_name="Okafor")
    sign_in(page, live_server, "ada")
    page.click("[data-nav=users]")
    page.wait_for_selector("#user-table")
    page.click("[data-testid=add-user]")
    page.fill("#id_first_name", "Nina")
    page.fill("#id_last_name", "Park")
    page.fill("#id_username", "nina")
    page.fill("#id_email", "nina@example.com")
    page.check("input[name=role][value='Marketer']")
    shot("user-add")
    page.click("form.form-card button[type=submit]")

    page.wait_for_selector("[data-testid=password-link]")
    panel = page.inner_text("[data-testid=password-link]")
    assert users.LINK_EMAILED.format(email="nina@example.com") in panel
    link = page.input_value("#password-link")
    assert link.startswith(f"{live_server.url}/reset/")
    assert page.inner_text("h1 + [data-testid=role]") == "Marketer"
    shot("user-created")

    page.check("input[name=role][value='Team lead']")
    page.click("[data-testid=save-role]")
    page.wait_for_selector(".toast-success")
    assert users.ROLE_CHANGED.format(name="Nina Park", role="a team lead") in page.inner_text(
        ".toasts")
    assert page.inner_text("h1 + [data-testid=role]") == "Team lead"

    page.click("[data-testid=deactivate]")
    page.wait_for_selector("[data-testid=activate]")
    assert page.inner_text("[data-testid=status]") == "Deactivated"
    page.click(".breadcrumbs a")
    page.wait_for_selector("#user-table")
    row = page.locator("tr[data-username=nina]")
    assert row.locator("[data-testid=role]").inner_text() == "Team lead"
    assert row.locator("[data-testid=status]").inner_text() == "Deactivated"
    shot("users-list")

    # on their own page, the last admin sees why they can neither leave the role nor deactivate
    page.click("tr[data-username=ada] a.user-cell")
    page.wait_for_selector("[data-testid=role-refusal]")
    assert page.inner_text("[data-testid=role-refusal]") == users.LAST_ADMIN.format(name="Ada")
    assert page.inner_text("[data-testid=deactivate-refusal]") == users.CANNOT_DEACTIVATE_SELF
    shot("user-self")
    page.go_back()

    # the link of a deactivated person no longer works; reactivated, it does
    anonymous = browser.new_context(viewport={"width": 1360, "height": 860})
    visitor = anonymous.new_page()
    try:
        visitor.goto(link)
        assert visitor.inner_text("h1") == "This link no longer works"
        visitor.screenshot(path=str(_path("set-password-link-invalid")), full_page=True)
        page.click("tr[data-username=nina] a.user-cell")
        page.click("[data-testid=activate]")
        page.wait_for_selector("[data-testid=deactivate]")
        visitor.goto(link)
        visitor.wait_for_selector("#id_new_password1")
        assert visitor.inner_text("[data-testid=username]") == "nina"
        visitor.screenshot(path=str(_path("set-password")), full_page=True)
        visitor.fill("#id_new_password1", "plum-orbit-lantern-42")
        visitor.fill("#id_new_password2", "plum-orbit-lantern-42")
        visitor.click("button[type=submit]")
        visitor.wait_for_selector("[data-testid=password-set]")
        visitor.screenshot(path=str(_path("set-password-done")), full_page=True)
        visitor.get_by_role("link", name="Sign in").click()
        visitor.fill("#id_username", "nina")
        visitor.fill("#id_password", "plum-orbit-lantern-42")
        visitor.click("button[type=submit]")
        visitor.wait_for_selector(".sidebar")
        assert visitor.inner_text("[data-testid=user-role]") == "Team lead"
    finally:
        anonymous.close()


def _path(name: str) -> Any:
    from tests.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"
