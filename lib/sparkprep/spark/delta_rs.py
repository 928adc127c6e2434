"""Delta tables without Delta's jars, through the `deltalake` package (delta-rs).

Reading: the live files the log lists, with their partition values. Writing: Spark writes
parquet files into <table>/run-<run id>/, every check runs on them, and the driver commits
them as the table's next version in one transaction; a failed run's files are deleted, and
are never referenced by the log.

A run killed before its commit leaves its directory behind. Until the commit is attempted the
directory holds RUN_MARK, written before any data file, so the next run can prove the directory
is a killed run's (ours, and never in the log) and delete it (sparkprep.spark.tables.recover_table),
or, when it also holds a resume record (ownership.RESUME), reuse the rows of its committed tasks
(the pipeline: sparkprep.spark.committed). The mark is deleted before the commit, so a directory
the log may hold never carries it.
"""

from __future__ import annotations

import json
import re
from typing import Callable, Dict, List, Optional, Sequence

import pyarrow.parquet as pq
from pyspark.sql import DataFrame, DataFrameWriter, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema

from sparkprep.errors import UsageError
from sparkprep.spark import faults, ownership
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.uris import arrow_filesystem

DELTA_LOG = "_delta_log"
RUN_DIR = re.compile(r"^run-[0-9a-f]{12}$")  # a run's data directory in the table: run-<run id>
RUN_MARK = "_sparkprep_run.json"  # inside it until the commit is attempted


def is_delta_table(fs: HadoopFS, uri: str) -> bool:
    return fs.exists(f"{uri.rstrip('/')}/{DELTA_LOG}")


def killed_runs(fs: HadoopFS, uri: str) -> List[str]:
    """The data directories (URIs) that runs killed before their commit left in this Delta table's directory:
    named run-<run id> and holding RUN_MARK."""
    return [child for child in fs.children(uri)
            if RUN_DIR.match(child.rstrip("/").rsplit("/", 1)[-1]) and fs.exists(f"{child}/{RUN_MARK}")]


def run_dir(table: str, run_id: str) -> str:
    """A run's data directory in the table."""
    return f"{table.rstrip('/')}/run-{run_id}"


def open_run_dir(fs: HadoopFS, data_dir: str, run_id: str) -> None:
    """Mark a run's data directory as this run's, before anything is written into it."""
    fs.write_text(f"{data_dir}/{RUN_MARK}", json.dumps({"run_id": run_id}))


def discard_run_dir(fs: HadoopFS, data_dir: str) -> None:
    """Delete a run's data directory that still carries its mark (its commit was never attempted)."""
    if fs.exists(f"{data_dir}/{RUN_MARK}"):
        fs.delete(data_dir)


def read_delta_files(spark: SparkSession, uri: str) -> DataFrame:
    """Read the live files of a Delta table listed by deltalake, adding partition values."""
    import pyarrow as pa
    from deltalake import DeltaTable

    refusal = (f"--input: the Delta table {uri} has deletion vectors enabled, which this reader (Delta without "
               "the Spark jars) does not apply, so deleted rows would come back; run with Delta's jars "
               "(conf/emr-delta.conf) or purge them first (REORG TABLE ... APPLY (PURGE))")
    try:
        table = DeltaTable(uri)
    except Exception as exc:  # noqa: BLE001 - delta-rs refuses reader features it lacks
        if "eletionVector" in str(exc):
            raise UsageError(refusal) from None
        raise
    if "deletionVectors" in (table.protocol().reader_features or []):
        raise UsageError(refusal)
    actions = pa.table(table.get_add_actions(flatten=True))
    partitions = table.metadata().partition_columns
    schema = table.schema().to_arrow()
    groups: Dict[tuple, List[str]] = {}
    for row in actions.to_pylist():
        values = tuple(row[f"partition.{c}"] for c in partitions)
        groups.setdefault(values, []).append(f"{uri.rstrip('/')}/{row['path']}")
    frames = []
    for values, files in sorted(groups.items(), key=lambda kv: [str(v) for v in kv[0]]):
        frame = spark.read.parquet(*files)
        for column, value in zip(partitions, values):
            frame = frame.withColumn(column, F.lit(value).cast("string"))
        frames.append(frame.select(*[pa_field.name for pa_field in schema]))
    if not frames:
        raise ValueError(f"Delta table {uri} has no data files")
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def write_delta_rs(spark: SparkSession, fs: HadoopFS, df: DataFrame, writer: DataFrameWriter, output: str,
                   run_id: str, finish: Callable[[DataFrame], dict], partition_by: Optional[str], description: str,
                   side: Sequence[str] = (), resumable: Optional[str] = None) -> dict:
    """Write df's files (writer: Spark's, partitioned) into output/run-<run_id>, call finish on them (it
    raises to stop the commit), then commit them as the table's new version; returns finish's report.
    side: names of side tables in the directory, deleted before the commit (the caller writes them after).
    resumable: the resume record put beside the files while Spark writes them (sparkprep.spark.committed)."""
    from deltalake import DeltaTable, Schema
    from deltalake.exceptions import CommitFailedError
    from deltalake.transaction import CommitProperties, Transaction, create_table_with_add_actions

    exists = is_delta_table(fs, output)
    if not exists and any(not RUN_DIR.match(child.rsplit("/", 1)[-1]) for child in fs.children(output)):
        raise UsageError(f"--format delta: expected a new path or a Delta table, got {output!r}, a parquet table; "
                         "pick another path")
    data_dir = run_dir(output, run_id)
    try:
        open_run_dir(fs, data_dir, run_id)  # before any data file
        if resumable is not None:
            fs.write_text(f"{data_dir}/{ownership.RESUME}", resumable)
        writer.mode("append").parquet(data_dir)  # into the directory that holds the mark
        for name in ownership.RESUME_NAMES if resumable is not None else ():  # whole: nothing is for a later run
            if fs.exists(f"{data_dir}/{name}"):
                fs.delete(f"{data_dir}/{name}")
        report = finish(spark.read.parquet(data_dir))
        schema = Schema.from_arrow(to_arrow_schema(df.schema))
        actions = [_add_action(output, uri, size, mtime, partition_by)
                   for uri, size, mtime in fs.list_files(data_dir, ".parquet")]
        report["output"]["delta_writer"] = "deltalake (delta-rs) commit of Spark-written parquet"
        partitions = [partition_by] if partition_by else None
        table = DeltaTable(output) if exists else None
        # The txn action: this run's commit is version N of app "sparkprep" for this table. A commit
        # retried after an answer was lost is seen as applied (the table already holds N, from this
        # run), never applied twice.
        txn = Transaction(app_id=TXN_APP, version=((table.transaction_version(TXN_APP) or 0) if table else 0) + 1)
        commit = CommitProperties(custom_metadata={"sparkprep": description or "{}", "sparkprep_run": run_id},
                                  app_transactions=[txn])
        for name in side:  # a stale listing state must never outlive the rows it described
            fs.delete(f"{output}/{name}")
        # from here the log may come to hold the directory: without its mark, no later run deletes it
        fs.delete(f"{data_dir}/{RUN_MARK}")
        try:
            if table is not None:
                faults.driver_point("delta-snapshot")
                table.create_write_transaction(actions, mode="overwrite", schema=schema, partition_by=partitions,
                                               commit_properties=commit)
            else:
                create_table_with_add_actions(output, schema, actions, mode="error", partition_by=partitions,
                                              description=description or None, commit_properties=commit)
        except CommitFailedError as exc:
            if not _committed_by(output, run_id, txn):  # another writer committed first: its version stands
                raise ownership.Locked(f"another writer committed to the Delta table {output} while this run wrote "
                                       f"it (delta-rs: {str(exc).splitlines()[0]}); this run committed nothing and "
                                       "its files were removed: re-run to write on top of that version") from None
    except BaseException:
        if not _committed_by(output, run_id, None):
            fs.delete(data_dir)  # never referenced by the log: safe to drop
        raise
    report["output"]["delta_version"] = DeltaTable(output).version()
    report["output"]["delta_txn"] = {"app_id": txn.app_id, "version": txn.version}
    return report


TXN_APP = "sparkprep"  # the Delta txn app id of sparkprep's commits


def _committed_by(output: str, run_id: str, txn) -> bool:
    """Whether the table's newest commit is this run's (and holds its txn version, when given)."""
    from deltalake import DeltaTable

    try:
        table = DeltaTable(output)
        newest = table.history(1)[0]
    except Exception:  # noqa: BLE001 - no table, no log: nothing of this run is committed
        return False
    return newest.get("sparkprep_run") == run_id and (txn is None or table.transaction_version(TXN_APP) == txn.version)


def _add_action(table: str, uri: str, size: int, mtime_ms: int, partition_by: Optional[str]):
    """An AddAction for one Spark-written file, with its row count from the parquet footer."""
    from deltalake.transaction import AddAction

    rel = uri[len(table.rstrip("/")) + 1:]
    partition_values = {}
    if partition_by:
        segment = next(p for p in rel.split("/") if p.startswith(partition_by + "="))
        partition_values[partition_by] = segment.split("=", 1)[1]
    filesystem, path = arrow_filesystem(uri)
    with filesystem.open_input_file(path) as handle:
        rows = pq.ParquetFile(handle).metadata.num_rows
    return AddAction(rel, size, partition_values, mtime_ms, True, json.dumps({"numRecords": rows}))
