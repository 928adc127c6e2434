"""WebDataset shards as input (--input-kind webdataset): members, samples, damage, globs."""

import collections
import io
import json
import tarfile

import pyarrow.parquet as pq
import webdataset as wds
from PIL import Image

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



def test_a_key_in_two_shards_is_a_reported_conflict_never_a_merged_sample(spark, tmp_path, make_sample):
    """WebDataset keys are per shard; one key in two shards used to become one sample of both shards'
    members (and a member name twice in a shard kept whichever copy Spark's sort put last)."""
    root = tmp_path / "shards"
    root.mkdir()
    jpg = lambda i: make_sample.jpeg_bytes(make_sample.synthetic_scan(i % 6, i))  # noqa: E731
    for s in range(2):
        with wds.TarWriter(str(root / f"part-{s}.tar")) as sink:
            sink.write({"__key__": f"own{s}", "jpg": jpg(s), "cls": b"1"})
            sink.write({"__key__": "shared", "jpg": jpg(10 + s), "cls": str(s).encode()})
    with tarfile.open(root / "part-2.tar", "w") as tar:  # a member name twice in one shard
        for name, data in (("twice.jpg", jpg(20)), ("twice.cls", b"0"), ("twice.jpg", jpg(21)), ("fine.jpg", jpg(22)),
                           ("fine.cls", b"2")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    report = run_split(spark, split_config(["--input", str(root / "*.tar"), "--output", str(tmp_path / "splits"),
                                            "--phash", "off", "--max-quarantine-fraction", "1"]))
    rows, by_sample = table(tmp_path / "splits")
    shared = [r for r in rows if r["sample"] == "shared"]
    assert len(shared) == 4 and {r["status"] for r in shared} == {"duplicate_key"}
    assert all("is in 2 shards (" in r["error"] and "part-0.tar" in r["error"] and "part-1.tar" in r["error"]
               for r in shared)
    twice = [r for r in rows if r["sample"] == "twice"]
    assert len(twice) == 3 and {r["status"] for r in twice} == {"duplicate_key"}
    assert any("occurs twice in this shard (members 1 and 3)" in r["error"] for r in twice)
    assert {r["status"] for r in rows if r["sample"] in ("own0", "own1", "fine")} == {"ok"}
    assert report["quarantine"]["duplicate_key"]["count"] == 7 and report["reconciliation"]["reconciled"]
    labels = {r["sample"]: r["label"] for r in pq.read_table(str(tmp_path / "splits"),
                                                               columns=["sample", "label"]).to_pylist()}
    assert labels["own0"] == labels["own1"] == "1" and labels["fine"] == "2"  # from each sample's cls member


def test_shards_whose_paths_hold_hash_signs_reconcile_and_an_empty_shard_is_a_row(spark, tmp_path, make_sample):
    root = tmp_path / "runs #3"
    written = write_shards(root, make_sample, shards=2, per_shard=3)
    (root / "train-000000.tar").rename(root / "train#000000.tar")
    with tarfile.open(root / "empty.tar", "w"):
        pass
    report = run_split(spark, split_config(["--input", str(root / "*.tar"), "--output", str(tmp_path / "splits"),
                                            "--phash", "off"]))
    assert report["reconciliation"]["listed_shards"] == 3 and report["reconciliation"]["reconciled"]
    rows, by_sample = table(tmp_path / "splits")
    assert set(by_sample) == set(written) | {""} and report["quarantine"]["empty"]["count"] == 1


def test_ingest_reads_shards_and_its_summary_says_so(spark, tmp_path, make_sample, capsys):
    """jobs/ingest.py on a glob of shards (it had no --input-kind, and failed with FileNotFoundError)."""
    from conftest import load_job

    write_shards(tmp_path / "shards", make_sample, shards=2, per_shard=4)
    code = load_job("ingest").main(["--input", str(tmp_path / "shards" / "*.tar"), "--output",
                                    str(tmp_path / "catalog"), "--phash", "off"], spark=spark)
    said = capsys.readouterr()
    out = said.out
    assert code == 0 and "input: 2 WebDataset shards, 24 rows" in out, said.err[-3000:]
    rows = pq.read_table(str(tmp_path / "catalog"), columns=["sample", "member", "label", "status"]).to_pylist()
    assert len(rows) == 24 and {r["status"] for r in rows} == {"ok"}
    assert {(r["sample"], r["label"]) for r in rows if r["member"] == "jpg"} == {
        (f"n{s:02d}_{i:04d}", str(i % 3)) for s in range(2) for i in range(4)}


def test_preprocess_transforms_each_samples_image_and_carries_its_other_members(spark, tmp_path, make_sample):
    """S1: shards -> split -> transform the image member, keep the others -> shards."""
    from sparkprep.export.flags import export_config
    from sparkprep.export.spark import run_export
    from sparkprep.preprocess.flags import preprocess_config
    from sparkprep.preprocess.spark import run_preprocess

    written = write_shards(tmp_path / "shards", make_sample, shards=2, per_shard=5)
    run_split(spark, split_config(["--input", str(tmp_path / "shards" / "*.tar"), "--output",
                                   str(tmp_path / "splits"), "--phash", "off"]))
    report = run_preprocess(spark, preprocess_config(["--input", str(tmp_path / "splits"), "--output",
                                                      str(tmp_path / "processed"), "--size", "24"]))
    processed = pq.read_table(str(tmp_path / "processed")).to_pylist()
    assert len(processed) == len(written) and all(r["status"] == "ok" and r["width"] == 24 for r in processed)
    for r in processed:
        assert dict(r["extras"]) == {m: v for m, v in written[r["key"]].items() if m in ("cls", "json")}
        assert r["label"] == written[r["key"]]["cls"].decode()
    assert report["counts"] and "(none)" not in str(report["counts"])
    export = run_export(spark, export_config(["--input", str(tmp_path / "processed"), "--output",
                                              str(tmp_path / "wds"), "--to", "webdataset"]))
    manifest = json.loads((tmp_path / "wds" / "manifest.json").read_text())
    assert manifest["classes"] == {"0": 0, "1": 1, "2": 2} and sum(export["counts"].values()) == len(written)
    samples = list(wds.WebDataset([str(tmp_path / "wds" / s["name"]) for s in manifest["shards"]], shardshuffle=False))
    assert len(samples) == len(written)
    for sample in samples:
        original = written[json.loads(sample["sparkprep.json"])["key"]]
        assert sample["cls"] == original["cls"] and sample["json"] == original["json"]  # carried unchanged
        assert sample["sparkprep.cls"] == original["cls"]  # the class index of label "0", "1" or "2"
        assert Image.open(io.BytesIO(sample["jpg"])).size == (24, 24)
