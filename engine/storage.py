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


def batch_dir(sandbox: str, dataset_id: str, batch_id: str) -> Path:
    return sandbox_dir(sandbox) / "datasets" / dataset_id / batch_id


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
