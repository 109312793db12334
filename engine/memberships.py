"""Segment memberships: one DuckDB file per write, beside the query snapshots, switched atomically.

The query snapshot is immutable (engine.snapshot), so segment jobs keep what they find in a
store of their own: ``<sandbox dir>/memberships/<stamp>.duckdb`` with one table

    memberships(_profile_id VARCHAR, segment_id VARCHAR, status VARCHAR,
                last_qualification_time TIMESTAMP)

(the contract of pql.sql). A write copies the current file's rows, replaces those of the
segments just evaluated with their new statuses (spec/aep-api.md §4.5), writes a new file
aside and renames the sandbox's ``CURRENT`` pointer onto it, exactly as snapshots do; writers
take a lock, readers never wait. ``attach_memberships`` attaches the current file READ_ONLY
as ``ms`` to any connection — also a read-only snapshot connection — so compiled SQL reads
``Tables(memberships="ms.memberships")``.

Statuses of one segment after an evaluation, from its previous rows:
- member now, not a member before (no row, or ``exited``) → ``realized``, qualified now;
- member now and before (``realized``/``existing``) → ``existing``, qualified now;
- member before, not now → ``exited``, at the time it exited (now);
- ``exited`` before and not a member now → stays ``exited`` with its time, and is dropped
  30 days after it (AEP deletes memberships exited for more than 30 days).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from engine.storage import folder_lock, sandbox_dir

CURRENT = "CURRENT"
KEEP_FILES = 3
EXITED_KEPT_FOR = timedelta(days=30)
ALIAS = "ms"
TABLE = f"{ALIAS}.memberships"  # for pql.sql.Tables(memberships=...) and load_profiles
REALIZED, EXISTING, EXITED = "realized", "existing", "exited"
MEMBER_STATUSES = (REALIZED, EXISTING)
COLUMNS = ("_profile_id VARCHAR, segment_id VARCHAR, status VARCHAR, "
           "last_qualification_time TIMESTAMP")


def memberships_dir(sandbox: str) -> Path:
    return sandbox_dir(sandbox) / "memberships"


def memberships_path(sandbox: str) -> Path | None:
    """The current memberships file of the sandbox, or None before the first write."""
    folder = memberships_dir(sandbox)
    try:
        name = (folder / CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    return folder / name


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


@dataclass(frozen=True)
class WriteResult:
    path: Path
    # segment id → {"realized": n, "existing": n, "exited": n}
    by_status: dict[str, dict[str, int]]


def write_memberships(sandbox: str, results: Mapping[str, Set[str]], now: datetime
                      ) -> WriteResult:
    """Record the members of each evaluated segment (segment id → profile ids) as of `now`;
    rows of other segments are carried over unchanged."""
    stamp = _naive_utc(now)
    cutoff = stamp - EXITED_KEPT_FOR
    with folder_lock(memberships_dir(sandbox)) as folder:
        previous = memberships_path(sandbox)
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}.duckdb"
        building = folder / f".{name}.building"
        con = duckdb.connect(str(building))
        by_status: dict[str, dict[str, int]] = {}
        try:
            con.execute("SET TimeZone = 'UTC'")
            if previous is not None:
                con.execute(f"ATTACH '{_sql(str(previous))}' AS prev (READ_ONLY)")
                con.execute("CREATE TEMP TABLE old AS SELECT * FROM prev.memberships")
                con.execute("DETACH prev")
            else:
                con.execute(f"CREATE TEMP TABLE old ({COLUMNS})")
            con.execute(f"CREATE TABLE memberships ({COLUMNS})")
            con.execute("CREATE TEMP TABLE evaluated (segment_id VARCHAR)")
            if results:
                con.executemany("INSERT INTO evaluated VALUES (?)", [[s] for s in results])
            con.execute("CREATE TEMP TABLE members (_profile_id VARCHAR, segment_id VARCHAR)")
            for segment_id, members in results.items():
                if members:
                    con.execute("INSERT INTO members SELECT unnest($ids), $segment",
                                {"ids": sorted(members), "segment": segment_id})
            con.execute("""
                INSERT INTO memberships
                SELECT * FROM old WHERE segment_id NOT IN (SELECT segment_id FROM evaluated)
            """)
            con.execute("""
                INSERT INTO memberships
                SELECT coalesce(n._profile_id, o._profile_id), coalesce(n.segment_id, o.segment_id),
                       CASE WHEN n._profile_id IS NULL THEN 'exited'
                            WHEN o.status IN ('realized', 'existing') THEN 'existing'
                            ELSE 'realized' END,
                       CASE WHEN n._profile_id IS NOT NULL THEN $now
                            WHEN o.status = 'exited' THEN o.last_qualification_time
                            ELSE $now END
                FROM members n
                FULL OUTER JOIN (SELECT * FROM old
                                 WHERE segment_id IN (SELECT segment_id FROM evaluated)) o
                  ON o._profile_id = n._profile_id AND o.segment_id = n.segment_id
                WHERE NOT (n._profile_id IS NULL AND o.status = 'exited'
                           AND o.last_qualification_time < $cutoff)
            """, {"now": stamp, "cutoff": cutoff})
            by_status = {segment_id: {REALIZED: 0, EXISTING: 0, EXITED: 0}
                         for segment_id in results}
            for segment_id, status, count in con.execute("""
                    SELECT segment_id, status, count(*) FROM memberships
                    WHERE segment_id IN (SELECT segment_id FROM evaluated)
                      AND (status <> 'exited' OR last_qualification_time = $now)
                    GROUP BY ALL""", {"now": stamp}).fetchall():
                by_status[segment_id][status] = count
            con.execute("CHECKPOINT")
        except BaseException:
            con.close()
            building.unlink(missing_ok=True)
            Path(f"{building}.wal").unlink(missing_ok=True)
            raise
        con.close()
        os.replace(building, folder / name)
        pointer = folder / f".{CURRENT}.tmp"
        pointer.write_text(name + "\n")
        os.replace(pointer, folder / CURRENT)  # the switch: atomic on POSIX
        _clean_old(folder, keep=name)
        return WriteResult(folder / name, by_status)


def _clean_old(folder: Path, keep: str) -> None:
    files = sorted(folder.glob("*.duckdb"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[KEEP_FILES:]:
        if old.name != keep:
            old.unlink(missing_ok=True)  # open readers keep their file until they close it


def _sql(text: str) -> str:
    return text.replace("'", "''")


def attach_memberships(con: duckdb.DuckDBPyConnection, sandbox: str) -> Path:
    """Attach the sandbox's current memberships READ_ONLY as ``ms`` (replacing an earlier
    attachment); a sandbox without memberships gets an empty file first. Returns the file."""
    path = memberships_path(sandbox)
    if path is None:
        with folder_lock(memberships_dir(sandbox)):
            path = memberships_path(sandbox)
        if path is None:
            path = write_memberships(sandbox, {}, datetime.now(UTC)).path
    attached = {row[0] for row in con.execute(
        "SELECT database_name FROM duckdb_databases()").fetchall()}
    if ALIAS in attached:
        con.execute(f"DETACH {ALIAS}")
    con.execute(f"ATTACH '{_sql(str(path))}' AS {ALIAS} (READ_ONLY)")
    return path
