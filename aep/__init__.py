"""The wire client for AEP-compatible APIs (pure Python, httpx; no Django): IMS OAuth tokens, one
method per endpoint of spec/aep-api.md, typed results, pagination, retries with backoff,
AEPTransientError/AEPPermanentError.

    creds = Credentials(ims_url=..., client_id=..., client_secret=..., org_id=...)
    client = AEPClient(base_url="https://platform.adobe.io", credentials=creds, sandbox="prod")
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
