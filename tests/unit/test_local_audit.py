"""The driver-side audit (sparkprep.audit.local) against brute force, with the second hash: every row pair the
rule keeps (64-bit hash within the threshold and, where the rule checks it, phash256 within its own) is counted,
and no other."""

import itertools
import random

import numpy as np

from sparkprep.audit import calibrate as cal
from sparkprep.audit.local import HashedRow, audit
from sparkprep.images.phash import words_to_int


def _rows(seed, confirmable=True):
    """Scans-like rows: 64-bit hashes of a few look-alike prototypes (the 64-bit hash cannot tell them apart),
    256-bit hashes far apart (or look-alike too), and planted copies a few bits off in both."""
    rng = np.random.default_rng(seed)
    py = random.Random(seed)
    rows = []

    def add(h64, h256, label):
        n = len(rows)
        rows.append(HashedRow(f"k{n}", py.choice(["train", "val", "test"]), label, f"/d/{n:04d}.jpg",
                              int(np.packbits(h64).view(">i8")[0]), py.getrandbits(63),
                              np.packbits(h256).view(">i8").astype(np.int64).tolist()))

    for label in ("a", "b", "c"):
        proto64, proto256 = rng.integers(0, 2, 64, dtype=np.uint8), rng.integers(0, 2, 256, dtype=np.uint8)
        for _ in range(200):
            h64 = proto64 ^ (rng.random(64) < 0.03).astype(np.uint8)
            h256 = proto256 ^ (rng.random(256) < (0.2 if confirmable else 0.004)).astype(np.uint8)
            add(h64, h256, label)
            if rng.random() < 0.05:  # a planted copy: 0-2 bits off in the 64-bit hash, 0-10 in phash256
                flip64 = np.zeros(64, np.uint8)
                flip64[rng.choice(64, rng.integers(0, 2), replace=False)] = 1
                flip256 = np.zeros(256, np.uint8)
                flip256[rng.choice(256, rng.integers(0, 6), replace=False)] = 1
                add(h64 ^ flip64, h256 ^ flip256, label)
    return rows


def _brute(rows, threshold, long_threshold, splits):
    counts = {f"{a}|{b}": 0 for i, a in enumerate(splits) for b in splits[i:]}
    for r, s in itertools.combinations(rows, 2):
        near = bin((r.phash ^ s.phash) & (2 ** 64 - 1)).count("1") <= threshold and (
            long_threshold is None or bin(words_to_int(r.phash256) ^ words_to_int(s.phash256)).count("1")
            <= long_threshold)
        if near:
            a, b = sorted((r.split, s.split))
            counts[f"{a}|{b}"] += 1
    return counts


def test_the_rule_with_phash256_counts_exactly_the_pairs_brute_force_finds():
    for seed in range(3):
        rows = _rows(seed)
        splits = ["test", "train", "val"]
        done = audit(rows, None, 500, True, 10 ** 6, splits)
        second = done.stats["second_hash"]
        assert done.stats["calibration"]["threshold"] == 0 and second["used"]
        assert done.stats["threshold"] == cal.CANDIDATE_BITS
        assert done.stats["pairs_by_split_pair"] == _brute(rows, cal.CANDIDATE_BITS, second["threshold"], splits)
        assert 0 < done.stats["pairs_within_splits"] + done.stats["pairs_across_splits"] < 60  # the copies, not chains
        assert all("distance256" in e for e in done.stats["examples"])


def test_where_phash256_cannot_tell_rows_apart_either_only_exact_64_bit_matches_count():
    rows = _rows(7, confirmable=False)
    splits = ["test", "train", "val"]
    done = audit(rows, None, 500, True, 10 ** 6, splits)
    assert done.stats["threshold"] == 0 and not done.stats["second_hash"]["used"]
    assert done.stats["pairs_by_split_pair"] == _brute(rows, 0, None, splits)
    fixed = audit(rows, 6, 500, True, 10 ** 6, splits)  # --near-threshold 6: the 64-bit hash alone
    assert fixed.stats["second_hash"] is None and fixed.stats["pairs_by_split_pair"] == _brute(rows, 6, None, splits)
