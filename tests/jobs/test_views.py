"""Job pages over HTTP, with and without HX-Request, for every role: the list, the row partial
(which polls only while unfinished), the detail page with its timeline, and cancel."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from jobs.models import Job, JobEvent, JobKind, JobStatus
from jobs.services import CANCEL_FINISHED
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


def signed_in(user: Any) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def jobs(make_job: Any, marketer: Any, make_user: Any) -> dict[str, Job]:
    from core.roles import Role

    other = make_user("otto", Role.MARKETER)
    return {
        "mine": make_job(status=JobStatus.RUNNING, remote_id="seg-1", created_by=marketer,
                         label="Cart abandoners", progress=0.42),
        "mine_done": make_job(status=JobStatus.FAILED, remote_id="seg-2", created_by=marketer,
                              label="Loyal buyers", error_code="0080000018",
                              error_message="Segment evaluation failed"),
        "theirs": make_job(status=JobStatus.QUEUED, remote_id="seg-3", created_by=other,
                           label="Otto audience"),
    }


def test_finished_job_row_has_no_polling_trigger(jobs: dict[str, Job], marketer: Any) -> None:
    client = signed_in(marketer)
    done = client.get(reverse("jobs:row", args=[jobs["mine_done"].pk]), headers=HX)
    running = client.get(reverse("jobs:row", args=[jobs["mine"].pk]), headers=HX)

    assert done.status_code == running.status_code == 200
    assert "hx-trigger" not in done.text and "hx-get" not in done.text
    assert "Segment evaluation failed" in done.text and "0080000018" in done.text
    assert 'hx-trigger="every 2s"' in running.text
    assert f'hx-get="{reverse("jobs:row", args=[jobs["mine"].pk])}"' in running.text
    assert 'hx-swap="outerHTML"' in running.text
    assert 'value="42"' in running.text  # the progress bar
    assert "<html" not in running.text  # the partial only
    # the last answer of a polling row tells the page its job finished
    assert json.loads(done["HX-Trigger"]) == {"jobFinished": {
        "job": jobs["mine_done"].pk, "kind": "segment", "status": "failed"}}
    assert "HX-Trigger" not in running


def test_the_row_without_htmx_sends_the_browser_to_the_jobs_page(jobs: dict[str, Job],
                                                                 marketer: Any) -> None:
    response = signed_in(marketer).get(reverse("jobs:row", args=[jobs["mine"].pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("jobs:detail", args=[jobs["mine"].pk])


def test_the_row_reads_the_database_only(jobs: dict[str, Job], marketer: Any,
                                         django_assert_max_num_queries: Any) -> None:
    """No API client is built: the connection points nowhere reachable, and a handful of
    queries (session, user, groups, job) is all it costs."""
    client = signed_in(marketer)
    with django_assert_max_num_queries(6):
        response = client.get(reverse("jobs:row", args=[jobs["mine"].pk]), headers=HX)
    assert response.status_code == 200


@pytest.mark.parametrize(("role", "sees"), [
    ("marketer", {"mine", "mine_done"}),
    ("lead", {"mine", "mine_done", "theirs"}),
    ("admin_user", {"mine", "mine_done", "theirs"}),
])
def test_the_list_shows_what_the_role_may_see(request: pytest.FixtureRequest,
                                              jobs: dict[str, Job], role: str,
                                              sees: set[str]) -> None:
    user = request.getfixturevalue(role)
    page = signed_in(user).get(reverse("jobs:list"))
    fragment = signed_in(user).get(reverse("jobs:list"), headers=HX)

    assert page.status_code == fragment.status_code == 200
    assert "<html" in page.text and "<html" not in fragment.text
    for name, job in jobs.items():
        assert (job.label in page.text) == (name in sees), name
        assert (job.label in fragment.text) == (name in sees), name


@pytest.mark.parametrize(("role", "status"), [("marketer", 404), ("lead", 200),
                                              ("admin_user", 200)])
def test_someone_elses_job_exists_only_for_leads_and_admins(
        request: pytest.FixtureRequest, jobs: dict[str, Job], role: str, status: int) -> None:
    client = signed_in(request.getfixturevalue(role))
    theirs = jobs["theirs"].pk
    assert client.get(reverse("jobs:detail", args=[theirs])).status_code == status
    assert client.get(reverse("jobs:row", args=[theirs]), headers=HX).status_code == status


def test_a_user_without_a_role_gets_403(jobs: dict[str, Job], make_user: Any) -> None:
    client = signed_in(make_user("nobody", None))
    assert client.get(reverse("jobs:list")).status_code == 403
    assert client.get(reverse("jobs:row", args=[jobs["mine"].pk]),
                      headers=HX).status_code == 403
    assert client.post(reverse("jobs:cancel", args=[jobs["mine"].pk])).status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(jobs: dict[str, Job]) -> None:
    response = Client().get(reverse("jobs:row", args=[jobs["mine"].pk]), headers=HX)
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_the_empty_list_says_what_fills_it(marketer: Any) -> None:
    response = signed_in(marketer).get(reverse("jobs:list"))
    assert response.status_code == 200 and "No jobs yet" in response.text


def test_the_detail_page_shows_the_timeline(jobs: dict[str, Job], marketer: Any) -> None:
    job = jobs["mine"]
    JobEvent.objects.create(job=job, kind="submitted", status=JobStatus.QUEUED,
                            message="Acme prod says NEW")
    client = signed_in(marketer)
    page = client.get(reverse("jobs:detail", args=[job.pk]))
    fragment = client.get(reverse("jobs:detail", args=[job.pk]), headers=HX)

    assert page.status_code == fragment.status_code == 200
    assert "Acme prod says NEW" in page.text and "Cart abandoners" in page.text
    assert fragment.text.lstrip().startswith('<ol id="job-timeline"')
    assert "Acme prod says NEW" in fragment.text and 'hx-trigger="every 2s"' in fragment.text


def test_the_detail_page_of_a_segment_job_shows_counts_per_segment(
        make_job: Any, marketer: Any) -> None:
    job = make_job(status=JobStatus.SUCCEEDED, remote_id="seg-9", created_by=marketer,
                   metrics={"segmentedProfileCounter": {"def-a": 1234567},
                            "totalTime": {"totalTimeInMs": 2500}, "totalProfiles": 400})
    text = signed_in(marketer).get(reverse("jobs:detail", args=[job.pk])).text
    assert "def-a" in text and "1,234,567" in text and "2.5 s" in text
    assert 'id="job-timeline"' in text and "every 2s" not in text  # finished: nothing polls


@pytest.mark.django_db(transaction=True)  # the finish hooks run on commit, before the answer
def test_cancel_with_htmx_answers_the_row(jobs: dict[str, Job], marketer: Any,
                                          make_job: Any) -> None:
    pending = make_job(status=JobStatus.PENDING, created_by=marketer, label="Not sent yet")
    response = signed_in(marketer).post(reverse("jobs:cancel", args=[pending.pk]),
                                        headers=HX)
    assert response.status_code == 200
    assert "Cancelled" in response.text and "hx-trigger" not in response.text
    pending.refresh_from_db()
    assert pending.status == JobStatus.CANCELLED


def test_cancel_of_a_finished_job_says_why_in_the_row(jobs: dict[str, Job],
                                                     marketer: Any) -> None:
    response = signed_in(marketer).post(reverse("jobs:cancel", args=[jobs["mine_done"].pk]),
                                        headers=HX)
    assert response.status_code == 200 and CANCEL_FINISHED in response.text


def test_cancel_without_htmx_redirects_with_a_message(make_job: Any, marketer: Any) -> None:
    pending = make_job(JobKind.PREVIEW, JobStatus.PENDING, created_by=marketer)
    client = signed_in(marketer)
    response = client.post(reverse("jobs:cancel", args=[pending.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("jobs:detail", args=[pending.pk])
    assert "Cancelling" in response.text


def test_a_marketer_cannot_cancel_someone_elses_job(jobs: dict[str, Job],
                                                    marketer: Any) -> None:
    response = signed_in(marketer).post(reverse("jobs:cancel", args=[jobs["theirs"].pk]),
                                        headers=HX)
    assert response.status_code == 404
    assert Job.objects.get(pk=jobs["theirs"].pk).status == JobStatus.QUEUED


def test_the_sidebar_links_to_the_jobs_page(marketer: Any) -> None:
    text = signed_in(marketer).get(reverse("core:home")).text
    assert f'href="{reverse("jobs:list")}"' in text
