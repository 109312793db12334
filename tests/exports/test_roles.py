"""Who may do what on the exports pages: marketers, team leads and admins export; a user with
no role gets the 403 page everywhere; marketers see (and read the data of) their own exports
only, leads and admins everybody's."""

from __future__ import annotations

from typing import Any

import pytest

from exports import services
from jobs.models import Job, JobKind, JobStatus
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def finished_export(studio: Any, segment: Any, dataset_id: str, marketer: Any) -> Job:
    from segments.services import segments_run

    segments_run(segments=[segment], actor=marketer)
    job = services.export_start(connection=studio.connection, sandbox=studio.sandbox,
                                segments=[segment],
                                body=services.export_body(segment_ids=[segment.remote_id],
                                                          dataset_id=dataset_id),
                                label="US → Spring", actor=marketer)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    return job


def urls(job: Job) -> list[str]:
    [item] = services.export_files(job=job)
    base = f"/exports/{job.pk}/files/{item.file_id}/{item.name}"
    return [f"/exports/{job.pk}/", f"{base}/preview/", f"{base}/download/", f"{base}/csv/"]


def test_a_user_without_a_role_is_refused_every_exports_page(
        finished_export: Job, make_user: Any, client: Any) -> None:
    make_user("nobody", None)
    client.login(username="nobody", password=PASSWORD)
    for url in ["/exports/", "/exports/new/", "/exports/datasets/", *urls(finished_export)]:
        assert client.get(url).status_code == 403, url
    assert client.post("/exports/datasets/", {"name": "x"}).status_code == 403
    assert client.post("/exports/new/", {}).status_code == 403


def test_signed_out_visitors_are_sent_to_the_login_page(finished_export: Job,
                                                         client: Any) -> None:
    for url in ["/exports/", *urls(finished_export)]:
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url


@pytest.mark.parametrize("username", ["maya", "leo", "ada"])
def test_marketers_leads_and_admins_may_export(
        studio: Any, segment: Any, dataset_id: str, marketer: Any, lead: Any, admin_user: Any,
        client: Any, username: str) -> None:
    client.login(username=username, password=PASSWORD)
    assert client.get("/exports/new/").status_code == 200
    response = client.post("/exports/new/", {"segments": [str(segment.pk)],
                                             "dataset": dataset_id, "then": "export"})
    assert response.status_code == 302
    job = Job.objects.get(kind=JobKind.EXPORT)
    assert job.created_by is not None and job.created_by.username == username
    assert client.get(response["Location"]).status_code == 200


def test_another_marketer_cannot_see_or_download_my_export(
        finished_export: Job, make_user: Any, client: Any) -> None:
    from core.roles import Role

    make_user("mo", Role.MARKETER)
    client.login(username="mo", password=PASSWORD)
    listing = client.get("/exports/").content.decode()
    assert "US → Spring" not in listing and "No exports yet" in listing
    for url in urls(finished_export):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/jobs/{finished_export.pk}/cancel/").status_code == 404


@pytest.mark.parametrize("username", ["leo", "ada"])
def test_leads_and_admins_see_and_read_every_export(
        finished_export: Job, lead: Any, admin_user: Any, client: Any, username: str) -> None:
    client.login(username=username, password=PASSWORD)
    assert "US → Spring" in client.get("/exports/").content.decode()
    for url in urls(finished_export):
        response = client.get(url)
        assert response.status_code == 200, url
        if response.streaming:
            assert b"".join(response.streaming_content)


def test_an_export_id_that_is_not_an_export_is_not_found(
        studio: Any, segment: Any, marketer: Any, client: Any) -> None:
    from segments.services import segments_run

    segment_job = segments_run(segments=[segment], actor=marketer)[0]
    client.login(username="maya", password=PASSWORD)
    assert client.get(f"/exports/{segment_job.pk}/").status_code == 404
