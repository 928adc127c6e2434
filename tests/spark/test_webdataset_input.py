"""WebDataset shards as input (--input-kind webdataset): members, samples, damage, globs."""

import collections

import pyarrow.parquet as pq
import webdataset as wds

from sparkprep.split.flags import split_config
from sparkprep.split.spark import run_split


def write_shards(root, make_sample, shards=2, per_shard=6):
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for s in range(shards):
        with wds.TarWriter(str(root / f"train-{s:06d}.tar")) as sink:
            for i in range(per_shard):
                key = f"n{s:02d}_{i:04d}"
                sample = {"__key__": key, "jpg": make_sample.jpeg_bytes(make_sample.synthetic_scan(i % 6, s * 100 + i)),
                          "cls": str(i % 3).encode(), "json": f'{{"i": {i}}}'.encode()}
                sink.write(sample)
                written[key] = sample
    return written


def table(out):
    rows = pq.read_table(str(out), columns=["key", "split", "path", "sample", "member", "status", "error",
                                            "content", "format"]).to_pylist()
    by_sample = collections.defaultdict(dict)
    for r in rows:
        by_sample[r["sample"]][r["member"]] = r
    return rows, by_sample


def test_shards_written_by_webdataset_read_back_sample_for_sample(spark, tmp_path, make_sample):
    written = write_shards(tmp_path / "shards", make_sample)
    report = run_split(spark, split_config(["--input", str(tmp_path / "shards" / "*.tar"), "--output",
                                            str(tmp_path / "splits"), "--validate", "full"]))
    rows, by_sample = table(tmp_path / "splits")
    assert set(by_sample) == set(written) and len(rows) == 3 * len(written)
    for key, members in by_sample.items():
        assert {m: r["content"] for m, r in members.items()} == {m: v for m, v in written[key].items() if m != "__key__"}
        assert {r["key"] for r in members.values()} == {key} and len({r["split"] for r in members.values()}) == 1
        shard = f"train-{int(key[1:3]):06d}.tar"
        assert members["jpg"]["path"].endswith(f"/{shard}#{key}.jpg") and members["jpg"]["format"] == "JPEG"
        assert all(r["status"] == "ok" for r in members.values())
    assert report["reconciliation"]["listed_shards"] == 2 and report["reconciliation"]["reconciled"]


def test_a_truncated_shard_quarantines_only_what_was_lost(spark, tmp_path, make_sample):
    written = write_shards(tmp_path / "shards", make_sample, shards=2, per_shard=8)
    cut = tmp_path / "shards" / "train-000001.tar"
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    run_split(spark, split_config(["--input", str(tmp_path / "shards"), "--input-kind", "webdataset",
                                   "--output", str(tmp_path / "splits"), "--max-quarantine-fraction", "1"]))
    rows, by_sample = table(tmp_path / "splits")
    intact = [k for k in written if k.startswith("n00_")]
    assert all(all(r["status"] == "ok" for r in by_sample[k].values()) for k in intact)
    damaged = [r for r in rows if r["status"] == "corrupt"]
    assert len(damaged) >= 1 and any("shard unreadable after member n01_" in (r["error"] or "") for r in damaged)
    kept_from_cut = {r["sample"] for r in rows if r["path"].split("#")[0].endswith("train-000001.tar") and r["sample"]}
    assert kept_from_cut and len(kept_from_cut) < 8  # the members before the damage are kept

