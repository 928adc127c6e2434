"""WebDataset .tar / .tar.gz shards as input: every member becomes a catalog row. Pure Python.

Shards are streamed (tarfile's "r|*" mode through pyarrow.fs), never extracted to disk and
never loaded whole. What cannot be read is quarantined with a reason, never a failed task:
- a truncated or corrupt shard keeps the members read before the damage, and adds one
  `corrupt` row for the shard, naming the last good member;
- a member larger than --max-file-bytes is `too_large`: its sha256 is streamed;
- a member whose name could escape a directory (`../x`, `/abs`), and links, devices and
  other non-files, are `invalid` rows: their names are recorded, never followed.
"""

from __future__ import annotations

import hashlib
import posixpath
import tarfile
import unicodedata
from typing import Iterator, Optional, Tuple

import pyarrow as pa

from sparkprep.statuses import CORRUPT, DUPLICATE_KEY, EMPTY, INVALID, TOO_LARGE, UNREADABLE
from sparkprep.uris import arrow_filesystem

_CHUNK = 8 << 20
SHARD_EXTENSIONS = (".tar", ".tar.gz", ".tgz")


def member_path(shard: str, name: str) -> str:
    """The `path` of a member: <shard uri>#<member name in the tar>."""
    return f"{shard}#{name}"


def unsafe_name(name: str) -> Optional[str]:
    """Why a member name is refused (absolute, or climbing out with '..'), or None."""
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "an absolute member name"
    if ".." in posixpath.normpath(name).split("/") or ".." in name.split("/"):
        return "a member name with '..'"
    return None


def shard_members(shard: str, max_bytes: int) -> Iterator[Tuple[str, str, Optional[int], Optional[bytes],
                                                               Optional[str], Optional[str], Optional[str]]]:
    """(path, member name NFC, size, bytes or None, sha256 or None, status or None, error) per member.

    status None means: read whole, to be probed like any file. Never raises for a bad shard.
    A member name met a second time in the shard is a `duplicate_key` row naming both places
    (which copy was meant cannot be told; the catalog quarantines the whole sample). A shard
    without members is one `empty` row, so that every listed shard is accounted for.
    """
    last = None
    seen = {}  # NFC member name -> its position in the shard (1-based)
    rows = 0
    try:
        filesystem, path = arrow_filesystem(shard)
        with filesystem.open_input_stream(path) as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
            for position, info in enumerate(tar, 1):
                for row in _member_row(shard, tar, info, position, seen, max_bytes):
                    rows += 1
                    yield row
                last = info.name
    except Exception as exc:  # noqa: BLE001 - a damaged shard is data: what was read stays, the rest is reported
        after = f"after member {last}" if last else "before its first member"
        status = UNREADABLE if isinstance(exc, FileNotFoundError) else CORRUPT
        yield member_path(shard, ""), "", None, None, None, status, f"shard unreadable {after}: {type(exc).__name__}: {exc}"[:500]
        return
    if not rows:
        yield member_path(shard, ""), "", 0, None, None, EMPTY, "the shard holds no members"


def _member_row(shard: str, tar: tarfile.TarFile, info: tarfile.TarInfo, position: int, seen: dict, max_bytes: int):
    """The row of one tar member (none for a directory)."""
    name = unicodedata.normalize("NFC", info.name)
    where = member_path(shard, info.name)
    if not info.isfile():
        kind = "a link" if info.issym() or info.islnk() else "a directory" if info.isdir() else "not a file"
        if not info.isdir():
            yield where, name, None, None, None, INVALID, f"tar member is {kind}; not followed"
        return
    reason = unsafe_name(info.name)
    if reason:
        yield where, name, info.size, None, None, INVALID, f"{reason}; not read"
        return
    if name in seen:
        yield (where, name, info.size, None, None, DUPLICATE_KEY,
               f"tar member {name} occurs twice in this shard (members {seen[name]} and {position}): which copy is "
               "meant cannot be told; not read")
        return
    seen[name] = position
    handle = tar.extractfile(info)
    if info.size > max_bytes:
        digest = hashlib.sha256()
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
        yield (where, name, info.size, None, digest.hexdigest(), TOO_LARGE,
               f"{info.size} bytes, over --max-file-bytes {max_bytes}; not decoded")
        return
    data = handle.read()
    if len(data) != info.size:
        raise tarfile.ReadError(f"member {info.name} is cut short")
    yield where, name, info.size, data, hashlib.sha256(data).hexdigest(), None, None


def shard_rows(batches: Iterator[pa.RecordBatch], max_bytes: int) -> Iterator[pa.RecordBatch]:
    """Batches of shard URIs (column `path`) -> batches of (path, rel_path, length, content, sha256,
    status, error) member rows, a few hundred at a time."""
    schema = pa.schema([("path", pa.string()), ("rel_path", pa.string()), ("length", pa.int64()),
                        ("content", pa.binary()), ("sha256", pa.string()), ("status", pa.string()),
                        ("error", pa.string())])
    rows = []
    held = 0
    for batch in batches:
        for shard in batch.column("path").to_pylist():
            for path, name, size, data, digest, status, error in shard_members(shard, max_bytes):
                rows.append({"path": path, "rel_path": name, "length": size, "content": data, "sha256": digest,
                             "status": status, "error": error})
                held += len(data or b"")
                if held >= 16 << 20 or len(rows) >= 1000:
                    yield pa.RecordBatch.from_pylist(rows, schema=schema)
                    rows, held = [], 0
    if rows:
        yield pa.RecordBatch.from_pylist(rows, schema=schema)
