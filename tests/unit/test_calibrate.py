"""The calibrated near-duplicate threshold (sparkprep.audit.calibrate), on synthetic hash
distributions whose chance-pair rates are known exactly."""

import math

import numpy as np
import pytest

from sparkprep.audit import calibrate as cal
from sparkprep.audit.rule import CANDIDATE_BITS, near_rule


def binomial_cdf(n, p, t):
    return sum(math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(t + 1))


def look_alike(rng, labels, per_label, flip):
    """Each label's hashes: one prototype with every bit flipped independently with probability `flip`.
    Two hashes of one label then differ in Binomial(64, 2 flip (1 - flip)) bits."""
    hashes, names = [], []
    for label in range(labels):
        prototype = rng.integers(0, 2, 64, dtype=np.uint8)
        bits = prototype ^ (rng.random((per_label, 64)) < flip).astype(np.uint8)
        hashes += [int(np.packbits(b).view(">i8")[0]) for b in bits]
        names += [str(label)] * per_label
    return hashes, names


def chance_pairs(rows_per_label, within_p, across_p, t):
    """The true expected pairs within t bits of a table of independent look-alike hashes."""
    within = sum(n * (n - 1) / 2 for n in rows_per_label.values())
    total = sum(rows_per_label.values())
    return within * binomial_cdf(64, within_p, t) + (total * (total - 1) / 2 - within) * binomial_cdf(64, across_p, t)


def test_uniform_hashes_get_the_threshold_the_binomial_gives():
    rng = np.random.default_rng(1)
    hashes = rng.integers(-2 ** 63, 2 ** 63 - 1, 4000, dtype=np.int64).tolist()
    labels = ["a", "b"] * 2000
    small = cal.calibrate(hashes[:300], labels[:300], {"a": 150, "b": 150})
    assert small.threshold == 8 and small.expected[8] < small.allowed
    huge = cal.calibrate(hashes, labels, {"a": 500_000, "b": 500_000})
    exact = 1_000_000 * 999_999 / 2 * binomial_cdf(64, 0.5, 8)  # 145 pairs within 8 bits by chance
    assert exact / 1.5 < huge.expected[8] < exact * 1.5
    assert huge.threshold == 7 and "8 bits would expect" in huge.reason  # pHash distances are even: 6 in effect


@pytest.mark.parametrize("flip,rows", [(0.05, 2_000), (0.1, 5_000), (0.15, 50_000), (0.25, 20_000)])
def test_look_alike_hashes_get_a_threshold_near_the_true_bound(flip, rows):
    rng = np.random.default_rng(int(flip * 100) + rows)
    per_label = min(rows // 4, 1500)
    hashes, names = look_alike(rng, 4, per_label, flip)
    counts = {str(i): rows // 4 for i in range(4)}
    found = cal.calibrate(hashes, names, counts)
    within_p = 2 * flip * (1 - flip)
    truth = [chance_pairs(counts, within_p, 0.5, t) for t in range(cal.MAX_THRESHOLD + 1)]
    allowed = rows / cal.CHANCE_ROWS
    # never more chance pairs than the bound allows (a factor of 2 for the sample's noise) ...
    if found.threshold:
        assert truth[found.threshold] <= 2 * allowed, (found.threshold, truth)
    # ... and not needlessly strict: one bit more would truly break the bound by a margin
    best = max([t for t in range(cal.MAX_THRESHOLD + 1) if truth[t] <= allowed] or [0])
    assert found.threshold >= min(best, cal.MAX_THRESHOLD) - 2, (found.threshold, best, truth)
    for t in range(cal.MAX_THRESHOLD + 1):  # it errs high, never far low, where the truth is countable
        if truth[t] > 1:
            assert found.expected[t] > truth[t] / 3, (t, found.expected[t], truth[t])


def test_planted_copies_do_not_pull_the_threshold_down():
    rng = np.random.default_rng(7)
    originals = rng.integers(-2 ** 63, 2 ** 63 - 1, 2000, dtype=np.int64)
    copies = []
    for h in originals[:100]:  # 100 copies, each 2 bits from its original, and 10 versions of one image
        copies.append(int(h) ^ (1 << int(rng.integers(0, 60))) ^ (1 << 62))
    copies += [int(originals[0]) ^ (1 << i) for i in range(10)]
    hashes = originals.tolist() + copies
    found = cal.calibrate(hashes, ["x"] * len(hashes), {"x": len(hashes)})
    assert found.threshold == 8, found.reason


def test_hashes_that_cannot_tell_images_apart_keep_exact_matches_only():
    rng = np.random.default_rng(3)
    hashes, names = look_alike(rng, 2, 500, 0.02)  # scans of one modality: ~2.5 bits apart on average
    found = cal.calibrate(hashes, names, {"0": 500, "1": 500})
    assert found.threshold == 0 and "cannot tell this data apart" in found.reason
    flat = cal.calibrate([5] * 50, ["a"] * 50, {"a": 50})  # one hash: every pair is distance 0
    assert flat.threshold == 0


def test_a_fixed_threshold_is_reported_with_its_expected_chance_pairs():
    rng = np.random.default_rng(4)
    hashes, names = look_alike(rng, 3, 400, 0.1)
    found = cal.calibrate(hashes, names, {"0": 400, "1": 400, "2": 400}, fixed=10)
    assert found.threshold == 10 and found.fixed and set(found.expected) == set(range(11))
    recorded = found.to_dict()
    assert recorded["how"] == "fixed by --near-threshold" and recorded["reason"].startswith("fixed by --near-threshold 10")
    assert sum(recorded["random_pair_distances"].values()) == recorded["sampled_pairs"] == 1200 * 1199 // 2


def test_the_model_is_a_distribution_and_widens_with_the_variance():
    narrow = cal.PairModel(1000, 32.0, 16.0).pmf()
    wide = cal.PairModel(1000, 32.0, 100.0).pmf()
    assert abs(narrow.sum() - 1) < 1e-9 and abs(wide.sum() - 1) < 1e-9
    assert abs((np.arange(65) * wide).sum() - 32) < 1e-6
    assert wide[:9].sum() > 100 * narrow[:9].sum()
    assert cal.PairModel(10, 0.0, 0.0).cdf()[0] == 1.0


def test_a_table_without_hashes_calibrates_to_the_maximum_with_nothing_expected():
    found = cal.calibrate([], [], {})  # WFDB records, tabular samples: nothing is hashed
    assert found.threshold == cal.MAX_THRESHOLD and found.sampled_pairs == 0 and max(found.expected.values()) == 0


def long_look_alike(rng, labels, per_label, flip):
    """look_alike over 256 bits: each hash as phash256's 4 signed words."""
    out = []
    for _ in range(labels):
        prototype = rng.integers(0, 2, 256, dtype=np.uint8)
        bits = prototype ^ (rng.random((per_label, 256)) < flip).astype(np.uint8)
        out += [np.packbits(b).view(">i8").astype(np.int64).tolist() for b in bits]
    return out


@pytest.mark.parametrize("flip,rows", [(0.05, 2_000), (0.1, 20_000)])
def test_where_the_64_bit_hash_cannot_tell_rows_apart_phash256_gets_a_threshold_within_the_bound(flip, rows):
    rng = np.random.default_rng(rows)
    per_label = min(rows // 4, 1500)
    hashes, names = look_alike(rng, 4, per_label, flip)
    counts = {str(i): rows // 4 for i in range(4)}
    longs = long_look_alike(rng, 4, per_label, 0.2)  # 256 bits apart by Binomial(256, 0.32): about 82
    rule = near_rule(hashes, longs, names, counts)
    assert rule.calibration.threshold == 0 and rule.confirmed and rule.threshold == CANDIDATE_BITS
    within_p = 2 * 0.2 * 0.8
    within = sum(n * (n - 1) / 2 for n in counts.values())  # pairs of other labels are far further apart
    truth = [within * binomial_cdf(256, within_p, t) for t in range(cal.LONG_MAX_THRESHOLD + 1)]
    assert truth[rule.long_threshold] <= rows / cal.CHANCE_ROWS  # the 256-bit rule keeps to the bound
    assert rule.long_threshold == cal.LONG_MAX_THRESHOLD  # and these hashes allow the most it uses
    assert rule.second_hash()["used"] and "phash256 is within 16 bits" in rule.second_hash()["rule"]


def test_phash256_is_not_used_where_it_cannot_tell_rows_apart_either_nor_with_a_fixed_threshold():
    rng = np.random.default_rng(5)
    hashes, names = look_alike(rng, 4, 500, 0.05)
    counts = {str(i): 500 for i in range(4)}
    alike = long_look_alike(rng, 4, 500, 0.005)  # about 2.5 bits apart in 256: no threshold of 8 or more is safe
    rule = near_rule(hashes, alike, names, counts)
    assert not rule.confirmed and rule.threshold == 0 and rule.long_calibration.threshold == 0
    assert not rule.second_hash()["used"] and "cannot tell" in rule.long_calibration.reason
    distinct = long_look_alike(rng, 4, 500, 0.2)
    assert not near_rule(hashes, distinct, names, counts, fixed=6).confirmed  # --near-threshold: 64-bit only
    assert near_rule(hashes, distinct, names, counts, fixed=6).second_hash() is None
    assert not near_rule(hashes, distinct[:-1] + [None], names, counts).confirmed  # a table from before phash256
    photos = rng.integers(-2 ** 63, 2 ** 63 - 1, 2000, dtype=np.int64).tolist()  # distinct images: 64 bits suffice
    assert near_rule(photos, distinct, names, counts).long_calibration is None


def test_copies_filed_under_another_class_are_not_read_as_chance_pairs(monkeypatch):
    rng = np.random.default_rng(11)
    hashes, names = look_alike(rng, 4, 600, 0.05)
    longs = long_look_alike(rng, 4, 600, 0.2)
    counts = {str(i): 600 for i in range(4)}
    clean = near_rule(hashes, longs, names, counts)
    assert clean.confirmed and clean.long_threshold == cal.LONG_MAX_THRESHOLD
    for i in range(0, 2400, 40):  # 60 copies, a few bits off their original, each filed under the next class
        copy = list(longs[i])
        copy[0] ^= 0b101
        longs.append(copy)
        hashes.append(hashes[i])
        names.append(str((int(names[i]) + 1) % 4))
    counts = {str(i): 615 for i in range(4)}
    with_copies = near_rule(hashes, longs, names, counts)
    assert with_copies.confirmed and with_copies.long_threshold == cal.LONG_MAX_THRESHOLD
    # without setting them apart the 60 close cross-label pairs read as a chance rate no threshold meets
    monkeypatch.setattr(cal, "set_apart", lambda nearest, first, second, bins: np.zeros(bins, np.int64))
    assert not near_rule(hashes, longs, names, counts).confirmed
    monkeypatch.undo()
    nearest = np.zeros(3, np.int64)
    assert not cal.set_apart(nearest, nearest, nearest, 10).any()  # too few rows: nothing set apart
