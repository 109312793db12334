"""Typed results: frozen dataclasses with the fields the dashboard reads, plus ``raw`` (the JSON).

Every ``from_json`` is lenient: AEP's documented examples, its OpenAPI schemas and the 2019 API
disagree in places (spec/aep-api.md marks them **[discrepancy]**), so a missing field becomes a
default rather than an exception. Status strings are AEP's own, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = [
    "Batch",
    "BatchFile",
    "Dataset",
    "Entity",
    "EntityEvent",
    "Estimate",
    "ExportJob",
    "FileEntry",
    "JobError",
    "MergePolicy",
    "Page",
    "Preview",
    "PreviewPage",
    "Sandbox",
    "SegmentDefinition",
    "SegmentJob",
]

T = TypeVar("T")
JSON = dict[str, Any]

PREVIEW_FINISHED = frozenset({"RESULT_READY", "FAILED"})
JOB_FINISHED = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


def _int(value: Any, default: int | None = None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _dict(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, with the API's own paging block."""

    items: list[T]
    total_count: int | None
    next_link: str | None  # the API's link to the next page, None on the last one
    raw: JSON = field(repr=False)


@dataclass(frozen=True)
class Sandbox:
    name: str
    title: str
    state: str
    type: str
    is_default: bool
    region: str
    raw: JSON = field(repr=False)

    @classmethod
    def from_json(cls, data: JSON) -> Sandbox:
        return cls(name=str(data.get("name", "")), title=str(data.get("title") or ""),
                   state=str(data.get("state") or ""), type=str(data.get("type") or ""),
                   is_default=bool(data.get("isDefault", data.get("default", False))),
                   region=str(data.get("region") or ""), raw=data)


@dataclass(frozen=True)
class SegmentDefinition:
    id: str
    name: str
    description: str
    expression_format: str  # pql/text | pql/json
    expression: str  # the PQL text, or the JSON tree serialised as a string
    schema_name: str
    merge_policy_id: str | None
    evaluation_info: JSON
    creation_time: int | None  # epoch ms
    update_time: int | None  # epoch ms
    raw: JSON = field(repr=False)

    @classmethod
    def from_json(cls, data: JSON) -> SegmentDefinition:
        expression = data.get("expression")
        if isinstance(expression, dict):
            fmt, value = str(expression.get("format") or "pql/text"), expression.get("value")
        else:  # the 2019 flat shape: {"format": ..., "expression": "<pql>"}
            fmt, value = str(data.get("format") or "pql/text"), expression
        return cls(id=str(data.get("id", "")), name=str(data.get("name") or ""),
                   description=str(data.get("description") or ""), expression_format=fmt,
                   expression=value if isinstance(value, str) else "",
                   schema_name=str(_dict(data.get("schema")).get("name") or ""),
                   merge_policy_id=data.get("mergePolicyId"),
                   evaluation_info=_dict(data.get("evaluationInfo")),
                   creation_time=_int(data.get("creationTime")),
                   update_time=_int(data.get("updateTime")), raw=data)

    @property
    def pql_text(self) -> str | None:
        return self.expression if self.expression_format == "pql/text" else None

    def evaluation_enabled(self, kind: str) -> bool:
        """``kind``: batch, continuous (streaming) or synchronous (edge)."""
        return bool(_dict(self.evaluation_info.get(kind)).get("enabled", False))


@dataclass(frozen=True)
class Preview:
    id: str  # previewId, opaque
    state: str  # NEW, RUNNING, RESULT_READY, FAILED
    query_id: str
    execution_id: int | None
    raw: JSON = field(repr=False)

    @classmethod
    def from_json(cls, data: JSON) -> Preview:
        return cls(id=str(data.get("previewId", "")),
                   state=str(data.get("state") or data.get("previewQueryStatus") or ""),
                   query_id=str(data.get("previewQueryId") or ""),
                   execution_id=_int(data.get("previewExecutionId")), raw=data)


@dataclass(frozen=True)
class PreviewPage:
    state: str
    results: list[JSON]  # as the API sent them (keyed by XID, or objectId/relatedObjects)
    offset: int
    size: int
    has_next: bool
    raw: JSON = field(repr=False)

    @classmethod
    def from_json(cls, data: JSON) -> PreviewPage:
        links = _dict(data.get("links") or data.get("link"))
        page = _dict(data.get("page"))
        results = [item for item in data.get("results") or [] if isinstance(item, dict)]
        return cls(state=str(data.get("state") or ""), results=results,
                   offset=_int(page.get("offset"), 0) or 0,
                   size=_int(page.get("size"), len(results)) or 0,
                   has_next=bool(links.get("next")), raw=data)

    @property
    def is_finished(self) -> bool:
        return self.state in PREVIEW_FINISHED


@dataclass(frozen=True)
class Estimate:
    state: str  # NEW, RUNNING, RESULT_READY, FAILED
    estimated_size: int | None
    num_rows_to_read: int | None
    profiles_read_so_far: int | None
    profiles_matched_so_far: int | None
    total_rows: int | None
    standard_error: int | None
    confidence_interval: str
    namespace_distribution: dict[str, int]  # namespaceId -> profilesMatchedSoFar
    error: JSON
    raw: JSON = field(repr=False)

    @classmethod
    def from_json(cls, data: JSON) -> Estimate:
        distribution = {str(item.get("namespaceId")): _int(item.get("profilesMatchedSoFar"), 0)
                        or 0 for item in data.get("estimatedNamespaceDistribution") or []
                        if isinstance(item, dict)}
        return cls(state=str(data.get("state") or ""),
                   estimated_size=_int(data.get("estimatedSize")),
                   num_rows_to_read=_int(data.get("numRowsToRead")),
                   profiles_read_so_far=_int(data.get("profilesReadSoFar")),
                   profiles_matched_so_far=_int(data.get("profilesMatchedSoFar")),
                   total_rows=_int(data.get("totalRows")),
                   standard_error=_int(data.get("standardError")),
                   confidence_interval=str(data.get("confidenceInterval") or ""),
                   namespace_distribution=distribution, error=_dict(data.get("error")),
                   raw=data)

    @property
    def is_finished(self) -> bool:
        return self.state in PREVIEW_FINISHED


@dataclass(frozen=True)
class JobError:
    code: str
    message: str

    @classmethod
    def from_json(cls, data: Any) -> JobError:
        item = _dict(data)
        return cls(code=str(item.get("code", "")),
                   message=str(item.get("msg") or item.get("message") or ""))


def _job_errors(data: JSON) -> list[JobError]:
    return [JobError.from_json(item) for item in data.get("errors") or []
            if isinstance(item, dict)]


@dataclass(frozen=True)
class SegmentJob:
    id: str
    status: str  # NEW, QUEUED, PROCESSING, CANCELLING, CANCELLED, FAILED, SUCCEEDED
    segment_ids: list[str]
    batch_id: str | None
    metrics: JSON
    errors: list[JobError]
    creation_time: int | None
    update_time: int | None
    raw: JSON = field(repr=False)

    @classmethod
    def from_json(cls, data: JSON) -> SegmentJob:
        ids = [str(item.get("segmentId")) for item in data.get("segments") or []
               if isinstance(item, dict) and item.get("segmentId")]
        return cls(id=str(data.get("id", "")), status=str(data.get("status") or ""),
                   segment_ids=ids, batch_id=data.get("batchId"),
                   metrics=_dict(data.get("metrics")), errors=_job_errors(data),
                   creation_time=_int(data.get("creationTime")),
                   update_time=_int(data.get("updateTime")), raw=data)

    @property
    def is_finished(self) -> bool:
        return self.status in JOB_FINISHED

    @property
    def segmented_profile_counter(self) -> dict[str, int]:
        return {str(k): _int(v, 0) or 0
                for k, v in _dict(self.metrics.get("segmentedProfileCounter")).items()}

    @property
    def total_profiles(self) -> int | None:
        return _int(self.metrics.get("totalProfiles"))


@dataclass(frozen=True)
class ExportJob:
    id: str  # AEP sends an integer; kept as a string like every other id
    status: str  # NEW, PROCESSING, SUCCEEDED, FAILED (and CANCELLING/CANCELLED)
    dataset_id: str | None
    batch_ids: list[str]
    metrics: JSON
    errors: list[JobError]
    creation_time: int | None
    update_time: int | None
    raw: JSON = field(repr=False)

    @classmethod
    def from_json(cls, data: JSON) -> ExportJob:
        destination = _dict(data.get("destination"))
        batch_ids = [str(destination["batchId"])] if destination.get("batchId") else []
        batch_ids += [str(item["batchId"]) for item in destination.get("batches") or []
                      if isinstance(item, dict) and item.get("batchId")]
        return cls(id=str(data.get("id", "")), status=str(data.get("status") or ""),
                   dataset_id=destination.get("datasetId") or destination.get("dataSetId"),
                   batch_ids=batch_ids, metrics=_dict(data.get("metrics")),
                   errors=_job_errors(data), creation_time=_int(data.get("creationTime")),
                   update_time=_int(data.get("updateTime")), raw=data)

    @property
    def batch_id(self) -> str | None:
        return self.batch_ids[0] if self.batch_ids else None

    @property
    def is_finished(self) -> bool:
        return self.status in JOB_FINISHED

    @property
    def total_exported(self) -> int | None:
        return _int(self.metrics.get("totalExportedProfileCounter"))


@dataclass(frozen=True)
class Dataset:
    id: str
    name: str
    description: str
    schema_ref: str | None  # schemaRef.id
    created: int | None  # epoch ms
    updated: int | None
    raw: JSON = field(repr=False)

    @property
    def profile_enabled(self) -> bool:
        """tags.unifiedProfile holds "enabled:true": its records feed the profiles."""
        tags = _dict(self.raw.get("tags")).get("unifiedProfile") or []
        return "enabled:true" in [str(tag).replace(" ", "").lower() for tag in tags]

    @classmethod
    def from_json(cls, dataset_id: str, data: JSON) -> Dataset:
        return cls(id=dataset_id, name=str(data.get("name") or ""),
                   description=str(data.get("description") or ""),
                   schema_ref=_dict(data.get("schemaRef")).get("id"),
                   created=_int(data.get("created")), updated=_int(data.get("updated")),
                   raw=data)


@dataclass(frozen=True)
class Batch:
    id: str
    status: str  # Catalog's lower-case batch status: success, failure, processing, ...
    dataset_id: str | None
    records_written: int | None
    created: int | None
    updated: int | None
    errors: list[JSON]
    raw: JSON = field(repr=False)

    @classmethod
    def from_json(cls, batch_id: str, data: JSON) -> Batch:
        dataset = next((item.get("id") for item in data.get("relatedObjects") or []
                        if isinstance(item, dict) and item.get("type") == "dataSet"), None)
        return cls(id=batch_id, status=str(data.get("status") or ""), dataset_id=dataset,
                   records_written=_int(_dict(data.get("metrics")).get("recordsWritten")),
                   created=_int(data.get("created")), updated=_int(data.get("updated")),
                   errors=[e for e in data.get("errors") or [] if isinstance(e, dict)], raw=data)


@dataclass(frozen=True)
class BatchFile:
    id: str  # dataSetFileId
    records: int | None
    size: int | None
    is_valid: bool
    raw: JSON = field(repr=False)

    @classmethod
    def from_json(cls, data: JSON) -> BatchFile:
        return cls(id=str(data.get("dataSetFileId", "")), records=_int(data.get("records")),
                   size=_int(data.get("size")), is_valid=bool(data.get("isValid", True)),
                   raw=data)


@dataclass(frozen=True)
class FileEntry:
    """One entry of a file listing: a downloadable file (``name``) or a nested file id."""

    name: str | None
    file_id: str | None  # set when the entry is itself a dataSetFileId to list
    length: int | None
    href: str
    raw: JSON = field(repr=False)

    @classmethod
    def from_json(cls, data: JSON) -> FileEntry:
        href = str(_dict(_dict(data.get("_links")).get("self")).get("href") or "")
        return cls(name=data.get("name"), file_id=data.get("dataSetFileId"),
                   length=_int(data.get("length")), href=href, raw=data)


@dataclass(frozen=True)
class MergePolicy:
    id: str
    name: str
    schema_name: str
    identity_graph: str  # none | pdg
    attribute_merge: str  # timestampOrdered | dataSetPrecedence
    is_default: bool
    is_active_on_edge: bool
    version: int | None
    raw: JSON = field(repr=False)

    @classmethod
    def from_json(cls, data: JSON) -> MergePolicy:
        return cls(id=str(data.get("id", "")), name=str(data.get("name") or ""),
                   schema_name=str(_dict(data.get("schema")).get("name") or ""),
                   identity_graph=str(_dict(data.get("identityGraph")).get("type") or ""),
                   attribute_merge=str(_dict(data.get("attributeMerge")).get("type") or ""),
                   is_default=bool(data.get("default", False)),
                   is_active_on_edge=bool(data.get("isActiveOnEdge", False)),
                   version=_int(data.get("version")), raw=data)


@dataclass(frozen=True)
class Entity:
    """A merged profile from Profile Access, keyed in the answer by its XID."""

    entity_id: str
    entity: JSON
    sources: list[str]
    last_modified_at: str
    raw: JSON = field(repr=False)

    @classmethod
    def from_json(cls, entity_id: str, data: JSON) -> Entity:
        return cls(entity_id=str(data.get("entityId") or entity_id),
                   entity=_dict(data.get("entity")),
                   sources=[str(s) for s in data.get("sources") or []],
                   last_modified_at=str(data.get("lastModifiedAt") or ""), raw=data)


@dataclass(frozen=True)
class EntityEvent:
    entity_id: str  # the event's id
    related_entity_id: str  # the profile's
    timestamp: int | None  # epoch ms
    entity: JSON
    raw: JSON = field(repr=False)

    @classmethod
    def from_json(cls, data: JSON) -> EntityEvent:
        return cls(entity_id=str(data.get("entityId") or ""),
                   related_entity_id=str(data.get("relatedEntityId") or ""),
                   timestamp=_int(data.get("timestamp")), entity=_dict(data.get("entity")),
                   raw=data)
