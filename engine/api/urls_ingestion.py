"""Routes of the Batch Ingestion API, included by engine/api/urls.py under /data/foundation/.

A file name is matched up to the end of the path, slashes included, so that a name with a path
separator (sent as %2F) reaches the view and is refused there with a 400, not a 404.
"""

from __future__ import annotations

from django.urls import URLPattern, re_path

from engine.api.views import ingestion

foundation: list[URLPattern] = [
    re_path(r"^import/batches/?$", ingestion.batches, name="import-batches"),
    re_path(r"^import/batches/(?P<batch_id>[^/]+)/datasets/(?P<dataset_id>[^/]+)/files/"
            r"(?P<file_name>[\s\S]+?)/?$", ingestion.batch_file, name="import-batch-file"),
    re_path(r"^import/batches/(?P<batch_id>[^/]+)/?$", ingestion.batch_action,
            name="import-batch"),
]
