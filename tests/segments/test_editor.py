"""The editor end to end through HTTP (Django's test client, with and without HX-Request),
against the built-in engine served by the live server."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.conftest import PASSWORD

US = 'homeAddress.countryCode = "US"'


def signed_in(user: Any) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def create(client: Client, name: str = "US customers", pql: str = US, **extra: Any) -> Any:
    return client.post("/segments/new/", {"name": name, "pql": pql, "description": "",
                                          "evaluation_method": "batch", "merge_policy_id": "",
                                          **extra})


def test_validate_underlines_the_syntax_error_span(studio: Any, marketer: Any) -> None:
    client = signed_in(marketer)
    text = 'homeAddress.countryCode = "US" annd x'
    response = client.post("/segments/validate/", {"pql": text}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body  # a fragment
    assert 'data-testid="pql-problem"' in body
    start = int(body.split('data-start="')[1].split('"')[0])
    end = int(body.split('data-end="')[1].split('"')[0])
    assert text[start:end].startswith("annd")


def test_validate_checks_fields_against_the_engines_union_schema(studio: Any,
                                                                 marketer: Any) -> None:
    client = signed_in(marketer)
    body = client.post("/segments/validate/",
                       {"pql": 'homeAddress.countryCod = "US"'}).content.decode()
    assert 'data-testid="pql-problem"' in body
    assert "Did you mean &quot;homeAddress.countryCode&quot;?" in body
    ok = client.post("/segments/validate/", {"pql": US}).content.decode()
    assert 'data-testid="pql-ok"' in ok and "every field exists" in ok


def test_editor_page_lists_union_schema_fields_and_functions(studio: Any,
                                                            marketer: Any) -> None:
    body = signed_in(marketer).get("/segments/new/").content.decode()
    assert "homeAddress.countryCode" in body
    assert 'id="pql-fields"' in body  # completion data, JSON-encoded safely
    assert "startsWith" in body


def test_save_creates_the_remote_definition_and_version_one(studio: Any,
                                                            marketer: Any) -> None:
    from aep import AEPClient  # noqa: F401 — the client the app uses
    from connections.services import connection_client
    from segments.models import Segment

    response = create(signed_in(marketer))
    assert response.status_code == 302
    segment = Segment.objects.get()
    assert segment.remote_id and segment.versions.get().number == 1
    assert segment.created_by == marketer
    with connection_client(studio.connection) as client:
        remote = client.get_definition(segment.remote_id)
    assert remote.name == "US customers" and remote.expression == US


def test_invalid_pql_is_not_saved_and_the_form_says_where(studio: Any, marketer: Any) -> None:
    from segments.models import Segment

    response = create(signed_in(marketer), pql='homeAddress.countryCode = "US')
    assert response.status_code == 200
    assert "line 1, column" in response.content.decode()
    assert not Segment.objects.exists()


def test_duplicate_names_are_refused_case_insensitively_with_a_clear_message(
        studio: Any, marketer: Any) -> None:
    from segments.models import Segment

    client = signed_in(marketer)
    create(client)
    response = create(client, name="us CUSTOMERS")
    body = response.content.decode()
    assert response.status_code == 200
    assert "already exists in sandbox" in body
    assert Segment.objects.count() == 1


def test_edit_makes_a_version_and_versions_compare_side_by_side(studio: Any,
                                                                marketer: Any) -> None:
    from segments.models import Segment

    client = signed_in(marketer)
    create(client)
    segment = Segment.objects.get()
    response = client.post(f"/segments/{segment.pk}/", {
        "name": "US customers", "pql": 'homeAddress.countryCode = "CA"', "description": "",
        "evaluation_method": "batch", "merge_policy_id": segment.merge_policy_id})
    assert response.status_code == 302
    assert list(segment.versions.values_list("number", flat=True)) == [2, 1]

    page = client.get(f"/segments/{segment.pk}/versions/?a=1&b=2").content.decode()
    assert "diff-del" in page and "diff-add" in page
    fragment = client.get(f"/segments/{segment.pk}/versions/?a=1&b=2",
                          headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in fragment and 'id="version-diff"' in fragment

    response = client.post(f"/segments/{segment.pk}/versions/1/restore/")
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.pql == US
    latest = segment.versions.first()
    assert latest.number == 3 and latest.note == "restored from version 1"


def test_delete_is_refused_while_another_segment_uses_it(studio: Any, marketer: Any) -> None:
    from segments.models import Segment

    client = signed_in(marketer)
    create(client)
    base = Segment.objects.get()
    create(client, name="US and in base", pql=f'inSegment("{base.remote_id}") and {US}')
    page = client.get(f"/segments/{base.pk}/delete/").content.decode()
    assert "US and in base" in page
    response = client.post(f"/segments/{base.pk}/delete/")
    assert response.status_code == 200
    assert "use this one with inSegment" in response.content.decode()
    assert Segment.objects.filter(pk=base.pk).exists()

    dependent = Segment.objects.get(name="US and in base")
    assert client.post(f"/segments/{dependent.pk}/delete/").status_code == 302
    assert client.post(f"/segments/{base.pk}/delete/").status_code == 302
    assert not Segment.objects.exists()


def test_estimate_of_unsaved_pql_finishes_with_figures_and_a_preview_page(
        studio: Any, marketer: Any) -> None:
    from jobs.models import Job

    client = signed_in(marketer)
    response = client.post("/segments/estimate/", {"pql": US}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    job = Job.objects.get()
    assert job.kind == "preview" and job.created_by == marketer
    job.refresh_from_db()
    assert job.status == "succeeded", (job.status, job.error_message)
    assert job.metrics["estimatedSize"] > 0
    panel = client.get(f"/segments/estimate/{job.pk}/").content.decode()
    assert 'data-testid="estimate-size"' in panel and "hx-trigger" not in panel.split(
        'data-testid="estimate-panel"')[1].split(">")[0]
    preview = client.get(f"/segments/estimate/{job.pk}/preview/").content.decode()
    assert preview.count('data-testid="preview-row"') > 0
    assert "profile/?id=" in preview


def test_profile_drawer_explains_why_the_profile_matches(studio: Any, marketer: Any) -> None:
    from jobs.models import Job
    from segments.pql_support import preview_rows

    client = signed_in(marketer)
    client.post("/segments/estimate/", {"pql": US})
    job = Job.objects.get()
    from connections.services import connection_client

    with connection_client(studio.connection) as api:
        row = preview_rows(api.get_preview(job.remote_id, limit=1).results)[0]
    identity = row.identities[0]
    drawer = client.get(f"/segments/estimate/{job.pk}/profile/",
                        {"id": identity["id"], "ns": identity["namespace"]}).content.decode()
    assert 'data-testid="explain"' in drawer
    assert "✓" in drawer and "homeAddress.countryCode" in drawer


def test_another_marketers_preview_is_not_visible(studio: Any, marketer: Any,
                                                  make_user: Any) -> None:
    from core.roles import Role
    from jobs.models import Job

    signed_in(marketer).post("/segments/estimate/", {"pql": US})
    job = Job.objects.get()
    other = signed_in(make_user("mia", Role.MARKETER))
    assert other.get(f"/segments/estimate/{job.pk}/").status_code == 404
    assert other.get(f"/segments/estimate/{job.pk}/preview/").status_code == 404


def test_run_two_segments_writes_counts_back_to_the_list(studio: Any, marketer: Any) -> None:
    from jobs.models import Job
    from segments.models import Segment

    client = signed_in(marketer)
    create(client)
    create(client, name="Everyone with a country", pql="homeAddress.countryCode.isNotNull()")
    ids = list(Segment.objects.values_list("pk", flat=True))
    response = client.post("/segments/run/", {"segment": ids}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and 'data-testid="run-result"' in response.content.decode()
    job = Job.objects.get(kind="segment")
    assert job.status == "succeeded", (job.status, job.error_message)
    counts = dict(Segment.objects.values_list("name", "last_count"))
    assert counts["US customers"] > 0
    assert counts["Everyone with a country"] >= counts["US customers"]
    listing = client.get("/segments/").content.decode()
    assert f"{counts['US customers']:,}" in listing


def test_list_filters_and_htmx_fragment(studio: Any, marketer: Any, lead: Any) -> None:
    client = signed_in(marketer)
    create(client)
    create(signed_in(lead), name="Canadians", pql='homeAddress.countryCode = "CA"',
           description="north")
    assert "Canadians" in client.get("/segments/?q=north").content.decode()
    mine = client.get("/segments/?owner=me").content.decode()
    assert "US customers" in mine and "Canadians" not in mine
    fragment = client.get("/segments/?q=US", headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in fragment and 'id="segment-table"' in fragment


@pytest.mark.django_db
def test_segment_pages_need_a_role(client: Client, make_user: Any) -> None:
    nobody = make_user("nora", None)
    client.login(username=nobody.username, password=PASSWORD)
    for url in ("/segments/", "/segments/new/"):
        assert client.get(url).status_code == 403
    assert client.post("/segments/validate/", {"pql": US}).status_code == 403
    assert client.post("/segments/estimate/", {"pql": US}).status_code == 403


def test_pql_json_view_and_import_go_through_the_conversion_endpoint(studio: Any,
                                                                      marketer: Any) -> None:
    import json

    client = signed_in(marketer)
    body = client.post("/segments/convert/", {"pql": US},
                       headers={"HX-Request": "true"}).content.decode()
    assert 'data-testid="pql-json"' in body and "fieldLookup" in body
    tree = json.loads(__import__("html").unescape(
        body.split('data-testid="pql-json">')[1].split("</pre>")[0]))
    imported = client.post("/segments/convert/", {"pql_json": json.dumps(tree)}).content.decode()
    assert 'data-testid="imported-text"' in imported
    assert "homeAddress.countryCode = &quot;US&quot;" in imported
    broken = client.post("/segments/convert/", {"pql_json": "{nope"}).content.decode()
    assert "This is not JSON (line 1, column 2)" in broken


def test_a_saved_segment_links_to_its_export_form(studio: Any, marketer: Any) -> None:
    from segments.models import Segment

    client = signed_in(marketer)
    create(client)
    segment = Segment.objects.get()
    page = client.get(f"/segments/{segment.pk}/").content.decode()
    assert f"/exports/new/?segment={segment.pk}" in page
    form = client.get(f"/exports/new/?segment={segment.pk}").content.decode()
    assert "US customers" in form


def test_a_saved_segment_shows_its_remote_id_beside_its_title(studio: Any,
                                                             marketer: Any) -> None:
    from segments.models import Segment

    client = signed_in(marketer)
    create(client)
    segment = Segment.objects.get()
    page = client.get(f"/segments/{segment.pk}/").content.decode()
    header = page.split('<header class="page-header">')[1].split("</header>")[0]
    assert f'data-testid="segment-id">{segment.remote_id}</code>' in header
    # the copy button needs JavaScript, so the page sends it hidden (the id is selectable)
    assert 'data-copy="#segment-remote-id"' in header and "hidden>" in header
    assert 'data-testid="segment-id"' not in client.get("/segments/new/").content.decode()
