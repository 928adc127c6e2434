"""Read and write sparkprep tables (parquet or Delta, partitioned by split), replacing safely.

A re-run never leaves the old output half-deleted:
- parquet: Spark writes into a sibling staging directory; the report is added; only
  then is the old output renamed away, the staging directory renamed in, and the
  old one deleted.
- Delta with the Spark extension: one overwrite transaction.
- Delta without Delta jars: Spark writes parquet files under the table directory and
  the driver commits them in one transaction with the `deltalake` package; files of a
  failed run are never referenced by the log.
"""

from __future__ import annotations

import json
import uuid
from typing import Callable, Dict, List, Optional

import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession, functions as F
from pyspark.sql.pandas.types import to_arrow_schema

from sparkprep.config import UsageError
from sparkprep.listing import arrow_filesystem
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.spark.session import delta_jars_active

REPORT_NAME = "_run_report.json"
# Row groups small enough that a table of images splits into several tasks per core
# when a later job reads it (Spark splits parquet files only at row-group boundaries).
ROW_GROUP_BYTES = 32 << 20
DELTA_LOG = "_delta_log"

# finish(staged table) -> run report; called after the data is written, before it is published.
Finisher = Callable[[DataFrame], dict]


def is_delta_table(fs: HadoopFS, uri: str) -> bool:
    return fs.exists(f"{uri.rstrip('/')}/{DELTA_LOG}")


def check_replaceable(spark: SparkSession, output: str) -> None:
    """Refuse to replace an existing path that is not a table (a home directory, raw data...).

    A new path, an empty directory or an earlier sparkprep output is fine.
    """
    fs = HadoopFS(spark)
    if not fs.exists(output) or fs.is_empty_dir(output):  # e.g. a SageMaker output channel directory
        return
    markers = (REPORT_NAME, DELTA_LOG, "_SUCCESS")
    if not any(fs.exists(f"{output.rstrip('/')}/{marker}") for marker in markers):
        raise UsageError(f"--output: expected a new path or an earlier sparkprep output, got {output!r} "
                         f"(it exists and holds none of {', '.join(markers)}); refusing to replace it")


def read_table(spark: SparkSession, uri: str) -> DataFrame:
    """A sparkprep table as a DataFrame: Delta (with or without Delta jars) or parquet."""
    fs = HadoopFS(spark)
    if not is_delta_table(fs, uri):
        return spark.read.parquet(uri)
    if delta_jars_active(spark):
        return spark.read.format("delta").load(uri)
    return _read_delta_files(spark, fs.qualify(uri))


def _read_delta_files(spark: SparkSession, uri: str) -> DataFrame:
    """Read the live files of a Delta table listed by deltalake, adding partition values."""
    import pyarrow as pa
    from deltalake import DeltaTable

    table = DeltaTable(uri)
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


def write_table(spark: SparkSession, df: DataFrame, output: str, fmt: str, finish: Finisher,
                partition_by: Optional[str] = "split", description: str = "",
                options: Optional[Dict[str, str]] = None) -> dict:
    """Write df to output (replacing it safely), call finish on the written rows, store its report."""
    fs = HadoopFS(spark)
    output = fs.qualify(output)
    run_id = uuid.uuid4().hex[:12]
    if fmt == "delta" and delta_jars_active(spark):
        writer = (df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
                  .option("parquet.block.size", ROW_GROUP_BYTES).options(**(options or {})))
        if description:
            writer = writer.option("userMetadata", description)
        (writer.partitionBy(partition_by) if partition_by else writer).save(output)
        report = finish(spark.read.format("delta").load(output))
        report["output"]["delta_writer"] = "delta-spark"
        fs.write_text(f"{output}/{REPORT_NAME}", json.dumps(report, indent=2))
        return report
    writer = df.write.mode("overwrite").option("parquet.block.size", ROW_GROUP_BYTES).options(**(options or {}))
    writer = writer.partitionBy(partition_by) if partition_by else writer
    if fmt == "delta":
        return _write_delta_rs(spark, fs, df, writer, output, run_id, finish, partition_by, description)
    return _write_parquet_staged(spark, fs, writer, output, run_id, finish)


def _write_parquet_staged(spark, fs, writer, output, run_id, finish):
    staging = f"{output}.__staging-{run_id}"
    retired = f"{output}.__old-{run_id}"
    try:
        writer.parquet(staging)
        report = finish(spark.read.parquet(staging))
        fs.write_text(f"{staging}/{REPORT_NAME}", json.dumps(report, indent=2))
    except BaseException:
        fs.delete(staging)
        raise
    had_old = fs.exists(output)
    if had_old:
        fs.rename(output, retired)
    fs.rename(staging, output)
    if had_old:
        fs.delete(retired)
    return report


def _write_delta_rs(spark, fs, df, writer, output, run_id, finish, partition_by, description):
    from deltalake import DeltaTable, Schema
    from deltalake.transaction import CommitProperties, create_table_with_add_actions

    exists = fs.exists(output) and not fs.is_empty_dir(output)
    if exists and not is_delta_table(fs, output):
        raise ValueError(f"--output {output} exists and is not a Delta table; remove it or pick another path")
    data_dir = f"{output}/run-{run_id}"
    try:
        writer.parquet(data_dir)
        report = finish(spark.read.parquet(data_dir))
        schema = Schema.from_arrow(to_arrow_schema(df.schema))
        actions = [_add_action(output, uri, size, mtime, partition_by)
                   for uri, size, mtime in fs.list_files(data_dir, ".parquet")]
        report["output"]["delta_writer"] = "deltalake (delta-rs) commit of Spark-written parquet"
        commit = CommitProperties(custom_metadata={"sparkprep": description or "{}"})
        partitions = [partition_by] if partition_by else None
        if exists:
            DeltaTable(output).create_write_transaction(actions, mode="overwrite", schema=schema,
                                                         partition_by=partitions, commit_properties=commit)
        else:
            create_table_with_add_actions(output, schema, actions, mode="error", partition_by=partitions,
                                          description=description or None, commit_properties=commit)
    except BaseException:
        fs.delete(data_dir)  # never referenced by the log: safe to drop
        raise
    report["output"]["delta_version"] = DeltaTable(output).version()
    fs.write_text(f"{output}/{REPORT_NAME}", json.dumps(report, indent=2))
    return report


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
