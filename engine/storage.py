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


class FolderBusy(Exception):  # noqa: N818 - a state, not an error
    """folder_lock(wait=False): another process holds the lock."""


@contextmanager
def folder_lock(folder: Path, *, shared: bool = False, wait: bool = True) -> Iterator[Path]:
    """A lock on `folder` (created if needed) across processes, held by the block: one
    snapshot build or memberships write per sandbox at a time, one batch loaded into a dataset
    at a time. ``shared`` locks are held together (exports writing their own batches into a
    dataset) and exclude the exclusive one (a dataset's deletion). Without ``wait``, FolderBusy
    instead of waiting."""
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
    while True:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            handle = (folder / ".lock").open("w")
        except FileNotFoundError:  # removed between the two (a dataset being deleted): again
            continue
        break
    with handle:
        try:
            fcntl.flock(handle, mode)
        except BlockingIOError:
            raise FolderBusy(str(folder)) from None
        try:
            yield folder
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def snapshots_dir(sandbox: str) -> Path:
    return sandbox_dir(sandbox) / "snapshots"
