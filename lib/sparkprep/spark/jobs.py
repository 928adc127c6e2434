"""run(spark, cfg) for each job: source -> transforms -> table -> report. No argv, no session."""

from __future__ import annotations

import json
from typing import Optional, Tuple

from pyspark.sql import DataFrame, SparkSession

from sparkprep.config import IngestConfig, PreprocessConfig, SplitConfig, config_dict
from sparkprep.report.run_report import StageClock, versions
from sparkprep.schema import SPLIT_METADATA_KEY
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.ingest.spark import Reconciliation, catalog_frame, check_reconciled
from sparkprep.split.spark import read_rows, split_files, split_rows
from sparkprep.preprocess.spark import preprocess_frame, tune_table_scan
from sparkprep.report.spark import channel_normalization, table_stats
from sparkprep.spark.tables import Claim, claimed_output, payload_options, read_table, write_table


SPLIT_TABLE_KEPT = "read split table (its splits are kept; split flags are ignored)"


def run_ingest(spark: SparkSession, cfg: IngestConfig, clock: Optional[StageClock] = None) -> dict:
    """Catalogue raw files into a table with one row per file (unpartitioned)."""
    clock = clock or StageClock("ingest")
    with claimed_output(spark, cfg.output, cfg.format, "ingest") as claim:
        clock.stage("listing and planning", cfg.input)
        catalog, rec = catalog_frame(spark, cfg)
        clock.stage("reading, probing and writing", f"{rec.expected_rows} files -> {cfg.output}")
        return _write(spark, claim, catalog, cfg, clock, rec, split_params=None, partition_by=None,
                      options=payload_options("content", already_compressed=True))


def run_split(spark: SparkSession, cfg: SplitConfig, clock: Optional[StageClock] = None) -> dict:
    """Raw files, a catalog table or tabular rows -> a split table partitioned by split."""
    clock = clock or StageClock("split")
    with claimed_output(spark, cfg.output, cfg.format, "split") as claim:
        clock.stage("planning", f"{cfg.input} ({cfg.input_kind})")
        if cfg.input_kind == "table":
            table, rec, detail = split_rows(read_rows(spark, cfg), cfg), None, "read rows, split"
        else:
            table, rec, detail = _split_source(spark, cfg, keep_existing_split=False)
        clock.stage("running", f"{detail}, write -> {cfg.output}")
        payload = "content" if "content" in table.columns else None
        return _write(spark, claim, table, cfg, clock, rec, split_params=cfg.split_params(), partition_by="split",
                      options=payload_options(payload, already_compressed=True))


def run_preprocess(spark: SparkSession, cfg: PreprocessConfig, clock: Optional[StageClock] = None) -> dict:
    """Raw files, a catalog or a split table -> processed table (training-ready pixels) by split."""
    clock = clock or StageClock("preprocess")
    with claimed_output(spark, cfg.output, cfg.format, "preprocess") as claim:
        clock.stage("planning", f"{cfg.input} ({cfg.input_kind})")
        table, rec, detail = _split_source(spark, cfg, keep_existing_split=True)
        split_params = _recorded_split(table) if detail == SPLIT_TABLE_KEPT else cfg.split_params()
        clock.stage("running", f"{detail}; decode, transform, encode ({cfg.spec.digest()}) -> {cfg.output}")
        return _write(spark, claim, preprocess_frame(table, cfg), cfg, clock, rec, split_params, "split",
                      options=payload_options("image", already_compressed=cfg.spec.encode != "raw"),
                      extra=lambda written: {"normalization": channel_normalization(written),
                                             "transform": {"digest": cfg.spec.digest(), **cfg.spec.as_dict()}})


def _split_source(spark: SparkSession, cfg: SplitConfig,
                  keep_existing_split: bool) -> Tuple[DataFrame, Optional[Reconciliation], str]:
    """Split rows from raw files (ingested inline), a catalog, or (if kept) an existing split table."""
    if cfg.input_kind == "files":
        catalog, rec = catalog_frame(spark, cfg)
        return split_files(catalog, cfg), rec, f"ingest {rec.expected_rows} files and split inline"
    table = read_table(spark, cfg.input)
    tune_table_scan(spark, cfg.input, table)
    if keep_existing_split and "split" in table.columns:
        return table, None, SPLIT_TABLE_KEPT
    return split_files(table, cfg), None, "read catalog, split"


def _recorded_split(table: DataFrame) -> Optional[dict]:
    """The split parameters a split table carries on its key column, if any."""
    recorded = (table.schema["key"].metadata or {}).get(SPLIT_METADATA_KEY)
    return json.loads(recorded) if recorded else None


def _write(spark: SparkSession, claim: Claim, df: DataFrame, cfg: IngestConfig, clock: StageClock,
           rec: Optional[Reconciliation], split_params: Optional[dict], partition_by: Optional[str],
           options: Optional[dict] = None, extra=None) -> dict:
    def finish(written: DataFrame) -> dict:
        clock.stage("counting the written table")
        stats = table_stats(written)
        if extra:
            stats.update(extra(written))
        seconds = clock.total()
        inputs = stats["rows"] - stats.get("augmented_copies", 0)  # one row per input file or row
        report = {
            "job": clock.job,
            "config": config_dict(cfg),
            "input": {"uri": cfg.input, "kind": getattr(cfg, "input_kind", "files")},
            "output": {"uri": HadoopFS(spark).qualify(cfg.output), "format": cfg.format,
                       "partitioned_by": partition_by},
            "split": split_params,
            **stats,
            "reconciliation": rec.as_dict(inputs) if rec else None,
            "seconds": seconds,
            "durations": dict(clock.durations),
            "throughput": {"rows_per_s": round(inputs / seconds, 1) if seconds else None,
                           "unit": "files" if rec else "rows",
                           "output_rows_per_s": round(stats["rows"] / seconds, 1) if seconds else None},
            "versions": versions(spark.version),
        }
        if rec:
            check_reconciled(written, rec, report["reconciliation"])
        clock.stage("publishing")
        return report

    description = json.dumps(split_params or {}, sort_keys=True)
    report = write_table(spark, df, claim, finish, partition_by, description, options)
    if cfg.report:
        HadoopFS(spark).write_text(cfg.report, json.dumps(report, indent=2))
    return report
