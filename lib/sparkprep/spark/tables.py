"""Read and write sparkprep tables (parquet or Delta, partitioned by split), replacing safely.

A run first claims its output (`claimed_output`): it takes the lock, finishes any swap a
crashed run left half done, and refuses a path that is not empty and not a sparkprep
table (see sparkprep.spark.ownership). Then:
- parquet: Spark writes into a sibling staging directory; the report and the marker are
  added and every check runs (`finish` raises to stop the publish). Only then is the
  swap journalled and done: old output renamed away, staging renamed in, old deleted.
- Delta with the Spark extension: one overwrite transaction.
- Delta without Delta jars: Spark writes parquet files under the table directory and
  the driver commits them in one transaction with the `deltalake` package; files of a
  failed run are never referenced by the log (sparkprep.spark.delta_rs).
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from pyspark.sql import DataFrame, SparkSession

from sparkprep.errors import UsageError
from sparkprep.spark import faults, ownership
from sparkprep.spark.delta_rs import (discard_run_dir, is_delta_table, killed_runs, read_delta_files, run_dir,
                                     write_delta_rs)
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.spark.ownership import MARKER, REPORT_NAME
from sparkprep.spark.session import delta_jars_active
from sparkprep.uris import arrow_filesystem, redact_uri

# Row groups small enough that a table of images splits into several tasks per core
# when a later job reads it (Spark splits parquet files only at row-group boundaries).
ROW_GROUP_BYTES = 32 << 20

# finish(staged table) -> run report; called after the data is written, before it is published.
Finisher = Callable[[DataFrame], dict]


@dataclass(frozen=True)
class Claim:
    """An output this run holds the lock of: its qualified URI, the run id and what it was."""

    uri: str
    run_id: str
    fmt: str
    job: str
    state: str  # new | owned | legacy (sparkprep.ownership.classify_output)
    kind: str = ownership.TABLE
    resumable: Tuple[str, ...] = ()  # staging directories of killed runs kept for this run to reuse, then delete


# Test hook: called after each publish step with its index; a test makes it raise to act as a crash.
def _after_step(index: int) -> None:
    faults.driver_point(f"step{index}")


@contextlib.contextmanager
def claimed_output(spark: SparkSession, output: str, fmt: str, job: str,
                   kind: str = ownership.TABLE, resumes: bool = False) -> Iterator[Claim]:
    """Hold the output's lock, finish a crashed run's swap, and refuse an output that is not ours.

    resumes: a killed run's staging directory holding ownership.RESUME is kept (Claim.resumable)
    instead of deleted; the caller reuses what it can and deletes them.

    Raises ownership.Locked (exit 1) while another live run holds the lock, and
    UsageError (exit 2) for a path that is not empty and not a sparkprep output of this kind
    (a table, or a directory published whole like one: ownership.FEATURES).
    """
    try:
        check_table_output(output, fmt)  # S3: before any Hadoop call, which may lack s3a here
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    fs = HadoopFS(spark)
    uri = fs.qualify(output).rstrip("/")
    run_id = uuid.uuid4().hex[:12]
    lock = ownership.swap_paths(uri, run_id)["lock"]
    files = ownership.LockFiles(fs.create_exclusive, fs.read_text, fs.delete)
    try:
        _table_state(fs, uri, kind)  # refuse a foreign output before writing even a lock beside it
    except UsageError:
        if fs.exists(lock):  # a run holds it: what looks foreign is that run's first, unmarked write
            raise ownership.Locked(ownership.locked_message(lock, fs.read_text(lock))) from None
        raise
    ownership.acquire_lock(files, lock, lock, run_id)
    try:
        kept = recover_table(fs, uri, resumes)
        yield Claim(uri, run_id, fmt, job, _table_state(fs, uri, kind), kind, kept)
    finally:
        ownership.release_lock(files, lock, run_id)


def claim_directory(fs: HadoopFS, root: str, kind: str) -> None:
    """Refuse a directory that is not empty and not this kind's output (a pipeline's root, a report's
    directory); mark a new one as ours."""
    names = [child.rsplit("/", 1)[-1] for child in fs.children(root)]
    try:
        state = ownership.classify_output(names, lambda name: fs.read_text(f"{root}/{name}"), kind, root)
    except ownership.NotOurs as exc:
        raise UsageError(str(exc)) from None
    if state == "new":
        fs.write_text(f"{root}/{MARKER}", json.dumps(ownership.marker(kind, "directory", kind, "-"), indent=2))


def _table_state(fs: HadoopFS, uri: str, kind: str = ownership.TABLE) -> str:
    if fs.exists(uri) and not fs.is_dir(uri):
        raise UsageError(f"--output: expected a directory, got a file: {uri}")
    children = fs.children(uri)
    names = [child.rsplit("/", 1)[-1] for child in children]
    if MARKER not in names:  # a Delta run killed before the first commit left only its data directories: ours
        killed = set(killed_runs(fs, uri))
        names = [child.rsplit("/", 1)[-1] for child in children if child not in killed]
    try:
        return ownership.classify_output(names, lambda name: fs.read_text(f"{uri}/{name}"), kind, uri)
    except ownership.NotOurs as exc:
        raise UsageError(str(exc)) from None


def recover_table(fs: HadoopFS, uri: str, resumes: bool = False) -> Tuple[str, ...]:
    """Finish a swap a crashed run left half done, and delete stranded staging/old directories and the data
    directories of Delta runs killed before their commit (resumes: except those holding ownership.RESUME,
    which are returned)."""
    done: List[tuple] = []
    journal_uri = uri + ownership.JOURNAL
    journal = ownership.json_object(fs.read_text(journal_uri))
    run = journal.get("run_id") if journal else None
    if journal and all(k in journal for k in ("output", "staging", "retired", "journal")) and \
            ownership.same_uri(journal["output"], uri):
        done += _run_steps(fs, ownership.swap_steps(journal, fs.exists))
    elif fs.exists(journal_uri):  # half-written: the swap never started
        fs.delete(journal_uri)
        done.append(("delete", journal_uri, ""))
    parent = uri.rsplit("/", 1)[0]
    done += _run_steps(fs, ownership.legacy_swap(uri, fs.children(parent), fs.exists(uri)))
    kept = []
    killed = killed_runs(fs, uri)
    for path in ownership.stranded(uri, fs.children(parent), run) + killed:
        if resumes and (ownership.STAGING in path or path in killed) and fs.exists(f"{path}/{ownership.RESUME}"):
            kept.append(path)
            continue
        fs.delete(path)
        done.append(("delete", path, ""))
    return tuple(kept)


def _run_steps(fs: HadoopFS, steps: List[tuple]) -> List[tuple]:
    for index, (op, path, target) in enumerate(steps):
        if op == "rename":
            fs.rename(path, target)
        else:
            fs.delete(path)
        _after_step(index)
    return steps


def read_input_table(spark: SparkSession, uri: str, fmt: str = "auto") -> Tuple[DataFrame, str, bool]:
    """A job's --input table: (the DataFrame, its qualified URI, whether it is Delta). UsageError
    when --format names the other format."""
    qualified = HadoopFS(spark).qualify(uri)
    delta = is_delta_table(HadoopFS(spark), qualified)
    if fmt != "auto" and fmt != ("delta" if delta else "parquet"):
        raise UsageError(f"--format: expected {'delta' if delta else 'parquet'} for {uri}, got {fmt}")
    return read_table(spark, qualified), qualified, delta


def read_table(spark: SparkSession, uri: str) -> DataFrame:
    """A sparkprep table as a DataFrame: Delta (with or without Delta jars) or parquet."""
    fs = HadoopFS(spark)
    if not is_delta_table(fs, uri):
        return spark.read.parquet(uri)
    if delta_jars_active(spark):
        return spark.read.format("delta").load(uri)
    return read_delta_files(spark, fs.qualify(uri))


def payload_options(column: Optional[str], already_compressed: bool) -> Dict[str, str]:
    """Parquet writer options for a table whose bytes are mostly one binary payload column.

    Dictionary encoding is never worth trying on image bytes (measured: ~35% of the write
    time), and JPEG/PNG/WebP bytes do not compress, so such tables are written
    uncompressed; raw pixels keep snappy.
    """
    if not column:
        return {}
    options = {f"parquet.enable.dictionary#{column}": "false"}
    if already_compressed:
        options["compression"] = "uncompressed"
    return options


def staging_uri(claim: Claim) -> str:
    """Where a parquet table of this run is written before it is published."""
    return ownership.swap_paths(claim.uri, claim.run_id)["staging"]


def discard_unpublished(fs: HadoopFS, claim: Claim) -> None:
    """Delete what this run wrote for a table it did not publish: its staging directory (parquet), or its
    run directory while it still carries its mark (Delta without Delta's jars: never committed)."""
    fs.delete(staging_uri(claim))
    if claim.fmt == "delta":
        discard_run_dir(fs, run_dir(claim.uri, claim.run_id))


def own_files_dir(claim: Claim) -> str:
    """Where this run's table files go before they are published: the staging directory (parquet), or
    run-<run id> inside the table (Delta without Delta's jars: sparkprep.spark.delta_rs)."""
    return run_dir(claim.uri, claim.run_id) if claim.fmt == "delta" else staging_uri(claim)


def write_table(spark: SparkSession, df: Optional[DataFrame], claim: Claim, finish: Finisher,
                partition_by: Optional[str] = "split", description: str = "",
                options: Optional[Dict[str, str]] = None, pages: Optional[Dict[str, str]] = None,
                side: Optional[Dict[str, DataFrame]] = None, resumable: Optional[str] = None) -> dict:
    """Write df to the claimed output, call finish on the written rows (it raises to stop the
    publish), store its report, the pages finish put in `pages` (name -> text, e.g. report.html)
    and the marker, then publish. `side`: parquet directories written into the table's directory
    (name -> rows; names start with `_`, so no table reader sees them), published with it.

    df None: a parquet table whose files are already in staging_uri(claim) (written by
    Python workers); it is checked and published the same way. resumable: a parquet table's staging
    directory gets this ownership.RESUME record before Spark writes into it (appending), so that a killed
    run's committed tasks can be found and reused (sparkprep.spark.committed).
    """
    pages = {} if pages is None else pages
    fs = HadoopFS(spark)
    output, run_id, fmt = claim.uri, claim.run_id, claim.fmt
    marker = json.dumps(ownership.marker(ownership.TABLE, fmt, claim.job, run_id), indent=2)
    if df is None:
        if fmt != "parquet":
            raise ValueError("write_table: files written ahead are published as parquet only")
        return _write_parquet_staged(spark, fs, None, output, run_id, finish, marker, pages, side)
    if fmt == "delta" and delta_jars_active(spark):
        # Delta's own transaction replaces the table; its checks run on the committed version
        # (Delta keeps the previous one for RESTORE). Not exercised here: no Delta jars.
        writer = (df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
                  .option("parquet.block.size", ROW_GROUP_BYTES).options(**(options or {})))
        if description:
            writer = writer.option("userMetadata", description)
        (writer.partitionBy(partition_by) if partition_by else writer).save(output)
        report = finish(spark.read.format("delta").load(output))
        report["output"]["delta_writer"] = "delta-spark"
        _write_side(fs, side, output)
        _write_pages(fs, output, report, pages)
        fs.write_text(f"{output}/{MARKER}", marker)
        return report
    writer = df.write.mode("overwrite").option("parquet.block.size", ROW_GROUP_BYTES).options(**(options or {}))
    writer = writer.partitionBy(partition_by) if partition_by else writer
    if fmt == "delta":
        report = write_delta_rs(spark, fs, df, writer, output, run_id, finish, partition_by, description,
                                tuple(side or ()), resumable)
        _write_side(fs, side, output)
        _write_pages(fs, output, report, pages)
        fs.write_text(f"{output}/{MARKER}", marker)
        return report
    if resumable is not None:
        writer = writer.mode("append")  # into this run's own staging directory, which holds the record alone
    return _write_parquet_staged(spark, fs, writer, output, run_id, finish, marker, pages, side, resumable)


def _write_pages(fs: HadoopFS, directory: str, report: dict, pages: Dict[str, str]) -> None:
    """The run report and the pages next to it (report.html)."""
    fs.write_text(f"{directory}/{REPORT_NAME}", json.dumps(report, indent=2))
    for name, text in pages.items():
        fs.write_text(f"{directory}/{name}", text)


def _write_side(fs: HadoopFS, side: Optional[Dict[str, DataFrame]], directory: str) -> None:
    """The side tables of write_table, as parquet directories in `directory`."""
    for name, frame in (side or {}).items():
        if fs.exists(f"{directory}/{name}"):
            fs.delete(f"{directory}/{name}")
        frame.write.parquet(f"{directory}/{name}")


def _write_parquet_staged(spark, fs, writer, output, run_id, finish, marker, pages, side=None, resumable=None):
    def fill(staging: str) -> dict:
        if resumable is not None:
            fs.write_text(f"{staging}/{ownership.RESUME}", resumable)
        if writer is not None:
            writer.parquet(staging)
        for name in ownership.RESUME_NAMES if resumable is not None else ():  # whole: nothing is for a later run
            if fs.exists(f"{staging}/{name}"):
                fs.delete(f"{staging}/{name}")
        _write_side(fs, side, staging)
        return finish(spark.read.parquet(staging))
    return _publish_staged(fs, output, run_id, fill, marker, pages)


def publish_directory(spark: SparkSession, claim: Claim, fill: Callable[[str], dict],
                      pages: Optional[Dict[str, str]] = None) -> dict:
    """A directory of several outputs (features: tables, CSV files, a fitted model): fill(staging)
    writes them all under the staging URI and returns the run report; the directory is then
    published whole by the table's journalled swap, with the report, pages and marker."""
    marker = json.dumps(ownership.marker(claim.kind, claim.fmt, claim.job, claim.run_id), indent=2)
    return _publish_staged(HadoopFS(spark), claim.uri, claim.run_id, fill, marker, {} if pages is None else pages)


def _publish_staged(fs, output, run_id, fill, marker, pages):
    paths = ownership.swap_paths(output, run_id)
    staging = paths["staging"]
    try:
        report = fill(staging)
        _write_pages(fs, staging, report, pages)
        fs.write_text(f"{staging}/{MARKER}", marker)
    except BaseException:
        fs.delete(staging)
        raise
    faults.driver_point("staged")
    journal = {"run_id": run_id, **{k: paths[k] for k in ("output", "staging", "retired", "journal")}}
    write_atomic(fs, paths["journal"], json.dumps(journal, indent=2))
    faults.driver_point("journal")
    _run_steps(fs, ownership.swap_steps(journal, fs.exists))
    return report


def write_atomic(fs: HadoopFS, uri: str, text: str) -> None:
    """Write a small file under a temporary name, then rename it into place."""
    temp = f"{uri}.tmp-{uuid.uuid4().hex[:8]}"
    fs.write_text(temp, text)
    if fs.exists(uri):
        fs.delete(uri)
    fs.rename(temp, uri)


def check_table_output(output: str, fmt: str) -> None:
    """Refuse to replace a parquet table on S3: a rename there is copy-then-delete, so readers and
    crashes would see a partial table. A new prefix is fine; Delta replaces by transaction."""
    if fmt != "parquet" or not re.match(r"^s3[an]?://", output):
        return
    from pyarrow import fs as pafs

    try:
        filesystem, path = arrow_filesystem(output)
        entries = filesystem.get_file_info(pafs.FileSelector(path.rstrip("/"), allow_not_found=True))
    except Exception as exc:  # noqa: BLE001 - no credentials, no bucket: say so before Spark starts
        raise ValueError(f"--output: could not check {redact_uri(output)!r} ({type(exc).__name__}: {exc})") from None
    if entries:
        raise ValueError(f"--output: {redact_uri(output)!r} exists on S3, where replacing a parquet table is not "
                         "atomic (a rename is copy-then-delete); write to a new prefix, or use --format delta")
