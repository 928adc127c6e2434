"""`--to hf`: parquet shards a person can upload to the Hugging Face Hub as they are.

    data/<split>-NNNNN-of-NNNNN.parquet   image struct<bytes, path>, label int64 (nullable), key, sha256, ...,
                                          then a column per other member of the samples (member_columns)
    README.md                             the dataset card: YAML configs (the split files), dataset_info, counts

`datasets` keeps an `Image` or `ClassLabel` feature from a file's `huggingface` schema metadata only
when the Arrow type matches exactly: `image` is struct<bytes: binary, path: string> in that order,
`label` a nullable int64. So every shard carries that metadata and those types, and
`datasets.load_dataset("<folder>")` gives `Image` and `ClassLabel` without arguments.

Pure pyarrow; sparkprep.export.formats.HuggingFace plugs it into the shard writer.
"""

from __future__ import annotations

import io
import json
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import pyarrow as pa
import pyarrow.parquet as pq

from sparkprep.ingest.paths import IMAGE_EXTENSIONS

HF_SPLIT = {"val": "validation", "valid": "validation", "dev": "validation"}  # the Hub's usual names
ROW_GROUP = 100  # rows per row group: the Hub's viewer and datasets read row groups; a shard streams by them


def hub_split(split: str) -> str:
    """The split's name on the Hub (`val` -> `validation`; train and test are already the Hub's)."""
    return HF_SPLIT.get(split, split)


def class_names(classes: Dict[str, int]) -> List[str]:
    """ClassLabel names in index order (the manifest's class map; indices are 0..n-1)."""
    names = [""] * len(classes)
    for label, index in classes.items():
        names[index] = label
    return names


IMAGE_TYPE = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])  # datasets' Image, in order
MEMBER_FEATURES = {"image": {"_type": "Image"}, "json": {"_type": "Json"},
                   "binary": {"dtype": "binary", "_type": "Value"}}
MEMBER_TYPES = {"image": IMAGE_TYPE, "json": pa.json_(), "binary": pa.binary()}


def member_columns(members: Sequence[str]) -> List[Tuple[str, str, str]]:
    """(member, column, kind) for a sample's other members, by name: an image member (`mask.png`) is an `Image`,
    a `.json` one a `Json` (decoded to Python objects by datasets), any other raw bytes. The column is the
    member's name, or member_<name> where that is a fixed column's."""
    fixed = set(FIXED_COLUMNS)
    out = []
    for member in sorted(set(members)):
        last = member.rsplit(".", 1)[-1].lower()
        kind = "image" if last in IMAGE_EXTENSIONS else "json" if last == "json" else "binary"
        out.append((member, f"member_{member}" if member in fixed else member, kind))
    return out


FIXED_COLUMNS = ("image", "label", "key", "sha256", "width", "height", "aug_index", "source_path")


def features(classes: Dict[str, int], members: Sequence[str] = ()) -> dict:
    """The `datasets` features every shard declares, in column order."""
    return {
        "image": {"_type": "Image"},
        "label": {"names": class_names(classes), "_type": "ClassLabel"},
        "key": {"dtype": "string", "_type": "Value"},
        "sha256": {"dtype": "string", "_type": "Value"},
        "width": {"dtype": "int32", "_type": "Value"},
        "height": {"dtype": "int32", "_type": "Value"},
        "aug_index": {"dtype": "int32", "_type": "Value"},
        "source_path": {"dtype": "string", "_type": "Value"},
    } | {column: MEMBER_FEATURES[kind] for _, column, kind in member_columns(members)}


def schema(classes: Dict[str, int], members: Sequence[str] = ()) -> pa.Schema:
    """The shards' Arrow schema, with the features as `huggingface` metadata (the exact types datasets needs)."""
    fields = [
        pa.field("image", IMAGE_TYPE),
        pa.field("label", pa.int64()),
        pa.field("key", pa.string()), pa.field("sha256", pa.string()),
        pa.field("width", pa.int32()), pa.field("height", pa.int32()), pa.field("aug_index", pa.int32()),
        pa.field("source_path", pa.string()),
    ] + [pa.field(column, MEMBER_TYPES[kind]) for _, column, kind in member_columns(members)]
    # in column order (not sorted): datasets builds its Features from this dict in order
    return pa.schema(fields, metadata={b"huggingface": json.dumps(
        {"info": {"features": features(classes, members)}}).encode()})


def json_text(data: bytes) -> str:
    """A `.json` member as a Json value: its text when it is valid JSON, else that text as a JSON string (so a
    malformed member is kept, readable, and never fails a loader)."""
    text = data.decode("utf-8", "backslashreplace")
    try:
        json.loads(text)
        return text
    except ValueError:
        return json.dumps(text)


def row(sample, class_index: Optional[int], columns: Sequence[Tuple[str, str, str]] = ()) -> dict:
    """One sample as a shard's row (class_index None: unlabeled); columns: member_columns of the export's members
    (computed once per shard), null where the sample lacks the member."""
    values = {"image": {"bytes": sample.image, "path": f"{sample.name}.{sample.ext}"}, "label": class_index,
              "key": sample.key, "sha256": sample.sha256, "width": sample.width, "height": sample.height,
              "aug_index": sample.aug_index, "source_path": sample.path}
    extras = dict(sample.extras)
    for member, column, kind in columns:
        data = extras.get(member)
        values[column] = None if data is None else {"bytes": data, "path": f"{sample.name}.{member}"} \
            if kind == "image" else json_text(data) if kind == "json" else data
    return values


def record(sample, class_index: Optional[int]) -> bytes:
    """What sizes a sample in a shard (and, with --incremental, tells a changed one): its image bytes and
    every other value it writes. Parquet adds a few bytes per row and compresses the rest."""
    values = row(sample, class_index)
    head = json.dumps({k: v for k, v in values.items() if k != "image"} | {"path": values["image"]["path"],
                      "members": [name for name, _ in sample.extras]}, sort_keys=True).encode()
    return head + sample.image + b"".join(data for _, data in sample.extras)


class _Sink(io.RawIOBase):
    """A write-only file whose bytes are drained as they come, so a shard streams out by row groups."""

    def __init__(self):
        super().__init__()
        self.parts: List[bytes] = []

    def writable(self):
        return True

    def write(self, data):
        self.parts.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def shard_bytes(rows: Iterable[Tuple[object, Optional[int]]], classes: Dict[str, int],
                members: Sequence[str] = ()) -> Iterator[bytes]:
    """One parquet shard of (sample, class index) rows, in order, as chunks of bytes (a row group at a time),
    with a column per member name in `members` (every shard of an export has the same ones).
    Deterministic: the same rows give the same bytes (no timestamps; pyarrow's writer is)."""
    table_schema, columns = schema(classes, members), member_columns(members)
    sink = _Sink()
    writer = pq.ParquetWriter(sink, table_schema, compression="zstd", use_dictionary=["key", "source_path"],
                              write_statistics=["label", "width", "height", "aug_index"])
    batch: List[dict] = []
    try:
        for sample, class_index in rows:
            batch.append(row(sample, class_index, columns))
            if len(batch) == ROW_GROUP:
                writer.write_table(pa.Table.from_pylist(batch, table_schema))
                batch = []
                yield sink.drain()
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, table_schema))
    finally:
        writer.close()
    yield sink.drain()


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML scalar


def card(classes: Dict[str, int], shards: List[dict], counts_by_label: Dict[str, Dict[str, int]],
         quarantined: Dict[str, Dict[str, int]], about: Dict[str, object], members: Sequence[str] = ()) -> str:
    """The dataset card (README.md): YAML `configs` with each split's files, `dataset_info` (features,
    split sizes), then the run's counts per split and label, the quarantine, the leakage audit and the recipe."""
    splits = sorted({s["split"] for s in shards}, key=lambda s: (("train", "val", "test").index(s)
                                                                 if s in ("train", "val", "test") else 3, s))
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split in splits:
        lines += [f"  - split: {hub_split(split)}", f"    path: {_quoted(f'data/{split}-[0-9]*.parquet')}"]
    lines += ["dataset_info:", "  features:", "  - name: image", "    dtype: image", "  - name: label",
              "    dtype:", "      class_label:", "        names:"]
    lines += [f"          {_quoted(str(i))}: {_quoted(name)}" for i, name in enumerate(class_names(classes))]
    card_types = {"Image": "image", "Json": "json"}
    for name, feature in list(features(classes, members).items())[2:]:
        lines += [f"  - name: {_quoted(name)}", f"    dtype: {card_types.get(feature['_type']) or feature['dtype']}"]
    lines += ["  splits:"]
    for split in splits:
        mine = [s for s in shards if s["split"] == split]
        lines += [f"  - name: {hub_split(split)}", f"    num_bytes: {sum(s['bytes'] for s in mine)}",
                  f"    num_examples: {sum(s['samples'] for s in mine)}"]
    lines += ["---", "", f"# {about.get('title') or 'Dataset'}", "",
              "Written by sparkprep's `export --to hf`: parquet shards with `Image` and `ClassLabel` features.",
              "Load it with `datasets.load_dataset(\"<this folder>\")`; upload it as it is with",
              "`huggingface-cli upload-large-folder <repo id> --repo-type=dataset <this folder>`.", "",
              "## Samples per split and label", "", "| label | " + " | ".join(hub_split(s) for s in splits) + " |",
              "| --- |" + " ---: |" * len(splits)]
    for label in class_names(classes):
        lines.append(f"| {label} | " + " | ".join(str(counts_by_label.get(s, {}).get(label, 0)) for s in splits) + " |")
    lines += ["", "## Quarantined (not exported)", ""]
    lines += [f"- {hub_split(s)}: " + ", ".join(f"{n} {reason}" for reason, n in sorted(q.items()))
              for s, q in sorted(quarantined.items())] or ["none"]
    for heading, key in (("Leakage audit", "leakage"), ("Recipe", "recipe")):
        if about.get(key):
            lines += ["", f"## {heading}", "", "```json", json.dumps(about[key], indent=2, sort_keys=True), "```"]
    return "\n".join(lines) + "\n"
