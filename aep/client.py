"""AEPClient: one method per endpoint of spec/aep-api.md that the dashboard uses.

Every request carries AEP's headers (§1.1: bearer token, ``x-api-key`` = client id,
``x-gw-ims-org-id``, ``x-sandbox-name``) and a fresh ``x-request-id`` (uuid4), which is logged
on the "aep" logger with the method, the path (never the query: it can hold an email address
used as an entity id), the status and the duration; 2xx at DEBUG, other answers at INFO,
retries at WARNING. Tokens and secrets are never logged, raised or repr'd.

Faults: a 401 drops the token and retries once with a new one; 429, 5xx, timeouts and
connection errors are retried by the RetryPolicy. A POST that creates something (definition,
preview, segment job, export job, dataset) is retried only when the server surely did not act
on it — the connection failed or it answered 429 — because AEP has no idempotency keys and a
retried create after a 500 or a read timeout could start a second job. Such a call raises
``AEPTransientError`` at once instead; the caller decides (the jobs app reconciles by
``x-request-id``, which it may pass in as ``request_id``).

Pagination helpers follow the API's own links: ``link.next`` for definitions and export jobs,
``_links.next.href`` for segment jobs, merge policies, batch files and entity events; Catalog
lists (keyed objects) page with ``start``/``limit`` until a short page.
"""

from __future__ import annotations

import json as jsonlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx

from aep.auth import Credentials, TokenManager, shared_token_manager
from aep.errors import (
    AEPAuthError,
    AEPConnectionError,
    AEPNotFoundError,
    AEPPermanentError,
    AEPTransientError,
    error_details,
    read_body,
    retry_after_seconds,
)
from aep.retry import RetryPolicy
from aep.tls import ssl_context
from aep.types import (
    Batch,
    BatchFile,
    Dataset,
    Entity,
    EntityEvent,
    Estimate,
    ExportJob,
    FileEntry,
    MergePolicy,
    Page,
    Preview,
    PreviewPage,
    Sandbox,
    SegmentDefinition,
    SegmentJob,
)

__all__ = ["AEPClient", "SchemaCache", "clear_schema_cache", "union_schema_cache"]

logger = logging.getLogger("aep")

UPS = "/data/core/ups"
DEFINITIONS = f"{UPS}/segment/definitions"
SEGMENT_JOBS = f"{UPS}/segment/jobs"
EXPORT_JOBS = f"{UPS}/export/jobs"
MERGE_POLICIES = f"{UPS}/config/mergePolicies"
ENTITIES = f"{UPS}/access/entities"
CATALOG = "/data/foundation/catalog"
IMPORT = "/data/foundation/import"  # Batch Ingestion API
PROFILE_CLASS = "https://ns.adobe.com/xdm/context/profile"
EVENT_CLASS = "https://ns.adobe.com/xdm/context/experienceevent"
UPLOAD_CHUNK = 1 << 20
DATA_ACCESS = "/data/foundation/export"
SANDBOXES = "/data/foundation/sandbox-management/sandboxes"
SCHEMAS = "/data/foundation/schemaregistry/tenant/schemas"
PROFILE = "_xdm.context.profile"
EXPERIENCE_EVENT = "_xdm.context.experienceevent"
PROFILE_UNION = "https://ns.adobe.com/xdm/context/profile__union"
XED_JSON = "application/vnd.adobe.xed+json;version=1"
XED_FULL = "application/vnd.adobe.xed-full+json;version=1"
CATALOG_MAX_LIMIT = 100
BULK_LIMIT = 100
SCHEMA_TTL = 300.0

# User-facing texts (module constants, so tests assert the exact message)
API_REFUSED_TOKEN = "AEP refused the access token even after a fresh one was fetched ({detail})"
API_FORBIDDEN = "AEP refused the request ({detail})"
API_NOT_FOUND = "Not found ({detail})"
API_STATUS = "AEP answered {status}"
API_UNAVAILABLE = "AEP answered {status}, try again later ({detail})"
API_TIMEOUT = "AEP did not answer within {timeout:g} s ({method} {path})"
API_UNREACHABLE = "Could not reach {host}: {reason}"
API_BROKEN = "The connection to {host} broke: {reason}"
API_MALFORMED = "AEP answered {method} {path} with a body that is not JSON"
ONE_EXPRESSION = "Give exactly one of pql_text and pql_json."

Json = Any
NextLink = Callable[[Json], str | None]


class SchemaCache:
    """Union schemas per (base_url, org, sandbox, class), kept for ``ttl`` seconds.

    Module-level (one per process) and thread-safe; ``clock`` is injectable for tests.
    """

    def __init__(self, ttl: float = SCHEMA_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, str, str], tuple[float, dict[str, Any]]] = {}

    def get(self, key: tuple[str, str, str, str]) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or self.clock() >= entry[0]:
                self._entries.pop(key, None)
                return None
            return entry[1]

    def put(self, key: tuple[str, str, str, str], schema: dict[str, Any]) -> None:
        with self._lock:
            self._entries[key] = (self.clock() + self.ttl, schema)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


union_schema_cache = SchemaCache()


def clear_schema_cache() -> None:
    union_schema_cache.clear()


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(UPLOAD_CHUNK):
            yield chunk


def _path_only(path: str) -> str:
    return path.split("?", 1)[0]


def _expression(pql_text: str | None, pql_json: Any) -> dict[str, str]:
    if (pql_text is None) == (pql_json is None):
        raise ValueError(ONE_EXPRESSION)
    if pql_text is not None:
        return {"type": "PQL", "format": "pql/text", "value": pql_text}
    value = pql_json if isinstance(pql_json, str) else jsonlib.dumps(pql_json)
    return {"type": "PQL", "format": "pql/json", "value": value}


def _links_next(body: Json) -> str | None:
    """``_links.next.href`` (segment jobs, merge policies, batch files, entity events)."""
    if not isinstance(body, dict):
        return None
    nxt = (body.get("_links") or {}).get("next")
    href = nxt.get("href") if isinstance(nxt, dict) else nxt
    return href or None


def _link_next(body: Json) -> str | None:
    """``link.next`` (definitions, export jobs); a string, or ``{"href": ...}`` to be safe."""
    if not isinstance(body, dict):
        return None
    nxt = (body.get("link") or {}).get("next")
    href = nxt.get("href") if isinstance(nxt, dict) else nxt
    return href or None


class AEPClient:
    """The wire client for one connection (credentials) and one sandbox."""

    def __init__(self, base_url: str, credentials: Credentials, sandbox: str = "prod", *,
                 transport: httpx.BaseTransport | None = None, timeout: float = 30.0,
                 retry: RetryPolicy | None = None,
                 token_manager: TokenManager | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.sandbox = sandbox
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        if token_manager is None:
            # Without an injected transport the process-wide manager of this credential is
            # reused, so a client per Celery task does not mean an IMS call per task.
            token_manager = (shared_token_manager(credentials) if transport is None else
                             TokenManager(credentials, transport=transport, timeout=timeout,
                                          retry=self.retry))
        self.tokens = token_manager
        self._transport = transport
        self._http = httpx.Client(base_url=self.base_url, transport=transport,
                                  verify=ssl_context(),
                                  timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))

    def __repr__(self) -> str:
        return (f"AEPClient(base_url={self.base_url!r}, org_id={self.credentials.org_id!r}, "
                f"sandbox={self.sandbox!r})")

    def __enter__(self) -> AEPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def with_sandbox(self, sandbox: str) -> AEPClient:
        """The same connection in another sandbox, sharing the token manager."""
        return AEPClient(self.base_url, self.credentials, sandbox, transport=self._transport,
                         timeout=self.timeout, retry=self.retry, token_manager=self.tokens)

    # ---------------------------------------------------------------- the request loop

    def token(self) -> str:
        """An IMS access token for this connection (cached by the TokenManager)."""
        return self.tokens.token()

    def _headers(self, token: str, request_id: str, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}", "x-api-key": self.credentials.client_id,
                   "x-gw-ims-org-id": self.credentials.org_id, "x-sandbox-name": self.sandbox,
                   "x-request-id": request_id}
        if extra:
            headers.update(extra)
        return headers

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json: Any = None, headers: dict[str, str] | None = None,
                idempotent: bool | None = None, request_id: str | None = None,
                stream: bool = False, upload: Path | None = None) -> httpx.Response:
        """Send one API call with retries; the response is 2xx or an AEPError was raised.

        ``idempotent`` defaults to True for every method but POST. With ``stream`` the body of
        a successful response is not read; the caller must close it. ``upload`` sends a file
        as the raw body, read a chunk at a time (opened again on each attempt) with its
        Content-Length, so the file is never held in memory.
        """
        if idempotent is None:
            idempotent = method.upper() != "POST"
        shown = _path_only(path)
        policy = self.retry
        started = policy.clock()
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            rid = request_id or str(uuid.uuid4())
            token = self.tokens.token()
            sent = self._headers(token, rid, headers)
            content = None
            if upload is not None:
                sent["Content-Length"] = str(upload.stat().st_size)
                content = _chunks(upload)
            request = self._http.build_request(method, path, params=params, json=json,
                                               content=content, headers=sent)
            began = time.perf_counter()
            fault: AEPTransientError
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TimeoutException as exc:
                elapsed = (time.perf_counter() - began) * 1000
                logger.info("aep %s %s -> %s after %.0f ms request_id=%s", method, shown,
                            type(exc).__name__, elapsed, rid)
                if isinstance(exc, httpx.ConnectTimeout):
                    fault = AEPConnectionError(API_UNREACHABLE.format(
                        host=self._http.base_url.host, reason="connect timeout"), request_id=rid)
                else:
                    fault = AEPTransientError(API_TIMEOUT.format(
                        timeout=self.timeout, method=method, path=shown), request_id=rid)
                retryable = idempotent or isinstance(exc, httpx.ConnectTimeout)
                retry_after = None
            except httpx.TransportError as exc:
                elapsed = (time.perf_counter() - began) * 1000
                logger.info("aep %s %s -> %s after %.0f ms request_id=%s", method, shown,
                            type(exc).__name__, elapsed, rid)
                reason = str(exc)[:200] or type(exc).__name__
                if isinstance(exc, httpx.ConnectError):
                    fault = AEPConnectionError(API_UNREACHABLE.format(
                        host=self._http.base_url.host, reason=reason), request_id=rid)
                    retryable = True
                else:
                    fault = AEPTransientError(API_BROKEN.format(
                        host=self._http.base_url.host, reason=reason), request_id=rid)
                    retryable = idempotent
                retry_after = None
            else:
                status = response.status_code
                elapsed = (time.perf_counter() - began) * 1000
                level = logging.DEBUG if status < 400 else logging.INFO
                logger.log(level, "aep %s %s -> %d in %.0f ms request_id=%s sandbox=%s",
                           method, shown, status, elapsed, rid, self.sandbox)
                if status < 400:
                    return response
                if stream:
                    response.read()
                    response.close()
                body = read_body(response)
                code, message = error_details(body)
                detail = f"{code}: {message}" if code and message else (message or str(status))
                if status == 401 and not refreshed:
                    refreshed = True
                    self.tokens.invalidate(token)
                    attempt -= 1  # a refresh is not a retry
                    continue
                if status in (401, 403):
                    text = API_REFUSED_TOKEN if status == 401 else API_FORBIDDEN
                    raise AEPAuthError(text.format(detail=detail), status=status, code=code,
                                       request_id=rid, body=body)
                if status == 404:
                    raise AEPNotFoundError(message or API_NOT_FOUND.format(detail=shown),
                                           status=status, code=code, request_id=rid, body=body)
                if status != 429 and status < 500:
                    raise AEPPermanentError(message or API_STATUS.format(status=status),
                                            status=status, code=code, request_id=rid, body=body)
                retry_after = retry_after_seconds(response, body, now=time.time())
                fault = AEPTransientError(API_UNAVAILABLE.format(status=status, detail=detail),
                                          status=status, code=code, request_id=rid, body=body,
                                          retry_after=retry_after)
                retryable = idempotent or status == 429
            delay = (policy.next_delay(attempt, started=started, retry_after=retry_after)
                     if retryable else None)
            if delay is None:
                raise fault
            logger.warning("aep %s %s attempt %d failed (%s); retrying in %.2f s request_id=%s",
                           method, shown, attempt, fault.message, delay, rid)
            policy.sleep(delay)

    def _json(self, method: str, path: str, **kwargs: Any) -> Json:
        response = self.request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise AEPPermanentError(API_MALFORMED.format(method=method, path=_path_only(path)),
                                    status=response.status_code,
                                    request_id=response.request.headers.get("x-request-id", ""),
                                    body=response.text[:2000]) from None

    def _get(self, path: str, params: dict[str, Any] | None = None, **kwargs: Any) -> Json:
        return self._json("GET", path, params=params, **kwargs)

    def _resolve(self, href: str, collection: str, service: str) -> str:
        """A next-page link as a path on our base URL (never another host: the token stays)."""
        if href.startswith("@/"):  # relative to the collection's parent (Adobe's "@/name")
            return collection.rsplit("/", 1)[0] + "/" + href[2:]
        url = httpx.URL(href)
        if url.is_absolute_url:
            path = url.raw_path.decode("ascii")
            prefix = self._http.base_url.raw_path.decode("ascii").rstrip("/")
            # the client adds its base URL's path again: a link that includes it loses it here
            return path[len(prefix):] if prefix and path.startswith(prefix + "/") else path
        if href.startswith("/data/"):
            return href
        if href.startswith("/"):
            return service + href
        return collection.rsplit("/", 1)[0] + "/" + href

    def _pages(self, path: str, params: dict[str, Any] | None, next_link: NextLink, *,
               service: str = UPS) -> Iterator[Json]:
        """Every page of a list, following the API's own next links (and stopping on a loop)."""
        current: str | None = path
        query = params
        seen: set[str] = set()
        while current is not None:
            body = self._get(current, query)
            yield body
            href = next_link(body)
            if not href:
                return
            current = self._resolve(href, path, service)
            query = None
            if current in seen:
                return
            seen.add(current)

    # ---------------------------------------------------------------- sandboxes

    def sandboxes(self) -> list[Sandbox]:
        """GET /data/foundation/sandbox-management/sandboxes (every page)."""
        result: list[Sandbox] = []
        for body in self._pages(SANDBOXES, {"limit": 100}, _links_next):
            result.extend(Sandbox.from_json(item) for item in (body or {}).get("sandboxes") or []
                          if isinstance(item, dict))
        return result

    # ---------------------------------------------------------------- segment definitions

    def definitions(self, *, limit: int = 100, sort: str | None = None
                    ) -> Iterator[SegmentDefinition]:
        """Every definition of the sandbox, ``limit`` per request, following ``link.next``."""
        params: dict[str, Any] = {"start": 0, "limit": limit}
        if sort:
            params["sort"] = sort
        for body in self._pages(DEFINITIONS, params, _link_next):
            for item in (body or {}).get("segments") or []:
                yield SegmentDefinition.from_json(item)

    def definitions_page(self, *, start: int = 0, limit: int = 20,
                         sort: str | None = None) -> Page[SegmentDefinition]:
        params: dict[str, Any] = {"start": start, "limit": limit}
        if sort:
            params["sort"] = sort
        body = self._get(DEFINITIONS, params) or {}
        page = body.get("page") or {}
        return Page(items=[SegmentDefinition.from_json(item)
                           for item in body.get("segments") or []],
                    total_count=page.get("totalCount"), next_link=_link_next(body), raw=body)

    def get_definition(self, definition_id: str) -> SegmentDefinition:
        return SegmentDefinition.from_json(self._get(f"{DEFINITIONS}/{quote(definition_id)}"))

    def _definition_body(self, *, name: str, pql_text: str | None, pql_json: Any,
                         description: str, merge_policy_id: str | None, schema: str,
                         evaluation_info: dict[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "description": description,
                                "expression": _expression(pql_text, pql_json),
                                "schema": {"name": schema}}
        if merge_policy_id:
            body["mergePolicyId"] = merge_policy_id
        if evaluation_info is not None:
            body["evaluationInfo"] = evaluation_info
        return body

    def create_definition(self, *, name: str, pql_text: str | None = None,
                          pql_json: Any = None, description: str = "",
                          merge_policy_id: str | None = None, schema: str = PROFILE,
                          evaluation_info: dict[str, Any] | None = None) -> SegmentDefinition:
        body = self._definition_body(name=name, pql_text=pql_text, pql_json=pql_json,
                                     description=description, merge_policy_id=merge_policy_id,
                                     schema=schema, evaluation_info=evaluation_info)
        return SegmentDefinition.from_json(self._json("POST", DEFINITIONS, json=body))

    def update_definition(self, definition_id: str, *, name: str, pql_text: str | None = None,
                          pql_json: Any = None, description: str = "",
                          merge_policy_id: str | None = None, schema: str = PROFILE,
                          evaluation_info: dict[str, Any] | None = None) -> SegmentDefinition:
        """PATCH, which AEP treats as a whole-object overwrite (§2.6): send every field."""
        body = self._definition_body(name=name, pql_text=pql_text, pql_json=pql_json,
                                     description=description, merge_policy_id=merge_policy_id,
                                     schema=schema, evaluation_info=evaluation_info)
        body["id"] = definition_id
        return SegmentDefinition.from_json(
            self._json("PATCH", f"{DEFINITIONS}/{quote(definition_id)}", json=body))

    def delete_definition(self, definition_id: str) -> None:
        self.request("DELETE", f"{DEFINITIONS}/{quote(definition_id)}")

    def _bulk_get(self, path: str, ids: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        """The ``results`` of bulk-get calls, BULK_LIMIT ids at a time (AEP's maximum)."""
        unique = list(dict.fromkeys(ids))
        for at in range(0, len(unique), BULK_LIMIT):
            chunk = unique[at:at + BULK_LIMIT]
            body = self._json("POST", path, json={"ids": [{"id": i} for i in chunk]},
                              idempotent=True) or {}
            for key, value in (body.get("results") or {}).items():
                if isinstance(value, dict):
                    yield str(key), value

    def bulk_get_definitions(self, ids: list[str]) -> dict[str, SegmentDefinition]:
        """POST bulk-get (207), 100 ids per request; unknown ids are left out."""
        return {key: SegmentDefinition.from_json(value)
                for key, value in self._bulk_get(f"{DEFINITIONS}/bulk-get", ids)
                if value.get("id") and "expression" in value}

    def convert_pql(self, *, text: str | None = None, json: Any = None) -> dict[str, Any]:
        """POST /segment/conversion: the answer, whose ``expression`` is in the other format."""
        body = {"name": "conversion", "expression": _expression(text, json),
                "schema": {"name": PROFILE}}
        return dict(self._json("POST", f"{UPS}/segment/conversion", json=body,
                               idempotent=True) or {})

    # ---------------------------------------------------------------- preview & estimate

    def create_preview(self, *, pql_text: str | None = None, pql_json: Any = None,
                       merge_policy_id: str | None = None, model: str = PROFILE,
                       graph_type: str | None = None, request_id: str | None = None) -> Preview:
        expression = _expression(pql_text, pql_json)
        body: dict[str, Any] = {"predicateExpression": expression["value"],
                                "predicateType": expression["format"], "predicateModel": model}
        if graph_type:
            body["graphType"] = graph_type
        if merge_policy_id:
            body["mergePolicyId"] = merge_policy_id
        return Preview.from_json(self._json("POST", f"{UPS}/preview", json=body,
                                            request_id=request_id))

    def get_preview(self, preview_id: str, *, offset: int = 0, limit: int = 50) -> PreviewPage:
        return PreviewPage.from_json(self._get(f"{UPS}/preview/{quote(preview_id)}",
                                               {"offset": offset, "limit": limit}))

    def get_estimate(self, preview_id: str) -> Estimate:
        return Estimate.from_json(self._get(f"{UPS}/estimate/{quote(preview_id)}"))

    def delete_preview(self, preview_id: str) -> None:
        self.request("DELETE", f"{UPS}/preview/{quote(preview_id)}")

    def preview_sample_status(self) -> dict[str, Any]:
        return dict(self._get(f"{UPS}/previewsamplestatus") or {})

    # ---------------------------------------------------------------- segment jobs

    def create_segment_job(self, segment_ids: list[str], *,
                           request_id: str | None = None) -> SegmentJob:
        """POST /segment/jobs; ``["*"]`` sends the evaluate-everything object form (§4.1)."""
        body: Any
        if list(segment_ids) == ["*"]:
            body = {"schema": {"name": PROFILE}, "segments": [{"segmentId": "*"}]}
        else:
            body = [{"segmentId": segment_id} for segment_id in segment_ids]
        return SegmentJob.from_json(self._json("POST", SEGMENT_JOBS, json=body,
                                               request_id=request_id))

    def get_segment_job(self, job_id: str) -> SegmentJob:
        return SegmentJob.from_json(self._get(f"{SEGMENT_JOBS}/{quote(job_id)}"))

    def bulk_get_segment_jobs(self, ids: list[str]) -> dict[str, SegmentJob]:
        """POST bulk-get (207), 100 ids per request; unknown ids are left out."""
        return {key: SegmentJob.from_json(value)
                for key, value in self._bulk_get(f"{SEGMENT_JOBS}/bulk-get", ids)
                if value.get("status")}

    def segment_jobs(self, *, status: str | None = None, limit: int = 100,
                     sort: str | None = None, property: str | None = None
                     ) -> Iterator[SegmentJob]:
        """Every segment job (optionally filtered), following ``_links.next.href``."""
        params: dict[str, Any] = {"start": 0, "limit": limit}
        for key, value in (("status", status), ("sort", sort), ("property", property)):
            if value:
                params[key] = value
        for body in self._pages(SEGMENT_JOBS, params, _links_next):
            for item in (body or {}).get("children") or []:
                yield SegmentJob.from_json(item)

    def cancel_segment_job(self, job_id: str) -> None:
        self.request("DELETE", f"{SEGMENT_JOBS}/{quote(job_id)}")

    # ---------------------------------------------------------------- export jobs

    def create_export_job(self, body: dict[str, Any], *,
                          request_id: str | None = None) -> ExportJob:
        return ExportJob.from_json(self._json("POST", EXPORT_JOBS, json=body,
                                              request_id=request_id))

    def get_export_job(self, job_id: str | int) -> ExportJob:
        return ExportJob.from_json(self._get(f"{EXPORT_JOBS}/{quote(str(job_id))}"))

    def export_jobs(self, *, status: str | None = None, limit: int = 100) -> Iterator[ExportJob]:
        """Every export job, following ``link.next`` (an offset cursor)."""
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        for body in self._pages(EXPORT_JOBS, params, _link_next):
            for item in (body or {}).get("records") or []:
                yield ExportJob.from_json(item)

    def cancel_export_job(self, job_id: str | int) -> None:
        self.request("DELETE", f"{EXPORT_JOBS}/{quote(str(job_id))}")

    # ---------------------------------------------------------------- catalog

    def _catalog(self, path: str, params: dict[str, Any], limit: int
                 ) -> Iterator[tuple[str, dict[str, Any]]]:
        """A keyed Catalog list, page by page with start/limit until a short page."""
        limit = max(1, min(limit, CATALOG_MAX_LIMIT))
        start = 0
        while True:
            body = self._get(path, {**params, "start": start, "limit": limit}) or {}
            items = [(key, value) for key, value in body.items() if isinstance(value, dict)]
            yield from items
            if len(items) < limit:
                return
            start += len(items)

    def datasets(self, *, name: str | None = None, limit: int = 100) -> Iterator[Dataset]:
        params: dict[str, Any] = {"orderBy": "desc:created"}
        if name:
            params["name"] = name
        for key, value in self._catalog(f"{CATALOG}/dataSets", params, limit):
            yield Dataset.from_json(key, value)

    def get_dataset(self, dataset_id: str) -> Dataset:
        body = self._get(f"{CATALOG}/dataSets/{quote(dataset_id)}") or {}
        key, value = next(iter(body.items()), (dataset_id, {}))
        return Dataset.from_json(key, value)

    def create_dataset(self, *, name: str, description: str = "",
                       schema_ref: str | dict[str, Any] | None = None,
                       profile_enabled: bool = False) -> str:
        """POST /dataSets; the id of the new dataset (from ``["@/dataSets/<id>"]``). With
        ``profile_enabled`` its data feeds Real-time Customer Profile (and identities)."""
        ref = schema_ref if isinstance(schema_ref, dict) else {
            "id": schema_ref or PROFILE_UNION, "contentType": XED_JSON}
        body: dict[str, Any] = {"name": name, "description": description, "schemaRef": ref}
        if profile_enabled:
            body["tags"] = {"unifiedProfile": ["enabled:true"],
                            "unifiedIdentity": ["enabled:true"]}
        answer = self._json("POST", f"{CATALOG}/dataSets", json=body)
        if not isinstance(answer, list) or not answer or not isinstance(answer[0], str):
            raise AEPPermanentError(API_MALFORMED.format(method="POST",
                                                         path=f"{CATALOG}/dataSets"),
                                    body=answer)
        return answer[0].rsplit("/", 1)[-1]

    def delete_dataset(self, dataset_id: str) -> None:
        """DELETE /dataSets/{id}: the dataset, its batches and their files."""
        self.request("DELETE", f"{CATALOG}/dataSets/{quote(dataset_id)}")

    def batches(self, *, dataset_id: str | None = None, status: str | None = None,
                created_after: int | None = None, limit: int = 100) -> Iterator[Batch]:
        params: dict[str, Any] = {"orderBy": "desc:created"}
        for name, given in (("dataSet", dataset_id), ("status", status),
                            ("createdAfter", created_after)):
            if given is not None:
                params[name] = given
        for key, value in self._catalog(f"{CATALOG}/batches", params, limit):
            yield Batch.from_json(key, value)

    def get_batch(self, batch_id: str) -> Batch:
        body = self._get(f"{CATALOG}/batches/{quote(batch_id)}") or {}
        key, value = next(iter(body.items()), (batch_id, {}))
        return Batch.from_json(key, value)

    # ---------------------------------------------------------------- batch ingestion

    def create_batch(self, dataset_id: str, *, file_format: str = "json",
                     request_id: str | None = None) -> Batch:
        """POST /import/batches: a batch in ``loading`` that files are uploaded into."""
        body = {"datasetId": dataset_id, "inputFormat": {"format": file_format}}
        answer = self._json("POST", f"{IMPORT}/batches", json=body, request_id=request_id)
        if not isinstance(answer, dict) or not answer.get("id"):
            raise AEPPermanentError(API_MALFORMED.format(method="POST",
                                                         path=f"{IMPORT}/batches"),
                                    body=answer)
        return Batch.from_json(str(answer["id"]), answer)

    def upload_batch_file(self, batch_id: str, dataset_id: str, file_name: str,
                          path: Path) -> None:
        """PUT one file of a loading batch, streamed from `path` (PUT: retried safely)."""
        self.request("PUT", f"{IMPORT}/batches/{quote(batch_id)}/datasets/"
                     f"{quote(dataset_id)}/files/{quote(file_name)}", upload=path,
                     headers={"Content-Type": "application/octet-stream"})

    def complete_batch(self, batch_id: str) -> None:
        """POST ?action=COMPLETE: the batch's files are all sent; the platform ingests them."""
        self.request("POST", f"{IMPORT}/batches/{quote(batch_id)}",
                     params={"action": "COMPLETE"}, idempotent=False)

    def abort_batch(self, batch_id: str) -> None:
        self.request("POST", f"{IMPORT}/batches/{quote(batch_id)}",
                     params={"action": "ABORT"}, idempotent=False)

    # ---------------------------------------------------------------- data access

    def batch_files(self, batch_id: str) -> list[BatchFile]:
        path = f"{DATA_ACCESS}/batches/{quote(batch_id)}/files"
        return [BatchFile.from_json(item)
                for body in self._pages(path, {"start": 0, "limit": 100}, _links_next,
                                        service=DATA_ACCESS)
                for item in (body or {}).get("data") or [] if isinstance(item, dict)]

    def file_listing(self, file_id: str) -> list[FileEntry]:
        """GET /files/{id} without ``path``: the files (or nested file ids) it holds."""
        body = self._get(f"{DATA_ACCESS}/files/{quote(file_id)}") or {}
        return [FileEntry.from_json(item) for item in body.get("data") or []
                if isinstance(item, dict)]

    def batch_downloads(self, batch_id: str) -> list[tuple[str, FileEntry]]:
        """Every downloadable file of a batch as (dataSetFileId, entry), following listings
        whose entries are further file ids (directories, §7.3). Download each with
        ``download(file_id, entry.name)``."""
        found: list[tuple[str, FileEntry]] = []
        pending = [item.id for item in self.batch_files(batch_id)]
        seen: set[str] = set()
        while pending:
            file_id = pending.pop(0)
            if file_id in seen:
                continue
            seen.add(file_id)
            for entry in self.file_listing(file_id):
                if entry.name:
                    found.append((file_id, entry))
                elif entry.file_id:
                    pending.append(entry.file_id)
        return found

    def download(self, file_id: str, path: str) -> bytes:
        """The raw bytes of one file of a dataSetFileId."""
        return self.request("GET", f"{DATA_ACCESS}/files/{quote(file_id)}",
                            params={"path": path}).content

    def stream_download(self, file_id: str, path: str, dest: IO[bytes], *,
                        chunk_size: int = 1 << 20) -> int:
        """Write one file to ``dest`` chunk by chunk; the number of bytes written.

        Retries cover the request up to its headers only: once bytes flow, a broken transfer
        raises AEPTransientError and the caller starts over.
        """
        response = self.request("GET", f"{DATA_ACCESS}/files/{quote(file_id)}",
                                params={"path": path}, stream=True)
        written = 0
        try:
            for chunk in response.iter_bytes(chunk_size):
                dest.write(chunk)
                written += len(chunk)
        except httpx.TransportError as exc:
            raise AEPTransientError(API_BROKEN.format(host=self._http.base_url.host,
                                                      reason=type(exc).__name__),
                                    request_id=response.request.headers.get("x-request-id", "")
                                    ) from None
        finally:
            response.close()
        return written

    # ---------------------------------------------------------------- profile

    def merge_policies(self, *, schema: str | None = None) -> list[MergePolicy]:
        params: dict[str, Any] = {"limit": 100}
        if schema:
            params["schema.name"] = schema
        return [MergePolicy.from_json(item)
                for body in self._pages(MERGE_POLICIES, params, _links_next)
                for item in (body or {}).get("children") or [] if isinstance(item, dict)]

    def get_merge_policy(self, policy_id: str) -> MergePolicy:
        return MergePolicy.from_json(self._get(f"{MERGE_POLICIES}/{quote(policy_id)}"))

    def entity(self, entity_id: str, namespace: str | None = None, *,
               merge_policy_id: str | None = None, fields: str | None = None) -> Entity:
        """GET /access/entities: one merged profile by identity (namespace code) or XID."""
        params: dict[str, Any] = {"schema.name": PROFILE, "entityId": entity_id}
        if namespace:
            params["entityIdNS"] = namespace
        if merge_policy_id:
            params["mergePolicyId"] = merge_policy_id
        if fields:
            params["fields"] = fields
        body = self._get(ENTITIES, params) or {}
        for key, value in body.items():
            if isinstance(value, dict):
                return Entity.from_json(key, value)
        raise AEPNotFoundError(API_NOT_FOUND.format(detail="profile"), status=404)

    def entity_events(self, entity_id: str, namespace: str | None = None, *,
                      limit: int = 100, start_time: int | None = None,
                      end_time: int | None = None, newest_first: bool = False,
                      merge_policy_id: str | None = None) -> Iterator[EntityEvent]:
        """The ExperienceEvents of a profile, every page (``_links.next.href``)."""
        params: dict[str, Any] = {"schema.name": EXPERIENCE_EVENT,
                                  "relatedSchema.name": PROFILE,
                                  "relatedEntityId": entity_id, "limit": limit,
                                  "orderby": "-timestamp" if newest_first else "+timestamp"}
        if namespace:
            params["relatedEntityIdNS"] = namespace
        for key, value in (("startTime", start_time), ("endTime", end_time),
                           ("mergePolicyId", merge_policy_id)):
            if value is not None:
                params[key] = value
        for body in self._pages(ENTITIES, params, _links_next, service=f"{UPS}/access"):
            for item in (body or {}).get("children") or []:
                if isinstance(item, dict):
                    yield EntityEvent.from_json(item)

    # ---------------------------------------------------------------- schema registry

    def union_schema(self, class_name: str = PROFILE) -> dict[str, Any]:
        """The resolved union schema of an XDM class, cached per (base URL, org, sandbox,
        class) for SCHEMA_TTL seconds in this process (``clear_schema_cache()`` empties it).

        The dict is shared by every caller until it expires: read it, do not change it.
        """
        key = (self.base_url, self.credentials.org_id, self.sandbox, class_name)
        cached = union_schema_cache.get(key)
        if cached is not None:
            return cached
        schema_id = quote(f"{class_name}__union", safe="")
        schema = dict(self._get(f"{SCHEMAS}/{schema_id}", headers={"Accept": XED_FULL}) or {})
        union_schema_cache.put(key, schema)
        return schema


