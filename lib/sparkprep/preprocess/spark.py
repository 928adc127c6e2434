"""Split table -> processed table: one Arrow-batched Python pass (mapInArrow), no row UDFs; with --incremental,
the previous output's rows for unchanged samples."""

from __future__ import annotations

import functools
import json
from typing import Any, Callable, Dict, List, Optional, Tuple

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructField
from pyspark.storagelevel import StorageLevel

from sparkprep.audit.spark.search import crops, threshold_words
from sparkprep.errors import UsageError
from sparkprep.ingest.spark.incremental import reusable_output
from sparkprep.ingest.spark.samples import whole_samples
from sparkprep.preprocess.flags import PreprocessConfig
from sparkprep.preprocess.processed_rows import processed_batches, processed_schema
from sparkprep.preprocess.transform import TRANSFORM_METADATA_KEY, TransformSpec
from sparkprep.runlog import StageClock
from sparkprep.schema import PREPROCESS_INPUT_COLUMNS, SPLIT_METADATA_KEY, require_columns
from sparkprep.spark.executor import stalled
from sparkprep.spark.reported import write_reported_table
from sparkprep.spark.tables import claimed_output, payload_options, read_table
from sparkprep.split.spark import SPLIT_TABLE_KEPT, merged_near_duplicates, resolved_input_kind, split_source
from sparkprep.statuses import INVALID, OK
from sparkprep.table_counts import channel_normalization_of, normalization_entries
from sparkprep.spark.session import run_clock


def preprocess_frame(split_table: DataFrame, cfg: PreprocessConfig, grouped: Optional[bool] = None) -> DataFrame:
    """Decode, orient, convert, resize, augment and encode every ok row; quarantine the rest.

    Samples of several members (an image and its .json, a WebDataset sample) become one row:
    the image member is transformed, the others travel unchanged in `extras`. grouped: whether
    the input's samples have several members, when the caller knows (else the table is asked).
    """
    require_columns(split_table.columns, PREPROCESS_INPUT_COLUMNS, "a split table of files (jobs/split.py)")
    table = whole_samples(split_table, grouped)
    columns = list(PREPROCESS_INPUT_COLUMNS)
    if "extras" in table.columns:
        columns.append("extras")
        no_image = (F.col("status") == OK) & F.col("format").isNull()
        members = F.array_join(F.array_sort(F.concat(F.array("member"), F.map_keys("extras"))), ", ")
        table = (table.withColumn("error", F.when(no_image, F.concat(
                    F.lit("the sample has no image member to transform (its members: "), members, F.lit(")")))
                    .otherwise(F.col("error")))
                 .withColumn("status", F.when(no_image, F.lit(INVALID)).otherwise(F.col("status"))))
    work = functools.partial(stalled, function=processed_batches, spec=cfg.spec,
                             copies_by_split=cfg.copies_by_split(), max_pixels=cfg.max_pixels)
    schema = processed_schema(extras="extras" in columns)
    processed = table.select(*columns).mapInArrow(work, from_arrow_schema(schema))
    return with_recipe_metadata(processed, split_table.schema["key"], cfg.spec)


def with_recipe_metadata(processed: DataFrame, split_key: StructField, spec: TransformSpec) -> DataFrame:
    """The processed rows with the split parameters on `key` (from the split table's key) and the
    recipe on `transform`, where readers (and sparkprep.online) find them."""
    key_meta = split_key.metadata or {}
    transform_meta = {TRANSFORM_METADATA_KEY: json.dumps(spec.record(), sort_keys=True)}
    return processed.select(*[
        F.col("key").alias("key", metadata={k: v for k, v in key_meta.items() if k == SPLIT_METADATA_KEY})
        if name == "key" else F.col(name).alias(name, metadata=transform_meta) if name == "transform"
        else F.col(name) for name in processed.columns])


def run_preprocess(spark: SparkSession, cfg: PreprocessConfig, clock: Optional[StageClock] = None) -> dict:
    """Raw files, a catalog or a split table -> processed table (training-ready pixels) by split."""
    clock = clock or run_clock(spark, "preprocess")
    with claimed_output(spark, cfg.output, cfg.format, "preprocess") as claim:
        cfg = resolved_input_kind(spark, cfg)
        clock.stage("planning", f"{cfg.input} ({cfg.input_kind})")
        table, rec, detail = split_source(spark, cfg, keep_existing_split=True, claim_state=claim.state)
        grouped = (cfg.samples == "basename") if detail != SPLIT_TABLE_KEPT and cfg.input_kind != "catalog" else None
        merged = None
        if cfg.near_duplicates == "merge":
            if detail == SPLIT_TABLE_KEPT:
                raise UsageError("--near-duplicates: merge re-keys a split, and this input's splits are kept; "
                                 "re-split it with jobs/split.py --near-duplicates merge")
            clock.stage("near-duplicate clusters", threshold_words(cfg.near_threshold, crops(cfg)))
            table, merged, persisted = merged_near_duplicates(table, cfg)
        split_params = _recorded_split(table) if detail == SPLIT_TABLE_KEPT else cfg.split_params()
        check_augment_splits(cfg, (split_params or {}).get("names"))
        reused, cached = None, [persisted] if merged is not None else []  # persisted for the write: freed after it
        if cfg.incremental:
            if detail != SPLIT_TABLE_KEPT:
                raise UsageError("--incremental: preprocess reuses its previous output for a split table's rows; "
                                 "for raw files or a catalog run jobs/split.py --incremental first, then preprocess "
                                 "its table with --incremental")
            clock.stage("matching the previous output", cfg.output)
            processed, reused = incremental_frame(spark, cfg, claim.state, table,
                                                  lambda rows, grouped: preprocess_frame(rows, cfg, grouped),
                                                  grouped=grouped, cached=cached)
            processed = with_recipe_metadata(processed, table.schema["key"], cfg.spec)
        else:
            processed = preprocess_frame(table, cfg, grouped)
        clock.stage("running", f"{detail}; decode, transform, encode ({cfg.spec.digest()}) -> {cfg.output}"
                    + (f"; {reused['kept']} of {reused['listed']} samples kept from the previous output"
                       if reused else ""))
        try:
            return write_reported_table(
                spark, claim, processed, cfg, clock, rec, split_params, "split",
                options=payload_options("image", already_compressed=cfg.spec.encode != "raw"),
                extra=lambda written, small: {"normalization": channel_normalization(written, small=small),
                                              "transform": cfg.spec.record(),
                                              **({"near_duplicate_merge": merged} if merged else {}),
                                              **({"incremental": reused} if reused else {})})
        finally:
            for frame in cached:
                frame.unpersist()


# --incremental (docs/jobs/preprocess.md): the previous processed table is the state; a split table's ok
# sample is kept, unread, when the previous output holds it with every column the transform passes through
# unchanged and all its rows ok. Every other row is transformed.
# Settings (run report config keys) that decide a processed row beside the sample itself.
PROCESSED_SETTINGS = ("spec", "copies", "augment_splits", "max_pixels", "format")
# The columns a processed row passes through from its split-table row: equal ones mean the same transform.
SAMPLE_COLUMNS = ("key", "split", "label", "path", "sha256", "rel_path")


def _same(a: str, b: str, columns: Tuple[str, ...] = SAMPLE_COLUMNS) -> Column:
    """Null-safe equality of the sample columns of the frames aliased a and b."""
    return functools.reduce(lambda x, y: x & y, [F.col(f"{a}.{c}").eqNullSafe(F.col(f"{b}.{c}")) for c in columns])


def _members(digest: Callable[[Column], Column]) -> Column:
    """A sample's other members as one string (`member=sha256` lines, sorted; '' for none), from `extras`
    (member -> its bytes, or its sha256 where digest is the identity): equal ones mean the same members."""
    lines = F.transform(F.map_entries("extras"), lambda e: F.concat(e["key"], F.lit("="), digest(e["value"])))
    return F.coalesce(F.array_join(F.array_sort(lines), "\n"), F.lit(""))


def incremental_frame(spark: SparkSession, cfg: Any, claim_state: str, table: DataFrame,
                      transform: Callable[[DataFrame, Optional[bool]], DataFrame], job: str = "preprocess",
                      grouped: Optional[bool] = None, resumed: Optional[DataFrame] = None,
                      cached: Optional[List[DataFrame]] = None) -> Tuple[DataFrame, Dict[str, Any]]:
    """(the processed rows: earlier rows for unchanged samples, `transform` of the rest; and the report's
    `incremental` section: listed, kept, transformed, deleted, and why nothing was kept).

    The earlier rows: with cfg.incremental, the previous output's (job: the job whose output is reused,
    preprocess or the pipeline's processed table); and `resumed`, rows a killed run's committed tasks wrote
    with these settings (sparkprep.spark.committed; `_source` orders them: a sample's rows are taken from
    one source, the first). A sample is kept when its earlier rows are all ok and their sample columns equal
    its split-table row's. grouped: whether the table's samples have several members (None asks the table,
    as whole_samples does); `transform` gets it, so that the rows transformed now have the form a full run
    gives them. A sample of several members is kept when its primary member's columns and every other
    member's name and sha256 equal the earlier row's (those sha256 are taken from the bytes in `extras`).
    cached: gets the frames this persists for the rows' write, for the caller to unpersist after it."""
    previous, reason = reusable_output(spark, cfg, claim_state, PROCESSED_SETTINGS, job=job) \
        if cfg.incremental else (None, "")
    if grouped is None:
        grouped = "sample" in table.columns and \
            table.groupBy("sample").count().where("count > 1").limit(1).count() > 0
    extras = grouped and {"sample", "member", "format"} <= set(table.columns)
    old = _earlier_rows(read_table(spark, previous) if previous is not None else None, resumed)
    if old is not None and extras != ("extras" in old.columns):
        old, previous, reason = None, None, (
            "the previous output's samples had one member each, this input's have several" if extras else
            "the previous output's samples had several members, this input's have one each")
    if old is None:
        listed = whole_samples(table, grouped).count()
        return transform(table, grouped), {"previous": None, "listed": listed, "kept": 0, "transformed": listed,
                                           "deleted": 0, "full_run": reason or "no previous output"}
    columns = SAMPLE_COLUMNS + (("_members",) if extras else ())
    if extras:  # one row per sample, its other members' sha256 in `extras` (whole_samples, on the sha256 alone)
        digests = table.select(*SAMPLE_COLUMNS, "sample", "member", "format", "status",
                               F.col("sha256").alias("content"))
        now = whole_samples(digests, True).withColumn("_members", _members(lambda v: v))
        old = old.withColumn("_members", _members(lambda v: F.sha2(v, 256)))
    else:
        now = table.withColumn("sample", F.lit(None).cast("string"))
    # one small frame of every sample of either table (the sample columns only), counted in one job
    now = now.select(*columns, "sample", (F.col("status") == OK).alias("_now_ok")).alias("t")
    before = old.groupBy(*columns).agg(F.bool_and(F.col("status") == OK).alias("_was_ok"),
                                       F.max("_resumed").alias("_resumed")).alias("p")
    both = (now.join(before, _same("t", "p", columns), "full_outer")
            .select(*[F.coalesce(F.col(f"t.{c}"), F.col(f"p.{c}")).alias(c) for c in columns], F.col("t.sample"),
                    "_now_ok", (F.col("_now_ok") & F.col("_was_ok")).alias("_keep"), "_resumed")
            .persist(StorageLevel.MEMORY_AND_DISK))
    if cached is not None:
        cached.append(both)
    counts = both.agg(F.count("_now_ok").alias("listed"), F.sum(F.col("_keep").cast("long")).alias("kept"),
                      F.sum((F.col("_keep") & F.col("_resumed")).cast("long")).alias("resumed")).first()
    # gone: a previous sample whose path is no longer listed (a changed one is listed, and transformed)
    gone = before.select("path").distinct().join(now.select("path"), "path", "left_anti").count()
    keep = both.where(F.col("_keep")).alias("k")
    kept = old.alias("o").join(keep, _same("o", "k", columns), "left_semi")
    if extras:  # every member row of a kept sample stays out of the transform
        todo = table.join(keep.select("sample"), "sample", "left_anti")
    else:
        todo = table.alias("t").join(keep.select(*columns).alias("k"), _same("t", "k"), "left_anti")
    listed, counted = int(counts["listed"]), int(counts["kept"] or 0)
    fresh = transform(todo, grouped)
    return fresh.unionByName(kept.select(*fresh.columns)), {
        "previous": previous, "listed": listed, "kept": counted, "transformed": listed - counted, "deleted": gone,
        **({"resumed": int(counts["resumed"] or 0)} if resumed is not None else {}),
        **({"full_run": reason} if previous is None and reason and not counted else {})}


def _earlier_rows(previous: Optional[DataFrame], resumed: Optional[DataFrame]) -> Optional[DataFrame]:
    """The rows a run may keep, with `_resumed`: a killed run's (each sample's from its first source only),
    then the previous output's of samples the killed runs did not make; None when there are none."""
    if resumed is not None:
        first = resumed.groupBy(*SAMPLE_COLUMNS).agg(F.min("_source").alias("_first")).alias("f")
        resumed = (resumed.alias("r").join(first, _same("r", "f") & (F.col("r._source") == F.col("f._first")),
                                           "left_semi").drop("_source").withColumn("_resumed", F.lit(True)))
    if previous is not None:
        previous = previous.withColumn("_resumed", F.lit(False))
        if resumed is not None:
            previous = previous.alias("o").join(resumed.alias("r"), _same("o", "r"), "left_anti")
    if resumed is None or previous is None:
        return resumed if previous is None else previous
    return resumed.unionByName(previous.select(*resumed.columns))


def check_augment_splits(cfg: PreprocessConfig, names: Optional[list]) -> None:
    """UsageError when copies are asked for splits the input does not have (a typo gives no copies)."""
    unknown = sorted(set(cfg.augment_splits) - set(names or ()))
    if cfg.copies and names is not None and unknown:
        raise UsageError(f"--augment-splits: expected splits of the input ({', '.join(names)}), "
                         f"got {', '.join(unknown)}")


def _recorded_split(table: DataFrame) -> Optional[dict]:
    """The split parameters a split table carries on its key column, if any."""
    recorded = (table.schema["key"].metadata or {}).get(SPLIT_METADATA_KEY)
    return json.loads(recorded) if recorded else None


def channel_normalization(table: DataFrame, split_name: str = "train", small: Optional[Dict[str, list]] = None) -> dict:
    """Per-channel mean and std over the ok originals of one split: what transforms.Normalize wants.

    Combined exactly from each image's own mean, std and pixel count; from `small` (the table's
    small columns, sparkprep.spark.table_stats.small_columns) on the driver when given.
    """
    if small is not None and "channel_mean" in small:
        return channel_normalization_of(small, split_name)
    rows = table.where((F.col("split") == split_name) & (F.col("status") == OK) & (F.col("aug_index") == 0))
    pixels = (F.col("width") * F.col("height")).cast("double")
    per_channel = (rows.select("channels", pixels.alias("n"),
                               F.posexplode(F.arrays_zip("channel_mean", "channel_std")).alias("c", "ms"))
                   .groupBy("channels", "c")
                   .agg(F.sum(F.col("n") * F.col("ms.channel_mean")).alias("s1"),
                        F.sum(F.col("n") * (F.col("ms.channel_std") ** 2 + F.col("ms.channel_mean") ** 2)).alias("s2"),
                        F.sum("n").alias("n"), F.count(F.lit(1)).alias("images"))
                   .orderBy("channels", "c").collect())
    return normalization_entries([(r["channels"], r["c"], r["s1"], r["s2"], r["n"], r["images"]) for r in per_channel],
                                 split_name)
