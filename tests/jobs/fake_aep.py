"""A stateful fake AEP for the jobs tests and bench/bench_jobs.py: IMS, segment jobs (create,
get, bulk-get, list, cancel), export jobs (create, get, list, cancel) and previews/estimates,
in the payload shapes of spec/aep-api.md, on httpx.MockTransport.

Remote jobs move NEW → PROCESSING → SUCCEEDED on a clock the caller owns (`clock()` returns
epoch seconds), so a bench can simulate an hour in seconds. `script` overrides the answers
of GETs for one job id (a list of statuses, played in order, the last one repeated), which is
how a test serves a stale answer after a newer one. Every API request is recorded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

UPS = "/data/core/ups"


@dataclass
class RemoteJob:
    id: str
    kind: str  # segment | export | preview
    created: float
    runs_for: float
    request: Any
    request_id: str
    cancelled_at: float | None = None

    def status(self, now: float) -> str:
        if self.cancelled_at is not None:
            return "CANCELLED" if now >= self.cancelled_at + 1 else "CANCELLING"
        if now < self.created + 0.5:
            return "NEW"
        return "PROCESSING" if now < self.created + self.runs_for else "SUCCEEDED"


@dataclass
class FakeAEP:
    clock: Callable[[], float] = time.time
    runs_for: float = 30.0
    echo_request_id: bool = True
    jobs: dict[str, RemoteJob] = field(default_factory=dict)
    script: dict[str, list[str]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    ims_requests: int = 0
    _next_id: int = 1000

    # --- the transport ------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def api_calls(self, method: str | None = None, path_part: str = "") -> list[httpx.Request]:
        return [r for r in self.requests if (method is None or r.method == method)
                and path_part in r.url.path]

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.rstrip("/")
        if path == "/ims/token/v3":
            self.ims_requests += 1
            return _json(200, {"access_token": "fake-token", "token_type": "bearer",
                               "expires_in": 86399})
        self.requests.append(request)
        now = self.clock()
        method = request.method
        if path == f"{UPS}/segment/jobs":
            if method == "POST":
                return _json(200, self._segment_json(self._create("segment", request, now), now))
            return self._segment_list(request, now)
        if path == f"{UPS}/segment/jobs/bulk-get":
            ids = [item["id"] for item in json.loads(request.content)["ids"]]
            results = {key: self._segment_json(self.jobs[key], now) if key in self.jobs
                       else {"requestId": "fake", "errors": {"404": [{"code": 404,
                                                                       "message": "Not found."}]}}
                       for key in ids}
            return _json(207, {"results": results})
        if path.startswith(f"{UPS}/segment/jobs/"):
            return self._one(path.rsplit("/", 1)[1], method, now, self._segment_json)
        if path == f"{UPS}/export/jobs":
            if method == "POST":
                return _json(200, self._export_json(self._create("export", request, now), now))
            return self._export_list(request, now)
        if path.startswith(f"{UPS}/export/jobs/"):
            return self._one(path.rsplit("/", 1)[1], method, now, self._export_json)
        if path == f"{UPS}/preview" and method == "POST":
            job = self._create("preview", request, now)
            return _json(201, {"state": "NEW", "previewId": job.id,
                               "previewQueryId": f"q-{job.id}", "previewExecutionId": 0})
        if path.startswith((f"{UPS}/estimate/", f"{UPS}/preview/")):
            return self._one(path.rsplit("/", 1)[1], method, now, self._estimate_json)
        return _json(404, {"type": "https://ns.adobe.com/aep/errors/UPAPI-113430-404",
                           "status": 404, "title": f"No route {path}"})

    # --- state ------------------------------------------------------------------------------------

    def _create(self, kind: str, request: httpx.Request, now: float) -> RemoteJob:
        self._next_id += 1
        key = (f"seg-{self._next_id}" if kind == "segment" else
               str(self._next_id) if kind == "export" else f"prev-{self._next_id}")
        job = RemoteJob(key, kind, now, self.runs_for, json.loads(request.content),
                        request.headers.get("x-request-id", ""))
        self.jobs[key] = job
        return job

    def add(self, kind: str, *, created: float | None = None, runs_for: float | None = None,
            request: Any = None) -> RemoteJob:
        """A remote job created by someone else (or before the test started)."""
        self._next_id += 1
        key = f"seg-{self._next_id}" if kind == "segment" else str(self._next_id)
        job = RemoteJob(key, kind, self.clock() if created is None else created,
                        self.runs_for if runs_for is None else runs_for, request or {}, "")
        self.jobs[key] = job
        return job

    def status_of(self, job: RemoteJob, now: float) -> str:
        played = self.script.get(job.id)
        if played:
            return played.pop(0) if len(played) > 1 else played[0]
        return job.status(now)

    def _one(self, key: str, method: str, now: float,
             shape: Callable[[RemoteJob, float], dict[str, Any]]) -> httpx.Response:
        job = self.jobs.get(key)
        if job is None:
            return _json(404, {"type": "https://ns.adobe.com/aep/errors/UPAPI-113430-404",
                               "status": 404, "title": f"The job {key} is not found."})
        if method == "DELETE":
            job.cancelled_at = now
            if job.kind == "preview":
                return _json(200, {"status": True, "message": "KILLED"})
            return httpx.Response(204)
        return _json(200, shape(job, now))

    # --- shapes (spec/aep-api.md §3.3, §4.2, §5.2) ------------------------------------------

    def _segment_json(self, job: RemoteJob, now: float) -> dict[str, Any]:
        status = self.status_of(job, now)
        segments = job.request if isinstance(job.request, list) else job.request.get("segments")
        ids = [item["segmentId"] for item in segments]
        done = status == "SUCCEEDED"
        started, ended = int(job.created * 1000), int((job.created + job.runs_for) * 1000)
        body: dict[str, Any] = {
            "id": job.id, "status": status, "segments": [{"segmentId": i} for i in ids],
            "metrics": {
                "totalTime": {"startTimeInMs": started, "endTimeInMs": ended,
                              "totalTimeInMs": ended - started} if done else {},
                "totalProfiles": 400 if done else 0,
                "segmentedProfileCounter": {i: 40 + n for n, i in enumerate(ids)} if done else {},
            },
            "errors": [{"code": "0080000018", "msg": "Segment evaluation failed"}]
            if status == "FAILED" else [],
            "creationTime": int(job.created * 1000), "updateTime": int(now * 1000),
        }
        if self.echo_request_id:
            body["requestId"] = job.request_id
        return body

    def _segment_list(self, request: httpx.Request, now: float) -> httpx.Response:
        start = int(request.url.params.get("start", 0))
        limit = int(request.url.params.get("limit", 100))
        rows = sorted((j for j in self.jobs.values() if j.kind == "segment"),
                      key=lambda j: (-j.created, j.id))
        page = rows[start:start + limit]
        links: dict[str, Any] = {}
        if start + limit < len(rows):
            links["next"] = {"href": f"{UPS}/segment/jobs?start={start + limit}&limit={limit}"}
        return _json(200, {"_page": {"totalCount": len(rows), "pageSize": len(page)},
                           "children": [self._segment_json(j, now) for j in page],
                           "_links": links})

    def _export_json(self, job: RemoteJob, now: float) -> dict[str, Any]:
        status = self.status_of(job, now)
        destination = dict(job.request.get("destination") or {})
        if status == "SUCCEEDED":
            destination["batchId"] = f"batch-{job.id}"
        body: dict[str, Any] = {
            "id": int(job.id), "jobType": "BATCH", "status": status,
            "destination": destination, "filter": job.request.get("filter", {}),
            "metrics": {"totalExportedProfileCounter": 40} if status == "SUCCEEDED" else {},
            "errors": [], "creationTime": int(job.created * 1000),
            "updateTime": int(now * 1000),
        }
        if "fields" in job.request:
            body["fields"] = job.request["fields"]
        if self.echo_request_id:
            body["requestId"] = job.request_id
        return body

    def _export_list(self, request: httpx.Request, now: float) -> httpx.Response:
        limit = int(request.url.params.get("limit", 100))
        offset = request.url.params.get("offset")
        rows = sorted((j for j in self.jobs.values() if j.kind == "export"),
                      key=lambda j: (-j.created, -int(j.id)))
        if offset:
            created, last = offset.split("_")
            after = (int(created), int(last))
            rows = [j for j in rows if (int(j.created * 1000), int(j.id)) < after]
        page = rows[:limit]
        link: dict[str, Any] = {}
        if len(rows) > limit:
            cursor = f"{int(page[-1].created * 1000)}_{page[-1].id}"
            link["next"] = f"{UPS}/export/jobs/?limit={limit}&offset={cursor}"
        return _json(200, {"records": [self._export_json(j, now) for j in page],
                           "page": {"sortField": "createdTime", "sort": "desc",
                                    "pageSize": len(page)}, "link": link})

    def _estimate_json(self, job: RemoteJob, now: float) -> dict[str, Any]:
        status = self.status_of(job, now)
        state = {"NEW": "NEW", "PROCESSING": "RUNNING", "SUCCEEDED": "RESULT_READY"}.get(
            status, status)
        share = min(max((now - job.created) / job.runs_for, 0.0), 1.0)
        read = 1000 if state == "RESULT_READY" else int(1000 * share)
        return {"state": state, "estimatedSize": 4 * read // 10, "numRowsToRead": 1000,
                "profilesReadSoFar": read, "profilesMatchedSoFar": read // 10,
                "totalRows": 1000, "standardError": 12, "confidenceInterval": "95%",
                "estimatedNamespaceDistribution": [],
                "error": {"description": "Sampling failed", "traceback": ""}
                if state == "FAILED" else {"description": "", "traceback": ""}}


def _json(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json"})
