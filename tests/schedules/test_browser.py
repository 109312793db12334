"""In a real Chromium against the built-in engine: a team lead filters the job history, opens
a failed job and reads its error, downloads the filtered CSV; creates a schedule in the form,
beat's tick runs it, and its segment job and export appear in the history linked to it; a
scheduled run that fails raises the banner, and the lead acknowledges it on the Alerts page."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest

from tests.test_browser_shell import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
MISSING_DATASET = "0" * 24


def due(schedule: Any) -> str:
    """A few seconds after the schedule's next run: the time beat's tick runs as of."""
    assert schedule.next_run_at is not None
    return str((schedule.next_run_at + timedelta(seconds=5)).isoformat())


def fresh_slots() -> None:
    """Forget the polling group slots the jobs before took: with eager Celery a poll that
    finds its group's slot taken runs again at once rather than at the next slot."""
    from django.core.cache import cache

    cache.clear()


def test_a_lead_reads_the_history_and_schedules_a_run(
        page: Any, live_server: Any, studio: Any, segment: Any, dataset_id: str,
        marketer: Any, lead: Any, screenshot: Any) -> None:
    from exports import services as exports
    from jobs.models import Job, JobStatus
    from schedules.models import Schedule
    from schedules.services import schedule_create
    from schedules.tasks import schedules_tick
    from segments.services import segment_estimate, segments_run

    # a marketer's day: an estimate, a segment job, and an export to a dataset that is gone
    segment_estimate(connection=studio.connection, sandbox=studio.sandbox,
                     pql_text=segment.pql, actor=marketer, segment=segment)
    segments_run(segments=[segment], actor=marketer)
    failed = exports.export_start(
        connection=studio.connection, sandbox=studio.sandbox, segments=[segment],
        label="US customers → deleted dataset", actor=marketer,
        body=exports.export_body(segment_ids=[segment.remote_id], dataset_id=MISSING_DATASET))
    failed.refresh_from_db()
    assert failed.status == JobStatus.FAILED

    sign_in(page, live_server, "leo")
    page.click("[data-nav=jobs]")
    page.wait_for_selector("[data-testid=history-charts]")
    screenshot("history-all")
    page.select_option("#f-status", "problems")
    page.wait_for_function("document.querySelectorAll('#job-table .job-row[data-job]').length"
                           " === 1")
    assert "status=problems" in page.url
    row = page.locator(f"#job-{failed.pk}")
    assert row.locator(".badge").inner_text() == "Failed"
    screenshot("history-filtered")

    with page.expect_download() as download_info:
        page.click("[data-testid=history-csv]")
    content = open(download_info.value.path(), encoding="utf-8").read()  # noqa: SIM115
    rows = list(csv.DictReader(io.StringIO(content)))
    assert [(r["id"], r["status"]) for r in rows] == [(str(failed.pk), "failed")]
    assert f"the destination dataset {MISSING_DATASET} is not found" in rows[0]["error_message"]

    row.locator(".job-label").click()
    errors = page.wait_for_selector("[data-testid=job-errors]")
    assert f"the destination dataset {MISSING_DATASET} is not found" in errors.inner_text()
    assert page.locator("[data-testid=job-definition]").inner_text().startswith("US customers")
    screenshot("history-failed-job")

    # a schedule, made in the form: every day at 06:00, then export to the spring dataset
    page.click("[data-nav=schedules]")
    page.click("[data-testid=new-schedule]")
    page.fill("[data-testid=schedule-name]", "Morning US audience")
    page.check("[data-testid=pick-segment]")
    page.fill("[data-testid=schedule-at]", "06:00")
    page.select_option("#id_export_dataset", dataset_id)
    screenshot("schedules-form")
    page.click("[data-testid=create-schedule]")
    page.wait_for_selector("[data-testid=schedule-state]")
    schedule = Schedule.objects.get(name="Morning US audience")
    assert schedule.cron == "0 6 * * *" and schedule.export_dataset_id == dataset_id

    # beat's tick, at the schedule's time
    fresh_slots()
    assert schedules_tick.apply(kwargs={"now": due(schedule)}).get() == 1
    page.reload()
    page.wait_for_selector("#schedule-runs .job-row[data-status=succeeded]")
    screenshot("schedules-detail")
    page.click("[data-testid=schedule-history]")
    page.wait_for_selector("#job-table")
    scheduled = Job.objects.filter(schedule_runs__schedule=schedule).get()
    export = Job.objects.get(parent=scheduled)
    for job in (scheduled, export):
        assert page.locator(f"#job-{job.pk} .badge").inner_text() == "Succeeded"
        assert "Morning US audience" in page.locator(f"#job-{job.pk}").inner_text()
    assert page.locator("#job-table .job-row[data-job]").count() == 2
    screenshot("history-schedule")

    page.click("[data-nav=schedules]")
    page.click(f"#schedule-{schedule.pk} [data-testid=pause]")
    page.wait_for_selector(f"#schedule-{schedule.pk} [data-testid=resume]")
    schedule.refresh_from_db()
    assert schedule.paused

    # a scheduled run whose export fails: an alert, in a banner, until acknowledged
    broken = schedule_create(name="Export to a deleted dataset", connection=studio.connection,
                             sandbox=studio.sandbox, segments=[segment], cron="0 7 * * *",
                             export_dataset_id=MISSING_DATASET, actor=lead)
    fresh_slots()
    schedules_tick.apply(kwargs={"now": due(broken)})
    page.click("[data-nav=schedules]")
    page.wait_for_selector(f"#schedule-{broken.pk}")
    assert page.inner_text(f"#schedule-{broken.pk} [data-testid=last-run]") == "Failed"
    assert page.inner_text(f"#schedule-{schedule.pk} [data-testid=last-run]") == "Succeeded"
    screenshot("schedules-list")
    page.click("[data-nav=jobs]")
    banner = page.wait_for_selector("[data-testid=alerts-banner]")
    assert "Scheduled run “Export to a deleted dataset” failed" in banner.inner_text()
    screenshot("alerts-banner")
    banner.query_selector("a").click()
    alert_row = page.wait_for_selector("[data-testid=alert-row]")
    assert "is not found" in alert_row.inner_text()
    screenshot("alerts-page")
    alert_row.query_selector("button").click()
    page.wait_for_selector("[data-testid=alert-row].is-acknowledged")
    page.click("[data-nav=jobs]")
    page.wait_for_selector("#job-table")
    assert page.locator("[data-testid=alerts-banner]").count() == 0
