"""sha256-v1 without Spark: pinned buckets, cumulative cuts, stability, stratification."""

import random
from collections import Counter

import pytest

from sparkprep.split import assign as sa

# (seed, key, first 15 hex digits of sha256(seed:key), bucket) computed by hand with
# hashlib.sha256((seed + ":" + key).encode()).hexdigest(); int(h[:15], 16) % 10000.
PINNED = [
    ("0", "a", "9df3c5fab8ef8fe", 1182),
    ("42", "hello", "64e4926da5a851f", 9087),
    ("0", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "78fb5f112b9e331", 7361),
    ("seed", "AbdomenCT/p000001_02.jpeg", "2e62f104f288f3f", 7135),
    ("7", "é", "22584c1fc9f6830", 32),
]


@pytest.mark.parametrize("seed,key,prefix,expected", PINNED)
def test_bucket_matches_values_pinned_by_hand(seed, key, prefix, expected):
    assert sa.split_hash(seed, key)[:15] == prefix
    assert sa.bucket(seed, key) == expected


def test_cumulative_basis_points_round_each_prefix_sum():
    assert sa.cumulative_basis_points([0.7, 0.15, 0.15]) == [7000, 8500, 10000]
    assert sa.cumulative_basis_points([1 / 3, 1 / 3, 1 / 3]) == [3333, 6667, 10000]
    assert sa.cumulative_basis_points([0.8, 0.2]) == [8000, 10000]


def test_split_is_first_whose_cumulative_bound_exceeds_bucket():
    names = ["train", "val", "test"]
    cums = [7000, 8500, 10000]
    assert sa.split_for_bucket(0, cums, names) == "train"
    assert sa.split_for_bucket(6999, cums, names) == "train"
    assert sa.split_for_bucket(7000, cums, names) == "val"
    assert sa.split_for_bucket(8499, cums, names) == "val"
    assert sa.split_for_bucket(8500, cums, names) == "test"
    assert sa.split_for_bucket(9999, cums, names) == "test"


def test_assign_split_uses_pinned_bucket():
    # bucket("42", "hello") == 9087 -> test under 0.7/0.15/0.15; train under 0.95/0.05? no: 9087 < 9500
    assert sa.assign_split("42", "hello", [0.7, 0.15, 0.15], ["train", "val", "test"]) == "test"
    assert sa.assign_split("42", "hello", [0.95, 0.05], ["train", "test"]) == "train"
    assert sa.assign_split("0", "a", [0.1, 0.9], ["x", "y"]) == "y"  # bucket 1182 >= 1000


@pytest.mark.parametrize("text", ["0.5,0.4", "0.7,0.4", "1,-0", "a,b", "0.5,0.5,0", "nan,1", ""])
def test_bad_ratios_are_rejected_with_expected_message(text):
    with pytest.raises(ValueError, match="--ratios: expected"):
        sa.parse_ratios(text)


def test_ratios_may_sum_to_one_within_tolerance():
    assert sa.parse_ratios("0.3333333,0.3333333,0.3333334") == [0.3333333, 0.3333333, 0.3333334]


def test_names_default_by_count_and_are_validated():
    assert sa.parse_names(None, 3) == ["train", "val", "test"]
    assert sa.parse_names(None, 2) == ["train", "test"]
    assert sa.parse_names("a,b,c,d", 4) == ["a", "b", "c", "d"]
    for bad in ("train,val", "train,train,test", "tr/ain,val,test", "a=b,c,d"):
        with pytest.raises(ValueError, match="--names"):
            sa.parse_names(bad, 3)


def test_adding_keys_never_moves_existing_ones():
    ratios, names = [0.7, 0.15, 0.15], ["train", "val", "test"]
    keys = [f"file-{i}" for i in range(2000)]
    before = {k: sa.assign_split("1", k, ratios, names) for k in keys}
    grown = keys + [f"new-{i}" for i in range(400)]
    after = {k: sa.assign_split("1", k, ratios, names) for k in grown}
    assert all(after[k] == before[k] for k in keys)
    shares = Counter(before.values())
    assert 1300 < shares["train"] < 1500 and 200 < shares["val"] < 400


def test_stratified_gives_every_label_its_exact_share():
    rng = random.Random(3)
    items = [(label, f"{label}-{i}") for label, n in (("cat", 101), ("dog", 37), (None, 10)) for i in range(n)]
    rng.shuffle(items)
    out = sa.assign_stratified(items, "0", [0.7, 0.15, 0.15], ["train", "val", "test"])
    per = Counter((label, split) for (label, _), split in out.items())
    # cut_i = floor(n * cum_i / 10000 + 1/2): 101 -> 71, 86 ; 37 -> 26, 31 ; 10 -> 7, 9 (8.5 rounds up)
    assert (per["cat", "train"], per["cat", "val"], per["cat", "test"]) == (71, 15, 15)
    assert (per["dog", "train"], per["dog", "val"], per["dog", "test"]) == (26, 5, 6)
    assert (per[None, "train"], per[None, "val"], per[None, "test"]) == (7, 2, 1)


def test_stratified_orders_by_hash_then_key_and_keeps_duplicate_keys_together():
    items = [("x", "k1"), ("x", "k1"), ("x", "k2"), ("x", "k3"), ("x", "k4")]
    out = sa.assign_stratified(items, "9", [0.5, 0.5], ["a", "b"])
    ranked = sorted({k for _, k in items}, key=lambda k: (sa.split_hash("9", k), k))
    assert [out[("x", k)] for k in ranked] == ["a", "a", "b", "b"]
