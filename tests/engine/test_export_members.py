"""Every member of a segment in its export (issue 14), through the REST API on demo data:
with ``filter.emptyProfiles`` an export holds one row per member — the visitors known only
from their events included, each with its identityMap — and without it (AEP's default) exactly
the members that have record (attribute) fragments."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from engine.demo import generate
from engine.ingest import batch_ingest, dataset_get_or_create
from engine.memberships import ALIAS, attach_memberships
from engine.models import XdmClass
from engine.snapshot import open_snapshot, snapshot_build
from tests.engine.api.conftest import (  # noqa: F401 — fixtures
    UPS,
    Api,
    api,
    api_settings,
    make_api,
)
from tests.engine.api.test_catalog_exports import create_dataset, download, export, segment

pytestmark = pytest.mark.django_db

CART_ABANDONERS = ("select X from xEvent where X.metrics.commerce.abandons.value > 0 "
                   "and X.timestamp occurs <= 30 days before now")
RECORD_NAMESPACES = ("CRMID", "LOYALTYID")  # the demo's CRM and loyalty records carry these


@pytest.fixture
def demo(tmp_path: Path) -> None:
    files = generate(profiles=600, seed=42, out=tmp_path / "demo")
    for name, xdm_class, path in (("CRM profiles", XdmClass.PROFILE, files.crm),
                                  ("Loyalty members", XdmClass.PROFILE, files.loyalty),
                                  ("Web and commerce events", XdmClass.EVENT, files.events)):
        dataset = dataset_get_or_create(sandbox="prod", name=name, xdm_class=xdm_class)
        assert batch_ingest(dataset=dataset, paths=[path]).status == "success"
    snapshot_build(sandbox="prod")


def members(segment_id: str) -> dict[str, set[tuple[str, str]]]:
    """The segment's members as the engine's tables know them: profile id → its identities."""
    with open_snapshot("prod") as con:
        attach_memberships(con, "prod")
        rows = con.execute(f"""
            SELECT i._profile_id, i.namespace, i.id FROM identities i
            WHERE i._profile_id IN (SELECT _profile_id FROM {ALIAS}.memberships
                                    WHERE segment_id = ? AND status IN ('realized', 'existing'))
            """, [segment_id]).fetchall()
    found: dict[str, set[tuple[str, str]]] = {}
    for profile_id, namespace, value in rows:
        found.setdefault(profile_id, set()).add((namespace, value))
    return found


def exported(client: Api, job: dict[str, Any]) -> list[dict[str, Any]]:
    table = pq.read_table(io.BytesIO(download(client, job["destination"]["batchId"])))
    assert table.num_rows == job["metrics"]["totalExportedProfileCounter"]
    return list(table.to_pylist())


def identities_of(row: dict[str, Any]) -> set[tuple[str, str]]:
    return {(namespace, item["id"]) for namespace, items in row["identityMap"] or []
            for item in items}


def test_an_export_with_empty_profiles_has_one_row_per_member_with_its_identities(
        api: Api, demo: None) -> None:  # noqa: F811
    seg = segment(api, "Cart abandoners", CART_ABANDONERS)
    job = api.get(f"{UPS}/segment/jobs").json()["children"][0]
    counted = job["metrics"]["segmentedProfileCounter"][seg]
    expected = members(seg)
    assert counted == len(expected) > 0
    with_records = {pid for pid, ids in expected.items()
                    if any(namespace in RECORD_NAMESPACES for namespace, _ in ids)}
    events_only = set(expected) - with_records
    assert with_records and events_only  # the demo has both kinds of abandoners

    dataset_id = create_dataset(api)
    body: dict[str, Any] = {"filter": {"segments": [{"segmentId": seg, "segmentNs": "ups",
                                     "status": ["realized", "existing"]}]},
            "destination": {"datasetId": dataset_id}, "schema": {"name": "_xdm.context.profile"}}

    everyone = export(api, {**body, "filter": {**body["filter"], "emptyProfiles": True}})
    assert everyone["status"] == "SUCCEEDED"
    rows = exported(api, everyone)
    assert len(rows) == counted
    # each row is one member, found by its identities, and holds all of them
    by_identities = {frozenset(ids): pid for pid, ids in expected.items()}
    assert sorted(by_identities[frozenset(identities_of(row))] for row in rows) == sorted(expected)
    for row in rows:
        marked = [item for _, items in row["identityMap"] for item in items if item["primary"]]
        assert len(marked) == 1  # one primary identity per profile
    blank = [row for row in rows if row.get("person") is None and row.get("loyalty") is None]
    assert {by_identities[frozenset(identities_of(row))] for row in blank} == events_only
    assert all(dict(row["identityMap"]).keys() == {"ECID"} for row in blank)

    records_only = export(api, body)  # AEP's default: no emptyProfiles
    rows = exported(api, records_only)
    assert {by_identities[frozenset(identities_of(row))] for row in rows} == with_records
    assert len(rows) == len(with_records) < counted
