"""Small helpers over DuckDB's Python API."""

from __future__ import annotations

from typing import Any

import duckdb


def sql_string(text: str) -> str:
    """A SQL string literal (quotes doubled): for names of ours, never unchecked user text."""
    return "'" + text.replace("'", "''") + "'"


def one(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
        ) -> tuple[Any, ...]:
    """The single row a query must return (an aggregate, say)."""
    row = con.execute(sql, params or []).fetchone()
    if row is None:
        raise LookupError(f"expected a row from: {sql[:80]}")
    return row


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """The first value of the single row a query must return."""
    return one(con, sql, params)[0]
