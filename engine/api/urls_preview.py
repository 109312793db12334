"""Routes of the REST API's preview part, included by engine/api/urls.py.

``ups`` is mounted under /data/core/ups/, ``foundation`` under /data/foundation/.
"""

from __future__ import annotations

from django.urls import URLPattern, re_path

from engine.api.views import access, preview

ups: list[URLPattern] = [
    re_path(r"^preview/?$", preview.preview_create, name="preview-create"),
    re_path(r"^preview/(?P<preview_id>[^/]+)/execution/(?P<execution_id>\d+)/?$",
            preview.preview_execution, name="preview-execution"),
    re_path(r"^preview/(?P<preview_id>[^/]+)/?$", preview.preview_detail, name="preview"),
    re_path(r"^estimate/(?P<preview_id>[^/]+)/?$", preview.estimate, name="estimate"),
    re_path(r"^previewsamplestatus/?$", preview.preview_sample_status,
            name="preview-sample-status"),
    re_path(r"^access/entities/?$", access.entities, name="entities"),
]
foundation: list[URLPattern] = []
