"""A marketer, in a real Chromium, against the live server and a real Celery worker: types
invalid PQL and sees it underlined, fixes it, estimates and pages through the preview, asks
why a profile matches, saves, edits, compares versions, and runs a segment job to SUCCEEDED."""

from __future__ import annotations

from typing import Any

import pytest

from tests.live_studio import (  # noqa: F401 — fixtures
    broker,
    redis_server,
    shared_database,
    studio_worker,
    workers,
)
from tests.test_browser_shell import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

BAD = 'homeAddress.countryCode = "US" annd person.name.firstName.isNotNull()'
GOOD = 'homeAddress.countryCode = "US" and person.name.firstName.isNotNull()'


def type_pql(page: Any, text: str) -> None:
    editor = page.locator("[data-testid=pql-input]")
    editor.fill("")
    editor.type(text, delay=2)


def test_marketer_writes_estimates_saves_versions_and_runs_a_segment(
        page: Any, live_server: Any, marketer: Any, studio_worker: Any,  # noqa: F811
        shot: Any) -> None:
    from segments.models import Segment

    sign_in(page, live_server, "maya")
    page.click("[data-nav=segments]")
    page.wait_for_selector("text=No segments in this sandbox yet")
    shot("segments-empty")

    page.click("[data-testid=new-segment]")
    page.wait_for_selector("#field-list li")
    type_pql(page, BAD)
    problem = page.wait_for_selector("[data-testid=pql-problem]:has-text('column 32')")
    assert "annd" in problem.inner_text()
    underlined = page.wait_for_selector(".pql-highlight mark.pql-mark-error")
    assert underlined.inner_text().startswith("annd")
    shot("segment-editor-error")

    type_pql(page, GOOD)
    page.wait_for_selector("[data-testid=pql-ok]")
    assert page.locator(".pql-highlight mark").count() == 0

    page.keyboard.press("Control+Enter")  # estimates, like the button
    page.wait_for_selector("[data-testid=estimate-size]")
    page.wait_for_selector("[data-testid=estimate-status]:has-text('Succeeded')", timeout=30_000)
    page.wait_for_selector("[data-testid=preview-row]")
    first_page = page.locator("[data-testid=preview-row] td.mono").all_inner_texts()
    if page.locator("[data-testid=preview-next]").count():
        page.click("[data-testid=preview-next]")
        page.wait_for_function(
            "first => document.querySelector('[data-testid=preview-row] td.mono')"
            ".innerText !== first", arg=first_page[0])
    shot("segment-editor-estimate")

    page.locator("[data-testid=open-profile]").first.click()
    explain = page.wait_for_selector("[data-testid=explain]")
    assert "✓" in explain.inner_text() and "homeAddress.countryCode" in explain.inner_text()
    shot("segment-profile-drawer")
    page.keyboard.press("Escape")
    page.wait_for_selector(".drawer.open", state="detached")

    page.fill("#id_name", "US customers with a first name")
    page.click("[data-testid=save]")
    page.wait_for_selector("text=as version 1")
    segment = Segment.objects.get()
    assert segment.remote_id

    type_pql(page, GOOD.replace('"US"', '"CA"'))
    page.wait_for_selector("[data-testid=pql-ok]")
    page.click("[data-testid=save]")
    page.wait_for_selector("text=as version 2")
    page.click("text=Versions")
    page.wait_for_selector("[data-testid=version-diff] .diff-add")
    assert '"CA"' in page.inner_text("[data-testid=version-diff]")
    shot("segment-versions")

    page.click("[data-nav=segments]")
    page.check(f"input[name=segment][value='{segment.pk}']")
    page.click("[data-testid=run-selected]")
    page.wait_for_selector("#run-result .job-row[data-status=succeeded]", timeout=60_000)
    count = Segment.objects.get().last_count
    assert count is not None and count > 0
    # the finished row says so (jobFinished) and the table reads its counts again: no reload
    page.wait_for_selector(f"[data-testid=last-count]:has-text('{count:,}')")
    assert page.locator("#segment-table").count() == 1
    assert page.locator("#run-result .job-row[data-status]").count() == 1
    shot("segments-list")
