"""The exports pages over HTTP (Django's test client, with and without HX-Request) against the
built-in engine served by the live server, Celery eager: datasets, the export form and its
messages, export jobs to SUCCEEDED or FAILED, the audience data, segment → export."""

from __future__ import annotations

import csv
import io
from typing import Any

import pyarrow.parquet as pq
import pytest

from exports import forms, services
from exports.models import ExportPlan, PlanState
from jobs.models import Job, JobKind, JobStatus
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

HX = {"HTTP_HX_REQUEST": "true"}


def signed_in(client: Any, username: str = "maya") -> Any:
    client.login(username=username, password=PASSWORD)
    return client


def run_segment(segment: Any, actor: Any) -> Job:
    from segments.services import segments_run

    job = segments_run(segments=[segment], actor=actor)[0]
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    return job


def export_now(client: Any, segment: Any, dataset_id: str, **extra: Any) -> Any:
    return client.post("/exports/new/", {"segments": [str(segment.pk)], "dataset": dataset_id,
                                         "then": "export", **extra})


def files_of(job: Job) -> list[services.ExportFile]:
    return services.export_files(job=job)


# --- datasets ---------------------------------------------------------------------------------

def test_datasets_page_lists_only_export_datasets_and_says_how_to_start(
        studio: Any, marketer: Any, client: Any) -> None:
    from connections.services import connection_client

    with connection_client(studio.connection, sandbox=studio.sandbox) as api:
        demo = [dataset.name for dataset in api.datasets()]
    assert demo  # generate_demo's profile and event datasets: not export destinations
    page = signed_in(client).get("/exports/datasets/").content.decode()
    assert "No export dataset yet" in page
    assert not any(f"<strong>{name}</strong>" in page for name in demo)


def test_creating_a_dataset_goes_through_the_catalog_and_is_audited(
        studio: Any, marketer: Any, client: Any) -> None:
    from core.models import AuditEntry

    signed_in(client)
    response = client.post("/exports/datasets/", {"name": "Spring audience",
                                                  "description": "for April"})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Dataset “Spring audience” created." in page
    assert "<strong>Spring audience</strong>" in page and "for April" in page
    datasets = services.export_datasets(connection=studio.connection, sandbox=studio.sandbox)
    assert [d.name for d in datasets] == ["Spring audience"]
    assert datasets[0].schema_ref == services.PROFILE_UNION_ID
    entry = AuditEntry.objects.get(action="dataset.create")
    assert entry.actor == marketer and entry.after is not None
    assert entry.after["dataset_id"] == datasets[0].id


def test_creating_a_dataset_over_htmx_swaps_the_panel(studio: Any, marketer: Any,
                                                      client: Any) -> None:
    response = signed_in(client).post("/exports/datasets/", {"name": "Audience A"}, **HX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert body.lstrip().startswith('<div id="dataset-panel"')
    assert "Dataset “Audience A” created." in body and "<strong>Audience A</strong>" in body


def test_dataset_form_errors_say_what_to_do(studio: Any, marketer: Any, dataset_id: str,
                                            client: Any) -> None:
    signed_in(client)
    response = client.post("/exports/datasets/", {"name": ""}, **HX)
    assert response.status_code == 200  # htmx swaps only 2xx answers
    assert forms.DATASET_NAME_REQUIRED in response.content.decode()
    response = client.post("/exports/datasets/", {"name": "Spring audience"})
    assert response.status_code == 400
    assert "already exists" in response.content.decode()


# --- the export form ------------------------------------------------------------------------

def test_export_form_offers_segments_datasets_policies_and_field_suggestions(
        studio: Any, segment: Any, dataset_id: str, marketer: Any, client: Any) -> None:
    page = signed_in(client).get(f"/exports/new/?dataset={dataset_id}").content.decode()
    assert f'value="{segment.pk}"' in page and "US customers" in page
    assert f'<option value="{dataset_id}" selected>Spring audience</option>' in page
    assert 'type="datetime-local" name="from_ingest"' in page
    assert '"homeAddress.countryCode"' in page  # the union schema's paths, for completion
    assert "(default)" in page  # the merge policies


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"segments": []}, "segments", forms.SEGMENTS_REQUIRED),
    ({"dataset": ""}, "dataset", forms.DATASET_REQUIRED),
    ({"dataset": "nope"}, "dataset", forms.DATASET_REQUIRED),
    ({"profile_fields": "person.name, shoeSize"}, "profile_fields",
     forms.FIELD_UNKNOWN.format(path="shoeSize", what="profile")),
    ({"event_fields": "eventType"}, "event_fields", forms.EVENTS_OFF),
    ({"from_ingest": "yesterday"}, "from_ingest", forms.DATETIME_INVALID),
])
def test_export_form_errors_are_shown_at_their_field(
        studio: Any, segment: Any, dataset_id: str, marketer: Any, client: Any,
        data: dict[str, Any], field: str, message: str) -> None:
    post = {"segments": [str(segment.pk)], "dataset": dataset_id, "then": "export", **data}
    response = signed_in(client).post("/exports/new/", post)
    assert response.status_code == 400
    assert response.context["form"].errors[field] == [message]
    page = response.content.decode()
    assert message.replace("“", "&ldquo;") in page or message in page
    assert "The export was not started" in page
    assert not Job.objects.filter(kind=JobKind.EXPORT).exists()


def test_export_body_carries_the_forms_choices(studio: Any, segment: Any, dataset_id: str,
                                               marketer: Any, client: Any) -> None:
    run_segment(segment, marketer)
    response = export_now(signed_in(client), segment, dataset_id,
                          profile_fields="person.name, homeAddress.countryCode",
                          from_ingest="2020-01-31T09:30", include_events="on",
                          event_fields="eventType", events_from="2021-02-01T00:00",
                          empty_profiles="on")
    assert response.status_code == 302
    job = Job.objects.get(kind=JobKind.EXPORT)
    assert job.request == {
        "fields": "person.name,homeAddress.countryCode",
        "filter": {"segments": [{"segmentId": segment.remote_id, "segmentNs": "ups",
                                 "status": ["realized", "existing"]}],
                   "emptyProfiles": True, "fromIngestTimestamp": "2020-01-31T09:30:00Z"},
        "additionalFields": {"eventList": {"fields": "eventType",
                                           "filter": {"fromIngestTimestamp":
                                                      "2021-02-01T00:00:00Z"}}},
        "destination": {"datasetId": dataset_id, "segmentPerBatch": False},
        "schema": {"name": "_xdm.context.profile"},
    }
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    [item] = files_of(job)
    preview = services.export_preview(job=job, file_id=item.file_id, name=item.name)
    # one column per leaf field: the chosen fields' leaves, a column per identity namespace and
    # per segment; the events (a list) in one column
    columns = preview.columns
    assert columns[columns.index("identityMap (primary)") + 1:] == [
        "person.name.firstName", "person.name.lastName", "homeAddress.countryCode",
        f"segmentMembership.ups.{segment.remote_id}.status",
        f"segmentMembership.ups.{segment.remote_id}.lastQualificationTime", "events"]
    assert {"identityMap.CRMID", "identityMap.Email"} <= set(columns)
    assert all(column.startswith("identityMap.") for column in
               columns[:columns.index("identityMap (primary)")])


# --- an export to SUCCEEDED and its data -----------------------------------------------------

def test_an_export_succeeds_and_its_members_can_be_previewed_and_downloaded(
        studio: Any, segment: Any, dataset_id: str, marketer: Any, client: Any) -> None:
    from core.models import AuditEntry

    segment_job = run_segment(segment, marketer)
    members = segment_job.metrics["segmentedProfileCounter"][segment.remote_id]
    assert members > 0
    response = export_now(signed_in(client), segment, dataset_id)
    job = Job.objects.get(kind=JobKind.EXPORT)
    assert response["Location"] == f"/exports/{job.pk}/"
    assert job.status == JobStatus.SUCCEEDED and job.created_by == marketer
    assert job.metrics["totalExportedProfileCounter"] == members
    assert job.metrics["datasetId"] == dataset_id

    page = client.get(f"/exports/{job.pk}/").content.decode()
    assert f'data-testid="exported-count">{members}<' in page
    assert job.metrics["batchId"] in page
    assert f'id="job-{job.pk}"' in page and 'hx-trigger="every 2s"' not in page
    [item] = files_of(job)
    assert item.records == members and item.size and item.name.endswith(".parquet")
    base = f"/exports/{job.pk}/files/{item.file_id}/{item.name}"
    assert f'href="{base}/download/"' in page

    preview = client.get(f"{base}/preview/", **HX)
    body = preview.content.decode()
    assert "<html" not in body and body.count('data-testid="export-row"') == min(members, 20)
    assert "<th>identityMap.Email</th>" in body and "<th>person.name.firstName</th>" in body
    assert f"<th>segmentMembership.ups.{segment.remote_id}.status</th>" in body
    assert "<html" in client.get(f"{base}/preview/").content.decode()

    download = client.get(f"{base}/download/")
    assert download.streaming and download["Content-Disposition"] == (
        f'attachment; filename="{item.name}"')
    data = b"".join(download.streaming_content)
    assert len(data) == item.size == int(download["Content-Length"])
    table = pq.read_table(io.BytesIO(data))
    assert table.num_rows == members

    csv_response = client.get(f"{base}/csv/")
    assert csv_response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(csv_response.streaming_content).decode())))
    assert len(rows) == members + 1 and len({len(row) for row in rows}) == 1
    header = rows[0]
    assert "person.name.firstName" in header and "homeAddress.countryCode" in header
    assert "person" not in header and "identityMap" not in header  # no struct dumped whole
    # the CSV says what the Parquet says, row by row: the first name and the primary identity
    records = sorted(table.to_pylist(), key=lambda r: r["person"]["name"]["firstName"] or "")
    lines = sorted(rows[1:], key=lambda r: r[header.index("person.name.firstName")])
    for record, line in zip(records, lines, strict=True):
        assert line[header.index("person.name.firstName")] == record["person"]["name"][
            "firstName"]
        assert line[header.index("homeAddress.countryCode")] == "US"
        [primary] = [f"{ns}: {item['id']}" for ns, items in record["identityMap"]
                     for item in items if item["primary"]]
        assert line[header.index("identityMap (primary)")] == primary
        stamp = line[header.index(f"segmentMembership.ups.{segment.remote_id}"
                                  ".lastQualificationTime")]
        assert stamp.endswith("Z") and "T" in stamp
    assert list(AuditEntry.objects.filter(action="export.download").values_list(
        "after__format", flat=True).order_by("pk")) == ["parquet", "csv"]
    assert AuditEntry.objects.filter(action="export.start", object_id=str(job.pk)).exists()


def test_downloads_never_show_engine_paths_or_credentials(
        studio: Any, segment: Any, dataset_id: str, marketer: Any, client: Any,
        settings: Any) -> None:
    run_segment(segment, marketer)
    export_now(signed_in(client), segment, dataset_id)
    job = Job.objects.get(kind=JobKind.EXPORT)
    [item] = files_of(job)
    secret = studio.connection.client_secret()
    for path in (f"/exports/{job.pk}/", f"/exports/{job.pk}/files/{item.file_id}/{item.name}/"
                 "preview/"):
        page = client.get(path).content.decode()
        assert secret not in page and str(studio.url) not in page
        assert "/data/foundation" not in page and str(settings.ENGINE_DATA_DIR) not in page
    # a file of another batch, or a name the batch does not list, is not ours to send
    assert client.get(f"/exports/{job.pk}/files/{item.file_id}/..%2Fsecret/download/"
                      ).status_code == 404
    assert client.get(f"/exports/{job.pk}/files/{'0' * 32}-1/{item.name}/download/"
                      ).status_code == 404


def test_unfinished_export_polls_its_data_section_from_our_database(
        studio: Any, marketer: Any, client: Any) -> None:
    job = Job.objects.create(kind=JobKind.EXPORT, connection=studio.connection,
                             sandbox=studio.sandbox, label="Running export",
                             status=JobStatus.RUNNING, remote_id="7", created_by=marketer)
    signed_in(client)
    response = client.get(f"/exports/{job.pk}/", **HX)
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="export-data"')
    assert 'hx-trigger="every 2s"' in body and "being written" in body
    page = client.get(f"/exports/{job.pk}/").content.decode()
    assert f'action="/jobs/{job.pk}/cancel/"' in page  # the row's cancel, on our page


# --- failures -------------------------------------------------------------------------------

def batches_of(studio: Any, dataset_id: str) -> list[Any]:
    from connections.services import connection_client

    with connection_client(studio.connection, sandbox=studio.sandbox) as api:
        return list(api.batches(dataset_id=dataset_id))


def test_an_export_to_a_missing_dataset_fails_with_the_engines_message_and_no_batch(
        studio: Any, segment: Any, marketer: Any, client: Any) -> None:
    body = services.export_body(segment_ids=[segment.remote_id], dataset_id="0" * 24)
    job = services.export_start(connection=studio.connection, sandbox=studio.sandbox,
                                segments=[segment], body=body, label="to nowhere",
                                actor=marketer)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error_message == f"Error in Export Job: the destination dataset {'0' * 24} is " \
                                "not found."
    page = signed_in(client).get(f"/exports/{job.pk}/").content.decode()
    assert 'data-testid="export-error"' in page and "is not found" in page
    assert page.count(job.error_message) == 2  # on the row and in the data section
    again = f"/exports/new/?segment={segment.pk}&amp;dataset={'0' * 24}"
    assert f'href="{again}" data-testid="export-again"' in page
    form = client.get(again.replace("&amp;", "&")).content.decode()
    assert f'value="{segment.pk}" checked' in form
    listing = client.get("/exports/").content.decode()
    assert job.error_message in listing
    fragment = client.get("/exports/", **HX).content.decode()
    assert fragment.lstrip().startswith('<section id="export-table"')
    assert job.error_message in fragment and "<html" not in fragment
    assert batches_of(studio, "0" * 24) == []


def test_an_engine_error_fails_the_export_and_leaves_no_readable_batch(
        studio: Any, segment: Any, dataset_id: str, marketer: Any, client: Any) -> None:
    from connections.services import connection_client

    run_segment(segment, marketer)
    # a merge policy made after the store was built is not in the query snapshot yet: the
    # engine fails the export while writing it
    with connection_client(studio.connection, sandbox=studio.sandbox) as api:
        policy = api.request("POST", "/data/core/ups/config/mergePolicies", json={
            "name": "brand new", "schema": {"name": "_xdm.context.profile"},
            "identityGraph": {"type": "none"},
            "attributeMerge": {"type": "timestampOrdered"}}).json()
    response = export_now(signed_in(client), segment, dataset_id, merge_policy=policy["id"])
    job = Job.objects.get(kind=JobKind.EXPORT)
    assert response["Location"] == f"/exports/{job.pk}/"
    assert job.status == JobStatus.FAILED
    assert "is not in the query snapshot yet" in job.error_message
    page = client.get(f"/exports/{job.pk}/").content.decode()
    assert "The export failed." in page and "query snapshot" in page
    assert 'data-testid="export-files"' not in page
    batches = batches_of(studio, dataset_id)
    assert [batch.status for batch in batches] == ["failed"]
    with connection_client(studio.connection, sandbox=studio.sandbox) as api:
        assert api.batch_files(batches[0].id) == []
    with pytest.raises(services.ExportError, match="has not succeeded"):
        services.export_files(job=job)


# --- segment → export in one click --------------------------------------------------------

def test_run_then_export_makes_two_linked_jobs_and_starts_the_export_once(
        studio: Any, segment: Any, dataset_id: str, marketer: Any, client: Any) -> None:
    from core.models import AuditEntry

    response = signed_in(client).post("/exports/new/", {
        "segments": [str(segment.pk)], "dataset": dataset_id, "then": "run-first"})
    plan = ExportPlan.objects.get()
    assert response["Location"] == f"/exports/plans/{plan.pk}/"
    parent = plan.parent
    assert parent.kind == JobKind.SEGMENT and parent.status == JobStatus.SUCCEEDED
    export = Job.objects.get(kind=JobKind.EXPORT)
    assert plan.state == PlanState.STARTED and plan.export_job == export
    assert export.parent == parent and export.status == JobStatus.SUCCEEDED
    count = parent.metrics["segmentedProfileCounter"][segment.remote_id]
    assert export.metrics["totalExportedProfileCounter"] == count > 0
    # again (a redelivered event, the resume on the list page): still one export
    assert services.export_plan_advance(parent=parent) is None
    assert services.export_plans_resume() == 0
    assert Job.objects.filter(kind=JobKind.EXPORT).count() == 1
    page = client.get(f"/exports/{export.pk}/").content.decode()
    assert f'id="job-{parent.pk}"' in page and f'id="job-{export.pk}"' in page
    status = client.get(f"/exports/plans/{plan.pk}/", **HX).content.decode()
    assert status.lstrip().startswith('<section id="plan-status"') and "every 2s" not in status
    assert f'href="/exports/{export.pk}/"' in status
    assert {"export.plan", "export.start", "segment.run"} <= set(
        AuditEntry.objects.values_list("action", flat=True))


def test_a_plan_whose_segment_job_was_cancelled_is_given_up(
        studio: Any, segment: Any, dataset_id: str, marketer: Any) -> None:
    from django.db import transaction

    from jobs.services import job_cancel, job_create

    with transaction.atomic():  # the submit waits for the commit; cancel it before
        parent = job_create(kind=JobKind.SEGMENT, connection=studio.connection,
                            sandbox=studio.sandbox,
                            request={"segments": [{"segmentId": segment.remote_id}]},
                            label="US", created_by=marketer)
        plan = ExportPlan.objects.create(parent=parent, label="US → Spring", created_by=marketer,
                                         body=services.export_body(
                                             segment_ids=[segment.remote_id],
                                             dataset_id=dataset_id))
        job_cancel(job=parent, actor=marketer)
    plan.refresh_from_db()
    assert plan.state == PlanState.ABANDONED and plan.export_job is None
    assert not Job.objects.filter(kind=JobKind.EXPORT).exists()


def test_a_plan_left_waiting_by_a_lost_event_is_resumed_by_the_list_page(
        studio: Any, segment: Any, dataset_id: str, marketer: Any, client: Any) -> None:
    parent = run_segment(segment, marketer)  # finished before the plan existed: no event
    plan = ExportPlan.objects.create(parent=parent, label="US → Spring", created_by=marketer,
                                     body=services.export_body(
                                         segment_ids=[segment.remote_id],
                                         dataset_id=dataset_id))
    signed_in(client).get("/exports/")
    plan.refresh_from_db()
    assert plan.state == PlanState.STARTED and plan.export_job is not None
    assert plan.export_job.status == JobStatus.SUCCEEDED and plan.export_job.parent == parent


def test_the_plan_page_offers_to_cancel_its_waiting_segment_job(
        studio: Any, segment: Any, dataset_id: str, marketer: Any, client: Any) -> None:
    from django.db import transaction

    from exports.tasks import export_plans_resume
    from jobs.services import job_create

    with transaction.atomic():  # not sent yet: the row is PENDING while we look at the page
        parent = job_create(kind=JobKind.SEGMENT, connection=studio.connection,
                            sandbox=studio.sandbox,
                            request={"segments": [{"segmentId": segment.remote_id}]},
                            label="US", created_by=marketer)
        plan = ExportPlan.objects.create(parent=parent, label="US → Spring", created_by=marketer,
                                         body=services.export_body(
                                             segment_ids=[segment.remote_id],
                                             dataset_id=dataset_id))
        page = signed_in(client).get(f"/exports/plans/{plan.pk}/").content.decode()
        assert f'action="/jobs/{parent.pk}/cancel/"' in page
        assert 'data-state="waiting"' in page and 'hx-trigger="every 2s"' in page
        listing = client.get("/exports/").content.decode()
        assert 'data-testid="waiting-plans"' in listing
        assert f'href="/exports/plans/{plan.pk}/"' in listing
        assert export_plans_resume.delay().get() == 0  # its segment job has not finished
        row = client.post(f"/jobs/{parent.pk}/cancel/", **HX).content.decode()
        assert 'data-status="cancelled"' in row
    plan.refresh_from_db()
    assert plan.state == PlanState.ABANDONED
    page = client.get(f"/exports/plans/{plan.pk}/").content.decode()
    assert "The export did not start" in page and "every 2s" not in page.split(
        'id="plan-status"')[1]
