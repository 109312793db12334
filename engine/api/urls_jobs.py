"""Routes of the REST API's jobs part, included by engine/api/urls.py.

``ups`` is mounted under /data/core/ups/, ``foundation`` under /data/foundation/.
"""

from __future__ import annotations

from django.urls import URLPattern, re_path

from engine.api.views import segment_jobs

ups: list[URLPattern] = [
    re_path(r"^segment/jobs/?$", segment_jobs.segment_jobs, name="segment-jobs"),
    re_path(r"^segment/jobs/(?P<job_id>[^/]+)/?$", segment_jobs.segment_job_detail,
            name="segment-job"),
]
foundation: list[URLPattern] = []
