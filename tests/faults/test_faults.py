"""The fault suite (`make test-faults`, run by CI after `make test`): real spark-submit runs hit by
a killed Python worker, a killed worker JVM, a straggler under speculation, a driver SIGKILLed at
each step of the publish protocol, a concurrent run, and a full disk. Each is compared with a clean
run: the same rows, nothing lost, nothing extra."""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest
from helpers import table_rows
from conftest import load_script, spark_submit

from sparkprep.pipeline.flags import pipeline_config
from sparkprep.pipeline.spark.run import run_pipeline
from sparkprep.spark import ownership
from sparkprep.spark.faults import FAIL_ENV, FAIL_HOW_ENV, KILL_DRIVER_ENV
from sparkprep.split.flags import split_config
from sparkprep.split.spark import run_split

PIPELINE = ["--ratios", "0.7,0.15,0.15", "--seed", "42", "--size", "32", "--phash", "off"]
SPLIT = ["--ratios", "0.7,0.15,0.15", "--phash", "off"]


rows = table_rows


def files_of(table):
    """The data files and sparkprep's own files of a table directory: no temporaries, no strays."""
    return sorted(os.path.relpath(os.path.join(d, n), table) for d, _, names in os.walk(table) for n in names)


def assert_same_pipeline(out, clean):
    for table in ("splits", "processed"):
        assert rows(out / table) == rows(clean / table), table
        others = [[f for f in files_of(t / table) if not f.endswith(".parquet")] for t in (out, clean)]
        assert others[0] == others[1]  # sparkprep's own files, no temporaries
        assert all(f.startswith("split=") for f in files_of(out / table) if f.endswith(".parquet"))
    siblings = [p for p in os.listdir(out) if ".__staging-" in p or ".__old-" in p or ".lock" in p]
    assert siblings == [], siblings


@pytest.fixture(scope="module")
def clean(spark, sample_tree, tmp_path_factory):
    """The pipeline, undisturbed, in this session: every fault case must give exactly these rows."""
    out = tmp_path_factory.mktemp("clean") / "out"
    run_pipeline(spark, pipeline_config(["--input", str(sample_tree), "--output", str(out), *PIPELINE]))
    return out


def test_a_python_worker_killed_mid_batch(clean, sample_tree, tmp_path):
    """Attempt 0 of every one-pass task SIGKILLs its own Python worker after writing its files and
    before reporting them (no cleanup of its own runs); the retries (local[2,3]) give the same
    tables, and the dead attempts' files are gone."""
    out = tmp_path / "out"
    result = spark_submit("pipeline", "--input", sample_tree, "--output", out, *PIPELINE, master="local[2,3]",
                          env={FAIL_ENV: "1", FAIL_HOW_ENV: "kill"})
    said = result.stdout + result.stderr
    assert result.returncode == 0, said[-4000:]
    assert "Python worker exited unexpectedly (crashed)" in said, said[-4000:]
    assert_same_pipeline(out, clean)


def cluster_run(cluster, args, env):
    """The pipeline on a standalone cluster, as a running process. The executors get their
    environment from the workers, so the fault hooks' variables go through spark.executorEnv."""
    local_submit = load_script("local_submit")
    conf = {"spark.pyspark.python": sys.executable, "spark.executor.memory": "1g",
            "spark.driver.bindAddress": "127.0.0.1", "spark.driver.host": "127.0.0.1",
            "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4", **env.pop("conf", {})}
    conf.update({f"spark.executorEnv.{key}": value for key, value in env.items()})
    command = local_submit.submit_command("pipeline", args, master=cluster.url, profile="cluster", conf=conf)
    return subprocess.Popen(command, env={**local_submit.submit_env(), **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_speculation_with_one_slow_task(clean, sample_tree, tmp_path):
    """spark.speculation on a standalone cluster of two one-core workers on 127.0.0.1 and 127.0.0.2
    (Spark speculates only on another host than the straggler's); partition 0's first attempt
    stalls for 150 s after writing its files: a speculative copy finishes it, the straggler is
    killed, its files are dropped, and the tables are the clean ones."""
    local_cluster = load_script("local_cluster")
    out, events = tmp_path / "out", tmp_path / "events"
    events.mkdir()
    conf = {"spark.speculation": "true", "spark.speculation.interval": "200ms", "spark.speculation.quantile": "0.5",
            "spark.speculation.multiplier": "1.5", "spark.speculation.minTaskRuntime": "1s",
            "spark.eventLog.enabled": "true", "spark.eventLog.dir": f"file://{events}",
            "spark.eventLog.compress": "false", "spark.eventLog.rolling.enabled": "false"}
    with local_cluster.StandaloneCluster(workers=2, cores=1, workdir=str(tmp_path / "cluster"),
                                         hosts=("127.0.0.1", "127.0.0.2")) as cluster:
        started = time.monotonic()
        with cluster_run(cluster, ["--input", sample_tree, "--output", out, *PIPELINE],
                         {FAIL_ENV: "1", FAIL_HOW_ENV: "slow:150", "conf": conf}) as run:
            said, _ = run.communicate(timeout=600)
        took = time.monotonic() - started
    assert run.returncode == 0, said[-4000:]
    log = "".join(p.read_text() for p in events.rglob("*") if p.is_file())
    starts = [json.loads(line) for line in log.splitlines() if '"SparkListenerTaskStart"' in line]
    assert any(e["Task Info"]["Speculative"] for e in starts), "no speculative attempt was launched"
    assert took < 150, said[-4000:]  # the straggler did not decide the run's length
    assert_same_pipeline(out, clean)


def test_a_worker_jvm_killed_mid_stage(clean, sample_tree, tmp_path):
    """A standalone cluster of two one-core workers; while the one pass runs (its first files are in
    staging, partition 0 stalls), one worker JVM is SIGKILLed by the pid behind the port the master's
    JSON API names. Its tasks run again on the other worker: the same tables."""
    local_cluster = load_script("local_cluster")
    out = tmp_path / "out"
    with local_cluster.StandaloneCluster(workers=2, cores=1, workdir=str(tmp_path / "cluster")) as cluster:
        with cluster_run(cluster, ["--input", sample_tree, "--output", out, *PIPELINE],
                         {FAIL_ENV: "1", FAIL_HOW_ENV: "slow:20"}) as run:
            deadline = time.monotonic() + 240
            while not any(p.suffix == ".parquet" for p in tmp_path.rglob("out/*.__staging-*/**/*")):
                assert run.poll() is None and time.monotonic() < deadline, run.stdout.read()[-4000:]
                time.sleep(0.2)
            victim = cluster.worker_pids()[0]
            os.kill(victim, signal.SIGKILL)
            said, _ = run.communicate(timeout=600)
        assert run.returncode == 0, said[-4000:]
        assert len(cluster.worker_pids()) == 1  # the worker really died, and stayed dead
    assert_same_pipeline(out, clean)


@pytest.fixture(scope="module")
def split_outputs(spark, sample_tree, tmp_path_factory):
    """An old split table (seed 1) and the clean new one (seed 42), both in session."""
    base = tmp_path_factory.mktemp("publish")
    for name, seed in (("old", "1"), ("new", "42")):
        run_split(spark, split_config(["--input", str(sample_tree), "--output", str(base / name), *SPLIT,
                                       "--seed", seed]))
    return base / "old", base / "new"


@pytest.mark.parametrize("point", ["staged", "journal", "step0", "step1", "step2"])
def test_the_driver_killed_at_each_publish_step(spark, split_outputs, sample_tree, tmp_path, point):
    """A real spark-submit replacing an old table is SIGKILLed at one point of the publish protocol.
    Before the journal, the old table stands untouched; after it, the table is the old or the new
    one, whole (step0: the old one is renamed away, both are whole on disk and the journal names
    them). The next run finishes the swap and writes the new table."""
    old, new = split_outputs
    out = tmp_path / "out"
    shutil.copytree(old, out)
    result = spark_submit("split", "--input", sample_tree, "--output", out, *SPLIT, "--seed", "42",
                          env={KILL_DRIVER_ENV: point})
    assert result.returncode in (-9, 137), (result.stdout + result.stderr)[-3000:]
    journals = [p for p in os.listdir(tmp_path) if p.endswith(ownership.JOURNAL)]
    if point == "staged":
        assert rows(out) == rows(old) and journals == []
    elif point == "journal":
        assert rows(out) == rows(old) and journals
    elif point == "step0":
        assert not out.exists() and journals
        journal = json.loads((tmp_path / journals[0]).read_text())
        assert rows(journal["retired"].replace("file:", "")) == rows(old)
        assert rows(journal["staging"].replace("file:", "")) == rows(new)
    else:
        assert rows(out) == rows(new)
    run_split(spark, split_config(["--input", str(sample_tree), "--output", str(out), *SPLIT, "--seed", "42"]))
    assert rows(out) == rows(new)
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no staging, retired copy, journal or lock left


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_two_concurrent_runs_one_wins_the_other_exits_1(clean, sample_tree, tmp_path, fmt):
    """Run A holds the outputs (partition 0 stalls 15 s); run B, started into the same output while A
    runs, exits 1 with the conflict named and touches nothing; A's tables are the clean ones."""
    out = tmp_path / "out"
    local_submit = load_script("local_submit")
    args = ["--input", sample_tree, "--output", out, *PIPELINE, "--format", fmt]
    env = {**local_submit.submit_env(), FAIL_ENV: "1", FAIL_HOW_ENV: "slow:15"}
    with subprocess.Popen(local_submit.submit_command("pipeline", args), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as first:
        deadline = time.monotonic() + 120
        while not out.exists() or not any(p.endswith(ownership.LOCK) for p in os.listdir(out)):
            assert first.poll() is None and time.monotonic() < deadline, first.stdout.read()[-4000:]
            time.sleep(0.1)
        second = spark_submit("pipeline", *args)
        said, _ = first.communicate(timeout=600)
    assert second.returncode == 1, (second.stdout + second.stderr)[-3000:]
    assert "another sparkprep run is writing this output" in second.stdout + second.stderr
    assert first.returncode == 0, said[-4000:]
    if fmt == "parquet":
        assert_same_pipeline(out, clean)
    else:
        from deltalake import DeltaTable

        for table in ("splits", "processed"):
            got = sorted(DeltaTable(str(out / table)).to_pyarrow_table().to_pylist(),
                         key=lambda r: (r["path"], r.get("aug_index", 0)))
            assert got == rows(clean / table), table


def test_a_delta_commit_that_loses_a_race_exits_with_the_conflict(spark, sample_tree, tmp_path, monkeypatch):
    """Another writer commits to the Delta table between this run's snapshot and its commit: delta-rs
    raises CommitFailedError; the run says so, commits nothing, removes its files, and the other
    writer's version stands."""
    from deltalake import DeltaTable, write_deltalake

    from sparkprep.spark import faults

    out = tmp_path / "table"
    args = ["--input", str(sample_tree), "--output", str(out), *SPLIT, "--format", "delta"]
    run_split(spark, split_config([*args, "--seed", "1"]))
    before = DeltaTable(str(out)).to_pyarrow_table()
    run_dirs = sorted(p for p in os.listdir(out) if p.startswith("run-"))  # version 0's, kept for time travel

    def other_writer(name):
        if name == "delta-snapshot":
            write_deltalake(str(out), before, mode="overwrite")
    monkeypatch.setattr(faults, "driver_point", other_writer)
    with pytest.raises(ownership.Locked, match="another writer committed to the Delta table"):
        run_split(spark, split_config([*args, "--seed", "42"]))
    table = DeltaTable(str(out))
    assert table.version() == 1 and table.to_pyarrow_table().num_rows == before.num_rows
    assert sorted(p for p in os.listdir(out) if p.startswith("run-")) == run_dirs  # the loser's files are gone


def test_a_full_disk_fails_the_run_and_keeps_the_old_table(sample_tree, make_sample, tmp_path):
    """The output on a 4 MB tmpfs (an unprivileged user and mount namespace: no root). A small split
    fits; a split of ~12 MB of images then hits ENOSPC: exit 1 with the cause, the old table whole,
    no staging left behind."""
    if subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"]).returncode != 0:
        pytest.skip("unprivileged user namespaces are disabled on this kernel (unshare --user failed)")
    import numpy as np
    from PIL import Image

    small, big, mount, saved = tmp_path / "small", tmp_path / "big", tmp_path / "mnt", tmp_path / "saved"
    shutil.copytree(sample_tree / "Hand", small / "Hand")
    rng = np.random.default_rng(3)
    for i in range(60):  # noise: ~200 KB JPEGs that no compression shrinks
        make_sample.write(str(big / "noise" / f"n{i:03d}.jpg"),
                          make_sample.jpeg_bytes(Image.fromarray(rng.integers(0, 255, (384, 384, 3), dtype=np.uint8))))
    assert sum(p.stat().st_size for p in big.rglob("*.jpg")) > 6 << 20
    mount.mkdir()
    local_submit = load_script("local_submit")
    first = local_submit.submit_command("split", ["--input", small, "--output", mount / "out", *SPLIT])
    second = local_submit.submit_command("split", ["--input", big, "--output", mount / "out", *SPLIT])
    script = (f"mount -t tmpfs -o size=4m tmpfs {mount} && {subprocess.list2cmdline(first)} > {tmp_path}/first.log 2>&1"
              f"; echo $? > {tmp_path}/first.rc; {subprocess.list2cmdline(second)} > {tmp_path}/second.log 2>&1"
              f"; echo $? > {tmp_path}/second.rc; cp -a {mount} {saved}")
    subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
                   env=local_submit.submit_env(), check=True, timeout=600)
    assert (tmp_path / "first.rc").read_text().strip() == "0", (tmp_path / "first.log").read_text()[-3000:]
    said = (tmp_path / "second.log").read_text()
    assert (tmp_path / "second.rc").read_text().strip() == "1", said[-3000:]
    assert "No space left on device" in said
    assert "split: failed:" in said
    assert sorted(os.listdir(saved)) == ["out"]  # the failed run's staging was removed
    old = rows(saved / "out")
    assert len(old) == len(os.listdir(small / "Hand")) and {r["label"] for r in old} == {"Hand"}


def killed_after_six_tasks(args, out, finished=None):
    """spark-submit the pipeline with these args, its last two of eight one-pass tasks stalled, and SIGKILL
    the whole run once the first six have recorded their files under out (finished: the glob, below out, of
    what each finished task leaves)."""
    from sparkprep.pipeline.resume import DONE
    from sparkprep.spark.faults import STALL_ENV

    finished = finished or f"splits.__staging-*/{DONE}/*.json"

    local_submit = load_script("local_submit")
    killed = subprocess.Popen(local_submit.submit_command("pipeline", args),
                              env={**local_submit.submit_env(), STALL_ENV: "6"}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while len(list(out.glob(finished))) < 6:
        assert killed.poll() is None and time.time() < deadline, "the run ended before six tasks finished"
        time.sleep(0.2)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()


def test_the_driver_killed_in_the_one_pass_resumes_from_the_finished_tasks(clean, sample_tree, tmp_path):
    """A pipeline whose last two of eight one-pass tasks never finish is SIGKILLed (the whole spark-submit)
    once the first six have recorded their files. Run again with the same flags, it takes over those
    six tasks' files, reads and transforms only the rest, and publishes exactly the undisturbed tables."""
    out = tmp_path / "out"
    args = ["--input", sample_tree, "--output", out, *PIPELINE]
    killed_after_six_tasks(args, out)
    assert not (out / "splits").exists()  # nothing was published
    result = spark_submit("pipeline", *args)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    report = json.loads((out / "_run_report.json").read_text())
    resumed, listed = report["resumed"], report["stages"]["splits"]["rows"]
    assert resumed["tasks_reused"] == 6 and resumed["tasks_dropped"] == 0
    assert resumed["files_reused"] >= 0.7 * listed  # a resumed run after a kill at 75% reads at most 30% again
    assert "resumed: " in result.stdout and "files' rows reused" in result.stdout
    assert_same_pipeline(out, clean)


def test_the_driver_killed_in_a_one_pass_written_by_spark_resumes_from_the_committed_tasks(clean, sample_tree,
                                                                                            tmp_path):
    """--format delta: Spark writes the one pass's rows into the processed table's run directory before either
    table (as for an output on HDFS or S3). Killed once six of its eight tasks have committed, then run again
    with the same flags, the run reuses those tasks' rows for the files listed as they were, reads at most
    30% again, publishes the undisturbed tables, and leaves no run directory of the killed run behind."""
    out = tmp_path / "out"
    args = ["--input", sample_tree, "--output", out, *PIPELINE, "--format", "delta"]
    killed_after_six_tasks(args, out, f"processed/run-*/{ownership.RESUME_ROWS}/_temporary/*/task_*")
    assert not (out / "splits" / ownership.MARKER).exists() and not (out / "processed" / ownership.MARKER).exists()
    import pyarrow.parquet as pq

    committed = sorted({p for f in out.glob(f"processed/run-*/{ownership.RESUME_ROWS}/_temporary/*/task_*/*.parquet")
                        for p in pq.read_table(f, columns=["path"]).column("path").to_pylist()})
    touched = pathlib.Path(committed[0].removeprefix("file:"))  # listed again with another mtime: read again
    before = touched.stat()
    os.utime(touched, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
    try:
        result = spark_submit("pipeline", *args)
    finally:
        os.utime(touched, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    report = json.loads((out / "_run_report.json").read_text())
    resumed, listed = report["resumed"], report["stages"]["splits"]["rows"]
    assert resumed["tasks_reused"] == 6 and resumed["files_reused"] == len(committed) - 1, resumed
    assert resumed["files_reused"] >= 0.7 * listed, resumed
    assert [pathlib.Path(f).name[:4] for f in resumed["from"]] == ["run-"], resumed  # the killed run's directory
    assert "resumed: " in result.stdout and "committed tasks" in result.stdout
    for table in ("splits", "processed"):
        assert rows(out / table) == rows(clean / table), table
        runs = {f.split("/")[0] for f in files_of(out / table) if f.startswith("run-")}
        assert len(runs) == 1, runs  # this run's: the killed run's directory is gone
        assert not any(name in f for f in files_of(out / table) for name in ownership.RESUME_NAMES)
        assert not any("_temporary" in f or "_sparkprep_run" in f for f in files_of(out / table))


@pytest.mark.parametrize("edited", [False, True], ids=["same-csv", "csv-edited-in-place"])
def test_a_killed_run_with_a_labels_csv_resumes_unless_the_csv_changed(clean, sample_tree, tmp_path, edited):
    """--labels (the workers label the rows they write): killed as above with a CSV giving every file its
    folder's label, then run again. With the same CSV, the finished tasks are reused and the tables equal
    the undisturbed run's. With the CSV edited in place (one class renamed), nothing of the killed run is
    reused: its rows carry the old labels."""
    out, labels = tmp_path / "out", tmp_path / "labels.csv"
    by_path = {r["rel_path"]: r["label"] for r in rows(clean / "splits")}
    labels.write_text("path,label\n" + "".join(f"{p},{label}\n" for p, label in sorted(by_path.items())))
    args = ["--input", sample_tree, "--output", out, *PIPELINE, "--labels", labels]
    killed_after_six_tasks(args, out)
    renamed = sorted(set(by_path.values()))[0]
    if edited:
        labels.write_text("path,label\n" + "".join(f"{p},{'renamed' if label == renamed else label}\n"
                                                   for p, label in sorted(by_path.items())))
    result = spark_submit("pipeline", *args)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    report = json.loads((out / "_run_report.json").read_text())
    if not edited:
        assert report["resumed"]["tasks_reused"] == 6 and report["resumed"]["files_reused"] >= 0.7 * len(by_path)
        assert_same_pipeline(out, clean)
        return
    assert report["resumed"]["tasks_reused"] == 0 and "files' rows reused" not in result.stdout
    why = "settings that decide a row changed since the killed run: labels_csv_digest"
    assert [r["why"] for r in report["resumed"]["not_reused"]] == [why] and why in result.stdout
    for table in ("splits", "processed"):
        want = [dict(r, label="renamed" if r["label"] == renamed else r["label"]) for r in rows(clean / table)]
        assert rows(out / table) == want, table


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_a_killed_two_pass_run_resumes_its_transform_from_the_committed_tasks(spark, sample_tree, tmp_path, fmt):
    """--stratify exact takes two passes, each written by Spark: ingest and split (published first), then the
    transform. With --incremental, the transform's tasks from partition 6 on never finish; once the others
    have committed their files, the whole spark-submit is SIGKILLed. Run again with the same flags, the split
    stage reads no file (the killed run published it, with its listing state) and the transform reuses the
    committed tasks' rows: at most 30% of the images are decoded again, and both tables equal an
    undisturbed run's. Delta (delta-rs): Spark writes the processed table's files into its run-<id> directory
    in the new table path, which the next run reads the same way, then deletes."""
    from sparkprep.spark.faults import STALL_ENV

    out, undisturbed = tmp_path / "out", tmp_path / "undisturbed"
    args = ["--input", sample_tree, "--output", out, *PIPELINE, "--stratify", "exact", "--incremental",
            "--format", fmt]
    run_pipeline(spark, pipeline_config([str(a) for a in args[:2]] + ["--output", str(undisturbed)]
                                        + [str(a) for a in args[4:]]))
    local_submit = load_script("local_submit")
    killed = subprocess.Popen(local_submit.submit_command("pipeline", args),
                              env={**local_submit.submit_env(), STALL_ENV: "6"}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline, seen, since = time.time() + 300, -1, time.time()
    staged = "processed.__staging-" if fmt == "parquet" else "processed/run-"
    while True:  # the committed tasks' directories, until no more come (the others stall)
        assert killed.poll() is None and time.time() < deadline, "the run ended before its transform stalled"
        committed = len(list(out.glob(f"{staged}*/_temporary/*/task_*")))
        if committed != seen:
            seen, since = committed, time.time()
        elif committed and time.time() - since > 5:
            break
        time.sleep(0.2)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    assert (out / "splits").exists() and not (out / "processed" / ownership.MARKER).exists()
    result = spark_submit("pipeline", *args)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    report = json.loads((out / "_run_report.json").read_text())
    resumed, processed = report["resumed"], report["stages"]["processed"]["incremental"]
    assert report["stages"]["splits"]["incremental"]["read"] == 0
    assert resumed["tasks_reused"] == committed and resumed["samples_reused"] == processed["kept"]
    assert processed["transformed"] <= 0.3 * processed["listed"], processed
    assert "resumed: " in result.stdout and "committed tasks" in result.stdout
    for table in ("splits", "processed"):  # Spark names its files (and their .crc) anew in every run
        assert rows(out / table) == rows(undisturbed / table), table
        own = [[f for f in files_of(t / table) if not f.endswith((".parquet", ".crc", "_SUCCESS"))
                and not f.startswith((ownership.LISTING_STATE, "_delta_log"))] for t in (out, undisturbed)]
        assert own[0] == own[1] and ownership.RESUME not in own[0]
        assert not any("_temporary" in f for f in files_of(out / table))
    if fmt == "delta":  # the killed run's directory is gone: the processed table's one is the new run's
        assert len({f.split("/")[0] for f in files_of(out / "processed") if f.startswith("run-")}) == 1
    assert [p for p in os.listdir(out) if ".__staging-" in p or ".__old-" in p or ".lock" in p] == []
