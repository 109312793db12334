"""manage.py rotate_encryption_key with real Fernet keys: put a new key first, keep the old one
after it, run the command, drop the old key — the secrets still read."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import CommandError, call_command

from connections.models import Connection
from core.models import AuditEntry
from tests.connections.conftest import SECRET

pytestmark = pytest.mark.django_db

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()


def rotate_key(*args: str) -> str:
    out = StringIO()
    call_command("rotate_encryption_key", *args, stdout=out)
    return out.getvalue()


def test_rotation_leaves_every_secret_readable_with_only_the_new_key(
        settings: Any, make_connection: Any) -> None:
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    first = make_connection("First")
    second = make_connection("Second", client_secret="another-secret")
    make_connection("No secret yet", client_secret="")
    before = first.client_secret_encrypted

    settings.FIELD_ENCRYPTION_KEYS = [NEW, OLD]
    assert "Re-encrypted 2 secret(s)" in rotate_key()

    settings.FIELD_ENCRYPTION_KEYS = [NEW]
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.client_secret_encrypted != before
    assert (first.client_secret(), second.client_secret()) == (SECRET, "another-secret")
    assert Fernet(NEW.encode()).decrypt(first.client_secret_encrypted.encode()).decode() == SECRET
    with pytest.raises(InvalidToken):
        Fernet(OLD.encode()).decrypt(first.client_secret_encrypted.encode())
    assert Connection.objects.get(name="No secret yet").client_secret_encrypted == ""
    entry = AuditEntry.objects.get(action="connections.rotate_encryption_key")
    assert entry.after == {"connections": 2}


def test_without_rotation_dropping_the_old_key_loses_the_secret(
        settings: Any, make_connection: Any) -> None:
    """The reason the command exists."""
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    connection = make_connection()
    settings.FIELD_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(InvalidToken):
        connection.client_secret()


def test_a_secret_no_key_can_read_stops_the_command_and_changes_nothing(
        settings: Any, make_connection: Any) -> None:
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    readable = make_connection("Readable")
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    make_connection("Lost key")
    stored = readable.client_secret_encrypted

    settings.FIELD_ENCRYPTION_KEYS = [NEW, OLD]
    with pytest.raises(CommandError, match="'Lost key'.*Nothing was changed"):
        rotate_key()
    readable.refresh_from_db()
    assert readable.client_secret_encrypted == stored


def test_dry_run_changes_nothing_and_running_twice_is_harmless(
        settings: Any, make_connection: Any) -> None:
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    connection = make_connection()
    stored = connection.client_secret_encrypted
    settings.FIELD_ENCRYPTION_KEYS = [NEW, OLD]
    assert "1 secret(s) readable" in rotate_key("--dry-run")
    connection.refresh_from_db()
    assert connection.client_secret_encrypted == stored
    rotate_key()
    rotate_key()
    settings.FIELD_ENCRYPTION_KEYS = [NEW]
    connection.refresh_from_db()
    assert connection.client_secret() == SECRET


def test_the_help_explains_the_rotation_steps() -> None:
    from connections.management.commands.rotate_encryption_key import Command

    text = " ".join(Command.help.split())
    assert "put it first in FIELD_ENCRYPTION_KEYS and keep the old key after it" in text
    assert "drop the old key" in text
