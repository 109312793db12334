"""Ingestion: files of XDM records → one Catalog batch of Parquet, all or nothing.

``batch_ingest`` and ``dataset_ingest`` (manage.py ingest, generate_demo) write a batch's row
only when it is done, success or failed, with the dataset in the same transaction when it is
new: a process killed meanwhile leaves no ``loading`` batch and no empty dataset, only files
nobody lists (a staging folder, a folder of a dataset never recorded), which the next
ingestion into the sandbox removes. The Batch Ingestion API's batches have their row from the
start (the files arrive before the work); a worker runs them (engine.batches).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from engine import xdm
from engine.duck import scalar, sql_string
from engine.models import Batch, BatchStatus, Dataset, XdmClass
from engine.readers import ReadError, detect_format, read_records
from engine.runs import Run, pause
from engine.storage import FolderBusy, batch_dir, dataset_dir, folder_lock, sandbox_dir

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
CANNOT_READ = "Cannot read the files: {error}"
NOT_FITTING = "The files do not fit the dataset's schema: {error}"
TOO_MANY_ERRORS = "{errors} of {total} records are bad (more than {limit:.0%}); nothing was loaded."
DATASET_DELETED = "The dataset {id} was deleted before its batch was loaded."


class DatasetDeleted(LookupError):
    """The batch's dataset (and so the batch) was deleted before it could be loaded."""


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
        raise ValueError(_class_mismatch(dataset, xdm_class))
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
    """Read, check and write `paths` as one new batch of `dataset` (see batch_load); each file's
    format is told by its name, or sniffed. The batch's row is written when it is done (and
    `dataset` with it, if it is not saved yet): nothing half-made is ever listed."""
    batch = Batch(dataset=dataset, source_files=[p.name for p in paths],
                  size=sum(p.stat().st_size for p in paths if p.is_file()))
    new_dataset = dataset._state.adding
    try:
        with folder_lock(dataset_dir(dataset.sandbox, dataset.id)) as folder:
            if not new_dataset:
                current = Dataset.objects.filter(pk=dataset.pk).first()
                if current is None:
                    shutil.rmtree(folder, ignore_errors=True)
                    raise DatasetDeleted(DATASET_DELETED.format(id=dataset.id))
                batch.dataset = dataset = current  # the schema the previous batch left
            _remove_leftovers(folder, dataset.id)
            return _load(dataset, batch, paths, None, max_error_ratio, None)
    except BaseException:
        if new_dataset and dataset._state.adding:  # never recorded: its folder is nobody's
            shutil.rmtree(dataset_dir(dataset.sandbox, dataset.id), ignore_errors=True)
        raise


def dataset_ingest(*, sandbox: str, name: str, xdm_class: str, paths: Sequence[Path],
                   max_error_ratio: float = DEFAULT_MAX_ERROR_RATIO) -> Batch:
    """`paths` as one new batch of the dataset `name`, which is created with the batch if it
    does not exist yet (so an interrupted first ingestion leaves no empty dataset). Folders
    of datasets an interrupted ingestion never recorded are removed first."""
    dataset = Dataset.objects.filter(sandbox=sandbox, name=name).first()
    if dataset is None:
        dataset = Dataset(sandbox=sandbox, name=name, xdm_class=xdm_class)
    elif dataset.xdm_class != xdm_class:
        raise ValueError(_class_mismatch(dataset, xdm_class))
    _remove_unrecorded_datasets(sandbox)
    return batch_ingest(dataset=dataset, paths=paths, max_error_ratio=max_error_ratio)


def _class_mismatch(dataset: Dataset, xdm_class: str) -> str:
    return (f"Dataset {dataset.name} holds {dataset.get_xdm_class_display()} records, "
            f"not {XdmClass(xdm_class).label}.")


def _remove_leftovers(folder: Path, dataset_id: str) -> None:
    """What interrupted writers left in a dataset's folder: staging folders, DuckDB's spill
    folder, and batch folders of no successful batch. Called under the folder's exclusive
    lock, which no writer of the dataset holds at the same time (ingestion takes it, exports
    a shared one)."""
    kept = {str(key) for key in Batch.objects.filter(
        dataset_id=dataset_id, status=BatchStatus.SUCCESS).values_list("id", flat=True)}
    for entry in folder.iterdir():
        if entry.name == ".lock" or entry.name in kept or not entry.is_dir():
            continue
        logger.warning("removing %s, left by an interrupted writer", entry)
        shutil.rmtree(entry, ignore_errors=True)


def _remove_unrecorded_datasets(sandbox: str) -> None:
    """Folders of datasets that have no row (an ingestion of a new dataset was killed), older
    than ENGINE_JOB_STALE_SECONDS and locked by nobody."""
    root = sandbox_dir(sandbox) / "datasets"
    if not root.is_dir():
        return
    known = set(Dataset.objects.in_sandbox(sandbox).values_list("id", flat=True))
    old = time.time() - settings.ENGINE_JOB_STALE_SECONDS
    for folder in root.iterdir():
        if folder.name in known or not folder.is_dir() or folder.stat().st_mtime > old:
            continue
        try:
            with folder_lock(folder, wait=False):
                if not Dataset.objects.filter(pk=folder.name).exists():
                    logger.warning("removing %s, the folder of a dataset never recorded", folder)
                    shutil.rmtree(folder, ignore_errors=True)
        except FolderBusy:
            continue


FINISHED = (BatchStatus.SUCCESS, BatchStatus.FAILED)


def batch_load(*, batch: Batch, paths: Sequence[Path], formats: Sequence[str] | None = None,
               max_error_ratio: float = DEFAULT_MAX_ERROR_RATIO, run: Run | None = None
               ) -> Batch:
    """Read, check and write `paths` into `batch`, a row not finished yet (the Batch Ingestion
    API's files arrive before the work starts), and mark it success or failed.

    `formats` names each file's reader (engine.readers.FORMATS); without it the file names tell.
    Every bad record is counted and reported with its file, line and reason. If more than
    `max_error_ratio` of the records are bad the batch fails whole and writes nothing;
    otherwise the good records are written and the bad ones stay listed on the batch.

    Parquet files whose types already say what XDM means (identityMap a map, timestamps
    typed) are checked and copied by DuckDB without a Python loop per record; everything else
    is read row by row.

    One batch of a dataset is loaded at a time (a lock on its folder), each starting from the
    schema the previous one left: two workers widening the schema at once would lose fields.
    A dataset deleted meanwhile (engine.api.services_jobs.dataset_delete, under the same lock)
    gets nothing written: DatasetDeleted, and the folder the lock made again is removed.

    `run` is the worker's hold on the batch (engine.batches): the outcome is written only while
    the batch is still its own (else Superseded, and nothing is written).
    """
    with folder_lock(dataset_dir(batch.dataset.sandbox, batch.dataset_id)) as folder:
        dataset = Dataset.objects.filter(pk=batch.dataset_id).first()
        if dataset is None:
            shutil.rmtree(folder, ignore_errors=True)
        current = Batch.objects.filter(pk=batch.pk).first()
        if dataset is None or current is None:
            raise DatasetDeleted(DATASET_DELETED.format(id=batch.dataset_id))
        if current.status in FINISHED:  # another run (a redelivered task) finished it first
            return current
        batch.dataset = dataset
        _remove_leftovers(folder, dataset.id)
        return _load(dataset, batch, paths, formats, max_error_ratio, run)


def _progress(run: Run | None) -> None:
    """A progress point of the load: the run's check (a beat), or only the tests' pause."""
    if run is not None:
        run.check("ingest-write")
    else:
        pause("ingest-write")


def _load(dataset: Dataset, batch: Batch, paths: Sequence[Path],
          formats: Sequence[str] | None, max_error_ratio: float, run: Run | None) -> Batch:
    errors = IngestErrors()
    try:
        sources = list(zip(paths, formats or [detect_format(p) for p in paths], strict=True))
        native = _native_plan(dataset, sources)
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        return _fail(batch, errors, CANNOT_READ.format(error=_named(error, paths)), run)
    if native is not None:
        return _ingest_native(dataset, batch, native, max_error_ratio, run)
    good: list[tuple[str, int, dict[str, Any], list[xdm.Identity]]] = []
    try:
        for path, fmt in sources:
            for line, item in read_records(path, fmt):
                if isinstance(item, ReadError):
                    errors.add(path.name, line, item.reason)
                    continue
                identities, problem = _validate(item, dataset.xdm_class)
                if problem:
                    errors.add(path.name, line, problem)
                    continue
                good.append((path.name, line, item, identities))
    except (OSError, ValueError) as error:
        return _fail(batch, errors, CANNOT_READ.format(error=_named(error, paths)), run)

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
        return _fail(batch, errors, NO_RECORDS, run)
    if errors.count / total > max_error_ratio:
        return _fail(batch, errors, TOO_MANY_ERRORS.format(
            errors=errors.count, total=total, limit=max_error_ratio), run)

    files = _write_parquet(dataset, batch, rows, tree, run)
    return _succeed(batch, dataset, errors, files, tree, run)


# What a batch's outcome changes on its row (the worker's claim and heartbeat are not written).
OUTCOME_FIELDS = ["status", "record_count", "error_count", "errors", "files", "failure_reason",
                  "completed_at", "updated_at"]


def _record(batch: Batch, run: Run | None) -> None:
    """Write the batch's outcome, in the caller's transaction: a new row (with its dataset if
    that is new too), or the existing one if it is still the run's (else Superseded)."""
    if run is not None:
        run.beat()
    if batch.dataset._state.adding:
        batch.dataset.save(force_insert=True)
    if batch._state.adding:
        batch.save(force_insert=True)
    else:
        batch.save(update_fields=OUTCOME_FIELDS)  # a deleted row is not inserted again


def _succeed(batch: Batch, dataset: Dataset, errors: IngestErrors, files: list[dict[str, Any]],
             tree: xdm.Tree, run: Run | None) -> Batch:
    """Record the written batch and widen the dataset's schema to what it now holds."""
    with transaction.atomic():
        batch.status = BatchStatus.SUCCESS
        batch.record_count = sum(item["records"] for item in files)
        batch.error_count = errors.count
        batch.errors = errors.kept
        batch.files = files
        batch.completed_at = timezone.now()
        dataset.schema = tree
        if not dataset._state.adding:
            dataset.save(update_fields=["schema", "updated_at"])
        _record(batch, run)
    logger.info("batch %s: %d records into %s, %d bad", batch.id, batch.record_count, dataset,
                errors.count)
    return batch


def _named(error: Exception, paths: Sequence[Path]) -> str:
    """The error's text with the files named as sent: the batch's errors are shown to API
    clients, who have no business knowing the engine's folders."""
    text = str(error)
    for path in paths:
        text = text.replace(str(path), path.name)
    return text


def batch_fail(*, batch: Batch, reason: str, run: Run | None = None) -> Batch:
    """Mark an unfinished batch failed for `reason`, before any record was read. A batch that
    another run (a redelivered task) has finished meanwhile is left as that run left it."""
    current = Batch.objects.filter(pk=batch.pk).first()
    if current is not None and current.status in FINISHED:
        return current
    return _fail(batch, IngestErrors(), reason, run)


def _fail(batch: Batch, errors: IngestErrors, reason: str, run: Run | None) -> Batch:
    batch.status = BatchStatus.FAILED
    batch.error_count = errors.count
    batch.errors = errors.kept
    batch.failure_reason = reason
    batch.completed_at = timezone.now()
    with transaction.atomic():
        _record(batch, run)
    logger.warning("batch %s failed: %s", batch.id, reason)
    return batch


def _write_parquet(dataset: Dataset, batch: Batch, rows: list[dict[str, Any]],
                   tree: xdm.Tree, run: Run | None) -> list[dict[str, Any]]:
    """Write into a temporary folder and rename it into place: a batch folder is whole or absent."""
    schema = xdm.arrow_schema(tree).append(
        pa.field(IDENTITIES_COLUMN, xdm.arrow_type(IDENTITIES_TREE)))
    final = batch_dir(dataset.sandbox, dataset.id, batch.id)
    staging = _staging(final)
    try:
        _progress(run)
        name = "part-00000.parquet"
        with pq.ParquetWriter(staging / name, schema, compression="zstd") as writer:
            for start in range(0, len(rows), ROWS_PER_GROUP):
                chunk = rows[start:start + ROWS_PER_GROUP]
                writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
        _place(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [{"name": name, "size": (final / name).stat().st_size, "records": len(rows)}]


def _staging(final: Path) -> Path:
    """An empty staging folder next to the batch folder `final` (emptied: a worker that died
    mid-batch may have left one, and its task is delivered again)."""
    staging = final.with_name(f".{final.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def _place(staging: Path, final: Path) -> None:
    """Rename the staging folder into place. A batch folder there already is a leftover of a
    worker that died before recording the batch (the row is not finished), so it goes."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)


def batch_path(batch: Batch) -> Path:
    return batch_dir(batch.dataset.sandbox, batch.dataset_id, batch.id)


# --- Parquet, natively ------------------------------------------------------------------------

def _native_plan(dataset: Dataset,
                 files: Sequence[tuple[Path, str]]) -> list[tuple[Path, xdm.Tree]] | None:
    plan = []
    for path, fmt in files:
        if fmt != "parquet":
            return None
        try:
            tree = xdm.tree_from_arrow(pq.read_schema(path))
        except (OSError, ValueError) as error:  # not Parquet: say which file
            raise ValueError(f"{path.name}: {error}") from error
        if tree is None:
            return None
        fields = tree["fields"]
        identity_map = fields.get("identityMap")
        if identity_map is not None and _identity_sql_parts(identity_map) is None:
            return None  # e.g. identityMap as a struct: the row path reads it as a map
        if dataset.xdm_class == XdmClass.EVENT and fields.get("timestamp", {}).get("type") not in (
                "date-time", None):
            return None
        plan.append((path, tree))
    return plan


def _identity_sql_parts(tree: xdm.Tree) -> tuple[str, str] | None:
    """(primary expression, authenticatedState expression) for identityMap items, if usable."""
    if tree.get("type") != "map" or tree["values"].get("type") != "array":
        return None
    item = tree["values"]["items"]
    if item.get("type") != "object" or "id" not in item["fields"]:
        return None
    primary = 'coalesce(i."primary", false)' if "primary" in item["fields"] else "false"
    state = "i.authenticatedState" if "authenticatedState" in item["fields"] else "NULL"
    return primary, state


def _identities_sql(tree: xdm.Tree) -> str:
    """SQL for the _studio_identities list of a row, as identities_of computes it in Python."""
    fields = tree["fields"]
    parts = []
    identity_map = fields.get("identityMap")
    if identity_map is not None and (found := _identity_sql_parts(identity_map)):
        primary, state = found
        parts.append(
            "flatten(list_transform(map_entries(\"identityMap\"), lambda e: list_transform(e.value,"
            f" lambda i: {{'namespace': e.key, 'id': i.id::VARCHAR, 'primary': {primary},"
            f" 'authenticatedState': {state}::VARCHAR}})))"
        )
    experience = (fields.get("endUserIDs", {}).get("fields", {}).get("_experience", {})
                  .get("fields", {}))
    end_users = []
    for name, sub in experience.items():
        sub_fields = sub.get("fields", {})
        namespace = sub_fields.get("namespace", {})
        if "id" not in sub_fields or "code" not in namespace.get("fields", {}):
            continue
        base = f'"endUserIDs"."_experience".{xdm.quote_identifier(name)}'
        primary = f"coalesce({base}.\"primary\", false)" if "primary" in sub_fields else "false"
        state = f"{base}.authenticatedState" if "authenticatedState" in sub_fields else "NULL"
        end_users.append(
            f"{{'namespace': {base}.namespace.code::VARCHAR, 'id': {base}.id::VARCHAR,"
            f" 'primary': {primary}, 'authenticatedState': {state}::VARCHAR}}"
        )
    if end_users:
        parts.append(f"[{', '.join(end_users)}]")
    if not parts:
        return f"[]::{xdm.duckdb_type(IDENTITIES_TREE)}"
    valid = "lambda x: x.id IS NOT NULL AND x.id <> '' AND x.namespace IS NOT NULL"
    filtered = [f"list_filter({part}, {valid})" for part in parts]
    expr = filtered[0]
    for other in filtered[1:]:  # identityMap first, else the endUserIDs (as identities_of)
        expr = f"CASE WHEN len({expr}) > 0 THEN {expr} ELSE {other} END"
    return f"CAST({expr} AS {xdm.duckdb_type(IDENTITIES_TREE)})"


def _ingest_native(dataset: Dataset, batch: Batch, plan: list[tuple[Path, xdm.Tree]],
                   max_error_ratio: float, run: Run | None) -> Batch:
    """One pass per file: DuckDB copies the good rows into the staging folder and counts them;
    the bad rows are read again (for their line numbers) only when there are some."""
    errors = IngestErrors()
    tree: xdm.Tree = dataset.schema or {"type": "object", "fields": {}}
    for _, file_tree in plan:
        tree = xdm.merge(tree, file_tree)
    tree = xdm.prune(tree) or {"type": "object", "fields": {}}
    final = batch_dir(dataset.sandbox, dataset.id, batch.id)
    staging = _staging(final)
    con = duckdb.connect()
    files = []
    total = 0
    try:
        _progress(run)
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET memory_limit = {sql_string(settings.ENGINE_MEMORY_LIMIT)}")
        con.execute(f"SET temp_directory = {sql_string(str(staging.parent / '.tmp'))}")
        for index, (path, file_tree) in enumerate(plan):
            source = f"read_parquet({sql_string(str(path))}, file_row_number = true)"
            identities = _identities_sql(file_tree)
            # coalesce: a missing identityMap gives a NULL list, which must count as empty
            no_identity = f"coalesce(len({identities}), 0) = 0"
            bad = [no_identity]
            reasons = [f"WHEN {no_identity} THEN {sql_string(NO_IDENTITY)}"]
            if dataset.xdm_class == XdmClass.EVENT:
                stamp = '"timestamp" IS NULL' if "timestamp" in file_tree["fields"] else "true"
                bad.append(stamp)
                reasons.append(f"WHEN {stamp} THEN {sql_string(NO_TIMESTAMP)}")
            bad_sql = " OR ".join(bad)
            columns = []
            for name, sub in tree["fields"].items():
                kind = xdm.duckdb_type(sub)
                column = xdm.quote_identifier(name)
                columns.append(f"CAST({column} AS {kind}) AS {column}"
                               if name in file_tree["fields"] else f"NULL::{kind} AS {column}")
            columns.append(f"{identities} AS {xdm.quote_identifier(IDENTITIES_COLUMN)}")
            name = f"part-{index:05d}.parquet"
            # insertion order is kept (DuckDB's default), so rows stay in file order
            written = scalar(
                con, f"COPY (SELECT {', '.join(columns)} FROM {source} WHERE NOT ({bad_sql})) "
                f"TO {sql_string(str(staging / name))} (FORMAT parquet, COMPRESSION zstd)")
            rows = pq.read_metadata(path).num_rows
            total += rows
            if written < rows:
                for line, reason in con.execute(
                        f"SELECT file_row_number + 1, CASE {' '.join(reasons)} END FROM {source} "
                        f"WHERE {bad_sql} ORDER BY 1 LIMIT {KEEP_ERRORS}").fetchall():
                    errors.add(path.name, line, reason)
                errors.count += (rows - written) - min(rows - written, KEEP_ERRORS)
            files.append({"name": name, "size": (staging / name).stat().st_size,
                          "records": written})
    except duckdb.Error as error:
        shutil.rmtree(staging, ignore_errors=True)
        return _fail(batch, errors, NOT_FITTING.format(error=_named(error, [p for p, _ in plan])),
                     run)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        con.close()
    if total == 0 or errors.count / total > max_error_ratio:
        shutil.rmtree(staging, ignore_errors=True)
        if total == 0:
            return _fail(batch, errors, NO_RECORDS, run)
        return _fail(batch, errors, TOO_MANY_ERRORS.format(
            errors=errors.count, total=total, limit=max_error_ratio), run)
    _place(staging, final)
    return _succeed(batch, dataset, errors, files, tree, run)
