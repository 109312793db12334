"""Engine tests: a fresh ENGINE_DATA_DIR per test, and small helpers to write input files."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.test import override_settings

SAMPLE_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "sample-data"


@pytest.fixture(autouse=True)
def engine_dir(settings: Any, tmp_path: Path) -> Path:
    settings.ENGINE_DATA_DIR = tmp_path / "engine"
    return settings.ENGINE_DATA_DIR


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Any:
    def write(name: str, records: Iterable[dict[str, Any]]) -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return path

    return write


def ident(namespace: str, value: str, primary: bool = True) -> dict[str, Any]:
    return {namespace: [{"id": value, "primary": primary}]}


def sample(*parts: str) -> Path:
    path = SAMPLE_DATA.joinpath(*parts)
    if not SAMPLE_DATA.is_dir():
        pytest.skip("../shared/sample-data is absent")
    return path


DEMO_SANDBOX = "demo-store"
DEMO_END = datetime(2026, 11, 1, tzinfo=UTC)
DEMO_NOW = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class DemoStore:
    """A snapshot of 400 generated demo profiles, open read-only, and its profiles in Python."""

    con: duckdb.DuckDBPyConnection
    profiles: dict[str, Any]  # profile id → engine.profiles.LoadedProfile
    now: datetime
    engine_dir: Path | None = None  # its ENGINE_DATA_DIR, for tests that point the API at it


@pytest.fixture(scope="session")
def demo_store(django_db_setup: Any, django_db_blocker: Any,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStore]:
    """Built once per run (it is the slow part), in a sandbox of its own, removed afterwards.
    Modules using it must carry pytest.mark.django_db, so that the test database exists."""
    from engine.demo import generate
    from engine.ingest import batch_ingest, dataset_get_or_create
    from engine.models import Dataset, MergePolicy, Snapshot, XdmClass
    from engine.profiles import load_profiles
    from engine.snapshot import open_snapshot, snapshot_build

    files = generate(profiles=400, seed=11, out=tmp_path_factory.mktemp("demo"), end=DEMO_END)
    engine_dir = tmp_path_factory.mktemp("engine")
    with django_db_blocker.unblock(), override_settings(ENGINE_DATA_DIR=engine_dir):
        try:
            for name, xdm_class, path in (("CRM", XdmClass.PROFILE, files.crm),
                                          ("Loyalty", XdmClass.PROFILE, files.loyalty),
                                          ("Web", XdmClass.EVENT, files.events)):
                dataset = dataset_get_or_create(sandbox=DEMO_SANDBOX, name=name,
                                                xdm_class=xdm_class)
                assert batch_ingest(dataset=dataset, paths=[path]).status == "success"
            snapshot_build(sandbox=DEMO_SANDBOX)
            with open_snapshot(DEMO_SANDBOX) as con:
                yield DemoStore(con, {p.profile_id: p for p in load_profiles(con)}, DEMO_NOW,
                                engine_dir)
        finally:
            Dataset.objects.filter(sandbox=DEMO_SANDBOX).delete()
            Snapshot.objects.filter(sandbox=DEMO_SANDBOX).delete()
            MergePolicy.objects.filter(sandbox=DEMO_SANDBOX).delete()
