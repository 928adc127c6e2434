"""run(spark, cfg) for each job: source -> transforms -> table -> report. No argv, no session."""

from __future__ import annotations

from typing import Optional

from pyspark.sql import DataFrame, SparkSession

from sparkprep.config import IngestConfig, PreprocessConfig, SplitConfig, config_dict
from sparkprep.run_report import StageClock, versions
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.spark.ingest import Reconciliation, catalog_frame
from sparkprep.spark.split import read_rows, split_files, split_rows
from sparkprep.spark.preprocess import preprocess_frame, tune_table_scan
from sparkprep.spark.stats import channel_normalization, table_stats
from sparkprep.spark.tables import check_replaceable, payload_options, read_table, write_table


def run_ingest(spark: SparkSession, cfg: IngestConfig, clock: Optional[StageClock] = None) -> dict:
    """Catalogue raw files into a table with one row per file (unpartitioned)."""
    clock = clock or StageClock("ingest")
    check_replaceable(spark, cfg.output)
    clock.stage("listing and planning", cfg.input)
    catalog, rec = catalog_frame(spark, cfg)
    clock.stage("reading, probing and writing", f"{rec.expected_rows} files -> {cfg.output}")
    return _write(spark, catalog, cfg, clock, rec, split_params=None, partition_by=None,
                  options=payload_options("content", already_compressed=True))


def run_split(spark: SparkSession, cfg: SplitConfig, clock: Optional[StageClock] = None) -> dict:
    """Raw files, a catalog table or tabular rows -> a split table partitioned by split."""
    clock = clock or StageClock("split")
    rec: Optional[Reconciliation] = None
    check_replaceable(spark, cfg.output)
    clock.stage("planning", f"{cfg.input} ({cfg.input_kind})")
    if cfg.input_kind == "files":
        catalog, rec = catalog_frame(spark, cfg)
        table = split_files(catalog, cfg)
        detail = f"ingest {rec.expected_rows} files inline, split, write"
    elif cfg.input_kind == "catalog":
        table, detail = split_files(read_table(spark, cfg.input), cfg), "read catalog, split, write"
    else:
        table, detail = split_rows(read_rows(spark, cfg), cfg), "read rows, split, write"
    clock.stage("running", f"{detail} -> {cfg.output}")
    payload = "content" if "content" in table.columns else None
    return _write(spark, table, cfg, clock, rec, split_params=cfg.split_params(), partition_by="split",
                  options=payload_options(payload, already_compressed=True))


def run_preprocess(spark: SparkSession, cfg: PreprocessConfig, clock: Optional[StageClock] = None) -> dict:
    """Raw files, a catalog or a split table -> processed table (training-ready pixels) by split."""
    clock = clock or StageClock("preprocess")
    rec: Optional[Reconciliation] = None
    check_replaceable(spark, cfg.output)
    clock.stage("planning", f"{cfg.input} ({cfg.input_kind})")
    split_params: Optional[dict] = cfg.split_params()
    if cfg.input_kind == "files":
        catalog, rec = catalog_frame(spark, cfg)
        table, detail = split_files(catalog, cfg), f"ingest {rec.expected_rows} files and split inline"
    else:
        table = read_table(spark, cfg.input)
        if "split" in table.columns:
            split_params, detail = _recorded_split(table), "read split table"
        else:
            table, detail = split_files(table, cfg), "read catalog, split inline"
        tune_table_scan(spark, cfg.input, table)
    clock.stage("running", f"{detail}; decode, transform, encode ({cfg.spec.digest()}) -> {cfg.output}")
    return _write(spark, preprocess_frame(table, cfg), cfg, clock, rec, split_params, "split",
                  options=payload_options("image", already_compressed=cfg.spec.encode != "raw"),
                  extra=lambda written: {"normalization": channel_normalization(written),
                                         "transform": {"digest": cfg.spec.digest(), **cfg.spec.as_dict()}})


def _recorded_split(table: DataFrame) -> Optional[dict]:
    """The split parameters a split table carries on its key column, if any."""
    import json

    from sparkprep.schema import SPLIT_METADATA_KEY

    recorded = (table.schema["key"].metadata or {}).get(SPLIT_METADATA_KEY)
    return json.loads(recorded) if recorded else None


def _write(spark: SparkSession, df: DataFrame, cfg: IngestConfig, clock: StageClock,
           rec: Optional[Reconciliation], split_params: Optional[dict], partition_by: Optional[str],
           options: Optional[dict] = None, extra=None) -> dict:
    import json

    def finish(written: DataFrame) -> dict:
        clock.stage("counting the written table")
        stats = table_stats(written)
        if extra:
            stats.update(extra(written))
        seconds = clock.total()
        report = {
            "job": clock.job,
            "config": config_dict(cfg),
            "input": {"uri": cfg.input, "kind": getattr(cfg, "input_kind", "files")},
            "output": {"uri": HadoopFS(spark).qualify(cfg.output), "format": cfg.format,
                       "partitioned_by": partition_by},
            "split": split_params,
            **stats,
            # one row per input file, not counting augmented copies
            "reconciliation": rec.as_dict(stats["rows"] - stats.get("augmented_copies", 0)) if rec else None,
            "seconds": seconds,
            "durations": dict(clock.durations),
            "throughput": {"rows_per_s": round(stats["rows"] / seconds, 1) if seconds else None,
                           "unit": "files" if rec else "rows"},
            "versions": versions(spark.version),
        }
        clock.stage("publishing")
        return report

    description = json.dumps(split_params or {}, sort_keys=True)
    report = write_table(spark, df, cfg.output, cfg.format, finish, partition_by, description, options)
    if cfg.report:
        HadoopFS(spark).write_text(cfg.report, json.dumps(report, indent=2))
    return report
