"""--incremental over samples of several files (--samples basename) and WebDataset shards: a sample or a
shard is kept or read whole, and the tables equal a full run's on the same final input, row for row."""

import json

import pytest
import webdataset as wds
from conftest import write_samples
from helpers import hide, pipeline, splitter, table_rows


SPLIT = ["--ratios", "0.7,0.15,0.15", "--seed", "7"]
SAMPLES = ("--samples", "basename", "--extensions", "jpg,json,cls,png", "--validate", "full", "--phash", "off",
           "--max-quarantine-fraction", "1")
split = splitter(*SPLIT)


def test_a_sample_of_several_files_is_kept_only_when_none_of_its_files_changed_came_or_went(spark, make_sample,
                                                                                           tmp_path):
    tree, out, full = tmp_path / "in", tmp_path / "out", tmp_path / "full"
    write_samples(make_sample, tree, 0, 12)  # <label>/s<i>.jpg, .json, .cls
    (tree / "bee" / "s004.jpg").write_bytes(b"not a jpeg")  # quarantines its whole sample: kept so, unread
    first = split(spark, tree, out, *SAMPLES, "--incremental")
    assert first["incremental"]["read"] == 36
    write_samples(make_sample, tree, 12, 2)  # two new samples
    (tree / "bee" / "s002.json").write_text(json.dumps({"boxes": []}))  # a member changed
    make_sample.write(str(tree / "ant" / "s005.seg.png"), make_sample._png(make_sample.synthetic_scan(1, 5)))
    (tree / "ant" / "s007.json").unlink()  # a member gone
    for gone in (tree / "ant").glob("s009.*"):  # a sample gone
        gone.unlink()
    untouched = [p for p in tree.rglob("*") if p.is_file() and p.name[:4] in
                 ("s000", "s001", "s003", "s004", "s006", "s008", "s010", "s011")]
    assert len(untouched) == 24
    restore = hide(untouched)
    second = split(spark, tree, out, *SAMPLES, "--incremental")
    restore()
    # read: the files of s002 (3), s005 (4), s007 (2), s012 and s013 (6)
    assert second["incremental"] == {"previous": f"file:{out}", "state": "_sparkprep_listing", "listed": 39,
                                     "read": 15, "kept": 24, "deleted": 4, "unversioned": 0}
    split(spark, tree, full, *SAMPLES)
    assert table_rows(out) == table_rows(full)
    statuses = {r["rel_path"]: r["status"] for r in table_rows(out, ["rel_path", "status"])}
    assert statuses["bee/s004.json"] == "invalid" and statuses["ant/s005.seg.png"] == "ok"


def jpeg(make_sample, i):
    return make_sample.jpeg_bytes(make_sample.synthetic_scan(i % 6, i))


def write_shard(make_sample, path, samples):
    """One WebDataset shard: key -> (image number, class, json text)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wds.TarWriter(str(path)) as sink:
        for key, (i, cls, text) in samples.items():
            sink.write({"__key__": key, "jpg": jpeg(make_sample, i), "cls": str(cls).encode(), "json": text.encode()})


def shard_samples(s, count=4):
    return {f"s{s}_{i}": (10 * s + i, i % 2, f'{{"i": {i}}}') for i in range(count)}


def test_webdataset_shards_are_kept_or_read_whole_and_a_clash_with_a_new_shard_reads_the_old_one_again(
        spark, make_sample, tmp_path):
    root, out, full = tmp_path / "shards", tmp_path / "out", tmp_path / "full"
    for s in range(4):
        write_shard(make_sample, root / f"part-{s}.tar", shard_samples(s))
    flags = ("--input-kind", "webdataset", "--validate", "full", "--phash", "off", "--max-quarantine-fraction", "1")
    first = split(spark, root, out, *flags, "--incremental")
    assert (first["incremental"]["listed"], first["incremental"]["read"], first["incremental"]["unit"]) == \
        (4, 4, "shards")
    changed = shard_samples(1)
    changed["s1_0"] = (99, 1, '{"i": 0}')
    write_shard(make_sample, root / "part-1.tar", changed)
    (root / "part-2.tar").unlink()
    # a new shard whose key s0_1 part-0 holds too, with a greater class: both become duplicate_key, and a full
    # run labels part-0's members of s0_1 with the greatest class over both shards, from each member's own row,
    # so part-0 is read again though it did not change (keeping it labelled them with its own class)
    write_shard(make_sample, root / "part-4.tar", {**shard_samples(4, 2), "s0_1": (77, 2, "{}")})
    restore = hide([root / "part-3.tar"])
    cached = set(spark.sparkContext._jsc.getPersistentRDDs().keys())
    second = split(spark, root, out, *flags, "--incremental")
    restore()
    # what the matching persisted (the kept shards, the rows read now) is freed once the table is written
    assert set(spark.sparkContext._jsc.getPersistentRDDs().keys()) == cached
    assert second["incremental"] == {"previous": f"file:{out}", "state": "_sparkprep_listing", "listed": 4,
                                     "read": 3, "kept": 12, "deleted": 1, "unversioned": 0, "unit": "shards"}
    split(spark, root, full, *flags)
    assert table_rows(out) == table_rows(full)
    clash = [r for r in table_rows(out, ["sample", "status"]) if r["sample"] == "s0_1"]
    assert len(clash) == 6 and {r["status"] for r in clash} == {"duplicate_key"}


# slow (make test-slow): the split tests above and the matching test below cover its parts within make test
@pytest.mark.slow
def test_pipeline_over_webdataset_shards_transforms_only_samples_whose_members_changed(spark, make_sample,
                                                                                       tmp_path):
    """A sample whose .json alone changed keeps its image's row in the split table unchanged: it is still
    transformed again, since its processed row carries the .json (extras)."""
    root, out, full = tmp_path / "shards", tmp_path / "out", tmp_path / "full"
    for s in range(3):
        write_shard(make_sample, root / f"part-{s}.tar", shard_samples(s))
    flags = ("--size", "24", "--phash", "off", *SPLIT)
    shards = root / "part-*.tar"  # a glob: listed by Hadoop, with its modification times
    first = pipeline(spark, "--input", shards, "--output", out, "--incremental", *flags)
    assert first["stages"]["processed"]["incremental"]["full_run"] == "no previous output"
    changed = shard_samples(1)
    changed["s1_2"] = (12, 0, '{"i": "changed"}')
    write_shard(make_sample, root / "part-1.tar", changed)
    write_shard(make_sample, root / "part-3.tar", shard_samples(3, 2))
    restore = hide([root / "part-0.tar", root / "part-2.tar"])
    second = pipeline(spark, "--input", shards, "--output", out, "--incremental", *flags)
    restore()
    assert second["stages"]["splits"]["incremental"]["read"] == 2
    assert second["stages"]["processed"]["incremental"] == {"previous": f"file:{out}/processed", "listed": 14,
                                                             "kept": 11, "transformed": 3, "deleted": 0}
    pipeline(spark, "--input", shards, "--output", full, *flags)
    for table in ("splits", "processed"):
        assert table_rows(out / table) == table_rows(full / table), table
    extras = {r["path"].rsplit("#", 1)[1]: r["extras"] for r in table_rows(out / "processed", ["path", "extras"])}
    assert dict(extras["s1_2.jpg"])["json"] == b'{"i": "changed"}'


def test_rows_of_two_killed_runs_are_taken_once_per_sample_and_only_the_rest_is_transformed(spark, make_sample,
                                                                                            tmp_path):
    """The two-pass resume's matching (incremental_frame with `resumed`): two killed runs made overlapping
    samples; each sample's rows come from one of them only, the others are transformed, and the whole equals
    a full transform."""
    from pyspark.sql import functions as F

    from sparkprep.preprocess.flags import preprocess_config
    from sparkprep.preprocess.spark import incremental_frame, preprocess_frame
    from sparkprep.spark.tables import read_table

    tree, table = tmp_path / "in", tmp_path / "table"
    write_samples(make_sample, tree, 0, 6, with_cls=False)
    split(spark, tree, table, *SAMPLES)
    cfg = preprocess_config(["--input", str(table), "--output", str(tmp_path / "p"), "--size", "24", "--augment",
                             "hflip", "--copies", "1"])
    rows = read_table(spark, str(table))
    made = preprocess_frame(rows, cfg, True)
    rel = dict(r for r in rows.where(F.col("member") == "jpg").select("path", "rel_path").collect())
    images = sorted(rel)
    resumed = (made.where(F.col("path").isin(images[:3])).withColumn("_source", F.lit(0))
               .unionByName(made.where(F.col("path").isin(images[1:5])).withColumn("_source", F.lit(1))))
    transformed = []

    def transform(todo, grouped):
        transformed.append(sorted(r[0] for r in todo.select("rel_path").collect()))
        return preprocess_frame(todo, cfg, grouped)

    out, counts = incremental_frame(spark, cfg, "new", rows, transform, grouped=True, resumed=resumed)
    assert (counts["listed"], counts["kept"], counts["resumed"], counts["transformed"]) == (6, 5, 5, 1)
    left = rel[images[5]]  # the one sample neither run made: its two members, alone
    assert transformed == [[left, left.replace(".jpg", ".json")]]
    key = lambda r: (r["path"], r["aug_index"])  # noqa: E731
    assert sorted(out.collect(), key=key) == sorted(made.collect(), key=key)
