"""Ingestion: files of XDM records → one Catalog batch of Parquet, all or nothing."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from django.db import transaction
from django.utils import timezone

from engine import xdm
from engine.models import Batch, BatchStatus, Dataset, XdmClass
from engine.readers import ReadError, read_records
from engine.storage import batch_dir

logger = logging.getLogger(__name__)

# A batch fails whole when more than this share of its records is bad.
DEFAULT_MAX_ERROR_RATIO = 0.10
KEEP_ERRORS = 100  # errors kept on the batch row; error_count has them all
ROWS_PER_GROUP = 50_000
IDENTITIES_COLUMN = "_studio_identities"
IDENTITIES_TREE: xdm.Tree = {
    "type": "array",
    "items": {"type": "object", "fields": {
        "namespace": {"type": "string"}, "id": {"type": "string"},
        "primary": {"type": "boolean"}, "authenticatedState": {"type": "string"},
    }},
}

NO_IDENTITY = "has no identity: put at least one in identityMap (namespace → [{id, primary}])"
NO_TIMESTAMP = "has no valid timestamp: an ExperienceEvent needs an ISO-8601 timestamp"
NO_RECORDS = "The files hold no records."
TOO_MANY_ERRORS = "{errors} of {total} records are bad (more than {limit:.0%}); nothing was loaded."


@dataclass
class IngestErrors:
    count: int = 0
    kept: list[dict[str, Any]] = field(default_factory=list)

    def add(self, file: str, line: int, reason: str) -> None:
        self.count += 1
        if len(self.kept) < KEEP_ERRORS:
            self.kept.append({"file": file, "line": line, "reason": reason})


def dataset_get_or_create(*, sandbox: str, name: str, xdm_class: str,
                          union_persisting: bool = False) -> Dataset:
    dataset, created = Dataset.objects.get_or_create(
        sandbox=sandbox, name=name,
        defaults={"xdm_class": xdm_class, "union_persisting": union_persisting},
    )
    if not created and dataset.xdm_class != xdm_class:
        raise ValueError(f"Dataset {name} holds {dataset.get_xdm_class_display()} records, "
                         f"not {XdmClass(xdm_class).label}.")
    return dataset


def _validate(record: dict[str, Any], xdm_class: str) -> tuple[list[xdm.Identity], str | None]:
    identities = xdm.identities_of(record)
    if not identities:
        return identities, NO_IDENTITY
    if xdm_class == XdmClass.EVENT:
        stamp = record.get("timestamp")
        parsed = xdm.parse_datetime(stamp) if isinstance(stamp, str) else None
        if parsed is None and not hasattr(stamp, "year"):
            return identities, NO_TIMESTAMP
    return identities, None


def batch_ingest(*, dataset: Dataset, paths: Sequence[Path],
                 max_error_ratio: float = DEFAULT_MAX_ERROR_RATIO) -> Batch:
    """Read, check and write `paths` as one batch of `dataset`.

    Every bad record is counted and reported with its file, line and reason. If more than
    `max_error_ratio` of the records are bad the batch fails whole and writes nothing;
    otherwise the good records are written and the bad ones stay listed on the batch.
    """
    batch = Batch.objects.create(dataset=dataset, source_files=[p.name for p in paths])
    errors = IngestErrors()
    good: list[tuple[str, int, dict[str, Any], list[xdm.Identity]]] = []
    try:
        for path in paths:
            for line, item in read_records(path):
                if isinstance(item, ReadError):
                    errors.add(path.name, line, item.reason)
                    continue
                identities, problem = _validate(item, dataset.xdm_class)
                if problem:
                    errors.add(path.name, line, problem)
                    continue
                good.append((path.name, line, item, identities))
    except (OSError, ValueError) as error:
        return _fail(batch, errors, f"Cannot read the files: {error}")

    tree = xdm.infer_all((record for _, _, record, _ in good), start=dataset.schema or None)
    tree = xdm.prune(tree) or {"type": "object", "fields": {}}
    rows: list[dict[str, Any]] = []
    for name, line, record, identities in good:
        try:
            row = xdm.conform(record, tree, "")
        except xdm.ConformError as error:
            errors.add(name, line, str(error))
            continue
        row[IDENTITIES_COLUMN] = [
            {"namespace": i.namespace, "id": i.id, "primary": i.primary,
             "authenticatedState": i.authenticated_state} for i in identities
        ]
        rows.append(row)

    total = len(rows) + errors.count
    if total == 0:
        return _fail(batch, errors, NO_RECORDS)
    if errors.count / total > max_error_ratio:
        return _fail(batch, errors, TOO_MANY_ERRORS.format(
            errors=errors.count, total=total, limit=max_error_ratio))

    files = _write_parquet(dataset, batch, rows, tree)
    with transaction.atomic():
        batch.status = BatchStatus.SUCCESS
        batch.record_count = len(rows)
        batch.error_count = errors.count
        batch.errors = errors.kept
        batch.files = files
        batch.completed_at = timezone.now()
        batch.save()
        dataset.schema = tree
        dataset.save(update_fields=["schema", "updated_at"])
    logger.info("batch %s: %d records into %s, %d bad", batch.id, len(rows), dataset, errors.count)
    return batch


def _fail(batch: Batch, errors: IngestErrors, reason: str) -> Batch:
    batch.status = BatchStatus.FAILED
    batch.error_count = errors.count
    batch.errors = errors.kept
    batch.failure_reason = reason
    batch.completed_at = timezone.now()
    batch.save()
    logger.warning("batch %s failed: %s", batch.id, reason)
    return batch


def _write_parquet(dataset: Dataset, batch: Batch, rows: list[dict[str, Any]],
                   tree: xdm.Tree) -> list[dict[str, Any]]:
    """Write into a temporary folder and rename it into place: a batch folder is whole or absent."""
    schema = xdm.arrow_schema(tree).append(
        pa.field(IDENTITIES_COLUMN, xdm.arrow_type(IDENTITIES_TREE)))
    final = batch_dir(dataset.sandbox, dataset.id, batch.id)
    staging = final.with_name(f".{batch.id}.staging")
    staging.mkdir(parents=True, exist_ok=True)
    try:
        name = "part-00000.parquet"
        with pq.ParquetWriter(staging / name, schema, compression="zstd") as writer:
            for start in range(0, len(rows), ROWS_PER_GROUP):
                chunk = rows[start:start + ROWS_PER_GROUP]
                writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [{"name": name, "size": (final / name).stat().st_size, "records": len(rows)}]


def batch_path(batch: Batch) -> Path:
    return batch_dir(batch.dataset.sandbox, batch.dataset_id, batch.id)
