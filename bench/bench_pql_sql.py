"""Compiled PQL (pql.sql) against hand-written DuckDB SQL.

Two figures:
1. compile throughput: ``compile_segment`` calls per second over typical definitions;
2. run time on a generated in-memory dataset (``--profiles`` profiles, ``--events`` events,
   deterministic: every value is a hash of the row number and ``--seed``): the compiled SQL
   next to the SQL a person would write for the same segment, with the ratio
   (target ≤ 1.5) and a check that both select the same profiles.

    python bench/bench_pql_sql.py [--profiles 200000] [--events 2000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pql.parser import parse  # noqa: E402
from pql.schema import Schema  # noqa: E402
from pql.sql import compile_segment  # noqa: E402

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)
NOW_SQL = "TIMESTAMP '2026-03-15 12:00:00'"

SCHEMA = Schema.from_dict(
    {
        "homeAddress.countryISO": "string",
        "person.name.firstName": "string",
        "loyalty.points": "integer",
    },
    {
        "timestamp": "date-time",
        "eventType": "string",
        "commerce.order.priceTotal": "number",
        "productListItems": "array<object>",
        "productListItems.SKU": "string",
        "productListItems.priceTotal": "number",
    },
)

# (name, PQL, hand-written DuckDB SQL returning the same _profile_id set)
SEGMENTS: list[tuple[str, str, str]] = [
    (
        "country",
        'homeAddress.countryISO = "US"',
        "SELECT _profile_id FROM profiles WHERE homeAddress.countryISO = 'US'",
    ),
    (
        "attributes",
        'homeAddress.countryISO in ["US", "CA", "MX"] and loyalty.points > 1000 '
        'and person.name.firstName like "J%"',
        "SELECT _profile_id FROM profiles WHERE homeAddress.countryISO IN ('US', 'CA', 'MX') "
        "AND loyalty.points > 1000 AND person.name.firstName LIKE 'J%'",
    ),
    (
        "abandoned cart 30 days",
        'select X from xEvent where X.eventType = "commerce.abandons" '
        "and X.timestamp occurs < 30 days before now",
        "SELECT DISTINCT _profile_id FROM events WHERE eventType = 'commerce.abandons' "
        f"AND timestamp > {NOW_SQL} - INTERVAL 30 DAY AND timestamp < {NOW_SQL}",
    ),
    (
        "purchases > 500 in 90 days",
        "(sum X.commerce.order.priceTotal over X from xEvent where "
        'X.eventType = "commerce.purchases" and X.timestamp occurs < 90 days before now) > 500',
        "SELECT _profile_id FROM events WHERE eventType = 'commerce.purchases' "
        f"AND timestamp > {NOW_SQL} - INTERVAL 90 DAY AND timestamp < {NOW_SQL} "
        "GROUP BY _profile_id HAVING sum(commerce.order.priceTotal) > 500",
    ),
    (
        "cart without purchase in a day",
        'exists A from xEvent: A.eventType = "commerce.productListAdds" '
        "and A.timestamp occurs < 30 days before now "
        'and (forall B from xEvent: not(B.eventType = "commerce.purchases" '
        "and B.timestamp occurs <= 1 day after A.timestamp))",
        "SELECT DISTINCT a._profile_id FROM events a "
        "WHERE a.eventType = 'commerce.productListAdds' "
        f"AND a.timestamp > {NOW_SQL} - INTERVAL 30 DAY AND a.timestamp < {NOW_SQL} "
        "AND NOT EXISTS (SELECT 1 FROM events b WHERE b._profile_id = a._profile_id "
        "AND b.eventType = 'commerce.purchases' AND b.timestamp > a.timestamp "
        "AND b.timestamp <= a.timestamp + INTERVAL 1 DAY)",
    ),
    (
        "three-step chain",
        'chain(xEvent, timestamp, [A: WHAT(eventType = "web.pageView"), '
        'B: WHAT(eventType = "commerce.productListAdds"), '
        'C: WHAT(eventType = "commerce.purchases") WHEN(< 7 days before now)])',
        "WITH a AS (SELECT _profile_id, min(timestamp) AS t FROM events "
        "WHERE eventType = 'web.pageView' GROUP BY _profile_id), "
        "b AS (SELECT e._profile_id, min(e.timestamp) AS t FROM events e JOIN a USING "
        "(_profile_id) WHERE e.eventType = 'commerce.productListAdds' AND e.timestamp > a.t "
        "GROUP BY e._profile_id) "
        "SELECT DISTINCT e._profile_id FROM events e JOIN b USING (_profile_id) "
        "WHERE e.eventType = 'commerce.purchases' AND e.timestamp > b.t "
        f"AND e.timestamp > {NOW_SQL} - INTERVAL 7 DAY AND e.timestamp < {NOW_SQL}",
    ),
    (
        "bought a SKU",
        'select X from xEvent where X.eventType = "commerce.purchases", '
        'I from X.productListItems where I.SKU = "SKU-42"',
        "SELECT DISTINCT _profile_id FROM events WHERE eventType = 'commerce.purchases' "
        "AND list_contains(list_transform(productListItems, lambda i: i.SKU), 'SKU-42')",
    ),
]


def build(con: duckdb.DuckDBPyConnection, profiles: int, events: int, seed: int) -> None:
    """Profiles p0…p(n-1) and events spread over them, sorted as the snapshot sorts them."""

    def h(expr: str, salt: int) -> str:
        return f"(hash({expr} * 1000003 + {seed * 7919 + salt}) % 1000000)::BIGINT"

    con.execute(
        f"""
        CREATE TABLE profiles AS
        SELECT 'p' || i AS _profile_id,
               (hash('p' || i) % 1024)::SMALLINT AS _bucket,
               {{'countryISO': ['US', 'CA', 'MX', 'DE', 'GB', 'FR', NULL][{h("i", 1)} % 7 + 1]}}
                   AS homeAddress,
               {{'name': {{'firstName': ['John', 'Jane', 'Alice', 'Bob', 'Judy', 'Carol',
                                        'Dan', 'Erin'][{h("i", 2)} % 8 + 1]}}}} AS person,
               {{'points': {h("i", 3)} % 5000}} AS loyalty
        FROM range({profiles}) t(i)
        """
    )
    con.execute(
        f"""
        CREATE TABLE events AS
        WITH raw AS (
            SELECT i,
                   {h("i", 4)} % {profiles} AS owner,
                   ['web.pageView', 'web.pageView', 'commerce.productListAdds',
                    'commerce.purchases', 'commerce.abandons'][{h("i", 5)} % 5 + 1] AS kind,
                   {NOW_SQL} - to_seconds({h("i", 6)} % (180 * 86400)) AS ts
            FROM range({events}) t(i)
        )
        SELECT 'p' || owner AS _profile_id,
               (hash('p' || owner) % 1024)::SMALLINT AS _bucket,
               ts AS timestamp,
               kind AS eventType,
               {{'order': CASE WHEN kind = 'commerce.purchases'
                    THEN {{'priceTotal': ({h("i", 7)} % 40000) / 100.0}} END}} AS commerce,
               CASE WHEN kind IN ('commerce.purchases', 'commerce.productListAdds')
                    THEN [{{'SKU': 'SKU-' || ({h("i", 8)} % 500),
                           'priceTotal': ({h("i", 9)} % 20000) / 100.0}},
                          {{'SKU': 'SKU-' || ({h("i", 10)} % 500),
                           'priceTotal': ({h("i", 11)} % 20000) / 100.0}}][1:1 + {h("i", 12)} % 2]
               END AS productListItems
        FROM raw
        ORDER BY _bucket, _profile_id, timestamp
        """
    )


def best_time(con: duckdb.DuckDBPyConnection, sql: str, repeat: int) -> tuple[float, set[str]]:
    best = float("inf")
    ids: set[str] = set()
    for _ in range(repeat):
        start = time.perf_counter()
        rows = con.execute(sql).fetchall()
        best = min(best, time.perf_counter() - start)
        ids = {row[0] for row in rows}
    return best, ids


def compile_throughput(seconds: float = 1.0) -> float:
    nodes = [parse(text) for _, text, _ in SEGMENTS]
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for node in nodes:
            compile_segment(node, now=NOW, schema=SCHEMA)
        count += len(nodes)
    return count / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    print(f"compile: {compile_throughput():,.0f} definitions/s")
    con = duckdb.connect()
    start = time.perf_counter()
    build(con, args.profiles, args.events, args.seed)
    print(
        f"dataset: {args.profiles:,} profiles, {args.events:,} events "
        f"(built in {time.perf_counter() - start:.1f} s)"
    )
    print(
        f"{'segment':32} {'compiled':>9} {'hand':>9} {'ratio':>6} {'members':>9} {'5% sample':>10}"
    )
    failures = 0
    for name, text, hand in SEGMENTS:
        compiled = compile_segment(parse(text), now=NOW, schema=SCHEMA)
        assert compiled.exact, compiled.fallbacks
        ours, our_ids = best_time(con, compiled.sql, args.repeat)
        theirs, their_ids = best_time(con, hand, args.repeat)
        # An estimate's sample: 51 of 1024 buckets, filtered in profiles and events alike.
        sampled = compile_segment(
            parse(text), now=NOW, schema=SCHEMA, profile_filter="p._bucket < 51",
            event_filter="_bucket < 51",
        )  # fmt: skip
        sample_time, sample_ids = best_time(con, sampled.sql, args.repeat)
        same = our_ids == their_ids and sample_ids <= our_ids
        failures += not same
        print(
            f"{name:32} {ours * 1000:8.1f}ms {theirs * 1000:8.1f}ms {ours / theirs:6.2f} "
            f"{len(our_ids):9,} {sample_time * 1000:8.1f}ms"
            f"{'' if same else '  DIFFERENT: ' + str(len(their_ids))}"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
