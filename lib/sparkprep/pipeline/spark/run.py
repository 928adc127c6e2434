"""Raw files -> split table, processed table and exports in one Spark application: the Spark glue.

In hash mode with one file per sample, one Python pass per file does everything
(sparkprep.pipeline.one_pass). For a local parquet output the workers write both tables'
files into their staging directories themselves and report them; the driver deletes any
file no successful task reported, then checks and publishes each table as the stage jobs
do. Elsewhere Spark writes the one pass's rows into the processed staging (where a later run
finds them if this one is killed), then both tables from them. Exact stratification and
samples of several files need every row of a label or sample first, so they keep two passes
(catalog, then transform). What a run reuses of earlier ones: reuse.py.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructType

from sparkprep.audit.policy import check_leakage
from sparkprep.audit.spark.rows import with_phash_version
from sparkprep.audit.spark.search import near_check
from sparkprep.errors import UsageError
from sparkprep.export.flags import ExportConfig
from sparkprep.images.phash import PHASH_V2
from sparkprep.ingest.spark.plan import run_plan
from sparkprep.ingest.spark.sources import (TASKS_PER_CORE, binary_scan, labels_by_path, listed_input, probe_settings,
                                            with_labels_file)
from sparkprep.pipeline.flags import OUTPUTS, PipelineConfig
from sparkprep.pipeline import resume
from sparkprep.pipeline.one_pass import (FILES_SCHEMA, ONE_PASS_SCHEMA, OnePassSettings, TableTarget, one_pass_batches,
                                         one_pass_files, processed_columns, split_columns)
from sparkprep.pipeline.spark.reuse import (committed_transform, resumed_files, resumed_rows, resumes_rows,
                                            unchanged)
from sparkprep.preprocess.spark import (channel_normalization, check_augment_splits, incremental_frame,
                                        preprocess_frame, with_recipe_metadata)
from sparkprep.runlog import StageClock, config_dict, versions
from sparkprep.spark import ownership
from sparkprep.spark.executor import in_task, stalled
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.spark.reported import write_reported_table
from sparkprep.spark.tables import (ROW_GROUP_BYTES, Claim, claim_directory, claimed_output, discard_unpublished,
                                   own_files_dir, payload_options, staging_uri)
from sparkprep.split.spark import merged_near_duplicates, resolved_input_kind, split_source, with_split
from sparkprep.uris import is_local, local_path
from sparkprep.spark.session import run_clock

PIPELINE = "pipeline"  # the kind in <output>/_sparkprep.json
TASK_BYTES = 128 << 20


def run_pipeline(spark: SparkSession, cfg: PipelineConfig, clock: Optional[StageClock] = None) -> dict:
    """Every stage from one config; <output>/_run_report.json says what each stage did and what was published."""
    if cfg.plan:
        return run_plan(spark, cfg, PIPELINE)
    clock = clock or run_clock(spark, PIPELINE)
    fs = HadoopFS(spark)
    root = fs.qualify(cfg.output).rstrip("/")
    claim_directory(fs, root, PIPELINE)
    report = {"job": PIPELINE, "config": config_dict(cfg), "input": {"uri": cfg.input},
              "output": {"uri": root, "format": cfg.format}, "published": [], "stages": {}}
    try:
        _tables(spark, dataclasses.replace(cfg, output=root), clock, report)
        for target in cfg.to:
            report["stages"][target] = _export(spark, cfg, root, target, clock)
            report["published"].append(target)
        # the split table's page (its near-duplicate audit, thumbnails of the originals) is the pipeline's page
        fs.write_text(f"{root}/{ownership.PAGE}", fs.read_text(f"{root}/{OUTPUTS[0]}/{ownership.TABLE_PAGE}"))
    except BaseException as exc:
        report["failed"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise
    finally:
        report["seconds"], report["durations"] = clock.total(), dict(clock.durations)
        report["spark_jobs"] = clock.spark_jobs()
        report["versions"] = versions(spark.version)
        fs.write_text(f"{root}/{ownership.REPORT_NAME}", json.dumps(report, indent=2))
    return check_leakage(report, cfg.fail_on_leakage, report["stages"].get("splits"))


def _tables(spark: SparkSession, cfg: PipelineConfig, clock: StageClock, report: dict) -> None:
    """The split table, then the processed table, each claimed, checked and published in turn."""
    splits_cfg = dataclasses.replace(cfg, output=f"{cfg.output}/{OUTPUTS[0]}")
    processed_cfg = dataclasses.replace(cfg, output=f"{cfg.output}/{OUTPUTS[1]}")
    with claimed_output(spark, splits_cfg.output, cfg.format, PIPELINE, resumes=True) as split_claim, \
            claimed_output(spark, processed_cfg.output, cfg.format, PIPELINE, resumes=True) as processed_claim:
        clock.stage("listing and planning", cfg.input)
        cfg = resolved_input_kind(spark, cfg)
        if cfg.input_kind not in ("files", "webdataset"):  # --input-kind auto, resolved on a cluster's file system
            raise UsageError(f"--input: expected raw files or WebDataset shards, got a {cfg.input_kind} "
                             "(run jobs/preprocess.py, then jobs/export.py)")
        check_augment_splits(cfg, list(cfg.names))
        plan = _plan(spark, cfg, split_claim, processed_claim)
        splits, processed, rec, written_by_workers = plan.splits, plan.processed, plan.rec, plan.workers
        report["passes"] = detail = plan.how
        if plan.resumed_report is not None:
            report["resumed"] = plan.resumed_report
        splits_options = payload_options("content" if cfg.keep_content else None, already_compressed=True)
        interrupted = False
        try:
            clock.stage("reading, validating, splitting and transforming", detail)
            if plan.rows is not None:
                splits, processed = plan.write_rows()
            if written_by_workers:
                _write_in_workers(spark, cfg, *written_by_workers, splits, processed, split_claim, processed_claim,
                                  plan.ahead)
                if plan.resumed is not None and (plan.resumed.sources or plan.resumed.refused):
                    report["resumed"] = plan.resumed.as_dict()
                clock.stage("checking and publishing the split table", splits_cfg.output)
            report["stages"]["splits"] = write_reported_table(
                spark, split_claim, None if written_by_workers else splits, splits_cfg, clock, rec,
                cfg.split_params(), "split", splits_options, audit=near_check(cfg, plan.merged))
            report["published"].append("splits")
            clock.stage("checking and publishing the processed table" if written_by_workers
                        else "writing the processed table", processed_cfg.output)
            # the listing state lives beside the split table; the processed table reports its own reuse
            processed_rec = dataclasses.replace(rec, incremental=None) \
                if getattr(rec, "incremental", None) is not None else rec
            report["stages"]["processed"] = write_reported_table(
                spark, processed_claim, None if written_by_workers else processed, processed_cfg, clock, processed_rec,
                cfg.split_params(), "split", options=payload_options("image", already_compressed=cfg.spec.encode != "raw"),
                resumable=plan.record,
                extra=lambda written, small: {"normalization": channel_normalization(written, small=small),
                                              "transform": cfg.spec.record(),
                                              **({"incremental": plan.processed_incremental}
                                                 if plan.processed_incremental else {})})
            report["published"].append("processed")
        except KeyboardInterrupt:  # stopped by its user (Ctrl-C): what finished tasks wrote stays for the next run
            interrupted = written_by_workers is not None or plan.record is not None
            raise
        finally:
            for frame in ([plan.persisted] if plan.persisted is not None else []) + plan.cached:
                frame.unpersist()
            for name, claim in ((OUTPUTS[0], split_claim), (OUTPUTS[1], processed_claim)):
                if name not in report["published"] and not interrupted:  # files written ahead, never published
                    discard_unpublished(HadoopFS(spark), claim)
                for old in claim.resumable:  # killed runs' staging, when this run did not take it over
                    HadoopFS(spark).delete(old)


@dataclass
class Plan:
    """How this run makes its two tables."""

    splits: Optional[DataFrame]   # None until write_rows (rows)
    processed: Optional[DataFrame]
    rec: Any                      # the input reconciliation
    how: str                      # for the report and the stage line
    persisted: Optional[DataFrame] = None  # rows kept on disk between the two table writes
    workers: Optional[tuple] = None        # (source, settings) of the one pass when the workers write the files
    merged: Optional[dict] = None          # --near-duplicates merge: what the clusters changed
    processed_incremental: Optional[dict] = None  # --incremental: the processed table's kept and transformed
    resumed: Optional[resume.Reused] = None       # what this run took over from a killed run's staging
    ahead: List[str] = field(default_factory=list)  # files in staging before the workers write: theirs to keep
    record: Optional[str] = None          # Spark writes: the resume record of the processed table's staging
    resumed_report: Optional[dict] = None  # Spark writes: what was reused of killed runs' committed tasks
    rows: Optional[Tuple[DataFrame, str]] = None  # the one pass written by Spark: its rows, and where they go first
    tables: Optional[Callable[[DataFrame], Tuple[DataFrame, DataFrame]]] = None  # both tables' frames from them
    cached: List[DataFrame] = field(default_factory=list)  # other frames persisted for the writes: freed after them

    def write_rows(self) -> Tuple[DataFrame, DataFrame]:
        """The one pass written by Spark: its rows written into the processed staging (ownership.RESUME_ROWS, a
        later run's to reuse if this one is killed), then both tables' frames, read from there."""
        rows, directory = self.rows
        rows.write.parquet(directory)
        return self.tables(rows.sparkSession.read.schema(rows.schema).parquet(directory))


def _plan(spark: SparkSession, cfg: PipelineConfig, split_claim: Claim, processed_claim: Claim) -> Plan:
    """The frames of both tables, and whether the workers write them.

    One pass, local parquet output: the Python workers write both tables' files themselves,
    so no image byte goes back to the JVM. One pass elsewhere (Delta, HDFS, S3): Spark writes the rows
    into the processed staging first (a killed run's are reused: reuse.resumed_rows), then both tables
    from them (delta-spark's writes: the rows are persisted on disk instead). Otherwise two passes.
    """
    # a manifest, or s3:// where Hadoop has no s3a: the ingest's fetcher reads the objects (two passes)
    fetched = bool(cfg.manifest) or not (is_local(cfg.input) or HadoopFS(spark).readable(cfg.input))
    if cfg.input_kind == "files" and cfg.samples == "file" and cfg.stratify == "none" and \
            cfg.near_duplicates != "merge" and not fetched:
        in_workers = cfg.format == "parquet" and is_local(split_claim.uri) and is_local(processed_claim.uri)
        spark_rows = not in_workers and resumes_rows(spark, cfg)  # Spark writes: its rows kept for a later run
        # --labels there: the workers label the rows they write, from the CSV read once on the driver
        labels = labels_by_path(spark, cfg.labels) if cfg.labels and in_workers else None
        mtimes: Dict[str, int] = {}
        listing = listed_input(spark, cfg, mtimes if cfg.incremental or in_workers or spark_rows else None)
        kept, reused, ahead, reused_rows, took, record = None, None, [], None, None, None
        if cfg.incremental:
            listing, kept = unchanged(spark, cfg, listing, mtimes, split_claim, processed_claim, labels)
            if in_workers and kept.tables:  # the kept rows' files, linked or rewritten into this run's staging
                ahead = [f for previous, claim in zip(kept.tables, (split_claim, processed_claim))
                         for f in resume.carried(local_path(previous), local_path(staging_uri(claim)),
                                                 set(kept.paths))]
        if in_workers:  # a killed run's finished tasks' files, reused (sparkprep.pipeline.resume)
            listing, reused = resumed_files(cfg, listing, mtimes, split_claim, processed_claim, labels)
        elif spark_rows:  # the rows a killed run's committed tasks wrote before either table
            listing, reused_rows, took, record = resumed_rows(spark, cfg, listing, mtimes, processed_claim)
        reader = _reader(cfg)
        source, settings = _one_pass_source(spark, cfg, listing, reader, labels)
        rows = source.mapInArrow(functools.partial(stalled, function=one_pass_batches, settings=settings),
                                 from_arrow_schema(ONE_PASS_SCHEMA))
        if reused_rows is not None:
            rows = rows.unionByName(reused_rows.select(*rows.columns))

        def tables(rows: DataFrame) -> Tuple[DataFrame, DataFrame]:
            split_rows = rows.where(F.col("aug_index") == 0).select(*split_columns(cfg.keep_content))
            processed_rows = rows.select(*[F.col(one).alias(name) for one, name in processed_columns()])
            if kept is not None and kept.tables and not in_workers:  # the previous tables' rows of unchanged files
                old_splits, old_processed = kept.frames(spark)
                split_rows = split_rows.unionByName(old_splits.select(*split_rows.columns))
                processed_rows = processed_rows.unionByName(old_processed.select(*processed_rows.columns))
            if cfg.labels and not in_workers:  # kept rows too: the CSV may have changed in place since the last run
                split_rows, processed_rows = (with_labels_file(spark, t, cfg.labels)
                                              for t in (split_rows, processed_rows))
            splits = with_split(split_rows, cfg, assigned=True)
            if cfg.phash:  # hashed from the transform's decode (sparkprep.images.phash)
                splits = with_phash_version(splits, PHASH_V2)
            return splits, with_recipe_metadata(processed_rows, splits.schema["key"], cfg.spec)

        how = (f"one Python pass per file ({'the workers read' if reader == 'workers' else 'binaryFile reads'} the "
               f"bytes{'; the workers write both tables' * in_workers})")
        if kept is not None:
            how += f"; {kept.counts['kept']} of {kept.counts['listed']} files kept from the previous output"
        if reused is not None and reused.tasks:
            how += (f"; resumed: {len(reused.paths)} files' rows reused from a killed run's {reused.tasks} finished "
                    "tasks")
        elif reused is not None and reused.refused:
            how += f"; a killed run's files not reused: {reused.refused[0]['why']}"
        elif took is not None and took["files_reused"]:
            how += (f"; resumed: {took['files_reused']} files' rows reused from a killed run's "
                    f"{took['tasks_reused']} committed tasks")
        elif took is not None and took.get("not_reused"):
            how += f"; a killed run's files not reused: {took['not_reused'][0]['why']}"
        counts = kept.counts if kept is not None else None
        if in_workers:
            splits, processed = tables(rows)
            return Plan(splits, processed, listing.rec, how, workers=(source, settings), resumed=reused,
                        processed_incremental=counts, ahead=ahead + (reused.files if reused else []))
        if spark_rows:
            return Plan(None, None, listing.rec, how, processed_incremental=counts, record=record,
                        resumed_report=took, rows=(rows, f"{own_files_dir(processed_claim)}/{ownership.RESUME_ROWS}"),
                        tables=tables)
        rows = rows.persist(StorageLevel.DISK_ONLY)
        splits, processed = tables(rows)
        return Plan(splits, processed, listing.rec, how, persisted=rows, processed_incremental=counts)
    # with --incremental, ingest keeps the split table's rows of unchanged files (its listing state), and the
    # transform the processed table's rows of unchanged samples (sparkprep.preprocess.spark.incremental_frame)
    splits, rec, detail = split_source(spark, dataclasses.replace(cfg, output=split_claim.uri),
                                       keep_existing_split=False, claim_state=split_claim.state)
    merged = None
    if cfg.near_duplicates == "merge":  # every row's hash first: clusters decide the keys
        splits, merged, merged_rows = merged_near_duplicates(splits, cfg)
    # read once, kept on local disk for both passes (merge's rows are there already)
    persisted = splits if merged is not None else splits.persist(StorageLevel.DISK_ONLY)
    why = "--stratify exact" if cfg.stratify == "exact" else "--near-duplicates merge" if merged is not None \
        else "--manifest" if cfg.manifest else "the workers fetch the objects" if fetched else "samples of several files"

    grouped = cfg.samples == "basename"
    # a killed run's committed transform tasks (parquet staging written by Spark, with this run's settings)
    record, resumed, took = committed_transform(spark, cfg, processed_claim)
    reused, cached = None, [merged_rows] if merged is not None else []  # merge's rows, persisted on disk
    if cfg.incremental or resumed is not None:
        processed, reused = incremental_frame(spark, dataclasses.replace(cfg, output=processed_claim.uri),
                                              processed_claim.state, persisted,
                                              lambda rows, grouped: preprocess_frame(rows, cfg, grouped=grouped),
                                              job=PIPELINE, grouped=grouped, resumed=resumed, cached=cached)
        processed = with_recipe_metadata(processed, persisted.schema["key"], cfg.spec)
        if took is not None:
            took["samples_reused"] = reused.get("resumed", 0)
    else:
        processed = preprocess_frame(persisted, cfg, grouped=grouped)
    how = f"{detail}, then a second Python pass to transform ({why})"
    if took is not None and took.get("samples_reused"):
        how += (f"; resumed: {took['samples_reused']} samples' processed rows reused from a killed run's "
                f"{took['tasks_reused']} committed tasks")
    elif took is not None and took.get("not_reused"):
        how += f"; a killed run's files not reused: {took['not_reused'][0]['why']}"
    return Plan(persisted if cfg.keep_content else persisted.drop("content"), processed, rec, how,
                persisted=persisted, merged=merged, processed_incremental=reused if cfg.incremental else None,
                record=record, resumed_report=took, cached=cached)


def _write_in_workers(spark: SparkSession, cfg: PipelineConfig, source: DataFrame, settings: OnePassSettings,
                      splits: DataFrame, processed: DataFrame, split_claim: Claim, processed_claim: Claim,
                      ahead: Sequence[str] = ()) -> None:
    """Run the one pass with each worker writing its parquet files into both staging directories;
    then delete any file a failed task attempt left there (those no successful attempt reported, and
    not put there before the pass: ahead), and the records a resumed run would read."""
    one_pass_names = {name: one for one, name in processed_columns()}
    targets = (_target(split_claim, splits, {}, "content" if cfg.keep_content else None, "none", True),
               _target(processed_claim, processed, one_pass_names, "image",
                       "none" if cfg.spec.encode != "raw" else "snappy", False))
    one_pass = functools.partial(in_task, function=one_pass_files, settings=settings, targets=targets,
                                 done=os.path.join(targets[0].root, resume.DONE))
    written = source.mapInArrow(one_pass, from_arrow_schema(FILES_SCHEMA)).collect()
    reported = {row["file"] for row in written} | set(ahead)
    resume.finish([t.root for t in targets])
    for target in targets:
        for folder, _, names in os.walk(target.root):
            for name in names:
                path = os.path.join(folder, name)
                if path not in reported:
                    os.remove(path)


def _target(claim: Claim, frame: DataFrame, one_pass_names: dict, payload: Optional[str], compression: str,
            originals_only: bool) -> TableTarget:
    """How the workers write one table: its staging directory, and its columns (one_pass_names: a
    table column -> its one-pass column, where they differ) with Spark's schema."""
    fields = [f for f in frame.schema.fields if f.name != "split"]
    return TableTarget(root=local_path(staging_uri(claim)), columns=tuple((one_pass_names.get(f.name, f.name), f.name)
                                                                       for f in fields),
                       spark_schema=StructType(fields).json(), payload=payload, compression=compression,
                       originals_only=originals_only, row_group_bytes=ROW_GROUP_BYTES)


def _reader(cfg: PipelineConfig) -> str:
    """binaryfile or workers: --read, else workers for local input (measured faster), binaryFile elsewhere."""
    if cfg.read != "auto":
        return cfg.read
    return "workers" if is_local(cfg.input) else "binaryfile"


def _one_pass_source(spark: SparkSession, cfg: PipelineConfig, listing, reader: str,
                     labels: Optional[Dict[str, Optional[str]]] = None):
    """What the one pass reads (Spark's bytes, or paths for the workers to read) and its settings."""
    settings = OnePassSettings(probe=probe_settings(cfg, listing.root, "file"), key_by=cfg.key_by, seed=cfg.seed,
                               ratios=cfg.ratios, names=cfg.names, spec=cfg.spec,
                               copies_by_split=cfg.copies_by_split(), keep_content=cfg.keep_content, labels=labels)
    if reader == "binaryfile":
        return binary_scan(spark, cfg, listing), settings
    # Paths only, each task reading its own files: a few tasks per core, each reading at most
    # TASK_BYTES (as Spark's maxPartitionBytes). More, smaller tasks measured slower: every
    # task writes a file per split and table, and the checks then open every file.
    listed = listing.to_read + listing.from_listing
    wanted = max(spark.sparkContext.defaultParallelism * TASKS_PER_CORE, -(-sum(s for _, s in listed) // TASK_BYTES))
    tasks = max(1, min(len(listed), wanted))
    # from Arrow, not Python tuples: the rows then reach the JVM without pickling (measured ~0.9 s
    # less at 1,500 files in a new session: docs/performance.md, "Fixed cost")
    paths = pa.table({"path": pa.array([p for p, _ in listed], pa.string()),
                      "length": pa.array([n for _, n in listed], pa.int64())})
    return spark.createDataFrame(paths).repartition(tasks), settings


def _export(spark: SparkSession, cfg: PipelineConfig, root: str, target: str, clock: StageClock) -> dict:
    from sparkprep.export.formats import FORMATS
    from sparkprep.export.spark import run_export

    shard_size = cfg.shard_size if FORMATS[target].sharded and cfg.shard_count is None else None
    return run_export(spark, ExportConfig(input=f"{root}/{OUTPUTS[1]}", output=f"{root}/{target}", to=target,
                                          shard_size=shard_size, shard_count=cfg.shard_count, classes=cfg.classes,
                                          incremental=cfg.incremental and cfg.shard_count is None),
                      clock)
