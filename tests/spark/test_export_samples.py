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
