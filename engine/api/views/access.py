"""Profile access — GET /data/core/ups/access/entities (spec/aep-api.md §9.2).

A merged profile keyed by its id (our XID: the stitched profile's ``_profile_id``), found by
that id or by one of its identities (``entityId`` + ``entityIdNS``); or the ExperienceEvents
of such a profile (``relatedEntityId`` + ``relatedEntityIdNS``), in time order, a page at a
time. Reads the sandbox's current snapshot with the merge policy asked for (default policy
otherwise).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import duckdb
from django.http import HttpRequest, JsonResponse

from engine.api import errors, services
from engine.api.auth import MAX_EPOCH_MS, api_view, int_param
from engine.api.paging import links
from engine.models import CLASS_SCHEMA_NAMES, IdentityGraph, MergePolicy, XdmClass
from engine.previews import arrow_rows, bucket_of, identities_of, profile_rows
from engine.profiles import HIDDEN
from engine.snapshot import (
    NoSnapshotError,
    current_path,
    default_merge_policy,
    events_table,
    open_snapshot_file,
    profiles_table,
)
from engine.xdm import quote_identifier as q

PROFILE = CLASS_SCHEMA_NAMES[XdmClass.PROFILE]
EVENT = CLASS_SCHEMA_NAMES[XdmClass.EVENT]
DEFAULT_EVENT_LIMIT = 1000
MAX_EVENT_LIMIT = 1000

SCHEMA_NAME_INVALID = ("The parameter schema.name must be _xdm.context.profile or "
                       "_xdm.context.experienceevent.")
PARAMETER_REQUIRED = "The parameter {name} is required."
ORDER_INVALID = "The parameter orderby must be +timestamp or -timestamp."
LIMIT_INVALID = "The parameter limit must be between 1 and {max}."
# Profiles over the guardrails (50 identities, 5,000 events; spec §8.3) are not in the store at
# all, so AEP's 422 "Too many related identities" becomes this 404.
ENTITY_NOT_FOUND = ("No profile with {what} in sandbox {sandbox}. (Profiles over 50 identities "
                    "or 5,000 events are excluded from the store, and are not found either.)")
ENTITY_EXCLUDED = ("The profile {id} is excluded from the store ({reason}), so it cannot be "
                   "read (Too many related identities or events).")


def _first(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> Any:
    """The first row, or None (fetchall: a half-fetched result would block the connection)."""
    rows = con.execute(sql, params).fetchall()
    return rows[0] if rows else None


def _policy(request: HttpRequest) -> MergePolicy:
    sandbox = request.sandbox  # type: ignore[attr-defined]
    value = request.GET.get("mergePolicyId")
    if not value:
        return default_merge_policy(sandbox)
    return MergePolicy.objects.get(id=uuid.UUID(services.merge_policy_id_read(value, sandbox)))


def _profile_id(con: duckdb.DuckDBPyConnection, policy: MergePolicy, entity_id: str,
                namespace: str, sandbox: str) -> str:
    """The profile an id (our XID) or an identity (id + namespace code) names, or a 404."""
    what = f"the identity {namespace}:{entity_id}" if namespace else f"the id {entity_id}"
    table = q(profiles_table(policy))
    if namespace and policy.identity_graph == IdentityGraph.PDG:
        row = _first(con, "SELECT _profile_id FROM identities "
                     "WHERE upper(namespace) = upper(?) AND id = ? LIMIT 1", [namespace, entity_id])
        candidate = row[0] if row else None
    elif namespace:  # without stitching a profile is its records' primary identity
        candidate = _first(con, "SELECT md5(upper(?) || chr(31) || ?)",
                           [namespace, entity_id])[0]
    else:
        candidate = entity_id
    bucket = bucket_of(str(candidate)) if candidate else None
    if bucket is not None and _first(
            con, f"SELECT 1 FROM {table} WHERE _bucket = ? AND _profile_id = ?",
            [bucket, candidate]):
        return str(candidate)
    if candidate:
        excluded = _first(con, "SELECT reason FROM excluded_profiles WHERE _profile_id = ?",
                          [candidate])
        if excluded:
            raise errors.not_found(ENTITY_EXCLUDED.format(id=candidate, reason=excluded[0]))
    raise errors.not_found(ENTITY_NOT_FOUND.format(what=what, sandbox=sandbox))


def _pick(entity: dict[str, Any], fields: str) -> dict[str, Any]:
    """Only the comma-separated (dotted) paths of ``fields``; identities always stay."""
    if not fields:
        return entity
    picked: dict[str, Any] = {}
    for path in filter(None, (part.strip() for part in fields.split(","))):
        source: Any = entity
        parts = path.split(".")
        for part in parts:
            source = source.get(part) if isinstance(source, dict) else None
        if source is None:
            continue
        target = picked
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = source
    return picked


def _ms(value: Any) -> int | None:
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def _built_at(con: duckdb.DuckDBPyConnection) -> str:
    row = _first(con, "SELECT value FROM snapshot_info WHERE key = 'built_at'", [])
    return str(row[0]).replace("+00:00", "Z") if row else ""


def _profile(request: HttpRequest, con: duckdb.DuckDBPyConnection,
             policy: MergePolicy) -> JsonResponse:
    entity_id = request.GET.get("entityId", "")
    if not entity_id:
        raise errors.invalid(PARAMETER_REQUIRED.format(name="entityId"))
    profile_id = _profile_id(con, policy, entity_id, request.GET.get("entityIdNS", ""),
                             request.sandbox)  # type: ignore[attr-defined]
    row = profile_rows(con, profiles_table(policy), [profile_id])[profile_id]
    entity = {key: value for key, value in row.items() if key not in HIDDEN}
    identities = identities_of(entity)
    picked = _pick(entity, request.GET.get("fields", ""))
    return JsonResponse({profile_id: {
        "entityId": profile_id,
        "sources": [],
        "entity": {"identities": identities, **picked},
        "lastModifiedAt": _built_at(con),
    }})


def _events(request: HttpRequest, con: duckdb.DuckDBPyConnection,
            policy: MergePolicy) -> JsonResponse:
    related = request.GET.get("relatedEntityId") or request.GET.get("entityId") or ""
    if not related:
        raise errors.invalid(PARAMETER_REQUIRED.format(name="relatedEntityId"))
    namespace = request.GET.get("relatedEntityIdNS") or request.GET.get("entityIdNS") or ""
    profile_id = _profile_id(con, policy, related, namespace,
                             request.sandbox)  # type: ignore[attr-defined]
    orderby = request.GET.get("orderby", request.GET.get("orderBy", "+timestamp")) or "+timestamp"
    orderby = orderby.replace(" ", "+")  # an unencoded + arrives as a space
    if orderby not in ("timestamp", "+timestamp", "-timestamp"):
        raise errors.invalid(ORDER_INVALID)
    descending = orderby.startswith("-")
    limit = int_param(request, "limit", DEFAULT_EVENT_LIMIT)
    if not 0 < limit <= MAX_EVENT_LIMIT:
        raise errors.invalid(LIMIT_INVALID.format(max=MAX_EVENT_LIMIT))
    start = int_param(request, "start", 0)  # ours: an offset, opaque to clients
    # events are stored in _bucket order too: the bucket lets DuckDB skip the rest
    conditions = ["_bucket = ?", "_profile_id = ?"]
    params: list[Any] = [bucket_of(profile_id), profile_id]
    for name, operator in (("startTime", ">="), ("endTime", "<=")):
        if name in request.GET:
            # in whole milliseconds, as the client sees the events' timestamps
            conditions.append(f'epoch_ms("timestamp") {operator} ?')
            params.append(int_param(request, name, 0, MAX_EPOCH_MS))
    table = q(events_table(policy))
    found = con.sql(
        f"""SELECT * FROM {table} WHERE {' AND '.join(conditions)}
            ORDER BY "timestamp" {'DESC' if descending else 'ASC'}, rowid
            LIMIT {limit + 1} OFFSET {start}""", params=params).to_arrow_table()
    rows = arrow_rows(found)
    has_next = len(rows) > limit
    rows = rows[:limit]
    modified = _built_at(con)
    children = []
    for number, row in enumerate(rows, start=start):
        event = {key: value for key, value in row.items() if key not in HIDDEN}
        event_id = event.get("_id") or f"{profile_id}-{number}"
        children.append({"relatedEntityId": profile_id, "entityId": event_id,
                         "timestamp": _ms(event.get("timestamp")),
                         "entity": _pick(event, request.GET.get("fields", "")),
                         "lastModifiedAt": modified})
    next_href = ""
    if has_next:
        query = {key: value for key, value in request.GET.items() if key != "start"}
        query["start"] = str(start + limit)
        next_href = f"/entities?{urlencode(query)}"
    return JsonResponse({
        "_page": {"orderby": "-timestamp" if descending else "timestamp",
                  "start": children[0]["entityId"] if children else "",
                  "count": len(children), "next": str(start + limit) if has_next else ""},
        "children": children,
        "_links": links(next_href),  # "" on the last page, as Adobe's example
    })


@api_view("GET")
def entities(request: HttpRequest) -> JsonResponse:
    schema_name = request.GET.get("schema.name", "")
    if not schema_name:
        raise errors.invalid(PARAMETER_REQUIRED.format(name="schema.name"))
    if schema_name not in (PROFILE, EVENT):
        raise errors.invalid(SCHEMA_NAME_INVALID)
    sandbox = request.sandbox  # type: ignore[attr-defined]
    policy = _policy(request)
    try:
        file_name = current_path(sandbox).name
        with open_snapshot_file(sandbox, file_name) as con:
            if schema_name == PROFILE:
                return _profile(request, con, policy)
            return _events(request, con, policy)
    except NoSnapshotError:
        raise errors.not_found(ENTITY_NOT_FOUND.format(
            what="any id (no profile store yet)", sandbox=sandbox)) from None
