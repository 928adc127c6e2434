"""preprocess --incremental: the previous processed table is the state; only new and changed samples
are transformed (docs/jobs/preprocess.md).

A split table's ok sample is kept, unread, when the previous output holds it with every column the
transform passes through unchanged (key, split, label, path, sha256, rel_path: the same bytes, the
same split, the same copies' seeds) and all its rows ok. Every other row is transformed. Settings
that decide a processed row (the recipe with its seed, --copies, --augment-splits, --max-pixels,
the format, the sparkprep version) must equal the previous run's, or everything is transformed and
the report says why. The result equals a full run's on the same input, row for row.
"""

from __future__ import annotations

from functools import reduce
from typing import Any, Callable, Dict, Tuple

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.storagelevel import StorageLevel

from sparkprep.ingest.spark.incremental import reusable_output
from sparkprep.spark.tables import read_table
from sparkprep.statuses import OK

# Settings (run report config keys) that decide a processed row beside the sample itself.
PROCESSED_SETTINGS = ("spec", "copies", "augment_splits", "max_pixels", "format")
# The columns a processed row passes through from its split-table row: equal ones mean the same transform.
SAMPLE_COLUMNS = ("key", "split", "label", "path", "sha256", "rel_path")


def _same(a: str, b: str) -> Column:
    """Null-safe equality of the sample columns of the frames aliased a and b."""
    return reduce(lambda x, y: x & y, [F.col(f"{a}.{c}").eqNullSafe(F.col(f"{b}.{c}")) for c in SAMPLE_COLUMNS])


def incremental_frame(spark: SparkSession, cfg: Any, claim_state: str, table: DataFrame,
                      transform: Callable[[DataFrame], DataFrame]) -> Tuple[DataFrame, Dict[str, Any]]:
    """(the processed rows: the previous output's rows for unchanged samples, `transform` of the rest; and
    the report's `incremental` section: listed, kept, transformed, deleted, and why nothing was kept)."""
    previous, reason = reusable_output(spark, cfg, claim_state, PROCESSED_SETTINGS, job="preprocess")
    old = read_table(spark, previous) if previous is not None else None
    if old is not None and ("extras" in table.columns or "extras" in old.columns):
        previous, reason = None, "samples of several members are transformed again whole"
    if previous is None:
        listed = table.count()
        return transform(table), {"previous": None, "listed": listed, "kept": 0, "transformed": listed,
                                  "deleted": 0, "full_run": reason}
    # one small frame of every sample of either table (the sample columns only), counted in one job
    now = table.select(*SAMPLE_COLUMNS, (F.col("status") == OK).alias("_now_ok")).alias("t")
    before = old.groupBy(*SAMPLE_COLUMNS).agg(F.bool_and(F.col("status") == OK).alias("_was_ok")).alias("p")
    both = (now.join(before, _same("t", "p"), "full_outer")
            .select(*[F.coalesce(F.col(f"t.{c}"), F.col(f"p.{c}")).alias(c) for c in SAMPLE_COLUMNS],
                    "_now_ok", (F.col("_now_ok") & F.col("_was_ok")).alias("_keep"))
            .persist(StorageLevel.MEMORY_AND_DISK))
    counts = both.agg(F.count("_now_ok").alias("listed"), F.sum(F.col("_keep").cast("long")).alias("kept"),
                      F.sum(F.col("_now_ok").isNull().cast("long")).alias("deleted")).first()
    keep = both.where(F.col("_keep")).select(*SAMPLE_COLUMNS).alias("k")
    kept = old.alias("o").join(keep, _same("o", "k"), "left_semi")
    todo = table.alias("t").join(keep, _same("t", "k"), "left_anti")
    listed, counted, deleted = int(counts["listed"]), int(counts["kept"] or 0), int(counts["deleted"] or 0)
    fresh = transform(todo)
    return fresh.unionByName(kept.select(*fresh.columns)), {
        "previous": previous, "listed": listed, "kept": counted, "transformed": listed - counted, "deleted": deleted}
