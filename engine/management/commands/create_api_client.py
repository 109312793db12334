"""manage.py create_api_client --name N --org ORG@AdobeOrg --sandbox prod [--sandbox dev] [--json].

--json prints one line, {"client_id": ..., "client_secret": ...}, for a program that calls this
command in-process (bootstrap's built-in connection): the secret then travels through the
command's stdout object, never through argv or the environment."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from engine.api.auth import SANDBOX_NAME_RE
from engine.api.services import api_client_create


class Command(BaseCommand):
    help = "Create an API client of the engine's REST API; prints its id and one-time secret."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--org", required=True, help="IMS org id, e.g. ABC123@AdobeOrg")
        parser.add_argument("--sandbox", action="append", required=True, dest="sandboxes",
                            help="a sandbox the client may use (repeat for more)")
        parser.add_argument("--json", action="store_true",
                            help='print {"client_id": ..., "client_secret": ...} on one line')

    def handle(self, *args: Any, **options: Any) -> None:
        sandboxes = list(dict.fromkeys(options["sandboxes"]))
        if bad := [name for name in sandboxes if not SANDBOX_NAME_RE.match(name)]:
            raise CommandError(f"Not a sandbox name: {', '.join(bad)}")
        client, secret = api_client_create(name=options["name"], org_id=options["org"],
                                           sandboxes=sandboxes)
        if options["json"]:
            self.stdout.write(json.dumps({"client_id": client.client_id, "client_secret": secret}))
            return
        self.stdout.write(f"client_id: {client.client_id}")
        self.stdout.write(f"client_secret: {secret}")
        self.stdout.write(self.style.WARNING("The secret is shown once; store it now."))
