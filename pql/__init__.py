"""Profile Query Language (spec/pql.md): parse, print, and convert to and from pql/json.

Pure Python, no Django. ``parse(text)`` and ``from_json(obj)`` give a ``pql.ast.Node``;
``to_text(node)`` and ``to_json(node)`` turn it back into canonical text or a pql/json dict.
"""

from __future__ import annotations

from pql.errors import PQLError, PQLJSONError, PQLSyntaxError
from pql.evaluator import evaluate
from pql.explain import explain
from pql.json_format import from_json, to_json
from pql.parser import parse
from pql.printer import to_text
from pql.schema import check
from pql.sql import compile_segment, to_sql

__all__ = [
    "PQLError",
    "PQLJSONError",
    "PQLSyntaxError",
    "check",
    "compile_segment",
    "evaluate",
    "explain",
    "from_json",
    "parse",
    "to_json",
    "to_sql",
    "to_text",
]

# --- semantics (check, evaluate, explain) are added below by their own modules ---
