"""manage.py ingest --sandbox prod --dataset NAME --class profile|event FILE...

The batch (and the dataset, when it is new) is recorded only once it is written: a command
killed midway leaves nothing listed — no ``loading`` batch, no empty dataset — and the next
ingestion into the sandbox removes the files it left (engine.ingest.dataset_ingest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from engine.ingest import DEFAULT_MAX_ERROR_RATIO, dataset_ingest
from engine.models import DEFAULT_SANDBOX, BatchStatus, XdmClass
from engine.snapshot import snapshot_build


class Command(BaseCommand):
    help = ("Ingest XDM records (JSON, JSON Lines, CSV with dotted headers, Parquet; .gz too) "
            "into a dataset as one batch, then rebuild the query snapshot.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--sandbox", default=DEFAULT_SANDBOX)
        parser.add_argument("--dataset", required=True, help="dataset name (created if new)")
        parser.add_argument("--class", dest="xdm_class", required=True,
                            choices=[c.value for c in XdmClass])
        parser.add_argument("--max-errors", type=float, default=DEFAULT_MAX_ERROR_RATIO * 100,
                            help="percentage of bad records that fails the batch (default 10)")
        parser.add_argument("--no-snapshot", action="store_true",
                            help="don't rebuild the query snapshot afterwards")

    def handle(self, *args: Any, **options: Any) -> None:
        files: list[Path] = options["files"]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise CommandError(f"No such file: {', '.join(missing)}")
        try:
            batch = dataset_ingest(sandbox=options["sandbox"], name=options["dataset"],
                                   xdm_class=options["xdm_class"], paths=files,
                                   max_error_ratio=options["max_errors"] / 100)
        except ValueError as error:
            raise CommandError(str(error)) from error
        dataset = batch.dataset
        for problem in batch.errors:
            self.stderr.write(f"  {problem['file']}, line {problem['line']}: {problem['reason']}")
        if batch.error_count > len(batch.errors):
            self.stderr.write(f"  … and {batch.error_count - len(batch.errors)} more")
        if batch.status == BatchStatus.FAILED:
            raise CommandError(f"Batch {batch.id} failed: {batch.failure_reason}")
        self.stdout.write(self.style.SUCCESS(
            f"Batch {batch.id}: {batch.record_count:,} records into {dataset.name} "
            f"({batch.error_count:,} bad)."))
        if not options["no_snapshot"]:
            snapshot = snapshot_build(sandbox=options["sandbox"])
            self.stdout.write(f"Snapshot {snapshot.file_name}: {snapshot.stats}")
