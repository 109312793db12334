"""An export's rows against the members counted (exports.reconcile), from our database only:
which count is used (the parent segment job's, else the segment's last run before the export),
what each difference is said to be, and what is said when nothing honest can be."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from exports import reconcile
from exports.reconcile import export_reconcile
from jobs.models import Job, JobKind, JobStatus

pytestmark = pytest.mark.django_db

CART, US = "seg-cart", "seg-us"


@pytest.fixture
def connection() -> Any:
    from connections.models import Connection

    return Connection.objects.create(name="Built-in", base_url="http://engine.test",
                                     ims_url="http://engine.test", org_id="ORG",
                                     client_id="client")


def make_segment(connection: Any, remote_id: str, name: str, **extra: Any) -> Any:
    from segments.models import Segment

    return Segment.objects.create(connection=connection, sandbox="prod", remote_id=remote_id,
                                  name=name, pql="true", **extra)


def segment_job(connection: Any, counts: dict[str, int], *, ago: int = 60) -> Job:
    finished = timezone.now() - timedelta(minutes=ago)
    return Job.objects.create(kind=JobKind.SEGMENT, connection=connection, sandbox="prod",
                              status=JobStatus.SUCCEEDED, finished_at=finished,
                              metrics={"segmentedProfileCounter": counts})


def export_job(connection: Any, exported: int, segment_ids: list[str], *,
               empty: bool | None = None, parent: Job | None = None,
               **filters: Any) -> Job:
    request_filter: dict[str, Any] = {
        "segments": [{"segmentId": sid, "segmentNs": "ups", "status": ["realized", "existing"]}
                     for sid in segment_ids], **filters}
    if empty is not None:
        request_filter["emptyProfiles"] = empty
    return Job.objects.create(kind=JobKind.EXPORT, connection=connection, sandbox="prod",
                              status=JobStatus.SUCCEEDED, parent=parent,
                              request={"filter": request_filter,
                                       "destination": {"datasetId": "ds1"}},
                              metrics={"totalExportedProfileCounter": exported})


def test_every_member_exported_against_the_parent_segment_job(connection: Any) -> None:
    make_segment(connection, CART, "Cart abandoners", last_count=40,
                 last_run_at=timezone.now() - timedelta(days=2))
    parent = segment_job(connection, {CART: 51})
    result = export_reconcile(export_job(connection, 51, [CART], empty=True, parent=parent))
    assert result is not None
    assert result.message == "51 of 51 members exported." == reconcile.ALL_EXPORTED.format(
        exported=51, members=51)
    assert (result.tone, result.offer_empty_profiles, result.members) == ("ok", False, 51)
    [count] = result.counts
    assert (count.source, count.job, count.name) == (reconcile.SOURCE_PARENT, parent,
                                                     "Cart abandoners")


def test_members_with_only_events_left_out_are_explained_and_can_be_included(
        connection: Any) -> None:
    parent = segment_job(connection, {CART: 51})
    make_segment(connection, CART, "Cart abandoners")
    result = export_reconcile(export_job(connection, 37, [CART], empty=False, parent=parent))
    assert result is not None
    assert result.message == ("37 of 51 exported — 14 members have only events and were left "
                              "out.")
    assert (result.tone, result.offer_empty_profiles) == ("short", True)
    # AEP's default (no emptyProfiles in the request) is the same as false
    one = export_reconcile(export_job(connection, 50, [CART], parent=parent))
    assert one is not None
    assert one.message == "50 of 51 exported — 1 member has only events and was left out."


def test_without_a_parent_the_segments_last_run_before_the_export_is_used(
        connection: Any) -> None:
    run = segment_job(connection, {CART: 51}, ago=30)
    segment = make_segment(connection, CART, "Cart abandoners", last_count=51,
                           last_run_at=run.finished_at)
    segment.jobs.add(run)
    job = export_job(connection, 51, [CART], empty=True)
    result = export_reconcile(job)
    assert result is not None and result.message == "51 of 51 members exported."
    [count] = result.counts
    assert (count.source, count.job, count.counted_at) == (reconcile.SOURCE_LAST, run,
                                                           run.finished_at)
    # run again after the export: its new count is not what the export read; the run before it
    later = segment_job(connection, {CART: 60}, ago=-5)
    segment.jobs.add(later)
    segment.last_count, segment.last_run_at = 60, later.finished_at
    segment.save()
    result = export_reconcile(job)
    assert result is not None and result.counts[0].count == 51
    assert result.counts[0].job == run


def test_no_count_is_said_to_be_unknown_never_guessed(connection: Any) -> None:
    make_segment(connection, CART, "Cart abandoners")  # never run
    result = export_reconcile(export_job(connection, 37, [CART], empty=False))
    assert result is not None
    assert result.message == reconcile.NO_COUNT.format(exported="37", name="Cart abandoners")
    assert (result.tone, result.offer_empty_profiles, result.members) == ("unknown", False, None)


def test_other_differences_name_their_cause(connection: Any) -> None:
    parent = segment_job(connection, {CART: 51})
    make_segment(connection, CART, "Cart abandoners")
    more = export_reconcile(export_job(connection, 53, [CART], empty=True, parent=parent))
    assert more is not None and more.message == reconcile.MORE_THAN_COUNTED.format(
        exported="53", members="51")
    fewer = export_reconcile(export_job(connection, 49, [CART], empty=True, parent=parent))
    assert fewer is not None and fewer.message == reconcile.NOT_IN_EXPORT.format(
        exported="49", members="51", missing="2", are="are")
    filtered = export_reconcile(export_job(connection, 30, [CART], empty=False, parent=parent,
                                           fromIngestTimestamp="2026-10-01T00:00:00Z"))
    assert filtered is not None and filtered.message == (
        "30 of 51 exported — 21 members were left out by the export's filters: members with "
        "only events are left out; only profiles updated after 2026-10-01T00:00:00Z.")
    assert filtered.offer_empty_profiles


def test_several_segments_are_compared_with_what_their_counts_allow(connection: Any) -> None:
    parent = segment_job(connection, {CART: 51, US: 120})
    make_segment(connection, CART, "Cart abandoners")
    make_segment(connection, US, "US customers")
    within = export_reconcile(export_job(connection, 150, [CART, US], empty=True, parent=parent))
    assert within is not None
    assert within.message == reconcile.MULTI_RANGE.format(exported="150", segments=2, low="120",
                                                          high="171")
    assert (within.tone, within.members, within.offer_empty_profiles) == ("range", None, False)
    assert [(c.name, c.count) for c in within.counts] == [("Cart abandoners", 51),
                                                          ("US customers", 120)]
    short = export_reconcile(export_job(connection, 100, [CART, US], empty=False,
                                        parent=parent))
    assert short is not None and short.message == (
        "100 profiles exported from 2 segments, fewer than the 120 members of the largest: at "
        "least 20 members were left out. The export's filters leave some out: members with "
        "only events are left out.")
    assert short.offer_empty_profiles
    unknown = export_reconcile(export_job(connection, 100, [CART, "seg-gone"], empty=True,
                                          parent=segment_job(connection, {CART: 51})))
    assert unknown is not None and unknown.message == reconcile.MULTI_UNKNOWN.format(
        exported="100", segments=2)


def test_an_unfinished_export_has_no_comparison(connection: Any) -> None:
    job = export_job(connection, 0, [CART])
    job.status = JobStatus.RUNNING
    assert export_reconcile(job) is None
