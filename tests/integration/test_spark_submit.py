"""A few real `spark-submit` runs: what a user types, in a separate JVM and Python workers."""

import json

import pyarrow.parquet as pq
import pytest
from conftest import spark_submit

from sparkprep.split.assign import assign_split


def test_split_via_spark_submit_writes_the_table_and_page_then_fails_on_leakage(sample_tree, tmp_path):
    """One real split on local[2,3]: the summary and a line per stage, a reconciled table whose every row
    is sha256-v1, and --fail-on-leakage's exit 1 after the table and its page were written."""
    out = tmp_path / "splits"
    # the sample's synthetic scans look alike: at a fixed 8 bits, pairs of different scans cross splits
    # (calibrated, the audit would count exact hash matches only: see the look-alike test below)
    result = spark_submit("split", "--input", sample_tree, "--output", out, "--ratios", "0.7,0.15,0.15",
                          "--seed", "42", "--validate", "full", "--near-threshold", "8", "--fail-on-leakage",
                          master="local[2,3]")
    said = result.stdout + result.stderr  # spark-submit merges the Python driver's stderr into its stdout
    assert result.returncode == 1, said[-4000:]
    assert "split: --fail-on-leakage:" in said and "near-duplicate pairs cross splits" in said
    assert "== split summary ==" in said and "pairs across splits (leakage)" in said
    assert "quarantined: corrupt 1, decompression_bomb 1, empty 1, invalid 1" in said
    assert "[split" in said and "] running: ingest" in said  # a line per stage
    report = json.loads((out / "_run_report.json").read_text())
    assert report["reconciliation"]["reconciled"] and report["split"]["split_algo"] == "sha256-v1"
    assert report["near_duplicates"]["pairs_across_splits"] > 0 and (out / "_report.html").exists()
    rows = pq.read_table(str(out), columns=["key", "split", "status"]).to_pylist()
    assert len(rows) == report["rows"] == report["reconciliation"]["expected_rows"]
    assert all(r["split"] == assign_split("42", r["key"], [0.7, 0.15, 0.15], ["train", "val", "test"]) for r in rows)


@pytest.mark.slow
@pytest.mark.parametrize("look_alike", [True, False])
def test_merge_on_look_alike_scans_via_spark_submit_keeps_the_split_ratios(make_sample, tmp_path, look_alike):
    """600 synthetic scans of six modalities, alike as scans are, with planted copies: the 64-bit hash cannot tell
    them apart, so the angle between their DCT directions decides. On the demo's scans (an anatomy per patient,
    planted copies) merge takes every planted copy; on the older --look-alike scans (no copies, scans that differ
    only by noise) it finds no chance pair. Either way each split keeps its share."""
    tree, out = tmp_path / "scans", tmp_path / "merged"
    make_sample.make_tree(str(tree), per_class=100, with_bad=not look_alike, look_alike=look_alike)
    result = spark_submit("split", "--input", tree, "--output", out, "--ratios", "0.8,0.1,0.1",
                          "--near-duplicates", "merge")
    said = result.stdout + result.stderr
    assert result.returncode == 0, said[-4000:]
    near = json.loads((out / "_run_report.json").read_text())["near_duplicates"]
    assert near["calibration"]["threshold"] == 0 and near["calibration"]["how"] == "calibrated"
    assert near["merge"]["largest_merged"] <= near["merge"]["max_cluster_rows"] == 20
    assert near["angle"]["used"] and f"DCT directions within {near['angle']['threshold_degrees']:g} degrees" in said
    assert "so the angle between their DCT directions decides" in said
    if look_alike:  # no planted copies: what the angle finds is chance, within the bound
        assert near["pairs_within_splits"] + near["pairs_across_splits"] <= 1
    else:
        planted = make_sample.planted_pairs(str(tree))
        rows = pq.read_table(str(out), columns=["rel_path", "key", "status"]).to_pylist()
        key = {r["rel_path"]: r["key"] for r in rows if r["status"] == "ok"}
        assert len(planted) == 15 and all(key[a] == key[b] for a, b in planted)  # each copy with its original
        assert near["merge"]["largest_merged"] <= 3  # a copy and its original (and an exact duplicate)
    splits = [r["split"] for r in pq.read_table(str(out), columns=["split"]).to_pylist()]
    for name, ratio in (("train", 0.8), ("val", 0.1), ("test", 0.1)):
        assert abs(splits.count(name) / len(splits) - ratio) < 0.05, (name, splits.count(name), len(splits))


def test_bad_usage_via_spark_submit_exits_2_with_one_line(tmp_path):
    (tmp_path / "in").mkdir()
    result = spark_submit("split", "--input", tmp_path / "in", "--output", tmp_path / "o", "--ratios", "0.5,0.2")
    assert result.returncode == 2
    printed = (result.stdout + result.stderr).splitlines()
    errors = [line for line in printed if "error" in line.lower()]
    assert errors == ["split: error: --ratios: expected ratios summing to 1, got '0.5,0.2' (sum 0.7)"]
    assert "summary" not in result.stdout


@pytest.mark.slow
def test_webdataset_shards_to_transformed_shards_via_spark_submit(make_sample, tmp_path):
    """S1 as a user runs it: shards -> split -> transform each sample's image, keep its other members
    -> shards, labels from the samples' own cls members."""
    import io

    import webdataset as wds
    from PIL import Image

    (tmp_path / "shards").mkdir()
    written = {}
    for s in range(2):
        with wds.TarWriter(str(tmp_path / "shards" / f"train-{s:06d}.tar")) as sink:
            for i in range(6):
                sample = {"__key__": f"s{s}_{i}", "jpg": make_sample.jpeg_bytes(make_sample.synthetic_scan(i, s * 9 + i)),
                          "cls": str(i % 3).encode(), "json": json.dumps({"i": i}).encode()}
                sink.write(sample)
                written[sample["__key__"]] = sample
    out = tmp_path / "out"
    result = spark_submit("pipeline", "--input", tmp_path / "shards" / "*.tar", "--output", out, "--size", "20",
                          "--to", "webdataset", "--phash", "off")
    said = result.stdout + result.stderr
    assert result.returncode == 0, said[-4000:]
    assert "input: 2 WebDataset shards" in said and "export webdataset:" in said
    manifest = json.loads((out / "webdataset" / "manifest.json").read_text())
    assert manifest["classes"] == {"0": 0, "1": 1, "2": 2}
    samples = list(wds.WebDataset([str(out / "webdataset" / s["name"]) for s in manifest["shards"]],
                                  shardshuffle=False))
    assert len(samples) == len(written)
    for sample in samples:
        original = written[json.loads(sample["sparkprep.json"])["key"]]
        assert (sample["cls"], sample["json"]) == (original["cls"], original["json"])
        assert Image.open(io.BytesIO(sample["jpg"])).size == (20, 20)


CROP_PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "coins", "hubble_deep_field", "immunohistochemistry",
               "moon", "page", "rocket", "text", "brick", "grass", "gravel")


def _corner_crops(root):
    """Real photos, each also cut to its top-left 88% (23% of the area gone: a copy today's pHash misses, at 10-25
    bits), the copy under another name in the same folder."""
    from images import jpeg, photo

    for name in CROP_PHOTOS:
        image = photo(name).convert("RGB")
        width, height = image.size
        (root / f"{name}.jpg").write_bytes(jpeg(image))
        (root / f"{name}-copy.jpg").write_bytes(jpeg(image.crop((0, 0, round(width * 0.88), round(height * 0.88)))))


def test_crop_robust_audit_via_spark_submit_fails_on_a_corner_crop_across_splits_and_merge_keeps_it_together(tmp_path):
    """--near-signature crop-robust: corner-cropped copies are crop pairs (the report names the window), fail
    --fail-on-leakage where they cross splits (exit 1, everything written), and --near-duplicates merge puts each
    with its original."""
    root = tmp_path / "photos"
    root.mkdir()
    _corner_crops(root)
    leaky = tmp_path / "leaky"
    result = spark_submit("split", "--input", root, "--output", leaky, "--ratios", "0.5,0.5", "--seed", "7",
                          "--near-signature", "crop-robust", "--fail-on-leakage")
    said = result.stdout + result.stderr
    assert result.returncode == 1, said[-4000:]
    assert "crop pairs" in said and "near-duplicate pairs cross splits" in said
    near = json.loads((leaky / "_run_report.json").read_text())["near_duplicates"]
    rows = pq.read_table(leaky, columns=["path", "split"]).to_pylist()
    split_of = {r["path"].rsplit("/", 1)[-1][:-4]: r["split"] for r in rows}
    crossing = {n for n in CROP_PHOTOS if split_of[n] != split_of[f"{n}-copy"]}
    assert crossing, split_of  # the seed puts some copies in the other split: the test needs them
    assert near["crops"]["searched"] and near["crops"]["threshold"] >= 6, near["crops"]
    assert near["pairs_across_splits"] == len(crossing)
    listed = {(e["a"]["path"].rsplit("/", 1)[-1], e["b"]["path"].rsplit("/", 1)[-1]): e for e in near["examples"]}
    assert {min(a, b).split("-")[0].split(".")[0] for a, b in listed} == crossing
    assert all(e["crop"]["window"] == "top-left 0.88" for e in listed.values()), listed
    assert all(e["distance"] > 8 for e in listed.values())  # pHash alone would not pair them

    merged = tmp_path / "merged"
    result = spark_submit("split", "--input", root, "--output", merged, "--ratios", "0.5,0.5", "--seed", "7",
                          "--near-signature", "crop-robust", "--near-duplicates", "merge", "--fail-on-leakage")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    rows = pq.read_table(merged, columns=["path", "split"]).to_pylist()
    split_of = {r["path"].rsplit("/", 1)[-1][:-4]: r["split"] for r in rows}
    assert all(split_of[n] == split_of[f"{n}-copy"] for n in CROP_PHOTOS), split_of
    near = json.loads((merged / "_run_report.json").read_text())["near_duplicates"]
    assert near["pairs_across_splits"] == 0 and near["merge"]["clusters"] >= len(CROP_PHOTOS) - 1, near["merge"]
