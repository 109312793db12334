"""Data Access — /data/foundation/export: a batch's files and their bytes (spec §7.3).

Files are named by ``dataSetFileId`` (``<batchId>-<n>``) and by the file name inside the batch,
never by a filesystem path: ``?path=`` must be one of the names the batch row lists. Only
successful batches have files to read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase

from engine.api import errors
from engine.api.auth import api_view
from engine.api.paging import links
from engine.api.shapes_jobs import EXPORT_PATH, file_id
from engine.api.views.catalog import batch_get
from engine.ingest import batch_path
from engine.models import Batch, BatchStatus

FILE_ID_RE = re.compile(r"^([0-9a-f]{32})-([1-9][0-9]{0,8})$")
RANGE_RE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")
PAGE_LIMIT = 100
FILE_NOT_FOUND = "File not found."
CHUNK = 1024 * 1024


def _not_found() -> errors.ApiError:
    return errors.problem_error(errors.NOT_FOUND, "NotFoundError", FILE_NOT_FOUND)


def _files(batch: Batch) -> list[dict[str, Any]]:
    return list(batch.files) if batch.status == BatchStatus.SUCCESS else []


@api_view("GET")
def batch_files(request: HttpRequest, batch_id: str) -> JsonResponse:
    batch = batch_get(request, batch_id)
    files = _files(batch)
    try:
        start = max(0, int(request.GET.get("start", 0)))
        limit = min(PAGE_LIMIT, max(1, int(request.GET.get("limit", PAGE_LIMIT))))
    except ValueError:
        raise errors.problem_error(errors.BAD_REQUEST, "BadRequestError",
                                   "start and limit must be integers.") from None
    created = str(int(batch.created_at.timestamp() * 1000))
    updated = str(int((batch.completed_at or batch.created_at).timestamp() * 1000))
    data = []
    for index, item in enumerate(files[start:start + limit], start=start):
        key = file_id(batch, index)
        data.append({
            "dataSetFileId": key, "dataSetViewId": batch.dataset_id, "version": "1.0.0",
            "created": created, "updated": updated, "records": str(item["records"]),
            "size": str(item["size"]), "isValid": True,
            "_links": {"self": {"href": request.build_absolute_uri(
                f"{EXPORT_PATH}/files/{key}")}},
        })
    base = request.build_absolute_uri(f"{EXPORT_PATH}/batches/{batch.id}/files")
    href = (f"{base}?start={start + len(data)}&limit={limit}"
            if start + len(data) < len(files) else "")
    return JsonResponse({"data": data, "_page": {"limit": limit, "count": len(data)},
                         "_links": links(href, page={
                             "href": f"{base}?start={start}&limit={limit}",
                             "templated": True})})


def _file(request: HttpRequest, dataset_file_id: str) -> tuple[Batch, dict[str, Any]]:
    match = FILE_ID_RE.match(dataset_file_id)
    if not match:
        raise _not_found()
    try:
        batch = batch_get(request, match[1])
    except errors.ApiError:
        raise _not_found() from None
    files = _files(batch)
    index = int(match[2]) - 1
    if index >= len(files):
        raise _not_found()
    return batch, files[index]


@api_view("GET", "HEAD")  # type: ignore[arg-type]  # a FileResponse streams the bytes
def file_detail(request: HttpRequest, dataset_file_id: str) -> HttpResponseBase:
    batch, item = _file(request, dataset_file_id)
    name = request.GET.get("path")
    if name is None:
        if request.method == "HEAD":
            raise errors.problem_error(errors.BAD_REQUEST, "BadRequestError",
                                       "HEAD needs the path parameter.")
        href = request.build_absolute_uri(
            f"{EXPORT_PATH}/files/{dataset_file_id}?path={item['name']}")
        return JsonResponse({"data": [{"name": item["name"], "length": str(item["size"]),
                                       "_links": {"self": {"href": href}}}],
                             "_page": {"limit": PAGE_LIMIT, "count": 1}})
    if name != item["name"]:  # only names the batch lists: no paths from the request
        raise _not_found()
    path = batch_path(batch) / item["name"]
    try:
        return _bytes(request, path, item["name"])
    except FileNotFoundError:  # its dataset was deleted since the batch was read
        raise _not_found() from None


def _bytes(request: HttpRequest, path: Path, name: str) -> HttpResponseBase:
    size = path.stat().st_size
    headers = {"Accept-Ranges": "bytes",
               "Content-Disposition": f'attachment; filename="{name}"'}
    wanted = request.headers.get("Range")
    span = _range(wanted, size) if wanted else None
    if wanted and span is None:
        response = HttpResponse(status=416, headers={**headers,
                                                     "Content-Range": f"bytes */{size}"})
        return response
    if request.method == "HEAD":
        return HttpResponse(content_type="application/octet-stream",
                            headers={**headers, "Content-Length": str(size)})
    if span is None:
        return FileResponse(path.open("rb"), content_type="application/octet-stream",
                            headers=headers)
    first, last = span
    with path.open("rb") as handle:
        handle.seek(first)
        content = handle.read(last - first + 1)
    return HttpResponse(content, status=206, content_type="application/octet-stream",
                        headers={**headers, "Content-Range": f"bytes {first}-{last}/{size}"})


def _range(header: str, size: int) -> tuple[int, int] | None:
    """One byte range (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) within the file, or None."""
    match = RANGE_RE.match(header.strip())
    if not match or (not match[1] and not match[2]) or size == 0:
        return None
    if not match[1]:  # the last n bytes
        length = int(match[2])
        if length == 0:
            return None
        return max(0, size - length), size - 1
    first = int(match[1])
    last = int(match[2]) if match[2] else size - 1
    if first >= size or last < first:
        return None
    return first, min(last, size - 1)
