"""The audit log: recording, masking secrets, and the admin-only page with its filters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEntry
from core.services import MASK, audit_record

pytestmark = pytest.mark.django_db


def test_audit_record_keeps_who_what_and_masks_secrets(admin_user: Any, marketer: Any) -> None:
    entry = audit_record(
        actor=admin_user, action="connection.update", obj=marketer,
        before={"name": "old", "client_secret": "s3cr3t"},
        after={"name": "new", "nested": {"api_token": "t0k3n", "scopes": ["a"]}},
    )
    entry.refresh_from_db()
    assert entry.actor == admin_user
    assert entry.actor_repr == "ada"
    assert entry.object_type == "auth.user"
    assert entry.object_id == str(marketer.pk)
    assert entry.before == {"name": "old", "client_secret": MASK}
    assert entry.after == {"name": "new", "nested": {"api_token": MASK, "scopes": ["a"]}}


def test_entry_survives_its_actor(admin_user: Any) -> None:
    entry = audit_record(actor=admin_user, action="thing.do", obj=None)
    admin_user.delete()
    entry.refresh_from_db()
    assert entry.actor is None
    assert entry.actor_repr == "ada"


def test_system_actions_have_no_actor() -> None:
    entry = audit_record(actor=None, action="system.tick", obj=None)
    assert entry.actor_repr == "system"


@pytest.fixture
def entries(admin_user: Any, marketer: Any) -> None:
    audit_record(actor=marketer, action="segment.create", obj=marketer)
    audit_record(actor=admin_user, action="connection.update", obj=admin_user)
    old = audit_record(actor=admin_user, action="segment.create", obj=None)
    AuditEntry.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))


def rows(response: Any) -> int:
    return response.content.decode().count("<tr>") - ("<thead>" in response.content.decode())


def test_audit_page_filters(client: Client, admin_user: Any, entries: None) -> None:
    client.force_login(admin_user)
    url = reverse("core:audit")
    login_entries = AuditEntry.objects.filter(action="auth.login").count()
    assert rows(client.get(url)) == 3 + login_entries
    assert rows(client.get(url, {"actor": "maya"})) == 1
    assert rows(client.get(url, {"action": "segment.create"})) == 2
    assert rows(client.get(url, {"object_type": "auth.user"})) == 2 + login_entries
    since = (timezone.now() - timedelta(days=2)).date().isoformat()
    assert rows(client.get(url, {"action": "segment.create", "date_from": since})) == 1
    assert rows(client.get(url, {"date_to": "2000-01-01"})) == 0
    assert "No entries match these filters" in client.get(url, {"actor": "zed"}).content.decode()


def test_impossible_date_is_ignored_not_an_error(client: Client, admin_user: Any) -> None:
    client.force_login(admin_user)
    assert client.get(reverse("core:audit"), {"date_from": "2026-02-30"}).status_code == 200


def test_htmx_request_gets_only_the_table(client: Client, admin_user: Any, entries: None) -> None:
    client.force_login(admin_user)
    response = client.get(reverse("core:audit"), {"actor": "maya"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="audit-table"')
    assert "<nav" not in html
    assert "segment.create" in html


@pytest.mark.parametrize("who", ["marketer", "lead"])
def test_audit_page_is_admin_only(client: Client, request: Any, who: str) -> None:
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("core:audit")).status_code == 403
    response = client.get(reverse("core:audit"), headers={"HX-Request": "true"})
    assert response.status_code == 403


def test_sign_in_is_audited(client: Client, marketer: Any) -> None:
    from tests.conftest import PASSWORD

    client.post(reverse("login"), {"username": "maya", "password": PASSWORD})
    assert AuditEntry.objects.filter(action="auth.login", actor=marketer).count() == 1
