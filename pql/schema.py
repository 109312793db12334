"""The checker: ``check(node, schema) -> list[Problem]`` (spec/pql.md §1 "Validation", §11.2).

A ``Schema`` describes the fields of the profile (the XDM Individual Profile union) and of the
ExperienceEvents (``xEvent``). It is built from a flat ``{path: type}`` dict or from an XDM JSON
Schema. Paths are dotted; arrays are transparent (``person.orders`` is ``array<object>`` and
``person.orders.storeId`` a field of its items, as a PQL path reads it, §3.3); the values of a
map are addressed with ``*`` (``identityMap`` is ``map<array<object>>`` and ``identityMap.*.id``
a field of the identities). Types: ``string number integer boolean date date-time object array
map``, with ``array<T>`` and ``map<T>`` for the item/value type.

The checker reports three kinds of problems, each with words a marketer understands and the
span of the offending text: unknown fields (with "did you mean"), type mismatches, and the
authoring guardrails of §11.2 — with the engine's own bounds: a regular expression must be one
the engine's RE2 runs (pql/regex.py), and a definition has at most MAX_NODES parts and
MAX_EVENT_READS reads of the events or memberships.
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from pql import ast
from pql.errors import position
from pql.evaluator import PQLChainLabelError, chain_plan, label_variable
from pql.parser import MAX_TEXT_LENGTH
from pql.printer import to_text
from pql.regex import re2_error, unsupported_construct
from pql.timeutil import shift
from pql.values import parse_timestamp

__all__ = ["FIELD_KINDS", "FieldType", "Problem", "Schema", "check"]

FIELD_KINDS = frozenset(
    {"string", "number", "integer", "boolean", "date", "date-time", "object", "array", "map"}
)

# §11.2 guardrails.
MAX_CHAIN_STEPS = 3  # "sequential events > 3" is critical (the newest validation.md)
MAX_AGGREGATIONS = 3  # "aggregation functions > 3" is a warning
MAX_NESTING = 2  # "nested array/map depth > 2 levels" is a warning
# "Logical complexity" is critical in Adobe's validation, with no number published. Ours: the
# parts of a definition (pql.ast nodes). The longest example programs have ~30, a list of a few
# thousand postcodes a few thousand; the text is limited too (pql.parser.MAX_TEXT_LENGTH), and
# so is the depth (pql.parser.MAX_DEPTH, which pql/json shares).
MAX_NODES = 10_000
# Places that read the events or the segment memberships (xEvent, $2, inSegment): each is a
# subquery of the compiled SQL, and DuckDB plans them in quadratic time — measured on the demo
# store, 100 ORed event conditions run in 0.2 s, 200 in 0.8 s, 400 in 4 s, 700 in 16 s, and
# 1,000 exceed DuckDB's expression depth. Real definitions have a handful.
MAX_EVENT_READS = 100

# User-facing messages (module constants so tests can assert the exact text).
UNKNOWN_FIELD = 'There is no field "{path}"{where}.'
DID_YOU_MEAN = ' Did you mean "{suggestion}"?'
ON_EVENTS = " on events"
NO_FIELDS_AT_ALL = (
    'There is no field "{path}"{where}: this sandbox has no {what} data yet, so its union '
    "schema has no fields. Ingest data first."
)
UNKNOWN_SEGMENT = 'There is no segment with the id "{id}" in this sandbox.'
SEGMENT_BY_NAME = ' To use the segment named "{name}", write inSegment("{id}").'
SEGMENT_ID_NEEDED = "inSegment needs a segment id written as text, for example " \
    'inSegment("3a9c…").'
NO_FIELDS = '"{path}" is {kind}; it has no field "{name}".'
COMPARE_MISMATCH = '"{left}" is {left_kind} and cannot be compared with {right_kind}: {right}.'
NOT_ORDERED = '"{text}" is {kind}; it cannot be compared with < <= > >=.'
NEEDS_TEXT = '{what} works on text, but "{text}" is {kind}.'
NEEDS_NUMBER = '{what} works on numbers, but "{text}" is {kind}.'
NEEDS_LIST = '{what} works on a list, but "{text}" is {kind}.'
NEEDS_MAP = '{what} works on a map, but "{text}" is {kind}.'
NEEDS_TIME = '{what} works on dates and times, but "{text}" is {kind}.'
NEEDS_MAP_OR_OBJECT = '{what} works on a map or an object, but "{text}" is {kind}.'
ONE_TIME = '{what} needs one date or time, but "{text}" is {kind}.'
NOT_A_TIME = '{text} is not a date or a time; write it as "2026-01-31" or "2026-01-31T09:00:00Z".'
LISTS_NOT_ORDERED = (
    '"{left}" and the other side are both lists; lists can be compared with = and != only.'
)
IF_TYPES = (
    "if gives {then} in one case and {otherwise} in the other; give both results the same type."
)
CASE_FLAG = '{what} takes a text and, optionally, true or false for case; "{text}" is neither.'
WHOLE_NUMBERS = "date() needs three whole numbers: year, month and day."
NOT_A_DAY = "date({year}, {month}, {day}) is not a day of the calendar."
BAD_REGEX = 'The regular expression "{pattern}" is not valid: {error}.'
# The engine runs regular expressions with RE2 (pql/regex.py): what it cannot run is refused.
REGEX_NOT_SUPPORTED = (
    'The regular expression "{pattern}" uses {construct}, which the engine\'s regular '
    "expressions (RE2) do not support."
)
REGEX_NOT_RUNNABLE = (
    'The regular expression "{pattern}" cannot run in the engine\'s regular expressions '
    "(RE2): {error}."
)
REGEX_NOT_WRITTEN = (
    '{what} needs its regular expression written in the definition as text, such as '
    '{what}("^A"); "{text}" is computed.'
)
REGEX_GROUP_NOT_WRITTEN = (
    "{what} needs the number of its group written as a whole number, such as "
    '{what}("@(.+)", 1); {text} is not.'
)
REGEX_NO_GROUP = (
    'The regular expression "{pattern}" has {groups} group(s); {what} cannot return group '
    "{group}."
)
REGEX_SHOWN = 80  # characters of a pattern a message repeats
TOO_FAR = "This time window reaches beyond the years 1 to 9999."
NO_PARAMETER = "There is no parameter ${position}: $1 is the profile and $2 its events."
TOO_MANY_CARETS = "'{carets}' reaches above the profile: there is no enclosing item that far up."
TOO_MANY_STEPS = (
    "This sequence has {count} steps; Adobe accepts at most {limit} sequential events in a "
    "definition."
)
TOO_MANY_AGGREGATIONS = (
    "This definition uses {count} aggregations (sum, average, min, max, count); more than "
    "{limit} can slow segmentation down."
)
TOO_DEEP = (
    "This condition looks {depth} levels deep into lists; more than {limit} levels can slow "
    "segmentation down."
)
TOO_LONG = (
    "This definition is {length:,} characters long as text; a definition may have at most "
    "{limit:,}."
)
TOO_MANY_READS = (
    "This definition reads the events or segment memberships in more than {limit:,} places "
    "(xEvent, inSegment), the most a definition may. Split it into smaller segments and "
    "combine them with inSegment."
)
TOO_LARGE = (
    "This definition has more than {limit:,} parts (fields, values, operators and functions), "
    "the most a definition may have. Split it into smaller segments and combine them with "
    "inSegment."
)

KIND_WORDS = {
    "string": "text",
    "number": "a number",
    "integer": "a number",
    "boolean": "true/false",
    "date": "a date",
    "date-time": "a date-time",
    "object": "an object",
    "array": "a list",
    "map": "a map",
    "mixed": "values of several types",
}
# XDM and JSON Schema spellings of the kinds.
KIND_ALIASES = {
    "int": "integer",
    "long": "integer",
    "short": "integer",
    "byte": "integer",
    "double": "number",
    "float": "number",
    "list": "array",
    "datetime": "date-time",
}
NUMBERS = frozenset({"number", "integer"})
TIMES = frozenset({"date", "date-time"})
AGGREGATION_METHODS = frozenset({"sum", "average", "min", "max", "count"})
TEXT_METHODS = frozenset(
    {
        "startswith", "doesnotstartwith", "endswith", "doesnotendwith", "contains",
        "doesnotcontain", "equals", "notequalto", "matches", "regexgroup",
    }
)  # fmt: skip
LIST_METHODS = frozenset(
    {
        "intersects", "intersection", "subsetof", "supersetof", "includes", "distinct",
        "groupby", "filter", "map", "topn", "bottomn", "head", "exists", "sum", "average",
        "min", "max",
    }
)  # fmt: skip
MAP_METHODS = frozenset({"get", "keys", "values"})
TIME_METHODS = frozenset({"getmonth", "getyear", "getdayofmonth"})
ITEM_ARG_METHODS = frozenset(
    {"filter", "exists", "sum", "average", "min", "max", "groupby", "map", "topn", "bottomn"}
)


@dataclass(frozen=True)
class FieldType:
    """A field's type: ``kind`` among ``FIELD_KINDS`` (or ``any``), ``items`` the item type of
    an array or the value type of a map. ``ref`` ties an object (or array of objects, or map)
    to its place in a schema, ``(collection, path)``, so its fields can be looked up."""

    kind: str
    items: FieldType | None = None
    ref: tuple[str, str] | None = None

    @classmethod
    def parse(cls, text: str) -> FieldType:
        """``"string"``, ``"array<string>"``, ``"map<array<object>>"`` …"""
        text = text.strip()
        if text.endswith(">") and "<" in text:
            outer, inner = text[:-1].split("<", 1)
            return cls(_kind(outer), cls.parse(inner))
        return cls(_kind(text))

    def __str__(self) -> str:
        return f"{self.kind}<{self.items}>" if self.items is not None else self.kind

    @property
    def words(self) -> str:
        if self.kind == "array" and self.items is not None and self.items.kind != "any":
            return f"a list of {_plural(self.items)}"
        return KIND_WORDS.get(self.kind, "a value")


ANY = FieldType("any")
BOOLEAN = FieldType("boolean")
NUMBER = FieldType("number")
STRING = FieldType("string")
DATE = FieldType("date")
DATE_TIME = FieldType("date-time")
INTEGER = FieldType("integer")
MIXED = FieldType("mixed")  # values of several types (an object's field values)


def _kind(word: str) -> str:
    word = word.strip().lower()
    word = KIND_ALIASES.get(word, word)
    if word not in FIELD_KINDS and word != "any":
        raise ValueError(f"unknown field type {word!r}; use one of {sorted(FIELD_KINDS)}")
    return word


def _plural(item: FieldType) -> str:
    return {
        "string": "texts",
        "number": "numbers",
        "integer": "numbers",
        "boolean": "true/false values",
        "date": "dates",
        "date-time": "date-times",
        "object": "objects",
        "array": "lists",
        "map": "maps",
    }.get(item.kind, "values")


@dataclass(frozen=True)
class Problem:
    """One thing wrong (``severity="error"``: cannot be saved) or worth knowing
    (``"warning"``). ``code`` names the kind (``unknown-field``, ``type-mismatch``,
    ``too-many-steps``, ``too-many-aggregations``, ``too-deep``, ``too-large``,
    ``too-complex``, ``invalid-value``). ``span`` is the character
    offsets of the offending text; ``line``/``column``/``end_column`` (1-based, end exclusive)
    are filled in when ``check`` is given the source text."""

    severity: str
    message: str
    code: str
    span: tuple[int, int] | None = None
    line: int | None = None
    column: int | None = None
    end_column: int | None = None


PROFILE = "profile"
EVENT = "event"


@dataclass
class Schema:
    """Fields of the profile and of the events, as ``{dotted path: FieldType}``."""

    profile: dict[str, FieldType] = field(default_factory=dict)
    event: dict[str, FieldType] = field(default_factory=dict)

    @classmethod
    def from_dict(
        cls,
        profile: Mapping[str, str | FieldType],
        events: Mapping[str, str | FieldType] | None = None,
    ) -> Schema:
        """From flat ``{path: type}`` dicts, e.g. ``{"homeAddress.countryISO": "string"}``."""

        def convert(fields: Mapping[str, str | FieldType]) -> dict[str, FieldType]:
            return {
                path: kind if isinstance(kind, FieldType) else FieldType.parse(kind)
                for path, kind in fields.items()
            }

        return cls(convert(profile), convert(events or {}))

    @classmethod
    def from_json_schema(
        cls, profile: Mapping[str, Any], events: Mapping[str, Any] | None = None
    ) -> Schema:
        """From XDM JSON Schemas (``properties``, ``items``, ``additionalProperties`` for maps,
        ``format`` / ``meta:xdmType`` for dates, ``allOf`` merged; a ``$ref`` that is not
        inlined becomes an object whose fields are not checked)."""
        profile_fields: dict[str, FieldType] = {}
        _flatten_json_schema(profile, "", profile_fields)
        event_fields: dict[str, FieldType] = {}
        if events is not None:
            _flatten_json_schema(events, "", event_fields)
        return cls(profile_fields, event_fields)

    def fields(self, collection: str) -> dict[str, FieldType]:
        return self.profile if collection == PROFILE else self.event

    def root(self, collection: str) -> FieldType:
        return FieldType("object", ref=(collection, ""))

    def declared(self, collection: str, path: str) -> FieldType | None:
        """The type declared for ``path``, with refs attached; ``object`` for a path that only
        has declared children; None if unknown."""
        fields = self.fields(collection)
        declared = fields.get(path)
        if declared is None:
            prefix = path + "."
            if not any(key.startswith(prefix) for key in fields):
                return None
            declared = FieldType("object")
        return _attach(declared, collection, path)

    def children(self, collection: str, path: str) -> list[str]:
        """The names of the declared fields directly under ``path``."""
        prefix = f"{path}." if path else ""
        names = {
            key[len(prefix) :].split(".", 1)[0]
            for key in self.fields(collection)
            if key.startswith(prefix) and len(key) > len(prefix)
        }
        return sorted(names - {"*"})


def _attach(declared: FieldType, collection: str, path: str) -> FieldType:
    if declared.kind == "object":
        return replace(declared, ref=(collection, path))
    if declared.kind == "array":
        items = declared.items or FieldType("object")
        return replace(declared, items=_attach(items, collection, path))
    if declared.kind == "map":
        values = declared.items or ANY
        return replace(declared, items=_attach(values, collection, f"{path}.*"), ref=None)
    return declared


def _flatten_json_schema(node: Mapping[str, Any], path: str, out: dict[str, FieldType]) -> None:
    for part in node.get("allOf", []) or []:
        if isinstance(part, Mapping):
            _flatten_json_schema(part, path, out)
    kind = _json_kind(node)
    if path and kind is not None:
        out.setdefault(path, kind)
    for name, child in (node.get("properties") or {}).items():
        if isinstance(child, Mapping):
            _flatten_json_schema(child, f"{path}.{name}" if path else name, out)
    items = node.get("items")
    if isinstance(items, Mapping):
        _flatten_json_schema(items, path, out)  # arrays are transparent in paths
        item_kind = _json_kind(items)
        if path and item_kind is not None:
            out[path] = FieldType("array", item_kind)
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping) and path:
        _flatten_json_schema(extra, f"{path}.*", out)
        # the values' type as flattened (an array keeps its item type: map<array<object>>)
        out[path] = FieldType("map", out.get(f"{path}.*") or _json_kind(extra) or ANY)


def _json_kind(node: Mapping[str, Any]) -> FieldType | None:
    xdm = node.get("meta:xdmType")
    declared = node.get("type")
    if isinstance(declared, list):
        declared = next((kind for kind in declared if kind != "null"), None)
    fmt = node.get("format")
    if xdm in ("map",) or (
        declared == "object" and isinstance(node.get("additionalProperties"), Mapping)
    ):
        return FieldType("map")
    if fmt in ("date", "date-time"):
        return FieldType(fmt)
    if isinstance(xdm, str) and xdm not in ("object", "array"):
        try:
            return FieldType(_kind(xdm))
        except ValueError:
            pass
    if isinstance(declared, str):
        try:
            return FieldType(_kind(declared))
        except ValueError:
            return None
    if "properties" in node or "$ref" in node:
        return FieldType("object")
    return None


# --- the checker ------------------------------------------------------------------------------
#
# The checker is an abstract interpreter of the evaluator (pql/evaluator.py): it walks the tree
# with types instead of values and reports, before anything runs, every use that would fail
# with a type error at run time on data of this schema — and a few that the evaluator would
# run leniently but that are almost always a mistake (text compared with a number). A null
# never fails (every operator turns it into false or null), so only the types of present
# values matter. ``tests/pql/test_check_agreement.py`` holds the two to each other.


@dataclass(frozen=True)
class _Env:
    """Types in scope: the implicit contexts, the variables, and how many lists deep we are
    (``depth``; ``var_depths`` remembers it for each variable)."""

    contexts: tuple[FieldType, ...]
    variables: Mapping[str, FieldType]
    depth: int = 0
    var_depths: Mapping[str, int] = field(default_factory=dict)

    def with_item(self, item: FieldType) -> _Env:
        return replace(self, contexts=(*self.contexts, item), depth=self.depth + 1)

    def with_vars(self, **bound: FieldType) -> _Env:
        return replace(self, variables={**self.variables, **bound})

    def with_loop_var(self, name: str, kind: FieldType, depth: int) -> _Env:
        return replace(
            self,
            variables={**self.variables, name: kind},
            var_depths={**self.var_depths, name: depth},
            depth=depth,
        )


def check(
    node: ast.Node,
    schema: Schema | Mapping[str, Mapping[str, str]],
    *,
    source: str | None = None,
    segments: Mapping[str, str] | Collection[str] | None = None,
) -> list[Problem]:
    """Every problem of ``node`` against ``schema``, in source order, errors and warnings.

    ``schema`` is a ``Schema`` or a dict ``{"profile": {path: type}, "xEvent": {path: type}}``
    (``"event"`` is accepted for ``"xEvent"``). ``source`` (the text ``node`` was parsed from)
    turns spans into line/column positions. ``segments``, when given, are the segment ids
    ``inSegment`` may name (a mapping ``{id: name}`` also lets a name be suggested); without
    it ``inSegment`` ids are not checked."""
    if not isinstance(schema, Schema):
        schema = Schema.from_dict(
            schema.get("profile", {}), schema.get("xEvent", schema.get("event", {}))
        )
    too_large = _too_large(node, source)
    if too_large is not None:  # refused whole, before any work proportional to its size
        return [_positioned(too_large, source) if source is not None else too_large]
    checker = _Checker(schema, segments)
    checker.infer(node, _Env((schema.root(PROFILE),), {}))
    checker.guardrails(node)
    unique: dict[tuple[Any, ...], Problem] = {}
    for problem in checker.problems:  # a shared subtree may be reached twice
        unique.setdefault((problem.span, problem.code, problem.message), problem)
    problems = sorted(unique.values(), key=lambda p: (p.span or (0, 0), p.code))
    if source is not None:
        problems = [_positioned(problem, source) for problem in problems]
    return problems


def _too_large(node: ast.Node, source: str | None) -> Problem | None:
    """An error for a definition of more than MAX_NODES parts (counting stops there), more
    than MAX_EVENT_READS reads of events or memberships (at the first one over), or longer
    than MAX_TEXT_LENGTH as text: pql.parse refuses such a text, and a pql/json tree is stored
    and run as its text."""
    reads = 0
    for count, part in enumerate(node.walk(), start=1):
        if count > MAX_NODES:
            return Problem("error", TOO_LARGE.format(limit=MAX_NODES), "too-large", node.span)
        if _reads_events(part):
            reads += 1
            if reads > MAX_EVENT_READS:
                return Problem("error", TOO_MANY_READS.format(limit=MAX_EVENT_READS),
                               "too-complex", part.span)
    length = len(source if source is not None else to_text(node))
    if length > MAX_TEXT_LENGTH:
        return Problem("error", TOO_LONG.format(length=length, limit=MAX_TEXT_LENGTH),
                       "too-large", node.span)
    return None


def _reads_events(node: ast.Node) -> bool:
    return ((isinstance(node, ast.Field) and node.name == "xEvent")
            or (isinstance(node, ast.Param) and node.position == 2)
            or (isinstance(node, ast.Call) and node.name.lower() == "insegment"))


def _positioned(problem: Problem, source: str) -> Problem:
    if problem.span is None:
        return problem
    start, end = problem.span
    line, column = position(source, start)
    line_end = source.find("\n", start)
    if line_end != -1:
        end = min(end, line_end)
    return replace(problem, line=line, column=column, end_column=column + max(end - start, 1))


class _Checker:
    def __init__(
        self, schema: Schema, segments: Mapping[str, str] | Collection[str] | None = None
    ) -> None:
        self.schema = schema
        self.segments: Mapping[str, str] | None = (
            None
            if segments is None
            else segments
            if isinstance(segments, Mapping)
            else dict.fromkeys(segments, "")
        )
        self.problems: list[Problem] = []
        self.max_depth = 0
        self.deepest: ast.Node | None = None

    def report(self, severity: str, code: str, message: str, node: ast.Node) -> None:
        self.problems.append(Problem(severity, message, code, node.span))

    def mismatch(self, message: str, node: ast.Node) -> None:
        self.report("error", "type-mismatch", message, node)

    def invalid(self, message: str, node: ast.Node) -> None:
        self.report("error", "invalid-value", message, node)

    # --- guardrails (§11.2) ---------------------------------------------------------------

    def guardrails(self, node: ast.Node) -> None:
        aggregations = [
            n
            for n in node.walk()
            if isinstance(n, ast.Aggregate)
            or (isinstance(n, ast.Method) and n.name.lower() in AGGREGATION_METHODS)
        ]
        if len(aggregations) > MAX_AGGREGATIONS:
            self.report(
                "warning",
                "too-many-aggregations",
                TOO_MANY_AGGREGATIONS.format(count=len(aggregations), limit=MAX_AGGREGATIONS),
                aggregations[MAX_AGGREGATIONS],
            )
        for chain in node.walk():
            if isinstance(chain, ast.Chain) and len(chain.steps) > MAX_CHAIN_STEPS:
                self.report(
                    "error",
                    "too-many-steps",
                    TOO_MANY_STEPS.format(count=len(chain.steps), limit=MAX_CHAIN_STEPS),
                    chain,
                )
        if self.max_depth > MAX_NESTING and self.deepest is not None:
            self.report(
                "warning",
                "too-deep",
                TOO_DEEP.format(depth=self.max_depth, limit=MAX_NESTING),
                self.deepest,
            )

    def entered(self, env: _Env, node: ast.Node) -> None:
        if env.depth > self.max_depth:
            self.max_depth, self.deepest = env.depth, node

    # --- type inference -------------------------------------------------------------------

    def infer(self, node: ast.Node, env: _Env) -> FieldType:
        method = _INFER.get(type(node))
        if method is None:
            for child in node.children():
                self.infer(child, env)
            return ANY
        return method(self, node, env)

    def _literal(self, node: ast.Literal, env: _Env) -> FieldType:
        value = node.value
        if isinstance(value, bool):
            return BOOLEAN
        if isinstance(value, str):
            return STRING
        return FieldType("integer") if isinstance(value, int) else NUMBER

    def _list_literal(self, node: ast.ListLiteral, env: _Env) -> FieldType:
        kinds = [self.infer(item, env) for item in node.items]
        if not kinds:
            return FieldType("array", ANY)
        first = kinds[0]
        same = all(_same_kind(first, kind) for kind in kinds[1:])
        return FieldType("array", first if same else ANY)

    def _object_literal(self, node: ast.ObjectLiteral, env: _Env) -> FieldType:
        for _, value in node.entries:
            self.infer(value, env)
        return FieldType("object")

    def _param(self, node: ast.Param, env: _Env) -> FieldType:
        if node.position == 2:
            return FieldType("array", self.schema.root(EVENT))
        if node.position != 1:
            self.invalid(NO_PARAMETER.format(position=node.position), node)
            return ANY
        return self.schema.root(PROFILE)

    def _var(self, node: ast.Var, env: _Env) -> FieldType:
        return env.variables.get(node.name, ANY)

    def _up(self, node: ast.Up, env: _Env) -> FieldType:
        if node.levels < len(env.contexts):
            return env.contexts[-1 - node.levels]
        self.invalid(TOO_MANY_CARETS.format(carets="^" * node.levels), node)
        return ANY

    def _field(self, node: ast.Field, env: _Env) -> FieldType:
        if node.obj is None:
            if node.name == "xEvent":
                return FieldType("array", self.schema.root(EVENT))
            base = env.contexts[-1]
        else:
            base = self.infer(node.obj, env)
            if node.name == "xEvent" and base.ref == (PROFILE, ""):
                return FieldType("array", self.schema.root(EVENT))
        return self.member(base, node)

    def member(self, base: FieldType, node: ast.Field) -> FieldType:
        """The type of ``base.name``; a step through an array gives a list (§3.3)."""
        many = False
        while base.kind == "array":
            many = True
            if base.items is None:
                return ANY
            base = base.items
        if base.kind == "map":
            found = base.items or ANY  # a dot on a map reads a key
        elif base.kind == "object" and base.ref is not None:
            collection, prefix = base.ref
            path = f"{prefix}.{node.name}" if prefix else node.name
            declared = self.schema.declared(collection, path)
            siblings = self.schema.children(collection, prefix)
            if declared is None and siblings:
                self.unknown_field(collection, prefix, node, siblings)
                return ANY
            if declared is None and not self.schema.fields(collection):
                what = "event" if collection == EVENT else "profile"
                message = NO_FIELDS_AT_ALL.format(
                    path=_label(node), where=ON_EVENTS if collection == EVENT else "", what=what
                )
                self.report("error", "unknown-field", message, node)
                return ANY
            found = declared or ANY
        elif base.kind in ("any", "object"):
            return ANY
        else:
            self.mismatch(
                NO_FIELDS.format(path=_label(node.obj), kind=base.words, name=node.name), node
            )
            return ANY
        return FieldType("array", found) if many and found.kind != "array" else found

    def unknown_field(
        self, collection: str, prefix: str, node: ast.Field, siblings: list[str]
    ) -> None:
        # Name the field as the user wrote it (X.commerce.order.priceTotl,
        # identityMap.get("ECID").idd), and suggest the closest sibling the schema declares.
        message = UNKNOWN_FIELD.format(
            path=_label(node), where=ON_EVENTS if collection == EVENT else ""
        )
        close = difflib.get_close_matches(node.name, siblings, n=1, cutoff=0.6)
        if not close:
            lowered = {name.lower(): name for name in siblings}
            matches = difflib.get_close_matches(node.name.lower(), list(lowered), n=1, cutoff=0.6)
            close = [lowered[name] for name in matches]
        if close:
            written = replace(node, name=close[0])
            message += DID_YOU_MEAN.format(suggestion=_label(written))
        self.report("error", "unknown-field", message, node)

    # --- operators --------------------------------------------------------------------------

    def _binary(self, node: ast.Binary, env: _Env) -> FieldType:
        left = self.infer(node.left, env)
        right = self.infer(node.right, env)
        op = node.op
        if op in ("+", "-", "*", "/", "%"):
            for side, kind in ((node.left, left), (node.right, right)):
                self.needs_number(f"'{op}'", side, kind)
            return NUMBER
        if op == "like":
            self.needs_text("like", node.left, left)
            self.needs_text("the pattern of like", node.right, right, one=True)
            return BOOLEAN
        if op in ("in", "notIn"):
            if _known(right) and right.kind != "array":
                self.mismatch(
                    NEEDS_LIST.format(what=op, text=_label(node.right), kind=right.words),
                    node.right,
                )
            elif right.kind == "array" and right.items is not None:
                self.comparable(node.left, _scalar(left), node.right, right.items, node)
            return BOOLEAN
        if left.kind == "array" and right.kind == "array":
            if op not in ("=", "!="):  # two lists are equal or not, never ordered
                self.mismatch(LISTS_NOT_ORDERED.format(left=_label(node.left)), node)
            return BOOLEAN
        self.comparable(node.left, left, node.right, right, node)
        if op not in ("=", "!="):
            for side, kind in ((node.left, left), (node.right, right)):
                if _known(kind) and _scalar(kind).kind in ("boolean", "object", "map"):
                    self.mismatch(NOT_ORDERED.format(text=_label(side), kind=kind.words), node)
                    break
        return BOOLEAN

    def comparable(
        self,
        left_node: ast.Node,
        left: FieldType,
        right_node: ast.Node,
        right: FieldType,
        node: ast.Node,
    ) -> None:
        """§1 "Type coercion": the right operand is coerced to the left one's type; a
        coercion that cannot work is a validation error."""
        if left.kind == "array" and right.kind == "array":
            return  # list equality
        a, b = _scalar(left), _scalar(right)
        if not (_known(a) and _known(b)) or _compatible(a, b, left_node, right_node):
            return
        self.mismatch(
            COMPARE_MISMATCH.format(
                left=_label(left_node),
                left_kind=a.words,
                right_kind=b.words,
                right=_label(right_node),
            ),
            node,
        )

    def needs_text(
        self, what: str, node: ast.Node, kind: FieldType, *, one: bool = False
    ) -> None:
        """Text, or (unless ``one``) a list of texts, each tested."""
        if not _known(kind):
            return
        if one and kind.kind == "array":
            self.mismatch(NEEDS_TEXT.format(what=what, text=_label(node), kind=kind.words), node)
            return
        scalar = _scalar(kind)
        if _known(scalar) and scalar.kind != "string":
            self.mismatch(NEEDS_TEXT.format(what=what, text=_label(node), kind=kind.words), node)

    def needs_number(self, what: str, node: ast.Node, kind: FieldType) -> bool:
        """One number (a list of numbers is not a number). False when reported."""
        if _known(kind) and (kind.kind == "array" or kind.kind not in NUMBERS):
            self.mismatch(NEEDS_NUMBER.format(what=what, text=_label(node), kind=kind.words), node)
            return False
        return True

    def needs_time(self, what: str, node: ast.Node, kind: FieldType, *, one: bool) -> None:
        """A date, a date-time, epoch milliseconds or a literal text that reads as a time; a
        list of them unless ``one`` (a time reference must be a single time)."""
        if not _known(kind):
            return
        if kind.kind == "array" and one:
            self.mismatch(ONE_TIME.format(what=what, text=_label(node), kind=kind.words), node)
            return
        scalar = _scalar(kind)
        if not _known(scalar) or scalar.kind in TIMES | NUMBERS:
            return
        if scalar.kind == "string" and isinstance(node, ast.Literal):
            if parse_timestamp(node.value) is None:
                self.invalid(NOT_A_TIME.format(text=_label(node)), node)
            return
        self.mismatch(NEEDS_TIME.format(what=what, text=_label(node), kind=kind.words), node)

    def needs_list(self, what: str, node: ast.Node, kind: FieldType) -> bool:
        if _known(kind) and kind.kind != "array":
            self.mismatch(NEEDS_LIST.format(what=what, text=_label(node), kind=kind.words), node)
            return False
        return True

    def _negate(self, node: ast.Negate, env: _Env) -> FieldType:
        kind = self.infer(node.operand, env)
        self.needs_number("'-'", node.operand, kind)
        return NUMBER

    def _boolean_children(self, node: ast.Node, env: _Env) -> FieldType:
        for child in node.children():
            self.infer(child, env)
        return BOOLEAN

    def _call(self, node: ast.Call, env: _Env) -> FieldType:
        kinds = [self.infer(arg, env) for arg in node.args]
        name = node.name.lower()
        if name == "date":
            for arg, kind in zip(node.args, kinds, strict=False):
                self.needs_number("date()", arg, kind)
            self.calendar_day(node)
            return DATE
        if name in ("currentmonth", "currentyear", "currentdayofmonth"):
            return FieldType("integer")
        if name == "insegment":
            self.segment(node)
            return BOOLEAN
        if name == "not":
            return BOOLEAN
        if name == "mapentry" and len(kinds) == 2:
            return FieldType("map", kinds[1])  # one entry of the map being built
        if name == "if" and len(kinds) == 3:
            then, otherwise = kinds[1], kinds[2]
            if not (_known(then) and _known(otherwise)):
                return ANY
            if _same_kind(then, otherwise):
                return then if then.kind not in NUMBERS or then == otherwise else NUMBER
            self.mismatch(
                IF_TYPES.format(then=then.words, otherwise=otherwise.words), node
            )
            return ANY
        return ANY

    def calendar_day(self, node: ast.Call) -> None:
        values = [arg.value if isinstance(arg, ast.Literal) else None for arg in node.args]
        if len(values) != 3 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        ):
            return
        if not all(float(v).is_integer() for v in values):  # type: ignore[arg-type]
            self.mismatch(WHOLE_NUMBERS, node)
            return
        year, month, day = (int(v) for v in values)  # type: ignore[arg-type]
        try:
            date(year, month, day)
        except ValueError:
            self.invalid(NOT_A_DAY.format(year=year, month=month, day=day), node)

    def segment(self, node: ast.Call) -> None:
        """``inSegment("<id>")`` names a segment of this sandbox (when the ids are known)."""
        if self.segments is None or len(node.args) != 1:
            return
        arg = node.args[0]
        if not isinstance(arg, ast.Literal) or not isinstance(arg.value, str):
            self.report("error", "unknown-segment", SEGMENT_ID_NEEDED, arg)
            return
        if arg.value in self.segments:
            return
        message = UNKNOWN_SEGMENT.format(id=arg.value)
        by_name = {name.lower(): sid for sid, name in self.segments.items() if name}
        if arg.value.strip().lower() in by_name:
            sid = by_name[arg.value.strip().lower()]
            message += SEGMENT_BY_NAME.format(name=self.segments[sid], id=sid)
        self.report("error", "unknown-segment", message, arg)

    def regex(self, what: str, node: ast.Node) -> int | None:
        """A pattern both the engine's RE2 and the reference evaluator's ``re`` run, written
        in the definition (a computed one could not be checked, nor compiled to SQL): its
        number of groups, or None when reported."""
        if not isinstance(node, ast.Literal):
            self.invalid(REGEX_NOT_WRITTEN.format(what=what, text=_label(node)), node)
            return None
        if not isinstance(node.value, str):
            return None  # needs_text reports it
        pattern = node.value
        try:
            with warnings.catch_warnings():  # "possible nested set": [[:alpha:]] is RE2's
                warnings.simplefilter("ignore")
                groups = re.compile(pattern).groups
        except (re.error, OverflowError, RecursionError) as error:
            self.invalid(BAD_REGEX.format(pattern=pattern, error=error), node)
            return None
        refused = re2_error(pattern)
        if refused is None:
            return groups
        shown = pattern if len(pattern) <= REGEX_SHOWN else pattern[:REGEX_SHOWN - 1] + "…"
        construct = unsupported_construct(pattern, refused)
        if construct is not None:
            message = REGEX_NOT_SUPPORTED.format(pattern=shown, construct=construct)
        else:
            message = REGEX_NOT_RUNNABLE.format(pattern=shown, error=refused)
        self.invalid(message, node)
        return None

    def regex_group(self, what: str, pattern: ast.Node, groups: int | None,
                    node: ast.Node) -> None:
        """The group of ``regexGroup``: a whole number the pattern has (the compiler reads it
        as a constant; the evaluator fails on a group the pattern lacks)."""
        value = node.value if isinstance(node, ast.Literal) else None
        if not isinstance(value, int) or isinstance(value, bool):
            self.invalid(REGEX_GROUP_NOT_WRITTEN.format(what=what, text=_label(node)), node)
            return
        if groups is not None and not 0 <= value <= groups:
            shown = _label(pattern).strip('"')
            if len(shown) > REGEX_SHOWN:
                shown = shown[:REGEX_SHOWN - 1] + "…"
            self.invalid(REGEX_NO_GROUP.format(pattern=shown, groups=groups, what=what,
                                               group=value), node)

    def _method(self, node: ast.Method, env: _Env) -> FieldType:
        receiver = self.infer(node.receiver, env)
        name = node.name.lower()
        item = _item_type(receiver)
        if name in ITEM_ARG_METHODS and node.args and not isinstance(node.args[0], ast.Lambda):
            inner = env.with_item(item)
            self.entered(inner, node.args[0])
            kinds = [self.infer(node.args[0], inner)]
            kinds += [self.infer(arg, env) for arg in node.args[1:]]
        elif node.args and isinstance(node.args[0], ast.Lambda):
            lam = node.args[0]  # map((K, G) => …) over a map's entries, or (I) => … per item
            bound = (STRING, receiver.items or ANY) if receiver.kind == "map" else (item,)
            params = dict(zip(lam.params, bound, strict=False))
            kinds = [self.infer(lam.body, env.with_vars(**params))]
        else:
            kinds = [self.infer(arg, env) for arg in node.args]
        handler = _METHODS.get(name)
        if handler is None:
            return ANY
        return handler(self, node, receiver, item, kinds)

    def _text_method(
        self, node: ast.Method, receiver: FieldType, item: FieldType, kinds: list[FieldType]
    ) -> FieldType:
        name = node.name.lower()
        self.needs_text(node.name, node.receiver, receiver, one=name == "regexgroup")
        args = list(zip(node.args, kinds, strict=False))
        if name == "regexgroup":
            groups = None
            if args:
                self.needs_text(node.name, *args[0], one=True)
                groups = self.regex(node.name, args[0][0])
            if len(args) > 1 and self.needs_number(node.name, *args[1]):
                self.regex_group(node.name, args[0][0], groups, args[1][0])
            return STRING
        if args and args[-1][1].kind == "boolean" and (name == "equals" or len(args) == 2):
            args = args[:-1]  # the trailing case flag
        elif name != "equals" and len(args) == 2:
            self.mismatch(CASE_FLAG.format(what=node.name, text=_label(args[1][0])), args[1][0])
            args = args[:1]
        for arg, kind in args:
            self.needs_text(node.name, arg, kind, one=True)
        if name == "matches" and args:
            self.regex(node.name, args[0][0])
        return BOOLEAN

    def _time_method(
        self, node: ast.Method, receiver: FieldType, item: FieldType, kinds: list[FieldType]
    ) -> FieldType:
        self.needs_time(node.name, node.receiver, receiver, one=False)
        many = receiver.kind == "array"
        return FieldType("array", INTEGER) if many else INTEGER

    def _null_method(
        self, node: ast.Method, receiver: FieldType, item: FieldType, kinds: list[FieldType]
    ) -> FieldType:
        return BOOLEAN

    def _count_method(
        self, node: ast.Method, receiver: FieldType, item: FieldType, kinds: list[FieldType]
    ) -> FieldType:
        return INTEGER

    def _map_method(
        self, node: ast.Method, receiver: FieldType, item: FieldType, kinds: list[FieldType]
    ) -> FieldType:
        name = node.name.lower()
        if not _known(receiver):
            return ANY
        if name == "get" and receiver.kind == "array":  # a list of maps: every value
            values = self._map_method(node, item, _item_type(item), kinds)
            return values if values.kind in ("array", "any") else FieldType("array", values)
        if receiver.kind not in ("map", "object"):
            message = NEEDS_MAP if name == "get" else NEEDS_MAP_OR_OBJECT
            self.mismatch(
                message.format(what=node.name, text=_label(node.receiver), kind=receiver.words),
                node.receiver,
            )
            return ANY
        if receiver.kind == "map":
            values = receiver.items or ANY
        elif name == "get" and node.args and isinstance(node.args[0], ast.Literal):
            key = node.args[0].value
            values = ANY
            if isinstance(key, str) and receiver.ref is not None:
                collection, prefix = receiver.ref
                path = f"{prefix}.{key}" if prefix else key
                values = self.schema.declared(collection, path) or ANY
        elif name == "values" and receiver.ref is not None:
            collection, prefix = receiver.ref
            declared = [
                self.schema.declared(collection, f"{prefix}.{child}" if prefix else child)
                for child in self.schema.children(collection, prefix)
            ]
            known = [kind for kind in declared if kind is not None]
            first = known[0] if known else ANY
            same = all(_same_kind(first, kind) for kind in known[1:])
            values = first if same else MIXED  # an object's fields need not share a type
        else:
            values = ANY
        if name == "get":
            return values
        return FieldType("array", STRING if name == "keys" else values)

    def _list_method(
        self, node: ast.Method, receiver: FieldType, item: FieldType, kinds: list[FieldType]
    ) -> FieldType:
        name = node.name.lower()
        if not self.needs_list(node.name, node.receiver, receiver):
            return ANY
        if name in ("intersects", "intersection", "subsetof", "supersetof") and node.args:
            self.needs_list(node.name, node.args[0], kinds[0])
        if name in ("filter", "distinct", "intersection"):
            return receiver
        if name == "head":
            return item
        return BOOLEAN  # includes, intersects, subsetOf, supersetOf, exists

    def _item_method(
        self, node: ast.Method, receiver: FieldType, item: FieldType, kinds: list[FieldType]
    ) -> FieldType:
        name = node.name.lower()
        if name == "map":
            body = kinds[0] if kinds else ANY
            if receiver.kind == "map":  # M.map((K, G) => mapEntry(K, v)) builds a map again
                return body if body.kind == "map" else FieldType("map", body)
            return FieldType("array", body)
        # any value has items: a list its own, anything else itself (the evaluator's items_of)
        if name in ("sum", "average", "min", "max"):
            values = kinds[0] if kinds else item
            self.needs_number(node.name, node.args[0] if node.args else node.receiver, values)
            return NUMBER if name in ("sum", "average") or values.kind != "integer" else values
        listed = receiver if receiver.kind in ("array", "any") else FieldType("array", receiver)
        if name in ("topn", "bottomn"):
            if kinds:
                self.needs_number(node.name, node.args[0], kinds[0])
            if len(kinds) > 1:
                self.needs_number(node.name, node.args[1], kinds[1])
            return listed
        if name == "filter":
            return listed
        if name == "exists":
            return BOOLEAN
        return FieldType("map", FieldType("array", item))  # groupBy

    def _filter(self, node: ast.Filter, env: _Env) -> FieldType:
        source = self.infer(node.source, env)
        inner = env.with_item(_item_type(source))
        self.entered(inner, node)
        self.infer(node.predicate, inner)
        return source if source.kind == "array" else FieldType("array", source)

    def _lambda(self, node: ast.Lambda, env: _Env) -> FieldType:
        roots = (self.schema.root(PROFILE), FieldType("array", self.schema.root(EVENT)))
        self.infer(node.body, env.with_vars(**dict(zip(node.params, roots, strict=False))))
        return BOOLEAN

    def _let(self, node: ast.Let, env: _Env) -> FieldType:
        value = self.infer(node.value, env)
        return self.infer(node.body, env.with_vars(**{node.name: value}))

    def _occurs(self, node: ast.Occurs, env: _Env) -> FieldType:
        subject = self.infer(node.subject, env)
        self.needs_time("occurs", node.subject, subject, one=False)
        self.window(node.window, env)
        return BOOLEAN

    def window(self, window: ast.TimeWindow, env: _Env) -> None:
        for anchor in (window.anchor, window.end):
            if anchor is None or isinstance(anchor, ast.TimeWord | ast.TimePeriod):
                continue
            kind = self.infer(anchor, env)
            self.needs_time("A time reference", anchor, kind, one=True)
        if window.amount is not None and window.unit is not None:
            try:
                shift(datetime.now(UTC), -window.amount, window.unit)
                shift(datetime.now(UTC), window.amount, window.unit)
            except (OverflowError, ValueError, KeyError):
                self.invalid(TOO_FAR, window)

    def declare(self, decls: tuple[ast.VarDecl, ...], env: _Env) -> _Env:
        start = env.depth
        for decl in decls:
            source = self.infer(decl.source, env)
            # A source read from an earlier variable (I from X.items) is one level deeper than
            # that variable; any other source starts again from the select's own level.
            nested = _root_var(decl.source)
            outer = env.var_depths.get(nested, start) if nested else start
            env = env.with_loop_var(decl.name, _item_type(source), outer + 1)
            self.entered(env, decl)
            if decl.where is not None:
                self.infer(decl.where, env)
        return env

    def _select(self, node: ast.Select, env: _Env) -> FieldType:
        inner = self.declare(node.variables, env)
        if len(node.variables) == 1:
            return FieldType("array", inner.variables.get(node.variables[0].name, ANY))
        return FieldType("array", FieldType("array"))

    def _quantified(self, node: ast.Quantified, env: _Env) -> FieldType:
        self.declare(node.variables, env)
        return BOOLEAN

    def _aggregate(self, node: ast.Aggregate, env: _Env) -> FieldType:
        inner = self.declare(node.variables, env)
        values = (
            self.infer(node.expr, inner)
            if node.expr is not None
            else inner.variables.get(node.variables[0].name, ANY)
        )
        self.needs_number(node.function, node.expr or node, values)
        return NUMBER

    def _chain(self, node: ast.Chain, env: _Env) -> FieldType:
        events = self.infer(node.events, env)
        item = _item_type(events)
        inner = env.with_item(item)
        self.entered(inner, node)
        order_by = ast.Field(node.order_by, None, span=node.span)
        self.needs_time("chain", order_by, self.member(item, order_by), one=True)
        try:  # the labels a WHEN names, resolved as the evaluator and the compiler do
            whens = list(chain_plan(node).whens)
        except PQLChainLabelError as error:
            self.problems.append(Problem("error", _sentence(str(error)), "chain-label", error.span))
            whens = [None] * len(node.steps)
        times = {label_variable(step.label): DATE_TIME for step in node.steps}
        for step, when in zip(node.steps, whens, strict=True):
            self.infer(step.what, inner)
            if when is not None:
                self.window(when, inner.with_vars(**times))
            if step.where is not None:
                self.infer(step.where, inner)
        return BOOLEAN


_INFER: dict[type, Any] = {
    ast.Literal: _Checker._literal,
    ast.ListLiteral: _Checker._list_literal,
    ast.ObjectLiteral: _Checker._object_literal,
    ast.Param: _Checker._param,
    ast.Var: _Checker._var,
    ast.Up: _Checker._up,
    ast.Field: _Checker._field,
    ast.Binary: _Checker._binary,
    ast.Negate: _Checker._negate,
    ast.Not: _Checker._boolean_children,
    ast.And: _Checker._boolean_children,
    ast.Or: _Checker._boolean_children,
    ast.Call: _Checker._call,
    ast.Method: _Checker._method,
    ast.Filter: _Checker._filter,
    ast.Lambda: _Checker._lambda,
    ast.Let: _Checker._let,
    ast.Occurs: _Checker._occurs,
    ast.Select: _Checker._select,
    ast.Quantified: _Checker._quantified,
    ast.Aggregate: _Checker._aggregate,
    ast.Chain: _Checker._chain,
}

_METHODS: dict[str, Any] = {
    **dict.fromkeys(TEXT_METHODS, _Checker._text_method),
    **dict.fromkeys(TIME_METHODS, _Checker._time_method),
    **dict.fromkeys(("isnull", "isnotnull"), _Checker._null_method),
    "count": _Checker._count_method,
    **dict.fromkeys(MAP_METHODS, _Checker._map_method),
    **dict.fromkeys(
        ("intersects", "intersection", "subsetof", "supersetof", "includes", "distinct", "head"),
        _Checker._list_method,
    ),
    **dict.fromkeys(ITEM_ARG_METHODS, _Checker._item_method),
}


def _root_var(node: ast.Node | None) -> str | None:
    """The variable a path starts from (``X`` in ``X.productListItems``), if any."""
    while node is not None:
        if isinstance(node, ast.Var):
            return node.name
        if isinstance(node, ast.Field):
            node = node.obj
        elif isinstance(node, ast.Method):
            node = node.receiver
        elif isinstance(node, ast.Filter):
            node = node.source
        else:
            return None
    return None


def _item_type(kind: FieldType) -> FieldType:
    if kind.kind == "array":
        return kind.items or ANY
    if kind.kind == "any":
        return ANY
    return kind


def _scalar(kind: FieldType) -> FieldType:
    """A list compared with a value compares its items (§3.3): use the item type."""
    while kind.kind == "array" and kind.items is not None:
        kind = kind.items
    return kind


def _known(kind: FieldType) -> bool:
    return kind.kind != "any"


def _same_kind(a: FieldType, b: FieldType) -> bool:
    return (
        a.kind == b.kind
        or (a.kind in NUMBERS and b.kind in NUMBERS)
        or (a.kind in TIMES and b.kind in TIMES)
    )


def _literal_text(node: ast.Node) -> str | None:
    return node.value if isinstance(node, ast.Literal) and isinstance(node.value, str) else None


def _compatible(
    left: FieldType, right: FieldType, left_node: ast.Node, right_node: ast.Node
) -> bool:
    """Can the evaluator coerce one side to the other for every value of these types? Text
    only converts when it is written in the definition and reads as the other type."""
    a, b = left.kind, right.kind
    if _same_kind(left, right):
        return True
    if b == "string":
        other, text = a, _literal_text(right_node)
    elif a == "string":
        other, text = b, _literal_text(left_node)
    else:
        return (a in TIMES and b in NUMBERS) or (b in TIMES and a in NUMBERS)
    if text is None:
        return False
    if other == "boolean":
        return text in ("true", "false")
    if other in NUMBERS:
        try:
            float(text)
        except ValueError:
            return False
        return True
    if other in TIMES:
        return parse_timestamp(text) is not None
    return False


def _sentence(text: str) -> str:
    """The evaluator's lower-case messages as the checker's sentences."""
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


def _label(node: ast.Node | None) -> str:
    if node is None:
        return ""
    try:
        return to_text(node)
    except (TypeError, ValueError):
        return type(node).__name__
