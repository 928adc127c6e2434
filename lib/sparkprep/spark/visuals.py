"""What report.html shows beyond the run report: thumbnails of a bounded number of rows and size
histograms, chosen and binned in Spark; thumbnails and hashes made on the workers from the rows' bytes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Optional

import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, BinaryType, LongType

from sparkprep import page as html
from sparkprep.images.rows import data_uri
from sparkprep.statuses import OK
from sparkprep.table_counts import SIZE_BINS, bin_names, choose_cells, size_histograms

THUMBS_PER_CELL = 4   # ok originals shown per split x label


MAX_LABELS = 24       # the most frequent labels get thumbnails


# At most (splits x MAX_LABELS x THUMBS_PER_CELL) + the quarantine examples (EXAMPLES per reason) + both
# sides of the near pairs listed (2 x NEAR_EXAMPLES) thumbnails of <= 96 px (~3 KB each) travel to
# the driver: about 1 MB for three splits, whatever the table's size.


def report_visuals(table: DataFrame, report: dict, small: Optional[Dict[str, list]] = None) -> dict:
    """What report.html shows beyond the run report: thumbnails (bounded count) and size histograms.

    Rows are chosen and binned in Spark, or from `small` (the table's small columns, collected by
    sparkprep.spark.table_stats.collected_columns) on the driver; thumbnails are made on the workers,
    in one pass, from the row's bytes (content, a processed image, or the file at its path).
    """
    where = F.coalesce(F.col("path"), F.col("key")) if "key" in table.columns else F.col("path")
    originals = table.where(F.col("aug_index") == 0) if "aug_index" in table.columns else table
    totals: dict = {}
    for per in (report.get("counts") or {}).values():
        for name, n in per.items():
            totals[name] = totals.get(name, 0) + n
    labels = [name for name, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_LABELS]]
    ok = originals.where(F.col("status") == OK)
    if small is not None:
        cells = {c["where"]: c for c in choose_cells(small, labels, THUMBS_PER_CELL)}
    else:
        cells = _chosen_cells(table, ok, where, labels)
    # the rows listed in the report: quarantine examples and both sides of the near pairs shown
    listed = {e["path"] for info in (report.get("quarantine") or {}).values() for e in info["examples"]
              if e.get("path")} | {p[side]["path"] for p in (report.get("near_duplicates") or {}).get("examples", [])
                                   for side in ("a", "b")}
    # 2. thumbnails of those few rows only
    wanted = sorted(set(cells) | listed)
    with ThreadPoolExecutor(max_workers=1) as pool:  # the histograms' job runs beside the thumbnails'
        histograms = pool.submit(_size_histograms, ok, table) if small is None else None
        made = _thumbnails_of(originals, where, wanted) if wanted else {}
    chosen = sorted(cells.values(), key=lambda r: (r["split"], r["label"], r["_rank"]))
    thumbs = [{"split": r["split"], "label": r["label"], "path": r["where"], "uri": data_uri(made.get(r["where"]))}
              for r in chosen]
    images = {w: data_uri(made.get(w)) for w in listed}
    quarantined = [{"path": e["path"], "status": status, "error": e["error"], "uri": images.get(e["path"])}
                   for status, info in (report.get("quarantine") or {}).items() for e in info["examples"]]
    return {"thumbs": thumbs, "quarantine": quarantined, "images": images,
            "histograms": histograms.result() if histograms else size_histograms(small),
            "caps": {"per_cell": THUMBS_PER_CELL, "labels": MAX_LABELS}}


def _chosen_cells(table: DataFrame, ok: DataFrame, where: Column, labels: list) -> dict:
    """{where: row} of the rows each split x label cell shows (sparkprep.table_counts.choose_cells), in Spark."""
    split = F.col("split") if "split" in table.columns else F.lit("all")
    label = F.coalesce(F.col("label"), F.lit("(none)"))
    order = F.sha2(F.concat_ws("\n", F.col("key") if "key" in table.columns else F.lit(""), where), 256)
    # chosen on narrow columns (no image bytes travel through the window's shuffle)
    narrow = ok.where(label.isin(labels)).select(where.alias("where"), split.alias("split"), label.alias("label"),
                                                  order.alias("_order"))
    return {r["where"]: r.asDict() for r in narrow.withColumn(
        "_rank", F.row_number().over(Window.partitionBy("split", "label").orderBy("_order")))
        .where(F.col("_rank") <= THUMBS_PER_CELL).select("where", "split", "label", "_rank").collect()}


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

    from sparkprep.images.rows import thumbnail_jpeg
    from sparkprep.uris import is_local, read_bytes

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
    """The table with its `phash` (and `phash256` and `dct_direction`) columns: its own, or computed on the
    workers from one decode for the ok rows of a table written without a phash (before sparkprep 0.2, a
    processed table, --phash off)."""
    if "phash" in table.columns:
        return table
    orientation = F.col("orientation") if "orientation" in table.columns else F.lit(None).cast("int")
    packed = F.when(F.col("status") == OK, _signatures_udf(*_row_bytes(table), orientation))
    return (table.withColumn("_signatures", packed)
            .withColumn("phash", F.col("_signatures")[0])
            .withColumn("phash256", F.slice("_signatures", 2, 4))
            .withColumn("dct_direction", F.slice("_signatures", 6, 255).cast("array<smallint>"))
            .drop("_signatures"))


WINDOWS_COLUMN = "phash_windows"  # the crop-robust signature (sparkprep.images.phash.WINDOWS), when a table holds it


def windows_column(table: DataFrame) -> Column:
    """Each ok row's window pHashes: the table's own column, or computed on the workers from one decode of the row's
    bytes (null where they do not decode)."""
    if WINDOWS_COLUMN in table.columns:
        return F.col(WINDOWS_COLUMN)
    orientation = F.col("orientation") if "orientation" in table.columns else F.lit(None).cast("int")
    return F.when(F.col("status") == OK, _windows_udf(*_row_bytes(table), orientation))


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
    from sparkprep.uris import read_bytes

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
    from sparkprep.images.rows import thumbnail_jpeg

    out = []
    for d, f, w, h, c, p in zip(data, fmt, width, height, channels, path):
        d, f = _read_if_needed(d, f, p)
        out.append(thumbnail_jpeg(d, f, _whole(w), _whole(h), _whole(c)))
    return pd.Series(out, dtype=object)


@F.pandas_udf(ArrayType(LongType()))
def _signatures_udf(data: pd.Series, fmt: pd.Series, width: pd.Series, height: pd.Series,
                    channels: pd.Series, path: pd.Series, orientation: pd.Series) -> pd.Series:
    """Each row's signatures packed as one array of longs: phash, phash256's 4 words, the 255 values of its
    dct_direction (null when the bytes do not decode)."""
    from sparkprep.images.rows import row_signatures

    out = []
    for d, f, w, h, c, p, o in zip(data, fmt, width, height, channels, path, orientation):
        d, f = _read_if_needed(d, f, p)
        found = row_signatures(d, f, _whole(w), _whole(h), _whole(c), _whole(o))
        out.append(None if found is None else [found[0], *found[1], *found[2].tolist()])
    return pd.Series(out, dtype=object)


@F.pandas_udf(ArrayType(LongType()))
def _windows_udf(data: pd.Series, fmt: pd.Series, width: pd.Series, height: pd.Series,
                 channels: pd.Series, path: pd.Series, orientation: pd.Series) -> pd.Series:
    """Each row's window pHashes (null when the bytes do not decode)."""
    from sparkprep.images.rows import row_windows

    out = []
    for d, f, w, h, c, p, o in zip(data, fmt, width, height, channels, path, orientation):
        d, f = _read_if_needed(d, f, p)
        out.append(row_windows(d, f, _whole(w), _whole(h), _whole(c), _whole(o)))
    return pd.Series(out, dtype=object)


def _size_histograms(ok: DataFrame, table: DataFrame) -> dict:
    """(bin label, count) per size column present, from one aggregate over fixed power-of-two bins
    (sparkprep.table_counts.size_histograms on the driver)."""
    present = {title: spec for title, spec in SIZE_BINS.items() if spec[0] in table.columns}
    if not present:
        return {}

    def bin_of(column: str, edges) -> Column:  # null for a null size: not counted
        expr = F.when(F.col(column) < edges[0], F.lit(0))
        for i, edge in enumerate(edges[1:], 1):
            expr = expr.when(F.col(column) < edge, F.lit(i))
        return expr.when(F.col(column) >= edges[-1], F.lit(len(edges)))
    aggs = []
    for n, (title, (column, edges)) in enumerate(present.items()):
        for i in range(len(edges) + 1):
            aggs.append(F.sum((bin_of(column, edges) == i).cast("long")).alias(f"h{n}_{i}"))
    row = ok.agg(*aggs).first()
    return {title: [[name, int(row[f"h{n}_{i}"] or 0)] for i, name in enumerate(bin_names(column, edges))]
            for n, (title, (column, edges)) in enumerate(present.items())}


def report_page(table: DataFrame, report: dict, small: Optional[Dict[str, list]] = None) -> str:
    """report.html for a written table and its run report (small: its collected small columns)."""
    return html.render(report, report_visuals(table, report, small))
