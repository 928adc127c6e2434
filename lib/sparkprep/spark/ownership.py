"""Which outputs sparkprep may replace, and how a replacement is published and recovered: pure Python.

The rules (docs/safety.md):
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
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from sparkprep import __version__
from sparkprep.uris import same_uri

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
# Inside a staging directory whose files a later run may reuse (the pipeline's one pass: sparkprep.pipeline.resume)
RESUME = "_sparkprep_resume.json"
RESUME_PLANNED = "_sparkprep_planned.parquet"  # beside it: the listing (path, size, version) the run planned from
RESUME_ROWS = "_sparkprep_rows"  # the one pass written by Spark: its rows, before either table (parquet)
RESUME_NAMES = (RESUME, RESUME_PLANNED, RESUME_ROWS)  # for a later run only: deleted once the table is whole
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


def create_exclusive_s3(bucket: str, key: str, text: str, client) -> bool:
    """PUT only if the key does not exist (If-None-Match: *, S3's conditional write); False if it does.

    A store that ignores the condition would let two runs both "create" the lock, so the
    condition is checked once more on the object just written: a second conditional PUT must
    be refused. If it is not, the store cannot hold a lock: RuntimeError, nothing published.
    """
    from botocore.exceptions import ClientError

    def put() -> bool:
        try:
            client.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"), IfNoneMatch="*")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412",
                                                              "ConditionalRequestConflict"):
                return False
            raise
        return True

    if not put():
        return False
    if put():
        raise RuntimeError(f"s3://{bucket}/{key}: this S3 store ignores conditional writes (If-None-Match), so "
                           "two runs could both hold the lock; write to a store that honours them (AWS S3, MinIO)")
    return True


# -- the lock: one run at a time per output -------------------------------------------------------------
#
# A lock file names its holder: the run id, and what proves on this machine whether the holder's
# process still runs (host name, boot id, PID-namespace inode, pid and the process's start time).
# A lock is taken over only when its holder provably died: every identity field matches this
# machine and the process is gone (or its pid now belongs to a process started later). Anything
# else (another machine or container with the same host name, another boot, an older lock
# without these fields) is treated as alive and refused, naming the holder and the way out.
#
# The takeover is atomic on any store with an exclusive create (O_EXCL locally, HDFS's
# create(overwrite=false), S3's If-None-Match): a run that found a dead holder's lock first
# creates the takeover marker <lock>.takeover-<digest of that lock's text>. Only one run can
# create it, so only one run replaces that generation of the lock; it reads the lock again,
# and deletes it only if it still holds the dead holder's text (no one else may change it
# while the marker exists). Then it creates its own lock with the exclusive create, as usual.

BOOT_ID = "/proc/sys/kernel/random/boot_id"
TAKEOVER = ".takeover-"


@dataclass(frozen=True)
class LockFiles:
    """The three operations a lock needs on a store, by name (a URI or a path below the output)."""

    create: Callable[[str, str], bool]    # create(name, text): exclusive; False if it exists
    read: Callable[[str], Optional[str]]  # read(name): the text, None if missing or unreadable
    delete: Callable[[str], None]


def _read_first_line(path: str) -> Optional[str]:
    try:
        with open(path, encoding="ascii") as handle:
            return handle.readline().strip() or None
    except OSError:
        return None


def process_start(pid: int) -> Optional[int]:
    """When a process started (clock ticks after boot, /proc/<pid>/stat field 22), None if unknown or gone."""
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except (OSError, ValueError):
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # after the command name, which may hold spaces
    try:
        return int(fields[19])  # field 22 of the whole line: starttime
    except (IndexError, ValueError):
        return None


def pid_namespace() -> Optional[int]:
    """The inode of this process's PID namespace: two containers on one host differ here."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def holder_identity() -> Dict[str, Any]:
    """What a lock records about the process that holds it."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "boot_id": _read_first_line(BOOT_ID), "pid_ns": pid_namespace(),
            "pid": pid, "pid_start": process_start(pid)}


def lock_text(run_id: str) -> str:
    """What a lock file says about its holder."""
    return json.dumps({"run_id": run_id, **holder_identity(),
                       "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def holder_state(text: Optional[str], here: Optional[Dict[str, Any]] = None) -> str:
    """'dead' only when the holder provably died on this machine; 'alive' when its process runs;
    'unknown' when this process cannot tell (another machine, container or boot, or a lock without
    the identity fields). Only 'dead' may be taken over."""
    holder = json_object(text)
    here = here or holder_identity()
    if not holder:
        return "unknown"
    for field_name in ("host", "boot_id", "pid_ns"):
        if holder.get(field_name) is None or holder.get(field_name) != here.get(field_name):
            return "unknown"
    try:
        pid = int(holder["pid"])
        os.kill(pid, 0)
    except ProcessLookupError:
        return "dead"
    except PermissionError:
        pass  # it exists, under another user
    except (KeyError, TypeError, ValueError):
        return "unknown"
    started = process_start(pid)
    if started is not None and holder.get("pid_start") is not None and started != holder["pid_start"]:
        return "dead"  # the pid was reused by a process started later
    return "alive"


def lock_holder_alive(text: Optional[str]) -> bool:
    """False only when the holder provably died (holder_state 'dead')."""
    return holder_state(text) != "dead"


def acquire_lock(files: LockFiles, lock: str, where: str, run_id: str) -> None:
    """Take the lock through an exclusive create; take over a provably dead holder's lock; Locked otherwise."""
    text = lock_text(run_id)
    if files.create(lock, text):
        return
    held = files.read(lock)
    if held is None:  # released between our create and our read: one more try, as any run would
        if files.create(lock, text):
            return
        held = files.read(lock)
    if holder_state(held) != "dead":
        raise Locked(locked_message(where, held))
    if not take_over(files, lock, held, text):
        now = files.read(lock)
        if now == held:  # the marker is there: another run is taking over, or died doing it
            marker = takeover_marker(lock, held)
            raise Locked(f"{locked_message(where, held)} (a takeover marker is there: {marker.rsplit('/', 1)[-1]}; "
                         "if no other sparkprep run is running, delete it too)")
        raise Locked(locked_message(where, now))


def takeover_marker(lock: str, held: str) -> str:
    """The marker that gives one run the right to replace this generation of the lock."""
    import hashlib

    return f"{lock}{TAKEOVER}{hashlib.sha256(held.encode('utf-8')).hexdigest()[:16]}"


def take_over(files: LockFiles, lock: str, held: str, text: str) -> bool:
    """Replace the lock whose text is `held` (a dead holder's) with `text`; False when another run
    got there first (it took over, or it holds the takeover marker)."""
    marker = takeover_marker(lock, held)
    if not files.create(marker, text):
        return False  # another run is taking over this very generation
    try:
        if files.read(lock) != held:  # someone replaced it since we read it
            return False
        files.delete(lock)  # still the dead holder's: only the marker's holder may delete it
        return files.create(lock, text)
    finally:
        files.delete(marker)


def release_lock(files: LockFiles, lock: str, run_id: str) -> None:
    """Delete the lock only if this run holds it."""
    held = json_object(files.read(lock))
    if held and held.get("run_id") == run_id:
        files.delete(lock)


def locked_message(lock_uri: str, text: Optional[str]) -> str:
    """Who holds the lock, whether this process can tell that it is alive, and the way out."""
    holder = json_object(text) or {}
    state = holder_state(text)
    why = ("it is running" if state == "alive" else
           "sparkprep cannot tell whether it is alive (it ran on another machine, container or boot, or the lock "
           "is from an older sparkprep)" if state == "unknown" else "another run is taking its lock over")
    return (f"another sparkprep run is writing this output (lock {lock_uri}: run {holder.get('run_id')}, "
            f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('started')}); {why}: "
            "wait for it, or, if you know that run is dead, delete the lock file by hand and run again")
