"""Samples made of several files (docs/contracts.md, Samples): grouping, keys, whole-sample quarantine."""

import collections

import pyarrow.parquet as pq
import pytest
from helpers import splitter, table_rows
from conftest import write_samples

from sparkprep.errors import UsageError
from sparkprep.ingest.flags import ingest_config
from sparkprep.ingest.paths import sample_content_key
from sparkprep.ingest.spark.run import run_ingest
from sparkprep.split.assign import assign_split
from sparkprep.split.flags import split_config
from sparkprep.split.spark import run_split

COLUMNS = ["key", "split", "label", "rel_path", "sample", "member", "sha256", "status", "error", "format"]


@pytest.fixture
def tree(tmp_path, make_sample):
    root = tmp_path / "coco"
    write_samples(make_sample, root, 0, 18)
    write_samples(make_sample, root, 18, 2, with_cls=False)  # incomplete: no .cls
    (root / "bee" / "s004.jpg").write_bytes((root / "bee" / "s004.jpg").read_bytes()[:200])  # truncated member
    return root


# --phash off: the hash and its audit are tested in test_leakage_audit.py (one image member per sample here)
split = splitter("--samples", "basename", "--extensions", "jpg,json,cls", "--validate", "full", "--phash", "off")


def rows_of(out):
    return table_rows(out, COLUMNS)


def by_sample(rows):
    out = collections.defaultdict(list)
    for r in rows:
        out[r["sample"]].append(r)
    return out


def test_members_of_a_sample_share_one_key_and_one_split(spark, tree, tmp_path):
    report = split(spark, tree, tmp_path / "splits", "--ratios", "0.5,0.5", "--seed", "3")
    rows = rows_of(tmp_path / "splits")
    assert len(rows) == 18 * 3 + 2 * 2
    for sample, members in by_sample(rows).items():
        assert {r["key"] for r in members} == {sample}  # --key-by sample is the default
        assert {r["split"] for r in members} == {assign_split("3", sample, [0.5, 0.5], ["train", "test"])}
        assert sorted(r["member"] for r in members) in (["cls", "jpg", "json"], ["jpg", "json"])
    assert report["samples"]["count"] == 20 and report["samples"]["largest"] == 3
    assert report["samples"]["incomplete"] == {"cls": {"count": 2, "examples": ["ant/s019", "bee/s018"]}}


def test_a_failing_member_quarantines_its_whole_sample(spark, tree, tmp_path):
    split(spark, tree, tmp_path / "splits")
    sample = by_sample(rows_of(tmp_path / "splits"))["bee/s004"]
    assert {r["status"] for r in sample} == {"corrupt"}
    others = [r for r in sample if r["member"] != "jpg"]
    assert all(r["error"].startswith("member jpg of this sample: corrupt") for r in others)
    non_images = [r for r in rows_of(tmp_path / "splits") if r["member"] in ("json", "cls") and r["sample"] != "bee/s004"]
    assert non_images and all(r["status"] == "ok" and r["format"] is None for r in non_images)  # hashed, not probed


def test_content_and_group_keys_are_functions_of_the_whole_sample(spark, tree, tmp_path):
    split(spark, tree, tmp_path / "content", "--key-by", "content")
    for sample, members in by_sample(rows_of(tmp_path / "content")).items():
        expected = sample_content_key([(r["member"], r["sha256"]) for r in members])
        assert {r["key"] for r in members} == {expected}, sample
    split(spark, tree, tmp_path / "group", "--key-by", r"group:^(ant|bee)/")
    for sample, members in by_sample(rows_of(tmp_path / "group")).items():
        assert {r["key"] for r in members} == {sample.split("/")[0]}


def test_samples_keep_their_split_after_growth(spark, tree, tmp_path, make_sample):
    split(spark, tree, tmp_path / "before")
    before = {r["rel_path"]: r["split"] for r in rows_of(tmp_path / "before")}
    write_samples(make_sample, tree, 100, 4)  # 20% more samples
    split(spark, tree, tmp_path / "after")
    after = rows_of(tmp_path / "after")
    assert {r["rel_path"]: r["split"] for r in after if r["rel_path"] in before} == before
    for members in by_sample(after).values():
        assert len({r["split"] for r in members}) == 1


def test_a_catalog_ingested_as_samples_is_split_as_samples(spark, tree, tmp_path):
    run_ingest(spark, ingest_config(["--input", str(tree), "--output", str(tmp_path / "catalog"), "--samples",
                                     "basename", "--extensions", "jpg,json,cls"]))
    run_split(spark, split_config(["--input", str(tmp_path / "catalog"), "--output", str(tmp_path / "splits")]))
    for members in by_sample(rows_of(tmp_path / "splits")).values():
        assert len({r["key"] for r in members}) == 1  # the content key of the sample, not of each file


def test_members_with_different_labels_quarantine_their_sample(spark, tree, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nant/s001.jpg,ant\nant/s001.json,wasp\nant/s001.cls,ant\nbee/s002.jpg,bee\n")
    split(spark, tree, tmp_path / "splits", "--labels", labels, "--max-quarantine-fraction", "1")
    samples = by_sample(rows_of(tmp_path / "splits"))
    assert {r["status"] for r in samples["ant/s001"]} == {"conflicting_labels"}
    # a labels CSV that lists only the images labels the whole sample
    assert {(r["status"], r["label"]) for r in samples["bee/s002"]} == {("ok", "bee")}


def test_path_keys_and_tabular_input_refuse_basename_samples(tree, tmp_path):
    with pytest.raises(UsageError, match="path would split a sample's files apart"):
        split_config(["--input", str(tree), "--output", str(tmp_path / "o"), "--samples", "basename",
                      "--key-by", "path"])
    (tmp_path / "rows.csv").write_text("id\n1\n")
    with pytest.raises(UsageError, match="--samples: expected file for tabular input"):
        split_config(["--input", str(tmp_path / "rows.csv"), "--output", str(tmp_path / "o"), "--samples",
                      "basename", "--key-by", "column:id"])


def test_identical_side_cars_of_different_samples_are_not_exact_duplicates(spark, tree, tmp_path, make_sample):
    """The .cls files of one class are byte-identical: judged per file, 18 of them "leaked" across
    splits and --fail-on-leakage failed every run on multi-file samples."""
    report = split(spark, tree, tmp_path / "splits", "--fail-on-leakage", "--near-threshold", "0")
    assert report["duplicates"]["groups"] == 0 and report["duplicates"]["extra_copies"] == 0
    # an image copied into another sample is still an exact duplicate
    (tree / "ant" / "s001.jpg").write_bytes((tree / "bee" / "s002.jpg").read_bytes())
    again = split(spark, tree, tmp_path / "again")
    assert again["duplicates"]["groups"] == 1 and again["duplicates"]["extra_copies"] == 1


def test_preprocess_of_raw_samples_transforms_the_image_and_carries_the_rest_reconciled(spark, tree, tmp_path):
    """One processed row per sample; the input reconciliation still accounts for every listed file
    (a row stands for its image and the members in its extras)."""
    from sparkprep.preprocess.flags import preprocess_config
    from sparkprep.preprocess.spark import run_preprocess

    report = run_preprocess(spark, preprocess_config([
        "--input", str(tree), "--output", str(tmp_path / "processed"), "--samples", "basename",
        "--extensions", "jpg,json,cls", "--phash", "off", "--size", "16"]))
    assert report["reconciliation"]["reconciled"] and report["reconciliation"]["expected_rows"] == 58
    rows = pq.read_table(str(tmp_path / "processed")).to_pylist()
    assert len(rows) == 20 and report["rows"] == 20  # samples, not files
    for r in rows:
        sample, primary = r["rel_path"].rsplit(".", 1)
        members = dict(r["extras"])
        assert members["json"] == (tree / f"{sample}.json").read_bytes()
        if sample == "bee/s004":  # its jpg is cut short: the sample is one quarantine row, all members kept
            assert r["status"] == "corrupt" and {primary, *members} == {"jpg", "json", "cls"}
        else:
            assert (r["status"], r["width"], primary) == ("ok", 16, "jpg") and set(members) in ({"cls", "json"},
                                                                                                 {"json"})
