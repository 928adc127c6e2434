"""List input files with pyarrow.fs, spelling URIs the way Spark's binaryFile does.

Spark's own scan silently drops zero-byte files, so the ingest job reconciles what
Spark read against this independent listing.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

from sparkprep.uris import arrow_filesystem, is_local, qualify


def list_files(root: str, follow_symlinks: bool = False, links: Optional[List[str]] = None,
               mtimes: Optional[Dict[str, int]] = None) -> List[Tuple[str, int]]:
    """(uri, size) of every file under root (or root itself if it is a file), sorted; when
    `mtimes` is given, it receives each listed uri's modification time (ns), from the same listing.

    On local disks symbolic links are not followed unless follow_symlinks: each link met
    is appended to `links` (when given) and left out, so a link to a secret file outside
    the input never reaches the catalog. Followed links are walked once each: a link
    back to a directory already being walked (a loop) is not entered again.
    """
    from pyarrow import fs

    qualified = qualify(root)
    mtimes = {} if mtimes is None else mtimes
    if is_local(root):
        return _list_local(qualified[len("file:"):], follow_symlinks, links if links is not None else [], mtimes)
    filesystem, base = arrow_filesystem(qualified)
    info = filesystem.get_file_info(base)
    if info.type == fs.FileType.File:
        mtimes[qualified] = info.mtime_ns
        return [(qualified, info.size)]
    if info.type != fs.FileType.Directory:
        raise FileNotFoundError(f"input does not exist: {root}")
    prefix = qualified[: len(qualified) - len(base.rstrip("/"))]
    found = [f for f in filesystem.get_file_info(fs.FileSelector(base, recursive=True)) if f.type == fs.FileType.File]
    mtimes.update((prefix + f.path, f.mtime_ns) for f in found)
    return sorted((prefix + f.path, f.size) for f in found)


def child_names(uri: str) -> List[str]:
    """The names directly inside a directory, through pyarrow.fs (for URIs Hadoop cannot read
    here, such as s3:// without s3a); empty when it is not a directory."""
    from pyarrow import fs

    filesystem, base = arrow_filesystem(qualify(uri))
    if filesystem.get_file_info(base).type != fs.FileType.Directory:
        return []
    return sorted(info.base_name for info in filesystem.get_file_info(fs.FileSelector(base)))


def _list_local(base: str, follow: bool, links: List[str], mtimes: Dict[str, int]) -> List[Tuple[str, int]]:
    if os.path.isfile(base) and (follow or not os.path.islink(base)):
        mtimes["file:" + base] = os.stat(base).st_mtime_ns
        return [("file:" + base, os.stat(base).st_size)]
    if not os.path.isdir(base):
        raise FileNotFoundError(f"input does not exist: {base}")
    out: List[Tuple[str, int]] = []
    walking = set()

    def walk(directory: str) -> None:
        ident = (os.stat(directory).st_dev, os.stat(directory).st_ino)
        if ident in walking:  # a loop: this directory is already an ancestor
            links.append("file:" + directory)
            return
        walking.add(ident)
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_symlink() and not follow:
                    links.append("file:" + entry.path)
                elif entry.is_dir(follow_symlinks=follow):
                    walk(entry.path)
                elif entry.is_file(follow_symlinks=follow):
                    stat = entry.stat(follow_symlinks=follow)
                    out.append(("file:" + entry.path, stat.st_size))
                    mtimes["file:" + entry.path] = stat.st_mtime_ns
                elif entry.is_symlink():  # followed, but dangling
                    links.append("file:" + entry.path)
        walking.discard(ident)

    walk(base.rstrip("/") or "/")
    return sorted(out)
