"""Users & roles: admins add people with a role and a one-time link to set their password,
change roles, deactivate and reactivate, send password resets — all audited, with the last
admin kept; the link's pages work without signing in."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core import users
from core.models import AuditEntry
from core.roles import Role
from core.views_users import EMAIL_TAKEN, LINK_INVALID, PASSWORD_SET, USERNAME_TAKEN
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "plum-orbit-lantern-42"
LINK = re.compile(r"http://testserver/reset/[\w-]+/[\w-]+/")


def text(response: Any) -> str:
    return response.content.decode()


def shown(message: str) -> str:
    """A message as the page escapes it."""
    from django.utils.html import escape

    return str(escape(message))


def role_of(username: str) -> Role | None:
    return users.held_role(get_user_model().objects.get(username=username))


def add_user(client: Client, **fields: str) -> Any:
    data = {"username": "nina", "first_name": "Nina", "last_name": "Park",
            "email": "nina@example.com", "role": Role.MARKETER.value, **fields}
    return client.post(reverse("core:user_create"), data)


@pytest.fixture(autouse=True)
def fast_hashing(settings: Any) -> None:
    # these tests hash a password for every user they make and every sign-in; what is tested
    # does not depend on the hasher, and the default one takes half a second a hash
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_client(client: Client, admin_user: Any) -> Client:
    client.force_login(admin_user)
    return client


# --- who may open what ----------------------------------------------------------------------

def _pages(pk: int) -> list[tuple[str, str]]:
    return [
        ("get", reverse("core:users")), ("get", reverse("core:user_create")),
        ("get", reverse("core:user_detail", args=[pk])),
        ("post", reverse("core:user_role", args=[pk])),
        ("post", reverse("core:user_deactivate", args=[pk])),
        ("post", reverse("core:user_activate", args=[pk])),
        ("post", reverse("core:user_password_reset", args=[pk])),
    ]


@pytest.mark.parametrize("who", ["anonymous", "no role", "marketer", "lead"])
def test_only_admins_reach_any_users_page(client: Client, make_user: Any, who: str) -> None:
    target = make_user("target", Role.MARKETER)
    roles = {"no role": None, "marketer": Role.MARKETER, "lead": Role.TEAM_LEAD}
    if who != "anonymous":
        client.force_login(make_user("visitor", roles[who]))
    for method, url in _pages(target.pk):
        response = getattr(client, method)(url, {"role": Role.ADMIN.value})
        if who == "anonymous":
            assert response.status_code == 302, url
            assert response["Location"].startswith(reverse("login")), url
        else:
            assert response.status_code == 403, (who, url)
    target.refresh_from_db()
    assert target.is_active and role_of("target") == Role.MARKETER
    assert not AuditEntry.objects.filter(action__startswith="user.").exists()


def test_admins_reach_every_users_page(admin_client: Client, make_user: Any) -> None:
    target = make_user("target", Role.MARKETER)
    statuses = [getattr(admin_client, method)(url, {"role": Role.TEAM_LEAD.value}).status_code
                for method, url in _pages(target.pk)]
    assert statuses == [200, 200, 200, 302, 302, 302, 302]


def test_superuser_is_an_admin_here(client: Client, make_user: Any) -> None:
    client.force_login(make_user("root", None, is_superuser=True))
    assert client.get(reverse("core:users")).status_code == 200


def test_sidebar_users_and_roles_opens_this_page(admin_client: Client) -> None:
    html = text(admin_client.get(reverse("core:home")))
    assert f'href="{reverse("core:users")}" data-nav="users"' in html
    assert "/admin/auth/user/" not in html
    page = text(admin_client.get(reverse("core:users")))
    assert re.findall(r'class="nav-link active"[^>]*data-nav="(\w+)"', page) == ["users"]


# --- the list ---------------------------------------------------------------------------------

def test_list_shows_each_person_with_role_status_and_last_sign_in(
    admin_client: Client, make_user: Any
) -> None:
    make_user("maya", Role.MARKETER, email="maya@example.com",
              last_login=timezone.now() - timedelta(hours=3))
    make_user("leo", Role.TEAM_LEAD, is_active=False)
    make_user("root", None, is_superuser=True)
    make_user("nobody", None)
    html = text(admin_client.get(reverse("core:users")))
    assert "<h1>Users &amp; roles</h1>" in html
    assert 'data-testid="add-user"' in html

    def row(username: str) -> str:
        found = re.search(rf'<tr[^>]*data-username="{username}">(.*?)</tr>', html, re.S)
        assert found, username
        return found.group(1)

    assert "maya@example.com" in row("maya")
    assert 'class="role-badge role-marketer"' in row("maya")
    assert "3\xa0hours ago" in row("maya")
    assert "Active" in row("maya")
    assert "role-team-lead" in row("leo") and "Deactivated" in row("leo")
    assert "Never" in row("leo")
    assert "role-admin" in row("root")  # a superuser is an admin whatever their groups
    assert "role-none" in row("nobody")
    assert "You" in row("ada")


def test_search_finds_by_name_username_or_email_and_htmx_gets_the_table(
    admin_client: Client, make_user: Any
) -> None:
    make_user("maya", Role.MARKETER, email="maya@shop.example", last_name="Lindqvist")
    make_user("leo", Role.TEAM_LEAD, email="leo@other.example")
    for query in ("lindq", "MAYA", "shop.example"):
        html = text(admin_client.get(reverse("core:users"), {"q": query}))
        assert 'data-username="maya"' in html and 'data-username="leo"' not in html, query
    html = text(admin_client.get(reverse("core:users"), {"role": Role.TEAM_LEAD.value}))
    assert re.findall(r'data-username="(\w+)"', html) == ["leo"]
    nobody = text(admin_client.get(reverse("core:users"), {"q": "zzz"}))
    assert "Nobody matches" in nobody

    fragment = text(admin_client.get(reverse("core:users"), {"q": "leo"}, HTTP_HX_REQUEST="true"))
    assert fragment.lstrip().startswith('<div id="user-table"')
    assert "sidebar" not in fragment and 'data-username="leo"' in fragment


# --- adding a person ------------------------------------------------------------------------

def test_admin_adds_a_user_with_a_role_and_a_link_shown_once_and_emailed(
    admin_client: Client,
) -> None:
    response = add_user(admin_client, role=Role.TEAM_LEAD.value)
    nina = get_user_model().objects.get(username="nina")
    assert response.status_code == 302
    assert response["Location"] == reverse("core:user_detail", args=[nina.pk])
    assert not nina.has_usable_password() and nina.is_active
    assert role_of("nina") == Role.TEAM_LEAD

    page = text(admin_client.get(response["Location"]))
    assert shown(users.CREATED.format(name="Nina Park")) in page
    assert shown(users.LINK_EMAILED.format(email="nina@example.com")) in page
    once = users.LINK_ONCE.format(lifetime=users.link_lifetime())
    assert shown(once) in page and "3\xa0days" in once  # Django's PASSWORD_RESET_TIMEOUT
    link = LINK.search(page)
    assert link
    [email] = mail.outbox
    assert email.to == ["nina@example.com"] and email.subject == users.INVITE_SUBJECT
    assert link.group(0) in email.body and "as a team lead" in email.body
    assert "Your username is nina" in email.body

    again = text(admin_client.get(response["Location"]))
    assert 'data-testid="password-link"' not in again and not LINK.search(again)

    entry = AuditEntry.objects.get(action="user.create")
    assert entry.actor_repr == "ada" and entry.object_id == str(nina.pk)
    assert entry.after == {"username": "nina", "first_name": "Nina", "last_name": "Park",
                           "email": "nina@example.com", "role": "Team lead", "is_active": True,
                           "link_emailed_to": "nina@example.com"}


def test_a_user_without_an_address_gets_a_link_to_pass_on(admin_client: Client) -> None:
    response = add_user(admin_client, username="kim", first_name="", last_name="", email="")
    page = text(admin_client.get(response["Location"]))
    assert shown(users.LINK_NOT_EMAILED.format(name="kim")) in page
    assert LINK.search(page)
    assert mail.outbox == []


def test_a_failed_email_still_shows_the_link(admin_client: Client, settings: Any,
                                             monkeypatch: Any) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConnectionRefusedError("no relay")

    monkeypatch.setattr(users, "send_mail", refuse)
    response = add_user(admin_client)
    page = text(admin_client.get(response["Location"]))
    note = users.LINK_EMAIL_FAILED.format(email="nina@example.com",
                                          error="ConnectionRefusedError")
    assert shown(note) in page and LINK.search(page)


def test_adding_refuses_a_taken_username_or_address_and_says_why(
    admin_client: Client, make_user: Any
) -> None:
    make_user("nina", Role.MARKETER, email="nina@example.com")
    response = add_user(admin_client, username="NINA", email="other@example.com")
    assert response.status_code == 400
    assert shown(USERNAME_TAKEN) in text(response)
    response = add_user(admin_client, username="nina2", email="Nina@Example.com")
    assert response.status_code == 400
    assert shown(EMAIL_TAKEN.format(username="nina")) in text(response)
    response = add_user(admin_client, username="nina3", role="Owner")
    assert response.status_code == 400
    assert get_user_model().objects.count() == 2
    assert not AuditEntry.objects.filter(action="user.create").exists()


# --- the link -----------------------------------------------------------------------------------

def _link_for_new_user(admin_client: Client, **fields: str) -> str:
    response = add_user(admin_client, **fields)
    found = LINK.search(text(admin_client.get(response["Location"])))
    assert found
    return found.group(0).removeprefix("http://testserver")


def test_a_new_user_sets_a_password_through_the_link_and_signs_in(
    admin_client: Client, client: Client
) -> None:
    link = _link_for_new_user(admin_client)
    visitor = Client()  # nobody signed in
    response = visitor.get(link)
    assert response.status_code == 302  # Django moves the token out of the address
    form_url = response["Location"]
    page = visitor.get(form_url)
    assert page.status_code == 200
    assert 'data-testid="username">nina<' in text(page)
    assert "Your password can’t be a commonly used password" in text(page)  # the validators

    weak = visitor.post(form_url, {"new_password1": "password", "new_password2": "password"})
    assert "This password is too common." in text(weak)
    done = visitor.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == reverse("password_reset_complete")
    assert shown(PASSWORD_SET) in text(visitor.get(done["Location"]))

    signed_in = visitor.post(reverse("login"), {"username": "nina", "password": NEW_PASSWORD})
    assert signed_in.status_code == 302
    assert visitor.get(reverse("core:home")).status_code == 200

    used = Client().get(link)
    assert used.status_code == 200
    assert shown(LINK_INVALID.format(lifetime=users.link_lifetime())) in text(used)
    entry = AuditEntry.objects.get(action="user.password_set")
    assert entry.actor_repr == "nina" and entry.before is None and entry.after is None


def test_an_expired_link_says_so(admin_client: Client, monkeypatch: Any, settings: Any) -> None:
    link = _link_for_new_user(admin_client)
    # the generator counts in naive local time (datetime.now())
    later = datetime.now() + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 60)
    monkeypatch.setattr(PasswordResetTokenGenerator, "_now", lambda self: later)
    response = Client().get(link)
    assert response.status_code == 200
    assert shown(LINK_INVALID.format(lifetime=users.link_lifetime())) in text(response)
    assert "new_password1" not in text(response)


def test_the_link_page_has_the_product_look_for_a_signed_in_visitor_too(
    admin_client: Client,
) -> None:
    link = _link_for_new_user(admin_client)
    page = admin_client.get(admin_client.get(link)["Location"])
    assert page.status_code == 200
    assert 'class="auth-card"' in text(page) and 'data-testid="username">nina<' in text(page)


# --- roles ----------------------------------------------------------------------------------------

def test_admin_changes_a_role_and_it_is_audited(admin_client: Client, make_user: Any) -> None:
    maya = make_user("maya", Role.MARKETER)
    response = admin_client.post(reverse("core:user_role", args=[maya.pk]),
                                 {"role": Role.TEAM_LEAD.value}, follow=True)
    assert shown(users.ROLE_CHANGED.format(name="Maya", role="a team lead")) in text(response)
    assert role_of("maya") == Role.TEAM_LEAD
    assert list(maya.groups.values_list("name", flat=True)) == ["Team lead"]
    entry = AuditEntry.objects.get(action="user.role")
    assert (entry.actor_repr, entry.before, entry.after) == (
        "ada", {"role": "Marketer"}, {"role": "Team lead"})

    assert admin_client.post(reverse("core:user_role", args=[maya.pk]),
                             {"role": "Owner"}).status_code == 400


def test_the_last_admin_cannot_give_up_the_role(admin_client: Client, admin_user: Any) -> None:
    response = admin_client.post(reverse("core:user_role", args=[admin_user.pk]),
                                 {"role": Role.MARKETER.value}, follow=True)
    assert shown(users.LAST_ADMIN.format(name="Ada")) in text(response)
    assert role_of("ada") == Role.ADMIN
    assert 'data-testid="role-refusal"' in text(response)
    assert not AuditEntry.objects.filter(action="user.role").exists()


def test_an_admin_hands_over_and_leaves_the_page(admin_client: Client, make_user: Any,
                                                 admin_user: Any) -> None:
    make_user("bea", Role.ADMIN)
    response = admin_client.post(reverse("core:user_role", args=[admin_user.pk]),
                                 {"role": Role.TEAM_LEAD.value})
    assert response["Location"] == reverse("core:home")
    assert role_of("ada") == Role.TEAM_LEAD
    assert admin_client.get(reverse("core:users")).status_code == 403


def test_an_inactive_admin_does_not_count(admin_client: Client, make_user: Any,
                                          admin_user: Any) -> None:
    make_user("bea", Role.ADMIN, is_active=False)
    with pytest.raises(users.UserRefused, match="last active admin"):
        users.user_set_role(actor=admin_user, user=admin_user, role=Role.MARKETER)


def test_a_superusers_role_is_not_changed_here(admin_client: Client, make_user: Any) -> None:
    root = make_user("root", None, is_superuser=True)
    response = admin_client.post(reverse("core:user_role", args=[root.pk]),
                                 {"role": Role.MARKETER.value}, follow=True)
    assert shown(users.SUPERUSER_ROLE.format(name="Root")) in text(response)
    assert role_of("root") == Role.ADMIN


# --- deactivating and reactivating --------------------------------------------------------------

def test_deactivating_signs_them_out_and_keeps_them_out_until_reactivated(
    admin_client: Client, make_user: Any
) -> None:
    maya = make_user("maya", Role.MARKETER)
    theirs = Client()
    signed_in = theirs.post(reverse("login"), {"username": "maya", "password": PASSWORD})
    assert signed_in.status_code == 302
    assert theirs.get(reverse("core:home")).status_code == 200

    response = admin_client.post(reverse("core:user_deactivate", args=[maya.pk]), follow=True)
    assert shown(users.DEACTIVATED.format(name="Maya")) in text(response)
    assert 'data-testid="activate"' in text(response)
    maya.refresh_from_db()
    assert not maya.is_active
    assert theirs.get(reverse("core:home"))["Location"].startswith(reverse("login"))
    refused = Client().post(reverse("login"), {"username": "maya", "password": PASSWORD})
    assert refused.status_code == 200  # Django's ModelBackend refuses inactive users
    entry = AuditEntry.objects.get(action="user.deactivate")
    assert entry.before == {"is_active": True}
    assert entry.after == {"is_active": False, "sessions_ended": 1}

    response = admin_client.post(reverse("core:user_activate", args=[maya.pk]), follow=True)
    assert shown(users.ACTIVATED.format(name="Maya")) in text(response)
    maya.refresh_from_db()
    assert maya.is_active
    # the old session stays ended: reactivating does not sign anybody back in
    assert theirs.get(reverse("core:home")).status_code == 302
    entry = AuditEntry.objects.get(action="user.activate")
    assert (entry.before, entry.after) == ({"is_active": False}, {"is_active": True})


def test_an_admin_cannot_deactivate_themselves(admin_client: Client, admin_user: Any,
                                               make_user: Any) -> None:
    make_user("bea", Role.ADMIN)
    page = text(admin_client.get(reverse("core:user_detail", args=[admin_user.pk])))
    assert shown(users.CANNOT_DEACTIVATE_SELF) in page
    response = admin_client.post(reverse("core:user_deactivate", args=[admin_user.pk]),
                                 follow=True)
    assert shown(users.CANNOT_DEACTIVATE_SELF) in text(response)
    admin_user.refresh_from_db()
    assert admin_user.is_active
    assert not AuditEntry.objects.filter(action="user.deactivate").exists()


def test_the_last_active_admin_is_never_deactivated(admin_user: Any) -> None:
    """Whoever asks (here the system, as a management command would)."""
    with pytest.raises(users.UserRefused) as refused:
        users.user_deactivate(actor=None, user=admin_user)
    assert refused.value.message == users.LAST_ADMIN.format(name="Ada")
    admin_user.refresh_from_db()
    assert admin_user.is_active


# --- password resets -------------------------------------------------------------------------

def test_send_a_password_reset_emails_a_link_that_sets_a_new_password(
    admin_client: Client, make_user: Any
) -> None:
    maya = make_user("maya", Role.MARKETER, email="maya@example.com")
    response = admin_client.post(reverse("core:user_password_reset", args=[maya.pk]),
                                 follow=True)
    page = text(response)
    assert shown(users.RESET_CREATED.format(name="Maya")) in page
    assert shown(users.LINK_EMAILED.format(email="maya@example.com")) in page
    [email] = mail.outbox
    assert email.subject == users.RESET_SUBJECT
    link = LINK.search(str(email.body))
    assert link and link.group(0) in page
    entry = AuditEntry.objects.get(action="user.password_reset")
    assert entry.after == {"link_emailed_to": "maya@example.com", "email_failed": False}

    visitor = Client()
    form_url = visitor.get(link.group(0))["Location"]
    visitor.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    maya.refresh_from_db()
    assert maya.check_password(NEW_PASSWORD)


def test_no_reset_for_a_deactivated_user_and_their_old_link_stops_working(
    admin_client: Client, make_user: Any
) -> None:
    maya = make_user("maya", Role.MARKETER)
    admin_client.post(reverse("core:user_password_reset", args=[maya.pk]))
    link = LINK.search(text(admin_client.get(reverse("core:user_detail", args=[maya.pk]))))
    assert link
    admin_client.post(reverse("core:user_deactivate", args=[maya.pk]))
    response = admin_client.post(reverse("core:user_password_reset", args=[maya.pk]),
                                 follow=True)
    assert shown(users.INACTIVE_NO_RESET.format(name="Maya")) in text(response)
    assert shown(LINK_INVALID.format(lifetime=users.link_lifetime())) in text(
        Client().get(link.group(0)))


def test_no_audit_row_holds_a_link_token_or_password(admin_client: Client,
                                                     make_user: Any) -> None:
    link = _link_for_new_user(admin_client)
    visitor = Client()
    form_url = visitor.get(link)["Location"]
    visitor.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    nina = get_user_model().objects.get(username="nina")
    admin_client.post(reverse("core:user_password_reset", args=[nina.pk]))
    second = LINK.search(text(admin_client.get(reverse("core:user_detail", args=[nina.pk]))))
    assert second
    tokens = [url.rstrip("/").rsplit("/", 1)[1] for url in (link, second.group(0))]
    rows = json.dumps(list(AuditEntry.objects.values()), default=str)
    assert {"user.create", "user.password_set", "user.password_reset"} <= set(
        AuditEntry.objects.values_list("action", flat=True))
    for secret in (*tokens, NEW_PASSWORD, "/reset/", nina.password):
        assert secret not in rows
