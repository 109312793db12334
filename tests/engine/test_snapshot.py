"""Query snapshots: immutable files, switched atomically, readable while a rebuild runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from engine.ingest import batch_ingest, dataset_get_or_create
from engine.models import Snapshot, SnapshotStatus, XdmClass
from engine.snapshot import NoSnapshotError, current_path, open_snapshot, snapshot_build
from engine.storage import BAD_SANDBOX, sandbox_dir
from tests.engine.conftest import ident

pytestmark = pytest.mark.django_db


def add_profiles(write_jsonl: Any, names: list[str]) -> None:
    dataset = dataset_get_or_create(sandbox="prod", name="crm", xdm_class=XdmClass.PROFILE)
    records = [{"identityMap": ident("Email", f"{n}@x.com"), "person": {"name": {"firstName": n}}}
               for n in names]
    batch_ingest(dataset=dataset, paths=[write_jsonl(f"{names[0]}.jsonl", records)])


def test_no_snapshot_yet_is_a_clear_error() -> None:
    with pytest.raises(NoSnapshotError, match="has no query snapshot yet"), open_snapshot("prod"):
        pass


def test_readers_keep_their_snapshot_while_a_new_one_takes_over(write_jsonl: Any) -> None:
    add_profiles(write_jsonl, ["ann", "bo"])
    first = snapshot_build(sandbox="prod")
    with open_snapshot("prod") as old_reader:
        add_profiles(write_jsonl, ["cy"])
        second = snapshot_build(sandbox="prod")
        # the reader that started before the switch still sees its own, consistent world
        assert old_reader.execute("SELECT count(*) FROM profiles").fetchone() == (2,)
        with open_snapshot("prod") as new_reader:
            assert new_reader.execute("SELECT count(*) FROM profiles").fetchone() == (3,)
    assert current_path("prod").name == second.file_name != first.file_name
    first.refresh_from_db()
    assert (first.status, second.status) == (SnapshotStatus.RETIRED, SnapshotStatus.READY)


def test_snapshots_are_opened_read_only(write_jsonl: Any) -> None:
    add_profiles(write_jsonl, ["ann"])
    snapshot_build(sandbox="prod")
    with open_snapshot("prod") as reader, pytest.raises(duckdb.Error):
        reader.execute("DELETE FROM identities")


def test_old_snapshot_files_are_cleaned_up(write_jsonl: Any) -> None:
    add_profiles(write_jsonl, ["ann"])
    for _ in range(5):
        snapshot_build(sandbox="prod")
    files = list((sandbox_dir("prod") / "snapshots").glob("*.duckdb"))
    assert len(files) == 3
    assert current_path("prod") in files
    assert not list((sandbox_dir("prod") / "snapshots").glob(".*building"))


def test_failed_build_leaves_the_current_snapshot_alone(write_jsonl: Any, settings: Any) -> None:
    add_profiles(write_jsonl, ["ann"])
    good = snapshot_build(sandbox="prod")
    with pytest.raises(duckdb.Error):
        snapshot_build(sandbox="prod", memory_limit="not-a-size")
    assert current_path("prod").name == good.file_name
    failed = Snapshot.objects.filter(status=SnapshotStatus.FAILED).get()
    assert "Memory must have a number" in failed.failure_reason
    assert not list((sandbox_dir("prod") / "snapshots").glob(".*building"))


def test_events_are_sorted_by_bucket_profile_and_time(write_jsonl: Any) -> None:
    dataset = dataset_get_or_create(sandbox="prod", name="web", xdm_class=XdmClass.EVENT)
    records = [{"identityMap": ident("ECID", f"e{n % 7}"),
                "timestamp": f"2024-01-{28 - n % 27:02d}T00:00:00Z"} for n in range(60)]
    batch_ingest(dataset=dataset, paths=[write_jsonl("web.jsonl", records)])
    snapshot_build(sandbox="prod")
    with open_snapshot("prod") as con:
        stored = con.execute('SELECT _bucket, _profile_id, "timestamp" FROM events').fetchall()
    assert stored == sorted(stored)


@pytest.mark.parametrize("name", ["../etc", "Prod", "", "a/b", "x" * 70])
def test_sandbox_names_cannot_escape_the_data_folder(name: str) -> None:
    with pytest.raises(ValueError, match="lowercase letters"):
        sandbox_dir(name)
    assert BAD_SANDBOX.startswith("Sandbox names")


def test_snapshot_lives_under_the_engine_data_dir(write_jsonl: Any, engine_dir: Path) -> None:
    add_profiles(write_jsonl, ["ann"])
    snapshot_build(sandbox="prod")
    assert current_path("prod").is_relative_to(engine_dir)
