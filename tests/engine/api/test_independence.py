"""The engine's API could be deployed alone: it imports no dashboard app and not core."""

from __future__ import annotations

import ast
from pathlib import Path

import engine.api

FORBIDDEN = {"core", "connections", "segments", "exports", "jobs"}


def test_engine_api_imports_no_dashboard_module() -> None:
    root = Path(engine.api.__file__).parent
    imported = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    assert imported & FORBIDDEN == set()
