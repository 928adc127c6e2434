"""The real loaders over sparkprep's exports (`make test-clients`, run by CI after the other suites).

One `spark-submit jobs/pipeline.py` writes the tables and the ImageFolder, WebDataset, TFRecord, Hugging Face
(`hf`) and MosaicML (`mds`) exports of the demo's sample; tests/clients/read_with.py then reads them in the clients'
venv (.venv-clients: torch and torchvision, tensorflow-cpu, datasets; .venv-mds: mosaicml-streaming), apart from
sparkprep's, and prints what the loaders saw.
"""

import json
import os
import subprocess
import tempfile

import pyarrow.dataset as ds
import pytest
from conftest import REPO, spark_submit

CLIENTS_PYTHON = REPO / ".venv-clients" / "bin" / "python"
MDS_PYTHON = REPO / ".venv-mds" / "bin" / "python"  # mosaicml-streaming: a venv of its own (huggingface-hub < 1.0)


def read_with(*args, python=CLIENTS_PYTHON):
    if not python.exists():
        pytest.fail(f"{python} is missing: `make test-clients` builds it from requirements-clients.txt and "
                    "requirements-mds.txt")
    with tempfile.TemporaryDirectory(prefix="sparkprep-hf-") as cache:  # datasets' cache: never the user's
        env = {**os.environ, "PYTHONPATH": str(REPO / "lib"), "TF_CPP_MIN_LOG_LEVEL": "2", "HF_HUB_OFFLINE": "1",
               "HF_HOME": cache, "HF_DATASETS_CACHE": os.path.join(cache, "datasets")}
        result = subprocess.run([str(python), str(REPO / "tests" / "clients" / "read_with.py"),
                                 *map(str, args)], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def output(make_sample, tmp_path_factory):
    """The demo's sample through the pipeline, lossless PNGs at 32 px without draft decoding (so the
    online transform on decoded images can equal the table), and three exports."""
    root = tmp_path_factory.mktemp("clients")
    make_sample.make_tree(str(root / "in"), per_class=10, with_bad=True)
    result = spark_submit("pipeline", "--input", root / "in", "--output", root / "out", "--size", "32",
                          "--encode", "png", "--draft", "off", "--seed", "3",
                          "--to", "imagefolder,webdataset,tfrecord,hf,mds", "--shard-size", "64KB")
    assert result.returncode == 0, result.stdout[-3000:]
    rows = ds.dataset(str(root / "out" / "processed"), format="parquet", partitioning="hive",
                      ignore_prefixes=["_", "."]).to_table(columns=["split", "label", "status", "sha256"]).to_pylist()
    return root / "out", [r for r in rows if r["status"] == "ok"]


def manifest(path):
    return json.loads((path / "manifest.json").read_text())


def test_torchvision_image_folder_and_data_loader_read_every_file_with_the_manifests_classes(output):
    out, ok = output
    seen = read_with("torchvision", out / "imagefolder")
    m = manifest(out / "imagefolder")
    on_disk = sorted(str(p.relative_to(out / "imagefolder")) for p in (out / "imagefolder").rglob("*.png"))
    assert sorted(f for split in seen.values() for f in split["files"]) == on_disk and len(on_disk) == len(ok)
    by_dir = {d: label for label, d in m["label_dirs"].items()}
    for split, found in seen.items():
        assert len(found["labels"]) == m["counts"][split] and found["shapes"] == [[3, 32, 32]]
        # each file's target, through the documented target_transform, is its folder's class in the manifest
        assert found["labels"] == [m["classes"][by_dir[f.split("/")[1]]] for f in found["files"]]
        if len(found["classes"]) == len(m["classes"]):  # every class there: torchvision's own numbering agrees
            assert {by_dir[d]: i for d, i in found["class_to_idx"].items()} == m["classes"], split
    assert any(len(found["classes"]) == len(m["classes"]) for found in seen.values())


def test_the_online_transform_inside_a_real_torchvision_compose_equals_the_processed_table(output):
    out, ok = output
    seen = read_with("online", out / "processed", out)
    assert seen["compared"] == len(ok) > 50 and seen["equal"] == seen["compared"], seen


def test_tf_data_parses_every_tfrecord_example_with_the_class_map(output):
    out, ok = output
    seen = read_with("tfdata", out / "tfrecord")
    m = manifest(out / "tfrecord")
    assert seen["files"] == [s["name"] for s in m["shards"]]
    assert sorted(e["sha256"] for e in seen["examples"]) == sorted(r["sha256"] for r in ok)
    assert all(e["label"] == m["classes"][e["text"]] and e["shape"] == [32, 32, 3] for e in seen["examples"])


def loaded_splits(out, export, *builder):
    """datasets.load_dataset over an export: its splits, each with as many rows as the manifest counts (the
    Hub's names: val is validation)."""
    seen = read_with("datasets", out / export, *builder)
    named = {"train": "train", "val": "validation", "test": "test"}
    counts = manifest(out / export)["counts"]
    assert {named[s]: n for s, n in counts.items()} == {s: v["rows"] for s, v in seen["splits"].items()}
    return seen["splits"]


def test_hugging_face_datasets_loads_the_image_folder_export_with_its_splits_and_labels(output):
    out, ok = output
    for split in loaded_splits(out, "imagefolder", "imagefolder").values():
        assert split["features"] == {"image": "Image", "label": "ClassLabel"}
        assert "Image" in split["first_types"]["image"]


def test_hugging_face_datasets_loads_the_webdataset_export_without_arguments(output):
    out, ok = output
    for split in loaded_splits(out, "webdataset").values():
        assert split["features"]["png"] == "Image" and "cls" in split["features"]


def test_hugging_face_datasets_loads_the_hf_export_without_arguments_with_image_and_class_label(output):
    out, ok = output
    splits = loaded_splits(out, "hf")
    assert sum(v["rows"] for v in splits.values()) == len(ok)
    m = manifest(out / "hf")
    names = [label for label, _ in sorted(m["classes"].items(), key=lambda item: item[1])]
    for split in splits.values():
        assert split["features"]["image"] == "Image" and split["features"]["label"] == "ClassLabel"
        assert split["class_names"] == {"label": names} and "Image" in split["first_types"]["image"]


def test_streaming_reads_every_mds_sample_with_its_hash_checked_and_mdswriter_writes_the_same_bytes(output):
    out, ok = output
    seen = read_with("mds", out / "mds", python=MDS_PYTHON)
    m = manifest(out / "mds")
    assert {split: v["rows"] for split, v in seen["splits"].items()} == m["counts"]
    samples = [s for v in seen["splits"].values() for s in v["samples"]]
    assert sorted((s["split"], s["sha256"], s["label"]) for s in samples) == sorted(
        (r["split"], r["sha256"], m["classes"][r["label"]]) for r in ok)
    assert all(s["image"] == "PngImageFile" and s["size"] == [32, 32] for s in samples)  # --encode png: typed png
    assert all(v["identical_to_mdswriter"] for v in seen["splits"].values()), seen["splits"].keys()
    assert sum(v["shards"] for v in seen["splits"].values()) == len(m["shards"]) > 3


def test_hugging_face_datasets_decodes_an_hf_exports_member_columns_json_and_image(make_sample, tmp_path):
    """Samples of several files (image, .json, .seg.png mask) through split and export --to hf: datasets gives the
    mask as an Image and the .json member as decoded JSON."""
    from conftest import write_samples

    write_samples(make_sample, tmp_path / "in", 0, 12, with_cls=False, mask=True)
    result = spark_submit("split", "--input", tmp_path / "in", "--output", tmp_path / "split", "--samples", "basename",
                          "--extensions", "jpg,json,png")
    assert result.returncode == 0, result.stdout[-3000:]
    result = spark_submit("export", "--input", tmp_path / "split", "--output", tmp_path / "hf", "--to", "hf")
    assert result.returncode == 0, result.stdout[-3000:]
    splits = loaded_splits(tmp_path, "hf")
    assert sum(v["rows"] for v in splits.values()) == 12
    for split in splits.values():
        assert split["features"]["json"] == "Json" and split["features"]["seg.png"] == "Image"
        assert split["first_types"]["json"] == "dict" and "Image" in split["first_types"]["seg.png"]
