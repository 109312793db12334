"""Identity stitching, merge policies and guardrails, read back from the query snapshot."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.identity import profile_id_for, stitch
from engine.ingest import batch_ingest, dataset_get_or_create
from engine.models import AttributeMerge, IdentityGraph, MergePolicy, XdmClass
from engine.snapshot import default_merge_policy, open_snapshot, profiles_table, snapshot_build
from tests.engine.conftest import ident

pytestmark = pytest.mark.django_db

SANDBOX = "prod"


def load(name: str, xdm_class: str, records: list[dict[str, Any]], write_jsonl: Any) -> Any:
    dataset = dataset_get_or_create(sandbox=SANDBOX, name=name, xdm_class=xdm_class)
    batch = batch_ingest(dataset=dataset, paths=[write_jsonl(f"{name}-{id(records)}.jsonl",
                                                             records)])
    assert batch.status == "success", batch.failure_reason
    return dataset


def query(sql: str) -> list[tuple[Any, ...]]:
    with open_snapshot(SANDBOX) as con:
        return con.execute(sql).fetchall()


def components(groups: list[list[str]]) -> dict[str, str]:
    con = duckdb.connect()
    values = ", ".join(f"({sorted(group)!r})" for group in groups)
    stitch(con, f"SELECT keys FROM (VALUES {values}) t(keys)")
    return dict(con.execute("SELECT key, _profile_id FROM identity_profile").fetchall())


def test_graph_components_and_stable_ids() -> None:
    found = components([["A", "B"], ["C", "D"], ["B", "C"], ["E", "F"]])
    assert found == {"A": profile_id_for("A"), "B": profile_id_for("A"), "C": profile_id_for("A"),
                     "D": profile_id_for("A"), "E": profile_id_for("E"), "F": profile_id_for("E")}
    # the same links in another order give the same ids
    assert components([["E", "F"], ["C", "B"], ["D", "C"], ["B", "A"]]) == found


def test_a_long_chain_settles_into_one_component() -> None:
    chain = [[f"k{n:03d}", f"k{n + 1:03d}"] for n in range(60)]
    found = components(list(reversed(chain)))
    assert set(found.values()) == {profile_id_for("k000")}
    assert len(found) == 61


def test_fragments_sharing_an_identity_become_one_profile(write_jsonl: Any) -> None:
    load("crm", XdmClass.PROFILE, [
        {"identityMap": {"CRMID": [{"id": "c1", "primary": True}],
                         "Email": [{"id": "ann@x.com"}]},
         "person": {"name": {"firstName": "Ann"}}},
        {"identityMap": ident("CRMID", "c2"), "person": {"name": {"firstName": "Bo"}}},
    ], write_jsonl)
    load("loyalty", XdmClass.PROFILE, [
        {"identityMap": {"LOYALTYID": [{"id": "L1", "primary": True}],
                         "Email": [{"id": "ann@x.com"}]}, "loyalty": {"points": 500}},
    ], write_jsonl)
    load("web", XdmClass.EVENT, [
        {"identityMap": {"ECID": [{"id": "e1", "primary": True}], "Email": [{"id": "ann@x.com"}]},
         "timestamp": "2024-01-01T00:00:00Z", "eventType": "login"},
        {"identityMap": ident("ECID", "e1"), "timestamp": "2024-01-02T00:00:00Z",
         "eventType": "web.webpagedetails.pageViews"},
        {"identityMap": ident("ECID", "anon"), "timestamp": "2024-01-03T00:00:00Z",
         "eventType": "web.webpagedetails.pageViews"},
    ], write_jsonl)
    snapshot_build(sandbox=SANDBOX)

    profiles = query("SELECT person.name.firstName, loyalty.points, "
                     "list_sort(map_keys(identityMap)) FROM profiles ORDER BY 1 NULLS LAST")
    assert profiles == [
        ("Ann", 500, ["CRMID", "ECID", "Email", "LOYALTYID"]),
        ("Bo", None, ["CRMID"]),
        (None, None, ["ECID"]),  # the anonymous visitor is a profile of its events only
    ]
    ann_events = query("SELECT count(*) FROM events e JOIN profiles p USING (_profile_id) "
                       "WHERE p.person.name.firstName = 'Ann'")
    assert ann_events == [(2,)]
    ids = query("SELECT DISTINCT _profile_id FROM identities WHERE id IN ('c1', 'L1', 'e1')")
    assert len(ids) == 1


def test_profile_ids_are_stable_across_rebuilds(write_jsonl: Any) -> None:
    load("crm", XdmClass.PROFILE, [{"identityMap": ident("Email", f"p{n}@x.com")}
                                   for n in range(5)], write_jsonl)
    snapshot_build(sandbox=SANDBOX)
    first = query("SELECT _profile_id FROM profiles ORDER BY 1")
    snapshot_build(sandbox=SANDBOX)
    assert query("SELECT _profile_id FROM profiles ORDER BY 1") == first
    assert query("SELECT min(_bucket) >= 0, max(_bucket) < 1024 FROM profiles") == [(True, True)]


def test_timestamp_ordered_merge_takes_the_latest_value_per_attribute(write_jsonl: Any) -> None:
    crm = load("crm", XdmClass.PROFILE, [
        {"identityMap": ident("Email", "ann@x.com"),
         "person": {"name": {"firstName": "Ann", "lastName": "Lee"}}, "loyalty": {"tier": "gold"}},
    ], write_jsonl)
    load("app", XdmClass.PROFILE, [
        {"identityMap": ident("Email", "ann@x.com"), "person": {"name": {"firstName": "Annie"}}},
    ], write_jsonl)
    snapshot_build(sandbox=SANDBOX)
    # the later fragment wins firstName; lastName and tier, which it lacks, survive
    assert query("SELECT person.name.firstName, person.name.lastName, loyalty.tier "
                 "FROM profiles") == [("Annie", "Lee", "gold")]

    # a newer batch of the first dataset wins again
    dataset = crm
    batch_ingest(dataset=dataset, paths=[write_jsonl("crm2.jsonl", [
        {"identityMap": ident("Email", "ann@x.com"), "person": {"name": {"firstName": "Anne"}}}])])
    snapshot_build(sandbox=SANDBOX)
    assert query("SELECT person.name.firstName FROM profiles") == [("Anne",)]


def test_dataset_precedence_and_unlisted_datasets(write_jsonl: Any) -> None:
    crm = load("crm", XdmClass.PROFILE, [
        {"identityMap": ident("Email", "ann@x.com"), "person": {"name": {"firstName": "Ann"}},
         "homeAddress": {"city": "Oslo"}}], write_jsonl)
    app = load("app", XdmClass.PROFILE, [
        {"identityMap": ident("Email", "ann@x.com"), "person": {"name": {"firstName": "Annie"}}}],
        write_jsonl)
    default_merge_policy(SANDBOX)
    crm_first = MergePolicy.objects.create(
        sandbox=SANDBOX, name="CRM first", attribute_merge=AttributeMerge.DATASET_PRECEDENCE,
        dataset_order=[crm.id, app.id])
    app_only = MergePolicy.objects.create(
        sandbox=SANDBOX, name="App only", attribute_merge=AttributeMerge.DATASET_PRECEDENCE,
        dataset_order=[app.id])
    snapshot_build(sandbox=SANDBOX)

    assert query("SELECT person.name.firstName FROM profiles") == [("Annie",)]  # default
    assert query(f"SELECT person.name.firstName, homeAddress.city "
                 f"FROM {profiles_table(crm_first)}") == [("Ann", "Oslo")]
    assert query(f"SELECT person.name.firstName, homeAddress "
                 f"FROM {profiles_table(app_only)}") == [("Annie", None)]


def test_no_identity_graph_keeps_fragments_apart(write_jsonl: Any) -> None:
    load("crm", XdmClass.PROFILE, [
        {"identityMap": {"CRMID": [{"id": "c1", "primary": True}], "Email": [{"id": "a@x.com"}]},
         "person": {"name": {"firstName": "Ann"}}}], write_jsonl)
    load("app", XdmClass.PROFILE, [
        {"identityMap": {"APPID": [{"id": "a1", "primary": True}], "Email": [{"id": "a@x.com"}]},
         "person": {"name": {"firstName": "Annie"}}}], write_jsonl)
    default_merge_policy(SANDBOX)
    alone = MergePolicy.objects.create(sandbox=SANDBOX, name="No stitching",
                                       identity_graph=IdentityGraph.NONE)
    snapshot_build(sandbox=SANDBOX)
    assert query("SELECT count(*) FROM profiles") == [(1,)]
    assert query(f"SELECT person.name.firstName FROM {profiles_table(alone)} ORDER BY 1") == [
        ("Ann",), ("Annie",)]


def test_graphs_over_50_identities_are_excluded(write_jsonl: Any) -> None:
    chain = [{"identityMap": {"ECID": [{"id": f"e{n}", "primary": True}, {"id": f"e{n + 1}"}]}}
             for n in range(50)]  # e0..e50: 51 identities in one graph
    load("crm", XdmClass.PROFILE, [*chain, {"identityMap": ident("Email", "ok@x.com")}],
         write_jsonl)
    snapshot = snapshot_build(sandbox=SANDBOX)
    assert query("SELECT count(*) FROM profiles") == [(1,)]
    assert snapshot.stats["excluded"] == {"more than 50 identities": 1}
    assert query("SELECT count(*) FROM identities WHERE id LIKE 'e%'") == [(0,)]


def test_profiles_over_5000_events_are_excluded(tmp_path: Path) -> None:
    start = datetime(2024, 1, 1)
    identity = pa.map_(pa.string(), pa.list_(pa.struct([("id", pa.string()),
                                                        ("primary", pa.bool_())])))
    schema = pa.schema([("identityMap", identity), ("timestamp", pa.timestamp("us"))])
    busy = [{"identityMap": [("ECID", [{"id": "busy", "primary": True}])],
             "timestamp": start + timedelta(minutes=n)} for n in range(5_001)]
    calm = [{"identityMap": [("ECID", [{"id": "calm", "primary": True}])], "timestamp": start}]
    pq.write_table(pa.Table.from_pylist(busy + calm, schema=schema), tmp_path / "e.parquet")
    dataset = dataset_get_or_create(sandbox=SANDBOX, name="web", xdm_class=XdmClass.EVENT)
    assert batch_ingest(dataset=dataset, paths=[tmp_path / "e.parquet"]).status == "success"

    snapshot = snapshot_build(sandbox=SANDBOX)

    assert snapshot.stats["excluded"] == {"more than 5000 events": 1}
    assert query("SELECT count(*), count(DISTINCT _profile_id) FROM events") == [(1, 1)]
    assert query("SELECT count(*) FROM profiles") == [(1,)]


def primaries(table: str = "profiles") -> dict[str, list[tuple[str, str]]]:
    """Each profile (named by its sorted identity ids) → the identities its identityMap marks
    primary."""
    rows = query(f"""SELECT list_sort(flatten(list_transform(map_values(identityMap),
                                                         lambda v: list_transform(v,
                                                             lambda i: i.id)))),
                            list_sort(list_transform(list_filter(flatten(list_transform(
                                map_entries(identityMap), lambda e: list_transform(e.value,
                                    lambda i: {{'ns': e.key, 'id': i.id, 'p': i."primary"}}))),
                                lambda x: x.p), lambda x: [x.ns, x.id]))
                     FROM {table}""")
    return {" ".join(ids): [(ns, value) for ns, value in marked] for ids, marked in rows}


def test_a_stitched_profile_has_one_primary_identity_chosen_by_the_merge_policy(
        write_jsonl: Any) -> None:
    # CRM, loyalty and web events each mark their own identity primary: stitched, the profile
    # keeps the primary of the fragment that wins the merge policy, and only that one
    crm = load("crm", XdmClass.PROFILE, [
        {"identityMap": {"CRMID": [{"id": "c1", "primary": True}],
                         "Email": [{"id": "ann@x.com"}]},
         "person": {"name": {"firstName": "Ann"}}}], write_jsonl)
    loyalty = load("loyalty", XdmClass.PROFILE, [
        {"identityMap": {"LOYALTYID": [{"id": "L1", "primary": True}],
                         "Email": [{"id": "ann@x.com", "primary": False}]},
         "loyalty": {"points": 500}}], write_jsonl)
    load("web", XdmClass.EVENT, [
        {"identityMap": {"ECID": [{"id": "e1", "primary": True}], "Email": [{"id": "ann@x.com"}]},
         "timestamp": "2024-01-01T00:00:00Z"},
        {"identityMap": ident("ECID", "anon"), "timestamp": "2024-01-02T00:00:00Z"},
        {"identityMap": {"ECID": [{"id": "anon2", "primary": True}],
                         "Phone": [{"id": "+1-555", "primary": True}]},
         "timestamp": "2024-01-03T00:00:00Z"},
    ], write_jsonl)
    default_merge_policy(SANDBOX)
    crm_first = MergePolicy.objects.create(
        sandbox=SANDBOX, name="CRM first", attribute_merge=AttributeMerge.DATASET_PRECEDENCE,
        dataset_order=[crm.id, loyalty.id])
    snapshot_build(sandbox=SANDBOX)

    ann = "L1 ann@x.com c1 e1"
    # timestamp-ordered: the loyalty batch is the latest. A profile of events only takes its
    # latest event's primary; two primaries in one event are settled the same way on every
    # rebuild (the greater namespace)
    assert primaries() == {ann: [("LOYALTYID", "L1")], "anon": [("ECID", "anon")],
                           "+1-555 anon2": [("Phone", "+1-555")]}
    # dataset precedence: the CRM fragment wins, and with it its primary identity
    assert primaries(profiles_table(crm_first))[ann] == [("CRMID", "c1")]
    # the identities table agrees with the default policy's maps
    assert query('SELECT namespace, id FROM identities WHERE "primary" ORDER BY 1, 2') == [
        ("ECID", "anon"), ("LOYALTYID", "L1"), ("Phone", "+1-555")]

    # a newer CRM batch wins the timestamp order, and the primary identity moves with it
    batch_ingest(dataset=crm, paths=[write_jsonl("crm2.jsonl", [
        {"identityMap": {"CRMID": [{"id": "c1", "primary": True}]},
         "person": {"name": {"firstName": "Anne"}}}])])
    snapshot_build(sandbox=SANDBOX)
    assert primaries()[ann] == [("CRMID", "c1")]


def test_without_stitching_a_profiles_primary_is_its_own_identity(write_jsonl: Any) -> None:
    load("crm", XdmClass.PROFILE, [
        {"identityMap": {"CRMID": [{"id": "c1", "primary": True}],
                         "Email": [{"id": "a@x.com", "primary": True}]},
         "person": {"name": {"firstName": "Ann"}}}], write_jsonl)
    load("web", XdmClass.EVENT, [
        {"identityMap": {"ECID": [{"id": "e1", "primary": True}], "Email": [{"id": "a@x.com"}]},
         "timestamp": "2024-01-01T00:00:00Z"}], write_jsonl)
    default_merge_policy(SANDBOX)
    alone = MergePolicy.objects.create(sandbox=SANDBOX, name="No stitching",
                                       identity_graph=IdentityGraph.NONE)
    snapshot_build(sandbox=SANDBOX)
    # the record marks two primaries: its profile is its first (CRMID c1), and only that one
    # is primary; the profile of the events alone has its ECID as its identityMap
    assert primaries(profiles_table(alone)) == {"a@x.com c1": [("CRMID", "c1")],
                                                "e1": [("ECID", "e1")]}
