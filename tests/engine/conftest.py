"""Engine tests: a fresh ENGINE_DATA_DIR per test, and small helpers to write input files."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

SAMPLE_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "sample-data"


@pytest.fixture(autouse=True)
def engine_dir(settings: Any, tmp_path: Path) -> Path:
    settings.ENGINE_DATA_DIR = tmp_path / "engine"
    return settings.ENGINE_DATA_DIR


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Any:
    def write(name: str, records: Iterable[dict[str, Any]]) -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return path

    return write


def ident(namespace: str, value: str, primary: bool = True) -> dict[str, Any]:
    return {namespace: [{"id": value, "primary": primary}]}


def sample(*parts: str) -> Path:
    path = SAMPLE_DATA.joinpath(*parts)
    if not SAMPLE_DATA.is_dir():
        pytest.skip("../shared/sample-data is absent")
    return path
