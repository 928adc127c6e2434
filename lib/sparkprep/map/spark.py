"""Split table -> one row per sample from the user's function: the Spark glue of sparkprep.map."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
import uuid
from typing import Optional

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from sparkprep.ingest.paths import SAMPLE_RULE
from sparkprep.ingest.spark.sources import tune_table_scan
from sparkprep.map.flags import MapConfig
from sparkprep.map.samples import INPUT_COLUMNS, load_function, mapped_batches, output_schema, parse_schema
from sparkprep.runlog import StageClock
from sparkprep.schema import require_columns
from sparkprep.spark.faults import failure_hook
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.spark.reported import write_reported_table
from sparkprep.spark.tables import claimed_output, payload_options, read_table
from sparkprep.spark.session import run_clock


def run_map(spark: SparkSession, cfg: MapConfig, clock: Optional[StageClock] = None) -> dict:
    """Every sample of a split table through the user's function, written as a table by split,
    or with --to, as an export (ImageFolder, WebDataset, TFRecord) made by the export job's writers."""
    clock = clock or run_clock(spark, "map")
    if cfg.to:
        return _map_and_export(spark, cfg, clock)
    with claimed_output(spark, cfg.output, cfg.format, "map") as claim:
        clock.stage("planning", f"{cfg.input}: {cfg.function}{' (batches)' if cfg.batched else ''}")
        table = read_table(spark, cfg.input)
        tune_table_scan(spark, cfg.input, table)
        rows = sample_rows(table)
        layout = sample_layout(rows)
        total = layout["samples"]
        done = spark.sparkContext.accumulator(0)
        mapped = mapped_frame(rows, cfg, done, one_file_samples=layout["one_file_samples"],
                              grouped_by_file=layout["grouped_by_file"])
        how = "one-file samples, no shuffle" if layout["one_file_samples"] else \
            "each sample in one file, no shuffle" if layout["grouped_by_file"] else "members grouped by a shuffle"
        clock.stage("running", f"{'map-batch' if cfg.batched else 'map'} {cfg.function} over {total} samples "
                               f"({how}) -> {cfg.output}")
        with progress(clock, done, total), files_whole(spark, cfg.input, layout["grouped_by_file"]):
            return write_reported_table(spark, claim, mapped, cfg, clock, None, split_params=None,
                                        partition_by="split", options=payload_options(None, already_compressed=False))


def _map_and_export(spark: SparkSession, cfg: MapConfig, clock: StageClock) -> dict:
    """The mapped table goes to a staging table of this run beside --output, the export job publishes
    it to --output (its checks, manifest and publish protocol), and the staging table is deleted."""
    from sparkprep.export.flags import ExportConfig
    from sparkprep.export.spark import run_export

    fs = HadoopFS(spark)
    staging = f"{fs.qualify(cfg.output).rstrip('/')}.__mapped-{uuid.uuid4().hex[:12]}"
    try:
        mapped = run_map(spark, dataclasses.replace(cfg, to=None, output=staging, report=None), clock)
        report = run_export(spark, ExportConfig(input=staging, output=cfg.output, to=cfg.to, shard_size=cfg.shard_size,
                                                shard_count=cfg.shard_count, classes=cfg.classes, report=cfg.report),
                            clock)
    finally:
        fs.delete(staging)
    report["map"] = {k: mapped[k] for k in ("counts", "quarantine", "rows", "seconds") if k in mapped}
    return report


def sample_rows(table: DataFrame) -> DataFrame:
    """The columns the map reads, with sample and member derived for tables written before samples."""
    if "sample" not in table.columns and "rel_path" in table.columns:
        table = (table.withColumn("sample", F.col("rel_path"))
                 .withColumn("member", F.regexp_extract("rel_path", SAMPLE_RULE.pattern, 2)))
    require_columns(table.columns, INPUT_COLUMNS, "a split table of files (jobs/split.py)")
    return table.select(*INPUT_COLUMNS)


def sample_layout(rows: DataFrame) -> dict:
    """One Spark job: the samples, and whether their members need a shuffle to meet.

    one_file_samples: every row is a sample of its own (rows = distinct samples, none null).
    grouped_by_file: every sample's rows lie in one file of the table (distinct (sample, file)
    = distinct samples, every row from a file, none without a sample), as jobs/split.py writes
    samples of several files; verified here, not assumed from how the table was written.
    """
    # one shuffle of one row per sample and task (aggregates take no nondeterministic input: project it first)
    per_sample = (rows.select("sample", F.input_file_name().alias("_file")).groupBy("sample")
                  .agg(F.count(F.lit(1)).alias("n"), (F.min("_file") == F.max("_file")).alias("one"),
                       F.min("_file").alias("_file")))
    got = per_sample.agg(F.sum("n").alias("rows"), F.count("sample").alias("samples"),
                         F.sum(F.when(F.col("sample").isNull() | ~F.col("one") | (F.col("_file") == ""), 1)
                               .otherwise(0)).alias("loose")).first()
    rows_n, samples = int(got["rows"] or 0), int(got["samples"] or 0)
    one_file = rows_n == samples
    return {"samples": samples, "one_file_samples": one_file,
            "grouped_by_file": not one_file and int(got["loose"] or 0) == 0}


@contextlib.contextmanager
def files_whole(spark: SparkSession, uri: str, wanted: bool = True):
    """While inside, every scan task of the table at `uri` reads one whole file, so a sample kept in
    one file is read by one task; the session's settings are restored after.

    Spark splits a file into pieces of min(maxPartitionBytes, max(openCost, bytes per core)) and
    packs a task until maxPartitionBytes, counting each file's open cost: both at the largest
    file's size, no file is split and each task reads one. Set over any launch value: correctness,
    not tuning.
    """
    if not wanted:
        yield
        return
    keys = ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes")
    before = {key: spark.conf.get(key, None) for key in keys}
    largest = max((size for _, size, _ in HadoopFS(spark).list_files(uri, ".parquet")), default=0) + 1
    for key in keys:
        spark.conf.set(key, str(largest))
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


@contextlib.contextmanager
def progress(clock: StageClock, done, total: int, every: float = 10.0):
    """A line 'samples done / total' every few seconds while the map runs (counted as tasks finish)."""
    stop = threading.Event()

    def report() -> None:
        while not stop.wait(every):
            clock.note(f"{min(done.value, total)} / {total} samples mapped")

    thread = threading.Thread(target=report, name="map-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def mapped_frame(rows: DataFrame, cfg: MapConfig, done=None, one_file_samples: bool = False,
                 grouped_by_file: bool = False) -> DataFrame:
    """One output row per sample: a sample's members meet in one task, in member order.

    done: an accumulator that counts the samples mapped (for the progress lines), or None.
    one_file_samples: every row is a sample of its own (rows counted = distinct samples, none null), so
    no shuffle is needed to bring members together: the rows are mapped where the scan reads them
    (a retried task reads the same split of the same files, so retries stay exact).
    grouped_by_file: every sample lies in one file and the scan reads whole files (files_whole):
    a sort within each task brings its members together, without a shuffle.
    """
    fields = parse_schema(cfg.schema)
    work = functools.partial(_map_partition, function=cfg.function, fields=fields, seed=cfg.seed,
                             batched=cfg.batched, batch_size=cfg.batch_size, done=done)
    if one_file_samples:
        grouped = rows
    elif grouped_by_file:
        grouped = rows.sortWithinPartitions("sample", "member")
    else:
        grouped = rows.repartition("sample").sortWithinPartitions("sample", "member")
    return grouped.mapInArrow(work, from_arrow_schema(output_schema(fields)))


def _map_partition(batches, function, fields, seed, batched, batch_size, done):
    """On the executor: import the user's function (shipped with --py-files), then map."""
    fail = failure_hook()

    def checkpoint(samples: int) -> None:
        fail(samples)
        if done is not None:
            done.add(1)

    yield from mapped_batches(batches, load_function(function), fields, seed, batched, batch_size, checkpoint)
