"""A table of member rows -> one row per sample: the Spark glue preprocess and export share.

A sample's primary member is its first image member by name (else its first member): its
bytes stay in `content`, its path in `path`; the other members travel in `extras`
(member name -> bytes), so a sample is transformed or exported whole.
"""

from __future__ import annotations

from typing import Optional

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from sparkprep.ingest.paths import SAMPLE_RULE
from sparkprep.statuses import DUPLICATE_KEY


def shard_of() -> Column:
    """The shard of a tar member's row: `path` is <shard uri>#<member name>, and either may hold '#',
    so the member name (rel_path) is cut off the end; the last '#' only where rel_path is not the
    name as spelled in the tar (a name Unicode NFC changed)."""
    return F.expr("CASE WHEN endswith(path, concat('#', rel_path)) "
                  "THEN substring(path, 1, length(path) - length(rel_path) - 1) "
                  "ELSE regexp_extract(path, '^(.*)#', 1) END")


def whole_samples(table: DataFrame, grouped: Optional[bool] = None) -> DataFrame:
    """One row per sample, with `extras`, when the table's samples have several members; else the table.

    grouped: whether they do, when the caller knows (--samples basename, WebDataset input); None
    asks the table, which costs a pass over its `sample` column (cheap on a written table, a full
    read on a table still being computed). Rows of one sample key in two shards (`duplicate_key`)
    stay one row per shard: both are quarantined, and every shard stays accounted for.
    """
    if not {"sample", "member", "content", "format"} <= set(table.columns):
        return table
    if grouped is None:
        grouped = table.groupBy("sample").count().where("count > 1").limit(1).count() > 0
    if not grouped:
        return table
    sample = Window.partitionBy("sample", F.when(F.col("status") == DUPLICATE_KEY, shard_of()))
    ranked = table.withColumn("_rank", F.row_number().over(
        sample.orderBy(F.col("format").isNull(), F.col("member"))))
    others = F.collect_list(F.when(F.col("_rank") > 1, F.struct("member", "content"))).over(sample)
    return (ranked.withColumn("extras", F.map_from_entries(others))
            .where("_rank = 1").drop("_rank"))


def accounted_paths(written: DataFrame) -> DataFrame:
    """(path) of every input file the rows of a written table stand for: each row's own path, and
    for a row of a whole sample the paths of its other members (its path with the primary member's
    name replaced by theirs: `<dir>/<sample>.<member>` for files, `<shard>#<sample>.<member>` in a tar)."""
    if "extras" not in written.columns:
        return written.select("path")
    primary = F.length(F.regexp_extract("rel_path", SAMPLE_RULE.pattern, 2))
    stems = written.withColumn("_plen", primary).select(
        F.expr("substring(path, 1, length(path) - CASE WHEN _plen > 0 THEN _plen + 1 ELSE 0 END)").alias("_stem"),
        F.explode(F.map_keys("extras")).alias("_member"))
    others = stems.select(F.concat("_stem", F.when(F.col("_member") == "", F.lit(""))
                                   .otherwise(F.concat(F.lit("."), F.col("_member")))).alias("path"))
    return written.select("path").unionByName(others)
