"""What a pipeline run reuses of earlier runs: the Spark glue of --incremental and of resuming a killed run.

- `unchanged` (--incremental, the one pass): the previous tables' rows of files unchanged since.
- `resumed_files` (the one pass, written by the workers): a killed run's finished tasks' files
  (sparkprep.pipeline.resume).
- `resumed_rows` (the one pass, written by Spark: Delta, HDFS, S3): the one-pass rows that a killed
  run's committed tasks wrote into its processed staging's ROWS directory, for the files listed now
  as the killed run listed them (its PLANNED listing).
- `committed_transform` (two passes): the processed rows of a killed run's committed transform tasks,
  which sparkprep.preprocess.spark.incremental_frame keeps per sample.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkprep.images.phash import PHASH_V2, version_of
from sparkprep.ingest.spark.incremental import ROW_SETTINGS, relabelled, reusable_output, unchanged_files
from sparkprep.pipeline import resume
from sparkprep.pipeline.flags import PIPELINE as JOB, PipelineConfig
from sparkprep.preprocess.spark import PROCESSED_SETTINGS
from sparkprep.runlog import config_dict
from sparkprep.schema import without_later_column
from sparkprep.spark import delta_rs, ownership
from sparkprep.spark.committed import committed_rows
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.spark.session import delta_jars_active
from sparkprep.spark.tables import Claim, own_files_dir, read_table, staging_uri
from sparkprep.uris import local_path


def committed_transform(spark: SparkSession, cfg: PipelineConfig, processed_claim: Claim
                        ) -> Tuple[Optional[str], Optional[DataFrame], Optional[dict]]:
    """Two passes, written by Spark: (this run's resume record for its processed staging (parquet) or data
    directory (Delta without Delta's jars: sparkprep.spark.delta_rs), the rows of killed runs' committed
    transform tasks that may be reused, and what the report says of them). delta-spark's own writes are not
    resumed."""
    if not resumes_rows(spark, cfg):
        return None, None, None
    settings = resume_settings(cfg)
    usable, refused = _killed_runs(HadoopFS(spark), processed_claim, settings, one_pass=False)
    rows, found = committed_rows(spark, usable)
    return resume.record_text(settings), rows, _took(processed_claim, found.as_dict(), refused)


def _killed_runs(fs: HadoopFS, claim: Claim, settings: dict, one_pass: bool) -> Tuple[List[str], List[dict]]:
    """(the killed runs' directories of this claim that this run may reuse: written with these settings, and for
    the one pass with their planned listing and rows; those it may not, each with why)."""
    usable, refused = [], []
    for old in claim.resumable:
        planned = not one_pass or (fs.exists(f"{old}/{ownership.RESUME_PLANNED}")
                                   and fs.exists(f"{old}/{ownership.RESUME_ROWS}"))
        why = resume.refusal(ownership.json_object(fs.read_text(f"{old}/{ownership.RESUME}")), settings, planned)
        if why:
            refused.append({"from": old, "why": why})
        else:
            usable.append(old)
    return usable, refused


def _took(claim: Claim, found: dict, refused: List[dict]) -> Optional[dict]:
    """The report's `resumed`, when there were killed runs' directories (None when there were none)."""
    return {**found, **({"not_reused": refused} if refused else {})} if claim.resumable else None


def resume_settings(cfg: PipelineConfig) -> dict:
    """The settings a killed run's resume record must hold for its files to be reused (as the report holds them)."""
    return json.loads(json.dumps({k: v for k, v in config_dict(cfg).items() if k in PIPELINE_SETTINGS}))


@dataclass
class Kept:
    """--incremental in the one pass: the files whose rows are kept unread, from which tables, and the counts."""

    paths: List[str]
    tables: Optional[Tuple[str, str]]  # the previous split and processed tables; None: nothing is kept (see counts)
    counts: Dict[str, Any]             # the processed table's report section: listed, kept, transformed, deleted

    def frames(self, spark: SparkSession) -> Tuple[DataFrame, DataFrame]:
        """The previous split and processed tables' rows of the kept files."""
        keep = spark.createDataFrame(pa.table({"path": pa.array(self.paths, pa.string())}))
        return tuple(read_table(spark, uri).join(keep, "path", "left_semi") for uri in self.tables)


# Settings (run report config keys) that decide a pipeline row beside the file itself: ingest's, the split's
# and the transform's. Another value for any of them makes the pipeline read and transform every file.
PIPELINE_SETTINGS = tuple(dict.fromkeys(ROW_SETTINGS + ("key_by", "seed", "ratios", "names", "stratify",
                                                        "keep_content", "manifest") + PROCESSED_SETTINGS))


def resumed_files(cfg: PipelineConfig, listing, mtimes: Dict[str, int], split_claim: Claim, processed_claim: Claim,
                  labels: Optional[Dict[str, Optional[str]]] = None):
    """(the listing of the files the one pass still reads, and what was reused of killed runs' staging
    directories); this run's staging directories are marked resumable with its listing."""
    roots = (local_path(staging_uri(split_claim)), local_path(staging_uri(processed_claim)))
    settings = resume_settings(cfg)
    if labels is not None:  # a killed run's rows carry its CSV's labels, and the CSV may be edited in place
        settings["labels_csv_digest"] = hashlib.sha256(json.dumps(sorted(labels.items())).encode()).hexdigest()
    versions = {uri: (size, str(mtimes[uri]) if uri in mtimes else None)
                for uri, size in listing.to_read + listing.from_listing}
    resume.start(roots, settings, versions)
    reused = resume.harvest(map(local_path, split_claim.resumable), map(local_path, processed_claim.resumable),
                            roots, settings, versions)
    if not reused.paths:
        return listing, reused
    return dataclasses.replace(listing, to_read=[f for f in listing.to_read if f[0] not in reused.paths],
                               from_listing=[f for f in listing.from_listing if f[0] not in reused.paths],
                               subset=True), reused


def unchanged(spark: SparkSession, cfg: PipelineConfig, listing, mtimes: Dict[str, int], split_claim: Claim,
              processed_claim: Claim, labels: Optional[Dict[str, Optional[str]]] = None):
    """(the listing of the files the one pass reads, and Kept: the previous tables' rows of the others).

    A file is kept when its (path, size, mtime) equals the previous split table's listing state and
    both previous tables are this pipeline's, from the same settings and this sparkprep version.
    labels (the workers label the rows): a file whose label in the CSV changed since is read again.
    """
    previous, reason = reusable_output(spark, dataclasses.replace(cfg, output=split_claim.uri), split_claim.state,
                                       PIPELINE_SETTINGS, ownership.LISTING_STATE, job=JOB.name)
    if previous is not None and processed_claim.state != "owned":
        previous, reason = None, "the previous output has no processed table"
    old = read_table(spark, previous) if previous is not None else None
    if old is not None and without_later_column(old.columns):
        previous, reason = None, without_later_column(old.columns).replace("previous output", "previous split table")
    elif old is not None and cfg.phash and "phash" in old.columns and \
            version_of(old.schema["phash"].metadata) != PHASH_V2:
        previous, reason = None, f"the previous split table's hashes are not {PHASH_V2}, the one pass's"
    rest, paths, listing.rec.incremental = unchanged_files(spark, listing, mtimes, previous, reason)
    inc = listing.rec.incremental
    again = relabelled(spark, previous, paths, labels) if labels is not None and paths else []
    if again:  # kept files' rows are carried as written, so a file labelled otherwise now is made again
        paths = sorted(set(paths) - set(again))
        keep = set(paths)
        rest = dataclasses.replace(rest, to_read=[f for f in listing.to_read if f[0] not in keep],
                                   from_listing=[f for f in listing.from_listing if f[0] not in keep])
        inc.counts.update(kept=inc.counts["kept"] - len(again), read=inc.counts["read"] + len(again),
                          relabelled=len(again))
    counts = {"previous": HadoopFS(spark).qualify(processed_claim.uri) if previous else None,
              "listed": inc.counts["listed"], "kept": inc.counts["kept"], "transformed": inc.counts["read"],
              "deleted": inc.counts["deleted"], **({"full_run": reason} if previous is None else {}),
              **({"relabelled": len(again)} if again else {})}
    return rest, Kept(paths, (previous, processed_claim.uri) if previous is not None else None, counts)


def resumed_rows(spark: SparkSession, cfg: PipelineConfig, listing, mtimes: Dict[str, int], processed_claim: Claim
                 ) -> Tuple[Any, Optional[DataFrame], Optional[dict], str]:
    """The one pass where Spark writes both tables: (the listing the one pass still reads, the reused rows or None,
    what the report says of them or None, and this run's resume record).

    A killed run's processed staging (its run-<id> directory for Delta) held its resume record, its PLANNED
    listing and, in ROWS, the one-pass rows Spark wrote before either table: the rows of its committed tasks
    (or all of them, when that write finished) are reused for every file listed now with the size and mtime
    it listed, each file's rows from one killed run only. This run's own record, listing and rows go to the
    same places, so a second kill loses nothing either (the reused rows are written again with the new ones)."""
    fs = HadoopFS(spark)
    settings = resume_settings(cfg)
    usable, refused = _killed_runs(fs, processed_claim, settings, one_pass=True)
    listed = listing.to_read + listing.from_listing
    now = spark.createDataFrame(pa.table({"path": pa.array([p for p, _ in listed], pa.string()),
                                          "size": pa.array([s for _, s in listed], pa.int64()),
                                          "version": pa.array([str(mtimes[p]) if p in mtimes else None
                                                               for p, _ in listed], pa.string())}))
    rows, found = committed_rows(spark, [f"{old}/{ownership.RESUME_ROWS}" for old in usable], partition_by=None)
    paths: set = set()
    if rows is not None:
        planned = None
        for index, old in enumerate(usable):
            one = spark.read.parquet(f"{old}/{ownership.RESUME_PLANNED}").withColumn("_source", F.lit(index))
            planned = one if planned is None else planned.unionByName(one)
        # equality drops a null size or version: a file the killed run could not version is read again
        same = planned.join(now, ["path", "size", "version"], "left_semi").select("path", "_source")
        first = (rows.select("path", "_source").distinct().join(same, ["path", "_source"], "left_semi")
                 .groupBy("path").agg(F.min("_source").alias("_source")))
        rows = rows.join(first, ["path", "_source"], "left_semi").drop("_source")
        paths = {r[0] for r in first.select("path").collect()}
    # named by their staging (or run) directories, as the two passes' are, not by the rows' directory inside
    staging = [source[:-len(ownership.RESUME_ROWS) - 1] for source in found.sources]
    took = _took(processed_claim, {**found.as_dict(), "from": staging, "files_reused": len(paths)}, refused)
    own = own_files_dir(processed_claim)
    record = resume.record_text(settings)
    if processed_claim.fmt == "delta":
        delta_rs.open_run_dir(fs, own, processed_claim.run_id)
    fs.write_text(f"{own}/{ownership.RESUME}", record)
    now.write.parquet(f"{own}/{ownership.RESUME_PLANNED}")
    if not paths:
        return listing, None, took, record
    return dataclasses.replace(listing, to_read=[f for f in listing.to_read if f[0] not in paths],
                               from_listing=[f for f in listing.from_listing if f[0] not in paths],
                               subset=True), rows, took, record


def resumes_rows(spark: SparkSession, cfg: PipelineConfig) -> bool:
    """Whether the one pass where Spark writes both tables keeps its rows for a later run (resumed_rows): every
    format but delta-spark's own writes."""
    return not (cfg.format == "delta" and delta_jars_active(spark))
