"""Processed or split table -> ImageFolder tree, or WebDataset, TFRecord, RecordIO, Hugging Face or MDS shards, plus a
manifest.

Shards are planned before anything is written, so their contents never depend on how
Spark partitions the work:
1. size: one Python pass over the small columns and each image's length computes each
   sample's name and exact record size (the images themselves stay in the JVM);
2. pack: per split, samples in a fixed pseudo-random order are cut greedily into shards
   of at most --shard-size bytes (or --shard-count near-equal shards);
3. write: rows are partitioned by shard and sorted; each task streams its shards to
   attempt-unique temporary files and moves them to their final names.
Tasks write into <output>/_sparkprep_staging-<run id>/. Only when every sample is there
under a name of its own does the driver journal the publish, move the files into place,
write manifest.json, and delete what the previous export's manifest listed and this one
does not have. A crash in the publish is finished by the next run (claimed_export).
With --incremental, an ImageFolder export writes only the files whose bytes the previous
manifest does not list under their name (new and changed samples, and files gone from place);
a shard export keeps unchanged samples in their shards (RecordIO: and their record ids) and writes
only the shards that lost or changed one, and new ones (shards.pack_appended). The rest stays in
place, untouched.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import uuid
from typing import Dict, List, Optional

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark import TaskContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from sparkprep.errors import UsageError
from sparkprep.export import export_rows, shards
from sparkprep.export.destinations import open_destination, read_optional
from sparkprep.export.formats import FORMATS
from sparkprep.export.flags import ExportConfig
from sparkprep.ingest.paths import IMAGE_EXTENSIONS
from sparkprep.ingest.spark.samples import whole_samples
from sparkprep.runlog import StageClock, config_dict, versions
from sparkprep.schema import require_columns
from sparkprep.spark import ownership
from sparkprep.spark.faults import failure_hook
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.spark.ownership import MANIFEST, REPORT_NAME
from sparkprep.spark.tables import read_input_table
from sparkprep.split.assign import check_split_name
from sparkprep.statuses import NO_MEMBERS, OK
from sparkprep.uris import redact_uri
from sparkprep.spark.session import run_clock

# A member name whose last extension is an image format's: the member exported as the sample's image.
IMAGE_MEMBER = r"(^|\.)(" + "|".join(sorted(IMAGE_EXTENSIONS)) + r")$"
STAGING_PREFIX = "_sparkprep_staging-"  # <output>/_sparkprep_staging-<run id>/: this run's files before publish
EXPORT_JOURNAL = "_sparkprep_publish.json"


def run_export(spark: SparkSession, cfg: ExportConfig, clock: Optional[StageClock] = None) -> dict:
    clock = clock or run_clock(spark, "export")
    dest = open_destination(cfg.output, cfg.s3_endpoint)
    _check_ours(dest, cfg.output)  # read-only: a foreign output is refused before anything is read or written
    clock.stage("reading", cfg.input)
    plan = _export_plan(spark, cfg)
    run_id = uuid.uuid4().hex[:12]
    with claimed_export(dest, cfg.output, run_id):
        return _export(spark, cfg, clock, dest, run_id, *plan)


def _export_plan(spark: SparkSession, cfg: ExportConfig):
    """The rows to export, their counts, and the class map and folders, with the input checked."""
    table, input_info = _source(spark, cfg)
    table = export_samples(table)
    all_counts = table.groupBy("split", "label", "status").count().collect()
    for r in all_counts:  # split values of a foreign table become directory and file names
        try:
            check_split_name(r["split"], "--input")
        except ValueError as exc:
            raise UsageError(f"{exc} (a split value of the input table); refusing to export it") from None
    present = {r["split"] for r in all_counts}
    if cfg.splits and not present >= set(cfg.splits):
        raise UsageError(f"--splits: expected splits of the input ({', '.join(sorted(present))}), "
                         f"got {','.join(cfg.splits)}")
    chosen = set(cfg.splits or present)
    counts = [r for r in all_counts if r["split"] in chosen]
    if cfg.splits:
        table = table.where(F.col("split").isin(list(cfg.splits)))
    rows = export_frame(table.where(F.col("status") == OK))  # checks the columns before any Spark job
    fmt = FORMATS[cfg.to]  # what a format needs of the table (image formats, member names), in one small job
    wants = set(fmt.table_facts) | ({"image_format"} if fmt.encoded_only else set())
    columns = [F.col("image_format")] * ("image_format" in wants) \
        + [F.array_sort(F.map_keys("extras")).alias("members")] * ("members" in wants)
    facts = [r.asDict() for r in rows.select(*columns).distinct().collect()] if columns else []
    if fmt.encoded_only and "raw" in {r["image_format"] for r in facts}:
        raise UsageError(f"--to {cfg.to}: expected encoded images, got a table of raw pixels "
                         f"({fmt.encoded_only}); preprocess with --encode jpeg or png")
    fmt = fmt.configured(cfg.shard_size, {r.get("image_format") for r in facts},
                         {m for r in facts for m in r.get("members") or []})
    # Class indices and folders come from every ok row of the whole input (or --classes), never
    # from the exported splits alone, so exports of different splits agree.
    labels = {r["label"] for r in all_counts if r["status"] == OK}
    classes = _pinned_classes(cfg, labels) if cfg.classes else shards.class_map(labels)
    dirs = shards.label_dirs(set(classes) | labels)
    return rows, input_info, counts, classes, dirs, fmt


def _export(spark: SparkSession, cfg: ExportConfig, clock: StageClock, dest, run_id: str, rows: DataFrame,
            input_info: dict, counts: list, classes: Dict[str, int], dirs: Dict[str, str], fmt) -> dict:
    exported = [(r["split"], r["label"], r["count"]) for r in counts if r["status"] == OK]
    expected = sum(n for _, _, n in exported)
    staging = f"{STAGING_PREFIX}{run_id}"
    staged_uri = f"{cfg.output.rstrip('/')}/{staging}"
    clock.stage(f"writing {cfg.to}", f"{expected} samples -> {cfg.output} (staged in {staging}/)")
    previous, full_run, kept_shards, placement, plan, placed = None, None, [], None, None, None
    if cfg.incremental:  # the export in place (a crashed publish was finished by claimed_export), listed once
        manifest_in_place = ownership.json_object(dest.read_text(MANIFEST))
        if fmt.sharded:
            placed = dest.read_bytes(export_rows.PLACEMENT)
            previous, full_run = export_rows.previous_placement(
                manifest_in_place, fmt, cfg.shard_size, pq.read_table(pa.BufferReader(placed)) if placed else None,
                dest.sizes())
        else:
            checksums, full_run = export_rows.previous_checksums(manifest_in_place, cfg.to)
            previous = export_rows.in_place(checksums, dest.sizes()) if checksums else None  # no HEAD per file
    try:
        if not fmt.sharded:
            shared = spark.sparkContext.broadcast(previous) if previous else None
            work = functools.partial(_write_folders, output=staged_uri, endpoint=cfg.s3_endpoint, dirs=dirs,
                                     previous=shared)
        else:
            rows, plan = _planned(spark, rows, cfg, fmt, classes, clock, previous)
            work = functools.partial(_write_shards, export_format=fmt, output=staged_uri, endpoint=cfg.s3_endpoint,
                                     classes=classes, dirs=dirs)
            if cfg.incremental:
                kept_shards = _kept_shards(plan, fmt, previous)
                kept_shards += fmt.carry(dest, staging, kept_shards, previous.samples) if previous else []
                placement = _placement(plan)
        published = [r.asDict() for r in
                     rows.mapInArrow(work, from_arrow_schema(export_rows.PUBLISHED_SCHEMA)).collect()] + kept_shards
        export_rows.check_published(published, expected)
        published = fmt.finish(dest, staging, published, export_rows.run_about(
            classes, exported, counts, ownership.json_object(read_optional(cfg.input, REPORT_NAME, cfg.s3_endpoint))))
        if placement is not None and placement != placed:  # the same placement stays in place, untouched
            dest.publish(f"{staging}/{export_rows.PLACEMENT}", [placement], "driver")
    except BaseException:
        dest.delete_tree(staging)
        raise
    finally:  # a cached plan outlives the run in a session that exports the same table path again
        if plan is not None:
            plan.unpersist()
    extra = [export_rows.PLACEMENT] if placement is not None else []
    staged_extra = extra if placement != placed else []
    names = sorted([r["name"] for r in published] + extra)
    moved = sorted([r["name"] for r in published if not r.get("kept")] + staged_extra)  # what staging holds
    clock.stage("publishing", f"{len(moved)} files from {staging}/"
                + (f", {len(names) - len(moved)} kept in place" if len(moved) < len(names) else ""))
    manifest = export_rows.build_manifest(fmt, config_dict(cfg), input_info, classes, dirs, exported, counts,
                                          published)
    manifest["files"] = names
    removed = sorted(set(ownership.previous_files(dest.read_text(MANIFEST))) - set(names))
    seconds, total_bytes = clock.total(), sum(r["bytes"] for r in published)
    written_bytes = sum(r["bytes"] for r in published if not r.get("kept"))
    report = {
        "job": "export", "config": config_dict(cfg), "input": input_info,
        "output": {"uri": redact_uri(cfg.output), "export_format": cfg.to,
                   "manifest": f"{redact_uri(cfg.output).rstrip('/')}/{MANIFEST}",
                   "files": len(published) if fmt.sharded else len(names),
                   "bytes": total_bytes, "bytes_written": written_bytes, "removed_stale_files": len(removed),
                   "run_id": run_id},
        "counts": manifest["counts"], "quarantined": manifest["quarantined"],
        "shards": len(manifest["shards"]), "samples": expected, "seconds": seconds,
        "written": fmt.files_written(len(moved) - len(staged_extra), len(manifest["shards"])),
        "durations": dict(clock.durations),
        "spark_jobs": clock.spark_jobs(),
        "throughput": {"samples_per_s": round(expected / seconds, 1) if seconds else None,
                       "mb_per_s": round(total_bytes / 1e6 / seconds, 2) if seconds else None},
        "versions": versions(spark.version),
    }
    if cfg.incremental:  # an ImageFolder's files, or the shards (without their companions); removed: files
        shard_names = {e["name"] for e in manifest["shards"]}
        units = [r for r in published if r["name"] in shard_names] if fmt.sharded else published
        kept = sum(1 for r in units if r.get("kept"))
        report["incremental"] = {"unit": "shards" if fmt.sharded else "files", "files": len(units), "kept": kept,
                                 "written": len(units) - kept, "removed": len(removed), "full_run": full_run}
    journal = {"run_id": run_id, "staging": staging, "files": moved, "remove": removed,
               "manifest": _json(manifest), "report": _json(report),
               "marker": _json(ownership.marker(ownership.EXPORT, cfg.to, "export", run_id))}
    dest.write_text(EXPORT_JOURNAL, _json(journal))
    finish_export_publish(dest, journal)
    if cfg.report:
        parent, _, name = cfg.report.rstrip("/").rpartition("/")
        open_destination(parent or ".", cfg.s3_endpoint).write_text(name, _json(report))
    return report


@contextlib.contextmanager
def claimed_export(dest, output: str, run_id: str):
    """Refuse foreign outputs (before writing anything), then hold the export's lock, finish a
    crashed publish and drop stranded staging directories."""
    if dest.is_file():
        raise UsageError(f"--output: expected a directory, got a file: {output}")
    _check_ours(dest, output)
    lock = ownership.EXPORT_LOCK
    files = ownership.LockFiles(dest.create_exclusive, dest.read_text, dest.delete)
    ownership.acquire_lock(files, lock, f"{output.rstrip('/')}/{lock}", run_id)
    try:
        journal = ownership.json_object(dest.read_text(EXPORT_JOURNAL))
        if journal and isinstance(journal.get("files"), list):
            finish_export_publish(dest, journal)
        elif dest.exists(EXPORT_JOURNAL):  # half-written: the publish never started
            dest.delete(EXPORT_JOURNAL)
        for name in dest.names():
            if _is_staging(name):
                dest.delete_tree(name)
        _check_ours(dest, output)
        yield
    finally:
        ownership.release_lock(files, lock, run_id)


def _is_staging(name: str) -> bool:
    return name.startswith(STAGING_PREFIX) and bool(ownership.RUN_ID.match(name[len(STAGING_PREFIX):]))


def _check_ours(dest, output: str) -> None:
    """UsageError unless the output is new, empty, or an export of sparkprep's (its own protocol
    files, a lock, a journal or staging of a crashed run, do not make a directory foreign)."""
    names = [n for n in dest.names() if n != EXPORT_JOURNAL and not n.startswith(ownership.EXPORT_LOCK)
             and not _is_staging(n)]  # the lock, and a takeover marker beside it (ownership.take_over)
    try:
        ownership.classify_output(names, dest.read_text, ownership.EXPORT, output)
    except ownership.NotOurs as exc:
        raise UsageError(str(exc)) from None


def finish_export_publish(dest, journal: dict) -> None:
    """Move the staged files into place, write manifest, marker and report, then delete what the
    previous manifest listed and this export does not have. Safe to repeat after a crash."""
    staging = journal["staging"]
    for name in journal["files"]:
        if dest.exists(f"{staging}/{name}"):
            dest.move(f"{staging}/{name}", name)
        _after_publish_step()
    dest.write_text(MANIFEST, journal["manifest"])
    dest.write_text(ownership.MARKER, journal["marker"])
    dest.write_text(REPORT_NAME, journal["report"])
    for name in journal["remove"]:
        if dest.exists(name):
            dest.delete(name)
    dest.delete_tree(staging)
    dest.delete(EXPORT_JOURNAL)


def _after_publish_step() -> None:
    """Test hook: a test makes it raise to act as a crash in the middle of a publish."""


def _pinned_classes(cfg: ExportConfig, labels: set) -> Dict[str, int]:
    """The class map of --classes (an earlier manifest.json, or a JSON object label -> index)."""
    try:
        with open(cfg.classes, encoding="utf-8") as handle:
            loaded = json.load(handle)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--classes: expected a readable JSON file, got {cfg.classes!r} ({exc})") from None
    classes = loaded.get("classes", loaded) if isinstance(loaded, dict) else None
    if not isinstance(classes, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                for v in classes.values()):
        raise UsageError(f"--classes: expected a manifest.json or an object of label -> index, got {cfg.classes!r}")
    if len(set(classes.values())) != len(classes):
        raise UsageError(f"--classes: expected distinct indices, got {cfg.classes!r}")
    missing = sorted(l for l in labels if l is not None and l not in classes)
    if missing:
        raise UsageError(f"--classes: {len(missing)} labels of the input have no index there, e.g. {missing[0]!r}")
    return dict(classes)


def export_samples(table: DataFrame) -> DataFrame:
    """One row per sample: a split table's samples of several members (ingest.whole_samples), or a
    mapped table's `members` map (jobs/map.py). Other tables are returned unchanged."""
    if "members" in table.columns and not {"content", "image"} & set(table.columns):
        return _mapped_samples(table)
    return whole_samples(table)


def _mapped_samples(table: DataFrame) -> DataFrame:
    """content = the primary output member (the first image member by name, else the first),
    extras = the others, path = the sample's path + '.' + the primary member's name."""
    entries = F.array_sort(F.map_entries(F.col("members")))
    images = F.filter(entries, lambda e: F.lower(e["key"]).rlike(IMAGE_MEMBER))
    primary = F.coalesce(F.try_element_at(images, F.lit(1)), F.try_element_at(entries, F.lit(1)))
    with_primary = table.withColumn("_p", primary)
    return (with_primary
            .withColumn("content", F.col("_p.value"))
            .withColumn("format", F.lit(None).cast("string"))
            .withColumn("path", F.concat(F.col("path"), F.lit("."), F.col("_p.key")))
            .withColumn("primary_member", F.col("_p.key"))
            .withColumn("extras", F.map_from_entries(F.filter(entries, lambda e: e["key"] != F.col("_p.key"))))
            .withColumn("status", F.when((F.col("status") == OK) & F.col("_p").isNull(), F.lit(NO_MEMBERS))
                        .otherwise(F.col("status")))
            .drop("_p", "members"))


def export_frame(table: DataFrame) -> DataFrame:
    """The EXPORT_COLUMNS of a processed table, or of a split table of files (original bytes)."""
    columns = set(table.columns)
    payload = ("image", "image_format") if "image" in columns else ("content", "format")
    require_columns(table.columns, ("key", "split", "label", "path", "sha256", "status") + payload,
                    "a processed table (jobs/preprocess.py) or a split table of image files (jobs/split.py)")
    if "image" in columns:
        image, image_format, channels = F.col("image"), F.col("image_format"), F.col("channels")
    else:
        image, image_format, channels = F.col("content"), F.col("format"), F.lit(None).cast("int")
    aug = F.col("aug_index") if "aug_index" in columns else F.lit(0)
    width = F.col("width") if "width" in columns else F.lit(None)
    height = F.col("height") if "height" in columns else F.lit(None)
    extras = F.col("extras") if "extras" in columns else F.lit(None).cast("map<string,binary>")
    primary = F.col("primary_member") if "primary_member" in columns else F.lit(None).cast("string")
    return table.select("key", "split", "label", "path", "sha256", aug.cast("int").alias("aug_index"),
                        width.cast("int").alias("width"), height.cast("int").alias("height"),
                        channels.cast("int").alias("channels"), image.alias("image"),
                        image_format.alias("image_format"), extras.alias("extras"),
                        primary.alias("primary_member"))


def _planned(spark: SparkSession, rows: DataFrame, cfg: ExportConfig, fmt, classes: Dict[str, int],
             clock: StageClock, previous: Optional[export_rows.PreviousPlacement] = None):
    """(rows + shard, shards and order columns, partitioned by shard and sorted for writing, the plan).

    export --incremental: the sizing pass hashes each record too, and samples whose record is unchanged
    stay in their previous shard (shards.pack_appended); rows of shards left as they are are not written.
    """
    sizing = functools.partial(export_rows.sizing_batches, export_format=fmt, classes=classes,
                               fingerprint=cfg.incremental)
    lengths = [F.transform_values("extras", lambda _, v: F.length(v)).alias("extras_len")]
    dropped = {"extras"}
    if not (fmt.sized_by_content or cfg.incremental):  # the images stay in the JVM; their lengths size the records
        lengths.append(F.length("image").alias("image_len"))
        dropped.add("image")
    narrow = rows.select(*[c for c in rows.columns if c not in dropped], *lengths)
    sizes = narrow.mapInArrow(sizing, from_arrow_schema(export_rows.SIZES_SCHEMA))
    if previous is not None:
        sizes = sizes.join(spark.createDataFrame(previous.samples), ["split", "name"], "left")
    else:
        sizes = sizes.withColumn("kept_shard", F.lit(None).cast("int")) \
            .withColumn("previous_sha256", F.lit(None).cast("string")) \
            .withColumn("previous_id", F.lit(None).cast("long"))
    pack = functools.partial(shards.pack_split, overhead=fmt.overhead, shard_size=cfg.shard_size,
                             shard_count=cfg.shard_count,
                             previous_counts=previous.counts if previous else None,
                             in_place=previous.in_place if previous else None, appendable=cfg.incremental)
    plan = sizes.groupBy("split").applyInPandas(pack, shards.PLAN_SCHEMA).cache()
    per_split = plan.groupBy("split").agg((F.max("shard") + 1).alias("shards"), F.count(F.lit(1)).alias("n")).collect()
    totals, planned = {r["split"]: r["shards"] for r in per_split}, sum(r["n"] for r in per_split)
    offsets, start = {}, 0
    for split in sorted(totals):
        offsets[split], start = start, start + totals[split]
    clock.stage(f"writing {start} shards", ", ".join(f"{s}: {totals[s]}" for s in sorted(totals)))
    offset = F.create_map(*[x for s in sorted(offsets) for x in (F.lit(s), F.lit(offsets[s]))]) if offsets else None
    joined = rows.alias("r").join(
        F.broadcast(plan.alias("p")) if planned <= 2_000_000 else plan.alias("p"),
        (F.col("r.split") == F.col("p.split")) & F.col("r.path").eqNullSafe(F.col("p.path"))
        & (F.col("r.aug_index") == F.col("p.aug_index")))
    joined = joined.where(F.col("p.rewrite")).select("r.*", "p.order", "p.shard", "p.shards", "p.index")
    if offset is None:
        return joined, plan
    global_shard = offset[F.col("split")] + F.col("shard")
    return (joined.repartition(max(start, 1), global_shard)
            .sortWithinPartitions("split", "shard", "order")), plan


def _kept_shards(plan: DataFrame, fmt, previous: Optional[export_rows.PreviousPlacement]) -> List[dict]:
    """export --incremental: the published entries of the shards left as they are (the previous manifest's)."""
    if previous is None:
        return []
    kept = plan.where(~F.col("rewrite")).select("split", "shard").distinct().collect()
    return [row for name in sorted(fmt.shard_name(r["split"], r["shard"], None) for r in kept)
            for row in fmt.kept_files(previous.entries[name], previous.sizes)]


def _placement(plan: DataFrame) -> bytes:
    """export --incremental: the placement file's bytes (sorted, so the same plan gives the same bytes)."""
    table = plan.select("split", "name", "shard", "record_sha256", F.col("index").alias("record_id")).toArrow() \
        .cast(export_rows.PLACEMENT_SCHEMA)
    sink = pa.BufferOutputStream()
    pq.write_table(table.sort_by([("split", "ascending"), ("shard", "ascending"), ("name", "ascending")]), sink)
    return sink.getvalue().to_pybytes()


def _attempt() -> str:
    """On the executor: unique per task attempt, for temporary file names."""
    context = TaskContext.get()
    return f"{context.taskAttemptId() if context else 0}-{uuid.uuid4().hex[:8]}"


def _write_shards(batches, export_format, output, endpoint, classes, dirs):
    yield from export_rows.shard_batches(batches, export_format, open_destination(output, endpoint), _attempt(), classes,
                                         dirs, checkpoint=failure_hook())


def _write_folders(batches, output, endpoint, dirs, previous=None):
    yield from export_rows.folder_batches(batches, open_destination(output, endpoint), _attempt(), dirs,
                                          previous.value if previous is not None else None)


def _source(spark: SparkSession, cfg: ExportConfig):
    """The input table and what identifies its version."""
    fs = HadoopFS(spark)
    table, uri, delta = read_input_table(spark, cfg.input, cfg.format)
    if delta:
        from deltalake import DeltaTable

        version = {"format": "delta", "version": DeltaTable(uri).version()}
    else:
        files = "".join(f"{name[len(uri):]} {size}\n" for name, size, _ in fs.list_files(uri, ".parquet"))
        version = {"format": "parquet", "files_sha256": hashlib.sha256(files.encode()).hexdigest()}
    return table, {"uri": redact_uri(uri), **version}


def _json(value: dict) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"
