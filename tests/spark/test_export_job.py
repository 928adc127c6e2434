"""The export job in the shared session, read back with independent readers.

WebDataset shards are read with the `webdataset` package, TFRecords with the `tfrecord`
package (protobuf parsing) and an independent CRC32C, ImageFolder trees with Pillow.
"""

import glob
import hashlib
import io
import json
import os
import struct

import boto3
import crc32c
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from conftest import mxnet_read, read_mds_spec, read_recordio_spec
from PIL import Image
from tfrecord.reader import tfrecord_loader

from helpers import export
from sparkprep.errors import UsageError
from sparkprep.export import shards
from sparkprep.split.flags import split_config
from sparkprep.split.spark import run_split



def manifest_of(out):
    with open(os.path.join(out, "manifest.json"), encoding="utf-8") as handle:
        return json.load(handle)


def sha256_file(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.fixture(scope="module")
def processed(processed_sample):
    """The sample tree at 32 px JPEGs with two augmented copies per train and val sample (conftest)."""
    out, _ = processed_sample
    rows = pq.read_table(str(out), columns=["key", "split", "label", "status", "aug_index", "sha256"]).to_pylist()
    return out, rows


@pytest.fixture(scope="module")
def webdataset_export(spark, processed, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "wds"
    report = export(spark, "--input", processed[0], "--output", out, "--to", "webdataset", "--shard-size", "64KB")
    return out, report


def test_every_webdataset_shard_decodes_with_webdataset_and_counts_match(webdataset_export, processed):
    out, report = webdataset_export
    _, rows = processed
    ok = [r for r in rows if r["status"] == "ok"]
    manifest = manifest_of(out)
    tars = sorted(glob.glob(str(out / "*.tar")))
    assert [os.path.basename(t) for t in tars] == [s["name"] for s in manifest["shards"]]
    samples = list(wds.WebDataset(tars, shardshuffle=False).decode("pil"))
    assert len(samples) == len(ok) == report["samples"]
    assert len({s["__key__"] for s in samples}) == len(samples)  # no duplicates
    classes = manifest["classes"]
    assert classes == {label: i for i, label in enumerate(sorted({r["label"] for r in ok}))}
    by_split = {}
    for s in samples:
        meta = s["json"]
        assert s["jpg"].size == (32, 32) and s["cls"] == classes[meta["label"]]
        assert "." not in s["__key__"] and "/" not in s["__key__"]
        assert s["__url__"].rsplit("/", 1)[1].startswith(meta["split"] + "-")
        by_split[meta["split"]] = by_split.get(meta["split"], 0) + 1
    assert by_split == manifest["counts"] == {sp: sum(r["split"] == sp for r in ok) for sp in by_split}
    assert sum(s["json"]["aug_index"] == 1 for s in samples) == sum(r["aug_index"] == 1 for r in ok)


def test_shards_respect_the_size_bound_and_match_the_manifest(webdataset_export, processed):
    out, _ = webdataset_export
    manifest = manifest_of(out)
    assert len(manifest["shards"]) > 5
    for shard in manifest["shards"]:
        path = out / shard["name"]
        assert os.path.getsize(path) == shard["bytes"] <= 64 * 1024
        assert sha256_file(path) == shard["sha256"]
    quarantined = [r for r in processed[1] if r["status"] != "ok"]
    assert sum(sum(q.values()) for q in manifest["quarantined"].values()) == len(quarantined) > 0
    assert manifest["input"]["format"] == "parquet" and manifest["input"]["files_sha256"]
    assert not [f for f in os.listdir(out) if ".tmp-" in f]


def test_exporting_twice_gives_byte_identical_shards_and_reruns_replace_stale_ones(spark, processed,
                                                                                   webdataset_export, tmp_path):
    first, _ = webdataset_export
    again = tmp_path / "wds"
    export(spark, "--input", processed[0], "--output", again, "--to", "webdataset", "--shard-size", "64KB")
    assert manifest_of(again)["shards"] == manifest_of(first)["shards"]
    names = sorted(os.listdir(first))
    assert names == sorted(os.listdir(again))
    for name in names:
        if name.endswith(".tar"):
            assert sha256_file(first / name) == sha256_file(again / name), name
    report = export(spark, "--input", processed[0], "--output", again, "--to", "webdataset", "--shard-count", "1")
    assert sorted(f for f in os.listdir(again) if f.endswith(".tar")) == ["test-000000.tar", "train-000000.tar",
                                                                           "val-000000.tar"]
    assert report["output"]["removed_stale_files"] == len(manifest_of(first)["shards"]) - 3


def test_tfrecords_read_with_the_tfrecord_package_and_crcs_are_correct(spark, processed, tmp_path):
    out = tmp_path / "tfr"
    export(spark, "--input", processed[0], "--output", out, "--to", "tfrecord", "--shard-size", "128KB",
           "--splits", "train,val")
    manifest = manifest_of(out)
    files = sorted(glob.glob(str(out / "*.tfrecord")))
    assert [os.path.basename(f) for f in files] == [s["name"] for s in manifest["shards"]]
    total = sum(1 for s in manifest["shards"] if s["split"] == "train")
    assert {os.path.basename(f) for f in files if "train" in f} == {
        f"train-{i:05d}-of-{total:05d}.tfrecord" for i in range(total)}
    ok = [r for r in processed[1] if r["status"] == "ok" and r["split"] in ("train", "val")]
    records = []
    for path in files:
        with open(path, "rb") as handle:
            data = handle.read()
        at = 0
        while at < len(data):  # CRCs checked with the crc32c package (the writer uses google-crc32c)
            (length,) = struct.unpack("<Q", data[at:at + 8])
            assert struct.unpack("<I", data[at + 8:at + 12])[0] == masked(data[at:at + 8])
            assert struct.unpack("<I", data[at + 12 + length:at + 16 + length])[0] == masked(data[at + 12:at + 12 + length])
            at += 16 + length
        records += list(tfrecord_loader(path, None))
    assert len(records) == len(ok) and manifest["counts"] == {"train": sum(r["split"] == "train" for r in ok),
                                                             "val": sum(r["split"] == "val" for r in ok)}
    names = manifest["classes"]
    for record in records:
        text = bytes(record["image/class/text"]).decode()
        assert record["image/class/label"][0] == names[text]
        assert bytes(record["image/format"]) == b"jpeg"
        image = Image.open(io.BytesIO(bytes(record["image/encoded"])))
        assert image.size == (record["image/width"][0], record["image/height"][0]) == (32, 32)
    assert len({bytes(r["image/filename"]) for r in records}) == len(records)


def test_recordio_shards_read_with_mxnet_and_agree_with_idx_lst_and_manifest(spark, processed, tmp_path):
    """Every record through a reader written from dmlc's spec, then through MXNet's own readers."""
    out = tmp_path / "rec"
    report = export(spark, "--input", processed[0], "--output", out, "--to", "recordio", "--shard-size", "64KB")
    manifest = manifest_of(out)
    images = pq.read_table(str(processed[0]), columns=["status", "image", "label", "split"]).to_pylist()
    ok = [r for r in images if r["status"] == "ok"]
    classes, dirs = manifest["classes"], manifest["recordio"]["label_dirs"]
    assert report["samples"] == len(ok) and len(manifest["shards"]) > 3
    listed = {}
    for split in manifest["counts"]:
        for line in (out / f"{split}.lst").read_text().splitlines():
            record_id, label, path = line.split("\t")
            listed[(split, int(record_id))] = (float(label), path)
    seen, found = {}, []
    for shard in manifest["shards"]:
        data = (out / shard["name"]).read_bytes()
        assert len(data) == shard["bytes"] <= 64 * 1024 and sha256_file(out / shard["name"]) == shard["sha256"]
        records = read_recordio_spec(data)
        index = [tuple(map(int, line.split("\t"))) for line in (out / shard["idx"]).read_text().splitlines()]
        assert len(records) == shard["samples"] and len(index) == len(records)
        for (offset, payload), (record_id, indexed) in zip(records, index):
            flag, label, header_id, id2 = shards.IR_HEADER.unpack(payload[:24])
            assert (flag, id2, header_id, offset) == (0, 0, record_id, indexed)
            lst_label, path = listed[(shard["split"], record_id)]
            split, label_dir, _ = path.split("/")
            assert split == shard["split"] and lst_label == label == classes[next(l for l, d in dirs.items()
                                                                             if d == label_dir)]
            seen[(split, label_dir)] = seen.get((split, label_dir), 0) + 1
            found.append((split, label, payload[24:]))
    assert sorted(found) == sorted((r["split"], float(classes[r["label"]]), r["image"]) for r in ok)
    assert len(listed) == len(ok)
    for split, n in manifest["counts"].items():  # ids are 0..n-1 within each split
        assert sorted(i for s, i in listed if s == split) == list(range(n))
    read = mxnet_read("records", out)
    for shard in manifest["shards"]:
        rows = read["shards"][shard["name"]]
        assert [r["shape"] for r in rows] == [[32, 32, 3]] * shard["samples"]
        assert [r["label"] for r in rows] == read["iterated"][shard["name"]]  # the training iterator agrees
        assert all(listed[(shard["split"], r["id"])][0] == r["label"] and r["flag"] == 0 for r in rows)


def masked(data):
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_imagefolder_tree_from_a_split_table_holds_the_original_bytes(spark, sample_tree, tmp_path):
    table = tmp_path / "splits"
    # the default validation: its end check quarantines the truncated JPEG, so it is never exported
    run_split(spark, split_config(["--input", str(sample_tree), "--output", str(table)]))
    rows = [r for r in pq.read_table(str(table), columns=["split", "label", "status", "sha256", "rel_path",
                                                          "error"]).to_pylist()]
    [cut] = [r for r in rows if r["rel_path"] == "CXR/p_bad_truncated.jpeg"]
    assert cut["status"] == "corrupt" and "end-of-image marker" in cut["error"]
    out = tmp_path / "folders"
    export(spark, "--input", table, "--output", out, "--to", "imagefolder")
    manifest = manifest_of(out)
    files = [p for p in glob.glob(str(out / "*" / "*" / "*")) if os.path.isfile(p)]
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(files) == len(ok) == sum(manifest["counts"].values())
    assert sorted(sha256_file(p) for p in files) == sorted(r["sha256"] for r in ok)  # bytes unchanged
    for path in files:
        split, label_dir = path.split(os.sep)[-3:-1]
        assert label_dir in manifest["label_dirs"].values() and split in manifest["counts"]
        Image.open(path).load()
    assert {e["name"].split("/")[0] for e in manifest["shards"]} == set(manifest["counts"])
    assert sum(e["samples"] for e in manifest["shards"]) == len(files)


def test_webdataset_to_s3_through_a_local_s3_server(spark, processed, webdataset_export, s3_endpoint):
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="sparkprep-test")
    export(spark, "--input", processed[0], "--output", "s3://sparkprep-test/exports/wds", "--to", "webdataset",
           "--shard-size", "64KB", "--s3-endpoint", s3_endpoint)
    listed = client.list_objects_v2(Bucket="sparkprep-test", Prefix="exports/wds/")["Contents"]
    keys = sorted(o["Key"].rsplit("/", 1)[1] for o in listed)
    local, _ = webdataset_export
    assert keys == sorted(os.listdir(local))  # same shards, manifest and report; no temporaries
    manifest = json.loads(client.get_object(Bucket="sparkprep-test", Key="exports/wds/manifest.json")["Body"].read())
    for shard in manifest["shards"]:
        body = client.get_object(Bucket="sparkprep-test", Key=f"exports/wds/{shard['name']}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == shard["sha256"] == sha256_file(local / shard["name"])


def test_export_refuses_a_directory_that_is_not_an_export(spark, processed, tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(UsageError, match="refusing to touch it"):
        export(spark, "--input", processed[0], "--output", tmp_path, "--to", "webdataset")
    assert os.listdir(tmp_path) == ["precious.txt"] and (tmp_path / "precious.txt").read_text() == "keep me"


def test_tabular_split_tables_cannot_be_exported(spark, tmp_path):
    csv = tmp_path / "rows.csv"
    csv.write_text("id,label\n1,a\n2,b\n")
    table = tmp_path / "split"
    run_split(spark, split_config(["--input", str(csv), "--output", str(table), "--key-by", "column:id"]))
    with pytest.raises(UsageError, match="expected a processed table"):
        export(spark, "--input", table, "--output", tmp_path / "out", "--to", "tfrecord")


def test_mds_shards_and_index_are_what_mdswriter_writes_one_folder_per_split(spark, processed, tmp_path):
    """--to mds: <split>/shard.NNNNN.mds read back by a reader written from streaming's (conftest.read_mds_spec),
    each at most --shard-size with its header, and <split>/index.json listing them in order with their bytes,
    sha256 and samples; the same bytes twice. streaming's own StreamingDataset and MDSWriter check it in
    make test-clients."""
    out, again = tmp_path / "mds", tmp_path / "mds2"
    report = export(spark, "--input", processed[0], "--output", out, "--to", "mds", "--shard-size", "64KB")
    export(spark, "--input", processed[0], "--output", again, "--to", "mds", "--shard-size", "64KB")
    manifest = manifest_of(out)
    files = sorted(str(p.relative_to(out)) for p in out.glob("*/shard.*.mds"))
    assert files == [s["name"] for s in manifest["shards"]] and len(files) == report["shards"] > 3
    assert all((out / f).read_bytes() == (again / f).read_bytes() for f in files + ["train/index.json"])
    assert manifest["mds"]["columns"]["image"] == "jpeg" and manifest["format_settings"] == {"image_encoding": "jpeg"}
    ok, seen = [r for r in processed[1] if r["status"] == "ok"], []
    for split in manifest["counts"]:
        index = json.loads((out / split / "index.json").read_text())
        assert [s["raw_data"]["basename"] for s in index["shards"]] == sorted(
            (f.split("/")[1] for f in files if f.startswith(f"{split}/")), key=lambda n: int(n.split(".")[1]))
        assert sum(s["samples"] for s in index["shards"]) == manifest["counts"][split]
        for entry in index["shards"]:
            data = (out / split / entry["raw_data"]["basename"]).read_bytes()
            assert entry["raw_data"]["bytes"] == len(data) <= 64 * 1024
            assert entry["raw_data"]["hashes"] == {"sha256": hashlib.sha256(data).hexdigest()}
            config, samples = read_mds_spec(data)
            assert config == {k: v for k, v in entry.items() if k not in ("samples", "raw_data", "zip_data")}
            assert len(samples) == entry["samples"]
            seen += [(s["split"], s["sha256"], s["aug_index"], s["label"]) for s in samples]
            assert all(Image.open(io.BytesIO(s["image"])).format == "JPEG" for s in samples)
    assert sorted(seen) == sorted((r["split"], r["sha256"], r["aug_index"], manifest["classes"][r["label"]])
                                  for r in ok)
    assert report["written"] == f"{len(files)} shards and an index.json per split"


def test_hf_parquet_shards_carry_the_exact_types_and_features_datasets_needs_and_a_dataset_card(spark, processed,
                                                                                                  tmp_path):
    """--to hf: data/<split>-NNNNN-of-NNNNN.parquet with image struct<bytes, path> and label int64 nullable, the
    `huggingface` features (Image, ClassLabel with the class map's names) in every file, a README.md card listed
    in the manifest; the same bytes twice. datasets itself reads it in make test-clients."""
    out, again = tmp_path / "hf", tmp_path / "hf2"
    report = export(spark, "--input", processed[0], "--output", out, "--to", "hf", "--shard-size", "64KB")
    export(spark, "--input", processed[0], "--output", again, "--to", "hf", "--shard-size", "64KB")
    manifest = manifest_of(out)
    files = sorted(str(p.relative_to(out)) for p in (out / "data").glob("*.parquet"))
    assert files == [s["name"] for s in manifest["shards"]] and len(files) == report["shards"] > 3
    assert all((out / f).read_bytes() == (again / f).read_bytes() for f in files)  # deterministic
    names = [label for label, _ in sorted(manifest["classes"].items(), key=lambda item: item[1])]
    ok = [r for r in processed[1] if r["status"] == "ok"]
    seen = []
    for f in files:
        split, part = f[len("data/"):].split("-", 1)
        total = sum(1 for g in files if g.startswith(f"data/{split}-"))
        assert part.endswith(f"-of-{total:05d}.parquet")
        table = pq.read_table(out / f)
        assert str(table.schema.field("image").type) == "struct<bytes: binary, path: string>"
        assert table.schema.field("label").type == "int64" and table.schema.field("label").nullable
        features = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
        assert features["image"] == {"_type": "Image"} and features["label"] == {"_type": "ClassLabel", "names": names}
        assert (out / f).stat().st_size <= 64 * 1024
        seen += [(split, r["sha256"], r["aug_index"], names[r["label"]]) for r in table.to_pylist()]
    assert sorted(seen) == sorted((r["split"], r["sha256"], r["aug_index"], r["label"]) for r in ok)
    card = (out / "README.md").read_text()
    assert "configs:" in card and '  - split: validation\n    path: "data/val-[0-9]*.parquet"' in card
    assert "README.md" in manifest["files"] and f"num_examples: {manifest['counts']['train']}" in card


def test_a_table_of_raw_pixels_is_refused_where_the_reader_decodes_files_and_written_as_npy_to_mds(spark, sample_tree,
                                                                                                  tmp_path):
    """--encode raw: RecordIO and hf refuse it with the cause named (exit 2 before writing); mds types the image
    column `bytes` and writes each image as a .npy file."""
    import numpy as np

    from helpers import preprocess

    table = tmp_path / "raw"
    preprocess(spark, "--input", sample_tree, "--output", table, "--size", "16", "--encode", "raw")
    for to, cause in (("recordio", "OpenCV"), ("hf", "Pillow")):
        with pytest.raises(UsageError, match=f"--to {to}: expected encoded images.*{cause}"):
            export(spark, "--input", table, "--output", tmp_path / to, "--to", to)
        assert not (tmp_path / to / "manifest.json").exists()
    export(spark, "--input", table, "--output", tmp_path / "mds", "--to", "mds")
    assert manifest_of(tmp_path / "mds")["mds"]["columns"]["image"] == "bytes"
    shard = sorted((tmp_path / "mds").glob("train/shard.*.mds"))[0]
    config, samples = read_mds_spec(shard.read_bytes())
    assert config["column_encodings"][config["column_names"].index("image")] == "bytes"
    assert all(np.load(io.BytesIO(s["image"])).shape[:2] == (16, 16) for s in samples)
