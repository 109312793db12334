"""Routes of the REST API's jobs part, included by engine/api/urls.py.

``ups`` is mounted under /data/core/ups/, ``foundation`` under /data/foundation/.
"""

from __future__ import annotations

from django.urls import URLPattern, re_path

from engine.api.views import catalog, data_access, export_jobs, segment_jobs

ups: list[URLPattern] = [
    re_path(r"^segment/jobs/?$", segment_jobs.segment_jobs, name="segment-jobs"),
    re_path(r"^segment/jobs/bulk-get/?$", segment_jobs.segment_jobs_bulk_get,
            name="segment-jobs-bulk-get"),
    re_path(r"^segment/jobs/(?P<job_id>[^/]+)/?$", segment_jobs.segment_job_detail,
            name="segment-job"),
    re_path(r"^export/jobs/?$", export_jobs.export_jobs, name="export-jobs"),
    re_path(r"^export/jobs/(?P<job_id>[^/]+)/?$", export_jobs.export_job_detail,
            name="export-job"),
]
foundation: list[URLPattern] = [
    re_path(r"^catalog/dataSets/?$", catalog.datasets, name="datasets"),
    re_path(r"^catalog/dataSets/(?P<dataset_id>[^/]+)/?$", catalog.dataset_detail,
            name="dataset"),
    re_path(r"^catalog/batches/?$", catalog.batches, name="batches"),
    re_path(r"^catalog/batches/(?P<batch_id>[^/]+)/?$", catalog.batch_detail, name="batch"),
    re_path(r"^export/batches/(?P<batch_id>[^/]+)/files/?$", data_access.batch_files,
            name="batch-files"),
    re_path(r"^export/files/(?P<dataset_file_id>[^/]+)/?$", data_access.file_detail,
            name="file"),
]
