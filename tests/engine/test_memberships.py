"""The memberships store: statuses against the previous file, atomic switch, read-only attach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from engine.memberships import attach_memberships, memberships_path, write_memberships

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def rows(path: Path) -> dict[tuple[str, str], tuple[str, datetime]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {(pid, seg): (status, when) for pid, seg, status, when in con.execute(
            "SELECT * FROM memberships").fetchall()}


def test_statuses_follow_the_previous_file() -> None:
    first = write_memberships("prod", {"s": {"a", "b"}, "t": {"a"}}, T0)
    assert first.by_status["s"] == {"realized": 2, "existing": 0, "exited": 0}
    later = T0 + timedelta(days=1)
    second = write_memberships("prod", {"s": {"b", "c"}}, later)
    assert second.by_status == {"s": {"realized": 1, "existing": 1, "exited": 1}}
    stored = rows(second.path)
    naive = later.replace(tzinfo=None)
    assert stored[("b", "s")] == ("existing", naive)
    assert stored[("c", "s")] == ("realized", naive)
    assert stored[("a", "s")] == ("exited", naive)
    assert stored[("a", "t")] == ("realized", T0.replace(tzinfo=None))  # not evaluated: kept
    assert memberships_path("prod") == second.path != first.path


def test_exited_memberships_are_dropped_after_thirty_days() -> None:
    write_memberships("prod", {"s": {"a"}}, T0)
    write_memberships("prod", {"s": set()}, T0 + timedelta(days=1))
    kept = write_memberships("prod", {"s": set()}, T0 + timedelta(days=20))
    assert rows(kept.path)[("a", "s")] == ("exited", (T0 + timedelta(days=1)).replace(
        tzinfo=None))
    assert kept.by_status["s"] == {"realized": 0, "existing": 0, "exited": 0}
    gone = write_memberships("prod", {"s": set()}, T0 + timedelta(days=32))
    assert rows(gone.path) == {}


def test_a_comeback_after_exiting_is_realized_again() -> None:
    write_memberships("prod", {"s": {"a"}}, T0)
    write_memberships("prod", {"s": set()}, T0 + timedelta(days=1))
    back = write_memberships("prod", {"s": {"a"}}, T0 + timedelta(days=2))
    assert rows(back.path)[("a", "s")][0] == "realized"


def test_attach_works_on_a_read_only_connection_and_creates_an_empty_store(
        tmp_path: Path) -> None:
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).close()
    with duckdb.connect(str(other), read_only=True) as con:
        path = attach_memberships(con, "prod")
        assert con.execute("SELECT count(*) FROM ms.memberships").fetchone() == (0,)
        write_memberships("prod", {"s": {"a"}}, T0)
        # a reader keeps its file until it attaches again
        assert con.execute("SELECT count(*) FROM ms.memberships").fetchone() == (0,)
        assert attach_memberships(con, "prod") != path
        assert con.execute("SELECT count(*) FROM ms.memberships").fetchone() == (1,)
        with pytest.raises(duckdb.Error):
            con.execute("DELETE FROM ms.memberships")


def test_old_files_are_cleaned_up(settings: Any) -> None:
    for day in range(6):
        write_memberships("prod", {"s": {"a"}}, T0 + timedelta(days=day))
    current = memberships_path("prod")
    assert current is not None
    files = list(current.parent.glob("*.duckdb"))
    assert len(files) == 3 and current in files
    assert not list(current.parent.glob(".*building"))


def test_load_profiles_reads_the_attached_memberships(tmp_path: Path) -> None:
    from engine.duck import scalar
    from engine.profiles import load_profiles
    from engine.snapshot import open_snapshot
    from tests.engine.api.store import build_store

    build_store(tmp_path / "input")
    with open_snapshot("prod") as con:
        some = str(scalar(con, "SELECT min(_profile_id) FROM profiles"))
        write_memberships("prod", {"s": {some}}, T0)
        attach_memberships(con, "prod")
        loaded = {p.profile_id: p.memberships
                  for p in load_profiles(con, memberships="ms.memberships")}
    assert loaded[some] == {"s": "realized"}
    assert sum(1 for m in loaded.values() if m) == 1
