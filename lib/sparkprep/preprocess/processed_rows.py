"""Map batches of split-table rows to processed rows: pure pyarrow + Pillow, never raises for data."""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import pyarrow as pa

from sparkprep.images import probe as image_probe
from sparkprep.images.phash import Signatures, phashes_of_decode
from sparkprep.preprocess.transform import Output, TransformSpec, decode_for, transform_sample
from sparkprep.schema import EXTRAS_FIELD, PROCESSED_SCHEMA
from sparkprep.statuses import OK, UNREADABLE

OUTPUT_BATCH_BYTES = 64 << 20
PASSED_THROUGH = ("key", "split", "label", "path", "sha256", "status", "error", "rel_path")


def processed_batches(batches: Iterator[pa.RecordBatch], spec: TransformSpec, copies_by_split: Dict[str, int],
                      max_pixels: int = image_probe.DEFAULT_MAX_PIXELS,
                      max_batch_bytes: int = OUTPUT_BATCH_BYTES) -> Iterator[pa.RecordBatch]:
    """Each ok row becomes 1 + copies rows; a row that is not ok, or fails, becomes one quarantine row.

    Output batches hold at most about max_batch_bytes of images (one row's outputs past it),
    far below Arrow's 2 GiB per binary array, whatever --encode and --copies multiply.
    """
    digest = spec.digest()
    schema = PROCESSED_SCHEMA
    passed = PASSED_THROUGH
    out: Dict[str, list] = {}
    held = 0  # image bytes in `out`
    for batch in batches:
        if not out:  # a sample's other members, when the rows are whole samples, pass through unchanged
            if "extras" in batch.schema.names:
                schema, passed = processed_schema(extras=True), PASSED_THROUGH + ("extras",)
            out = {f.name: [] for f in schema}
        columns = {name: batch.column(name).to_pylist() for name in passed}
        contents = batch.column("content")
        for i in range(batch.num_rows):
            row = {name: columns[name][i] for name in passed}
            row["status"], row["error"], outputs = sample_outputs(
                row["status"], row["error"], contents[i].as_py() if row["status"] == OK else None, row["key"],
                copies_by_split.get(row["split"], 0), spec, max_pixels)
            for produced in outputs or [None]:
                _append(out, row, produced, digest, spec.encode, passed)
                held += len(produced.image) if produced else 0
            if held >= max_batch_bytes:  # copies and raw pixels multiply the input: bound the output too
                yield arrow_batch(out, schema)
                out, held = {f.name: [] for f in schema}, 0
        if out["key"]:  # never hold rows across input batches: memory stays one batch deep
            yield arrow_batch(out, schema)
            out, held = {f.name: [] for f in schema}, 0


def processed_schema(extras: bool) -> pa.Schema:
    """The processed table's schema; with `extras` for tables of whole samples."""
    return PROCESSED_SCHEMA.append(EXTRAS_FIELD) if extras else PROCESSED_SCHEMA


def sample_outputs(status: str, error: Optional[str], data: Optional[bytes], key: str, copies: int,
                   spec: TransformSpec, max_pixels: int = image_probe.DEFAULT_MAX_PIXELS
                   ) -> Tuple[str, Optional[str], List[Output]]:
    """(status, error, outputs) for one split row: its original and copies, or why it has none.

    A row that is not ok keeps its status; a decoder failure quarantines it (a bug in
    sparkprep re-raises, see image_probe.quarantine_or_raise).
    """
    status, error, outputs, _ = hashed_outputs(status, error, data, key, copies, spec, max_pixels, hashed=False)
    return status, error, outputs


def hashed_outputs(status: str, error: Optional[str], data: Optional[bytes], key: str, copies: int,
                   spec: TransformSpec, max_pixels: int = image_probe.DEFAULT_MAX_PIXELS, hashed: bool = True,
                   orientation: Optional[int] = None) -> Tuple[str, Optional[str], List[Output], Optional[Signatures]]:
    """sample_outputs, and with `hashed` the image's phash-v2, phash256 and dct_direction from the same decode
    (None otherwise)."""
    if status != OK:
        return status, error, [], None
    if data is None:
        return UNREADABLE, "no content bytes in the input row", [], None
    try:
        decoded = decode_for(data, spec, max_pixels=max_pixels)
        perceptual = phashes_of_decode(decoded, data, orientation, max_pixels) if hashed else None
        return status, error, transform_sample(data, key, copies, spec, max_pixels, decoded), perceptual
    except Exception as exc:  # noqa: BLE001 - a bad sample is a row; a bug in sparkprep re-raises
        return (*image_probe.quarantine_or_raise(exc), [], None)


def arrow_batch(columns: Dict[str, list], schema: pa.Schema) -> pa.RecordBatch:
    """A record batch from Python lists; binary columns through binary_array."""
    return pa.RecordBatch.from_arrays([binary_array(columns[f.name]) if f.type == pa.binary()
                                       else pa.array(columns[f.name], f.type) for f in schema], schema=schema)


def binary_array(values: List[Optional[bytes]]) -> pa.Array:
    """A binary array of bytes values (or None) with one copy: ~5x faster than pa.array on image-sized values."""
    lengths = np.fromiter((len(v) if v is not None else 0 for v in values), dtype=np.int64, count=len(values))
    if int(lengths.sum()) > 2**31 - 1:  # past int32 offsets: let pyarrow say so
        return pa.array(values, pa.binary())
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    valid = [v is not None for v in values]
    validity = None if all(valid) else pa.array(valid, pa.bool_()).buffers()[1]
    data = b"".join(v for v in values if v is not None)
    return pa.Array.from_buffers(pa.binary(), len(values), [validity, pa.py_buffer(offsets), pa.py_buffer(data)],
                                 null_count=len(values) - sum(valid))


def _append(out: Dict[str, list], row: dict, produced, digest: str, fmt: str, passed=PASSED_THROUGH) -> None:
    for name in passed:
        out[name].append(row[name])
    append_output(out, produced, digest, fmt)


def append_output(out: Dict[str, list], produced: Optional[Output], digest: str, fmt: str,
                  renamed: Optional[Dict[str, str]] = None) -> None:
    """The processed table's own columns of one output, or of a quarantine row (produced None);
    renamed maps a column to the name it has in `out`."""
    name = (lambda column: renamed.get(column, column)) if renamed else (lambda column: column)
    out[name("transform")].append(digest)
    out[name("aug_index")].append(produced.aug_index if produced else 0)
    out[name("image_format")].append(fmt if produced else None)
    for column, attr in (("image", "image"), ("width", "width"), ("height", "height"), ("channels", "channels"),
                         ("channel_mean", "mean"), ("channel_std", "std")):
        out[name(column)].append(getattr(produced, attr) if produced else None)
