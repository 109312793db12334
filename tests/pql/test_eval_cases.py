"""Example programs of tests/pql/eval/*.cases, evaluated against the hand-written profiles.

Each case names the profiles it must select; the test fails with the profiles that are
wrongly in and wrongly out. The file format is described in tests/pql/eval/README.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pql import evaluate, parse

EVAL_DIR = Path(__file__).parent / "eval"
FIXTURES = json.loads((EVAL_DIR / "profiles.json").read_text())
NOW = datetime.fromisoformat(FIXTURES["now"].replace("Z", "+00:00"))
PROFILES: dict[str, dict[str, Any]] = {entry["id"]: entry for entry in FIXTURES["profiles"]}


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    members: frozenset[str]
    now: datetime
    where: str


def read_cases(path: Path) -> list[Case]:
    """Parse one ``.cases`` file: ``### name`` then ``key: value`` lines; indented lines
    continue the previous value; ``#`` lines are comments."""
    cases: list[Case] = []
    name: str | None = None
    fields: dict[str, str] = {}
    start = 0
    last_key: str | None = None

    def finish() -> None:
        if name is None:
            return
        for key in ("text", "members"):
            assert key in fields, f"{path.name}:{start}: case {name} has no {key}:"
        listed = fields["members"].split()
        if listed == ["-"]:
            members: frozenset[str] = frozenset()
        elif listed == ["all"]:
            members = frozenset(PROFILES)
        else:
            members = frozenset(listed)
            unknown = members - PROFILES.keys()
            assert not unknown, f"{path.name}:{start}: unknown profiles {sorted(unknown)}"
        now = NOW
        if "now" in fields:
            now = datetime.fromisoformat(fields["now"].replace("Z", "+00:00"))
        cases.append(Case(name, fields["text"], members, now, f"{path.name}:{start}"))

    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.startswith("### "):
            finish()
            name, fields, start, last_key = line[4:].strip(), {}, number, None
        elif not line.strip() or line.lstrip().startswith("#"):
            continue
        elif line[0].isspace():
            assert last_key is not None, f"{path.name}:{number}: continuation without a key"
            fields[last_key] += "\n" + line.strip()
        else:
            key, sep, value = line.partition(":")
            assert sep and name is not None, f"{path.name}:{number}: expected 'key: value'"
            last_key = key.strip()
            fields[last_key] = value.strip()
    finish()
    return cases


CASES = [case for path in sorted(EVAL_DIR.glob("*.cases")) for case in read_cases(path)]


def members_of(text: str, now: datetime) -> set[str]:
    node = parse(text)
    return {
        pid
        for pid, entry in PROFILES.items()
        if evaluate(node, entry["profile"], entry["events"], now=now)
    }


def test_case_names_are_unique() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 120


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case(case: Case) -> None:
    found = members_of(case.text, case.now)
    wrongly_in = sorted(found - case.members)
    wrongly_out = sorted(case.members - found)
    assert (wrongly_in, wrongly_out) == ([], []), f"{case.where}: {case.text}"
