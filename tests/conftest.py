"""Fixtures shared by the Django-side suite: users per role, a real Chromium for browser tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # Django-free suites (tests/pql) must import this file without settings
    from core.roles import Role

# Playwright's sync API runs an event loop in the test thread; Django refuses ORM calls from a
# thread with a running loop unless told that this is deliberate (the tests are synchronous).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"
# Flags for a sandboxed, offline machine: no background calls home, no GPU, root allowed.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def make_user(django_user_model: Any) -> Any:
    from django.contrib.auth.models import Group

    def make(username: str, role: Role | None, **extra: Any) -> Any:
        user = django_user_model.objects.create_user(
            username=username, password=PASSWORD, first_name=username.title(), **extra
        )
        if role is not None:
            user.groups.add(Group.objects.get_or_create(name=role.value)[0])
        return user

    return make


@pytest.fixture
def marketer(make_user: Any) -> Any:
    from core.roles import Role

    return make_user("maya", Role.MARKETER)


@pytest.fixture
def lead(make_user: Any) -> Any:
    from core.roles import Role

    return make_user("leo", Role.TEAM_LEAD)


@pytest.fixture
def admin_user(make_user: Any) -> Any:
    from core.roles import Role

    return make_user("ada", Role.ADMIN)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium package "
                    "(.ci/run does it) or set CHROMIUM_PATH.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 860})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot(page: Any) -> Any:
    """Save a full-page screenshot under var/screenshots/ for a person to look at."""

    def take(name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def shot(page: Any, screenshot: Any) -> Any:
    """A full-page screenshot from the top (the sticky sidebar is drawn where it is pinned)."""

    def take(name: str) -> None:
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(name)

    return take
