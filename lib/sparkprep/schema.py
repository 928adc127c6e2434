"""The table schemas, declared once as Arrow schemas; Spark schemas derive from them."""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# One row per listed input file: the bytes, what probing them found, and a status.
CATALOG_SCHEMA = pa.schema([
    pa.field("path", pa.string()),        # source URI, as Spark/Hadoop spells it
    pa.field("rel_path", pa.string()),    # below the input root, '/'-separated, NFC
    pa.field("sample", pa.string()),      # the sample id (docs/contracts.md, Samples)
    pa.field("member", pa.string()),      # the member name within the sample ('' when the name has no dot)
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
    pa.field("phash", pa.int64()),        # 64-bit perceptual hash of ok images (sparkprep.images.phash), else null
    pa.field("phash256", pa.list_(pa.int64())),  # the 256-bit one, as 4 words (most significant first), else null
    pa.field("dct_direction", pa.list_(pa.int16())),  # its DCT block's direction, 255 values (images.phash), else null
    pa.field("content", pa.binary()),     # null when not read (empty, too large, unreadable)
])

# Catalog columns added after tables were first written: (name, what it holds, its Spark type). A catalog
# table without one gets it as nulls (those rows are audited without it); an incremental run whose previous
# output lacks one reads every file again, so that no kept row lacks it.
LATER_COLUMNS = (("phash256", "the 256-bit hash", "array<bigint>"),
                 ("dct_direction", "the DCT direction", "array<smallint>"))


def without_later_column(columns: Sequence[str]) -> str:
    """Why a previous table's rows cannot be kept for a catalog column they lack ('' when they can)."""
    for name, what, _ in LATER_COLUMNS:
        if name not in columns:
            return f"the previous output has no {name} column (written before {what})"
    return ""


# The columns every split and processed table starts with (docs/contracts.md, Tables).
SPLIT_COLUMNS = ("key", "split", "label", "path", "sha256", "status", "error")

# Metadata key under which the split parameters are stored on the `key` column.
SPLIT_METADATA_KEY = "sparkprep.split"


def require_columns(actual: Sequence[str], required: Sequence[str], expected: str) -> None:
    """UsageError naming the missing columns unless every required column is present.

    `expected` says what the input should have been, e.g. "a split table of files (jobs/split.py)".
    """
    from sparkprep.errors import UsageError

    present = set(actual)
    missing = [c for c in required if c not in present]
    if missing:
        raise UsageError(f"--input: expected {expected}, missing columns {missing}")

# The processed table: the contract columns, then one training-ready image per row.
PROCESSED_SCHEMA = pa.schema([
    pa.field("key", pa.string()),
    pa.field("split", pa.string()),
    pa.field("label", pa.string()),
    pa.field("path", pa.string()),
    pa.field("sha256", pa.string()),       # of the source bytes, shared by a sample's copies
    pa.field("status", pa.string()),
    pa.field("error", pa.string()),
    pa.field("rel_path", pa.string()),
    pa.field("aug_index", pa.int32()),     # 0 for the original, 1..N for augmented copies
    pa.field("transform", pa.string()),    # TransformSpec digest: exactly how the row was made
    pa.field("image", pa.binary()),        # encoded image, or raw uint8 HWC pixels
    pa.field("image_format", pa.string()),  # jpeg | png | webp | raw
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("channels", pa.int32()),
    pa.field("channel_mean", pa.list_(pa.float64())),  # of this image's pixels, 0..1 units
    pa.field("channel_std", pa.list_(pa.float64())),
])

# A processed row of a sample of several members (an image and its .json, a WebDataset sample)
# carries the members it did not transform, unchanged: member name -> bytes.
EXTRAS_FIELD = pa.field("extras", pa.map_(pa.string(), pa.binary()))

# What the preprocess job reads from a split table.
PREPROCESS_INPUT_COLUMNS = ("key", "split", "label", "path", "sha256", "status", "error", "rel_path", "content")


def python_columns(table: pa.Table) -> Dict[str, list]:
    """table.to_pydict(), except that list<int16> columns (dct_direction) become numpy int16 views, one per row
    (None for a null): 255 Python ints a row would cost some 9 KB and a second of the driver per 20,000 rows."""
    out = {}
    for name, column in zip(table.column_names, table.columns):
        if column.type == pa.list_(pa.int16()):
            array = column.combine_chunks()
            lengths = pc.fill_null(array.value_lengths(), 0).to_numpy()
            values = array.flatten().to_numpy()  # null lists contribute nothing
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
            valid = array.is_valid().to_numpy(zero_copy_only=False)
            out[name] = [values[s:s + n] if ok else None for s, n, ok in zip(starts.tolist(), lengths.tolist(), valid)]
        else:
            out[name] = column.to_pylist()
    return out
