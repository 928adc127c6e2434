"""--plan: count and size the input, estimate the run (sparkprep.capacity), touch nothing."""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from sparkprep import capacity
from sparkprep.errors import UsageError
from sparkprep.ingest.fetch import FetchSettings
from sparkprep.ingest.flags import IngestConfig
from sparkprep.ingest.spark.manifests import manifest_listing
from sparkprep.ingest.spark.sources import extension_regex, listed_input
from sparkprep.runlog import StageClock
from sparkprep.uris import is_local


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
                          F.count(F.when(wanted, F.col("size"))).alias("sized"),
                          F.sum((wanted & F.col("uri").rlike("^s3[an]?://")).cast("long")).alias("remote")).first()
        listed, files, total, sized, remote = (int(row[k] or 0) for k in ("listed", "files", "bytes", "sized",
                                                                          "remote"))
    else:
        listing = listed_input(spark, cfg)
        listed, files = listing.rec.listed, listing.rec.expected_rows
        total, sized = sum(size for _, size in listing.to_read + listing.from_listing), files
        remote = 0 if is_local(cfg.input) else files
    if sized < files:  # a uri table without sizes: the unsized files count as the sized ones' mean
        total = total + (files - sized) * (total // sized if sized else int(capacity.PHOTO_MB * capacity.MB))
    job_kind = "pipeline" if job == "pipeline" else "split"
    # S3 GETs bite only when most files are objects: a manifest of local paths plans none (it once warned
    # of ~69,000 GET/s for 300 local files)
    work = capacity.Workload(files, total, job_kind, from_s3=remote * 2 > files,
                             listed_on_driver=not cfg.manifest, phash=cfg.phash)
    plan = capacity.estimate(work, cfg.plan_nodes, cfg.plan_instance, cfg.plan_price)
    plan.update(listed=listed, unsized=files - sized)
    return {"job": job, "plan": plan}
