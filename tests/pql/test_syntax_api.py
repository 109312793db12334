"""The public syntax API of ``pql``: errors as data, spans, tree walking, purity."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import pql
from pql import ast

ROOT = Path(__file__).resolve().parents[2]


def test_syntax_error_is_data() -> None:
    with pytest.raises(pql.PQLSyntaxError) as caught:
        pql.parse('homeAddress.countryISO = "US" and\n  person.birthYear = ')
    error = caught.value
    assert isinstance(error, pql.PQLError)
    assert (error.message, error.line, error.column, error.end_column) == (
        "expected a value after '='",
        2,
        22,
        23,
    )
    assert str(error) == "expected a value after '=' (line 2, column 22)"


def test_highlighted_underlines_the_span() -> None:
    with pytest.raises(pql.PQLSyntaxError) as caught:
        pql.parse("orders.avg(price) > 10")
    assert caught.value.highlighted == "orders.avg(price) > 10\n       ^^^"
    assert caught.value.message == "unknown method 'avg' — did you mean 'average'?"


def test_syntax_errors_pickle_for_celery() -> None:
    with pytest.raises(pql.PQLSyntaxError) as caught:
        pql.parse("a = (1")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.message, copy.line, copy.column, copy.end_column) == (
        caught.value.message,
        caught.value.line,
        caught.value.column,
        caught.value.end_column,
    )


def test_nodes_carry_source_spans() -> None:
    text = 'person.birthYear >= 2000 and workEmail.address like "%.edu"'
    node = pql.parse(text)
    assert isinstance(node, ast.And)
    first, second = node.operands
    assert node.span == (0, len(text))
    assert isinstance(first, ast.Binary) and first.span is not None
    assert text[slice(*first.span)] == "person.birthYear >= 2000"
    assert first.left.span is not None and text[slice(*first.left.span)] == "person.birthYear"
    assert second.span is not None and text[slice(*second.span)] == 'workEmail.address like "%.edu"'


def test_spans_do_not_affect_equality() -> None:
    assert (
        pql.parse("a  =  1") == pql.parse("a = 1") == pql.from_json(pql.to_json(pql.parse("a=1")))
    )


def test_walk_visits_every_node_parents_first() -> None:
    node = pql.parse('select X from xEvent where X.commerce.order and X.a in ["b", 1]')
    kinds = [type(n).__name__ for n in node.walk()]
    assert kinds[0] == "Select"
    assert kinds.count("VarDecl") == 1
    assert "ListLiteral" in kinds and kinds.count("Literal") == 2
    fields = [n.name for n in ast.walk(node) if isinstance(n, ast.Field)]
    assert fields == ["xEvent", "order", "commerce", "a"]


def test_children_of_an_object_literal_are_its_values() -> None:
    node = pql.parse('{"count": G.count(), "n": 1}')
    assert [type(child).__name__ for child in node.children()] == ["Method", "Literal"]


def test_from_json_accepts_the_serialised_string() -> None:
    tree = pql.to_json(pql.parse('homeAddress.countryCode = "US"'))
    assert pql.from_json(json.dumps(tree)) == pql.parse('homeAddress.countryCode = "US"')


def test_literals_of_different_types_are_different() -> None:
    assert pql.parse("a = 1") != pql.parse("a = 1.0")
    assert pql.parse("a = 1") != pql.parse("a = true")


def test_pql_imports_no_django() -> None:
    code = "import sys, pql; pql.parse('a = 1'); assert 'django' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_parse_rejects_non_text() -> None:
    with pytest.raises(TypeError):
        pql.parse(b"a = 1")  # type: ignore[arg-type]


def test_deep_json_is_a_clear_error() -> None:
    tree: dict[str, object] = {"nodeType": "literal", "literalType": "Boolean", "value": True}
    for _ in range(500):
        tree = {"nodeType": "fnApply", "fnName": "not", "params": [tree]}
    with pytest.raises(pql.PQLJSONError) as caught:
        pql.from_json(tree)
    assert "too deeply" in caught.value.message
    with pytest.raises(pql.PQLJSONError):
        pql.from_json("[" * 100_000)


@pytest.mark.parametrize("text", ["a = " + "1" * 5000, "$" + "1" * 5000 + ".a", "a = 1e999"])
def test_absurd_numbers_are_syntax_errors(text: str) -> None:
    with pytest.raises(pql.PQLSyntaxError):
        pql.parse(text)
