"""Where the engine keeps its files, per sandbox, under ENGINE_DATA_DIR."""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

SANDBOX_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
BAD_SANDBOX = "Sandbox names are lowercase letters, digits and hyphens (up to 64), such as prod."


def sandbox_dir(sandbox: str) -> Path:
    if not SANDBOX_RE.match(sandbox):  # the name becomes a folder: no traversal, no surprises
        raise ValueError(BAD_SANDBOX)
    return Path(settings.ENGINE_DATA_DIR) / sandbox


def dataset_dir(sandbox: str, dataset_id: str) -> Path:
    return sandbox_dir(sandbox) / "datasets" / dataset_id


def batch_dir(sandbox: str, dataset_id: str, batch_id: str) -> Path:
    return dataset_dir(sandbox, dataset_id) / batch_id


def upload_dir(sandbox: str, batch_id: str) -> Path:
    """The files uploaded into a loading batch (Batch Ingestion API), until a worker has
    ingested them. Apart from the datasets' folders: a batch folder appears whole or not at all."""
    return sandbox_dir(sandbox) / "uploads" / batch_id


def partial_dir(sandbox: str) -> Path:
    """Uploads being received; each is moved into its batch's upload folder once whole, so that
    folder only ever holds complete files."""
    return sandbox_dir(sandbox) / "uploads" / ".partial"


@contextmanager
def folder_lock(folder: Path) -> Iterator[Path]:
    """An exclusive lock on `folder` (created if needed) across processes, held by the block:
    one snapshot build or memberships write per sandbox at a time."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield folder
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def snapshots_dir(sandbox: str) -> Path:
    return sandbox_dir(sandbox) / "snapshots"
