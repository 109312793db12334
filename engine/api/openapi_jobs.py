"""OpenAPI paths and schemas of the REST API's jobs part, merged by engine/api/openapi.py."""

from __future__ import annotations

from typing import Any

PATHS: dict[str, Any] = {}
SCHEMAS: dict[str, Any] = {}
