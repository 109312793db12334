"""One TLS context for every client in the process.

httpx builds a new SSL context (loading certifi's CA bundle) for each httpx.Client, ~50 ms of
CPU here; the dashboard makes a short-lived client per request or task, so it shares this one.
An SSLContext is safe to share between threads for wrapping sockets.
"""

from __future__ import annotations

import ssl
from functools import cache

import certifi


@cache
def ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())
