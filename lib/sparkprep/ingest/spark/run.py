"""The catalog of any raw input (a folder, s3:// without s3a, a manifest, WebDataset shards, an
incremental run), and the ingest job."""

from __future__ import annotations

import functools
from typing import Optional, Tuple

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from sparkprep.ingest.catalog_rows import catalog_batches
from sparkprep.ingest.fetch import FetchSettings
from sparkprep.ingest.flags import IngestConfig
from sparkprep.ingest.spark.incremental import incremental_catalog
from sparkprep.ingest.spark.manifests import manifest_catalog
from sparkprep.ingest.spark.plan import run_plan
from sparkprep.ingest.spark.reconcile import Reconciliation
from sparkprep.ingest.spark.sources import (binary_scan, fetched_catalog, finished_catalog, listed_input,
                                            probe_settings, shard_catalog)
from sparkprep.runlog import StageClock
from sparkprep.schema import CATALOG_SCHEMA
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.spark.reported import write_reported_table
from sparkprep.spark.tables import claimed_output, payload_options
from sparkprep.spark.session import run_clock


def catalog_frame(spark: SparkSession, cfg: IngestConfig, claim_state: str = "new") -> Tuple[DataFrame, Reconciliation]:
    """One row per wanted input file, as CATALOG_SCHEMA, plus the listing reconciliation.

    With --input-kind webdataset, one row per member of every .tar shard instead. With
    --incremental, the previous output's rows for unchanged files, samples or shards (claim_state: the output's).
    """
    if cfg.incremental:
        catalog, rec, rec.incremental = incremental_catalog(spark, cfg, claim_state)
        return catalog, rec
    if getattr(cfg, "input_kind", None) == "webdataset":
        return shard_catalog(spark, cfg)
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


def run_ingest(spark: SparkSession, cfg: IngestConfig, clock: Optional[StageClock] = None) -> dict:
    """Catalogue raw files into a table with one row per file (unpartitioned)."""
    if cfg.plan:
        return run_plan(spark, cfg, "ingest")
    clock = clock or run_clock(spark, "ingest")
    with claimed_output(spark, cfg.output, cfg.format, "ingest") as claim:
        clock.stage("listing and planning", cfg.input)
        catalog, rec = catalog_frame(spark, cfg, claim.state)
        clock.stage("reading, probing and writing", f"{rec.what()} -> {cfg.output}")
        return write_reported_table(spark, claim, catalog, cfg, clock, rec, split_params=None, partition_by=None,
                                    options=payload_options("content", already_compressed=True))
