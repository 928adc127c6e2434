"""The near-duplicate audit on the driver, for tables small enough to hold there. Pure Python.

The same search, counts, examples and clusters as sparkprep.audit.spark.search, computed from the
hashed rows collected in one Spark job: a table of a few thousand rows otherwise pays for a
dozen small Spark jobs and their shuffles (about 2.5 s in a warm session, 5 s in a new one,
for 300 rows). The result is the Spark path's, field for field; tests/spark/test_leakage_audit.py
compares the two on the planted set, look-alike scans and random tables.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from sparkprep.audit import angles
from sparkprep.audit import calibrate as calibration
from sparkprep.audit.bands import band_keys, centred_components, planned_layout
from sparkprep.audit.crops import CROP_SAMPLE_ROWS, CropEdge, crop_calibration, crop_edges, window_name
from sparkprep.audit.rule import NearRule, near_rule
from sparkprep.images.phash import to_hex, words_to_int
from sparkprep.table_counts import nulls_first

NEAR_EXAMPLES = 24           # cross-split pairs listed in the report (and shown side by side in report.html)
FLAT_EXAMPLES = 5            # hashes shared by more than the cap, listed with...
FLAT_PATHS = 3               # ...this many of their rows
CLUSTER_SIZES = (("2", None, 2), ("3-5", 3, 5), ("6-20", 6, 20), (">20", 21, None))
MASK = (1 << 64) - 1


@dataclass(frozen=True)
class HashedRow:
    """One ok original with a hash (sparkprep.audit.spark.search.hashed_rows), and its calibration order."""

    key: Optional[str]
    split: Optional[str]
    label: Optional[str]
    where: Optional[str]
    phash: int
    order: int  # xxhash64(where, phash): the calibration sample is the SAMPLE_ROWS smallest
    phash256: Optional[Sequence[int]] = None  # its 4 words (None: a table written before the second hash)
    direction: Optional[Sequence[int]] = None  # its dct_direction (None: a table written before it)
    windows: Optional[Sequence[int]] = None  # its window pHashes (None: not read, the crop search is off)


@dataclass
class LocalAudit:
    stats: dict
    # key -> (cluster: the smallest key of its component, the component's centre or None: sparkprep.audit.bands)
    key_clusters: Optional[Dict[str, Tuple[str, Optional[str]]]]


def distance(u: int, v: int) -> int:
    return bin((u ^ v) & MASK).count("1")


def split_pairs(splits: Sequence[str]) -> List[Tuple[int, int]]:
    """(i, j), i <= j: the order in which per-split-pair sums are kept."""
    return [(i, j) for i in range(len(splits)) for j in range(i, len(splits))]


def pair_count_stats(splits: Sequence[str], within: Sequence[int], between: Sequence[int], hash_pairs: int) -> dict:
    """The report's pair counts from row pairs within one hash and across hash pairs, per split pair."""
    by_pair = {f"{splits[i]}|{splits[j]}": int(within[n]) + int(between[n])
               for n, (i, j) in enumerate(split_pairs(splits))}
    same = sum(c for name, c in by_pair.items() if name.split("|")[0] == name.split("|")[1])
    return {"hash_pairs": int(hash_pairs), "pairs_by_split_pair": by_pair, "pairs_within_splits": same,
            "pairs_across_splits": sum(by_pair.values()) - same}


def cluster_stats(sizes: Sequence[Tuple[int, int]], key_edges: int, method: str) -> dict:
    """(rows, splits) per cluster -> the report's cluster section."""
    histogram = {}
    for name, lo, hi in CLUSTER_SIZES:
        n = sum(1 for rows, _ in sizes if (lo is None or rows >= lo) and (hi is None or rows <= hi))
        if n:
            histogram[name] = n
    return {"count": len(sizes), "rows": sum(r for r, _ in sizes), "largest": max((r for r, _ in sizes), default=0),
            "in_several_splits": sum(1 for _, s in sizes if s > 1), "sizes": histogram, "key_edges": key_edges,
            "method": method}


def pair_dict(distance_bits: int, a: HashedRow, b: HashedRow, confirmed: bool = False,
              angle: Optional[float] = None, crop: Optional[CropEdge] = None) -> dict:
    """A listed pair; confirmed: the rule checked phash256 too, whose distance is listed beside; angle: the rule
    is the angle between DCT directions, listed beside the 64-bit distance; crop: a crop pair (bits, window, whose:
    0 a's, 1 b's): the whole pHash of one is that close to the named window of the other."""
    out = {"distance": int(distance_bits),
           "a": {"path": a.where, "split": a.split, "label": a.label, "phash": to_hex(a.phash)},
           "b": {"path": b.where, "split": b.split, "label": b.label, "phash": to_hex(b.phash)}}
    if confirmed:
        out["distance256"] = bin(words_to_int(a.phash256) ^ words_to_int(b.phash256)).count("1")
    if angle is not None:
        out["angle"] = round(float(angle), 3)
    if crop is not None:
        out["crop"] = {"distance": int(crop[0]), "window": window_name(crop[1]), "window_of": "ab"[crop[2]]}
    return out


def node_of(r: HashedRow, rule: NearRule) -> tuple:
    """The distinct signature a row belongs to: its 64-bit hash, and its phash256 or its direction when the rule
    checks them."""
    if rule.angle is not None:  # (a row without one, in a table of mixed ages, matches its exact copies only)
        return (r.phash, b"" if r.direction is None else np.asarray(r.direction, np.int16).tobytes())
    return (r.phash, words_to_int(r.phash256) if rule.confirmed else None)


def label_rows(sample: Sequence[HashedRow], rows: int) -> Dict[Optional[str], float]:
    """Rows per label of a table of `rows` hashed rows, from its sample's (exact when the sample is the table)."""
    per_label: Dict[Optional[str], int] = defaultdict(int)
    for r in sample:
        per_label[r.label] += 1
    return {label: n * rows / max(1, len(sample)) for label, n in per_label.items()}


def rule_of(sample: Sequence[HashedRow], rows: int, threshold: Optional[int]) -> NearRule:
    """The rule from the calibration sample of a table of `rows` hashed rows."""
    return near_rule([r.phash for r in sample], [r.phash256 for r in sample], [r.label for r in sample],
                     label_rows(sample, rows), fixed=threshold, directions=[r.direction for r in sample])


def calibration_sample(rows: Sequence[HashedRow]) -> List[HashedRow]:
    """The SAMPLE_ROWS rows of smallest (order, phash): the Spark path takes the same ones."""
    return sorted(rows, key=lambda r: (r.order, r.phash))[:calibration.SAMPLE_ROWS]


def audit(rows: Sequence[HashedRow], threshold: Optional[int], cap: int, clusters: bool, collect_edges: int,
          splits: Optional[List[str]] = None, centre_keys: int = 0, rule: Optional[NearRule] = None,
          crops: bool = False) -> Optional[LocalAudit]:
    """The audit of these rows; None when the cluster graph is larger than `collect_edges` (the Spark path
    then propagates labels in Spark, and says so). centre_keys: look for the centre of every cluster
    of at most this many keys (what --near-duplicates merge may merge). rule: the rule when the caller
    calibrated it already (on the same sample), else calibrated here. crops: crop pairs count too
    (--near-signature crop-robust; the rows carry their windows): every policy reads the union."""
    if splits is None:
        splits = sorted({r.split for r in rows})
    index = {s: i for i, s in enumerate(splits)}
    sample, fixed = calibration_sample(rows), threshold
    rule = rule or rule_of(sample, len(rows), threshold)
    threshold, confirmed = rule.threshold, rule.confirmed
    by_hash: Dict[tuple, List[HashedRow]] = defaultdict(list)
    for r in rows:
        by_hash[node_of(r, rule)].append(r)
    counts = {}
    for h, members in by_hash.items():
        c = [0] * len(splits)
        for r in members:
            if r.split in index:
                c[index[r.split]] += 1
        counts[h] = c
    live = {h for h, members in by_hash.items() if len(members) <= cap}
    flat = [h for h in by_hash if h not in live]
    pairs_of = split_pairs(splits)
    within = [0] * len(pairs_of)
    for h in live:
        c = counts[h]
        for n, (i, j) in enumerate(pairs_of):
            within[n] += c[i] * (c[i] - 1) // 2 if i == j else c[i] * c[j]

    if rule.angle is not None:
        edges, compared = _angle_edges(sorted(live), rule)
        capped: List[int] = []
        search = {"layout": f"cells one chord wide on {len(rule.axes)} principal axes of the DCT directions: every "
                            f"pair within {rule.angle:g} degrees is compared",
                  "guaranteed_bits": None, "layout_plan": None}
        angle = {**rule.angle_section(), "compared_pairs": compared}
    else:
        edges, capped, band, plan = _hash_edges(live, sample, len(by_hash), threshold, cap, rule)
        search = {"layout": band.describe(), "guaranteed_bits": band.guarantee, "layout_plan": plan.to_dict()}
        angle = rule.angle_section()

    cropped: Dict[Tuple[tuple, tuple], CropEdge] = {}
    if crops:
        cropped, stats_crops = _crop_edges(sample, by_hash, live, len(rows), fixed, cap, rule)
        cropped = {pair: edge for pair, edge in cropped.items() if pair not in edges}  # pHash found the rest
        edges = {**edges, **{pair: edge[0] for pair, edge in cropped.items()}}
    stats = {
        "threshold": threshold, "calibration": rule.calibration.to_dict(), "second_hash": rule.second_hash(),
        "angle": angle, "bucket_cap": cap, **search,
        "hashed_rows": len(rows), "distinct_hashes": len(by_hash),
        "flat_hashes": {"count": len(flat), "rows": sum(len(by_hash[h]) for h in flat),
                        "examples": _flat_examples(by_hash, flat)},
        "capped_band_keys": {"count": len(capped), "largest": max(capped, default=0)},
    }
    between = [0] * len(pairs_of)
    for (u, v) in edges:
        cu, cv = counts[u], counts[v]
        for n, (i, j) in enumerate(pairs_of):
            between[n] += cu[i] * cv[i] if i == j else cu[i] * cv[j] + cu[j] * cv[i]
    stats.update(pair_count_stats(splits, within, between, len(edges)))
    if crops:
        stats["crops"] = {**stats_crops, "hash_pairs": len(cropped)}  # those the pHash search did not find
    stats["examples"] = _examples(by_hash, live, edges, confirmed, rule.angle is not None, cropped)
    mapping = None
    if clusters:
        key_edges: Dict[Tuple[str, str], int] = {}  # (a, b) -> links: 0 when their rows share a hash, else 1
        smallest = {h: min((r.key for r in by_hash[h] if r.key is not None), default=None) for h in live}
        for u, v in edges:
            key_edges[(smallest[u], smallest[v])] = 1
        for h in live:
            if len(by_hash[h]) > 1:
                key_edges.update(((r.key, smallest[h]), 0) for r in by_hash[h])
        if len(key_edges) > collect_edges and rule.angle is None and not crops:  # (the Spark path has neither)
            return None
        mapping = centred_components(((a, b, n) for (a, b), n in key_edges.items()), centre_keys)
        members: Dict[str, List[HashedRow]] = defaultdict(list)
        for r in rows:
            if r.key in mapping:
                members[mapping[r.key][0]].append(r)
        sizes = [(len(m), len({r.split for r in m if r.split is not None})) for m in members.values()]
        stats["clusters"] = cluster_stats(sizes, len(key_edges), "union-find on the driver")
    return LocalAudit(stats, mapping)


def _hash_edges(live: set, sample: Sequence[HashedRow], distinct: int, threshold: int, cap: int, rule: NearRule):
    """(edges: (u, v) -> bits, sizes of the band keys past the cap, the band layout, its plan): the banding search
    over the 64-bit hashes of the live nodes, each candidate kept by the rule (phash256 too when it confirms)."""
    plan = planned_layout(threshold, [r.phash for r in sample], distinct, cap)
    band = plan.band
    buckets: Dict[tuple, List[tuple]] = defaultdict(list)
    for h in live:
        for key in band_keys(h[0], band):
            buckets[key].append(h)
    capped = [len(hs) for hs in buckets.values() if len(hs) > cap]
    edges: Dict[Tuple[tuple, tuple], float] = {}
    for hs in buckets.values():
        if 2 <= len(hs) <= cap:
            for a in range(len(hs) - 1):
                for b in range(a + 1, len(hs)):
                    u, v = min(hs[a], hs[b]), max(hs[a], hs[b])
                    if (u, v) not in edges:
                        d = distance(u[0], v[0])
                        if d <= threshold and (not rule.confirmed or
                                               bin(u[1] ^ v[1]).count("1") <= rule.long_threshold):
                            edges[(u, v)] = d
    return edges, capped, band, plan


def _crop_edges(sample: Sequence[HashedRow], by_hash: Dict[tuple, List[HashedRow]], live: set, rows: int,
                fixed: Optional[int], cap: int, rule: NearRule) -> Tuple[Dict[Tuple[tuple, tuple], CropEdge], dict]:
    """(edges: (u, v) -> CropEdge, the report's crops section): the crop pairs among the live signatures, within the
    crop threshold calibrated on the sample's windows (sparkprep.audit.crops)."""
    if rule.angle is not None:
        return {}, {"searched": False, "threshold": 0,
                    "reason": "the 64-bit pHash cannot tell these images apart (their DCT directions decide), and "
                              "window pHashes of such images match by chance more often still"}
    with_windows = [r for r in sample if r.windows is not None][:CROP_SAMPLE_ROWS]
    calibration = crop_calibration([r.phash for r in with_windows], [r.windows for r in with_windows],
                                   [r.label for r in with_windows], label_rows(sample, rows), fixed)
    section = {"searched": calibration.threshold > 0, "threshold": calibration.threshold,
               "calibration": calibration.to_dict()}
    if not calibration.threshold:
        return {}, {**section, "reason": calibration.reason}
    first = {}
    for h in sorted(live):
        windowed = sorted((r for r in by_hash[h] if r.windows is not None), key=lambda r: nulls_first(r.where))
        if windowed:
            first[h] = windowed[0].windows
    nodes = list(first)
    edges, search = crop_edges(nodes, [h[0] for h in nodes], [first[h] for h in nodes], calibration.threshold, cap)
    return edges, {**section, **search}


def _angle_edges(nodes: List[tuple], rule: NearRule) -> Tuple[Dict[Tuple[tuple, tuple], float], int]:
    """(edges: (u, v) -> degrees, pairs compared): every pair of live nodes whose directions are within the
    rule's angle (sparkprep.audit.angles.pairs_within)."""
    nodes = [h for h in nodes if h[1]]
    if len(nodes) < 2:
        return {}, 0
    x = angles.unit(np.stack([np.frombuffer(h[1], np.int16) for h in nodes]))
    i, j, d, compared = angles.pairs_within(x, rule.angle, rule.axes)
    edges = {}
    for a, b, angle in zip(i.tolist(), j.tolist(), d.tolist()):
        u, v = min(nodes[a], nodes[b]), max(nodes[a], nodes[b])
        edges[(u, v)] = angle
    return edges, compared


def _flat_examples(by_hash: Dict[tuple, List[HashedRow]], flat: List[tuple]) -> List[dict]:
    top = sorted(flat, key=lambda h: (-len(by_hash[h]), h))[:FLAT_EXAMPLES]
    return [{"phash": to_hex(h[0]), "rows": len(by_hash[h]),
             "examples": [r.where for r in sorted(by_hash[h], key=lambda r: nulls_first(r.where))[:FLAT_PATHS]]}
            for h in top]


def _examples(by_hash: Dict[tuple, List[HashedRow]], live: set, edges: Dict[Tuple[tuple, tuple], float],
              confirmed: bool, by_angle: bool = False, cropped: Optional[Dict[Tuple[tuple, tuple], CropEdge]] = None
              ) -> List[dict]:
    """One cross-split row pair per first hash u, the closest (then by paths); the closest NEAR_EXAMPLES of those.
    cropped: the crop pairs among the edges (an edge at a crop pair's distance is listed as one)."""
    cropped = cropped or {}
    best: Dict[tuple, tuple] = {}

    def offer(u: tuple, d: int, a: HashedRow, b: HashedRow, crop: Optional[CropEdge] = None) -> None:
        if a.split != b.split and a.split is not None and b.split is not None:
            rank = (d, nulls_first(a.where), nulls_first(b.where))
            if u not in best or rank < best[u][0]:
                best[u] = (rank, d, a, b, crop)

    for (u, v), d in edges.items():
        for a in by_hash[u]:
            for b in by_hash[v]:
                offer(u, d, a, b, cropped.get((u, v)))
    for h in live:
        for a in by_hash[h]:
            for b in by_hash[h]:
                if a.where is not None and b.where is not None and a.where < b.where:
                    offer(h, 0, a, b)
    chosen = sorted(best.values(), key=lambda item: item[0])[:NEAR_EXAMPLES]
    return [pair_dict(distance(a.phash, b.phash), a, b, confirmed, d if by_angle else None, crop)
            for _, d, a, b, crop in chosen]
