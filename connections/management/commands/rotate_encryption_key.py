"""manage.py rotate_encryption_key: re-encrypt every stored secret under the first key."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from connections.crypto import rotate
from connections.models import Connection
from core.services import audit_record

UNREADABLE = ("Connection {name!r} (#{pk}) has a secret that none of FIELD_ENCRYPTION_KEYS can "
              "decrypt: put the key it was encrypted with back in the list (after the new one) "
              "and run the command again. Nothing was changed.")


class Command(BaseCommand):
    help = """Re-encrypt every stored connection secret under the first key of
FIELD_ENCRYPTION_KEYS. To rotate the key: (1) generate a new key, e.g.
python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())";
(2) put it first in FIELD_ENCRYPTION_KEYS and keep the old key after it
(FIELD_ENCRYPTION_KEYS=new,old) and restart web, worker and beat; (3) run this command;
(4) drop the old key (FIELD_ENCRYPTION_KEYS=new) and restart again. Safe to run twice."""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true",
                            help="check that every secret can be decrypted; change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.FIELD_ENCRYPTION_KEYS:
            raise CommandError("FIELD_ENCRYPTION_KEYS is empty.")
        with transaction.atomic():
            rows = list(Connection.objects.select_for_update().exclude(
                client_secret_encrypted="").order_by("pk"))
            rotated: list[tuple[Connection, str]] = []
            for connection in rows:
                try:
                    rotated.append((connection, rotate(connection.client_secret_encrypted)))
                except InvalidToken:
                    raise CommandError(UNREADABLE.format(name=connection.name,
                                                         pk=connection.pk)) from None
            if options["dry_run"]:
                self.stdout.write(f"{len(rotated)} secret(s) readable; nothing changed (dry run).")
                return
            for connection, token in rotated:
                Connection.objects.filter(pk=connection.pk).update(client_secret_encrypted=token)
            audit_record(actor=None, action="connections.rotate_encryption_key", obj=None,
                         after={"connections": len(rotated)})
        self.stdout.write(self.style.SUCCESS(
            f"Re-encrypted {len(rotated)} secret(s) under the first key. Once this has run, "
            "remove the old key from FIELD_ENCRYPTION_KEYS."))
