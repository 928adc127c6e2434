"""Table jobs touch only what they own: refusal, locks, validate-then-publish, crash recovery (issue 9)."""

import json
import os
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import splitter

from sparkprep.errors import UsageError
from sparkprep.ingest.spark import sources
from sparkprep.ingest.spark.reconcile import ReconciliationError
from sparkprep.spark import ownership, tables


@pytest.fixture
def tiny_tree(tmp_path, make_sample):
    root = tmp_path / "in"
    for ci, name in enumerate(("cat", "dog")):
        for i in range(4):
            make_sample.write(str(root / name / f"{name}{i}.jpg"),
                              make_sample.jpeg_bytes(make_sample.synthetic_scan(ci, i)))
    return root


# --phash off: these tests are about what a run may touch; the hash and its audit (a few Spark jobs
# per run) are tested in test_leakage_audit.py
split = splitter("--phash", "off")


def snapshot(directory):
    """Every file below a directory with its bytes, and the directory's siblings."""
    files = {}
    for parent, _, names in os.walk(directory):
        for name in names:
            with open(os.path.join(parent, name), "rb") as handle:
                files[os.path.relpath(os.path.join(parent, name), directory)] = handle.read()
    return files, sorted(os.listdir(os.path.dirname(str(directory).rstrip("/"))))


def marker_of(out):
    with open(os.path.join(out, ownership.MARKER), encoding="utf-8") as handle:
        return json.load(handle)


def test_a_pyarrow_dataset_with_success_is_refused_and_untouched(spark, tiny_tree, tmp_path):
    foreign = tmp_path / "their_dataset"
    pq.write_to_dataset(pa.table({"x": [1, 2], "split": ["a", "b"]}), str(foreign), partition_cols=["split"])
    (foreign / "_SUCCESS").write_bytes(b"")
    before = snapshot(foreign)
    with pytest.raises(UsageError, match="refusing to touch it"):
        split(spark, tiny_tree, foreign)
    assert snapshot(foreign) == before  # no lock, no staging, not a byte changed


def test_a_foreign_delta_table_is_refused_with_its_history(spark, tiny_tree, tmp_path):
    from deltalake import write_deltalake

    foreign = tmp_path / "their_delta"
    write_deltalake(str(foreign), pa.table({"x": [1]}))
    write_deltalake(str(foreign), pa.table({"x": [2]}), mode="append")
    before = snapshot(foreign)
    with pytest.raises(UsageError, match="refusing to touch it"):
        split(spark, tiny_tree, foreign, "--format", "delta")
    assert snapshot(foreign) == before


def test_outputs_carry_a_marker_and_re_runs_replace_them(spark, tiny_tree, tmp_path):
    out = tmp_path / "splits"
    split(spark, tiny_tree, out, "--seed", "1")
    first = marker_of(out)
    assert (first["sparkprep_output"], first["format"], first["job"]) == ("table", "parquet", "split")
    split(spark, tiny_tree, out, "--seed", "2")
    assert marker_of(out)["run_id"] != first["run_id"]
    assert sorted(os.listdir(tmp_path)) == ["in", "splits"]  # no lock, journal, staging or old table left


def test_a_crash_between_the_two_renames_is_finished_by_the_next_run(spark, tiny_tree, tmp_path, monkeypatch):
    out = tmp_path / "splits"
    split(spark, tiny_tree, out, "--seed", "1")

    class Crash(BaseException):
        pass

    def crash(index):
        if index == 0:  # the old table was renamed away; the new one is not in place yet
            raise Crash()

    monkeypatch.setattr(tables, "_after_step", crash)
    with pytest.raises(Crash):
        split(spark, tiny_tree, out, "--seed", "2")
    monkeypatch.setattr(tables, "_after_step", lambda index: None)
    siblings = sorted(os.listdir(tmp_path))
    assert "splits" not in siblings and "splits.__publish.json" in siblings
    assert any(s.startswith("splits.__old-") for s in siblings) and any(s.startswith("splits.__staging-") for s in siblings)
    crashed_run = json.loads((tmp_path / "splits.__publish.json").read_text())["run_id"]

    with tables.claimed_output(spark, str(out), "parquet", "split") as claim:
        assert claim.state == "owned"
        assert marker_of(out)["run_id"] == crashed_run  # rolled forward: the new table, whole
    assert sorted(os.listdir(tmp_path)) == ["in", "splits"]
    seeds = {r["split"] for r in pq.read_table(str(out)).to_pylist()}
    assert seeds and json.loads((out / "_run_report.json").read_text())["split"]["seed"] == "2"


def test_a_legacy_crash_and_stranded_directories_are_cleaned_up(spark, tiny_tree, tmp_path):
    out = tmp_path / "splits"
    split(spark, tiny_tree, out)
    os.remove(out / ownership.MARKER)  # as sparkprep 0.1.0 wrote it: its report names this path
    os.rename(out, tmp_path / "splits.__old-0123456789ab")  # 0.1.0 crashed between its renames
    (tmp_path / "splits.__staging-ba9876543210").mkdir()  # and an older crash left this
    (tmp_path / "splits.__staging-not-a-run-id").mkdir()  # not ours by name: left alone
    split(spark, tiny_tree, out)
    assert sorted(os.listdir(tmp_path)) == ["in", "splits", "splits.__staging-not-a-run-id"]
    assert marker_of(out)["sparkprep_output"] == "table"


def test_delta_runs_killed_before_their_commit_are_deleted_by_the_next_run(spark, tiny_tree, tmp_path):
    """A Delta write (delta-rs) killed before its commit leaves run-<id>/ holding its mark: the next run deletes
    it, on a path that held nothing else (which was refused before) as in an existing table. A committed run's
    directory never carries the mark and stays (time travel reads it), and so does one without the mark."""
    from sparkprep.spark import delta_rs

    def killed(table, name):
        (table / name / "split=train").mkdir(parents=True)
        (table / name / delta_rs.RUN_MARK).write_text("{}")
        pq.write_table(pa.table({"x": [1]}), str(table / name / "split=train" / "part-00000.parquet"))

    def runs(table):
        return sorted(p for p in os.listdir(table) if p.startswith("run-"))

    new = tmp_path / "new"
    killed(new, "run-0123456789ab")
    split(spark, tiny_tree, new, "--format", "delta")
    assert len(runs(new)) == 1 and not any((new / r / delta_rs.RUN_MARK).exists() for r in runs(new))

    out = tmp_path / "out"
    split(spark, tiny_tree, out, "--format", "delta")
    committed = runs(out)
    killed(out, "run-ba9876543210")
    (out / "run-ffffffffffff").mkdir()  # no mark: not provably a killed run's, left alone
    split(spark, tiny_tree, out, "--format", "delta")
    after = runs(out)
    assert "run-ba9876543210" not in after and set(committed) | {"run-ffffffffffff"} < set(after)
    assert len(after) == len(committed) + 2 and not any((out / r / delta_rs.RUN_MARK).exists() for r in after)


def test_a_concurrent_run_fails_and_a_dead_runs_lock_is_taken_over(spark, tiny_tree, tmp_path):
    out = tmp_path / "splits"
    lock = tmp_path / "splits.__lock"
    live = subprocess.Popen(["sleep", "60"])
    try:
        lock.write_text(json.dumps({"run_id": "aaaaaaaaaaaa", **ownership.holder_identity(), "pid": live.pid,
                                    "pid_start": ownership.process_start(live.pid)}))
        with pytest.raises(ownership.Locked, match="another sparkprep run is writing this output.*it is running"):
            split(spark, tiny_tree, out)
        assert not out.exists() and lock.exists()
    finally:
        live.kill()
        live.wait()
    split(spark, tiny_tree, out)  # its holder is dead now: the lock is taken over
    assert out.exists() and not lock.exists()
    # a lock without the identity fields (an older sparkprep, another machine): refused, with the way out
    lock.write_text(json.dumps({"run_id": "bbbbbbbbbbbb", "host": os.uname().nodename, "pid": live.pid}))
    with pytest.raises(ownership.Locked, match="cannot tell whether it is alive.*delete the lock file by hand"):
        split(spark, tiny_tree, out)
    os.remove(lock)


def test_a_table_lock_on_s3a_is_a_conditional_put_not_hadoops_check_then_put(spark, s3_endpoint, monkeypatch):
    """S3A's and EMRFS's create(overwrite=false) checks, then PUTs unconditionally: two runs could
    both create the lock. The table lock on S3 goes through boto3's If-None-Match instead."""
    import boto3

    from sparkprep.spark.hadoop_fs import HadoopFS

    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="table-locks")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    fs = HadoopFS(spark)  # no s3a jars here: a Hadoop call on s3a:// would fail, so this is boto3's PUT
    assert fs.create_exclusive("s3a://table-locks/out.__lock", "one")
    assert not fs.create_exclusive("s3a://table-locks/out.__lock", "two")
    assert not fs.create_exclusive("s3://table-locks/out.__lock", "three")  # one object, whatever the scheme
    body = boto3.client("s3", endpoint_url=s3_endpoint).get_object(Bucket="table-locks", Key="out.__lock")["Body"]
    assert body.read() == b"one"


def test_a_failed_reconciliation_publishes_nothing(spark, tiny_tree, tmp_path, monkeypatch):
    out = tmp_path / "splits"
    split(spark, tiny_tree, out, "--seed", "1")
    before = snapshot(out)
    real = sources.list_files

    def listing_with_a_vanished_file(root, *args):
        # a file listed by the driver that is gone before Spark reads it
        listed = real(root, *args)
        return listed + [(listed[0][0].rsplit("/", 1)[0] + "/gone.jpg", 1234)]

    monkeypatch.setattr(sources, "list_files", listing_with_a_vanished_file)
    with pytest.raises(ReconciliationError, match="Nothing was published"):
        split(spark, tiny_tree, out, "--seed", "2")
    assert snapshot(out) == before


def test_parquet_on_s3_is_never_replaced_non_atomically(spark, tiny_tree, s3_endpoint, monkeypatch):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="tables")
    client.put_object(Bucket="tables", Key="splits/split=train/part-0.parquet", Body=b"PAR1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    with pytest.raises(UsageError, match="use --format delta"):
        split(spark, tiny_tree, "s3://tables/splits")
    assert [o["Key"] for o in client.list_objects_v2(Bucket="tables")["Contents"]] == \
        ["splits/split=train/part-0.parquet"]


def test_a_symlink_to_a_file_outside_the_input_never_reaches_the_catalog(spark, tiny_tree, tmp_path):
    (tmp_path / "id_rsa").write_bytes((tiny_tree / "cat" / "cat0.jpg").read_bytes())  # a valid image, even
    os.symlink(tmp_path / "id_rsa", tiny_tree / "cat" / "innocent.jpg")
    os.symlink(tiny_tree, tiny_tree / "dog" / "loop")
    report = split(spark, tiny_tree, tmp_path / "splits")
    rows = pq.read_table(str(tmp_path / "splits"), columns=["rel_path"]).to_pylist()
    assert sorted(r["rel_path"] for r in rows) == sorted(f"{c}/{c}{i}.jpg" for c in ("cat", "dog") for i in range(4))
    rec = report["reconciliation"]
    assert (rec["skipped_symlinks"], rec["reconciled"]) == (2, True)
    followed = split(spark, tiny_tree, tmp_path / "followed", "--follow-symlinks")
    rows = pq.read_table(str(tmp_path / "followed"), columns=["rel_path"]).to_pylist()
    assert "cat/innocent.jpg" in {r["rel_path"] for r in rows} and followed["reconciliation"]["rows"] == 9


def test_labels_csv_paths_are_nfc_and_two_spellings_of_one_name_are_both_kept(spark, tiny_tree, tmp_path):
    import unicodedata

    data = (tiny_tree / "cat" / "cat0.jpg").read_bytes()
    nfd, nfc = unicodedata.normalize("NFD", "café.jpg"), unicodedata.normalize("NFC", "café.jpg")
    (tiny_tree / "cat" / nfd).write_bytes(data)
    (tiny_tree / "cat" / nfc).write_bytes(data[:-1] + b"\0")
    labels = tmp_path / "labels.csv"
    labels.write_text(f"path,label\ncat/{nfd},feline\n", encoding="utf-8")  # written in NFD, as macOS would
    report = split(spark, tiny_tree, tmp_path / "splits", "--labels", labels, "--key-by", "path")
    rows = [r for r in pq.read_table(str(tmp_path / "splits"), columns=["rel_path", "label", "path"]).to_pylist()
            if r["rel_path"] == f"cat/{nfc}"]
    assert len(rows) == 2 and {r["label"] for r in rows} == {"feline"} and len({r["path"] for r in rows}) == 2
    assert report["reconciliation"]["same_name_after_nfc"] == 1


def test_a_delta_input_with_deletion_vectors_is_refused_not_resurrected(spark, tmp_path):
    from deltalake import write_deltalake

    table = tmp_path / "delta"
    write_deltalake(str(table), pa.table({"key": ["a", "b"], "split": ["train", "val"]}), partition_by=["split"])
    assert tables.read_table(spark, str(table)).count() == 2
    # what a Delta writer with deletion vectors records when it upgrades the table (a DELETE follows)
    protocol = {"protocol": {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["deletionVectors"],
                             "writerFeatures": ["deletionVectors"]}}
    (table / "_delta_log" / "00000000000000000001.json").write_text(json.dumps(protocol) + "\n")
    with pytest.raises(UsageError, match="deletion vectors"):
        tables.read_table(spark, str(table))
