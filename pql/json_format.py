"""pql/json (spec/pql.md §10): the JSON expression tree, to and from ``pql.ast``.

Adobe's node types: ``fnApply`` (``fnName`` + ``params``; a method's receiver is the first
param), ``fnCreate`` (lambda), ``literal`` (``literalType`` + native ``value``), ``fieldLookup``,
``parameterReference``, ``varRef``, ``varDecl`` (``from``, ``where``), ``select``,
``quantification`` (``some``/``all``). Adobe publishes no encoding for the rest, so ours is:

- implicit context: a path's root is ``parameterReference 1`` at the top level (what
  ``/segment/conversion`` emits) and ``varRef "_"`` inside an item context (filters, ``WHAT``,
  item arguments of methods — the old JQ3 encoding);
- ``{"nodeType":"upReference","levels":n}`` for ``^``; ``{"nodeType":"filter","source",
  "predicate"}`` for ``A[P]``; ``{"nodeType":"list","items"}`` for a list with non-literal items
  (all-literal lists are ``literal``/``List``); ``{"nodeType":"object","entries":[{"key",
  "value"}]}``;
- ``occurs`` is ``fnApply`` with params ``[subject, timeWindow]``; ``timeWindow`` has
  ``relation``, ``anchor``, optional ``end``, ``operator``, ``amount``, ``unit``; anchors may be
  ``{"nodeType":"timeWord","word"}`` or ``{"nodeType":"timePeriod","relative","unit"}``;
- ``{"nodeType":"aggregation","fnName","expression"?,"variables"}`` for ``sum … over …``;
  ``{"nodeType":"let","varName","value","body"}``; ``{"nodeType":"chain","events","orderBy",
  "steps":[{"nodeType":"chainStep","label","what","when"?,"count"?,"where"?}]}``;
- unary minus is ``fnApply "-"`` with one param.

Old forms are accepted on input: lower-case ``literalType`` with string values, the
``literal XDMObject "profile"`` root, ``=`` with a third (case-flag) param.
"""

from __future__ import annotations

import json
from typing import Any

from pql import ast
from pql.errors import PQLJSONError
from pql.functions import FUNCTIONS, OPERATORS, Function, unknown_function_message
from pql.parser import MAX_DEPTH
from pql.tokens import (
    BINARY_OPS,
    COMPARISON_OPS,
    DIRECTIONS,
    IDENT_RE,
    MAX_DIGITS,
    PERIOD_WORDS,
    TIME_UNITS,
    TIME_WORDS,
)

JSONDict = dict[str, Any]

# Every nodeType from_json reads ("set" is the old JQ3 name of "select").
NODE_TYPES = frozenset(
    {
        "literal", "list", "object", "fieldLookup", "parameterReference", "varRef",
        "upReference", "fnApply", "filter", "fnCreate", "timeWord", "timePeriod", "timeWindow",
        "varDecl", "select", "set", "quantification", "aggregation", "let", "chain", "chainStep",
    }
)  # fmt: skip

# Node types that only make sense inside a particular parent.
_PARTS = frozenset({"varDecl", "chainStep", "timeWindow", "timeWord", "timePeriod", "upReference"})
EXPRESSIONS = NODE_TYPES - _PARTS
_ANCHORS = EXPRESSIONS | {"timeWord", "timePeriod"}
_WINDOWS = frozenset({"timeWindow"})
_FIELD_OBJECTS = EXPRESSIONS | {"upReference"}

_PROFILE: JSONDict = {"nodeType": "parameterReference", "position": 1}
_ITEM: JSONDict = {"nodeType": "varRef", "varName": "_"}
_QUANTIFIERS = {"exists": "some", "forall": "all"}
_QUANTIFIERS_BACK = {"some": "exists", "all": "forall"}
_AGGREGATES = frozenset({"sum", "average", "min", "max"})
_RELATIONS = DIRECTIONS | {"on", "between"}

NOT_JSON = "not valid JSON: {error}"
NOT_A_NODE = "expected a pql/json node (an object with a nodeType)"
UNKNOWN_NODE_TYPE = "unknown nodeType '{node_type}'"
MISSING_FIELD = "'{node_type}' needs a '{field}'"
BAD_FIELD = "'{field}' of '{node_type}' must be {expected}"
BAD_NAME = "'{name}' is not a valid PQL name (letters, digits and _, not starting with a digit)"
BAD_LITERAL = "a literal of type {literal_type} cannot hold {value!r}"
UNKNOWN_LITERAL_TYPE = "unknown literalType '{literal_type}'"
WRONG_PARAMS = "'{name}' takes {expected}, not {got}"
UNSUPPORTED_QUANTIFIER = "quantifier '{quantifier}' is not supported (use 'some' or 'all')"
ITEM_OUTSIDE_CONTEXT = "varRef '_' (the current item) is only valid inside a filter"
UP_OUTSIDE_FILTER = "an upReference of {levels} level(s) needs as many enclosing filters"
MISPLACED = "a '{node_type}' node cannot stand here"
TOO_DEEP = "the tree nests too deeply (more than {limit} levels)"


# --- to_json -----------------------------------------------------------------------------------


def to_json(node: ast.Node) -> JSONDict:
    """The pql/json tree of ``node`` (a dict; ``json.dumps`` it for ``format: pql/json``)."""
    return _Encoder().encode(node, 0)


class _Encoder:
    def encode(self, node: ast.Node, depth: int) -> JSONDict:
        method = getattr(self, "_" + type(node).__name__)
        return method(node, depth)  # type: ignore[no-any-return]

    def _many(self, nodes: tuple[ast.Node, ...], depth: int) -> list[JSONDict]:
        return [self.encode(node, depth) for node in nodes]

    def _Literal(self, node: ast.Literal, depth: int) -> JSONDict:
        return {"nodeType": "literal", "literalType": node.literal_type, "value": node.value}

    def _ListLiteral(self, node: ast.ListLiteral, depth: int) -> JSONDict:
        plain = _plain_list(node)
        if plain is not None:
            return {"nodeType": "literal", "literalType": "List", "value": plain}
        return {"nodeType": "list", "items": self._many(node.items, depth)}

    def _ObjectLiteral(self, node: ast.ObjectLiteral, depth: int) -> JSONDict:
        entries = [{"key": key, "value": self.encode(value, depth)} for key, value in node.entries]
        return {"nodeType": "object", "entries": entries}

    def _Field(self, node: ast.Field, depth: int) -> JSONDict:
        if node.obj is None:
            obj = dict(_PROFILE if depth == 0 else _ITEM)
        else:
            obj = self.encode(node.obj, depth)
        return {"nodeType": "fieldLookup", "fieldName": node.name, "object": obj}

    def _Param(self, node: ast.Param, depth: int) -> JSONDict:
        return {"nodeType": "parameterReference", "position": node.position}

    def _Var(self, node: ast.Var, depth: int) -> JSONDict:
        return {"nodeType": "varRef", "varName": node.name}

    def _Up(self, node: ast.Up, depth: int) -> JSONDict:
        return {"nodeType": "upReference", "levels": node.levels}

    def _apply(self, name: str, params: list[JSONDict]) -> JSONDict:
        return {"nodeType": "fnApply", "fnName": name, "params": params}

    def _Binary(self, node: ast.Binary, depth: int) -> JSONDict:
        return self._apply(node.op, self._many((node.left, node.right), depth))

    def _Negate(self, node: ast.Negate, depth: int) -> JSONDict:
        return self._apply("-", [self.encode(node.operand, depth)])

    def _Not(self, node: ast.Not, depth: int) -> JSONDict:
        return self._apply("not", [self.encode(node.operand, depth)])

    def _And(self, node: ast.And, depth: int) -> JSONDict:
        return self._apply("and", self._many(node.operands, depth))

    def _Or(self, node: ast.Or, depth: int) -> JSONDict:
        return self._apply("or", self._many(node.operands, depth))

    def _Call(self, node: ast.Call, depth: int) -> JSONDict:
        return self._apply(node.name, self._many(node.args, depth))

    def _Method(self, node: ast.Method, depth: int) -> JSONDict:
        fn = FUNCTIONS.get(node.name)
        item_args = fn.item_args if fn else frozenset()
        params = [self.encode(node.receiver, depth)]
        params += [
            self.encode(arg, depth + 1 if index in item_args else depth)
            for index, arg in enumerate(node.args)
        ]
        return self._apply(node.name, params)

    def _Filter(self, node: ast.Filter, depth: int) -> JSONDict:
        return {
            "nodeType": "filter",
            "source": self.encode(node.source, depth),
            "predicate": self.encode(node.predicate, depth + 1),
        }

    def _Lambda(self, node: ast.Lambda, depth: int) -> JSONDict:
        return {
            "nodeType": "fnCreate",
            "params": [{"varName": name} for name in node.params],
            "body": self.encode(node.body, depth),
        }

    def _TimeWord(self, node: ast.TimeWord, depth: int) -> JSONDict:
        return {"nodeType": "timeWord", "word": node.word}

    def _TimePeriod(self, node: ast.TimePeriod, depth: int) -> JSONDict:
        return {"nodeType": "timePeriod", "relative": node.relative, "unit": node.unit}

    def _TimeWindow(self, node: ast.TimeWindow, depth: int) -> JSONDict:
        out: JSONDict = {"nodeType": "timeWindow", "relation": node.relation}
        if node.op is not None:
            out["operator"] = node.op
            out["amount"] = node.amount
            out["unit"] = node.unit
        out["anchor"] = self.encode(node.anchor, depth)
        if node.end is not None:
            out["end"] = self.encode(node.end, depth)
        return out

    def _Occurs(self, node: ast.Occurs, depth: int) -> JSONDict:
        return self._apply(
            "occurs", [self.encode(node.subject, depth), self.encode(node.window, depth)]
        )

    def _VarDecl(self, node: ast.VarDecl, depth: int) -> JSONDict:
        out: JSONDict = {
            "nodeType": "varDecl",
            "varName": node.name,
            "from": self.encode(node.source, depth),
        }
        if node.where is not None:
            out["where"] = self.encode(node.where, depth)
        return out

    def _Select(self, node: ast.Select, depth: int) -> JSONDict:
        return {"nodeType": "select", "variables": self._many(node.variables, depth)}

    def _Quantified(self, node: ast.Quantified, depth: int) -> JSONDict:
        return {
            "nodeType": "quantification",
            "quantifier": _QUANTIFIERS[node.quantifier],
            "variables": self._many(node.variables, depth),
        }

    def _Aggregate(self, node: ast.Aggregate, depth: int) -> JSONDict:
        out: JSONDict = {"nodeType": "aggregation", "fnName": node.function}
        if node.expr is not None:
            out["expression"] = self.encode(node.expr, depth)
        out["variables"] = self._many(node.variables, depth)
        return out

    def _Let(self, node: ast.Let, depth: int) -> JSONDict:
        return {
            "nodeType": "let",
            "varName": node.name,
            "value": self.encode(node.value, depth),
            "body": self.encode(node.body, depth),
        }

    def _ChainStep(self, node: ast.ChainStep, depth: int) -> JSONDict:
        out: JSONDict = {
            "nodeType": "chainStep",
            "label": node.label,
            "what": self.encode(node.what, depth + 1),
        }
        if node.when is not None:
            out["when"] = self.encode(node.when, depth + 1)
        if node.count is not None:
            out["count"] = node.count
        if node.where is not None:
            out["where"] = self.encode(node.where, depth + 1)
        return out

    def _Chain(self, node: ast.Chain, depth: int) -> JSONDict:
        return {
            "nodeType": "chain",
            "events": self.encode(node.events, depth),
            "orderBy": node.order_by,
            "steps": self._many(node.steps, depth),
        }


def _plain_list(node: ast.ListLiteral) -> list[Any] | None:
    values: list[Any] = []
    for item in node.items:
        if isinstance(item, ast.Literal):
            values.append(item.value)
        elif isinstance(item, ast.ListLiteral):
            inner = _plain_list(item)
            if inner is None:
                return None
            values.append(inner)
        else:
            return None
    return values


# --- from_json ---------------------------------------------------------------------------------


def from_json(obj: JSONDict | str) -> ast.Node:
    """The syntax tree of a pql/json tree (a dict, or its serialised string)."""
    if isinstance(obj, str | bytes):
        try:
            obj = json.loads(obj)
        except (ValueError, RecursionError) as error:
            raise PQLJSONError(NOT_JSON.format(error=error)) from None
    return _Decoder().decode(obj, "", 0, 0)


class _Decoder:
    def decode(
        self,
        obj: Any,
        path: str,
        depth: int,
        level: int,
        allowed: frozenset[str] = EXPRESSIONS,
    ) -> ast.Node:
        """``depth``: item contexts around this node; ``level``: nesting, for the limit;
        ``allowed``: the node types that may stand here."""
        if level > MAX_DEPTH:
            raise PQLJSONError(TOO_DEEP.format(limit=MAX_DEPTH), path)
        if not isinstance(obj, dict) or not isinstance(obj.get("nodeType"), str):
            raise PQLJSONError(NOT_A_NODE, path)
        node_type = obj["nodeType"]
        if node_type not in NODE_TYPES:
            raise PQLJSONError(UNKNOWN_NODE_TYPE.format(node_type=node_type), path)
        if node_type not in allowed:
            raise PQLJSONError(MISPLACED.format(node_type=node_type), path)
        method = getattr(self, "_" + ("select" if node_type == "set" else node_type))
        return method(obj, path, depth, level + 1)  # type: ignore[no-any-return]

    # helpers

    def _get(self, obj: JSONDict, field: str, path: str) -> Any:
        if field not in obj:
            raise PQLJSONError(MISSING_FIELD.format(node_type=obj["nodeType"], field=field), path)
        return obj[field]

    def _typed(self, obj: JSONDict, field: str, kind: type, expected: str, path: str) -> Any:
        value = self._get(obj, field, path)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise PQLJSONError(
                BAD_FIELD.format(field=field, node_type=obj["nodeType"], expected=expected),
                f"{path}/{field}",
            )
        return value

    def _name(self, obj: JSONDict, field: str, path: str) -> str:
        name = self._typed(obj, field, str, "a string", path)
        if not IDENT_RE.match(name):
            raise PQLJSONError(BAD_NAME.format(name=name), f"{path}/{field}")
        return name  # type: ignore[no-any-return]

    def _child(
        self,
        obj: JSONDict,
        field: str,
        path: str,
        depth: int,
        level: int,
        allowed: frozenset[str] = EXPRESSIONS,
    ) -> ast.Node:
        return self.decode(self._get(obj, field, path), f"{path}/{field}", depth, level, allowed)

    def _optional(
        self,
        obj: JSONDict,
        field: str,
        path: str,
        depth: int,
        level: int,
        allowed: frozenset[str] = EXPRESSIONS,
    ) -> ast.Node | None:
        if obj.get(field) is None:
            return None
        return self.decode(obj[field], f"{path}/{field}", depth, level, allowed)

    def _list_of(self, obj: JSONDict, field: str, path: str) -> list[Any]:
        return self._typed(obj, field, list, "a list", path)  # type: ignore[no-any-return]

    # literals

    def _literal(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.Node:
        literal_type = self._typed(obj, "literalType", str, "a string", path)
        value = self._get(obj, "value", path)
        kind = literal_type.lower()
        if kind == "xdmobject":
            if value == "profile" and depth == 0:
                return ast.Param(1)  # old root form; a fieldLookup on it becomes implicit
            raise PQLJSONError(BAD_LITERAL.format(literal_type=literal_type, value=value), path)
        if kind == "list":
            return self._plain(value, f"{path}/value")
        try:
            return ast.Literal(_literal_value(kind, value))
        except KeyError:
            raise PQLJSONError(
                UNKNOWN_LITERAL_TYPE.format(literal_type=literal_type), f"{path}/literalType"
            ) from None
        except (TypeError, ValueError):
            raise PQLJSONError(
                BAD_LITERAL.format(literal_type=literal_type, value=value), f"{path}/value"
            ) from None

    def _plain(self, value: Any, path: str) -> ast.Node:
        if isinstance(value, list):
            return ast.ListLiteral(
                tuple(self._plain(item, f"{path}/{i}") for i, item in enumerate(value))
            )
        if isinstance(value, bool | int | str) or (
            isinstance(value, float) and value == value and abs(value) != float("inf")
        ):
            return ast.Literal(value)
        raise PQLJSONError(BAD_LITERAL.format(literal_type="List", value=value), path)

    def _list(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.Node:
        items = self._list_of(obj, "items", path)
        return ast.ListLiteral(
            tuple(self.decode(item, f"{path}/items/{i}", depth, level) for i, item in
                  enumerate(items))
        )  # fmt: skip

    def _object(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.Node:
        entries = []
        for i, entry in enumerate(self._list_of(obj, "entries", path)):
            where = f"{path}/entries/{i}"
            if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
                raise PQLJSONError(
                    BAD_FIELD.format(field="entries", node_type="object",
                                     expected="a list of {key, value}"), where,
                )  # fmt: skip
            entries.append((entry["key"], self.decode(entry.get("value"), where + "/value",
                                                      depth, level)))  # fmt: skip
        return ast.ObjectLiteral(tuple(entries))

    # references

    def _fieldLookup(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.Node:
        name = self._name(obj, "fieldName", path)
        target = self._get(obj, "object", path)
        if isinstance(target, dict):
            if depth == 0 and (target == _PROFILE or (
                target.get("nodeType") == "literal"
                and str(target.get("literalType", "")).lower() == "xdmobject"
                and target.get("value") == "profile"
            )):  # fmt: skip
                return ast.Field(name)
            if depth > 0 and target == _ITEM:
                return ast.Field(name)
        return ast.Field(name, self.decode(target, f"{path}/object", depth, level, _FIELD_OBJECTS))

    def _parameterReference(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.Node:
        position = self._typed(obj, "position", int, "a whole number", path)
        if position < 1:
            raise PQLJSONError(
                BAD_FIELD.format(field="position", node_type="parameterReference",
                                 expected="1 or more"), path,
            )  # fmt: skip
        return ast.Param(position)

    def _varRef(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.Node:
        name = self._typed(obj, "varName", str, "a string", path)
        if name == "_":
            raise PQLJSONError(ITEM_OUTSIDE_CONTEXT, path)
        if not IDENT_RE.match(name):
            raise PQLJSONError(BAD_NAME.format(name=name), f"{path}/varName")
        return ast.Var(name)

    def _upReference(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.Node:
        levels = self._typed(obj, "levels", int, "a whole number", path)
        if not 1 <= levels <= depth:
            raise PQLJSONError(UP_OUTSIDE_FILTER.format(levels=levels), path)
        return ast.Up(levels)

    # application

    def _fnApply(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.Node:
        if "fnName" not in obj and "function" in obj:
            raise PQLJSONError(
                "the old fnApply form with 'function' (fnCreate) is not supported; use fnName",
                path,
            )
        name = self._typed(obj, "fnName", str, "a string", path)
        raw = self._list_of(obj, "params", path)
        got = len(raw)

        def param(
            index: int, item_depth: int = depth, allowed: frozenset[str] = EXPRESSIONS
        ) -> ast.Node:
            return self.decode(raw[index], f"{path}/params/{index}", item_depth, level, allowed)

        def arity(lo: int, hi: int | None) -> None:
            if got < lo or (hi is not None and got > hi):
                expected = Function(name, "", lo, hi, "", "").arity_text()
                raise PQLJSONError(WRONG_PARAMS.format(name=name, expected=expected, got=got), path)

        if name in ("and", "or"):
            arity(1, None)
            operands = tuple(param(i) for i in range(got))
            if got == 1:
                return operands[0]
            return ast.And(operands) if name == "and" else ast.Or(operands)
        if name == "not":
            arity(1, 1)
            return ast.Not(param(0))
        if name == "-" and got == 1:
            return ast.Negate(param(0))
        if name == "=" and got == 3:  # the XDM form of case-switched string equality
            return ast.Method("equals", param(0), (param(1), param(2)))
        if name in BINARY_OPS:
            arity(2, 2)
            return ast.Binary(name, param(0), param(1))
        if name == "matches" and got == 2:
            return ast.Method("matches", param(0), (param(1),))
        if name == "occurs":
            arity(2, 2)
            window = param(1, allowed=_WINDOWS)
            return ast.Occurs(param(0), window)  # type: ignore[arg-type]
        fn = FUNCTIONS.get(name)
        if fn is None or name in OPERATORS:
            raise PQLJSONError(unknown_function_message(name), f"{path}/fnName")
        if fn.kind == "function":
            arity(fn.min_args, fn.max_args)
            return ast.Call(name, tuple(param(i) for i in range(got)))
        arity(fn.min_args + 1, None if fn.max_args is None else fn.max_args + 1)
        receiver = param(0)
        args = tuple(param(i, depth + 1 if i - 1 in fn.item_args else depth) for i in range(1, got))
        return ast.Method(name, receiver, args)

    def _filter(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.Node:
        source = self._child(obj, "source", path, depth, level)
        return ast.Filter(source, self._child(obj, "predicate", path, depth + 1, level))

    def _fnCreate(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.Node:
        params = []
        for i, param in enumerate(self._list_of(obj, "params", path)):
            if not isinstance(param, dict):
                raise PQLJSONError(
                    BAD_FIELD.format(field="params", node_type="fnCreate",
                                     expected="a list of {varName}"), f"{path}/params/{i}",
                )  # fmt: skip
            params.append(self._name(param, "varName", f"{path}/params/{i}"))
        return ast.Lambda(tuple(params), self._child(obj, "body", path, depth, level))

    # time

    def _timeWord(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.Node:
        word = self._typed(obj, "word", str, "a string", path)
        if word not in TIME_WORDS:
            raise PQLJSONError(
                BAD_FIELD.format(field="word", node_type="timeWord",
                                 expected="now, today, yesterday or tomorrow"), path,
            )  # fmt: skip
        return ast.TimeWord(word)

    def _timePeriod(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.Node:
        relative = self._typed(obj, "relative", str, "a string", path)
        if relative not in PERIOD_WORDS:
            raise PQLJSONError(
                BAD_FIELD.format(field="relative", node_type="timePeriod",
                                 expected="this, last or next"), path,
            )  # fmt: skip
        return ast.TimePeriod(relative, self._unit(obj, path))

    def _unit(self, obj: JSONDict, path: str) -> str:
        unit = self._typed(obj, "unit", str, "a string", path)
        if unit not in TIME_UNITS:
            raise PQLJSONError(
                BAD_FIELD.format(field="unit", node_type=obj["nodeType"], expected="a time unit"),
                f"{path}/unit",
            )
        return unit  # type: ignore[no-any-return]

    def _timeWindow(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.Node:
        relation = self._typed(obj, "relation", str, "a string", path)
        if relation not in _RELATIONS:
            raise PQLJSONError(
                BAD_FIELD.format(field="relation", node_type="timeWindow",
                                 expected="on, before, after, from or between"), path,
            )  # fmt: skip
        anchor = self._child(obj, "anchor", path, depth, level, _ANCHORS)
        end = op = amount = unit = None
        if relation == "between":
            end = self._child(obj, "end", path, depth, level, _ANCHORS)
        elif relation != "on" and obj.get("operator") is not None:
            op = self._typed(obj, "operator", str, "a comparison", path)
            if op not in COMPARISON_OPS:
                raise PQLJSONError(
                    BAD_FIELD.format(field="operator", node_type="timeWindow",
                                     expected="a comparison"), path,
                )  # fmt: skip
            amount = self._typed(obj, "amount", int, "a whole number", path)
            if amount < 0:
                raise PQLJSONError(
                    BAD_FIELD.format(field="amount", node_type="timeWindow",
                                     expected="0 or more"), path,
                )  # fmt: skip
            unit = self._unit(obj, path)
        return ast.TimeWindow(relation, anchor, end, op, amount, unit)

    # variables

    def _varDecl(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.VarDecl:
        name = self._name(obj, "varName", path)
        if name == "_":
            raise PQLJSONError(ITEM_OUTSIDE_CONTEXT, f"{path}/varName")
        source = self._child(obj, "from", path, depth, level)
        return ast.VarDecl(name, source, self._optional(obj, "where", path, depth, level))

    def _decls(self, obj: JSONDict, path: str, depth: int, level: int) -> tuple[ast.VarDecl, ...]:
        raw = self._list_of(obj, "variables", path)
        if not raw:
            raise PQLJSONError(
                BAD_FIELD.format(field="variables", node_type=obj["nodeType"],
                                 expected="a non-empty list"), path,
            )  # fmt: skip
        decls = []
        for i, item in enumerate(raw):
            where = f"{path}/variables/{i}"
            if not isinstance(item, dict) or item.get("nodeType") != "varDecl":
                raise PQLJSONError(
                    BAD_FIELD.format(field="variables", node_type=obj["nodeType"],
                                     expected="a list of varDecl"), where,
                )  # fmt: skip
            decls.append(self._varDecl(item, where, depth, level))
        return tuple(decls)

    def _select(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.Node:
        return ast.Select(self._decls(obj, path, depth, level))

    def _quantification(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.Node:
        quantifier = self._typed(obj, "quantifier", str, "a string", path)
        if quantifier not in _QUANTIFIERS_BACK:
            raise PQLJSONError(UNSUPPORTED_QUANTIFIER.format(quantifier=quantifier), path)
        return ast.Quantified(_QUANTIFIERS_BACK[quantifier], self._decls(obj, path, depth, level))

    def _aggregation(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.Node:
        function = self._typed(obj, "fnName", str, "a string", path)
        if function not in _AGGREGATES:
            raise PQLJSONError(unknown_function_message(function), f"{path}/fnName")
        expr = self._optional(obj, "expression", path, depth, level)
        return ast.Aggregate(function, expr, self._decls(obj, path, depth, level))

    def _let(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.Node:
        name = self._name(obj, "varName", path)
        value = self._child(obj, "value", path, depth, level)
        return ast.Let(name, value, self._child(obj, "body", path, depth, level))

    # chain

    def _chain(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.Node:
        events = self._child(obj, "events", path, depth, level)
        order_by = self._name(obj, "orderBy", path)
        raw = self._list_of(obj, "steps", path)
        if not raw:
            raise PQLJSONError(
                BAD_FIELD.format(field="steps", node_type="chain", expected="a non-empty list"),
                path,
            )
        steps = []
        for i, step in enumerate(raw):
            where = f"{path}/steps/{i}"
            if not isinstance(step, dict) or step.get("nodeType") != "chainStep":
                raise PQLJSONError(
                    BAD_FIELD.format(field="steps", node_type="chain",
                                     expected="a list of chainStep"), where,
                )  # fmt: skip
            steps.append(self._chainStep(step, where, depth, level))
        return ast.Chain(events, order_by, tuple(steps))

    def _chainStep(self, obj: JSONDict, path: str, depth: int, level: int) -> ast.ChainStep:
        label = self._name(obj, "label", path)
        what = self._child(obj, "what", path, depth + 1, level)
        when = self._optional(obj, "when", path, depth + 1, level, _WINDOWS)
        count = None
        if obj.get("count") is not None:
            count = self._typed(obj, "count", int, "a whole number", path)
            if count < 0:
                raise PQLJSONError(
                    BAD_FIELD.format(field="count", node_type="chainStep", expected="0 or more"),
                    path,
                )
        where = self._optional(obj, "where", path, depth + 1, level)
        return ast.ChainStep(label, what, when, count, where)  # type: ignore[arg-type]


def _literal_value(kind: str, value: Any) -> ast.LiteralValue:
    """A native value for ``literalType`` ``kind`` (lower-cased); old string forms accepted."""
    if kind == "string":
        if not isinstance(value, str):
            raise TypeError
        return value
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise ValueError
    if kind in ("integer", "long", "int"):
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, str) and len(value.lstrip("-")) <= MAX_DIGITS:
            value = int(value)
        if isinstance(value, int) and len(str(abs(value))) <= MAX_DIGITS:
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError
    if kind in ("number", "double"):
        if isinstance(value, bool):
            raise TypeError
        number = float(value) if isinstance(value, int | float | str) else None
        if number is None or number != number or abs(number) == float("inf"):
            raise ValueError
        return number
    raise KeyError(kind)
