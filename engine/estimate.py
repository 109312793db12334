"""Audience estimates by sampling, refined progressively (spec/aep-api.md §3.3, §3.5).

The sample follows Adobe's documented sizes: the whole store under 1 million profiles, a
1 million sample up to 20 million, 5 % above. A sample is a set of hash buckets: profiles are
stored ordered by bucket (engine.snapshot), so reading buckets 0…k−1 reads a contiguous range
of each table, and the same profiles every time (deterministic). The planned buckets are read
in steps; after each step the estimate is published, so a poller watches it converge.

The estimator is the sample proportion scaled to the store, with the standard error of a
proportion under sampling without replacement (finite population correction) and a normal
95 % interval — Adobe documents none of these formulas (§3.3).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import duckdb

from engine.duck import scalar
from engine.segments import EvaluationBudget, segment_members, snapshot_schema
from engine.snapshot import BUCKETS
from engine.xdm import quote_identifier as q
from pql.ast import Node
from pql.schema import Schema
from pql.sql import Tables, compile_segment

FULL_STORE_BELOW = 1_000_000
SAMPLE_SIZE = 1_000_000
LARGE_STORE_FROM = 20_000_000
LARGE_STORE_RATIO = 0.05
Z_95 = 1.959964


@dataclass(frozen=True)
class SamplePlan:
    total_rows: int
    buckets: int  # buckets 0 … buckets−1 are read

    @property
    def ratio(self) -> float:
        return self.buckets / BUCKETS


def sample_plan(total_rows: int, *, full_below: int = FULL_STORE_BELOW,
                sample_size: int = SAMPLE_SIZE, large_from: int = LARGE_STORE_FROM,
                large_ratio: float = LARGE_STORE_RATIO) -> SamplePlan:
    """How many buckets to read for a store of `total_rows` profiles."""
    if total_rows < full_below:
        ratio = 1.0
    elif total_rows <= large_from:
        ratio = sample_size / total_rows
    else:
        ratio = large_ratio
    return SamplePlan(total_rows, max(1, min(BUCKETS, math.ceil(ratio * BUCKETS))))


@dataclass(frozen=True)
class Estimate:
    estimated_size: int
    standard_error: int
    low: int  # the 95 % interval
    high: int
    profiles_read: int
    profiles_matched: int
    rows_to_read: int
    total_rows: int
    done: bool
    seconds: float
    exact: bool  # False: the evaluator decided for some candidates (slower, same result)
    # matches per identity namespace among the profiles read so far (a profile counts once
    # under each of its namespaces); empty unless asked for
    namespaces: tuple[tuple[str, int], ...] = ()
    buckets_read: int = 0  # the sample's buckets read so far: 0 to this one, in _bucket order

    @property
    def state(self) -> str:
        return "RESULT_READY" if self.done else "RUNNING"


def scale(matched: int, read: int, total: int) -> tuple[int, int]:
    """(estimated size, standard error) of `matched` among `read` of `total` profiles."""
    if read == 0:
        return 0, 0
    proportion = matched / read
    correction = (total - read) / (total - 1) if total > 1 else 0.0
    error = math.sqrt(max(proportion * (1 - proportion) / read * max(correction, 0.0), 0.0))
    return round(proportion * total), round(error * total)


def estimate_progressively(con: duckdb.DuckDBPyConnection, node: Node, *, now: datetime,
                           schema: Schema | None = None,
                           tables: Tables = Tables(),  # noqa: B008 - frozen, a safe default
                           steps: int = 8, plan: SamplePlan | None = None,
                           namespaces: bool = False,
                           budget: EvaluationBudget | None = None) -> Iterator[Estimate]:
    """Yield an estimate after each step of reading the sample; the last one has done=True.
    With `namespaces`, each step also counts its matches per identityMap namespace, in the
    same query as the count (so the final estimate needs no second pass)."""
    started = time.monotonic()
    schema = schema or snapshot_schema(con)
    profiles = q(tables.profiles)
    if plan is None:
        plan = sample_plan(scalar(con, f"SELECT count(*) FROM {profiles}"))
    counts = dict(con.execute(
        f"SELECT _bucket, count(*) FROM {profiles} WHERE _bucket < ? GROUP BY _bucket",
        [plan.buckets]).fetchall())
    rows_to_read = sum(counts.values())
    edges = sorted({round(plan.buckets * step / steps) for step in range(1, steps + 1)})
    read = matched = 0
    by_namespace: dict[str, int] = {}
    exact = True
    low_bucket = 0
    for high_bucket in edges:
        window = f"_bucket >= {low_bucket} AND _bucket < {high_bucket}"
        compiled = compile_segment(node, now=now, schema=schema, tables=tables,
                                   profile_filter=f"p.{window}", event_filter=window)
        if compiled.exact:  # counted in DuckDB: the members never come to Python
            members_sql, params = compiled.sql, {}
        else:
            exact = False
            found = segment_members(con, node, now=now, tables=tables, schema=schema,
                                    profile_filter=f"p.{window}", event_filter=window,
                                    budget=budget).members
            members_sql, params = "SELECT unnest($ids) AS _profile_id", {"ids": sorted(found)}
        if namespaces:
            for namespace, count in con.sql(f"""
                    WITH m AS MATERIALIZED ({members_sql})
                    SELECT NULL, count(*) FROM m
                    UNION ALL
                    SELECT namespace, count(*) FROM (
                        SELECT unnest(map_keys(p."identityMap")) AS namespace
                        FROM {profiles} p SEMI JOIN m ON m._profile_id = p._profile_id
                        WHERE p.{window})  -- the window again, so DuckDB reads only it
                    GROUP BY namespace""", params=params).fetchall():
                if namespace is None:
                    matched += count
                else:
                    by_namespace[namespace] = by_namespace.get(namespace, 0) + count
        elif params:
            matched += len(params["ids"])
        else:
            matched += scalar(con, f"SELECT count(*) FROM ({members_sql})")
        read += sum(counts.get(bucket, 0) for bucket in range(low_bucket, high_bucket))
        low_bucket = high_bucket
        done = high_bucket == plan.buckets
        # the estimate of the sample so far, scaled to the whole store
        size, error = scale(matched, read, plan.total_rows)
        if done and plan.buckets == BUCKETS:
            size, error = matched, 0  # the whole store was read: the count is exact
        yield Estimate(size, error, max(0, round(size - Z_95 * error)),
                       min(plan.total_rows, round(size + Z_95 * error)), read, matched,
                       rows_to_read, plan.total_rows, done, time.monotonic() - started, exact,
                       tuple(sorted(by_namespace.items(), key=lambda item: (-item[1], item[0]))),
                       buckets_read=high_bucket)
