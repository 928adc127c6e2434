"""The run report's counts on the driver (sparkprep.table_counts) equal the Spark path's
(sparkprep.spark.table_stats), field for field, on a real split table and on random tables with
every column the counts read: quarantine, augmented copies, samples of several members, exact
copies with conflicting labels, keys in several splits, and nulls."""

import random

import pytest

from helpers import split
from sparkprep.spark.table_stats import table_stats

SCHEMA = ("key string, split string, label string, status string, aug_index int, path string, error string, "
          "sha256 string, format string, sample string, rel_path string, member string, width int, height int, "
          "size long")


def random_table(spark, seed, n=400):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        key = f"k{rng.randrange(n // 2)}" if rng.random() < 0.95 else None
        pathless = rng.random() < 0.1  # a tabular row: where it came from is its key, unique here (no ties)
        key = f"row{i}" if pathless else key
        sample = f"s{rng.randrange(n // 3)}" if rng.random() < 0.9 else None
        member = rng.choice(["jpg", "json", "cls", None])
        status = rng.choice(["ok"] * 6 + ["corrupt", "empty", "too_large"])
        rows.append((
            key,
            rng.choice(["train", "val", "test"]),
            rng.choice(["a", "b", "c", None]),
            status,
            rng.choice([0, 0, 0, 1, 2]),
            None if pathless else f"/in/{i:04d}.{member}",
            None if status == "ok" else f"reason {rng.randrange(4)}",
            f"{rng.randrange(n // 4):064x}" if rng.random() < 0.9 else None,
            "JPEG" if member == "jpg" else None,
            sample,
            sample if rng.random() < 0.3 else f"{sample}.{member}",
            member,
            rng.choice([None, 20, 32, 100, 5000]) if member == "jpg" else None,  # side-cars have no size
            rng.choice([None, 31, 64, 4096]) if member == "jpg" else None,
            rng.randrange(1 << 25),
        ))
    return spark.createDataFrame(rows, SCHEMA)


@pytest.mark.parametrize("seed", [1])
def test_counts_on_the_driver_equal_the_counts_in_spark_on_random_tables(spark, seed):
    table = random_table(spark, seed)
    # every column; without the sample columns; without key (where a row came from is then its path alone)
    for narrowed in (table, table.select("key", "split", "label", "status", "path", "error", "sha256"),
                     table.where("path IS NOT NULL").select("label", "status", "path", "error", "sha256", "aug_index")):
        on_driver, in_spark = table_stats(narrowed), table_stats(narrowed, None)
        assert on_driver == in_spark, narrowed.columns
    assert in_spark["duplicates"]["conflicting_label_groups"] > 0 and in_spark["quarantine"]
    assert table_stats(table)["samples"]["incomplete"] and table_stats(table)["leakage"]["keys_in_several_splits"]


def test_counts_on_the_driver_equal_the_counts_in_spark_on_the_sample_split(spark, sample_tree, tmp_path):
    from sparkprep.spark.tables import read_table

    split(spark, "--input", sample_tree, "--output", tmp_path / "s", "--phash", "off")
    table = read_table(spark, str(tmp_path / "s"))
    on_driver, in_spark = table_stats(table), table_stats(table, None)
    assert on_driver == in_spark
    assert in_spark["duplicates"]["groups"] > 0 and len(in_spark["quarantine"]) >= 4


def test_the_page_on_the_driver_equals_the_page_in_spark(spark, sample_tree, processed_sample, tmp_path):
    """report.html's choices (thumbnail cells) and size histograms from the collected columns equal Spark's,
    on a split table, a processed table with augmented copies and a random table with side-car members."""
    from sparkprep.spark.table_stats import small_columns
    from sparkprep.spark.tables import read_table
    from sparkprep.spark.visuals import _size_histograms, report_visuals

    split(spark, "--input", sample_tree, "--output", tmp_path / "s", "--phash", "off")
    for path in (tmp_path / "s", processed_sample[0]):
        table = read_table(spark, str(path))
        report = table_stats(table)
        on_driver, in_spark = report_visuals(table, report, small_columns(table)), report_visuals(table, report)
        assert on_driver == in_spark and len(in_spark["thumbs"]) >= 20
        assert sum(n for _, n in in_spark["histograms"]["width (px)"]) == report["status_counts"]["ok"] - (
            report.get("augmented_copies") or 0)
    table = random_table(spark, 3)
    ok = table.where("status = 'ok' AND aug_index = 0")
    from sparkprep.table_counts import size_histograms

    assert size_histograms(small_columns(table)) == _size_histograms(ok, table)
    widths = dict(size_histograms(small_columns(table))["width (px)"])
    assert sum(widths.values()) == ok.where("width IS NOT NULL").count() < ok.count()  # nulls are not binned


def test_normalization_and_reconciliation_on_the_driver_equal_spark(spark, sample_tree, processed_sample, tmp_path):
    """A small table's channel statistics and its check against the listing come from the columns
    already collected for the counts (no Spark job): the same results as in Spark, and the same
    refusals when a row is missing or written twice."""
    from sparkprep.ingest.spark.reconcile import Reconciliation, ReconciliationError, path_identity
    from sparkprep.preprocess.spark import channel_normalization
    from sparkprep.spark.table_stats import small_columns
    from sparkprep.spark.tables import read_table

    processed = read_table(spark, str(processed_sample[0]))
    small = small_columns(processed)
    on_driver = channel_normalization(processed, small=small)
    assert on_driver == channel_normalization(processed) and on_driver["3"]["images"] > 50
    assert channel_normalization(processed, "val", small) == channel_normalization(processed, "val")

    split(spark, "--input", sample_tree, "--output", tmp_path / "s", "--phash", "off")
    table = read_table(spark, str(tmp_path / "s"))
    paths = [r["path"] for r in table.select("path").collect()]
    listed = Reconciliation(expected_rows=len(paths), identity=path_identity(paths))
    missing = table.where(table.path != sorted(paths)[0])
    twice = table.unionByName(table.where(table.path == sorted(paths)[0]))
    for written, good in ((table, True), (processed, True), (missing, False), (twice, False)):
        outcomes = []
        for small in (small_columns(written), None):
            summary = {}
            try:
                listed.verify(written, summary, small)
            except ReconciliationError:
                pass
            outcomes.append(summary)
        assert outcomes[0] == outcomes[1] and outcomes[0]["reconciled"] is good, outcomes
