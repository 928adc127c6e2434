"""The run report of table jobs: counts read back from the written table, and the reported write.

Only small columns are read (parquet prunes the rest), and each aggregate is one pass:
no cache, no distinct counts, no per-group lists over the whole table.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window, functions as F
from pyspark.sql.types import BinaryType, LongType
from pyspark.storagelevel import StorageLevel

from sparkprep.cli import LeakageFound, config_dict
from sparkprep.ingest.phash import to_hex
from sparkprep.report import html
from sparkprep.report.row_images import data_uri
from sparkprep.report.run_report import StageClock, nested_counts, versions
from sparkprep.schema import FILTERED, OK, require_columns
from sparkprep.spark import ownership
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.spark.ownership import LISTING_STATE, TABLE_PAGE
from sparkprep.spark.tables import Claim, claim_directory, read_input_table, write_atomic, write_table
from sparkprep.split.near_duplicates import BandLayout, components, layout_for

if TYPE_CHECKING:
    from sparkprep.report.flags import ReportConfig

EXAMPLES = 5


def table_stats(table: DataFrame) -> dict:
    """counts, quarantine, duplicates (same sha256 among ok rows) and, with a split, leakage."""
    has_split = "split" in table.columns
    # Where a row came from: its source path, or its key for tabular rows (path is null).
    where = F.coalesce(F.col("path"), F.col("key")) if "key" in table.columns else F.col("path")
    split = F.col("split") if has_split else F.lit("all")
    copies = (F.col("aug_index") > 0) if "aug_index" in table.columns else F.lit(False)
    grouped = table.groupBy(split.alias("split"), "label", "status", copies.alias("copy")).count().collect()
    per_label, per_status, per_split_status, copy_rows = [], {}, [], 0
    for r in grouped:
        per_label.append((r["split"], r["label"], r["count"]))
        per_split_status.append((r["split"], r["status"], r["count"]))
        per_status[r["status"]] = per_status.get(r["status"], 0) + r["count"]
        copy_rows += r["count"] if r["copy"] else 0
    stats = {"counts": nested_counts(_sum_over_status(per_label)), "rows": sum(per_status.values()),
             "status_counts": per_status, "status_by_split": nested_counts(_sum_over_status(per_split_status)),
             "quarantine": _quarantine(table, where, per_status)}
    if "aug_index" in table.columns:  # copies share their original's key and sha256
        stats["augmented_copies"] = copy_rows
        table = table.where(F.col("aug_index") == 0)
    stats["duplicates"] = _duplicates(table, where, split)
    if "sample" in table.columns and "member" in table.columns:
        stats["samples"] = sample_stats(table)
    if has_split:
        spread = (table.groupBy("key").agg(F.min("split").alias("lo"), F.max("split").alias("hi"))
                  .where("lo <> hi")
                  .agg(F.count(F.lit(1)).alias("n"), F.slice(F.sort_array(F.collect_list("key")), 1, EXAMPLES).alias("some"))
                  .first())
        stats["leakage"] = {"keys_in_several_splits": int(spread["n"]), "examples": list(spread["some"] or [])}
    return stats


def sample_stats(table: DataFrame) -> dict:
    """Samples as well as files: how many, and which lack a member that other samples have.

    Only member names that appear in several samples are checked (at most 50), so a file
    mode table (one member per sample) reports no incomplete samples.
    """
    per_sample = table.groupBy("sample").agg(F.collect_set("member").alias("members"), F.count(F.lit(1)).alias("n"))
    counted = per_sample.agg(F.count(F.lit(1)).alias("samples"), F.max("n").alias("largest")).first()
    out = {"count": int(counted["samples"] or 0), "largest": int(counted["largest"] or 0), "incomplete": {}}
    if out["largest"] <= 1:
        return out
    common = [r["member"] for r in table.groupBy("member").agg(F.countDistinct("sample").alias("k"))
              .where("k > 1").orderBy(F.desc("k"), "member").limit(50).collect()]
    if not common:
        return out
    lacking = per_sample.agg(*[
        F.struct(F.sum((~F.array_contains("members", m)).cast("int")).alias("n"),
                 F.slice(F.sort_array(F.collect_list(F.when(~F.array_contains("members", m), F.col("sample")))),
                         1, EXAMPLES).alias("examples")).alias(f"m{i}")
        for i, m in enumerate(common)]).first()
    for i, m in enumerate(common):
        if lacking[f"m{i}"]["n"]:
            out["incomplete"][m] = {"count": int(lacking[f"m{i}"]["n"]), "examples": list(lacking[f"m{i}"]["examples"])}
    return out


def channel_normalization(table: DataFrame, split_name: str = "train") -> dict:
    """Per-channel mean and std over the ok originals of one split: what transforms.Normalize wants.

    Combined exactly from each image's own mean, std and pixel count.
    """
    rows = table.where((F.col("split") == split_name) & (F.col("status") == OK) & (F.col("aug_index") == 0))
    pixels = (F.col("width") * F.col("height")).cast("double")
    per_channel = (rows.select("channels", pixels.alias("n"),
                               F.posexplode(F.arrays_zip("channel_mean", "channel_std")).alias("c", "ms"))
                   .groupBy("channels", "c")
                   .agg(F.sum(F.col("n") * F.col("ms.channel_mean")).alias("s1"),
                        F.sum(F.col("n") * (F.col("ms.channel_std") ** 2 + F.col("ms.channel_mean") ** 2)).alias("s2"),
                        F.sum("n").alias("n"), F.count(F.lit(1)).alias("images"))
                   .orderBy("channels", "c").collect())
    out = {}
    for r in per_channel:
        entry = out.setdefault(str(r["channels"]), {"split": split_name, "images": int(r["images"]), "mean": [], "std": []})
        mean = r["s1"] / r["n"]
        entry["mean"].append(round(mean, 6))
        entry["std"].append(round(max(0.0, r["s2"] / r["n"] - mean * mean) ** 0.5, 6))
    return out


def _sum_over_status(rows):
    totals = {}
    for split, label, n in rows:
        totals[(split, label)] = totals.get((split, label), 0) + n
    return [(s, l, n) for (s, l), n in totals.items()]


def _quarantine(table: DataFrame, where: Column, per_status: dict) -> dict:
    bad = {status: n for status, n in per_status.items() if status != OK}
    out = {status: {"count": n, "examples": []} for status, n in sorted(bad.items())}
    if not bad:
        return out
    ranked = (table.where(F.col("status") != OK).select("status", where.alias("where"), "error")
              .withColumn("_n", F.row_number().over(Window.partitionBy("status").orderBy("where"))))
    for r in ranked.where(F.col("_n") <= EXAMPLES).orderBy("status", "_n").collect():
        out[r["status"]]["examples"].append({"path": r["where"], "error": r["error"]})
    return out


def judged_for_duplicates(table: DataFrame) -> DataFrame:
    """The rows whose bytes are judged as exact copies: every row, but a sample's side-car members.

    In a table of samples of several members (an image with its .json and .cls, a WebDataset
    sample), the side-cars of different samples are often byte-identical (the same class file,
    an empty annotation): they say nothing about leakage. A sample is judged by its image members
    (a processed table's rows are samples already); a file that is its own sample, by its bytes.
    """
    if not {"format", "sample", "rel_path"} <= set(table.columns):
        return table
    return table.where(F.col("format").isNotNull() | (F.col("sample") == F.col("rel_path")))


def _duplicates(table: DataFrame, where: Column, split: Column) -> dict:
    """Exact copies: groups, extra copies, groups whose copies disagree on label or split."""
    table = judged_for_duplicates(table)
    groups = (table.where((F.col("status") == OK) & F.col("sha256").isNotNull())
              .groupBy("sha256")
              .agg(F.count(F.lit(1)).alias("n"),
                   (F.min("label") != F.max("label")).alias("label_conflict"),
                   (F.min(split) != F.max(split)).alias("split_conflict"))
              .where("n > 1"))
    totals = groups.agg(
        F.count(F.lit(1)).alias("groups"), F.sum(F.col("n") - 1).alias("extra"),
        F.sum(F.col("label_conflict").cast("int")).alias("labels"),
        F.sum(F.col("split_conflict").cast("int")).alias("splits"),
        F.slice(F.sort_array(F.collect_list("sha256")), 1, EXAMPLES).alias("some"),
        F.slice(F.sort_array(F.collect_list(F.when(F.col("label_conflict"), F.col("sha256")))), 1, EXAMPLES)
        .alias("conflicting"),
    ).first()
    wanted = set(totals["some"] or []) | set(totals["conflicting"] or [])
    paths = {}
    if wanted:
        for r in table.where(F.col("sha256").isin(sorted(wanted)) & (F.col("status") == OK)) \
                .select("sha256", where.alias("where")).collect():
            paths.setdefault(r["sha256"], []).append(r["where"])
    example = lambda sha: {"sha256": sha, "paths": sorted(paths.get(sha, []))[:EXAMPLES]}  # noqa: E731
    return {
        "groups": int(totals["groups"] or 0),
        "extra_copies": int(totals["extra"] or 0),
        "conflicting_label_groups": int(totals["labels"] or 0),
        "groups_in_several_splits": int(totals["splits"] or 0),
        "examples": [example(s) for s in totals["some"] or []],
        "conflicting_examples": [example(s) for s in totals["conflicting"] or []],
    }


THUMBS_PER_CELL = 4   # ok originals shown per split x label
MAX_LABELS = 24       # the most frequent labels get thumbnails
# At most (splits x MAX_LABELS x THUMBS_PER_CELL) + the quarantine examples (EXAMPLES per reason) + both
# sides of the near pairs listed (2 x NEAR_EXAMPLES) thumbnails of <= 96 px (~3 KB each) travel to
# the driver: about 1 MB for three splits, whatever the table's size.
SIZE_BINS = {"width (px)": ("width", (32, 64, 128, 256, 512, 1024, 2048, 4096)),
             "height (px)": ("height", (32, 64, 128, 256, 512, 1024, 2048, 4096)),
             "file size (KB)": ("size", (1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20))}


def report_visuals(table: DataFrame, report: dict) -> dict:
    """What report.html shows beyond the run report: thumbnails (bounded count) and size histograms.

    Rows are chosen and binned in Spark; thumbnails are made on the workers, in one pass, from
    the row's bytes (content, a processed image, or the file at its path).
    """
    where = F.coalesce(F.col("path"), F.col("key")) if "key" in table.columns else F.col("path")
    originals = table.where(F.col("aug_index") == 0) if "aug_index" in table.columns else table
    split = F.col("split") if "split" in table.columns else F.lit("all")
    label = F.coalesce(F.col("label"), F.lit("(none)"))
    totals: dict = {}
    for per in (report.get("counts") or {}).values():
        for name, n in per.items():
            totals[name] = totals.get(name, 0) + n
    labels = [name for name, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_LABELS]]
    ok = originals.where(F.col("status") == OK)
    order = F.sha2(F.concat_ws("\n", F.col("key") if "key" in table.columns else F.lit(""), where), 256)
    # 1. choose on narrow columns (no image bytes travel through the window's shuffle)
    narrow = ok.where(label.isin(labels)).select(where.alias("where"), split.alias("split"), label.alias("label"),
                                                  order.alias("_order"))
    cells = {r["where"]: r for r in narrow.withColumn(
        "_rank", F.row_number().over(Window.partitionBy("split", "label").orderBy("_order")))
        .where(F.col("_rank") <= THUMBS_PER_CELL).select("where", "split", "label", "_rank").collect()}
    # the rows listed in the report: quarantine examples and both sides of the near pairs shown
    listed = {e["path"] for info in (report.get("quarantine") or {}).values() for e in info["examples"]
              if e.get("path")} | {p[side]["path"] for p in (report.get("near_duplicates") or {}).get("examples", [])
                                   for side in ("a", "b")}
    # 2. thumbnails of those few rows only
    wanted = sorted(set(cells) | listed)
    with ThreadPoolExecutor(max_workers=1) as pool:  # the histograms' job runs beside the thumbnails'
        histograms = pool.submit(_size_histograms, ok, table)
        made = _thumbnails_of(originals, where, wanted) if wanted else {}
    chosen = sorted(cells.values(), key=lambda r: (r["split"], r["label"], r["_rank"]))
    thumbs = [{"split": r["split"], "label": r["label"], "path": r["where"], "uri": data_uri(made.get(r["where"]))}
              for r in chosen]
    images = {w: data_uri(made.get(w)) for w in listed}
    quarantined = [{"path": e["path"], "status": status, "error": e["error"], "uri": images.get(e["path"])}
                   for status, info in (report.get("quarantine") or {}).items() for e in info["examples"]]
    return {"thumbs": thumbs, "quarantine": quarantined, "images": images, "histograms": histograms.result(),
            "caps": {"per_cell": THUMBS_PER_CELL, "labels": MAX_LABELS}}


def _thumbnails_of(rows: DataFrame, where: Column, wanted: list) -> dict:
    """{where: JPEG thumbnail or None} for the wanted rows.

    A table that holds the bytes and their sha256 (a split table) first reads the few files
    at their paths and keeps those whose sha256 still matches: scanning the table's byte
    column would cost a read of every image. Rows whose file is gone, changed or not a
    plain file (a WebDataset member) take their bytes from the table.
    """
    chosen = rows.where(where.isin(wanted))
    if not {"content", "path", "sha256"} <= set(rows.columns):
        return {r["where"]: r["thumb"] for r in chosen.select(
            where.alias("where"), _thumbnail_udf(*_row_bytes(rows)).alias("thumb")).collect()}
    made = {r["where"]: r["thumb"] for r in chosen.select(
        where.alias("where"), _file_thumbnail_udf(F.col("path"), F.col("sha256")).alias("thumb")).collect()}
    missing = sorted(w for w, thumb in made.items() if thumb is None)
    if missing:
        made.update({r["where"]: r["thumb"] for r in rows.where(where.isin(missing)).select(
            where.alias("where"), _thumbnail_udf(*_row_bytes(rows)).alias("thumb")).collect()})
    return {w: thumb or None for w, thumb in made.items()}  # b"": read and verified, but it does not decode


@F.pandas_udf(BinaryType())
def _file_thumbnail_udf(path: pd.Series, sha256: pd.Series) -> pd.Series:
    """The thumbnail of the local file at path when its bytes still hash to sha256 (b"" when they do
    not decode); None when the file cannot be read, has changed or is remote (a GET per thumbnail
    costs more than reading the table's bytes, and may need the job's own endpoint)."""
    import hashlib

    from sparkprep.ingest.listing import is_local, read_bytes
    from sparkprep.report.row_images import thumbnail_jpeg

    out = []
    for p, digest in zip(path, sha256):
        try:
            data = read_bytes(p) if isinstance(p, str) and "#" not in p and is_local(p) else None
        except (OSError, ValueError):  # gone, unreadable, or a scheme pyarrow does not know (hdfs://)
            data = None
        ok = data is not None and hashlib.sha256(data).hexdigest() == digest
        out.append((thumbnail_jpeg(data) or b"") if ok else None)
    return pd.Series(out, dtype=object)


def with_phash(table: DataFrame) -> DataFrame:
    """The table with a `phash` column: its own, or computed on the workers for the ok rows of a table
    written without one (before sparkprep 0.2, a processed table, --phash off)."""
    if "phash" in table.columns:
        return table
    orientation = F.col("orientation") if "orientation" in table.columns else F.lit(None).cast("int")
    hashed = _phash_udf(*_row_bytes(table), orientation)
    return table.withColumn("phash", F.when(F.col("status") == OK, hashed).cast("long"))


def _row_bytes(rows: DataFrame) -> list:
    """(bytes, image_format, width, height, channels, path) of each row: its content, its processed image,
    or (marked 'path:') the file at its path."""
    columns = rows.columns
    none_int = F.lit(None).cast("int")
    path = F.col("path") if "path" in columns else F.lit(None).cast("string")
    if "content" in columns:
        return [F.col("content"), F.lit(None).cast("string"), none_int, none_int, none_int, path]
    if "image" in columns:
        return [F.col("image"), F.col("image_format"), F.col("width"), F.col("height"), F.col("channels"), path]
    return [F.lit(None).cast("binary"), F.lit(READ_PATH), none_int, none_int, none_int, path]


READ_PATH = "path:"


def _read_if_needed(data, fmt, path):
    from sparkprep.ingest.listing import read_bytes

    if fmt != READ_PATH:
        return data, fmt
    try:
        return (read_bytes(path) if isinstance(path, str) else None), None
    except OSError:  # gone since it was catalogued: no image
        return None, None


def _whole(value) -> Optional[int]:
    return None if pd.isna(value) else int(value)


@F.pandas_udf(BinaryType())
def _thumbnail_udf(data: pd.Series, fmt: pd.Series, width: pd.Series, height: pd.Series,
                   channels: pd.Series, path: pd.Series) -> pd.Series:
    from sparkprep.report.row_images import thumbnail_jpeg

    out = []
    for d, f, w, h, c, p in zip(data, fmt, width, height, channels, path):
        d, f = _read_if_needed(d, f, p)
        out.append(thumbnail_jpeg(d, f, _whole(w), _whole(h), _whole(c)))
    return pd.Series(out, dtype=object)


@F.pandas_udf(LongType())
def _phash_udf(data: pd.Series, fmt: pd.Series, width: pd.Series, height: pd.Series,
               channels: pd.Series, path: pd.Series, orientation: pd.Series) -> pd.Series:
    from sparkprep.report.row_images import row_phash

    out = []
    for d, f, w, h, c, p, o in zip(data, fmt, width, height, channels, path, orientation):
        d, f = _read_if_needed(d, f, p)
        out.append(row_phash(d, f, _whole(w), _whole(h), _whole(c), _whole(o)))
    return pd.Series(out, dtype="Int64")


def _size_histograms(ok: DataFrame, table: DataFrame) -> dict:
    """(bin label, count) per size column present, from one aggregate over fixed power-of-two bins."""
    present = {title: spec for title, spec in SIZE_BINS.items() if spec[0] in table.columns}
    if not present:
        return {}
    def bin_of(column: str, edges) -> Column:
        expr = F.when(F.col(column) < edges[0], F.lit(0))
        for i, edge in enumerate(edges[1:], 1):
            expr = expr.when(F.col(column) < edge, F.lit(i))
        return expr.otherwise(F.lit(len(edges)))
    aggs = []
    for n, (title, (column, edges)) in enumerate(present.items()):
        for i in range(len(edges) + 1):
            aggs.append(F.sum((bin_of(column, edges) == i).cast("long")).alias(f"h{n}_{i}"))
    row = ok.agg(*aggs).first()
    out = {}
    for n, (title, (column, edges)) in enumerate(present.items()):
        scale = 1024 if column == "size" else 1
        names = [f"<{edges[0] // scale}"] + [f"<{e // scale}" for e in edges[1:]] + [f">={edges[-1] // scale}"]
        out[title] = [[names[i], int(row[f"h{n}_{i}"] or 0)] for i in range(len(edges) + 1)]
    return out


def report_page(table: DataFrame, report: dict) -> str:
    """report.html for a written table and its run report."""
    return html.render(report, report_visuals(table, report))


def leakage(report: dict) -> dict:
    """What crosses splits: exact copies (same sha256) and near-duplicate row pairs."""
    near = report.get("near_duplicates") or {}
    return {"exact_groups_across_splits": (report.get("duplicates") or {}).get("groups_in_several_splits", 0),
            "near_pairs_across_splits": near.get("pairs_across_splits", 0)}


def check_leakage(report: dict, fail: bool, audited: Optional[dict] = None) -> dict:
    """The report, unless fail is set and something crosses splits: then LeakageFound (exit 1; all is written).

    audited: the table report that holds the audit, when `report` is a pipeline's.
    """
    audited = audited or report
    found = leakage(audited)
    if fail and any(found.values()):
        page = f"{audited['output']['uri']}/{TABLE_PAGE if audited.get('job') != 'report' else ownership.PAGE}"
        raise LeakageFound(report, f"--fail-on-leakage: {found['exact_groups_across_splits']} exact-duplicate groups "
                                   f"and {found['near_pairs_across_splits']} near-duplicate pairs cross splits "
                                   f"(see {page}); the output was written")
    return report


class QuarantineError(RuntimeError):
    """More of the input was quarantined than --max-quarantine-fraction allows; nothing was published."""


def check_quarantine_fraction(report: dict, limit: float) -> None:
    """Raise QuarantineError, naming the top reason, when too much of the input is quarantined."""
    inputs = report["rows"] - report.get("augmented_copies", 0)
    bad = sum(info["count"] for reason, info in report["quarantine"].items() if reason != FILTERED)
    report["quarantined_fraction"] = round(bad / inputs, 6) if inputs else 0.0
    if inputs and bad / inputs > limit:
        reason, info = max(report["quarantine"].items(), key=lambda kv: (kv[1]["count"], kv[0]))
        example = info["examples"][0] if info["examples"] else {}
        raise QuarantineError(
            f"{bad} of {inputs} input rows ({bad / inputs:.0%}) are quarantined, more than "
            f"--max-quarantine-fraction {limit}; top reason: {reason} ({info['count']} rows, e.g. "
            f"{example.get('path')}: {example.get('error')}). Nothing was published")


def write_reported_table(spark: SparkSession, claim: Claim, df: Optional[DataFrame], cfg: Any, clock: StageClock,
                         rec: Optional[Any], split_params: Optional[dict], partition_by: Optional[str],
                         options: Optional[dict] = None, extra=None, near: Optional[Any] = None) -> dict:
    """Write a table job's output with its run report; every check runs before it is published.

    rec is the ingest Reconciliation (or None): its verify() raises unless the written rows
    are exactly the listed files. df None: the parquet files are already in the claim's
    staging directory (sparkprep.spark.tables.write_table). near: the config whose
    near_threshold and near_bucket_cap the near-duplicate audit uses (None: no audit).
    """
    pages = {}

    def finish(written: DataFrame) -> dict:
        # --phash off leaves the column null: nothing was hashed, so nothing is claimed about near-duplicates
        audited = near is not None and getattr(near, "phash", True) and "phash" in written.columns
        clock.stage("counting the written table" + (" and the near-duplicate audit" if audited else ""),
                    f"pHash within {near.near_threshold} bits" if audited else "")
        # Both are many small Spark jobs: run side by side, they overlap their scheduling and shuffles.
        with ThreadPoolExecutor(max_workers=2) as pool:
            audit = pool.submit(near_duplicate_audit, written, near.near_threshold, near.near_bucket_cap) \
                if audited else None
            stats = table_stats(written)
            if extra:
                stats.update(extra(written))
            if audit is not None:
                stats["near_duplicates"] = audit.result().stats
        seconds = clock.total()
        inputs = stats["rows"] - stats.get("augmented_copies", 0)  # one row per input file or row
        report = {
            "job": clock.job,
            "config": config_dict(cfg),
            "input": {"uri": cfg.input, "kind": getattr(cfg, "input_kind", "files")},
            "output": {"uri": HadoopFS(spark).qualify(cfg.output), "format": cfg.format,
                       "partitioned_by": partition_by},
            "split": split_params,
            **stats,
            "reconciliation": rec.as_dict(inputs) if rec else None,
            "seconds": seconds,
            "durations": dict(clock.durations),
            "throughput": {"rows_per_s": round(inputs / seconds, 1) if seconds else None,
                           "unit": "files" if rec else "rows",
                           "output_rows_per_s": round(stats["rows"] / seconds, 1) if seconds else None},
            "versions": versions(spark.version),
        }
        if rec:
            rec.verify(written, report["reconciliation"])
        if getattr(rec, "incremental", None) is not None:
            report["incremental"] = rec.incremental.as_dict()
        check_quarantine_fraction(report, cfg.max_quarantine_fraction)
        clock.stage(TABLE_PAGE, "thumbnails and histograms")
        pages[TABLE_PAGE] = report_page(written, report)
        clock.stage("publishing")
        return report

    description = json.dumps(split_params or {}, sort_keys=True)
    side = {LISTING_STATE: rec.incremental.state} if getattr(rec, "incremental", None) is not None else None
    report = write_table(spark, df, claim, finish, partition_by, description, options, pages, side)
    if cfg.report:
        HadoopFS(spark).write_text(cfg.report, json.dumps(report, indent=2))
    return report


REPORT = "report"  # the kind in a report directory's _sparkprep.json


def run_report(spark: SparkSession, cfg: "ReportConfig", clock: Optional[StageClock] = None) -> dict:
    """Any sparkprep table -> <output>/report.html and <output>/_run_report.json (the table is only read)."""
    clock = clock or StageClock(REPORT)
    fs = HadoopFS(spark)
    out = fs.qualify(cfg.output).rstrip("/")
    clock.stage("reading", cfg.input)
    table, _, delta = read_input_table(spark, cfg.input, cfg.format)
    require_columns(table.columns, ["status"], "a sparkprep table (catalog, split, processed or mapped)")
    claim_directory(fs, out, REPORT)
    source = ownership.json_object(fs.read_text(f"{fs.qualify(cfg.input).rstrip('/')}/{ownership.REPORT_NAME}")) or {}
    clock.stage("counting")
    stats = table_stats(table)
    if "phash" in table.columns and not table.where(F.col("phash").isNotNull()).limit(1).collect():
        table = table.drop("phash")  # written with --phash off: hash the bytes now
    hashed = with_phash(table)
    if "phash" in hashed.columns and ("path" in table.columns or "image" in table.columns):
        clock.stage("near-duplicate audit", f"pHash within {cfg.near_threshold} bits"
                    + ("" if "phash" in table.columns else "; hashes computed from the rows' bytes"))
        stats["near_duplicates"] = near_duplicate_audit(hashed, cfg.near_threshold, cfg.near_bucket_cap).stats
    if {"channel_mean", "split", "aug_index"} <= set(table.columns):
        stats["normalization"] = channel_normalization(table)
    seconds = clock.total()
    report = {"job": REPORT, "config": config_dict(cfg),
              "input": {"uri": fs.qualify(cfg.input), "table_job": source.get("job"),
                        "format": "delta" if delta else "parquet"},
              "output": {"uri": out, "format": "html", "page": f"{out}/{ownership.PAGE}"},
              "split": source.get("split"), **stats,
              "transform": source.get("transform"),
              "seconds": seconds, "durations": dict(clock.durations),
              "throughput": {"rows_per_s": round(stats["rows"] / seconds, 1) if seconds else None, "unit": "rows"},
              "versions": versions(spark.version)}
    clock.stage(ownership.PAGE, "thumbnails and histograms")
    write_atomic(fs, f"{out}/{ownership.PAGE}", report_page(table, report))
    write_atomic(fs, f"{out}/{ownership.REPORT_NAME}", json.dumps(report, indent=2))
    clock.total()
    return check_leakage(report, cfg.fail_on_leakage)


# The near-duplicate audit (README "Near-duplicates and leakage"): the rows' perceptual hashes
# are grouped into distinct hashes (identical hashes are distance 0: pairs without a join).
# Distinct hashes emit their band keys (sparkprep.split.near_duplicates); each band key's
# hashes are collected in one shuffle and paired, and pairs within the threshold are kept.
# Band keys shared by more than `cap` hashes, and hashes shared by more than `cap` rows (flat or
# low-information images), are reported instead of joined. Pair counts per split pair come from
# per-hash split counts, so no row-level pair list is built, and nothing of O(rows) reaches the
# driver except the cluster edge list when it is small.

NEAR_EXAMPLES = 24           # cross-split pairs listed in the report (and shown side by side in report.html)
COLLECT_EDGES = 1_000_000    # cluster edges up to this count are joined on the driver (union-find)
MAX_ROUNDS = 200


@dataclass
class NearAudit:
    """What the search found: the JSON-able report section and, for --near-duplicates merge, the key clusters."""

    stats: dict
    key_clusters: Optional[DataFrame]  # (key, cluster): cluster is the smallest key of the key's component


def hashed_rows(table: DataFrame) -> DataFrame:
    """(key, split, label, where, phash) of the ok originals that have a hash."""
    split = F.col("split") if "split" in table.columns else F.lit("all")
    where = F.coalesce(F.col("path"), F.col("key")) if "path" in table.columns else F.col("key")
    rows = table.where((F.col("status") == OK) & F.col("phash").isNotNull())
    if "aug_index" in table.columns:
        rows = rows.where(F.col("aug_index") == 0)
    return rows.select("key", split.alias("split"), "label", where.alias("where"), "phash")


def band_values(band: BandLayout) -> Column:
    """An array column: one value per band key of `phash` (its index is the block combination)."""
    values = []
    for combo in band.combos:
        value, offset = None, 0
        for b in combo:
            shift, width = band.blocks[b]
            part = F.col("phash") if width == 64 else \
                F.shiftrightunsigned(F.col("phash"), shift).bitwiseAND(F.lit((1 << width) - 1))
            part = F.shiftleft(part, offset) if offset else part
            value = part if value is None else value.bitwiseOR(part)
            offset += width
        values.append(value)
    return F.array(*values)


@dataclass
class Search:
    """The banding search's frames: hashed rows, distinct hashes (n rows, m smallest key, c<i> per split), near hash pairs."""

    rows: DataFrame
    splits: List[str]
    nodes: DataFrame   # every distinct hash
    live: DataFrame    # the hashes shared by at most `cap` rows: the ones joined
    edges: DataFrame   # (u, v, distance), u < v, distance <= threshold
    band: BandLayout
    stats: dict
    within: List[int]  # row pairs within one hash, per split pair (i <= j), hashes past the cap excluded


def near_search(table: DataFrame, threshold: int, cap: int, splits: Optional[List[str]] = None) -> Search:
    """Distinct hashes, their band keys, the join on shared keys, and the exact distance filter.

    splits: the table's split names when the caller knows them (saves a pass).
    """
    rows = hashed_rows(table).persist(StorageLevel.DISK_ONLY)
    if splits is None:
        splits = sorted(r[0] for r in rows.select("split").distinct().collect())
    counts = [F.sum((F.col("split") == s).cast("long")).alias(f"c{i}") for i, s in enumerate(splits)]
    nodes = rows.groupBy("phash").agg(F.count(F.lit(1)).alias("n"), F.min("key").alias("m"), *counts) \
        .persist(StorageLevel.DISK_ONLY)
    # one pass over the hashes: their count, the flat ones, and the row pairs within one hash
    sizes = nodes.agg(F.count(F.lit(1)).alias("hashes"), F.sum("n").alias("rows"),
                      F.sum((F.col("n") > cap).cast("long")).alias("flat"),
                      F.sum(F.when(F.col("n") > cap, F.col("n"))).alias("flat_rows"),
                      *[F.sum(F.when(F.col("n") <= cap, e)).alias(f"w{i}")
                        for i, e in enumerate(_split_pair_terms(len(splits), "c", "c", same_hash=True))]).first()
    distinct = int(sizes["hashes"] or 0)
    band = layout_for(threshold, max(2, distinct))
    live = nodes.where(F.col("n") <= cap)
    banded = live.select("phash", F.posexplode(band_values(band)).alias("c", "v"))
    # One shuffle: the hashes of each band key; keys that only one hash emits are dropped at once
    buckets = banded.groupBy("c", "v").agg(F.collect_list("phash").alias("hs")).where(F.size("hs") >= 2) \
        .persist(StorageLevel.DISK_ONLY)
    capped_stats = buckets.where(F.size("hs") > cap).agg(F.count(F.lit(1)).alias("n"),
                                                       F.max(F.size("hs")).alias("largest")).first()
    pairs = F.expr("flatten(transform(sequence(0, size(hs) - 2), i -> transform(sequence(i + 1, size(hs) - 1), "
                   "j -> named_struct('u', least(hs[i], hs[j]), 'v', greatest(hs[i], hs[j])))))")
    edges = (buckets.where(F.size("hs") <= cap).select(F.explode(pairs).alias("p"))
             .select(F.col("p.u").alias("u"), F.col("p.v").alias("v"))
             .withColumn("distance", F.expr("bit_count(u ^ v)"))
             .where(F.col("distance") <= threshold)
             .dropDuplicates(["u", "v"])
             .persist(StorageLevel.DISK_ONLY))
    stats = {
        "threshold": threshold, "bucket_cap": cap, "layout": band.describe(), "guaranteed_bits": band.guarantee,
        "hashed_rows": int(sizes["rows"] or 0), "distinct_hashes": distinct,
        "flat_hashes": {"count": int(sizes["flat"] or 0), "rows": int(sizes["flat_rows"] or 0),
                        "examples": _flat_examples(nodes, rows, cap) if sizes["flat"] else []},
        "capped_band_keys": {"count": int(capped_stats["n"] or 0), "largest": int(capped_stats["largest"] or 0)},
    }
    within = [int(sizes[f"w{i}"] or 0) for i in range(len(splits) * (len(splits) + 1) // 2)]
    return Search(rows, splits, nodes, live, edges, band, stats, within)


def near_duplicate_audit(table: DataFrame, threshold: int, cap: int, clusters: bool = True,
                         collect_edges: int = COLLECT_EDGES, splits: Optional[List[str]] = None) -> NearAudit:
    """Pairs of rows whose hashes differ in at most `threshold` bits, counted by split pair, and clusters."""
    found = near_search(table, threshold, cap, splits)
    stats = dict(found.stats)
    stats.update(_pair_counts(found.live, found.edges, found.splits, found.within))
    # one pair per hash, closest first, so one heavily copied image does not fill the list
    across = row_pairs(found).where(F.col("a_split") != F.col("b_split")).withColumn(
        "_n", F.row_number().over(Window.partitionBy("u").orderBy("distance", "a_where", "b_where")))
    stats["examples"] = [_pair_dict(r) for r in across.where(F.col("_n") == 1)
                         .orderBy("distance", "a_where", "b_where").limit(NEAR_EXAMPLES).collect()]
    key_clusters = None
    if clusters:
        key_clusters, stats["clusters"] = _clusters(found.rows, found.live, found.edges, collect_edges)
    return NearAudit(stats, key_clusters)


def row_pairs(found: Search) -> DataFrame:
    """Every pair of rows within the threshold (a_<column>, b_<column>, distance), each pair once.

    Row-level: meant for small tables (tests, the planted set) and for ordered, limited listings.
    """
    pairs = found.edges.unionByName(found.live.where(F.col("n") > 1).select(
        F.col("phash").alias("u"), F.col("phash").alias("v"), F.lit(0).cast("int").alias("distance")))
    a = found.rows.select(*[F.col(c).alias(f"a_{c}") for c in found.rows.columns])
    b = found.rows.select(*[F.col(c).alias(f"b_{c}") for c in found.rows.columns])
    return (pairs.join(a, F.col("a_phash") == F.col("u")).join(b, F.col("b_phash") == F.col("v"))
            .where((F.col("u") != F.col("v")) | (F.col("a_where") < F.col("b_where"))))


def _pair_dict(r) -> dict:
    return {"distance": int(r["distance"]),
            "a": {"path": r["a_where"], "split": r["a_split"], "label": r["a_label"], "phash": to_hex(r["u"])},
            "b": {"path": r["b_where"], "split": r["b_split"], "label": r["b_label"], "phash": to_hex(r["v"])}}


def _flat_examples(nodes: DataFrame, rows: DataFrame, cap: int) -> List[dict]:
    flat = nodes.where(F.col("n") > cap).orderBy(F.desc("n"), "phash").limit(5).select("phash", "n").collect()
    out = []
    for r in flat:
        some = rows.where(F.col("phash") == r["phash"]).orderBy("where").limit(3).select("where").collect()
        out.append({"phash": to_hex(r["phash"]), "rows": int(r["n"]), "examples": [s["where"] for s in some]})
    return out


def _split_pair_terms(k: int, left: str, right: str, same_hash: bool = False) -> list:
    """One column per split pair (i <= j): the row pairs between two hashes' per-split counts
    (left<i>, right<j>); same_hash: pairs within one hash (i == j: n choose 2)."""
    terms = []
    for i in range(k):
        for j in range(i, k):
            a_i, b_j = F.col(f"{left}{i}"), F.col(f"{right}{j}")
            if same_hash:
                terms.append(a_i * (a_i - 1) / 2 if i == j else a_i * b_j)
            else:
                terms.append(a_i * b_j if i == j else a_i * b_j + F.col(f"{left}{j}") * F.col(f"{right}{i}"))
    return terms


def _pair_counts(nodes: DataFrame, edges: DataFrame, splits: List[str], within: List[int]) -> Dict:
    """Row pairs by split pair: within one hash (counted with the hashes) and across the hash pairs."""
    k = len(splits)
    u = nodes.select(F.col("phash").alias("u"), *[F.col(f"c{i}").alias(f"u{i}") for i in range(k)])
    v = nodes.select(F.col("phash").alias("v"), *[F.col(f"c{i}").alias(f"v{i}") for i in range(k)])
    joined = edges.join(u, "u").join(v, "v")
    between = joined.agg(F.count(F.lit(1)).alias("edges"),
                         *[F.sum(e).alias(f"p{n}") for n, e in enumerate(_split_pair_terms(k, "u", "v"))]).first()
    by_pair, n = {}, 0
    for i in range(k):
        for j in range(i, k):
            by_pair[f"{splits[i]}|{splits[j]}"] = within[n] + int(between[f"p{n}"] or 0)
            n += 1
    same = sum(c for name, c in by_pair.items() if name.split("|")[0] == name.split("|")[1])
    return {"hash_pairs": int(between["edges"]), "pairs_by_split_pair": by_pair, "pairs_within_splits": same,
            "pairs_across_splits": sum(by_pair.values()) - same}


def _clusters(rows: DataFrame, live: DataFrame, edges: DataFrame, collect_edges: int):
    """Connected components over keys: rows that share a hash, and hashes within the threshold, link their keys.

    Linking keys (not rows) keeps a key's rows together: a group (a patient) whose one image
    is a near-copy of another group's image joins that group's cluster whole.
    """
    by_hash = rows.join(live.where(F.col("n") > 1).select("phash", "m"), "phash") \
        .select(F.col("key").alias("a"), F.col("m").alias("b"))
    ends = live.select("phash", "m")
    between = (edges.join(ends.select(F.col("phash").alias("u"), F.col("m").alias("a")), "u")
               .join(ends.select(F.col("phash").alias("v"), F.col("m").alias("b")), "v")
               .select("a", "b"))
    # (k, k) edges stay: a key whose own rows are near-duplicates is a cluster of one key
    key_edges = by_hash.unionByName(between).distinct().persist(StorageLevel.DISK_ONLY)
    spark = rows.sparkSession
    few = key_edges.limit(collect_edges + 1).collect()  # at most collect_edges + 1 pairs reach the driver
    if len(few) <= collect_edges:
        n_edges, mapping = len(few), components((r["a"], r["b"]) for r in few)
        key_clusters = spark.createDataFrame(sorted(mapping.items()) or [], "key string, cluster string")
        how = "union-find on the driver"
    else:
        n_edges = key_edges.count()
        key_clusters, how = _propagated_components(key_edges), "label propagation in Spark"
    sizes = rows.join(key_clusters, "key").groupBy("cluster").agg(
        F.count(F.lit(1)).alias("rows"), F.countDistinct("split").alias("splits"))
    bucket = {"2": F.col("rows") <= 2, "3-5": F.col("rows").between(3, 5), "6-20": F.col("rows").between(6, 20),
              ">20": F.col("rows") > 20}
    summary = sizes.agg(F.count(F.lit(1)).alias("clusters"), F.sum("rows").alias("rows"), F.max("rows").alias("largest"),
                        F.sum((F.col("splits") > 1).cast("long")).alias("spread"),
                        *[F.sum(test.cast("long")).alias(f"b{i}") for i, test in enumerate(bucket.values())]).first()
    histogram = {name: int(summary[f"b{i}"] or 0) for i, name in enumerate(bucket) if summary[f"b{i}"]}
    return key_clusters, {"count": int(summary["clusters"] or 0), "rows": int(summary["rows"] or 0),
                          "largest": int(summary["largest"] or 0), "in_several_splits": int(summary["spread"] or 0),
                          "sizes": histogram, "key_edges": n_edges, "method": how}


def _propagated_components(edges: DataFrame) -> DataFrame:
    """(key, cluster) by iterative min-label propagation: for graphs too big for the driver."""
    both = edges.unionByName(edges.select(F.col("b").alias("a"), F.col("a").alias("b"))).persist(StorageLevel.DISK_ONLY)
    labels = both.groupBy("a").agg(F.least(F.col("a"), F.min("b")).alias("label")).withColumnRenamed("a", "key")
    labels = labels.localCheckpoint()
    for _ in range(MAX_ROUNDS):
        pulled = both.join(labels.withColumnRenamed("key", "b").withColumnRenamed("label", "lb"), "b") \
            .groupBy("a").agg(F.min("lb").alias("lb")).withColumnRenamed("a", "key")
        updated = labels.join(pulled, "key", "left") \
            .select("key", F.least(F.col("label"), F.coalesce(F.col("lb"), F.col("label"))).alias("label")) \
            .localCheckpoint()
        changed = updated.join(labels.withColumnRenamed("label", "old"), "key").where(F.col("label") != F.col("old")).count()
        labels = updated
        if not changed:
            return labels.withColumnRenamed("label", "cluster")
    raise RuntimeError(f"near-duplicate clusters did not converge in {MAX_ROUNDS} rounds")
