"""What the near-duplicate audit reads of a table: its hashed rows, in Spark or collected on the driver.

The rows are the ok originals with a `phash` (augmented copies are their originals' versions, not
near-duplicates of them), each with its second hash, its DCT direction and, for the crop search
(--near-signature crop-robust), its window pHashes: the table's `phash_windows` column, or computed
on the workers from the row's bytes (sparkprep.spark.visuals.windows_column).
"""

from __future__ import annotations

from typing import Dict, List, Optional

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sparkprep.audit.local import HashedRow
from sparkprep.images.phash import PHASH_METADATA_KEY, PHASH_V1, version_of
from sparkprep.schema import python_columns
from sparkprep.spark.visuals import WINDOWS_COLUMN, windows_column
from sparkprep.statuses import OK


def phash_version(table: DataFrame) -> str:
    """Which hash a table's `phash` column holds (sparkprep.images.phash): its field metadata, else phash-v1."""
    return version_of(table.schema["phash"].metadata) if "phash" in table.columns else PHASH_V1


def with_phash_version(table: DataFrame, version: str) -> DataFrame:
    """The table with its `phash` column's version recorded in the field metadata (kept by every write)."""
    return table.withMetadata("phash", {PHASH_METADATA_KEY: version})


NEAR_ORDER = "_near_order"  # the calibration order, collected with a small table's counted columns


def _where(table: DataFrame) -> Column:
    """Where a hashed row came from: its path, or its key (a tabular row)."""
    return F.coalesce(F.col("path"), F.col("key")) if "path" in table.columns else F.col("key")


def _long(table: DataFrame) -> Column:
    """The table's phash256 (null in a table written before it)."""
    return F.col("phash256") if "phash256" in table.columns else F.lit(None).cast("array<bigint>")


def _direction(table: DataFrame) -> Column:
    """The table's dct_direction (null in a table written before it)."""
    return F.col("dct_direction") if "dct_direction" in table.columns else F.lit(None).cast("array<smallint>")


def _windows(table: DataFrame, crops: bool) -> Column:
    """The rows' window pHashes when the crop search wants them, else nulls (nothing is decoded)."""
    return windows_column(table) if crops else F.lit(None).cast("array<bigint>")


def audit_columns(table: DataFrame, crops: bool = False) -> Dict[str, Column]:
    """What the audit reads of a table besides its counted columns (sparkprep.spark.table_stats.small_columns):
    the signatures and the calibration order, so a small table's audit needs no Spark job of its own."""
    columns = {"phash": F.col("phash"), "phash256": _long(table), "dct_direction": _direction(table),
               NEAR_ORDER: F.xxhash64(_where(table), "phash")}
    return {**columns, WINDOWS_COLUMN: _windows(table, True)} if crops else columns


def rows_of_small(small: Dict[str, list]) -> List[HashedRow]:
    """hashed_rows, with their order (collected_rows), from a table's small columns with audit_columns."""
    n = len(small["status"])
    none = [None] * n
    split, aug, path = small.get("split"), small.get("aug_index"), small.get("path")
    return [HashedRow(small["key"][i], split[i] if split is not None else "all", small.get("label", none)[i],
                      path[i] if path is not None and path[i] is not None else small["key"][i],
                      small["phash"][i], small[NEAR_ORDER][i], small.get("phash256", none)[i],
                      small.get("dct_direction", none)[i], small.get(WINDOWS_COLUMN, none)[i])
            for i in range(n) if small["status"][i] == OK and small["phash"][i] is not None
            and (aug is None or aug[i] == 0)]


def hashed_rows(table: DataFrame, crops: bool = False) -> DataFrame:
    """(key, split, label, where, phash, phash256, dct_direction, windows) of the ok originals that have a hash
    (windows: null unless crops)."""
    split = F.col("split") if "split" in table.columns else F.lit("all")
    where = _where(table)
    rows = table.where((F.col("status") == OK) & F.col("phash").isNotNull())
    if "aug_index" in table.columns:
        rows = rows.where(F.col("aug_index") == 0)
    return rows.select("key", split.alias("split"), "label", where.alias("where"), "phash",
                       _long(table).alias("phash256"), _direction(table).alias("dct_direction"),
                       _windows(table, crops).alias("windows"))


def collected_rows(table: DataFrame, limit: int, crops: bool = False) -> Optional[List[HashedRow]]:
    """The hashed rows on the driver (one Spark job), or None when there are more than `limit`."""
    if limit <= 0:
        return None
    rows = hashed_rows(table, crops)
    got = rows.select("key", "split", "label", "where", "phash", F.xxhash64("where", "phash").alias("order"),
                      "phash256", "dct_direction", "windows").limit(limit + 1).toArrow()
    got = python_columns(got)
    if len(got["phash"]) > limit:
        return None
    return [HashedRow(*values) for values in zip(got["key"], got["split"], got["label"], got["where"], got["phash"],
                                                 got["order"], got["phash256"], got["dct_direction"], got["windows"])]
