"""Exported rows as people read them: one column per leaf field of the nested XDM row, for the
preview table and the CSV download (the Parquet download stays the file as written).

The rules (the export form's help and the README's section on exports say the same):

- a struct becomes its leaves, headed by dotted paths: ``person.name.firstName``;
- ``identityMap`` becomes one column per identity namespace, ``identityMap.Email``, holding the
  id (several ids of one namespace as a JSON list), and one column ``identityMap (primary)``
  naming the primary identity as ``Namespace: id``; authenticatedState stays in the Parquet;
- ``segmentMembership`` (like any other map) becomes a column per key and leaf:
  ``segmentMembership.ups.<segment id>.status``, ``….lastQualificationTime``;
- a list stays one column, as JSON text (``events``, ``productListItems``): the only place
  JSON appears, because only there the value really is a list;
- timestamps are ISO 8601 in UTC (``2026-10-01T10:00:00Z``, with milliseconds when the value
  has them), dates ``2026-10-01``, booleans ``true``/``false``, absent values empty.

A map's columns are the keys found in the whole file, sorted, so every row of the CSV has the
same columns however its first rows look.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

IDENTITY_MAP = "identityMap"
PRIMARY_HEADER = "identityMap (primary)"
KEY_BATCH = 10_000


@dataclass(frozen=True)
class Column:
    """One column: its header, the keys leading to its value in a row (struct fields and map
    keys) and how the value is written: ``value``, ``json`` (a list), ``ids`` (an identity
    namespace) or ``primary``."""

    header: str
    path: tuple[str, ...]
    kind: str = "value"


def _maps(dtype: pa.DataType, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """The paths of the maps in a type, outside lists (a list is written whole)."""
    if pa.types.is_struct(dtype):
        for index in range(dtype.num_fields):
            child = dtype.field(index)
            yield from _maps(child.type, (*path, child.name))
    elif pa.types.is_map(dtype):
        yield path


def map_keys(parquet: pq.ParquetFile) -> dict[tuple[str, ...], list[str]]:
    """Every key of every map column of the file (nested maps: the keys below each key), read
    from those columns only."""
    schema = parquet.schema_arrow
    paths = [path for field in schema for path in _maps(field.type, (field.name,))]
    keys: dict[tuple[str, ...], set[str]] = {path: set() for path in paths}
    if not paths:
        return {}
    for batch in parquet.iter_batches(batch_size=KEY_BATCH,
                                      columns=sorted({path[0] for path in paths})):
        for record in batch.to_pylist():
            _collect(record, schema, keys)
    return {path: sorted(found) for path, found in keys.items()}


def _collect(record: dict[str, Any], schema: pa.Schema,
             keys: dict[tuple[str, ...], set[str]]) -> None:
    def walk(value: Any, dtype: pa.DataType, path: tuple[str, ...]) -> None:
        if value is None:
            return
        if pa.types.is_struct(dtype):
            for index in range(dtype.num_fields):
                child = dtype.field(index)
                walk(value.get(child.name), child.type, (*path, child.name))
        elif pa.types.is_map(dtype):
            # found keys are kept per map path; a nested map's keys under its parent's key
            for key, item in value:
                keys.setdefault(path, set()).add(str(key))
                walk(item, dtype.item_type, (*path, str(key)))

    for field in schema:
        if field.name in record:
            walk(record[field.name], field.type, (field.name,))


def columns(schema: pa.Schema, keys: dict[tuple[str, ...], list[str]]) -> list[Column]:
    """The flat columns of a file's schema, in the schema's order."""
    found: list[Column] = []

    def add(dtype: pa.DataType, path: tuple[str, ...]) -> None:
        header = ".".join(path)
        if pa.types.is_struct(dtype):
            for index in range(dtype.num_fields):
                child = dtype.field(index)
                add(child.type, (*path, child.name))
        elif pa.types.is_map(dtype):
            if path == (IDENTITY_MAP,):
                found.extend(Column(f"{header}.{key}", (*path, key), "ids")
                             for key in keys.get(path, []))
                found.append(Column(PRIMARY_HEADER, path, "primary"))
                return
            for key in keys.get(path, []):
                add(dtype.item_type, (*path, key))
        elif pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
            found.append(Column(header, path, "json"))
        else:
            found.append(Column(header, path))

    for field in schema:
        add(field.type, (field.name,))
    return found


def _plain(value: Any) -> Any:
    """pyarrow's Python values with maps (lists of key/value tuples) as dicts."""
    if isinstance(value, list):
        if value and all(isinstance(item, tuple) and len(item) == 2 for item in value):
            return {str(key): _plain(item) for key, item in value}
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def iso_utc(moment: datetime) -> str:
    """``2026-10-01T10:00:00Z``; ``…:00.250Z`` when the time has a fraction. A naive time is UTC
    (as XDM and the engine's store write them)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    text = moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
    return f"{text}Z"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def text(value: Any) -> str:
    """One cell's text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, default=_json_default, ensure_ascii=False)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _at(record: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = record
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def cells(record: dict[str, Any], flat: list[Column]) -> list[str]:
    """One row's cells for the columns."""
    plain = _plain(record)
    row = []
    for column in flat:
        value = _at(plain, column.path)
        if column.kind == "ids":
            ids = [item.get("id") for item in value or [] if isinstance(item, dict)]
            row.append(text(ids[0]) if len(ids) == 1 else text(ids or None))
        elif column.kind == "primary":
            row.append(next((f"{namespace}: {item.get('id')}"
                             for namespace, items in (value or {}).items()
                             for item in items or []
                             if isinstance(item, dict) and item.get("primary")), ""))
        else:
            row.append(text(value))
    return row


def rows(batches: Iterable[pa.RecordBatch], flat: list[Column]) -> Iterator[list[str]]:
    for batch in batches:
        for record in batch.to_pylist():
            yield cells(record, flat)
