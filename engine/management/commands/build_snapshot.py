"""manage.py build_snapshot --sandbox prod: rebuild the query snapshot from every batch."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from engine.models import DEFAULT_SANDBOX
from engine.snapshot import snapshot_build


class Command(BaseCommand):
    help = "Rebuild a sandbox's query snapshot and switch readers to it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sandbox", default=DEFAULT_SANDBOX)
        parser.add_argument("--memory-limit", help="DuckDB memory limit (ENGINE_MEMORY_LIMIT)")

    def handle(self, *args: Any, **options: Any) -> None:
        snapshot = snapshot_build(sandbox=options["sandbox"],
                                  memory_limit=options["memory_limit"])
        self.stdout.write(self.style.SUCCESS(f"Snapshot {snapshot.file_name} is current."))
        self.stdout.write(str(snapshot.stats))
