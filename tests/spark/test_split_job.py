"""The split job end to end in the shared session; outputs are read back with pyarrow."""

import collections
import json

import pyarrow.parquet as pq
import pytest
from helpers import split, table_rows

from sparkprep.ingest.spark.run import run_ingest
from sparkprep.ingest.spark.sources import labels_by_path, labels_file
from sparkprep.split.assign import assign_split, assign_stratified
from sparkprep.split.flags import split_config

COLUMNS = ["key", "split", "label", "path", "sha256", "status", "error", "rel_path"]


def read(out, columns=COLUMNS):
    return table_rows(out, columns)


@pytest.fixture(scope="module")
def sample_split(spark, sample_tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("split") / "splits"
    report = split(spark, "--input", sample_tree, "--output", out, "--ratios", "0.7,0.15,0.15",
                   "--seed", "42", "--validate", "full")
    return out, report


def test_every_row_split_equals_sha256_v1_recomputed_in_python(sample_split):
    out, _ = sample_split
    rows = read(out)
    assert rows
    for row in rows:
        assert row["split"] == assign_split("42", row["key"], [0.7, 0.15, 0.15], ["train", "val", "test"]), row


def test_content_key_is_sha256_and_quarantined_rows_carry_a_split(sample_split):
    out, _ = sample_split
    rows = read(out)
    assert all(r["key"] == r["sha256"] for r in rows)
    quarantined = [r for r in rows if r["status"] != "ok"]
    assert quarantined and all(r["split"] in ("train", "val", "test") for r in quarantined)


def test_every_input_file_is_accounted_for_exactly_once(sample_split, sample_tree):
    out, report = sample_split
    rows = read(out)
    listed = sorted(p.relative_to(sample_tree).as_posix() for p in sample_tree.rglob("*") if p.is_file())
    wanted = [p for p in listed if not p.endswith((".txt", ".DS_Store"))]
    assert sorted(r["rel_path"] for r in rows) == wanted
    rec = report["reconciliation"]
    assert (rec["listed_files"], rec["rows"], rec["skipped_extension"], rec["skipped_hidden"]) == \
        (len(listed), len(wanted), 1, 1)
    assert rec["reconciled"] is True


def test_bad_files_are_quarantined_with_reasons(sample_split):
    out, report = sample_split
    status = {r["rel_path"]: (r["status"], r["error"]) for r in read(out)}
    assert status["CXR/p_bad_truncated.jpeg"][0] == "corrupt"
    assert status["Hand/p_bad_empty.jpeg"] == ("empty", "zero-byte file")
    assert status["HeadCT/p_bad_html.jpg"][0] == "invalid"
    assert status["ChestCT/p_bad_bomb.png"][0] == "decompression_bomb"
    for ok in ("CXR/p_cmyk.jpg", "CXR/p_16bit.png", "Hand/p_palette_alpha.png", "Hand/p_exif_rotated.JPG",
               "HeadCT/p_animated.gif", "HeadCT/p é ü space.jpeg"):
        assert status[ok] == ("ok", None), ok
    assert {k: v["count"] for k, v in report["quarantine"].items()} == \
        {"corrupt": 1, "empty": 1, "invalid": 1, "decompression_bomb": 1}


def test_duplicates_are_reported_with_conflicting_labels(sample_split):
    _, report = sample_split
    dup = report["duplicates"]
    assert (dup["groups"], dup["extra_copies"], dup["conflicting_label_groups"], dup["groups_in_several_splits"]) == \
        (1, 2, 1, 0)  # keyed by content, copies always share a split
    paths = dup["conflicting_examples"][0]["paths"]
    assert any(p.endswith("BreastMRI/p_dup_conflict.jpeg") for p in paths)


def test_report_and_table_metadata_record_the_split_parameters(sample_split):
    out, report = sample_split
    on_disk = json.loads((out / "_run_report.json").read_text())
    assert on_disk["split"] == report["split"] == {
        "split_algo": "sha256-v1", "seed": "42", "ratios": [0.7, 0.15, 0.15], "names": ["train", "val", "test"],
        "key_by": "content", "stratify": "none"}
    counts = on_disk["counts"]
    rows = read(out, ["split", "label"])
    assert sum(sum(v.values()) for v in counts.values()) == len(rows)
    assert counts["train"]["CXR"] == sum(1 for r in rows if r["split"] == "train" and r["label"] == "CXR")
    schema = pq.read_schema(next(out.glob("split=*/*.parquet")))
    spark_meta = json.loads(schema.metadata[b"org.apache.spark.sql.parquet.row.metadata"])
    key_meta = next(f["metadata"] for f in spark_meta["fields"] if f["name"] == "key")
    assert json.loads(key_meta["sparkprep.split"])["split_algo"] == "sha256-v1"


def test_image_bytes_are_stored_without_compression_or_dictionary(sample_split):
    out, _ = sample_split
    meta = pq.ParquetFile(next(out.glob("split=train/*.parquet"))).metadata.row_group(0)
    content = next(meta.column(i) for i in range(meta.num_columns) if meta.column(i).path_in_schema == "content")
    assert content.compression == "UNCOMPRESSED"
    assert not any("DICTIONARY" in encoding for encoding in content.encodings)


def test_adding_20_percent_new_files_moves_no_existing_sample(spark, make_sample, tmp_path):
    data = tmp_path / "grow"
    make_sample.make_tree(str(data), per_class=20, with_bad=False)
    split(spark, "--input", data, "--output", tmp_path / "v1", "--key-by", "path")
    before = {r["key"]: r["split"] for r in read(tmp_path / "v1")}
    for ci, name in enumerate(make_sample.CLASSES):  # 4 new files per class of 20 = 20%
        for i in range(4):
            (data / name / f"new_{i}.jpeg").write_bytes(make_sample.jpeg_bytes(make_sample.synthetic_scan(ci, 500 + i)))
    split(spark, "--input", data, "--output", tmp_path / "v2", "--key-by", "path")
    after = {r["key"]: r["split"] for r in read(tmp_path / "v2")}
    assert len(after) == len(before) + 24
    assert {k: after[k] for k in before} == before


def test_group_key_keeps_every_patient_in_one_split(spark, sample_tree, tmp_path):
    report = split(spark, "--input", sample_tree, "--output", tmp_path / "g", "--key-by", "group:/(p[0-9]+)_",
                   "--ratios", "0.5,0.5", "--seed", "3")
    rows = read(tmp_path / "g")
    assert report["leakage"]["keys_in_several_splits"] == 0
    splits_per_group = collections.defaultdict(set)
    for r in rows:
        splits_per_group[r["key"]].add(r["split"])
    assert len(splits_per_group) > 10 and all(len(s) == 1 for s in splits_per_group.values())
    patient = next(r for r in rows if r["rel_path"] == "CXR/p200001_03.jpeg")
    assert patient["key"] == "p200001"
    unmatched = next(r for r in rows if r["rel_path"] == "CXR/p_cmyk.jpg")
    assert (unmatched["key"], unmatched["status"]) == ("CXR/p_cmyk.jpg", "no_group")
    assert "did not match" in unmatched["error"]


def test_path_keys_let_copies_spread_and_the_report_says_so(spark, sample_tree, tmp_path):
    report = split(spark, "--input", sample_tree, "--output", tmp_path / "p", "--key-by", "path",
                   "--ratios", "0.5,0.5", "--seed", "0")
    copies = collections.defaultdict(set)
    for r in read(tmp_path / "p"):
        if r["status"] == "ok":
            copies[r["sha256"]].add(r["split"])
    spread = sum(1 for s in copies.values() if len(s) > 1)
    assert report["duplicates"]["groups_in_several_splits"] == spread == 1


def test_exact_stratification_matches_the_reference_and_gives_exact_shares(spark, sample_tree, tmp_path):
    report = split(spark, "--input", sample_tree, "--output", tmp_path / "s", "--stratify", "exact",
                   "--ratios", "0.5,0.25,0.25", "--seed", "5")
    rows = read(tmp_path / "s")
    expected = assign_stratified([(r["label"], r["key"]) for r in rows], "5", [0.5, 0.25, 0.25], ["train", "val", "test"])
    assert all(r["split"] == expected[(r["label"], r["key"])] for r in rows)
    assert report["split"]["stratify"] == "exact"


def test_catalog_from_ingest_splits_like_raw_files(spark, sample_tree, sample_split, tmp_path):
    ingest = run_ingest(spark, split_config(["--input", str(sample_tree), "--output", str(tmp_path / "cat"),
                                             "--validate", "full"]))
    assert ingest["reconciliation"]["reconciled"] and "split" not in pq.read_schema(
        next((tmp_path / "cat").glob("*.parquet"))).names
    split(spark, "--input", tmp_path / "cat", "--output", tmp_path / "s", "--ratios", "0.7,0.15,0.15", "--seed", "42")
    assert sorted(map(str, read(tmp_path / "s"))) == sorted(map(str, read(sample_split[0])))


def test_labels_file_replaces_directory_labels(spark, sample_tree, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nCXR/p200001_03.jpeg,pneumonia\n./Hand/p400000_00.jpeg,fracture\n")
    split(spark, "--input", sample_tree, "--output", tmp_path / "l", "--labels", labels)
    got = {r["rel_path"]: r["label"] for r in read(tmp_path / "l")}
    assert got["CXR/p200001_03.jpeg"] == "pneumonia" and got["Hand/p400000_00.jpeg"] == "fracture"
    assert got["CXR/p200001_04.jpeg"] is None


def test_both_readers_of_a_labels_csv_agree_and_refuse_two_labels_for_one_path(spark, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n./a/1.png,x\na/2.png,y\na/2.png,y\nb/3.png,\n")
    joined = {r["_label_path"]: r["_label"] for r in labels_file(spark, str(labels)).collect()}
    assert labels_by_path(spark, str(labels)) == joined == {"a/1.png": "x", "a/2.png": "y", "b/3.png": None}
    labels.write_text("path,label\na/1.png,x\n./a/1.png,z\n")
    for read_labels in (labels_file, labels_by_path):
        with pytest.raises(ValueError, match="several for 'a/1.png'"):
            read_labels(spark, str(labels))


def test_tabular_rows_split_by_column_and_null_keys_are_quarantined(spark, tmp_path):
    csv = tmp_path / "churn.csv"
    lines = ["customer_id,label,tenure,split"] + [f"c{i},{'yes' if i % 3 else 'no'},{i},old" for i in range(200)]
    csv.write_text("\n".join(lines + [",no,5,old"]) + "\n")
    report = split(spark, "--input", csv, "--output", tmp_path / "t", "--key-by", "column:customer_id",
                   "--label-column", "label", "--ratios", "0.8,0.2", "--names", "train,test")
    rows = read(tmp_path / "t", ["key", "split", "label", "path", "status", "customer_id", "tenure", "src_split"])
    assert len(rows) == 201
    for r in rows:
        assert r["split"] == assign_split("0", r["key"], [0.8, 0.2], ["train", "test"])
    ok = [r for r in rows if r["status"] == "ok"]
    assert all(r["key"] == r["customer_id"] and r["path"] is None and r["src_split"] == "old" for r in ok)
    assert {r["key"] for r in ok} == {f"c{i}" for i in range(200)}
    assert collections.Counter(r["label"] for r in rows) == {"yes": 133, "no": 68}
    [bad] = [r for r in rows if r["status"] != "ok"]
    assert bad["status"] == "missing_key" and len(bad["key"]) == 64
    assert report["quarantine"]["missing_key"]["count"] == 1


def test_delta_output_reads_back_with_deltalake_and_reruns_as_a_new_version(spark, sample_tree, tmp_path):
    from deltalake import DeltaTable

    out = tmp_path / "delta"
    args = ["--input", sample_tree, "--output", out, "--format", "delta", "--seed", "42",
            "--ratios", "0.7,0.15,0.15"]
    report = split(spark, *args)
    table = DeltaTable(str(out))
    rows = table.to_pyarrow_table(columns=["key", "split", "status"]).to_pylist()
    assert len(rows) == report["rows"] and table.metadata().partition_columns == ["split"]
    assert all(r["split"] == assign_split("42", r["key"], [0.7, 0.15, 0.15], ["train", "val", "test"]) for r in rows)
    assert json.loads(table.metadata().description)["split_algo"] == "sha256-v1"
    split(spark, *args)
    again = DeltaTable(str(out))
    assert again.version() == 1
    assert sorted(map(str, again.to_pyarrow_table(columns=["key", "split", "status"]).to_pylist())) == \
        sorted(map(str, rows))


def test_failed_rerun_leaves_the_old_output_intact(spark, sample_tree, tmp_path, monkeypatch):
    out = tmp_path / "safe"
    split(spark, "--input", sample_tree, "--output", out, "--key-by", "path")
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    rows = read(out)

    import sparkprep.spark.reported as reported

    def explode(*_):
        raise RuntimeError("injected failure after the data was written")

    monkeypatch.setattr(reported, "table_stats", explode)
    with pytest.raises(RuntimeError, match="injected failure"):
        split(spark, "--input", sample_tree, "--output", out, "--key-by", "content")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
    assert read(out) == rows
    assert [p.name for p in tmp_path.iterdir()] == ["safe"]  # no staging directory left behind


def test_files_over_max_bytes_are_too_large_with_streamed_sha256(spark, make_sample, tmp_path):
    import hashlib

    (tmp_path / "in" / "cat").mkdir(parents=True)
    small = make_sample.jpeg_bytes(make_sample.synthetic_scan(0, 1, size=16))
    big = make_sample.jpeg_bytes(make_sample.synthetic_scan(0, 2, size=256))
    (tmp_path / "in" / "cat" / "small.jpg").write_bytes(small)
    (tmp_path / "in" / "cat" / "big.jpg").write_bytes(big)
    report = split(spark, "--input", tmp_path / "in", "--output", tmp_path / "o", "--max-file-bytes", len(small) + 1)
    rows = {r["rel_path"]: r for r in read(tmp_path / "o")}
    assert rows["cat/small.jpg"]["status"] == "ok"
    assert rows["cat/big.jpg"]["status"] == "too_large" and "not decoded" in rows["cat/big.jpg"]["error"]
    assert rows["cat/big.jpg"]["key"] == rows["cat/big.jpg"]["sha256"] == hashlib.sha256(big).hexdigest()
    assert report["reconciliation"]["rows_from_listing"] == {"empty": 0, "too_large": 1}


def test_an_existing_directory_that_is_not_a_table_is_never_replaced(spark, sample_tree, tmp_path):
    from sparkprep.errors import UsageError

    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(UsageError, match="refusing to touch it"):
        split(spark, "--input", sample_tree, "--output", precious)
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_an_empty_output_directory_is_used_as_a_new_output(spark, sample_tree, tmp_path):
    """SageMaker creates its output channel directory before the job starts."""
    channel = tmp_path / "output" / "data"
    channel.mkdir(parents=True)
    report = split(spark, "--input", sample_tree, "--output", channel)
    assert (channel / "_run_report.json").exists() and report["rows"] > 0
    assert sorted(p.name for p in channel.parent.iterdir()) == ["data"]  # no staging left behind
