"""The angle between images' DCT directions: its calibration and a search that finds every pair within
a threshold. Pure numpy. (docs/near-duplicates.md, "The angle between the DCT blocks".)

A direction is an image's 16x16 DCT block without its DC term, scaled to unit length
(`sparkprep.images.phash.dct_direction`, stored as int16). The angle between two directions is 0
for the same image and grows with the difference; on scans of one modality, where even 256 bits
of pHash agree between different patients, planted copies stay within 2-3 degrees and different
scans start beyond that.

The calibration (`calibrate_angles`) is the bit hashes' idea on a real-valued distance:

1. Copies in the sample are set aside first: a row's k nearest rows (k <= GROUP) when the k-th
   is under a gap times the (k+1)-th, the gap being what the neighbours' own spread allows for
   about one chance row (`copy_gap`); and pairs under EXACT degrees (one image twice).
2. In each stratum (pairs of one label, pairs of different labels) the number of pairs within r
   grows as a power of r near its low end (a spherical cap's area in the directions' effective
   dimension). log(count) is fitted against log(r) over the stratum's RANKS closest pairs and
   scaled from the sample's pairs to the table's. A stratum with too few pairs for the fit is
   counted instead, scaled the same way.
3. The threshold is the largest multiple of STEP up to `max_angle` whose expected chance pairs
   stay within one per CHANCE_ROWS rows; below FLOOR the angle cannot tell the data apart.

The search (`pairs_within`): any unit projection of two directions differs by at most their
chord, 2 sin(angle / 2). So the directions are projected onto a few axes (the sample's principal
axes, where they spread most), cut into cells one chord wide, and only rows in the same or
adjacent cells on every axis are compared. Every pair within the threshold is compared: a
guarantee, not a sample, whatever the axes.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from sparkprep.audit.calibrate import CHANCE_ROWS

MAX_ANGLE = 6.0     # degrees: the largest threshold the calibration considers
STEP = 0.05         # degrees between the thresholds it considers
FLOOR = 0.5         # a threshold below this does not tell images apart (copies are up to ~3 degrees apart)
EXACT = 0.05        # pairs this close are one image twice (int16 rounding moves an angle by < 0.01)
COPY_GAP = 2        # a copy's angle is at most under 1/COPY_GAP of the next-nearest (copy_gap)
GROUP = 10          # the most versions of one image set aside around a row
AGREE_SLACK = 1     # of a row's nearest rows, how many may hold other labels when it takes theirs
RANKS = (10, 300)   # the closest pairs of a stratum whose counts the power law is fitted to
MAX_AXES = 8        # the search projects onto at most this many axes (3^8 neighbour cells)
PAIR_COST = 8.0     # the search's cost of comparing one candidate pair, in neighbour-cell look-ups


def unit(directions) -> np.ndarray:
    """Rows of int16 (or float) directions as float32 unit vectors; an all-zero row (a flat image) stays zero."""
    x = np.asarray(directions, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def degrees(cosines: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0)))


def chord(angle: float) -> float:
    """The distance between two unit vectors `angle` degrees apart."""
    return 2.0 * math.sin(math.radians(angle) / 2.0)


@dataclass(frozen=True)
class Stratum:
    """Chance pairs within r degrees in one stratum at the table's size: scale * r^power * grow, or (too few
    sampled pairs to fit) the sampled pairs' own count times grow."""

    power: Optional[float]
    scale: float
    grow: float                       # the table's pairs in this stratum / the sample's
    counted: Optional[np.ndarray] = None  # sorted sampled angles, when too few to fit

    def expected(self, r: float) -> float:
        if self.counted is not None:
            return float(np.searchsorted(self.counted, r, side="right") * self.grow)
        if r <= 0:
            return 0.0
        # in logs: powers reach 300, and r ** power alone overflows
        return math.exp(min(self.scale + self.power * math.log(r) + math.log(self.grow), 700.0))


@dataclass(frozen=True)
class AngleCalibration:
    """The angle threshold and its evidence (the run report's near_duplicates.angle.calibration)."""

    threshold: float               # 0.0: the angle cannot tell this data apart
    rows: int
    allowed: float
    expected: Dict[float, float]   # r -> expected chance pairs, r on the STEP grid
    set_aside: int                 # sampled pairs set aside as copies
    powers: Tuple[Optional[float], Optional[float]]  # (one label, different labels)
    sampled_rows: int
    reason: str
    histogram: Dict[int, int] = field(default_factory=dict)  # sampled pairs per whole degree of angle

    def to_dict(self) -> dict:
        shown = [r for r in self.expected if abs(r * 4 - round(r * 4)) < 1e-9]  # every quarter degree
        return {"threshold_degrees": self.threshold, "rows": self.rows,
                "bound": f"at most 1 expected chance pair per {CHANCE_ROWS:,} rows",
                "allowed_chance_pairs": round(self.allowed, 4),
                "expected_chance_pairs": {f"{r:g}": float(f"{self.expected[r]:.3g}") for r in shown},
                "copies_set_aside": self.set_aside,
                "power": {"one_label": _rounded(self.powers[0]), "different_labels": _rounded(self.powers[1])},
                "sampled_rows": self.sampled_rows, "reason": self.reason,
                "random_pair_angles": {str(d): n for d, n in sorted(self.histogram.items())}}


def _rounded(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 1)


def _angles(x: np.ndarray, chunk: int = 1024):
    """(rows, block of their angles to every row in degrees, the row itself at infinity), in blocks of rows."""
    for start in range(0, len(x), chunk):
        rows = np.arange(start, min(start + chunk, len(x)))
        block = degrees(x[rows] @ x.T)
        block[rows - start, rows] = np.inf
        yield rows, block


def _nearest(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Each row's GROUP + 1 nearest other rows: (indices, angles), nearest first."""
    k = min(GROUP + 1, max(len(x) - 1, 0))
    near_index, near_angle = np.zeros((len(x), k), np.int64), np.full((len(x), k), np.inf)
    if k:
        for rows, block in _angles(x):
            part = np.argpartition(block, k - 1, axis=1)[:, :k]
            angle = np.take_along_axis(block, part, axis=1)
            order = np.argsort(angle, axis=1, kind="stable")
            near_index[rows] = np.take_along_axis(part, order, axis=1)
            near_angle[rows] = np.take_along_axis(angle, order, axis=1)
    return near_index, near_angle


def _closest_pairs(x: np.ndarray, labels: np.ndarray, keep: int, chunk: int = 1024):
    """Per stratum (True: one label) the `keep` + chunk closest pairs each block of rows gives, as (angle, i, j),
    leaving out pairs under EXACT degrees (one image twice); how many of those there were; and every pair's
    angle counted per whole degree (the report's histogram of random pairs)."""
    low: Dict[bool, List[Tuple[np.ndarray, np.ndarray, np.ndarray]]] = {True: [], False: []}
    exact, columns, histogram = 0, np.arange(len(x)), np.zeros(181, np.int64)
    for rows, block in _angles(x, chunk):
        upper = columns[None, :] > rows[:, None]
        histogram += np.bincount(np.minimum(block[upper], 180).astype(np.int64), minlength=181)
        alike = labels[rows, None] == labels[None, :]
        for one in (True, False):
            i, j = np.nonzero(upper & (alike == one))
            values = block[i, j]
            same = values < EXACT
            exact += int(same.sum())
            i, j, values = i[~same], j[~same], values[~same]
            if len(values) > keep + chunk:
                pick = np.argpartition(values, keep + chunk)[:keep + chunk]
                i, j, values = i[pick], j[pick], values[pick]
            low[one].append((values, i + rows[0], j))
    return low, exact, histogram


def effective_labels(labels: np.ndarray, near_index: np.ndarray) -> np.ndarray:
    """Label codes, each row's replaced by another label when all but AGREE_SLACK of its GROUP + 1 nearest rows
    hold that one: a copy filed under another class is, for chance, a row of the class it shows. (On 51,256
    look-alike scans with a third of 2.5% planted copies filed elsewhere, such copies and their class's scans
    made the closest pairs of different labels, and the calibration chose 0.75-0.9 degrees, not 1.95; two such
    copies of one class, each the other's neighbour, need the slack of one. A majority vote instead moved 23%
    of the demo's scans, whose classes overlap, and let 20 chance pairs through where 5 were allowed; a slack
    of two let 10 through.)"""
    if near_index.shape[1] == 0:
        return labels
    votes = labels[near_index]
    out = labels.copy()
    for row in np.nonzero((votes != labels[:, None]).sum(axis=1) >= votes.shape[1] - AGREE_SLACK)[0]:
        values, counts = np.unique(votes[row][votes[row] != labels[row]], return_counts=True)
        if counts.max() >= votes.shape[1] - AGREE_SLACK:
            out[row] = values[np.argmax(counts)]
    return out


def copy_gap(near_angle: np.ndarray) -> float:
    """The share of its next-nearest angle under which a row's nearest stands apart as a copy.

    Where chance neighbours within r grow as r^p, a row's nearest is under g times its next-nearest with
    probability g^p (and its k-th under g times its (k+1)-th with g^(pk)), so -log(nearest / next-nearest)
    is exponential with rate p, and its median gives p whatever a minority of copies do. g = (1 / rows)^(1 / p)
    then expects about one chance row set aside in the sample (never more than 1/COPY_GAP).
    """
    if near_angle.shape[1] < 2:
        return 0.0
    first, second = near_angle[:, 0], near_angle[:, 1]
    ok = np.isfinite(first) & np.isfinite(second) & (second > 0) & (first > 0)
    if ok.sum() < 3:
        return 0.0
    median = float(np.median(first[ok] / second[ok]))
    if not 0 < median < 1:
        return 0.0
    power = math.log(2) / -math.log(median)
    return min(1 / COPY_GAP, (1 / len(first)) ** (1 / power))


def copies(near_index: np.ndarray, near_angle: np.ndarray, gap: float = 1 / COPY_GAP) -> set:
    """Sampled pairs (i < j) that stand apart as copies: a row and its k nearest (k <= GROUP) when the k-th is
    under `gap` times the (k+1)-th, the largest such k: a group of versions of one image, apart from the rest."""
    if near_angle.shape[1] < 2:
        return set()
    apart = near_angle[:, :-1] < gap * near_angle[:, 1:]
    last = apart.shape[1] - 1 - np.argmax(apart[:, ::-1], axis=1)
    out = set()
    for i in np.nonzero(apart.any(axis=1))[0]:
        for j in near_index[i, :last[i] + 1].tolist():
            out.add((min(int(i), j), max(int(i), j)))
    return out


def _stratum(low, aside: set, sampled_pairs: float, table_pairs: float) -> Optional[Stratum]:
    """One stratum's chance pairs within r at the table's size, from its closest sampled pairs (`low`: blocks
    of (angle, i, j)) less those set aside as copies."""
    if not sampled_pairs or not table_pairs or not low:
        return None
    values, i, j = (np.concatenate([part[k] for part in low]) for k in range(3))
    copy = np.array([(int(a), int(b)) in aside for a, b in zip(i, j)], bool)
    ranked = np.sort(values[~copy])[:RANKS[1]]
    grow = table_pairs / sampled_pairs
    if len(ranked) < RANKS[1]:
        return Stratum(None, 0.0, grow, ranked)
    power, scale = np.polyfit(np.log(ranked[RANKS[0] - 1:]), np.log(np.arange(RANKS[0], RANKS[1] + 1)), 1)
    return Stratum(float(power), float(scale), grow)


def calibrate_angles(directions, labels: Sequence[Optional[str]], rows_per_label: Dict[str, int],
                     max_angle: float = MAX_ANGLE) -> AngleCalibration:
    """The angle threshold for a table of rows_per_label rows per label (a null label is a label of its
    own), from a uniform sample of its directions (int16 rows) and their labels. The strata are by each
    sampled row's effective label (effective_labels), and the table's pairs in each are the sample's
    proportions scaled to the table's rows."""
    x = unit(directions)
    lab = np.unique(np.asarray(["" if v is None else str(v) for v in labels], dtype=object),
                    return_inverse=True)[1].ravel()
    n, rows = len(x), round(sum(rows_per_label.values()))
    near_index, near_angle = _nearest(x)
    lab = effective_labels(lab, near_index)
    low, exact, histogram = _closest_pairs(x, lab, RANKS[1])
    sampled_per_label = np.bincount(lab) if n else np.zeros(0)
    pairs = {True: float(sum(c * (c - 1) / 2 for c in sampled_per_label)),
             False: n * (n - 1) / 2 - float(sum(c * (c - 1) / 2 for c in sampled_per_label))}
    table_within = float(sum(c * rows / n * (c * rows / n - 1) / 2 for c in sampled_per_label)) if n else 0.0
    table = {True: table_within, False: rows * (rows - 1) / 2 - table_within}
    # Copies are set aside at a gap the neighbours' own spread allows (copy_gap): a fixed gap of 1/2 set aside a
    # fifth of the closest chance pairs of 7-dimensional uniform directions and expected a quarter of their pairs.
    aside = copies(near_index, near_angle, copy_gap(near_angle))
    strata = [_stratum(low[one], aside, pairs[one], table[one]) for one in (True, False)]
    set_aside = len(aside) + exact
    grid = [round(STEP * k, 2) for k in range(1, int(round(max_angle / STEP)) + 1)]
    expected = {r: sum(s.expected(r) for s in strata if s is not None) for r in grid}
    allowed = rows / CHANCE_ROWS
    meets = [r for r in grid if expected[r] <= allowed]
    powers = tuple(s.power if s is not None else None for s in strata)
    if meets and max(meets) >= FLOOR:
        threshold = max(meets)
        worse = (f"; {threshold + STEP:g} degrees would expect {expected[round(threshold + STEP, 2)]:.3g}"
                 if threshold < grid[-1] else f", the most the audit uses ({max_angle:g})")
        reason = (f"the largest angle whose expected chance pairs ({expected[threshold]:.3g}) stay within "
                  f"{allowed:.3g} at {rows:,} rows{worse}")
    else:
        threshold = 0.0
        reason = (f"the angle cannot tell this data apart: even {FLOOR:g} degrees would expect "
                  f"{expected[FLOOR]:.3g} chance pairs at {rows:,} rows ({allowed:.3g} allowed)")
    return AngleCalibration(threshold, rows, allowed, expected, set_aside, powers, n, reason,
                            {d: int(c) for d, c in enumerate(histogram) if c})


# The search.

def axes_of(sample: np.ndarray, count: int) -> np.ndarray:
    """The `count` principal axes of sampled unit directions (rows, orthonormal): where they spread most."""
    centred = sample - sample.mean(axis=0)
    return np.linalg.svd(centred, full_matrices=False)[2][:count].astype(np.float32)


def _cells(x: np.ndarray, axes: np.ndarray, angle: float) -> np.ndarray:
    """Each row's cell (one int64 code) on the axes, cells one chord wide (a hair wider, for float rounding)."""
    width = chord(angle) * (1 + 1e-4) + 1e-6
    cells = np.floor((x @ axes.T) / width).astype(np.int64)
    cells -= cells.min(axis=0) - 1  # 1.. so a neighbour's coordinate stays >= 0
    radix = int(cells.max()) + 2
    if radix ** len(axes) >= 2 ** 62:
        raise ValueError(f"angle search: {len(axes)} axes of {radix} cells do not fit one code")
    return cells @ (radix ** np.arange(len(axes), dtype=np.int64)), radix


def fits(count: int, angle: float) -> bool:
    """Whether the cells of `count` axes fit one int64 code for any unit rows: a unit row's projection on a
    unit axis lies in [-1, 1], so at most 2 / chord + 4 cells per axis, whatever rows the table holds beyond
    the sample (a bound from the sample's range could be passed by the table's rows, and the search refuses)."""
    return count * math.log2(2 / chord(angle) + 4) < 62


def _neighbour_offsets(count: int, radix: int) -> np.ndarray:
    """Code offsets of the neighbouring cells, each unordered pair of cells once: the half whose first
    nonzero step is +1."""
    steps = [o for o in itertools.product((-1, 0, 1), repeat=count) if any(o) and o[next(i for i, v in
                                                                                        enumerate(o) if v)] == 1]
    weights = radix ** np.arange(count, dtype=np.int64)
    return np.array([int(np.dot(o, weights)) for o in steps], np.int64)


def _cell_pairs(codes: np.ndarray, axes_count: int, radix: int):
    """(order, starts, sizes, pairs of cells): the rows sorted by cell, each occupied cell's first position and
    size in that order, and (a, b) indices of occupied cells that are neighbours (a == b: the cell itself)."""
    order = np.argsort(codes, kind="stable")
    unique, starts, sizes = np.unique(codes[order], return_index=True, return_counts=True)
    a, b = [np.arange(len(unique))], [np.arange(len(unique))]
    for offset in _neighbour_offsets(axes_count, radix):
        at = np.searchsorted(unique, unique + offset)
        found = at < len(unique)
        found[found] = unique[at[found]] == unique[found] + offset
        a.append(np.nonzero(found)[0])
        b.append(at[found])
    return order, starts, sizes, np.concatenate(a), np.concatenate(b)


def candidate_count(x: np.ndarray, axes: np.ndarray, angle: float) -> int:
    """How many pairs of rows the search compares on these axes (pairs in the same or adjacent cells)."""
    codes, radix = _cells(x, axes, angle)
    _, _, sizes, a, b = _cell_pairs(codes, len(axes), radix)
    same = a == b
    return int((sizes[a[same]] * (sizes[a[same]] - 1) // 2).sum() + (sizes[a[~same]] * sizes[b[~same]]).sum())


def planned_axes(sample: np.ndarray, angle: float, rows: int, most: int = MAX_AXES) -> Tuple[np.ndarray, dict]:
    """The axes the search projects on for a table of `rows` directions: of 1..most principal axes of the
    sampled unit directions, the count with the least expected work at the table's size (neighbour cells
    looked up, about rows * 3^k / 2, plus candidate pairs compared, counted on the sample and scaled by
    (rows / sample)^2), and the plan for the report."""
    grow = (rows / max(len(sample), 1)) ** 2
    every = axes_of(sample, min(most, sample.shape[1], max(len(sample) - 1, 1)))
    tried = []
    for k in range(1, len(every) + 1):
        if not fits(k, angle):
            break
        candidates = candidate_count(sample, every[:k], angle) * grow
        tried.append((rows * (3 ** k) / 2 + PAIR_COST * candidates, k, candidates))
    _, k, candidates = min(tried)
    return every[:k], {"axes": k, "expected_candidate_pairs": int(candidates),
                       "tried": {str(t[1]): int(t[2]) for t in tried}}


def pairs_within(x: np.ndarray, angle: float, axes: np.ndarray, batch: int = 1 << 16
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(i, j, degrees, compared): every pair i < j of unit rows whose angle is within `angle` degrees, and how
    many pairs were compared. Rows are compared only within the same or adjacent cells on the axes, which
    every such pair is (any unit projection of two rows differs by at most their chord)."""
    codes, radix = _cells(x, axes, angle)
    order, starts, sizes, a, b = _cell_pairs(codes, len(axes), radix)
    per = np.where(a == b, sizes[a] * (sizes[a] - 1) // 2, sizes[a] * sizes[b])
    limit = math.cos(math.radians(angle))
    found_i, found_j, found_d, compared = [], [], [], 0
    ends = np.cumsum(per)
    at = 0
    while at < len(per):
        stop = max(int(np.searchsorted(ends, ends[at] - per[at] + batch, side="right")), at + 1)
        i, j = _expand(order, starts, sizes, a[at:stop], b[at:stop])
        compared += len(i)
        cosines = np.einsum("ij,ij->i", x[i], x[j])
        keep = cosines >= limit - 1e-6
        d = degrees(cosines[keep])
        near = d <= angle
        lo, hi = np.minimum(i[keep], j[keep])[near], np.maximum(i[keep], j[keep])[near]
        found_i.append(lo)
        found_j.append(hi)
        found_d.append(d[near])
        at = stop
    if not found_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), 0
    return np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d), compared


def _expand(order, starts, sizes, a, b) -> Tuple[np.ndarray, np.ndarray]:
    """The row pairs of cell pairs (a, b): every row of a with every row of b, and within one cell (a == b)
    each unordered pair once."""
    na, nb = sizes[a], sizes[b]
    count = na * nb
    pair = np.repeat(np.arange(len(a)), count)
    within = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    ia, ib = within // nb[pair], within % nb[pair]
    keep = (a[pair] != b[pair]) | (ia < ib)
    pair, ia, ib = pair[keep], ia[keep], ib[keep]
    return order[starts[a[pair]] + ia], order[starts[b[pair]] + ib]
