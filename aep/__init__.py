"""The wire client for AEP-compatible APIs (pure Python, httpx; no Django): IMS OAuth tokens, one
method per endpoint of spec/aep-api.md, typed results, pagination, retries with backoff,
AEPTransientError/AEPPermanentError.

    creds = Credentials(ims_url="https://ims-na1.adobelogin.com", client_id=..., client_secret=...,
                        org_id="...@AdobeOrg")
    client = AEPClient(base_url="https://platform.adobe.io", credentials=creds, sandbox="prod")
    for definition in client.definitions():       # follows the API's own next links
        ...

Errors: ``AEPTransientError`` (429, 5xx, timeouts, connection errors once the RetryPolicy is
spent; ``retry_after`` holds the server's hint, if any) is worth retrying later;
``AEPPermanentError`` (other 4xx, unreadable answers) is not. ``AEPAuthError`` (IMS refused the
credentials, or 401 after one token refresh, or 403) and ``AEPNotFoundError`` (404) are
permanent. Every error has ``message`` (AEP's own text where it sent one), ``status``, ``code``
(AEP's error code), ``request_id`` (our x-request-id) and ``body``.

Creates (definitions, previews, segment and export jobs, datasets) are retried only when AEP
surely did not act (connection refused, 429); pass ``request_id=`` to reconcile a job later.
Without an injected transport, clients of one credential share a process-wide TokenManager.
"""

from __future__ import annotations

from aep.auth import (
    DEFAULT_SCOPES,
    Credentials,
    TokenManager,
    clear_token_cache,
    expires_in_seconds,
    shared_token_manager,
)
from aep.client import AEPClient, clear_schema_cache, union_schema_cache
from aep.errors import (
    AEPAuthError,
    AEPConnectionError,
    AEPError,
    AEPNotFoundError,
    AEPPermanentError,
    AEPTransientError,
)
from aep.retry import RetryPolicy
from aep.types import (
    Batch,
    BatchFile,
    Dataset,
    Entity,
    EntityEvent,
    Estimate,
    ExportJob,
    FileEntry,
    JobError,
    MergePolicy,
    Page,
    Preview,
    PreviewPage,
    Sandbox,
    SegmentDefinition,
    SegmentJob,
)

__all__ = [
    "DEFAULT_SCOPES",
    "AEPAuthError",
    "AEPClient",
    "AEPConnectionError",
    "AEPError",
    "AEPNotFoundError",
    "AEPPermanentError",
    "AEPTransientError",
    "Batch",
    "BatchFile",
    "Credentials",
    "Dataset",
    "Entity",
    "EntityEvent",
    "Estimate",
    "ExportJob",
    "FileEntry",
    "JobError",
    "MergePolicy",
    "Page",
    "Preview",
    "PreviewPage",
    "RetryPolicy",
    "Sandbox",
    "SegmentDefinition",
    "SegmentJob",
    "TokenManager",
    "clear_schema_cache",
    "clear_token_cache",
    "expires_in_seconds",
    "shared_token_manager",
    "union_schema_cache",
]
