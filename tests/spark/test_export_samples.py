"""Exports carry whole samples: every member of a sample goes with it (issue: samples of several files)."""

import collections
import json
import os

import pytest
import webdataset as wds
from tfrecord.reader import tfrecord_loader

from conftest import write_samples
from helpers import export
from sparkprep.split.flags import split_config
from sparkprep.split.spark import run_split


@pytest.fixture(scope="module")
def sample_split(spark, tmp_path_factory, make_sample):
    root = tmp_path_factory.mktemp("exportsamples") / "coco"
    write_samples(make_sample, root, 0, 8, with_cls=False, mask=True)
    out = root.parent / "splits"
    run_split(spark, split_config(["--input", str(root), "--output", str(out), "--samples", "basename",
                                   "--extensions", "jpg,json,png", "--max-quarantine-fraction", "1"]))
    return root, out



def test_webdataset_samples_hold_every_member(spark, sample_split, tmp_path):
    root, table = sample_split
    report = export(spark, "--input", table, "--output", tmp_path / "wds", "--to", "webdataset")
    samples = [s for shard in sorted(os.listdir(tmp_path / "wds")) if shard.endswith(".tar")
               for s in wds.WebDataset(str(tmp_path / "wds" / shard), shardshuffle=False)]
    ok = [s for s in samples if "jpg" in s]
    assert report["samples"] == len(samples)
    for s in ok:
        meta = json.loads(s["sparkprep.json"])  # the sample's own json keeps its name
        source = root / meta["path"].split("/coco/", 1)[1]
        assert s["jpg"] == source.read_bytes()
        assert s["json"] == source.with_suffix(".json").read_bytes()
        assert s["seg.png"] == source.with_suffix(".seg.png").read_bytes()


def test_tfrecord_and_imagefolder_carry_the_other_members(spark, sample_split, tmp_path):
    _, table = sample_split
    export(spark, "--input", table, "--output", tmp_path / "tf", "--to", "tfrecord")
    records = [r for name in sorted(os.listdir(tmp_path / "tf")) if name.endswith(".tfrecord")
               for r in tfrecord_loader(str(tmp_path / "tf" / name), None)]
    assert records and all("json" in r and "seg.png" in r for r in records)
    export(spark, "--input", table, "--output", tmp_path / "folders", "--to", "imagefolder")
    stems = collections.defaultdict(set)
    for parent, _, names in os.walk(tmp_path / "folders"):
        for name in names:
            if "/" in os.path.relpath(os.path.join(parent, name), tmp_path / "folders"):
                stem, _, member = name.partition(".")
                stems[stem].add(member)
    assert len(stems) == 8 and all(members == {"jpg", "json", "seg.png"} for members in stems.values())


def test_hf_writes_each_other_member_as_a_column_typed_for_datasets(spark, sample_split, tmp_path):
    """--to hf: `json` a Json column (the member's text), `seg.png` an Image (struct<bytes, path>), declared in every
    shard's features and in the card; make test-clients loads them with datasets."""
    import pyarrow.parquet as pq

    root, table = sample_split
    report = export(spark, "--input", table, "--output", tmp_path / "hf", "--to", "hf")
    files = sorted((tmp_path / "hf" / "data").glob("*.parquet"))
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    assert len(rows) == report["samples"] == 8
    schema = pq.read_schema(files[0])
    assert str(schema.field("json").type) == "extension<arrow.json>"
    assert str(schema.field("seg.png").type) == "struct<bytes: binary, path: string>"
    features = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert features["json"] == {"_type": "Json"} and features["seg.png"] == {"_type": "Image"}
    for r in rows:
        source = root / r["source_path"].split("/coco/", 1)[1]
        assert r["json"] == source.with_suffix(".json").read_text()
        assert r["seg.png"]["bytes"] == source.with_suffix(".seg.png").read_bytes()
        assert r["seg.png"]["path"].endswith(".seg.png") and r["image"]["bytes"] == source.read_bytes()
    card = (tmp_path / "hf" / "README.md").read_text()
    assert '  - name: "json"\n    dtype: json' in card and '  - name: "seg.png"\n    dtype: image' in card
    manifest = json.loads((tmp_path / "hf" / "manifest.json").read_text())
    assert manifest["format_settings"] == {"members": ["json", "seg.png"]}
