"""Raw files -> split rows and processed rows in one Python pass per file: pure pyarrow + Pillow.

For every file, in the same call: read (or take Spark's bytes), sha256, validate and probe
(`sparkprep.ingest.catalog_rows`), key and sha256-v1 split (`sparkprep.split`), and the
transform (`sparkprep.preprocess`). Each output row carries both the split table's columns
and the processed table's, so the bytes cross from the JVM to Python at most once and the
results come back once. Never raises for bad data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import uuid
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sparkprep.ingest.catalog_rows import ProbeSettings, catalog_row, label_pattern_of
from sparkprep.ingest.paths import compile_group_regex
from sparkprep.preprocess.processed_rows import OUTPUT_BATCH_BYTES, append_output, arrow_batch, hashed_outputs
from sparkprep.preprocess.transform import TransformSpec
from sparkprep.schema import CATALOG_SCHEMA, PROCESSED_SCHEMA, SPLIT_COLUMNS
from sparkprep.split.assign import bucket, cumulative_basis_points, split_for_bucket
from sparkprep.split.keys import KeySpec, file_key
from sparkprep.statuses import OK, UNREADABLE
from sparkprep.uris import read_bytes

# The split table's columns, in the split job's order: the contract columns, then the catalog's.
SPLIT_FIELDS = [pa.field("key", pa.string()), pa.field("split", pa.string())] + \
    [CATALOG_SCHEMA.field(name) for name in SPLIT_COLUMNS[2:]] + \
    [f for f in CATALOG_SCHEMA if f.name not in SPLIT_COLUMNS]
# The processed table's own columns, renamed where a split column has the same name.
PROCESSED_RENAMED = {"status": "p_status", "error": "p_error", "width": "p_width", "height": "p_height"}
PROCESSED_OWN = [f for f in PROCESSED_SCHEMA if f.name not in SPLIT_COLUMNS and f.name != "rel_path"]
ONE_PASS_SCHEMA = pa.schema(SPLIT_FIELDS + [pa.field("p_status", pa.string()), pa.field("p_error", pa.string())]
                            + [f.with_name(PROCESSED_RENAMED.get(f.name, f.name)) for f in PROCESSED_OWN])


@dataclass(frozen=True)
class OnePassSettings:
    """What the workers need: plain values, so it pickles to any executor."""

    probe: ProbeSettings
    key_by: KeySpec
    seed: str
    ratios: Tuple[float, ...]
    names: Tuple[str, ...]
    spec: TransformSpec
    copies_by_split: Dict[str, int]
    keep_content: bool = True
    # --labels: a labels CSV's labels by relative path, replacing each file's own (a path it does not
    # list gets none), as ingest's with_labels_file does; None: the files' own labels
    labels: Optional[Dict[str, Optional[str]]] = None


def one_pass_batches(batches: Iterator[pa.RecordBatch], settings: OnePassSettings,
                     max_batch_bytes: int = OUTPUT_BATCH_BYTES) -> Iterator[pa.RecordBatch]:
    """Batches of (path, length[, content]) -> batches of ONE_PASS_SCHEMA, one row per processed output.

    Without a content column each file is read here (listing.read_bytes).
    The original (aug_index 0) row carries the split row's content; a copy carries none.
    """
    # With hashes on, the transform's decode gives them (phash-v2): each image is decoded once.
    hashing = settings.probe.phash
    probe = dataclasses.replace(settings.probe, phash=False)
    label_pattern = label_pattern_of(settings.probe)
    group_pattern = compile_group_regex(settings.key_by.arg, "--key-by group") if settings.key_by.kind == "group" \
        else None
    cums = cumulative_basis_points(settings.ratios)
    digest, fmt = settings.spec.digest(), settings.spec.encode
    out, held = _empty(), 0
    for batch in batches:
        paths, sizes = batch.column("path").to_pylist(), batch.column("length").to_pylist()
        contents = batch.column("content") if "content" in batch.schema.names else None
        for i, (path, size) in enumerate(zip(paths, sizes)):
            if contents is not None:
                data, known = contents[i].as_py(), {}
            else:
                data, known = read_listed(path, size, settings.probe.max_file_bytes)
            row = catalog_row(path, size, data, probe, label_pattern, **known)
            if settings.labels is not None:
                row["label"] = settings.labels.get(row["rel_path"])
            row["key"], row["status"], row["error"] = file_key(settings.key_by, row["sha256"], row["rel_path"],
                                                               row["sample"], row["status"], row["error"],
                                                               group_pattern)
            row["split"] = split_for_bucket(bucket(settings.seed, row["key"]), cums, settings.names)
            row["content"] = data if settings.keep_content else None
            image = hashing and row["status"] == OK and row["format"] is not None
            status, error, outputs, perceptual = hashed_outputs(
                row["status"], row["error"], data if row["status"] == OK else None, row["key"],
                settings.copies_by_split.get(row["split"], 0), settings.spec, settings.probe.max_pixels,
                hashed=image, orientation=row["orientation"])
            row["phash"], row["phash256"], row["dct_direction"] = perceptual or (None, None, None)
            if image and status != OK:  # hashing decodes it: as in ingest, the split row is quarantined too
                row["status"], row["error"] = status, error
            row["p_status"], row["p_error"] = status, error
            for produced in outputs or [None]:
                _append(out, row, produced, digest, fmt)
                held += len(produced.image) if produced else 0
                row = dict(row, content=None)  # a copy does not repeat the source bytes
            held += len(data or b"") if settings.keep_content else 0
            if held >= max_batch_bytes:
                yield arrow_batch(out, ONE_PASS_SCHEMA)
                out, held = _empty(), 0
        if out["key"]:  # never hold rows across input batches: memory stays one batch deep
            yield arrow_batch(out, ONE_PASS_SCHEMA)
            out, held = _empty(), 0


# Where Spark keeps a table's schema, metadata included, in a parquet footer; with it, Spark reads
# worker-written files exactly as if it had written them.
SPARK_ROW_METADATA = "org.apache.spark.sql.parquet.row.metadata"
FILES_SCHEMA = pa.schema([pa.field("table", pa.int32()), pa.field("split", pa.string()), pa.field("file", pa.string()),
                          pa.field("rows", pa.int64())])


@dataclass(frozen=True)
class TableTarget:
    """One table the workers write themselves: where, which columns, and how (plain values, picklable)."""

    root: str                             # the table's local staging directory
    columns: Tuple[Tuple[str, str], ...]  # (one-pass column, table column), the partition column excluded
    spark_schema: str                     # Spark's StructType JSON of those columns, metadata included
    payload: Optional[str]                # the image-bytes column: never dictionary-encoded
    compression: str                      # none for already-compressed bytes, else snappy
    originals_only: bool                  # the split table: aug_index 0 rows only
    row_group_bytes: int = 32 << 20       # as Spark's writer (parquet.block.size): few, large row groups


def one_pass_files(batches: Iterator[pa.RecordBatch], settings: OnePassSettings, targets: Tuple[TableTarget, ...],
                   task: str, written: Callable[[int], None] = lambda rows: None,
                   done: Optional[str] = None) -> Iterator[pa.RecordBatch]:
    """one_pass_batches, written by this worker as parquet files of each target table, by split.

    Yields one FILES_SCHEMA row per file written, so the driver learns which files the
    successful task attempts wrote (a failed attempt's files are the ones nobody reported).
    Each file is named part-<task>-<random>.parquet under <root>/split=<name>/. A task that
    fails removes what it wrote; the driver deletes what a killed one left. done: a directory
    where the task, once its files are closed, records them (JSON), so a run
    that resumes after the driver was killed can reuse them (sparkprep.pipeline.resume).
    """
    writers: Dict[Tuple[int, str], Tuple[pq.ParquetWriter, str]] = {}
    counts: Dict[Tuple[int, str], int] = {}
    held: Dict[Tuple[int, str], List[pa.RecordBatch]] = {}  # rows not yet written: one row group's worth at most
    held_bytes: Dict[Tuple[int, str], int] = {}

    def flush(where: Tuple[int, str]) -> None:
        writers[where][0].write_table(pa.Table.from_batches(held.pop(where)))
        held_bytes.pop(where, None)

    try:
        for batch in one_pass_batches(batches, settings):
            for index, target in enumerate(targets):
                rows = batch
                if target.originals_only and any(settings.copies_by_split.values()):
                    rows = batch.filter(pc.equal(batch.column("aug_index"), 0))
                for split in pc.unique(rows.column("split")).to_pylist():
                    part = rows.filter(pc.equal(rows.column("split"), split))
                    where = (index, split)
                    if where not in writers:
                        writers[where] = _open_part(target, split, task, part.schema)
                    table_part = pa.RecordBatch.from_arrays([part.column(one) for one, _ in target.columns],
                                                            names=[name for _, name in target.columns])
                    held.setdefault(where, []).append(table_part)
                    held_bytes[where] = held_bytes.get(where, 0) + table_part.nbytes
                    counts[where] = counts.get(where, 0) + part.num_rows
                    if held_bytes[where] >= target.row_group_bytes:
                        flush(where)
        for where in list(held):
            flush(where)
        for writer, _ in writers.values():
            writer.close()
    except BaseException:
        for writer, path in writers.values():  # what the driver would never be told of
            with contextlib.suppress(Exception):
                writer.close()
            with contextlib.suppress(OSError):
                os.remove(path)
        raise
    keys = sorted(writers)
    if done is not None:
        record_done(done, task, [(k[0], k[1], writers[k][1], counts[k]) for k in keys])
    written(sum(counts.values()))  # a test hook: a failure here leaves the files, unreported, as a killed task would
    yield pa.RecordBatch.from_arrays([pa.array([k[0] for k in keys], pa.int32()), pa.array([k[1] for k in keys]),
                                      pa.array([writers[k][1] for k in keys]), pa.array([counts[k] for k in keys],
                                                                                        pa.int64())],
                                     schema=FILES_SCHEMA)


def record_done(directory: str, task: str, files: List[Tuple[int, str, str, int]]) -> None:
    """Record a finished task's closed files (table index, split, path, rows) in <directory>/<task>-<random>.json,
    written whole or not at all (a rename)."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{task}-{uuid.uuid4().hex}.json")
    with open(path + ".tmp", "w", encoding="utf-8") as out:
        json.dump({"task": task, "files": [list(f) for f in files]}, out)
    os.replace(path + ".tmp", path)


def _open_part(target: TableTarget, split: str, task: str, schema: pa.Schema) -> Tuple[pq.ParquetWriter, str]:
    directory = os.path.join(target.root, f"split={split}")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"part-{task}-{uuid.uuid4().hex}.parquet")
    fields = [schema.field(one).with_name(name) for one, name in target.columns]
    table_schema = pa.schema(fields, metadata={SPARK_ROW_METADATA: target.spark_schema})
    dictionary = [name for _, name in target.columns if name != target.payload]
    return pq.ParquetWriter(path, table_schema, compression=target.compression, use_dictionary=dictionary), path


def read_listed(path: str, size: int, max_bytes: int) -> Tuple[Optional[bytes], dict]:
    """A listed file's bytes, read on the worker; (None, status) when it cannot be read.

    Empty and too-large files are not read: catalog_row makes their rows from the listing.
    """
    if not 0 < size <= max_bytes:
        return None, {}
    try:
        return read_bytes(path), {}
    except OSError as exc:
        return None, {"status": UNREADABLE, "error": f"listed, but could not be read: {exc}"[:500]}


def _empty() -> Dict[str, list]:
    return {f.name: [] for f in ONE_PASS_SCHEMA}


def _append(out: Dict[str, list], row: dict, produced, digest: str, fmt: str) -> None:
    for f in SPLIT_FIELDS:
        out[f.name].append(row[f.name])
    out["p_status"].append(row["p_status"])
    out["p_error"].append(row["p_error"])
    append_output(out, produced, digest, fmt, PROCESSED_RENAMED)


def split_columns(keep_content: bool) -> List[str]:
    """The split table's columns of a one-pass frame, in the split job's order."""
    return [f.name for f in SPLIT_FIELDS if keep_content or f.name != "content"]


def processed_columns() -> List[Tuple[str, str]]:
    """(one-pass column, processed table column) in PROCESSED_SCHEMA's order."""
    return [(PROCESSED_RENAMED.get(f.name, f.name), f.name) for f in PROCESSED_SCHEMA]
