"""Add `key` and `split` columns with native Spark SQL, exactly as `sparkprep.split.assign`.

Hash mode needs no shuffle and no Python: sha2, conv and pmod run in the JVM.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Optional, Sequence, Tuple

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.storagelevel import StorageLevel

from sparkprep.audit.bands import CLUSTER_RADIUS
from sparkprep.audit.policy import check_leakage, merge_limit, merge_skew
from sparkprep.audit.spark.search import crops, near_check, near_duplicate_audit, threshold_words
from sparkprep.errors import MergeSkewed, UsageError
from sparkprep.ingest.listing import child_names
from sparkprep.ingest.paths import SAMPLE_RULE, compile_group_regex, first_group
from sparkprep.ingest.spark.plan import run_plan
from sparkprep.ingest.spark.reconcile import Reconciliation
from sparkprep.ingest.spark.run import catalog_frame
from sparkprep.ingest.spark.sources import tune_table_scan
from sparkprep.runlog import StageClock
from sparkprep.schema import CATALOG_SCHEMA, LATER_COLUMNS, SPLIT_COLUMNS, SPLIT_METADATA_KEY, require_columns
from sparkprep.spark.hadoop_fs import HadoopFS
from sparkprep.spark.reported import write_reported_table
from sparkprep.spark.tables import claimed_output, payload_options, read_table
from sparkprep.split.assign import BUCKETS, cumulative_basis_points
from sparkprep.ingest.flags import kind_of_directory
from sparkprep.split.flags import SplitConfig
from sparkprep.split.keys import KeySpec
from sparkprep.statuses import MISSING_KEY, NO_GROUP, OK, UNREADABLE
from sparkprep.spark.session import run_clock


def hash_hex(seed: str, key: Column) -> Column:
    """h = sha256(utf8(seed + ":" + key)) as lowercase hex."""
    return F.sha2(F.concat(F.lit(f"{seed}:"), key), 256)


def bucket_column(seed: str, key: Column) -> Column:
    """int(h[:15], 16) mod 10000; 15 hex digits fit in a signed long."""
    return F.pmod(F.conv(F.substring(hash_hex(seed, key), 1, 15), 16, 10).cast("long"), F.lit(BUCKETS))


def split_by_bucket(bucket: Column, ratios: Sequence[float], names: Sequence[str]) -> Column:
    """The first split i with bucket < cum_i."""
    cums = cumulative_basis_points(ratios)
    expr = F.when(bucket < cums[0], F.lit(names[0]))
    for cum, name in zip(cums[1:], names[1:]):
        expr = expr.when(bucket < cum, F.lit(name))
    return expr.otherwise(F.lit(names[-1]))


def file_key(df: DataFrame, spec: KeySpec, grouped: bool = False) -> DataFrame:
    """Add `key` for file rows; where it cannot be computed, key by the sample id and say why.

    grouped: the rows are samples of several files (--samples basename), so `content` is
    the sample's content key rather than the file's sha256.

    With --samples file the sample id is the relative path. With basename, every key is a
    function of the whole sample, so all of a sample's rows share one key and one split.
    """
    if spec.kind == "content" and grouped:
        key, fallback = _sample_content_key(df), "a member's sha256 is unknown; keyed by sample"
    elif spec.kind == "content":
        key, fallback = F.col("sha256"), "sha256 unknown; keyed by path"
    elif spec.kind == "path":
        key, fallback = F.col("rel_path"), None
    elif spec.kind == "sample":
        key, fallback = F.col("sample"), None
    else:
        key, fallback = _group_udf(spec.arg)(F.col("sample")), f"group regex {spec.arg!r} did not match; keyed by sample"
    df = df.withColumn("key", key)
    if fallback is None:
        return df
    no_key = F.col("key").isNull()
    status = F.when(no_key & (F.col("status") == OK), F.lit(NO_GROUP if spec.kind == "group" else UNREADABLE))
    return (df.withColumn("error", F.when(no_key, F.concat_ws("; ", F.col("error"), F.lit(fallback)))
                          .otherwise(F.col("error")))
              .withColumn("status", status.otherwise(F.col("status")))
              .withColumn("key", F.coalesce(F.col("key"), F.col("sample"))))


def _sample_content_key(df: DataFrame) -> Column:
    """sha256 of "member\\0member_sha256\\n" over a sample's members in member-name order (null if any
    member's sha256 is unknown), as sparkprep.ingest.paths.sample_content_key."""
    member = F.struct(F.col("member").alias("m"), F.col("sha256").alias("s"))
    window = Window.partitionBy("sample")
    lines = F.transform(F.array_sort(F.collect_list(member).over(window)),
                        lambda x: F.concat(x["m"], F.lit("\0"), x["s"], F.lit("\n")))
    unknown = F.max(F.col("sha256").isNull().cast("int")).over(window) > 0
    return F.when(~unknown, F.sha2(F.array_join(lines, ""), 256))


def _group_udf(pattern_text: str):
    """Python-regex group extraction, so the key matches what users recompute in Python."""
    @F.pandas_udf("string")
    def group_key(paths: pd.Series) -> pd.Series:
        pattern = compile_group_regex(pattern_text, "--key-by group")
        return pd.Series([first_group(pattern, p) for p in paths], dtype=object)

    return group_key


def with_split(df: DataFrame, cfg: SplitConfig, assigned: bool = False) -> DataFrame:
    """Add the split column (hash or exact-stratified) and put the contract columns first.

    assigned: the rows already carry the split (the pipeline computes it in Python with
    sparkprep.split.assign); only the columns and their metadata are set.
    """
    if not assigned and cfg.stratify == "exact":
        df = _stratified(df, cfg)
    elif not assigned:
        df = df.withColumn("split", split_by_bucket(bucket_column(cfg.seed, F.col("key")), cfg.ratios, cfg.names))
    meta = {SPLIT_METADATA_KEY: json.dumps(cfg.split_params(), sort_keys=True)}
    rest = [c for c in df.columns if c not in SPLIT_COLUMNS]
    return df.select(F.col("key").alias("key", metadata=meta), *SPLIT_COLUMNS[1:], *rest)


def _stratified(df: DataFrame, cfg: SplitConfig) -> DataFrame:
    """Within each label, rank distinct keys by (h, key) and cut at round(n * cum_i / 10000)."""
    keys = df.select("label", "key").distinct().withColumn("_h", hash_hex(cfg.seed, F.col("key")))
    by_label = Window.partitionBy("label")
    keys = (keys.withColumn("_rank", F.row_number().over(by_label.orderBy("_h", "key")) - 1)
                .withColumn("_n", F.count(F.lit(1)).over(by_label)))
    cums = cumulative_basis_points(cfg.ratios)
    cut = lambda cum: F.floor((F.col("_n") * cum + BUCKETS // 2) / BUCKETS)  # noqa: E731
    expr = F.when(F.col("_rank") < cut(cums[0]), F.lit(cfg.names[0]))
    for cum, name in zip(cums[1:], cfg.names[1:]):
        expr = expr.when(F.col("_rank") < cut(cum), F.lit(name))
    keys = keys.select(F.col("label").alias("_s_label"), F.col("key").alias("_s_key"),
                       expr.otherwise(F.lit(cfg.names[-1])).alias("split"))
    joined = df.join(keys, df.label.eqNullSafe(keys._s_label) & (df.key == keys._s_key), "inner")
    return joined.drop("_s_label", "_s_key")


def split_files(catalog: DataFrame, cfg: SplitConfig, from_table: bool = False) -> DataFrame:
    """Catalog rows (from ingest or a catalog table) -> split rows.

    A catalog table written before samples existed gets one sample per file. A table whose
    rows are grouped into samples keeps its grouping, whatever --samples says.
    """
    if from_table and "sample" not in catalog.columns:
        catalog = (catalog.withColumn("sample", F.col("rel_path"))
                   .withColumn("member", F.regexp_extract("rel_path", SAMPLE_RULE.pattern, 2)))
    for name, _, spark_type in LATER_COLUMNS if from_table else ():  # a catalog table written before them
        if name not in catalog.columns:
            catalog = catalog.withColumn(name, F.lit(None).cast(spark_type))
    require_columns(catalog.columns, [f.name for f in CATALOG_SCHEMA if f.name != "content"],
                    "a catalog table (from jobs/ingest.py)")
    grouped = cfg.samples == "basename" or (
        from_table and catalog.where(F.col("sample") != F.col("rel_path")).limit(1).count() > 0)
    catalog = catalog.drop("key", "split")  # re-splitting a split table
    return with_split(file_key(catalog, cfg.key_by, grouped), cfg)


def read_rows(spark: SparkSession, cfg: SplitConfig) -> DataFrame:
    """Tabular input: CSV (header, every value kept as a string) or parquet."""
    if cfg.input.lower().rstrip("/").endswith((".csv", ".csv.gz")):
        return spark.read.option("header", "true").option("mode", "PERMISSIVE").csv(cfg.input)
    return spark.read.parquet(cfg.input)


def split_rows(rows: DataFrame, cfg: SplitConfig) -> DataFrame:
    """Tabular rows -> split rows: key = the column's string value; other columns kept."""
    column = cfg.key_by.arg
    for needed, flag in ((column, "--key-by column"), (cfg.label_column, "--label-column")):
        if needed and needed not in rows.columns:
            raise UsageError(f"{flag}: expected a column of the input, got {needed!r} (columns: {', '.join(rows.columns)})")
    originals = [c for c in rows.columns]
    renamed = {c: f"src_{c}" for c in originals if c in SPLIT_COLUMNS and c != cfg.label_column}
    row_hash = F.sha2(F.to_json(F.struct(*[F.col(c) for c in originals])), 256)
    key = F.col(column).cast("string")
    df = rows.select(
        F.coalesce(key, row_hash).alias("key"),
        (F.col(cfg.label_column).cast("string") if cfg.label_column else F.lit(None).cast("string")).alias("label"),
        F.lit(None).cast("string").alias("path"),
        row_hash.alias("sha256"),
        F.when(key.isNull(), F.lit(MISSING_KEY)).otherwise(F.lit(OK)).alias("status"),
        F.when(key.isNull(), F.lit(f"column {column!r} is null; keyed by the row's sha256")).alias("error"),
        *[F.col(c).alias(renamed.get(c, c)) for c in originals if c != cfg.label_column],
    )
    return with_split(df, cfg)


SPLIT_TABLE_KEPT = "read split table (its splits are kept; split flags are ignored)"


def run_split(spark: SparkSession, cfg: SplitConfig, clock: Optional[StageClock] = None) -> dict:
    """Raw files, a catalog table or tabular rows -> a split table partitioned by split."""
    if cfg.plan:
        return run_plan(spark, resolved_input_kind(spark, cfg), "split")
    clock = clock or run_clock(spark, "split")
    with claimed_output(spark, cfg.output, cfg.format, "split") as claim:
        cfg = resolved_input_kind(spark, cfg)
        clock.stage("planning", f"{cfg.input} ({cfg.input_kind})")
        if cfg.input_kind == "table":
            table, rec, detail = split_rows(read_rows(spark, cfg), cfg), None, "read rows, split"
        else:
            table, rec, detail = split_source(spark, cfg, keep_existing_split=False, claim_state=claim.state)
        merged = None
        if cfg.near_duplicates == "merge":
            clock.stage("near-duplicate clusters", f"{threshold_words(cfg.near_threshold, crops(cfg))}; reading and "
                                                   "probing the input once, kept on local disk")
            table, merged, persisted = merged_near_duplicates(table, cfg)
        clock.stage("running", f"{detail}, write -> {cfg.output}")
        payload = "content" if "content" in table.columns else None
        try:
            report = write_reported_table(spark, claim, table, cfg, clock, rec, split_params=cfg.split_params(),
                                          partition_by="split",
                                          options=payload_options(payload, already_compressed=True),
                                          audit=near_check(cfg, merged) if cfg.input_kind != "table" else None)
        finally:
            if merged is not None:  # the merged rows, persisted on disk for the write
                persisted.unpersist()
    return check_leakage(report, cfg.fail_on_leakage)


def merged_near_duplicates(table: DataFrame, cfg: SplitConfig) -> Tuple[DataFrame, dict, DataFrame]:
    """Key every row of a near-duplicate cluster by the cluster's smallest key, and split again.

    Trades rule 5 of sha256-v1 (stability as data grows) for integrity: a new image can link
    two clusters, and the merged cluster's key (and split) then changes. Returns the new rows,
    what moved against the plain hash split, and the frame persisted on disk that holds the rows
    (the caller unpersists it once they are written).
    """
    table = table.persist(StorageLevel.DISK_ONLY)  # read and probe every file once, for both passes
    audit = near_duplicate_audit(table, cfg.near_threshold, cfg.near_bucket_cap, clusters=True,
                                 centre_keys=cfg.near_merge_max, crops=crops(cfg))
    limit = merge_limit(audit.stats["hashed_rows"], cfg.near_merge_max)
    sizes = table.select("key").join(audit.key_clusters, "key").groupBy("cluster").agg(
        F.count(F.lit(1)).alias("rows"), F.first("centre", ignorenulls=True).alias("centre")) \
        .withColumn("mergeable", (F.col("rows") <= limit) & F.col("centre").isNotNull()) \
        .persist(StorageLevel.DISK_ONLY)
    kept = audit.key_clusters.join(sizes.where(F.col("mergeable")).select("cluster"), "cluster")
    clusters = kept.select(F.col("key").alias("_near_key"), F.col("cluster").alias("_cluster"))
    joined = table.join(clusters, table.key == clusters._near_key, "left")
    keyed = joined.withColumn("_hash_split", F.col("split")).withColumn("key", F.coalesce("_cluster", "key"))
    resplit = with_split(keyed.drop("split"), cfg).persist(StorageLevel.DISK_ONLY)
    # one pass over the rows (their bytes are on local disk): rows and re-keyed rows per (hash split, split)
    moves = resplit.groupBy("_hash_split", "split").agg(
        F.count(F.lit(1)).alias("rows"), F.sum((F.col("key") != F.col("_near_key")).cast("long")).alias("rekeyed")
    ).collect()
    before, after = Counter(), Counter()
    for r in moves:
        before[r["_hash_split"]] += r["rows"]
        after[r["split"]] += r["rows"]
    merged = sizes.where(F.col("mergeable")).agg(F.count(F.lit(1)).alias("n"), F.sum("rows").alias("rows"),
                                                 F.max("rows").alias("largest"),
                                                 F.sum(F.col("rows") * F.col("rows")).alias("squares")).first()
    crop = {"crop_threshold": audit.stats["crops"]["threshold"]} if "crops" in audit.stats else {}
    stats = {"threshold": audit.stats["threshold"], **crop, "max_cluster_rows": limit, "centre_links": CLUSTER_RADIUS,
             "clusters": int(merged["n"] or 0), "rows_in_clusters": int(merged["rows"] or 0),
             "largest_merged": int(merged["largest"] or 0),
             "not_merged": _oversized(table, audit.key_clusters, sizes.where(F.col("rows") > limit), limit),
             "without_centre": _uncentred(table, audit.key_clusters,
                                          sizes.where((F.col("rows") <= limit) & F.col("centre").isNull())),
             "pairs_across_splits_before": audit.stats["pairs_across_splits"],
             "rows_rekeyed": sum(int(r["rekeyed"] or 0) for r in moves),
             "rows_moved": sum(r["rows"] for r in moves if r["split"] != r["_hash_split"]),
             "note": "rows whose split differs from the plain sha256-v1 split of their own key"}
    skewed = merge_skew(dict(before), dict(after), cfg.names, cfg.ratios, stats["largest_merged"],
                        int(merged["squares"] or 0))
    # the rows are resplit's now (its every partition was read): the input's copy and the sizes are freed
    sizes.unpersist()
    table.unpersist()
    if skewed:
        resplit.unpersist()
        raise MergeSkewed(f"{skewed}; nothing was published")
    return resplit.drop("_cluster", "_hash_split", "_near_key"), stats, resplit


def _oversized(table: DataFrame, key_clusters: DataFrame, big: DataFrame, limit: int) -> dict:
    """The clusters too big to merge: how many, their rows, and the largest five with a few paths each."""
    return _listed(table, key_clusters, big, f"more than {limit} rows: chains of look-alike images, reported "
                                             "instead of merged")


def _uncentred(table: DataFrame, key_clusters: DataFrame, wide: DataFrame) -> dict:
    """The clusters small enough to merge that have no centre within CLUSTER_RADIUS links of every member."""
    return _listed(table, key_clusters, wide, f"no member within {CLUSTER_RADIUS} links of every other: a chain of "
                                              "images each near the next, not copies of one image; reported "
                                              "instead of merged")


def _listed(table: DataFrame, key_clusters: DataFrame, clusters: DataFrame, why: str) -> dict:
    """How many clusters, their rows, and the largest five with a few paths each."""
    summary = clusters.agg(F.count(F.lit(1)).alias("n"), F.sum("rows").alias("rows")).first()
    examples = []
    where = F.col("path") if "path" in table.columns else F.col("key")
    for row in clusters.orderBy(F.desc("rows"), "cluster").limit(5).collect():
        members = key_clusters.where(F.col("cluster") == row["cluster"]).select("key")
        paths = table.join(members, "key").select(where.alias("where")).orderBy("where").limit(3).collect()
        examples.append({"cluster": row["cluster"], "rows": int(row["rows"]), "examples": [p["where"] for p in paths]})
    return {"clusters": int(summary["n"] or 0), "rows": int(summary["rows"] or 0), "examples": examples, "why": why}


def resolved_input_kind(spark: SparkSession, cfg: SplitConfig) -> SplitConfig:
    """cfg with --input-kind auto resolved through Hadoop's FileSystem (for non-local URIs)."""
    if cfg.input_kind != "auto" or cfg.manifest:
        return cfg
    fs = HadoopFS(spark)
    if not fs.readable(cfg.input):  # s3:// without s3a: the workers will read it, pyarrow.fs lists it
        names = child_names(cfg.input)
    else:
        names = [child.rsplit("/", 1)[-1] for child in fs.children(cfg.input)] if fs.is_dir(cfg.input) else []
    return dataclasses.replace(cfg, input_kind=kind_of_directory(names))


def split_source(spark: SparkSession, cfg: SplitConfig, keep_existing_split: bool,
                 claim_state: str = "new") -> Tuple[DataFrame, Optional[Reconciliation], str]:
    """Split rows from raw files (ingested inline), a catalog, or (if kept) an existing split table."""
    if cfg.input_kind in ("files", "webdataset"):
        catalog, rec = catalog_frame(spark, cfg, claim_state)
        return split_files(catalog, cfg), rec, f"ingest {rec.what()} and split inline"
    table = read_table(spark, cfg.input)
    tune_table_scan(spark, cfg.input, table)
    if keep_existing_split and "split" in table.columns:
        return table, None, SPLIT_TABLE_KEPT
    return split_files(table, cfg, from_table=True), None, "read catalog, split"
