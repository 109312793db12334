"""Profile data tests run the page against the built-in engine over real HTTP, like the
segments tests (whose `studio` fixture they share): live_server serves the engine's API,
bootstrap makes the built-in connection, generate_demo loads ~150 profiles, Celery is eager —
so a file sent from the page goes through Batch Ingestion, the engine's ingestion task and
its snapshot rebuild within the request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.segments.conftest import Studio, eager_celery, studio  # noqa: F401 — fixtures


def person(name: str, country: str = "US") -> dict[str, Any]:
    """A new customer's record, as a CRM export would write it."""
    return {"identityMap": {"Email": [{"id": f"{name}@signup.example", "primary": True}]},
            "person": {"name": {"firstName": name.title(), "lastName": "Signup"}},
            "personalEmail": {"address": f"{name}@signup.example"},
            "homeAddress": {"countryCode": country}}


def jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path
