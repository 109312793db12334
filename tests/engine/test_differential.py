"""The differential test on a real snapshot: every program runs through the compiler on DuckDB
(`engine.segments.segment_members`) and through the reference evaluator on the same profiles
read back from the snapshot; the member sets must be identical.

Programs: tests/engine/programs.pql (written for the generated demo data) and every example
program of the PQL fixtures (tests/pql/eval/*.cases and the syntax cases), which on this data
exercise missing fields and the null rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

import pql
from engine.demo import generate
from engine.ingest import batch_ingest, dataset_get_or_create
from engine.models import Dataset, MergePolicy, Snapshot, XdmClass
from engine.profiles import LoadedProfile, load_profiles
from engine.segments import segment_members
from engine.snapshot import open_snapshot, snapshot_build
from pql.errors import PQLError
from tests.pql.test_eval_cases import CASES as EVAL_CASES
from tests.pql.test_syntax_cases import TEXT_CASES

# Marked so that pytest-django sets up the test database even when this module runs alone:
# the module-scoped fixture below writes to it, and must never reach the real one.
pytestmark = pytest.mark.django_db

SANDBOX = "differential"
END = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
PROGRAMS_FILE = Path(__file__).with_name("programs.pql")


def read_programs(path: Path) -> list[str]:
    programs: list[str] = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith((" ", "\t")) and programs:
            programs[-1] += " " + line.strip()
        else:
            programs.append(line.strip())
    return programs


DEMO_PROGRAMS = read_programs(PROGRAMS_FILE)
FIXTURE_PROGRAMS = sorted({case.text for case in EVAL_CASES}
                          | {case.fields["text"] for case in TEXT_CASES})


@pytest.fixture(scope="module")
def snapshot(django_db_setup: Any, django_db_blocker: Any,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LoadedProfile]]:
    folder = tmp_path_factory.mktemp("demo")
    files = generate(profiles=400, seed=11, out=folder, end=END)
    with django_db_blocker.unblock(), override_settings(
            ENGINE_DATA_DIR=tmp_path_factory.mktemp("engine")):
        try:
            for name, xdm_class, path in (("CRM", XdmClass.PROFILE, files.crm),
                                          ("Loyalty", XdmClass.PROFILE, files.loyalty),
                                          ("Web", XdmClass.EVENT, files.events)):
                dataset = dataset_get_or_create(sandbox=SANDBOX, name=name, xdm_class=xdm_class)
                assert batch_ingest(dataset=dataset, paths=[path]).status == "success"
            snapshot_build(sandbox=SANDBOX)
            with open_snapshot(SANDBOX) as con:
                loaded = {p.profile_id: p for p in load_profiles(con)}
                yield loaded | {"__con__": con}  # type: ignore[dict-item]
        finally:
            Dataset.objects.filter(sandbox=SANDBOX).delete()
            Snapshot.objects.filter(sandbox=SANDBOX).delete()
            MergePolicy.objects.filter(sandbox=SANDBOX).delete()


def compare(snapshot: dict[str, Any], text: str, *, may_refuse: bool = False
            ) -> tuple[set[str], Any]:
    con = snapshot["__con__"]
    profiles = [p for key, p in snapshot.items() if key != "__con__"]
    node = pql.parse(text)
    try:
        expected = {p.profile_id for p in profiles
                    if pql.evaluate(node, p.profile, p.events, now=NOW, memberships=p.memberships)}
    except PQLError:
        if not may_refuse:
            raise
        # a fixture program written for other fields can be a run-time type error on this
        # data; there is no member set to compare then
        return set(), None
    result = segment_members(con, node, now=NOW)
    assert result.members == expected, (
        f"compiled ({'exact' if result.exact else 'fallback ' + str(result.fallbacks)}) "
        f"selects {len(result.members)}, the evaluator {len(expected)}")
    return expected, result


@pytest.mark.parametrize("text", DEMO_PROGRAMS)
def test_demo_program_compiles_to_the_evaluators_members(snapshot: dict[str, Any],
                                                         text: str) -> None:
    compare(snapshot, text)


def test_demo_programs_are_not_trivial(snapshot: dict[str, Any]) -> None:
    """Most demo programs select somebody and not everybody, or they would prove little."""
    total = len(snapshot) - 1
    sizes = [len(compare(snapshot, text)[0]) for text in DEMO_PROGRAMS]
    interesting = [size for size in sizes if 0 < size < total]
    assert len(interesting) >= len(sizes) * 0.8, list(zip(DEMO_PROGRAMS, sizes, strict=True))


@pytest.mark.parametrize("text", FIXTURE_PROGRAMS)
def test_fixture_program_agrees_on_the_snapshot(snapshot: dict[str, Any], text: str) -> None:
    compare(snapshot, text, may_refuse=True)
