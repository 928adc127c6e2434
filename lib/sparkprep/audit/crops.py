"""Crop pairs (issue 29): the whole pHash of one image within the threshold of a window pHash of another.

A crop keeps one region of its original, and the original's window pHashes (sparkprep.images.phash,
WINDOWS) include the pHash of a region close to it; so (i, j, w) is a crop match when the whole
pHash of image i is within `threshold` bits of window w of image j, i != j.

The search has the banding guarantee of sparkprep.audit.bands: a whole pHash and a window pHash
are both 64-bit hashes, so with one layout for both, any two within `band.guarantee` bits share a
band key (one combination of blocks, the same values), by the same pigeonhole argument. Whole
pHashes and window pHashes emit their keys; only whole-to-window key matches are paired, and the
exact Hamming distance keeps those within the threshold. A key value shared by more than `cap`
wholes or `cap` windows is counted as crowded, not joined, as the pHash search does.

The threshold is calibrated as pHash's is (sparkprep.audit.calibrate), over the crop distance of
sampled pairs: the least of their wholes' distance and of either whole's distance to any window of
the other. On look-alike data (scans of one modality) windows match by chance far more often than
whole images do, and the calibration then turns the crop search off (a threshold of 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from sparkprep.audit.bands import HASH_BITS, BandLayout, cheapest_layout, key_values
from sparkprep.audit.calibrate import Calibration, calibrate, fit
from sparkprep.audit.rule import ANGLE_MAX_ROWS
from sparkprep.images.phash import WINDOW_COUNT, WINDOWS


def unsigned(hashes) -> np.ndarray:
    """64-bit hashes (signed, as Spark's bigint holds them, or any integer dtype) as uint64, for XOR and popcount."""
    return np.asarray(hashes).astype(np.int64).view(np.uint64)


@dataclass(frozen=True)
class CropMatches:
    """Every (whole, other, window) within the threshold: numpy arrays of one length, ordered by (whole, other,
    window); and the key values left unjoined because they were crowded."""

    whole: np.ndarray     # the image whose whole pHash matched
    other: np.ndarray     # the image whose window matched
    window: np.ndarray    # which window (an index into WINDOWS)
    distance: np.ndarray  # bits between them
    crowded_keys: int     # (key, value)s shared by more than the cap of wholes or of windows


def crop_layout(threshold: int, images: int, cap: int, windows: int = WINDOW_COUNT) -> BandLayout:
    """The cheapest layout whose guarantee is exactly `threshold` bits for the crop search over `images` images of
    `windows` windows each, on uniform hashes: keys emitted ((1 + windows) * images * C(B, k)) plus candidate
    whole-to-window pairs (windows * images^2 * C(B, k) / 2^(64 k / B)), among the layouts whose key values
    hold no more than cap / 4 windows on average (a crowded key is not joined: its pairs would be missed).
    sparkprep.audit.bands.layout_for does the same for pairs of whole pHashes."""
    def cost(keys: int, bits: float) -> Optional[float]:
        shared = windows * images / 2.0 ** bits  # windows per key value
        return (1 + windows) * images * keys + images * shared * keys if shared <= cap / 4 else None
    return cheapest_layout(threshold, cost)


def crop_matches(wholes: np.ndarray, windows: np.ndarray, band: BandLayout, threshold: int, cap: int) -> CropMatches:
    """The crop matches among n images: wholes (n,) and windows (n, W), both 64-bit hashes (any integer dtype).
    Every match within min(threshold, band.guarantee) bits whose key values are not all crowded is found."""
    wholes, windows = unsigned(wholes), unsigned(windows)
    n, per_image = windows.shape
    if n == 0:
        empty = np.zeros(0, np.int64)
        return CropMatches(empty, empty, empty, empty, 0)
    flat = windows.ravel()
    found, crowded = [np.zeros(0, np.int64)], 0
    for combo in band.combos:  # one key at a time: all of them for every window would not fit at 100k images
        one = BandLayout(band.blocks, (combo,))
        whole_keys, window_keys = key_values(wholes, one)[0], key_values(flat, one)[0]
        order = np.argsort(window_keys, kind="stable")
        ordered = window_keys[order]
        values, first, windows_per_value = np.unique(ordered, return_index=True, return_counts=True)
        wanted, wholes_per_value = np.unique(whole_keys, return_counts=True)
        pos = np.searchsorted(wanted, values).clip(0, len(wanted) - 1)
        shared = wanted[pos] == values
        too_many = shared & ((windows_per_value > cap) | (wholes_per_value[pos] > cap))
        crowded += int(too_many.sum())
        joined = values[shared & ~too_many]
        at = np.searchsorted(joined, whole_keys).clip(0, max(0, len(joined) - 1))
        hit = np.flatnonzero(joined[at] == whole_keys) if len(joined) else np.zeros(0, np.int64)
        if not len(hit):
            continue
        slot = np.searchsorted(values, whole_keys[hit])
        starts, lengths = first[slot], windows_per_value[slot]
        rows = np.repeat(hit, lengths)  # each whole, once per window sharing its key value
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        flat_index = order[np.repeat(starts, lengths) + offsets]
        # the exact distance of each candidate now, so that only matches are kept across keys (few, deduplicated)
        near = (flat_index // per_image != rows) & (np.bitwise_count(wholes[rows] ^ flat[flat_index]) <= threshold)
        found.append(rows[near] * (n * per_image) + flat_index[near])
    matches = np.unique(np.concatenate(found))
    whole, flat_index = matches // (n * per_image), matches % (n * per_image)
    return CropMatches(whole, flat_index // per_image, flat_index % per_image,
                       np.bitwise_count(wholes[whole] ^ flat[flat_index]).astype(np.int64), crowded)


# Hashed rows up to this count are collected with their windows for the crop search on the driver: 16 window
# hashes a row (27 MB at 200,000 rows); measured: the search takes 40.6 s at 100,000 (scripts/bench_crop_signatures.py
# --search), against 636.8 s in Spark (--spark-search), so larger tables are audited by pHash alone, and say so.
CROP_MAX_ROWS = ANGLE_MAX_ROWS
CROP_SAMPLE_ROWS = 2_000  # sampled rows whose crop distances the calibration compares (32 window comparisons a pair)


@dataclass(frozen=True)
class CropDistances:
    """The crop distances among n sampled images, from one pass over their whole-to-window comparisons."""

    distances: np.ndarray  # (n, n): the least of two images' wholes' distance and of either whole's to any window
    whole: np.ndarray      # histogram (0..64 bits) of the wholes' distance over pairs of distinct images
    across: np.ndarray     # histogram of each whole's distance to each window of another image
    per_image: int         # windows an image


def crop_distances(wholes: np.ndarray, windows: np.ndarray, chunk: int = 256) -> CropDistances:
    """The crop distances among n images (wholes (n,), windows (n, W)): the whole of i against every window of j
    is computed once, and serves both the pair (i, j) and (j, i) by its transpose."""
    wholes, windows = unsigned(wholes), unsigned(windows)
    n, per_image = windows.shape
    distances = np.zeros((n, n), np.uint8)
    whole, across = np.zeros(HASH_BITS + 1, np.int64), np.zeros(HASH_BITS + 1, np.int64)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(n, start + chunk))
        other = rows[:, None] != np.arange(n)[None, :]
        to_wholes = np.bitwise_count(wholes[rows, None] ^ wholes[None, :])
        to_windows = np.bitwise_count(wholes[rows, None, None] ^ windows[None, :, :])
        whole += np.bincount(to_wholes[other], minlength=HASH_BITS + 1)
        across += np.bincount(to_windows[other].ravel(), minlength=HASH_BITS + 1)
        distances[rows] = np.minimum(to_wholes, to_windows.min(axis=2))  # mine against their windows
    return CropDistances(np.minimum(distances, distances.T), whole, across, per_image)  # and theirs against mine


def crop_calibration(wholes: Sequence[int], windows: Sequence[Sequence[int]], labels: Sequence[Optional[str]],
                     rows_per_label: Dict[str, int], fixed: Optional[int] = None) -> Calibration:
    """The crop threshold for a table of rows_per_label rows per label, from the audit's calibration sample
    (its first CROP_SAMPLE_ROWS rows, a uniform sample too): calibrate's estimates over crop distances.
    A threshold of 0 turns the crop search off. fixed: --near-threshold, which sets both thresholds."""
    count = min(len(wholes), CROP_SAMPLE_ROWS)
    sampled = np.asarray(list(wholes)[:count], np.int64)
    measured = crop_distances(sampled, np.asarray(list(windows)[:count], np.int64).reshape(count, -1))
    return calibrate(sampled, list(labels)[:count], rows_per_label, fixed=fixed,
                     distance=lambda rows: measured.distances[rows],
                     signature="the window hashes", at_zero="crop matches are not searched",
                     model=crop_model(measured))


def crop_model(measured: CropDistances) -> np.ndarray:
    """P(the crop distance of a random pair <= t), t = 0..64, by the union bound over its comparisons: the
    wholes' distance, and each whole against each of the other's windows (2 W comparisons). Each is a
    Hamming distance between two 64-bit hashes, which a beta-binomial fits (sparkprep.audit.calibrate.fit),
    so this model replaces the fit of the crop distance itself: a least of 2 W + 1 distances is narrower
    than a beta-binomial, whose tail then overstated chance matches of uniform hashes a thousandfold."""
    return np.minimum(1.0, fit(measured.whole).cdf() + 2 * measured.per_image * fit(measured.across).cdf())


CropEdge = Tuple[int, int, int]  # (bits, window index, whose window: 0 the first node's, 1 the second's)


def crop_edges(nodes: Sequence, wholes: Sequence[int], windows: Sequence[Sequence[int]], threshold: int, cap: int
               ) -> Tuple[Dict[Tuple, CropEdge], dict]:
    """(edges, search): the crop pairs among distinct signatures (nodes, each with its whole pHash and windows), as
    (u, v) -> CropEdge with u < v, the closest match of each pair; and the report's words for the search."""
    band = crop_layout(threshold, len(nodes), cap)
    found = crop_matches(np.asarray(wholes, np.int64).reshape(-1), np.asarray(windows, np.int64).reshape(
        len(nodes), WINDOW_COUNT), band, threshold, cap)
    edges: Dict[Tuple, CropEdge] = {}
    for i, j, w, d in zip(found.whole.tolist(), found.other.tolist(), found.window.tolist(), found.distance.tolist()):
        u, v = nodes[i], nodes[j]
        pair, edge = ((u, v), (d, w, 1)) if u < v else ((v, u), (d, w, 0))
        if pair not in edges or edge < edges[pair]:
            edges[pair] = edge
    return edges, {"layout": band.describe(), "guaranteed_bits": band.guarantee, "crowded_keys": found.crowded_keys,
                   "signatures": len(nodes)}


def window_name(index: int) -> str:
    """The name of a window (sparkprep.images.phash.WINDOWS), as the report lists it."""
    return WINDOWS[index][0]

