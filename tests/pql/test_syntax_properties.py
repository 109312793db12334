"""Properties of the syntax layer, with hypothesis: random text only ever raises ``PQLError``;
generated trees survive the printer and pql/json unchanged."""

from __future__ import annotations

import contextlib
import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pql
from pql import ast
from pql.functions import FUNCTIONS
from pql.tokens import AGGREGATE_WORDS, RESERVED, TIME_UNITS

# --- random text -------------------------------------------------------------------------------

VOCABULARY = [
    "a", "b", "X", "Y", "xEvent", "timestamp", "person", ".", ",", "(", ")", "[", "]", "{", "}",
    ":", "^", "$1", "$2", "=>", "=", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "!",
    "and", "or", "not", "in", "notIn", "like", "matches", "occurs", "select", "exists", "forall",
    "from", "where", "let", "sum", "over", "average", "min", "max", "chain", "WHAT", "WHEN",
    "COUNT", "WHERE", "true", "false", "if", "date", "count", "exists", "startsWith", "between",
    "before", "after", "on", "now", "today", "last", "this", "days", "month", "1", "2.5", ".5",
    '"s"', '"', "'", "\\", "\n", " ", "#", "inSegment", "map", "mapEntry", "$0", "1e999",
    "9" * 400, "null", "=>", "((", "]]",
]  # fmt: skip


@given(st.text(max_size=200))
@settings(max_examples=300)
def test_any_text_raises_only_pql_errors(text: str) -> None:
    try:
        node = pql.parse(text)
    except pql.PQLError:
        return
    assert pql.parse(pql.to_text(node)) == node


@given(st.lists(st.sampled_from(VOCABULARY), max_size=40).map(" ".join))
@settings(max_examples=800)
def test_token_soup_raises_only_pql_errors(text: str) -> None:
    try:
        node = pql.parse(text)
    except pql.PQLError:
        return
    canonical = pql.to_text(node)
    assert pql.parse(canonical) == node
    assert pql.from_json(json.loads(json.dumps(pql.to_json(node)))) == node


@given(st.integers(min_value=1, max_value=3000), st.sampled_from(["(", "[", "not ", "-", "!"]))
@settings(max_examples=40)
def test_deep_nesting_is_a_clear_error_not_a_crash(depth: int, opener: str) -> None:
    closer = {"(": ")", "[": "]"}.get(opener, "")
    text = opener * depth + "a" + closer * depth
    try:
        pql.parse(text)
    except pql.PQLSyntaxError as error:
        assert "too deeply" in error.message


def test_long_paths_and_sums_are_bounded() -> None:
    for text in ("a" + ".b" * 5000, " + ".join(["1"] * 5000) + " = 2"):
        try:
            pql.parse(text)
        except pql.PQLSyntaxError as error:
            assert "too deeply" in error.message
        else:
            raise AssertionError("expected a depth error")


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda children: st.lists(children, max_size=3)
                    | st.dictionaries(st.sampled_from(["nodeType", "fnName", "params",
                                                       "fieldName", "object", "value",
                                                       "literalType", "variables", "varName",
                                                       "from", "where", "position"]),
                                      children, max_size=4),
                    max_leaves=20))  # fmt: skip
@settings(max_examples=300)
def test_random_json_raises_only_pql_errors(obj: object) -> None:
    with contextlib.suppress(pql.PQLError):
        pql.from_json(obj)  # type: ignore[arg-type]


# --- generated trees ---------------------------------------------------------------------------

FIELD_NAMES = st.sampled_from(
    ["a", "b", "person", "timestamp", "_repo", "x1", "now", "last", "sum", "max", "day"]
)
VAR_NAMES = ["X", "Y", "Z", "K", "G", "Order1"]
METHODS = sorted(name for name, fn in FUNCTIONS.items() if fn.kind == "method")
CALLS = sorted(name for name, fn in FUNCTIONS.items() if fn.kind == "function")
UNITS = st.sampled_from(sorted(TIME_UNITS))
COMPARISONS = ["=", "!=", "<", "<=", ">", ">="]

assert not {"a", "b", "person"} & RESERVED and "sum" in AGGREGATE_WORDS

literals = (
    st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=False, allow_infinity=False).filter(math.isfinite)
    | st.text(max_size=8)
).map(ast.Literal)


@st.composite
def trees(
    draw: st.DrawFn, budget: int = 4, scope: tuple[str, ...] = (), items: int = 0
) -> ast.Node:
    """A tree the parser could have produced: variables only where bound, ``^`` only inside
    filters, ``$1.x`` never at the top level."""
    if budget <= 0:
        return draw(_leaves(scope, items))
    sub = budget - 1

    def child(inner_scope: tuple[str, ...] = scope, inner_items: int = items) -> ast.Node:
        return draw(trees(sub, inner_scope, inner_items))

    kind = draw(st.integers(min_value=0, max_value=19))
    if kind == 0:
        return ast.Binary(draw(st.sampled_from(sorted(pql.tokens.BINARY_OPS))), child(), child())
    if kind == 1:
        return ast.And(tuple(child() for _ in range(draw(st.integers(2, 3)))))
    if kind == 2:
        return ast.Or(tuple(child() for _ in range(draw(st.integers(2, 3)))))
    if kind == 3:
        return ast.Not(child())
    if kind == 4:
        return ast.Negate(child())
    if kind == 5:
        obj = child()
        if isinstance(obj, ast.Param) and obj.position == 1 and items == 0:
            obj = ast.Param(2)
        return ast.Field(draw(FIELD_NAMES), obj)
    if kind == 6:
        name = draw(st.sampled_from(METHODS))
        fn = FUNCTIONS[name]
        count = draw(st.integers(fn.min_args, fn.max_args if fn.max_args is not None else 3))
        args = tuple(
            child(inner_items=items + 1 if i in fn.item_args else items) for i in range(count)
        )
        return ast.Method(name, child(), args)
    if kind == 7:
        name = draw(st.sampled_from(CALLS))
        fn = FUNCTIONS[name]
        return ast.Call(name, tuple(child() for _ in range(fn.min_args)))
    if kind == 8:
        return ast.Filter(child(), child(inner_items=items + 1))
    if kind == 9:
        params = tuple(draw(st.lists(st.sampled_from(VAR_NAMES), max_size=2, unique=True)))
        return ast.Lambda(params, child(inner_scope=scope + params))
    if kind == 10:
        return ast.Occurs(child(), draw(windows(sub, scope, items)))
    if kind in (11, 12, 13):
        decls, _ = draw(var_decls(sub, scope, items))
        if kind == 11:
            return ast.Select(decls)
        return ast.Quantified(draw(st.sampled_from(["exists", "forall"])), decls)
    if kind == 14:
        decls, bound = draw(var_decls(sub, scope, items))
        expr = draw(st.none() | trees(sub, bound, items))
        return ast.Aggregate(draw(st.sampled_from(sorted(AGGREGATE_WORDS))), expr, decls)
    if kind == 15:
        name = draw(st.sampled_from(VAR_NAMES))
        return ast.Let(name, child(), child(inner_scope=scope + (name,)))
    if kind == 16:
        steps = []
        for label in draw(st.lists(st.sampled_from(["A", "B", "C0"]), min_size=1, max_size=2)):
            steps.append(
                ast.ChainStep(
                    label,
                    child(inner_items=items + 1),
                    draw(st.none() | windows(sub, scope, items + 1)),
                    draw(st.none() | st.integers(0, 9)),
                    draw(st.none() | trees(sub, scope, items + 1)),
                )
            )
        return ast.Chain(child(), "timestamp", tuple(steps))
    if kind == 17:
        return ast.ListLiteral(tuple(child() for _ in range(draw(st.integers(0, 3)))))
    if kind == 18:
        keys = draw(st.lists(st.text(max_size=4), max_size=2))
        return ast.ObjectLiteral(tuple((key, child()) for key in keys))
    return draw(_leaves(scope, items))


def _leaves(scope: tuple[str, ...], items: int) -> st.SearchStrategy[ast.Node]:
    options: list[st.SearchStrategy[ast.Node]] = [
        literals,
        FIELD_NAMES.map(ast.Field),
        st.integers(1, 3).map(ast.Param),
    ]
    if scope:
        options.append(st.sampled_from(scope).map(ast.Var))
    if items:
        options.append(st.builds(ast.Field, FIELD_NAMES, st.integers(1, items).map(ast.Up)))
    return st.one_of(options)


@st.composite
def windows(draw: st.DrawFn, budget: int, scope: tuple[str, ...], items: int) -> ast.TimeWindow:
    def anchor() -> ast.Node:
        return draw(
            st.builds(ast.TimeWord, st.sampled_from(["now", "today", "yesterday", "tomorrow"]))
            | st.builds(ast.TimePeriod, st.sampled_from(["this", "last", "next"]), UNITS)
            | trees(budget - 1, scope, items)
        )

    relation = draw(st.sampled_from(["on", "before", "after", "from", "between"]))
    if relation == "between":
        return ast.TimeWindow("between", anchor(), anchor())
    if relation != "on" and draw(st.booleans()):
        return ast.TimeWindow(
            relation, anchor(), None, draw(st.sampled_from(COMPARISONS)),
            draw(st.integers(0, 1000)), draw(UNITS),
        )  # fmt: skip
    return ast.TimeWindow(relation, anchor())


@st.composite
def var_decls(
    draw: st.DrawFn, budget: int, scope: tuple[str, ...], items: int
) -> tuple[tuple[ast.VarDecl, ...], tuple[str, ...]]:
    names = draw(st.lists(st.sampled_from(VAR_NAMES), min_size=1, max_size=2, unique=True))
    decls = []
    for name in names:
        source = draw(trees(budget - 1, scope, items))
        scope = scope + (name,)
        where = draw(st.none() | trees(budget - 1, scope, items))
        decls.append(ast.VarDecl(name, source, where))
    return tuple(decls), scope


@given(trees())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_generated_trees_round_trip_through_text(node: ast.Node) -> None:
    text = pql.to_text(node)
    assert pql.parse(text) == node, text
    assert pql.to_text(pql.parse(text)) == text


@given(trees())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_generated_trees_round_trip_through_json(node: ast.Node) -> None:
    encoded = json.loads(json.dumps(pql.to_json(node)))
    assert pql.from_json(encoded) == node
    assert pql.to_json(pql.from_json(encoded)) == encoded
