"""Exports replace only what they wrote, publish whole, keep class indices stable (issue 9)."""

import hashlib
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds

from helpers import export
from sparkprep.errors import UsageError
from sparkprep.export import spark as export_module
from sparkprep.export.flags import export_config
from sparkprep.spark import ownership



def split_table(path, rows, make_sample):
    """A split table of files as jobs/split.py writes one: (split, label, name) -> a JPEG row."""
    records = []
    for i, (split, label, name) in enumerate(rows):
        data = make_sample.jpeg_bytes(make_sample.synthetic_scan(i % 6, i))
        digest = hashlib.sha256(data).hexdigest()
        records.append({"key": digest, "split": split, "label": label, "path": f"file:/data/{label}/{name}",
                        "sha256": digest, "status": "ok", "error": None, "content": data, "format": "JPEG"})
    pq.write_to_dataset(pa.Table.from_pylist(records), str(path), partition_cols=["split"])
    return path


@pytest.fixture
def table(tmp_path, make_sample):
    rows = [("train", label, f"{label}{i}.jpg") for label in ("ant", "bee", "cat") for i in range(3)]
    rows += [("val", label, f"{label}v.jpg") for label in ("ant", "cat")]  # val has no bee
    return split_table(tmp_path / "splits", rows, make_sample)


def files_under(root):
    return sorted(os.path.relpath(os.path.join(p, n), root) for p, _, names in os.walk(root) for n in names)


def test_a_foreign_directory_with_a_manifest_is_refused_and_untouched(spark, table, tmp_path):
    foreign = tmp_path / "team"
    (foreign / "backups").mkdir(parents=True)
    (foreign / "manifest.json").write_text('{"their": "manifest"}')
    (foreign / "backups" / "db.sql").write_text("precious")
    with pytest.raises(UsageError, match="refusing to touch it"):
        export(spark, "--input", table, "--output", foreign, "--to", "webdataset")
    assert files_under(foreign) == ["backups/db.sql", "manifest.json"]


def test_a_re_export_deletes_only_what_the_previous_manifest_lists(spark, table, tmp_path):
    out = tmp_path / "wds"
    export(spark, "--input", table, "--output", out, "--to", "webdataset", "--shard-count", "3")
    (out / "notes.txt").write_text("the user's own file")
    first = json.loads((out / "manifest.json").read_text())
    assert set(first["files"]) == {"train-000000.tar", "train-000001.tar", "train-000002.tar", "val-000000.tar",
                                   "val-000001.tar"}
    report = export(spark, "--input", table, "--output", out, "--to", "webdataset", "--shard-count", "1")
    assert files_under(out) == ["_run_report.json", "_sparkprep.json", "manifest.json", "notes.txt",
                                "train-000000.tar", "val-000000.tar"]
    assert report["output"]["removed_stale_files"] == 3


def test_a_failed_re_export_leaves_the_previous_export_whole(spark, table, tmp_path, monkeypatch):
    out = tmp_path / "wds"
    export(spark, "--input", table, "--output", out, "--to", "webdataset", "--shard-count", "2")
    before = {name: (out / name).read_bytes() for name in files_under(out)}

    def fail(published, expected):
        raise RuntimeError("injected check failure")

    monkeypatch.setattr(export_module.export_rows, "check_published", fail)
    with pytest.raises(RuntimeError, match="injected"):
        export(spark, "--input", table, "--output", out, "--to", "webdataset", "--shard-count", "1")
    assert {name: (out / name).read_bytes() for name in files_under(out)} == before


def test_a_crash_in_the_middle_of_a_publish_is_finished_by_the_next_run(spark, table, tmp_path, monkeypatch):
    out = tmp_path / "folders"
    export(spark, "--input", table, "--output", out, "--to", "imagefolder", "--splits", "train")
    calls = {"n": 0}

    class Crash(BaseException):
        pass

    def crash():
        calls["n"] += 1
        if calls["n"] == 1:
            raise Crash()

    monkeypatch.setattr(export_module, "_after_publish_step", crash)
    with pytest.raises(Crash):
        export(spark, "--input", table, "--output", out, "--to", "imagefolder", "--splits", "val")
    assert (out / "_sparkprep_publish.json").exists()
    monkeypatch.setattr(export_module, "_after_publish_step", lambda: None)
    export(spark, "--input", table, "--output", out, "--to", "imagefolder", "--splits", "val")
    manifest = json.loads((out / "manifest.json").read_text())
    on_disk = [f for f in files_under(out) if "/" in f]
    assert on_disk == manifest["files"] and all(f.startswith("val/") for f in on_disk)  # train files removed
    for name in manifest["files"]:
        assert len((out / name).read_bytes()) > 0


def test_class_indices_come_from_the_whole_table_not_the_exported_split(spark, table, tmp_path):
    for split in ("train", "val"):
        export(spark, "--input", table, "--output", tmp_path / split, "--to", "webdataset", "--splits", split)
    train = json.loads((tmp_path / "train" / "manifest.json").read_text())
    val = json.loads((tmp_path / "val" / "manifest.json").read_text())
    assert train["classes"] == val["classes"] == {"ant": 0, "bee": 1, "cat": 2}
    samples = list(wds.WebDataset(str(tmp_path / "val" / "val-000000.tar"), shardshuffle=False))
    assert sorted((json.loads(s["json"])["label"], int(s["cls"])) for s in samples) == [("ant", 0), ("cat", 2)]


def test_classes_can_be_pinned_from_an_earlier_manifest(spark, table, tmp_path):
    pinned = tmp_path / "classes.json"
    pinned.write_text(json.dumps({"classes": {"cat": 0, "bee": 1, "ant": 2, "dog": 3}}))
    export(spark, "--input", table, "--output", tmp_path / "out", "--to", "tfrecord", "--classes", pinned)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["classes"] == \
        {"cat": 0, "bee": 1, "ant": 2, "dog": 3}
    pinned.write_text(json.dumps({"cat": 0}))
    with pytest.raises(UsageError, match="have no index there"):
        export(spark, "--input", table, "--output", tmp_path / "out2", "--to", "tfrecord", "--classes", pinned)


def test_a_split_value_that_escapes_the_output_is_refused(spark, tmp_path, make_sample):
    bad = split_table(tmp_path / "bad", [("train", "ant", "a.jpg"), ("..", "ant", "b.jpg")], make_sample)
    with pytest.raises(UsageError, match="split value of the input table"):
        export(spark, "--input", bad, "--output", tmp_path / "out" / "x", "--to", "imagefolder")
    assert not (tmp_path / "out").exists()


def test_exports_carry_a_marker_and_release_their_lock(spark, table, tmp_path):
    out = tmp_path / "tf"
    export(spark, "--input", table, "--output", out, "--to", "tfrecord")
    marker = json.loads((out / ownership.MARKER).read_text())
    assert (marker["sparkprep_output"], marker["format"]) == ("export", "tfrecord")
    assert not (out / ownership.EXPORT_LOCK).exists() and not any(n.startswith("_sparkprep_staging") for n in os.listdir(out))


def test_s3_re_export_keeps_unrelated_objects(spark, table, s3_endpoint):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="shared-bucket")
    client.put_object(Bucket="shared-bucket", Key="backups/db.sql", Body=b"precious")
    client.put_object(Bucket="shared-bucket", Key="exp/other-team.bin", Body=b"theirs")
    with pytest.raises(UsageError, match="refusing to touch it"):
        export(spark, "--input", table, "--output", "s3://shared-bucket/exp", "--to", "webdataset",
               "--s3-endpoint", s3_endpoint)
    with pytest.raises(UsageError, match="expected a prefix inside the bucket"):
        export_config(["--input", str(table), "--output", "s3://shared-bucket", "--to", "webdataset"])
    for count in ("3", "1"):
        export(spark, "--input", table, "--output", "s3://shared-bucket/wds", "--to", "webdataset",
               "--shard-count", count, "--s3-endpoint", s3_endpoint)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="shared-bucket")["Contents"])
    assert keys == ["backups/db.sql", "exp/other-team.bin", "wds/_run_report.json", "wds/_sparkprep.json",
                    "wds/manifest.json", "wds/train-000000.tar", "wds/val-000000.tar"]


def test_a_concurrent_export_fails_and_touches_nothing(spark, table, tmp_path):
    import subprocess

    out = tmp_path / "wds"
    export(spark, "--input", table, "--output", out, "--to", "webdataset")
    before = {name: (out / name).read_bytes() for name in files_under(out)}
    live = subprocess.Popen(["sleep", "60"])
    try:
        (out / ownership.EXPORT_LOCK).write_text(json.dumps({"run_id": "bbbbbbbbbbbb", "host": os.uname().nodename,
                                                             "pid": live.pid}))
        with pytest.raises(ownership.Locked, match="another sparkprep run is writing this output"):
            export(spark, "--input", table, "--output", out, "--to", "webdataset", "--shard-count", "1")
        os.remove(out / ownership.EXPORT_LOCK)
        assert {name: (out / name).read_bytes() for name in files_under(out)} == before
    finally:
        live.kill()
        live.wait()


def test_an_export_report_uri_that_cannot_be_written_is_refused_before_spark(table, tmp_path):
    with pytest.raises(UsageError, match="--report: expected a writable directory"):
        export_config(["--input", str(table), "--output", str(tmp_path / "o"), "--to", "tfrecord",
                       "--report", "/no/such/dir/report.json"])
