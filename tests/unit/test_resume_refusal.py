"""Why a killed run's staging directory is not resumed from (sparkprep.pipeline.resume.refusal): said, never silent."""

from sparkprep import __version__
from sparkprep.pipeline.resume import refusal

SETTINGS = {"ratios": [0.8, 0.1, 0.1], "labels_csv_digest": "aa"}


def test_the_same_settings_and_version_with_a_planned_listing_resume():
    assert refusal({"settings": dict(SETTINGS), "sparkprep": __version__}, SETTINGS, planned=True) is None


def test_each_reason_is_named():
    record = {"settings": dict(SETTINGS), "sparkprep": __version__}
    assert refusal(None, SETTINGS, True) == "it has no resume record"
    assert refusal(dict(record, sparkprep="0.0.1"), SETTINGS, True) == \
        f"it was written by sparkprep 0.0.1, this is {__version__}"
    edited = dict(SETTINGS, labels_csv_digest="bb")
    assert refusal(record, edited, True) == \
        "settings that decide a row changed since the killed run: labels_csv_digest"
    assert refusal(record, {"ratios": [0.8, 0.1, 0.1]}, True) == \
        "settings that decide a row changed since the killed run: labels_csv_digest"  # --labels dropped
    assert refusal(record, SETTINGS, planned=False) == "it has no planned listing"


def test_only_committed_tasks_data_files_are_reused():
    """Hadoop's v1 committer renames a task's attempt directory to task_* when the task commits: those files are
    whole. An attempt's files (a task killed mid-write), hidden files and checksums are never read. A write that
    finished moved its files into place: they are whole too, each its part number's task; the files of another
    directory written inside (a name starting with '_') are not this write's."""
    from sparkprep.spark.committed import committed_files

    root = "file:/o/processed.__staging-abc"
    stage = f"{root}/_temporary/0"
    listed = [f"{stage}/task_2026_0000_m_000001/split=train/part-00001-u.c000.parquet",
              f"{stage}/task_2026_0000_m_000001/split=val/part-00001-u.c000.parquet",
              f"{stage}/task_2026_0000_m_000003/part-00003-u.c000.parquet",
              f"{stage}/_temporary/attempt_2026_0000_m_000004_0/split=train/part-00004-u.c000.parquet",
              f"{stage}/task_2026_0000_m_000001/split=train/.part-00001-u.c000.parquet",
              f"{stage}/task_2026_0000_m_000001/split=train/_part.parquet",
              f"{root}/split=test/part-00007-u.c000.snappy.parquet",
              f"{root}/_sparkprep_rows/part-00002-u.c000.snappy.parquet",
              f"{root}/_sparkprep_rows/_temporary/0/task_2026_0000_m_000002/part-00002-u.c000.parquet",
              "file:/o/processed.__staging-abcd/part-00009-u.c000.parquet"]
    assert committed_files(root, listed) == [
        ("task_2026_0000_m_000001", listed[0]), ("task_2026_0000_m_000001", listed[1]),
        ("task_2026_0000_m_000003", listed[2]), ("part-00007", listed[6])]
    rows = f"{root}/_sparkprep_rows"
    assert committed_files(rows, listed) == [("part-00002", listed[7]), ("task_2026_0000_m_000002", listed[8])]
