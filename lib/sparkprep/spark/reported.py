"""The reported write every table job shares: the table with its run report, checked before it is
published (the reconciliation, the quarantine fraction) and its page beside it."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional

from pyspark.sql import DataFrame, SparkSession

from sparkprep.errors import QuarantineError
from sparkprep.runlog import StageClock, config_dict, versions
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.spark.ownership import LISTING_STATE, TABLE_PAGE
from sparkprep.spark.table_stats import small_columns, table_stats
from sparkprep.spark.tables import Claim, write_table
from sparkprep.spark.visuals import report_page
from sparkprep.statuses import FILTERED


def check_quarantine_fraction(report: dict, limit: float) -> None:
    """Raise QuarantineError, naming the top reason, when too much of the input is quarantined."""
    inputs = report["rows"] - report.get("augmented_copies", 0)
    bad = sum(info["count"] for reason, info in report["quarantine"].items() if reason != FILTERED)
    report["quarantined_fraction"] = round(bad / inputs, 6) if inputs else 0.0
    if inputs and bad / inputs > limit:
        reason, info = max(report["quarantine"].items(), key=lambda kv: (kv[1]["count"], kv[0]))
        example = info["examples"][0] if info["examples"] else {}
        raise QuarantineError(
            f"{bad} of {inputs} input rows ({bad / inputs:.0%}) are quarantined, more than "
            f"--max-quarantine-fraction {limit}; top reason: {reason} ({info['count']} rows, e.g. "
            f"{example.get('path')}: {example.get('error')}). Nothing was published")


def write_reported_table(spark: SparkSession, claim: Claim, df: Optional[DataFrame], cfg: Any, clock: StageClock,
                         rec: Optional[Any], split_params: Optional[dict], partition_by: Optional[str],
                         options: Optional[dict] = None, extra=None,
                         audit: Optional[Callable[[DataFrame], dict]] = None,
                         resumable: Optional[str] = None) -> dict:
    """Write a table job's output with its run report; every check runs before it is published.

    rec is the ingest Reconciliation (or None): its verify() raises unless the written rows
    are exactly the listed files. df None: the parquet files are already in the claim's
    staging directory (sparkprep.spark.tables.write_table). audit: the near-duplicate audit
    (sparkprep.audit.spark.search.NearDuplicateCheck: the written table -> its report section, and a
    `label`), run beside the counts when the table has hashes; None: no audit. extra(written, small):
    more report fields (small: the table's small columns when it is small, else None). resumable: the
    record that makes the staging directory resumable (write_table).
    """
    pages = {}

    def finish(written: DataFrame) -> dict:
        # --phash off leaves no hashes: nothing was hashed, so nothing is claimed about near-duplicates
        audited = audit is not None and "phash" in written.columns
        clock.stage("counting the written table" + (" and the near-duplicate audit" if audited else ""),
                    getattr(audit, "label", "") if audited else "")
        # A small table's counts, page choices and audit inputs come from one job. A large table's are
        # many small Spark jobs: run side by side, they overlap their scheduling and shuffles.
        small = small_columns(written, extra=audit.columns(written) if audited else None)
        with ThreadPoolExecutor(max_workers=2) as pool:
            near = pool.submit(audit, written, small) if audited else None
            stats = table_stats(written, small)
            if extra:
                stats.update(extra(written, small))
            if near is not None:
                stats["near_duplicates"] = near.result()
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
            "spark_jobs": clock.spark_jobs(),
            "throughput": {"rows_per_s": round(inputs / seconds, 1) if seconds else None,
                           "unit": "files" if rec else "rows",
                           "output_rows_per_s": round(stats["rows"] / seconds, 1) if seconds else None},
            "versions": versions(spark.version),
        }
        if rec:
            rec.verify(written, report["reconciliation"], small)
        if getattr(rec, "incremental", None) is not None:
            report["incremental"] = rec.incremental.as_dict()
        check_quarantine_fraction(report, cfg.max_quarantine_fraction)
        clock.stage(TABLE_PAGE, "thumbnails and histograms")
        pages[TABLE_PAGE] = report_page(written, report, small)
        clock.stage("publishing")
        return report

    description = json.dumps(split_params or {}, sort_keys=True)
    side = {LISTING_STATE: rec.incremental.state} if getattr(rec, "incremental", None) is not None else None
    try:
        report = write_table(spark, df, claim, finish, partition_by, description, options, pages, side, resumable)
    finally:
        if getattr(rec, "incremental", None) is not None:
            rec.incremental.release()
    if cfg.report:
        HadoopFS(spark).write_text(cfg.report, json.dumps(report, indent=2))
    return report
