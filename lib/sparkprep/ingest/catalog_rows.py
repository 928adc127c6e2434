"""Turn batches of (path, size, content) into catalog rows: pure pyarrow + Pillow.

`catalog_batches` is what the ingest job maps over Arrow batches on the workers; it
never raises for bad data, so one corrupt file cannot fail a task.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Iterator, Optional

import pyarrow as pa

from sparkprep.images import probe as image_probe
from sparkprep.images.phash import phashes_of_bytes
from sparkprep.ingest.paths import (compile_group_regex, first_group, is_image_member, label_from_parent,
                                    relative_path, sample_and_member)
from sparkprep.schema import CATALOG_SCHEMA
from sparkprep.statuses import EMPTY, INVALID, OK, TOO_LARGE, UNREADABLE
from sparkprep.uris import arrow_filesystem

_STREAM_CHUNK = 8 << 20


@dataclass(frozen=True)
class ProbeSettings:
    """What the workers need to know; plain values, so it pickles to any executor."""

    root: str                       # qualified input root, as the listing spells it
    label_regex: Optional[str] = None
    full_validate: bool = False
    max_file_bytes: int = 256 << 20
    max_pixels: int = image_probe.DEFAULT_MAX_PIXELS
    samples: str = "file"           # file | basename (docs/contracts.md, Samples)
    phash: bool = True              # decode ok images once more (at 1/8 scale) for the `phash` column
    label_member: Optional[str] = None  # the member whose text is its sample's label (WebDataset's cls)


def catalog_batches(batches: Iterator[pa.RecordBatch], settings: ProbeSettings) -> Iterator[pa.RecordBatch]:
    """Map input batches (path, length, content) to batches of CATALOG_SCHEMA.

    Batches of tar members (sparkprep.ingest.tar_shards) also carry rel_path (the member
    name), sha256, status and error; a member whose status is already set is not probed.
    """
    label_pattern = label_pattern_of(settings)
    names = [f.name for f in CATALOG_SCHEMA if f.name != "content"]
    for batch in batches:
        columns = {name: [] for name in names}
        contents = batch.column("content")
        given = {name: batch.column(name).to_pylist() for name in ("rel_path", "sha256", "status", "error")
                 if name in batch.schema.names}
        for i, (path, size, data) in enumerate(zip(batch.column("path").to_pylist(), batch.column("length").to_pylist(),
                                                   contents.to_pylist())):
            known = {name: values[i] for name, values in given.items()}
            row = catalog_row(path, size, data, settings, label_pattern, **known)
            for name in names:
                columns[name].append(row[name])
        arrays = [pa.array(columns[f.name], f.type) if f.name != "content" else contents.cast(pa.binary())
                  for f in CATALOG_SCHEMA]
        yield pa.RecordBatch.from_arrays(arrays, schema=CATALOG_SCHEMA)


def label_pattern_of(settings: ProbeSettings):
    return compile_group_regex(settings.label_regex, "--label-regex") if settings.label_regex else None


def catalog_row(path: str, size: int, data: Optional[bytes], settings: ProbeSettings, label_pattern=None,
                rel_path: Optional[str] = None, sha256: Optional[str] = None, status: Optional[str] = None,
                error: Optional[str] = None) -> dict:
    """One file's catalog row (every CATALOG_SCHEMA column but content); never raises for bad data.

    rel_path, sha256, status and error are given for tar members; a member whose status is
    already set is not probed.
    """
    rel = rel_path if rel_path is not None else relative_path(path, settings.root)
    label = first_group(label_pattern, rel) if label_pattern else label_from_parent(rel)
    sample, member = sample_and_member(rel, settings.samples)
    if status is not None:
        digest, probe = sha256, image_probe.Probe(status, error)
    else:
        digest, probe = _probe_file(path, size, data, settings, image=is_image_member(rel))
    if settings.label_member is not None:  # only that member says the label; the sample's rows share it
        label = None
        if member == settings.label_member and probe.status == OK:
            label, reason = label_text(data)
            if reason:
                probe = image_probe.Probe(INVALID, f"label member {member}: {reason}")
    perceptual = (None, None, None)
    if settings.phash and probe.status == OK and probe.format is not None and data is not None:
        perceptual, probe = _with_phash(data, probe, settings.max_pixels)
    return dict(path=path, rel_path=rel, sample=sample, member=member, label=label, sha256=digest, size=size,
                status=probe.status, error=probe.error, format=probe.format, width=probe.width,
                height=probe.height, mode=probe.mode, frames=probe.frames, orientation=probe.orientation,
                phash=perceptual[0], phash256=perceptual[1], dct_direction=perceptual[2])


MAX_LABEL_CHARS = 200


def label_text(data: Optional[bytes]) -> "tuple[Optional[str], Optional[str]]":
    """(label, None) from a label member's bytes (UTF-8 text, surrounding whitespace dropped), or
    (None, why not): a label is one short line of text, as WebDataset's `cls` holds."""
    try:
        text = (data or b"").decode("utf-8").strip()
    except UnicodeDecodeError:
        return None, "expected UTF-8 text, got bytes that do not decode"
    if not text or "\n" in text or len(text) > MAX_LABEL_CHARS:
        shown = text[:40] + ("..." if len(text) > 40 else "")
        return None, f"expected one line of up to {MAX_LABEL_CHARS} characters, got {shown!r}"
    return text, None


def _with_phash(data: bytes, probe: image_probe.Probe, max_pixels: int):
    """((phash, phash256, dct_direction), probe) of an ok image; hashing decodes it, so data that fails to decode is `corrupt`
    here."""
    try:
        return phashes_of_bytes(data, probe.orientation, max_pixels), probe
    except Exception as exc:  # noqa: BLE001 - decoder failures are data; quarantine_or_raise re-raises bugs
        status, reason = image_probe.quarantine_or_raise(exc)
        return (None, None, None), dataclasses.replace(probe, status=status, error=reason)


def _probe_file(path: str, size: int, data: Optional[bytes], settings: ProbeSettings, image: bool = True):
    """(sha256, Probe) for one file; `data` is None when Spark did not read the bytes.

    Files that are not images (a sample's .json, .cls, .hea ...) are hashed, not probed.
    """
    if data is not None and not image:
        return hashlib.sha256(data).hexdigest(), image_probe.Probe(OK) if data else image_probe.Probe(EMPTY, "zero-byte file")
    if data is not None:
        return hashlib.sha256(data).hexdigest(), image_probe.probe_image(data, settings.full_validate,
                                                                         settings.max_pixels)
    if size == 0:
        return hashlib.sha256(b"").hexdigest(), image_probe.Probe(EMPTY, "zero-byte file")
    if size > settings.max_file_bytes:
        reason = f"{size} bytes, over --max-file-bytes {settings.max_file_bytes}; not decoded"
        try:
            return stream_sha256(path), image_probe.Probe(TOO_LARGE, reason)
        except Exception as exc:  # noqa: BLE001 - reported, never raised
            return None, image_probe.Probe(TOO_LARGE, f"{reason}; sha256 failed: {exc}"[:500])
    return None, image_probe.Probe(UNREADABLE, "listed, but Spark did not read it (changed or removed?)")


def stream_sha256(uri: str) -> str:
    """sha256 of a file too large to load, streamed through pyarrow.fs."""
    filesystem, path = arrow_filesystem(uri)
    digest = hashlib.sha256()
    with filesystem.open_input_stream(path) as stream:
        while chunk := stream.read(_STREAM_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
