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
        counted = rows.agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("sample").alias("samples")).first()
        total = int(counted["samples"])
        done = spark.sparkContext.accumulator(0)
        mapped = mapped_frame(rows, cfg, done, one_file_samples=counted["rows"] == total)
        clock.stage("running", f"{'map-batch' if cfg.batched else 'map'} {cfg.function} over {total} samples "
                               f"-> {cfg.output}")
        with progress(clock, done, total):
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


def mapped_frame(rows: DataFrame, cfg: MapConfig, done=None, one_file_samples: bool = False) -> DataFrame:
    """One output row per sample: a sample's members meet in one task, in member order.

    done: an accumulator that counts the samples mapped (for the progress lines), or None.
    one_file_samples: every row is a sample of its own (rows counted = distinct samples, none null), so
    no shuffle is needed to bring members together: the rows are mapped where the scan reads them
    (a retried task reads the same split of the same files, so retries stay exact).
    """
    fields = parse_schema(cfg.schema)
    work = functools.partial(_map_partition, function=cfg.function, fields=fields, seed=cfg.seed,
                             batched=cfg.batched, batch_size=cfg.batch_size, done=done)
    grouped = rows if one_file_samples else rows.repartition("sample").sortWithinPartitions("sample", "member")
    return grouped.mapInArrow(work, from_arrow_schema(output_schema(fields)))


def _map_partition(batches, function, fields, seed, batched, batch_size, done):
    """On the executor: import the user's function (shipped with --py-files), then map."""
    fail = failure_hook()

    def checkpoint(samples: int) -> None:
        fail(samples)
        if done is not None:
            done.add(1)

    yield from mapped_batches(batches, load_function(function), fields, seed, batched, batch_size, checkpoint)
