"""The built-in engine at scale: ingestion + stitching + snapshot of ~1M profiles and ~10M
events from Parquet, then six segments compiled from PQL against hand-written DuckDB SQL.

    .venv/bin/python bench/bench_engine.py [--profiles 1000000] [--seed 1]

Prints each figure with its target; the baseline of a segment's ratio is the same segment
written by hand in DuckDB SQL, run on the same snapshot in the same process.
Targets (issue 4): identical counts; every ratio <= 1.5; load under 90 s; peak memory < 3 GB.
Issue 5: estimates and preview pages through the REST API, and an export of 100k profiles (10 %
of the store) under 5 s, against a hand-written DuckDB COPY of the same rows to Parquet.
Data and an isolated database live under var/bench/ (VAR_DIR), never in the suite.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH = ROOT / "var" / "bench"
os.environ["VAR_DIR"] = str(BENCH)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import duckdb  # noqa: E402
from django.core.management import call_command  # noqa: E402

import pql  # noqa: E402
from engine.demo import COUNTRIES, FIRST_NAMES, LAST_NAMES, PRODUCTS  # noqa: E402
from engine.estimate import estimate_progressively  # noqa: E402
from engine.ingest import batch_ingest, dataset_get_or_create  # noqa: E402
from engine.models import Dataset, MergePolicy, Snapshot, XdmClass  # noqa: E402
from engine.segments import SegmentResult, segment_members, snapshot_schema  # noqa: E402
from engine.snapshot import open_snapshot, snapshot_build  # noqa: E402
from pql.ast import Node  # noqa: E402
from pql.sql import compile_segment  # noqa: E402

T = TypeVar("T")
SANDBOX = "bench"
END = datetime(2026, 11, 1)
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def sql_list(items: list[str]) -> str:
    return "[" + ", ".join("'" + item.replace("'", "''") + "'" for item in items) + "]"


def generate(folder: Path, profiles: int, seed: int) -> None:
    """Demo-shaped data written by DuckDB itself (the Python generator takes minutes at 1M)."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    firsts, lasts = sql_list(FIRST_NAMES), sql_list(LAST_NAMES)
    countries = sql_list([c for c, weight, _ in COUNTRIES for _ in range(weight)])
    skus = sql_list([sku for sku, _, _ in PRODUCTS])
    prices = "[" + ", ".join(str(price) for _, _, price in PRODUCTS) + "]"

    def r(i: str, salt: int) -> str:  # a deterministic pseudo-random number in [0, 1)
        return f"(hash({i}, {seed}, {salt}) % 1000000) / 1000000.0"

    def pick(items: str, i: str, salt: int) -> str:
        return f"{items}[1 + (hash({i}, {seed}, {salt}) % len({items}))::INTEGER]"

    identity = "STRUCT(id VARCHAR, \"primary\" BOOLEAN, authenticatedState VARCHAR)[]"
    con.execute(f"""COPY (
        SELECT 'crm-' || i AS _id,
          map(['CRMID', 'Email'], [[{{'id': 'CRM' || i, 'primary': true,
                                     'authenticatedState': 'authenticated'}}],
                                   [{{'id': 'p' || i || '@example.com', 'primary': false,
                                     'authenticatedState': 'authenticated'}}]])
            ::MAP(VARCHAR, {identity}) AS identityMap,
          {{'name': {{'firstName': {pick(firsts, 'i', 1)}, 'lastName': {pick(lasts, 'i', 2)}}},
           'gender': {pick("['female', 'male', 'not_specified']", 'i', 3)},
           'birthDate': DATE '1950-01-01' + (hash(i, {seed}, 4) % 20000)::INTEGER}} AS person,
          {{'countryCode': {pick(countries, 'i', 5)}, 'city': 'City ' || (hash(i, {seed}, 6) % 500),
           'postalCode': lpad((hash(i, {seed}, 7) % 99999)::VARCHAR, 5, '0')}} AS homeAddress,
          {{'address': 'p' || i || '@example.com'}} AS personalEmail
        FROM range({profiles}) t(i)
    ) TO '{folder / "crm.parquet"}' (FORMAT parquet, COMPRESSION zstd)""")
    con.execute(f"""COPY (
        SELECT 'loyalty-' || i AS _id,
          map(['LOYALTYID', 'Email'], [[{{'id': 'L' || i, 'primary': true,
                                         'authenticatedState': 'authenticated'}}],
                                       [{{'id': 'p' || i || '@example.com', 'primary': false,
                                         'authenticatedState': 'authenticated'}}]])
            ::MAP(VARCHAR, {identity}) AS identityMap,
          {{'loyaltyID': 'L' || i, 'points': (-1800 * ln(1 - {r('i', 8)}))::BIGINT,
           'tier': {pick("['bronze', 'silver', 'gold']", 'i', 9)}}} AS loyalty
        FROM range({profiles}) t(i) WHERE {r('i', 10)} < 0.6
    ) TO '{folder / "loyalty.parquet"}' (FORMAT parquet, COMPRESSION zstd)""")
    types = ("['web.webpagedetails.pageViews', 'web.webpagedetails.pageViews', "
             "'web.webpagedetails.pageViews', 'web.webpagedetails.pageViews', "
             "'commerce.productViews', 'commerce.productViews', 'commerce.productListAdds', "
             "'commerce.productListRemovals', 'commerce.checkouts', 'commerce.purchases', "
             "'commerce.cartAbandons']")
    con.execute(f"""COPY (
        WITH ev AS (
            SELECT i, unnest(range((hash(i, {seed}, 11) % 21)::BIGINT)) AS j
            FROM range({profiles}) t(i)
        ), typed AS (
            SELECT i, j, {pick(types, 'i * 100 + j', 12)} AS eventType,
                   1 + (hash(i, j, {seed}, 13) % len({skus}))::INTEGER AS product,
                   1 + (hash(i, j, {seed}, 14) % 3)::INTEGER AS quantity,
                   {r('i * 100 + j', 15)} < 0.5 AS authenticated
            FROM ev
        )
        SELECT 'ev-' || i || '-' || j AS _id,
          TIMESTAMP '{END.isoformat(sep=' ')}'
            - to_seconds((hash(i, j, {seed}, 16) % 31536000)::BIGINT) AS "timestamp",
          eventType,
          CASE WHEN authenticated
            THEN map(['ECID', 'Email'], [[{{'id': 'E' || i, 'primary': true,
                                           'authenticatedState': 'authenticated'}}],
                                         [{{'id': 'p' || i || '@example.com', 'primary': false,
                                           'authenticatedState': 'authenticated'}}]])
            ELSE map(['ECID'], [[{{'id': 'E' || i, 'primary': true,
                                  'authenticatedState': 'ambiguous'}}]])
          END::MAP(VARCHAR, {identity}) AS identityMap,
          CASE WHEN eventType LIKE 'commerce.%' THEN
            [{{'SKU': {skus}[product], 'quantity': quantity::BIGINT,
              'priceTotal': {prices}[product] * quantity}}] END AS productListItems,
          {{'purchases': CASE WHEN eventType = 'commerce.purchases' THEN {{'value': 1.0}} END,
           'order': CASE WHEN eventType = 'commerce.purchases'
                         THEN {{'priceTotal': {prices}[product] * quantity}} END}} AS commerce,
          CASE WHEN eventType = 'commerce.cartAbandons'
               THEN {{'commerce': {{'abandons': {{'value': 1.0}}}}}} END AS metrics
        FROM typed
    ) TO '{folder / "events.parquet"}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 200000)""")
    con.close()


SEGMENTS = [
    ("country = US",
     'homeAddress.countryCode = "US"',
     "SELECT _profile_id FROM profiles WHERE homeAddress.countryCode = 'US'"),
    ("country in [...] and points > 1000 and name like J%",
     'homeAddress.countryCode in ["US", "CA", "GB"] and loyalty.points > 1000 '
     'and person.name.firstName like "J%"',
     "SELECT _profile_id FROM profiles WHERE homeAddress.countryCode IN ('US', 'CA', 'GB') "
     "AND loyalty.points > 1000 AND person.name.firstName LIKE 'J%'"),
    ("abandoned cart in the last 30 days",
     'select X from xEvent where X.eventType = "commerce.cartAbandons" '
     "and X.timestamp occurs <= 30 days before now",
     "SELECT DISTINCT _profile_id FROM events WHERE eventType = 'commerce.cartAbandons' "
     "AND \"timestamp\" >= TIMESTAMP '{now}' - INTERVAL 30 DAY "
     "AND \"timestamp\" <= TIMESTAMP '{now}'"),
    ("purchases summing over 500 in 90 days",
     'xEvent[eventType = "commerce.purchases" and timestamp occurs <= 90 days before now]'
     ".sum(commerce.order.priceTotal) > 500",
     "SELECT _profile_id FROM events WHERE eventType = 'commerce.purchases' "
     "AND \"timestamp\" >= TIMESTAMP '{now}' - INTERVAL 90 DAY "
     "AND \"timestamp\" <= TIMESTAMP '{now}' "
     "GROUP BY _profile_id HAVING sum(commerce.order.priceTotal) > 500"),
    ("added to cart, no purchase within a day",
     'select A from xEvent where A.eventType = "commerce.productListAdds" and not(select P from '
     'xEvent where P.eventType = "commerce.purchases" and P.timestamp occurs < 1 day after '
     "A.timestamp)",
     "SELECT DISTINCT a._profile_id FROM events a WHERE a.eventType = 'commerce.productListAdds' "
     "AND NOT EXISTS (SELECT 1 FROM events p WHERE p._profile_id = a._profile_id "
     "AND p.eventType = 'commerce.purchases' AND p.\"timestamp\" > a.\"timestamp\" "
     "AND p.\"timestamp\" < a.\"timestamp\" + INTERVAL 1 DAY)"),
    ("bought a given SKU",
     'select O from xEvent where O.eventType = "commerce.purchases", '
     'I from O.productListItems where I.SKU = "SKU-RUN-03"',
     "SELECT DISTINCT _profile_id FROM events WHERE eventType = 'commerce.purchases' "
     "AND list_contains(list_transform(productListItems, lambda x: x.SKU), 'SKU-RUN-03')"),
]


def best_of(runs: int, action: Callable[[], T]) -> tuple[float, T]:
    best, result = float("inf"), action()  # a first, untimed run warms the caches
    for _ in range(runs):
        started = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - started)
    return best, result


def api_session() -> tuple[Any, dict[str, str], Any]:
    """Django's test Client, the headers of a new API client's token, and its row."""
    from django.test import Client
    from django.test.utils import setup_test_environment

    from engine.api.services import api_client_create

    if not getattr(api_session, "ready", False):
        setup_test_environment()  # the test Client's host name is allowed
        api_session.ready = True  # type: ignore[attr-defined]
    client = Client()
    row, secret = api_client_create(name="bench", org_id="bench@AdobeOrg", sandboxes=[SANDBOX])
    token = client.post("/ims/token/v3", {"grant_type": "client_credentials",
                                          "client_id": row.client_id,
                                          "client_secret": secret}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "x-api-key": row.client_id,
               "x-gw-ims-org-id": row.org_id, "x-sandbox-name": SANDBOX}
    return client, headers, row


API_TARGETS = {"first": 0.2, "ready": 1.0, "page": 0.3}  # seconds, issue 5


def bench_api(runs: int) -> int:
    """Issue 5 through the REST API, in-process with Django's test Client: POST /preview, the
    first and the final progressive estimate, RESULT_READY (after one more pass for the
    namespace distribution; the worker's steps run here, as engine.tasks.preview_run runs
    them), and the first page of members (1000)."""
    import json
    from unittest import mock

    from engine.models import ApiClient, Preview
    from engine.previews import preview_steps

    client, headers, row = api_session()
    misses = 0
    print(f"\nREST API in-process (issue 5; best of {runs}): POST /preview; first and final "
          "progressive estimate and RESULT_READY, from the POST; first page of 1000 members "
          "(targets: first < 200 ms, ready < 1 s, page < 300 ms)")
    print(f"  {'segment':<52} {'POST':>8} {'first':>8} {'final':>8} {'ready':>8} {'page':>8} "
          f"{'estimate':>9}")
    try:
        for label, text, _ in SEGMENTS:
            best = {"post": float("inf"), "first": float("inf"), "final": float("inf"),
                    "ready": float("inf"), "page": float("inf")}
            size = 0
            for _ in range(runs):
                # the worker's part runs below, so nothing is sent to a broker
                with mock.patch("engine.tasks.preview_run.delay_on_commit"):
                    started = time.perf_counter()
                    response = client.post("/data/core/ups/preview", json.dumps(
                        {"predicateExpression": text, "predicateType": "pql/text",
                         "predicateModel": "_xdm.context.profile", "graphType": "pdg"}),
                        content_type="application/json", headers=headers)
                    posted = time.perf_counter() - started
                assert response.status_code == 201, response.content
                preview_id = response.json()["previewId"]
                first = final = None
                for step in preview_steps(preview_id):
                    first = first or time.perf_counter() - started
                    if step["profiles_read"] == step["rows_to_read"]:
                        final = final or time.perf_counter() - started
                estimate = client.get(f"/data/core/ups/estimate/{preview_id}",
                                      headers=headers).json()
                ready = time.perf_counter() - started
                assert estimate["state"] == "RESULT_READY", estimate
                size = estimate["estimatedSize"]
                page_started = time.perf_counter()
                page = client.get(f"/data/core/ups/preview/{preview_id}?limit=1000",
                                  headers=headers)
                paged = time.perf_counter() - page_started
                assert page.status_code == 200, page.content
                for key, value in (("post", posted), ("first", first or ready),
                                   ("final", final or ready), ("ready", ready),
                                   ("page", paged)):
                    best[key] = min(best[key], value)
            missed = [key for key, limit in API_TARGETS.items() if best[key] >= limit]
            misses += len(missed)
            print(f"  {label:<52} " + " ".join(f"{best[k] * 1000:>6.0f}ms"
                                              for k in ("post", "first", "final", "ready",
                                                        "page"))
                  + f" {size:>9,}" + (f"  MISSED: {', '.join(missed)}" if missed else ""))
    finally:
        Preview.objects.filter(sandbox=SANDBOX).delete()
        ApiClient.objects.filter(pk=row.pk).delete()
    return misses


# The exported audience: loyalty points are exponential (mean 1800) on 60 % of the profiles,
# so points > 3225 (1800 ln 6) holds for ~10 % of them: ~100k profiles of 1M.
EXPORT_SEGMENT = "loyalty.points > 3225"
EXPORT_FIELDS = "person.name,personalEmail.address,loyalty.points"
EXPORT_DATASET = "bench export"


def bench_export(runs: int) -> bool:
    """Issue 5's export target through the REST API, in-process: POST /export/jobs of a ~10 %
    audience, the worker's task (run here, as engine.tasks_jobs.export_job_run runs it) and
    GET of the SUCCEEDED job. Baseline: a hand-written DuckDB COPY of the same rows (identity
    map, the three fields, the segment membership) to zstd Parquet from the same snapshot."""
    import json
    from unittest import mock

    from engine.memberships import ALIAS, attach_memberships
    from engine.models import ApiClient, ExportJob, SegmentDefinition, SegmentJob
    from engine.storage import batch_dir
    from engine.tasks_jobs import export_job_run, segment_job_run

    client, headers, row = api_session()

    def post(path: str, body: object) -> dict:
        response = client.post(path, json.dumps(body), content_type="application/json",
                               headers=headers)
        assert response.status_code in (200, 201), response.content
        return response.json()

    try:
        # the audience's memberships, written by a segment job (not timed: segmentation)
        definition = post("/data/core/ups/segment/definitions", {
            "name": "bench export audience", "schema": {"name": "_xdm.context.profile"},
            "expression": {"type": "PQL", "format": "pql/text", "value": EXPORT_SEGMENT}})
        with mock.patch("engine.tasks_jobs.segment_job_run.delay"):
            job = post("/data/core/ups/segment/jobs", [{"segmentId": definition["id"]}])
        segment_job_run(job["id"])
        dataset = post("/data/foundation/catalog/dataSets", {
            "name": EXPORT_DATASET, "schemaRef": {
                "id": "https://ns.adobe.com/xdm/context/profile__union",
                "contentType": "application/vnd.adobe.xed+json;version=1"}})[0].rsplit("/", 1)[1]
        body = {"fields": EXPORT_FIELDS, "schema": {"name": "_xdm.context.profile"},
                "filter": {"segments": [{"segmentId": definition["id"], "segmentNs": "ups",
                                         "status": ["realized", "existing"]}]},
                "destination": {"datasetId": dataset}}

        def export() -> dict:
            with mock.patch("engine.tasks_jobs.export_job_run.delay"):
                created = post("/data/core/ups/export/jobs", body)
            export_job_run(created["id"])
            done = client.get(f"/data/core/ups/export/jobs/{created['id']}",
                              headers=headers).json()
            assert done["status"] == "SUCCEEDED", done
            return dict(done)

        export_time, done = best_of(runs, export)
        exported = done["metrics"]["totalExportedProfileCounter"]

        out = BENCH / "baseline-export.parquet"
        segment = definition["id"].replace("'", "''")
        hand = f"""COPY (
            SELECT p.identityMap, {{'name': p.person.name}} AS person,
                   {{'address': p.personalEmail.address}} AS personalEmail,
                   {{'points': p.loyalty.points}} AS loyalty,
                   MAP {{'ups': MAP {{m.segment_id: {{'status': m.status,
                       'lastQualificationTime': m.last_qualification_time}}}}}}
                     AS segmentMembership
            FROM profiles p JOIN {ALIAS}.memberships m ON m._profile_id = p._profile_id
            WHERE m.segment_id = '{segment}' AND m.status IN ('realized', 'existing')
            ORDER BY p._profile_id
        ) TO '{out}' (FORMAT parquet, COMPRESSION zstd)"""
        with open_snapshot(SANDBOX) as con:
            attach_memberships(con, SANDBOX)
            def by_hand() -> int:
                row = con.execute(hand).fetchone()
                return int(row[0]) if row else 0

            hand_time, copied = best_of(runs, by_hand)
        out.unlink(missing_ok=True)
    finally:
        for made in Dataset.objects.filter(sandbox=SANDBOX, name=EXPORT_DATASET):
            shutil.rmtree(batch_dir(SANDBOX, made.id, "-").parent, ignore_errors=True)
            made.delete()
        ExportJob.objects.filter(sandbox=SANDBOX).delete()
        SegmentJob.objects.filter(sandbox=SANDBOX).delete()
        SegmentDefinition.objects.filter(sandbox=SANDBOX).delete()
        ApiClient.objects.filter(pk=row.pk).delete()

    ratio = export_time / hand_time if hand_time else float("inf")
    ok = export_time < 5 and exported == copied
    print(f"\nexport (issue 5 target: {exported:,} profiles under 5 s; best of {runs}; baseline: "
          "a hand-written DuckDB COPY of the same rows to Parquet)")
    print(f"  {'export':<52} {'profiles':>9} {'export':>9} {'by hand':>9} {'ratio':>6}")
    print(f"  {EXPORT_SEGMENT + ' (POST, task, GET)':<52} {exported:>9,} "
          f"{export_time * 1000:>7.0f}ms {hand_time * 1000:>7.0f}ms {ratio:>5.2f}x"
          f"{'' if exported == copied else '  COUNTS DIFFER: ' + str(copied)}"
          f"{'' if export_time < 5 else '  over 5 s'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()

    call_command("migrate", verbosity=0)
    data = BENCH / f"data-{options.profiles}-{options.seed}"
    if not (data / "events.parquet").exists():
        started = time.perf_counter()
        generate(data, options.profiles, options.seed)
        print(f"generated data in {time.perf_counter() - started:.1f} s (not part of the load)")

    Dataset.objects.filter(sandbox=SANDBOX).delete()
    Snapshot.objects.filter(sandbox=SANDBOX).delete()
    MergePolicy.objects.filter(sandbox=SANDBOX).delete()
    shutil.rmtree(BENCH / "engine" / SANDBOX, ignore_errors=True)

    started = time.perf_counter()
    for name, xdm_class, file in (("CRM", XdmClass.PROFILE, "crm.parquet"),
                                  ("Loyalty", XdmClass.PROFILE, "loyalty.parquet"),
                                  ("Web", XdmClass.EVENT, "events.parquet")):
        dataset = dataset_get_or_create(sandbox=SANDBOX, name=name, xdm_class=xdm_class)
        batch = batch_ingest(dataset=dataset, paths=[data / file])
        assert batch.status == "success", batch.failure_reason
    ingested = time.perf_counter() - started
    snapshot = snapshot_build(sandbox=SANDBOX)
    loaded = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    profiles = next(iter(snapshot.stats["profiles"].values()))
    print(f"\nload: {profiles:,} profiles, {snapshot.stats['events']:,} events")
    print(f"  ingestion {ingested:.1f} s + stitching and snapshot {loaded - ingested:.1f} s "
          f"= {loaded:.1f} s (target < 90 s: {'ok' if loaded < 90 else 'MISSED'})")
    print(f"  peak memory {peak_gb:.2f} GB (target < 3 GB: {'ok' if peak_gb < 3 else 'MISSED'})")

    print(f"\nsegments (best of {options.runs}; baseline: the same segment hand-written in DuckDB "
          f"SQL on the same snapshot)")
    print(f"  {'segment':<52} {'count':>9} {'PQL':>9} {'by hand':>9} {'ratio':>6}")
    failures = 0
    with open_snapshot(SANDBOX) as con:
        schema = snapshot_schema(con)
        naive_now = NOW.replace(tzinfo=None).isoformat(sep=" ")
        for label, text, hand in SEGMENTS:
            node = pql.parse(text)
            exact = compile_segment(node, now=NOW, schema=schema).exact
            def compiled(node: Node = node) -> SegmentResult:
                return segment_members(con, node, now=NOW, schema=schema)

            def by_hand(sql: str = hand.format(now=naive_now)) -> set[str]:
                # both sides end with the member set in Python, as the product needs it
                return {row[0] for row in con.execute(sql).fetchall()}

            pql_time, result = best_of(options.runs, compiled)
            hand_time, expected = best_of(options.runs, by_hand)
            members = result.members
            same = members == expected
            ratio = pql_time / hand_time if hand_time else float("inf")
            ok = same and ratio <= 1.5
            failures += not ok
            note = "" if exact else " (evaluator fallback)"
            print(f"  {label:<52} {len(members):>9,} {pql_time * 1000:>7.1f}ms "
                  f"{hand_time * 1000:>7.1f}ms {ratio:>5.2f}x"
                  f"{'' if same else '  COUNTS DIFFER: ' + str(len(expected))}"
                  f"{'' if ratio <= 1.5 else '  over 1.5x'}{note}")
        print("\nestimates (8 progressive steps over Adobe's documented sample; issue 5 targets:"
              " first estimate < 200 ms, final < 1 s)")
        print(f"  {'segment':<52} {'first':>9} {'final':>9} {'estimate':>16} {'truth':>9}")
        for label, text, _ in SEGMENTS:
            node = pql.parse(text)
            started = time.perf_counter()
            first = final = None
            for step in estimate_progressively(con, node, now=NOW, schema=schema):
                first = first or time.perf_counter() - started
                final = step
            elapsed = time.perf_counter() - started
            truth = len(segment_members(con, node, now=NOW, schema=schema).members)
            estimate = f"{final.estimated_size:,} ± {final.standard_error:,}"  # type: ignore[union-attr]
            print(f"  {label:<52} {first * 1000:>7.0f}ms {elapsed * 1000:>7.0f}ms "  # type: ignore[operator]
                  f"{estimate:>16} {truth:>9,}")
    failures += bench_api(options.runs)
    failures += not bench_export(min(options.runs, 3))
    verdict = "all within target" if not failures else f"{failures} off target"
    print(f"\n{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
