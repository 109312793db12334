"""Adobe's public sample data through the whole store: ingestion, stitching, merging, and PQL.

The expected counts are computed independently, with plain DuckDB SQL over the source files and
an identity graph found by a union-find written here (not the engine's label propagation).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from django.test import override_settings

import pql
from engine.duck import scalar
from engine.ingest import batch_ingest, dataset_get_or_create
from engine.models import Dataset, MergePolicy, Snapshot, XdmClass
from engine.profiles import load_profiles
from engine.segments import segment_members
from engine.snapshot import open_snapshot, snapshot_build
from tests.engine.conftest import DemoStore, sample

# Marked so that pytest-django sets up the test database even when this module runs alone:
# the module-scoped fixture below writes to it, and must never reach the real one.
pytestmark = pytest.mark.django_db

NOW = datetime(2018, 12, 18, tzinfo=UTC)


@pytest.fixture(scope="module")
def sources() -> dict[str, Path]:
    return {
        "crm": sample("experience-platform-postman-samples", "Profile_CRM_Data_Sample.json"),
        "crm_ids": sample("experience-platform-etl-reference", "CRM_profiles.json"),
        "luma": sample("experience-platform-dsw-reference", "luma_post.snappy.parquet"),
    }


SANDBOX = "samples"


@pytest.fixture(scope="module")
def loaded(sources: dict[str, Path], django_db_setup: Any, django_db_blocker: Any,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStore]:
    """Loaded once for the module (it is the slow part), in a sandbox of its own, and removed
    from the test database afterwards."""
    with django_db_blocker.unblock(), override_settings(
            ENGINE_DATA_DIR=tmp_path_factory.mktemp("engine")):
        try:
            for name, xdm_class, key in (("CRM", XdmClass.PROFILE, "crm"),
                                         ("CRM identities", XdmClass.PROFILE, "crm_ids"),
                                         ("Luma web", XdmClass.EVENT, "luma")):
                dataset = dataset_get_or_create(sandbox=SANDBOX, name=name, xdm_class=xdm_class)
                batch = batch_ingest(dataset=dataset, paths=[sources[key]])
                assert batch.status == "success", batch.failure_reason
                assert batch.error_count == 0, batch.errors
            snapshot_build(sandbox=SANDBOX)
            with open_snapshot(SANDBOX) as con:
                yield DemoStore(con, {p.profile_id: p for p in load_profiles(con)}, NOW)
        finally:
            Dataset.objects.filter(sandbox=SANDBOX).delete()
            Snapshot.objects.filter(sandbox=SANDBOX).delete()
            MergePolicy.objects.filter(sandbox=SANDBOX).delete()


@pytest.fixture(scope="module")
def graph(sources: dict[str, Path]) -> duckdb.DuckDBPyConnection:
    return independent_graph(sources)


def independent_graph(sources: dict[str, Path]) -> duckdb.DuckDBPyConnection:
    """Records and their profile label, from the source files, by label propagation."""
    con = duckdb.connect()
    crm, crm_ids, luma = (str(sources[k]) for k in ("crm", "crm_ids", "luma"))
    con.execute(f"""
        CREATE TABLE records AS
        SELECT 'crm' AS src, row_number() OVER () AS rec, * FROM read_json_auto('{crm}')
    """)
    con.execute(f"""
        CREATE TABLE pairs AS
        SELECT 'crm' AS src, rec, 'EMAIL' || chr(31) || identityMap.EMAIL[1].id AS key FROM records
        UNION ALL SELECT 'crm', rec, 'PHONE' || chr(31) || identityMap.PHONE[1].id FROM records
        UNION ALL
        SELECT 'ids', rec, upper(ns) || chr(31) || unnest(ids).id FROM (
            SELECT rec, unnest(map_keys(m)) AS ns, unnest(map_values(m)) AS ids FROM (
                SELECT row_number() OVER () AS rec, identityMap::MAP(VARCHAR, STRUCT(id VARCHAR)[])
                       AS m FROM read_json_auto('{crm_ids}',
                           columns = {{'identityMap': 'MAP(VARCHAR, STRUCT(id VARCHAR)[])'}})))
        UNION ALL
        SELECT 'luma', file_row_number, 'ECID' || chr(31) || endUserIDs._experience.mcid.id
        FROM read_parquet('{luma}', file_row_number = true)
        UNION ALL
        SELECT 'luma', file_row_number, 'AAID' || chr(31) || endUserIDs._experience.aaid.id
        FROM read_parquet('{luma}', file_row_number = true)
    """)
    con.execute("DELETE FROM pairs WHERE key IS NULL")
    # union-find in Python: a different algorithm from the engine's label propagation
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    records: dict[tuple[str, int], list[str]] = {}
    for src, rec, key in con.execute("SELECT src, rec, key FROM pairs").fetchall():
        records.setdefault((src, rec), []).append(key)
    for keys in records.values():
        for other in keys[1:]:
            parent[find(other)] = find(keys[0])
    labels = pa.table({
        "src": [src for src, _ in records], "rec": [rec for _, rec in records],
        "lab": [find(keys[0]) for keys in records.values()],
    })
    con.register("labels", labels)
    con.execute("CREATE TABLE record_label AS SELECT * FROM labels")
    con.execute(f"""CREATE TABLE luma AS SELECT file_row_number AS rec, *
                    FROM read_parquet('{luma}', file_row_number = true)""")
    return con


def members(loaded: DemoStore, text: str) -> set[str]:
    node = pql.parse(text)
    return {pid for pid, p in loaded.profiles.items()
            if pql.evaluate(node, p.profile, p.events, now=NOW)}


def test_profile_and_event_counts_match_an_independent_graph(
        graph: duckdb.DuckDBPyConnection, loaded: DemoStore) -> None:
    expected = scalar(graph, "SELECT count(DISTINCT lab) FROM record_label")
    assert len(loaded.profiles) == expected
    assert sum(len(p.events) for p in loaded.profiles.values()) == 23_055


CASES = [
    ('homeAddress.stateProvince = "MN"',
     "SELECT count(DISTINCT r.lab) FROM record_label r JOIN records c USING (rec) "
     "WHERE r.src = 'crm' AND c.homeAddress.stateProvince = 'MN'"),
    ('person.gender = "female" and person.birthYear > 2000',
     "SELECT count(DISTINCT r.lab) FROM record_label r JOIN records c USING (rec) "
     "WHERE r.src = 'crm' AND c.person.gender = 'female' AND c.person.birthYear > 2000"),
    ('xEvent.placeContext.geo.countryCode = "DE"',
     "SELECT count(DISTINCT r.lab) FROM record_label r JOIN luma e USING (rec) "
     "WHERE r.src = 'luma' AND e.placeContext.geo.countryCode = 'DE'"),
    ('xEvent.web.webPageDetails.siteSection = "blog"',
     "SELECT count(DISTINCT r.lab) FROM record_label r JOIN luma e USING (rec) "
     "WHERE r.src = 'luma' AND e.web.webPageDetails.siteSection = 'blog'"),
    ("xEvent[web.webPageDetails.pageViews.value > 0].count() >= 20",
     "SELECT count(*) FROM (SELECT r.lab FROM record_label r JOIN luma e USING (rec) "
     "WHERE r.src = 'luma' AND e.web.webPageDetails.pageViews.value > 0 "
     "GROUP BY r.lab HAVING count(*) >= 20)"),
]


@pytest.mark.parametrize(("text", "sql"), CASES, ids=[c[0] for c in CASES])
def test_segment_counts_match_plain_sql_over_the_source_files(
        graph: duckdb.DuckDBPyConnection, loaded: DemoStore, text: str, sql: str) -> None:
    expected = scalar(graph, sql)
    assert expected > 0, "a case that matches nobody proves little"
    assert len(members(loaded, text)) == expected
    compiled = segment_members(loaded.con, pql.parse(text), now=NOW)
    assert len(compiled.members) == expected


# More programs for the differential test on this data (compiled SQL against the evaluator).
DIFFERENTIAL = [
    'homeAddress.country = "USA" and person.birthYear >= 2000',
    'personalEmail.address like "%@gmail.com" or personalEmail.address like "%@yahoo.com"',
    "person.birthYear >= 1980 and person.birthYear < 1990",
    'identityMap.keys().count() >= 2 and mobilePhone.number.isNull()',
    'xEvent[placeContext.geo.countryCode = "US"].count() >= 5',
    "xEvent[timestamp occurs <= 7 days before now].count() >= 3",
    'select X from xEvent where X.marketing.trackingCode.equals("emailLaunch", false) '
    "and X.timestamp occurs this month",
    "select X from xEvent where X.timestamp occurs last month",
    'chain(xEvent, timestamp, [A: WHAT(web.webPageDetails.siteSection = "home"), '
    'B: WHAT(web.webPageDetails.siteSection = "blog")])',
    'xEvent.environment.browserDetails.userAgent.contains("iPhone")',
    "xEvent.device.screenWidth.max() >= 1900",
]


@pytest.mark.parametrize("text", DIFFERENTIAL)
def test_compiled_segments_agree_with_the_evaluator_on_sample_data(loaded: DemoStore,
                                                                   text: str) -> None:
    expected = members(loaded, text)
    assert 0 < len(expected) < len(loaded.profiles), "pick a program that separates"
    assert segment_members(loaded.con, pql.parse(text), now=NOW).members == expected
