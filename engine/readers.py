"""Read XDM records from JSON, JSON Lines, CSV and Parquet, each with where it came from.

Every record comes out as (line, record) or (line, ReadError): a bad line is reported with its
number and reason, never skipped silently. Files may be gzip-compressed (`.gz`).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from engine.profiles import to_python

FORMATS = ("json", "jsonl", "csv", "parquet")
SUFFIXES = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv",
            ".parquet": "parquet"}
INT_RE = re.compile(r"^-?(0|[1-9]\d{0,17})$")
FLOAT_RE = re.compile(r"^-?(0|[1-9]\d*)\.\d+([eE][-+]?\d+)?$")


@dataclass(frozen=True)
class ReadError:
    reason: str


def detect_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in SUFFIXES:
        return SUFFIXES[suffixes[-1]]
    if path.suffix.lower() == ".gz" or not suffixes:
        return _sniff(path)
    raise ValueError(f"{path.name}: unknown file type; use .json, .jsonl, .csv or .parquet")


def _sniff(path: Path) -> str:
    """Files without a telling suffix (Adobe's samples are `Profile test data.json.gz`-like)."""
    with _open_text(path) as handle:
        head = handle.read(2048).lstrip()
    if head.startswith("["):
        return "json"
    if head.startswith("{"):
        first = head.split("\n", 1)[0]
        try:
            json.loads(first)
            return "jsonl"
        except json.JSONDecodeError:
            return "json"
    return "csv"


def json_format(path: Path, *, multi_line: bool) -> str:
    """The reader of a file declared JSON (the Batch Ingestion API's inputFormat): "jsonl",
    streamed a record per line, unless it is multi-line JSON or, all the same, starts as an
    array, which is read whole ("json")."""
    if multi_line:
        return "json"
    with _open_text(path) as handle:
        head = handle.read(1024).lstrip()
    return "json" if head.startswith("[") else "jsonl"


def _open_text(path: Path) -> IO[str]:
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig")
    return path.open(encoding="utf-8-sig", newline="")


Item = tuple[int, dict[str, Any] | ReadError]


def read_records(path: Path, fmt: str | None = None) -> Iterator[Item]:
    fmt = fmt or detect_format(path)
    if fmt == "json":
        yield from _read_json(path)
    elif fmt == "jsonl":
        yield from _read_jsonl(path)
    elif fmt == "csv":
        yield from _read_csv(path)
    elif fmt == "parquet":
        yield from _read_parquet(path)
    else:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def _read_json(path: Path) -> Iterator[Item]:
    with _open_text(path) as handle:
        text = handle.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        # A file of one object per line, named .json, is common enough to accept.
        if error.msg == "Extra data":
            yield from _jsonl_lines(text.splitlines())
            return
        yield error.lineno, ReadError(f"not valid JSON: {error.msg} (column {error.colno})")
        return
    items = data if isinstance(data, list) else [data]
    for number, item in enumerate(items, start=1):
        yield number, item if isinstance(item, dict) else ReadError(
            f"record {number} is {type(item).__name__}, not a JSON object")


def _read_jsonl(path: Path) -> Iterator[Item]:
    with _open_text(path) as handle:
        yield from _jsonl_lines(handle)


def _jsonl_lines(lines: Any) -> Iterator[Item]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as error:
            yield number, ReadError(f"not valid JSON: {error.msg} (column {error.colno})")
            continue
        yield number, item if isinstance(item, dict) else ReadError(
            f"line holds {type(item).__name__}, not a JSON object")


def csv_cell(text: str) -> Any:
    """A CSV cell as a typed value: empty is null; numbers without leading zeros are numbers
    (a postal code such as 02893 stays text); true/false are booleans."""
    if text == "":
        return None
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if INT_RE.match(text):
        return int(text)
    if FLOAT_RE.match(text):
        return float(text)
    return text


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{"person.name.firstName": "Ann"} -> {"person": {"name": {"firstName": "Ann"}}}"""
    record: dict[str, Any] = {}
    for key, value in flat.items():
        if value is None:
            continue
        parts = key.split(".")
        node = record
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"column {key} conflicts with column {part}")
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise ValueError(f"column {key} conflicts with deeper columns under it")
        node[parts[-1]] = value
    return record


def _read_csv(path: Path) -> Iterator[Item]:
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            return
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                yield number, ReadError(f"has {len(row)} columns, the header has {len(header)}")
                continue
            try:
                cells = zip(header, row, strict=True)
                yield number, nest({key: csv_cell(cell) for key, cell in cells})
            except ValueError as error:
                yield number, ReadError(str(error))


def _read_parquet(path: Path) -> Iterator[Item]:
    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
        for row in _rows(batch):
            number += 1
            yield number, row


def _rows(batch: pa.RecordBatch) -> Iterator[dict[str, Any]]:
    """Rows as XDM reads them: Arrow's maps as objects (engine.profiles.to_python, typed)."""
    for row in batch.to_pylist():
        yield {name: to_python(row[name], batch.schema.field(name).type) for name in row}
