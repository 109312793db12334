"""The evaluation profiles of tests/pql/eval/profiles.json as DuckDB tables (pql.sql contract).

``infer_schema`` derives a ``pql.schema.Schema`` from the JSON values: ISO date-time text (and
epoch milliseconds in a field that also holds date-times) is ``date-time``, ``YYYY-MM-DD`` text
is ``date`` — the evaluator reads both as timestamps (``pql.values.parse_timestamp``) and a
ten-character value as a whole UTC day in time references, which is what TIMESTAMP and DATE
mean to the compiler. ``MAP_FIELDS`` declares the fields that are maps rather than objects.
``build_database`` creates the four tables with the DuckDB types ``pql.sql.table_columns``
gives for that schema, and fills them from the same JSON the evaluator reads.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from pql.schema import FieldType, Schema
from pql.sql import column_type, quote_identifier, table_columns
from pql.values import parse_timestamp

EVAL_DIR = Path(__file__).parent / "eval"
FIXTURES: dict[str, Any] = json.loads((EVAL_DIR / "profiles.json").read_text())

# Fields that are XDM maps (free keys), per collection; everything else that is a JSON object
# is an XDM object (a STRUCT).
MAP_FIELDS = {
    "profile": frozenset({"identityMap", "segmentMembership", "segmentMembership.*",
                          "externalSegmentMapProperty"}),
    "event": frozenset({"externalSegmentMapProperty"}),
}  # fmt: skip
# Fields the contract declares even where the fixture has no value for them.
DECLARED = {
    "profile": {
        "identityMap.*.id": "string",
        "identityMap.*.primary": "boolean",
        "identityMap.*.authenticatedState": "string",
        "segmentMembership.*.*.status": "string",
        "segmentMembership.*.*.lastQualificationTime": "date-time",
    },
    "event": {"timestamp": "date-time"},
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
BUCKETS = 1024


def _scalar_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        if _DATE.match(value):
            return "date"
        if _DATE_TIME.match(value) and parse_timestamp(value) is not None:
            return "date-time"
        return "string"
    raise TypeError(f"not a scalar: {value!r}")


def _merge(old: str | None, new: str) -> str:
    if old is None or old == new:
        return new
    pair = {old, new}
    if pair == {"integer", "number"}:
        return "number"
    if pair <= {"date-time", "integer", "date"}:
        return "date-time"  # epoch milliseconds next to ISO text
    if "string" in pair and pair <= {"string", "date", "date-time"}:
        return "string"
    raise TypeError(f"conflicting types {old} and {new}")


def _walk(value: Any, path: str, collection: str, kinds: dict[str, str]) -> None:
    """Record the kind of ``value`` at ``path`` (arrays are transparent, map values are ``*``)."""
    if value is None:
        return
    if isinstance(value, Mapping):
        if path in MAP_FIELDS[collection]:
            kinds[path] = _merge(kinds.get(path), "map")
            for item in value.values():
                _walk(item, f"{path}.*", collection, kinds)
        else:
            if path:
                kinds[path] = _merge(kinds.get(path), "object")
            for name, item in value.items():
                _walk(item, f"{path}.{name}" if path else name, collection, kinds)
        return
    if isinstance(value, list):
        kinds.setdefault(f"{path}[]", "array")
        for item in value:
            _walk(item, path, collection, kinds)
        return
    kinds[path] = _merge(kinds.get(path), _scalar_kind(value))


def _flat(kinds: dict[str, str], collection: str) -> dict[str, str]:
    arrays = {path[:-2] for path in kinds if path.endswith("[]")}

    def type_of(path: str) -> str:
        kind = kinds.get(path, "string")  # "string" for arrays that were only seen empty
        if kind == "map":
            kind = f"map<{type_of(f'{path}.*')}>"
        return f"array<{kind}>" if path in arrays else kind

    out = {path: type_of(path) for path in kinds if not path.endswith("[]")}
    for path in arrays - out.keys():
        out[path] = type_of(path)
    for path, kind in DECLARED[collection].items():
        out.setdefault(path, kind)
    return out


def infer_schema(entries: Iterable[Mapping[str, Any]]) -> Schema:
    """The profile and event schema of the fixture entries (``{"profile": …, "events": …}``)."""
    profile: dict[str, str] = {}
    event: dict[str, str] = {}
    for entry in entries:
        _walk(entry["profile"], "", "profile", profile)
        for item in entry["events"]:
            _walk(item, "", "event", event)
    return Schema.from_dict(_flat(profile, "profile"), _flat(event, "event"))


def normalise(value: Any, schema: Schema, collection: str, path: str) -> Any:
    """``value`` shaped for a JSON → DuckDB cast to ``column_type(schema, collection, path)``:
    every struct field present, date-times as naive UTC text, dates as ``YYYY-MM-DD``."""
    if value is None:
        return None
    declared = schema.declared(collection, path)
    if declared is None:
        return None
    return _normalise(value, declared, schema, collection, path)


def _normalise(value: Any, kind: FieldType, schema: Schema, collection: str, path: str) -> Any:
    if value is None:
        return None
    if kind.kind == "array":
        items = kind.items or FieldType("string")
        return [_normalise(item, items, schema, collection, path) for item in value]
    if kind.kind == "map":
        values = schema.declared(collection, f"{path}.*") or kind.items or FieldType("string")
        return {
            key: _normalise(item, values, schema, collection, f"{path}.*")
            for key, item in value.items()
        }
    if kind.kind == "object":
        return {
            name: normalise(value.get(name), schema, collection, f"{path}.{name}")
            for name in schema.children(collection, path)
        }
    if kind.kind == "date-time":
        moment = parse_timestamp(value)
        assert moment is not None, value
        return moment.replace(tzinfo=None).isoformat(sep=" ")
    if kind.kind == "date":
        return str(value)[:10]
    return value


def bucket(profile_id: str) -> int:
    return zlib.crc32(profile_id.encode()) % BUCKETS


def _create(
    con: duckdb.DuckDBPyConnection,
    table: str,
    fixed: list[tuple[str, str]],
    columns: list[tuple[str, str]],
    rows: list[list[Any]],
) -> None:
    spec = ", ".join(f"{quote_identifier(n)} {t}" for n, t in [*fixed, *columns])
    con.execute(f"CREATE TABLE {table} ({spec})")
    if not rows:
        return

    def cast(position: int, kind: str) -> str:
        # A JSON scalar cast to VARCHAR keeps its quotes: read it as text first.
        if kind.startswith(("STRUCT", "MAP")) or kind.endswith("]"):
            return f"CAST(CAST(${position} AS JSON) AS {kind})"
        return f"CAST(CAST(${position} AS JSON) ->> '$' AS {kind})"

    casts = [*(f"${i + 1}" for i in range(len(fixed))),
             *(cast(len(fixed) + i + 1, t) for i, (_, t) in enumerate(columns))]  # fmt: skip
    con.executemany(f"INSERT INTO {table} VALUES ({', '.join(casts)})", rows)


@dataclass
class Fixture:
    con: duckdb.DuckDBPyConnection
    schema: Schema
    entries: dict[str, dict[str, Any]]


def build_database(entries: list[dict[str, Any]], schema: Schema | None = None) -> Fixture:
    """An in-memory DuckDB database with the four tables of the pql.sql contract."""
    schema = schema or infer_schema(entries)
    con = duckdb.connect()
    profile_columns = table_columns(schema, "profile")
    event_columns = table_columns(schema, "event")
    profile_rows, event_rows, membership_rows, identity_rows = [], [], [], []
    for entry in entries:
        pid, profile = entry["id"], entry["profile"]
        profile_rows.append(
            [pid, bucket(pid)]
            + [json.dumps(normalise(profile.get(name), schema, "profile", name))
               for name, _ in profile_columns]
        )  # fmt: skip
        for event in entry["events"]:
            stamp = parse_timestamp(event.get("timestamp"))
            event_rows.append(
                [pid, bucket(pid), stamp.replace(tzinfo=None) if stamp else None]
                + [json.dumps(normalise(event.get(name), schema, "event", name))
                   for name, _ in event_columns]
            )  # fmt: skip
        for segments in (profile.get("segmentMembership") or {}).values():
            for segment_id, status in (segments or {}).items():
                moment = parse_timestamp(status.get("lastQualificationTime"))
                membership_rows.append(
                    [
                        pid,
                        segment_id,
                        status.get("status"),
                        moment.replace(tzinfo=None) if moment else None,
                    ]
                )
        for namespace, identities in (profile.get("identityMap") or {}).items():
            for identity in identities or []:
                identity_rows.append([pid, namespace, identity.get("id"),
                                      identity.get("primary"),
                                      identity.get("authenticatedState")])  # fmt: skip
    fixed = [("_profile_id", "VARCHAR"), ("_bucket", "SMALLINT")]
    _create(con, "profiles", fixed, profile_columns, profile_rows)
    _create(con, "events_unsorted", [*fixed, ("timestamp", "TIMESTAMP")], event_columns,
            event_rows)  # fmt: skip
    con.execute(
        "CREATE TABLE events AS SELECT * FROM events_unsorted "
        "ORDER BY _bucket, _profile_id, timestamp"
    )
    con.execute("DROP TABLE events_unsorted")
    con.execute(
        "CREATE TABLE memberships (_profile_id VARCHAR, segment_id VARCHAR, status VARCHAR, "
        "last_qualification_time TIMESTAMP)"
    )
    if membership_rows:
        con.executemany("INSERT INTO memberships VALUES (?, ?, ?, ?)", membership_rows)
    con.execute(
        "CREATE TABLE identities (_profile_id VARCHAR, namespace VARCHAR, id VARCHAR, "
        '"primary" BOOLEAN, authenticated_state VARCHAR)'
    )
    if identity_rows:
        con.executemany("INSERT INTO identities VALUES (?, ?, ?, ?, ?)", identity_rows)
    return Fixture(con, schema, {entry["id"]: entry for entry in entries})


def eval_fixture() -> Fixture:
    """The twelve hand-written profiles of tests/pql/eval/profiles.json."""
    return build_database(FIXTURES["profiles"])


__all__ = ["Fixture", "build_database", "column_type", "eval_fixture", "infer_schema"]
