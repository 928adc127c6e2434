"""Task retries in real spark-submit runs (local[2,3]): attempt 0 of every task fails, and the
outputs equal an undisturbed run's (map, the pipeline, and the WebDataset and RecordIO exports,
shard for shard). Part of the fault suite (`make test-faults`)."""

import json

import pyarrow.parquet as pq
import pytest
from conftest import read_mds_spec, read_recordio_spec, spark_submit


@pytest.mark.parametrize("members", [2, 1])
def test_map_via_spark_submit_with_py_files_survives_injected_task_failures(spark, tmp_path, make_sample, members):
    """--py-files ships the user's function; attempt 0 of every map task dies (local[2,3] retries):
    the output equals an undisturbed in-session run, and the one raising sample is a map_error.
    With one-file samples the map runs without its shuffle, on the scan's own tasks."""
    from sparkprep.map.flags import map_config
    from sparkprep.map.spark import run_map
    from sparkprep.spark.faults import FAIL_ENV
    from sparkprep.split.flags import split_config
    from sparkprep.split.spark import run_split

    root = tmp_path / "pairs"
    for i in range(10):
        make_sample.write(str(root / "x" / f"r{i}.dat"), bytes(range(i, i + 40)))
        if members == 2:
            make_sample.write(str(root / "x" / f"r{i}.hea"), f"r{i} 1 250 {40 + i}".encode())
    run_split(spark, split_config(["--input", str(root), "--output", str(tmp_path / "splits"), "--samples",
                                   "basename", "--extensions", "dat,hea"]))
    module = tmp_path / "signal_features.py"
    module.write_text("def extract(s):\n"
                      "    if s['__key__'] == 'x/r7':\n"
                      "        raise ValueError('bad header')\n"
                      "    return {'total': sum(s['dat']), 'fs': int(s['hea'].split()[2]) if 'hea' in s else None}\n")
    args = ["--input", tmp_path / "splits", "--map", "signal_features:extract", "--schema", "total bigint, fs int"]
    result = spark_submit("map", *args, "--output", tmp_path / "failed", master="local[2,3]", env={FAIL_ENV: "3"},
                          py_files=[module])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "injected failure after 3 records" in result.stdout + result.stderr
    import sys

    sys.path.insert(0, str(tmp_path))
    spark.sparkContext.addPyFile(str(module))
    try:
        run_map(spark, map_config([*map(str, args), "--output", str(tmp_path / "calm")]))
    finally:
        sys.path.remove(str(tmp_path))
    failed, calm = (sorted(pq.read_table(str(tmp_path / name)).to_pylist(), key=lambda r: r["sample"])
                    for name in ("failed", "calm"))
    assert failed == calm and len(failed) == 10
    statuses = {r["sample"]: r["status"] for r in failed}
    assert statuses.pop("x/r7") == "map_error" and set(statuses.values()) == {"ok"}
    assert {r["sample"]: r["total"] for r in failed}["x/r2"] == sum(range(2, 42))


def test_pipeline_from_a_config_file_survives_killed_tasks_with_the_same_tables(spark, sample_tree, tmp_path):
    """--config holds every setting; attempt 0 of every task dies after writing its files (local[2,3]
    retries): the driver keeps only the retries' files, and the tables equal an undisturbed run's."""
    from sparkprep.pipeline.flags import pipeline_config
    from sparkprep.pipeline.spark.run import run_pipeline
    from sparkprep.spark.faults import FAIL_ENV

    config = tmp_path / "pipeline.json"
    config.write_text(json.dumps({"input": str(sample_tree), "ratios": [0.7, 0.15, 0.15], "seed": 42, "size": 32,
                                  "augment": ["hflip"], "copies": 1, "to": ["imagefolder"]}))
    result = spark_submit("pipeline", "--config", config, "--output", tmp_path / "killed", master="local[2,3]",
                          env={FAIL_ENV: "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "injected failure" in result.stdout + result.stderr and "== pipeline summary ==" in result.stdout
    run_pipeline(spark, pipeline_config(["--config", str(config), "--output", str(tmp_path / "calm")]))
    for table in ("splits", "processed"):
        killed, calm = (sorted(pq.read_table(str(tmp_path / run / table)).to_pylist(),
                               key=lambda r: (r["path"], r.get("aug_index") or 0)) for run in ("killed", "calm"))
        assert killed == calm and len(killed) >= 84
    report = json.loads((tmp_path / "killed" / "_run_report.json").read_text())
    assert report["published"] == ["splits", "processed", "imagefolder"]
    assert (tmp_path / "killed" / "imagefolder" / "train").is_dir()


@pytest.fixture(scope="module")
def processed32(spark, sample_tree, tmp_path_factory):
    """The sample tree preprocessed in session to 32 px JPEGs: the input of the export runs below."""
    from sparkprep.preprocess.flags import preprocess_config
    from sparkprep.preprocess.spark import run_preprocess

    table = tmp_path_factory.mktemp("submit") / "processed"
    run_preprocess(spark, preprocess_config(["--input", str(sample_tree), "--output", str(table), "--size", "32"]))
    return table


def export_calm_and_failed(spark, table, tmp_path, export_format, *flags):
    """The export in session, then via spark-submit with attempt 0 of every write task dying after 7
    records (master local[2,3] retries it): both directories, with the same files and shard list."""
    import os

    from sparkprep.export.flags import export_config
    from sparkprep.export.spark import run_export
    from sparkprep.spark.faults import FAIL_ENV

    calm, failed = tmp_path / "calm", tmp_path / "failed"
    run_export(spark, export_config(["--input", str(table), "--output", str(calm), "--to", export_format, *flags]))
    result = spark_submit("export", "--input", table, "--output", failed, "--to", export_format, *flags,
                          master="local[2,3]", env={FAIL_ENV: "7"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "injected failure after 7 records" in result.stdout + result.stderr  # the failures did happen
    assert f"== export summary ({export_format}) ==" in result.stdout
    assert sorted(os.listdir(failed)) == sorted(os.listdir(calm))  # no temporaries, no extra shards
    manifest = json.loads((failed / "manifest.json").read_text())
    assert manifest["shards"] == json.loads((calm / "manifest.json").read_text())["shards"]
    return calm, failed, manifest


def test_export_survives_injected_task_failures_with_an_exact_shard_set(spark, processed32, tmp_path):
    """The shards must still be exactly the planned set, byte-identical to an undisturbed run, no leftovers."""
    import hashlib
    import tarfile

    _, failed, manifest = export_calm_and_failed(spark, processed32, tmp_path, "webdataset", "--shard-size", "64KB")
    rows = pq.read_table(str(processed32), columns=["status"]).to_pylist()
    keys = []
    for shard in manifest["shards"]:
        data = (failed / shard["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == shard["sha256"]
        with tarfile.open(failed / shard["name"]) as tar:
            names = tar.getnames()
        assert len(names) == 3 * shard["samples"]
        keys += [n.rsplit(".", 1)[0] for n in names if n.endswith(".json")]
    assert len(keys) == len(set(keys)) == sum(r["status"] == "ok" for r in rows)


def test_recordio_shards_are_byte_identical_across_runs_and_under_injected_task_failures(spark, processed32,
                                                                                       tmp_path):
    calm, failed, manifest = export_calm_and_failed(spark, processed32, tmp_path, "recordio", "--shard-size", "64KB")
    assert len(manifest["shards"]) > 2
    for name in sorted(p.name for p in calm.iterdir() if p.suffix in (".rec", ".idx", ".lst")):
        assert (failed / name).read_bytes() == (calm / name).read_bytes(), name
    records = sum(len(read_recordio_spec((failed / s["name"]).read_bytes())) for s in manifest["shards"])
    ok = sum(r["status"] == "ok" for r in pq.read_table(str(processed32), columns=["status"]).to_pylist())
    assert records == ok == sum(manifest["counts"].values())


def test_mds_shards_and_index_are_byte_identical_across_runs_and_under_injected_task_failures(spark, processed32,
                                                                                            tmp_path):
    calm, failed, manifest = export_calm_and_failed(spark, processed32, tmp_path, "mds", "--shard-size", "64KB")
    assert len(manifest["shards"]) > 2
    names = sorted(str(p.relative_to(calm)) for p in calm.glob("*/*") if p.suffix in (".mds", ".json"))
    assert len(names) == len(manifest["shards"]) + len(manifest["counts"])  # the shards and an index per split
    for name in names:
        assert (failed / name).read_bytes() == (calm / name).read_bytes(), name
    samples = sum(len(read_mds_spec((failed / s["name"]).read_bytes())[1]) for s in manifest["shards"])
    ok = sum(r["status"] == "ok" for r in pq.read_table(str(processed32), columns=["status"]).to_pylist())
    assert samples == ok == sum(manifest["counts"].values())
