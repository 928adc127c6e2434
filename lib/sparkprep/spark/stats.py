"""Counts for the run report, read back from the written table (content is never read)."""

from __future__ import annotations

from pyspark.sql import DataFrame, functions as F

from sparkprep.run_report import nested_counts

EXAMPLES = 5


def table_stats(table: DataFrame) -> dict:
    """counts, quarantine, duplicates (by sha256 among ok rows) and, for split tables, leakage."""
    has_split = "split" in table.columns
    wanted = ("key", "split", "label", "path", "sha256", "status", "error")
    table = table.select(*[c for c in wanted if c in table.columns]).cache()
    split_col = F.col("split") if has_split else F.lit("all")
    grouped = table.groupBy(split_col.alias("split"), "label").count().collect()
    # Where a row came from: its source path, or its key for tabular rows (path is null).
    where = F.coalesce(F.col("path"), F.col("key")) if "key" in table.columns else F.col("path")
    stats = {"counts": nested_counts([(r["split"], r["label"], r["count"]) for r in grouped]),
             "quarantine": _quarantine(table, where), "duplicates": _duplicates(table, where)}
    stats["rows"] = sum(sum(per.values()) for per in stats["counts"].values())
    if has_split:
        several = table.groupBy("key").agg(F.countDistinct("split").alias("n")).where("n > 1")
        stats["leakage"] = {"keys_in_several_splits": several.count(),
                            "examples": [r["key"] for r in several.limit(EXAMPLES).collect()]}
    table.unpersist()
    return stats


def _quarantine(table: DataFrame, where) -> dict:
    bad = table.where(F.col("status") != "ok")
    examples = (bad.select("status", where.alias("where"), "error")
                .withColumn("_n", F.row_number().over(_by("status")))
                .where(F.col("_n") <= EXAMPLES).collect())
    out = {r["status"]: {"count": r["count"], "examples": []} for r in bad.groupBy("status").count().collect()}
    for r in sorted(examples, key=lambda r: (r["status"], r["where"] or "")):
        out[r["status"]]["examples"].append({"path": r["where"], "error": r["error"]})
    return out


def _by(column: str):
    from pyspark.sql import Window

    return Window.partitionBy(column).orderBy(F.col("where"))


def _duplicates(table: DataFrame, where) -> dict:
    groups = (table.where((F.col("status") == "ok") & F.col("sha256").isNotNull())
              .groupBy("sha256")
              .agg(F.count(F.lit(1)).alias("n"), F.countDistinct("label").alias("labels"),
                   F.sort_array(F.collect_list(where)).alias("paths"))
              .where("n > 1"))
    totals = groups.agg(F.count(F.lit(1)).alias("groups"), F.sum(F.col("n") - 1).alias("extra"),
                        F.sum(F.when(F.col("labels") > 1, 1).otherwise(0)).alias("conflicts")).first()
    conflicting = groups.where("labels > 1").orderBy("sha256").limit(EXAMPLES).collect()
    plain = groups.orderBy("sha256").limit(EXAMPLES).collect()
    return {
        "groups": int(totals["groups"] or 0),
        "extra_copies": int(totals["extra"] or 0),
        "conflicting_label_groups": int(totals["conflicts"] or 0),
        "examples": [{"sha256": r["sha256"], "paths": r["paths"][:EXAMPLES]} for r in plain],
        "conflicting_examples": [{"sha256": r["sha256"], "paths": r["paths"][:EXAMPLES]} for r in conflicting],
    }
