"""A refused character typed into a page that htmx updates shows as a toast saying which field
held it, instead of a panel that silently stays as it was (htmx swaps no 4xx by itself)."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from tests.test_browser_shell import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_nul_in_the_segment_search_is_refused_with_a_toast(
        page: Any, live_server: Any, settings: Any, marketer: Any, shot: Any) -> None:
    settings.BUILTIN_ENGINE_URL = live_server.url
    call_command("bootstrap", "--no-demo-users", stdout=StringIO())  # a connection: filters
    sign_in(page, live_server, "maya")
    page.goto(f"{live_server.url}/segments/")
    page.locator("#f-q").evaluate("(input) => { input.value = 'cart\\u0000'; "
                    "input.dispatchEvent(new KeyboardEvent('keyup', {bubbles: true})); "
                    "input.form.dispatchEvent(new Event('change', {bubbles: true})); }")
    toast = page.wait_for_selector("[data-testid=bad-input]")
    assert toast.inner_text().startswith("“q” contains an invalid character (a NUL")
    shot("bad-input-toast")
    toast.query_selector(".toast-close").click()
    page.wait_for_selector("[data-testid=bad-input]", state="detached")
