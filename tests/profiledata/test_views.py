"""The Profile data page over HTTP (Django's test client) against the built-in engine served
by the live server: admins only; the store's datasets, figures and merge policies; a file sent
into a new or an existing dataset becomes part of the profiles; bad input is refused where it
was entered and creates nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from connections.services import connection_client
from jobs.models import Job, JobKind, JobStatus
from profiledata import forms, services
from tests.conftest import PASSWORD
from tests.profiledata.conftest import jsonl, person

pytestmark = pytest.mark.django_db(transaction=True)
PAGE = "/profile-data/"
ADD = "/profile-data/add/"


def signed_in(client: Any, username: str) -> Any:
    assert client.login(username=username, password=PASSWORD)
    return client


def profile_count(studio: Any) -> int:
    with connection_client(studio.connection, sandbox=studio.sandbox) as client:
        return int(client.preview_sample_status()["totalRows"])


def dataset_names(studio: Any) -> list[str]:
    with connection_client(studio.connection, sandbox=studio.sandbox) as client:
        return [dataset.name for dataset in client.datasets()]


@pytest.mark.parametrize("username", ["maya", "leo"])
def test_profile_data_is_for_admins_only(studio: Any, marketer: Any, lead: Any, client: Any,
                                         username: str) -> None:
    signed_in(client, username)
    assert client.get(PAGE).status_code == 403
    upload = SimpleUploadedFile("x.jsonl", b'{"a": 1}\n')
    assert client.post(ADD, {"dataset": "new", "name": "Sneaky", "file": upload}
                       ).status_code == 403
    assert "Sneaky" not in dataset_names(studio)
    assert not Job.objects.filter(kind=JobKind.INGEST).exists()


def test_the_page_shows_the_stores_datasets_figures_and_merge_policies(
        studio: Any, admin_user: Any, client: Any) -> None:
    page = signed_in(client, "ada").get(PAGE)
    assert page.status_code == 200
    text = page.content.decode()
    for name in ("CRM profiles", "Loyalty members", "Web and commerce events"):
        assert name in text
    assert "Profile records" in text and "Experience events" in text
    assert f">{profile_count(studio):,}<" in text  # the profiles figure
    assert 'data-testid="merge-policies"' in text and "Default timestamp-ordered" in text
    # the form offers the profile-enabled datasets, and a new one
    assert 'value="new"' in text and '<optgroup label="Profile records">' in text


def test_a_file_sent_into_a_new_dataset_becomes_part_of_the_profiles(
        studio: Any, admin_user: Any, client: Any, tmp_path: Path) -> None:
    before = profile_count(studio)
    path = jsonl(tmp_path / "signups.jsonl", [person("ines"), person("jon"), person("kai")])
    with path.open("rb") as handle:
        answer = signed_in(client, "ada").post(ADD, {"dataset": "new", "name": "Spring signups",
                                                     "kind": "profile", "file": handle})
    assert answer.status_code == 302, answer.content.decode()[:2000]
    job = Job.objects.get(kind=JobKind.INGEST)
    assert job.status == JobStatus.SUCCEEDED, (job.status, job.error_message)
    assert job.created_by == admin_user and job.label == "signups.jsonl into Spring signups"
    assert job.metrics["recordsWritten"] == 3
    assert profile_count(studio) == before + 3  # the store was rebuilt with them
    assert not (Path(settings.VAR_DIR) / "uploads" / job.request["upload"]).exists()
    page = client.get(PAGE).content.decode()
    assert "Spring signups" in page
    assert "signups.jsonl into Spring signups" in page  # the ingestion's row


def test_bad_input_is_refused_at_its_field_and_creates_nothing(
        studio: Any, admin_user: Any, client: Any) -> None:
    signed_in(client, "ada")
    before = dataset_names(studio)
    no_name = client.post(ADD, {"dataset": "new", "name": " ", "kind": "profile",
                                "file": SimpleUploadedFile("a.jsonl", b"{}\n")})
    assert no_name.status_code == 400 and forms.NAME_REQUIRED in no_name.content.decode()
    no_file = client.post(ADD, {"dataset": "new", "name": "Spring"})
    assert no_file.status_code == 400 and forms.FILE_REQUIRED in no_file.content.decode()
    text_file = client.post(ADD, {"dataset": "new", "name": "Spring", "kind": "profile",
                                  "file": SimpleUploadedFile("notes.txt", b"hello")})
    assert text_file.status_code == 400
    assert services.FORMAT_UNKNOWN.format(name="notes.txt") in text_file.content.decode()
    unknown = client.post(ADD, {"dataset": "5c8c3c555033b814b69f947f",
                                "file": SimpleUploadedFile("a.jsonl", b"{}\n")})
    assert unknown.status_code == 400 and forms.DATASET_REQUIRED in unknown.content.decode()
    assert dataset_names(studio) == before
    assert not Job.objects.filter(kind=JobKind.INGEST).exists()


def test_without_a_connection_the_page_says_where_to_add_one(
        db: Any, admin_user: Any, client: Any) -> None:
    from profiledata.views import NO_CONNECTION

    page = signed_in(client, "ada").get(PAGE)
    assert page.status_code == 200 and NO_CONNECTION in page.content.decode()


def test_a_file_of_bad_records_fails_its_ingestion_and_says_why(
        studio: Any, admin_user: Any, client: Any, tmp_path: Path) -> None:
    before = profile_count(studio)
    path = jsonl(tmp_path / "broken.jsonl", [{"person": {"name": {"firstName": "Nobody"}}}] * 3)
    with path.open("rb") as handle:
        answer = signed_in(client, "ada").post(ADD, {"dataset": "new", "name": "Broken export",
                                                     "kind": "profile", "file": handle})
    assert answer.status_code == 302
    job = Job.objects.get(kind=JobKind.INGEST)
    assert job.status == JobStatus.FAILED
    assert "3 of 3 records are bad" in job.error_message, job.error_message
    assert profile_count(studio) == before
    detail = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "identit" in detail.lower()  # and each record's reason, on the job's page


def test_a_few_bad_records_are_counted_and_listed_and_the_rest_arrives(
        studio: Any, admin_user: Any, client: Any, tmp_path: Path) -> None:
    before = profile_count(studio)
    good = [person(f"new{n}") for n in range(20)]
    path = jsonl(tmp_path / "mostly.jsonl", [*good, {"person": {"name": {"firstName": "X"}}}])
    with path.open("rb") as handle:
        signed_in(client, "ada").post(ADD, {"dataset": "new", "name": "Mostly good",
                                            "kind": "profile", "file": handle})
    job = Job.objects.get(kind=JobKind.INGEST)
    assert job.status == JobStatus.SUCCEEDED and not job.error_message
    assert (job.metrics["recordsWritten"], job.metrics["failedRecordCount"]) == (20, 1)
    assert profile_count(studio) == before + 20
    detail = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Records refused" in detail and "identit" in detail.lower()  # line 21's reason


@pytest.mark.parametrize(("name", "fmt", "stored"), [
    ("crm.jsonl", "json", "crm.jsonl"), ("CRM.JSON", "json", "CRM.JSON"),
    ("web.parquet", "parquet", "web.parquet"), ("people.csv", "csv", "people.csv"),
    ("Profile test data.json.gz", "json", "Profile_test_data.json.gz"),
    ("luma.jsonl.gz", "json", "luma.jsonl.gz"), ("../../etc/x.csv", "csv", "x.csv")])
def test_a_files_format_and_kept_name_come_from_its_name(name: str, fmt: str,
                                                         stored: str) -> None:
    assert services.file_format(name) == fmt
    assert services.stored_name(name) == stored


@pytest.mark.parametrize("name", ["notes.txt", "archive.gz", "data.parquet.gz", "README", ""])
def test_other_files_are_refused_saying_what_to_send(name: str) -> None:
    with pytest.raises(services.DataError) as refused:
        services.file_format(name)
    assert refused.value.field == "file" and ".jsonl" in refused.value.message


def test_adobes_sample_files_go_in_through_the_page(
        studio: Any, admin_user: Any, client: Any) -> None:
    """Adobe's public samples (../shared/sample-data): CRM records as a JSON array, a gzipped
    JSON Lines file with spaces in its name, and web events as Parquet — each record is either
    ingested or counted as refused."""
    import gzip
    import json

    import pyarrow.parquet as pq

    from tests.engine.conftest import sample

    crm = sample("experience-platform-etl-reference", "CRM_profiles.json")
    postman = sample("experience-platform-postman-samples", "Profile test data.json.gz")
    luma = sample("experience-platform-dsw-reference", "luma_post.snappy.parquet")
    expected = {crm: len(json.loads(crm.read_text())),
                postman: len(gzip.decompress(postman.read_bytes()).splitlines()),
                luma: pq.read_metadata(luma).num_rows}
    signed_in(client, "ada")
    for path, kind in ((crm, "profile"), (postman, "profile"), (luma, "event")):
        with path.open("rb") as handle:
            answer = client.post(ADD, {"dataset": "new", "name": f"Adobe {path.stem}",
                                       "kind": kind, "file": handle})
        assert answer.status_code == 302, answer.content.decode()[:1000]
        job = Job.objects.filter(kind=JobKind.INGEST).latest("created_at")
        assert job.status == JobStatus.SUCCEEDED, (path.name, job.error_message)
        counted = job.metrics["recordsWritten"] + job.metrics["failedRecordCount"]
        assert counted == expected[path] and job.metrics["recordsWritten"] > 0, path.name
    assert Job.objects.get(label__startswith="Profile_test_data.json.gz").request[
        "fileName"] == "Profile_test_data.json.gz"


def test_an_admin_deletes_a_dataset_and_the_profiles_lose_its_records(
        studio: Any, admin_user: Any, marketer: Any, lead: Any, client: Any) -> None:
    from core.models import AuditEntry
    from profiledata.views import DATASET_DELETED

    with connection_client(studio.connection, sandbox=studio.sandbox) as api:
        loyalty = next(d for d in api.datasets() if d.name == "Loyalty members")
        fragments = int(api.preview_sample_status()["totalFragmentCount"])
        loyalty_records = sum(b.records_written or 0 for b in api.batches(dataset_id=loyalty.id))
    url = f"/profile-data/datasets/{loyalty.id}/delete/"
    for username in ("maya", "leo"):
        signed_in(client, username)
        assert client.post(url, {"name": "Loyalty members"}).status_code == 403
    assert "Loyalty members" in dataset_names(studio)

    signed_in(client, "ada")
    answer = client.post(url, {"name": "Loyalty members"}, follow=True)
    assert DATASET_DELETED.format(name="Loyalty members") in answer.content.decode()
    assert "Loyalty members" not in dataset_names(studio)
    with connection_client(studio.connection, sandbox=studio.sandbox) as api:
        assert int(api.preview_sample_status()["totalFragmentCount"]) == (
            fragments - loyalty_records)  # rebuilt without them (Celery is eager here)
    assert AuditEntry.objects.filter(action="dataset.delete").count() == 1

    again = client.post(url, {"name": "Loyalty members"}, follow=True)  # gone already
    assert "did not delete “Loyalty members”" in again.content.decode()
