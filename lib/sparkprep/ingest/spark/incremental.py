"""--incremental: the previous output is the state; only new and changed files are read."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pyarrow as pa

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.storagelevel import StorageLevel

from sparkprep import __version__
from sparkprep.errors import UsageError
from sparkprep.images.phash import PHASH_V1, version_of
from sparkprep.ingest.fetch import FetchSettings
from sparkprep.ingest.flags import IngestConfig
from sparkprep.ingest.spark.manifests import counted_manifest, listed_uri, unversioned_manifest
from sparkprep.ingest.paths import SAMPLE_RULE
from sparkprep.ingest.spark.samples import shard_of
from sparkprep.ingest.spark.sources import (Listing, extension_regex, fetched_catalog, finished_catalog,
                                            list_shards, listed_input, read_shards)
from sparkprep.ingest.spark.reconcile import ShardReconciliation
from sparkprep.runlog import config_dict
from sparkprep.schema import CATALOG_SCHEMA, without_later_column
from sparkprep.spark import ownership
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.spark.tables import is_delta_table, read_table
from sparkprep.statuses import CONFLICTING_LABELS, DUPLICATE_KEY, MISSING_KEY, NO_GROUP, UNREADABLE
from sparkprep.uris import is_local, local_path, qualify

# --incremental: the settings that decide a file's catalog row (its content or its label). A previous
# run with other values for any of them, or written by another sparkprep version, is not reused: every
# file is read again. The manifest's own path is not among them: S3 Inventory writes each manifest.json
# under a new dated prefix, and what decides a row is the listing (path, size, version), compared row by row.
ROW_SETTINGS = ("input", "extensions", "labels", "label_regex", "label_member", "validate", "max_file_bytes",
                "max_pixels", "samples", "phash", "follow_symlinks")


# Statuses the split stage gives (from the key, not the file): such rows are read again.
KEY_STATUSES = (NO_GROUP, MISSING_KEY, UNREADABLE)
# ... and statuses that other files decide (a sample's members disagreeing on the label, a sample key in several
# shards): a file, sample or shard with a row of any of these is read again, so that its rows are made afresh.
AGAIN_STATUSES = KEY_STATUSES + (CONFLICTING_LABELS, DUPLICATE_KEY)


@dataclass
class Incremental:
    """What --incremental reused: the state the next run matches against, and the counts."""

    state: DataFrame            # (path, size, version) of every listed file: written beside the table
    previous: Optional[str]     # the table reused, or None
    reason: str                 # why every file was read, when none was reused
    counts: Dict[str, int] = field(default_factory=dict)
    cached: List[DataFrame] = field(default_factory=list)  # persisted for the table's write: freed after it

    def release(self) -> None:
        """Free what was persisted for the table's write (once it is written)."""
        for frame in self.cached:
            frame.unpersist()
        self.cached.clear()

    def as_dict(self) -> dict:
        return {"previous": self.previous, "state": ownership.LISTING_STATE, **self.counts,
                **({"full_read": self.reason} if self.reason else {})}


def incremental_catalog(spark: SparkSession, cfg: IngestConfig, claim_state: str
                        ) -> Tuple[DataFrame, Any, Incremental]:
    """The catalog of --input where only new and changed files are read.

    The previous output is the state: its rows, and its listing state (path, size, version:
    the mtime in ns for a listed folder or shard, the ETag or last-modified date of an S3 Inventory row).
    What is kept or read is a unit (`_units`): a file; with --samples basename, a sample (every file that
    shares its basename); for WebDataset input, a shard. A unit whose listed files all equal the state's,
    that lost none and gained none, and none of whose rows has a status other files decide (AGAIN_STATUSES)
    keeps its previous rows, unread; the other units are read whole; deleted files are counted and disappear.
    """
    fetch = FetchSettings(cfg.fetch_concurrency, cfg.max_file_bytes, cfg.s3_endpoint)
    shards = getattr(cfg, "input_kind", None) == "webdataset"
    samples = "basename" if shards else cfg.samples
    listing, root, rec = _shard_listing(spark, cfg) if shards else _versioned_listing(spark, cfg, fetch)
    unit = "shards" if shards else "files"
    previous, reason = _reusable_output(spark, cfg, claim_state)
    table = read_table(spark, previous) if previous is not None else None
    hashes_differ = _other_hashes(cfg, table) if table is not None else ""
    if hashes_differ:
        previous, reason = None, hashes_differ

    def read(files: DataFrame) -> DataFrame:  # the catalog rows of these listed files (shards), not finished
        if shards:
            return read_shards(spark, cfg, [r[0] for r in files.select("uri").collect()])
        return fetched_catalog(spark, files, root, cfg, fetch, finish=False)

    listed = _listed_count(rec)
    if previous is None:
        return (finished_catalog(spark, read(listing), cfg, samples), rec,
                Incremental(_state_of(listing), None, reason, {"listed": listed, "read": listed, "kept": 0,
                                                                "deleted": 0, **_unit_named(unit)}))
    old_state = spark.read.parquet(f"{previous}/{ownership.LISTING_STATE}")
    listing_unit, row_unit = _units(samples, shards)
    listing = listing.withColumn("_unit", listing_unit(F.col("uri")))
    # Plain equality: a null size or version (a manifest row that does not say) is never "unchanged".
    same = ((listing.uri == old_state.path) & (listing["size"] == old_state["size"])
            & (listing.version == old_state.version))
    rows = table.select(*CATALOG_SCHEMA.names).withColumn("_unit", row_unit)
    gone = old_state.join(listing, old_state.path == listing.uri, "left_anti")
    unsure = (listing.join(old_state, same, "left_anti").select("_unit")
              .unionByName(gone.select(listing_unit(F.col("path")).alias("_unit")))
              .unionByName(rows.where(F.col("status").isin(*AGAIN_STATUSES)).select("_unit")))
    units = (listing.join(old_state, same, "left_semi").select("_unit").distinct()
             .join(unsure, "_unit", "left_anti").join(rows.select("_unit"), "_unit", "left_semi")
             .persist(StorageLevel.MEMORY_AND_DISK))
    # not persisted: its bytes are read once, where the table is written (the previous output is replaced only
    # after that), and its counts read the narrow columns alone
    kept = rows.join(units, "_unit", "left_semi")
    fresh = read(listing.join(units, "_unit", "left_anti"))
    cached = [units]
    if shards:
        fresh = fresh.persist(StorageLevel.DISK_ONLY)  # read once: its keys are matched, then its rows written
        cached.append(fresh)
        kept, fresh = _without_clashes(spark, cfg, kept, fresh)
    counted = kept.count()
    kept_units = kept.select("_unit").distinct().count() if shards else counted
    tally = listing.agg(F.sum((F.col("size").isNull() | F.col("version").isNull()).cast("long")).alias("n")).first()
    counts = {"listed": listed, "kept": counted, "read": listed - kept_units, "deleted": gone.count(),
              "unversioned": int(tally["n"] or 0), **_unit_named(unit)}
    return (finished_catalog(spark, kept.drop("_unit").unionByName(fresh), cfg, samples), rec,
            Incremental(_state_of(listing), previous, "", counts, cached))


def _listed_count(rec: Any) -> int:
    """The files listed (for WebDataset input, the shards)."""
    return len(rec.shards) if hasattr(rec, "shards") else rec.expected_rows


def _unit_named(unit: str) -> Dict[str, Any]:
    """The counts' unit, said where it is not files (for WebDataset input `read` counts shards, `kept` rows)."""
    return {"unit": unit} if unit != "files" else {}


def _units(samples: str, shards: bool) -> Tuple[Callable[[Column], Column], Column]:
    """(the unit of a listed file's uri, the unit of a previous row): what an incremental run keeps or reads
    whole. A file is its own unit; with --samples basename the unit is the uri up to the member name (the files
    of one sample, by the rule of docs/contracts.md, Samples, applied to the whole uri); a WebDataset shard is
    the unit of its members' rows."""
    if shards:
        return (lambda uri: uri), shard_of()
    if samples == "file":
        return (lambda uri: uri), F.col("path")

    def stem(uri: Column) -> Column:
        return F.when(uri.rlike(SAMPLE_RULE.pattern), F.regexp_extract(uri, SAMPLE_RULE.pattern, 1)).otherwise(uri)
    return stem, stem(F.col("path"))


def _without_clashes(spark: SparkSession, cfg: IngestConfig, kept: DataFrame, fresh: DataFrame
                     ) -> Tuple[DataFrame, DataFrame]:
    """WebDataset input: a kept shard holding a sample key that a shard read now holds too is read again, so that
    the clash (duplicate_key for both) is decided over the members' own statuses and labels, as a full run does.
    A kept shard clashes only with shards read now: with the others it had no duplicate_key row."""
    keys = fresh.where(F.col("sample") != "").select("sample").distinct()
    clashing = [r[0] for r in kept.join(keys, "sample", "left_semi").select("_unit").distinct().collect()]
    if not clashing:
        return kept, fresh
    again = spark.createDataFrame([(u,) for u in clashing], "_unit string")
    return kept.join(again, "_unit", "left_anti"), fresh.unionByName(read_shards(spark, cfg, clashing))


def _arrow(spark: SparkSession, uri: str, columns: List[str], table: bool = False) -> pa.Table:
    """These columns of a parquet directory (table: a sparkprep table, parquet or Delta): read by pyarrow
    on the driver where the directory is a local parquet one (no Spark job), else collected from Spark."""
    fs = HadoopFS(spark)
    if is_local(uri) and not (table and is_delta_table(fs, uri)):
        import pyarrow.dataset as ds

        return ds.dataset(local_path(uri), format="parquet", partitioning="hive").to_table(columns=columns)
    return (read_table(spark, uri) if table else spark.read.parquet(uri)).select(*columns).toArrow()


def _state_of(listing: DataFrame) -> DataFrame:
    return listing.select(F.col("uri").alias("path"), "size", "version")


def _versioned_listing(spark: SparkSession, cfg: IngestConfig, fetch: FetchSettings) -> Tuple[DataFrame, str, Any]:
    """(uri, size, version) of every wanted file, the root, and the reconciliation."""
    if cfg.manifest:
        missing = unversioned_manifest(spark, cfg.manifest)
        if missing:
            raise UsageError(f"--incremental: {missing}, so a changed object could not be told from an unchanged "
                             "one; add the column (or the Inventory field), or run without --incremental")
        listing, root, rec = counted_manifest(spark, cfg, fetch)
        wanted = listing.where(F.col("uri").rlike(extension_regex(cfg.extensions)))
        return (wanted.select(listed_uri(F.col("uri")).alias("uri"), "size",
                              F.coalesce("etag", "last_modified").alias("version")), root, rec)
    mtimes: Dict[str, int] = {}
    listed = listed_input(spark, cfg, mtimes)
    return spark.createDataFrame(_versions(listed, mtimes), "uri string, size long, version string"), listed.root, \
        listed.rec


def _shard_listing(spark: SparkSession, cfg: IngestConfig) -> Tuple[DataFrame, str, ShardReconciliation]:
    """(uri, size, version: the mtime in ns) of every WebDataset shard, the root, and the reconciliation."""
    mtimes: Dict[str, int] = {}
    shards = list_shards(spark, cfg.input, mtimes)
    versions = [(u, s, str(mtimes[u]) if u in mtimes else None) for u, s in shards]
    return (spark.createDataFrame(versions, "uri string, size long, version string"), qualify(cfg.input),
            ShardReconciliation([u for u, _ in shards]))


def _versions(listed: Listing, mtimes: Dict[str, int]) -> List[Tuple[str, int, Optional[str]]]:
    """(uri, size, version: the mtime in ns) of every listed file."""
    return [(uri, size, str(mtimes[uri]) if uri in mtimes else None) for uri, size in listed.to_read + listed.from_listing]


def unchanged_files(spark: SparkSession, listed: Listing, mtimes: Dict[str, int], previous: Optional[str],
                    reason: str) -> Tuple[Listing, List[str], Incremental]:
    """A folder's listing matched, on the driver, against the previous output's listing state (the pipeline's
    one pass lists on the driver too): (the listing of the files to read, the paths whose previous rows are
    kept unread, and the Incremental record). A file is unchanged when its (path, size, mtime) equals the
    state's and its previous row's status came from the file, not from the key (KEY_STATUSES)."""
    versions = _versions(listed, mtimes)
    state = spark.createDataFrame(pa.table({"path": pa.array([u for u, _, _ in versions], pa.string()),
                                            "size": pa.array([s for _, s, _ in versions], pa.int64()),
                                            "version": pa.array([v for _, _, v in versions], pa.string())}))
    listed_count = len(versions)
    if previous is None:
        return listed, [], Incremental(state, None, reason, {"listed": listed_count, "read": listed_count,
                                                              "kept": 0, "deleted": 0})
    old = _arrow(spark, f"{previous}/{ownership.LISTING_STATE}", ["path", "size", "version"])
    before = {(p, s, v) for p, s, v in zip(*(old.column(c).to_pylist() for c in ("path", "size", "version")))
              if s is not None and v is not None}
    statuses = _arrow(spark, previous, ["path", "status"], table=True)
    again = {p for p, s in zip(statuses.column("path").to_pylist(), statuses.column("status").to_pylist())
             if s in KEY_STATUSES}
    kept = {u for u, s, v in versions if (u, s, v) in before and u not in again}
    now = {u for u, _, _ in versions}
    deleted = len(set(old.column("path").to_pylist()) - now)
    rest = dataclasses.replace(listed, to_read=[f for f in listed.to_read if f[0] not in kept],
                               from_listing=[f for f in listed.from_listing if f[0] not in kept], subset=True)
    counts = {"listed": listed_count, "kept": len(kept), "read": listed_count - len(kept), "deleted": deleted,
              "unversioned": sum(1 for _, _, v in versions if v is None)}
    return rest, sorted(kept), Incremental(state, previous, "", counts)


def relabelled(spark: SparkSession, previous: str, kept: Sequence[str], labels: Dict[str, Optional[str]]) -> List[str]:
    """The kept files (paths) whose previous split row's label is not the one a labels CSV now gives: their
    rows are made again where the rows cannot be relabelled in place (the pipeline's workers write them)."""
    old = _arrow(spark, previous, ["path", "rel_path", "label"], table=True)
    wanted = set(kept)
    return sorted(p for p, rel, label in zip(*(old.column(c).to_pylist() for c in ("path", "rel_path", "label")))
                  if p in wanted and labels.get(rel) != label)


def _reusable_output(spark: SparkSession, cfg: IngestConfig, claim_state: str) -> Tuple[Optional[str], str]:
    """(the previous output to reuse, or None with the reason every file is read)."""
    return reusable_output(spark, cfg, claim_state, ROW_SETTINGS, ownership.LISTING_STATE)


def reusable_output(spark: SparkSession, cfg: Any, claim_state: str, settings: Sequence[str],
                    state: Optional[str] = None, job: Optional[str] = None) -> Tuple[Optional[str], str]:
    """(the previous output of this config to reuse, or None with the reason nothing is reused).

    Reusable: an output this tool wrote and owns (claim_state), holding `state` (a file beside the
    table) when one is named, written by this sparkprep version with the same `settings` (run report
    config keys: the ones that decide a row), and by `job` when one is named.
    """
    if claim_state != "owned":
        return None, "no previous output"
    fs = HadoopFS(spark)
    uri = fs.qualify(cfg.output).rstrip("/")
    if state is not None and not fs.exists(f"{uri}/{state}"):
        return None, "the previous output has no listing state (written without --incremental)"
    report = ownership.json_object(fs.read_text(f"{uri}/{ownership.REPORT_NAME}")) or {}
    if job is not None and report.get("job") != job:
        return None, f"the previous output was written by {report.get('job') or 'another'} job, not {job}"
    before = report.get("config") or {}
    now = json.loads(json.dumps(config_dict(cfg)))  # as the report holds it: nested tuples are lists there
    changed = [k for k in settings if before.get(k) != now.get(k)]
    if changed:
        return None, f"settings that decide a row changed since the previous run: {', '.join(changed)}"
    written_by = (report.get("versions") or {}).get("sparkprep")
    if written_by != __version__:
        return None, f"the previous output was written by sparkprep {written_by}, this is {__version__}"
    return uri, ""


def _other_hashes(cfg: IngestConfig, previous: DataFrame) -> str:
    """Why the previous rows cannot be kept for their hash version ('' when they can): ingest hashes with
    its own decode (phash-v1); rows hashed otherwise would mix two versions in one table."""
    if without_later_column(previous.columns):  # its rows lack a catalog column: read every file again
        return without_later_column(previous.columns)
    if not cfg.phash or "phash" not in previous.columns:
        return ""
    hashes = version_of(previous.schema["phash"].metadata)
    return f"the previous output's hashes are {hashes}, this run computes {PHASH_V1}" if hashes != PHASH_V1 else ""
