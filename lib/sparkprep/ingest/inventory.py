"""Manifests as input listings: an S3 Inventory report (manifest.json and its CSV, ORC or
parquet files), or any table with a `uri` column and an optional `size`. Pure: pyarrow only.

The driver reads only manifest.json (a list of inventory files, not of objects); each
inventory file is read by a Spark task with `listing_rows`, so nothing of size O(objects)
ever reaches the driver.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple
from urllib.parse import unquote_plus

import pyarrow as pa

# What a listing row holds, whatever the manifest's kind: the object, its size and what
# identifies its version (for --incremental): last-modified time and ETag when the manifest has them.
LISTING_SCHEMA = pa.schema([
    pa.field("uri", pa.string()),
    pa.field("size", pa.int64()),
    pa.field("last_modified", pa.string()),
    pa.field("etag", pa.string()),
])
FORMATS = ("CSV", "ORC", "Parquet")
# Inventory columns sparkprep reads, by their lowercase names (CSV fileSchema spells them "Bucket, Key, ...").
WANTED = {"bucket": "bucket", "key": "key", "size": "size", "lastmodifieddate": "last_modified_date",
          "etag": "e_tag", "isdeletemarker": "is_delete_marker", "islatest": "is_latest"}


@dataclass(frozen=True)
class Inventory:
    """What manifest.json says: where the inventory files are, their format and columns."""

    source_bucket: str
    file_format: str           # CSV | ORC | Parquet
    columns: Tuple[str, ...]   # CSV only: the column order (ORC and parquet files carry their schema)
    files: Tuple[str, ...]     # s3:// URIs of the inventory data files
    sizes: Tuple[int, ...]
    versioned: bool = True     # its fileSchema has ETag or LastModifiedDate (what --incremental compares)


def parse_manifest(text: str, manifest_uri: str) -> Inventory:
    """An S3 Inventory manifest.json; ValueError naming what is missing or unknown."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"--manifest: {manifest_uri} is not JSON ({exc})") from None
    missing = [k for k in ("sourceBucket", "destinationBucket", "fileFormat", "files") if k not in document]
    if missing:
        raise ValueError(f"--manifest: {manifest_uri} is not an S3 Inventory manifest.json (no {', '.join(missing)}); "
                         "for a plain table of objects give a CSV or parquet file with a `uri` column")
    fmt = {f.lower(): f for f in FORMATS}.get(str(document["fileFormat"]).lower())
    if fmt is None:
        raise ValueError(f"--manifest: fileFormat {document['fileFormat']!r}: expected one of {', '.join(FORMATS)}")
    destination = re.sub(r"^arn:aws[a-z-]*:s3:::", "", str(document["destinationBucket"]))
    columns: Tuple[str, ...] = ()
    if fmt == "CSV":
        columns = tuple(c.strip().replace(" ", "").lower() for c in str(document.get("fileSchema", "")).split(","))
        if "key" not in columns or "bucket" not in columns:
            raise ValueError(f"--manifest: {manifest_uri}: fileSchema {document.get('fileSchema')!r} has no Bucket "
                             "and Key columns")
    files = tuple(f"s3://{destination}/{f['key']}" for f in document["files"])
    schema = re.sub(r"[\s_]", "", str(document.get("fileSchema", ""))).lower()
    return Inventory(str(document["sourceBucket"]), fmt, columns, files,
                     tuple(int(f.get("size") or 0) for f in document["files"]),
                     versioned="etag" in schema or "lastmodifieddate" in schema)


def listing_rows(data: bytes, inventory: Inventory) -> pa.RecordBatch:
    """The objects one inventory file lists, as LISTING_SCHEMA (delete markers and noncurrent
    versions left out). CSV keys are URL-encoded by S3 Inventory and are decoded here; ORC and
    parquet keys are stored as they are."""
    if inventory.file_format == "CSV":
        table = _csv_table(data, inventory.columns)
        decode = True
    elif inventory.file_format == "Parquet":
        import pyarrow.parquet as pq

        table, decode = pq.read_table(io.BytesIO(data)), False
    else:
        import pyarrow.orc as orc

        table, decode = orc.ORCFile(io.BytesIO(data)).read(), False
    columns = {name.replace("_", "").lower(): table.column(name).to_pylist() for name in table.column_names}
    n = table.num_rows
    keep = [not _true(d) for d in columns.get("isdeletemarker", [None] * n)]
    keep = [k and _true(latest, default=True) for k, latest in zip(keep, columns.get("islatest", [None] * n))]
    keys = [unquote_plus(k) if decode else k for k in columns["key"]]
    out: Dict[str, list] = {f.name: [] for f in LISTING_SCHEMA}
    for i in range(n):
        if not keep[i]:
            continue
        out["uri"].append(f"s3://{columns['bucket'][i]}/{keys[i]}")
        out["size"].append(_int(columns.get("size", [None] * n)[i]))
        out["last_modified"].append(_text(columns.get("lastmodifieddate", [None] * n)[i]))
        out["etag"].append(_text(columns.get("etag", [None] * n)[i]))
    return pa.RecordBatch.from_pydict(out, schema=LISTING_SCHEMA)


def _csv_table(data: bytes, columns: Tuple[str, ...]) -> pa.Table:
    import pyarrow.csv as pacsv

    if data[:2] == b"\x1f\x8b":  # S3 Inventory writes CSV files gzip-compressed (.csv.gz)
        data = gzip.decompress(data)
    text_columns = {name: pa.string() for name in columns}
    return pacsv.read_csv(io.BytesIO(data), read_options=pacsv.ReadOptions(column_names=list(columns)),
                          convert_options=pacsv.ConvertOptions(column_types=text_columns))


def table_listing(batches: Iterator[pa.RecordBatch], uri_column: str = "uri",
                  size_column: Optional[str] = "size") -> Iterator[pa.RecordBatch]:
    """A plain manifest table's batches as LISTING_SCHEMA (size null when the table has none)."""
    for batch in batches:
        n = batch.num_rows
        sizes = batch.column(size_column).to_pylist() if size_column and size_column in batch.schema.names else [None] * n
        yield pa.RecordBatch.from_pydict({"uri": batch.column(uri_column).to_pylist(),
                                          "size": [_int(s) for s in sizes], "last_modified": [None] * n,
                                          "etag": [None] * n}, schema=LISTING_SCHEMA)


def _true(value, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return str(value).strip().lower() == "true"


def _int(value) -> Optional[int]:
    return None if value is None or value == "" else int(value)


def _text(value) -> Optional[str]:
    return None if value is None or value == "" else str(value).strip('"')


def inventory_files(inventory: Inventory) -> List[Tuple[str, int]]:
    """(uri, size) of each inventory data file: one Spark task each."""
    return list(zip(inventory.files, inventory.sizes))
