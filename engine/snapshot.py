"""The query snapshot: one immutable DuckDB file per build, switched into place atomically.

Tables (the contract pql.sql compiles against; see its module docstring):

- ``profiles_<policy>``: merged profiles of one merge policy — ``_profile_id``, ``_bucket``, then
  one column per top-level field of the profile union schema (STRUCTs, LISTs, MAPs), with
  ``identityMap`` rebuilt from every identity of the stitched profile, exactly one of them
  ``primary`` when any fragment marks one (AEP's rule; chosen by the merge policy, see
  ``_primaries``). The default policy's table is also visible as the view ``profiles``.
- ``events`` (``events_none`` for policies without stitching): ``_profile_id``, ``_bucket``,
  ``timestamp``, ``_ingested_at`` (its batch's completion, naive UTC: exports filter on it) and
  the event union schema's fields, sorted by bucket, profile and time.
- ``identities``: ``_profile_id, namespace, id, primary, authenticated_state`` (``primary`` as
  the default policy's ``identityMap`` marks it).
- ``memberships``: ``_profile_id, segment_id, status, last_qualification_time``.
- ``excluded_profiles``: ``_profile_id, reason`` — graphs over 50 identities, profiles over
  5,000 events (spec/aep-api.md §8.3); they are in no other table.
- ``snapshot_info``: key/value facts (built at, counts, policies).

Rows are ordered by ``_bucket`` (0–1023, from the profile id's md5), so a sample of buckets is a
contiguous range of each table. A rebuild writes a new file and then renames the sandbox's
CURRENT pointer onto it; readers open the file named there read-only, so queries that started
on the old file finish on it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from engine import xdm
from engine.duck import scalar, sql_string
from engine.identity import MAX_IDENTITIES_PER_GRAPH, stitch
from engine.ingest import IDENTITIES_COLUMN, batch_path
from engine.models import (
    AttributeMerge,
    Batch,
    BatchStatus,
    Dataset,
    IdentityGraph,
    MergePolicy,
    Snapshot,
    SnapshotStatus,
    XdmClass,
)
from engine.storage import FolderBusy, folder_lock, snapshots_dir

logger = logging.getLogger(__name__)

BUCKETS = 1024
MAX_EVENTS_PER_PROFILE = 5_000
KEEP_SNAPSHOTS = 3
CURRENT = "CURRENT"
q = xdm.quote_identifier


class NoSnapshotError(LookupError):
    """The sandbox has no snapshot yet (nothing ingested, or never built)."""


def union_tree(sandbox: str, xdm_class: str) -> xdm.Tree:
    """The union schema of a class: every profile-enabled dataset's schema merged."""
    tree: xdm.Tree = {"type": "object", "fields": {}}
    for schema in (Dataset.objects.in_sandbox(sandbox).profile_enabled()
                   .filter(xdm_class=xdm_class).values_list("schema", flat=True)):
        if schema:
            tree = xdm.merge(tree, schema)
    return xdm.prune(tree) or {"type": "object", "fields": {}}


def default_merge_policy(sandbox: str) -> MergePolicy:
    """The sandbox's default policy, created (timestampOrdered, pdg) when there is none."""
    with transaction.atomic():
        policy = MergePolicy.objects.filter(sandbox=sandbox, default=True).first()
        if policy is None:
            policy, _ = MergePolicy.objects.get_or_create(
                sandbox=sandbox, name="Default timestamp-ordered",
                defaults={"identity_graph": IdentityGraph.PDG,
                          "attribute_merge": AttributeMerge.TIMESTAMP_ORDERED, "default": True},
            )
            if not policy.default:
                policy.default = True
                policy.save(update_fields=["default"])
    return policy


def profiles_table(policy: MergePolicy) -> str:
    return f"profiles_{policy.id.hex}"


def events_table(policy: MergePolicy) -> str:
    return "events" if policy.identity_graph == IdentityGraph.PDG else "events_none"


# --- reading ---------------------------------------------------------------------------------

def current_path(sandbox: str) -> Path:
    pointer = snapshots_dir(sandbox) / CURRENT
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        raise NoSnapshotError(f"Sandbox {sandbox} has no query snapshot yet.") from None
    return snapshots_dir(sandbox) / name


@contextmanager
def open_snapshot(sandbox: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the sandbox's current snapshot."""
    connection = duckdb.connect(str(current_path(sandbox)), read_only=True)
    try:
        yield connection
    finally:
        connection.close()


@contextmanager
def open_snapshot_file(sandbox: str, file_name: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to one named snapshot file of the sandbox (a preview reads the
    file it started on, even after a rebuild switched CURRENT); NoSnapshotError once that file
    has been cleaned away."""
    path = snapshots_dir(sandbox) / file_name
    if not file_name or "/" in file_name or file_name.startswith(".") or not path.is_file():
        raise NoSnapshotError(f"The snapshot {file_name} of sandbox {sandbox} is gone.")
    connection = duckdb.connect(str(path), read_only=True)
    try:
        yield connection
    finally:
        connection.close()


# --- building --------------------------------------------------------------------------------

@dataclass(frozen=True)
class BatchFile:
    dataset_id: str
    path: Path
    ingested_at: str  # ISO, UTC
    tree: xdm.Tree


def _batch_files(sandbox: str, xdm_class: str) -> list[BatchFile]:
    batches = (Batch.objects.filter(dataset__sandbox=sandbox, dataset__xdm_class=xdm_class,
                                    dataset__profile_enabled=True, status=BatchStatus.SUCCESS)
               .select_related("dataset").order_by("completed_at", "id"))
    files = []
    for batch in batches:
        folder = batch_path(batch)
        stamp = (batch.completed_at or batch.created_at).astimezone(
            UTC).replace(tzinfo=None).isoformat(sep=" ")
        for item in batch.files:
            files.append(BatchFile(batch.dataset_id, folder / item["name"], stamp,
                                   batch.dataset.schema))
    return files


def snapshot_build(*, sandbox: str, memory_limit: str | None = None) -> Snapshot:
    """Build a new snapshot from every successful batch and make it current."""
    with folder_lock(snapshots_dir(sandbox)):
        folder = snapshots_dir(sandbox)
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}.duckdb"
        snapshot = Snapshot.objects.create(sandbox=sandbox, file_name=name)
        building = folder / f".{name}.building"
        started = time.monotonic()
        try:
            stats = _build(sandbox, building, memory_limit or settings.ENGINE_MEMORY_LIMIT)
        except Exception as error:
            building.unlink(missing_ok=True)
            Path(f"{building}.wal").unlink(missing_ok=True)
            snapshot.status = SnapshotStatus.FAILED
            snapshot.failure_reason = f"{type(error).__name__}: {error}"
            snapshot.finished_at = timezone.now()
            snapshot.save()
            logger.exception("snapshot for %s failed", sandbox)
            raise
        os.replace(building, folder / name)
        pointer = folder / f".{CURRENT}.tmp"
        pointer.write_text(name + "\n")
        os.replace(pointer, folder / CURRENT)  # the switch: atomic on POSIX
        stats["seconds"] = round(time.monotonic() - started, 3)
        with transaction.atomic():
            Snapshot.objects.filter(sandbox=sandbox, status=SnapshotStatus.READY).update(
                status=SnapshotStatus.RETIRED)
            snapshot.status = SnapshotStatus.READY
            snapshot.stats = stats
            snapshot.finished_at = timezone.now()
            snapshot.save()
        _clean_old(folder, keep=name)
        logger.info("snapshot %s ready in %.1fs: %s", name, stats["seconds"], stats)
        return snapshot


def snapshot_refresh(*, sandbox: str, since: datetime) -> Snapshot | None:
    """Build a snapshot unless a ready one was started at or after `since` (it read the
    catalog as it was then): a redelivered task, or several changes in a row, build once."""
    if Snapshot.objects.filter(sandbox=sandbox, status=SnapshotStatus.READY,
                               started_at__gte=since).exists():
        return None
    return snapshot_build(sandbox=sandbox)


BUILD_STOPPED = "The process building it stopped (killed, out of memory or restarted)."


def snapshots_sweep(*, now: datetime | None = None) -> int:
    """Rebuild the snapshots that miss a batch because the worker building them stopped (the
    batch had succeeded, its worker was killed in the build that follows): in a sandbox whose
    newest successful batch is ENGINE_JOB_STALE_SECONDS old and newer than any build since,
    with no build running (a build holds the snapshots' lock; a dead one holds nothing), the
    builds left ``building`` fail with BUILD_STOPPED and a rebuild is sent — at most
    ENGINE_JOB_MAX_REQUEUES + 1 times for one batch. The number of rebuilds sent."""
    from engine.tasks_jobs import snapshot_rebuild

    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.ENGINE_JOB_STALE_SECONDS)
    newest = (Batch.objects.filter(status=BatchStatus.SUCCESS, dataset__profile_enabled=True,
                                   completed_at__isnull=False)
              .values("dataset__sandbox").annotate(latest=Max("completed_at")))
    sent = 0
    for row in newest:
        sandbox, latest = row["dataset__sandbox"], row["latest"]
        since = Snapshot.objects.filter(sandbox=sandbox, started_at__gte=latest)
        stopped = Q(status=SnapshotStatus.BUILDING) | Q(failure_reason=BUILD_STOPPED)
        if (latest > stale or since.exclude(stopped).exists()
                or since.filter(stopped).count() > settings.ENGINE_JOB_MAX_REQUEUES):
            continue  # its worker may still build it; or built since; or failed for a reason
        try:
            with folder_lock(snapshots_dir(sandbox), wait=False) as folder:
                for dead in Snapshot.objects.filter(sandbox=sandbox,
                                                    status=SnapshotStatus.BUILDING):
                    building = folder / f".{dead.file_name}.building"
                    building.unlink(missing_ok=True)
                    Path(f"{building}.wal").unlink(missing_ok=True)
                    Snapshot.objects.filter(pk=dead.pk, status=SnapshotStatus.BUILDING).update(
                        status=SnapshotStatus.FAILED, failure_reason=BUILD_STOPPED,
                        finished_at=now)
        except FolderBusy:  # a build is running
            continue
        logger.warning("snapshot of %s misses batches since %s: rebuilding", sandbox, latest)
        snapshot_rebuild.delay(sandbox, latest.isoformat())
        sent += 1
    return sent


def _clean_old(folder: Path, keep: str) -> None:
    files = sorted(folder.glob("*.duckdb"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[KEEP_SNAPSHOTS:]:
        if old.name != keep:
            old.unlink(missing_ok=True)  # open readers keep their file until they close it


class _Steps:
    """Seconds per build step, kept in the snapshot's stats (what a slow build spent time on)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.monotonic()

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = round(now - self._last, 3)
        self._last = now


def _build(sandbox: str, target: Path, memory_limit: str) -> dict[str, Any]:
    con = duckdb.connect(str(target))
    steps = _Steps()
    try:
        con.execute(f"SET memory_limit = {sql_string(memory_limit)}")
        con.execute("SET preserve_insertion_order = false")
        con.execute(f"SET temp_directory = {sql_string(str(target.parent / '.tmp'))}")
        profile_tree = union_tree(sandbox, XdmClass.PROFILE)
        event_tree = union_tree(sandbox, XdmClass.EVENT)
        event_tree["fields"].setdefault("timestamp", {"type": "date-time"})
        _raw_view(con, "raw_fragments", profile_tree, _batch_files(sandbox, XdmClass.PROFILE))
        _raw_view(con, "raw_events", event_tree, _batch_files(sandbox, XdmClass.EVENT))

        graph_stats = _stitch(con)
        steps.done("stitching")
        policies = list(MergePolicy.objects.filter(sandbox=sandbox))
        if not policies:
            policies = [default_merge_policy(sandbox)]
        graphs = {IdentityGraph(p.identity_graph) for p in policies}
        for graph in sorted(graphs):
            _events(con, event_tree, graph)
            steps.done(f"events ({graph})")

        counts: dict[str, int] = {}
        for policy in policies:
            _merge(con, policy, profile_tree)
            counts[str(policy.id)] = scalar(
                con, f"SELECT count(*) FROM {q(profiles_table(policy))}")
            steps.done(f"profiles ({policy.name})")
        default = next((p for p in policies if p.default), policies[0])
        con.execute(f"CREATE VIEW profiles AS SELECT * FROM {q(profiles_table(default))}")
        _mark_primaries(con, default)
        con.execute("""CREATE TABLE memberships (_profile_id VARCHAR, segment_id VARCHAR,
                       status VARCHAR, last_qualification_time TIMESTAMP)""")
        con.execute("DROP VIEW raw_fragments")
        con.execute("DROP VIEW raw_events")
        con.execute("DROP TABLE identity_profile")
        con.execute("DROP TABLE key_profile")
        stats = {
            "profiles": counts,
            "default_policy": str(default.id),
            "events": scalar(con, "SELECT count(*) FROM events"),
            "identities": scalar(con, "SELECT count(*) FROM identities"),
            "excluded": dict(con.execute(
                "SELECT reason, count(*) FROM excluded_profiles GROUP BY reason").fetchall()),
            **graph_stats,
        }
        con.execute("CREATE TABLE snapshot_info (key VARCHAR, value VARCHAR)")
        con.executemany("INSERT INTO snapshot_info VALUES (?, ?)", [
            ("built_at", timezone.now().isoformat()), ("sandbox", sandbox),
            ("stats", json.dumps(stats)),
            ("profile_schema", json.dumps(profile_tree)), ("event_schema", json.dumps(event_tree)),
        ])
        con.execute("CHECKPOINT")
        steps.done("finish")
        stats["steps"] = steps.seconds
        return stats
    finally:
        con.close()


IDENTITY_KEY = "upper(x.namespace) || chr(31) || x.id"
IDENTITIES_TYPE = xdm.duckdb_type({"type": "array", "items": {"type": "object", "fields": {
    "namespace": xdm.STRING, "id": xdm.STRING, "primary": {"type": "boolean"},
    "authenticatedState": xdm.STRING}}})


def _raw_view(con: duckdb.DuckDBPyConnection, name: str, tree: xdm.Tree,
              files: list[BatchFile]) -> None:
    """All batches of a class as one view over their Parquet files, each column cast to the
    union type. Read where it is used: the identity steps read only the identities column."""
    identities = q(IDENTITIES_COLUMN)
    keys = (f"upper({identities}[1].namespace) || chr(31) || {identities}[1].id AS _key, "
            f"coalesce(list_filter({identities}, lambda x: x.\"primary\")[1], {identities}[1]) "
            f"AS _primary")
    if not files:
        columns = "".join(f", NULL::{xdm.duckdb_type(sub)} AS {q(n)}"
                          for n, sub in tree["fields"].items())
        con.execute(f"""CREATE VIEW {name} AS SELECT NULL::VARCHAR AS _dataset_id,
                        NULL::TIMESTAMP AS _ingested_at, NULL::BIGINT AS _row,
                        NULL::{IDENTITIES_TYPE} AS {identities}, NULL::VARCHAR AS _key,
                        NULL::STRUCT(namespace VARCHAR, id VARCHAR, "primary" BOOLEAN,
                                     authenticatedState VARCHAR) AS _primary{columns}
                        WHERE false""")
        return
    selects = []
    for item in files:
        present = item.tree.get("fields", {})
        columns = "".join(
            f", CAST({q(n)} AS {xdm.duckdb_type(sub)}) AS {q(n)}" if n in present
            else f", NULL::{xdm.duckdb_type(sub)} AS {q(n)}"
            for n, sub in tree["fields"].items()
        )
        selects.append(f"""
            SELECT {sql_string(item.dataset_id)} AS _dataset_id,
                   TIMESTAMP {sql_string(item.ingested_at)} AS _ingested_at,
                   file_row_number AS _row, {identities}, {keys}{columns}
            FROM read_parquet({sql_string(str(item.path))}, file_row_number = true)""")
    con.execute(f"CREATE VIEW {name} AS " + "\nUNION ALL ".join(selects))


def _stitch(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The identity graph (pdg), the identities table, and the profiles too big to keep."""
    identities = q(IDENTITIES_COLUMN)
    graph_stats = stitch(con, f"""
        SELECT list_sort(list_distinct(list_transform({identities},
                                       lambda x: {IDENTITY_KEY}))) AS keys
        FROM (SELECT {identities} FROM raw_fragments UNION ALL SELECT {identities} FROM raw_events)
        WHERE len({identities}) > 1
    """)
    # Identities first made distinct, then given their profile: md5 and the join run once per
    # identity, not once per record.
    # `_event_primary_at`: the last ingest time an event marked the identity primary (what a
    # profile known only from its events takes its primary identity from, see _primaries);
    # dropped once the profiles are merged. `primary` is set by the default policy's merge.
    con.execute(f"""
        CREATE TABLE identities AS
        SELECT coalesce(ip._profile_id, md5(d._key)) AS _profile_id, d.namespace, d.id,
               d."primary", d.authenticated_state, d._key, d._event_primary_at
        FROM (SELECT _key, namespace, id, bool_or(coalesce("primary", false)) AS "primary",
                     any_value(authenticated_state) AS authenticated_state,
                     max(_ingested_at) FILTER (WHERE _event AND coalesce("primary", false))
                         AS _event_primary_at
              FROM (SELECT x.namespace, x.id, x."primary", _ingested_at, _event,
                           x.authenticatedState AS authenticated_state, {IDENTITY_KEY} AS _key
                    FROM (SELECT unnest({identities}) AS x, _ingested_at, false AS _event
                          FROM raw_fragments
                          UNION ALL SELECT unnest({identities}) AS x, _ingested_at,
                                           true AS _event
                          FROM raw_events))
              GROUP BY _key, namespace, id) d
        LEFT JOIN identity_profile ip ON ip.key = d._key
    """)
    # Every identity key and its profile: records find their profile with one equi-join.
    con.execute("CREATE TABLE key_profile AS SELECT DISTINCT _key AS key, _profile_id "
                "FROM identities")
    con.execute(f"""
        CREATE TABLE excluded_profiles AS
        SELECT _profile_id, 'more than {MAX_IDENTITIES_PER_GRAPH} identities' AS reason
        FROM identities GROUP BY _profile_id HAVING count(*) > {MAX_IDENTITIES_PER_GRAPH}
        UNION ALL
        SELECT kp._profile_id, 'more than {MAX_EVENTS_PER_PROFILE} events' AS reason
        FROM (SELECT _key FROM raw_events) e JOIN key_profile kp ON kp.key = e._key
        GROUP BY 1 HAVING count(*) > {MAX_EVENTS_PER_PROFILE}
    """)
    # Excluded profiles leave no identities, so their records join to nothing from here on.
    for table in ("identities", "key_profile"):
        con.execute(f"DELETE FROM {table} "
                    "WHERE _profile_id IN (SELECT _profile_id FROM excluded_profiles)")
    return graph_stats


def _profile_of(alias: str, graph: str) -> tuple[str, str]:
    """(join clause, profile id expression) for rows of a raw view under `alias`: with the
    identity graph, the component of the record's first identity (all of a record's identities
    share one); without, the record's primary (else first) identity alone."""
    if graph == IdentityGraph.PDG:
        # an inner join: the records of excluded profiles find no key and drop out
        return (f"JOIN key_profile kp ON kp.key = {alias}._key", "kp._profile_id")
    return ("", f"md5(upper({alias}._primary.namespace) || chr(31) || {alias}._primary.id)")


def _bucket_expr(column: str = "_profile_id") -> str:
    return f"(('0x' || left({column}, 4))::INTEGER % {BUCKETS})::SMALLINT"


def _events(con: duckdb.DuckDBPyConnection, tree: xdm.Tree, graph: str) -> None:
    table = "events" if graph == IdentityGraph.PDG else "events_none"
    join, profile = _profile_of("e", graph)
    columns = "".join(f", e.{q(name)}" for name in tree["fields"] if name != "timestamp")
    con.execute(f"""
        CREATE TABLE {table} AS
        SELECT _profile_id, {_bucket_expr()} AS _bucket, * EXCLUDE (_profile_id)
        FROM (SELECT {profile} AS _profile_id, e."timestamp", e._ingested_at{columns}
              FROM raw_events e {join})
        {"" if graph == IdentityGraph.PDG else
         "WHERE _profile_id NOT IN (SELECT _profile_id FROM excluded_profiles)"}
        ORDER BY _bucket, _profile_id, "timestamp"
    """)


@dataclass
class _Leaf:
    alias: str
    expr: str


def _merge(con: duckdb.DuckDBPyConnection, policy: MergePolicy, tree: xdm.Tree) -> None:
    """One merged profile per stitched profile: per attribute, the winning fragment's value;
    its identityMap marks at most one identity primary (see _primaries)."""
    join, profile = _profile_of("f", policy.identity_graph)
    stitched = policy.identity_graph == IdentityGraph.PDG
    if stitched:
        # every stitched profile has identities, and the table is much smaller than events
        ids = "SELECT DISTINCT _profile_id FROM identities"
    else:
        ids = (f"SELECT {profile} AS _profile_id FROM raw_fragments f "
               "UNION SELECT _profile_id FROM events_none")
    order, where = _fragment_order(policy)

    leaves: list[_Leaf] = []

    def collect(sub: xdm.Tree, expr: str) -> None:
        if sub["type"] == "object":
            for name, child in sub["fields"].items():
                collect(child, f"struct_extract({expr}, {sql_string(name)})")
        else:
            leaves.append(_Leaf(f"l{len(leaves)}", expr))

    def rebuild(sub: xdm.Tree, expr: str) -> str:
        if sub["type"] != "object":
            return leaves_by_expr[expr]
        parts = []
        nulls = []
        for name, child in sub["fields"].items():
            inner = rebuild(child, f"struct_extract({expr}, {sql_string(name)})")
            parts.append(f"{q(name)} := {inner}")
            nulls.append(f"{inner} IS NULL")
        # an object whose every field is null is absent, as in the source records
        return f"CASE WHEN {' AND '.join(nulls)} THEN NULL ELSE struct_pack({', '.join(parts)}) END"

    # With stitching, identityMap lists every identity of the profile; without, it is the
    # winning fragment's (an attribute like the others), its primary made the profile's own.
    top = [(name, sub) for name, sub in tree["fields"].items()
           if not (stitched and name == "identityMap")]

    for name, sub in top:
        collect(sub, f"f.{q(name)}")
    leaves_by_expr = {leaf.expr: q(leaf.alias) for leaf in leaves}
    aggregates = "".join(
        f",\n arg_max({leaf.expr}, _order) FILTER (WHERE {leaf.expr} IS NOT NULL)"
        f" AS {q(leaf.alias)}" for leaf in leaves
    )
    rebuilt = ""
    for name, sub in top:
        expr = rebuild(sub, f"f.{q(name)}")
        if name == "identityMap":
            expr = _own_primary(expr)
        rebuilt += f",\n {expr} AS {q(name)}"
    if stitched:
        _primaries(con, policy, join, profile, order, where)
        identity_map = ', im.identityMap AS "identityMap"'
        identity_maps = f"""
            SELECT _profile_id,
                   map_from_entries(list({{'key': namespace, 'value': ids}})) AS identityMap
            FROM (SELECT i._profile_id, i.namespace,
                         -- list_sort after: an ORDER BY inside list() was measured 10× slower
                         list_sort(list({{'id': i.id,
                                         'primary': coalesce(i.namespace = pp.p.namespace
                                                             AND i.id = pp.p.id, false),
                                         'authenticatedState': i.authenticated_state}})) AS ids
                  FROM identities i LEFT JOIN {q(primaries_table(policy))} pp USING (_profile_id)
                  GROUP BY i._profile_id, i.namespace)
            GROUP BY _profile_id"""
    else:
        # a profile of events only has no fragment's map: its own identity is its map
        identity_map = ""
        identity_maps = """
            SELECT md5(upper(namespace) || chr(31) || id) AS _profile_id,
                   arg_min(MAP {namespace: [{'id': id, 'primary': true,
                                             'authenticatedState': authenticated_state}]},
                           namespace) AS identityMap
            FROM identities GROUP BY 1"""
    table = q(profiles_table(policy))
    con.execute(f"""
        CREATE TABLE {table} AS
        WITH fragments AS (
            SELECT {profile} AS _profile_id, {order} AS _order, f.*
            FROM raw_fragments f {join}
            {where}
        ),
        flat AS (
            SELECT _profile_id{aggregates}
            FROM fragments f
            WHERE _profile_id NOT IN (SELECT _profile_id FROM excluded_profiles)
            GROUP BY _profile_id
        ),
        -- a profile exists if any fragment does: record attributes or only events
        ids AS ({ids}),
        identity_maps AS ({identity_maps})
        SELECT ids._profile_id, {_bucket_expr('ids._profile_id')} AS _bucket
               {identity_map}{rebuilt}
        FROM ids
        LEFT JOIN flat USING (_profile_id)
        LEFT JOIN identity_maps im USING (_profile_id)
        WHERE ids._profile_id NOT IN (SELECT _profile_id FROM excluded_profiles)
        ORDER BY _bucket, _profile_id
    """)


def _mark_primaries(con: duckdb.DuckDBPyConnection, default: MergePolicy) -> None:
    """identities.primary as the default policy's identityMaps mark it, so that every reader
    of the snapshot sees the same primary identity; then the build's helper column goes."""
    if default.identity_graph == IdentityGraph.PDG:
        con.execute('UPDATE identities SET "primary" = false')
        con.execute(f"""UPDATE identities SET "primary" = true
                        FROM {q(primaries_table(default))} pp
                        WHERE pp._profile_id = identities._profile_id
                          AND pp.p.namespace = identities.namespace AND pp.p.id = identities.id""")
    else:  # each profile is one identity, primary in its map
        con.execute(f"""UPDATE identities SET "primary" = md5(_key) IN (
                            SELECT _profile_id FROM {q(profiles_table(default))})""")
    con.execute("ALTER TABLE identities DROP COLUMN _event_primary_at")
    con.execute("ALTER TABLE identities DROP COLUMN _key")


def _fragment_order(policy: MergePolicy) -> tuple[str, str]:
    """(order, WHERE) of a policy's record fragments (alias f): which fragment wins is the
    highest order — dataset rank, then the later batch, then the later row, packed in one
    HUGEINT, as arg_max compares it much faster than a struct of the three; the WHERE leaves
    out the datasets a dataset-precedence policy does not list (they are not merged)."""
    if policy.attribute_merge == AttributeMerge.DATASET_PRECEDENCE:
        datasets = list(policy.dataset_order)
        ranks = " ".join(f"WHEN {sql_string(d)} THEN {len(datasets) - i}"
                         for i, d in enumerate(datasets))
        rank = f"CASE f._dataset_id {ranks} END" if datasets else "NULL"
        where = (f"WHERE f._dataset_id IN ({', '.join(sql_string(d) for d in datasets)})"
                 if datasets else "WHERE false")
    else:
        rank, where = "0", ""
    order = (f"((({rank})::HUGEINT << 96) + (epoch_us(f._ingested_at)::HUGEINT << 40) "
             "+ f._row)")
    return order, where


def primaries_table(policy: MergePolicy) -> str:
    return f"primary_{policy.id.hex}"


def _primaries(con: duckdb.DuckDBPyConnection, policy: MergePolicy, join: str, profile: str,
               order: str, where: str) -> None:
    """The one primary identity of each stitched profile (AEP: exactly one identity of an
    identityMap is primary), as a temporary table ``(_profile_id, p {namespace, id})``.

    The merge policy decides, as it decides every attribute: the identity marked primary by
    the winning record fragment among those that mark one (highest dataset precedence, else
    the most recently ingested). A profile whose records mark none — one known only from its
    events — takes the primary identity of its most recently ingested event (ties: the
    greatest namespace and id, so that a rebuild chooses the same). Without any identity
    marked primary, none is."""
    identities = q(IDENTITIES_COLUMN)
    condition = f"{where} AND" if where else "WHERE"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {q(primaries_table(policy))} AS
        WITH records AS (
            SELECT {profile} AS _profile_id,
                   arg_max({{'namespace': f._flagged.namespace, 'id': f._flagged.id}},
                           {order}) AS p
            FROM (SELECT *, list_filter({identities},
                                        lambda x: coalesce(x."primary", false))[1] AS _flagged
                  FROM raw_fragments) f {join}
            {condition} f._flagged IS NOT NULL
            GROUP BY 1
        ),
        events AS (
            SELECT _profile_id,
                   arg_max({{'namespace': namespace, 'id': id}},
                           {{'at': _event_primary_at, 'namespace': namespace, 'id': id}}) AS p
            FROM identities WHERE _event_primary_at IS NOT NULL
            GROUP BY 1
        )
        SELECT _profile_id, coalesce(r.p, e.p) AS p
        FROM records r FULL OUTER JOIN events e USING (_profile_id)
    """)


def _own_primary(identity_map: str) -> str:
    """Without stitching a profile is its fragments' primary (else first) identity, and its
    md5 is the profile id (_profile_of): that identity is the map's one primary."""
    return (f"CASE WHEN {identity_map} IS NULL THEN im.identityMap ELSE "
            f"map_from_entries(list_transform(map_entries({identity_map}), lambda e: "
            "{'key': e.key, 'value': list_transform(e.value, lambda i: {'id': i.id, "
            "'primary': md5(upper(e.key) || chr(31) || i.id) = ids._profile_id, "
            "'authenticatedState': i.authenticatedState})})) END")
