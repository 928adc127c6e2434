"""The report job: any sparkprep table -> report.html and _run_report.json (the table is only read)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Optional

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from sparkprep.audit.policy import check_leakage
from sparkprep.audit.spark.search import crops, near_duplicate_audit, threshold_words
from sparkprep.preprocess.spark import channel_normalization
from sparkprep.runlog import StageClock, config_dict, versions
from sparkprep.schema import require_columns
from sparkprep.spark import ownership
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.spark.table_stats import small_columns, table_stats
from sparkprep.spark.tables import claim_directory, read_input_table, write_atomic
from sparkprep.spark.visuals import report_page, with_phash
from sparkprep.spark.session import run_clock

if TYPE_CHECKING:
    from sparkprep.report.flags import ReportConfig


REPORT = "report"  # the kind in a report directory's _sparkprep.json


def run_report(spark: SparkSession, cfg: "ReportConfig", clock: Optional[StageClock] = None) -> dict:
    """Any sparkprep table -> <output>/report.html and <output>/_run_report.json (the table is only read)."""
    clock = clock or run_clock(spark, REPORT)
    fs = HadoopFS(spark)
    out = fs.qualify(cfg.output).rstrip("/")
    clock.stage("reading", cfg.input)
    table, _, delta = read_input_table(spark, cfg.input, cfg.format)
    require_columns(table.columns, ["status"], "a sparkprep table (catalog, split, processed or mapped)")
    claim_directory(fs, out, REPORT)
    source = ownership.json_object(fs.read_text(f"{fs.qualify(cfg.input).rstrip('/')}/{ownership.REPORT_NAME}")) or {}
    clock.stage("counting")
    small = small_columns(table)
    stats = table_stats(table, small)
    if "phash" in table.columns and not table.where(F.col("phash").isNotNull()).limit(1).collect():
        table = table.drop("phash")  # written with --phash off: hash the bytes now
    hashed = with_phash(table)
    if "phash" in hashed.columns and ("path" in table.columns or "image" in table.columns):
        clock.stage("near-duplicate audit", threshold_words(cfg.near_threshold, crops(cfg))
                    + ("" if "phash" in table.columns else "; hashes computed from the rows' bytes"))
        stats["near_duplicates"] = near_duplicate_audit(hashed, cfg.near_threshold, cfg.near_bucket_cap,
                                                        crops=crops(cfg)).stats
    if {"channel_mean", "split", "aug_index"} <= set(table.columns):
        stats["normalization"] = channel_normalization(table)
    seconds = clock.total()
    report = {"job": REPORT, "config": config_dict(cfg),
              "input": {"uri": fs.qualify(cfg.input), "table_job": source.get("job"),
                        "format": "delta" if delta else "parquet"},
              "output": {"uri": out, "format": "html", "page": f"{out}/{ownership.PAGE}"},
              "split": source.get("split"), **stats,
              "transform": source.get("transform"),
              "seconds": seconds, "durations": dict(clock.durations), "spark_jobs": clock.spark_jobs(),
              "throughput": {"rows_per_s": round(stats["rows"] / seconds, 1) if seconds else None, "unit": "rows"},
              "versions": versions(spark.version)}
    clock.stage(ownership.PAGE, "thumbnails and histograms")
    write_atomic(fs, f"{out}/{ownership.PAGE}", report_page(table, report, small))
    write_atomic(fs, f"{out}/{ownership.REPORT_NAME}", json.dumps(report, indent=2))
    clock.total()
    return check_leakage(report, cfg.fail_on_leakage)


# The near-duplicate audit (docs/near-duplicates.md): the rows' perceptual hashes
# are grouped into distinct hashes (identical hashes are distance 0: pairs without a join).
# Distinct hashes emit their band keys (sparkprep.audit.bands); each band key's
# hashes are collected in one shuffle and paired, and pairs within the threshold are kept.
# Band keys shared by more than `cap` hashes, and hashes shared by more than `cap` rows (flat or
# low-information images), are reported instead of joined. Pair counts per split pair come from
# per-hash split counts, so no row-level pair list is built, and nothing of O(rows) reaches the
# driver except the cluster edge list when it is small.


