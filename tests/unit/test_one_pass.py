"""The pipeline's one Python pass, without Spark: rows, the split, and the workers' parquet files."""

import dataclasses
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from images import flat
from PIL import ImageFile

from sparkprep.images.phash import phash_of_bytes, phashes_of_decode
from sparkprep.ingest import catalog_rows

from sparkprep.ingest.catalog_rows import ProbeSettings
from sparkprep.pipeline.one_pass import (FILES_SCHEMA, SPARK_ROW_METADATA, OnePassSettings, TableTarget,
                                         one_pass_batches, one_pass_files, processed_columns, split_columns)
from sparkprep.preprocess.transform import TransformSpec, decode_for
from sparkprep.split.assign import assign_split
from sparkprep.split.keys import KeySpec

NAMES = ("train", "val", "test")


def jpeg(seed, size=(40, 30)):
    return flat(size, (seed * 40 % 256, 90, 200))


@pytest.fixture
def tree(tmp_path):
    files = {f"cat/{i}.jpg": jpeg(i) for i in range(6)}
    files["dog/cut.jpg"] = jpeg(9, (200, 100))[:-200]
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    listed = sorted((f"file:{tmp_path / rel}", len(data)) for rel, data in files.items())
    listed.append((f"file:{tmp_path}/dog/gone.jpg", 1234))  # listed, then removed
    return tmp_path, listed, files


def settings(root, copies=0, key_by="content"):
    return OnePassSettings(probe=ProbeSettings(root=f"file:{root}"), key_by=KeySpec.parse(key_by), seed="3",
                           ratios=(0.5, 0.25, 0.25), names=NAMES, spec=TransformSpec(size=(16, 16)),
                           copies_by_split={"train": copies, "val": copies, "test": copies})


def paths_batch(listed):
    return pa.RecordBatch.from_pydict({"path": [u for u, _ in listed], "length": [s for _, s in listed]})


def test_each_file_is_probed_split_and_transformed_in_one_call(tree):
    root, listed, files = tree
    rows = pa.Table.from_batches(list(one_pass_batches(iter([paths_batch(listed)]), settings(root)))).to_pylist()
    by_rel = {r["rel_path"]: r for r in rows}
    assert len(rows) == len(listed)
    for rel, data in files.items():
        row = by_rel[rel]
        assert row["content"] == data and row["split"] == assign_split("3", row["key"], (0.5, 0.25, 0.25), NAMES)
    ok = by_rel["cat/0.jpg"]
    assert (ok["status"], ok["p_status"], ok["p_width"], ok["image_format"]) == ("ok", "ok", 16, "jpeg")
    cut = by_rel["dog/cut.jpg"]
    assert cut["status"] == cut["p_status"] == "corrupt" and cut["image"] is None  # the default end check
    gone = by_rel["dog/gone.jpg"]
    assert gone["status"] == "unreadable" and "could not be read" in gone["error"] and gone["key"] == "dog/gone.jpg"


def test_the_hash_comes_from_the_transforms_decode_so_each_image_is_decoded_once(tree, monkeypatch):
    root, listed, files = tree
    files["cat/big.jpg"] = jpeg(7, (300, 200))
    (root / "cat/big.jpg").write_bytes(files["cat/big.jpg"])
    listed = listed + [(f"file:{root}/cat/big.jpg", len(files["cat/big.jpg"]))]
    spec = TransformSpec(size=(64, 64))  # 300 x 200 decodes at 1/2: large enough to hash (a 16 px one is not)
    decoded = []
    real_load = ImageFile.ImageFile.load

    def load(image):
        if image.tile:  # pixels not decoded yet: this call decodes them
            decoded.append(image.size)
        return real_load(image)

    monkeypatch.setattr(catalog_rows, "phashes_of_bytes", lambda *a, **k: pytest.fail("the probe pass hashed"))
    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    one = dataclasses.replace(settings(root), spec=spec)
    rows = pa.Table.from_batches(list(one_pass_batches(iter([paths_batch(listed[-1:])]), one))).to_pylist()
    assert decoded == [(150, 100)]  # one decode, at the transform's DCT scale
    monkeypatch.undo()
    both = phashes_of_decode(decode_for(files["cat/big.jpg"], spec), files["cat/big.jpg"])
    assert (rows[0]["phash"], rows[0]["phash256"]) == both[:2] and len(both[1]) == 4  # the signatures, one decode
    assert rows[0]["dct_direction"] == both[2].tolist() and len(both[2]) == 255
    rows = pa.Table.from_batches(list(one_pass_batches(iter([paths_batch(listed)]), one))).to_pylist()
    by_rel = {r["rel_path"]: r for r in rows}
    assert by_rel["cat/0.jpg"]["phash"] == phash_of_bytes(files["cat/0.jpg"])  # 40 x 30: whole, as phash-v1
    assert by_rel["dog/cut.jpg"]["phash"] is None and by_rel["dog/cut.jpg"]["status"] == "corrupt"
    no_hash = dataclasses.replace(one, probe=ProbeSettings(root=f"file:{root}", phash=False))
    assert all(r["phash"] is None and r["phash256"] is None and r["dct_direction"] is None for r in pa.Table.from_batches(
        list(one_pass_batches(iter([paths_batch(listed)]), no_hash))).to_pylist())


def test_copies_carry_no_source_bytes(tree):
    root, listed, _ = tree
    rows = pa.Table.from_batches(list(one_pass_batches(iter([paths_batch(listed)]), settings(root, copies=2))))
    rows = rows.to_pylist()
    originals = [r for r in rows if r["aug_index"] == 0]
    copies = [r for r in rows if r["aug_index"] > 0]
    assert len(originals) == len(listed) and len(copies) == 2 * 6
    assert all(r["content"] is None for r in copies) and all(r["content"] for r in originals if r["status"] == "ok")


def targets(tmp_path):
    split = tuple((name, name) for name in split_columns(True) if name != "split")
    processed = tuple((one, name) for one, name in processed_columns() if name != "split")
    return (TableTarget(str(tmp_path / "splits"), split, '{"type":"struct","fields":[]}', "content", "none", True),
            TableTarget(str(tmp_path / "processed"), processed, "{}", "image", "none", False))


def test_worker_files_hold_the_rows_and_are_all_reported(tree, tmp_path_factory):
    root, listed, _ = tree
    out = tmp_path_factory.mktemp("tables")
    reported = pa.Table.from_batches(list(one_pass_files(iter([paths_batch(listed)]), settings(root, copies=1),
                                                         targets(out), "00007-0")), schema=FILES_SCHEMA).to_pylist()
    on_disk = sorted(os.path.join(d, n) for d, _, names in os.walk(out) for n in names)
    assert sorted(r["file"] for r in reported) == on_disk
    assert all(os.path.basename(f).startswith("part-00007-0-") for f in on_disk)
    splits = pq.read_table(str(out / "splits"))
    assert splits.num_rows == len(listed) == sum(r["rows"] for r in reported if r["table"] == 0)
    assert pq.read_schema(on_disk[0]).metadata[SPARK_ROW_METADATA.encode()]
    processed = pq.read_table(str(out / "processed"))
    assert processed.num_rows == len(listed) + 6 and "p_status" not in processed.column_names


def test_a_failing_task_removes_its_own_files(tree, tmp_path_factory):
    root, listed, _ = tree
    out = tmp_path_factory.mktemp("tables")

    def batches():
        yield paths_batch(listed[:3])
        raise RuntimeError("executor lost")

    with pytest.raises(RuntimeError, match="executor lost"):
        list(one_pass_files(batches(), settings(root), targets(out), "00001-0"))
    assert [n for _, _, names in os.walk(out) for n in names] == []
