"""manage.py bootstrap: what a fresh install needs, idempotent, careful with demo users."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import override_settings

from core.models import AuditEntry
from core.roles import Role, user_role

pytestmark = pytest.mark.django_db


def bootstrap(*args: str) -> str:
    out = StringIO()
    call_command("bootstrap", *args, stdout=out)
    return out.getvalue()


def printed_passwords(output: str) -> dict[str, str]:
    return dict(re.findall(r"^\s+\S.*?\s(marketer|lead|admin)\s+(\S{12})$", output, re.M))


@override_settings(DEBUG=True)
def test_bootstrap_is_idempotent() -> None:
    first = bootstrap()
    counts = (get_user_model().objects.count(), Group.objects.count(), AuditEntry.objects.count())
    second = bootstrap()

    assert (get_user_model().objects.count(), Group.objects.count(),
            AuditEntry.objects.count()) == counts
    assert len(printed_passwords(first)) == 3
    assert printed_passwords(second) == {}, "passwords are one-time: printed only when created"
    assert sorted(Group.objects.values_list("name", flat=True)) == sorted(r.value for r in Role)


@override_settings(DEBUG=True)
def test_demo_users_get_their_roles_and_working_passwords() -> None:
    passwords = printed_passwords(bootstrap())
    expected = {"marketer": Role.MARKETER, "lead": Role.TEAM_LEAD, "admin": Role.ADMIN}
    for username, role in expected.items():
        user = authenticate(username=username, password=passwords[username])
        assert user is not None, f"{username} cannot sign in with the printed password"
        assert user_role(user) == role


@override_settings(DEBUG=True)
def test_reset_demo_passwords_prints_new_ones_that_work() -> None:
    old = printed_passwords(bootstrap())
    new = printed_passwords(bootstrap("--reset-demo-passwords"))
    assert new.keys() == old.keys()
    assert new["admin"] != old["admin"]
    assert authenticate(username="admin", password=old["admin"]) is None
    assert authenticate(username="admin", password=new["admin"]) is not None


@override_settings(DEBUG=False)
def test_no_demo_users_when_debug_is_off_unless_forced() -> None:
    output = bootstrap()
    assert "DEBUG is off" in output
    assert not get_user_model().objects.exists()
    assert Group.objects.count() == 3

    with pytest.raises(CommandError):
        bootstrap("--reset-demo-passwords")

    forced = bootstrap("--force")
    assert len(printed_passwords(forced)) == 3


def test_groups_exist_after_migrations_alone() -> None:
    assert set(Group.objects.values_list("name", flat=True)) >= {r.value for r in Role}
