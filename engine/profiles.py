"""Profiles and their events out of a snapshot as plain Python values, the shape pql.evaluate
reads: objects and maps as dicts, arrays as lists, date-times as datetimes (UTC)."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from engine.xdm import quote_identifier

HIDDEN = ("_profile_id", "_bucket", "_ingested_at")  # the snapshot's own columns, not XDM
CHUNK = 2_000


@dataclass(frozen=True)
class LoadedProfile:
    profile_id: str
    profile: dict[str, Any]
    events: list[dict[str, Any]]
    memberships: dict[str, str]  # segment id → realized | existing | exited


def q(name: str) -> str:
    """A table name, quoted per part: ``ms.memberships`` is table memberships of database ms."""
    return ".".join(quote_identifier(part) for part in name.split("."))


@functools.lru_cache(maxsize=4096)
def _holds_map(kind: pa.DataType) -> bool:
    if pa.types.is_map(kind):
        return True
    if pa.types.is_struct(kind):
        return any(_holds_map(kind.field(i).type) for i in range(kind.num_fields))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _holds_map(kind.value_type)
    return False


def to_python(value: Any, kind: pa.DataType) -> Any:
    """Arrow's to_pylist gives maps as lists of (key, value) pairs; XDM reads them as objects.
    Values whose type holds no map are already what XDM reads, and are left as they are."""
    if value is None or not _holds_map(kind):
        return value
    if pa.types.is_map(kind):
        return {key: to_python(item, kind.item_type) for key, item in value}
    if pa.types.is_struct(kind):
        return {kind.field(i).name: to_python(value.get(kind.field(i).name), kind.field(i).type)
                for i in range(kind.num_fields)}
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return [to_python(item, kind.value_type) for item in value]
    return value


def _rows(table: pa.Table) -> Iterator[dict[str, Any]]:
    schema = table.schema
    for row in table.to_pylist():
        yield {name: to_python(row[name], schema.field(name).type) for name in row}


def load_profiles(con: duckdb.DuckDBPyConnection, *, profiles: str = "profiles",
                  events: str = "events", memberships: str = "memberships",
                  ids: Sequence[str] | None = None) -> Iterator[LoadedProfile]:
    """Every profile (or those in `ids`) with its events in time order, a chunk at a time."""
    if ids is None:
        ids = [row[0] for row in con.execute(
            f"SELECT _profile_id FROM {q(profiles)} ORDER BY _bucket, _profile_id").fetchall()]
    for start in range(0, len(ids), CHUNK):
        chunk = list(ids[start:start + CHUNK])
        found = con.sql(f"SELECT * FROM {q(profiles)} WHERE _profile_id IN "
                        f"(SELECT unnest($ids))", params={"ids": chunk}).to_arrow_table()
        by_profile: dict[str, list[dict[str, Any]]] = {pid: [] for pid in chunk}
        event_rows = con.sql(f'SELECT * FROM {q(events)} WHERE _profile_id IN '
                             f'(SELECT unnest($ids)) ORDER BY _profile_id, "timestamp"',
                             params={"ids": chunk}).to_arrow_table()
        for event in _rows(event_rows):
            by_profile[event["_profile_id"]].append(
                {k: v for k, v in event.items() if k not in HIDDEN})
        statuses: dict[str, dict[str, str]] = {}
        for pid, segment, status in con.sql(
                f"SELECT _profile_id, segment_id, status FROM {q(memberships)} "
                f"WHERE _profile_id IN (SELECT unnest($ids))", params={"ids": chunk}).fetchall():
            statuses.setdefault(pid, {})[segment] = status
        for profile in _rows(found):
            pid = profile.pop("_profile_id")
            profile.pop("_bucket", None)
            yield LoadedProfile(pid, profile, by_profile.get(pid, []), statuses.get(pid, {}))
