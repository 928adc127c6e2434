"""Export formats as pure functions: names, class maps, tar and TFRecord records, shard packing.

No pyspark here. Every function is deterministic: the same sample gives the same bytes,
so a retried task republishes an identical shard.

- WebDataset shards are plain USTAR tars written with the standard library's `tarfile`
  headers, members `<key>.<ext>` in sorted order, mtime 0, uid/gid 0. (webdataset's own
  TarWriter needs Python >= 3.10; the executors of SageMaker's Spark image run 3.9.)
- TFRecord files hold `tf.train.Example` protos, encoded here (a handful of protobuf
  fields, map entries in sorted order) and framed with masked CRC32C (google-crc32c).
- RecordIO files are what MXNet's `recordio.py` and `im2rec.py` write (dmlc-core's framing,
  an `IRHeader` before the encoded image), written here without MXNet.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
import tarfile
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Set, Tuple

if TYPE_CHECKING:  # pack_split's frames; pandas is imported where it runs, in Spark's workers
    import pandas as pd

UNLABELED_INDEX = -1
UNLABELED_DIR = "_unlabeled"
TAR_BLOCK = 512
TAR_RECORD = tarfile.RECORDSIZE  # tarfile pads archives to 20 blocks; so do we
TAR_END = 2 * TAR_BLOCK
TFRECORD_FRAME = 16  # length (8) + its CRC (4) + data CRC (4)
TF_FORMATS = {"jpg": "jpeg", "tif": "tiff", "npy": "raw"}  # image/format values, as TF's tools spell them
# File systems limit each path component to 255 bytes; a cleaned label leaves room for "-<8 hex>".
MAX_DIR_BYTES = 200
_SLUG = re.compile(r"[^A-Za-z0-9_-]+")
_PIL_EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "GIF": "gif", "BMP": "bmp", "TIFF": "tif",
                   "WEBP": "webp", "jpeg": "jpg", "png": "png", "webp": "webp", "raw": "npy"}


@dataclass(frozen=True)
class Sample:
    """One exported row: what every export format writes about it."""

    key: str
    split: str
    label: Optional[str]
    path: Optional[str]
    sha256: Optional[str]
    aug_index: int
    width: Optional[int]
    height: Optional[int]
    channels: Optional[int]
    image: bytes
    image_format: Optional[str]  # processed: jpeg|png|webp|raw; split table: Pillow's format name
    extras: Tuple[Tuple[str, bytes], ...] = ()  # the sample's other members: (member name, bytes)
    primary_member: Optional[str] = None  # a mapped sample's member name for `image` (else from its format)

    @property
    def name(self) -> str:
        return sample_name(self.key, self.path, self.aug_index)

    @property
    def ext(self) -> str:
        return self.primary_member or extension(self.image_format, self.path)

    def payload(self) -> bytes:
        """The image file's bytes: as stored, or raw pixels as a .npy array (HWC uint8)."""
        if self.ext != "npy":
            return self.image
        import numpy as np

        buf = io.BytesIO()
        shape = (self.height, self.width, self.channels) if self.channels and self.channels > 1 else (
            self.height, self.width)
        np.save(buf, np.frombuffer(self.image, np.uint8).reshape(shape), allow_pickle=False)
        return buf.getvalue()

    def metadata(self, class_index: int) -> Dict[str, object]:
        return {"key": self.key, "label": self.label, "class_index": class_index, "split": self.split,
                "sha256": self.sha256, "path": self.path, "width": self.width, "height": self.height,
                "channels": self.channels, "aug_index": self.aug_index}


def slug(text: str, limit: int = 40) -> str:
    """Letters, digits, '_' and '-' only: no '/', no '..', no dots at all."""
    return _SLUG.sub("_", unicodedata.normalize("NFC", text)).strip("_")[:limit] or "sample"


def sample_name(key: str, path: Optional[str], aug_index: int) -> str:
    """A readable, unique, dot-free name: slug of the key, a digest of (key, path, copy), the copy.

    The digest keeps exact duplicates (same content key, different paths) and augmented
    copies apart. WebDataset splits a member name at its first dot, so there are none.
    """
    digest = hashlib.sha256(f"{key}\0{path or ''}\0{aug_index}".encode("utf-8")).hexdigest()[:10]
    return f"{slug(key)}-{digest}" + (f"-aug{aug_index}" if aug_index else "")


def order_key(name: str) -> str:
    """Deterministic pseudo-random order inside a split, so classes mix within every shard."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def extension(image_format: Optional[str], path: Optional[str]) -> str:
    """File extension for an image: from its format, else from its source path, else 'bin'."""
    if image_format in _PIL_EXTENSIONS:
        return _PIL_EXTENSIONS[image_format]
    tail = (path or "").rsplit("/", 1)[-1]
    ext = tail.rsplit(".", 1)[-1].lower() if "." in tail else ""
    return {"jpeg": "jpg", "tiff": "tif"}.get(ext, ext) if re.fullmatch(r"[a-z0-9]{1,5}", ext) else "bin"


def class_map(labels: Iterable[Optional[str]]) -> Dict[str, int]:
    """Sorted distinct labels -> 0..n-1 (None is unlabeled and gets UNLABELED_INDEX)."""
    return {label: i for i, label in enumerate(sorted({l for l in labels if l is not None}))}


def label_dirs(labels: Iterable[Optional[str]]) -> Dict[str, str]:
    """Label -> a safe directory name, one-to-one.

    No '/', '\\', '..', control characters or leading dot; at most 200 UTF-8 bytes; names
    that collide after cleaning get a short digest of the original label.
    """
    cleaned: Dict[str, str] = {}
    for label in sorted({l for l in labels if l is not None}):
        name = unicodedata.normalize("NFC", label)
        name = "".join("_" if unicodedata.category(c)[0] == "C" or c in "/\\" else c for c in name)
        name = utf8_prefix(name.replace("..", "_").strip().lstrip("."), MAX_DIR_BYTES) or "_"
        cleaned[label] = name
    seen: Dict[str, int] = {}
    for name in list(cleaned.values()) + [UNLABELED_DIR]:
        seen[name.casefold()] = seen.get(name.casefold(), 0) + 1
    return {label: name if seen[name.casefold()] == 1 else f"{name}-{hashlib.sha256(label.encode()).hexdigest()[:8]}"
            for label, name in cleaned.items()}


def utf8_prefix(text: str, limit: int) -> str:
    """The longest prefix of text whose UTF-8 encoding fits in limit bytes (never half a character)."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def label_dir(dirs: Dict[str, str], label: Optional[str]) -> str:
    return UNLABELED_DIR if label is None else dirs[label]


# -- WebDataset ------------------------------------------------------------------------------------

def tar_member(name: str, data: bytes) -> bytes:
    """One USTAR member: header block, data, zero padding to the block size. Fixed owner and time."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    header = info.tobuf(format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="strict")
    return header + data + b"\0" * (-len(data) % TAR_BLOCK)


def webdataset_record(sample: Sample, class_index: int) -> bytes:
    """The tar members of one sample, sorted by name: cls, <image ext>, json, and the sample's own
    other members. Where the sample has its own cls or json, sparkprep's are sparkprep.cls/.json."""
    meta = json.dumps(sample.metadata(class_index), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    own = dict(sample.extras)
    members = {sample.ext: sample.payload(), **own}
    for generated, data in (("cls", str(class_index).encode()), ("json", meta.encode("utf-8"))):
        members[f"sparkprep.{generated}" if generated in own else generated] = data
    return b"".join(tar_member(f"{sample.name}.{ext}", members[ext]) for ext in sorted(members))


def tar_trailer(written: int) -> bytes:
    """End-of-archive blocks, padded to tarfile's record size."""
    return b"\0" * (TAR_END + (-(written + TAR_END) % TAR_RECORD))


# -- TFRecord --------------------------------------------------------------------------------------

def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits, value = value & 0x7F, value >> 7
        out.append(bits | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature(value) -> bytes:
    """tf.train.Feature: bytes_list = 1, int64_list = 3 (packed)."""
    if isinstance(value, int):
        return _field(3, _field(1, _varint(value & 0xFFFFFFFFFFFFFFFF)))
    return _field(1, _field(1, value))


def tf_example(features: Dict[str, object]) -> bytes:
    """tf.train.Example{features: Features{feature: map<string, Feature>}}, keys in sorted order."""
    entries = b"".join(_field(1, _field(1, key.encode("utf-8")) + _field(2, _feature(features[key])))
                       for key in sorted(features))
    return _field(1, entries)


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC32C."""
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord_frame(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def tfrecord_record(sample: Sample, class_index: int) -> bytes:
    """One framed tf.train.Example with the standard image/* keys."""
    features: Dict[str, object] = {
        "image/encoded": sample.image,
        "image/format": TF_FORMATS.get(sample.ext, sample.ext).encode(),
        "image/height": sample.height or 0,
        "image/width": sample.width or 0,
        "image/channels": sample.channels or 0,
        "image/class/label": class_index,
        "image/class/text": (sample.label or "").encode("utf-8"),
        "image/key/sha256": (sample.sha256 or "").encode(),
        "image/source_id": sample.key.encode("utf-8"),
        "image/filename": sample.name.encode(),
        "image/aug_index": sample.aug_index,
    }
    for member, data in sample.extras:  # the sample's other members, as bytes features named after them
        features[member] = data
    return tfrecord_frame(tf_example(features))


# -- RecordIO (MXNet) ------------------------------------------------------------------------------

RECORDIO_MAGIC = 0xCED7230A
_MAGIC = struct.pack("<I", RECORDIO_MAGIC)
RECORDIO_MAX = 1 << 29  # dmlc: the length field has 29 bits; the upper 3 carry the continuation flag
IR_HEADER = struct.Struct("<IfQQ")  # MXNet's IRHeader: flag, label, id, id2 (24 bytes, little-endian)


def _recordio_part(cflag: int, data: bytes) -> bytes:
    return _MAGIC + struct.pack("<I", cflag << 29 | len(data)) + data


def recordio_frame(payload: bytes) -> bytes:
    """One record exactly as dmlc-core's RecordIOWriter::WriteRecord writes it.

    A part is the magic word, lrec = cflag << 29 | length, then its bytes. A magic word at a
    4-byte-aligned offset of the payload would look like the start of a record, so the writer
    drops it and splits the record there (cflag 1 = first part, 2 = middle, 3 = last, 0 = the
    whole record); the reader puts the word back between the parts. The record ends padded
    with zeros to 4 bytes, so every part starts aligned.
    """
    if len(payload) >= RECORDIO_MAX:
        raise ValueError(f"expected a RecordIO record below 2^29 bytes, got {len(payload)} bytes")
    parts, start, at = [], 0, payload.find(_MAGIC)
    while at != -1:
        if at % 4 == 0:
            parts.append(_recordio_part(1 if start == 0 else 2, payload[start:at]))
            start = at + 4
            at = payload.find(_MAGIC, start)
        else:
            at = payload.find(_MAGIC, at + 1)
    parts.append(_recordio_part(3 if start else 0, payload[start:]))
    return b"".join(parts) + b"\0" * (-len(payload) % 4)


def recordio_record(sample: Sample, class_index: int, record_id: int) -> bytes:
    """One framed record as im2rec.py packs it: IRHeader(flag 0, label, id, 0), then the encoded image.

    MXNet decodes the image with OpenCV, so raw pixels (a .npy payload) have no RecordIO form.
    """
    if sample.ext == "npy":
        raise ValueError(f"expected an encoded image for RecordIO, got raw pixels ({sample.key})")
    return recordio_frame(IR_HEADER.pack(0, float(class_index), record_id, 0) + sample.image)


def recordio_index_line(record_id: int, offset: int) -> str:
    """A line of the .idx file (MXIndexedRecordIO): record id, tab, byte offset of the record."""
    return f"{record_id}\t{offset}\n"


def recordio_list_line(record_id: int, class_index: int, path: str) -> str:
    """A line of the .lst file, as im2rec.py writes it: index, label ('%f'), path relative to its root."""
    return f"{record_id}\t{float(class_index):f}\t{path}\n"


def pack_by_size(sizes: List[int], limit: int, overhead: int = 0) -> List[int]:
    """Greedy: shard index for each record, in order, so no shard exceeds limit.

    A record larger than the limit on its own gets a shard to itself.
    """
    out, shard, used = [], 0, 0
    for size in sizes:
        if used and used + size + overhead > limit:
            shard, used = shard + 1, 0
        out.append(shard)
        used += size
    return out


def pack_by_count(n: int, shards: int) -> List[int]:
    """n records in order over min(shards, n) shards of near-equal counts."""
    shards = max(1, min(shards, n))
    return [i * shards // n for i in range(n)]


def pack_appended(sizes: List[int], kept_in: List[Optional[int]], previous_counts: Dict[int, int],
                  in_place: Set[int], limit: int, overhead: int = 0) -> Tuple[List[int], Set[int]]:
    """export --incremental's placement for one split (samples in their order, as pack_by_size takes them).

    kept_in[i]: the shard sample i keeps from the previous export (its record there has the same bytes), else
    None. previous_counts: each previous shard's samples; in_place: the previous shards still in place as
    written. Kept samples stay in their shard; every other sample goes, in order, into new shards cut as
    pack_by_size cuts them, numbered after the highest shard that keeps a sample (from 0 when none does, so
    that a split with nothing kept is placed exactly as a full export places it).
    Returns (shard per sample, the shards to leave as they are: every sample kept, and in place).
    """
    kept_counts: Dict[int, int] = {}
    for shard in kept_in:
        if shard is not None:
            kept_counts[shard] = kept_counts.get(shard, 0) + 1
    start = max(kept_counts) + 1 if kept_counts else 0
    fresh = pack_by_size([size for size, shard in zip(sizes, kept_in) if shard is None], limit, overhead)
    placed, new = [], iter(fresh)
    for shard in kept_in:
        placed.append(shard if shard is not None else start + next(new))
    unchanged = {shard for shard, n in kept_counts.items() if n == previous_counts.get(shard) and shard in in_place}
    return placed, unchanged


def appended_ids(kept_ids: List[Optional[int]]) -> List[int]:
    """export --incremental's record ids for one split (samples in their order): a kept sample keeps its id,
    every other sample takes the next id after the highest kept one, in order. With nothing kept: 0..n-1, a
    full export's ids. Ids stay unique, and RecordIO's kept records keep their bytes."""
    start = max((i for i in kept_ids if i is not None), default=-1) + 1
    out = []
    for previous in kept_ids:
        if previous is None:
            previous, start = start, start + 1
        out.append(previous)
    return out


# The plan of a shard export: one row per sample (sparkprep.export.spark joins it to the rows it writes).
PLAN_SCHEMA = ("split string, path string, aug_index int, order string, shard int, shards int, index long, "
               "name string, record_sha256 string, rewrite boolean")
PLAN_COLUMNS = [field.split()[0] for field in PLAN_SCHEMA.split(", ")]


def pack_split(frame: pd.DataFrame, overhead: int, shard_size: Optional[int], shard_count: Optional[int],
               previous_counts: Optional[Dict[str, Dict[int, int]]] = None,
               in_place: Optional[Dict[str, set]] = None, appendable: bool = False) -> pd.DataFrame:
    """One split's samples, ordered by their order key, cut into shards (with a previous placement:
    pack_appended). The Spark glue runs it per split (groupBy("split").applyInPandas, PLAN_SCHEMA).
    appendable (export --incremental): `shards` is null, so no shard's name counts the split's shards."""
    import pandas as pd

    frame = frame.sort_values("order", kind="stable").reset_index(drop=True)
    duplicated = frame["name"].duplicated()
    if duplicated.any():
        raise ValueError(f"the input holds the same sample twice: {frame['name'][duplicated].iloc[0]}")
    unchanged: set = set()
    record_ids = list(range(len(frame)))  # the sample's place in its split: RecordIO's id
    if previous_counts is not None:
        split = frame["split"].iloc[0] if len(frame) else None
        same = frame["kept_shard"].notna() & (frame["previous_sha256"] == frame["record_sha256"])
        kept_in = [int(shard) if keep else None for shard, keep in zip(frame["kept_shard"], same)]
        ids, unchanged = pack_appended(frame["nbytes"].tolist(), kept_in, previous_counts.get(split, {}),
                                       (in_place or {}).get(split, set()), shard_size, overhead)
        record_ids = appended_ids([int(i) if keep and pd.notna(i) else None
                                   for i, keep in zip(frame["previous_id"], same)])
    elif shard_count:
        ids = pack_by_count(len(frame), shard_count)
    else:
        ids = pack_by_size(frame["nbytes"].tolist(), shard_size, overhead)
    frame["rewrite"] = pd.Series([i not in unchanged for i in ids], dtype="bool")
    frame["shard"] = pd.Series(ids, dtype="int32")
    frame["shards"] = pd.Series([None if appendable else max(ids, default=-1) + 1] * len(ids), dtype="Int32")
    frame["index"] = pd.Series(record_ids, dtype="int64")
    return frame[PLAN_COLUMNS]
