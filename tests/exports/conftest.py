"""Exports tests run the dashboard against the built-in engine over real HTTP, like the
segments tests (whose `studio` fixture they share): live_server serves the engine's API,
bootstrap makes the built-in connection, generate_demo loads ~150 profiles, Celery is eager."""

from __future__ import annotations

from typing import Any

import pytest

from tests.segments.conftest import Studio, eager_celery, studio  # noqa: F401 — fixtures

US = 'homeAddress.countryCode = "US"'


@pytest.fixture
def segment(studio: Studio, marketer: Any) -> Any:  # noqa: F811
    """A saved segment (people in the US), defined on the engine too."""
    from segments.services import segment_save

    return segment_save(segment=None, connection=studio.connection, sandbox=studio.sandbox,
                        name="US customers", description="", pql_text=US, merge_policy_id="",
                        evaluation_method="batch", actor=marketer)


@pytest.fixture
def dataset_id(studio: Studio, marketer: Any) -> str:  # noqa: F811
    from exports.services import dataset_create

    return dataset_create(connection=studio.connection, sandbox=studio.sandbox,
                          name="Spring audience", description="for the spring campaign",
                          actor=marketer)
