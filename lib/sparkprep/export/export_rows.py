"""Arrow batches of exportable rows -> record sizes, or files published to a destination.

Pure pyarrow; the Spark glue (sparkprep.export.spark) feeds it through mapInArrow.
Records are deterministic, so a retried or speculative attempt publishes the same bytes
under the same final name (see sparkprep.export.destinations for how publishing stays atomic).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Set, Tuple

import pyarrow as pa

from sparkprep.export import formats, shards
from sparkprep.runlog import nested_counts, versions
from sparkprep.statuses import OK

# What the export passes read, in this order (sparkprep.export.spark builds it from either table).
EXPORT_COLUMNS = ("key", "split", "label", "path", "sha256", "aug_index", "width", "height", "channels",
                  "image", "image_format", "extras", "primary_member")

SIZES_SCHEMA = pa.schema([
    pa.field("split", pa.string()), pa.field("path", pa.string()), pa.field("aug_index", pa.int32()),
    pa.field("name", pa.string()), pa.field("order", pa.string()), pa.field("nbytes", pa.int64()),
    pa.field("record_sha256", pa.string()),  # export --incremental: the record's bytes, to tell a changed sample
])
PUBLISHED_SCHEMA = pa.schema([
    pa.field("split", pa.string()), pa.field("name", pa.string()),   # file path below the output
    pa.field("label", pa.string()),                                    # imagefolder: the label of the file
    pa.field("samples", pa.int64()), pa.field("bytes", pa.int64()), pa.field("sha256", pa.string()),
    pa.field("kept", pa.bool_()),  # export --incremental: the file in place already holds these bytes; not written
])


def samples_of(batch: pa.RecordBatch) -> Iterator[shards.Sample]:
    """Samples of a batch; with an `image_len` column instead of `image`, zero-filled stand-ins.

    A record's length depends only on its image's length (and, for raw pixels, shape),
    never on the bytes, so stand-ins size records exactly without shipping the images.
    """
    names = [n for n in EXPORT_COLUMNS if n not in ("image", "extras")]
    columns = {name: batch.column(name).to_pylist() for name in names}
    images = batch.column("image") if "image" in batch.schema.names else None
    lengths = batch.column("image_len").to_pylist() if images is None else None
    extras = batch.column("extras").to_pylist() if "extras" in batch.schema.names else None
    extra_lengths = batch.column("extras_len").to_pylist() if "extras_len" in batch.schema.names else None
    for i in range(batch.num_rows):
        values = {name: columns[name][i] for name in names}
        values["aug_index"] = values["aug_index"] or 0
        values["image"] = images[i].as_py() if images is not None else bytes(lengths[i] or 0)
        if extras is not None:
            values["extras"] = tuple(sorted((k, v) for k, v in extras[i] or []))
        elif extra_lengths is not None:
            values["extras"] = tuple(sorted((k, bytes(n or 0)) for k, n in extra_lengths[i] or []))
        yield shards.Sample(**values)


def sizing_batches(batches: Iterable[pa.RecordBatch], export_format: formats.ExportFormat,
                   classes: Dict[str, int], fingerprint: bool = False) -> Iterator[pa.RecordBatch]:
    """Each sample's name, shard order and exact record size in the export format, and with the
    images themselves and `fingerprint` (export --incremental) the sha256 of the record.

    Reads `image_len` instead of `image` otherwise (see samples_of).
    """
    for batch in batches:
        out: Dict[str, list] = {f.name: [] for f in SIZES_SCHEMA}
        for sample in samples_of(batch):
            name = sample.name
            record = export_format.record(sample, _index(classes, sample.label))
            for column, value in (("split", sample.split), ("path", sample.path), ("aug_index", sample.aug_index),
                                  ("name", name), ("order", shards.order_key(name)), ("nbytes", len(record)),
                                  ("record_sha256", hashlib.sha256(record).hexdigest() if fingerprint else None)):
                out[column].append(value)
        yield pa.RecordBatch.from_pydict(out, schema=SIZES_SCHEMA)


def shard_batches(batches: Iterable[pa.RecordBatch], export_format: formats.ExportFormat, dest, attempt: str,
                  classes: Dict[str, int], dirs: Optional[Dict[str, str]] = None,
                  checkpoint: Callable[[int], None] = lambda published: None) -> Iterator[pa.RecordBatch]:
    """Rows sorted by (split, shard, order) -> one published shard per (split, shard).

    Columns: EXPORT_COLUMNS plus `shard` (index in its split), `shards` (the split's total; null with --incremental) and
    `index` (the sample's position in its split: RecordIO's record id). A shard's companions are
    published beside it (RecordIO: its `.idx`, and a part of its split's `.lst`).
    checkpoint(shards published so far) runs after every record (a test hook for failures).
    """
    rows = _shard_rows(batches)
    out: Dict[str, list] = {f.name: [] for f in PUBLISHED_SCHEMA}

    def add(split, name, samples, size, sha):
        for column, value in (("split", split), ("name", name), ("label", None),
                              ("samples", samples), ("bytes", size), ("sha256", sha), ("kept", False)):
            out[column].append(value)

    published = 0
    current = next(rows, None)
    while current is not None:
        split, shard, total = current[1].split, current[0], current[2]
        counter = {"samples": 0}
        placed: List[Tuple[int, int, int, str]] = []  # record id, offset, class index, ImageFolder path

        def shard_rows():  # a format that writes whole files from rows (hf: parquet)
            nonlocal current
            while current is not None and (current[1].split, current[0]) == (split, shard):
                counter["samples"] += 1
                yield current[1], _index(classes, current[1].label)
                checkpoint(published)
                current = next(rows, None)

        def chunks():
            nonlocal current
            if export_format.writes_rows:
                yield from export_format.shard_file(shard_rows(), classes)
                return
            written = 0
            while current is not None and (current[1].split, current[0]) == (split, shard):
                sample, record_id = current[1], current[3]
                class_index = _index(classes, sample.label)
                data = export_format.record(sample, class_index, record_id)
                placed.append((record_id, written, class_index, formats.folder_path(sample, dirs)))
                written += len(data)
                counter["samples"] += 1
                yield data
                checkpoint(published)
                current = next(rows, None)
            end = export_format.trailer(written)
            if end:
                yield end

        name = export_format.shard_name(split, shard, total)
        size, sha = dest.publish(name, chunks(), attempt)  # consumes the records, then counter is right
        add(split, name, counter["samples"], size, sha)
        for companion, data in export_format.companions(name, placed):
            add(split, companion, 0, *dest.publish(companion, [data], attempt))
        published += 1
    yield pa.RecordBatch.from_pydict(out, schema=PUBLISHED_SCHEMA)


def _shard_rows(batches: Iterable[pa.RecordBatch]) -> Iterator[Tuple[int, shards.Sample, int, int]]:
    for batch in batches:
        shard_ids, totals = batch.column("shard").to_pylist(), batch.column("shards").to_pylist()
        indices = batch.column("index").to_pylist()
        for i, sample in enumerate(samples_of(batch)):
            yield shard_ids[i], sample, totals[i], indices[i]


def folder_batches(batches: Iterable[pa.RecordBatch], dest, attempt: str, dirs: Dict[str, str],
                   previous: Optional[Mapping[str, Tuple[str, int]]] = None) -> Iterator[pa.RecordBatch]:
    """One published file per sample: <split>/<label dir>/<name>.<ext>.

    export --incremental: `previous` maps each file the previous export's manifest lists, and that is
    still in place, to (its sha256 there, its size in place); a file with these very bytes is kept, not written.
    """
    for batch in batches:
        out: Dict[str, list] = {f.name: [] for f in PUBLISHED_SCHEMA}
        for sample in samples_of(batch):
            image = formats.folder_path(sample, dirs)
            stem = image[:-len(sample.ext) - 1]
            files = [(image, sample.payload(), 1)]
            files += [(f"{stem}.{member}", data, 0) for member, data in sample.extras]  # next to the image
            for name, data, counted in files:
                kept = _in_place(name, data, previous)
                size, sha = kept or dest.publish(name, [data], attempt)
                for column, value in (("split", sample.split), ("name", name), ("label", sample.label),
                                      ("samples", counted), ("bytes", size), ("sha256", sha),
                                      ("kept", kept is not None)):
                    out[column].append(value)
        yield pa.RecordBatch.from_pydict(out, schema=PUBLISHED_SCHEMA)


def _unusable(manifest: Optional[dict], export_format: str) -> Optional[str]:
    """Why a previous export cannot be built on (None when it can): missing, or of another format."""
    if not manifest:
        return "no previous export in --output"
    if manifest.get("format") != export_format:
        return f"the previous export is {manifest.get('format')!r}, not {export_format!r}"
    return None


def previous_checksums(manifest: Optional[dict], export_format: str) -> Tuple[Optional[Dict[str, str]], Optional[str]]:
    """export --incremental: the previous ImageFolder export's files (name -> sha256), or None and why
    every file is written."""
    why = _unusable(manifest, export_format)
    if why:
        return None, why
    checksums = manifest.get("file_sha256")
    if not isinstance(checksums, dict):
        return None, "the previous manifest lists no file checksums (written by an older sparkprep)"
    return {str(k): str(v) for k, v in checksums.items()}, None


PLACEMENT = "_sparkprep_placement.parquet"  # export --incremental, shards: each sample's shard and record sha256
PLACEMENT_SCHEMA = pa.schema([pa.field("split", pa.string()), pa.field("name", pa.string()),
                              pa.field("shard", pa.int32()), pa.field("record_sha256", pa.string()),
                              pa.field("record_id", pa.int64())])  # RecordIO's id (the others: the place in order)


@dataclass(frozen=True)
class PreviousPlacement:
    """export --incremental with shards: what the previous export placed, and what of it is still in place."""
    samples: pa.Table                    # split, name, kept_shard, previous_sha256, previous_id: a row per sample
    counts: Dict[str, Dict[int, int]]    # split -> shard -> its samples
    in_place: Dict[str, Set[int]]        # split -> the shards in place as the manifest lists them
    entries: Dict[str, dict]             # the previous manifest's shard entries, by shard name
    sizes: Dict[str, int]                # the files in place: name -> bytes


def previous_placement(manifest: Optional[dict], export_format: formats.ExportFormat, shard_size: Optional[int],
                       placement: Optional[pa.Table], sizes: Dict[str, int]
                       ) -> Tuple[Optional[PreviousPlacement], Optional[str]]:
    """export --incremental with shards: the previous placement, or None and why every shard is written."""
    why = _unusable(manifest, export_format.name)
    if why:
        return None, why
    if PLACEMENT not in (manifest.get("files") or []) or placement is None:
        return None, "the previous export recorded no placement (it ran without --incremental)"
    if (manifest.get("config") or {}).get("shard_size") != shard_size:
        return None, "another --shard-size than the previous export's"
    if (manifest.get("format_settings") or {}) != export_format.settings():
        return None, (f"the format's settings (image encoding, member columns) are now {export_format.settings()}, "
                      f"the previous export's {manifest.get('format_settings') or {}}")
    entries = {str(e["name"]): e for e in manifest.get("shards") or [] if "name" in e}
    counts: Dict[str, Dict[int, int]] = {}
    for split, shard in zip(placement.column("split").to_pylist(), placement.column("shard").to_pylist()):
        per = counts.setdefault(split, {})
        per[shard] = per.get(shard, 0) + 1
    in_place = {split: {shard for shard in per if (e := entries.get(export_format.shard_name(split, shard, None)))
                        and sizes.get(e["name"]) == e["bytes"] and e.get("samples") == per[shard]
                        and all(c in sizes for c in export_format.companion_files(e))}
                for split, per in counts.items()}
    if "record_id" not in placement.column_names:  # written before record ids were recorded
        placement = placement.append_column("record_id", pa.nulls(len(placement), pa.int64()))
    samples = placement.select(["split", "name", "shard", "record_sha256", "record_id"]).rename_columns(
        ["split", "name", "kept_shard", "previous_sha256", "previous_id"])
    return PreviousPlacement(samples, counts, in_place, entries, sizes), None


def in_place(checksums: Dict[str, str], sizes: Dict[str, int]) -> Dict[str, Tuple[str, int]]:
    """The previous export's files still in place: name -> (sha256 in the manifest, size in place)."""
    return {name: (sha, sizes[name]) for name, sha in checksums.items() if name in sizes}


def _in_place(name: str, data: bytes, previous: Optional[Mapping[str, Tuple[str, int]]]) -> Optional[Tuple[int, str]]:
    """(size, sha256) when the previous export wrote these bytes under this name and the file is still there."""
    sha, size = (previous or {}).get(name, (None, None))
    if size != len(data):  # new, gone from place, or other bytes: no need to hash
        return None
    digest = hashlib.sha256(data).hexdigest()
    return (size, digest) if digest == sha else None


def _index(classes: Dict[str, int], label: Optional[str]) -> int:
    return shards.UNLABELED_INDEX if label is None else classes[label]


def quarantined_counts(counts: List[dict]) -> Dict[str, Dict[str, int]]:
    """The input's rows that are not exported: split -> status -> rows (from the per split, label and status counts)."""
    quarantined: Dict[str, Dict[str, int]] = {}
    for r in counts:
        if r["status"] != OK:
            per = quarantined.setdefault(r["split"], {})
            per[r["status"]] = per.get(r["status"], 0) + r["count"]
    return {s: dict(sorted(q.items())) for s, q in sorted(quarantined.items())}


def run_about(classes: Dict[str, int], exported: List[tuple], counts: List[dict], input_report: Optional[dict]) -> dict:
    """What a format may write about the run beside its shards (hf: the dataset card): the class map, the
    exported samples per split and label, the quarantine, and from the input table's run report its leakage
    audit and recipe."""
    report = input_report or {}
    near = report.get("near_duplicates") or {}
    leakage = {k: v for k, v in {"keys_in_several_splits": (report.get("leakage") or {}).get("keys_in_several_splits"),
                                 "near_duplicate_pairs_across_splits": near.get("pairs_across_splits"),
                                 "near_duplicate_threshold": near.get("threshold")}.items() if v is not None}
    return {"classes": classes, "counts_by_label": nested_counts(exported), "quarantined": quarantined_counts(counts),
            "leakage": leakage or None, "recipe": report.get("transform"), "title": report.get("job") and
            f"sparkprep export of a {report['job']} table"}


def check_published(published: List[dict], expected: int) -> None:
    """Raise before publishing unless every ok row was written once, under a name of its own."""
    written = sum(r["samples"] for r in published)
    if written != expected:
        raise RuntimeError(f"{expected} ok rows to export but {written} samples written; nothing was published")
    seen: Dict[str, int] = {}
    for r in published:
        seen[r["name"]] = seen.get(r["name"], 0) + 1
    clashes = sorted(name for name, n in seen.items() if n > 1)
    if clashes:
        raise RuntimeError(f"{len(clashes)} file names were written by more than one sample (e.g. {clashes[0]}); "
                           "nothing was published")


def build_manifest(fmt: formats.ExportFormat, config: dict, input_info: dict, classes: Dict[str, int],
                   dirs: Dict[str, str], exported: list, counts: list, published: List[dict]) -> dict:
    """What a loader (or a person) needs to know about the export; no timestamps, so re-runs match."""
    manifest = {
        "format": fmt.name,
        "classes": classes,
        "unlabeled_class_index": shards.UNLABELED_INDEX,
        "counts": {split: sum(per.values()) for split, per in nested_counts(exported).items()},
        "counts_by_label": nested_counts(exported),
        "quarantined": quarantined_counts(counts),
        "shards": fmt.shard_entries(published),
        "files": sorted(r["name"] for r in published),  # what the next export may replace or delete
        "input": input_info,
        "config": {k: v for k, v in config.items() if k not in ("report", "classes", "incremental")},
        "sample_name": "<slug of key>-<sha256(key \\0 path \\0 aug_index)[:10]>[-aug<N>]",
        "sparkprep": versions("n/a")["sparkprep"],
    }
    if fmt.settings():  # what export --incremental compares before keeping a shard in place
        manifest["format_settings"] = fmt.settings()
    manifest.update(fmt.manifest_block(dirs))
    if not fmt.sharded:  # each file's bytes: what export --incremental keeps in place
        manifest["file_sha256"] = {r["name"]: r["sha256"] for r in sorted(published, key=lambda r: r["name"])}
    return manifest
