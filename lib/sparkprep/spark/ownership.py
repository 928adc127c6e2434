"""Which outputs sparkprep may replace, and how a replacement is published and recovered: pure Python.

The rules (README "Safety"):
- Every output carries a marker, `_sparkprep.json`: the kind (`table`, `export`, `features`), the
  format, the job, the sparkprep version and the run id.
- A job replaces or cleans only a path whose marker names its own kind. A path that is
  not empty and has no such marker is refused; nothing in it is renamed or deleted.
  Outputs of sparkprep 0.1.0 (no marker) are adopted only when their own run report
  names this very path as its output.
- A table is replaced by a journalled swap: the journal is written before the first
  rename, and `swap_steps` tells the next run how to finish a swap that crashed.
- One run at a time holds the lock, created with an exclusive create.

Stores are passed in as small callables, so this module runs against the local disk,
Hadoop's FileSystem or S3 alike, and is tested without any of them.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from sparkprep import __version__

MARKER = "_sparkprep.json"
REPORT_NAME = "_run_report.json"
# report.html inside a table directory: Spark, pyarrow and pandas read every file whose name
# does not start with '_' or '.' as data, so the page beside a table's files is _report.html.
TABLE_PAGE = "_report.html"
PAGE = "report.html"  # where the directory is not a table (a pipeline's root, jobs/report.py's output)
MANIFEST = "manifest.json"
TABLE, EXPORT = "table", "export"
FEATURES = "features"  # jobs/features.py: a directory of tables, CSV/libsvm files and a model, swapped whole
TABLE_JOBS = ("ingest", "split", "preprocess")
# Siblings of a table output that belong to its publish protocol: <output><suffix>.
STAGING, RETIRED, JOURNAL, LOCK = ".__staging-", ".__old-", ".__publish.json", ".__lock"
EXPORT_LOCK = "_sparkprep.lock"  # inside an export's directory
LISTING_STATE = "_sparkprep_listing"  # inside a table written with --incremental: (path, size, version) parquet
RUN_ID = re.compile(r"^[0-9a-f]{12}$")


class NotOurs(ValueError):
    """The output path holds something sparkprep did not write (or not of this kind): refuse."""


class Locked(RuntimeError):
    """Another run holds the output's lock."""


def marker(kind: str, fmt: str, job: str, run_id: str) -> Dict[str, str]:
    """The content of `_sparkprep.json` for a new output."""
    return {"sparkprep_output": kind, "format": fmt, "job": job, "version": __version__, "run_id": run_id}


def json_object(text: Optional[str]) -> Optional[dict]:
    """A JSON object parsed from text, or None for missing, malformed or non-object text."""
    try:
        value = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def same_uri(a: str, b: str) -> bool:
    """Whether two spellings name one location (file:/x == /x, s3a:// == s3://, trailing '/')."""
    return canonical_uri(a) == canonical_uri(b)


def canonical_uri(uri: str) -> str:
    """One spelling per location: s3a/s3n -> s3, file: and plain paths -> absolute paths, no trailing '/'."""
    uri = str(uri).strip()
    match = re.match(r"^(s3[an]?)://", uri)
    if match:
        return "s3://" + uri[match.end():].rstrip("/")
    if uri.startswith("file:"):
        uri = "/" + uri[len("file:"):].lstrip("/")
    if "://" not in uri:
        return os.path.normpath(os.path.abspath(uri))
    return uri.rstrip("/")


def classify_output(names: Iterable[str], read_text: Callable[[str], Optional[str]], kind: str,
                    uri: str) -> str:
    """'new', 'owned' or 'legacy' for an output directory's top-level names; NotOurs otherwise.

    read_text(name) returns a top-level file's text, or None when it cannot be read.
    """
    names = set(names)
    if not names:
        return "new"
    if MARKER in names:
        found = json_object(read_text(MARKER))
        if found and found.get("sparkprep_output") == kind:
            return "owned"
        what = f"a sparkprep {found.get('sparkprep_output')} output" if found else f"an unreadable {MARKER}"
        raise NotOurs(f"--output: expected a sparkprep {kind} output or a new path, got {uri!r}, which is {what}; "
                      "refusing to touch it (pick another path)")
    report = json_object(read_text(REPORT_NAME)) if REPORT_NAME in names else None
    if report and "sparkprep" in (report.get("versions") or {}) and same_uri(
            str((report.get("output") or {}).get("uri", "")), uri):
        if kind == TABLE and report.get("job") in TABLE_JOBS:
            return "legacy"
        if kind == EXPORT and report.get("job") == "export" and MANIFEST in names:
            manifest = json_object(read_text(MANIFEST)) or {}
            if manifest.get("format") in ("webdataset", "tfrecord") and manifest.get("shards"):
                return "legacy"
            raise NotOurs(f"--output: {uri!r} is an ImageFolder export of sparkprep 0.1.0, which did not record "
                          "its files; refusing to clean it (export to a new path, or remove it yourself)")
    shown = ", ".join(sorted(names)[:4]) + (", ..." if len(names) > 4 else "")
    raise NotOurs(f"--output: expected a new path, an empty directory or a sparkprep {kind} output, got {uri!r} "
                  f"(it holds {shown} and no {MARKER}); refusing to touch it")


def previous_files(manifest_text: Optional[str]) -> List[str]:
    """The files an earlier export wrote, as its manifest lists them (relative paths)."""
    manifest = json_object(manifest_text) or {}
    if isinstance(manifest.get("files"), list):
        return [str(f) for f in manifest["files"]]
    if manifest.get("format") in ("webdataset", "tfrecord"):  # sparkprep 0.1.0: shard entries
        return [str(entry["name"]) for entry in manifest.get("shards", []) if "name" in entry]
    return []


# -- the table swap ---------------------------------------------------------------------------------

def swap_paths(output: str, run_id: str) -> Dict[str, str]:
    """Where a table run stages, retires the old output, and journals its publish."""
    base = output.rstrip("/")
    return {"output": base, "staging": base + STAGING + run_id, "retired": base + RETIRED + run_id,
            "journal": base + JOURNAL, "lock": base + LOCK}


def swap_steps(journal: dict, exists: Callable[[str], bool]) -> List[Tuple[str, str, str]]:
    """What is left of a journalled swap, as ('rename', src, dst) and ('delete', path, '') steps.

    The journal is written only after the staged table passed every check, so a crashed
    swap is always finished (rolled forward), never undone: the result is the new table.
    Each step is safe to repeat, so a crash during recovery is recovered the same way.
    """
    output, staging, retired = journal["output"], journal["staging"], journal["retired"]
    steps: List[Tuple[str, str, str]] = []
    if exists(staging):
        if exists(output):
            steps.append(("rename", output, retired))
        steps.append(("rename", staging, output))
        steps.append(("delete", retired, ""))
    elif exists(retired):
        steps.append(("delete", retired, ""))
    steps.append(("delete", journal["journal"], ""))
    return steps


def stranded(output: str, siblings: Iterable[str], journal_run: Optional[str]) -> List[str]:
    """Sibling staging/retired directories of crashed runs that no journal refers to.

    Only names of the exact form <output>.__staging-<12 hex> or <output>.__old-<12 hex>.
    """
    base = output.rstrip("/")
    found = []
    for sibling in siblings:
        for suffix in (STAGING, RETIRED):
            if sibling.startswith(base + suffix):
                run = sibling[len(base + suffix):]
                if RUN_ID.match(run) and run != journal_run:
                    found.append(sibling)
    return sorted(found)


def legacy_swap(output: str, siblings: Iterable[str], exists_output: bool) -> List[Tuple[str, str, str]]:
    """Finish a swap of sparkprep 0.1.0 (no journal) that crashed between its two renames.

    It left the output missing, the old table in <output>.__old-<id> and the complete new
    one (its report was written before the swap) in <output>.__staging-<id>.
    """
    if exists_output:
        return []
    base = output.rstrip("/")
    siblings = set(siblings)
    for sibling in sorted(siblings):
        if sibling.startswith(base + RETIRED) and RUN_ID.match(sibling[len(base + RETIRED):]):
            run = sibling[len(base + RETIRED):]
            staging = base + STAGING + run
            if staging in siblings:
                return [("rename", staging, base), ("delete", sibling, "")]
            return [("rename", sibling, base)]
    return []


def create_exclusive_file(path: str, text: str) -> bool:
    """Create a local file only if it does not exist (O_EXCL: atomic); False if it does."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    try:
        handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    return True


def lock_text(run_id: str) -> str:
    """What a lock file says about its holder."""
    return json.dumps({"run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(),
                       "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def lock_holder_alive(text: Optional[str]) -> bool:
    """False only when the holder provably died: same host, and its pid is gone."""
    holder = json_object(text)
    if not holder or holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, TypeError, ValueError):
        return True
    return True


def acquire_lock(create: Callable[[str], bool], read: Callable[[], Optional[str]], delete: Callable[[], None],
                 where: str, run_id: str) -> None:
    """Take a lock through an exclusive create; take over a dead holder's lock; Locked otherwise.

    create(text) creates the lock file only if it does not exist; read() and delete() act on it.
    """
    text = lock_text(run_id)
    if create(text):
        return
    held = read()
    if lock_holder_alive(held):
        raise Locked(locked_message(where, held))
    delete()  # its holder died on this host
    if not create(text):
        raise Locked(locked_message(where, read()))


def release_lock(read: Callable[[], Optional[str]], delete: Callable[[], None], run_id: str) -> None:
    """Delete the lock only if this run holds it."""
    held = json_object(read())
    if held and held.get("run_id") == run_id:
        delete()


def locked_message(lock_uri: str, text: Optional[str]) -> str:
    holder = json_object(text) or {}
    return (f"another sparkprep run is writing this output (lock {lock_uri}: run {holder.get('run_id')}, "
            f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('started')}); "
            "wait for it, or delete the lock file if that run is dead")
