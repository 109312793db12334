"""Which profiles of a snapshot a PQL definition selects: compiled to DuckDB SQL, with the
reference evaluator for whatever the compiler does not translate yet.

The evaluator decides one profile at a time in Python, so what it may spend is bounded
(issue 15): an ``EvaluationBudget`` of seconds and candidate profiles, read from the settings
ENGINE_EVALUATOR_SECONDS and ENGINE_EVALUATOR_ROWS. Past it, ``segment_members`` raises
``EvaluationBudgetExceeded``, whose message says why in words a marketer can act on; the job
runners fail the preview or job with it. The time is checked after every profile and, in a
process's main thread (a Celery prefork worker runs its tasks there), also by a SIGALRM timer:
a single evaluation — one backtracking regular expression on one profile can take minutes —
is interrupted too.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from types import FrameType

import duckdb
from django.conf import settings

import pql
from engine import xdm
from engine.profiles import load_profiles
from pql import ast
from pql.ast import Node
from pql.schema import Schema
from pql.sql import Tables, compile_segment

logger = logging.getLogger(__name__)

# The budget's settings and their defaults (a Django setting of the same name overrides them).
EVALUATOR_SECONDS = "ENGINE_EVALUATOR_SECONDS"
EVALUATOR_ROWS = "ENGINE_EVALUATOR_ROWS"
DEFAULT_EVALUATOR_SECONDS = 20.0
DEFAULT_EVALUATOR_ROWS = 200_000  # the evaluator decides ~5,000 simple profiles a second

# Why an evaluation stopped ({constructs}: what the compiler could not translate).
BUDGET_ROWS = (
    "This definition needs each profile to be checked one by one for {constructs}, and "
    "{candidates:,} profiles would be: more than the {limit:,} the engine checks one by one "
    "(ENGINE_EVALUATOR_ROWS). Narrow it with other conditions, or write it without "
    "{constructs}."
)
BUDGET_TIME = (
    "This definition needs each profile to be checked one by one for {constructs}, and that "
    "took longer than the {seconds:g} seconds the engine allows (ENGINE_EVALUATOR_SECONDS): "
    "{checked:,} of {candidates:,} profiles were checked. Narrow it with other conditions, or "
    "write it without {constructs}."
)


class EvaluationBudgetExceeded(Exception):  # noqa: N818 - the name says what happened
    """The reference evaluator ran out of its budget; ``message`` says why, for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _OutOfTime(BaseException):
    """Raised by the SIGALRM timer wherever the evaluation is; a BaseException, so that no
    ``except Exception`` on the way can take it for an error of its own."""


def _setting(name: str, default: float) -> float:
    return getattr(settings, name, default) if settings.configured else default


class EvaluationBudget:
    """Seconds and candidate profiles the reference evaluator may spend. One budget can be
    passed to several ``segment_members`` calls (the steps of one estimate, the definitions
    of one job): what they spend adds up. Without one, each call gets a budget of its own."""

    def __init__(self, seconds: float | None = None, rows: int | None = None) -> None:
        self.seconds = float(_setting(EVALUATOR_SECONDS, DEFAULT_EVALUATOR_SECONDS)
                             if seconds is None else seconds)
        self.rows = int(_setting(EVALUATOR_ROWS, DEFAULT_EVALUATOR_ROWS)
                        if rows is None else rows)
        self.spent_seconds = 0.0
        self.spent_rows = 0

    def take_rows(self, candidates: int, constructs: str) -> None:
        """Count ``candidates`` profiles, or refuse them all before any is loaded."""
        if self.spent_rows + candidates > self.rows:
            raise EvaluationBudgetExceeded(BUDGET_ROWS.format(
                constructs=constructs, candidates=self.spent_rows + candidates,
                limit=self.rows))
        self.spent_rows += candidates

    @contextmanager
    def running(self, candidates: int, constructs: str) -> Iterator[_Clock]:
        """The time of the evaluation inside, checked by ``clock.tick()`` after each profile
        and, where it can be, by a timer that interrupts whatever is running."""
        clock = _Clock(time.monotonic() + max(self.seconds - self.spent_seconds, 0.0))
        started = time.monotonic()
        try:
            with _alarm(clock.deadline - started):
                clock.tick()
                yield clock
        except _OutOfTime:
            raise EvaluationBudgetExceeded(BUDGET_TIME.format(
                constructs=constructs, seconds=self.seconds, checked=clock.checked,
                candidates=candidates)) from None
        finally:
            self.spent_seconds += time.monotonic() - started


@dataclass
class _Clock:
    deadline: float
    checked: int = 0

    def tick(self, checked: int = 0) -> None:
        self.checked += checked
        if time.monotonic() >= self.deadline:
            raise _OutOfTime


_armed = False  # whether a SIGALRM now means the evaluation is out of time (main thread)


def _raise_out_of_time(signum: int, frame: FrameType | None) -> None:
    if _armed:
        raise _OutOfTime


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Raise _OutOfTime after ``seconds`` wherever the main thread is — also inside a
    regular expression's match, which checks for signals. Only where no one is timing with
    SIGALRM (no ITIMER_REAL or alarm() running); the handler in place is put back afterwards
    (a Celery prefork child has billiard's, which exits cleanly on any terminating signal).
    Elsewhere — another thread — the per-profile check alone bounds the time."""
    global _armed
    usable = (hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread()
              and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0))
    if not usable:
        yield
        return
    previous = signal.signal(signal.SIGALRM, _raise_out_of_time)
    _armed = True
    try:
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
        yield
    finally:
        _armed = False  # first: a signal handled from here on changes nothing
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def referenced_segments(node: Node) -> set[str]:
    """The ids named by ``inSegment("<id>")`` anywhere in the tree."""
    return {
        str(item.args[0].value) for item in node.walk()
        if isinstance(item, ast.Call) and item.name.lower() == "insegment"
        and len(item.args) == 1 and isinstance(item.args[0], ast.Literal)
    }


def schema_from_trees(profile: xdm.Tree, events: xdm.Tree) -> Schema:
    return Schema.from_dict(dict(xdm.flat_paths(profile)), dict(xdm.flat_paths(events)))


def snapshot_schema(con: duckdb.DuckDBPyConnection) -> Schema:
    """The union schemas the snapshot was built with, as pql reads them."""
    info = dict(con.execute("SELECT key, value FROM snapshot_info").fetchall())
    return schema_from_trees(json.loads(info["profile_schema"]), json.loads(info["event_schema"]))


@dataclass(frozen=True)
class SegmentResult:
    members: set[str]
    exact: bool  # False: the evaluator decided for the candidates the SQL returned
    candidates: int
    fallbacks: tuple[str, ...]


def segment_members(con: duckdb.DuckDBPyConnection, node: Node, *, now: datetime,
                    tables: Tables = Tables(),  # noqa: B008 - frozen, so a safe default
                    schema: Schema | None = None, profile_filter: str | None = None,
                    event_filter: str | None = None,
                    budget: EvaluationBudget | None = None) -> SegmentResult:
    """The members among the profiles `profile_filter` keeps (a trusted SQL predicate over the
    profile row `p`); `event_filter` narrows every read of the events the same way. What the
    SQL leaves to the reference evaluator is bounded by `budget` (by default, one from the
    settings for this call): EvaluationBudgetExceeded past it."""
    compiled = compile_segment(node, now=now, schema=schema or snapshot_schema(con),
                               tables=tables, profile_filter=profile_filter,
                               event_filter=event_filter)
    ids = [row[0] for row in con.execute(compiled.sql).fetchall()]
    if compiled.exact:
        return SegmentResult(set(ids), True, len(ids), ())
    constructs = ", ".join(compiled.fallbacks)
    logger.warning("PQL constructs %s are not compiled yet: the reference evaluator decides "
                   "for %d candidate profiles", constructs, len(ids))
    budget = budget if budget is not None else EvaluationBudget()
    budget.take_rows(len(ids), constructs)
    members: set[str] = set()
    with budget.running(len(ids), constructs) as clock:
        for loaded in load_profiles(con, profiles=tables.profiles, events=tables.events,
                                    memberships=tables.memberships, ids=ids):
            if pql.evaluate(node, loaded.profile, loaded.events, now=now,
                            memberships=loaded.memberships):
                members.add(loaded.profile_id)
            clock.tick(1)
    return SegmentResult(members, False, len(ids), compiled.fallbacks)
