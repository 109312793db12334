"""Our answers to the core operations, validated against Adobe's own OpenAPI schemas
(../shared/spec/openapi/*.yaml, OpenAPI 3.0 read with openapi-schema-validator).

Where Adobe's schema is wrong, or disagrees with Adobe's documentation (spec/aep-api.md) and we
follow the documentation, the place is a named entry of DEVIATIONS, written up in
docs/adobe-schema-deviations.md under the same name. An entry excuses the validation errors at
one location of one operation's answer (a JSON pointer, ``*`` for any array index or key) and
nothing else; an entry may also say what the location is validated against instead. Every entry
must excuse at least one error, so the list cannot go stale.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.engine.api.conftest import DEFINITIONS, UPS, Api, definition_body
from tests.engine.api.seeded import US, Seeded, ok, seed

pytestmark = pytest.mark.django_db

SPECS = Path(__file__).resolve().parents[3].parent / "shared" / "spec" / "openapi"
CATALOG = "/data/foundation/catalog"
EXPORT = "/data/foundation/export"


@dataclass(frozen=True)
class Deviation:
    """Errors at ``location`` (and below) of the answer to ``operation`` are excused."""

    name: str  # the heading in docs/adobe-schema-deviations.md
    operation: str  # "METHOD spec:path status", e.g. "GET segmentation:/preview/{PREVIEW_ID} 200"
    location: str  # JSON pointer into our answer; * matches one array index or key
    # "<schema pointer>#<locations>": what the locations of our answer must meet instead
    instead: str | None = None


DEVIATIONS: list[Deviation] = [
    # segmentation.yaml types the list as one SegmentDefinition; the docs (spec §2.2) and every
    # client read {segments, page, link}: each of the segments must be a SegmentDefinition.
    Deviation("definitions-list-is-a-page", "GET segmentation:/segment/definitions 200",
              location="", instead="/components/schemas/SegmentDefinition#/segments/*"),
]


def string_keys(node: Any) -> Any:
    """YAML reads the status codes as integers; JSON pointers name them as strings."""
    if isinstance(node, dict):
        return {str(key): string_keys(value) for key, value in node.items()}
    if isinstance(node, list):
        return [string_keys(value) for value in node]
    return node


@functools.cache
def spec(name: str) -> dict[str, Any]:
    if not SPECS.is_dir():
        pytest.skip("../shared/spec/openapi is absent")
    return dict(string_keys(yaml.safe_load((SPECS / f"{name}.yaml").read_text())))


def validator(name: str, pointer: str) -> OAS30Validator:
    uri = f"urn:adobe-spec:{name}"
    registry: Registry = Registry().with_resource(  # type: ignore[call-arg]
        uri, Resource.from_contents(spec(name), default_specification=DRAFT4))
    return OAS30Validator({"$ref": f"{uri}#{pointer}"}, registry=registry)


def escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def response_pointer(name: str, method: str, path: str, status: int) -> str:
    responses = spec(name)["paths"][path][method.lower()]["responses"]
    key = str(status)
    assert key in responses, f"{method} {path} documents no {status} in {name}.yaml"
    content = responses[key]["content"]["application/json"]
    assert "schema" in content
    return (f"/paths/{escape(path)}/{method.lower()}/responses/{key}/content/"
            f"{escape('application/json')}/schema")


def matches(pattern: str, pointer: str) -> bool:
    """Does ``pointer`` lie at or below ``pattern`` (``*`` = any one part)?"""
    want = [part for part in pattern.split("/") if part]
    have = [part for part in pointer.split("/") if part]
    return len(have) >= len(want) and all(w in ("*", h) for w, h in zip(want, have, strict=False))


def resolve(document: Any, pattern: str) -> list[Any]:
    nodes = [document]
    for part in (part for part in pattern.split("/") if part):
        found: list[Any] = []
        for node in nodes:
            if isinstance(node, dict):
                found.extend(node.values() if part == "*" else [node[part]] if part in node else [])
            elif isinstance(node, list):
                found.extend(node if part == "*" else [node[int(part)]] if part.isdigit()
                             and int(part) < len(node) else [])
        nodes = found
    return nodes


def pointer_of(error: ValidationError) -> str:
    return "".join(f"/{part}" for part in error.absolute_path)


@dataclass
class Conformance:
    excused: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)

    def check(self, body: Any, method: str, operation: str, status: int) -> None:
        name, _, path = operation.partition(":")
        key = f"{method} {operation} {status}"
        deviations = [d for d in DEVIATIONS if d.operation == key]
        errors = list(validator(name, response_pointer(name, method, path, status))
                      .iter_errors(body))
        left = []
        for error in errors:
            hits = [d for d in deviations if matches(d.location, pointer_of(error))]
            self.excused.update(d.name for d in hits)
            if not hits:
                left.append(f"{pointer_of(error) or '/'}: {error.message[:200]}")
        for deviation in deviations:
            if deviation.instead:
                schema, _, where = deviation.instead.partition("#")
                nodes = resolve(body, where)
                assert nodes, f"{deviation.name}: nothing at {where}"
                check = validator(name, schema)
                for node in nodes:
                    for error in check.iter_errors(node):
                        left.append(f"{where}{pointer_of(error)} "
                                    f"({deviation.name}): {error.message[:200]}")
        if left:
            self.failures.append(f"{key}:\n  " + "\n  ".join(left))


@pytest.fixture
def seeded(api: Api, tmp_path: Path) -> Seeded:
    return seed(api, tmp_path / "input")


def test_core_operations_answer_in_adobes_schemas(api: Api, seeded: Seeded) -> None:
    conformance = Conformance()
    check = conformance.check
    s = seeded

    # segment definitions
    created = api.post(DEFINITIONS, definition_body(name="FR customers",
                                                    value='homeAddress.countryCode = "FR"'))
    check(ok(created), "POST", "segmentation:/segment/definitions", 200)
    check(ok(api.get(DEFINITIONS)), "GET", "segmentation:/segment/definitions", 200)
    check(ok(api.get(f"{DEFINITIONS}/{s.definition_id}")), "GET",
          "segmentation:/segment/definitions/{SEGMENT_ID}", 200)

    # preview and estimate
    preview = api.post(f"{UPS}/preview", {"predicateExpression": US,
                                          "predicateType": "pql/text",
                                          "predicateModel": "_xdm.context.profile"})
    check(ok(preview, 201), "POST", "segmentation:/preview", 201)
    check(ok(api.get(f"{UPS}/preview/{s.preview_id}")), "GET",
          "segmentation:/preview/{PREVIEW_ID}", 200)
    check(ok(api.get(f"{UPS}/estimate/{s.preview_id}")), "GET",
          "segmentation:/estimate/{ESTIMATE_ID}", 200)

    # segment jobs
    job = api.post(f"{UPS}/segment/jobs", [{"segmentId": s.definition_id}])
    check(ok(job), "POST", "segmentation:/segment/jobs", 200)
    check(ok(api.get(f"{UPS}/segment/jobs/{s.segment_job_id}")), "GET",
          "segmentation:/segment/jobs/{SEGMENT_JOB_ID}", 200)
    check(ok(api.get(f"{UPS}/segment/jobs")), "GET", "segmentation:/segment/jobs", 200)

    # export jobs
    export = api.post(f"{UPS}/export/jobs", {
        "fields": "person.name", "filter": {"segments": [{"segmentId": s.definition_id}]},
        "destination": {"datasetId": s.dataset_id}, "schema": {"name": "_xdm.context.profile"}})
    check(ok(export), "POST", "segmentation:/export/jobs", 200)
    check(ok(api.get(f"{UPS}/export/jobs/{s.export_job_id}")), "GET",
          "segmentation:/export/jobs/{EXPORT_JOB_ID}", 200)
    check(ok(api.get(f"{UPS}/export/jobs")), "GET", "segmentation:/export/jobs", 200)

    # catalog: datasets and batches
    dataset = api.post(f"{CATALOG}/dataSets", {
        "name": "Another export",
        "schemaRef": {"id": "https://ns.adobe.com/xdm/context/profile__union",
                      "contentType": "application/vnd.adobe.xed+json;version=1"}})
    check(ok(dataset, 201), "POST", "catalog:/dataSets", 201)
    check(ok(api.get(f"{CATALOG}/dataSets")), "GET", "catalog:/dataSets", 200)
    check(ok(api.get(f"{CATALOG}/dataSets/{s.dataset_id}")), "GET",
          "catalog:/dataSets/{DATASET_ID}", 200)
    check(ok(api.get(f"{CATALOG}/batches")), "GET", "catalog:/batches", 200)
    check(ok(api.get(f"{CATALOG}/batches/{s.batch_id}")), "GET",
          "catalog:/batches/{BATCH_ID}", 200)

    # data access: a batch's files, a file's listing
    check(ok(api.get(f"{EXPORT}/batches/{s.batch_id}/files")), "GET",
          "data-access:/batches/{batchId}/files", 200)
    check(ok(api.get(f"{EXPORT}/files/{s.file_id}")), "GET",
          "data-access:/files/{dataSetFileId}", 200)

    # merge policies
    check(ok(api.get(f"{UPS}/config/mergePolicies")), "GET",
          "profile:/ups/config/mergePolicies", 200)
    check(ok(api.get(f"{UPS}/config/mergePolicies/{s.merge_policy_id}")), "GET",
          "profile:/ups/config/mergePolicies/{mergePolicyId}", 200)

    # entities: a profile by identity, and its events
    check(ok(api.get(f"{UPS}/access/entities", {
        "schema.name": "_xdm.context.profile", "entityId": s.entity_id,
        "entityIdNS": s.entity_ns})), "GET", "profile:/ups/access/entities", 200)
    check(ok(api.get(f"{UPS}/access/entities", {
        "schema.name": "_xdm.context.experienceevent", "relatedSchema.name":
        "_xdm.context.profile", "relatedEntityId": s.entity_id,
        "relatedEntityIdNS": s.entity_ns})), "GET", "profile:/ups/access/entities", 200)

    # the entity errors Adobe's profile.yaml gives a schema for
    missing = api.get(f"{UPS}/access/entities", {
        "schema.name": "_xdm.context.profile", "entityId": "nobody@example.com",
        "entityIdNS": "email"})
    check(ok(missing, 404), "GET", "profile:/ups/access/entities", 404)
    check(ok(api.get(f"{UPS}/access/entities", {"entityId": "x"}), 400), "GET",
          "profile:/ups/access/entities", 400)

    # more of the same resources: bulk gets, conversion, creation, sample status, deletes
    check(api.post(f"{DEFINITIONS}/bulk-get", {"ids": [{"id": s.definition_id},
                                                       {"id": "nope"}]}).json(),
          "POST", "segmentation:/segment/definitions/bulk-get", 207)
    check(ok(api.post(f"{UPS}/segment/conversion", definition_body())), "POST",
          "segmentation:/segment/conversion", 200)
    check(api.post(f"{UPS}/segment/jobs/bulk-get", {"ids": [{"id": s.segment_job_id}]}).json(),
          "POST", "segmentation:/segment/jobs/bulk-get", 207)
    check(ok(api.post(f"{UPS}/config/mergePolicies", {
        "name": "No stitching", "schema": {"name": "_xdm.context.profile"},
        "identityGraph": {"type": "none"}, "attributeMerge": {"type": "timestampOrdered"}})),
        "POST", "profile:/ups/config/mergePolicies", 200)
    check(ok(api.get(f"{UPS}/previewsamplestatus")), "GET", "profile:/ups/previewsamplestatus",
          200)
    check(ok(api.delete(f"{UPS}/export/jobs/{ok(export)['id']}")), "DELETE",
          "segmentation:/export/jobs/{EXPORT_JOB_ID}", 200)
    check(ok(api.delete(f"{UPS}/preview/{s.preview_id}")), "DELETE",
          "segmentation:/preview/{PREVIEW_ID}", 200)
    check(ok(api.delete(f"{DEFINITIONS}/{ok(created)['id']}")), "DELETE",
          "segmentation:/segment/definitions/{SEGMENT_ID}", 200)

    assert not conformance.failures, "\n".join(conformance.failures)
    unused = {d.name for d in DEVIATIONS} - conformance.excused
    assert not unused, f"deviations that excuse nothing (stale): {sorted(unused)}"


def test_the_checks_can_fail_and_a_deviation_excuses_only_its_place() -> None:
    conformance = Conformance()
    conformance.check({"estimatedSize": "many", "state": "RESULT_READY"}, "GET",
                      "segmentation:/estimate/{ESTIMATE_ID}", 200)
    assert len(conformance.failures) == 1 and "/estimatedSize" in conformance.failures[0]
    # the definitions list: the page itself is excused, a bad segment in it is not
    conformance = Conformance()
    conformance.check({"segments": [{"name": "x"}], "page": {}, "link": {}}, "GET",
                      "segmentation:/segment/definitions", 200)
    assert conformance.excused == {"definitions-list-is-a-page"}
    assert "'expression' is a required property" in conformance.failures[0]


def test_every_deviation_is_written_up() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "adobe-schema-deviations.md").read_text()
    for deviation in DEVIATIONS:
        assert f"`{deviation.name}`" in doc, deviation.name
