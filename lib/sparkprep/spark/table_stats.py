"""The run report's counts, read back from a written table.

Only small columns are read (parquet prunes the rest), and each aggregate is one pass:
no cache, no distinct counts, no per-group lists over the whole table. A table of at most
LOCAL_ROWS rows is counted on the driver instead (sparkprep.table_counts, the same report)
from its small columns, collected in one Spark job.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from sparkprep.runlog import nested_counts
from sparkprep.schema import python_columns
from sparkprep.statuses import OK
from sparkprep.table_counts import COMMON_MEMBERS, EXAMPLES, nulls_first, table_counts

# Rows up to this count are counted on the driver: their small columns (paths, errors, hashes) are a
# few MB at most, and one Spark job replaces a dozen.
LOCAL_ROWS = 20_000
COUNTED_COLUMNS = ("split", "label", "status", "aug_index", "path", "key", "error", "sha256", "format", "sample",
                   "rel_path", "member", "width", "height", "size",  # (the sizes for report.html's histograms)
                   "channels", "channel_mean", "channel_std")  # (a processed table's normalization)
COLLECT = "collect"


def small_columns(table: DataFrame, limit: int = LOCAL_ROWS,
                  extra: Optional[Dict[str, Column]] = None) -> Optional[Dict[str, list]]:
    """The table's COUNTED_COLUMNS (and `extra`: name -> column) on the driver, in one Spark job, when
    it has at most `limit` rows, else None: what table_stats, report.html's choices and the
    near-duplicate audit then read instead of running Spark jobs."""
    if limit <= 0:
        return None
    counted = [F.col(c) for c in COUNTED_COLUMNS if c in table.columns and c not in (extra or {})]
    got = table.select(*counted, *[column.alias(name) for name, column in (extra or {}).items()]) \
        .limit(limit + 1).toArrow()
    got = python_columns(got)
    return got if len(got["status"]) <= limit else None


def table_stats(table: DataFrame, small: Any = COLLECT) -> dict:
    """counts, quarantine, duplicates (same sha256 among ok rows) and, with a split, leakage.

    small: the table's small columns (small_columns), None to count in Spark, or COLLECT to collect
    them here when the table has at most LOCAL_ROWS rows.
    """
    if small == COLLECT:
        small = small_columns(table)
    if small is not None:
        return table_counts(small)
    has_split = "split" in table.columns
    # Where a row came from: its source path, or its key for tabular rows (path is null).
    where = F.coalesce(F.col("path"), F.col("key")) if "key" in table.columns else F.col("path")
    split = F.col("split") if has_split else F.lit("all")
    copies = (F.col("aug_index") > 0) if "aug_index" in table.columns else F.lit(False)
    grouped = table.groupBy(split.alias("split"), "label", "status", copies.alias("copy")).count().collect()
    per_label, per_status, per_split_status, copy_rows = [], {}, [], 0
    for r in grouped:
        per_label.append((r["split"], r["label"], r["count"]))
        per_split_status.append((r["split"], r["status"], r["count"]))
        per_status[r["status"]] = per_status.get(r["status"], 0) + r["count"]
        copy_rows += r["count"] if r["copy"] else 0
    stats = {"counts": nested_counts(_sum_over_status(per_label)), "rows": sum(per_status.values()),
             "status_counts": per_status, "status_by_split": nested_counts(_sum_over_status(per_split_status)),
             "quarantine": _quarantine(table, where, per_status)}
    if "aug_index" in table.columns:  # copies share their original's key and sha256
        stats["augmented_copies"] = copy_rows
        table = table.where(F.col("aug_index") == 0)
    stats["duplicates"] = _duplicates(table, where, split)
    if "sample" in table.columns and "member" in table.columns:
        stats["samples"] = sample_stats(table)
    if has_split:
        spread = (table.groupBy("key").agg(F.min("split").alias("lo"), F.max("split").alias("hi"))
                  .where("lo <> hi")
                  .agg(F.count(F.lit(1)).alias("n"), F.slice(F.sort_array(F.collect_list("key")), 1, EXAMPLES).alias("some"))
                  .first())
        stats["leakage"] = {"keys_in_several_splits": int(spread["n"]), "examples": list(spread["some"] or [])}
    return stats


def sample_stats(table: DataFrame) -> dict:
    """Samples as well as files: how many, and which lack a member that other samples have.

    Only member names that appear in several samples are checked (at most 50), so a file
    mode table (one member per sample) reports no incomplete samples.
    """
    per_sample = table.groupBy("sample").agg(F.collect_set("member").alias("members"), F.count(F.lit(1)).alias("n"))
    counted = per_sample.agg(F.count(F.lit(1)).alias("samples"), F.max("n").alias("largest")).first()
    out = {"count": int(counted["samples"] or 0), "largest": int(counted["largest"] or 0), "incomplete": {}}
    if out["largest"] <= 1:
        return out
    common = [r["member"] for r in table.groupBy("member").agg(F.countDistinct("sample").alias("k"))
              .where("k > 1 AND member IS NOT NULL").orderBy(F.desc("k"), "member").limit(COMMON_MEMBERS).collect()]
    if not common:
        return out
    lacking = per_sample.agg(*[
        F.struct(F.sum((~F.array_contains("members", m)).cast("int")).alias("n"),
                 F.slice(F.sort_array(F.collect_list(F.when(~F.array_contains("members", m), F.col("sample")))),
                         1, EXAMPLES).alias("examples")).alias(f"m{i}")
        for i, m in enumerate(common)]).first()
    for i, m in enumerate(common):
        if lacking[f"m{i}"]["n"]:
            out["incomplete"][m] = {"count": int(lacking[f"m{i}"]["n"]), "examples": list(lacking[f"m{i}"]["examples"])}
    return out


def _sum_over_status(rows):
    totals = {}
    for split, label, n in rows:
        totals[(split, label)] = totals.get((split, label), 0) + n
    return [(s, l, n) for (s, l), n in totals.items()]


def _quarantine(table: DataFrame, where: Column, per_status: dict) -> dict:
    bad = {status: n for status, n in per_status.items() if status != OK}
    out = {status: {"count": n, "examples": []} for status, n in sorted(bad.items())}
    if not bad:
        return out
    ranked = (table.where(F.col("status") != OK).select("status", where.alias("where"), "error")
              .withColumn("_n", F.row_number().over(Window.partitionBy("status").orderBy("where"))))
    for r in ranked.where(F.col("_n") <= EXAMPLES).orderBy("status", "_n").collect():
        out[r["status"]]["examples"].append({"path": r["where"], "error": r["error"]})
    return out


def judged_for_duplicates(table: DataFrame) -> DataFrame:
    """The rows whose bytes are judged as exact copies: every row, but a sample's side-car members.

    In a table of samples of several members (an image with its .json and .cls, a WebDataset
    sample), the side-cars of different samples are often byte-identical (the same class file,
    an empty annotation): they say nothing about leakage. A sample is judged by its image members
    (a processed table's rows are samples already); a file that is its own sample, by its bytes.
    """
    if not {"format", "sample", "rel_path"} <= set(table.columns):
        return table
    return table.where(F.col("format").isNotNull() | (F.col("sample") == F.col("rel_path")))


def _duplicates(table: DataFrame, where: Column, split: Column) -> dict:
    """Exact copies: groups, extra copies, groups whose copies disagree on label or split."""
    table = judged_for_duplicates(table)
    groups = (table.where((F.col("status") == OK) & F.col("sha256").isNotNull())
              .groupBy("sha256")
              .agg(F.count(F.lit(1)).alias("n"),
                   (F.min("label") != F.max("label")).alias("label_conflict"),
                   (F.min(split) != F.max(split)).alias("split_conflict"))
              .where("n > 1"))
    totals = groups.agg(
        F.count(F.lit(1)).alias("groups"), F.sum(F.col("n") - 1).alias("extra"),
        F.sum(F.col("label_conflict").cast("int")).alias("labels"),
        F.sum(F.col("split_conflict").cast("int")).alias("splits"),
        F.slice(F.sort_array(F.collect_list("sha256")), 1, EXAMPLES).alias("some"),
        F.slice(F.sort_array(F.collect_list(F.when(F.col("label_conflict"), F.col("sha256")))), 1, EXAMPLES)
        .alias("conflicting"),
    ).first()
    wanted = set(totals["some"] or []) | set(totals["conflicting"] or [])
    paths = {}
    if wanted:
        for r in table.where(F.col("sha256").isin(sorted(wanted)) & (F.col("status") == OK)) \
                .select("sha256", where.alias("where")).collect():
            paths.setdefault(r["sha256"], []).append(r["where"])
    example = lambda sha: {"sha256": sha, "paths": sorted(paths.get(sha, []), key=nulls_first)[:EXAMPLES]}  # noqa: E731
    return {
        "groups": int(totals["groups"] or 0),
        "extra_copies": int(totals["extra"] or 0),
        "conflicting_label_groups": int(totals["labels"] or 0),
        "groups_in_several_splits": int(totals["splits"] or 0),
        "examples": [example(s) for s in totals["some"] or []],
        "conflicting_examples": [example(s) for s in totals["conflicting"] or []],
    }
