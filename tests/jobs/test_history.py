"""The job history over HTTP, with and without HX-Request, for every role: filters, sorting,
totals, CSV, charts; the detail page's errors and links; the Alerts page and its banner."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs.history import CSV_COLUMNS
from jobs.models import Alert, AlertKind, Job, JobKind, JobStatus
from jobs.services import job_time_out
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


def signed_in(user: Any) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def csv_rows(response: Any) -> list[dict[str, str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def history(make_job: Any, marketer: Any, make_user: Any, clock: Any) -> dict[str, Job]:
    from core.roles import Role

    other = make_user("otto", Role.MARKETER)
    now = timezone.now()
    clock.now = now - timedelta(days=2)
    old = make_job(status=JobStatus.SUCCEEDED, remote_id="seg-1", created_by=marketer,
                   label="Cart abandoners", finished_at=clock.now + timedelta(seconds=42),
                   metrics={"segmentedProfileCounter": {"seg-def-1": 1200}})
    clock.now = now - timedelta(hours=1)
    return {
        "old": old,
        "failed": make_job(JobKind.EXPORT, JobStatus.FAILED, remote_id="11037",
                           created_by=marketer, label="Loyal buyers → Spring",
                           error_code="0100000003", error_message="Error in Export Job",
                           finished_at=clock.now + timedelta(minutes=3),
                           last_response={"id": 11037, "status": "FAILED", "errors": [
                               {"code": "0100000003", "msg": "Error in Export Job"},
                               {"code": "0090000009", "msg": "Dataset is not enabled"}]}),
        "preview": make_job(JobKind.PREVIEW, JobStatus.SUCCEEDED, remote_id="MDph",
                            created_by=other, label="Otto estimate",
                            finished_at=clock.now + timedelta(seconds=2),
                            metrics={"estimatedSize": 1150, "standardError": 40}),
        "running": make_job(status=JobStatus.RUNNING, remote_id="seg-3", created_by=other,
                            label="Otto running"),
    }


ROLES = [("marketer", {"old", "failed"}),
         ("lead", {"old", "failed", "preview", "running"}),
         ("admin_user", {"old", "failed", "preview", "running"})]


@pytest.mark.parametrize(("role", "sees"), ROLES)
def test_history_page_fragment_and_csv_show_what_the_role_may_see(
        request: pytest.FixtureRequest, history: dict[str, Job], role: str,
        sees: set[str]) -> None:
    client = signed_in(request.getfixturevalue(role))
    page = client.get(reverse("jobs:list"))
    fragment = client.get(reverse("jobs:list"), headers=HX)
    download = client.get(reverse("jobs:csv"))

    assert page.status_code == fragment.status_code == download.status_code == 200
    assert "<html" in page.text and "<html" not in fragment.text
    assert fragment.text.lstrip().startswith('<div id="job-table"')
    labels = {row["label"] for row in csv_rows(download)}
    for name, job in history.items():
        assert (f'id="job-{job.pk}"' in page.text) == (name in sees), name
        assert (f'id="job-{job.pk}"' in fragment.text) == (name in sees), name
        assert (job.label in labels) == (name in sees), name


def test_history_views_refuse_a_user_without_a_role(history: dict[str, Job],
                                                    make_user: Any) -> None:
    client = signed_in(make_user("nobody", None))
    for url in (reverse("jobs:list"), reverse("jobs:csv"), reverse("jobs:alerts")):
        assert client.get(url).status_code == 403
        assert client.get(url, headers=HX).status_code == 403


def test_filters_narrow_the_list_totals_and_csv(history: dict[str, Job], lead: Any) -> None:
    client = signed_in(lead)
    query = {"status": "problems", "kind": "export"}
    fragment = client.get(reverse("jobs:list"), query, headers=HX)
    rows = csv_rows(client.get(reverse("jobs:csv"), query))

    assert [row["label"] for row in rows] == ["Loyal buyers → Spring"]
    assert rows[0]["error_code"] == "0100000003" and rows[0]["duration_seconds"] == "180.0"
    assert list(rows[0]) == CSV_COLUMNS
    assert f'id="job-{history["failed"].pk}"' in fragment.text
    assert f'id="job-{history["old"].pk}"' not in fragment.text
    # the CSV link inside the fragment carries the filters
    assert 'href="/jobs/jobs.csv?kind=export&amp;status=problems"' in fragment.text


@pytest.mark.parametrize(("query", "expected"), [
    ({"user": "otto"}, {"preview", "running"}),
    ({"date_from": "today-1"}, {"failed", "preview", "running"}),
    ({"date_to": "today-2"}, {"old"}),
    ({"status": "succeeded"}, {"old", "preview"}),
    ({"kind": "preview"}, {"preview"}),
    ({"sandbox": "prod"}, {"old", "failed", "preview", "running"}),
    ({"sandbox": "dev"}, set()),
])
def test_each_filter_selects_its_jobs(history: dict[str, Job], lead: Any, make_user: Any,
                                      query: dict[str, str], expected: set[str]) -> None:
    from django.contrib.auth import get_user_model

    today = timezone.localdate()
    resolved = {}
    for key, value in query.items():
        if value.startswith("today"):
            value = (today - timedelta(days=int(value[6:] or 0))).isoformat()
        elif key == "user":
            value = str(get_user_model().objects.get(username=value).pk)
        resolved[key] = value
    rows = csv_rows(signed_in(lead).get(reverse("jobs:csv"), resolved))
    assert {row["label"] for row in rows} == {history[name].label for name in expected}


def test_sorting_by_duration_puts_the_longest_first(history: dict[str, Job],
                                                    lead: Any) -> None:
    rows = csv_rows(signed_in(lead).get(reverse("jobs:csv"), {"sort": "-duration"}))
    finished = [row["label"] for row in rows if row["status"] != "running"]
    assert finished == ["Loyal buyers → Spring", "Cart abandoners", "Otto estimate"]
    shortest = csv_rows(signed_in(lead).get(reverse("jobs:csv"), {"sort": "duration"}))
    assert shortest[0]["label"] == "Otto estimate"


def test_the_page_shows_totals_and_four_titled_svg_charts(history: dict[str, Job],
                                                          lead: Any) -> None:
    from segments.models import Segment, SegmentVersion

    # linked as segments_run and segment_estimate link them; the segment job counted
    # version 1, whose text the preview estimated
    segment = Segment.objects.create(connection=history["old"].connection, sandbox="prod",
                                     remote_id="seg-def-1", name="Cart abandoners",
                                     pql="true")
    SegmentVersion.objects.create(segment=segment, number=1, name=segment.name, pql="true",
                                  estimate={"size": 1150, "standard_error": 40})
    Job.objects.filter(pk=history["old"].pk).update(
        request={"segments": [{"segmentId": "seg-def-1", "version": 1}]})
    segment.jobs.add(history["old"], history["preview"])
    text = signed_in(lead).get(reverse("jobs:list")).text
    assert 'data-testid="history-totals"' in text
    assert ">4</span><span class=\"total-label\">jobs" in text
    assert "failed or timed out" in text
    for title in ("Jobs per day, by status", "Duration percentiles, by kind",
                  "Audience size over time, per segment",
                  "Estimate against actual count, per segment"):
        assert title in text
    assert text.count('<svg class="chart"') == 4
    assert "Day the job was started" in text and ">Jobs</text>" in text  # axis titles
    assert "Cart abandoners: 1,200 on" in text  # the audience point
    assert "Cart abandoners: estimate ≈ 1,150" in text and "−4 %" not in text
    assert "-4 %" in text  # 1,150 estimated for 1,200 counted


def test_an_estimate_of_another_version_is_not_compared_with_the_count(
        history: dict[str, Job], lead: Any) -> None:
    """The count is of version 1; the newest estimate is of version 2, a different text (990
    counted against ≈ 112 read as −89 %): nothing to compare until version 1 has one."""
    from segments.models import Segment, SegmentVersion

    segment = Segment.objects.create(connection=history["old"].connection, sandbox="prod",
                                     remote_id="seg-def-1", name="Cart abandoners",
                                     pql="loyalty.points > 10")
    SegmentVersion.objects.create(segment=segment, number=1, name=segment.name, pql="true")
    SegmentVersion.objects.create(segment=segment, number=2, name=segment.name,
                                  pql="loyalty.points > 10", estimate={"size": 112})
    segment.last_estimate = {"size": 112, "version": 2}
    segment.save()
    Job.objects.filter(pk=history["old"].pk).update(
        request={"segments": [{"segmentId": "seg-def-1", "version": 1}]})
    segment.jobs.add(history["old"], history["preview"])
    text = signed_in(lead).get(reverse("jobs:list")).text
    assert "estimate ≈ 112" not in text and "-91 %" not in text
    assert "No segment run in this period has an estimate of the version it ran" in text


def test_pagination_keeps_the_filters(make_job: Any, lead: Any) -> None:
    for index in range(55):
        make_job(status=JobStatus.SUCCEEDED, label=f"Job {index}", created_by=lead,
                 finished_at=timezone.now())
    text = signed_in(lead).get(reverse("jobs:list"), {"kind": "segment"}).text
    assert "1–50 of 55 jobs" in text
    assert 'href="?kind=segment&amp;page=2"' in text


def test_the_detail_page_lists_every_error_with_aeps_codes(history: dict[str, Job],
                                                            marketer: Any) -> None:
    job = history["failed"]
    text = signed_in(marketer).get(reverse("jobs:detail", args=[job.pk])).text
    assert "0100000003" in text and "Error in Export Job" in text
    assert "0090000009" in text and "Dataset is not enabled" in text
    assert reverse("exports:detail", args=[job.pk]) in text  # its files' page
    assert "client_secret" not in text and "p8e-fake-secret" not in text


def test_a_timed_out_job_raises_one_alert_shown_to_leads_until_acknowledged(
        history: dict[str, Job], lead: Any, marketer: Any,
        django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):  # the alert is a finish hook
        job = job_time_out(job=history["running"])
        assert job.status == JobStatus.TIMED_OUT
        job_time_out(job=job)  # again: nothing new
    alert = Alert.objects.get()
    assert alert.kind == AlertKind.TIMED_OUT and alert.job == job

    lead_client = signed_in(lead)
    assert 'data-testid="alerts-banner"' in lead_client.get(reverse("jobs:list")).text
    assert 'data-testid="alerts-banner"' not in signed_in(marketer).get(
        reverse("jobs:list")).text
    listing = lead_client.get(reverse("jobs:alerts"))
    assert "“Otto running” is stuck past its deadline" in listing.text

    row = lead_client.post(reverse("jobs:alert-acknowledge", args=[alert.pk]), headers=HX)
    assert row.status_code == 200 and row.text.lstrip().startswith(f'<tr id="alert-{alert.pk}"')
    assert "Acknowledged by Leo" in row.text
    assert 'data-testid="alerts-banner"' not in lead_client.get(reverse("jobs:list")).text
    assert "Nothing needs attention" in lead_client.get(reverse("jobs:alerts")).text
    assert "stuck past its deadline" in lead_client.get(reverse("jobs:alerts"),
                                                        {"show": "all"}).text


@pytest.mark.parametrize(("role", "status"), [("marketer", 403), ("lead", 200),
                                              ("admin_user", 200)])
def test_the_alerts_views_are_for_leads_and_admins(
        request: pytest.FixtureRequest, history: dict[str, Job], role: str,
        status: int, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):  # the alert is a finish hook
        job_time_out(job=history["running"])
    alert = Alert.objects.get()
    client = signed_in(request.getfixturevalue(role))
    assert client.get(reverse("jobs:alerts")).status_code == status
    fragment = client.get(reverse("jobs:alerts"), headers=HX)
    assert fragment.status_code == status
    if status == 200:
        assert fragment.text.lstrip().startswith('<div id="alert-table"')
    acknowledge = client.post(reverse("jobs:alert-acknowledge", args=[alert.pk]))
    assert acknowledge.status_code == (302 if status == 200 else 403)
    everything = client.post(reverse("jobs:alerts-acknowledge"))
    assert everything.status_code == (302 if status == 200 else 403)
    alert.refresh_from_db()
    assert (alert.acknowledged_at is not None) == (status == 200)
