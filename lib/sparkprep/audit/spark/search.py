"""The near-duplicate audit in Spark (docs/near-duplicates.md).

The rows' perceptual hashes are grouped into distinct hashes (identical hashes are distance 0:
pairs without a join). Distinct hashes emit their band keys (sparkprep.audit.bands); each band
key's hashes are collected in one shuffle and paired, and pairs within the threshold are kept.
Band keys shared by more than `cap` hashes, and hashes shared by more than `cap` rows (flat or
low-information images), are reported instead of joined. Pair counts per split pair come from
per-hash split counts, so no row-level pair list is built, and nothing of O(rows) reaches the
driver except the cluster edge list when it is small.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.storagelevel import StorageLevel

from sparkprep.audit import calibrate as calibration
from sparkprep.audit import local
from sparkprep.audit.crops import CROP_MAX_ROWS
from sparkprep.audit.bands import BandLayout, centred_components, planned_layout
from sparkprep.audit.local import CLUSTER_SIZES, FLAT_EXAMPLES, FLAT_PATHS, NEAR_EXAMPLES, HashedRow, pair_count_stats, pair_dict
from sparkprep.audit.flags import CROP_ROBUST, PHASH
from sparkprep.audit.rule import ANGLE_MAX_ROWS, NearRule, near_rule
from sparkprep.audit.spark.rows import (NEAR_ORDER, audit_columns, collected_rows, hashed_rows, phash_version,
                                        rows_of_small)
from sparkprep.images.phash import to_hex

COLLECT_EDGES = 1_000_000    # cluster edges up to this count are joined on the driver (union-find)
# Hashed rows up to this count are audited on the driver (sparkprep.audit.local) after one Spark job;
# measured: at 20,000 look-alike rows the driver takes ~1 s, a dozen Spark jobs ~10 s.
LOCAL_ROWS = 20_000


MAX_ROUNDS = 200
KEY_CLUSTERS = "key string, cluster string, centre string"


@dataclass
class NearAudit:
    """What the search found: the JSON-able report section and, for --near-duplicates merge, the key clusters."""

    stats: dict
    # (key, cluster, centre): cluster is the smallest key of the key's component, centre its centre or null
    key_clusters: Optional[DataFrame]


def band_values(band: BandLayout, bits: Optional[Column] = None) -> Column:
    """An array column: one value per band key of the 64-bit hash `bits` (default `phash`; its index is the
    block combination)."""
    bits = F.col("phash") if bits is None else bits
    values = []
    for combo in band.combos:
        value, offset = None, 0
        for b in combo:
            shift, width = band.blocks[b]
            part = bits if width == 64 else \
                F.shiftrightunsigned(bits, shift).bitwiseAND(F.lit((1 << width) - 1))
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
    confirmed: bool = False  # the rule checks phash256: `phash` is then the struct (h: the 64-bit hash, w: phash256)
    persisted: Tuple[DataFrame, ...] = ()  # the frames the search keeps on local disk, until release

    def release(self) -> None:
        """Frees the frames the search persisted (once nothing reads them any more), each before the frame it
        was computed from: Spark caches again a cached frame whose source is freed first."""
        for frame in reversed(self.persisted):
            frame.unpersist()


def calibrated(rows: DataFrame, total: int, fixed: Optional[int], angle: bool = True) -> Tuple[NearRule, List[int]]:
    """The rule for these `total` hashed rows (sparkprep.audit.rule.near_rule: the threshold, or `fixed`
    with its expected chance pairs, and the angle's or phash256's when they are needed); and the sampled
    hashes in their order (what plans the band layout).

    One Spark job: the sample is the SAMPLE_ROWS rows with the smallest xxhash64 of (path, phash),
    repeatable, and unchanged by a merge's new keys (a top-k Spark takes per partition). Rows per
    label are the sample's, scaled to `total` (exact when the sample is the whole table). angle: whether the
    rule may be the angle (the banding search cannot use it: its rule is then the hashes').
    """
    sample = (rows.select("label", "phash", "phash256", "dct_direction", F.xxhash64("where", "phash").alias("_order"))
              .orderBy("_order", "phash").limit(calibration.SAMPLE_ROWS).collect())
    labels = [r["label"] for r in sample]
    counts = {label: n * total / max(1, len(sample)) for label, n in Counter(labels).items()}
    hashes = [r["phash"] for r in sample]
    return near_rule(hashes, [r["phash256"] for r in sample], labels, counts, fixed=fixed,
                     directions=[r["dct_direction"] for r in sample] if angle else None), hashes


def near_search(table: DataFrame, threshold: Optional[int], cap: int, splits: Optional[List[str]] = None,
                ruled: Optional[Tuple[NearRule, List[int]]] = None) -> Search:
    """Distinct hashes, their band keys, the join on shared keys, and the exact distance filter.

    threshold: bits, or None to calibrate it on the table (sparkprep.audit.calibrate).
    splits: the table's split names when the caller knows them (saves a pass).
    ruled: the rule and sample `calibrated` gave, when the caller has them.
    """
    rows = persisted = hashed_rows(table).persist(StorageLevel.DISK_ONLY)
    if splits is None:
        splits = sorted(r[0] for r in rows.select("split").distinct().collect())
    rule, sample = ruled or calibrated(rows, rows.count(), threshold, angle=False)
    threshold, confirmed = rule.threshold, rule.confirmed
    bits = F.col("phash.h") if confirmed else F.col("phash")
    if confirmed:  # a node is a distinct (64-bit hash, phash256): rows equal in both
        rows = rows.withColumn("phash", F.struct(F.col("phash").alias("h"), F.col("phash256").alias("w")))
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
    plan = planned_layout(threshold, sample, distinct, cap)
    band = plan.band
    live = nodes.where(F.col("n") <= cap)
    banded = live.select("phash", F.posexplode(band_values(band, bits)).alias("c", "v"))
    # One shuffle: the hashes of each band key; keys that only one hash emits are dropped at once
    buckets = banded.groupBy("c", "v").agg(F.collect_list("phash").alias("hs")).where(F.size("hs") >= 2) \
        .persist(StorageLevel.DISK_ONLY)
    capped_stats = buckets.where(F.size("hs") > cap).agg(F.count(F.lit(1)).alias("n"),
                                                       F.max(F.size("hs")).alias("largest")).first()
    pairs = F.expr("flatten(transform(sequence(0, size(hs) - 2), i -> transform(sequence(i + 1, size(hs) - 1), "
                   "j -> named_struct('u', least(hs[i], hs[j]), 'v', greatest(hs[i], hs[j])))))")
    near = F.col("distance") <= threshold
    if confirmed:
        near = near & (F.expr("aggregate(zip_with(u.w, v.w, (x, y) -> bit_count(x ^ y)), 0, (a, x) -> a + x)")
                       <= rule.long_threshold)
    edges = (buckets.where(F.size("hs") <= cap).select(F.explode(pairs).alias("p"))
             .select(F.col("p.u").alias("u"), F.col("p.v").alias("v"))
             .withColumn("distance", F.expr("bit_count(u.h ^ v.h)" if confirmed else "bit_count(u ^ v)"))
             .where(near)
             .dropDuplicates(["u", "v"])
             .persist(StorageLevel.DISK_ONLY))
    stats = {
        "threshold": threshold, "calibration": rule.calibration.to_dict(), "second_hash": rule.second_hash(),
        "angle": rule.angle_section(), "bucket_cap": cap, "layout": band.describe(),
        "guaranteed_bits": band.guarantee, "layout_plan": plan.to_dict(),
        "hashed_rows": int(sizes["rows"] or 0), "distinct_hashes": distinct,
        "flat_hashes": {"count": int(sizes["flat"] or 0), "rows": int(sizes["flat_rows"] or 0),
                        "examples": _flat_examples(nodes, rows, cap, confirmed) if sizes["flat"] else []},
        "capped_band_keys": {"count": int(capped_stats["n"] or 0), "largest": int(capped_stats["largest"] or 0)},
    }
    within = [int(sizes[f"w{i}"] or 0) for i in range(len(splits) * (len(splits) + 1) // 2)]
    return Search(rows, splits, nodes, live, edges, band, stats, within, confirmed, (persisted, nodes, buckets, edges))


@dataclass(frozen=True)
class NearDuplicateCheck:
    """The audit as a table write's check (sparkprep.spark.reported): the written table -> its report section."""

    threshold: Optional[int]  # None: calibrated on the table
    cap: int
    merged: Optional[dict] = None  # --near-duplicates merge: what the clusters changed, recorded beside the audit
    crops: bool = False  # --near-signature crop-robust

    @property
    def label(self) -> str:
        return threshold_words(self.threshold, self.crops)

    def columns(self, written: DataFrame) -> Dict[str, Column]:
        return audit_columns(written, self.crops)

    def __call__(self, written: DataFrame, small: Optional[Dict[str, list]] = None) -> dict:
        """small: the table's small columns with `columns` (None: collected here, or searched in Spark)."""
        start = time.perf_counter()
        collected = rows_of_small(small) if small is not None and NEAR_ORDER in small else None
        stats = near_duplicate_audit(written, self.threshold, self.cap, collected=collected, crops=self.crops).stats
        # the audit's own wall time (it runs beside the table's counts): what the look-alike benchmark reads
        stats = {**stats, "seconds": round(time.perf_counter() - start, 3)}
        return {**stats, "merge": self.merged} if self.merged is not None else stats


def near_check(cfg: Any, merged: Optional[dict] = None) -> Optional[NearDuplicateCheck]:
    """The audit a config asks for: its threshold and cap, or None with --phash off (nothing is hashed).

    merged: a merge's stats, so that the run report and page written with the table hold them.
    """
    return NearDuplicateCheck(cfg.near_threshold, cfg.near_bucket_cap, merged, crops(cfg)) \
        if getattr(cfg, "phash", True) else None


def crops(cfg: Any) -> bool:
    """Whether a config asks for the crop search too (--near-signature crop-robust)."""
    return getattr(cfg, "near_signature", PHASH) == CROP_ROBUST


def threshold_words(threshold: Optional[int], crop_robust: bool = False) -> str:
    """How a stage line names the audit's threshold."""
    crop = "; and crop pairs: a whole pHash within its own calibrated threshold of a window of another" \
        if crop_robust else ""
    if threshold is None:
        return (f"pHash within a threshold calibrated on the data (at most {calibration.MAX_THRESHOLD} bits; "
                f"where pHash cannot tell the images apart, the angle between their DCT directions decides){crop}")
    return f"pHash within {threshold} bits{crop}"


def near_duplicate_audit(table: DataFrame, threshold: Optional[int], cap: int, clusters: bool = True,
                         collect_edges: int = COLLECT_EDGES, splits: Optional[List[str]] = None,
                         local_rows: int = LOCAL_ROWS, centre_keys: int = 0,
                         collected: Optional[List[HashedRow]] = None, crops: bool = False) -> NearAudit:
    """Pairs of rows whose hashes differ in at most `threshold` bits, counted by split pair, and clusters.

    Up to `local_rows` hashed rows are audited on the driver (sparkprep.audit.local: the same result);
    a larger table, or a cluster graph over `collect_edges`, in Spark. centre_keys: look for the
    centre of every cluster of at most this many keys (sparkprep.audit.bands.centre_of), for merge.
    collected: the hashed rows already on the driver (rows_of_small), instead of collecting them here.
    crops: the crop search too (sparkprep.audit.crops), on the driver: up to CROP_MAX_ROWS hashed rows are
    collected with their windows; a larger table is audited by pHash alone, and its report says so.
    """
    version = {"hash": phash_version(table)}
    limit = local_rows
    if crops:  # counted first (no window is computed for a count): a larger table's windows are never computed
        known = collected is not None and len(collected) <= CROP_MAX_ROWS
        limit = CROP_MAX_ROWS if known or hashed_rows(table).count() <= CROP_MAX_ROWS else 0
    small = collected if collected is not None and len(collected) <= limit else collected_rows(table, limit, crops)
    ruled = None
    if small is None:  # a larger table: the rule first, in Spark; the angle's search still runs on the driver
        rows = hashed_rows(table)
        ruled = calibrated(rows, rows.count(), threshold)
        if ruled[0].angle is not None:
            small = collected_rows(table, ANGLE_MAX_ROWS)
    if small is not None:
        done = local.audit(small, threshold, cap, clusters, collect_edges, splits, centre_keys,
                           ruled[0] if ruled else None, crops)
        if done is not None:
            key_clusters = None
            if clusters:
                key_clusters = table.sparkSession.createDataFrame(
                    sorted((k, c, centre) for k, (c, centre) in done.key_clusters.items()) or [], KEY_CLUSTERS)
            return NearAudit({**version, **done.stats}, key_clusters)
    found = near_search(table, threshold, cap, splits, ruled if ruled and ruled[0].angle is None else None)
    stats = {**version, **found.stats}
    if crops:
        stats["crops"] = {"searched": False, "threshold": 0,
                          "reason": f"the table has more than {CROP_MAX_ROWS:,} hashed rows: the crop search runs on "
                                    "the driver, up to that many"}
    stats.update(_pair_counts(found.live, found.edges, found.splits, found.within))
    # one pair per hash, closest first, so one heavily copied image does not fill the list
    across = row_pairs(found).where(F.col("a_split") != F.col("b_split")).withColumn(
        "_n", F.row_number().over(Window.partitionBy("u").orderBy("distance", "a_where", "b_where")))
    stats["examples"] = [_pair_dict(r, found.confirmed) for r in across.where(F.col("_n") == 1)
                         .orderBy("distance", "a_where", "b_where").limit(NEAR_EXAMPLES).collect()]
    key_clusters = None
    if clusters:  # (the key clusters are the driver's, or checkpointed: they do not read the search's frames)
        key_clusters, stats["clusters"] = _clusters(found.rows, found.live, found.edges, collect_edges, centre_keys)
    found.release()
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


def _pair_dict(r, confirmed: bool = False) -> dict:
    return pair_dict(r["distance"], *[HashedRow(None, r[f"{s}_split"], r[f"{s}_label"], r[f"{s}_where"],
                                                r[h]["h"] if confirmed else r[h], 0, r[h]["w"] if confirmed else None)
                                      for s, h in (("a", "u"), ("b", "v"))], confirmed)


def _flat_examples(nodes: DataFrame, rows: DataFrame, cap: int, confirmed: bool = False) -> List[dict]:
    flat = nodes.where(F.col("n") > cap).orderBy(F.desc("n"), "phash").limit(FLAT_EXAMPLES).select("phash", "n").collect()
    out = []
    for r in flat:
        if confirmed:  # the node is (h, w): its rows equal it in both hashes
            same = (F.col("phash.h") == r["phash"]["h"]) & \
                (F.col("phash.w") == F.array(*[F.lit(w).cast("bigint") for w in r["phash"]["w"]]))
        else:
            same = F.col("phash") == r["phash"]
        some = rows.where(same).orderBy("where").limit(FLAT_PATHS).select("where").collect()
        out.append({"phash": to_hex(r["phash"]["h"] if confirmed else r["phash"]), "rows": int(r["n"]),
                    "examples": [s["where"] for s in some]})
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
    terms = _split_pair_terms(k, "u", "v")
    between = joined.agg(F.count(F.lit(1)).alias("edges"), *[F.sum(e).alias(f"p{n}") for n, e in enumerate(terms)]).first()
    return pair_count_stats(splits, within, [int(between[f"p{n}"] or 0) for n in range(len(terms))], between["edges"])


def _clusters(rows: DataFrame, live: DataFrame, edges: DataFrame, collect_edges: int, centre_keys: int):
    """Connected components over keys: rows that share a hash, and hashes within the threshold, link their keys.

    Linking keys (not rows) keeps a key's rows together: a group (a patient) whose one image
    is a near-copy of another group's image joins that group's cluster whole.
    """
    by_hash = rows.join(live.where(F.col("n") > 1).select("phash", "m"), "phash") \
        .select(F.col("key").alias("a"), F.col("m").alias("b"), F.lit(0).alias("links"))
    ends = live.select("phash", "m")
    between = (edges.join(ends.select(F.col("phash").alias("u"), F.col("m").alias("a")), "u")
               .join(ends.select(F.col("phash").alias("v"), F.col("m").alias("b")), "v")
               .select("a", "b", F.lit(1).alias("links")))
    # (k, k) edges stay: a key whose own rows are near-duplicates is a cluster of one key. links: 0 where
    # the keys' rows share a hash, 1 where their hashes are within the threshold (sparkprep.audit.bands)
    key_edges = by_hash.unionByName(between).groupBy("a", "b").agg(F.min("links").alias("links")) \
        .persist(StorageLevel.DISK_ONLY)
    spark = rows.sparkSession
    few = key_edges.limit(collect_edges + 1).collect()  # at most collect_edges + 1 pairs reach the driver
    if len(few) <= collect_edges:
        n_edges, mapping = len(few), centred_components([(r["a"], r["b"], r["links"]) for r in few], centre_keys)
        key_clusters = spark.createDataFrame(sorted((k, c, centre) for k, (c, centre) in mapping.items()) or [],
                                             KEY_CLUSTERS)
        how = "union-find on the driver"
    else:
        n_edges = key_edges.count()
        key_clusters = _with_centres(_propagated_components(key_edges.select("a", "b")), key_edges, centre_keys)
        how = "label propagation in Spark"
    sizes = rows.join(key_clusters, "key").groupBy("cluster").agg(
        F.count(F.lit(1)).alias("rows"), F.countDistinct("split").alias("splits"))
    buckets = [((F.col("rows") >= lo) if lo is not None else F.lit(True)) & ((F.col("rows") <= hi) if hi else F.lit(True))
               for _, lo, hi in CLUSTER_SIZES]
    summary = sizes.agg(F.count(F.lit(1)).alias("clusters"), F.sum("rows").alias("rows"), F.max("rows").alias("largest"),
                        F.sum((F.col("splits") > 1).cast("long")).alias("spread"),
                        *[F.sum(test.cast("long")).alias(f"b{i}") for i, test in enumerate(buckets)]).first()
    histogram = {name: int(summary[f"b{i}"]) for i, (name, _, _) in enumerate(CLUSTER_SIZES) if summary[f"b{i}"]}
    key_edges.unpersist()
    return key_clusters, {"count": int(summary["clusters"] or 0), "rows": int(summary["rows"] or 0),
                          "largest": int(summary["largest"] or 0), "in_several_splits": int(summary["spread"] or 0),
                          "sizes": histogram, "key_edges": n_edges, "method": how}


def _with_centres(key_clusters: DataFrame, key_edges: DataFrame, centre_keys: int) -> DataFrame:
    """(key, cluster, centre): the centres of the clusters of at most `centre_keys` keys, found on the driver
    from their edges when there are at most COLLECT_EDGES of them (else null: such clusters are not merged)."""
    sizes = key_clusters.groupBy("cluster").agg(F.count(F.lit(1)).alias("keys"))
    small = key_clusters.join(sizes.where(F.col("keys") <= centre_keys), "cluster").select("key", "cluster")
    inner = key_edges.join(small.withColumnRenamed("key", "a"), "a").select("cluster", "a", "b", "links")
    few = inner.limit(COLLECT_EDGES + 1).collect() if centre_keys > 0 else []
    centres: Dict[str, Optional[str]] = {}
    if few and len(few) <= COLLECT_EDGES:
        found = centred_components([(r["a"], r["b"], r["links"]) for r in few], centre_keys)
        centres = {cluster: centre for cluster, centre in found.values()}
    spark = key_clusters.sparkSession
    known = spark.createDataFrame(sorted(centres.items()) or [], "cluster string, centre string")
    return key_clusters.join(known, "cluster", "left").select("key", "cluster", "centre")


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
            both.unpersist()  # the labels are checkpointed: they no longer read it
            return labels.withColumnRenamed("label", "cluster")
    raise RuntimeError(f"near-duplicate clusters did not converge in {MAX_ROUNDS} rounds")
