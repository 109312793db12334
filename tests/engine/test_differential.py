"""The differential test on a real snapshot: every program runs through the compiler on DuckDB
(`engine.segments.segment_members`) and through the reference evaluator on the same profiles
read back from the snapshot; the member sets must be identical.

Programs: tests/engine/programs.pql (written for the generated demo data) and every example
program of the PQL fixtures (tests/pql/eval/*.cases and the syntax cases), which on this data
exercise missing fields and the null rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import pql
from engine.segments import segment_members
from pql.errors import PQLError
from tests.engine.conftest import DemoStore
from tests.pql.test_eval_cases import CASES as EVAL_CASES
from tests.pql.test_syntax_cases import TEXT_CASES

# Marked so that pytest-django sets up the test database even when this module runs alone:
# the demo_store fixture writes to it, and must never reach the real one.
pytestmark = pytest.mark.django_db

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


def compare(store: DemoStore, text: str, *, may_refuse: bool = False
            ) -> tuple[set[str], Any]:
    profiles = store.profiles.values()
    node = pql.parse(text)
    try:
        expected = {p.profile_id for p in profiles
                    if pql.evaluate(node, p.profile, p.events, now=store.now,
                                    memberships=p.memberships)}
    except PQLError:
        if not may_refuse:
            raise
        # a fixture program written for other fields can be a run-time type error on this
        # data; there is no member set to compare then
        return set(), None
    result = segment_members(store.con, node, now=store.now)
    assert result.members == expected, (
        f"compiled ({'exact' if result.exact else 'fallback ' + str(result.fallbacks)}) "
        f"selects {len(result.members)}, the evaluator {len(expected)}")
    return expected, result


@pytest.mark.parametrize("text", DEMO_PROGRAMS)
def test_demo_program_compiles_to_the_evaluators_members(demo_store: DemoStore,
                                                         text: str) -> None:
    compare(demo_store, text)


def test_demo_programs_are_not_trivial(demo_store: DemoStore) -> None:
    """Most demo programs select somebody and not everybody, or they would prove little."""
    total = len(demo_store.profiles)
    sizes = [len(compare(demo_store, text)[0]) for text in DEMO_PROGRAMS]
    interesting = [size for size in sizes if 0 < size < total]
    assert len(interesting) >= len(sizes) * 0.8, list(zip(DEMO_PROGRAMS, sizes, strict=True))


@pytest.mark.parametrize("text", FIXTURE_PROGRAMS)
def test_fixture_program_agrees_on_the_snapshot(demo_store: DemoStore, text: str) -> None:
    compare(demo_store, text, may_refuse=True)
