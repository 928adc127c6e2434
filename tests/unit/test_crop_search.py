"""The crop search (sparkprep.audit.crops): every whole-to-window match within the guarantee is found."""

import math
import random

import numpy as np
import pytest

from sparkprep.audit.bands import layout_for
from sparkprep.audit.crops import CROP_SAMPLE_ROWS, crop_calibration, crop_distances, crop_matches
from sparkprep.images.phash import WINDOW_COUNT


def flipped(rng, value, bits):
    for bit in rng.sample(range(64), bits):
        value ^= 1 << bit
    return value - (1 << 64) if value >= 1 << 63 else value


def brute_force(wholes, windows, threshold):
    return sorted((i, j, w, bin((int(wholes[i]) ^ int(windows[j][w])) & (2 ** 64 - 1)).count("1"))
                  for i in range(len(wholes)) for j in range(len(windows)) for w in range(len(windows[j]))
                  if i != j and bin((int(wholes[i]) ^ int(windows[j][w])) & (2 ** 64 - 1)).count("1") <= threshold)


def planted(rng, n, threshold, crops):
    """n random images; `crops` of them are crops of another: one window of the original within threshold bits."""
    wholes = [rng.getrandbits(64) - (1 << 63) for _ in range(n)]
    windows = [[rng.getrandbits(64) - (1 << 63) for _ in range(WINDOW_COUNT)] for _ in range(n)]
    for _ in range(crops):
        copy, original = rng.sample(range(n), 2)
        windows[original][rng.randrange(WINDOW_COUNT)] = flipped(rng, wholes[copy] & (2 ** 64 - 1),
                                                                  rng.randint(0, threshold))
    return np.array(wholes, np.int64), np.array(windows, np.int64)


@pytest.mark.parametrize("threshold", [0, 3, 6, 8, 10])
def test_every_whole_to_window_match_within_the_guarantee_is_found_and_nothing_else(threshold):
    rng = random.Random(29 + threshold)
    wholes, windows = planted(rng, 300, threshold, 60)
    band = layout_for(threshold, 300)
    assert band.guarantee == threshold
    found = crop_matches(wholes, windows, band, threshold, cap=10_000)
    got = sorted(zip(*(a.tolist() for a in (found.whole, found.other, found.window, found.distance))))
    assert got == brute_force(wholes, windows, threshold)
    assert len(got) >= 60 and found.crowded_keys == 0


def test_an_images_own_windows_never_match_its_whole():
    wholes = np.array([5, -1], np.int64)  # -1: all 64 bits set, far from every window
    windows = np.array([[5] * WINDOW_COUNT, [7] * WINDOW_COUNT], np.int64)  # image 0's windows equal its whole
    found = crop_matches(wholes, windows, layout_for(4, 2), 4, cap=100)
    assert list(zip(found.whole.tolist(), found.other.tolist())) == [(0, 1)] * WINDOW_COUNT  # 5 vs 7: 1 bit


def test_a_key_value_shared_by_more_windows_than_the_cap_is_counted_not_joined():
    flat = np.zeros((30, WINDOW_COUNT), np.int64)  # 30 flat images: every window the same hash
    found = crop_matches(np.zeros(30, np.int64), flat, layout_for(2, 30), 2, cap=100)
    assert len(found.whole) == 0 and found.crowded_keys == len(layout_for(2, 30).combos)
    assert len(crop_matches(np.zeros(30, np.int64), flat, layout_for(2, 30), 2, cap=1000).whole) == 30 * 29 * 16


def test_no_images_no_matches():
    found = crop_matches(np.zeros(0, np.int64), np.zeros((0, WINDOW_COUNT), np.int64), layout_for(8), 8, 500)
    assert len(found.whole) == 0


def test_the_crop_threshold_is_the_largest_where_chance_matches_stay_rare_on_distinct_images():
    rng = np.random.default_rng(7)
    wholes = rng.integers(-2 ** 63, 2 ** 63 - 1, 2500, dtype=np.int64)
    windows = rng.integers(-2 ** 63, 2 ** 63 - 1, (2500, WINDOW_COUNT), dtype=np.int64)
    small = crop_calibration(wholes, windows, [None] * 2500, {None: 2500})
    assert small.threshold == 8  # the most the audit uses: uniform hashes stay apart
    assert small.sampled_rows == CROP_SAMPLE_ROWS  # the sample's first rows only: 32 comparisons a pair
    large = crop_calibration(wholes, windows, [None] * 2500, {None: 100_000})
    assert large.expected[large.threshold] <= large.allowed < large.expected[large.threshold + 1]
    # chance crop matches of uniform hashes: 2 W + 1 comparisons a pair, each binomial; the model says as much
    pairs = 100_000 * 99_999 / 2
    truth = (2 * WINDOW_COUNT + 1) * sum(math.comb(64, k) for k in range(9)) / 2 ** 64 * pairs
    assert 0.8 < large.expected[8] / truth < 1.5
    assert crop_calibration(wholes, windows, [None] * 2500, {None: 2500}, fixed=5).threshold == 5


def test_look_alike_windows_turn_the_crop_search_off():
    # windows that differ from other images' wholes by a few bits, as on scans of one modality
    rng = random.Random(3)
    base = rng.getrandbits(64)
    wholes = np.array([flipped(rng, base, 12) for _ in range(800)], np.int64)
    windows = np.array([[flipped(rng, base, rng.randint(0, 3)) for _ in range(WINDOW_COUNT)] for _ in range(800)],
                       np.int64)
    calibration = crop_calibration(wholes, windows, [None] * 800, {None: 800})
    assert calibration.threshold == 0
    assert calibration.reason.startswith("the window hashes cannot tell this data apart")
    assert "crop matches are not searched" in calibration.reason


def test_the_crop_distance_is_the_least_of_whole_to_whole_and_whole_to_window_either_way():
    wholes = np.array([0b0000, 0b1111, -1], np.int64)
    windows = np.array([[0b0111] * WINDOW_COUNT, [-1] * WINDOW_COUNT, [0b1110] + [0] * (WINDOW_COUNT - 1)], np.int64)
    d = crop_distances(wholes, windows, chunk=2).distances  # two chunks: the transpose joins them
    assert d[0, 1] == d[1, 0] == 1  # the whole of 1 (1111) against a window of 0 (0111)
    assert d[0, 2] == 0  # the whole of 0 equals a window of 2
    assert d[1, 2] == d[2, 1] == 0  # the whole of 2 (all ones) equals every window of 1
