"""An admin, in a real Chromium, against the live server and a real Celery worker: opens
Profile data from the sidebar, sends a file without naming its new dataset (and is told so at
the field), then sends it properly and watches the ingestion's row reach Succeeded; the new
dataset and the larger profile count appear without a reload. Then it deletes the dataset."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.live_studio import (  # noqa: F401 — fixtures
    broker,
    redis_server,
    shared_database,
    studio_worker,
    workers,
)
from tests.profiledata.conftest import jsonl, person
from tests.test_browser_shell import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def count(page: Any) -> int:
    return int(re.sub(r"\D", "", page.inner_text("[data-testid=profile-count]")))


def test_admin_sends_a_file_and_its_profiles_arrive(
        page: Any, live_server: Any, admin_user: Any, studio_worker: Any,  # noqa: F811
        shot: Any, tmp_path: Path) -> None:
    from profiledata.forms import NAME_REQUIRED

    sign_in(page, live_server, "ada")
    page.click("[data-nav=data]")
    page.wait_for_selector("[data-testid=profile-datasets]")
    assert page.inner_text("h1") == "Profile data"
    before = count(page)
    assert before > 0
    page.click("[data-testid=record-example] summary")  # what a file should hold
    assert "identityMap" in page.inner_text("[data-testid=record-example]")
    shot("profile-data")

    path = jsonl(tmp_path / "spring-signups.jsonl",
                 [person("ines"), person("jon", "FR"), person("kai")])
    page.select_option("[data-testid=add-dataset]", "new")
    page.set_input_files("[data-testid=add-file]", str(path))
    page.click("[data-testid=add-submit]")
    page.wait_for_selector("[data-testid=add-name-error]")
    assert page.inner_text("[data-testid=add-name-error]") == NAME_REQUIRED
    assert page.is_visible("[data-testid=add-name]")  # the new-dataset fields stay open
    shot("profile-data-error")

    page.fill("[data-testid=add-name]", "Spring signups")
    page.set_input_files("[data-testid=add-file]", str(path))
    page.click("[data-testid=add-submit]")
    page.wait_for_selector(".toast-success")
    row = page.locator("[data-testid=ingestions] .job-row[data-job]").first
    assert "spring-signups.jsonl into Spring signups" in row.inner_text()
    page.wait_for_selector("[data-testid=ingestions] .job-row[data-status=succeeded]",
                           timeout=60_000)
    shot("profile-data-sent")

    # the row's last answer tells the page, which reads its figures and datasets again
    page.wait_for_function(
        "n => document.querySelector('[data-testid=profile-count]').innerText"
        ".replace(/\\D/g, '') == String(n)", arg=before + 3)
    dataset = page.locator("[data-testid=profile-dataset-row]", has_text="Spring signups")
    assert "3" in dataset.inner_text() and "success" in dataset.inner_text()
    shot("profile-data-after")

    page.click("[data-testid=ingestions] .job-row[data-job] a.job-label")
    page.wait_for_selector("h1")
    assert "spring-signups.jsonl into Spring signups" in page.inner_text("h1")
    assert "Records ingested" in page.inner_text("main")
    shot("ingestion-detail")

    # and deleted again, after saying yes to the question
    page.go_back()
    page.wait_for_selector("[data-testid=profile-datasets]")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("[data-testid=profile-dataset-row]", has_text="Spring signups").locator(
        "[data-testid=dataset-delete]").click()
    page.wait_for_selector(".toast-success:has-text('deleted')")
    assert "Spring signups" not in page.inner_text("[data-testid=profile-datasets]")
    shot("profile-data-deleted")
