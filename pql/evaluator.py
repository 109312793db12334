"""The reference semantics of PQL: ``evaluate(node, profile, events, *, now) -> bool``.

Written for clarity, not speed: it is the oracle the SQL compiler is tested against and the
engine behind "why is this profile in or out" (``pql.explain``). Every rule of spec/pql.md §1
is applied in one visible place and carries a comment naming the rule.

Values are plain Python (see ``pql.values``). A path through an array maps over its items and
flattens (§3.3); such a mapped list is a ``PathList`` so that ``isNull`` can tell "no values"
from an explicit empty array.

Decisions where the spec is silent or marked [inferred] (the SQL compiler must match them):

- A list compared with a single value (``=``, ``!=``, ``<``…, ``in``, ``notIn``, ``like``, the
  string methods, ``occurs``) holds when SOME item does; two lists compare as ordered lists.
- ``count()`` of a missing array is 0; ``sum`` of nothing is 0; ``average``/``min``/``max``
  of nothing are null; items whose value is null are skipped.
- ``isNull()`` is true for null and for a path through arrays that reached no value, false for
  a present empty array. A bare path in boolean position needs a non-empty list or a defined
  value (``""`` and ``0`` count as defined).
- ``intersection`` keeps the receiver's order without duplicates, null when empty; ``topN``
  / ``bottomN`` sort by the key (largest / smallest first), ties in input order, items
  without a key left out; ``groupBy`` leaves out items without a key.
- ``forall`` over a missing or empty array is true. ``$2`` is the events.
- ``occurs … from`` reads as ``before`` for a time at or before now, ``after`` otherwise.
- A ``YYYY-MM-DD`` text used as a time reference is that whole UTC day; any other timestamp
  is an instant. Weeks start on Monday (``Evaluator(week_start=…)`` changes it).
- chain: steps match events with strictly increasing times; the events counted by one step's
  ``COUNT(n)`` may share a time; events without a readable ordering field are ignored.
- chain labels in WHEN: inside a step's ``WHEN``, an anchor written as the label of an earlier
  step (``A``, or ``A.timestamp`` with the chain's ordering field) is the time of the event that
  step matched (its n-th counted event under ``COUNT(n)``); a label wins over an event field of
  the same name there. See ``chain_plan`` for what is refused, and why.
- ``inSegment`` reads ``memberships`` when given, else the profile's ``segmentMembership``
  (any namespace); ``realized`` and ``existing`` are in, everything else is out.
- Run-time coercion is lenient where the checker is strict: ``text = 5`` compares with
  ``"5"`` here, and ``check`` reports it as a type mismatch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import re2

from pql import ast
from pql.errors import PQLError
from pql.printer import to_text, window_text
from pql.timeutil import (
    WEEK_START,
    Interval,
    canonical_unit,
    occurs_after,
    occurs_before,
    occurs_between,
    occurs_distance,
    occurs_on,
    relative_unit,
    time_word,
)
from pql.values import (
    flatten_into,
    hashable,
    is_number,
    parse_timestamp,
    truthy,
    type_name,
)

__all__ = [
    "ChainPlan",
    "PQLChainLabelError",
    "PQLEvaluationError",
    "PQLTypeError",
    "PathList",
    "StepResult",
    "chain_plan",
    "evaluate",
    "label_variable",
    "step_label",
]

# Membership statuses that count as "in the segment" (spec §6.14).
MEMBER_STATUSES = frozenset({"realized", "existing"})
COMPARISONS = frozenset({"=", "!=", "<", "<=", ">", ">="})
ARITHMETIC = frozenset({"+", "-", "*", "/", "%"})

# User-facing messages (module constants so tests can assert them).
NOT_A_NUMBER = "{what} needs a number, but got {got}"
NOT_TEXT = "{what} needs text, but got {got}"
NOT_A_LIST = "{what} needs a list, but got {got}"
NOT_A_MAP = "{what} needs a map or object, but got {got}"
NOT_A_TIMESTAMP = "{what} needs a date or date-time, but got {value!r}"
CANNOT_COMPARE = "cannot compare {left} with {right}"
NO_FIELD_ON = 'cannot read the field "{name}" of {got}'
BAD_REGEX = "the regular expression {pattern!r} is not valid: {error}"
BAD_DATE = "date({year}, {month}, {day}) is not a calendar day"
OUT_OF_RANGE = "this time window reaches beyond the years 1 to 9999"
UNKNOWN_FUNCTION = 'unknown function "{name}"'
UNKNOWN_VARIABLE = 'unknown variable "{name}"'
WRONG_ARGUMENTS = "{name} takes {expected}, but was given {given}"
NO_ENCLOSING_CONTEXT = "'{carets}' reaches above the profile"
# A chain step's WHEN that names a step label (spec §6.13, "bought within 7 days after A").
CHAIN_OWN_LABEL = (
    "step {step} cannot be timed from itself: its WHEN names its own label {label}; "
    "a step's WHEN can name an earlier step of the chain"
)
CHAIN_LATER_LABEL = (
    "step {step} cannot be timed from step {label}, which comes later in the chain; "
    "a step's WHEN can name an earlier step of the chain"
)
CHAIN_LABEL_TWICE = (
    "step {step}'s WHEN names {label}, but {count} steps of the chain are labelled {label}; "
    "give the steps different labels"
)
CHAIN_LABEL_COUNT_ZERO = (
    "step {step}'s WHEN names {label}, but step {label} has COUNT(0) and so no event whose "
    "time could be used"
)
CHAIN_LABEL_NOT_A_TIME = (
    "in step {step}'s WHEN, {label} stands for the time of step {label}'s event: use "
    "{label} (or {label}.{order_by}) as the whole time, not {text}"
)
CHAIN_LABEL_NEVER = (
    "step {step} comes after step {label} in the chain, so WHEN({window}) can never hold; "
    "time it after {label}, e.g. WHEN(<= 7 days after {label})"
)
CHAIN_LABEL_FROM = (
    "WHEN({window}): 'from' has no direction relative to step {label}; "
    "write after {label}, e.g. WHEN(<= 7 days after {label})"
)


class PQLEvaluationError(PQLError):
    """A definition that is well-formed but cannot be evaluated on some profile, e.g. a text
    method called on a number. ``span`` is the offending node's character span, if known."""

    def __init__(self, message: str, span: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.span = span


class PQLTypeError(PQLEvaluationError):
    """A value of the wrong type at run time (the checker reports most of these earlier)."""


class PQLChainLabelError(PQLEvaluationError):
    """A chain step's WHEN names a step label in a way that means nothing: its own or a later
    step, a label of several steps, a COUNT(0) step, a label inside a larger expression, or a
    window that can never hold after that step (``before A``, ``on A``, ``between … and A``,
    ``from A``). Static: raised for every profile, and by the SQL compiler too."""


class PathList(list[Any]):
    """The values reached by a path through an array (spec §3.3), nulls dropped."""


@dataclass(frozen=True, slots=True)
class MapEntry:
    """``mapEntry(key, value)``, the result of the lambda given to ``M.map((K, G) => …)``."""

    key: Any
    value: Any


@dataclass(frozen=True, slots=True)
class StepResult:
    """For explain: how one chain step fared. ``matched`` are the times of the events that
    satisfy the step after the previous step (``after``); the step holds with ``needed`` of
    them. ``anchors`` are the earlier steps its WHEN is timed from, as (label, the time used);
    ``at`` is the step's own time that the following steps used (its n-th counted event),
    None when it did not hold or matched no event (COUNT(0)). ``tries`` is how many
    assignments of those earlier times it was tried with (all failed, for a failed step)."""

    satisfied: bool
    needed: int
    matched: tuple[datetime, ...]
    after: datetime | None
    anchors: tuple[tuple[str, datetime], ...] = ()
    at: datetime | None = None
    tries: int = 1

    def __bool__(self) -> bool:
        return self.satisfied


@dataclass(frozen=True, slots=True)
class Scope:
    """What names mean at one point of the evaluation.

    ``contexts`` is the stack of implicit contexts (the profile, then the current item of each
    enclosing filter / item-method / chain step); ``^`` climbs it. ``looping`` is true inside a
    per-item evaluation, where ``explain`` stops recording.
    """

    contexts: tuple[Any, ...]
    variables: Mapping[str, Any]
    looping: bool = False

    def with_item(self, item: Any) -> Scope:
        return Scope((*self.contexts, item), self.variables, True)

    def with_vars(self, looping: bool = True, **bound: Any) -> Scope:
        return Scope(self.contexts, {**self.variables, **bound}, looping or self.looping)


def evaluate(
    node: ast.Node,
    profile: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    memberships: Mapping[str, str] | None = None,
) -> bool:
    """True iff ``profile`` (with its ExperienceEvents ``events``) satisfies ``node``.

    ``now`` is the execution time (a naive datetime is taken as UTC). ``memberships`` maps a
    segment id to its status for ``inSegment``; without it the profile's own
    ``segmentMembership`` map is read.
    """
    return Evaluator(profile, events, now=now, memberships=memberships).run(node)


class Evaluator:
    """One profile's evaluation. ``run`` gives the boolean verdict; ``value`` any node's value."""

    def __init__(
        self,
        profile: Mapping[str, Any],
        events: Sequence[Mapping[str, Any]],
        *,
        now: datetime,
        memberships: Mapping[str, str] | None = None,
        week_start: int = WEEK_START,
    ) -> None:
        self.profile = profile
        self.events = events if isinstance(events, list) else list(events)
        self.now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
        self.memberships = memberships
        self.week_start = week_start
        # Set by pql.explain: a stack of lists collecting (node, value, children) records.
        self.frames: list[list[Any]] | None = None

    # --- entry points -----------------------------------------------------------------------

    def root_scope(self) -> Scope:
        return Scope((self.profile,), {})

    def run(self, node: ast.Node) -> bool:
        # §1 "Result type": a non-boolean top-level value is coerced (array → non-empty,
        # anything else → defined).
        return truthy(self.value(node, self.root_scope()))

    def value(self, node: ast.Node, scope: Scope) -> Any:
        handler = _DISPATCH.get(type(node))
        if handler is None:
            raise PQLEvaluationError(f"cannot evaluate {type(node).__name__} here", node.span)
        if self.frames is None or scope.looping:
            return handler(self, node, scope)
        children: list[Any] = []
        self.frames.append(children)
        try:
            result = handler(self, node, scope)
        finally:
            self.frames.pop()
        self.frames[-1].append((node, result, children))
        return result

    def truth(self, node: ast.Node, scope: Scope) -> bool:
        return truthy(self.value(node, scope))

    @property
    def recording(self) -> bool:
        return self.frames is not None

    # --- references -------------------------------------------------------------------------

    def _literal(self, node: ast.Literal, scope: Scope) -> Any:
        return node.value

    def _list_literal(self, node: ast.ListLiteral, scope: Scope) -> Any:
        return [self.value(item, scope) for item in node.items]

    def _object_literal(self, node: ast.ObjectLiteral, scope: Scope) -> Any:
        return {key: self.value(item, scope) for key, item in node.entries}

    def _field(self, node: ast.Field, scope: Scope) -> Any:
        if node.obj is None:
            # xEvent is the profile's array of ExperienceEvents wherever it is written (§1).
            if node.name == "xEvent":
                return self.events
            base = scope.contexts[-1]
        else:
            base = self.value(node.obj, scope)
            if node.name == "xEvent" and base is self.profile:
                return self.events
        return get_field(base, node.name, node)

    def _param(self, node: ast.Param, scope: Scope) -> Any:
        # $1 is the profile; $2 the events (the query's second parameter).
        if node.position == 1:
            return self.profile
        if node.position == 2:
            return self.events
        raise PQLEvaluationError(f"there is no parameter ${node.position}", node.span)

    def _var(self, node: ast.Var, scope: Scope) -> Any:
        try:
            return scope.variables[node.name]
        except KeyError:
            raise PQLEvaluationError(UNKNOWN_VARIABLE.format(name=node.name), node.span) from None

    def _up(self, node: ast.Up, scope: Scope) -> Any:
        if node.levels >= len(scope.contexts):
            raise PQLEvaluationError(
                NO_ENCLOSING_CONTEXT.format(carets="^" * node.levels), node.span
            )
        return scope.contexts[-1 - node.levels]

    def _lambda(self, node: ast.Lambda, scope: Scope) -> Any:
        # Only the whole query can be a lambda here, `(Profile) => …`: its parameters are the
        # query's parameters (the profile, then the events). Lambdas given to `map` are applied
        # by the method itself.
        bound = dict(zip(node.params, (self.profile, self.events), strict=False))
        return self.value(node.body, scope.with_vars(looping=False, **bound))

    def _let(self, node: ast.Let, scope: Scope) -> Any:
        bound = self.value(node.value, scope)
        return self.value(node.body, scope.with_vars(looping=False, **{node.name: bound}))

    # --- operators --------------------------------------------------------------------------

    def _not(self, node: ast.Not, scope: Scope) -> bool:
        # §1 "Negation and nulls": `not` flips the truth value of its operand, and a null or
        # false operand is false, so not(countryISO = "CA") is TRUE for a profile without a
        # country, whereas countryISO != "CA" is false. `not` is the only exact negation.
        return not self.truth(node.operand, scope)

    def _and(self, node: ast.And, scope: Scope) -> bool:
        # explain wants every condition's verdict, so it does not short-circuit.
        if self.recording and not scope.looping:
            verdicts = [self.truth(operand, scope) for operand in node.operands]
            return all(verdicts)
        return all(self.truth(operand, scope) for operand in node.operands)

    def _or(self, node: ast.Or, scope: Scope) -> bool:
        if self.recording and not scope.looping:
            verdicts = [self.truth(operand, scope) for operand in node.operands]
            return any(verdicts)
        return any(self.truth(operand, scope) for operand in node.operands)

    def _negate(self, node: ast.Negate, scope: Scope) -> Any:
        operand = self.value(node.operand, scope)
        if operand is None:
            return None  # §1: arithmetic with a null yields null
        if not is_number(operand):
            raise PQLTypeError(
                NOT_A_NUMBER.format(what="unary minus", got=type_name(operand)), node.span
            )
        return -operand

    def _binary(self, node: ast.Binary, scope: Scope) -> Any:
        left = self.value(node.left, scope)
        right = self.value(node.right, scope)
        op = node.op
        if op in ARITHMETIC:
            return arithmetic(op, left, right, node)
        if op in COMPARISONS:
            return compare(op, left, right, node)
        if op == "like":
            return like(left, right, node)
        if op == "in":
            return member_of(left, right, node, negated=False)
        if op == "notIn":
            return member_of(left, right, node, negated=True)
        raise PQLEvaluationError(f"unknown operator {op!r}", node.span)

    # --- calls ------------------------------------------------------------------------------

    def _call(self, node: ast.Call, scope: Scope) -> Any:
        name = node.name
        key = name.lower()
        if key == "if":
            _arity(node, 3, "three values: a condition, a result if true, a result if false")
            test, then, otherwise = node.args
            # Only the chosen branch is evaluated; a null test is false (§1).
            return self.value(then if self.truth(test, scope) else otherwise, scope)
        if key == "not":
            _arity(node, 1, "one condition")
            return not self.truth(node.args[0], scope)
        args = [self.value(arg, scope) for arg in node.args]
        if key == "date":
            _arity(node, 3, "three numbers: year, month, day")
            return make_date(args, node)
        if key in ("currentmonth", "currentyear", "currentdayofmonth"):
            _arity(node, 0, "no arguments")
            # §1 "Time base": date parts of now are taken in UTC.
            return {
                "currentmonth": self.now.month,
                "currentyear": self.now.year,
                "currentdayofmonth": self.now.day,
            }[key]
        if key == "insegment":
            _arity(node, 1, "one segment id")
            return self.in_segment(args[0])
        if key == "mapentry":
            _arity(node, 2, "a key and a value")
            return MapEntry(args[0], args[1])
        raise PQLEvaluationError(UNKNOWN_FUNCTION.format(name=name), node.span)

    def in_segment(self, segment_id: Any) -> bool:
        """§6.14: a member iff the status is realized or existing (exited is out)."""
        if not isinstance(segment_id, str):
            return False
        if self.memberships is not None:
            return self.memberships.get(segment_id) in MEMBER_STATUSES
        by_namespace = self.profile.get("segmentMembership")
        if not isinstance(by_namespace, Mapping):
            return False
        for segments in by_namespace.values():
            entry = segments.get(segment_id) if isinstance(segments, Mapping) else None
            if isinstance(entry, Mapping) and entry.get("status") in MEMBER_STATUSES:
                return True
        return False

    def _method(self, node: ast.Method, scope: Scope) -> Any:
        name = node.name
        receiver = self.value(node.receiver, scope)
        key = name.lower()
        if key in _ITEM_METHODS:
            return _ITEM_METHODS[key](self, node, receiver, scope)
        args = [self.value(arg, scope) for arg in node.args]
        method = _VALUE_METHODS.get(key)
        if method is None:
            raise PQLEvaluationError(UNKNOWN_FUNCTION.format(name=name), node.span)
        return method(receiver, args, node)

    def _filter(self, node: ast.Filter, scope: Scope) -> Any:
        source = self.value(node.source, scope)
        return [
            item for item in items_of(source) if self.truth(node.predicate, scope.with_item(item))
        ]

    # --- item-context methods (the argument is evaluated once per item) ---------------------

    def item_values(self, expr: ast.Node | None, items: list[Any], scope: Scope) -> list[Any]:
        if expr is None:
            return list(items)
        return [self.value(expr, scope.with_item(item)) for item in items]

    # --- time -------------------------------------------------------------------------------

    def _occurs(self, node: ast.Occurs, scope: Scope) -> bool:
        subject = self.value(node.subject, scope)
        # A mapped path (xEvent.timestamp) occurs when any of its values does.
        values = subject if isinstance(subject, list) else [subject]
        return any(self.window_holds(value, node.window, scope, node) for value in values)

    def window_holds(
        self, value: Any, window: ast.TimeWindow, scope: Scope, node: ast.Node
    ) -> bool:
        """Does the timestamp ``value`` fall in ``window`` (spec §6.9)? False if it is null."""
        try:
            return self._window_holds(value, window, scope, node)
        except OverflowError:
            raise PQLEvaluationError(OUT_OF_RANGE, window.span or node.span) from None

    def _window_holds(
        self, value: Any, window: ast.TimeWindow, scope: Scope, node: ast.Node
    ) -> bool:
        if value is None:
            return False  # §6.9: occurs is false if T is null
        moment = parse_timestamp(value)
        if moment is None:
            raise PQLTypeError(NOT_A_TIMESTAMP.format(what="occurs", value=value), node.span)
        anchor = self.time_ref(window.anchor, scope)
        if anchor is None:
            return False  # a null time reference propagates to false
        relation = window.relation
        if relation == "on":
            return occurs_on(moment, anchor)
        if relation == "between":
            if window.end is None:
                raise PQLEvaluationError("between needs two times", window.span)
            last = self.time_ref(window.end, scope)
            return last is not None and occurs_between(moment, anchor, last)
        if relation == "from":
            # §6.9 step 4: `from` is never explained; it reads as `before` for a time in the
            # past and `after` for a time in the future.
            relation = "before" if anchor.start <= self.now else "after"
        if window.op is None:
            return (
                occurs_before(moment, anchor)
                if relation == "before"
                else occurs_after(moment, anchor)
            )
        if window.amount is None or window.unit is None:
            raise PQLEvaluationError("a distance needs an amount and a unit", window.span)
        return occurs_distance(moment, window.op, window.amount, window.unit, relation, anchor)

    def time_ref(self, node: ast.Node, scope: Scope) -> Interval | None:
        """A time reference as ``[start, end)``: now is an instant, today/yesterday/tomorrow and
        date(…) are UTC days, this/last/next <unit> a calendar unit, a timestamp an instant."""
        if isinstance(node, ast.TimeWord):
            return time_word(node.word, self.now)
        if isinstance(node, ast.TimePeriod):
            return relative_unit(
                node.relative, canonical_unit(node.unit), self.now, self.week_start
            )
        value = self.value(node, scope)
        if value is None:
            return None
        if isinstance(value, date) and not isinstance(value, datetime):
            return Interval.of_day(value)
        if isinstance(value, str) and len(value.strip()) == 10:
            day = parse_timestamp(value)  # an XDM date field: the whole UTC day
            if day is not None:
                return Interval.of_day(day.date())
        moment = parse_timestamp(value)
        if moment is None:
            raise PQLTypeError(
                NOT_A_TIMESTAMP.format(what="a time reference", value=value), node.span
            )
        return Interval.instant(moment)

    # --- variables and quantifiers ----------------------------------------------------------

    def bindings(
        self, decls: Sequence[ast.VarDecl], scope: Scope
    ) -> Iterator[tuple[Scope, tuple[Any, ...]]]:
        """Every assignment of the variables, left to right, whose conditions hold; a later
        source and condition see the earlier variables (§6.11)."""
        if not decls:
            yield scope, ()
            return
        first, rest = decls[0], decls[1:]
        for item in items_of(self.value(first.source, scope)):
            inner = scope.with_vars(**{first.name: item})
            if first.where is not None and not self.truth(first.where, inner):
                continue
            for final, values in self.bindings(rest, inner):
                yield final, (item, *values)

    def _select(self, node: ast.Select, scope: Scope) -> list[Any]:
        # The matching values; with several variables, a list [V1, V2, …] per binding. In
        # boolean position a select is true iff non-empty.
        single = len(node.variables) == 1
        return [
            values[0] if single else list(values)
            for _, values in self.bindings(node.variables, scope)
        ]

    def _quantified(self, node: ast.Quantified, scope: Scope) -> bool:
        if node.quantifier.lower() == "forall":
            return self.for_all(node.variables, scope)
        return any(True for _ in self.bindings(node.variables, scope))

    def for_all(self, decls: Sequence[ast.VarDecl], scope: Scope) -> bool:
        """forall V1 from A1: P1, V2 from A2: P2 — every V1 satisfies P1 and, for it, every V2
        satisfies P2. An empty (or missing) array makes it vacuously true."""
        if not decls:
            return True
        first, rest = decls[0], decls[1:]
        for item in items_of(self.value(first.source, scope)):
            inner = scope.with_vars(**{first.name: item})
            if first.where is not None and not self.truth(first.where, inner):
                return False
            if not self.for_all(rest, inner):
                return False
        return True

    def _aggregate(self, node: ast.Aggregate, scope: Scope) -> Any:
        values: list[Any] = []
        for inner, bound in self.bindings(node.variables, scope):
            value = bound[0] if node.expr is None else self.value(node.expr, inner)
            # §6.8: tuples whose expression references a missing property are skipped.
            if value is not None:
                values.append(value)
        return aggregate(node.function.lower(), values, node)

    # --- chain ------------------------------------------------------------------------------

    def _chain(self, node: ast.Chain, scope: Scope) -> bool:
        """§6.13: true iff there is an assignment of events to the steps, each step's events
        strictly later than the previous step's time, each satisfying WHAT/WHEN/WHERE, COUNT(n)
        asking for at least n events for that step; a step's time is its n-th counted event.

        A WHEN that names an earlier step (``chain_plan``) is measured from that step's time.
        For a step that no later WHEN names, its earliest time is optimal (it only moves the
        cursor, and an earlier cursor leaves more events), so it is taken greedily. A step that
        is named is also an anchor, where a later time can be the one that works (A on day 0 and
        day 10, B on day 15 within 7 days after A), so each of its possible times is tried."""
        plan = chain_plan(node)
        timed: list[tuple[datetime, Any]] = []
        for event in items_of(self.value(node.events, scope)):
            moment = parse_timestamp(get_field(event, node.order_by, node))
            if moment is not None:
                timed.append((moment, event))
        timed.sort(key=lambda pair: pair[0])
        explaining = self.frames is not None and not scope.looping
        search = _ChainSearch(self, node, plan, timed, scope, explaining)
        holds = search.attempt(0, None, {}, [])
        if explaining:
            for step, result in zip(node.steps, search.deepest, strict=False):
                if not result.satisfied:
                    result = replace(result, tries=search.tries[len(search.deepest) - 1])
                self._explain_step(step, result)
            for later in node.steps[len(search.deepest) :]:
                self._explain_step(later, StepResult(False, later.count or 1, (), None))
        return holds

    def _explain_step(self, step: ast.ChainStep, result: StepResult) -> None:
        assert self.frames is not None
        self.frames[-1].append((step, result, []))

    def step_matches(
        self,
        step: ast.ChainStep,
        event: Any,
        scope: Scope,
        node: ast.Chain,
        *,
        when: ast.TimeWindow | None = None,
        anchors: Mapping[str, datetime] | None = None,
    ) -> bool:
        """Does ``event`` satisfy the step? ``when`` replaces the step's WHEN by its resolved
        form (``ChainPlan.whens``), and ``anchors`` gives the times of the steps it names."""
        inner = scope.with_item(event)
        if not self.truth(step.what, inner):
            return False
        return self.step_window_holds(step, event, inner, node, when=when, anchors=anchors) and (
            step.where is None or self.truth(step.where, inner)
        )

    def step_window_holds(
        self,
        step: ast.ChainStep,
        event: Any,
        inner: Scope,
        node: ast.Chain,
        *,
        when: ast.TimeWindow | None = None,
        anchors: Mapping[str, datetime] | None = None,
    ) -> bool:
        window = when if when is not None else step.when
        if window is None:
            return True
        if anchors:
            times = {label_variable(label): moment for label, moment in anchors.items()}
            inner = Scope(inner.contexts, {**inner.variables, **times}, looping=True)
        # WHEN is an occurs tail applied to the field that orders the chain (timestamp).
        stamp = get_field(event, node.order_by, node)
        return self.window_holds(stamp, window, inner, node)


class _ChainSearch:
    """One chain on one profile: the backtracking search of ``Evaluator._chain``.

    ``deepest`` keeps, for explain, the step results of the assignment that got furthest
    (the first one found of that length): the whole assignment when the chain holds."""

    def __init__(
        self,
        ev: Evaluator,
        node: ast.Chain,
        plan: ChainPlan,
        timed: list[tuple[datetime, Any]],
        scope: Scope,
        explaining: bool,
    ) -> None:
        self.ev = ev
        self.node = node
        self.plan = plan
        self.timed = timed
        self.scope = scope
        self.explaining = explaining
        self.named = plan.referenced
        self.deepest: list[StepResult] = []
        self.tries = [0] * len(node.steps)  # how often each step was tried
        # WHAT and WHERE do not depend on the anchors: each is evaluated once per event.
        self.what: dict[tuple[int, int], bool] = {}
        self.where: dict[tuple[int, int], bool] = {}

    def attempt(
        self,
        index: int,
        after: datetime | None,
        anchors: dict[int, datetime],
        trail: list[StepResult],
    ) -> bool:
        """Can steps ``index…`` be matched strictly after ``after``, the steps named so far
        being at ``anchors`` (step index → time)?"""
        steps = self.node.steps
        if index == len(steps):
            self.deepest = trail
            return True
        step = steps[index]
        self.tries[index] += 1
        needed = step.count if step.count is not None else 1
        named = index in self.named
        labelled = {steps[j].label: anchors[j] for j in self.plan.uses[index]}
        # An unnamed step stops at its n-th event, as the greedy scan always did.
        stop = needed if needed >= 1 and not (named or self.explaining) else None
        found = self.matching(index, after, labelled, stop)
        used = tuple(labelled.items())
        if len(found) < needed:
            if len(trail) + 1 > len(self.deepest):
                self.deepest = [*trail, StepResult(False, needed, tuple(found), after, used)]
            return False
        if needed == 0:
            # COUNT(0) holds without events and does not move the cursor.
            result = StepResult(True, needed, tuple(found), after, used)
            return self.attempt(index + 1, after, anchors, [*trail, result])
        # The step's time is its n-th counted event: the greedy one, or, for a named step,
        # any later matching time (with n matching events at or before it).
        times = list(dict.fromkeys(found[needed - 1 :])) if named else [found[needed - 1]]
        for moment in times:
            result = StepResult(True, needed, tuple(found), after, used, moment)
            following = {**anchors, index: moment} if named else anchors
            if self.attempt(index + 1, moment, following, [*trail, result]):
                return True
        return False

    def matching(
        self,
        index: int,
        after: datetime | None,
        anchors: Mapping[str, datetime],
        stop: int | None,
    ) -> list[datetime]:
        """The times of the events later than ``after`` that satisfy step ``index``."""
        ev, node, scope = self.ev, self.node, self.scope
        step = node.steps[index]
        when = self.plan.whens[index]
        found: list[datetime] = []
        for position, (moment, event) in enumerate(self.timed):
            if after is not None and moment <= after:
                continue
            inner = scope.with_item(event)
            key = (index, position)
            if key not in self.what:
                self.what[key] = ev.truth(step.what, inner)
            if not self.what[key]:
                continue
            if not ev.step_window_holds(step, event, inner, node, when=when, anchors=anchors):
                continue
            if step.where is not None:
                if key not in self.where:
                    self.where[key] = ev.truth(step.where, inner)
                if not self.where[key]:
                    continue
            found.append(moment)
            if stop is not None and len(found) == stop:
                break
        return found


# --- chain labels (spec §6.13, extended) ---------------------------------------------------


def label_variable(label: str) -> str:
    """The variable a step label is bound to inside a resolved WHEN (``ChainPlan.whens``):
    a name no PQL text can spell, so that it never meets a select's or a let's variable."""
    return f"{label} (chain step)"


@dataclass(frozen=True, slots=True)
class ChainPlan:
    """What the step labels named in a chain's WHENs mean.

    ``whens[i]`` is step i's WHEN with every label anchor replaced by
    ``Var(label_variable(label))`` (the step's WHEN itself when it names no label; None without
    a WHEN). ``uses[i]`` are the indices of the earlier steps step i is timed from, in order
    of first mention."""

    whens: tuple[ast.TimeWindow | None, ...]
    uses: tuple[tuple[int, ...], ...]

    @property
    def referenced(self) -> frozenset[int]:
        """The steps some later step is timed from (their time is an anchor)."""
        return frozenset(j for used in self.uses for j in used)

    def last_use(self, index: int) -> int:
        """The last step timed from step ``index`` (-1 if none)."""
        return max((i for i, used in enumerate(self.uses) if index in used), default=-1)


def chain_plan(node: ast.Chain) -> ChainPlan:
    """Resolve the step labels in the WHENs of ``node`` (``PQLChainLabelError`` if one is
    meaningless).

    Inside step S's WHEN, a name that is a label of the same chain (matched case-sensitively)
    is that step's time, and wins over an event field of the same name. It may only be a whole
    time of the window: the anchor (``after A``, ``<= 7 days after A``, ``between A and now``)
    written ``A`` or ``A.<ordering field>`` (``A.timestamp``). Refused, as they mean nothing:
    a label of S itself or of a later step; a label that several steps carry; a label of a
    COUNT(0) step (it has no event); a label inside a larger expression (``A.commerce``,
    ``date(A.getYear(), 1, 1)``); and, as S's events are always later than an earlier step's
    time, the windows that could never hold: ``before A`` (with or without a distance),
    ``on A``, ``between … and A``; ``from A`` has no defined direction."""
    labels: dict[str, list[int]] = {}
    for index, step in enumerate(node.steps):
        labels.setdefault(step.label, []).append(index)
    whens: list[ast.TimeWindow | None] = []
    uses: list[tuple[int, ...]] = []
    for index, step in enumerate(node.steps):
        window = step.when
        if window is None or not _mentions_label(window, labels):
            whens.append(window)
            uses.append(())
            continue
        used: list[int] = []
        anchor = _resolve_anchor(window.anchor, "anchor", node, index, labels, used)
        end = (
            _resolve_anchor(window.end, "end", node, index, labels, used)
            if window.end is not None
            else None
        )
        whens.append(replace(window, anchor=anchor, end=end))
        uses.append(tuple(dict.fromkeys(used)))
    return ChainPlan(tuple(whens), tuple(uses))


def _mentions_label(window: ast.TimeWindow, labels: Mapping[str, list[int]]) -> bool:
    return any(
        isinstance(inner, ast.Field) and inner.obj is None and inner.name in labels
        for inner in window.walk()
    )


def step_label(anchor: ast.Node, labels: Collection[str], order_by: str) -> str | None:
    """The label ``anchor`` names as a whole: ``A`` or ``A.<order_by>``; None otherwise."""
    if isinstance(anchor, ast.Field) and anchor.obj is None and anchor.name in labels:
        return anchor.name
    if (
        isinstance(anchor, ast.Field)
        and anchor.name == order_by
        and isinstance(anchor.obj, ast.Field)
        and anchor.obj.obj is None
        and anchor.obj.name in labels
    ):
        return anchor.obj.name
    return None


def _resolve_anchor(
    anchor: ast.Node,
    role: str,
    node: ast.Chain,
    index: int,
    labels: Mapping[str, list[int]],
    used: list[int],
) -> ast.Node:
    step = node.steps[index]
    window = step.when
    assert window is not None
    label = step_label(anchor, labels, node.order_by)
    if label is None:
        for inner in anchor.walk():
            if isinstance(inner, ast.Field) and inner.obj is None and inner.name in labels:
                raise PQLChainLabelError(
                    CHAIN_LABEL_NOT_A_TIME.format(
                        step=step.label, label=inner.name, order_by=node.order_by,
                        text=to_text(anchor),
                    ),
                    anchor.span,
                )  # fmt: skip
        return anchor
    indices = labels[label]
    if len(indices) > 1:
        message = CHAIN_LABEL_TWICE.format(step=step.label, label=label, count=len(indices))
        raise PQLChainLabelError(message, anchor.span)
    named = indices[0]
    if named == index:
        raise PQLChainLabelError(CHAIN_OWN_LABEL.format(step=step.label, label=label), anchor.span)
    if named > index:
        message = CHAIN_LATER_LABEL.format(step=step.label, label=label)
        raise PQLChainLabelError(message, anchor.span)
    if node.steps[named].count == 0:
        message = CHAIN_LABEL_COUNT_ZERO.format(step=step.label, label=label)
        raise PQLChainLabelError(message, anchor.span)
    relation = window.relation.lower()
    text = window_text(window)
    if relation == "from":
        message = CHAIN_LABEL_FROM.format(window=text, label=label)
        raise PQLChainLabelError(message, window.span or anchor.span)
    if relation in ("before", "on") or role == "end":
        message = CHAIN_LABEL_NEVER.format(step=step.label, label=label, window=text)
        raise PQLChainLabelError(message, window.span or anchor.span)
    used.append(named)
    return ast.Var(label_variable(label), span=anchor.span)


# Node type → Evaluator method, built once (one evaluation per profile must be cheap).
_DISPATCH: dict[type, Callable[[Evaluator, Any, Scope], Any]] = {
    ast.Literal: Evaluator._literal,
    ast.ListLiteral: Evaluator._list_literal,
    ast.ObjectLiteral: Evaluator._object_literal,
    ast.Field: Evaluator._field,
    ast.Param: Evaluator._param,
    ast.Var: Evaluator._var,
    ast.Up: Evaluator._up,
    ast.Binary: Evaluator._binary,
    ast.Negate: Evaluator._negate,
    ast.Not: Evaluator._not,
    ast.And: Evaluator._and,
    ast.Or: Evaluator._or,
    ast.Call: Evaluator._call,
    ast.Method: Evaluator._method,
    ast.Filter: Evaluator._filter,
    ast.Lambda: Evaluator._lambda,
    ast.Occurs: Evaluator._occurs,
    ast.Select: Evaluator._select,
    ast.Quantified: Evaluator._quantified,
    ast.Aggregate: Evaluator._aggregate,
    ast.Let: Evaluator._let,
    ast.Chain: Evaluator._chain,
}


# --- value-level helpers --------------------------------------------------------------------


def _arity(node: ast.Call, count: int, expected: str) -> None:
    if len(node.args) != count:
        raise PQLEvaluationError(
            WRONG_ARGUMENTS.format(name=node.name, expected=expected, given=len(node.args)),
            node.span,
        )


def get_field(base: Any, name: str, node: ast.Node) -> Any:
    """``base.name``. Missing → null (§1). Through an array the step maps over the items and
    flattens, dropping nulls (§3.3); a map's key can be read with a dot too."""
    if base is None:
        return None
    if isinstance(base, Mapping):
        return base.get(name)
    if isinstance(base, list):
        out = PathList()
        for item in base:
            flatten_into(out, get_field(item, name, node))
        return out
    raise PQLTypeError(NO_FIELD_ON.format(name=name, got=type_name(base)), node.span)


def items_of(value: Any) -> list[Any]:
    """The items to iterate: a list as is, null as nothing, any other value as one item."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def arithmetic(op: str, left: Any, right: Any, node: ast.Node) -> Any:
    # §1: arithmetic with a null yields null; the null propagates up to a boolean position,
    # where it is false.
    if left is None or right is None:
        return None
    for side in (left, right):
        if not is_number(side):
            raise PQLTypeError(NOT_A_NUMBER.format(what=f"'{op}'", got=type_name(side)), node.span)
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    # §6.3: division (and remainder) by zero yields null.
    if right == 0:
        return None
    if op == "/":
        return left / right
    return left % right


def coerce_pair(left: Any, right: Any, node: ast.Node) -> tuple[Any, Any]:
    """§1 "Type coercion": the right operand is coerced to the left operand's type where that
    makes sense ("true" → true, "42" → 42, 42 → "42", a date-time text → a date-time);
    anything else is a type error."""
    if is_number(left) and is_number(right):
        return left, right
    if type(left) is type(right) and isinstance(left, str | bool | dict):
        return left, right
    if isinstance(left, date) or isinstance(right, date):
        l_moment, r_moment = parse_timestamp(left), parse_timestamp(right)
        if l_moment is not None and r_moment is not None:
            return l_moment, r_moment
    elif isinstance(left, bool) and isinstance(right, str) and right in ("true", "false"):
        return left, right == "true"
    elif is_number(left) and isinstance(right, str):
        try:
            return left, float(right) if "." in right or "e" in right.lower() else int(right)
        except ValueError:
            pass
    elif isinstance(left, str) and (is_number(right) or isinstance(right, bool)):
        return left, (str(right).lower() if isinstance(right, bool) else _number_text(right))
    raise PQLTypeError(
        CANNOT_COMPARE.format(left=type_name(left), right=type_name(right)), node.span
    )


def _number_text(value: int | float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def compare(op: str, left: Any, right: Any, node: ast.Node) -> bool:
    # §6.1 / §1: a comparison with a null operand is FALSE — for != too, so `x != "CA"` is not
    # the negation of `x = "CA"` when x is missing.
    if left is None or right is None:
        return False
    left_list, right_list = isinstance(left, list), isinstance(right, list)
    # §3.3 + the 2019 tutorial's `xEvent.metrics.commerce.abandons.value > 0`: a list compared
    # with a single value holds when some item does.
    if left_list and not right_list:
        return any(compare(op, item, right, node) for item in left)
    if right_list and not left_list:
        return any(compare(op, left, item, node) for item in right)
    if left_list and right_list:
        if op not in ("=", "!="):
            raise PQLTypeError(CANNOT_COMPARE.format(left="a list", right="a list"), node.span)
        # §6.1 [inferred]: lists compare as ordered lists.
        same = len(left) == len(right) and all(
            values_equal(a, b) for a, b in zip(left, right, strict=True)
        )
        return same if op == "=" else not same
    left, right = coerce_pair(left, right, node)
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if isinstance(left, bool | dict):
        raise PQLTypeError(
            CANNOT_COMPARE.format(left=type_name(left), right=type_name(right)), node.span
        )
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def values_equal(left: Any, right: Any) -> bool:
    """Equality for membership tests (in, includes, intersects …): coerced like `=`, but values
    that cannot be coerced are simply different."""
    if left is None or right is None:
        return False
    if isinstance(left, list) or isinstance(right, list):
        return (
            isinstance(left, list)
            and isinstance(right, list)
            and len(left) == len(right)
            and all(values_equal(a, b) for a, b in zip(left, right, strict=True))
        )
    try:
        a, b = coerce_pair(left, right, _NO_NODE)
    except PQLTypeError:
        return False
    return bool(a == b)


_NO_NODE = ast.Literal(0)


def member_of(left: Any, right: Any, node: ast.Node, *, negated: bool) -> bool:
    # §6.5: `in` and `notIn` are false when either side is null, so `notIn` is not the exact
    # negation of `in`.
    if left is None or right is None:
        return False
    if not isinstance(right, list):
        raise PQLTypeError(
            NOT_A_LIST.format(what="the right side of in/notIn", got=type_name(right)), node.span
        )
    candidates = left if isinstance(left, list) else [left]  # a mapped path: any of its values
    for value in candidates:
        found = any(values_equal(value, item) for item in right)
        if found != negated:
            return True
    return False


def like_regex(pattern: str) -> Any:
    """§6.4: SQL LIKE, `%` = any run of characters, `_` = exactly one; whole-string match."""
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern]
    return _compile("".join(parts), dotall=True)


def like(left: Any, right: Any, node: ast.Node) -> bool:
    if left is None or right is None:
        return False  # §6.4: false if either string is null
    if isinstance(left, list):
        return any(like(item, right, node) for item in left)
    _require_text(left, "like", node)
    _require_text(right, "the pattern of like", node)
    return like_regex(right).fullmatch(left) is not None


def _re2_options(dotall: bool) -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern on stderr
    options.dot_nl = dotall
    return options


@lru_cache(maxsize=4096)
def _re2(pattern: str, dotall: bool) -> Any:
    """Patterns run on RE2, as the engine's SQL (DuckDB) runs them: linear time whatever the
    input, and the same meaning in the oracle as in the compiled segment (``\\d`` is ASCII,
    no lookaround or backreferences — the checker refuses those up front)."""
    return re2.compile(pattern, _re2_options(dotall))


def _compile(pattern: str, node: ast.Node | None = None, *, dotall: bool = False) -> Any:
    try:
        return _re2(pattern, dotall)
    except re2.error as error:
        reason = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) \
            else str(error)
        raise PQLEvaluationError(
            BAD_REGEX.format(pattern=pattern, error=reason), node.span if node else None
        ) from None


def make_date(args: list[Any], node: ast.Node) -> date | None:
    """§3.1: date(year, month, day) denotes that UTC day."""
    if any(arg is None for arg in args):
        return None
    if not all(_is_whole(arg) for arg in args):
        raise PQLTypeError(
            NOT_A_NUMBER.format(what="date()", got=", ".join(type_name(a) for a in args)),
            node.span,
        )
    year, month, day = (int(arg) for arg in args)
    try:
        return date(year, month, day)
    except ValueError:
        raise PQLEvaluationError(
            BAD_DATE.format(year=year, month=month, day=day), node.span
        ) from None


def _is_whole(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def aggregate(function: str, values: list[Any], node: ast.Node) -> Any:
    """§6.8: sum of nothing is 0; average, min and max of nothing are null."""
    for value in values:
        if not is_number(value):
            raise PQLTypeError(NOT_A_NUMBER.format(what=function, got=type_name(value)), node.span)
    if function == "sum":
        return sum(values)
    if not values:
        return None
    if function == "average":
        return sum(values) / len(values)
    if function == "min":
        return min(values)
    if function == "max":
        return max(values)
    raise PQLEvaluationError(UNKNOWN_FUNCTION.format(name=function), node.span)


def _require_text(value: Any, what: str, node: ast.Node) -> None:
    if not isinstance(value, str):
        raise PQLTypeError(NOT_TEXT.format(what=what, got=type_name(value)), node.span)


def _require_list(value: Any, what: str, node: ast.Node) -> list[Any]:
    if isinstance(value, list):
        return value
    raise PQLTypeError(NOT_A_LIST.format(what=what, got=type_name(value)), node.span)


# --- string methods (§6.4) ------------------------------------------------------------------


def _text_args(args: list[Any], node: ast.Method) -> tuple[list[Any], bool]:
    """Split a trailing case flag off the arguments: `startsWith("joe", false)`."""
    case_sensitive = True
    if args and isinstance(args[-1], bool):
        case_sensitive = args[-1]
        args = args[:-1]
    return args, case_sensitive


def _string_predicate(
    test: Callable[[str, str], bool], negative: bool = False
) -> Callable[..., Any]:
    def method(receiver: Any, args: list[Any], node: ast.Method) -> bool:
        # §6.4: every string predicate (negative ones included) is false when the string or
        # the argument is null.
        if receiver is None:
            return False
        if isinstance(receiver, list):  # a mapped path: some value passes
            return any(method(item, args, node) for item in receiver)
        texts, case_sensitive = _text_args(args, node)
        if len(texts) != 1:
            raise PQLEvaluationError(
                WRONG_ARGUMENTS.format(
                    name=node.name, expected="one text and an optional case flag", given=len(args)
                ),
                node.span,
            )
        other = texts[0]
        if other is None:
            return False
        _require_text(receiver, node.name, node)
        _require_text(other, node.name, node)
        if not case_sensitive:
            receiver, other = receiver.casefold(), other.casefold()
        return test(receiver, other) != negative

    return method


def _equals(receiver: Any, args: list[Any], node: ast.Method) -> bool:
    """`S.equals(s [, cs])` and the variadic `S.equals(s1, s2, …)`: equal to any of them."""
    if receiver is None:
        return False
    if isinstance(receiver, list):
        return any(_equals(item, args, node) for item in receiver)
    texts, case_sensitive = _text_args(args, node)
    _require_text(receiver, "equals", node)
    for other in texts:
        if other is None:
            continue
        _require_text(other, "equals", node)
        if receiver == other or (not case_sensitive and receiver.casefold() == other.casefold()):
            return True
    return False


def _matches(receiver: Any, args: list[Any], node: ast.Method) -> bool:
    # §6.4: "find anywhere" semantics; `(?i)` for case-insensitive.
    if receiver is None or not args or args[0] is None:
        return False
    if isinstance(receiver, list):
        return any(_matches(item, args, node) for item in receiver)
    _require_text(receiver, "matches", node)
    _require_text(args[0], "matches", node)
    return _compile(args[0], node).search(receiver) is not None


def _regex_group(receiver: Any, args: list[Any], node: ast.Method) -> Any:
    if len(args) != 2:
        raise PQLEvaluationError(
            WRONG_ARGUMENTS.format(
                name="regexGroup", expected="a pattern and a group number", given=len(args)
            ),
            node.span,
        )
    pattern, group = args
    if receiver is None or pattern is None or group is None:
        return None
    _require_text(receiver, "regexGroup", node)
    _require_text(pattern, "regexGroup", node)
    match = _compile(pattern, node).search(receiver)
    if match is None:
        return None
    try:
        return match.group(int(group))
    except (IndexError, ValueError, TypeError, OverflowError):
        raise PQLEvaluationError(
            f"the pattern {pattern!r} has no group {group}", node.span
        ) from None


# --- null, list, map and date methods (§6.5–§6.9) -------------------------------------------


def _is_null(receiver: Any, args: list[Any], node: ast.Method) -> bool:
    # §6.7: the reference does not exist. A path through an array that reached no value is
    # null; an array that is present but empty exists.
    return receiver is None or (isinstance(receiver, PathList) and not receiver)


def _is_not_null(receiver: Any, args: list[Any], node: ast.Method) -> bool:
    return not _is_null(receiver, args, node)


def _count(receiver: Any, args: list[Any], node: ast.Method) -> int:
    # §6.8 [inferred]: count of nothing is 0 (a missing array counts as empty).
    if receiver is None:
        return 0
    if isinstance(receiver, list | Mapping):
        return len(receiver)
    return 1


def _distinct(receiver: Any, args: list[Any], node: ast.Method) -> Any:
    if receiver is None:
        return None
    seen: set[Any] = set()
    out = []
    for item in _require_list(receiver, "distinct", node):
        key = hashable(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _includes(receiver: Any, args: list[Any], node: ast.Method) -> bool:
    if receiver is None or not args or args[0] is None:
        return False
    return any(values_equal(item, args[0]) for item in _require_list(receiver, "includes", node))


def _two_lists(
    receiver: Any, args: list[Any], node: ast.Method
) -> tuple[list[Any], list[Any]] | None:
    if receiver is None or not args or args[0] is None:
        return None
    return _require_list(receiver, node.name, node), _require_list(args[0], node.name, node)


def _contains_value(items: list[Any], value: Any) -> bool:
    return any(values_equal(item, value) for item in items)


def _intersects(receiver: Any, args: list[Any], node: ast.Method) -> bool:
    pair = _two_lists(receiver, args, node)
    return pair is not None and any(_contains_value(pair[1], item) for item in pair[0])


def _intersection(receiver: Any, args: list[Any], node: ast.Method) -> Any:
    # §6.5: the common elements, in the receiver's order; null when there are none.
    pair = _two_lists(receiver, args, node)
    if pair is None:
        return None
    common = _distinct([item for item in pair[0] if _contains_value(pair[1], item)], [], node)
    return common or None


def _subset_of(receiver: Any, args: list[Any], node: ast.Method) -> bool:
    pair = _two_lists(receiver, args, node)
    return pair is not None and all(_contains_value(pair[1], item) for item in pair[0])


def _superset_of(receiver: Any, args: list[Any], node: ast.Method) -> bool:
    pair = _two_lists(receiver, args, node)
    return pair is not None and all(_contains_value(pair[0], item) for item in pair[1])


def _head(receiver: Any, args: list[Any], node: ast.Method) -> Any:
    if receiver is None:
        return None
    items = _require_list(receiver, "head", node)
    return items[0] if items else None  # §6.5: head of an empty list is null


def _get(receiver: Any, args: list[Any], node: ast.Method) -> Any:
    if receiver is None or not args or args[0] is None:
        return None
    if isinstance(receiver, list):  # a mapped path of maps
        out = PathList()
        for item in receiver:
            flatten_into(out, _get(item, args, node))
        return out
    if not isinstance(receiver, Mapping):
        raise PQLTypeError(NOT_A_MAP.format(what="get", got=type_name(receiver)), node.span)
    try:
        return receiver.get(args[0])
    except TypeError:  # an unhashable key (a list or an object) is in no map
        return None


def _keys(receiver: Any, args: list[Any], node: ast.Method) -> Any:
    if receiver is None:
        return None
    if not isinstance(receiver, Mapping):
        raise PQLTypeError(NOT_A_MAP.format(what="keys", got=type_name(receiver)), node.span)
    return list(receiver.keys())


def _values(receiver: Any, args: list[Any], node: ast.Method) -> Any:
    if receiver is None:
        return None
    if not isinstance(receiver, Mapping):
        raise PQLTypeError(NOT_A_MAP.format(what="values", got=type_name(receiver)), node.span)
    return list(receiver.values())


def _date_part(part: str) -> Callable[..., Any]:
    def method(receiver: Any, args: list[Any], node: ast.Method) -> Any:
        if receiver is None:
            return None
        if isinstance(receiver, list):  # xEvent.timestamp.getYear(): one value per event
            out = PathList()
            for item in receiver:
                flatten_into(out, method(item, args, node))
            return out
        moment = parse_timestamp(receiver)
        if moment is None:
            raise PQLTypeError(NOT_A_TIMESTAMP.format(what=node.name, value=receiver), node.span)
        # §1: date parts are computed in UTC.
        return getattr(moment, part)

    return method


VALUE_METHODS: dict[str, Callable[[Any, list[Any], ast.Method], Any]] = {
    "startsWith": _string_predicate(str.startswith),
    "doesNotStartWith": _string_predicate(str.startswith, negative=True),
    "endsWith": _string_predicate(str.endswith),
    "doesNotEndWith": _string_predicate(str.endswith, negative=True),
    "contains": _string_predicate(lambda text, part: part in text),
    "doesNotContain": _string_predicate(lambda text, part: part in text, negative=True),
    "notEqualTo": _string_predicate(lambda text, other: text == other, negative=True),
    "equals": _equals,
    "matches": _matches,
    "regexGroup": _regex_group,
    "isNull": _is_null,
    "isNotNull": _is_not_null,
    "distinct": _distinct,
    "includes": _includes,
    "intersects": _intersects,
    "intersection": _intersection,
    "subsetOf": _subset_of,
    "supersetOf": _superset_of,
    "head": _head,
    "get": _get,
    "keys": _keys,
    "values": _values,
    "getMonth": _date_part("month"),
    "getYear": _date_part("year"),
    "getDayOfMonth": _date_part("day"),
}


def _m_filter(ev: Evaluator, node: ast.Method, receiver: Any, scope: Scope) -> Any:
    if receiver is None:
        return None
    _one_arg(node)
    return [item for item in items_of(receiver) if ev.truth(node.args[0], scope.with_item(item))]


def _m_exists(ev: Evaluator, node: ast.Method, receiver: Any, scope: Scope) -> bool:
    _one_arg(node)
    return any(ev.truth(node.args[0], scope.with_item(item)) for item in items_of(receiver))


def _m_aggregate(ev: Evaluator, node: ast.Method, receiver: Any, scope: Scope) -> Any:
    # `A.sum(expr)` evaluates expr per item; `A.sum()` sums the items themselves (§6.8 note).
    items = items_of(receiver)
    expr = node.args[0] if node.args else None
    values = [value for value in ev.item_values(expr, items, scope) if value is not None]
    return aggregate(node.name, values, node)


def _m_count(ev: Evaluator, node: ast.Method, receiver: Any, scope: Scope) -> Any:
    if node.args:  # count(P): the items satisfying P
        return sum(
            1 for item in items_of(receiver) if ev.truth(node.args[0], scope.with_item(item))
        )
    return _count(receiver, [], node)


def _m_group_by(ev: Evaluator, node: ast.Method, receiver: Any, scope: Scope) -> Any:
    if receiver is None:
        return None
    _one_arg(node)
    groups: dict[Any, list[Any]] = {}
    for item in items_of(receiver):
        key = ev.value(node.args[0], scope.with_item(item))
        if key is None:
            continue  # items without a key belong to no group
        groups.setdefault(key if not isinstance(key, list | dict) else str(key), []).append(item)
    return groups


def _m_map(ev: Evaluator, node: ast.Method, receiver: Any, scope: Scope) -> Any:
    if receiver is None:
        return None
    _one_arg(node)
    expr = node.args[0]
    if isinstance(expr, ast.Lambda):
        if isinstance(receiver, Mapping):
            # M.map((K, G) => mapEntry(K, …)) builds a new map from the entries.
            out: dict[Any, Any] = {}
            for key, value in receiver.items():
                bound = dict(zip(expr.params, (key, value), strict=False))
                result = ev.value(expr.body, scope.with_vars(**bound))
                if isinstance(result, MapEntry):
                    out[result.key] = result.value
                else:
                    out[key] = result
            return out
        return [
            ev.value(expr.body, scope.with_vars(**dict(zip(expr.params, (item,), strict=False))))
            for item in items_of(receiver)
        ]
    return [ev.value(expr, scope.with_item(item)) for item in items_of(receiver)]


def _m_top(descending: bool) -> Callable[..., Any]:
    def method(ev: Evaluator, node: ast.Method, receiver: Any, scope: Scope) -> Any:
        # §6.5 [inferred]: topN = the n items with the largest key, bottomN the smallest;
        # ties keep the input order; items without a key are left out.
        if receiver is None:
            return None
        if len(node.args) != 2:
            raise PQLEvaluationError(
                WRONG_ARGUMENTS.format(
                    name=node.name, expected="a sort key and a count", given=len(node.args)
                ),
                node.span,
            )
        count = ev.value(node.args[1], scope)
        if not is_number(count):
            raise PQLTypeError(NOT_A_NUMBER.format(what=node.name, got=type_name(count)), node.span)
        keyed = []
        for item in items_of(receiver):
            key = ev.value(node.args[0], scope.with_item(item))
            if key is None:
                continue
            if not is_number(key):
                raise PQLTypeError(
                    NOT_A_NUMBER.format(what=node.name, got=type_name(key)), node.span
                )
            keyed.append((key, item))
        keyed.sort(key=lambda pair: -pair[0] if descending else pair[0])  # stable: ties in order
        return [item for _, item in keyed[: int(count)]]

    return method


def _one_arg(node: ast.Method) -> None:
    if len(node.args) != 1:
        raise PQLEvaluationError(
            WRONG_ARGUMENTS.format(name=node.name, expected="one argument", given=len(node.args)),
            node.span,
        )


ITEM_METHODS: dict[str, Callable[[Evaluator, ast.Method, Any, Scope], Any]] = {
    "filter": _m_filter,
    "exists": _m_exists,
    "sum": _m_aggregate,
    "average": _m_aggregate,
    "min": _m_aggregate,
    "max": _m_aggregate,
    "count": _m_count,
    "groupBy": _m_group_by,
    "map": _m_map,
    "topN": _m_top(descending=True),
    "bottomN": _m_top(descending=False),
}

# Method names are looked up case-insensitively, like keywords.
_VALUE_METHODS = {name.lower(): method for name, method in VALUE_METHODS.items()}
_ITEM_METHODS = {name.lower(): method for name, method in ITEM_METHODS.items()}
