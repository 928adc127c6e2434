"""Raw files -> catalog DataFrame: binaryFile scan, Arrow-batched probing, reconciliation."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StringType

from sparkprep.errors import UsageError
from sparkprep.ingest.catalog_rows import ProbeSettings, catalog_batches
from sparkprep.ingest.fetch import FetchSettings, fetched_batches
from sparkprep.ingest.flags import IngestConfig
from sparkprep.ingest.listing import list_files
from sparkprep.ingest.paths import is_hidden, relative_path
from sparkprep.ingest.spark.reconcile import Reconciliation, ShardReconciliation, path_identity
from sparkprep.ingest.spark.samples import shard_of
from sparkprep.ingest.tar_shards import SHARD_EXTENSIONS, shard_rows
from sparkprep.schema import CATALOG_SCHEMA
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.statuses import CONFLICTING_LABELS, DUPLICATE_KEY, OK
from sparkprep.uris import is_local, qualify

# Bound on content bytes per Arrow batch sent to Python: small enough that the JVM
# feeds the next batch while Python works on this one, and memory stays flat.
BATCH_BYTES = 16 << 20
OPEN_COST_BYTES = 64 << 10  # what a file "costs" when Spark packs files into tasks
TASKS_PER_CORE = 4


def extension_regex(extensions) -> str:
    """Case-insensitive, Java- and Python-compatible regex matching the wanted extensions."""
    return r"(?i)\.(" + "|".join(re.escape(e) for e in extensions) + r")$"


@dataclass
class Listing:
    """The driver's listing of --input: what Spark reads, what only the listing knows, and the reconciliation."""

    root: str
    rec: Reconciliation
    to_read: List[Tuple[str, int]]       # (uri, size) of the files to read
    from_listing: List[Tuple[str, int]]  # empty or too large: rows made from the listing alone
    links: List[str]                     # symlinks seen (and skipped unless followed)
    subset: bool = False                 # only some of the listed files are read (--incremental)


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


GLOB_CHARS = set("*?[]{}\\")


def binary_scan(spark: SparkSession, cfg: IngestConfig, listing: Listing) -> DataFrame:
    """(path, length, content) of every listed file: Spark's binaryFile reads the bytes; files only
    the listing knows (empty, too large) come with null content."""
    if listing.subset and not any(GLOB_CHARS & set(uri) for uri, _ in listing.to_read):
        # these files only: Spark is given their paths (it would read a glob's matches), so it reads no other
        scan = (spark.read.format("binaryFile").load([uri for uri, _ in listing.to_read]) if listing.to_read
                else spark.createDataFrame([], "path string, length long, content binary"))
        return scan.select("path", "length", "content").unionByName(_unread(spark, listing))
    scan = (spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(listing.root)
            .where((F.col("length") > 0) & (F.col("length") <= cfg.max_file_bytes))
            .where(F.col("path").rlike(extension_regex(cfg.extensions)))
            .select("path", "length", "content"))
    # Spark's scan follows links (and loops), and reads every file: keep exactly the files of our own listing
    if listing.links or listing.subset:
        listed = spark.createDataFrame([(uri,) for uri, _ in listing.to_read], "path string")
        scan = scan.join(F.broadcast(listed), "path", "left_semi")
    return scan.unionByName(_unread(spark, listing)) if listing.from_listing else scan


def _unread(spark: SparkSession, listing: Listing) -> DataFrame:
    """(path, length, null content) of the files only the listing knows (empty, too large)."""
    return spark.createDataFrame(listing.from_listing, "path string, length long").withColumn(
        "content", F.lit(None).cast("binary"))


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


def list_shards(spark: SparkSession, uri: str, mtimes: Optional[Dict[str, int]] = None) -> List[Tuple[str, int]]:
    """(uri, size) of the WebDataset shards: a glob pattern, a directory (recursively) or one shard; `mtimes`,
    when given, receives each listed file's modification time (ns)."""
    if any(c in uri for c in "*?[{"):
        found = HadoopFS(spark).glob(uri if not is_local(uri) else qualify(uri), mtimes)
    else:
        found = list_files(uri, mtimes=mtimes)
    shards = [(u, s) for u, s in found if u.lower().endswith(SHARD_EXTENSIONS)]
    if not shards:
        raise UsageError(f"--input: expected WebDataset shards (.tar, .tar.gz), found none at {uri}")
    return shards


def shard_catalog(spark: SparkSession, cfg: IngestConfig) -> Tuple[DataFrame, "ShardReconciliation"]:
    """One CATALOG_SCHEMA row per member of every shard, members grouped into samples by WebDataset's rule."""
    shards = [u for u, _ in list_shards(spark, cfg.input)]
    return finished_catalog(spark, read_shards(spark, cfg, shards), cfg, "basename"), ShardReconciliation(shards)


def read_shards(spark: SparkSession, cfg: IngestConfig, shards: List[str]) -> DataFrame:
    """The member rows of these shards, before labels from a CSV and whole-sample quarantine (finished_catalog).

    Each task streams whole shards (a few per core), so nothing of O(members) reaches the driver.
    """
    cores = spark.sparkContext.defaultParallelism
    uris = spark.createDataFrame([(u,) for u in shards], "path string").repartition(
        max(1, min(len(shards), cores * TASKS_PER_CORE)))
    work = functools.partial(_shard_catalog_batches, max_bytes=cfg.max_file_bytes,
                             settings=probe_settings(cfg, qualify(cfg.input), "basename"))
    return uris.mapInArrow(work, from_arrow_schema(CATALOG_SCHEMA))


def _shard_catalog_batches(batches, max_bytes, settings):
    """On the executor: stream the shards' members and catalogue them, in one Python pass."""
    yield from catalog_batches(shard_rows(batches, max_bytes), settings)


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


def labels_file(spark: SparkSession, labels_uri: str) -> DataFrame:
    """A labels CSV (path,label; path relative to --input) as (_label_path, _label): paths as the catalog
    spells them (NFC, no leading ./), one label each (several for one path is an error)."""
    labels = _grouped_labels(spark, labels_uri)
    conflict = labels.where("_labels > 1").select("_label_path").limit(1).collect()
    if conflict:
        raise _conflict(conflict[0][0])
    return labels.drop("_labels")


def _grouped_labels(spark: SparkSession, labels_uri: str) -> DataFrame:
    """The CSV grouped by path: (_label_path, _label: the least label, _labels: how many distinct)."""
    labels = spark.read.option("header", "true").csv(labels_uri)
    missing = [c for c in ("path", "label") if c not in labels.columns]
    if missing:
        raise UsageError(f"--labels: expected CSV columns path,label, got {','.join(labels.columns)}")
    return (labels.select(nfc(F.regexp_replace("path", r"^\./", "")).alias("_label_path"), F.col("label"))
            .groupBy("_label_path")
            .agg(F.min("label").alias("_label"), F.countDistinct("label").alias("_labels")))


def _conflict(path: str) -> ValueError:
    return ValueError(f"--labels: expected one label per path, got several for {path!r}")


def labels_by_path(spark: SparkSession, labels_uri: str) -> Dict[str, Optional[str]]:
    """A labels CSV on the driver: relative path -> label, as with_labels_file joins them (for the
    pipeline's workers, which label the rows they write themselves). One read: the conflict check runs
    over the collected rows."""
    table = _grouped_labels(spark, labels_uri).toArrow().to_pydict()
    conflict = next((p for p, n in zip(table["_label_path"], table["_labels"]) if n > 1), None)
    if conflict is not None:
        raise _conflict(conflict)
    return dict(zip(table["_label_path"], table["_label"]))


def with_labels_file(spark: SparkSession, catalog: DataFrame, labels_uri: str) -> DataFrame:
    """Replace labels with those of a CSV (path,label; path relative to --input); other columns are kept.
    A row whose path the CSV does not list gets no label."""
    labels = labels_file(spark, labels_uri)
    joined = catalog.join(F.broadcast(labels), catalog.rel_path == labels._label_path, "left")
    return joined.select(*[F.col("_label").alias("label") if name == "label" else F.col(name)
                           for name in catalog.columns])


