"""Export formats without Spark: names, label directories, tar members, TFRecord framing, packing."""

import io
import struct
import tarfile

import crc32c
import pytest
from tfrecord import example_pb2

from sparkprep.export import shards


def sample(**overrides):
    values = dict(key="CXR/p 1.jpeg", split="train", label="CXR", path="file:/d/CXR/p 1.jpeg", sha256="ab" * 32,
                  aug_index=0, width=4, height=3, channels=3, image=b"\xff\xd8jpegbytes", image_format="jpeg")
    return shards.Sample(**{**values, **overrides})


@pytest.mark.parametrize("key", ["a/b/../c.d.jpeg", "..", "é ü/x.png", "" , "a" * 300, "ab" * 32])
def test_sample_names_have_no_slash_no_dot_and_stay_short(key):
    name = shards.sample_name(key, "p", 3)
    assert "/" not in name and "." not in name and ".." not in name and len(name) <= 70
    assert name == shards.sample_name(key, "p", 3)  # deterministic


def test_duplicates_and_copies_get_distinct_names():
    names = {shards.sample_name("samekey", path, aug) for path in ("a", "b") for aug in (0, 1, 2)}
    assert len(names) == 6


def test_label_dirs_are_safe_and_one_to_one():
    labels = ["cat", "Cat", "a/b", "a_b", "..", ".hidden", "tab\there", "ok label", "_unlabeled", None]
    dirs = shards.label_dirs(labels)
    assert set(dirs) == {l for l in labels if l is not None}
    assert len({d.casefold() for d in dirs.values()} | {shards.UNLABELED_DIR}) == len(dirs) + 1
    for name in dirs.values():
        assert "/" not in name and "\\" not in name and ".." not in name and not name.startswith(".")
        assert all(ord(c) >= 32 for c in name)
    assert dirs["ok label"] == "ok label"  # clean names are kept as they are


def test_class_map_is_sorted_and_ignores_unlabeled():
    assert shards.class_map(["b", "a", None, "b"]) == {"a": 0, "b": 1}


def test_webdataset_record_is_a_reproducible_tar_that_tarfile_reads():
    record = shards.webdataset_record(sample(), 2)
    archive = record + shards.tar_trailer(len(record))
    assert len(archive) % tarfile.RECORDSIZE == 0
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = tar.getmembers()
        assert [m.name.rsplit(".", 1)[1] for m in members] == ["cls", "jpg", "json"]
        assert {m.mtime for m in members} == {0} and {m.uid for m in members} == {0}
        assert tar.extractfile(members[0]).read() == b"2"
        assert tar.extractfile(members[1]).read() == b"\xff\xd8jpegbytes"
    assert record == shards.webdataset_record(sample(), 2)


def test_raw_pixels_become_npy_arrays():
    import numpy as np

    pixels = bytes(range(36))
    raw = sample(image=pixels, image_format="raw")
    assert raw.ext == "npy"
    assert np.load(io.BytesIO(raw.payload())).shape == (3, 4, 3)


def unframe(data):
    """Read TFRecord frames, checking both CRCs with an independent CRC32C implementation."""
    def masked(b):
        crc = crc32c.crc32c(b)
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    out, at = [], 0
    while at < len(data):
        length_bytes = data[at:at + 8]
        (length,) = struct.unpack("<Q", length_bytes)
        assert struct.unpack("<I", data[at + 8:at + 12])[0] == masked(length_bytes)
        payload = data[at + 12:at + 12 + length]
        assert struct.unpack("<I", data[at + 12 + length:at + 16 + length])[0] == masked(payload)
        out.append(payload)
        at += 16 + length
    return out


def test_tfrecord_examples_parse_with_protobuf_and_have_correct_crcs():
    s = sample(label="Ünïcode", aug_index=2)
    (payload,) = unframe(shards.tfrecord_record(s, 7))
    example = example_pb2.Example()
    example.ParseFromString(payload)
    feature = example.features.feature
    assert feature["image/encoded"].bytes_list.value == [s.image]
    assert feature["image/format"].bytes_list.value == [b"jpeg"]
    assert feature["image/height"].int64_list.value == [3] and feature["image/width"].int64_list.value == [4]
    assert feature["image/class/label"].int64_list.value == [7]
    assert feature["image/class/text"].bytes_list.value == ["Ünïcode".encode()]
    assert feature["image/key/sha256"].bytes_list.value == [s.sha256.encode()]
    assert feature["image/aug_index"].int64_list.value == [2]
    unlabeled = example_pb2.Example()
    unlabeled.ParseFromString(unframe(shards.tfrecord_record(sample(label=None), -1))[0])
    assert unlabeled.features.feature["image/class/label"].int64_list.value == [-1]


def test_masked_crc_matches_the_known_check_value():
    assert shards.masked_crc32c(b"") == 0xA282EAD8  # crc32c("") is 0
    crc = 0xE3069283  # crc32c("123456789"), the standard check value
    assert shards.masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_pack_by_size_never_exceeds_the_limit_unless_one_record_does():
    sizes = [30, 50, 20, 90, 10, 10, 200, 5]
    ids = shards.pack_by_size(sizes, 100, overhead=10)
    assert ids == sorted(ids) and ids[0] == 0
    for shard in set(ids):
        members = [s for s, i in zip(sizes, ids) if i == shard]
        assert sum(members) + 10 <= 100 or len(members) == 1
    assert ids == [0, 0, 1, 2, 3, 3, 4, 5]


def test_pack_by_count_spreads_evenly():
    ids = shards.pack_by_count(10, 4)
    assert sorted(set(ids)) == [0, 1, 2, 3] and max(ids.count(i) for i in range(4)) - min(ids.count(i) for i in range(4)) <= 1
    assert shards.pack_by_count(2, 5) == [0, 1]


def test_shard_names():
    assert shards.shard_name("webdataset", "train", 7, 9) == "train-000007.tar"
    assert shards.shard_name("tfrecord", "val", 2, 10) == "val-00002-of-00010.tfrecord"


def test_record_sizes_from_zero_filled_stand_ins_are_exact():
    """The export sizes records from image lengths alone; that must equal the real record length."""
    import dataclasses

    for export_format in ("webdataset", "tfrecord"):
        for image in (b"", b"x" * 127, bytes(range(256)) * 700):
            real = sample(image=image)
            stand_in = dataclasses.replace(real, image=bytes(len(image)))
            assert len(shards.record(export_format, stand_in, 3)) == len(shards.record(export_format, real, 3))
    raw = sample(image=bytes(range(36)), image_format="raw")
    assert len(shards.record("webdataset", dataclasses.replace(raw, image=bytes(36)), 0)) == len(
        shards.record("webdataset", raw, 0))


def test_label_dirs_fit_a_path_component_in_utf8_bytes():
    emoji = "🙂" * 200  # 800 bytes
    long_a, long_b = "é" * 300 + "a", "é" * 300 + "b"  # differ only past the cut
    dirs = shards.label_dirs([emoji, long_a, long_b])
    assert all(len(d.encode("utf-8")) <= 255 for d in dirs.values())
    assert len(set(dirs.values())) == 3
    assert shards.utf8_prefix("aé", 2) == "a"


def test_an_export_whose_file_names_collide_is_stopped_before_publishing():
    from sparkprep.export.export_rows import check_published

    written = [{"name": "train/cat/a-0123456789.jpg", "samples": 1}, {"name": "train/cat/b-0123456789.jpg", "samples": 1}]
    check_published(written, 2)
    with pytest.raises(RuntimeError, match="written by more than one sample"):
        check_published(written + [{"name": "train/cat/a-0123456789.jpg", "samples": 1}], 3)
    with pytest.raises(RuntimeError, match="3 ok rows to export but 2 samples written"):
        check_published(written, 3)
