"""A small profile store for the jobs tests: profiles with attributes, events, one snapshot; and
a union schema alone, for tests of definitions (the API checks their fields against it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.ingest import batch_ingest, dataset_get_or_create
from engine.models import XdmClass
from engine.snapshot import snapshot_build

# name, country, points
PEOPLE = [("ann", "US", 500), ("bo", "US", 50), ("cy", "FR", 900), ("di", "US", 120),
          ("ed", "DE", 10), ("flo", "US", None)]


def person(name: str, country: str, points: int | None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "identityMap": {"Email": [{"id": f"{name}@example.com", "primary": True}]},
        "person": {"name": {"firstName": name.title(), "lastName": "Doe"}},
        "personalEmail": {"address": f"{name}@example.com"},
        "homeAddress": {"countryCode": country, "city": f"{name}-city"},
    }
    if points is not None:
        record["loyalty"] = {"points": points}
    return record


def build_store(folder: Path, sandbox: str = "prod",
                people: list[tuple[str, str, int | None]] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    profiles = folder / f"{sandbox}-crm.jsonl"
    profiles.write_text("".join(json.dumps(person(*p)) + "\n" for p in people or PEOPLE))
    events = folder / f"{sandbox}-web.jsonl"
    events.write_text("".join(json.dumps({
        "identityMap": {"Email": [{"id": f"{name}@example.com", "primary": True}]},
        "timestamp": f"2026-10-{day:02d}T10:00:00Z", "eventType": "commerce.purchases",
        "commerce": {"order": {"priceTotal": 10.0 * day}}}) + "\n"
        for name, day in (("ann", 1), ("ann", 2), ("cy", 3))))
    crm = dataset_get_or_create(sandbox=sandbox, name="CRM", xdm_class=XdmClass.PROFILE)
    assert batch_ingest(dataset=crm, paths=[profiles]).status == "success"
    web = dataset_get_or_create(sandbox=sandbox, name="Web", xdm_class=XdmClass.EVENT)
    assert batch_ingest(dataset=web, paths=[events]).status == "success"
    snapshot_build(sandbox=sandbox)


# The fields Adobe's examples and the definition tests name (workAddress.country = "US").
WORKER = {"identityMap": {"Email": [{"id": "wes@example.com", "primary": True}]},
          "person": {"name": {"firstName": "Wes", "lastName": "Doe"}},
          "workAddress": {"country": "US", "city": "Boston"},
          "homeAddress": {"countryCode": "US", "city": "Paris"},
          "loyalty": {"points": 10}}


def schema_store(folder: Path, sandbox: str = "prod",
                 records: list[dict[str, Any]] | None = None) -> None:
    """A sandbox whose union schema has ``records``' fields (WORKER's by default): one
    profile dataset with one batch, no snapshot (nothing to preview or segment)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sandbox}-people.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records or [WORKER]))
    people = dataset_get_or_create(sandbox=sandbox, name="People", xdm_class=XdmClass.PROFILE)
    assert batch_ingest(dataset=people, paths=[path]).status == "success"
