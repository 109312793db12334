"""manage.py generate_demo --profiles N --seed S: demo CRM, loyalty and web/commerce data."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from engine.demo import generate
from engine.ingest import dataset_ingest
from engine.models import DEFAULT_SANDBOX, BatchStatus, Dataset, XdmClass
from engine.snapshot import snapshot_build

DATASETS = (
    ("CRM profiles", XdmClass.PROFILE, "crm"),
    ("Loyalty members", XdmClass.PROFILE, "loyalty"),
    ("Web and commerce events", XdmClass.EVENT, "events"),
)


class Command(BaseCommand):
    help = ("Generate realistic XDM demo data (deterministic by seed and end date), ingest it "
            "and build the query snapshot.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--profiles", type=int, default=2_000)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--sandbox", default=DEFAULT_SANDBOX)
        parser.add_argument("--end", help="last day of events, YYYY-MM-DD (default: today, UTC)")
        parser.add_argument("--output", type=Path,
                            help="only write the Parquet files into this folder")
        parser.add_argument("--if-empty", action="store_true",
                            help="do nothing when the sandbox already has datasets")

    def handle(self, *args: Any, **options: Any) -> None:
        sandbox = options["sandbox"]
        if options["if_empty"] and Dataset.objects.in_sandbox(sandbox).exists():
            self.stdout.write(f"Sandbox {sandbox} already has data; no demo data added.")
            return
        end = None
        if options["end"]:
            try:
                end = datetime.fromisoformat(options["end"]).replace(tzinfo=UTC)
            except ValueError as error:
                raise CommandError(f"--end must be YYYY-MM-DD: {error}") from error
        started = time.monotonic()
        if options["output"]:
            files = generate(profiles=options["profiles"], seed=options["seed"],
                             out=options["output"], end=end)
            self.stdout.write(f"Wrote {files.profiles:,} CRM profiles, {files.loyalty_members:,} "
                              f"loyalty members and {files.events_count:,} events into "
                              f"{options['output']}.")
            return
        with tempfile.TemporaryDirectory(prefix="studio-demo-") as folder:
            files = generate(profiles=options["profiles"], seed=options["seed"],
                             out=Path(folder), end=end)
            paths = {"crm": files.crm, "loyalty": files.loyalty, "events": files.events}
            for name, xdm_class, key in DATASETS:
                # recorded once written: a run killed midway leaves no empty dataset behind
                batch = dataset_ingest(sandbox=sandbox, name=name, xdm_class=xdm_class,
                                       paths=[paths[key]])
                if batch.status != BatchStatus.SUCCESS:
                    raise CommandError(f"{name}: {batch.failure_reason}")
                self.stdout.write(f"  {name}: {batch.record_count:,} records")
        snapshot = snapshot_build(sandbox=sandbox)
        profiles = next(iter(snapshot.stats["profiles"].values()), 0)
        self.stdout.write(self.style.SUCCESS(
            f"Demo data ready in {time.monotonic() - started:.1f}s: {profiles:,} merged profiles, "
            f"{snapshot.stats['events']:,} events in sandbox {sandbox}."))
