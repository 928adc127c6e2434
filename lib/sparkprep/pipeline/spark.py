"""Raw files -> split table, processed table and exports in one Spark application: the Spark glue.

In hash mode with one file per sample, one Python pass per file does everything
(sparkprep.pipeline.one_pass); its rows are kept on local disk while the split table and
then the processed table are written from them. Exact stratification and samples of
several files need every row of a label or sample first, so they keep two passes (catalog,
then transform). Each output is published the way its stage job publishes it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Optional, Tuple

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from sparkprep.cli import UsageError, config_dict
from sparkprep.export.flags import ExportConfig
from sparkprep.ingest.listing import is_local
from sparkprep.ingest.spark import (TASKS_PER_CORE, Reconciliation, binary_scan, listed_input, probe_settings,
                                    with_labels_file)
from sparkprep.pipeline.flags import OUTPUTS, PipelineConfig
from sparkprep.pipeline.one_pass import (ONE_PASS_SCHEMA, OnePassSettings, one_pass_batches, processed_columns,
                                         split_columns)
from sparkprep.preprocess.spark import check_augment_splits, preprocess_frame, with_recipe_metadata
from sparkprep.report.run_report import StageClock, versions
from sparkprep.report.spark import channel_normalization, write_reported_table
from sparkprep.spark import ownership
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.spark.tables import claimed_output, payload_options
from sparkprep.split.spark import resolved_input_kind, split_source, with_split

PIPELINE = "pipeline"  # the kind in <output>/_sparkprep.json


def run_pipeline(spark: SparkSession, cfg: PipelineConfig, clock: Optional[StageClock] = None) -> dict:
    """Every stage from one config; <output>/_run_report.json says what each stage did and what was published."""
    clock = clock or StageClock(PIPELINE)
    fs = HadoopFS(spark)
    root = fs.qualify(cfg.output).rstrip("/")
    _claim_root(fs, root)
    report = {"job": PIPELINE, "config": config_dict(cfg), "input": {"uri": cfg.input},
              "output": {"uri": root, "format": cfg.format}, "published": [], "stages": {}}
    try:
        _tables(spark, dataclasses.replace(cfg, output=root), clock, report)
        for target in cfg.to:
            report["stages"][target] = _export(spark, cfg, root, target, clock)
            report["published"].append(target)
    except BaseException as exc:
        report["failed"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise
    finally:
        report["seconds"], report["durations"] = clock.total(), dict(clock.durations)
        report["versions"] = versions(spark.version)
        fs.write_text(f"{root}/{ownership.REPORT_NAME}", json.dumps(report, indent=2))
    return report


def _claim_root(fs: HadoopFS, root: str) -> None:
    """Refuse an --output that is not empty and not a pipeline output; mark a new one as ours."""
    names = [child.rsplit("/", 1)[-1] for child in fs.children(root)]
    try:
        state = ownership.classify_output(names, lambda name: fs.read_text(f"{root}/{name}"), PIPELINE, root)
    except ownership.NotOurs as exc:
        raise UsageError(str(exc)) from None
    if state == "new":
        fs.write_text(f"{root}/{ownership.MARKER}",
                      json.dumps(ownership.marker(PIPELINE, "directory", PIPELINE, "-"), indent=2))


def _tables(spark: SparkSession, cfg: PipelineConfig, clock: StageClock, report: dict) -> None:
    """The split table, then the processed table, each claimed, checked and published in turn."""
    splits_cfg = dataclasses.replace(cfg, output=f"{cfg.output}/{OUTPUTS[0]}")
    processed_cfg = dataclasses.replace(cfg, output=f"{cfg.output}/{OUTPUTS[1]}")
    with claimed_output(spark, splits_cfg.output, cfg.format, PIPELINE) as split_claim, \
            claimed_output(spark, processed_cfg.output, cfg.format, PIPELINE) as processed_claim:
        clock.stage("listing and planning", cfg.input)
        cfg = resolved_input_kind(spark, cfg)
        check_augment_splits(cfg, list(cfg.names))
        splits, processed, rec, detail = _frames(spark, cfg)
        report["passes"] = detail
        splits_options = payload_options("content" if cfg.keep_content else None, already_compressed=True)
        try:
            clock.stage("reading, validating, splitting and transforming", f"{detail} -> {splits_cfg.output}")
            report["stages"]["splits"] = write_reported_table(
                spark, split_claim, splits, splits_cfg, clock, rec, cfg.split_params(), "split", splits_options)
            report["published"].append("splits")
            clock.stage("writing the processed table", processed_cfg.output)
            report["stages"]["processed"] = write_reported_table(
                spark, processed_claim, processed, processed_cfg, clock, rec, cfg.split_params(), "split",
                options=payload_options("image", already_compressed=cfg.spec.encode != "raw"),
                extra=lambda written: {"normalization": channel_normalization(written),
                                       "transform": {"digest": cfg.spec.digest(), **cfg.spec.as_dict()}})
            report["published"].append("processed")
        finally:
            spark.catalog.clearCache()  # the persisted rows of this run


def _frames(spark: SparkSession, cfg: PipelineConfig) -> Tuple[DataFrame, DataFrame, Reconciliation, str]:
    """(split rows, processed rows, reconciliation, how): the split rows are persisted on disk, and the
    processed rows are made from them, so the input is read and transformed once."""
    if cfg.input_kind == "files" and cfg.samples == "file" and cfg.stratify == "none":
        listing = listed_input(spark, cfg)
        reader = _reader(cfg)
        rows = _one_pass(spark, cfg, listing, reader).persist(StorageLevel.DISK_ONLY)
        splits = rows.where(F.col("aug_index") == 0).select(*split_columns(cfg.keep_content))
        processed = rows.select(*[F.col(one).alias(name) for one, name in processed_columns()])
        splits = with_split(splits, cfg, assigned=True)
        return (splits, with_recipe_metadata(processed, splits.schema["key"], cfg.spec), listing.rec,
                f"one Python pass per file ({reader} reads the bytes)")
    splits, rec, detail = split_source(spark, cfg, keep_existing_split=False)
    splits = splits.persist(StorageLevel.DISK_ONLY)
    processed = preprocess_frame(splits, cfg)
    if not cfg.keep_content:
        splits = splits.drop("content")
    why = "--stratify exact" if cfg.stratify == "exact" else "samples of several files"
    return splits, processed, rec, f"{detail}, then a second Python pass to transform ({why})"


def _reader(cfg: PipelineConfig) -> str:
    """binaryfile or workers: --read, else workers for local input (measured faster), binaryFile elsewhere."""
    if cfg.read != "auto":
        return cfg.read
    return "workers" if is_local(cfg.input) else "binaryfile"


def _one_pass(spark: SparkSession, cfg: PipelineConfig, listing, reader: str) -> DataFrame:
    settings = OnePassSettings(probe=probe_settings(cfg, listing.root, "file"), key_by=cfg.key_by, seed=cfg.seed,
                               ratios=cfg.ratios, names=cfg.names, spec=cfg.spec,
                               copies_by_split=cfg.copies_by_split(), keep_content=cfg.keep_content)
    if reader == "binaryfile":
        source = binary_scan(spark, cfg, listing)
    else:  # paths only: a few tasks per core, each reading its own files
        listed = listing.to_read + listing.from_listing
        tasks = max(1, min(len(listed), spark.sparkContext.defaultParallelism * TASKS_PER_CORE))
        source = spark.createDataFrame(listed, "path string, length long").repartition(tasks)
    rows = source.mapInArrow(functools.partial(one_pass_batches, settings=settings),
                             from_arrow_schema(ONE_PASS_SCHEMA))
    return with_labels_file(spark, rows, cfg.labels) if cfg.labels else rows


def _export(spark: SparkSession, cfg: PipelineConfig, root: str, target: str, clock: StageClock) -> dict:
    from sparkprep.export.spark import run_export

    shard_size = cfg.shard_size if target != "imagefolder" and cfg.shard_count is None else None
    return run_export(spark, ExportConfig(input=f"{root}/{OUTPUTS[1]}", output=f"{root}/{target}", to=target,
                                          shard_size=shard_size, shard_count=cfg.shard_count, classes=cfg.classes),
                      clock)
