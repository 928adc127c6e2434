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


class MemoryStore:
    """A store with an exclusive create, as O_EXCL, HDFS and S3's If-None-Match give; `on_read` runs
    after a read returns (a test forces another run's steps in there)."""

    def __init__(self):
        self.files = {}
        self.on_read = None

    def create(self, name, text):
        if name in self.files:
            return False
        self.files[name] = text
        return True

    def read(self, name):
        text = self.files.get(name)
        if self.on_read:
            hook, self.on_read = self.on_read, None
            hook()
        return text

    def delete(self, name):
        self.files.pop(name, None)

    def lock_files(self):
        return ownership.LockFiles(self.create, self.read, self.delete)


def dead_lock_text():
    """A lock whose holder provably died: this machine's identity, a pid that is not running."""
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    here = ownership.holder_identity()
    return json.dumps({"run_id": "dddddddddddd", **here, "pid": gone.pid, "pid_start": 1})


def test_two_takeovers_of_a_dead_holders_lock_forced_to_interleave_leave_one_holder():
    """Run C reads the dead holder's lock; run B takes it over completely; then C goes on. C must not
    delete B's fresh lock (the old takeover read, deleted unconditionally, then created)."""
    store = MemoryStore()
    store.files["out.__lock"] = dead_lock_text()
    files = store.lock_files()
    took = []

    def run_b():
        ownership.acquire_lock(files, "out.__lock", "out.__lock", "bbbbbbbbbbbb")
        took.append("b")

    store.on_read = run_b  # B runs entirely between C's read of the stale lock and C's next step
    with pytest.raises(ownership.Locked, match="run bbbbbbbbbbbb"):
        ownership.acquire_lock(files, "out.__lock", "out.__lock", "cccccccccccc")
    assert took == ["b"] and json.loads(store.files["out.__lock"])["run_id"] == "bbbbbbbbbbbb"
    assert list(store.files) == ["out.__lock"]  # no takeover marker left behind


def test_a_takeover_in_progress_is_not_taken_over_twice():
    store = MemoryStore()
    stale = dead_lock_text()
    store.files["out.__lock"] = stale
    store.files[ownership.takeover_marker("out.__lock", stale)] = "another run's marker"
    with pytest.raises(ownership.Locked, match="a takeover marker is there"):
        ownership.acquire_lock(store.lock_files(), "out.__lock", "out.__lock", "cccccccccccc")
    assert store.files["out.__lock"] == stale


def test_a_dead_holders_lock_is_taken_over_and_released():
    store = MemoryStore()
    store.files["out.__lock"] = dead_lock_text()
    files = store.lock_files()
    ownership.acquire_lock(files, "out.__lock", "out.__lock", "eeeeeeeeeeee")
    assert json.loads(store.files["out.__lock"])["run_id"] == "eeeeeeeeeeee"
    ownership.release_lock(files, "out.__lock", "ffffffffffff")  # not ours: kept
    assert "out.__lock" in store.files
    ownership.release_lock(files, "out.__lock", "eeeeeeeeeeee")
    assert store.files == {}


def test_a_holder_is_dead_only_when_every_identity_field_matches_and_its_process_is_gone():
    import os

    here = ownership.holder_identity()
    assert here["boot_id"] and here["pid_ns"] and here["pid_start"]
    alive = json.dumps({"run_id": "x", **here})
    assert ownership.holder_state(alive) == "alive"
    assert ownership.holder_state(dead_lock_text()) == "dead"
    reused = json.dumps({"run_id": "x", **here, "pid_start": here["pid_start"] - 1})  # the pid is another process now
    assert ownership.holder_state(reused) == "dead"
    # the same host name elsewhere (a container with --hostname, SageMaker's algo-1): cannot tell
    for field, other in (("host", "another-host"), ("boot_id", "another-boot"), ("pid_ns", 1)):
        gone = json.loads(dead_lock_text())
        assert ownership.holder_state(json.dumps({**gone, field: other})) == "unknown"
    # a lock of an older sparkprep (host and pid only): never judged dead
    old = json.dumps({"run_id": "x", "host": here["host"], "pid": 2 ** 22 + 12345})
    assert ownership.holder_state(old) == "unknown" and ownership.lock_holder_alive(old)
    assert ownership.holder_state("not json") == "unknown" and os.getpid() == here["pid"]


def test_a_live_holder_is_still_alive_seen_from_another_pid_namespace(tmp_path):
    """The old check (same host name, pid gone) judged a live holder dead from inside a container:
    there, the holder's pid is not visible, but the PID namespace differs."""
    import shutil
    import subprocess
    import sys

    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed for this test"
    alive = ownership.lock_text("aaaaaaaaaaaa")
    (tmp_path / "lock").write_text(alive)
    probe = ("import sys; from sparkprep.spark import ownership; "
             "text = open(sys.argv[1]).read(); "
             "print(ownership.holder_state(text), ownership.lock_holder_alive(text))")
    done = subprocess.run([unshare, "--pid", "--fork", "--mount-proc", sys.executable, "-c", probe,
                           str(tmp_path / "lock")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"unshare --pid needs root (as CI has): {done.stderr}"
    assert done.stdout.split() == ["unknown", "True"]
    store = MemoryStore()
    store.files["out.__lock"] = alive
    with pytest.raises(ownership.Locked, match="it is running"):
        ownership.acquire_lock(store.lock_files(), "out.__lock", "out.__lock", "bbbbbbbbbbbb")


def test_an_s3_store_that_ignores_conditional_writes_cannot_hold_a_lock():
    class IgnoresConditions:
        def put_object(self, **kwargs):
            return {}

    with pytest.raises(RuntimeError, match="ignores conditional writes"):
        ownership.create_exclusive_s3("b", "out/_sparkprep.lock", "{}", IgnoresConditions())


def test_takeovers_on_s3_forced_to_interleave_leave_one_holder(s3_endpoint):
    """The same protocol on S3 (If-None-Match creates), against a real S3 API on loopback."""
    import boto3

    from sparkprep.export.destinations import S3Destination

    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="locks")
    dest = S3Destination("s3://locks/export", s3_endpoint)
    dest.write_text(ownership.EXPORT_LOCK, dead_lock_text())
    files = ownership.LockFiles(dest.create_exclusive, dest.read_text, dest.delete)
    reads = []

    def read(name):
        text = dest.read_text(name)
        if not reads:
            reads.append(name)
            ownership.acquire_lock(files, ownership.EXPORT_LOCK, "lock", "bbbbbbbbbbbb")  # B, entirely, now
        return text

    with pytest.raises(ownership.Locked, match="run bbbbbbbbbbbb"):
        ownership.acquire_lock(ownership.LockFiles(dest.create_exclusive, read, dest.delete),
                               ownership.EXPORT_LOCK, "lock", "cccccccccccc")
    assert json.loads(dest.read_text(ownership.EXPORT_LOCK))["run_id"] == "bbbbbbbbbbbb"
    assert dest.names() == [ownership.EXPORT_LOCK]
