"""Create what a fresh install needs. Safe to run any number of times."""

from __future__ import annotations

import json
import secrets
from io import StringIO
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from connections.models import Connection, ConnectionKind
from connections.services import connection_create, connection_update
from core.roles import ROLE_ORDER, Role
from core.services import audit_record

# The built-in engine's connection. Its sandbox is the one `generate_demo` fills (the engine's
# DEFAULT_SANDBOX, "prod"); "dev" is an empty one to try things in. No dashboard module imports
# the engine: its API client is made through the engine's create_api_client command.
BUILTIN_NAME = "Built-in engine"
BUILTIN_ORG = "SEGMENTSTUDIO@AdobeOrg"
BUILTIN_SANDBOXES = ["prod", "dev"]
BUILTIN_CLIENT_NAME = "Segment Studio dashboard"

DEMO_USERS = (
    ("marketer", "Maya", "Marketer", Role.MARKETER),
    ("lead", "Leo", "Lead", Role.TEAM_LEAD),
    ("admin", "Ada", "Admin", Role.ADMIN),
)
REFUSE_DEMO_USERS = (
    "DEBUG is off: demo users with printed passwords don't belong on a real install. "
    "Run with --force to create them anyway, or create real users with createsuperuser."
)


class Command(BaseCommand):
    help = ("Create roles, folders, the built-in engine connection (with its engine API client) "
            "and, in DEBUG, one demo user per role. Idempotent.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true",
                            help="create demo users even when DEBUG is off")
        parser.add_argument("--no-demo-users", action="store_true",
                            help="skip demo users")
        parser.add_argument("--reset-demo-passwords", action="store_true",
                            help="give the demo users new one-time passwords and print them")

    def handle(self, *args: Any, **options: Any) -> None:
        for folder in (settings.VAR_DIR, settings.ENGINE_DATA_DIR):
            folder.mkdir(parents=True, exist_ok=True)
        with transaction.atomic():
            for role in ROLE_ORDER:
                Group.objects.get_or_create(name=role.value)
        self.stdout.write("Roles ready: " + ", ".join(role.value for role in ROLE_ORDER))
        self._builtin_connection()

        if options["no_demo_users"]:
            return
        if not settings.DEBUG and not options["force"]:
            if options["reset_demo_passwords"]:
                raise CommandError(REFUSE_DEMO_USERS)
            self.stdout.write(REFUSE_DEMO_USERS)
            return
        self._demo_users(reset=options["reset_demo_passwords"])

    @transaction.atomic
    def _builtin_connection(self) -> None:
        """The "Built-in engine" connection with an engine API client of its own; afterwards
        only its URLs follow settings.BUILTIN_ENGINE_URL (the secret is never replaced)."""
        url = settings.BUILTIN_ENGINE_URL
        connection = (Connection.objects.filter(name=BUILTIN_NAME).first()
                      or Connection.objects.filter(kind=ConnectionKind.BUILTIN,
                                                   org_id=BUILTIN_ORG).order_by("pk").first())
        if connection is not None and connection.has_secret:
            if (connection.base_url, connection.ims_url) != (url, url):
                self.stdout.write(f"Built-in engine connection moved from {connection.base_url} "
                                  f"to BUILTIN_ENGINE_URL={url}")
                connection_update(actor=None, connection=connection, base_url=url, ims_url=url)
            self.stdout.write(f"Built-in engine connection ready at {url}")
            return
        out = StringIO()
        args = ["--name", BUILTIN_CLIENT_NAME, "--org", BUILTIN_ORG, "--json"]
        for sandbox in BUILTIN_SANDBOXES:
            args += ["--sandbox", sandbox]
        try:
            call_command("create_api_client", *args, stdout=out)
        except CommandError as error:  # the engine app is not installed in this deployment
            self.stdout.write(f"No built-in engine connection: {error}")
            return
        created = json.loads(out.getvalue())
        if connection is None:
            connection_create(
                actor=None, name=BUILTIN_NAME, kind=ConnectionKind.BUILTIN, base_url=url,
                ims_url=url, org_id=BUILTIN_ORG, client_id=created["client_id"],
                client_secret=created["client_secret"], default_sandbox=BUILTIN_SANDBOXES[0],
                sandboxes=BUILTIN_SANDBOXES)
        else:
            connection_update(actor=None, connection=connection, base_url=url, ims_url=url,
                              client_id=created["client_id"],
                              client_secret=created["client_secret"])
        self.stdout.write(f"Built-in engine connection created at {url} "
                          f"(org {BUILTIN_ORG}, sandboxes {', '.join(BUILTIN_SANDBOXES)})")

    @transaction.atomic
    def _demo_users(self, *, reset: bool) -> None:
        user_model = get_user_model()
        lines = []
        for username, first, last, role in DEMO_USERS:
            user = user_model.objects.filter(username=username).first()
            password = None
            if user is None:
                password = secrets.token_urlsafe(9)
                user = user_model.objects.create_user(
                    username=username, password=password, first_name=first, last_name=last,
                    email=f"{username}@example.com",
                )
                if role is Role.ADMIN:  # the admin manages users in Django's admin site
                    user.is_staff = user.is_superuser = True
                    user.save(update_fields=["is_staff", "is_superuser"])
                audit_record(actor=None, action="user.create_demo", obj=user,
                             after={"username": username, "role": role.value})
            elif reset:
                password = secrets.token_urlsafe(9)
                user.set_password(password)
                user.save(update_fields=["password"])
                audit_record(actor=None, action="user.reset_demo_password", obj=user)
            user.groups.add(Group.objects.get(name=role.value))
            shown = password or "(unchanged: shown when created; --reset-demo-passwords for new)"
            lines.append(f"  {role.value:<10} {username:<9} {shown}")
        self.stdout.write("Demo logins (one-time passwords, printed only now):")
        self.stdout.write("\n".join(lines))
