"""The near-duplicate threshold, calibrated on the table's own hashes. Pure (numpy).

On look-alike data (scans of one modality, video frames, product shots on white) a fixed
threshold finds "near-duplicates" everywhere: random pairs of different images fall within
8 bits by the thousand. So the audit measures how far apart the table's unrelated images
are, and takes the largest threshold at which chance pairs stay rare:

1. A uniform sample of the table's hashes (SAMPLE_ROWS) is compared pair by pair, in two
   strata: pairs of one label (pooled over labels, weighted as the table weights them) and
   pairs of different labels.
2. For each threshold t, the probability that a random pair falls within t bits is
   estimated three ways, and the largest is kept:
   - a beta-binomial over the 64 bits, fitted to the sampled distances' median and
     interquartile range after setting aside each hash's TRIM nearest neighbours (its likely
     copies); the spread beyond a binomial's measures how alike the images are. It reaches
     tails far below what the sample can count.
   - the median sampled hash's share of neighbours within t, after setting aside its TRIM
     nearest: neither copies (a minority of rows) nor groups of up to TRIM versions of one
     image move it.
   - the counted tail (`tail`), where TAIL_COUNT pairs are that close, extended below by the
     fit's shape. Pairs of one label are read off the cross-label tail at the same
     standardised distance (`within_from_across`): pairs of different labels seldom hold
     copies, and the fit alone missed the low tail of look-alike scans a hundredfold. The
     few that do (a copy filed under another class) are set aside first (`set_apart`).
3. Expected chance pairs at the table's size: within each label C(n_label, 2) times its
   probability, plus the cross-label pairs times theirs.
4. The threshold is the largest t <= max whose expected chance pairs stay within one per
   CHANCE_ROWS rows. When no t >= 2 meets that, the hash cannot tell this data apart: the
   audit keeps exact hash matches only (t = 0), and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

HASH_BITS = 64
MAX_THRESHOLD = 8          # the calibrated threshold never exceeds the measured default (docs/near-duplicates.md)
LONG_BITS = 256            # phash256: the second hash (sparkprep.images.phash)
LONG_MAX_THRESHOLD = 16    # its largest threshold: planted copies of the demo's scans are within 12 bits, and
                           # slices of one patient from 20 (a 621-row sample's tail is too thin to see them)
CHANCE_ROWS = 10_000       # at most one expected chance pair per this many rows
SAMPLE_ROWS = 6_000        # hashes the driver compares pair by pair (18 M pairs, about a second)
TRIM = 10                  # each sampled hash's nearest neighbours set aside as likely copies
TAIL_COUNT = 30            # pairs a counted tail needs before it is trusted
TAIL_SPAN = 4              # bits above the counted tail whose slope extrapolates it down


@dataclass(frozen=True)
class PairModel:
    """The distance between two random hashes of one stratum: a beta-binomial over `bits` bits."""

    pairs: int
    mean: float
    variance: float
    bits: int = HASH_BITS

    def cdf(self) -> np.ndarray:
        """P(distance <= t) for t = 0..bits."""
        return np.cumsum(self.pmf())

    def pmf(self) -> np.ndarray:
        n, k = self.bits, np.arange(self.bits + 1)
        p = min(max(self.mean / n, 0.0), 1.0)
        if self.pairs == 0:
            return np.zeros(n + 1)
        if p in (0.0, 1.0) or self.variance <= 0:
            out = np.zeros(n + 1)
            out[int(round(self.mean))] = 1.0
            return out
        choose = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in k])
        binomial_variance = n * p * (1 - p)
        if self.variance <= binomial_variance:
            return np.exp(choose + k * math.log(p) + (n - k) * math.log1p(-p))
        rho = min((self.variance / binomial_variance - 1) / (n - 1), 0.999)
        spread = 1 / rho - 1
        a, b = p * spread, (1 - p) * spread
        log_beta = np.array([math.lgamma(i + a) + math.lgamma(n - i + b) - math.lgamma(n + a + b) for i in k])
        return np.exp(choose + log_beta - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)))


def quantile(histogram: np.ndarray, q: float) -> float:
    """The q-quantile of integer distances counted in `histogram`, each count spread evenly over its
    lattice cell (width 2 when every distance is even, as pHash's are), so quantiles are not stuck on ties."""
    gap = 2 if not histogram[1::2].any() else 1
    cumulative = np.cumsum(histogram) / histogram.sum()
    k = int(np.searchsorted(cumulative, q))
    below = cumulative[k - 1] if k else 0.0
    share = (q - below) / (cumulative[k] - below) if cumulative[k] > below else 0.5
    return k - gap / 2 + gap * share


def fit(histogram: np.ndarray) -> PairModel:
    """The model of a stratum's distances (counts per distance 0..bits), from robust statistics: the
    median and the interquartile range, so that copies (a few percent of pairs, near 0) hardly move it."""
    pairs, bits = int(histogram.sum()), len(histogram) - 1
    if not pairs:
        return PairModel(0, 0.0, 0.0, bits)
    gap = 2 if not histogram[1::2].any() else 1
    sigma = (quantile(histogram, 0.75) - quantile(histogram, 0.25)) / 1.349
    return PairModel(pairs, quantile(histogram, 0.5), max(0.0, sigma ** 2 - gap ** 2 / 12), bits)


@dataclass(frozen=True)
class Calibration:
    """The threshold the audit uses, and the evidence for it (the run report's near_duplicates.calibration)."""

    threshold: int
    fixed: bool                      # --near-threshold N was given: reported, not chosen
    max_threshold: int
    rows: int
    allowed: float                   # chance pairs the bound allows at this size
    expected: Dict[int, float]       # t -> expected chance pairs, t = 0..max
    histogram: Dict[int, int]        # sampled random-pair distances (within and across labels)
    sampled_rows: int
    sampled_pairs: int
    reason: str

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, "how": "fixed by --near-threshold" if self.fixed else "calibrated",
                "max_threshold": self.max_threshold, "rows": self.rows,
                "bound": f"at most 1 expected chance pair per {CHANCE_ROWS:,} rows",
                "allowed_chance_pairs": round(self.allowed, 4),
                "expected_chance_pairs": {str(t): _round(e) for t, e in self.expected.items()},
                "random_pair_distances": {str(d): n for d, n in sorted(self.histogram.items())},
                "sampled_rows": self.sampled_rows, "sampled_pairs": self.sampled_pairs, "reason": self.reason}


def _round(value: float) -> float:
    return float(f"{value:.3g}")


def distances(a: np.ndarray, b: np.ndarray, words: bool = False) -> np.ndarray:
    """Hamming distances between 64-bit hashes (signed or unsigned int64 arrays), elementwise or broadcast;
    words: the last axis holds each hash's 64-bit words (phash256), summed over."""
    counts = np.bitwise_count(np.bitwise_xor(a.astype(np.int64).view(np.uint64), b.astype(np.int64).view(np.uint64)))
    return counts.sum(axis=-1, dtype=np.int64) if words else counts


@dataclass
class _Tally:
    """Sampled pairs of one stratum, as histograms of distance 0..bits (all rows' pairs together) and
    each sampled hash's neighbours within t bits."""

    every: np.ndarray         # each unordered pair once: the report's histogram
    trimmed: np.ndarray       # each hash's pairs without its TRIM nearest (its likely copies): the fit
    near: List[np.ndarray]    # per sampled hash: neighbours within t bits, t = 0..bits
    pairs: List[np.ndarray]   # per sampled hash: its pairs in this stratum
    clean: Optional[np.ndarray] = None  # `every` without the pairs that stand apart as copies (set_apart)

    def probability(self, top: int, model: Optional[np.ndarray] = None) -> np.ndarray:
        """P(a random pair of this stratum is within t bits), t = 0..top: the larger of the fit and the count.

        Both are robust to copies: the fit leaves out each hash's TRIM nearest neighbours and
        uses the median and quartiles; the count is the median hash's share of neighbours
        within t beyond its TRIM nearest (copies are a minority of rows). model: the cdf to use
        instead of the fit (calibrate's).
        """
        model = (fit(self.trimmed).cdf() if model is None else model)[:top + 1]
        if not self.near:  # nothing was sampled: a table without hashes
            return model
        near, pairs = np.concatenate(self.near), np.concatenate(self.pairs)
        some = pairs > TRIM
        if not some.any():
            return model
        rates = np.maximum(near[some, :top + 1] - TRIM, 0) / (pairs[some, None] - TRIM)
        return np.maximum(model, np.median(rates, axis=0))


def tail(histogram: np.ndarray, t: float, model: Optional[np.ndarray] = None) -> float:
    """P(distance <= t) from counted pairs, where at least TAIL_COUNT pairs are that close; below
    that, the fitted model's shape (or `model`, a cdf) anchored to the counted tail (the model sets how
    fast the tail falls, the pairs set its level). 0 when too few pairs exist."""
    total, bits = histogram.sum(), len(histogram) - 1
    if total < TAIL_COUNT:
        return 0.0
    cumulative = np.cumsum(histogram)
    counted = int(np.argmax(cumulative >= TAIL_COUNT))  # the first distance with enough pairs
    if t >= counted:
        return float(cumulative[int(math.floor(min(t, bits)))] / total)
    shape = fit(histogram).cdf() if model is None else model
    below = np.interp(t, np.arange(bits + 1), shape)
    return float(cumulative[counted] / total * below / shape[counted]) if shape[counted] > 0 else 0.0


def within_from_across(within: _Tally, across: _Tally, top: int, model: Optional[np.ndarray] = None) -> np.ndarray:
    """P(a pair of one label is within t bits), read off the pairs of different labels.

    Pairs of different labels seldom hold copies, so their counted tail is clean; pairs of one
    label are closer on look-alike data. Reading the cross-label tail at the same standardised
    distance (median and interquartile range of each) gives the within-label chance rate
    without counting one copy as chance (the fit alone underestimated the tails of look-alike
    scans a hundredfold).
    """
    if not across.clean.sum() or not within.trimmed.sum():
        return np.zeros(top + 1)

    def centre_and_spread(histogram: np.ndarray):
        return quantile(histogram, 0.5), quantile(histogram, 0.75) - quantile(histogram, 0.25)

    (centre_w, spread_w), (centre_x, spread_x) = centre_and_spread(within.trimmed), centre_and_spread(across.clean)
    if centre_w >= centre_x or spread_w <= 0:
        return np.zeros(top + 1)  # one label's pairs are no closer than other labels': nothing to shift
    # the same standardised distance in the cross-label distribution
    return np.array([tail(across.clean, centre_x + (t - centre_w) * spread_x / spread_w, model)
                     for t in range(top + 1)])


Distance = Callable[[np.ndarray], np.ndarray]  # sampled rows -> (rows, sample) distances to every sampled row


def tallies(hashes: np.ndarray, labels: np.ndarray, chunk: int = 512, distance: Optional[Distance] = None):
    """(same label, different labels): the tallies over every pair of the sample (hashes: 64-bit values,
    or rows of 64-bit words); distance: how far the sampled rows are from each other, when not the hashes'
    Hamming distance (sparkprep.audit.crops: the crop distance, from each row's window hashes too)."""
    words = hashes.ndim == 2
    bins = (HASH_BITS * hashes.shape[1] if words else HASH_BITS) + 1
    chunk = chunk // hashes.shape[1] if words else chunk
    labels = np.unique(labels, return_inverse=True)[1].ravel()  # codes: comparing strings costs 3x the block
    same_label, other_label = (_Tally(np.zeros(bins, np.int64), np.zeros(bins, np.int64), [], []) for _ in range(2))
    columns = np.arange(len(hashes))
    nearest, first, second = (np.zeros(len(hashes), np.int64) for _ in range(3))
    for start in range(0, len(hashes), chunk):
        rows = columns[start:start + chunk]
        block = (distance(rows) if distance is not None else distances(hashes[rows, None], hashes[None, :], words)
                 ).astype(np.int64)
        same = (labels[rows, None] == labels[None, :]) & (rows[:, None] != columns[None, :])
        upper = columns[None, :] > rows[:, None]
        offsets = bins * np.arange(len(rows))[:, None]
        for tally, mask in ((same_label, same), (other_label, labels[rows, None] != labels[None, :])):
            tally.every += np.bincount(block[mask & upper], minlength=bins)
            # each row's histogram in one bincount (pairs outside the stratum land in a last, dropped bin)
            per_row = np.bincount(np.where(mask, block + offsets, bins * len(rows)).ravel(),
                                  minlength=bins * len(rows) + 1)[:-1].reshape(len(rows), bins)
            near = np.cumsum(per_row, axis=1)
            tally.trimmed += np.diff(np.maximum(near - TRIM, 0), axis=1, prepend=0).sum(axis=0)
            tally.near.append(near)
            tally.pairs.append(near[:, -1])
        if len(hashes) > 1:  # each row's nearest and next-nearest hash of another label
            other = np.where(labels[rows, None] != labels[None, :], block, bins)
            nearest[rows] = np.argmin(other, axis=1)
            two = np.partition(other, 1, axis=1)[:, :2]
            first[rows], second[rows] = two[:, 0], two[:, 1]
    other_label.clean = other_label.every - set_apart(nearest, first, second, bins)
    same_label.clean = same_label.every
    return same_label, other_label


COPY_GAP = 3  # a pair stands apart as a copy when its distance is under a third of either row's next-nearest


def set_apart(nearest: np.ndarray, first: np.ndarray, second: np.ndarray, bins: int) -> np.ndarray:
    """The distances of the pairs of different labels that stand apart as copies, as a histogram: each row
    is the other's nearest, and their distance is under 1/COPY_GAP of either row's next-nearest.

    The cross-label tail is read as chance (pairs of different labels seldom hold copies), but a copy
    filed under another class is one: 42 such pairs among 5,131 demo scans (2.5% planted, a third
    filed elsewhere) made the tail say that even phash256 cannot tell the scans apart. Chance pairs
    in the tail are not that isolated: their rows have other neighbours nearly as close.
    """
    n = len(nearest)
    if n < 3:
        return np.zeros(bins, np.int64)
    rows = np.arange(n)
    mutual = (nearest[nearest] == rows) & (rows < nearest) & (first < bins)
    isolated = mutual & (COPY_GAP * first < np.minimum(second, second[nearest]))
    return np.bincount(first[isolated], minlength=bins)[:bins]


def calibrate(hashes: Sequence, labels: Sequence[Optional[str]], rows_per_label: Dict[str, int],
              max_threshold: int = MAX_THRESHOLD, fixed: Optional[int] = None, floor: int = 2,
              distance: Optional[Distance] = None, signature: str = "the hash",
              at_zero: str = "only exact hash matches count", model: Optional[np.ndarray] = None) -> Calibration:
    """The threshold for a table of rows_per_label rows per label, from a uniform sample of its hashes.

    hashes/labels: the sampled rows (64-bit hashes, or phash256's lists of words); rows_per_label:
    the table's counts (a null label is a label of its own). fixed: --near-threshold, reported as
    given. floor: the least threshold that tells images apart (below it, exact matches only).
    distance: the sampled rows' distances when not their hashes' (tallies); model: the cdf of a random
    pair's distance (0..bits) to use instead of the beta-binomial fitted to each stratum, where that fit
    does not describe the distance; signature and at_zero: what the reason calls what is calibrated, and
    what a threshold of 0 means for it.
    """
    top = max(max_threshold, fixed or 0)
    h = np.asarray(list(hashes), dtype=np.int64)
    lab = np.asarray(["" if x is None else str(x) for x in labels], dtype=object)
    n = round(sum(rows_per_label.values()))
    same_label, other_label = tallies(h, lab, distance=distance)
    pairs_within = sum(v * (v - 1) / 2 for v in rows_per_label.values())
    across = np.maximum(other_label.probability(top, model),
                        [tail(other_label.clean, t, model) for t in range(top + 1)])
    within = np.maximum(same_label.probability(top, model), within_from_across(same_label, other_label, top, model))
    expected = pairs_within * within + (n * (n - 1) / 2 - pairs_within) * across
    allowed = n / CHANCE_ROWS
    every = same_label.every + other_label.every
    histogram = {d: int(c) for d, c in enumerate(every) if c}
    meets = [t for t in range(max_threshold + 1) if expected[t] <= allowed]
    if fixed is not None:
        threshold = fixed
        reason = (f"fixed by --near-threshold {fixed}: {_round(expected[fixed])} chance pairs expected "
                  f"({_round(allowed)} allowed at {n:,} rows)")
    elif meets and max(meets) >= floor:
        threshold = max(meets)
        worse = f"; {threshold + 1} bits would expect {_round(expected[threshold + 1])}" if threshold < max_threshold \
            else f", the most the audit uses ({max_threshold})"
        reason = (f"the largest threshold whose expected chance pairs ({_round(expected[threshold])}) stay within "
                  f"{_round(allowed)} at {n:,} rows{worse}")
    else:
        threshold = 0
        reason = (f"{signature} cannot tell this data apart: even {floor} bits would expect {_round(expected[floor])} "
                  f"chance pairs at {n:,} rows ({_round(allowed)} allowed), so {at_zero}")
        if expected[0] > allowed:
            reason += f", and even of those {_round(expected[0])} are expected by chance"
    return Calibration(threshold, fixed is not None, max_threshold, n, allowed,
                       {t: float(expected[t]) for t in range(top + 1)}, histogram, len(h), int(every.sum()), reason)
