"""catalog_batches maps Arrow batches to catalog rows without Spark and without raising."""

import hashlib

import pyarrow as pa
from images import flat

from sparkprep.ingest.catalog_rows import ProbeSettings, catalog_batches
from sparkprep.schema import CATALOG_SCHEMA


def jpeg(size=(20, 10)):
    return flat(size, (200, 10, 10))


def run(rows, **settings):
    batch = pa.RecordBatch.from_pydict(
        {"path": [r[0] for r in rows], "length": [r[1] for r in rows], "content": [r[2] for r in rows]},
        schema=pa.schema([("path", pa.string()), ("length", pa.int64()), ("content", pa.binary())]))
    out = list(catalog_batches(iter([batch]), ProbeSettings(root="file:/in", **settings)))
    assert all(b.schema == CATALOG_SCHEMA for b in out)
    return pa.Table.from_batches(out).to_pylist()


def test_good_and_bad_files_each_become_one_row_with_a_status():
    good = jpeg()
    rows = run([("file:/in/cat/a.jpg", len(good), good),
                ("file:/in/dog/b.jpg", 6, b"<html>"),
                ("file:/in/dog/c.jpg", 0, None)])
    assert [(r["rel_path"], r["label"], r["status"]) for r in rows] == [
        ("cat/a.jpg", "cat", "ok"), ("dog/b.jpg", "dog", "invalid"), ("dog/c.jpg", "dog", "empty")]
    assert rows[0]["sha256"] == hashlib.sha256(good).hexdigest()
    assert (rows[0]["width"], rows[0]["height"], rows[0]["format"]) == (20, 10, "JPEG")
    assert rows[0]["content"] == good and rows[2]["content"] is None
    assert rows[2]["sha256"] == hashlib.sha256(b"").hexdigest()


def test_too_large_files_are_hashed_by_streaming_and_not_decoded(tmp_path):
    big = tmp_path / "big.jpg"
    big.write_bytes(b"x" * 5000)
    batch_root = f"file:{tmp_path}"
    schema = pa.schema([("path", pa.string()), ("length", pa.int64()), ("content", pa.binary())])
    batch = pa.RecordBatch.from_pydict({"path": [f"{batch_root}/big.jpg"], "length": [5000], "content": [None]},
                                       schema=schema)
    [row] = pa.Table.from_batches(list(catalog_batches(
        iter([batch]), ProbeSettings(root=batch_root, max_file_bytes=1000)))).to_pylist()
    assert row["status"] == "too_large" and "over --max-file-bytes 1000" in row["error"]
    assert row["sha256"] == hashlib.sha256(b"x" * 5000).hexdigest()


def test_label_regex_overrides_parent_directory():
    good = jpeg()
    rows = run([("file:/in/scans/patient7_CXR_01.jpg", len(good), good)], label_regex=r"_([A-Z]+)_")
    assert rows[0]["label"] == "CXR"


def test_truncation_is_quarantined_under_both_validations():
    data = jpeg((300, 200))[:-300]
    row = ("file:/in/x/t.jpg", len(data), data)
    assert run([row])[0]["status"] == "corrupt"
    assert run([row], full_validate=True)[0]["status"] == "corrupt"
