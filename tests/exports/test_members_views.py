"""Every member exported, or every difference explained (issue 14), over HTTP with and without
HX-Request, against the built-in engine on demo data: the form's "Include profiles known only
from their events", the export page's comparison with the segment job's count and its
"Include them", and the list of exports (segments, destination, rows, status) from our
database only."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from django.utils.html import escape

from exports import forms, reconcile, services
from exports.models import ExportPlan
from jobs.models import Job, JobKind, JobStatus
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

HX = {"HTTP_HX_REQUEST": "true"}
CART_ABANDONERS = ("select X from xEvent where X.metrics.commerce.abandons.value > 0 "
                   "and X.timestamp occurs <= 30 days before now")


@pytest.fixture
def cart(studio: Any, marketer: Any) -> Any:
    from segments.services import segment_save

    return segment_save(segment=None, connection=studio.connection, sandbox=studio.sandbox,
                        name="Cart abandoners", description="", pql_text=CART_ABANDONERS,
                        merge_policy_id="", evaluation_method="batch", actor=marketer)


def signed_in(client: Any) -> Any:
    client.login(username="maya", password=PASSWORD)
    return client


def run_then_export(client: Any, segments: list[Any], dataset_id: str, **extra: Any
                    ) -> tuple[Job, Job]:
    response = client.post("/exports/new/", {"segments": [str(s.pk) for s in segments],
                                             "dataset": dataset_id, "then": "run-first",
                                             **extra})
    assert response.status_code == 302, response.context["form"].errors
    plan = ExportPlan.objects.get(pk=int(response["Location"].rstrip("/").rsplit("/", 1)[1]))
    parent, export = plan.parent, plan.export_job
    assert parent.status == JobStatus.SUCCEEDED and export is not None
    export.refresh_from_db()
    assert export.status == JobStatus.SUCCEEDED, export.error_message
    return parent, export


def test_the_form_ticks_include_empty_profiles_by_default_and_says_what_it_means(
        studio: Any, cart: Any, dataset_id: str, marketer: Any, client: Any) -> None:
    page = signed_in(client).get("/exports/new/").content.decode()
    assert 'name="empty_profiles" id="id_empty_profiles" checked' in page
    assert escape(forms.EMPTY_PROFILES_LABEL) in page
    assert escape(forms.EMPTY_PROFILES_HELP) in page
    # sent without it (the box unticked), the form keeps it unticked
    response = client.post("/exports/new/", {"segments": [str(cart.pk)], "then": "export"})
    assert response.status_code == 400
    assert 'id="id_empty_profiles" checked' not in response.content.decode()


def test_an_export_without_empty_profiles_explains_the_difference_and_includes_them(
        studio: Any, cart: Any, dataset_id: str, marketer: Any, client: Any) -> None:
    parent, export = run_then_export(signed_in(client), [cart], dataset_id)
    assert export.request["filter"]["emptyProfiles"] is False
    members = parent.metrics["segmentedProfileCounter"][cart.remote_id]
    exported = export.metrics["totalExportedProfileCounter"]
    assert 0 < exported < members  # the demo's abandoners include visitors known by events only
    missing = members - exported
    message = reconcile.LEFT_OUT_EMPTY.format(
        exported=exported, members=members, missing=missing,
        members_have="member has" if missing == 1 else "members have",
        were="was" if missing == 1 else "were")

    page = client.get(f"/exports/{export.pk}/").content.decode()
    assert escape(message) in page and 'data-testid="include-empty"' in page
    assert escape(reconcile.SOURCE_PARENT) in page and f'href="/jobs/{parent.pk}/"' in page
    fragment = client.get(f"/exports/{export.pk}/", **HX).content.decode()
    assert fragment.lstrip().startswith('<section id="export-data"') and "<html" not in fragment
    assert escape(message) in fragment and 'data-testid="include-empty"' in fragment

    # "Include them": the same export again, with the members known only from their events
    response = client.post(f"/exports/{export.pk}/include-empty-profiles/")
    again = Job.objects.filter(kind=JobKind.EXPORT).exclude(pk=export.pk).get()
    assert response["Location"] == f"/exports/{again.pk}/"
    assert again.request == {**export.request,
                             "filter": {**export.request["filter"], "emptyProfiles": True}}
    assert again.label == export.label and again.created_by == marketer
    assert again.status == JobStatus.SUCCEEDED
    assert again.metrics["totalExportedProfileCounter"] == members
    page = client.get(response["Location"]).content.decode()
    assert f"{members} of {members} members exported." in page
    assert escape(reconcile.SOURCE_LAST) in page and 'data-testid="include-empty"' not in page
    assert client.get(f"/exports/{export.pk}/include-empty-profiles/").status_code == 405


def test_an_export_of_several_segments_is_compared_with_their_counts_without_adding_them(
        studio: Any, cart: Any, segment: Any, dataset_id: str, marketer: Any,
        client: Any) -> None:
    parent, export = run_then_export(signed_in(client), [cart, segment], dataset_id,
                                     empty_profiles="on")
    counts = parent.metrics["segmentedProfileCounter"]
    low, high = max(counts.values()), sum(counts.values())
    exported = export.metrics["totalExportedProfileCounter"]
    assert low <= exported <= high
    page = client.get(f"/exports/{export.pk}/").content.decode()
    assert escape(reconcile.MULTI_RANGE.format(exported=exported, segments=2, low=low,
                                               high=high)) in page
    for name, segment_id in (("Cart abandoners", cart.remote_id),
                             ("US customers", segment.remote_id)):
        assert f"<strong>{name}</strong>: {counts[segment_id]} members." in page


def test_the_list_shows_segments_destination_rows_and_status_from_our_database(
        studio: Any, cart: Any, dataset_id: str, marketer: Any, client: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    parent, export = run_then_export(signed_in(client), [cart], dataset_id)
    members = parent.metrics["segmentedProfileCounter"][cart.remote_id]
    exported = export.metrics["totalExportedProfileCounter"]
    failed = services.export_start(connection=studio.connection, sandbox=studio.sandbox,
                                   segments=[cart], label="Cart abandoners → nowhere",
                                   body=services.export_body(segment_ids=[cart.remote_id],
                                                             dataset_id="0" * 24),
                                   actor=marketer)

    def no_api(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the list of exports called the API")

    monkeypatch.setattr(httpx.Client, "send", no_api)
    page = client.get("/exports/").content.decode()
    row = page.split(f'id="export-{export.pk}"')[1].split("</tr>")[0]
    assert 'data-status="succeeded"' in row and "Succeeded" in row
    assert "Without profiles known only from their events" in row
    assert f'href="/segments/{cart.pk}/"' in row and "Cart abandoners" in row
    assert "Spring audience" in row and dataset_id in row  # the name, as the platform gave it
    assert f"<strong>{exported}</strong>" in row and f"of {members} members" in row
    assert "every 2s" not in row
    failed_row = page.split(f'id="export-{failed.pk}"')[1].split("</tr>")[0]
    assert "Failed" in failed_row and "is not found" in failed_row and "0" * 24 in failed_row

    fragment = client.get("/exports/", **HX).content.decode()
    assert fragment.lstrip().startswith('<section id="export-table"') and "<html" not in fragment
    assert f'id="export-{export.pk}"' in fragment
    one = client.get(f"/exports/{export.pk}/row/", **HX).content.decode()
    assert one.lstrip().startswith(f'<tr id="export-{export.pk}"') and "every 2s" not in one


def test_an_unfinished_exports_row_polls_our_database(studio: Any, cart: Any, marketer: Any,
                                                       client: Any) -> None:
    job = Job.objects.create(kind=JobKind.EXPORT, connection=studio.connection,
                             sandbox=studio.sandbox, label="Running export",
                             status=JobStatus.RUNNING, remote_id="7", created_by=marketer,
                             request=services.export_body(segment_ids=[cart.remote_id],
                                                          dataset_id="d" * 24))
    row = signed_in(client).get(f"/exports/{job.pk}/row/").content.decode()
    assert f'hx-get="/exports/{job.pk}/row/" hx-trigger="every 2s"' in row
    assert "Writing…" in row and "Cart abandoners" in row
