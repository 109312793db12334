"""Exported XDM rows as flat columns (exports.flatten): dotted headers for nested structs, a
column per identity namespace and per segment, ISO 8601 UTC times, dates, JSON only for lists."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from exports import flatten

IDENTITY = pa.struct([("id", pa.string()), ("primary", pa.bool_()),
                      ("authenticatedState", pa.string())])
ITEM = pa.struct([("SKU", pa.string()), ("quantity", pa.int64()), ("priceTotal", pa.float64())])
SCHEMA = pa.schema([
    ("identityMap", pa.map_(pa.string(), pa.list_(IDENTITY))),
    ("person", pa.struct([("name", pa.struct([("firstName", pa.string()),
                                              ("lastName", pa.string())])),
                          ("birthDate", pa.date32())])),
    ("homeAddress", pa.struct([("countryCode", pa.string())])),
    ("consents", pa.struct([("marketing", pa.struct([("any", pa.bool_())]))])),
    ("loyalty", pa.struct([("points", pa.int64()), ("updated", pa.timestamp("us"))])),
    ("favourites", pa.map_(pa.string(), pa.string())),
    ("segmentMembership", pa.map_(pa.string(), pa.map_(pa.string(), pa.struct([
        ("status", pa.string()), ("lastQualificationTime", pa.timestamp("us"))])))),
    ("events", pa.list_(pa.struct([("timestamp", pa.timestamp("us")),
                                   ("eventType", pa.string()),
                                   ("productListItems", pa.list_(ITEM))]))),
])
ANN: dict[str, Any] = {
    "identityMap": [("CRMID", [{"id": "c1", "primary": False, "authenticatedState": "x"}]),
                    ("Email", [{"id": "ann@x.com", "primary": True, "authenticatedState": None},
                               {"id": "ann@y.com", "primary": False,
                                "authenticatedState": None}])],
    "person": {"name": {"firstName": "Ann", "lastName": "Lee"}, "birthDate": date(1990, 2, 3)},
    "homeAddress": {"countryCode": "US"},
    "consents": {"marketing": {"any": True}},
    "loyalty": {"points": 500, "updated": datetime(2026, 10, 1, 10, 0, 0, 250_000)},
    "favourites": [("colour", "green")],
    "segmentMembership": [("ups", [("seg-1", {
        "status": "realized", "lastQualificationTime": datetime(2026, 10, 1, 10)})])],
    "events": [{"timestamp": datetime(2026, 9, 30, 8, 15), "eventType": "commerce.purchases",
                "productListItems": [{"SKU": "SKU-1", "quantity": 2, "priceTotal": 48.0}]}],
}
VISITOR: dict[str, Any] = {  # known only from its events: identities, nothing else
    "identityMap": [("ECID", [{"id": "e9", "primary": True, "authenticatedState": "ambiguous"}])],
    "person": None, "homeAddress": None, "consents": None, "loyalty": None, "favourites": None,
    "segmentMembership": [("ups", [("seg-2", {"status": "existing",
                                              "lastQualificationTime": datetime(2026, 9, 1)})])],
    "events": None,
}


def parquet_of(records: list[dict[str, Any]]) -> pq.ParquetFile:
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records, schema=SCHEMA), out)
    out.seek(0)
    return pq.ParquetFile(out)


def flat(records: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, str]]]:
    parquet = parquet_of(records)
    columns = flatten.columns(parquet.schema_arrow, flatten.map_keys(parquet))
    headers = [column.header for column in columns]
    rows = [dict(zip(headers, row, strict=True))
            for row in flatten.rows(parquet.iter_batches(), columns)]
    return headers, rows


def test_every_leaf_is_a_column_with_a_dotted_header() -> None:
    headers, _ = flat([ANN, VISITOR])
    assert headers == [
        "identityMap.CRMID", "identityMap.ECID", "identityMap.Email", flatten.PRIMARY_HEADER,
        "person.name.firstName", "person.name.lastName", "person.birthDate",
        "homeAddress.countryCode", "consents.marketing.any",
        "loyalty.points", "loyalty.updated", "favourites.colour",
        "segmentMembership.ups.seg-1.status", "segmentMembership.ups.seg-1.lastQualificationTime",
        "segmentMembership.ups.seg-2.status", "segmentMembership.ups.seg-2.lastQualificationTime",
        "events",
    ]


def test_values_are_written_as_people_read_them() -> None:
    _, (ann, visitor) = flat([ANN, VISITOR])
    assert ann["person.name.firstName"] == "Ann"
    assert ann["person.birthDate"] == "1990-02-03"  # a date stays a date
    assert ann["loyalty.updated"] == "2026-10-01T10:00:00.250Z"  # ISO 8601, UTC
    assert ann["segmentMembership.ups.seg-1.lastQualificationTime"] == "2026-10-01T10:00:00Z"
    assert ann["segmentMembership.ups.seg-1.status"] == "realized"
    assert ann["consents.marketing.any"] == "true"
    assert ann["loyalty.points"] == "500"
    assert ann["favourites.colour"] == "green"
    # one id is the id; several ids of one namespace are a list; the primary is named once
    assert ann["identityMap.CRMID"] == "c1" and ann["identityMap.ECID"] == ""
    assert json.loads(ann["identityMap.Email"]) == ["ann@x.com", "ann@y.com"]
    assert ann[flatten.PRIMARY_HEADER] == "Email: ann@x.com"
    # a list is JSON, with its times in ISO 8601 too
    assert json.loads(ann["events"]) == [{
        "timestamp": "2026-09-30T08:15:00Z", "eventType": "commerce.purchases",
        "productListItems": [{"SKU": "SKU-1", "quantity": 2, "priceTotal": 48.0}]}]
    # no cell holds a whole struct as JSON
    assert not any(cell.startswith("{") for cell in ann.values())

    assert visitor["identityMap.ECID"] == "e9" and visitor[flatten.PRIMARY_HEADER] == "ECID: e9"
    assert visitor["person.name.firstName"] == "" and visitor["events"] == ""
    assert visitor["segmentMembership.ups.seg-1.status"] == ""
    assert visitor["segmentMembership.ups.seg-2.status"] == "existing"


def test_times_with_a_zone_are_written_in_utc() -> None:
    paris = timezone(timedelta(hours=2))
    assert flatten.iso_utc(datetime(2026, 10, 1, 12, 0, tzinfo=paris)) == "2026-10-01T10:00:00Z"
    assert flatten.iso_utc(datetime(2026, 10, 1, 10, 0, tzinfo=UTC)) == "2026-10-01T10:00:00Z"
    assert flatten.text(date(2026, 10, 1)) == "2026-10-01"


def test_csv_rows_have_the_same_columns_whatever_the_first_rows_hold() -> None:
    # the namespace and segment of the last row are columns from the first row on
    parquet = parquet_of([ANN] * 3 + [VISITOR])
    columns = flatten.columns(parquet.schema_arrow, flatten.map_keys(parquet))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([column.header for column in columns])
    writer.writerows(flatten.rows(parquet.iter_batches(batch_size=2), columns))
    table = list(csv.reader(io.StringIO(out.getvalue())))
    assert {len(row) for row in table} == {len(columns)}
    assert table[0][1] == "identityMap.ECID" and [row[1] for row in table[1:]] == [
        "", "", "", "e9"]
