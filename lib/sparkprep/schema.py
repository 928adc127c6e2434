"""The table schemas, declared once as Arrow schemas; Spark schemas derive from them."""

from __future__ import annotations

import pyarrow as pa

# One row per listed input file: the bytes, what probing them found, and a status.
CATALOG_SCHEMA = pa.schema([
    pa.field("path", pa.string()),        # source URI, as Spark/Hadoop spells it
    pa.field("rel_path", pa.string()),    # below the input root, '/'-separated, NFC
    pa.field("label", pa.string()),
    pa.field("sha256", pa.string()),      # of the source bytes; null only if unreadable
    pa.field("size", pa.int64()),         # bytes, from the listing
    pa.field("status", pa.string()),      # ok, or why the file is quarantined
    pa.field("error", pa.string()),
    pa.field("format", pa.string()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("mode", pa.string()),
    pa.field("frames", pa.int32()),
    pa.field("orientation", pa.int32()),  # EXIF orientation tag, null when absent
    pa.field("content", pa.binary()),     # null when not read (empty, too large, unreadable)
])

# The columns every split and processed table starts with (DESIGN.md "Tables").
SPLIT_COLUMNS = ("key", "split", "label", "path", "sha256", "status", "error")

# Metadata key under which the split parameters are stored on the `key` column.
SPLIT_METADATA_KEY = "sparkprep.split"


def missing_columns(actual: "list[str]", required: "tuple[str, ...] | list[str]") -> "list[str]":
    """The required column names absent from `actual`, in order."""
    present = set(actual)
    return [c for c in required if c not in present]
