"""Ownership rules and the swap journal as pure logic (no Spark, no disk)."""

import json

import pytest

from sparkprep.spark import ownership
from sparkprep.spark.ownership import NotOurs, classify_output, legacy_swap, stranded, swap_paths, swap_steps


def reader(files):
    return lambda name: files.get(name)


def test_empty_and_marked_outputs_are_classified():
    assert classify_output([], reader({}), "table", "/x") == "new"
    marker = json.dumps(ownership.marker("table", "parquet", "split", "0123456789ab"))
    assert classify_output(["_sparkprep.json", "split=train"], reader({"_sparkprep.json": marker}),
                           "table", "/x") == "owned"


def test_an_export_marker_is_not_a_table_and_foreign_files_are_refused():
    marker = json.dumps(ownership.marker("export", "webdataset", "export", "0123456789ab"))
    with pytest.raises(NotOurs, match="which is a sparkprep export output"):
        classify_output(["_sparkprep.json"], reader({"_sparkprep.json": marker}), "table", "/x")
    with pytest.raises(NotOurs, match="it holds _SUCCESS, part-0.parquet and no _sparkprep.json"):
        classify_output(["_SUCCESS", "part-0.parquet"], reader({}), "table", "/x")


def test_legacy_outputs_are_adopted_only_when_their_report_names_this_path():
    report = json.dumps({"job": "split", "versions": {"sparkprep": "0.1.0"}, "output": {"uri": "file:/data/out"}})
    names = ["_run_report.json", "_SUCCESS", "split=train"]
    assert classify_output(names, reader({"_run_report.json": report}), "table", "/data/out") == "legacy"
    with pytest.raises(NotOurs):  # a copied report of another path
        classify_output(names, reader({"_run_report.json": report}), "table", "/data/elsewhere")
    with pytest.raises(NotOurs):  # someone else's _run_report.json
        classify_output(names, reader({"_run_report.json": '{"job": "split"}'}), "table", "/data/out")


def test_legacy_exports_list_their_shards_and_legacy_imagefolders_are_refused():
    report = json.dumps({"job": "export", "versions": {"sparkprep": "0.1.0"}, "output": {"uri": "s3a://b/wds/"}})
    manifest = json.dumps({"format": "webdataset", "shards": [{"name": "train-000000.tar"}]})
    files = {"_run_report.json": report, "manifest.json": manifest}
    assert classify_output(files, reader(files), "export", "s3://b/wds") == "legacy"
    assert ownership.previous_files(manifest) == ["train-000000.tar"]
    files["manifest.json"] = json.dumps({"format": "imagefolder", "shards": [{"name": "train/cat/"}]})
    with pytest.raises(NotOurs, match="did not record its files"):
        classify_output(files, reader(files), "export", "s3://b/wds")


def test_swap_steps_roll_a_crashed_swap_forward_from_any_point():
    paths = swap_paths("file:/d/out", "0123456789ab")
    journal = {"run_id": "0123456789ab", **{k: paths[k] for k in ("output", "staging", "retired", "journal")}}
    out, staging, retired, log = paths["output"], paths["staging"], paths["retired"], paths["journal"]
    # before the first rename
    assert swap_steps(journal, {out, staging}.__contains__) == [
        ("rename", out, retired), ("rename", staging, out), ("delete", retired, ""), ("delete", log, "")]
    # between the renames: the output is missing
    assert swap_steps(journal, {staging, retired}.__contains__) == [
        ("rename", staging, out), ("delete", retired, ""), ("delete", log, "")]
    # after both renames
    assert swap_steps(journal, {out, retired}.__contains__) == [("delete", retired, ""), ("delete", log, "")]


def test_only_exactly_named_siblings_of_crashed_runs_are_stranded():
    siblings = ["file:/d/out", "file:/d/out.__staging-0123456789ab", "file:/d/out.__old-ffffffffffff",
                "file:/d/out.__staging-current00000", "file:/d/out.__old-notarunid", "file:/d/output.__old-0123456789ab",
                "file:/d/out.__staging-aaaaaaaaaaaa"]
    assert stranded("file:/d/out", siblings, journal_run="aaaaaaaaaaaa") == [
        "file:/d/out.__old-ffffffffffff", "file:/d/out.__staging-0123456789ab"]


def test_a_legacy_crash_between_renames_restores_a_whole_table():
    siblings = ["file:/d/out.__old-0123456789ab", "file:/d/out.__staging-0123456789ab"]
    assert legacy_swap("file:/d/out", siblings, exists_output=False) == [
        ("rename", "file:/d/out.__staging-0123456789ab", "file:/d/out"), ("delete", "file:/d/out.__old-0123456789ab", "")]
    assert legacy_swap("file:/d/out", siblings[:1], exists_output=False) == [
        ("rename", "file:/d/out.__old-0123456789ab", "file:/d/out")]
    assert legacy_swap("file:/d/out", siblings, exists_output=True) == []


def test_uris_compare_across_spellings():
    assert ownership.same_uri("s3a://b/x/", "s3://b/x")
    assert ownership.same_uri("file:/tmp/a", "/tmp/a")
    assert not ownership.same_uri("s3://b/x", "s3://b/xy")


def test_a_dead_holders_lock_is_stale_and_a_live_ones_is_not():
    import os
    import socket

    live = json.dumps({"run_id": "x", "host": socket.gethostname(), "pid": os.getpid()})
    assert ownership.lock_holder_alive(live)
    dead = json.dumps({"run_id": "x", "host": socket.gethostname(), "pid": 2 ** 22 + 12345})
    assert not ownership.lock_holder_alive(dead)
    assert ownership.lock_holder_alive(json.dumps({"run_id": "x", "host": "another-host", "pid": 1}))
