"""XDM records: the inferred type tree, conforming records to it, identities, Arrow/DuckDB types.

Pure Python (no Django). A type tree is JSON-able so the catalog can keep it:

    {"type": "string" | "integer" | "number" | "boolean" | "date" | "date-time" | "null"}
    {"type": "object", "fields": {name: tree, ...}}
    {"type": "array", "items": tree}
    {"type": "map", "values": tree}

Inference runs over the whole input before anything is written, and the result is passed
explicitly to Arrow and DuckDB: automatic inference was measured to break on mixed timestamp
formats and to turn identityMap into a struct.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

Tree = dict[str, Any]

NULL: Tree = {"type": "null"}
STRING: Tree = {"type": "string"}
IDENTITY_ITEM: Tree = {
    "type": "object",
    "fields": {
        "id": {"type": "string"},
        "primary": {"type": "boolean"},
        "authenticatedState": {"type": "string"},
    },
}
# Fields whose shape XDM fixes, whatever a sample of records suggests.
IDENTITY_MAP: Tree = {"type": "map", "values": {"type": "array", "items": IDENTITY_ITEM}}
SEGMENT_MEMBERSHIP: Tree = {
    "type": "map",
    "values": {
        "type": "map",
        "values": {
            "type": "object",
            "fields": {
                "status": {"type": "string"},
                "lastQualificationTime": {"type": "date-time"},
            },
        },
    },
}
FIXED_FIELDS: dict[str, Tree] = {
    "identityMap": IDENTITY_MAP,
    "segmentMembership": SEGMENT_MEMBERSHIP,
}

SCALARS = ("null", "boolean", "integer", "number", "date", "date-time", "string")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


class ConformError(ValueError):
    """A value that does not fit the schema; the message names the field."""


def parse_datetime(text: str) -> datetime | None:
    """An ISO-8601 date-time as naive UTC, or None. Offsets are converted; no offset means UTC."""
    if not DATETIME_RE.match(text):
        return None
    try:
        value = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def parse_date(text: str) -> date | None:
    if not DATE_RE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def infer(value: Any, path: str = "") -> Tree:
    """The type tree of one value."""
    fixed = FIXED_FIELDS.get(path)
    if fixed is not None and isinstance(value, dict):
        return fixed
    if value is None:
        return NULL
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, datetime):
        return {"type": "date-time"}
    if isinstance(value, date):
        return {"type": "date"}
    if isinstance(value, str):
        if parse_date(value) is not None:
            return {"type": "date"}
        if parse_datetime(value) is not None:
            return {"type": "date-time"}
        return STRING
    if isinstance(value, dict):
        fields = {}
        for key, item in value.items():
            fields[str(key)] = infer(item, f"{path}.{key}" if path else str(key))
        return {"type": "object", "fields": fields}
    if isinstance(value, list | tuple):
        items: Tree = NULL
        for item in value:
            items = merge(items, infer(item, path))
        return {"type": "array", "items": items}
    return STRING


def merge(left: Tree, right: Tree) -> Tree:
    """The narrowest tree that holds both. On a structural conflict (object vs number, say)
    the left (earlier) shape wins, and records of the other shape fail to conform.

    An object's fields are kept in name order — in every tree the engine makes (merge, infer,
    prune) — so that columns and struct fields come out the same wherever the tree was stored
    (PostgreSQL's jsonb does not keep the order keys were written in; SQLite does)."""
    a, b = left["type"], right["type"]
    if a == "null":
        return right
    if b == "null" or left == right:
        return left
    if a == b == "object":
        fields = dict(left["fields"])
        for name, tree in right["fields"].items():
            fields[name] = merge(fields[name], tree) if name in fields else tree
        return {"type": "object", "fields": dict(sorted(fields.items()))}
    if a == b == "array":
        return {"type": "array", "items": merge(left["items"], right["items"])}
    if a == b == "map":
        return {"type": "map", "values": merge(left["values"], right["values"])}
    if a in SCALARS and b in SCALARS:
        pair = {a, b}
        if pair == {"integer", "number"}:
            return {"type": "number"}
        if pair == {"date", "date-time"}:
            return {"type": "date-time"}
        return STRING
    return left


def infer_all(records: Iterable[Mapping[str, Any]], start: Tree | None = None) -> Tree:
    """The type tree of many records, merged as `merge` does, in one pass per record.

    Kinds are collected per path (a flat dict) and the tree is built at the end: comparing
    whole trees per record was measured to cost more than reading the records.
    """
    kinds: dict[tuple[str, ...], str] = {}
    children: dict[tuple[str, ...], dict[str, None]] = {(): {}}
    kinds[()] = "object"
    if start:
        _walk_tree(start, (), kinds, children)
    for record in records:
        for key, value in record.items():
            _walk(value, (str(key),), kinds, children)
    return _build((), kinds, children)


def _note(path: tuple[str, ...], kind: str, kinds: dict[tuple[str, ...], str],
          children: dict[tuple[str, ...], dict[str, None]]) -> None:
    previous = kinds.get(path)
    if previous is None:
        kinds[path] = kind
        children[path[:-1]].setdefault(path[-1], None)
        children.setdefault(path, {})
    elif previous != kind:
        kinds[path] = merge({"type": previous}, {"type": kind})["type"] if (
            previous in SCALARS and kind in SCALARS) else (kind if previous == "null" else previous)


def _walk(value: Any, path: tuple[str, ...], kinds: dict[tuple[str, ...], str],
          children: dict[tuple[str, ...], dict[str, None]]) -> None:
    if len(path) == 1 and path[0] in FIXED_FIELDS and isinstance(value, dict):
        _note(path, "fixed", kinds, children)
        return
    kind = _scalar_kind(value)
    _note(path, kind, kinds, children)
    if kind == "object":
        for key, item in value.items():
            _walk(item, (*path, str(key)), kinds, children)
    elif kind == "array":
        item_path = (*path, "[]")
        if not value:
            _note(item_path, "null", kinds, children)
        for item in value:
            _walk(item, item_path, kinds, children)


def _scalar_kind(value: Any) -> str:
    """infer(value)["type"] without building dicts: this runs once per field of every record."""
    if isinstance(value, str):
        return infer(value)["type"] if value[:1].isdigit() else "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    if value is None:
        return "null"
    return infer(value)["type"]


def _walk_tree(tree: Tree, path: tuple[str, ...], kinds: dict[tuple[str, ...], str],
               children: dict[tuple[str, ...], dict[str, None]]) -> None:
    if len(path) == 1 and path[0] in FIXED_FIELDS:
        _note(path, "fixed", kinds, children)
        return
    kind = tree["type"]
    if path:
        _note(path, kind, kinds, children)
    if kind == "object":
        for name, sub in tree["fields"].items():
            _walk_tree(sub, (*path, name), kinds, children)
    elif kind == "array":
        _walk_tree(tree["items"], (*path, "[]"), kinds, children)
    elif kind == "map":
        _walk_tree(tree["values"], (*path, "*"), kinds, children)


def _build(path: tuple[str, ...], kinds: dict[tuple[str, ...], str],
           children: dict[tuple[str, ...], dict[str, None]]) -> Tree:
    kind = kinds.get(path, "null")
    if kind == "fixed":
        return FIXED_FIELDS[path[0]]
    if kind == "object":
        return {"type": "object", "fields": {
            name: _build((*path, name), kinds, children)
            for name in sorted(children.get(path, {})) if name not in ("[]", "*")
        }}
    if kind == "array":
        return {"type": "array", "items": _build((*path, "[]"), kinds, children)}
    if kind == "map":
        return {"type": "map", "values": _build((*path, "*"), kinds, children)}
    return {"type": kind}


def prune(tree: Tree) -> Tree | None:
    """Drop what Parquet cannot store: objects with no fields. Null-only leaves become strings."""
    kind = tree["type"]
    if kind == "null":
        return STRING
    if kind == "object":
        fields = {}
        for name, sub in sorted(tree["fields"].items()):
            kept = prune(sub)
            if kept is not None:
                fields[name] = kept
        return {"type": "object", "fields": fields} if fields else None
    if kind == "array":
        items = prune(tree["items"])
        return {"type": "array", "items": items} if items is not None else None
    if kind == "map":
        values = prune(tree["values"])
        return {"type": "map", "values": values} if values is not None else None
    return tree


def conform(value: Any, tree: Tree, path: str) -> Any:
    """`value` converted to the Python shape Arrow expects for `tree`; ConformError if it can't."""
    if value is None:
        return None
    kind = tree["type"]
    if kind == "string":
        if isinstance(value, dict | list):
            raise ConformError(f"{path} is text elsewhere but an {type_word(value)} here")
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, datetime | date):
            return value.isoformat()
        return str(value)
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConformError(f"{path} should be a whole number, not {value!r}")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConformError(f"{path} should be a number, not {value!r}")
        return float(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ConformError(f"{path} should be true or false, not {value!r}")
        return value
    if kind == "date-time":
        if isinstance(value, datetime):
            return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day)
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None and isinstance(value, str) and (day := parse_date(value)):
            parsed = datetime(day.year, day.month, day.day)
        if parsed is None:
            raise ConformError(f"{path} should be an ISO-8601 date-time, not {value!r}")
        return parsed
    if kind == "date":
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        parsed_day = parse_date(value) if isinstance(value, str) else None
        if parsed_day is None:
            raise ConformError(f"{path} should be a date (YYYY-MM-DD), not {value!r}")
        return parsed_day
    if kind == "object":
        if not isinstance(value, dict):
            raise ConformError(f"{path} should be an object, not {type_word(value)} {value!r}")
        # Only the keys present: Arrow fills absent struct fields with null, and wide XDM
        # schemas made the full-width dicts the slowest part of ingestion.
        fields = tree["fields"]
        return {
            name: conform(item, fields[name], f"{path}.{name}" if path else name)
            for name, item in value.items() if name in fields and item is not None
        }
    if kind == "array":
        if not isinstance(value, list | tuple):
            raise ConformError(f"{path} should be a list, not {type_word(value)} {value!r}")
        return [conform(item, tree["items"], f"{path}[]") for item in value]
    if kind == "map":
        if not isinstance(value, dict):
            raise ConformError(f"{path} should be a map, not {type_word(value)} {value!r}")
        return [(str(key), conform(item, tree["values"], f"{path}.{key}"))
                for key, item in value.items()]
    raise ConformError(f"{path} has an unknown type {kind}")


def type_word(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


def arrow_type(tree: Tree) -> pa.DataType:
    kind = tree["type"]
    if kind == "object":
        return pa.struct([pa.field(name, arrow_type(sub)) for name, sub in tree["fields"].items()])
    if kind == "array":
        return pa.list_(arrow_type(tree["items"]))
    if kind == "map":
        return pa.map_(pa.string(), arrow_type(tree["values"]))
    return ARROW_SCALARS[kind]


ARROW_SCALARS = {
    "string": pa.string(), "null": pa.string(), "integer": pa.int64(), "number": pa.float64(),
    "boolean": pa.bool_(), "date": pa.date32(), "date-time": pa.timestamp("us"),
}


def arrow_schema(tree: Tree) -> pa.Schema:
    return pa.schema([pa.field(name, arrow_type(sub)) for name, sub in tree["fields"].items()])


DUCKDB_SCALARS = {
    "string": "VARCHAR", "null": "VARCHAR", "integer": "BIGINT", "number": "DOUBLE",
    "boolean": "BOOLEAN", "date": "DATE", "date-time": "TIMESTAMP",
}


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def duckdb_type(tree: Tree) -> str:
    kind = tree["type"]
    if kind == "object":
        inner = ", ".join(
            f"{quote_identifier(n)} {duckdb_type(s)}" for n, s in tree["fields"].items())
        return f"STRUCT({inner})"
    if kind == "array":
        return f"{duckdb_type(tree['items'])}[]"
    if kind == "map":
        return f"MAP(VARCHAR, {duckdb_type(tree['values'])})"
    return DUCKDB_SCALARS[kind]


def flat_paths(tree: Tree, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, kind) for every field, arrays transparent and map values as `*`: the shape
    pql.schema.Schema reads."""
    for name, sub in tree.get("fields", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        yield from _flat(path, sub)


def _flat(path: str, tree: Tree) -> Iterator[tuple[str, str]]:
    kind = tree["type"]
    if kind == "object":
        yield path, "object"
        yield from flat_paths(tree, path)
    elif kind == "array":
        items = tree["items"]
        yield path, f"array<{_kind_name(items)}>"
        if items["type"] in ("object", "map"):
            yield from (pair for pair in _flat(path, items) if pair[0] != path)
    elif kind == "map":
        values = tree["values"]
        yield path, f"map<{_kind_name(values)}>"
        yield from _flat(f"{path}.*", values)
    else:
        yield path, "string" if kind == "null" else kind


def _kind_name(tree: Tree) -> str:
    kind = tree["type"]
    if kind == "array":
        return f"array<{_kind_name(tree['items'])}>"
    if kind == "map":
        return f"map<{_kind_name(tree['values'])}>"
    return "string" if kind == "null" else kind


@dataclass(frozen=True)
class Identity:
    namespace: str
    id: str
    primary: bool = False
    authenticated_state: str | None = None

    @property
    def key(self) -> str:
        """One string per identity, namespace codes compared case-insensitively as AEP does."""
        return f"{self.namespace.upper()}\x1f{self.id}"


def identities_of(record: Mapping[str, Any]) -> list[Identity]:
    """The identities of one record: its identityMap, else the ExperienceEvent endUserIDs
    (`endUserIDs._experience.<x>.{id, namespace.code, primary}`, as Adobe Analytics data has)."""
    found: list[Identity] = []
    identity_map = record.get("identityMap")
    if isinstance(identity_map, dict):
        for namespace, items in identity_map.items():
            for item in items if isinstance(items, list) else [items]:
                if isinstance(item, dict) and item.get("id") not in (None, ""):
                    found.append(Identity(str(namespace), str(item["id"]),
                                          bool(item.get("primary")),
                                          item.get("authenticatedState")))
    if found:
        return found
    end_users = record.get("endUserIDs")
    experience = end_users.get("_experience") if isinstance(end_users, dict) else None
    if isinstance(experience, dict):
        for item in experience.values():
            if not isinstance(item, dict) or item.get("id") in (None, ""):
                continue
            namespace = item.get("namespace")
            code = namespace.get("code") if isinstance(namespace, dict) else namespace
            if code:
                found.append(Identity(str(code), str(item["id"]), bool(item.get("primary")),
                                      item.get("authenticatedState")))
    return found


def tree_from_arrow(schema: pa.Schema) -> Tree | None:
    """The type tree of an Arrow schema, or None where a type has no XDM meaning (unions,
    binary, dictionaries...) and the records must take the row-by-row path instead."""
    fields: dict[str, Tree] = {}
    for item in schema:
        tree = _tree_from_arrow_type(item.type)
        if tree is None:
            return None
        fields[item.name] = tree
    return {"type": "object", "fields": fields}


def _tree_from_arrow_type(kind: pa.DataType) -> Tree | None:
    if pa.types.is_struct(kind):
        fields = {}
        for index in range(kind.num_fields):
            child = kind.field(index)
            sub = _tree_from_arrow_type(child.type)
            if sub is None:
                return None
            fields[child.name] = sub
        return {"type": "object", "fields": fields}
    if pa.types.is_map(kind):
        if not pa.types.is_string(kind.key_type) and not pa.types.is_large_string(kind.key_type):
            return None
        values = _tree_from_arrow_type(kind.item_type)
        return {"type": "map", "values": values} if values is not None else None
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        items = _tree_from_arrow_type(kind.value_type)
        return {"type": "array", "items": items} if items is not None else None
    if pa.types.is_boolean(kind):
        return {"type": "boolean"}
    if pa.types.is_integer(kind):
        return {"type": "integer"}
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return {"type": "number"}
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return {"type": "string"}
    if pa.types.is_timestamp(kind):
        return {"type": "date-time"}
    if pa.types.is_date(kind):
        return {"type": "date"}
    if pa.types.is_null(kind):
        return {"type": "null"}
    return None
