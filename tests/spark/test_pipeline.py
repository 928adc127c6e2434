"""The pipeline job: its tables equal split + preprocess run separately, row for row and byte for byte."""

import json

import pytest

from sparkprep.errors import UsageError
from sparkprep.images.phash import PHASH_METADATA_KEY, PHASH_V2, phash_of_decode
from sparkprep.pipeline.spark import run as pipeline_spark
from sparkprep.pipeline.flags import pipeline_config
from sparkprep.pipeline.spark.run import run_pipeline
from sparkprep.preprocess.flags import preprocess_config
from sparkprep.preprocess.spark import run_preprocess
from sparkprep.preprocess.transform import decode_for
from sparkprep.spark.tables import read_table
from sparkprep.split.flags import split_config
from sparkprep.split.spark import run_split

RECIPE = ["--ratios", "0.6,0.2,0.2", "--seed", "7", "--size", "48", "--augment", "hflip,rotate:10", "--copies", "1",
          "--augment-splits", "train,val"]


def table(spark, path):
    """Rows as Spark reads them (parquet or Delta), in a fixed order, and the schema with its metadata."""
    frame = read_table(spark, str(path))
    rows = sorted((r.asDict() for r in frame.collect()), key=lambda r: (r["path"], r.get("aug_index") or 0))
    return rows, frame.schema


def stage_jobs(spark, root, sample_tree, *extra):
    run_split(spark, split_config(["--input", str(sample_tree), "--output", str(root / "splits"), *RECIPE[:4], *extra]))
    run_preprocess(spark, preprocess_config(["--input", str(root / "splits"), "--output", str(root / "processed"),
                                             *RECIPE, *extra]))
    return table(spark, root / "splits"), table(spark, root / "processed")


@pytest.fixture(scope="module")
def separately(spark, sample_tree, tmp_path_factory):
    return stage_jobs(spark, tmp_path_factory.mktemp("stages"), sample_tree)


def pipeline(spark, out, sample_tree, *extra):
    report = run_pipeline(spark, pipeline_config(["--input", str(sample_tree), "--output", str(out), *RECIPE, *extra]))
    return report, table(spark, out / "splits"), table(spark, out / "processed")


def assert_same_tables(got, expected):
    (rows, schema), (want_rows, want_schema) = got, expected
    assert sorted((f.name, f.dataType) for f in schema) == sorted((f.name, f.dataType) for f in want_schema)
    for name in ("key", "transform"):  # the split parameters and the recipe travel as column metadata
        if name in schema.names:
            assert schema[name].metadata == want_schema[name].metadata and schema[name].metadata
    assert len(rows) == len(want_rows)
    for row, want in zip(rows, want_rows):
        assert row == want, row["path"]


@pytest.mark.parametrize("reader,fmt", [("workers", "parquet"), ("binaryfile", "delta")])
def test_one_pass_tables_equal_split_then_preprocess(spark, sample_tree, separately, tmp_path, reader, fmt):
    report, splits, processed = pipeline(spark, tmp_path / "out", sample_tree, "--read", reader, "--format", fmt)
    reads = "the workers read" if reader == "workers" else "binaryFile reads"
    # parquet: the workers write the files; Delta: Spark writes both tables from the one pass's rows, which it
    # wrote under the processed table's run directory first
    writes = "; the workers write both tables" if fmt == "parquet" else ""
    assert report["passes"] == f"one Python pass per file ({reads} the bytes{writes})"
    assert_same_tables(splits, separately[0])
    assert_same_tables(processed, separately[1])
    # the hash comes from the transform's decode (phash-v2; the 64 px scans give phash-v1's bits)
    assert splits[1]["phash"].metadata == {PHASH_METADATA_KEY: PHASH_V2} and not separately[0][1]["phash"].metadata
    assert report["stages"]["splits"]["near_duplicates"]["hash"] == PHASH_V2
    spec = pipeline_config(["--input", str(sample_tree), "--output", str(tmp_path / "unused"), *RECIPE]).spec
    hashed = [r for r in splits[0] if r["phash"] is not None]
    assert len(hashed) > 50 and all(r["phash"] == phash_of_decode(decode_for(r["content"], spec), r["content"],
                                                                  r["orientation"]) for r in hashed)
    cut = [r for r in splits[0] if r["rel_path"] == "CXR/p_bad_truncated.jpeg"]
    assert cut[0]["status"] == "corrupt" and "end-of-image marker" in cut[0]["error"]  # default validation
    assert report["published"] == ["splits", "processed"]
    on_disk = json.loads((tmp_path / "out" / "_run_report.json").read_text())
    assert on_disk["stages"]["splits"]["reconciliation"]["reconciled"] is True
    assert on_disk["stages"]["processed"]["augmented_copies"] > 0


def test_a_parquet_output_spark_writes_equals_split_then_preprocess_and_keeps_no_resume_files(
        spark, sample_tree, separately, tmp_path, monkeypatch):
    """An output on HDFS or S3 (here the local disk, taken for a remote one): Spark writes the one pass's rows
    under the processed staging first, then both tables from them. The published tables equal split then
    preprocess, and hold none of what a killed run would have left for the next (ownership.RESUME_NAMES)."""
    import os

    from sparkprep.spark import ownership

    out = tmp_path / "out"
    monkeypatch.setattr(pipeline_spark, "is_local", lambda uri: not str(uri).startswith((f"file:{out}", str(out))))
    report, splits, processed = pipeline(spark, out, sample_tree)
    assert report["passes"] == "one Python pass per file (the workers read the bytes)"
    assert_same_tables(splits, separately[0])
    assert_same_tables(processed, separately[1])
    left = [os.path.join(d, n) for d, dirs, names in os.walk(out) for n in names + dirs
            if n in ownership.RESUME_NAMES or ".__staging-" in n]
    assert left == [] and "resumed" not in report


# the workers label the rows they write (parquet); Spark joins the CSV onto the rows (Delta)
@pytest.mark.parametrize("fmt", ["parquet", pytest.param("delta", marks=pytest.mark.slow)])
def test_labels_from_a_csv_give_the_tables_of_split_then_preprocess(spark, sample_tree, tmp_path, fmt):
    """--labels: a CSV naming most files (some as ./path), a file it does not name gets no label."""
    files = sorted(p.relative_to(sample_tree).as_posix() for p in sample_tree.rglob("*") if p.is_file())
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n" + "".join(f"{'./' * (i % 3 == 0)}{f},c{i % 4}\n"
                                               for i, f in enumerate(files) if i % 5))
    extra = ("--labels", str(labels))
    expected = stage_jobs(spark, tmp_path / "stages", sample_tree, *extra)
    report, splits, processed = pipeline(spark, tmp_path / "out", sample_tree, "--format", fmt, *extra)
    assert report["passes"].endswith("the workers write both tables)") == (fmt == "parquet")
    assert_same_tables(splits, expected[0])
    assert_same_tables(processed, expected[1])
    assert {r["label"] for r in splits[0]} == {None, "c0", "c1", "c2", "c3"}


def test_exact_stratification_keeps_two_passes_with_the_same_tables(spark, sample_tree, tmp_path):
    expected = stage_jobs(spark, tmp_path / "stages", sample_tree, "--stratify", "exact")
    report, splits, processed = pipeline(spark, tmp_path / "out", sample_tree, "--stratify", "exact", "--keep", "none",
                                         "--to", "imagefolder")
    assert "second Python pass" in report["passes"]
    want_rows, want_schema = expected[0]
    assert "content" not in splits[1].names  # --keep none: metadata only
    assert splits[0] == [{k: v for k, v in r.items() if k != "content"} for r in want_rows]
    assert want_schema["key"].metadata == splits[1]["key"].metadata
    assert_same_tables(processed, expected[1])
    folders = report["stages"]["imagefolder"]
    assert sum(folders["counts"].values()) == sum(1 for r in processed[0] if r["status"] == "ok")
    assert (tmp_path / "out" / "imagefolder" / "train").is_dir()


def test_a_failed_late_stage_keeps_what_was_published_and_says_so(spark, sample_tree, tmp_path, monkeypatch):
    out = tmp_path / "out"
    pipeline(spark, out, sample_tree, "--size", "32")
    before = (out / "processed" / "_run_report.json").read_text()
    real = pipeline_spark.write_reported_table

    def failing(spark_, claim, df, cfg, *args, **kwargs):
        if cfg.output.endswith("/processed"):
            raise RuntimeError("injected failure in the processed stage")
        return real(spark_, claim, df, cfg, *args, **kwargs)

    monkeypatch.setattr(pipeline_spark, "write_reported_table", failing)
    with pytest.raises(RuntimeError, match="injected"):
        pipeline(spark, out, sample_tree, "--size", "40")
    report = json.loads((out / "_run_report.json").read_text())
    assert report["published"] == ["splits"] and "injected" in report["failed"]
    assert (out / "processed" / "_run_report.json").read_text() == before  # the earlier run's table, intact
    assert json.loads((out / "splits" / "_run_report.json").read_text())["config"]["spec"]["size"] == [40, 40]


def test_a_foreign_output_directory_is_refused_untouched(spark, sample_tree, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="refusing to touch it"):
        run_pipeline(spark, pipeline_config(["--input", str(sample_tree), "--output", str(out)]))
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_merged_near_duplicates_pass_the_leakage_gate_and_the_root_page_is_written(spark, sample_tree, tmp_path):
    cached = set(spark.sparkContext._jsc.getPersistentRDDs().keys())
    report, splits, _ = pipeline(spark, tmp_path / "out", sample_tree, "--near-duplicates", "merge",
                                 "--fail-on-leakage", "--to", "imagefolder")
    assert set(spark.sparkContext._jsc.getPersistentRDDs().keys()) == cached  # merge's rows: on disk once, then freed
    assert "second Python pass" in report["passes"] and "--near-duplicates merge" in report["passes"]
    near = report["stages"]["splits"]["near_duplicates"]
    assert near["pairs_across_splits"] == 0 and near["merge"]["pairs_across_splits_before"] > 0
    page = (tmp_path / "out" / "report.html").read_text()
    assert page == (tmp_path / "out" / "splits" / "_report.html").read_text() and "No near-duplicate pair crosses" in page
