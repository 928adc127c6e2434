"""Checks that run when the job runs: input kind through Hadoop, quarantine fraction, augment splits."""

import dataclasses
import os

import pyarrow.parquet as pq
import pytest

from sparkprep.errors import QuarantineError, UsageError
from sparkprep.preprocess.flags import preprocess_config
from sparkprep.preprocess.spark import run_preprocess
from sparkprep.ingest.flags import kind_of_directory
from sparkprep.split.flags import split_config
from sparkprep.split.spark import run_split


@pytest.fixture
def tree(tmp_path, make_sample):
    root = tmp_path / "in"
    for i in range(4):
        make_sample.write(str(root / "cat" / f"c{i}.jpg"), make_sample.jpeg_bytes(make_sample.synthetic_scan(0, i)))
    return root


def test_directory_kinds_follow_one_rule():
    assert kind_of_directory(["_delta_log"]) == kind_of_directory(["split=train"]) == "catalog"
    assert kind_of_directory(["part-0.parquet"]) == kind_of_directory(["_SUCCESS", "x"]) == "catalog"
    assert kind_of_directory(["cat", "dog", "readme.txt"]) == "files"


def test_an_auto_input_kind_is_resolved_through_hadoop_when_the_job_runs(spark, tree, tmp_path):
    run_split(spark, split_config(["--input", str(tree), "--output", str(tmp_path / "splits"),
                                   "--ratios", "0.5,0.5", "--names", "a,b"]))
    cfg = preprocess_config(["--input", str(tmp_path / "splits"), "--output", str(tmp_path / "p"), "--size", "16"])
    assert cfg.input_kind == "catalog"
    report = run_preprocess(spark, dataclasses.replace(cfg, input_kind="auto"))  # as for an s3:// or hdfs:// URI
    assert report["input"]["kind"] == "catalog" and set(report["counts"]) <= {"a", "b"}  # its splits were kept


def test_too_much_quarantine_fails_without_publishing(spark, tree, tmp_path):
    for i in range(5):
        (tree / "cat" / f"bad{i}.jpg").write_bytes(b"<html>not an image</html>")
    out = tmp_path / "splits"
    with pytest.raises(QuarantineError, match=r"5 of 9 input rows \(56%\) are quarantined.*top reason: invalid"):
        run_split(spark, split_config(["--input", str(tree), "--output", str(out)]))
    assert not out.exists()
    report = run_split(spark, split_config(["--input", str(tree), "--output", str(out),
                                            "--max-quarantine-fraction", "0.6"]))
    assert report["quarantined_fraction"] == pytest.approx(5 / 9, abs=1e-6) and len(pq.read_table(str(out))) == 9


def test_augment_splits_that_the_split_table_lacks_are_a_usage_error(spark, tree, tmp_path):
    run_split(spark, split_config(["--input", str(tree), "--output", str(tmp_path / "splits"),
                                   "--ratios", "0.5,0.5", "--names", "fit,holdout"]))
    with pytest.raises(UsageError, match="--augment-splits: expected splits of the input \\(fit, holdout\\), got train"):
        run_preprocess(spark, preprocess_config(["--input", str(tmp_path / "splits"), "--output", str(tmp_path / "p"),
                                                 "--augment", "hflip", "--copies", "1"]))
    assert not os.path.exists(tmp_path / "p")
