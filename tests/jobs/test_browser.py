"""In a real Chromium: an unfinished job's row updates itself from our database (htmx polling
its row), stops polling once the job has finished, and cancel replaces only the row."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.models import Job, JobEvent, JobKind, JobStatus
from tests.test_browser_shell import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_running_row_updates_itself_then_stops_polling(
        page: Any, live_server: Any, marketer: Any, make_job: Any, clock: Any,
        screenshot: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    clock.now = timezone.now() - timedelta(minutes=3)
    running = make_job(status=JobStatus.RUNNING, remote_id="5c3c9b1e-41f8-4a3c-a1d2-91e4d2b7",
                       created_by=marketer, label="Cart abandoners, last 30 days",
                       progress=0.35, remote_status="PROCESSING")
    make_job(JobKind.PREVIEW, JobStatus.SUCCEEDED, remote_id="MDphcHAtMzJiZTAz", progress=1.0,
             created_by=marketer, label="Loyal buyers in France", remote_status="RESULT_READY",
             finished_at=timezone.now())
    make_job(JobKind.EXPORT, JobStatus.FAILED, remote_id="11037", created_by=marketer,
             label="Export: US workers", error_code="0100000003",
             error_message="Error in Export Job", finished_at=timezone.now())
    pending = make_job(status=JobStatus.PENDING, created_by=marketer, label="Big spenders")
    JobEvent.objects.create(job=running, kind="submitted", status=JobStatus.QUEUED,
                            message="Acme prod says NEW")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/row/" in r.url else None)

    sign_in(page, live_server, "maya")
    page.goto(f"{live_server.url}/jobs/")
    row = page.locator(f"#job-{running.pk}")
    assert row.locator(".badge").inner_text() == "Running"
    screenshot("jobs-list")

    Job.objects.filter(pk=running.pk).update(status=JobStatus.SUCCEEDED, progress=1.0,
                                             finished_at=timezone.now(),
                                             finish_hooks_at=timezone.now())
    page.wait_for_function(
        f"document.querySelector('#job-{running.pk} .badge').innerText === 'Succeeded'",
        timeout=8000)
    assert page.get_attribute(f"#job-{running.pk}", "hx-trigger") is None
    polls = len([url for url in requests if f"/{running.pk}/row/" in url])
    page.wait_for_timeout(2500)
    assert len([url for url in requests if f"/{running.pk}/row/" in url]) == polls

    page.click(f"#job-{pending.pk} button:has-text('Cancel')")
    page.wait_for_function(
        f"document.querySelector('#job-{pending.pk} .badge').innerText === 'Cancelled'",
        timeout=8000)
    assert "/jobs/" in page.url  # the page stayed; only the row changed

    page.goto(f"{live_server.url}/jobs/{running.pk}/")
    assert page.locator(".timeline-item").count() >= 1
    screenshot("job-detail")
