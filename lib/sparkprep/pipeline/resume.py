"""Resuming a pipeline whose driver was killed in its one pass: reuse the files its finished tasks wrote.

Where the workers write both tables' files themselves (local parquet output), the driver first
writes into each staging directory ownership.RESUME (the settings that decide a row and the
sparkprep version) and, beside the split table's files, the listing it planned from (path, size,
mtime). Each task that closed its files records them in <split staging>/_sparkprep_done/. A run
killed before publishing leaves those directories; the next run with the same settings keeps them
(tables.claimed_output(resumes=True)), and here:
- a finished task is reused when its record's files are all there with the rows it counted, and
  every input file it covered is listed now with the size and mtime the killed run listed;
- its files are moved (renamed) into this run's staging directories and recorded again there, so
  a second kill loses nothing either; the one pass then reads only the other files;
- what is not reused is deleted with the old directories.
The published tables equal an undisturbed run's, row for row (tests/faults/test_faults.py).
Plain files and pyarrow only: the pipeline's glue calls it on the driver. `carried` does the same
for --incremental: the previous tables' files of kept rows go into the new staging unread by Spark.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sparkprep import __version__
from sparkprep.pipeline.one_pass import record_done
from sparkprep.spark.ownership import RESUME, RESUME_PLANNED

DONE = "_sparkprep_done"            # inside the split table's staging directory: one JSON per finished task
PLANNED = RESUME_PLANNED  # beside RESUME there: (path, size, version) the run planned from
Versions = Dict[str, Tuple[int, Optional[str]]]  # path -> (size, version: the mtime in ns)


@dataclass
class Reused:
    """What a run took over from killed runs' staging directories."""

    paths: Set[str] = field(default_factory=set)   # input files whose rows were reused (not read again)
    files: List[str] = field(default_factory=list)  # the moved files, at their new place (both tables)
    tasks: int = 0
    dropped_tasks: int = 0                           # finished, but not reusable (a file changed, a file missing)
    sources: List[str] = field(default_factory=list)
    refused: List[Dict[str, str]] = field(default_factory=list)  # killed runs' staging not reused: from, why

    def as_dict(self) -> dict:
        return {"from": self.sources, "tasks_reused": self.tasks, "tasks_dropped": self.dropped_tasks,
                "files_reused": len(self.paths), "data_files_moved": len(self.files),
                **({"not_reused": self.refused} if self.refused else {})}


def refusal(record: Optional[dict], settings: dict, planned: bool) -> Optional[str]:
    """Why a killed run's staging directory cannot be resumed from (its RESUME record, this run's
    settings, whether its planned listing is there), or None when it can."""
    if not record:
        return "it has no resume record"
    if record.get("sparkprep") != __version__:
        return f"it was written by sparkprep {record.get('sparkprep')}, this is {__version__}"
    before = record.get("settings") or {}
    changed = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
    if changed:
        return f"settings that decide a row changed since the killed run: {', '.join(changed)}"
    return None if planned else "it has no planned listing"


def record_text(settings: dict) -> str:
    """The RESUME record of a run with these settings: what a later run compares (refusal)."""
    return json.dumps({"settings": settings, "sparkprep": __version__}, sort_keys=True)


def start(roots: Sequence[str], settings: dict, versions: Versions) -> None:
    """Before the one pass: mark this run's staging directories (roots: the split table's first) as
    resumable with these settings, and keep the listing it plans from beside the split table's."""
    text = record_text(settings)
    for root in roots:
        os.makedirs(root, exist_ok=True)
        _write_whole(os.path.join(root, RESUME), text)
    paths = sorted(versions)
    pq.write_table(pa.table({"path": pa.array(paths, pa.string()),
                             "size": pa.array([versions[p][0] for p in paths], pa.int64()),
                             "version": pa.array([versions[p][1] for p in paths], pa.string())}),
                   os.path.join(roots[0], PLANNED))


def harvest(old_splits: Iterable[str], old_processed: Iterable[str], roots: Tuple[str, str], settings: dict,
            versions: Versions) -> Reused:
    """Move the reusable files of killed runs' staging directories (old_splits, old_processed: local
    paths) into this run's (roots: split table's, processed table's) and delete the old directories."""
    reused = Reused()
    old_splits, old_processed = list(old_splits), list(old_processed)
    for old in old_splits:
        record = _json(os.path.join(old, RESUME))
        planned = os.path.join(old, PLANNED)
        why = refusal(record, settings, os.path.exists(planned))
        if why is not None:
            reused.refused.append({"from": old, "why": why})
            continue
        table = pq.read_table(planned)
        before = {p: (s, v) for p, s, v in zip(*(table.column(c).to_pylist() for c in ("path", "size", "version")))}
        for task in _finished_tasks(os.path.join(old, DONE)):
            covered = _covered(task["files"])
            if covered is None or covered & reused.paths or any(
                    p not in versions or versions[p] != before.get(p) or versions[p][1] is None for p in covered):
                reused.dropped_tasks += 1
                continue
            moved = [(index, split, _move(path, roots[index], split), rows)
                     for index, split, path, rows in task["files"]]
            record_done(os.path.join(roots[0], DONE), f"resumed-{task['task']}", moved)
            reused.paths |= covered
            reused.files += [path for _, _, path, _ in moved]
            reused.tasks += 1
        reused.sources.append(old)
    for old in old_splits + old_processed:
        shutil.rmtree(old, ignore_errors=True)
    return reused


def carried(previous: str, root: str, kept: Set[str]) -> List[str]:
    """--incremental where the workers write: the previous table's (a local directory) rows of the `kept`
    input files, put in this run's staging `root` without going through Spark. A data file all of whose
    rows are kept is hard-linked (copied where a link fails); one with some is rewritten with those rows
    only (the same schema, metadata and compression per column); the others are left. The previous
    table is retired when this one is published: a link keeps its bytes. Returns the files put there."""
    put: List[str] = []
    wanted = pa.array(sorted(kept), pa.string())
    for folder, dirs, names in os.walk(previous):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))  # the listing state, Spark's temporaries
        for name in sorted(n for n in names if n.endswith(".parquet") and not n.startswith(("_", "."))):
            path = os.path.join(folder, name)
            keep = pc.is_in(pq.read_table(path, columns=["path"]).column("path"), value_set=wanted)
            count = pc.sum(keep).as_py() or 0
            if not count:
                continue
            target = os.path.join(root, os.path.relpath(folder, previous), f"kept-{uuid.uuid4().hex[:8]}-{name}")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if count == len(keep):
                try:
                    os.link(path, target)
                except OSError:
                    shutil.copyfile(path, target)
            else:
                source = pq.ParquetFile(path)
                codecs = {} if source.metadata.num_row_groups == 0 else {
                    chunk.path_in_schema.split(".")[0]: _codec(chunk.compression)
                    for chunk in (source.metadata.row_group(0).column(i)
                                  for i in range(source.metadata.num_columns))}
                pq.write_table(source.read().filter(keep), target, compression=codecs or "snappy")
            put.append(target)
    return put


def _codec(parquet_name: str) -> str:
    return "none" if parquet_name == "UNCOMPRESSED" else parquet_name.lower()


def finish(roots: Sequence[str]) -> None:
    """After the pass: this run's records go (its unreported files are deleted by the caller)."""
    shutil.rmtree(os.path.join(roots[0], DONE), ignore_errors=True)


def _finished_tasks(directory: str) -> List[dict]:
    """The finished tasks' records, in name order (a half-written one is never there: it is renamed in whole)."""
    if not os.path.isdir(directory):
        return []
    records = [_json(os.path.join(directory, name)) for name in sorted(os.listdir(directory)) if name.endswith(".json")]
    return [r for r in records if r and isinstance(r.get("files"), list)]


def _covered(files: List[list]) -> Optional[Set[str]]:
    """The input files a finished task's split-table files hold rows of; None when any of its files is
    missing or holds another number of rows than the task counted."""
    paths: Set[str] = set()
    for index, _, path, rows in files:
        try:
            if pq.ParquetFile(path).metadata.num_rows != rows:
                return None
            if index == 0:
                paths |= set(pq.read_table(path, columns=["path"]).column("path").to_pylist())
        except (OSError, pa.ArrowInvalid):
            return None
    return paths


def _move(path: str, root: str, split: str) -> str:
    directory = os.path.join(root, f"split={split}")
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, os.path.basename(path))
    os.replace(path, target)
    return target


def _json(path: str) -> Optional[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _write_whole(path: str, text: str) -> None:
    with open(path + ".tmp", "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(path + ".tmp", path)
