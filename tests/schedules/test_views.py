"""Schedule pages over HTTP for every role, with and without HX-Request: team leads and admins
list, create, pause, resume and delete schedules; marketers and users without a role get 403."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from schedules.forms import CRON_REQUIRED, SEGMENTS_REQUIRED
from schedules.models import Schedule
from schedules.services import schedule_create
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)
HX = {"HX-Request": "true"}


def signed_in(user: Any) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def schedule(studio: Any, segment: Any, lead: Any) -> Schedule:
    return schedule_create(name="Morning audiences", connection=studio.connection,
                           sandbox=studio.sandbox, segments=[segment], cron="0 6 * * *",
                           actor=lead)


@pytest.mark.parametrize("role", ["marketer", "nobody"])
def test_schedules_are_refused_to_marketers_and_users_without_a_role(
        request: pytest.FixtureRequest, schedule: Schedule, make_user: Any,
        role: str) -> None:
    user = make_user("nobody", None) if role == "nobody" else request.getfixturevalue(role)
    client = signed_in(user)
    for url in (reverse("schedules:list"), reverse("schedules:create"),
                reverse("schedules:detail", args=[schedule.pk])):
        assert client.get(url).status_code == 403
        assert client.get(url, headers=HX).status_code == 403
    for name in ("pause", "resume", "delete"):
        url = reverse(f"schedules:{name}", args=[schedule.pk])
        assert client.post(url).status_code == 403
        assert client.post(url, headers=HX).status_code == 403
    assert client.post(reverse("schedules:create"), {"name": "x"}).status_code == 403
    schedule.refresh_from_db()
    assert not schedule.paused


@pytest.mark.parametrize("role", ["lead", "admin_user"])
def test_leads_and_admins_manage_schedules(request: pytest.FixtureRequest,
                                           schedule: Schedule, segment: Any,
                                           role: str) -> None:
    client = signed_in(request.getfixturevalue(role))
    page = client.get(reverse("schedules:list"))
    fragment = client.get(reverse("schedules:list"), headers=HX)
    assert page.status_code == fragment.status_code == 200
    assert "Morning audiences" in page.text and "<html" in page.text
    assert fragment.text.lstrip().startswith('<div id="schedule-table"')

    detail = client.get(reverse("schedules:detail", args=[schedule.pk]))
    runs = client.get(reverse("schedules:detail", args=[schedule.pk]), headers=HX)
    assert detail.status_code == runs.status_code == 200
    assert "No runs yet" in runs.text and "<html" not in runs.text

    paused = client.post(reverse("schedules:pause", args=[schedule.pk]), headers=HX)
    assert paused.status_code == 200 and 'data-testid="resume"' in paused.text
    assert paused.text.lstrip().startswith(f'<tr id="schedule-{schedule.pk}"')
    resumed = client.post(reverse("schedules:resume", args=[schedule.pk]))
    assert resumed.status_code == 302
    schedule.refresh_from_db()
    assert not schedule.paused

    form = client.get(reverse("schedules:create"))
    assert form.status_code == 200 and "Spring" not in form.text  # no dataset yet
    assert segment.name in form.text
    created = client.post(reverse("schedules:create"), {
        "name": "Weekdays", "segments": [str(segment.pk)], "frequency": "cron",
        "cron": "30 5 * * 1-5", "timezone": "Europe/Paris", "email_owner": "on"})
    assert created.status_code == 302
    weekdays = Schedule.objects.get(name="Weekdays")
    assert weekdays.cron == "30 5 * * 1-5" and weekdays.timezone == "Europe/Paris"

    deleted = client.post(reverse("schedules:delete", args=[weekdays.pk]))
    assert deleted.status_code == 302 and not Schedule.objects.filter(name="Weekdays").exists()


def test_the_form_says_what_is_missing(schedule: Schedule, lead: Any) -> None:
    client = signed_in(lead)
    page = client.post(reverse("schedules:create"), {"name": "Empty", "frequency": "cron"})
    fragment = client.post(reverse("schedules:create"), {"name": "Empty", "frequency": "cron"},
                           headers=HX)
    assert page.status_code == 400 and fragment.status_code == 200
    for response in (page, fragment):
        assert SEGMENTS_REQUIRED in response.text and CRON_REQUIRED in response.text
    assert fragment.text.lstrip().startswith('<form method="post"')
    assert not Schedule.objects.filter(name="Empty").exists()


def test_the_first_page_of_runs_of_an_active_schedule_refreshes_itself(
        schedule: Schedule, lead: Any) -> None:
    """A run the beat starts appears on the open page: page 1 polls its own fragment."""
    from schedules.models import ScheduleRun

    client = signed_in(lead)
    url = reverse("schedules:detail", args=[schedule.pk])
    page = client.get(url).text
    assert f'hx-get="{url}" hx-trigger="every 15s"' in page and "No runs yet" in page
    ScheduleRun.objects.create(schedule=schedule, due_at=schedule.next_run_at,
                               error="The connection could not be reached.")
    fragment = client.get(url, headers=HX).text
    assert fragment.lstrip().startswith('<div id="schedule-runs"')
    assert "The connection could not be reached." in fragment and "No runs yet" not in fragment
    assert f'hx-get="{url}"' in fragment  # and it goes on polling
    schedule.paused = True
    schedule.save()
    assert 'data-testid="runs-refresh"' not in client.get(url).text
