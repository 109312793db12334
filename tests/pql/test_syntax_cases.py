"""Example programs from tests/pql/cases/*.txt, through the public ``pql`` API.

Case file format: ``# comment`` lines; each case starts with ``### name``; then ``key: value``
lines, where a value continues on following lines indented by two spaces (joined with a
newline for PQL text, with nothing for JSON). Keys:

- ``text:`` PQL text to parse;
- ``canonical:`` the expected ``to_text(parse(text))`` (default: ``text`` itself);
- ``json:`` the expected ``to_json(parse(text))``, compared as data;
- ``error: L:C[-E] message`` — ``parse(text)`` fails at line L, column C (end column E,
  exclusive) with a message containing ``message``;
- ``json_in:`` a pql/json tree for ``from_json``, with ``canonical:`` (its text) or
  ``json_error: /pointer message``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import pql

CASES_DIR = Path(__file__).parent / "cases"
_ERROR_SPEC = re.compile(r"(\d+):(\d+)(?:-(\d+))?\s+(.+)")


@dataclass
class Case:
    file: str
    name: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"


def load_cases() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(CASES_DIR.glob("*.txt")):
        current: Case | None = None
        key: str | None = None
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("### "):
                current = Case(path.stem, line[4:].strip())
                cases.append(current)
                key = None
            elif line.startswith("  ") and current is not None and key is not None:
                joiner = "" if key.startswith("json") else "\n"
                current.fields[key] += joiner + line[2:]
            elif not line.strip() or line.startswith("#"):
                key = None
            elif current is not None and ":" in line:
                key, _, value = line.partition(":")
                if key in current.fields:
                    raise ValueError(f"{path.name}:{number}: duplicate '{key}'")
                current.fields[key] = value.strip()
            else:
                raise ValueError(f"{path.name}:{number}: cannot read {line!r}")
    return cases


CASES = load_cases()
TEXT_CASES = [c for c in CASES if "text" in c.fields and "error" not in c.fields]
ERROR_CASES = [c for c in CASES if "error" in c.fields]
JSON_IN_CASES = [c for c in CASES if "json_in" in c.fields]


def test_case_names_are_unique_and_plentiful() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 150


@pytest.mark.parametrize("case", TEXT_CASES, ids=lambda c: c.id)
def test_text_parses_to_canonical_text(case: Case) -> None:
    expected = case.fields.get("canonical", case.fields["text"])
    node = pql.parse(case.fields["text"])
    assert pql.to_text(node) == expected
    # canonical text is a fixed point, and pql/json carries the same tree
    assert pql.parse(expected) == node
    assert pql.to_text(pql.parse(expected)) == expected
    assert pql.from_json(json.loads(json.dumps(pql.to_json(node)))) == node


@pytest.mark.parametrize("case", [c for c in TEXT_CASES if "json" in c.fields], ids=lambda c: c.id)
def test_text_has_expected_json(case: Case) -> None:
    assert pql.to_json(pql.parse(case.fields["text"])) == json.loads(case.fields["json"])


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda c: c.id)
def test_error_position_and_message(case: Case) -> None:
    match = _ERROR_SPEC.fullmatch(case.fields["error"])
    assert match, f"bad error spec in {case.id}"
    line, column, end, message = match.groups()
    with pytest.raises(pql.PQLSyntaxError) as caught:
        pql.parse(case.fields["text"])
    error = caught.value
    assert message in error.message
    assert (error.line, error.column) == (int(line), int(column)), str(error)
    if end is not None:
        assert error.end_column == int(end)
    assert str(error) == f"{error.message} (line {error.line}, column {error.column})"


@pytest.mark.parametrize("case", JSON_IN_CASES, ids=lambda c: c.id)
def test_json_input(case: Case) -> None:
    raw = json.loads(case.fields["json_in"])
    if "json_error" in case.fields:
        pointer, _, message = case.fields["json_error"].partition(" ")
        with pytest.raises(pql.PQLJSONError) as caught:
            pql.from_json(raw)
        assert message in caught.value.message
        assert caught.value.path == pointer
        return
    node = pql.from_json(raw)
    assert pql.to_text(node) == case.fields["canonical"]
    assert pql.parse(case.fields["canonical"]) == node
