"""Every number a marketer sees agrees: for each of many definitions over the demo data, the
exact estimate = the preview's total = the segment job's count = the export's rows (with
profiles known only from their events) = the Parquet file's rows = the CSV's rows, and they are
the same people. Without `filter.emptyProfiles` the export holds exactly the members that have
a profile record of their own.

The dashboard drives everything as a marketer does (segments.services, exports.services); the
built-in engine answers over real HTTP from the live server and a real Celery worker runs both
queues (tests/live_studio.py), so jobs are polled as in production. People are compared by
their identities (namespace and id, as a stitched profile carries them): the preview lists
them, the files carry identityMap, and the snapshot maps the segment job's members to them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.jobs.test_worker import wait_until
from tests.live_studio import (  # noqa: F401 — fixtures
    broker,
    redis_server,
    shared_database,
    studio_worker,
    workers,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
JOBS_SECONDS = 180
Person = frozenset[tuple[str, str]]  # a profile's identities: (NAMESPACE, id)

# Windows end at today's start, not at now: the estimate, the job and the export run seconds
# apart and must count the same events.
DEFINITIONS = [
    'homeAddress.countryCode = "US"',
    'homeAddress.countryCode in ["US", "CA", "GB"] and loyalty.points > 1000',
    'homeAddress.countryCode != "US"',
    'not(homeAddress.countryCode = "US")',
    'loyalty.tier = "gold" or loyalty.tier = "platinum"',
    "loyalty.points >= 3000 and loyalty.points < 8000",
    'person.name.firstName.startsWith("j", false)',
    'person.name.lastName.contains("son")',
    'person.gender = "female" and person.birthDate occurs > 40 years before today',
    "mobilePhone.number.isNull()",
    'identityMap.get("ECID").count() > 0',
    "identityMap.keys().count() >= 3",
    "select X from xEvent where X.metrics.commerce.abandons.value > 0 and X.timestamp occurs "
    "<= 30 days before today",
    'select X from xEvent where X.eventType = "commerce.cartAbandons" and X.timestamp occurs '
    "<= 30 days before today",
    "xEvent.metrics.commerce.abandons.value > 0",
    'xEvent[eventType = "commerce.purchases" and timestamp occurs < 90 days before today]'
    ".sum(commerce.order.priceTotal) > 200",
    'xEvent[eventType = "commerce.purchases"].count() >= 2',
    'xEvent[eventType = "web.webpagedetails.pageViews"].count() > 10',
    "xEvent.productListItems.SKU.distinct().count() >= 3",
    'select X from xEvent where X.eventType = "commerce.productListAdds", Y from xEvent where '
    'Y.eventType = "commerce.purchases" and Y.timestamp occurs < 1 day after X.timestamp',
    'chain(xEvent, timestamp, [A: WHAT(eventType = "commerce.productListAdds"), '
    'B: WHAT(eventType = "commerce.checkouts"), C: WHAT(eventType = "commerce.purchases")])',
    'chain(xEvent, timestamp, [A: WHAT(eventType = "web.webpagedetails.pageViews") '
    "WHEN(< 60 days before today) COUNT(3)])",
    'chain(xEvent, timestamp, [A: WHAT(eventType = "commerce.productListAdds"), '
    'B: WHAT(eventType = "commerce.purchases") WHEN(<= 7 days after A)])',
    'homeAddress.countryCode = "US" and not(chain(xEvent, timestamp, [A: WHAT(eventType = '
    '"commerce.cartAbandons"), B: WHAT(eventType = "commerce.purchases") WHEN(<= 7 days after '
    "A)]))",
    'homeAddress.countryCode = "US" and (select X from xEvent where X.channel.typeAtSource = '
    '"email")',
    'loyalty.points > 500 and not (select X from xEvent where X.eventType = '
    '"commerce.purchases")',
    "(sum X.commerce.order.priceTotal over X from xEvent where X.commerce.order) > 200",
    "(average X.commerce.order.priceTotal over X from xEvent where X.commerce.order) >= 100",
    "xEvent.commerce.order.priceTotal.max() > 200",
    'if(loyalty.points > 5000, "vip", "regular") = "vip"',
    "loyalty.joinDate occurs before date(2022, 1, 1)",
    "xEvent[timestamp occurs <= 7 days before today].count() = 0 and loyalty",
]
# built from the segments above once they have members (inSegment reads the memberships)
COMPOSED = [
    'inSegment("{0}") and loyalty.points > 1000',
    'inSegment("{0}") or inSegment("{12}")',
    'inSegment("{12}") and not(inSegment("{0}"))',
]


def person(identities: Iterable[tuple[str, str]]) -> Person:
    return frozenset((namespace.upper(), value) for namespace, value in identities)


def from_identity_map(identity_map: dict[str, Any] | list[Any] | None) -> Person:
    entries = dict(identity_map) if isinstance(identity_map, list) else identity_map or {}
    return person((namespace, item["id"]) for namespace, items in entries.items()
                  for item in items or [])


def members_of_job(studio: Any, segment_id: str) -> set[Person]:
    """The segment job's members, as people (engine internals read for the check only)."""
    from engine.memberships import TABLE, attach_memberships
    from engine.snapshot import open_snapshot

    with open_snapshot(studio.sandbox) as con:
        attach_memberships(con, studio.sandbox)
        rows = con.execute(f"""
            SELECT i._profile_id, i.namespace, i.id FROM identities i
            WHERE i._profile_id IN (SELECT _profile_id FROM {TABLE}
                                    WHERE segment_id = ? AND status IN ('realized', 'existing'))
            """, [segment_id]).fetchall()
    people: dict[str, set[tuple[str, str]]] = {}
    for profile_id, namespace, value in rows:
        people.setdefault(profile_id, set()).add((namespace, value))
    return {person(identities) for identities in people.values()}


def with_records(studio: Any) -> set[Person]:
    """Identities that some profile record carries (the profile datasets' batch files), so a
    member "has a record" when one of its identities is among them."""
    from engine.ingest import batch_path
    from engine.models import Batch, BatchStatus, XdmClass

    keys: set[tuple[str, str]] = set()
    for batch in Batch.objects.filter(dataset__sandbox=studio.sandbox,
                                      dataset__xdm_class=XdmClass.PROFILE,
                                      dataset__profile_enabled=True,
                                      status=BatchStatus.SUCCESS):
        for item in batch.files:
            table = pq.read_table(batch_path(batch) / item["name"])
            for row in table.to_pylist():
                keys |= from_identity_map(row.get("identityMap"))
    return {person([key]) for key in keys}


def preview_people(job: Any) -> set[Person]:
    from connections.services import connection_client
    from segments.pql_support import preview_rows

    people: set[Person] = set()
    with connection_client(job.connection, sandbox=job.sandbox) as client:
        offset = 0
        while True:
            page = client.get_preview(job.remote_id, offset=offset, limit=1000)
            rows = preview_rows(page.results)
            people |= {person((i["namespace"], i["id"]) for i in row.identities) for row in rows}
            if not page.has_next or not rows:
                return people
            offset += len(rows)


def read_file(download: Any) -> bytes:
    return b"".join(download.chunks)


def export_people(job: Any, actor: Any) -> tuple[list[Person], list[Person]]:
    """The people of the export's Parquet file and of its CSV, one per row."""
    from exports import services

    [item] = services.export_files(job=job)
    parquet = read_file(services.export_download(job=job, file_id=item.file_id, name=item.name,
                                                 actor=actor))
    rows = pq.read_table(io.BytesIO(parquet)).to_pylist()
    in_parquet = [from_identity_map(row.get("identityMap")) for row in rows]
    text = read_file(services.export_csv(job=job, file_id=item.file_id, name=item.name,
                                         actor=actor)).decode()
    in_csv = []
    for row in csv.DictReader(io.StringIO(text)):
        identities = []
        for header, value in row.items():
            if not header.startswith("identityMap.") or not value:
                continue
            namespace = header.split(".", 1)[1]
            ids = json.loads(value) if value.startswith("[") else [value]
            identities += [(namespace, one) for one in ids]
        in_csv.append(person(identities))
    return in_parquet, in_csv


@dataclass
class Studio:
    connection: Any
    sandbox: str


def finished(jobs: Iterable[Any], running: Any) -> None:
    """Wait for the worker to finish every job (read from our database, as a page does)."""
    from jobs.models import Job

    pending = [job.pk for job in jobs]
    wait_until(lambda: not Job.objects.filter(pk__in=pending, finished_at__isnull=True).exists(),
               JOBS_SECONDS, "the jobs to finish", running.logs)
    failed = Job.objects.filter(pk__in=pending).exclude(status="succeeded")
    assert not failed.exists(), [(job.label, job.status, job.error_message) for job in failed]


@pytest.fixture
def numbers(studio_worker: Any, marketer: Any) -> dict[str, Any]:  # noqa: F811
    """Every definition saved, estimated, run in one segment job and exported both ways."""
    from connections.models import Connection
    from exports import services as exports
    from segments.services import segment_estimate, segment_save, segments_run

    connection = Connection.objects.get()
    studio = Studio(connection, connection.default_sandbox)

    def save(index: int, text: str) -> Any:
        return segment_save(segment=None, connection=studio.connection, sandbox=studio.sandbox,
                            name=f"Definition {index}", description="", pql_text=text,
                            merge_policy_id="", evaluation_method="batch", actor=marketer)

    segments = [save(index, text) for index, text in enumerate(DEFINITIONS)]
    finished(segments_run(segments=segments, actor=marketer), studio_worker)
    ids = [segment.remote_id for segment in segments]
    segments += [save(len(segments) + index, text.format(*ids))
                 for index, text in enumerate(COMPOSED)]
    estimates = {segment.pk: segment_estimate(connection=studio.connection,
                                              sandbox=studio.sandbox, pql_text=segment.pql,
                                              actor=marketer, segment=segment)
                 for segment in segments}
    [run] = segments_run(segments=segments, actor=marketer)
    finished([run, *estimates.values()], studio_worker)
    dataset = exports.dataset_create(connection=studio.connection, sandbox=studio.sandbox,
                                     name="Audiences", description="", actor=marketer)
    jobs = {}
    for index, segment in enumerate(segments):
        # every segment with profiles known only from events; a third of them without too
        for empty in (True, False) if index % 3 == 0 else (True,):
            body = exports.export_body(segment_ids=[segment.remote_id], dataset_id=dataset,
                                       empty_profiles=empty)
            jobs[segment.pk, empty] = exports.export_start(
                connection=studio.connection, sandbox=studio.sandbox, segments=[segment],
                body=body, label=segment.name, actor=marketer)
    finished(jobs.values(), studio_worker)
    for job in [run, *estimates.values(), *jobs.values()]:
        job.refresh_from_db()
    return {"studio": studio, "segments": segments, "estimates": estimates, "run": run,
            "exports": jobs}


def test_every_number_agrees_and_counts_the_same_people(marketer: Any,
                                                        numbers: dict[str, Any]) -> None:
    from segments.services import estimate_of

    studio = numbers["studio"]
    recorded = set().union(*with_records(studio))  # every identity of a profile record
    sizes: list[int] = []
    left_out: list[int] = []
    for segment in numbers["segments"]:
        segment.refresh_from_db()
        estimate = numbers["estimates"][segment.pk]
        figures = estimate_of(estimate)
        assert figures is not None and figures["exact"], segment.pql  # the whole store read
        members = members_of_job(studio, segment.remote_id)
        preview = preview_people(estimate)
        everyone = numbers["exports"][segment.pk, True]
        parquet, in_csv = export_people(everyone, marketer)
        counts = {
            "estimate": figures["size"], "preview": len(preview),
            "segment job": numbers["run"].metrics["segmentedProfileCounter"][segment.remote_id],
            "last count": segment.last_count, "job members": len(members),
            "exported": everyone.metrics["totalExportedProfileCounter"],
            "parquet rows": len(parquet), "csv rows": len(in_csv),
        }
        assert len(set(counts.values())) == 1, (segment.pql, counts)
        assert preview == members == set(parquet) == set(in_csv), segment.pql
        assert segment.last_estimate["version"] == 1 and segment.last_run_version == 1

        sizes.append(len(members))
        recorded_only = numbers["exports"].get((segment.pk, False))
        if recorded_only is None:
            continue
        with_profile = {member for member in members if member & recorded}
        parquet, in_csv = export_people(recorded_only, marketer)
        assert set(parquet) == set(in_csv) == with_profile, segment.pql
        assert len(parquet) == len(in_csv) == len(with_profile)
        assert recorded_only.metrics["totalExportedProfileCounter"] == len(with_profile)
        left_out.append(len(members) - len(with_profile))
    # the definitions must be worth comparing: most select someone, and members known only
    # from their events must be in play
    assert sum(1 for size in sizes if size > 0) >= len(sizes) * 0.8, sizes
    assert sum(1 for count in left_out if count > 0) >= 4, left_out
    assert len(numbers["segments"]) >= 30
