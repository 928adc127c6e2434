"""Manifests as the listing: an S3 Inventory or a table of uris, read by Spark tasks, counted by
Spark aggregates; the workers fetch the objects. Nothing of O(objects) reaches the driver."""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Optional, Tuple

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from sparkprep.errors import UsageError
from sparkprep.ingest.fetch import FetchSettings, fetched_batches
from sparkprep.ingest.flags import IngestConfig
from sparkprep.ingest.inventory import LISTING_SCHEMA, inventory_files, listing_rows, parse_manifest
from sparkprep.ingest.spark.reconcile import EXAMPLES, ManifestReconciliation
from sparkprep.ingest.spark.sources import extension_regex, fetched_catalog
from sparkprep.uris import qualify, read_bytes


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
