"""The driver-side audit (sparkprep.audit.local) against brute force, with the second hash: every row pair the
rule keeps (64-bit hash within the threshold and, where the rule checks it, phash256 within its own) is counted,
and no other."""

import itertools
import random
from dataclasses import astuple

import numpy as np

from sparkprep.audit import angles
from sparkprep.audit.rule import CANDIDATE_BITS
from sparkprep.audit.local import HashedRow, audit, calibration_sample, rule_of
from sparkprep.images.phash import words_to_int

SPLITS = ["test", "train", "val"]


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


def _per_split_pair(pairs, splits):
    """Row pairs (r, s) counted per split pair, as the audit's pairs_by_split_pair."""
    counts = {f"{a}|{b}": 0 for i, a in enumerate(splits) for b in splits[i:]}
    for r, s in pairs:
        a, b = sorted((r.split, s.split))
        counts[f"{a}|{b}"] += 1
    return counts


def _brute(rows, threshold, long_threshold, splits):
    return _per_split_pair(((r, s) for r, s in itertools.combinations(rows, 2)
                            if bin((r.phash ^ s.phash) & (2 ** 64 - 1)).count("1") <= threshold and (
                                long_threshold is None or
                                bin(words_to_int(r.phash256) ^ words_to_int(s.phash256)).count("1") <= long_threshold)),
                           splits)


def test_the_rule_with_phash256_counts_exactly_the_pairs_brute_force_finds():
    for seed in range(3):
        rows = _rows(seed)
        done = audit(rows, None, 500, True, 10 ** 6, SPLITS)
        second = done.stats["second_hash"]
        assert done.stats["calibration"]["threshold"] == 0 and second["used"]
        assert done.stats["threshold"] == CANDIDATE_BITS
        assert done.stats["pairs_by_split_pair"] == _brute(rows, CANDIDATE_BITS, second["threshold"], SPLITS)
        assert 0 < done.stats["pairs_within_splits"] + done.stats["pairs_across_splits"] < 60  # the copies, not chains
        assert all("distance256" in e for e in done.stats["examples"])


def test_where_phash256_cannot_tell_rows_apart_either_only_exact_64_bit_matches_count():
    rows = _rows(7, confirmable=False)
    done = audit(rows, None, 500, True, 10 ** 6, SPLITS)
    assert done.stats["threshold"] == 0 and not done.stats["second_hash"]["used"]
    assert done.stats["pairs_by_split_pair"] == _brute(rows, 0, None, SPLITS)
    fixed = audit(rows, 6, 500, True, 10 ** 6, SPLITS)  # --near-threshold 6: the 64-bit hash alone
    assert fixed.stats["second_hash"] is None and fixed.stats["pairs_by_split_pair"] == _brute(rows, 6, None, SPLITS)


def _scans_with_directions(seed):
    """Rows whose 64-bit hashes cannot tell them apart, whose DCT directions can: per label a prototype with
    each scan some 12 degrees from the next, planted copies well under a degree from their original, and
    exact copies."""
    rng = np.random.default_rng(seed)
    rows = _rows(seed, confirmable=False)
    protos = {label: rng.normal(size=255) for label in ("a", "b", "c")}
    directions, last = [], None
    for r in rows:
        if last is not None and r.label == last[0] and rng.random() < 0.05:
            vector = last[1] + rng.normal(size=255) * 0.004 * np.linalg.norm(last[1]) / 16  # a copy
        else:
            vector = protos[r.label] + rng.normal(size=255) * 0.15 * np.linalg.norm(protos[r.label]) / 16
        if rng.random() < 0.02 and last is not None:
            vector = last[1]  # the same image twice
        last = (r.label, vector)
        directions.append(np.round(vector / np.linalg.norm(vector) * 32767).astype(np.int16))
    return [HashedRow(*astuple(r)[:7], d) for r, d in zip(rows, directions)]


def _brute_angle(rows, angle, splits):
    x = angles.unit(np.stack([r.direction for r in rows]))
    near = np.triu(angles.degrees(x @ x.T) <= angle, 1)
    return _per_split_pair(((rows[i], rows[j]) for i, j in zip(*np.nonzero(near))), splits)


def test_the_rule_with_the_angle_counts_exactly_the_pairs_brute_force_finds():
    for seed in range(2):
        rows = _scans_with_directions(seed)
        done = audit(rows, None, 500, True, 10 ** 6, SPLITS)
        angle = done.stats["angle"]
        assert done.stats["calibration"]["threshold"] == 0 and angle["used"] and angle["threshold_degrees"] >= 0.5
        assert done.stats["pairs_by_split_pair"] == _brute_angle(rows, angle["threshold_degrees"], SPLITS)
        assert 10 < done.stats["pairs_within_splits"] + done.stats["pairs_across_splits"] < 60  # copies, not chains
        assert done.stats["clusters"]["largest"] <= 4
        assert all("angle" in e and e["angle"] <= angle["threshold_degrees"] for e in done.stats["examples"])
        assert angle["compared_pairs"] < len(rows) * (len(rows) - 1) // 2
    without = [HashedRow(*r[:7]) for r in (astuple(r) for r in rows)]  # a table written before the directions
    assert not audit(without, None, 500, True, 10 ** 6, SPLITS).stats["angle"]["used"]


def test_under_the_angle_rows_without_a_direction_match_only_each_other_by_hash():
    rows = _scans_with_directions(3)
    first = astuple(rows[0])
    # two rows of the first one's hash without a direction (a table of mixed ages)
    mixed = rows + [HashedRow(*first[:5], 12345, first[6]), HashedRow(*first[:5], 54321, first[6])]
    assert not audit(mixed, None, 500, True, 10 ** 6, SPLITS).stats["angle"]["used"]  # sampled: the angle is off
    # a table too large for every row to be sampled can still hold one (the rule comes from the sample)
    rule = rule_of(calibration_sample(rows), len(mixed), None)
    done = audit(mixed, None, 500, True, 10 ** 6, SPLITS, rule=rule)
    assert done.stats["angle"]["used"]
    expected = _brute_angle(rows, rule.angle, SPLITS)
    expected[f"{first[1]}|{first[1]}"] += 1  # the two match each other (one node), not the first row or others
    assert done.stats["pairs_by_split_pair"] == expected


def _photo_rows():
    """Real photos in train and, in test, a copy of two of them cut to a corner or trimmed on one side (23% and
    20% of the area gone): crop pairs that today's pHash misses (its whole hashes are 10-25 bits apart)."""
    from images import jpeg, photo

    from sparkprep.images.phash import phashes_of_bytes, windows_of_bytes

    rows = []

    def add(image, split, name):
        data = jpeg(image)
        whole, long, direction = phashes_of_bytes(data)
        rows.append(HashedRow(name, split, None, f"/d/{name}.jpg", whole, len(rows), long, direction.tolist(),
                              windows_of_bytes(data)))

    names = ("astronaut", "camera", "chelsea", "coffee", "coins", "moon", "page", "rocket", "text", "brick")
    for name in names:
        add(photo(name).convert("RGB"), "train", name)
    for name, box in (("coffee", (0, 0, 0.88, 0.88)), ("rocket", (0.2, 0, 1, 1))):
        image = photo(name).convert("RGB")
        w, h = image.size
        add(image.crop((round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h))), "test",
            f"{name}-copy")
    return rows


def test_crop_pairs_join_the_pairs_examples_and_clusters_only_with_the_crop_search():
    rows = _photo_rows()
    plain = audit(rows, None, 500, True, 10 ** 6, ["test", "train"])
    assert plain.stats["pairs_across_splits"] == 0 and "crops" not in plain.stats
    done = audit(rows, None, 500, True, 10 ** 6, ["test", "train"], centre_keys=10, crops=True)
    crops = done.stats["crops"]
    assert crops["searched"] and crops["threshold"] == 8 and crops["hash_pairs"] == 2, crops
    assert done.stats["pairs_across_splits"] == 2 and done.stats["hash_pairs"] == 2
    listed = {frozenset((e["a"]["path"], e["b"]["path"])): e for e in done.stats["examples"]}
    assert set(listed) == {frozenset(("/d/coffee-copy.jpg", "/d/coffee.jpg")),
                           frozenset(("/d/rocket-copy.jpg", "/d/rocket.jpg"))}
    for name, window in (("coffee", "top-left 0.88"), ("rocket", "right 0.8")):
        pair = listed[frozenset((f"/d/{name}-copy.jpg", f"/d/{name}.jpg"))]
        assert pair["crop"]["window"] == window and pair["distance"] > 8  # pHash alone: too far apart
        assert pair[pair["crop"]["window_of"]]["path"] == f"/d/{name}.jpg"  # the original's window held the copy
    assert done.key_clusters["coffee-copy"][0] == done.key_clusters["coffee"][0] == "coffee"
    assert done.stats["clusters"]["count"] == 2 and done.stats["clusters"]["in_several_splits"] == 2
    fixed = audit(rows, 0, 500, True, 10 ** 6, ["test", "train"], crops=True)  # --near-threshold sets both
    assert fixed.stats["crops"] == {**fixed.stats["crops"], "searched": False, "threshold": 0}
    assert fixed.stats["pairs_across_splits"] == 0
