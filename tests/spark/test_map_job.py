"""jobs/map.py in the shared session: the user's function over whole samples of a split table."""

import json
import textwrap

import pyarrow.parquet as pq
import pytest
from conftest import write_samples

from sparkprep.map.flags import map_config
from sparkprep.map.spark import run_map
from sparkprep.split.flags import split_config
from sparkprep.split.spark import run_split

USER_MODULE = '''
import json


def features(sample):
    """One sample of jpg + json (+ cls): a scalar field, a new member, a failure and a filter."""
    boxes = json.loads(sample["json"])["boxes"]
    if sample["__key__"].endswith("s003"):
        raise KeyError("no such box")
    if sample["__key__"].endswith("s005"):
        return None
    return {"n_boxes": len(boxes), "jpg_bytes": len(sample["jpg"]), "seed_low": sample["__seed__"] % 1000,
            "boxes.txt": " ".join(str(b) for b in boxes).encode()}


def sizes(sample):
    """Any sample: the bytes of its members."""
    return {"n": sum(len(v) for k, v in sample.items() if not k.startswith("__"))}
'''


@pytest.fixture(scope="module")
def split_table(spark, tmp_path_factory, make_sample):
    root = tmp_path_factory.mktemp("map") / "coco"
    write_samples(make_sample, root, 0, 12, with_cls=False)
    out = root.parent / "splits"
    run_split(spark, split_config(["--input", str(root), "--output", str(out), "--samples", "basename",
                                   "--extensions", "jpg,json"]))
    module = root.parent / "user_features.py"
    module.write_text(textwrap.dedent(USER_MODULE))
    spark.sparkContext.addPyFile(str(module))  # what --py-files does for spark-submit
    import sys

    sys.path.insert(0, str(root.parent))
    yield out
    sys.path.remove(str(root.parent))


def mapped(spark, split_table, out, *extra):
    report = run_map(spark, map_config(["--input", str(split_table), "--output", str(out),
                                        "--map", "user_features:features",
                                        "--schema", "n_boxes int, jpg_bytes bigint, seed_low int", *extra]))
    rows = sorted(pq.read_table(str(out)).to_pylist(), key=lambda r: r["sample"])
    return report, rows


def test_every_sample_is_one_row_with_fields_members_errors_and_filters(spark, split_table, tmp_path):
    report, rows = mapped(spark, split_table, tmp_path / "features")
    by_sample = {r["sample"]: r for r in rows}
    assert len(rows) == 12
    bad = by_sample["ant/s003"]
    assert bad["status"] == "map_error" and bad["error"].startswith("KeyError: 'no such box' at user_features.py:")
    assert by_sample["ant/s005"]["status"] == "filtered"
    good = by_sample["bee/s004"]
    assert (good["status"], good["n_boxes"]) == ("ok", 2) and good["members"] == [("boxes.txt", b"[4, 4, 4, 4] [4, 4, 4, 4]")]
    assert all(r["status"] == "ok" for s, r in by_sample.items() if s not in ("ant/s003", "ant/s005"))
    splits = {r["sample"]: r["split"] for r in pq.read_table(str(split_table), columns=["sample", "split"]).to_pylist()}
    assert all(r["split"] == splits[r["sample"]] for r in rows)  # a sample keeps its split
    assert {k: v["count"] for k, v in report["quarantine"].items()} == {"filtered": 1, "map_error": 1}


def test_a_rerun_gives_identical_rows(spark, split_table, tmp_path):
    _, first = mapped(spark, split_table, tmp_path / "a")
    _, second = mapped(spark, split_table, tmp_path / "b")
    assert first == second and first[0]["seed_low"] is not None


def test_a_missing_function_or_bad_schema_is_a_usage_error_before_spark(split_table, tmp_path):
    from sparkprep.errors import UsageError

    with pytest.raises(UsageError, match="has no function 'nope'"):
        map_config(["--input", str(split_table), "--output", str(tmp_path / "o"), "--map", "user_features:nope"])
    with pytest.raises(UsageError, match="--schema: expected 'name type"):
        map_config(["--input", str(split_table), "--output", str(tmp_path / "o"), "--map", "user_features:features",
                    "--schema", "n_boxes number"])


def test_map_to_webdataset_writes_shards_with_the_export_writers(spark, split_table, tmp_path):
    import os

    import webdataset as wds

    out = tmp_path / "wds"
    report = run_map(spark, map_config(["--input", str(split_table), "--output", str(out), "--map",
                                        "user_features:features", "--schema", "n_boxes int, jpg_bytes bigint, seed_low int",
                                        "--to", "webdataset", "--shard-size", "64KB"]))
    samples = [s for name in sorted(os.listdir(out)) if name.endswith(".tar")
               for s in wds.WebDataset(str(out / name), shardshuffle=False)]
    assert len(samples) == 10 == report["samples"]  # 12 samples, one map_error, one filtered
    assert all(s["boxes.txt"].startswith(b"[") for s in samples)
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(sum(q.values()) for q in manifest["quarantined"].values()) == 2
    assert report["map"]["quarantine"].keys() == {"filtered", "map_error"}
    assert not [p for p in os.listdir(tmp_path) if ".__mapped-" in p]  # the staging table is gone


def test_progress_lines_count_samples_done_of_the_total():
    import io
    import time

    from sparkprep.map.spark import progress
    from sparkprep.runlog import StageClock

    class Done:
        value = 0

    out = io.StringIO()
    clock, done = StageClock("map", out=out), Done()
    with progress(clock, done, total=20, every=0.05):
        time.sleep(0.12)
        done.value = 25  # a retried task may count twice: never more than the total is shown
        time.sleep(0.12)
    lines = [line for line in out.getvalue().splitlines() if "samples mapped" in line]
    assert lines[0].endswith("0 / 20 samples mapped") and lines[-1].endswith("20 / 20 samples mapped")


def test_the_report_counts_ok_filtered_and_map_error_per_split(spark, split_table, tmp_path):
    report, rows = mapped(spark, split_table, tmp_path / "per-split")
    per_split = report["status_by_split"]
    for split, statuses in per_split.items():
        assert statuses == dict(sorted(collections_counter(r["status"] for r in rows if r["split"] == split).items()))


def collections_counter(values):
    import collections

    return collections.Counter(values)


def test_one_file_samples_are_mapped_without_a_shuffle_and_give_the_same_rows(spark, split_table, tmp_path):
    from sparkprep.map.spark import mapped_frame, sample_rows
    from sparkprep.spark.tables import read_table

    root = split_table.parent / "coco"
    out = tmp_path / "files"
    run_split(spark, split_config(["--input", str(root), "--output", str(out), "--samples", "file",
                                   "--extensions", "jpg,json"]))
    rows = sample_rows(read_table(spark, str(out)))
    cfg = map_config(["--input", str(out), "--output", str(tmp_path / "m"), "--map", "user_features:sizes",
                      "--schema", "n bigint"])
    direct, shuffled = mapped_frame(rows, cfg, one_file_samples=True), mapped_frame(rows, cfg)
    assert "Exchange" not in direct._jdf.queryExecution().executedPlan().toString()
    assert "Exchange" in shuffled._jdf.queryExecution().executedPlan().toString()
    assert sorted(map(tuple, direct.collect())) == sorted(map(tuple, shuffled.collect())) and direct.count() == 24
    report = run_map(spark, cfg)  # the job decides by counting: 24 rows, 24 samples
    assert report["rows"] == 24 and {r["status"] for r in pq.read_table(str(tmp_path / "m")).to_pylist()} == {"ok"}


def test_samples_kept_in_one_file_are_mapped_without_a_shuffle_and_give_the_same_rows(spark, split_table, tmp_path):
    import pyarrow as pa
    import pyarrow.compute as pc

    from sparkprep.map.spark import files_whole, mapped_frame, sample_layout, sample_rows
    from sparkprep.spark.tables import read_table

    rows = sample_rows(read_table(spark, str(split_table)))
    layout = sample_layout(rows)  # split writes a sample's members into one file
    assert layout == {"samples": 12, "one_file_samples": False, "grouped_by_file": True}
    cfg = map_config(["--input", str(split_table), "--output", str(tmp_path / "m"), "--map", "user_features:sizes",
                      "--schema", "n bigint"])
    shuffled = sorted(map(tuple, mapped_frame(rows, cfg).collect()))
    before = spark.conf.get("spark.sql.files.openCostInBytes", None)
    with files_whole(spark, str(split_table)):
        direct = mapped_frame(rows, cfg, grouped_by_file=True)
        assert "Exchange" not in direct._jdf.queryExecution().executedPlan().toString()
        assert sorted(map(tuple, direct.collect())) == shuffled and len(shuffled) == 12
    assert spark.conf.get("spark.sql.files.openCostInBytes", None) == before  # the session's settings come back
    # the same rows with each sample's members in two files: the layout says so, and the shuffle stays
    table = pq.read_table(str(split_table), columns=["key", "split", "label", "path", "sha256", "status", "error",
                                                     "sample", "member", "content"]).replace_schema_metadata(None)
    spread = tmp_path / "spread"
    spread.mkdir()
    for member in ("jpg", "json"):
        pq.write_table(table.filter(pc.equal(table.column("member"), pa.scalar(member))),
                       str(spread / f"{member}.parquet"))
    spread_rows = sample_rows(spark.read.parquet(str(spread)))
    assert sample_layout(spread_rows)["grouped_by_file"] is False
    assert sorted(map(tuple, mapped_frame(spread_rows, cfg).collect())) == shuffled
    report = run_map(spark, cfg)  # the job finds the layout itself
    assert report["rows"] == 12 and spark.conf.get("spark.sql.files.openCostInBytes", None) == before
