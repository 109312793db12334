"""The checker is the one judge of a definition, so it must agree with what runs it.

- Soundness: a definition that the evaluator or the compiled SQL cannot run on the demo store
  (a run-time type error, an invalid regular expression, a day that is not in the calendar)
  has a checker error. Hundreds of random, often ill-typed definitions over the store's own
  schema (tests/pql/generate.py) are run through all three.
- No false alarms: every example program written for a dataset checks clean against that
  dataset's schema — tests/engine/programs.pql against the demo store, the evaluation cases
  of tests/pql/eval against their twelve profiles.
- Where the checker passes a random definition, the compiler and the evaluator select the
  same members (a differential test for free).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

import pql
from engine import xdm
from engine.segments import segment_members, snapshot_schema
from pql.evaluator import PQLEvaluationError
from pql.schema import Schema
from tests.engine.conftest import DemoStore
from tests.engine.test_differential import DEMO_PROGRAMS
from tests.pql.generate import Generator
from tests.pql.test_eval_cases import CASES as EVAL_CASES
from tests.pql.test_eval_cases import FIXTURES as EVAL_FIXTURES

pytestmark = pytest.mark.django_db

RANDOM_DEFINITIONS = 400
KNOWN_SEGMENTS = {"seg-1": "Loyal customers"}


def errors(text: str, schema: Schema, segments: Any = KNOWN_SEGMENTS) -> list[str]:
    problems = pql.check(pql.parse(text), schema, source=text, segments=segments)
    return [problem.message for problem in problems if problem.severity == "error"]


def run_failure(store: DemoStore, node: pql.ast.Node, schema: Schema) -> str | None:
    """Why the evaluator or the compiled SQL could not run ``node`` on the store, if so."""
    try:
        for loaded in store.profiles.values():
            pql.evaluate(node, loaded.profile, loaded.events, now=store.now,
                         memberships=loaded.memberships)
    except PQLEvaluationError as error:
        return f"evaluator: {error}"
    try:
        segment_members(store.con, node, now=store.now, schema=schema)
    except Exception as error:  # noqa: BLE001 - any failure of the SQL counts
        return f"SQL: {type(error).__name__}: {error}"
    return None


def test_random_definitions_that_fail_to_run_are_refused_by_the_checker(
        demo_store: DemoStore) -> None:
    schema = snapshot_schema(demo_store.con)
    generator = Generator(seed=14, schema=schema)
    missed: list[tuple[str, str]] = []
    disagree: list[str] = []
    outcome: Counter[str] = Counter()
    for _ in range(RANDOM_DEFINITIONS):
        text = generator.definition()
        try:
            node = pql.parse(text)
        except pql.PQLSyntaxError:
            outcome["syntax"] += 1
            continue
        if errors(text, schema):
            outcome["refused"] += 1
            continue
        failure = run_failure(demo_store, node, schema)
        if failure is not None:
            missed.append((text, failure))
            continue
        outcome["accepted"] += 1
        expected = {p.profile_id for p in demo_store.profiles.values()
                    if pql.evaluate(node, p.profile, p.events, now=demo_store.now,
                                    memberships=p.memberships)}
        if segment_members(demo_store.con, node, now=demo_store.now,
                           schema=schema).members != expected:
            disagree.append(text)
    assert missed == [], "accepted by the checker, yet failed to run"
    assert disagree == [], "the compiler and the evaluator select different members"
    # the generator must exercise both sides, or the test proves little
    assert outcome["accepted"] >= RANDOM_DEFINITIONS // 5, outcome
    assert outcome["refused"] >= RANDOM_DEFINITIONS // 5, outcome


@pytest.mark.parametrize("text", DEMO_PROGRAMS)
def test_demo_programs_check_clean_against_the_demo_schema(demo_store: DemoStore,
                                                          text: str) -> None:
    assert errors(text, snapshot_schema(demo_store.con)) == []


def eval_cases_schema() -> Schema:
    """The schema of tests/pql/eval/profiles.json as the engine would infer it on ingestion,
    with what an XDM schema would declare beside the data: the times that the fixtures
    deliberately write both as ISO text and as epoch milliseconds are date-times, and the
    middle name that no profile has is still a field of the person."""
    profiles = [entry["profile"] for entry in EVAL_FIXTURES["profiles"]]
    events = [event for entry in EVAL_FIXTURES["profiles"] for event in entry["events"]]
    profile = dict(xdm.flat_paths(xdm.infer_all(profiles)))
    event = dict(xdm.flat_paths(xdm.infer_all(events)))
    profile.update({"_repo.modifyDate": "date-time", "person.name.middleName": "string"})
    event["timestamp"] = "date-time"
    return Schema.from_dict(profile, event)


def eval_cases_segments() -> set[str]:
    """The segments the twelve profiles are members of (their segmentMembership)."""
    return {segment for entry in EVAL_FIXTURES["profiles"]
            for by_namespace in [entry["profile"].get("segmentMembership") or {}]
            for segments in by_namespace.values() for segment in segments}


# Cases that exercise what the evaluator does with something that is not there: a sandbox
# whose schema and segments are these would rightly refuse them before running.
REFUSED_CASES = {
    "label_is_case_sensitive": ['There is no field "a" on events.'],
    "in_unknown_segment": ['There is no segment with the id "seg-none" in this sandbox.'],
}


@pytest.mark.parametrize("case", EVAL_CASES, ids=[case.name for case in EVAL_CASES])
def test_evaluation_cases_check_clean_against_their_profiles(case: Any) -> None:
    found = errors(case.text, eval_cases_schema(), eval_cases_segments())
    assert found == REFUSED_CASES.get(case.name, [])


def test_eval_cases_schema_is_the_inferred_one_but_for_the_declared_fields() -> None:
    inferred = [entry["profile"] for entry in EVAL_FIXTURES["profiles"]]
    assert dict(xdm.flat_paths(xdm.infer_all(inferred)))["_repo.modifyDate"] == "string"
    assert str(eval_cases_schema().profile["_repo.modifyDate"]) == "date-time"
    assert json.dumps(EVAL_FIXTURES).count("middleName") == 0


def test_the_editor_and_the_engine_read_the_same_schema(demo_store: DemoStore) -> None:
    """The dashboard judges against the union schema the Schema Registry serves (JSON
    Schema); the engine's API judges against the trees that JSON is made from. One judge
    needs one schema."""
    from engine.api.views.schemas import json_schema
    from engine.models import XdmClass
    from engine.snapshot import union_tree
    from segments.pql_support import schema_from_unions
    from tests.engine.conftest import DEMO_SANDBOX

    trees = [union_tree(DEMO_SANDBOX, xdm_class)
             for xdm_class in (XdmClass.PROFILE, XdmClass.EVENT)]
    served = schema_from_unions(*({"type": "object", "properties": json_schema(tree)["properties"]}
                                  for tree in trees))
    engine = snapshot_schema_of(trees)
    assert served is not None and len(engine.profile) > 20 and len(engine.event) > 20
    assert {path: str(kind) for path, kind in served.profile.items()} == \
        {path: str(kind) for path, kind in engine.profile.items()}
    assert {path: str(kind) for path, kind in served.event.items()} == \
        {path: str(kind) for path, kind in engine.event.items()}


def snapshot_schema_of(trees: list[Any]) -> Schema:
    from engine.segments import schema_from_trees

    return schema_from_trees(*trees)
