"""The features job's column roles and names, without Spark."""

import pytest

from sparkprep.features import columns


def test_feature_names_follow_the_vector_numeric_then_one_hot_blocks_with_unknown_last():
    maps = columns.category_maps(["state", "plan"], [["CA", "NY"], ["no", "yes"]])
    assert maps == {"state": {"CA": 0, "NY": 1, "__unknown__": 2}, "plan": {"no": 0, "yes": 1, "__unknown__": 2}}
    assert columns.feature_names(["day_mins", "calls"], maps) == [
        "day_mins", "calls", "state=CA", "state=NY", "state=__unknown__", "plan=no", "plan=yes", "plan=__unknown__"]


def test_a_category_spelled_like_the_unknown_slot_keeps_its_slot_and_names_stay_aligned():
    maps = columns.category_maps(["c"], [["__unknown__", "a"]])
    assert maps == {"c": {"__unknown__": 0, "a": 1, "__unknown__2": 2}}
    assert columns.feature_names(["x"], maps) == ["x", "c=__unknown__", "c=a", "c=__unknown__2"]
    assert columns.unknown_slot(["__unknown__", "__unknown__2"]) == "__unknown__3"


def test_feature_names_must_be_distinct():
    with pytest.raises(ValueError, match="'a=b' twice"):
        columns.feature_names(["a=b"], columns.category_maps(["a"], [["b"]]))


def test_auto_numeric_candidates_skip_the_split_tables_own_columns_and_the_excluded():
    schema = [("key", "string"), ("split", "string"), ("sha256", "string"), ("label", "string"), ("phone", "string"),
              ("day_mins", "double"), ("calls", "bigint"), ("flag", "boolean"), ("price", "decimal(10,2)"),
              ("state", "string"), ("tags", "array<string>")]
    typed, strings = columns.numeric_candidates(schema, {"phone", "label"})
    assert typed == ["day_mins", "calls", "flag", "price"] and strings == ["state"]


def test_the_split_key_column_comes_from_the_split_report_and_labels_map_in_sorted_order():
    assert columns.split_key_column({"key_by": "column:phone"}) == "phone"
    assert columns.split_key_column({"key_by": "content"}) is None and columns.split_key_column(None) is None
    assert columns.label_map(["yes", "no", "yes"]) == {"no": 0, "yes": 1}


def test_files_per_split_bound_the_rows_of_each_file():
    assert columns.files_per_split({"train": 4_000_001, "val": 10, "test": 0}, 1_000_000) == {
        "test": 1, "train": 5, "val": 1}
