"""A marketer, in a real Chromium, against the live server and real Celery workers: creates an
export dataset, fills the export form (with its mistakes first), runs the segment job and the
export after it in one click, previews the exported rows and downloads the Parquet file, which
holds exactly the segment's members as the engine's own tables know them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.live_studio import (  # noqa: F401 — fixtures
    broker,
    redis_server,
    shared_database,
    studio_worker,
    workers,
)
from tests.test_browser_shell import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

US = 'homeAddress.countryCode = "US"'


def engine_members(sandbox: str, segment_id: str) -> set[tuple[str, str]]:
    """The (namespace, id) identities of the segment's members, from the engine's snapshot
    and memberships tables."""
    from engine.memberships import ALIAS, attach_memberships
    from engine.snapshot import open_snapshot

    with open_snapshot(sandbox) as con:
        attach_memberships(con, sandbox)
        rows = con.execute(f"""
            SELECT upper(namespace), id FROM identities WHERE _profile_id IN (
              SELECT _profile_id FROM {ALIAS}.memberships
              WHERE segment_id = ? AND status IN ('realized', 'existing'))""",
                           [segment_id]).fetchall()
    return {(str(ns), str(value)) for ns, value in rows}


def exported_identities(path: Path) -> tuple[int, set[tuple[str, str]]]:
    table = pq.read_table(path)
    found: set[tuple[str, str]] = set()
    for identity_map in table.column("identityMap").to_pylist():
        items = identity_map.items() if isinstance(identity_map, dict) else identity_map
        for namespace, identities in items:
            for identity in identities:
                found.add((namespace.upper(), str(identity["id"])))
    return table.num_rows, found


def test_marketer_exports_a_segment_previews_and_downloads_its_members(
        page: Any, live_server: Any, marketer: Any, studio_worker: Any, shot: Any,  # noqa: F811
        tmp_path: Path) -> None:
    from connections.models import Connection
    from jobs.models import Job, JobKind, JobStatus
    from segments.services import segment_save

    connection = Connection.objects.get()
    segment = segment_save(segment=None, connection=connection,
                           sandbox=connection.default_sandbox, name="US customers",
                           description="", pql_text=US, merge_policy_id="",
                           evaluation_method="batch", actor=marketer)

    sign_in(page, live_server, "maya")
    page.click("[data-nav=exports]")
    page.wait_for_selector("[data-testid=exports-empty]")
    shot("exports-empty")

    page.click("[data-testid=datasets-link]")
    page.wait_for_selector("[data-testid=datasets-empty]")
    page.click("[data-testid=create-dataset]")  # no name: the error says what to do
    page.wait_for_selector("[data-testid=dataset-name-error]")
    page.fill("[data-testid=dataset-name]", "Spring audience")
    page.fill("#id_description", "US customers for the spring campaign")
    page.click("[data-testid=create-dataset]")
    page.wait_for_selector("[data-testid=dataset-row]:has-text('Spring audience')")
    shot("exports-datasets")

    page.click("[data-testid=dataset-row] >> text=Export here")
    page.wait_for_selector("#export-form")
    page.fill("[data-testid=profile-fields]", "person.name, shoeSize")
    page.click("[data-testid=export-now]")  # no segment, a field that does not exist
    page.wait_for_selector("[data-testid=segments-error]")
    assert "shoeSize" in page.inner_text("[data-testid=profile-fields-error]")
    shot("exports-form-errors")

    page.check("[data-testid=pick-segment]")
    field = page.locator("[data-testid=profile-fields]")
    field.fill("")
    field.type("person.name, homeAddress.coun", delay=5)
    suggestions = page.eval_on_selector_all("#profile-path-list option",
                                            "options => options.map(o => o.value)")
    assert "person.name, homeAddress.countryCode" in suggestions
    field.fill("person.name, homeAddress.countryCode")
    shot("exports-form")

    page.click("[data-testid=run-then-export]")
    page.wait_for_selector("[data-testid=plan-status]")
    page.wait_for_selector("[data-testid=open-export]", timeout=60_000)
    shot("exports-plan")
    parent = Job.objects.get(kind=JobKind.SEGMENT)
    export = Job.objects.get(kind=JobKind.EXPORT)
    assert export.parent == parent and parent.status == JobStatus.SUCCEEDED

    page.click("[data-testid=open-export]")
    page.wait_for_selector("[data-testid=export-data][data-status=succeeded]", timeout=60_000)
    count = parent.metrics["segmentedProfileCounter"][segment.remote_id]
    assert count > 0
    assert page.inner_text("[data-testid=exported-count]") == f"{count:,}"
    page.click("[data-testid=preview-file]")
    page.wait_for_selector("[data-testid=export-row]")
    assert page.locator("[data-testid=export-row]").count() == min(count, 20)
    headers = page.locator("#export-preview th").all_inner_texts()
    assert headers[headers.index("identityMap (primary)") + 1:][:3] == [
        "person.name.firstName", "person.name.lastName", "homeAddress.countryCode"]
    shot("exports-detail")

    with page.expect_download() as download:
        page.click("[data-testid=download-file]")
    saved = tmp_path / "download.parquet"
    download.value.save_as(saved)
    assert download.value.suggested_filename.endswith(".parquet")
    rows, identities = exported_identities(saved)
    assert rows == count
    assert identities == engine_members(connection.default_sandbox, segment.remote_id)

    page.click("[data-nav=exports]")
    page.wait_for_selector("[data-testid=open-export]")
    shot("exports-list")


def test_a_failed_export_shows_its_error_on_the_row_and_what_to_do(
        page: Any, live_server: Any, studio: Any, segment: Any, marketer: Any,
        shot: Any) -> None:
    from exports import services

    missing = "0" * 24
    services.export_start(connection=studio.connection, sandbox=studio.sandbox,
                          segments=[segment], label="US customers → deleted dataset",
                          body=services.export_body(segment_ids=[segment.remote_id],
                                                    dataset_id=missing), actor=marketer)
    sign_in(page, live_server, "maya")
    page.click("[data-nav=exports]")
    row = page.wait_for_selector("[data-testid=export-row][data-status=failed]")
    assert f"the destination dataset {missing} is not found" in row.inner_text()
    shot("exports-failed")
    page.click("[data-testid=open-export]")
    alert = page.wait_for_selector("[data-testid=export-error]")
    assert "Check the destination on the Datasets page" in alert.inner_text()
    shot("exports-failed-detail")


# the cart abandoners over six months: on the 300 demo profiles of these tests, 30 days
# hold a handful of abandoners, all with a profile record; six months hold visitors known only
# from their events too
CART_ABANDONERS = ("select X from xEvent where X.metrics.commerce.abandons.value > 0 "
                   "and X.timestamp occurs <= 180 days before now")


def test_cart_abandoners_export_every_member_or_says_who_was_left_out(
        page: Any, live_server: Any, marketer: Any, studio_worker: Any, shot: Any,  # noqa: F811
        tmp_path: Path) -> None:
    import csv

    from connections.models import Connection
    from exports import forms, reconcile
    from exports.services import dataset_create
    from jobs.models import Job, JobKind, JobStatus
    from segments.services import segment_save

    connection = Connection.objects.get()
    sandbox = connection.default_sandbox
    cart = segment_save(segment=None, connection=connection, sandbox=sandbox,
                        name="Cart abandoners", description="", pql_text=CART_ABANDONERS,
                        merge_policy_id="", evaluation_method="batch", actor=marketer)
    dataset_id = dataset_create(connection=connection, sandbox=sandbox, name="Win-back audience",
                                description="", actor=marketer)

    sign_in(page, live_server, "maya")
    page.goto(f"{live_server.url}/exports/new/?segment={cart.pk}&dataset={dataset_id}")
    box = page.locator("[data-testid=empty-profiles]")
    assert box.is_checked()  # ticked by default
    assert forms.EMPTY_PROFILES_HELP in page.inner_text("#export-form")
    box.uncheck()  # AEP's default: members known only from their events are left out
    shot("exports-form-empty-profiles")
    page.click("[data-testid=run-then-export]")
    page.wait_for_selector("[data-testid=open-export]", timeout=60_000)
    page.click("[data-testid=open-export]")
    page.wait_for_selector("[data-testid=reconciliation][data-tone=short]", timeout=60_000)
    parent = Job.objects.get(kind=JobKind.SEGMENT)
    first = Job.objects.get(kind=JobKind.EXPORT)
    members = parent.metrics["segmentedProfileCounter"][cart.remote_id]
    exported = first.metrics["totalExportedProfileCounter"]
    assert 0 < exported < members
    missing = members - exported
    assert page.inner_text("[data-testid=reconciliation-message]") == \
        reconcile.LEFT_OUT_EMPTY.format(
            exported=exported, members=members, missing=missing,
            members_have="member has" if missing == 1 else "members have",
            were="was" if missing == 1 else "were")
    shot("exports-detail-left-out")

    page.click("[data-testid=include-empty]")  # the same export, with them
    page.wait_for_selector("[data-testid=reconciliation][data-tone=ok]", timeout=60_000)
    again = Job.objects.filter(kind=JobKind.EXPORT).exclude(pk=first.pk).get()
    assert again.status == JobStatus.SUCCEEDED
    assert again.request["filter"]["emptyProfiles"] is True
    assert page.inner_text("[data-testid=reconciliation-message]") == \
        f"{members} of {members} members exported."
    assert page.inner_text("[data-testid=exported-count]") == f"{members:,}"
    page.click("[data-testid=preview-file]")
    page.wait_for_selector("[data-testid=export-row]")
    headers = page.locator("#export-preview th").all_inner_texts()
    assert {"identityMap.ECID", "identityMap (primary)", "person.name.firstName"} <= set(headers)
    shot("exports-detail-all-members")

    with page.expect_download() as download:
        page.click("[data-testid=download-file]")
    saved = tmp_path / "members.parquet"
    download.value.save_as(saved)
    rows, identities = exported_identities(saved)
    assert rows == members  # N of N, the visitors known only from their events included
    assert identities == engine_members(sandbox, cart.remote_id)
    with page.expect_download() as download:
        page.click("[data-testid=download-csv]")
    saved_csv = tmp_path / "members.csv"
    download.value.save_as(saved_csv)
    with saved_csv.open(newline="") as handle:
        table = list(csv.reader(handle))
    assert len(table) == members + 1 and table[0] == headers
    primary = table[0].index("identityMap (primary)")
    assert all(row[primary] for row in table[1:])  # every member has its primary identity

    page.click("[data-nav=exports]")
    page.wait_for_selector(f"#export-{again.pk}")
    assert page.inner_text(f"#export-{again.pk} [data-testid=export-rows]").split() == [
        f"{members:,}", "of", f"{members:,}", "members"]
    assert page.inner_text(f"#export-{first.pk} [data-testid=export-rows]").split() == [
        f"{exported:,}", "of", f"{members:,}", "members"]
    cells = f"#export-{again.pk} [data-testid=export-"
    assert "Cart abandoners" in page.inner_text(f"{cells}segments]")
    assert "Win-back audience" in page.inner_text(f"{cells}dataset]")
    shot("exports-list-members")
