"""Which profiles of a snapshot a PQL definition selects: compiled to DuckDB SQL, with the
reference evaluator for whatever the compiler does not translate yet."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

import duckdb

import pql
from engine import xdm
from engine.profiles import load_profiles
from pql import ast
from pql.ast import Node
from pql.schema import Schema
from pql.sql import Tables, compile_segment

logger = logging.getLogger(__name__)


def referenced_segments(node: Node) -> set[str]:
    """The ids named by ``inSegment("<id>")`` anywhere in the tree."""
    return {
        str(item.args[0].value) for item in node.walk()
        if isinstance(item, ast.Call) and item.name.lower() == "insegment"
        and len(item.args) == 1 and isinstance(item.args[0], ast.Literal)
    }


def schema_from_trees(profile: xdm.Tree, events: xdm.Tree) -> Schema:
    return Schema.from_dict(dict(xdm.flat_paths(profile)), dict(xdm.flat_paths(events)))


def snapshot_schema(con: duckdb.DuckDBPyConnection) -> Schema:
    """The union schemas the snapshot was built with, as pql reads them."""
    info = dict(con.execute("SELECT key, value FROM snapshot_info").fetchall())
    return schema_from_trees(json.loads(info["profile_schema"]), json.loads(info["event_schema"]))


@dataclass(frozen=True)
class SegmentResult:
    members: set[str]
    exact: bool  # False: the evaluator decided for the candidates the SQL returned
    candidates: int
    fallbacks: tuple[str, ...]


def segment_members(con: duckdb.DuckDBPyConnection, node: Node, *, now: datetime,
                    tables: Tables = Tables(),  # noqa: B008 - frozen, so a safe default
                    schema: Schema | None = None, profile_filter: str | None = None,
                    event_filter: str | None = None) -> SegmentResult:
    """The members among the profiles `profile_filter` keeps (a trusted SQL predicate over the
    profile row `p`); `event_filter` narrows every read of the events the same way."""
    compiled = compile_segment(node, now=now, schema=schema or snapshot_schema(con),
                               tables=tables, profile_filter=profile_filter,
                               event_filter=event_filter)
    ids = [row[0] for row in con.execute(compiled.sql).fetchall()]
    if compiled.exact:
        return SegmentResult(set(ids), True, len(ids), ())
    logger.warning("PQL constructs %s are not compiled yet: the reference evaluator decides "
                   "for %d candidate profiles", ", ".join(compiled.fallbacks), len(ids))
    members = {
        loaded.profile_id
        for loaded in load_profiles(con, profiles=tables.profiles, events=tables.events,
                                    memberships=tables.memberships, ids=ids)
        if pql.evaluate(node, loaded.profile, loaded.events, now=now,
                        memberships=loaded.memberships)
    }
    return SegmentResult(members, False, len(ids), compiled.fallbacks)
