"""What --near-duplicates merge may do (sparkprep.audit.policy): the cluster size limit and the split check."""

from sparkprep.audit import policy


def test_the_merge_limit_is_a_share_of_the_table_with_a_floor_and_a_cap():
    assert policy.merge_limit(300) == policy.MERGE_FLOOR_ROWS          # 1% of 300 is 3: a photo's versions still merge
    assert policy.merge_limit(50_000) == 500                           # 1%
    assert policy.merge_limit(10_000_000) == policy.MERGE_MAX_ROWS     # --near-merge-max
    assert policy.merge_limit(10_000_000, 50) == 50


def test_a_merge_that_empties_or_skews_a_split_is_named():
    names, ratios = ("train", "val", "test"), (0.8, 0.1, 0.1)
    plain = {"train": 240, "val": 30, "test": 30}
    assert policy.merge_skew(plain, {"train": 236, "val": 33, "test": 31}, names, ratios, 4) is None
    emptied = policy.merge_skew(plain, {"train": 280, "val": 20}, names, ratios, 104)
    assert "leave split 'test' empty" in emptied and "104 rows" in emptied
    skewed = policy.merge_skew(plain, {"train": 200, "val": 70, "test": 30}, names, ratios, 4, 10 * 4 ** 2)
    assert "move split 'train' from 80.0% to 66.7%" in skewed and "sizes allow 5.1%" in skewed
    # two 9-row clusters on a table of 84 rows move shares by chance: within 3 sigma of their sizes
    small = {"train": 50, "val": 17, "test": 17}
    assert policy.merge_skew(small, {"train": 63, "val": 12, "test": 9}, names, ratios, 9, 2 * 9 ** 2) is None
    assert policy.merge_skew(small, {"train": 80, "val": 2, "test": 2}, names, ratios, 9, 2 * 9 ** 2) is not None
    assert policy.merge_skew({"train": 10}, {"train": 10}, ("train", "test"), (0.9, 0.1), 1) is None  # was empty
