"""Every page needs a login; each role sees its navigation and gets 403 where it may not go."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from core.navigation import SECTIONS, Section
from core.roles import Role

pytestmark = pytest.mark.django_db

# the pages a one-time link opens to set a password (tests/test_users.py)
PUBLIC = {"login", "healthz", "password_reset_confirm", "password_reset_complete"}


# A sample value per path converter, so that pages with arguments are covered too.
SAMPLE_ARGUMENTS = {"int": 1, "slug": "segments", "str": "x", "path": "x",
                    "uuid": "00000000-0000-0000-0000-000000000000"}


def named_routes() -> list[str]:
    """Every URL we serve, by name, with sample arguments (Django's admin has its own login)."""

    def walk(patterns: list[Any], prefix: str = "") -> list[str]:
        urls = []
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                # The admin has its own login; the engine's REST API authenticates with bearer
                # tokens, not sessions (tests/engine/api covers its 401/403 answers).
                if pattern.namespace in ("admin", "engine_api"):
                    continue
                space = f"{prefix}{pattern.namespace}:" if pattern.namespace else prefix
                urls += walk(pattern.url_patterns, space)
            elif isinstance(pattern, URLPattern) and pattern.name:
                kwargs = {
                    name: SAMPLE_ARGUMENTS[type(converter).__name__.removesuffix("Converter")
                                           .lower()]
                    for name, converter in pattern.pattern.converters.items()
                }
                if prefix + pattern.name not in PUBLIC:
                    urls.append(reverse(prefix + pattern.name, kwargs=kwargs))
        return urls

    return walk(get_resolver().url_patterns)


def section_pages() -> list[str]:
    return [section.url for section in SECTIONS]


@pytest.mark.parametrize("url", named_routes())
def test_every_page_redirects_to_login_when_logged_out(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("url", section_pages())
def test_every_section_redirects_to_login_when_logged_out(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_login_and_healthz_are_public(client: Client) -> None:
    assert client.get(reverse("login")).status_code == 200
    assert client.get(reverse("healthz")).status_code in (200, 503)


EXPECTED_NAV = {
    Role.MARKETER: ["Segments", "Exports", "Jobs"],
    Role.TEAM_LEAD: ["Segments", "Exports", "Jobs", "Schedules", "Alerts"],
    Role.ADMIN: ["Segments", "Exports", "Jobs", "Schedules", "Alerts", "Connections",
                 "Profile data", "Users & roles", "Audit log"],
}


def nav_labels(html: str) -> list[str]:
    import re

    return re.findall(r'data-nav="[^"]+">.*?<span>(.*?)</span>', html)


@pytest.mark.parametrize("role", list(Role))
def test_each_role_sees_its_navigation(client: Client, make_user: Any, role: Role) -> None:
    user = make_user("someone", role)
    client.force_login(user)
    html = client.get(reverse("core:home")).content.decode()
    assert [label.replace("&amp;", "&") for label in nav_labels(html)] == EXPECTED_NAV[role]
    assert f'data-testid="user-role">{role.label}<' in html


def allowed(section: Section, role: Role) -> bool:
    return role in section.roles


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.slug)
def test_role_matrix_of_sections(client: Client, make_user: Any, role: Role,
                                 section: Section) -> None:
    client.force_login(make_user("someone", role))
    response = client.get(section.url)
    if allowed(section, role):
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert "You don't have access to this page" in response.content.decode()


def test_user_without_role_is_refused_everywhere_but_sees_why(
    client: Client, make_user: Any
) -> None:
    client.force_login(make_user("nobody", None))
    assert client.get(reverse("core:home")).status_code == 403
    assert client.get(reverse("core:audit")).status_code == 403


def test_superuser_counts_as_admin(client: Client, make_user: Any) -> None:
    client.force_login(make_user("root", None, is_superuser=True, is_staff=True))
    assert client.get(reverse("core:audit")).status_code == 200


def test_unknown_page_is_our_404(client: Client, marketer: Any) -> None:
    client.force_login(marketer)
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "This page doesn't exist" in response.content.decode()


def test_500_page_renders_without_a_request() -> None:
    from django.template.loader import render_to_string

    html = render_to_string("500.html")
    assert "Something went wrong on our side" in html
    assert "app.css" in html


def test_sign_in_and_out_through_the_forms(client: Client, marketer: Any) -> None:
    from tests.conftest import PASSWORD

    response = client.post(reverse("login"), {"username": "maya", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()

    response = client.post(reverse("login"), {"username": "maya", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("core:home")).status_code == 200

    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("core:home")).status_code == 302


@pytest.mark.parametrize(("path", "active"), [
    ("/", "Overview"), ("/jobs/", "Jobs"), ("/jobs/alerts/", "Alerts"),
    ("/schedules/", "Schedules"), ("/profile-data/", "Profile data")])
def test_exactly_one_sidebar_entry_is_active(client: Client, make_user: Any, path: str,
                                             active: str) -> None:
    import re

    client.force_login(make_user("someone", Role.ADMIN))
    html = client.get(path).content.decode()
    assert re.findall(r'class="nav-link active"[^>]*>.*?<span>(.*?)</span>', html) == [active]
