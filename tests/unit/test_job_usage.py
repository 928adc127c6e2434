"""Bad invocations of the job entry points exit 2 with one line, without starting Spark."""

import pytest
from conftest import REPO, load_job

JOBS = REPO / "jobs"


@pytest.mark.parametrize("job,argv,message", [
    ("features", ["--input", "{dir}", "--output", "/tmp/x"], "features: error: --label-column: expected the label"),
    ("features", ["--input", "{dir}", "--output", "/tmp/x", "--label-column", "y", "--impute", "none", "--scale",
                  "standard"], "features: error: --scale: expected none with --impute none"),
    ("features", ["--input", "{dir}", "--output", "/tmp/x", "--label-column", "y", "--to", "csv"],
     "features: error: --to: expected one of xgboost-csv, libsvm, parquet"),
    ("features", ["--input", "{dir}", "--output", "/tmp/x", "--label-column", "y", "--categorical", "a,y"],
     "features: error: --numeric/--categorical/--label-column: expected each column in one role, got 'y' twice"),
    ("features", ["--input", "/does/not/exist", "--output", "/tmp/x", "--label-column", "y"],
     "features: error: --input: expected an existing split table"),
    ("split", ["--input", "/does/not/exist", "--output", "/tmp/x"], "split: error: --input: expected an existing path"),
    ("split", ["--output", "/tmp/x"], "split: error: --input: expected a path"),
    ("ingest", ["--input", "{dir}", "--output", "/tmp/x", "--validate", "yes"], "ingest: error: --validate"),
    ("export", ["--input", "{dir}", "--output", "/tmp/x", "--to", "zip"], "export: error: --to: expected one of"),
    ("export", ["--input", "{dir}", "--output", "/tmp/x"], "export: error: --to: expected one of"),
    ("export", ["--input", "{dir}", "--output", "/tmp/x", "--to", "webdataset", "--shard-size", "lots"],
     "export: error: --shard-size: expected a size"),
    ("export", ["--input", "{dir}", "--output", "/tmp/x", "--to", "tfrecord", "--shard-size", "1KB"],
     "export: error: --shard-size: expected at least 64KB"),
    ("export", ["--input", "/does/not/exist", "--output", "/tmp/x", "--to", "tfrecord"],
     "export: error: --input: expected an existing table"),
    ("export", ["--input", "{dir}", "--output", "/tmp/x", "--to", "imagefolder", "--shard-count", "4"],
     "export: error: --shard-count: expected only with --to webdataset, tfrecord, recordio, hf or mds"),
    ("export", ["--input", "{dir}", "--output", "/tmp/x", "--to", "mds", "--shard-size", "5GB"],
     "export: error: --shard-size: expected at most 4294967295 bytes for --to mds, got 5368709120"),
    ("export", ["--input", "{dir}", "--output", "/tmp/x", "--to", "tfrecord", "--shard-count", "2",
                "--shard-size", "1MB"], "export: error: --shard-count: expected either"),
    ("export", ["--input", "{dir}", "--output", "ftp://host/x", "--to", "tfrecord"], "export: error: --output"),
    ("pipeline", ["--input", "{dir}", "--output", "/tmp/x", "--to", "zip"], "pipeline: error: --to: expected one of"),
    ("pipeline", ["--input", "{dir}", "--output", "/tmp/x", "--to", "imagefolder,imagefolder"],
     "pipeline: error: --to: expected each export once"),
    ("pipeline", ["--input", "{dir}", "--output", "/tmp/x", "--to", "imagefolder", "--shard-size", "1MB"],
     "pipeline: error: --shard-size: expected only with --to webdataset, tfrecord, recordio, hf or mds"),
    ("pipeline", ["--input", "{dir}", "--output", "/tmp/x", "--keep", "everything"], "pipeline: error: --keep"),
    ("pipeline", ["--input", "{dir}", "--output", "/tmp/x", "--read", "fast"], "pipeline: error: --read"),
    ("pipeline", ["--input", "{dir}", "--output", "/tmp/x", "--report", "/tmp/r.json"], "pipeline: error: --report"),
    ("pipeline", ["--input", "{dir}", "--output", "/tmp/x", "--input-kind", "catalog"],
     "pipeline: error: --input: expected raw files or WebDataset shards, got a catalog"),
    ("split", ["--input", "{dir}", "--output", "/tmp/x", "--near-duplicates", "merge", "--stratify", "exact"],
     "split: error: --near-duplicates: merge keys clusters for the hash split"),
    ("split", ["--input", "{dir}", "--output", "/tmp/x", "--near-duplicates", "merge", "--phash", "off"],
     "split: error: --near-duplicates: merge needs the perceptual hashes"),
    ("split", ["--input", "{dir}", "--output", "/tmp/x", "--near-duplicates", "drop"], "split: error: --near-duplicates"),
    ("split", ["--input", "{dir}", "--output", "/tmp/x", "--near-threshold", "63"], "split: error: --near-threshold"),
    ("ingest", ["--input", "{dir}", "--output", "/tmp/x", "--phash", "maybe"], "ingest: error: --phash"),
    ("preprocess", ["--input", "{dir}", "--output", "/tmp/x", "--fail-on-leakage"],
     "preprocess: error: --fail-on-leakage: the near-duplicate audit runs on split tables"),
    ("preprocess", ["--input", "{dir}", "--output", "/tmp/x", "--incremental"],
     "preprocess: error: --incremental: preprocess reuses its previous output for a split table's rows"),
    ("export", ["--input", "{dir}", "--output", "/tmp/x", "--to", "webdataset", "--incremental", "--shard-count", "4"],
     "export: error: --incremental: expected --shard-size"),
    ("split", ["--input", "{dir}/paths.csv", "--output", "/tmp/x", "--incremental"],
     "split: error: --incremental: expected raw files"),
    ("report", ["--output", "/tmp/x"], "report: error: --input: expected a path"),
    ("report", ["--input", "/does/not/exist", "--output", "/tmp/x"], "report: error: --input: expected an existing"),
    ("report", ["--input", "{dir}", "--output", "{dir}/inside"], "report: error: --output: expected a path outside"),
    ("report", ["--input", "{dir}", "--output", "/tmp/x", "--near-bucket-cap", "1"], "report: error: --near-bucket-cap"),
    ("ingest", ["--manifest", "{dir}/paths.csv", "--input", "{dir}", "--output", "{dir}/out"],
     "ingest: error: --output: expected a path outside --input"),
    ("split", ["--manifest", "{dir}/paths.csv", "--output", "s3://bucket"],
     "split: error: --output: expected a prefix inside the bucket"),
])
def test_bad_usage_exits_2_with_one_line(job, argv, message, capsys, monkeypatch, tmp_path):
    import sparkprep.spark.session as session

    monkeypatch.setattr(session, "build_session", lambda *a, **k: pytest.fail("Spark was started"))
    # Inputs are a fresh directory of the test's own, and the working directory is littered the way
    # a user's checkout is after the README's examples (a stray paths.parquet once made `--input .`
    # look like a catalog): neither may change the outcome.
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "paths.csv").write_text("uri\n")
    littered = tmp_path / "checkout"
    (littered / "out").mkdir(parents=True)
    (littered / "paths.parquet").write_bytes(b"PAR1")
    monkeypatch.chdir(littered)
    argv = [a.replace("{dir}", str(tmp_path / "input")) for a in argv]
    assert load_job(job).main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_the_jobs_directory_leaves_sys_path_so_a_users_own_features_module_wins(monkeypatch):
    """spark-submit jobs/map.py puts jobs/ first on sys.path, where jobs/features.py would shadow
    the user's --py-files features.py (jobs/map.py --map features:extract)."""
    import sys
    import types

    from sparkprep.cli import forget_jobs_directory

    monkeypatch.setitem(sys.modules, "__main__", types.SimpleNamespace(__file__=str(JOBS / "map.py")))
    monkeypatch.setattr(sys, "path", [str(JOBS), "/user/py-files", str(JOBS) + "/"])
    forget_jobs_directory()
    assert sys.path == ["/user/py-files"]
