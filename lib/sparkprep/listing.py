"""List input files with pyarrow.fs, spelling URIs the way Spark's binaryFile does.

Spark's own scan silently drops zero-byte files, so the ingest job reconciles what
Spark read against this independent listing.
"""

from __future__ import annotations

import os
from typing import List, Tuple
from urllib.parse import urlparse

from pyarrow import fs

LOCAL_SCHEMES = ("", "file")


def is_local(uri: str) -> bool:
    """True for a plain path or a file: URI."""
    return urlparse(uri).scheme in LOCAL_SCHEMES or len(urlparse(uri).scheme) == 1  # C:\ style


def qualify(uri: str) -> str:
    """The root as Hadoop qualifies it: file:/abs/path for local paths, unchanged otherwise."""
    if is_local(uri):
        path = uri[len("file:"):] if uri.startswith("file:") else uri
        path = "/" + path.lstrip("/") if uri.startswith("file:") else os.path.abspath(path)
        return "file:" + os.path.normpath(path)
    return uri.rstrip("/")


def arrow_filesystem(uri: str) -> Tuple[fs.FileSystem, str]:
    """A pyarrow filesystem and the path inside it for a Hadoop-style URI."""
    if is_local(uri):
        return fs.LocalFileSystem(), qualify(uri)[len("file:"):]
    scheme, rest = uri.split("://", 1)
    if scheme in ("s3a", "s3n"):
        scheme = "s3"
    filesystem, path = fs.FileSystem.from_uri(f"{scheme}://{rest}")
    return filesystem, path


def list_files(root: str) -> List[Tuple[str, int]]:
    """(uri, size) of every file under root (or root itself if it is a file), sorted."""
    qualified = qualify(root)
    filesystem, base = arrow_filesystem(qualified)
    info = filesystem.get_file_info(base)
    if info.type == fs.FileType.File:
        return [(qualified, info.size)]
    if info.type != fs.FileType.Directory:
        raise FileNotFoundError(f"input does not exist: {root}")
    prefix = qualified[: len(qualified) - len(base.rstrip("/"))] if not is_local(root) else "file:"
    found = filesystem.get_file_info(fs.FileSelector(base, recursive=True))
    return sorted((prefix + f.path, f.size) for f in found if f.type == fs.FileType.File)
