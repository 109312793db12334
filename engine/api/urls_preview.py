"""Routes of the REST API's preview part, included by engine/api/urls.py.

``ups`` is mounted under /data/core/ups/, ``foundation`` under /data/foundation/.
"""

from __future__ import annotations

from django.urls import URLPattern

ups: list[URLPattern] = []
foundation: list[URLPattern] = []
