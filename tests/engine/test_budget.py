"""The reference evaluator's budget (engine.segments): what the compiled SQL leaves to Python is
stopped past ENGINE_EVALUATOR_SECONDS or ENGINE_EVALUATOR_ROWS with a reason, on the demo
store's real snapshot; a definition within budget runs as before."""

from __future__ import annotations

import re
import signal
import threading
import time
from typing import Any

import pytest

import pql
from engine.segments import (
    BUDGET_ROWS,
    BUDGET_TIME,
    EvaluationBudget,
    EvaluationBudgetExceeded,
    segment_members,
    snapshot_schema,
)
from tests.engine.conftest import DemoStore

pytestmark = pytest.mark.django_db

US = 'homeAddress.countryCode = "US"'
# Checks clean, but the compiler leaves "filter on object" to the evaluator.
FALLBACK = 'homeAddress.filter(countryCode = "US").count() > 0'
CONSTRUCT = "filter on object"
# Each variable of a select ranges over all the profile's events, so the evaluator walks
# n^k bindings for a profile of n events when no condition prunes them (the compiler would
# not take this to SQL: the fallback construct sends the whole definition to Python).
RUNAWAY = ("(select A from xEvent, B from xEvent, C from xEvent, D from xEvent, E from xEvent "
           f'where E.eventType = "never") or {FALLBACK}')  # hours for a profile of 60 events
SLOW = ('(select A from xEvent, B from xEvent, C from xEvent where C.eventType = "never") '
        f"or {FALLBACK}")  # a few ms to a few hundred a profile: seconds for the store


def candidates(store: DemoStore) -> int:
    row = store.con.execute("SELECT count(*) FROM profiles").fetchone()
    assert row is not None
    return int(row[0])


def time_message(store: DemoStore, seconds: float) -> re.Pattern[str]:
    """BUDGET_TIME with any number of profiles checked."""
    text = BUDGET_TIME.format(constructs=CONSTRUCT, seconds=seconds, checked=123_456_789,
                              candidates=candidates(store))
    return re.compile(re.escape(text).replace("123,456,789", "[0-9,]+"))


def test_a_compiled_definition_spends_no_budget(demo_store: DemoStore) -> None:
    budget = EvaluationBudget(seconds=0, rows=0)
    result = segment_members(demo_store.con, pql.parse(US), now=demo_store.now, budget=budget)
    assert result.exact and result.members
    assert budget.spent_rows == 0


def test_within_budget_the_evaluator_decides_as_before(demo_store: DemoStore) -> None:
    node = pql.parse(FALLBACK)
    budget = EvaluationBudget()
    result = segment_members(demo_store.con, node, now=demo_store.now, budget=budget)
    assert not result.exact and result.fallbacks == (CONSTRUCT,)
    assert result.members == {
        pid for pid, loaded in demo_store.profiles.items()
        if pql.evaluate(node, loaded.profile, loaded.events, now=demo_store.now,
                        memberships=loaded.memberships)}
    assert budget.spent_rows == candidates(demo_store)


def test_too_many_candidates_are_refused_before_any_is_evaluated(
        demo_store: DemoStore, settings: Any) -> None:
    settings.ENGINE_EVALUATOR_ROWS = 100
    started = time.perf_counter()
    with pytest.raises(EvaluationBudgetExceeded) as caught:
        segment_members(demo_store.con, pql.parse(SLOW), now=demo_store.now)
    assert time.perf_counter() - started < 1  # ~50 ms a profile, had they been evaluated
    assert caught.value.message == BUDGET_ROWS.format(
        constructs=CONSTRUCT, candidates=candidates(demo_store), limit=100)


def test_one_runaway_evaluation_is_interrupted_at_the_time_budget(
        demo_store: DemoStore) -> None:
    node = pql.parse(RUNAWAY)
    assert pql.check(node, snapshot_schema(demo_store.con)) == []  # nothing for RE2 to refuse
    started = time.perf_counter()
    with pytest.raises(EvaluationBudgetExceeded) as caught:
        segment_members(demo_store.con, node, now=demo_store.now,
                        budget=EvaluationBudget(seconds=1))
    assert time.perf_counter() - started < 4  # the busiest profiles alone take hours
    assert time_message(demo_store, 1).fullmatch(caught.value.message)


def test_the_timer_works_under_celerys_prefork_handler_and_gives_it_back(
        demo_store: DemoStore) -> None:
    """A Celery prefork child has billiard's handler on SIGALRM (a clean exit on any
    terminating signal); the timer borrows the signal for the evaluation."""
    from billiard.common import _shutdown_cleanup

    previous = signal.signal(signal.SIGALRM, _shutdown_cleanup)
    try:
        started = time.perf_counter()
        with pytest.raises(EvaluationBudgetExceeded):
            segment_members(demo_store.con, pql.parse(RUNAWAY), now=demo_store.now,
                            budget=EvaluationBudget(seconds=0.5))
        assert time.perf_counter() - started < 4
        assert signal.getsignal(signal.SIGALRM) is _shutdown_cleanup
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_the_time_budget_holds_outside_the_main_thread(demo_store: DemoStore) -> None:
    """No timer there (signals go to the main thread): the check after each profile stops it."""
    outcome: list[BaseException | float] = []

    def run() -> None:
        started = time.perf_counter()
        try:
            segment_members(demo_store.con.cursor(), pql.parse(SLOW), now=demo_store.now,
                            budget=EvaluationBudget(seconds=0.5))
        except EvaluationBudgetExceeded as error:
            outcome.extend([error, time.perf_counter() - started])

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=60)
    error, elapsed = outcome
    assert isinstance(error, EvaluationBudgetExceeded) and isinstance(elapsed, float)
    assert elapsed < 3  # ~30 s for all the profiles
    assert time_message(demo_store, 0.5).fullmatch(error.message)


def test_one_budget_is_spent_across_the_calls_it_is_given_to(demo_store: DemoStore) -> None:
    node = pql.parse(FALLBACK)
    total = candidates(demo_store)
    budget = EvaluationBudget(rows=2 * total - 1)
    segment_members(demo_store.con, node, now=demo_store.now, budget=budget)
    with pytest.raises(EvaluationBudgetExceeded) as caught:
        segment_members(demo_store.con, node, now=demo_store.now, budget=budget)
    assert caught.value.message == BUDGET_ROWS.format(
        constructs=CONSTRUCT, candidates=2 * total, limit=2 * total - 1)


def test_a_segment_job_past_the_budget_fails_with_the_reason(demo_store: DemoStore,
                                                             settings: Any) -> None:
    """One budget for the whole job; the job's error is the budget's message, not the name of
    an exception."""
    from engine.models import JobStatus, SegmentDefinition, SegmentJob
    from engine.segment_jobs import segment_job_run
    from engine.snapshot import default_merge_policy
    from tests.engine.conftest import DEMO_SANDBOX

    settings.ENGINE_EVALUATOR_ROWS = 100
    settings.ENGINE_DATA_DIR = demo_store.engine_dir
    policy = default_merge_policy(DEMO_SANDBOX)
    definition = SegmentDefinition.objects.create(
        sandbox=DEMO_SANDBOX, name="Too much for Python", expression_value=FALLBACK,
        pql_text=FALLBACK, merge_policy_id=str(policy.id))
    job = SegmentJob.objects.create(sandbox=DEMO_SANDBOX, segment_ids=[str(definition.id)])
    segment_job_run(job=job)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.errors[0]["msg"] == BUDGET_ROWS.format(
        constructs=CONSTRUCT, candidates=candidates(demo_store), limit=100)
