"""Raw files -> catalog DataFrame: binaryFile scan, Arrow-batched probing, reconciliation."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window, functions as F
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StringType

from sparkprep import __version__, capacity
from sparkprep.cli import UsageError, config_dict
from sparkprep.ingest.catalog_rows import ProbeSettings, catalog_batches
from sparkprep.ingest.fetch import FetchSettings, fetched_batches
from sparkprep.ingest.flags import IngestConfig
from sparkprep.ingest.inventory import LISTING_SCHEMA, inventory_files, listing_rows, parse_manifest
from sparkprep.ingest.listing import is_local, list_files, qualify, read_bytes
from sparkprep.ingest.paths import is_hidden, relative_path
from sparkprep.ingest.tar_shards import SHARD_EXTENSIONS, shard_rows
from sparkprep.ingest.whole_samples import accounted_paths, shard_of
from sparkprep.report.run_report import StageClock
from sparkprep.report.spark import write_reported_table
from sparkprep.schema import CATALOG_SCHEMA, CONFLICTING_LABELS, DUPLICATE_KEY, MISSING_KEY, NO_GROUP, OK, UNREADABLE
from sparkprep.spark import ownership
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.spark.tables import claimed_output, payload_options, read_table

EXAMPLES = 5
# Bound on content bytes per Arrow batch sent to Python: small enough that the JVM
# feeds the next batch while Python works on this one, and memory stays flat.
BATCH_BYTES = 16 << 20
OPEN_COST_BYTES = 64 << 10  # what a file "costs" when Spark packs files into tasks
TASKS_PER_CORE = 4


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

    def verify(self, written: DataFrame, summary: dict) -> None:
        """Raise unless the written table holds one row per listed file (or per sample, with its other
        members' files), and exactly those files."""
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


def extension_regex(extensions) -> str:
    """Case-insensitive, Java- and Python-compatible regex matching the wanted extensions."""
    return r"(?i)\.(" + "|".join(re.escape(e) for e in extensions) + r")$"


@dataclass
class ShardReconciliation:
    """WebDataset input: every listed shard must show up in the written rows (a damaged or
    missing one as a quarantine row), and no other."""

    shards: List[str] = field(default_factory=list)

    def what(self) -> str:
        return f"{len(self.shards)} WebDataset shards"

    def as_dict(self, rows: int) -> dict:
        return {"listed_shards": len(self.shards), "shard_examples": self.shards[:EXAMPLES], "rows": rows,
                "expected_rows": None, "reconciled": None}

    def verify(self, written: DataFrame, summary: dict) -> None:
        seen = written.select(shard_of().alias("shard")).distinct().agg(
            F.count(F.lit(1)).alias("n"), F.sum(path_identity_term(F.col("shard"))).alias("identity")).first()
        summary["reconciled"] = int(seen["n"]) == len(self.shards) and \
            int(seen["identity"] or 0) == path_identity(self.shards)
        if not summary["reconciled"]:
            raise ReconciliationError(f"{len(self.shards)} shards listed but rows came from {seen['n']} shards: "
                                      "did shards change during the run? Nothing was published")


def catalog_frame(spark: SparkSession, cfg: IngestConfig, claim_state: str = "new") -> Tuple[DataFrame, Reconciliation]:
    """One row per wanted input file, as CATALOG_SCHEMA, plus the listing reconciliation.

    With --input-kind webdataset, one row per member of every .tar shard instead. With
    --incremental, the previous output's rows for unchanged files (claim_state: the output's).
    """
    if getattr(cfg, "input_kind", None) == "webdataset":
        return shard_catalog(spark, cfg)
    if cfg.incremental:
        catalog, rec, rec.incremental = incremental_catalog(spark, cfg, claim_state)
        return catalog, rec
    if cfg.manifest:
        return manifest_catalog(spark, cfg)
    listing = listed_input(spark, cfg)
    if not HadoopFS(spark).readable(listing.root):  # s3:// without s3a: the workers read the objects
        rows = spark.createDataFrame(listing.to_read + listing.from_listing, "uri string, size long")
        fetch = FetchSettings(cfg.fetch_concurrency, cfg.max_file_bytes, cfg.s3_endpoint)
        listing.rec.read_by_spark = 0
        return fetched_catalog(spark, rows, listing.root, cfg, fetch), listing.rec
    catalog = binary_scan(spark, cfg, listing).mapInArrow(
        functools.partial(catalog_batches, settings=probe_settings(cfg, listing.root, cfg.samples)),
        from_arrow_schema(CATALOG_SCHEMA))
    return finished_catalog(spark, catalog, cfg, cfg.samples), listing.rec


@dataclass
class Listing:
    """The driver's listing of --input: what Spark reads, what only the listing knows, and the reconciliation."""

    root: str
    rec: Reconciliation
    to_read: List[Tuple[str, int]]       # (uri, size) of the files to read
    from_listing: List[Tuple[str, int]]  # empty or too large: rows made from the listing alone
    links: List[str]                     # symlinks seen (and skipped unless followed)


def listed_input(spark: SparkSession, cfg: IngestConfig, mtimes: Optional[Dict[str, int]] = None) -> Listing:
    """List --input on the driver, keep the wanted files, count every listed file once, and size the scan
    (mtimes, when given, receives each listed file's modification time)."""
    root = qualify(cfg.input)
    links: List[str] = []
    listing = list_files(cfg.input, cfg.follow_symlinks, links, mtimes)
    wanted_ext = re.compile(extension_regex(cfg.extensions))
    rec = Reconciliation(listed=len(listing), skipped_symlinks=[relative_path(l, root) for l in links])
    to_read: List[Tuple[str, int]] = []
    from_listing: List[Tuple[str, int]] = []
    spellings: Dict[str, List[str]] = {}
    for uri, size in listing:
        rel = relative_path(uri, root)
        spellings.setdefault(rel, []).append(uri)
        if is_hidden(rel):
            rec.skipped_hidden.append(rel)
        elif not wanted_ext.search(rel):
            rec.skipped_extension.append(rel)
        elif 0 < size <= cfg.max_file_bytes:
            to_read.append((uri, size))
        else:
            from_listing.append((uri, size))
    # An NFC and an NFD spelling are two files with one relative path: both stay rows, and are reported.
    rec.same_name = [sorted(uris) for _, uris in sorted(spellings.items()) if len(uris) > 1]
    rec.expected_rows = len(to_read) + len(from_listing)
    rec.identity = path_identity(uri for uri, _ in to_read + from_listing)
    rec.read_by_spark = len(to_read)
    rec.from_listing = {"empty": sum(1 for _, s in from_listing if s == 0),
                        "too_large": sum(1 for _, s in from_listing if s > 0)}
    if rec.expected_rows == 0:
        raise UsageError(f"--input: no files with extensions {','.join(cfg.extensions)} under {cfg.input}")
    rec.scan_settings = tune_scan(spark, [s for _, s in to_read], len(to_read))
    return Listing(root, rec, to_read, from_listing, links)


def binary_scan(spark: SparkSession, cfg: IngestConfig, listing: Listing) -> DataFrame:
    """(path, length, content) of every listed file: Spark's binaryFile reads the bytes; files only
    the listing knows (empty, too large) come with null content."""
    scan = (spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(listing.root)
            .where((F.col("length") > 0) & (F.col("length") <= cfg.max_file_bytes))
            .where(F.col("path").rlike(extension_regex(cfg.extensions)))
            .select("path", "length", "content"))
    if listing.links:  # Spark's scan follows links (and loops): keep exactly the files of our own listing
        listed = spark.createDataFrame([(uri,) for uri, _ in listing.to_read], "path string")
        scan = scan.join(F.broadcast(listed), "path", "left_semi")
    if listing.from_listing:
        unread = spark.createDataFrame(listing.from_listing, "path string, length long").withColumn(
            "content", F.lit(None).cast("binary"))
        scan = scan.unionByName(unread)
    return scan


def probe_settings(cfg: IngestConfig, root: str, samples: str) -> ProbeSettings:
    return ProbeSettings(root=root, label_regex=cfg.label_regex, full_validate=cfg.validate == "full",
                         max_file_bytes=cfg.max_file_bytes, max_pixels=cfg.max_pixels, samples=samples,
                         phash=cfg.phash, label_member=getattr(cfg, "label_member", None))


def finished_catalog(spark: SparkSession, catalog: DataFrame, cfg: IngestConfig, samples: str) -> DataFrame:
    """Labels from the CSV, then (for samples of several files) whole-sample quarantine."""
    if cfg.labels:
        catalog = with_labels_file(spark, catalog, cfg.labels)
    if samples == "basename":
        per_file = bool(cfg.labels or cfg.label_regex or getattr(cfg, "label_member", None))
        catalog = whole_sample_quarantine(catalog, labels_per_file=per_file,
                                          shards=getattr(cfg, "input_kind", None) == "webdataset")
    return catalog


def list_shards(spark: SparkSession, uri: str) -> List[Tuple[str, int]]:
    """(uri, size) of the WebDataset shards: a glob pattern, a directory (recursively) or one shard."""
    if any(c in uri for c in "*?[{"):
        found = HadoopFS(spark).glob(uri if not is_local(uri) else qualify(uri))
    else:
        found = list_files(uri)
    return [(u, s) for u, s in found if u.lower().endswith(SHARD_EXTENSIONS)]


def shard_catalog(spark: SparkSession, cfg: IngestConfig) -> Tuple[DataFrame, "ShardReconciliation"]:
    """One CATALOG_SCHEMA row per member of every shard, members grouped into samples by WebDataset's rule.

    Each task streams whole shards (a few per core), so nothing of O(members) reaches the driver.
    """
    shards = list_shards(spark, cfg.input)
    if not shards:
        raise UsageError(f"--input: expected WebDataset shards (.tar, .tar.gz), found none at {cfg.input}")
    cores = spark.sparkContext.defaultParallelism
    uris = spark.createDataFrame([(u,) for u, _ in shards], "path string").repartition(
        max(1, min(len(shards), cores * TASKS_PER_CORE)))
    work = functools.partial(_shard_catalog_batches, max_bytes=cfg.max_file_bytes,
                             settings=probe_settings(cfg, qualify(cfg.input), "basename"))
    catalog = uris.mapInArrow(work, from_arrow_schema(CATALOG_SCHEMA))
    return finished_catalog(spark, catalog, cfg, "basename"), ShardReconciliation([u for u, _ in shards])


def _shard_catalog_batches(batches, max_bytes, settings):
    """On the executor: stream the shards' members and catalogue them, in one Python pass."""
    yield from catalog_batches(shard_rows(batches, max_bytes), settings)


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

    def verify(self, written: DataFrame, summary: dict) -> None:
        originals = written.where(F.col("aug_index") == 0) if "aug_index" in written.columns else written
        row = accounted_paths(originals).agg(F.count(F.lit(1)).alias("rows"),
                                             F.countDistinct("path").alias("paths")).first()
        summary["reconciled"] = row["rows"] == row["paths"] == self.expected_rows
        if not summary["reconciled"]:
            raise ReconciliationError(f"{self.expected_rows} objects in the manifest but {row['rows']} rows written "
                                      f"({row['paths']} distinct paths): nothing was published")


def manifest_catalog(spark: SparkSession, cfg: IngestConfig) -> Tuple[DataFrame, ManifestReconciliation]:
    """The catalog of the objects a manifest lists: no listing of --input, the workers read the bytes."""
    fetch = FetchSettings(cfg.fetch_concurrency, cfg.max_file_bytes, cfg.s3_endpoint)
    listing, root, rec = counted_manifest(spark, cfg, fetch)
    return fetched_catalog(spark, listing, root, cfg, fetch), rec


def listed_uri(uri: Column) -> Column:
    """A manifest's uri as the catalog spells the row's path (fetch.fetch_one): a local path gets file:."""
    return F.when(uri.rlike("^[A-Za-z][A-Za-z0-9+.-]*:"), uri).otherwise(F.concat(F.lit("file:"), uri))


def under_root(uri: Column, root: str) -> Column:
    """Whether a listed uri is the root or below it (s3://, s3a:// and s3n:// spell one store)."""
    same = lambda c: F.regexp_replace(c, r"^s3[an]://", "s3://")  # noqa: E731
    base = re.sub(r"^s3[an]://", "s3://", root.rstrip("/"))
    return (same(uri) == F.lit(base)) | same(uri).startswith(base + "/")


def counted_manifest(spark: SparkSession, cfg: IngestConfig, fetch: FetchSettings
                     ) -> Tuple[DataFrame, str, ManifestReconciliation]:
    """(the manifest's listing of wanted objects under the root, the root, its reconciliation counted
    by Spark aggregates). Objects outside the root are counted and left out, never a failed task."""
    listing, root = manifest_listing(spark, cfg.manifest, fetch)
    root = qualify(cfg.input) if cfg.input else root
    if not root:
        raise UsageError("--input: expected the root the manifest's paths are relative to (their folder names are "
                         "the labels), got nothing")
    wanted_ext = F.col("uri").rlike(extension_regex(cfg.extensions))
    inside = under_root(listed_uri(F.col("uri")), root)
    counts = listing.agg(F.count(F.lit(1)).alias("listed"), F.sum(wanted_ext.cast("long")).alias("wanted"),
                         F.sum((wanted_ext & ~inside).cast("long")).alias("outside")).first()
    listed, outside = int(counts["listed"]), int(counts["outside"] or 0)
    wanted = int(counts["wanted"] or 0) - outside
    examples = [r["uri"] for r in listing.where(wanted_ext & ~inside).select("uri").orderBy("uri").limit(EXAMPLES)
                .collect()] if outside else []
    if wanted == 0:
        where = f" under {root}" if outside else ""
        raise UsageError(f"--manifest: no objects with extensions {','.join(cfg.extensions)}{where} in {cfg.manifest}"
                         + (f" ({outside} are outside it, e.g. {examples[0]})" if outside else ""))
    return (listing.where(inside), root,
            ManifestReconciliation(cfg.manifest, listed, listed - wanted - outside, wanted, outside, examples))


def manifest_listing(spark: SparkSession, manifest: str, fetch: FetchSettings) -> Tuple[DataFrame, str]:
    """(a LISTING_SCHEMA DataFrame of every object a manifest lists, the root labels are relative to).

    An S3 Inventory manifest.json: the driver reads only that JSON; each inventory file is read
    and parsed by a task. A CSV or parquet table with a `uri` (and optional `size`) column is
    read by Spark. Nothing of O(objects) is collected to the driver.
    """
    if manifest.rstrip("/").endswith(".json"):
        inventory = parse_manifest(read_bytes(manifest).decode("utf-8"), manifest)
        files = spark.createDataFrame(inventory_files(inventory), "uri string, size long").repartition(
            max(1, len(inventory.files)))
        # inventory files run to hundreds of MB: no --max-file-bytes for the listing itself
        work = functools.partial(_inventory_batches, inventory=inventory,
                                 fetch=dataclasses.replace(fetch, max_file_bytes=1 << 40))
        return files.mapInArrow(work, from_arrow_schema(LISTING_SCHEMA)), f"s3://{inventory.source_bucket}"
    reader = spark.read.option("header", "true") if manifest.lower().endswith((".csv", ".csv.gz")) else spark.read
    table = reader.csv(manifest) if manifest.lower().endswith((".csv", ".csv.gz")) else reader.parquet(manifest)
    if "uri" not in table.columns:
        raise UsageError(f"--manifest: expected a `uri` column (and optionally `size`), got {table.columns}")

    def optional(name: str, kind: str) -> Column:
        return (F.col(name) if name in table.columns else F.lit(None)).cast(kind).alias(name)

    listing = table.select(F.col("uri").cast("string").alias("uri"), optional("size", "long"),
                           optional("last_modified", "string"), optional("etag", "string"))
    root = listing.select(F.regexp_extract("uri", r"^([a-z0-9]+://[^/]*)", 1).alias("root")).first()
    return listing, (root["root"] if root else "")


def _inventory_batches(batches, inventory, fetch):
    """On the executor: read each inventory file (with the object fetcher) and list its objects."""
    for fetched in fetched_batches(batches, fetch):
        for path, content, error in zip(fetched.column("path").to_pylist(), fetched.column("content").to_pylist(),
                                        fetched.column("error").to_pylist()):
            if content is None:  # an inventory file is the listing itself: without it, nothing is complete
                raise RuntimeError(f"--manifest: inventory file {path} could not be read: {error}")
            yield listing_rows(content, inventory)


def fetched_catalog(spark: SparkSession, listing: DataFrame, root: str, cfg: IngestConfig,
                    fetch: FetchSettings, finish: bool = True) -> DataFrame:
    """One CATALOG_SCHEMA row per listed object, the workers reading the bytes (fetch.py);
    finish=False: before labels from a CSV and whole-sample quarantine (finished_catalog)."""
    wanted = listing.where(F.col("uri").rlike(extension_regex(cfg.extensions)))
    cores = spark.sparkContext.defaultParallelism
    work = functools.partial(_fetched_catalog_batches, fetch=fetch, settings=probe_settings(cfg, root, cfg.samples))
    catalog = wanted.select("uri", "size").repartition(cores * TASKS_PER_CORE).mapInArrow(
        work, from_arrow_schema(CATALOG_SCHEMA))
    return finished_catalog(spark, catalog, cfg, cfg.samples) if finish else catalog


# --incremental: the settings that decide a file's catalog row (its content or its label). A previous
# run with other values for any of them, or written by another sparkprep version, is not reused: every
# file is read again. The manifest's own path is not among them: S3 Inventory writes each manifest.json
# under a new dated prefix, and what decides a row is the listing (path, size, version), compared row by row.
ROW_SETTINGS = ("input", "extensions", "labels", "label_regex", "label_member", "validate", "max_file_bytes",
                "max_pixels", "samples", "phash", "follow_symlinks")
# Statuses the split stage gives (from the key, not the file): such rows are read again.
KEY_STATUSES = (NO_GROUP, MISSING_KEY, UNREADABLE)


@dataclass
class Incremental:
    """What --incremental reused: the state the next run matches against, and the counts."""

    state: DataFrame            # (path, size, version) of every listed file: written beside the table
    previous: Optional[str]     # the table reused, or None
    reason: str                 # why every file was read, when none was reused
    counts: Dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"previous": self.previous, "state": ownership.LISTING_STATE, **self.counts,
                **({"full_read": self.reason} if self.reason else {})}


def incremental_catalog(spark: SparkSession, cfg: IngestConfig, claim_state: str
                        ) -> Tuple[DataFrame, Any, Incremental]:
    """The catalog of --input where only new and changed files are read.

    The previous output is the state: its rows, and its listing state (path, size, version:
    the mtime in ns for a listed folder, the ETag or last-modified date of an S3 Inventory row).
    A listed file whose (path, size, version) equals the state's keeps its previous row, unread;
    new and changed files are read by the workers; deleted files are counted and disappear.
    """
    fetch = FetchSettings(cfg.fetch_concurrency, cfg.max_file_bytes, cfg.s3_endpoint)
    listing, root, rec = _versioned_listing(spark, cfg, fetch)
    previous, reason = _reusable_output(spark, cfg, claim_state)
    if previous is None:
        fresh = fetched_catalog(spark, listing, root, cfg, fetch, finish=False)
        state = _state_of(listing)
        return (finished_catalog(spark, fresh, cfg, cfg.samples), rec,
                Incremental(state, None, reason, {"listed": rec.expected_rows, "read": rec.expected_rows,
                                                  "kept": 0, "deleted": 0}))
    old_state = spark.read.parquet(f"{previous}/{ownership.LISTING_STATE}")
    rows = read_table(spark, previous).select(*CATALOG_SCHEMA.names).where(~F.col("status").isin(*KEY_STATUSES))
    # Plain equality: a null size or version (a manifest row that does not say) is never "unchanged".
    same = ((listing.uri == old_state.path) & (listing["size"] == old_state["size"])
            & (listing.version == old_state.version))
    unchanged = listing.join(old_state, same, "left_semi").select(F.col("uri").alias("path"))
    kept = rows.join(unchanged, "path", "left_semi").persist(StorageLevel.DISK_ONLY)
    changed = listing.join(kept.select(F.col("path").alias("uri")), "uri", "left_anti")
    fresh = fetched_catalog(spark, changed, root, cfg, fetch, finish=False)
    counted = kept.count()
    tally = listing.agg(F.sum((F.col("size").isNull() | F.col("version").isNull()).cast("long")).alias("n")).first()
    deleted = old_state.join(listing, old_state.path == listing.uri, "left_anti").count()
    counts = {"listed": rec.expected_rows, "kept": counted, "read": rec.expected_rows - counted, "deleted": deleted,
              "unversioned": int(tally["n"] or 0)}
    return (finished_catalog(spark, kept.unionByName(fresh), cfg, cfg.samples), rec,
            Incremental(_state_of(listing), previous, "", counts))


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
    rows = [(uri, size, str(mtimes[uri]) if uri in mtimes else None) for uri, size in listed.to_read + listed.from_listing]
    return spark.createDataFrame(rows, "uri string, size long, version string"), listed.root, listed.rec


def unversioned_manifest(spark: SparkSession, manifest: str) -> Optional[str]:
    """Why a manifest cannot tell a changed object from an unchanged one (None when it can): an S3
    Inventory without the ETag and LastModifiedDate fields, or a uri table without an etag or
    last_modified column. Only manifest.json, or the table's schema, is read."""
    if manifest.rstrip("/").endswith(".json"):
        inventory = parse_manifest(read_bytes(manifest).decode("utf-8"), manifest)
        return None if inventory.versioned else (f"the S3 Inventory {manifest} lists neither ETag nor "
                                                 "LastModifiedDate (optional fields of the inventory configuration)")
    csv = manifest.lower().endswith((".csv", ".csv.gz"))
    columns = (spark.read.option("header", "true").csv(manifest) if csv else spark.read.parquet(manifest)).columns
    if "etag" in columns or "last_modified" in columns:
        return None
    return f"the manifest {manifest} has no etag or last_modified column (its columns: {', '.join(columns)})"


def _reusable_output(spark: SparkSession, cfg: IngestConfig, claim_state: str) -> Tuple[Optional[str], str]:
    """(the previous output to reuse, or None with the reason every file is read)."""
    if claim_state != "owned":
        return None, "no previous output"
    fs = HadoopFS(spark)
    uri = fs.qualify(cfg.output).rstrip("/")
    if not fs.exists(f"{uri}/{ownership.LISTING_STATE}"):
        return None, "the previous output has no listing state (written without --incremental)"
    report = ownership.json_object(fs.read_text(f"{uri}/{ownership.REPORT_NAME}")) or {}
    before = report.get("config") or {}
    now = config_dict(cfg)
    changed = [k for k in ROW_SETTINGS if before.get(k) != now.get(k)]
    if changed:
        return None, f"settings that decide a row changed since the previous run: {', '.join(changed)}"
    written_by = (report.get("versions") or {}).get("sparkprep")
    if written_by != __version__:
        return None, f"the previous output was written by sparkprep {written_by}, this is {__version__}"
    return uri, ""


def _fetched_catalog_batches(batches, fetch, settings):
    yield from catalog_batches(fetched_batches(batches, fetch), settings)


def whole_sample_quarantine(catalog: DataFrame, labels_per_file: bool, shards: bool = False) -> DataFrame:
    """Give every row of a sample the status of its first failing member (by member name), with
    an error naming that member.

    With labels_per_file (a labels CSV, --label-regex or --label-member), members without a
    label take their sample's, and members whose labels differ quarantine the sample as
    conflicting_labels. Labels from the parent folder agree by construction. shards: the rows
    are tar members, and a sample key found in several shards is a `duplicate_key` conflict
    naming them (never merged into one sample). One window over the sample: the catalog
    (reading and probing every file) is evaluated once.
    """
    sample = Window.partitionBy("sample")
    failing = F.when(F.col("status") != OK, F.struct("member", "status", "error"))
    joined = catalog.withColumn("_bad", F.min(failing).over(sample))
    if labels_per_file:
        joined = (joined.withColumn("_conflict", F.size(F.collect_set("label").over(sample)) > 1)
                  .withColumn("label", F.coalesce(F.col("label"), F.max("label").over(sample))))
    else:
        joined = joined.withColumn("_conflict", F.lit(False))
    if shards:  # the shard-level rows of damaged or empty shards have no sample key of their own
        joined = joined.withColumn("_shards", F.when(F.col("sample") != "", F.array_sort(
            F.collect_set(shard_of()).over(sample))))
    else:
        joined = joined.withColumn("_shards", F.lit(None).cast("array<string>"))
    own_failure = F.col("status") != OK
    in_shards = F.coalesce(F.size("_shards"), F.lit(0)) > 1
    status = (F.when(own_failure, F.col("status"))
              .when(F.col("_bad").isNotNull(), F.col("_bad.status"))
              .when(in_shards, F.lit(DUPLICATE_KEY))
              .when(F.col("_conflict"), F.lit(CONFLICTING_LABELS))
              .otherwise(F.col("status")))
    error = (F.when(own_failure, F.col("error"))
             .when(F.col("_bad").isNotNull(),
                   F.concat(F.lit("member "), F.col("_bad.member"), F.lit(" of this sample: "),
                            F.coalesce(F.col("_bad.status"), F.lit("")), F.lit(" ("),
                            F.coalesce(F.col("_bad.error"), F.lit("")), F.lit(")")))
             .when(in_shards, F.concat(F.lit("sample key "), F.col("sample"), F.lit(" is in "),
                                       F.size("_shards").cast("string"), F.lit(" shards ("),
                                       F.array_join(F.slice("_shards", 1, 3), ", "),
                                       F.lit("): which one is meant cannot be told (WebDataset keys must be unique "
                                             "across shards); none is used")))
             .when(F.col("_conflict"), F.lit("the members of this sample have different labels"))
             .otherwise(F.col("error")))
    return joined.select(*[status.alias("status") if f.name == "status" else error.alias("error")
                           if f.name == "error" else F.col(f.name) for f in CATALOG_SCHEMA])


def tune_scan(spark: SparkSession, file_sizes: List[int], rows: int) -> Dict[str, str]:
    """Size scan tasks from the input's own listing: a few tasks per core, Arrow batches bounded in bytes.

    Spark's defaults (4 MB open cost, 128 MB partitions) pack only ~30 small files into a
    task, so per-task overhead dominates on small images; big parquet row groups give too
    few tasks for CPU-heavy image work. A value set explicitly at launch (--conf or a
    properties file) is left alone. Returns what was set.
    """
    if not file_sizes or rows <= 0:
        return {}
    cores = spark.sparkContext.defaultParallelism
    weighted = sum(file_sizes) + OPEN_COST_BYTES * len(file_sizes)
    row_bytes = max(1, sum(file_sizes) // rows)
    wanted = {
        "spark.sql.files.openCostInBytes": OPEN_COST_BYTES,
        "spark.sql.files.maxPartitionBytes": min(128 << 20, max(1 << 20, weighted // (cores * TASKS_PER_CORE))),
        "spark.sql.execution.arrow.maxRecordsPerBatch": max(4, min(10000, BATCH_BYTES // row_bytes)),
        # A hard byte bound too (Spark 4), for skew: one huge TIFF among small JPEGs.
        "spark.sql.execution.arrow.maxBytesPerBatch": BATCH_BYTES,
    }
    launched = spark.sparkContext.getConf()
    applied = {key: str(value) for key, value in wanted.items() if not launched.contains(key)}
    for key, value in applied.items():
        spark.conf.set(key, value)
    return applied


@F.pandas_udf(StringType())
def nfc(paths: "pd.Series") -> "pd.Series":
    """Unicode NFC, as relative paths are spelled in the catalog (Spark SQL has no normalize())."""
    return paths.map(lambda p: unicodedata.normalize("NFC", p) if isinstance(p, str) else p)


def tune_table_scan(spark: SparkSession, uri: str, table: DataFrame) -> dict:
    """Partition sizing for a parquet/Delta input table, from its files and row count."""
    sizes = [size for _, size, _ in HadoopFS(spark).list_files(uri, ".parquet")]
    return tune_scan(spark, sizes, table.count()) if sizes else {}


def with_labels_file(spark: SparkSession, catalog: DataFrame, labels_uri: str) -> DataFrame:
    """Replace labels with those of a CSV (path,label; path relative to --input); other columns are kept."""
    labels = spark.read.option("header", "true").csv(labels_uri)
    missing = [c for c in ("path", "label") if c not in labels.columns]
    if missing:
        raise UsageError(f"--labels: expected CSV columns path,label, got {','.join(labels.columns)}")
    labels = (labels.select(nfc(F.regexp_replace("path", r"^\./", "")).alias("_label_path"), F.col("label"))
              .groupBy("_label_path")
              .agg(F.min("label").alias("_label"), F.countDistinct("label").alias("_labels")))
    conflict = labels.where("_labels > 1").select("_label_path").limit(1).collect()
    if conflict:
        raise ValueError(f"--labels: expected one label per path, got several for {conflict[0][0]!r}")
    joined = catalog.join(F.broadcast(labels), catalog.rel_path == labels._label_path, "left")
    return joined.select(*[F.col("_label").alias("label") if name == "label" else F.col(name)
                           for name in catalog.columns])


def run_ingest(spark: SparkSession, cfg: IngestConfig, clock: Optional[StageClock] = None) -> dict:
    """Catalogue raw files into a table with one row per file (unpartitioned)."""
    if cfg.plan:
        return run_plan(spark, cfg, "ingest")
    clock = clock or StageClock("ingest")
    with claimed_output(spark, cfg.output, cfg.format, "ingest") as claim:
        clock.stage("listing and planning", cfg.input)
        catalog, rec = catalog_frame(spark, cfg, claim.state)
        clock.stage("reading, probing and writing", f"{rec.what()} -> {cfg.output}")
        return write_reported_table(spark, claim, catalog, cfg, clock, rec, split_params=None, partition_by=None,
                                    options=payload_options("content", already_compressed=True))


def run_plan(spark: SparkSession, cfg: IngestConfig, job: str) -> dict:
    """--plan: count and size the input, estimate the run (sparkprep.capacity), touch nothing.

    A manifest is counted by Spark aggregates, never collected; a folder is listed on the driver,
    as a run would list it.
    """
    kind = getattr(cfg, "input_kind", "files")
    if kind not in ("files", "auto"):
        raise UsageError(f"--plan: estimates raw files (a folder or --manifest), got a {kind} input")
    clock = StageClock(job)
    clock.stage("planning", f"counting and sizing {cfg.manifest or cfg.input}")
    if cfg.manifest:
        listing, _ = manifest_listing(spark, cfg.manifest, FetchSettings(cfg.fetch_concurrency, cfg.max_file_bytes,
                                                                         cfg.s3_endpoint))
        wanted = F.col("uri").rlike(extension_regex(cfg.extensions))
        row = listing.agg(F.count(F.lit(1)).alias("listed"), F.sum(wanted.cast("long")).alias("files"),
                          F.sum(F.when(wanted, F.col("size"))).alias("bytes"),
                          F.count(F.when(wanted, F.col("size"))).alias("sized")).first()
        listed, files, total, sized = (int(row[k] or 0) for k in ("listed", "files", "bytes", "sized"))
    else:
        listing = listed_input(spark, cfg)
        listed, files = listing.rec.listed, listing.rec.expected_rows
        total, sized = sum(size for _, size in listing.to_read + listing.from_listing), files
    if sized < files:  # a uri table without sizes: the unsized files count as the sized ones' mean
        total = total + (files - sized) * (total // sized if sized else int(capacity.PHOTO_MB * capacity.MB))
    job_kind = "pipeline" if job == "pipeline" else "split"
    work = capacity.Workload(files, total, job_kind, from_s3=bool(cfg.manifest) or not is_local(cfg.input),
                             listed_on_driver=not cfg.manifest, phash=cfg.phash)
    plan = capacity.estimate(work, cfg.plan_nodes, cfg.plan_instance, cfg.plan_price)
    plan.update(listed=listed, unsized=files - sized)
    return {"job": job, "plan": plan}
