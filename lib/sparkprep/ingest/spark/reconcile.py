"""How the listed input maps onto written rows: every listed file (shard, object) counted once, and
checked against the written table before anything is published."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sparkprep.ingest.spark.samples import accounted_paths, shard_of

EXAMPLES = 5


@dataclass
class Reconciliation:
    """How the listing of --input maps onto catalog rows; every listed file is counted once."""

    listed: int = 0
    skipped_symlinks: List[str] = field(default_factory=list)
    same_name: List[List[str]] = field(default_factory=list)  # distinct files whose NFC relative paths are equal
    skipped_hidden: List[str] = field(default_factory=list)
    skipped_extension: List[str] = field(default_factory=list)
    expected_rows: int = 0
    read_by_spark: int = 0
    from_listing: Dict[str, int] = field(default_factory=dict)  # empty / too_large rows
    scan_settings: Dict[str, str] = field(default_factory=dict)  # partition sizing applied
    identity: int = 0  # path_identity of the expected rows' paths
    incremental: Optional[Any] = None  # Incremental, with --incremental

    def what(self) -> str:
        """What is read, for the stage line."""
        return f"{self.expected_rows} files"

    def as_dict(self, rows: int) -> dict:
        return {
            "listed_files": self.listed,
            "skipped_symlinks": len(self.skipped_symlinks),
            "skipped_symlinks_examples": self.skipped_symlinks[:EXAMPLES],
            "same_name_after_nfc": len(self.same_name),
            "same_name_after_nfc_examples": self.same_name[:EXAMPLES],
            "skipped_hidden": len(self.skipped_hidden),
            "skipped_hidden_examples": self.skipped_hidden[:EXAMPLES],
            "skipped_extension": len(self.skipped_extension),
            "skipped_extension_examples": self.skipped_extension[:EXAMPLES],
            "expected_rows": self.expected_rows,
            "read_by_spark": self.read_by_spark,
            "rows_from_listing": self.from_listing,
            "rows": rows,
            "reconciled": rows == self.expected_rows,
            "scan_settings": self.scan_settings,
        }

    def verify(self, written: DataFrame, summary: dict, small: Optional[Dict[str, list]] = None) -> None:
        """Raise unless the written table holds one row per listed file (or per sample, with its other
        members' files), and exactly those files. small: the table's small columns as read back
        (sparkprep.spark.table_stats.small_columns), checked on the driver instead of in a Spark job."""
        if small is not None and "path" in small and "extras" not in written.columns:
            aug = small.get("aug_index")
            paths = [p for i, p in enumerate(small["path"]) if aug is None or aug[i] == 0]
            present = [p for p in paths if p is not None]
            row = {"rows": len(paths), "paths": len(set(present)), "identity": path_identity(present)}
        else:
            originals = written.where(F.col("aug_index") == 0) if "aug_index" in written.columns else written
            row = accounted_paths(originals).agg(
                F.count(F.lit(1)).alias("rows"), F.countDistinct("path").alias("paths"),
                F.sum(path_identity_term(F.col("path"))).alias("identity")).collect()[0]
        identity = int(row["identity"] or 0)
        summary["identity_matches"] = identity == self.identity and row["paths"] == row["rows"]
        summary["reconciled"] = summary["identity_matches"] and row["rows"] == self.expected_rows
        if not summary["reconciled"]:
            raise ReconciliationError(
                f"{self.expected_rows} files listed but {row['rows']} rows written ({row['paths']} distinct paths, "
                f"identity {'matches' if identity == self.identity else 'differs'}): did files change during the run? "
                "Nothing was published; the previous output is untouched")


class ReconciliationError(RuntimeError):
    """The written rows are not exactly the listed files; raised before anything is published."""


def path_identity(paths) -> int:
    """An order-free fingerprint of a set of paths: the sum of each path's sha256 prefix.

    Spark sums the same terms (path_identity_term), so the driver can compare what was
    listed with what was written without collecting the rows.
    """
    return sum(int(hashlib.sha256(p.encode("utf-8")).hexdigest()[:15], 16) for p in paths)


def path_identity_term(path: Column) -> Column:
    """One path's term of path_identity, in Spark SQL (a decimal, so the sum never overflows)."""
    return F.conv(F.substring(F.sha2(path, 256), 1, 15), 16, 10).cast("decimal(38,0)")


@dataclass
class ShardReconciliation:
    """WebDataset input: every listed shard must show up in the written rows (a damaged or
    missing one as a quarantine row), and no other."""

    shards: List[str] = field(default_factory=list)
    incremental: Optional[Any] = None  # Incremental, with --incremental

    def what(self) -> str:
        return f"{len(self.shards)} WebDataset shards"

    def as_dict(self, rows: int) -> dict:
        return {"listed_shards": len(self.shards), "shard_examples": self.shards[:EXAMPLES], "rows": rows,
                "expected_rows": None, "reconciled": None}

    def verify(self, written: DataFrame, summary: dict, small: Optional[Dict[str, list]] = None) -> None:
        seen = written.select(shard_of().alias("shard")).distinct().agg(
            F.count(F.lit(1)).alias("n"), F.sum(path_identity_term(F.col("shard"))).alias("identity")).first()
        summary["reconciled"] = int(seen["n"]) == len(self.shards) and \
            int(seen["identity"] or 0) == path_identity(self.shards)
        if not summary["reconciled"]:
            raise ReconciliationError(f"{len(self.shards)} shards listed but rows came from {seen['n']} shards: "
                                      "did shards change during the run? Nothing was published")


@dataclass
class ManifestReconciliation:
    """A manifest's objects against the written rows, counted by Spark aggregates (never collected)."""

    manifest: str
    listed: int = 0
    skipped_extension: int = 0
    expected_rows: int = 0
    outside_input: int = 0  # objects not under --input: no relative path, no folder label; left out and reported
    outside_examples: List[str] = field(default_factory=list)
    incremental: Optional[Any] = None  # Incremental, with --incremental

    def what(self) -> str:
        return f"{self.expected_rows} objects of {self.manifest}"

    def as_dict(self, rows: int) -> dict:
        return {"manifest": self.manifest, "listed_files": self.listed, "skipped_extension": self.skipped_extension,
                "skipped_hidden": 0, "skipped_symlinks": 0, "outside_input": self.outside_input,
                "outside_input_examples": self.outside_examples, "expected_rows": self.expected_rows,
                "read_by_spark": 0, "read_by_workers": self.expected_rows, "rows": rows,
                "reconciled": rows == self.expected_rows}

    def verify(self, written: DataFrame, summary: dict, small: Optional[Dict[str, list]] = None) -> None:
        originals = written.where(F.col("aug_index") == 0) if "aug_index" in written.columns else written
        row = accounted_paths(originals).agg(F.count(F.lit(1)).alias("rows"),
                                             F.countDistinct("path").alias("paths")).first()
        summary["reconciled"] = row["rows"] == row["paths"] == self.expected_rows
        if not summary["reconciled"]:
            raise ReconciliationError(f"{self.expected_rows} objects in the manifest but {row['rows']} rows written "
                                      f"({row['paths']} distinct paths): nothing was published")
