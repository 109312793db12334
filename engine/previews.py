"""Previews and estimates (spec/aep-api.md §3): create, run progressively, page the members.

A preview row fixes everything its answers depend on — the PQL, the merge policy, the execution
time (``evaluated_at``) and the snapshot file — so the estimate steps the worker writes and every
page a client reads come from one consistent store, even after a rebuild switches CURRENT.
Members are those of the estimate's sample (the whole store under 1 M profiles, §3.5), in
``_profile_id`` order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
from django.conf import settings
from django.db import transaction
from django.utils import timezone

import pql
from engine.duck import scalar
from engine.estimate import SamplePlan, estimate_progressively, sample_plan
from engine.memberships import TABLE as MEMBERSHIPS_TABLE
from engine.memberships import attach_memberships
from engine.models import ApiClient, MergePolicy, Preview, PreviewState
from engine.profiles import HIDDEN, to_python
from engine.queue import send_on_commit
from engine.runs import RunKind, Superseded, claim
from engine.segments import EvaluationBudget, segment_members, snapshot_schema
from engine.snapshot import (
    BUCKETS,
    current_path,
    default_merge_policy,
    events_table,
    open_snapshot_file,
    profiles_table,
)
from engine.xdm import quote_identifier as q
from pql import ast
from pql.ast import Node
from pql.sql import Tables

logger = logging.getLogger(__name__)

STEPS = 8
UNFINISHED = (PreviewState.NEW, PreviewState.RUNNING)
# Adobe's numeric ids of the standard identity namespaces (spec §9); others keep their code.
NAMESPACE_IDS = {"CORE": "0", "ECID": "4", "EMAIL": "6", "PHONE": "7", "WAID": "8",
                 "TNTID": "9", "AAID": "10", "ADCLOUD": "411", "GAID": "20914",
                 "IDFA": "20915"}
TABLE_MISSING = ("The snapshot has no tables for merge policy {name!r} yet: they are built "
                 "with the next snapshot.")
FAILED_DESCRIPTION = "The estimate failed: {error}"


class PreviewRuns(RunKind):
    """Previews as engine.runs sees them. A cancel deletes the row: the run's next write
    finds none and stops (Superseded)."""

    model = Preview
    name = "preview"
    status_field = "state"
    waiting = (PreviewState.NEW,)
    requeued = PreviewState.NEW
    running = PreviewState.RUNNING
    unfinished = UNFINISHED

    def rows(self) -> Any:
        return previews_live()  # an expired one is deleted, not run again

    def send(self, pk: Any) -> None:
        from engine.tasks import preview_run as task

        task.delay(pk)

    def give_up(self, row: Any, reason: str, now: datetime) -> bool:
        return bool(self.as_read(row).update(
            state=PreviewState.FAILED, heartbeat_at=None, updated_at=now,
            error={"description": FAILED_DESCRIPTION.format(error=reason), "traceback": ""}))


RUNS = PreviewRuns()


def parse_predicate(expression: str, predicate_type: str) -> Node:
    """The predicate as a tree; pql errors propagate (the API turns them into a 400)."""
    if predicate_type == "pql/json":
        import json

        try:
            tree = json.loads(expression)
        except ValueError as error:
            raise pql.PQLJSONError(f"the value is not JSON ({error})") from None
        return pql.from_json(tree)
    return pql.parse(expression)


def preview_policy(preview: Preview) -> MergePolicy:
    return MergePolicy.objects.get(sandbox=preview.sandbox, id=preview.merge_policy_id)


def preview_tables(policy: MergePolicy) -> Tables:
    return Tables(profiles=profiles_table(policy), events=events_table(policy))


def uses_memberships(node: Node) -> bool:
    return any(isinstance(item, ast.Call) and item.name.lower() == "insegment"
               for item in node.walk())


def reading_tables(con: duckdb.DuckDBPyConnection, preview: Preview, node: Node,
                   policy: MergePolicy) -> Tables:
    """The tables a preview's queries read. Memberships live beside the snapshot (segment jobs
    write them, engine.memberships): a predicate with inSegment reads the sandbox's current
    ones, attached read-only; the snapshot's own memberships table is always empty."""
    tables = preview_tables(policy)
    if not uses_memberships(node):
        return tables
    attach_memberships(con, preview.sandbox)
    return dataclasses.replace(tables, memberships=MEMBERSHIPS_TABLE)


def policy_for_graph(policy: MergePolicy, graph_type: str) -> MergePolicy:
    """The policy whose tables a preview reads: ``graphType`` ``none`` asks for profiles without
    stitching (the ``events_none`` table, §3.1), so a stitching policy gives way to a sandbox
    policy without stitching, of the same attribute merge if there is one."""
    if graph_type == policy.identity_graph:
        return policy
    others = MergePolicy.objects.filter(sandbox=policy.sandbox, identity_graph=graph_type)
    return (others.filter(attribute_merge=policy.attribute_merge).order_by("name").first()
            or others.order_by("name").first() or policy)


@transaction.atomic
def preview_create(*, sandbox: str, client: ApiClient | None, expression: str,
                   predicate_type: str, predicate_model: str, graph_type: str,
                   policy: MergePolicy | None) -> Preview:
    """A NEW preview on the sandbox's current snapshot; its run is enqueued after commit."""
    from engine.tasks import preview_run  # tasks import this module at import time

    snapshot_file = current_path(sandbox).name  # NoSnapshotError without a snapshot
    chosen = policy_for_graph(policy or default_merge_policy(sandbox), graph_type)
    now = timezone.now()
    preview = Preview.objects.create(
        sandbox=sandbox, client=client, predicate_expression=expression,
        predicate_type=predicate_type, predicate_model=predicate_model, graph_type=graph_type,
        merge_policy_id=str(chosen.id), evaluated_at=now, snapshot_file=snapshot_file,
        expires_at=now + timedelta(seconds=settings.ENGINE_PREVIEW_TTL_SECONDS))
    send_on_commit(lambda: preview_run.delay(preview.id), f"preview {preview.id}")
    return preview


def previews_live() -> Any:
    return Preview.objects.filter(expires_at__gt=timezone.now())


def previews_expire() -> int:
    """Delete expired previews; the number deleted."""
    deleted, _ = Preview.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


def preview_cancel(*, preview: Preview) -> None:
    """Deleting the row is the cancellation: the worker's next conditional write finds no
    row and stops (spec §3.4)."""
    Preview.objects.filter(pk=preview.pk).delete()


def estimate_json(estimate: Any) -> dict[str, Any]:
    data = dataclasses.asdict(estimate)
    data["seconds"] = round(data["seconds"], 4)
    return data


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(scalar(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]))


def has_identity_map(con: duckdb.DuckDBPyConnection, tables: Tables) -> bool:
    columns = dict(con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ?",
        [tables.profiles]).fetchall())
    return str(columns.get("identityMap", "")).startswith("MAP(")


def namespace_json(counts: tuple[tuple[str, int], ...]) -> list[dict[str, Any]]:
    """estimatedNamespaceDistribution: matches per identity namespace (§3.3)."""
    return [{"namespaceId": NAMESPACE_IDS.get(str(ns).upper(), str(ns)), "code": ns,
             "profilesMatchedSoFar": n} for ns, n in counts]


def _plan(con: duckdb.DuckDBPyConnection, tables: Tables) -> SamplePlan:
    return sample_plan(scalar(con, f"SELECT count(*) FROM {q(tables.profiles)}"))


def _sample_filter(plan: SamplePlan) -> str:
    return f"_bucket < {plan.buckets}"


def preview_steps(preview_id: str, *, steps: int = STEPS
                  ) -> Generator[dict[str, Any], None, None]:
    """Run a preview's estimate, writing each step into its row; yields each step's estimate.
    Stops as soon as the row is cancelled or deleted; a failure is written as FAILED. A
    preview another worker holds, or that ended, is left alone."""
    preview = Preview.objects.filter(pk=preview_id, state__in=UNFINISHED).first()
    run = claim(RUNS, preview) if preview is not None else None
    if preview is None or run is None:
        return
    with run:
        try:
            node = parse_predicate(preview.predicate_expression, preview.predicate_type)
            policy = preview_policy(preview)
            now: datetime = preview.evaluated_at or preview.created_at
            with open_snapshot_file(preview.sandbox, preview.snapshot_file) as con:
                tables = reading_tables(con, preview, node, policy)
                if not _has_table(con, tables.profiles):
                    raise LookupError(TABLE_MISSING.format(name=policy.name))
                schema = snapshot_schema(con)
                plan = _plan(con, tables)
                history: list[dict[str, int]] = []
                # one budget for every step: what the evaluator decides is bounded per
                # preview, not per step
                for estimate in estimate_progressively(
                        con, node, now=now, schema=schema, tables=tables, steps=steps,
                        plan=plan, namespaces=has_identity_map(con, tables),
                        budget=EvaluationBudget()):
                    run.check("preview-step")
                    data = estimate_json(estimate)
                    history.append({"profilesReadSoFar": estimate.profiles_read,
                                    "profilesMatchedSoFar": estimate.profiles_matched,
                                    "estimatedSize": estimate.estimated_size,
                                    "bucketsReadSoFar": estimate.buckets_read})
                    data["history"] = list(history)
                    # counted with each step; published with the final one (§3.3 shows it there)
                    data["namespaces"] = (namespace_json(estimate.namespaces) if estimate.done
                                          else [])
                    state = PreviewState.RESULT_READY if estimate.done else PreviewState.RUNNING
                    run.save(estimate=data, state=state)
                    yield data
        except Superseded:
            logger.info("preview %s was cancelled (or given to another worker); its estimate "
                        "stops", preview_id)
        except Exception as error:
            logger.exception("preview %s failed", preview_id)
            with contextlib.suppress(Superseded):  # deleted meanwhile: nothing to tell
                run.save(state=PreviewState.FAILED, error={
                    "description": FAILED_DESCRIPTION.format(error=error), "traceback": ""})


def preview_run(preview_id: str) -> None:
    for _ in preview_steps(preview_id):
        pass


# --- pages of members ---------------------------------------------------------------------

@dataclass(frozen=True)
class MemberPage:
    profiles: list[dict[str, Any]]  # each {"id", "entity", "identities"}
    has_next: bool


def identities_of(entity: dict[str, Any]) -> list[dict[str, Any]]:
    """identityMap as §9.2's identities list: {id, namespace: {code}, primary}."""
    result = []
    for namespace, items in sorted((entity.get("identityMap") or {}).items()):
        for item in items or []:
            identity: dict[str, Any] = {"id": item.get("id"), "namespace": {"code": namespace}}
            if item.get("primary"):
                identity["primary"] = True
            if item.get("authenticatedState"):
                identity["authenticatedState"] = item["authenticatedState"]
            result.append(identity)
    return result


FIRST_PAGE_BUCKETS = 4  # the first window of a page read, when no estimate step tells more
PAGE_MARGIN = 1.25  # the first window is this much wider than the estimate's steps predict


def bucket_of(profile_id: str) -> int | None:
    """A profile's _bucket, as the snapshot computes it (engine.snapshot._bucket_expr: the
    first four hex digits of the md5 profile id, modulo the bucket count)."""
    if len(profile_id) != 32:  # not an md5: no stored profile has this id
        return None
    try:
        return int(profile_id[:4], 16) % BUCKETS
    except ValueError:
        return None


def profile_rows(con: duckdb.DuckDBPyConnection, table: str,
                 ids: list[str]) -> dict[str, dict[str, Any]]:
    """Merged profiles by id, as plain Python values (the hidden columns dropped)."""
    if not ids:
        return {}
    # Rows are stored in _bucket order: a bucket range lets DuckDB skip the rest of the table
    buckets = [bucket for bucket in map(bucket_of, ids) if bucket is not None]
    where = (f"_bucket BETWEEN {min(buckets)} AND {max(buckets)} AND "
             if len(buckets) == len(ids) else "")
    found = con.sql(f"SELECT * FROM {q(table)} WHERE {where}"
                    "_profile_id IN (SELECT unnest($ids))",
                    params={"ids": ids}).to_arrow_table()
    return {row["_profile_id"]: row for row in arrow_rows(found)}


def arrow_rows(table: pa.Table) -> list[dict[str, Any]]:
    schema = table.schema
    return [{name: to_python(row[name], schema.field(name).type) for name in row}
            for row in table.to_pylist()]


def first_window(steps: list[dict[str, int]], wanted: int, buckets: int) -> int:
    """The bucket below which the first `wanted` members should lie, from the estimate's steps
    (each: the members counted in buckets 0 up to bucketsReadSoFar). The steps are contiguous
    bucket ranges, so the range holding the wanted-th member is known; within it the members
    are taken as evenly spread, with a margin. A sparse segment is so read in one pass rather
    than in many small windows; a dense one reads a few buckets, not the first step."""
    low = matched = 0
    for step in steps:
        high, total = step.get("bucketsReadSoFar", 0), step["profilesMatchedSoFar"]
        if not high:  # a row written before steps counted buckets
            return FIRST_PAGE_BUCKETS
        if total >= wanted:
            share = (wanted - matched) / (total - matched)
            return min(high, low + math.ceil((high - low) * share * PAGE_MARGIN) + 1)
        low, matched = high, total
    if low >= buckets:  # the whole sample was counted: fewer members than wanted
        return buckets
    if matched:  # still running: the rate so far, projected
        return min(buckets, max(low, math.ceil(wanted * low / matched * PAGE_MARGIN) + 1))
    return max(low, FIRST_PAGE_BUCKETS)


def member_page(preview: Preview, *, offset: int, limit: int) -> MemberPage:
    """One page of the preview's members (of the estimate's sample), in storage order:
    by bucket, then profile id. The first window of buckets read is sized from the estimate's
    steps (first_window); if it falls short, windows double in width until the page is full,
    so a page reads the buckets it needs, not the sample."""
    node = parse_predicate(preview.predicate_expression, preview.predicate_type)
    now: datetime = preview.evaluated_at or preview.created_at
    with open_snapshot_file(preview.sandbox, preview.snapshot_file) as con:
        tables = reading_tables(con, preview, node, preview_policy(preview))
        schema = snapshot_schema(con)
        buckets = _plan(con, tables).buckets
        wanted = offset + limit + 1  # one more than the page: is there a next page?
        ids: list[str] = []
        width = first_window(preview.estimate.get("history", []), wanted, buckets)
        low = 0
        budget = EvaluationBudget()  # one for the page, however many windows it reads
        while low < buckets and len(ids) < wanted:
            high = min(buckets, low + width)
            window = f"_bucket >= {low} AND _bucket < {high}"
            members = segment_members(con, node, now=now, tables=tables, schema=schema,
                                      profile_filter="p." + window, event_filter=window,
                                      budget=budget).members
            ids.extend(sorted(members, key=lambda pid: (bucket_of(pid) or 0, pid)))
            low, width = high, width * 2
        ids = ids[offset:offset + limit + 1]
        page_ids = ids[:limit]
        rows = profile_rows(con, tables.profiles, page_ids)
    profiles = []
    for profile_id in page_ids:
        entity = {k: v for k, v in rows.get(profile_id, {}).items() if k not in HIDDEN}
        profiles.append({"id": profile_id, "entity": entity,
                         "identities": identities_of(entity)})
    return MemberPage(profiles, len(ids) > limit)
