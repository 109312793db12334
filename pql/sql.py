"""PQL → DuckDB SQL: ``compile_segment(node, *, now, schema)`` and ``to_sql(...)``.

The compiler gives the same member sets as the reference evaluator (``pql.evaluator``); a
differential test over every example program demands it. It produces text only: no DuckDB
import here, the engine and the tests run the SQL.

The table contract
------------------
The engine's query snapshot provides four tables (names configurable with ``Tables``):

``profiles`` — the merged profiles of one merge policy, one row per stitched profile:
    ``_profile_id VARCHAR`` (the stitched profile id: unique here, never NULL in any of the
    tables, as ``IN``/``NOT IN`` rely on it), ``_bucket SMALLINT`` (hash bucket for
    sampling), then one column per top-level XDM field of the profile union schema, typed as
    ``column_type`` says: objects ``STRUCT(...)``, arrays ``T[]``, maps ``MAP(VARCHAR, T)``
    (``identityMap`` is ``MAP(VARCHAR, STRUCT(id VARCHAR, "primary" BOOLEAN,
    authenticatedState VARCHAR)[])``, ``segmentMembership`` is ``MAP(VARCHAR, MAP(VARCHAR,
    STRUCT(status VARCHAR, lastQualificationTime TIMESTAMP)))``), date-time ``TIMESTAMP``
    (UTC, naive), date ``DATE``, integer ``BIGINT``, number ``DOUBLE``, boolean ``BOOLEAN``,
    string ``VARCHAR``. A field absent from a profile is NULL; an object that is present has a
    non-NULL struct even when all its fields are NULL.
``events`` — the ExperienceEvents (``xEvent``): ``_profile_id VARCHAR``, ``_bucket SMALLINT``,
    ``timestamp TIMESTAMP``, then the other top-level event fields typed the same way. Sorted by
    ``_bucket, _profile_id, timestamp``.
``events`` holds events of profiles only: every ``events._profile_id`` is a row of
``profiles`` (a definition that is one event condition runs on ``events`` alone).
``memberships`` — ``_profile_id VARCHAR, segment_id VARCHAR, status VARCHAR`` (``realized``,
    ``existing`` or ``exited``), ``last_qualification_time TIMESTAMP``. ``inSegment`` reads it.
``identities`` — ``_profile_id VARCHAR, namespace VARCHAR, id VARCHAR, "primary" BOOLEAN,
    authenticated_state VARCHAR`` (not read by compiled segments; ``identityMap`` is a column).

The result
----------
``compile_segment`` returns ``Compiled(sql, exact, fallbacks)``. ``sql`` is one DuckDB ``SELECT
p._profile_id FROM <profiles> AS p WHERE …`` (distinct, as ``_profile_id`` is the key of
``profiles``), or — for a definition that is a single event condition — the distinct
``_profile_id`` of the matching ``events`` directly. When a top-level conjunct uses a construct
this compiler does not translate yet, that conjunct is left out (TRUE): ``exact`` is False, the
SELECT returns a superset — the candidates — and ``fallbacks`` names the constructs; the caller
evaluates the definition with ``pql.evaluate`` on each candidate (slower, never wrong).
``to_sql`` refuses such definitions with ``PQLNotCompiledError``. ``profile_filter`` is a
trusted predicate over the profiles row (alias ``p``; ``_bucket < 64`` resolves to it) ANDed
into the outer WHERE. ``event_filter`` (an addition to the issue's API) is a trusted predicate
over the unqualified columns of ``events`` (``_bucket < 64``), applied to every read of the
events: a sampled estimate then reads only the sampled buckets of the sorted events table
instead of all of it (7× faster on the bench for a 5 % sample).

How it compiles
---------------
- Event conditions are semi-joins: ``p._profile_id IN (SELECT e._profile_id FROM events e WHERE
  …)``; a condition that also reads the profile becomes a correlated ``EXISTS``. Aggregates over
  events compared with a constant are grouped: ``… GROUP BY _profile_id HAVING sum(…) > 500``
  (or ``NOT IN (… HAVING NOT …)`` when a profile without events would qualify); other uses are
  scalar subqueries. ``chain`` is a cascade of grouped joins, each step keeping the time of its
  n-th earliest matching event after the previous step's; a step that a later step's WHEN is
  timed from (``WHEN(<= 7 days after A)``) keeps every time it can have, as a column carried
  until that WHEN.
- ``occurs`` with a constant time reference is resolved in Python with ``pql.timeutil`` at the
  bound ``now`` and becomes a constant timestamp range; relative to another timestamp it uses
  DuckDB interval arithmetic (months clamp to the month's end, like ``timeutil.add_months``).
- Paths through arrays map over the items (spec §3.3) with ``list_transform`` and
  ``list_filter``; a list compared with a value holds when some item does.
- Strings are quoted by doubling single quotes, identifiers with double quotes (doubled inside),
  struct fields are read with ``struct_extract(x, '<name>')``; nothing a user typed reaches the
  SQL otherwise. Constants are computed by the evaluator itself, so they mean the same thing.
- NULL stands for "false" in boolean positions, as in spec §1; ``not`` wraps its operand in
  ``COALESCE(…, FALSE)`` so that it stays the exact negation (``NOT EXISTS`` for a subquery,
  which DuckDB runs as an anti-join); ``not(not(P))`` is ``P``.
- ``groupBy(key)`` is compiled for what can be asked of the groups: ``.get(k)`` (the items with
  that key, null when none), ``.keys()``, ``.count()``, and ``.map((K, G) => mapEntry(K, v))``
  followed by ``.get(k)``; over the events these are grouped aggregates again.

Left to the reference evaluator (the conjunct becomes TRUE and ``fallbacks`` names it): a
``chain`` step that reads the profile (``^``); events inside a list function
(``person.orders.exists(… xEvent …)``); ``map`` with a lambda over a map; object literals and
``filter`` on an object; comparisons the evaluator would reject or coerce specially (text with
a number field on the left, lists of mixed types); a select of several variables used as a list.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from pql import ast
from pql.errors import PQLError
from pql.evaluator import (
    MEMBER_STATUSES,
    Evaluator,
    PQLChainLabelError,
    PQLEvaluationError,
    chain_plan,
    compare,
    label_variable,
)
from pql.regex import re2_error
from pql.schema import FieldType, Schema
from pql.timeutil import FIXED_UNITS, MONTHS_IN, canonical_unit, shift
from pql.values import is_number, parse_timestamp, truthy

__all__ = [
    "Compiled",
    "PQLNotCompiledError",
    "Tables",
    "column_type",
    "compile_segment",
    "quote_identifier",
    "quote_string",
    "table_columns",
    "to_sql",
]

log = logging.getLogger(__name__)

PROFILE_ALIAS = "p"
NOT_COMPILED = "this definition needs the reference evaluator for: {names}"

# DuckDB types of the scalar kinds of pql.schema.
SCALAR_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "date-time": "TIMESTAMP",
    "any": "VARCHAR",
}
NUMBERS = frozenset({"integer", "number"})
TIMES = frozenset({"date", "date-time"})
COMPARISONS = frozenset({"=", "!=", "<", "<=", ">", ">="})
SQL_OPERATORS: dict[str, str] = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
MIRRORED: dict[str, str] = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
# Aggregations: PQL name → (DuckDB aggregate, DuckDB list function).
AGGREGATES: dict[str, tuple[str, str]] = {
    "sum": ("sum", "list_sum"),
    "average": ("avg", "list_avg"),
    "min": ("min", "list_min"),
    "max": ("max", "list_max"),
}
DATE_PARTS: dict[str, str] = {"getmonth": "month", "getyear": "year", "getdayofmonth": "day"}
# String predicates: PQL method (lower-case) → (SQL template over {s} and {t}, negated).
STRING_TESTS: dict[str, tuple[str, bool]] = {
    "startswith": ("starts_with({s}, {t})", False),
    "doesnotstartwith": ("starts_with({s}, {t})", True),
    "endswith": ("suffix({s}, {t})", False),
    "doesnotendwith": ("suffix({s}, {t})", True),
    "contains": ("contains({s}, {t})", False),
    "doesnotcontain": ("contains({s}, {t})", True),
    "notequalto": ("{s} = {t}", True),
}
# Nodes that make an expression depend on the profile (anything else is a constant).
REFERENCES = (
    ast.Field, ast.Var, ast.Param, ast.Up, ast.Select, ast.Quantified, ast.Aggregate,
    ast.Chain, ast.Filter, ast.Lambda, ast.Let, ast.Occurs,
)  # fmt: skip


@dataclass(frozen=True)
class Tables:
    """The names of the four tables of the contract (a dotted name is quoted per part)."""

    profiles: str = "profiles"
    events: str = "events"
    memberships: str = "memberships"
    identities: str = "identities"


@dataclass(frozen=True)
class Compiled:
    """A compiled definition. ``exact`` False: ``sql`` returns candidates (a superset) and the
    constructs in ``fallbacks`` need ``pql.evaluate`` on each of them."""

    sql: str
    exact: bool
    fallbacks: tuple[str, ...] = ()


class PQLNotCompiledError(PQLError):
    """``to_sql`` was asked for a definition that is not compiled exactly yet."""

    def __init__(self, message: str, fallbacks: tuple[str, ...]) -> None:
        super().__init__(message)
        self.fallbacks = fallbacks


class _Unsupported(Exception):  # noqa: N818 - internal signal, never escapes the module
    """A construct the compiler does not translate; its conjunct falls back."""

    def __init__(self, construct: str) -> None:
        super().__init__(construct)
        self.construct = construct


# --- quoting -----------------------------------------------------------------------------------


def quote_identifier(name: str) -> str:
    """``"name"`` with embedded double quotes doubled."""
    if "\x00" in name:
        raise _Unsupported("a name with a NUL character")
    return '"' + name.replace('"', '""') + '"'


def quote_table(name: str) -> str:
    return ".".join(quote_identifier(part) for part in name.split("."))


def quote_string(text: str) -> str:
    """``'text'`` with embedded single quotes doubled (DuckDB strings have no backslash
    escapes, so a backslash stays a backslash)."""
    if "\x00" in text:
        raise _Unsupported("text with a NUL character")
    return "'" + text.replace("'", "''") + "'"


def sql_timestamp(moment: datetime) -> str:
    naive = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    return f"TIMESTAMP '{naive.isoformat(sep=' ', timespec='microseconds')}'"


def sql_literal(value: Any) -> str:
    """A Python constant as a DuckDB literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"CAST('{value!r}' AS DOUBLE)"
    if isinstance(value, str):
        return quote_string(value)
    if isinstance(value, datetime):
        return sql_timestamp(value)
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, list):
        return "[" + ", ".join(sql_literal(item) for item in value) + "]"
    raise _Unsupported(f"a constant of type {type(value).__name__}")


# --- the table contract: DuckDB types of the schema ----------------------------------------


def column_type(schema: Schema, collection: str, path: str) -> str:
    """The DuckDB type of the field ``path`` of ``collection`` (``"profile"``/``"event"``)."""
    declared = schema.declared(collection, path)
    if declared is None:
        return "VARCHAR"
    return _duckdb_type(schema, collection, path, declared)


def _duckdb_type(schema: Schema, collection: str, path: str, kind: FieldType) -> str:
    if kind.kind == "array":
        items = kind.items or FieldType("string")
        return _duckdb_type(schema, collection, path, items) + "[]"
    if kind.kind == "map":
        values = schema.declared(collection, f"{path}.*") or kind.items or FieldType("string")
        inner = _duckdb_type(schema, collection, f"{path}.*", values)
        return f"MAP(VARCHAR, {inner})"
    if kind.kind == "object":
        names = schema.children(collection, path)
        if not names:
            return "MAP(VARCHAR, VARCHAR)"
        parts = [
            f"{quote_identifier(name)} {column_type(schema, collection, f'{path}.{name}')}"
            for name in names
        ]
        return "STRUCT(" + ", ".join(parts) + ")"
    return SCALAR_TYPES[kind.kind]


def table_columns(schema: Schema, collection: str) -> list[tuple[str, str]]:
    """The typed columns of ``profiles`` (``"profile"``) or ``events`` (``"event"``) after the
    fixed ones (``_profile_id``, ``_bucket``, and ``timestamp`` for events)."""
    fixed = {"_profile_id", "_bucket"} | ({"timestamp"} if collection == "event" else set())
    return [
        (name, column_type(schema, collection, name))
        for name in schema.children(collection, "")
        if name not in fixed
    ]


# --- compiled values ---------------------------------------------------------------------------

ANY = FieldType("any")
BOOLEAN = FieldType("boolean")
INTEGER = FieldType("integer")
NUMBER = FieldType("number")
STRING = FieldType("string")
TIMESTAMP = FieldType("date-time")
NULL_SQL = "NULL"
_NO_VALUE = object()


@dataclass(frozen=True)
class Expr:
    """A compiled scalar (or list, struct, map) expression.

    ``refs`` are the row aliases and lambda variables it reads; ``row`` marks a table alias
    (the profile ``p`` or an event); ``mapped`` a list made by a path through an array (the
    evaluator's ``PathList``: empty means null); ``const`` the Python value of a constant;
    ``subquery`` that the SQL contains a sub-SELECT (not allowed inside a lambda);
    ``two_valued`` that a boolean is never NULL; ``negates`` the condition a ``not`` flipped;
    ``members`` a standalone SELECT of exactly the profile ids for which this condition holds,
    when it is a plain semi-join on the events (a definition made of it alone runs as that
    SELECT, without the join back to ``profiles``)."""

    sql: str
    type: FieldType
    refs: frozenset[str] = frozenset()
    row: bool = False
    mapped: bool = False
    const: Any = _NO_VALUE
    subquery: bool = False
    two_valued: bool = False
    negates: Expr | None = None
    members: str | None = None

    @property
    def is_const(self) -> bool:
        return self.const is not _NO_VALUE

    @property
    def is_null(self) -> bool:
        return self.sql == NULL_SQL

    @property
    def kind(self) -> str:
        return self.type.kind

    @property
    def is_list(self) -> bool:
        return self.type.kind == "array"


@dataclass(frozen=True)
class EventSet:
    """The current profile's events (``xEvent``), narrowed by ``where`` (over ``alias``)."""

    alias: str
    where: tuple[Expr, ...] = ()
    others: tuple[str, ...] = ()  # more events of the same profile, joined (sum … over X, Y)
    null_if_empty: bool = False  # a group of groupBy(…).get(k): null rather than empty
    # Lists unnested next to each event, (list SQL, alias): xEvent.productListItems.SKU.count()
    unnests: tuple[tuple[str, str], ...] = ()

    @property
    def aliases(self) -> frozenset[str]:
        return frozenset({self.alias, *self.others, *(alias for _, alias in self.unnests)})


@dataclass(frozen=True)
class EventMapped:
    """``xEvent.<path>``: the values of ``inner`` (over the event ``events.alias``), flattened."""

    events: EventSet
    inner: Expr
    distinct: bool = False  # after .distinct(): only counted, or tested for some value


@dataclass(frozen=True)
class EventAgg:
    """An aggregation of the events: ``function`` is ``count``, ``count_distinct``, ``sum``,
    ``average``, ``min`` or ``max``; ``value`` is the per-event value (None for count)."""

    events: EventSet
    function: str
    value: Expr | None = None
    null_if_empty: bool = False  # a group's aggregate: null when the group has no events


ALL_EVENTS = EventSet("")  # the query's events parameter, `(Profile, Events) => …`


@dataclass(frozen=True)
class Grouped:
    """``A.groupBy(key)``: the items of a list (``source`` an Expr, ``key`` over the lambda
    variable in ``ctx``) or the events (an EventSet, ``key`` over its alias), by key."""

    source: Expr | EventSet
    key: Expr
    ctx: _Ctx


@dataclass(frozen=True)
class GroupMap:
    """``A.groupBy(key).map((K, G) => mapEntry(K, value))``: each key with ``value``."""

    groups: Grouped
    params: tuple[str, ...]
    body: ast.Node


@dataclass(frozen=True)
class SelectTruth:
    """A select whose bindings are not compiled as a list (several variables): only its truth,
    some binding exists, is."""

    test: Expr


Value = Expr | EventSet | EventMapped | EventAgg | Grouped | GroupMap | SelectTruth


def _refs(*parts: Expr | None) -> frozenset[str]:
    out: frozenset[str] = frozenset()
    for part in parts:
        if part is not None:
            out |= part.refs
    return out


def _sub(*parts: Expr | None) -> bool:
    return any(part is not None and part.subquery for part in parts)


def _bool(sql: str, *parts: Expr | None, subquery: bool = False) -> Expr:
    return Expr(sql, BOOLEAN, _refs(*parts), subquery=subquery or _sub(*parts))


def _conjunction(parts: Sequence[Expr]) -> Expr:
    if len(parts) == 1:
        return parts[0]
    sql = "(" + " AND ".join(part.sql for part in parts) + ")"
    return replace(_bool(sql, *parts), two_valued=all(part.two_valued for part in parts))


FALSE = Expr("FALSE", BOOLEAN, const=False, two_valued=True)
TRUE = Expr("TRUE", BOOLEAN, const=True, two_valued=True)
NULL = Expr(NULL_SQL, ANY, const=None)


def _const_type(value: Any) -> FieldType:
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, float):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, datetime):
        return TIMESTAMP
    if isinstance(value, date):
        return FieldType("date")
    if isinstance(value, list):
        kinds = {_const_type(item).kind for item in value if item is not None}
        if kinds <= NUMBERS and kinds:
            return FieldType("array", NUMBER if "number" in kinds else INTEGER)
        if len(kinds) == 1:
            return FieldType("array", _const_type(next(i for i in value if i is not None)))
        if not kinds:
            return FieldType("array", ANY)
        raise _Unsupported("a list of mixed types")
    if value is None:
        return ANY
    raise _Unsupported(f"a constant of type {type(value).__name__}")


def _constant(value: Any) -> Expr:
    if isinstance(value, list) and any(item is None for item in value):
        raise _Unsupported("a list with a null item")
    return Expr(sql_literal(value), _const_type(value), const=value)


# --- the compiler ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ctx:
    """Compile-time scope: implicit contexts (innermost last), variables, and ``owner``: the
    alias whose ``_profile_id`` is the current profile (``p`` or the innermost event)."""

    contexts: tuple[Expr, ...]
    variables: dict[str, Value] = field(default_factory=dict)
    owner: str = PROFILE_ALIAS
    in_lambda: bool = False

    def with_item(self, item: Expr, *, owner: str | None = None, lam: bool = False) -> _Ctx:
        return replace(
            self, contexts=(*self.contexts, item), owner=owner or self.owner,
            in_lambda=self.in_lambda or lam,
        )  # fmt: skip

    def with_vars(
        self,
        bound: Mapping[str, Value] | None = None,
        *,
        owner: str | None = None,
        lam: bool = False,
    ) -> _Ctx:
        return replace(
            self, variables={**self.variables, **(bound or {})}, owner=owner or self.owner,
            in_lambda=self.in_lambda or lam,
        )  # fmt: skip


def compile_segment(
    node: ast.Node,
    *,
    now: datetime,
    schema: Schema,
    tables: Tables = Tables(),  # noqa: B008 - a frozen dataclass is an immutable default
    profile_filter: str | None = None,
    event_filter: str | None = None,
) -> Compiled:
    """Compile a definition to one DuckDB SELECT of ``_profile_id`` (see the module notes)."""
    compiler = _Compiler(now=now, schema=schema, tables=tables, event_filter=event_filter)
    compiled: list[Expr] = []
    fallbacks: list[str] = []
    body, ctx = compiler.root(node)
    conjuncts = body.operands if isinstance(body, ast.And) else (body,)
    for conjunct in conjuncts:
        try:
            compiled.append(compiler.condition(conjunct, ctx))
        except _Unsupported as missing:
            fallbacks.append(missing.construct)
        except PQLChainLabelError:
            raise  # a meaningless definition, whatever the profile: refused, not evaluated
        except PQLEvaluationError as error:  # a constant that cannot be computed
            fallbacks.append(f"an evaluation error ({error.message})")
        except Exception:  # a compiler bug must cost speed, never a wrong or failed segment
            log.exception("the PQL compiler failed on a conjunct; the evaluator decides it")
            fallbacks.append("an internal error of the compiler")
    names = tuple(dict.fromkeys(fallbacks))
    if len(compiled) == 1 and compiled[0].members and not names and not profile_filter:
        # every events._profile_id is a profile (the contract): no join back needed
        return Compiled(compiled[0].members, True, ())
    conditions = [condition.sql for condition in compiled]
    if profile_filter:
        conditions.append(profile_filter)
    where = "\n  AND ".join(f"({condition})" for condition in conditions) or "TRUE"
    sql = (
        f"SELECT {PROFILE_ALIAS}._profile_id\nFROM {quote_table(tables.profiles)} AS "
        f"{PROFILE_ALIAS}\nWHERE {where}"
    )
    if names:
        log.warning("PQL compiled with reference-evaluator fallback for: %s", ", ".join(names))
    return Compiled(sql, not names, names)


def to_sql(
    node: ast.Node,
    *,
    now: datetime,
    schema: Schema,
    tables: Tables = Tables(),  # noqa: B008
    profile_filter: str | None = None,
    event_filter: str | None = None,
) -> str:
    """The SQL of an exactly compiled definition; ``PQLNotCompiledError`` otherwise."""
    compiled = compile_segment(
        node, now=now, schema=schema, tables=tables, profile_filter=profile_filter,
        event_filter=event_filter,
    )  # fmt: skip
    if not compiled.exact:
        raise PQLNotCompiledError(
            NOT_COMPILED.format(names=", ".join(compiled.fallbacks)), compiled.fallbacks
        )
    return compiled.sql


class _Compiler:
    def __init__(
        self, *, now: datetime, schema: Schema, tables: Tables, event_filter: str | None = None
    ) -> None:
        self.now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
        self.schema = schema
        self.tables = tables
        self.events_table = quote_table(tables.events)
        if event_filter:
            self.events_table = f"(SELECT * FROM {self.events_table} WHERE {event_filter})"
        self.constants = Evaluator({}, [], now=self.now)
        self.counter = 0
        self.profile = Expr(
            PROFILE_ALIAS, FieldType("object", ref=("profile", "")),
            frozenset({PROFILE_ALIAS}), row=True,
        )  # fmt: skip
        self._dispatch: dict[type, Callable[[Any, _Ctx], Value]] = {
            ast.Literal: self.literal_sql,
            ast.ListLiteral: self.list_literal_sql,
            ast.Field: self.field_sql,
            ast.Param: self.param_sql,
            ast.Var: self.var_sql,
            ast.Up: self.up_sql,
            ast.Binary: self.binary_sql,
            ast.Negate: self.negate_sql,
            ast.Not: self.not_sql,
            ast.And: self.and_sql,
            ast.Or: self.or_sql,
            ast.Call: self.call_sql,
            ast.Method: self.method_sql,
            ast.Filter: self.filter_sql,
            ast.Occurs: self.occurs_sql,
            ast.Select: self.select_sql,
            ast.Quantified: self.quantified_sql,
            ast.Aggregate: self.aggregate_sql,
            ast.Let: self.let_sql,
            ast.Chain: self.chain_sql,
        }

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def root(self, node: ast.Node) -> tuple[ast.Node, _Ctx]:
        ctx = _Ctx((self.profile,))
        if isinstance(node, ast.Lambda):
            # (Profile) => …: the parameters are the profile, then the events.
            bound: dict[str, Value] = {}
            for name, value in zip(node.params, ("profile", "events"), strict=False):
                bound[name] = self.profile if value == "profile" else ALL_EVENTS
            return node.body, ctx.with_vars(bound)
        return node, ctx

    # --- entry points ---------------------------------------------------------------------

    def value(self, node: ast.Node, ctx: _Ctx) -> Value:
        if not isinstance(node, ast.TimeWord | ast.TimePeriod) and not any(
            isinstance(inner, REFERENCES)
            or (isinstance(inner, ast.Call) and inner.name.lower() == "insegment")
            for inner in node.walk()
        ):
            return _constant(self.constants.value(node, self.constants.root_scope()))
        handler = self._dispatch.get(type(node))
        if handler is None:
            raise _Unsupported(type(node).__name__)
        return handler(node, ctx)

    def expr(self, node: ast.Node, ctx: _Ctx) -> Expr:
        """A node's value as a profile-level expression (event aggregates as subqueries)."""
        return self.scalar(self.value(node, ctx), ctx)

    def scalar(self, value: Value, ctx: _Ctx) -> Expr:
        if isinstance(value, Expr):
            return value
        if isinstance(value, EventAgg):
            return self.agg_scalar(value, ctx)
        if isinstance(value, Grouped | GroupMap):
            raise _Unsupported("groups used as a value")
        if isinstance(value, SelectTruth):
            raise _Unsupported("a select of several variables used as a value")
        raise _Unsupported("the events used as a value")

    def condition(self, node: ast.Node, ctx: _Ctx) -> Expr:
        """A node in boolean position (§1 "Result type"); NULL stands for false."""
        return self.truth(self.value(node, ctx), ctx)

    def truth(self, value: Value, ctx: _Ctx) -> Expr:
        if isinstance(value, EventSet):
            return self.exists(value, TRUE, ctx)
        if isinstance(value, EventMapped):
            return self.exists(value.events, self.truth(value.inner, ctx), ctx)
        if isinstance(value, SelectTruth):
            return value.test
        if isinstance(value, Grouped | GroupMap):
            # A map of groups is defined iff the grouped list is.
            source = value.groups.source if isinstance(value, GroupMap) else value.source
            return TRUE if isinstance(source, EventSet) else self.present(source)
        if isinstance(value, EventAgg):
            if value.null_if_empty:
                return self.exists(value.events, TRUE, ctx)
            if value.function in ("count", "count_distinct", "sum"):
                return TRUE
            assert value.value is not None
            return self.exists(value.events, self.present(value.value), ctx)
        if value.is_const:
            return TRUE if truthy(value.const) else FALSE
        if value.kind == "boolean":
            return value
        if value.is_list:
            return _bool(f"(len({value.sql}) > 0)", value)
        return self.present(value)

    def present(self, value: Expr) -> Expr:
        if value.is_null:
            return FALSE
        return _bool(f"({value.sql} IS NOT NULL)", value)

    # --- events -----------------------------------------------------------------------------

    def new_events(self) -> EventSet:
        return EventSet(self.fresh("e"))

    def event_row(self, events: EventSet) -> Expr:
        return Expr(
            events.alias, FieldType("object", ref=("event", "")), frozenset({events.alias}),
            row=True,
        )  # fmt: skip

    def narrowed(self, events: EventSet, condition: Expr) -> EventSet:
        if condition.const is True:
            return events
        return replace(events, where=(*events.where, condition))

    def exists(self, events: EventSet, condition: Expr, ctx: _Ctx) -> Expr:
        """Some event of the current profile in ``events`` satisfies ``condition``."""
        if condition.const is False:
            return FALSE
        if ctx.in_lambda:
            raise _Unsupported("events inside a list function")
        parts = [*events.where, *([] if condition.const is True else [condition])]
        alias = events.alias
        outer = _refs(*parts) - events.aliases
        where = " AND ".join(part.sql for part in parts) or "TRUE"
        table = self.from_sql(events)
        members = None
        if not outer:
            members = f"SELECT DISTINCT {alias}._profile_id FROM {table} WHERE {where}"
            sql = f"{ctx.owner}._profile_id IN ({members})"
        else:
            sql = (
                f"EXISTS (SELECT 1 FROM {table} WHERE {alias}._profile_id = "
                f"{ctx.owner}._profile_id AND {where})"
            )
        return Expr(sql, BOOLEAN, outer | {ctx.owner}, subquery=True, two_valued=True,
                    members=members if ctx.owner == PROFILE_ALIAS else None)

    def from_sql(self, events: EventSet) -> str:
        joined = [f"{self.events_table} AS {events.alias}"]
        for other in events.others:
            joined.append(
                f"JOIN {self.events_table} AS {other} ON {other}._profile_id = "
                f"{events.alias}._profile_id"
            )
        for items, alias in events.unnests:
            joined.append(f"CROSS JOIN unnest({items}) AS {alias}(v)")
        return " ".join(joined)

    def agg_sql(self, agg: EventAgg) -> str:
        value = agg.value.sql if agg.value is not None else "*"
        if agg.function == "count":
            return f"count({value})"
        if agg.function == "count_distinct":
            return f"count(DISTINCT {value})"
        if agg.function == "sum":
            return f"coalesce(sum({value}), 0)"
        return f"{AGGREGATES[agg.function][0]}({value})"

    def agg_value_sql(self, agg: EventAgg) -> str:
        if agg.null_if_empty:
            return f"(CASE WHEN count(*) = 0 THEN NULL ELSE {self.agg_sql(agg)} END)"
        return self.agg_sql(agg)

    def agg_type(self, agg: EventAgg) -> FieldType:
        if agg.function in ("count", "count_distinct"):
            return INTEGER
        if agg.function == "average":
            return NUMBER
        assert agg.value is not None
        return agg.value.type

    def agg_scalar(self, agg: EventAgg, ctx: _Ctx) -> Expr:
        """The aggregate as a correlated scalar subquery (one value per profile)."""
        if ctx.in_lambda:
            raise _Unsupported("events inside a list function")
        alias = agg.events.alias
        parts = [*agg.events.where, *([agg.value] if agg.value is not None else [])]
        where = " AND ".join(
            [f"{alias}._profile_id = {ctx.owner}._profile_id", *(p.sql for p in agg.events.where)]
        )
        sql = f"(SELECT {self.agg_value_sql(agg)} FROM {self.from_sql(agg.events)} WHERE {where})"
        outer = _refs(*parts) - agg.events.aliases
        return Expr(sql, self.agg_type(agg), outer | {ctx.owner}, subquery=True)

    def agg_compare(self, op: str, agg: EventAgg, bound: Expr, ctx: _Ctx) -> Expr | None:
        """``aggregate op constant`` as a grouped semi-join, or None if that does not apply."""
        alias = agg.events.alias
        parts = [*agg.events.where, *([agg.value] if agg.value is not None else [])]
        if ctx.in_lambda or _refs(*parts) - agg.events.aliases or not is_number(bound.const):
            return None
        counted = agg.function in ("count", "count_distinct", "sum")
        empty = 0 if counted and not agg.null_if_empty else None
        empty_holds = compare(op, empty, bound.const, ast.Literal(0))
        having = f"{self.agg_sql(agg)} {SQL_OPERATORS[op]} {bound.sql}"
        where = " AND ".join(p.sql for p in agg.events.where) or "TRUE"
        grouped = (
            f"SELECT {alias}._profile_id FROM {self.from_sql(agg.events)} WHERE {where} "
            f"GROUP BY {alias}._profile_id HAVING "
        )
        members = None
        if not empty_holds:
            sql = f"{ctx.owner}._profile_id IN ({grouped}{having})"
            members = f"{grouped}{having}" if ctx.owner == PROFILE_ALIAS else None
        else:
            sql = f"NOT ({ctx.owner}._profile_id IN ({grouped}NOT coalesce({having}, FALSE)))"
        return Expr(sql, BOOLEAN, frozenset({ctx.owner}), subquery=True, two_valued=True,
                    members=members)

    # --- references -------------------------------------------------------------------------

    def literal_sql(self, node: ast.Literal, ctx: _Ctx) -> Value:
        return _constant(node.value)

    def list_literal_sql(self, node: ast.ListLiteral, ctx: _Ctx) -> Value:
        items = [self.expr(item, ctx) for item in node.items]
        kinds = {item.kind for item in items if not item.is_null}
        if len(kinds) > 1 and not kinds <= NUMBERS:
            raise _Unsupported("a list of mixed types")
        if any(item.is_list or item.kind in ("object", "map") for item in items):
            raise _Unsupported("a list of lists or objects")
        item_type = next((item.type for item in items if not item.is_null), ANY)
        return Expr(
            "[" + ", ".join(item.sql for item in items) + "]", FieldType("array", item_type),
            _refs(*items), subquery=_sub(*items),
        )  # fmt: skip

    def param_sql(self, node: ast.Param, ctx: _Ctx) -> Value:
        if node.position == 1:
            return self.profile
        if node.position == 2:
            return self.new_events()
        raise _Unsupported(f"${node.position}")

    def var_sql(self, node: ast.Var, ctx: _Ctx) -> Value:
        if node.name not in ctx.variables:
            raise _Unsupported(f"the unknown variable {node.name}")
        bound = ctx.variables[node.name]
        if bound is ALL_EVENTS:
            return self.new_events()  # the query's second parameter: all events
        if isinstance(bound, Grouped | GroupMap):
            raise _Unsupported("a group used as a value")
        return bound

    def up_sql(self, node: ast.Up, ctx: _Ctx) -> Value:
        if node.levels >= len(ctx.contexts):
            raise _Unsupported("'^' above the profile")
        return ctx.contexts[-1 - node.levels]

    def field_sql(self, node: ast.Field, ctx: _Ctx) -> Value:
        if node.obj is None:
            if node.name == "xEvent":
                return self.new_events()
            base: Value = ctx.contexts[-1]
        else:
            base = self.value(node.obj, ctx)
            if node.name == "xEvent" and base is self.profile:
                return self.new_events()
        return self.get_field(base, node.name, ctx)

    def get_field(self, base: Value, name: str, ctx: _Ctx) -> Value:
        if isinstance(base, EventSet):
            return EventMapped(base, self.expr_field(self.event_row(base), name, ctx))
        if isinstance(base, EventMapped):
            inner = self.get_field(base.inner, name, ctx)
            assert isinstance(inner, Expr)
            return EventMapped(base.events, inner)
        if not isinstance(base, Expr):
            raise _Unsupported(f"a field of {type(base).__name__}")
        return self.expr_field(base, name, ctx)

    def expr_field(self, base: Expr, name: str, ctx: _Ctx) -> Expr:
        if base.is_null:
            return NULL
        if base.is_list:
            # §3.3: a dot step through an array maps over the items and flattens, nulls dropped.
            var = self.fresh("x")
            item = Expr(var, base.type.items or ANY, frozenset({var}))
            inner = self.expr_field(item, name, ctx)
            if inner.is_null:
                return NULL
            body = self.lambda_body(inner, var).sql
            if inner.is_list:
                if inner.type.items is not None and inner.type.items.kind == "array":
                    raise _Unsupported("a path through nested arrays")
                mapped = f"flatten(list_transform({base.sql}, lambda {var}: {body}))"
                leaf = inner.type
            else:
                mapped = f"list_transform({base.sql}, lambda {var}: {body})"
                leaf = FieldType("array", inner.type)
            y = self.fresh("x")
            sql = f"list_filter({mapped}, lambda {y}: {y} IS NOT NULL)"
            return Expr(sql, leaf, (base.refs | inner.refs) - {var}, mapped=True)
        if base.kind == "map":
            values = base.type.items or ANY
            return Expr(f"{base.sql}[{quote_string(name)}]", values, base.refs)
        if base.row and base.type.ref == ("event", "") and name == "timestamp":
            # The contract's fixed column, whatever the schema says about it.
            return Expr(f"{base.sql}.{quote_identifier(name)}", TIMESTAMP, base.refs)
        if base.kind == "object" and base.type.ref is not None:
            collection, prefix = base.type.ref
            path = f"{prefix}.{name}" if prefix else name
            declared = self.schema.declared(collection, path)
            if declared is None:
                if prefix and not self.schema.children(collection, prefix):
                    # An object whose fields the schema does not list: its data may have any.
                    raise _Unsupported("a field of an object the schema does not describe")
                return NULL  # an unknown field is missing (§1), as the evaluator reads it
            if base.row:
                sql = f"{base.sql}.{quote_identifier(name)}"
            else:
                sql = f"struct_extract({base.sql}, {quote_string(name)})"
            return Expr(sql, declared, base.refs, subquery=base.subquery)
        if base.kind == "any":
            raise _Unsupported("a field of a value of unknown type")
        raise _Unsupported(f"a field of {base.kind}")

    def let_sql(self, node: ast.Let, ctx: _Ctx) -> Value:
        bound = self.value(node.value, ctx)
        return self.value(node.body, ctx.with_vars({node.name: bound}))

    # --- logic ------------------------------------------------------------------------------

    def not_sql(self, node: ast.Not, ctx: _Ctx) -> Value:
        return self.negation(self.condition(node.operand, ctx))

    def negation(self, inner: Expr) -> Expr:
        # §1: not() is the exact negation of a condition that is false when null. not(not(P))
        # is P again: wherever a condition is used, NULL already counts as false.
        if inner.is_const:
            return FALSE if inner.const else TRUE
        if inner.negates is not None:
            return inner.negates
        sql = f"(NOT {inner.sql})" if inner.two_valued else f"(NOT coalesce({inner.sql}, FALSE))"
        return replace(_bool(sql, inner), two_valued=True, negates=inner)

    def and_sql(self, node: ast.And, ctx: _Ctx) -> Value:
        parts = [self.condition(operand, ctx) for operand in node.operands]
        return _all_of(parts)

    def or_sql(self, node: ast.Or, ctx: _Ctx) -> Value:
        parts = [self.condition(operand, ctx) for operand in node.operands]
        if any(part.const is True for part in parts):
            return TRUE
        parts = [part for part in parts if part.const is not False]
        if not parts:
            return FALSE
        if len(parts) == 1:
            return parts[0]
        return _bool("(" + " OR ".join(part.sql for part in parts) + ")", *parts)

    # --- operators --------------------------------------------------------------------------

    def negate_sql(self, node: ast.Negate, ctx: _Ctx) -> Value:
        operand = self.expr(node.operand, ctx)
        if operand.is_null:
            return NULL
        if operand.kind not in NUMBERS:
            raise _Unsupported("unary minus on a non-number")
        return replace(operand, sql=f"(-{operand.sql})", const=_NO_VALUE, mapped=False)

    def binary_sql(self, node: ast.Binary, ctx: _Ctx) -> Value:
        op = node.op
        left = self.value(node.left, ctx)
        right = self.value(node.right, ctx)
        if op in ("+", "-", "*", "/", "%"):
            return self.arithmetic(op, self.scalar(left, ctx), self.scalar(right, ctx))
        if op in COMPARISONS:
            return self.compare(op, left, right, ctx)
        if op == "like":
            return self.lift(left, ctx, lambda value: self.like(value, self.scalar(right, ctx)))
        if op in ("in", "notIn"):
            return self.member_of(left, right, ctx, negated=op == "notIn")
        raise _Unsupported(f"the operator {op}")

    def arithmetic(self, op: str, left: Expr, right: Expr) -> Expr:
        # §1: arithmetic with a null yields null.
        if left.is_null or right.is_null:
            return NULL
        for side in (left, right):
            if side.kind not in NUMBERS or side.is_list:
                raise _Unsupported(f"'{op}' on a non-number")
        kind = INTEGER if left.kind == right.kind == "integer" and op != "/" else NUMBER
        a, b = left.sql, right.sql
        if op in ("+", "-", "*"):
            sql = f"({a} {op} {b})"
        elif op == "/":
            # §6.3: division by zero yields null.
            sql = f"(CASE WHEN {b} = 0 THEN NULL ELSE {a} / {b} END)"
        else:
            # Python's % takes the sign of the divisor.
            sql = f"(CASE WHEN {b} = 0 THEN NULL ELSE (({a} % {b}) + {b}) % {b} END)"
        return Expr(sql, kind, _refs(left, right), subquery=_sub(left, right))

    def lift(self, value: Value, ctx: _Ctx, build: Callable[[Expr], Expr]) -> Expr:
        """A test on a value that holds when it holds for some item of a list (§3.3): over
        the events, some event; over an array, some item (nested arrays recursively)."""
        if isinstance(value, EventSet):
            raise _Unsupported("a test on whole events")
        if isinstance(value, EventMapped):
            inner_ctx = ctx.with_vars(owner=value.events.alias)
            return self.exists(value.events, self.lift(value.inner, inner_ctx, build), ctx)
        value = self.scalar(value, ctx)
        if value.is_list:
            if value.is_null:
                return FALSE
            var = self.fresh("x")
            item = Expr(var, value.type.items or ANY, frozenset({var}))
            test = self.lift(item, ctx.with_vars(lam=True), build)
            if test.const is False:
                return FALSE
            self.lambda_body(test, var)
            sql = _any_item(value.sql, var, test.sql)
            return Expr(sql, BOOLEAN, (value.refs | test.refs) - {var})
        return build(value)

    def compare(self, op: str, left: Value, right: Value, ctx: _Ctx) -> Expr:
        # Grouped aggregates: `xEvent[…].count() > 3`, `(sum … over X from xEvent) > 500`.
        if isinstance(left, EventAgg) and isinstance(right, Expr) and right.is_const:
            grouped = self.agg_compare(op, left, right, ctx)
            if grouped is not None:
                return grouped
        if isinstance(right, EventAgg) and isinstance(left, Expr) and left.is_const:
            grouped = self.agg_compare(MIRRORED[op], right, left, ctx)
            if grouped is not None:
                return grouped
        left_list = isinstance(left, EventMapped) or (isinstance(left, Expr) and left.is_list)
        right_list = isinstance(right, EventMapped) or (isinstance(right, Expr) and right.is_list)
        if left_list and right_list:
            if not (isinstance(left, Expr) and isinstance(right, Expr)):
                raise _Unsupported("a comparison of two lists of events")
            return self.list_equality(op, left, right)
        if left_list:
            r = self.scalar(right, ctx)
            return self.lift(left, ctx, lambda item: self.compare_scalars(op, item, r))
        if right_list:
            a = self.scalar(left, ctx)
            return self.lift(right, ctx, lambda item: self.compare_scalars(op, a, item))
        return self.compare_scalars(op, self.scalar(left, ctx), self.scalar(right, ctx))

    def list_equality(self, op: str, left: Expr, right: Expr) -> Expr:
        if op not in ("=", "!="):
            raise _Unsupported("an ordering of lists")
        if left.is_null or right.is_null:
            return FALSE
        items = {(left.type.items or ANY).kind, (right.type.items or ANY).kind}
        if len(items - {"any"}) > 1 and not items <= NUMBERS:
            raise _Unsupported("a comparison of lists of different types")
        if any(kind in ("object", "map", "array") for kind in items):
            raise _Unsupported("a comparison of lists of objects")
        return _bool(f"({left.sql} {SQL_OPERATORS[op]} {right.sql})", left, right)

    def coerced(self, const: Expr, kind: str) -> Expr | None:
        """§1 "Type coercion": a constant converted to the other operand's kind, as the
        evaluator's ``coerce_pair`` does; None when that coercion fails (a type error)."""
        value = const.const
        if kind in NUMBERS:
            if is_number(value):
                return const
            if isinstance(value, str) and not isinstance(value, bool):
                try:
                    number = float(value) if "." in value or "e" in value.lower() else int(value)
                except ValueError:
                    return None
                return _constant(number)
            return None
        if kind == "string":
            if isinstance(value, str):
                return const
            if isinstance(value, bool):
                return _constant(str(value).lower())
            if is_number(value):
                text = (
                    str(int(value))
                    if isinstance(value, float) and value.is_integer()
                    else str(value)
                )
                return _constant(text)
            return None
        if kind == "boolean":
            if isinstance(value, bool):
                return const
            if value in ("true", "false"):
                return _constant(value == "true")
            return None
        if kind in TIMES:
            moment = parse_timestamp(value) if isinstance(value, str | date) else None
            if moment is None:
                return None
            if isinstance(value, date) and not isinstance(value, datetime):
                return Expr(sql_literal(value), FieldType("date"), const=value)
            return Expr(sql_timestamp(moment), TIMESTAMP, const=moment)
        return None

    def compare_scalars(self, op: str, left: Expr, right: Expr) -> Expr:
        # §6.1 / §1: a comparison with a null operand is false.
        if left.is_null or right.is_null:
            return FALSE
        if left.is_const and right.is_const:
            return TRUE if compare(op, left.const, right.const, ast.Literal(0)) else FALSE
        a, b = left.kind, right.kind
        if right.is_const and a != "any":
            coerced = self.coerced(right, a)
            if coerced is None:
                raise _Unsupported(f"a comparison of {a} with {b}")
            right, b = coerced, coerced.kind
        elif left.is_const and b != "any":
            # The evaluator coerces right to left; for a constant on the left both orders agree
            # except for text vs number, which we leave to it.
            if (
                a != b
                and not (a in NUMBERS and b in NUMBERS)
                and not (a in TIMES | {"string"} and b in TIMES)
            ):
                raise _Unsupported(f"a comparison of {a} with {b}")  # fmt: skip
            if b in TIMES:
                coerced = self.coerced(left, b)
                if coerced is None:
                    raise _Unsupported(f"a comparison of {a} with {b}")
                left, a = coerced, coerced.kind
        same = a == b or (a in NUMBERS and b in NUMBERS) or (a in TIMES and b in TIMES)
        if not same or a in ("any", "object", "map", "array"):
            raise _Unsupported(f"a comparison of {a} with {b}")
        if op not in ("=", "!=") and a == "boolean":
            raise _Unsupported("an ordering of true/false values")
        lsql, rsql = left.sql, right.sql
        if a in TIMES and a != b:
            lsql, rsql = f"CAST({lsql} AS TIMESTAMP)", f"CAST({rsql} AS TIMESTAMP)"
        return _bool(f"({lsql} {SQL_OPERATORS[op]} {rsql})", left, right)

    def like(self, left: Expr, pattern: Expr) -> Expr:
        # §6.4: SQL LIKE semantics (no escape character), false when either side is null.
        if left.is_null or pattern.is_null:
            return FALSE
        if left.kind != "string" or pattern.kind != "string" or pattern.is_list:
            raise _Unsupported("like on a non-text value")
        return _bool(f"({left.sql} LIKE {pattern.sql})", left, pattern)

    def member_of(self, left: Value, right: Value, ctx: _Ctx, *, negated: bool) -> Expr:
        # §6.5: in / notIn are false when either side is null; a mapped left side holds when
        # some of its values does.
        if isinstance(right, EventMapped):
            if negated:
                raise _Unsupported("notIn over the events")
            value = self.scalar(left, ctx)
            if value.is_list:
                raise _Unsupported("a list in a list of events")
            return self.lift(right, ctx, lambda item: self.equal_values(value, item))
        items = self.scalar(right, ctx)
        if items.is_null:
            return FALSE
        if not items.is_list:
            raise _Unsupported("in with a right side that is not a list")
        return self.lift(left, ctx, lambda value: self.in_list(value, items, negated))

    def equal_values(self, left: Expr, right: Expr) -> Expr:
        """``values_equal``: like ``=``, but values that cannot be coerced differ."""
        if right.is_list:
            return self.lift(right, _Ctx((self.profile,)), lambda v: self.equal_values(left, v))
        try:
            return self.compare_scalars("=", left, right)
        except _Unsupported:
            if left.is_const or right.is_const:
                return FALSE
            raise

    def in_list(self, value: Expr, items: Expr, negated: bool) -> Expr:
        if value.is_null:
            return FALSE
        if items.is_const:
            kept = []
            for item in items.const:
                if value.is_const:
                    kept.append(_constant(item))
                    continue
                coerced = self.coerced(_constant(item), value.kind)
                if coerced is not None:
                    kept.append(coerced)
            if value.is_const:
                found = any(
                    compare("=", value.const, item.const, ast.Literal(0)) for item in kept
                    if _comparable(value.const, item.const)
                )  # fmt: skip
                return TRUE if found != negated else FALSE
            if value.kind in ("object", "map", "any") or value.is_list:
                raise _Unsupported(f"in on {value.kind}")
            if not kept:
                return FALSE if not negated else _bool(f"({value.sql} IS NOT NULL)", value)
            listed = ", ".join(item.sql for item in kept)
            keyword = "NOT IN" if negated else "IN"
            return _bool(f"({value.sql} {keyword} ({listed}))", value)
        item_kind = (items.type.items or ANY).kind
        if value.is_const:
            coerced = self.coerced(value, item_kind)
            if coerced is None:
                return FALSE
            value = coerced
        elif not (value.kind == item_kind or {value.kind, item_kind} <= NUMBERS):
            raise _Unsupported(f"in with {value.kind} and a list of {item_kind}")
        contains = f"list_contains({items.sql}, {value.sql})"
        if negated:
            return _bool(
                f"({value.sql} IS NOT NULL AND {items.sql} IS NOT NULL AND NOT {contains})",
                value, items,
            )  # fmt: skip
        return _bool(f"coalesce({contains}, FALSE)", value, items)

    # --- calls ------------------------------------------------------------------------------

    def call_sql(self, node: ast.Call, ctx: _Ctx) -> Value:
        key = node.name.lower()
        if key == "if" and len(node.args) == 3:
            test = self.condition(node.args[0], ctx)
            then = self.expr(node.args[1], ctx)
            otherwise = self.expr(node.args[2], ctx)
            if test.is_const:
                return then if test.const else otherwise
            kinds = {then.kind, otherwise.kind} - {"any"}
            if len(kinds) > 1 and not kinds <= NUMBERS:
                raise _Unsupported("if with branches of different types")
            if any(k in ("object", "map", "array") for k in kinds):
                raise _Unsupported("if with a list or object result")
            kind = then.type if then.kind != "any" else otherwise.type
            sql = f"(CASE WHEN {test.sql} THEN {then.sql} ELSE {otherwise.sql} END)"
            return Expr(sql, kind, _refs(test, then, otherwise),
                        subquery=_sub(test, then, otherwise))  # fmt: skip
        if key == "not" and len(node.args) == 1:
            return self.negation(self.condition(node.args[0], ctx))
        if key == "insegment" and len(node.args) == 1:
            segment = self.expr(node.args[0], ctx)
            if not segment.is_const:
                raise _Unsupported("inSegment with a computed id")
            if not isinstance(segment.const, str):
                return FALSE
            if ctx.in_lambda:
                raise _Unsupported("inSegment inside a list function")
            statuses = ", ".join(quote_string(s) for s in sorted(MEMBER_STATUSES))
            sql = (
                f"{ctx.owner}._profile_id IN (SELECT m._profile_id FROM "
                f"{quote_table(self.tables.memberships)} AS m WHERE m.segment_id = "
                f"{quote_string(segment.const)} AND m.status IN ({statuses}))"
            )
            return Expr(sql, BOOLEAN, frozenset({ctx.owner}), subquery=True, two_valued=True)
        raise _Unsupported(f"the function {node.name}")

    # --- methods ----------------------------------------------------------------------------

    def method_sql(self, node: ast.Method, ctx: _Ctx) -> Value:
        key = node.name.lower()
        receiver = self.value(node.receiver, ctx)
        if isinstance(receiver, EventSet):
            return self.events_method(key, node, receiver, ctx)
        if isinstance(receiver, EventMapped):
            return self.mapped_events_method(key, node, receiver, ctx)
        if isinstance(receiver, Grouped | GroupMap):
            return self.group_method(key, node, receiver, ctx)
        if isinstance(receiver, SelectTruth):
            if key in ("isnull", "isnotnull"):
                return TRUE if key == "isnotnull" else FALSE  # a select is a list, never null
            raise _Unsupported(f"{node.name} of a select of several variables")
        receiver = self.scalar(receiver, ctx)
        if key in STRING_TESTS or key in ("equals", "matches"):
            args = [self.expr(arg, ctx) for arg in node.args]
            return self.lift(receiver, ctx, lambda text: self.string_test(key, text, args))
        if key in DATE_PARTS:
            return self.date_part(key, receiver)
        method = getattr(self, f"m_{key}", None)
        if method is None:
            raise _Unsupported(f"the method {node.name}")
        result: Value = method(node, receiver, ctx)
        return result

    def item_context(self, receiver: Expr, ctx: _Ctx) -> tuple[str, _Ctx]:
        var = self.fresh("x")
        item = Expr(var, receiver.type.items or ANY, frozenset({var}))
        return var, ctx.with_item(item, lam=True)

    def lambda_body(self, body: Expr, var: str) -> Expr:
        # DuckDB lambdas cannot hold subqueries; the text check is a second line of defence
        # for a flag lost on the way (a literal that spells SELECT merely falls back).
        if body.subquery or "SELECT " in body.sql:
            raise _Unsupported("events inside a list function")
        return body

    def require_list(self, receiver: Expr, name: str) -> None:
        if not receiver.is_list and not receiver.is_null:
            raise _Unsupported(f"{name} on {receiver.kind}")

    def m_isnull(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Expr:
        # §6.7: a path through an array that reached no value is null; an empty array exists.
        if receiver.is_null:
            return TRUE
        if receiver.mapped:
            return _bool(f"(coalesce(len({receiver.sql}), 0) = 0)", receiver)
        return _bool(f"({receiver.sql} IS NULL)", receiver)

    def m_isnotnull(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        return self.negation(self.m_isnull(node, receiver, ctx))

    def m_count(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        if receiver.is_null:
            return _constant(0)
        if node.args:
            self.require_list(receiver, "count")
            var, inner = self.item_context(receiver, ctx)
            test = self.lambda_body(self.condition(node.args[0], inner), var)
            sql = f"coalesce(len(list_filter({receiver.sql}, lambda {var}: {test.sql})), 0)"
            return Expr(sql, INTEGER, (receiver.refs | test.refs) - {var})
        if receiver.is_list:
            sql = f"coalesce(len({receiver.sql}), 0)"
        elif receiver.kind == "map":
            sql = f"coalesce(cardinality({receiver.sql}), 0)"
        else:
            sql = f"(CASE WHEN {receiver.sql} IS NULL THEN 0 ELSE 1 END)"
        return Expr(sql, INTEGER, receiver.refs, subquery=receiver.subquery)

    def m_distinct(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        self.require_list(receiver, "distinct")
        if receiver.is_null:
            return NULL
        var, index = self.fresh("x"), self.fresh("i")
        sql = (
            f"list_filter({receiver.sql}, lambda {var}, {index}: "
            f"list_position({receiver.sql}, {var}) = {index})"
        )
        return replace(receiver, sql=sql, mapped=False, const=_NO_VALUE)

    def m_head(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        self.require_list(receiver, "head")
        if receiver.is_null:
            return NULL
        return Expr(f"({receiver.sql})[1]", receiver.type.items or ANY, receiver.refs,
                    subquery=receiver.subquery)  # fmt: skip

    def list_argument(self, node: ast.Method, ctx: _Ctx) -> Expr:
        if len(node.args) != 1:
            raise _Unsupported(f"{node.name} with {len(node.args)} arguments")
        other = self.expr(node.args[0], ctx)
        if not other.is_list and not other.is_null:
            raise _Unsupported(f"{node.name} with a non-list")
        return other

    def same_items(self, a: Expr, b: Expr, name: str) -> None:
        kinds = {(a.type.items or ANY).kind, (b.type.items or ANY).kind} - {"any"}
        if len(kinds) > 1 and not kinds <= NUMBERS:
            raise _Unsupported(f"{name} of lists of different types")
        if kinds & {"object", "map", "array"}:
            raise _Unsupported(f"{name} of lists of objects")

    def set_test(self, template: str, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Expr:
        self.require_list(receiver, node.name)
        other = self.list_argument(node, ctx)
        if receiver.is_null or other.is_null:
            return FALSE
        self.same_items(receiver, other, node.name)
        return _bool(template.format(a=receiver.sql, b=other.sql), receiver, other)

    def m_intersects(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        return self.set_test("list_has_any({a}, {b})", node, receiver, ctx)

    def m_subsetof(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        return self.set_test("list_has_all({b}, {a})", node, receiver, ctx)

    def m_supersetof(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        return self.set_test("list_has_all({a}, {b})", node, receiver, ctx)

    def m_intersection(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        # §6.5: the common elements in the receiver's order, once each; null when none.
        self.require_list(receiver, "intersection")
        other = self.list_argument(node, ctx)
        if receiver.is_null or other.is_null:
            return NULL
        self.same_items(receiver, other, "intersection")
        var, index = self.fresh("x"), self.fresh("i")
        common = f"list_filter({receiver.sql}, lambda {var}: list_contains({other.sql}, {var}))"
        unique = (
            f"list_filter({common}, lambda {var}, {index}: list_position({common}, {var}) = "
            f"{index})"
        )
        sql = f"(CASE WHEN len({unique}) = 0 THEN NULL ELSE {unique} END)"
        return Expr(sql, receiver.type, _refs(receiver, other))

    def m_includes(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        self.require_list(receiver, "includes")
        if len(node.args) != 1:
            raise _Unsupported("includes with several arguments")
        value = self.expr(node.args[0], ctx)
        if receiver.is_null or value.is_null:
            return FALSE
        if value.is_list:
            raise _Unsupported("includes of a list")
        return self.in_list(value, receiver, negated=False)

    def m_filter(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        self.require_list(receiver, "filter")
        if len(node.args) != 1:
            raise _Unsupported("filter with several arguments")
        if receiver.is_null:
            return NULL
        return self.filtered_list(receiver, node.args[0], ctx)

    def filtered_list(self, receiver: Expr, predicate: ast.Node, ctx: _Ctx) -> Expr:
        var, inner = self.item_context(receiver, ctx)
        test = self.lambda_body(self.condition(predicate, inner), var)
        sql = f"list_filter({receiver.sql}, lambda {var}: {test.sql})"
        return Expr(sql, receiver.type, (receiver.refs | test.refs) - {var})

    def m_exists(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        if len(node.args) != 1:
            raise _Unsupported("exists with several arguments")
        if receiver.is_null:
            return FALSE
        if not receiver.is_list:
            raise _Unsupported(f"exists on {receiver.kind}")
        var, inner = self.item_context(receiver, ctx)
        test = self.lambda_body(self.condition(node.args[0], inner), var)
        if test.is_const:
            return self.truth(receiver, ctx) if test.const else FALSE
        sql = _any_item(receiver.sql, var, test.sql)
        return Expr(sql, BOOLEAN, (receiver.refs | test.refs) - {var})

    def m_map(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        if len(node.args) != 1:
            raise _Unsupported("map with several arguments")
        lam = node.args[0]
        if isinstance(lam, ast.Lambda) and receiver.kind == "map":
            raise _Unsupported("map with a lambda over a map")
        self.require_list(receiver, "map")
        if receiver.is_null:
            return NULL
        var, inner = self.item_context(receiver, ctx)
        if isinstance(lam, ast.Lambda):
            # (O) => O.price: the item is the lambda's parameter, the context does not change.
            item = inner.contexts[-1]
            bound = ctx.with_vars(dict(zip(lam.params[:1], (item,), strict=False)), lam=True)
            body = self.lambda_body(self.expr(lam.body, bound), var)
        else:
            body = self.lambda_body(self.expr(lam, inner), var)
        if body.is_list:
            raise _Unsupported("map to lists")
        sql = f"list_transform({receiver.sql}, lambda {var}: {body.sql})"
        return Expr(sql, FieldType("array", body.type), (receiver.refs | body.refs) - {var})

    def list_aggregate(self, name: str, values: Expr) -> Expr:
        item = values.type.items or ANY
        if item.kind not in NUMBERS and not (values.is_null or item.kind == "any"):
            raise _Unsupported(f"{name} of {item.kind}")
        if values.is_null:
            return _constant(0) if name == "sum" else NULL
        function = AGGREGATES[name][1]
        sql = f"{function}({values.sql})"
        if name == "sum":
            return Expr(f"coalesce({sql}, 0)", item if item.kind != "any" else NUMBER, values.refs)
        kind = NUMBER if name == "average" else item
        return Expr(sql, kind, values.refs)

    def method_aggregate(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        # §6.8: A.sum(expr) per item; A.sum() over the items themselves; nulls skipped.
        key = node.name.lower()
        if receiver.is_null:
            return _constant(0) if key == "sum" else NULL
        self.require_list(receiver, key)
        if not node.args:
            return self.list_aggregate(key, receiver)
        var, inner = self.item_context(receiver, ctx)
        body = self.lambda_body(self.expr(node.args[0], inner), var)
        if body.is_list:
            raise _Unsupported(f"{key} of lists")
        values = Expr(
            f"list_transform({receiver.sql}, lambda {var}: {body.sql})",
            FieldType("array", body.type), (receiver.refs | body.refs) - {var},
        )  # fmt: skip
        return self.list_aggregate(key, values)

    m_sum = m_average = m_min = m_max = method_aggregate

    def m_topn(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        return self.top(node, receiver, ctx, descending=True)

    def m_bottomn(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        return self.top(node, receiver, ctx, descending=False)

    def top(self, node: ast.Method, receiver: Expr, ctx: _Ctx, *, descending: bool) -> Value:
        # §6.5: the n items with the largest (topN) / smallest (bottomN) key, ties in input
        # order, items without a key left out: sort (key, position) pairs.
        self.require_list(receiver, node.name)
        if len(node.args) != 2:
            raise _Unsupported(f"{node.name} with {len(node.args)} arguments")
        count = self.expr(node.args[1], ctx)
        if receiver.is_null:
            return NULL
        if not is_number(count.const):
            raise _Unsupported(f"{node.name} with a computed count")
        var, inner = self.item_context(receiver, ctx)
        key = self.lambda_body(self.expr(node.args[0], inner), var)
        if key.kind not in NUMBERS:
            raise _Unsupported(f"{node.name} by a non-number")
        index, pair = self.fresh("i"), self.fresh("x")
        sign = "-" if descending else ""
        pairs = (
            f"list_transform({receiver.sql}, lambda {var}, {index}: "
            f"{{'k': {sign}({key.sql}), 'i': {index}, 'v': {var}}})"
        )
        kept = f"list_filter({pairs}, lambda {pair}: {pair}.k IS NOT NULL)"
        limit = max(int(count.const), 0)
        sql = f"list_transform(list_sort({kept})[1:{limit}], lambda {pair}: {pair}.v)"
        return Expr(sql, receiver.type, (receiver.refs | key.refs) - {var})

    def m_get(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        if len(node.args) != 1:
            raise _Unsupported("get with several arguments")
        key = self.expr(node.args[0], ctx)
        if receiver.is_null or key.is_null:
            return NULL
        if receiver.kind == "map" and not receiver.is_list:
            if key.kind not in ("string", "any") and not isinstance(key.const, str):
                raise _Unsupported("get with a non-text key")
            return Expr(f"{receiver.sql}[{key.sql}]", receiver.type.items or ANY,
                        _refs(receiver, key), subquery=_sub(receiver, key))  # fmt: skip
        if receiver.kind == "object" and isinstance(key.const, str):
            return self.expr_field(receiver, key.const, ctx)
        raise _Unsupported(f"get on {receiver.kind}")

    def map_list(self, node: ast.Method, receiver: Expr, function: str, items: FieldType) -> Expr:
        if receiver.is_null:
            return NULL
        if receiver.kind != "map" or receiver.is_list:
            raise _Unsupported(f"{node.name} on {receiver.kind}")
        return Expr(f"{function}({receiver.sql})", FieldType("array", items), receiver.refs,
                    subquery=receiver.subquery)  # fmt: skip

    def m_keys(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        return self.map_list(node, receiver, "map_keys", STRING)

    def m_values(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        return self.map_list(node, receiver, "map_values", receiver.type.items or ANY)

    def m_regexgroup(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        if len(node.args) != 2:
            raise _Unsupported("regexGroup with the wrong arguments")
        pattern, group = (self.expr(arg, ctx) for arg in node.args)
        if receiver.is_null or pattern.is_null or group.is_null:
            return NULL
        if receiver.kind != "string" or receiver.is_list:
            raise _Unsupported(f"regexGroup on {receiver.kind}")
        self.portable_regex(pattern)
        if not isinstance(group.const, int) or isinstance(group.const, bool):
            raise _Unsupported("regexGroup with a computed group")
        if group.const > re.compile(pattern.const).groups or group.const < 0:
            raise _Unsupported("regexGroup of a group the pattern does not have")
        sql = (
            f"(CASE WHEN regexp_matches({receiver.sql}, {pattern.sql}) THEN "
            f"regexp_extract({receiver.sql}, {pattern.sql}, {group.const}) END)"
        )
        return Expr(sql, STRING, receiver.refs)

    def portable_regex(self, pattern: Expr) -> None:
        if not isinstance(pattern.const, str):
            raise _Unsupported("a computed regular expression")
        # RE2 (DuckDB's) judges, as the checker does (pql/regex.py): a pattern the checker
        # passes is never left to the evaluator's backtracking re
        if re2_error(pattern.const) is not None:
            raise _Unsupported("a regular expression RE2 cannot run")
        try:
            re.compile(pattern.const)
        except re.error:
            raise _Unsupported("an invalid regular expression") from None

    def string_test(self, key: str, text: Expr, args: list[Expr]) -> Expr:
        # §6.4: every string predicate, negative ones included, is false on a null; a trailing
        # boolean is the case flag.
        case_sensitive = True
        if args and isinstance(args[-1].const, bool):
            case_sensitive = args[-1].const
            args = args[:-1]
        elif args and args[-1].kind == "boolean":
            raise _Unsupported("a computed case flag")
        if text.is_null:
            return FALSE
        if text.kind != "string":
            raise _Unsupported(f"{key} on {text.kind}")
        for arg in args:
            if not arg.is_null and (arg.kind != "string" or arg.is_list):
                raise _Unsupported(f"{key} with a non-text argument")
        if key == "matches":
            if len(args) != 1:
                raise _Unsupported("matches with several patterns")
            if args[0].is_null:
                return FALSE
            self.portable_regex(args[0])
            return _bool(f"regexp_matches({text.sql}, {args[0].sql})", text)
        s = text.sql if case_sensitive else f"lower({text.sql})"

        def other(arg: Expr) -> str:
            return arg.sql if case_sensitive else f"lower({arg.sql})"

        if key == "equals":
            # The variadic form: equal to any of the (non-null) strings.
            tests = [f"{s} = {other(arg)}" for arg in args if not arg.is_null]
            if not tests:
                return FALSE
            return _bool("(" + " OR ".join(tests) + ")", text, *args)
        if len(args) != 1:
            raise _Unsupported(f"{key} with several arguments")
        if args[0].is_null:
            return FALSE
        template, negated = STRING_TESTS[key]
        test = template.format(s=s, t=other(args[0]))
        return _bool(f"(NOT ({test}))" if negated else f"({test})", text, args[0])

    def date_part(self, key: str, receiver: Expr) -> Expr:
        if receiver.is_null:
            return NULL
        part = DATE_PARTS[key]
        if receiver.is_list:
            item = receiver.type.items or ANY
            if item.kind not in TIMES:
                raise _Unsupported(f"{key} on {item.kind}")
            var = self.fresh("x")
            sql = f"list_transform({receiver.sql}, lambda {var}: {part}({var}))"
            return Expr(sql, FieldType("array", INTEGER), receiver.refs, mapped=True)
        if receiver.kind not in TIMES:
            raise _Unsupported(f"{key} on {receiver.kind}")
        return Expr(f"{part}({receiver.sql})", INTEGER, receiver.refs,
                    subquery=receiver.subquery)  # fmt: skip

    # --- groupBy (§6.5) -------------------------------------------------------------------------

    def m_groupby(self, node: ast.Method, receiver: Expr, ctx: _Ctx) -> Value:
        if len(node.args) != 1:
            raise _Unsupported("groupBy with several arguments")
        self.require_list(receiver, "groupBy")
        if receiver.is_null:
            return NULL
        var, inner = self.item_context(receiver, ctx)
        key = self.lambda_body(self.expr(node.args[0], inner), var)
        return Grouped(receiver, self.group_key(key), inner)

    def group_key(self, key: Expr) -> Expr:
        # The evaluator keys a dict by the value: only plain values group the same way in SQL.
        if key.is_list or key.kind not in ("string", "integer", "number", "boolean"):
            raise _Unsupported(f"groupBy by {key.kind}")
        if key.subquery:
            raise _Unsupported("groupBy by a subquery")
        return key

    def group_method(
        self, key: str, node: ast.Method, grouped: Grouped | GroupMap, ctx: _Ctx
    ) -> Value:
        groups = grouped.groups if isinstance(grouped, GroupMap) else grouped
        if key == "map" and isinstance(grouped, Grouped) and len(node.args) == 1:
            lam = node.args[0]
            if not isinstance(lam, ast.Lambda) or len(lam.params) != 2:
                raise _Unsupported("map of groups without a (key, group) lambda")
            body = lam.body
            if isinstance(body, ast.Call) and body.name.lower() == "mapentry":
                if len(body.args) != 2 or body.args[0] != ast.Var(lam.params[0]):
                    raise _Unsupported("mapEntry with a new key")
                body = body.args[1]
            return GroupMap(grouped, lam.params, body)
        if key == "get" and len(node.args) == 1:
            wanted = self.expr(node.args[0], ctx)
            if not wanted.is_const:
                raise _Unsupported("get of a group by a computed key")
            group = self.group_of(groups, wanted)
            if group is None or isinstance(grouped, Grouped):
                return group if group is not None else NULL
            return self.group_value(grouped, wanted, group, ctx)
        if key in ("keys", "count") and not node.args:
            if isinstance(groups.source, EventSet):
                keys = EventMapped(groups.source, groups.key, distinct=True)
                return keys if key == "keys" else EventAgg(groups.source, "count_distinct",
                                                           groups.key)  # fmt: skip
            var = groups.ctx.contexts[-1].sql
            present = self.fresh("x")
            listed = (
                f"list_filter(list_transform({groups.source.sql}, lambda {var}: "
                f"{groups.key.sql}), lambda {present}: {present} IS NOT NULL)"
            )
            refs = (groups.source.refs | groups.key.refs) - {var}
            if key == "count":
                return Expr(f"coalesce(len(list_distinct({listed})), 0)", INTEGER, refs)
            item, index = self.fresh("x"), self.fresh("i")
            unique = (
                f"list_filter({listed}, lambda {item}, {index}: "
                f"list_position({listed}, {item}) = {index})"
            )
            return Expr(unique, FieldType("array", groups.key.type), refs)
        raise _Unsupported(f"the method {node.name} on groups")

    def group_of(self, groups: Grouped, wanted: Expr) -> Expr | EventSet | None:
        """The items whose key is ``wanted`` (null when there are none); None when no key can
        equal it (a dict lookup does not coerce)."""
        value, kind = wanted.const, groups.key.kind
        same = (
            (isinstance(value, str) and kind == "string")
            or (isinstance(value, bool) and kind == "boolean")
            or (is_number(value) and kind in NUMBERS)
        )
        if not same:
            return None
        matches = _bool(f"({groups.key.sql} = {wanted.sql})", groups.key)
        if isinstance(groups.source, EventSet):
            return replace(self.narrowed(groups.source, matches), null_if_empty=True)
        var = groups.ctx.contexts[-1].sql
        found = f"list_filter({groups.source.sql}, lambda {var}: {matches.sql})"
        sql = f"(CASE WHEN len({found}) = 0 THEN NULL ELSE {found} END)"
        return Expr(sql, groups.source.type, (groups.source.refs | groups.key.refs) - {var})

    def group_value(
        self, grouped: GroupMap, wanted: Expr, group: Expr | EventSet, ctx: _Ctx
    ) -> Value:
        """``….map((K, G) => mapEntry(K, value)).get(k)``: value with K = k and G = its
        group; null when there is no such group."""
        names = dict(zip(grouped.params, (wanted, group), strict=False))
        result = self.value(grouped.body, ctx.with_vars(names))
        if isinstance(group, EventSet):
            if isinstance(result, EventAgg) and result.events == group:
                return replace(result, null_if_empty=True)
            value = self.scalar(result, ctx)
            exists = self.exists(group, TRUE, ctx)
        else:
            value = self.scalar(result, ctx)
            exists = _bool(f"({group.sql} IS NOT NULL)", group)
        if value.is_list or value.kind in ("object", "map"):
            raise _Unsupported("a group mapped to a list or object")
        sql = f"(CASE WHEN {exists.sql} THEN {value.sql} END)"
        return Expr(sql, value.type, _refs(value, exists), subquery=_sub(value, exists))

    # --- methods on the events ---------------------------------------------------------------

    def event_item(self, events: EventSet, ctx: _Ctx) -> _Ctx:
        return ctx.with_item(self.event_row(events), owner=events.alias)

    def events_method(self, key: str, node: ast.Method, events: EventSet, ctx: _Ctx) -> Value:
        if key in ("filter", "exists", "count") and node.args:
            if len(node.args) != 1:
                raise _Unsupported(f"{node.name} with several arguments")
            test = self.condition(node.args[0], self.event_item(events, ctx))
            narrowed = self.narrowed(events, test)
            if key == "filter":
                return narrowed
            if key == "exists":
                return self.exists(narrowed, TRUE, ctx)
            return EventAgg(narrowed, "count")
        if key == "count":
            return EventAgg(events, "count")
        if key in AGGREGATES:
            if len(node.args) != 1:
                raise _Unsupported(f"{node.name} of whole events")
            value = self.expr(node.args[0], self.event_item(events, ctx))
            return self.event_aggregate(key, events, value)
        if key in ("isnull", "isnotnull"):
            if not events.null_if_empty:
                return TRUE if key == "isnotnull" else FALSE
            present = self.exists(events, TRUE, ctx)
            return present if key == "isnotnull" else self.negation(present)
        if key == "groupby" and len(node.args) == 1:
            inner = self.event_item(events, ctx)
            return Grouped(events, self.group_key(self.expr(node.args[0], inner)), inner)
        raise _Unsupported(f"the method {node.name} on the events")

    def event_aggregate(self, key: str, events: EventSet, value: Expr) -> Value:
        if value.is_null:
            return _constant(0) if key == "sum" else NULL
        if value.is_list or value.kind not in NUMBERS:
            raise _Unsupported(f"{key} of {value.kind}")
        if value.subquery:
            raise _Unsupported("an aggregate of a subquery")
        return EventAgg(events, key, value)

    def mapped_events_method(
        self, key: str, node: ast.Method, mapped: EventMapped, ctx: _Ctx
    ) -> Value:
        inner = mapped.inner
        if key in STRING_TESTS or key in ("equals", "matches"):
            args = [self.expr(arg, ctx) for arg in node.args]
            return self.lift(mapped, ctx, lambda text: self.string_test(key, text, args))
        if key in DATE_PARTS:
            return EventMapped(mapped.events, self.date_part(key, inner))
        if key in ("isnull", "isnotnull"):
            if mapped.distinct:
                raise _Unsupported(f"{node.name} of distinct values of the events")
            present = self.exists(mapped.events, self.truth_present(inner), ctx)
            return present if key == "isnotnull" else self.negation(present)
        if key == "includes" and len(node.args) == 1:
            value = self.expr(node.args[0], ctx)
            return self.lift(mapped, ctx, lambda item: self.equal_values(value, item))
        if inner.is_list and key in ("count", "distinct", *AGGREGATES) and not node.args:
            # Each event's list unnested beside it: one row per item, as the path flattens.
            item_type = inner.type.items or ANY
            if item_type.kind == "array":
                raise _Unsupported(f"{node.name} over lists of lists in the events")
            alias = self.fresh("u")
            events = replace(mapped.events, unnests=(*mapped.events.unnests, (inner.sql, alias)))
            item = Expr(f"{alias}.v", item_type, frozenset({alias}))
            return self.mapped_events_method(key, node, EventMapped(events, item, mapped.distinct),
                                             ctx)  # fmt: skip
        if inner.is_list:
            raise _Unsupported(f"{node.name} over lists in the events")
        if key == "count" and not node.args:
            return EventAgg(mapped.events, "count_distinct" if mapped.distinct else "count", inner)
        if key == "distinct" and not node.args:
            return replace(mapped, distinct=True)
        if key in AGGREGATES and not node.args and not (mapped.distinct and key != "min"
                                                        and key != "max"):  # fmt: skip
            return self.event_aggregate(key, mapped.events, inner)
        raise _Unsupported(f"the method {node.name} on a path through the events")

    def truth_present(self, inner: Expr) -> Expr:
        """The event contributes a value to ``xEvent.<path>`` (nulls and [] are dropped)."""
        if inner.is_list:
            return _bool(f"(len({inner.sql}) > 0)", inner)
        return self.present(inner)

    # --- filters, quantifiers, aggregations --------------------------------------------------

    def filter_sql(self, node: ast.Filter, ctx: _Ctx) -> Value:
        source = self.value(node.source, ctx)
        if isinstance(source, EventSet):
            test = self.condition(node.predicate, self.event_item(source, ctx))
            return self.narrowed(source, test)
        source = self.scalar(source, ctx)
        if source.is_null:
            return Expr("[]", FieldType("array", ANY), const=[])
        if not source.is_list:
            raise _Unsupported(f"a filter on {source.kind}")
        # A bracket filter on a missing list is an empty list, not null.
        filtered = self.filtered_list(source, node.predicate, ctx)
        return replace(filtered, sql=f"coalesce({filtered.sql}, [])")

    def select_sql(self, node: ast.Select, ctx: _Ctx) -> Value:
        if len(node.variables) == 1:
            decl = node.variables[0]
            source = self.value(decl.source, ctx)
            if isinstance(source, EventSet):
                inner = ctx.with_vars({decl.name: self.event_row(source)}, owner=source.alias)
                if decl.where is None:
                    return source
                return self.narrowed(source, self.condition(decl.where, inner))
            if isinstance(source, EventMapped):
                return SelectTruth(self.bindings_exist(node.variables, ctx))
            source = self.scalar(source, ctx)
            if source.is_null:
                return Expr("[]", FieldType("array", ANY), const=[])
            if not source.is_list:
                raise _Unsupported(f"select from {source.kind}")
            # A select is a list, empty rather than null when there is nothing to select from.
            if decl.where is None:
                return replace(source, sql=f"coalesce({source.sql}, [])", mapped=False)
            var = self.fresh("x")
            item = Expr(var, source.type.items or ANY, frozenset({var}))
            test = self.lambda_body(
                self.condition(decl.where, ctx.with_vars({decl.name: item}, lam=True)), var
            )
            sql = f"coalesce(list_filter({source.sql}, lambda {var}: {test.sql}), [])"
            return Expr(sql, source.type, (source.refs | test.refs) - {var})
        # Several variables: only its truth is compiled, some binding exists.
        return SelectTruth(self.bindings_exist(node.variables, ctx))

    def bindings_exist(self, decls: Sequence[ast.VarDecl], ctx: _Ctx) -> Expr:
        """Some assignment of the variables satisfies every condition (§6.11)."""
        if not decls:
            return TRUE
        first, rest = decls[0], decls[1:]
        return self.binding_exists(self.value(first.source, ctx), first, rest, ctx)

    def binding_exists(
        self, source: Value, first: ast.VarDecl, rest: Sequence[ast.VarDecl], ctx: _Ctx
    ) -> Expr:
        if isinstance(source, EventSet):
            inner = ctx.with_vars({first.name: self.event_row(source)}, owner=source.alias)
            test = self.both(first.where, rest, inner)
            return self.exists(source, test, ctx)
        if isinstance(source, EventMapped):
            # I from xEvent.productListItems: some event has some such item.
            inner = ctx.with_vars(owner=source.events.alias)
            return self.exists(
                source.events, self.binding_exists(source.inner, first, rest, inner), ctx
            )
        source = self.scalar(source, ctx)
        if source.is_null:
            return FALSE
        if not source.is_list:
            if not isinstance(source, Expr) or source.kind in ("any", "array"):
                raise _Unsupported(f"a variable over {source.kind}")
            # A single value is the only item (items_of).
            test = self.both(first.where, rest, ctx.with_vars({first.name: source}))
            return (
                _conjunction([self.present(source), test])
                if test.const is not True
                else self.present(source)
            )
        if (source.type.items or ANY).kind == "array":
            raise _Unsupported("a variable over a list of lists")
        var = self.fresh("x")
        item = Expr(var, source.type.items or ANY, frozenset({var}))
        inner = ctx.with_vars({first.name: item}, lam=True)
        test = self.lambda_body(self.both(first.where, rest, inner), var)
        if test.const is False:
            return FALSE
        sql = _any_item(source.sql, var, test.sql)
        return Expr(sql, BOOLEAN, (source.refs | test.refs) - {var})

    def both(self, where: ast.Node | None, rest: Sequence[ast.VarDecl], ctx: _Ctx) -> Expr:
        parts = [self.condition(where, ctx)] if where is not None else []
        if rest:
            parts.append(self.bindings_exist(rest, ctx))
        return _all_of(parts)

    def quantified_sql(self, node: ast.Quantified, ctx: _Ctx) -> Value:
        if node.quantifier.lower() == "forall":
            return self.for_all(node.variables, ctx)
        return self.bindings_exist(node.variables, ctx)

    def for_all(self, decls: Sequence[ast.VarDecl], ctx: _Ctx) -> Expr:
        """Every V1 satisfies P1 and, for it, the rest: no V1 fails (vacuously true)."""
        if not decls:
            return TRUE
        first, rest = decls[0], decls[1:]
        source = self.value(first.source, ctx)

        def holds(inner: _Ctx) -> Expr:
            parts = [self.condition(first.where, inner)] if first.where is not None else []
            if rest:
                parts.append(self.for_all(rest, inner))
            if not parts:
                return TRUE
            return _conjunction(parts)

        if isinstance(source, EventSet):
            inner = ctx.with_vars({first.name: self.event_row(source)}, owner=source.alias)
            test = holds(inner)
            if test.const is True:
                return TRUE
            return self.negation(self.exists(source, self.negation(test), ctx))
        source = self.scalar(source, ctx)
        if source.is_null:
            return TRUE
        if not source.is_list:
            raise _Unsupported(f"a variable over {source.kind}")
        var = self.fresh("x")
        item = Expr(var, source.type.items or ANY, frozenset({var}))
        test = self.lambda_body(holds(ctx.with_vars({first.name: item}, lam=True)), var)
        failing = self.negation(test)
        sql = f"(NOT coalesce({_any_item(source.sql, var, failing.sql)}, FALSE))"
        return Expr(sql, BOOLEAN, (source.refs | test.refs) - {var})

    def aggregate_sql(self, node: ast.Aggregate, ctx: _Ctx) -> Value:
        key = node.function.lower()
        if key not in AGGREGATES:
            raise _Unsupported(f"the aggregation {node.function}")
        if len(node.variables) != 1:
            return self.joined_aggregate(key, node, ctx)
        decl = node.variables[0]
        source = self.value(decl.source, ctx)
        if isinstance(source, EventSet):
            inner = ctx.with_vars({decl.name: self.event_row(source)}, owner=source.alias)
            if decl.where is not None:
                source = self.narrowed(source, self.condition(decl.where, inner))
            if node.expr is None:
                raise _Unsupported(f"{key} of whole events")
            return self.event_aggregate(key, source, self.expr(node.expr, inner))
        source = self.scalar(source, ctx)
        if source.is_null:
            return _constant(0) if key == "sum" else NULL
        if not source.is_list:
            raise _Unsupported(f"{key} over {source.kind}")
        var = self.fresh("x")
        item = Expr(var, source.type.items or ANY, frozenset({var}))
        inner = ctx.with_vars({decl.name: item}, lam=True)
        values = source
        if decl.where is not None:
            test = self.lambda_body(self.condition(decl.where, inner), var)
            values = Expr(f"list_filter({source.sql}, lambda {var}: {test.sql})", source.type,
                          (source.refs | test.refs) - {var})  # fmt: skip
        if node.expr is not None:
            var2 = self.fresh("x")
            item2 = Expr(var2, source.type.items or ANY, frozenset({var2}))
            body = self.lambda_body(
                self.expr(node.expr, ctx.with_vars({decl.name: item2}, lam=True)), var2
            )
            if body.is_list:
                raise _Unsupported(f"{key} of lists")
            values = Expr(f"list_transform({values.sql}, lambda {var2}: {body.sql})",
                          FieldType("array", body.type),
                          (values.refs | body.refs) - {var2})  # fmt: skip
        return self.list_aggregate(key, values)

    def joined_aggregate(self, key: str, node: ast.Aggregate, ctx: _Ctx) -> Value:
        """``sum e over X from xEvent where P, Y from xEvent where Q``: one row per binding, a
        join of the profile's events with themselves."""
        if node.expr is None:
            raise _Unsupported(f"{key} of whole events")
        joined: EventSet | None = None
        inner = ctx
        for decl in node.variables:
            source = self.value(decl.source, inner)
            if not isinstance(source, EventSet) or source.where:
                raise _Unsupported(f"{key} over several variables not all over xEvent")
            if joined is None:
                joined = source
            else:
                joined = replace(joined, others=(*joined.others, source.alias))
            inner = inner.with_vars({decl.name: self.event_row(source)}, owner=joined.alias)
            if decl.where is not None:
                joined = self.narrowed(joined, self.condition(decl.where, inner))
        assert joined is not None
        return self.event_aggregate(key, joined, self.expr(node.expr, inner))

    # --- time ---------------------------------------------------------------------------------

    def occurs_sql(self, node: ast.Occurs, ctx: _Ctx) -> Value:
        subject = self.value(node.subject, ctx)
        return self.lift(subject, ctx, lambda moment: self.window(moment, node.window, ctx))

    def time_ref(self, node: ast.Node, ctx: _Ctx) -> _Ref | None:
        """A time reference as constant bounds (an ``Interval``) or SQL bounds; None for null."""
        if isinstance(node, ast.TimeWord | ast.TimePeriod):
            interval = self.constants.time_ref(node, self.constants.root_scope())
            assert interval is not None
            return _Ref(interval.start, interval.end, interval.is_instant)
        value = self.expr(node, ctx)
        if value.is_const:
            interval = self.constants.time_ref(node, self.constants.root_scope())
            if interval is None:
                return None
            return _Ref(interval.start, interval.end, interval.is_instant)
        if value.is_null:
            return None
        if value.is_list:
            raise _Unsupported("a list as a time reference")
        if value.kind == "date-time":
            return _Ref(value.sql, value.sql, True, value)
        if value.kind == "date":
            start = f"CAST({value.sql} AS TIMESTAMP)"
            return _Ref(start, f"({start} + INTERVAL 1 DAY)", False, value)
        raise _Unsupported(f"{value.kind} as a time reference")

    def window(self, moment: Expr, window: ast.TimeWindow, ctx: _Ctx) -> Expr:
        # §6.9 "occurs — semantics", as pql.timeutil implements it.
        if moment.is_null:
            return FALSE
        if moment.kind == "date":
            t = f"CAST({moment.sql} AS TIMESTAMP)"
        elif moment.kind == "date-time":
            t = moment.sql
        else:
            raise _Unsupported(f"occurs on {moment.kind}")
        anchor = self.time_ref(window.anchor, ctx)
        if anchor is None:
            return FALSE
        relation = window.relation.lower()
        sources = [moment, anchor.expr]
        if relation == "on":
            if anchor.instant:
                conditions = [f"{t} = {_ts(anchor.start)}"]
            else:
                conditions = [f"{t} >= {_ts(anchor.start)}", f"{t} < {_ts(anchor.end)}"]
        elif relation == "between":
            if window.end is None:
                raise _Unsupported("between without an end")
            last = self.time_ref(window.end, ctx)
            if last is None:
                return FALSE
            sources.append(last.expr)
            end_op = "<=" if last.instant else "<"
            conditions = [f"{t} >= {_ts(anchor.start)}", f"{t} {end_op} {_ts(last.end)}"]
        else:
            if relation == "from":
                # §6.9 step 4, as the evaluator reads it: before a past time, after a future one.
                if not isinstance(anchor.start, datetime):
                    raise _Unsupported("occurs from a computed time")
                relation = "before" if anchor.start <= self.now else "after"
            if relation not in ("before", "after"):
                raise _Unsupported(f"occurs {relation}")
            if window.op is None:
                if relation == "before":
                    conditions = [f"{t} < {_ts(anchor.start)}"]
                else:
                    conditions = [f"{t} {'>' if anchor.instant else '>='} {_ts(anchor.end)}"]
            else:
                if window.amount is None or window.unit is None:
                    raise _Unsupported("occurs without an amount")
                conditions = self.distance(t, window.op, window.amount, window.unit,
                                           relation, anchor)  # fmt: skip
        parts = [part for part in sources if part is not None]
        return _bool("(" + " AND ".join(conditions) + ")", *parts)

    def distance(
        self, t: str, op: str, amount: int, unit: str, direction: str, anchor: _Ref
    ) -> list[str]:
        """``T occurs <op> n <unit> before|after <time>`` (``timeutil.occurs_distance``)."""
        try:
            unit = canonical_unit(unit)
        except KeyError:
            raise _Unsupported(f"the time unit {unit}") from None
        if direction == "before":
            a = anchor.start
            far = _shift(a, -amount, unit)
            bucket = (far, _shift(a, -(amount - 1), unit))
            inside = [f"{t} < {_ts(a)}"]
            if op == "<":
                return [f"{t} > {_ts(far)}", *inside]
            if op == "<=":
                return [f"{t} >= {_ts(far)}", *inside]
            if op == ">":
                return [f"{t} < {_ts(far)}"]
            if op == ">=":
                return [f"{t} <= {_ts(far)}"]
        else:
            a = anchor.end
            far = _shift(a, amount, unit)
            bucket = (_shift(a, amount - 1, unit), far)
            inside = [f"{t} {'>' if anchor.instant else '>='} {_ts(a)}"]
            if op == "<":
                return [*inside, f"{t} < {_ts(far)}"]
            if op == "<=":
                return [*inside, f"{t} <= {_ts(far)}"]
            if op == ">":
                return [f"{t} > {_ts(far)}"]
            if op == ">=":
                return [f"{t} >= {_ts(far)}"]
        in_bucket = f"({t} >= {_ts(bucket[0])} AND {t} < {_ts(bucket[1])})"
        if op == "=":
            return [in_bucket]
        if op == "!=":
            return [*inside, f"NOT {in_bucket}"]
        raise _Unsupported(f"occurs {op}")

    # --- chain --------------------------------------------------------------------------------

    def chain_sql(self, node: ast.Chain, ctx: _Ctx) -> Value:
        """§6.13 as the evaluator decides it (``Evaluator._chain``). Each step is a grouped
        join that keeps, per profile, the step's time: its n-th earliest matching event
        strictly after the previous step's time.

        A step that a later WHEN names (``pql.evaluator.chain_plan``) is an anchor, and any of
        its matching times may be the one that works: its state keeps every possible time as
        a column ``a<index>`` (next to the cursor ``t``), carried through the following steps
        until the last one that names it, where a WHEN reads it as ``s.a<index>``. The state is
        one row per profile and carried anchors, with the least cursor. A chain whose WHENs
        name no step compiles to the plain cascade."""
        if node.order_by != "timestamp":
            raise _Unsupported(f"chain ordered by {node.order_by}")
        if ctx.in_lambda:
            raise _Unsupported("chain inside a list function")
        plan = chain_plan(node)
        named = plan.referenced
        previous: str | None = None
        carried: tuple[int, ...] = ()  # the anchor columns of `previous`
        for index, step in enumerate(node.steps):
            needed = step.count if step.count is not None else 1
            if needed < 1:
                continue  # COUNT(0) holds without events and does not move the cursor
            events = self.value(node.events, ctx)
            if not isinstance(events, EventSet):
                raise _Unsupported("chain over something other than xEvent")
            alias = events.alias
            inner = self.event_item(events, ctx)
            prev: str | None = None
            if plan.uses[index]:
                # A named step has COUNT >= 1 and comes earlier, so `previous` carries it.
                assert previous is not None
                prev = self.fresh("s")
                inner = inner.with_vars({
                    label_variable(node.steps[j].label):
                        Expr(f"{prev}.a{j}", TIMESTAMP, frozenset({prev}))
                    for j in plan.uses[index]
                })  # fmt: skip
            stamp = f"{alias}.{quote_identifier('timestamp')}"
            parts = [*events.where, self.condition(step.what, inner)]
            when = plan.whens[index]
            if when is not None:
                moment = Expr(stamp, TIMESTAMP, frozenset({alias}))
                parts.append(self.window(moment, when, inner))
            if step.where is not None:
                parts.append(self.condition(step.where, inner))
            if _refs(*parts) - {alias} - ({prev} if prev else set()):
                raise _Unsupported("a chain step that reads the profile")
            if any(part.const is False for part in parts):
                return FALSE
            where = " AND ".join(
                [f"{stamp} IS NOT NULL", *(p.sql for p in parts if p.const is not True)]
            )
            source = f"{self.events_table} AS {alias}"
            if previous is not None:
                prev = prev or self.fresh("s")
                source += f" JOIN ({previous}) AS {prev} ON {alias}._profile_id = {prev}.pid"
                where += f" AND {stamp} > {prev}.t"
            step_sql = _ChainStepSql(alias, stamp, source, where, needed, prev, carried)
            keep = tuple(j for j in carried if plan.last_use(j) > index)
            if index in named:
                previous = step_sql.anchor_state(index, keep)
                carried = (*keep, index)
            else:
                previous = step_sql.state(keep)
                carried = keep
        if previous is None:
            return TRUE
        sql = f"{ctx.owner}._profile_id IN (SELECT pid FROM ({previous}))"
        return Expr(sql, BOOLEAN, frozenset({ctx.owner}), subquery=True, two_valued=True)


@dataclass(frozen=True)
class _ChainStepSql:
    """One step of a compiled chain: the events ``alias`` of ``source`` that satisfy ``where``
    (``source`` joins the previous state ``prev``, whose anchor columns are ``carried``)."""

    alias: str
    stamp: str
    source: str
    where: str
    needed: int
    prev: str | None
    carried: tuple[int, ...]

    def columns(self, anchors: Sequence[int], table: str | None = None) -> str:
        return "".join(f", {table}.a{j} AS a{j}" if table else f", a{j}" for j in anchors)

    @property
    def previous_state(self) -> str:
        """The columns that identify a row of the previous state (one per profile and anchors)."""
        return ", ".join(
            [f"{self.alias}._profile_id", *(f"{self.prev}.a{j}" for j in self.carried)]
        )

    def state(self, keep: tuple[int, ...]) -> str:
        """The greedy step: per state row, the time of the n-th matching event; then the
        least of those per profile and the anchors still needed (``keep``)."""
        stamp, needed = self.stamp, self.needed
        nth = f"min({stamp})" if needed == 1 else f"min({stamp}, {needed})[{needed}]"
        grouped = (
            f"SELECT {self.alias}._profile_id AS pid{self.columns(self.carried, self.prev)}, "
            f"{nth} AS t FROM {self.source} WHERE {self.where} GROUP BY {self.previous_state}"
            + (f" HAVING count(*) >= {needed}" if needed > 1 else "")
        )
        if keep == self.carried:
            return grouped
        columns = self.columns(keep)
        return f"SELECT pid{columns}, min(t) AS t FROM ({grouped}) GROUP BY pid{columns}"

    def anchor_state(self, index: int, keep: tuple[int, ...]) -> str:
        """A named step: every time it can have, which is both its anchor ``a<index>`` and
        the cursor — each matching time with at least n matching events at or before it."""
        kept, stamp = self.columns(keep, self.prev), self.stamp
        if self.needed == 1:
            return (
                f"SELECT DISTINCT {self.alias}._profile_id AS pid{kept}, {stamp} AS a{index}, "
                f"{stamp} AS t FROM {self.source} WHERE {self.where}"
            )
        counted = (
            f"SELECT {self.alias}._profile_id AS pid{kept}, {stamp} AS t, count(*) OVER "
            f"(PARTITION BY {self.previous_state} ORDER BY {stamp} RANGE BETWEEN UNBOUNDED "
            f"PRECEDING AND CURRENT ROW) AS k FROM {self.source} WHERE {self.where}"
        )
        columns = self.columns(keep)
        return (
            f"SELECT DISTINCT pid{columns}, t AS a{index}, t FROM ({counted}) "
            f"WHERE k >= {self.needed}"
        )


@dataclass(frozen=True)
class _Ref:
    """A time reference ``[start, end)``: Python datetimes (constant) or SQL text."""

    start: datetime | str
    end: datetime | str
    instant: bool
    expr: Expr | None = None


def _any_item(items: str, var: str, test: str) -> str:
    """Some item of the list ``items`` satisfies ``test`` (NULL for a NULL list)."""
    return f"list_contains(list_transform({items}, lambda {var}: {test}), TRUE)"


def _ts(value: datetime | str) -> str:
    return sql_timestamp(value) if isinstance(value, datetime) else value


def _shift(value: datetime | str, amount: int, unit: str) -> datetime | str:
    if isinstance(value, datetime):
        try:
            return shift(value, amount, unit)
        except (OverflowError, ValueError):
            raise _Unsupported("a time shift out of range") from None
    if unit in FIXED_UNITS:
        micros = int(FIXED_UNITS[unit].total_seconds() * 1_000_000) * amount
        return f"({value} + to_microseconds({micros}))"
    return f"({value} + to_months({MONTHS_IN[unit] * amount}))"


def _all_of(parts: list[Expr]) -> Expr:
    """The conjunction of `parts`, with constant operands folded away."""
    if any(part.const is False for part in parts):
        return FALSE
    parts = [part for part in parts if part.const is not True]
    if not parts:
        return TRUE
    return _conjunction(parts)


def _comparable(left: Any, right: Any) -> bool:
    try:
        compare("=", left, right, ast.Literal(0))
    except PQLEvaluationError:
        return False
    return True
