"""`--to mds`: MosaicML streaming's MDS format, byte for byte as its `MDSWriter` writes it, without `streaming`.

    <split>/index.json            {"version": 2, "shards": [...]}: each shard's config, samples, basename, bytes, sha256
    <split>/shard.NNNNN.mds       uint32 samples, uint32 offsets (samples + 1), the config JSON, then the samples

A sample is the uint32 sizes of its variable-size columns, then every column's bytes, columns in name order:

    aug_index  int    (int64)       image  jpeg | png | bytes (as stored; raw pixels as a .npy file)
    key        str                  label  int (the class index; -1: unlabeled)
    sha256     str                  split  str

The config is what `MDSWriter(columns=..., hashes=["sha256"], size_limit=<--shard-size>)` embeds in each shard,
so `streaming.StreamingDataset(local=<export>, split=<split>)` reads an export as it reads its own (and may
check each shard's sha256 with validate_hash="sha256"). Shards are cut by MDSWriter's rule: a shard holds
at most size_limit bytes, counting its header (CONFIG_FRAME + the config) and 4 offset bytes per sample.

Pure Python; sparkprep.export.formats.Mosaic plugs it into the shard writer.
"""

from __future__ import annotations

import json
import struct
from typing import Dict, Iterable, List, Optional

COLUMNS = {"aug_index": "int", "image": None, "key": "str", "label": "int", "sha256": "str", "split": "str"}
FIXED = {"int": 8}  # bytes of a fixed-size encoding; the others are variable (a uint32 size before the data)
PER_SAMPLE = 4  # a sample's offset in its shard's header
CONFIG_FRAME = 8  # the shard's sample count and its last offset
MAX_SHARD = (1 << 32) - 1  # offsets are uint32
IMAGE_ENCODINGS = {"jpeg": "jpeg", "mpo": "jpeg", "png": "png"}  # image_format (lower case) -> MDS encoding
NAMES = sorted(COLUMNS)  # MDSWriter's column order
VARIABLE = [name for name in NAMES if COLUMNS[name] not in FIXED]  # the columns a sample gives a size for


def image_encoding(image_formats: Iterable[str]) -> str:
    """The image column's encoding for a table whose images are in these formats: `jpeg` or `png` when
    every one is (streaming then decodes them to PIL images), else `bytes` (the file's bytes as stored)."""
    encodings = {IMAGE_ENCODINGS.get(str(f).lower(), "bytes") for f in image_formats}
    return encodings.pop() if len(encodings) == 1 else "bytes"


def config(encoding: str, size_limit: Optional[int]) -> Dict[str, object]:
    """MDSWriter's shard config: columns in name order, their encodings and fixed sizes, hashes, size limit."""
    encodings = [COLUMNS[name] or encoding for name in NAMES]
    return {"version": 2, "format": "mds", "compression": None, "hashes": ["sha256"], "size_limit": size_limit,
            "column_names": NAMES, "column_encodings": encodings,
            "column_sizes": [FIXED.get(e) for e in encodings]}


def config_bytes(encoding: str, size_limit: Optional[int]) -> bytes:
    """The config as a shard embeds it (json.dumps with sorted keys, as MDSWriter)."""
    return json.dumps(config(encoding, size_limit), sort_keys=True).encode("utf-8")


def sample_bytes(sample, class_index: int) -> bytes:
    """One sample as MDSWriter encodes it: the sizes of the variable-size columns, then the columns."""
    values = {"aug_index": struct.pack("<q", sample.aug_index), "image": sample.payload(),
              "key": sample.key.encode("utf-8"), "label": struct.pack("<q", class_index),
              "sha256": (sample.sha256 or "").encode("utf-8"), "split": sample.split.encode("utf-8")}
    return struct.pack(f"<{len(VARIABLE)}I", *(len(values[n]) for n in VARIABLE)) + b"".join(
        values[n] for n in NAMES)


def shard_bytes(samples: List[bytes], config_data: bytes) -> bytes:
    """A shard of encoded samples: their count, their offsets (and the end's), the config, the samples."""
    start = 4 + 4 * (len(samples) + 1) + len(config_data)
    offsets, at = [], start
    for data in samples:
        offsets.append(at)
        at += len(data)
    offsets.append(at)
    if at > MAX_SHARD:
        raise ValueError(f"an MDS shard of {at} bytes: its offsets are uint32, so a shard holds at most 4 GiB; "
                         "use a smaller --shard-size or a larger --shard-count")
    return struct.pack(f"<I{len(offsets)}I", len(samples), *offsets) + config_data + b"".join(samples)


def shard_number(basename: str) -> int:
    """shard.NNNNN.mds -> NNNNN (past 99999 the number just grows longer, as MDSWriter names it)."""
    return int(basename.split(".")[1])


def index(shards: List[dict], encoding: str, size_limit: Optional[int]) -> str:
    """A split's index.json from its shards as published (name <split>/shard.NNNNN.mds, samples, bytes, sha256),
    in shard order, as MDSWriter writes it."""
    entries = []
    for s in sorted(shards, key=lambda s: shard_number(s["name"].rsplit("/", 1)[1])):
        entry = {"samples": s["samples"], "zip_data": None,
                 "raw_data": {"basename": s["name"].rsplit("/", 1)[1], "bytes": s["bytes"],
                              "hashes": {"sha256": s["sha256"]}}}
        entries.append({**entry, **config(encoding, size_limit)})
    return json.dumps({"version": 2, "shards": entries}, sort_keys=True)
