"""A marketer in a real Chromium misspells a field: the editor underlines it, Save refuses it
with the same message (nothing is saved, nothing typed is lost); fixed, it saves, estimates
as an exact count, and the list shows that count as the current version's."""

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
from tests.segments.test_browser import type_pql
from tests.test_browser_shell import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

MISSPELT = 'homeAdress.countryCode = "US"'
MESSAGE = 'There is no field "homeAdress". Did you mean "homeAddress"?'


def test_a_misspelt_field_cannot_be_saved_and_an_exact_estimate_says_so(
        page: Any, live_server: Any, marketer: Any, studio_worker: Any,  # noqa: F811
        shot: Any) -> None:
    from segments.models import Segment

    sign_in(page, live_server, "maya")
    page.goto(f"{live_server.url}/segments/new/")
    page.fill("#id_name", "US customers")
    type_pql(page, MISSPELT)
    problem = page.wait_for_selector("[data-testid=pql-problem]")
    assert MESSAGE in problem.inner_text()
    assert page.wait_for_selector(".pql-highlight mark.pql-mark-error").inner_text() \
        == "homeAdress"

    page.click("[data-testid=save]")
    error = page.wait_for_selector("[data-testid=pql-form-error]")
    assert error.inner_text() == ("Not saved: the definition has an error at line 1, column 1 "
                                  "(underlined below). Fix it, then save again.")
    assert MESSAGE in page.inner_text("[data-testid=pql-diagnostics]")
    page.wait_for_selector(".pql-highlight mark.pql-mark-error")  # still underlined
    assert page.input_value("[data-testid=pql-input]") == MISSPELT  # nothing typed is lost
    assert page.input_value("#id_name") == "US customers"
    assert not Segment.objects.exists()
    shot("segment-save-refused")

    type_pql(page, MISSPELT.replace("Adress", "Address"))
    page.wait_for_selector("[data-testid=pql-ok]")
    page.click("[data-testid=save]")
    page.wait_for_selector("text=as version 1")
    page.click("[data-testid=estimate]")
    figure = page.wait_for_selector("[data-testid=estimate-size]:has-text('exactly')",
                                    timeout=30_000)
    assert "≈" not in figure.inner_text()
    shot("segment-estimate-exact")

    segment = Segment.objects.get()
    page.goto(f"{live_server.url}/segments/")
    cell = page.wait_for_selector("[data-testid=last-estimate]")
    assert cell.inner_text().startswith("exactly") and "v1" not in cell.inner_text()
    shot("segment-list-estimates")
    page.goto(f"{live_server.url}/segments/{segment.pk}/")
    stored = page.wait_for_selector("[data-testid=stored-estimate]")
    assert "The current version's estimate" in stored.inner_text()
    shot("segment-stored-estimate")
