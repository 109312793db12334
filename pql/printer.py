"""Canonical PQL text for a syntax tree: ``parse(to_text(node)) == node``.

Canonical text: lower-case keywords (``and``, ``chain``, ``not(…)``), upper-case chain clauses
(``WHAT``, ``WHEN``, ``COUNT``, ``WHERE``), one space around binary operators, ``, `` between
arguments, ``where`` rather than ``:``, the method form ``a.matches(re)``, and only the
parentheses that precedence requires.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from pql import ast
from pql.tokens import RESERVED, TAIL_WORDS

# Binding strength, loosest first (spec/pql.md §4, read upside down).
BINDER, OR, AND, NOT, COMPARE, ADD, MUL, UNARY, POSTFIX = range(1, 10)

BINARY_PRECEDENCE = {
    "=": COMPARE, "!=": COMPARE, "<": COMPARE, "<=": COMPARE, ">": COMPARE, ">=": COMPARE,
    "like": COMPARE, "in": COMPARE, "notIn": COMPARE,
    "+": ADD, "-": ADD, "*": MUL, "/": MUL, "%": MUL,
}  # fmt: skip

_FIRST_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def to_text(node: ast.Node) -> str:
    """The canonical PQL text of ``node``."""
    return _text(node, 0)


def _text(node: ast.Node, min_prec: int) -> str:
    text, prec = _render(node)
    return f"({text})" if prec < min_prec else text


def _render(node: ast.Node) -> tuple[str, int]:
    render = _RENDERERS.get(type(node))
    if render is None:
        raise TypeError(f"cannot print {type(node).__name__}")
    return render(node)


def literal_text(value: ast.LiteralValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"PQL has no spelling for the number {value}")
    return repr(value)


def _literal(node: ast.Literal) -> tuple[str, int]:
    value = node.value
    text = literal_text(value)
    negative = not isinstance(value, bool | str) and (value < 0 or text.startswith("-"))
    return text, UNARY if negative else POSTFIX


def _list(node: ast.ListLiteral) -> tuple[str, int]:
    return "[" + ", ".join(_text(item, 0) for item in node.items) + "]", POSTFIX


def _object(node: ast.ObjectLiteral) -> tuple[str, int]:
    entries = ", ".join(f"{literal_text(key)}: {_text(value, 0)}" for key, value in node.entries)
    return "{" + entries + "}", POSTFIX


def _field(node: ast.Field) -> tuple[str, int]:
    obj = node.obj
    if obj is None:
        # A root field named like a keyword can only be written through $1.
        if node.name.lower() in RESERVED:
            return f"$1.{node.name}", POSTFIX
        return node.name, POSTFIX
    if isinstance(obj, ast.Up):
        return "^" * obj.levels + "." + node.name, POSTFIX
    return _text(obj, POSTFIX) + "." + node.name, POSTFIX


def _param(node: ast.Param) -> tuple[str, int]:
    return f"${node.position}", POSTFIX


def _var(node: ast.Var) -> tuple[str, int]:
    return node.name, POSTFIX


def _up(node: ast.Up) -> tuple[str, int]:
    return "^" * node.levels, POSTFIX


def _binary(node: ast.Binary) -> tuple[str, int]:
    prec = BINARY_PRECEDENCE[node.op]
    if prec == COMPARE:  # not associative: both sides tighter
        left, right = _text(node.left, ADD), _text(node.right, ADD)
    else:
        left, right = _text(node.left, prec), _text(node.right, prec + 1)
    return f"{left} {node.op} {right}", prec


def _negate(node: ast.Negate) -> tuple[str, int]:
    operand = node.operand
    if isinstance(operand, ast.Literal) and not isinstance(operand.value, bool | str):
        return f"-({literal_text(operand.value)})", UNARY  # `-3` would read as the literal -3
    return "-" + _text(operand, UNARY), UNARY


def _not(node: ast.Not) -> tuple[str, int]:
    return f"not({_text(node.operand, 0)})", NOT


def _and(node: ast.And) -> tuple[str, int]:
    return " and ".join(_text(op, NOT) for op in node.operands), AND


def _or(node: ast.Or) -> tuple[str, int]:
    return " or ".join(_text(op, AND) for op in node.operands), OR


def _args(args: tuple[ast.Node, ...]) -> str:
    return "(" + ", ".join(_text(arg, 0) for arg in args) + ")"


def _call(node: ast.Call) -> tuple[str, int]:
    return node.name + _args(node.args), POSTFIX


def _method(node: ast.Method) -> tuple[str, int]:
    return f"{_text(node.receiver, POSTFIX)}.{node.name}{_args(node.args)}", POSTFIX


def _filter(node: ast.Filter) -> tuple[str, int]:
    return f"{_text(node.source, POSTFIX)}[{_text(node.predicate, 0)}]", POSTFIX


def _lambda(node: ast.Lambda) -> tuple[str, int]:
    return f"({', '.join(node.params)}) => {_text(node.body, 0)}", BINDER


def _time_word(node: ast.TimeWord) -> tuple[str, int]:
    return node.word, POSTFIX


def _time_period(node: ast.TimePeriod) -> tuple[str, int]:
    return f"{node.relative} {node.unit}", POSTFIX


def _anchor(node: ast.Node) -> str:
    if isinstance(node, ast.TimeWord | ast.TimePeriod):
        return _render(node)[0]
    text = _text(node, ADD)
    first = _FIRST_WORD.match(text)
    if first and first.group().lower() in TAIL_WORDS:
        return f"({text})"  # a field called `last` must not read as a time word
    return text


def window_text(window: ast.TimeWindow) -> str:
    """The text of an ``occurs`` tail / ``WHEN(…)`` content."""
    relation = window.relation
    anchor = _anchor(window.anchor)
    if relation == "between":
        end = _anchor(window.end) if window.end is not None else ""
        return f"between {anchor} and {end}"
    if relation == "on":
        if isinstance(window.anchor, ast.TimeWord | ast.TimePeriod):
            return anchor
        return f"on {anchor}"
    if window.op is not None:
        return f"{window.op} {window.amount} {window.unit} {relation} {anchor}"
    return f"{relation} {anchor}"


def _time_window(node: ast.TimeWindow) -> tuple[str, int]:
    return window_text(node), COMPARE


def _occurs(node: ast.Occurs) -> tuple[str, int]:
    return f"{_text(node.subject, ADD)} occurs {window_text(node.window)}", COMPARE


def _var_decl(node: ast.VarDecl) -> tuple[str, int]:
    text = f"{node.name} from {_text(node.source, ADD)}"
    if node.where is not None:
        text += f" where {_text(node.where, OR)}"
    return text, BINDER


def _decls(variables: tuple[ast.VarDecl, ...]) -> str:
    return ", ".join(_var_decl(decl)[0] for decl in variables)


def _select(node: ast.Select) -> tuple[str, int]:
    return "select " + _decls(node.variables), BINDER


def _quantified(node: ast.Quantified) -> tuple[str, int]:
    return f"{node.quantifier} {_decls(node.variables)}", BINDER


def _aggregate(node: ast.Aggregate) -> tuple[str, int]:
    if node.expr is None:
        return f"{node.function} {_decls(node.variables)}", BINDER
    return f"{node.function} {_text(node.expr, ADD)} over {_decls(node.variables)}", BINDER


def _let(node: ast.Let) -> tuple[str, int]:
    # the value is parenthesised unless it is arithmetic or tighter, so its `in` is the let's
    return f"let {node.name} = {_text(node.value, ADD)} in {_text(node.body, 0)}", BINDER


def _chain_step(node: ast.ChainStep) -> tuple[str, int]:
    text = f"{node.label}: WHAT({_text(node.what, 0)})"
    if node.when is not None:
        text += f" WHEN({window_text(node.when)})"
    if node.count is not None:
        text += f" COUNT({node.count})"
    if node.where is not None:
        text += f" WHERE({_text(node.where, 0)})"
    return text, POSTFIX


def _chain(node: ast.Chain) -> tuple[str, int]:
    steps = ", ".join(_chain_step(step)[0] for step in node.steps)
    return f"chain({_text(node.events, 0)}, {node.order_by}, [{steps}])", POSTFIX


_RENDERERS: dict[type, Callable[[Any], tuple[str, int]]] = {
    ast.Literal: _literal,
    ast.ListLiteral: _list,
    ast.ObjectLiteral: _object,
    ast.Field: _field,
    ast.Param: _param,
    ast.Var: _var,
    ast.Up: _up,
    ast.Binary: _binary,
    ast.Negate: _negate,
    ast.Not: _not,
    ast.And: _and,
    ast.Or: _or,
    ast.Call: _call,
    ast.Method: _method,
    ast.Filter: _filter,
    ast.Lambda: _lambda,
    ast.TimeWord: _time_word,
    ast.TimePeriod: _time_period,
    ast.TimeWindow: _time_window,
    ast.Occurs: _occurs,
    ast.VarDecl: _var_decl,
    ast.Select: _select,
    ast.Quantified: _quantified,
    ast.Aggregate: _aggregate,
    ast.Let: _let,
    ast.ChainStep: _chain_step,
    ast.Chain: _chain,
}
