"""Ingestion: every format, an explicit schema, bad records reported, all-or-nothing batches."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.ingest import (
    NO_IDENTITY,
    NO_TIMESTAMP,
    batch_ingest,
    batch_path,
    dataset_get_or_create,
)
from engine.models import BatchStatus, XdmClass
from tests.engine.conftest import ident

pytestmark = pytest.mark.django_db

PROFILES = [
    {"identityMap": {"Email": [{"id": "ann@example.com", "primary": True}],
                     "ECID": [{"id": "e1"}, {"id": "e2", "authenticatedState": "ambiguous"}]},
     "person": {"name": {"firstName": "Ann", "lastName": "Lee"}, "birthDate": "1990-04-01"},
     "loyalty": {"points": 1200}},
    {"identityMap": ident("Email", "bo@example.com"),
     "person": {"name": {"firstName": "Bo"}}, "loyalty": {"points": 30.5}},
]


def ingest(paths: list[Path], xdm_class: str = XdmClass.PROFILE, name: str = "crm",
           **options: Any) -> Any:
    dataset = dataset_get_or_create(sandbox="prod", name=name, xdm_class=xdm_class)
    return batch_ingest(dataset=dataset, paths=paths, **options)


def rows(batch: Any) -> list[dict[str, Any]]:
    return pq.read_table(batch_path(batch) / batch.files[0]["name"]).to_pylist()


def column_type(batch: Any, column: str) -> str:
    path = batch_path(batch) / batch.files[0]["name"]
    return str(duckdb.connect().execute(f"DESCRIBE SELECT {column} FROM '{path}'").fetchall()[0][1])


def test_json_array_object_and_lines_give_the_same_records(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(PROFILES))
    (tmp_path / "b.json").write_text(json.dumps(PROFILES[0]))
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(p) for p in PROFILES) + "\n\n")
    with gzip.open(tmp_path / "d.jsonl.gz", "wt") as handle:
        handle.write(json.dumps(PROFILES[1]))

    batch = ingest([tmp_path / n for n in ("a.json", "b.json", "c.jsonl", "d.jsonl.gz")])

    assert batch.status == BatchStatus.SUCCESS, batch.failure_reason
    assert (batch.record_count, batch.error_count) == (6, 0)
    first = rows(batch)[0]
    assert first["person"]["name"] == {"firstName": "Ann", "lastName": "Lee"}
    assert first["loyalty"]["points"] == 1200.0  # integer and number merge to number


def test_identity_map_stays_a_map_of_identity_lists(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(PROFILES))
    batch = ingest([tmp_path / "a.json"])
    assert column_type(batch, "identityMap") == (
        'MAP(VARCHAR, STRUCT(authenticatedState VARCHAR, id VARCHAR, "primary" BOOLEAN)[])')
    assert dict(rows(batch)[0]["identityMap"])["ECID"] == [
        {"id": "e1", "primary": None, "authenticatedState": None},
        {"id": "e2", "primary": None, "authenticatedState": "ambiguous"},
    ]
    assert column_type(batch, "person.birthDate") == "DATE"


def test_csv_dotted_headers_become_nested_fields(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["identityMap.Email", "person.name.firstName", "homeAddress.postalCode",
                         "loyalty.points", "consented"])
        writer.writerow(["", "Cy", "02893", "15", "true"])
        writer.writerow(["", "Di", "", "", "false"])
    # identityMap can't be a CSV column (it is a map of lists); give identities another way
    batch = ingest([path])
    assert batch.status == BatchStatus.FAILED
    assert batch.errors[0] == {"file": "people.csv", "line": 2, "reason": NO_IDENTITY}

    good = tmp_path / "good.csv"
    good.write_text("endUserIDs._experience.mcid.id,endUserIDs._experience.mcid.namespace.code,"
                    "person.name.firstName,homeAddress.postalCode,loyalty.points\n"
                    "111,ECID,Cy,02893,15\n222,ECID,Di,,\n")
    batch = ingest([good], name="csv")
    assert batch.status == BatchStatus.SUCCESS, batch.errors
    first, second = rows(batch)
    assert first["person"] == {"name": {"firstName": "Cy"}}
    assert first["homeAddress"]["postalCode"] == "02893"  # leading zero kept: text
    assert first["loyalty"]["points"] == 15
    assert second["homeAddress"] is None


def test_parquet_input_keeps_its_types(tmp_path: Path) -> None:
    table = pa.Table.from_pylist(
        [{"identityMap": [("ECID", [{"id": "x1", "primary": True}])],
          "timestamp": datetime(2024, 5, 1, 12), "eventType": "commerce.purchases",
          "commerce": {"order": {"priceTotal": 20.5}}}],
        schema=pa.schema([
            ("identityMap", pa.map_(pa.string(), pa.list_(pa.struct([("id", pa.string()),
                                                                     ("primary", pa.bool_())])))),
            ("timestamp", pa.timestamp("ms")), ("eventType", pa.string()),
            ("commerce", pa.struct([("order", pa.struct([("priceTotal", pa.float64())]))])),
        ]))
    pq.write_table(table, tmp_path / "events.parquet")
    batch = ingest([tmp_path / "events.parquet"], XdmClass.EVENT, name="web")
    assert batch.status == BatchStatus.SUCCESS, batch.failure_reason
    assert column_type(batch, "timestamp") == "TIMESTAMP"
    row = rows(batch)[0]
    assert row["commerce"] == {"order": {"priceTotal": 20.5}}
    assert row["_studio_identities"] == [
        {"namespace": "ECID", "id": "x1", "primary": True, "authenticatedState": None}]


def test_mixed_timestamp_formats_all_become_utc_timestamps(write_jsonl: Any) -> None:
    stamps = ["2024-03-01T10:00:00Z", "2024-03-01 11:00:00", "2024-03-01T12:00:00.250+02:00",
              "2024-03-01T13:00:00.123456"]
    path = write_jsonl("events.jsonl", [
        {"identityMap": ident("ECID", f"e{n}"), "timestamp": stamp, "eventType": "x"}
        for n, stamp in enumerate(stamps)])
    batch = ingest([path], XdmClass.EVENT, name="web")
    assert batch.status == BatchStatus.SUCCESS
    assert column_type(batch, "timestamp") == "TIMESTAMP"
    assert [r["timestamp"] for r in rows(batch)] == [
        datetime(2024, 3, 1, 10), datetime(2024, 3, 1, 11), datetime(2024, 3, 1, 10, 0, 0, 250000),
        datetime(2024, 3, 1, 13, 0, 0, 123456)]


def test_bad_records_are_reported_with_line_and_reason_and_counted(write_jsonl: Any,
                                                                   tmp_path: Path) -> None:
    good = [{"identityMap": ident("ECID", f"e{n}"), "timestamp": "2024-01-01T00:00:00Z"}
            for n in range(40)]
    path = tmp_path / "events.jsonl"
    lines = [json.dumps(r) for r in good]
    lines.insert(3, '{"identityMap": ')  # line 4: broken JSON
    lines.insert(7, json.dumps({"timestamp": "2024-01-01T00:00:00Z"}))  # line 8: no identity
    lines.insert(10, json.dumps({"identityMap": ident("ECID", "z"), "timestamp": "soon"}))
    path.write_text("\n".join(lines) + "\n")

    batch = ingest([path], XdmClass.EVENT, name="web")

    assert batch.status == BatchStatus.SUCCESS
    assert (batch.record_count, batch.error_count) == (40, 3)
    assert [(e["line"], e["reason"]) for e in batch.errors] == [
        (4, "not valid JSON: Expecting value (column 17)"),
        (8, NO_IDENTITY),
        (11, NO_TIMESTAMP),
    ]


def test_a_batch_over_the_error_threshold_fails_whole_and_leaves_nothing(
        write_jsonl: Any, engine_dir: Path) -> None:
    first = ingest([write_jsonl("ok.jsonl", PROFILES)])
    schema_before = first.dataset.schema
    records = [{"identityMap": ident("Email", f"p{n}@x.com")} for n in range(8)] + [
        {"person": {"name": {"firstName": "nobody"}}} for _ in range(2)]

    batch = ingest([write_jsonl("bad.jsonl", records)], max_error_ratio=0.1)

    assert batch.status == BatchStatus.FAILED
    assert batch.error_count == 2
    assert batch.record_count == 0
    assert "2 of 10 records are bad" in batch.failure_reason
    assert not batch_path(batch).exists()
    assert not list(batch_path(batch).parent.glob(".*staging"))
    batch.dataset.refresh_from_db()
    assert batch.dataset.schema == schema_before


def test_type_conflict_fails_the_records_that_do_not_fit(write_jsonl: Any) -> None:
    records: list[dict[str, Any]] = [
        {"identityMap": ident("Email", f"p{n}@x.com"), "loyalty": {"points": n}}
        for n in range(30)]
    records.append({"identityMap": ident("Email", "odd@x.com"), "loyalty": "gold"})
    batch = ingest([write_jsonl("p.jsonl", records)])
    assert batch.status == BatchStatus.SUCCESS
    assert batch.error_count == 1
    assert batch.errors[0]["line"] == 31
    assert "loyalty should be an object" in batch.errors[0]["reason"]


def test_class_mismatch_is_refused(write_jsonl: Any) -> None:
    ingest([write_jsonl("p.jsonl", PROFILES)])
    with pytest.raises(ValueError, match="holds XDM Individual Profile records"):
        dataset_get_or_create(sandbox="prod", name="crm", xdm_class=XdmClass.EVENT)


def _event_parquet(path: Path, identities: list[str | None]) -> Path:
    identity = pa.map_(pa.string(), pa.list_(pa.struct([("id", pa.string())])))
    schema = pa.schema([("identityMap", identity), ("timestamp", pa.timestamp("us"))])
    rows = [{"identityMap": [("ECID", [{"id": value}])] if value else None,
             "timestamp": datetime(2024, 1, 1)} for value in identities]
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def test_parquet_bad_rows_are_reported_with_their_row_number(tmp_path: Path) -> None:
    values: list[str | None] = [f"e{n}" for n in range(30)]
    values[4] = values[17] = None
    batch = ingest([_event_parquet(tmp_path / "e.parquet", values)], XdmClass.EVENT, name="web")
    assert batch.status == BatchStatus.SUCCESS
    assert (batch.record_count, batch.error_count) == (28, 2)
    assert [(e["line"], e["reason"]) for e in batch.errors] == [(5, NO_IDENTITY),
                                                                (18, NO_IDENTITY)]
    assert len(rows(batch)) == 28


def test_parquet_batch_over_the_threshold_leaves_nothing(tmp_path: Path) -> None:
    path = _event_parquet(tmp_path / "e.parquet", ["a", None, None, "b"])
    batch = ingest([path], XdmClass.EVENT, name="web")
    assert batch.status == BatchStatus.FAILED
    assert "2 of 4 records are bad" in batch.failure_reason
    assert not batch_path(batch).exists()
    assert not list(batch_path(batch).parent.glob(".*staging"))
