"""Export formats without Spark: names, label directories, tar members, TFRecord framing, packing."""

import io
import struct
import tarfile

import crc32c
import pytest
from conftest import mxnet_read, read_recordio_spec
from tfrecord import example_pb2

from sparkprep.export import shards
from sparkprep.export.formats import FORMATS


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


def test_appended_placement_keeps_old_samples_in_old_shards_and_packs_the_rest_after_them():
    sizes = [40, 40, 40, 40, 40, 40]
    # samples 0, 2 stay in shard 0 (which had 3: one left), 3 stays in shard 1 (which had 1), the rest are new
    placed, unchanged = shards.pack_appended(sizes, [0, None, 0, 1, None, None], {0: 3, 1: 1, 2: 2}, {0, 1, 2},
                                             limit=100)
    assert placed == [0, 2, 0, 1, 2, 3] and unchanged == {1}
    # shard 1 not in place: written again, with the same samples
    assert shards.pack_appended(sizes, [0, None, 0, 1, None, None], {0: 3, 1: 1}, {0}, 100)[1] == set()


def test_appended_placement_with_nothing_kept_is_the_full_exports():
    sizes = [30, 70, 10, 90, 5]
    assert shards.pack_appended(sizes, [None] * 5, {0: 4, 1: 4}, {0, 1}, 100, overhead=3) == (
        shards.pack_by_size(sizes, 100, overhead=3), set())


def test_appended_record_ids_keep_kept_ids_and_number_the_rest_after_the_highest():
    assert shards.appended_ids([None, None, None]) == [0, 1, 2]  # nothing kept: a full export's ids
    assert shards.appended_ids([4, None, 0, None]) == [4, 5, 0, 6]  # ids 1-3 left with their samples: not reused
    assert shards.appended_ids([]) == []


def test_pack_split_with_a_previous_placement_keeps_record_ids_only_for_unchanged_records():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"split": ["train"] * 4, "path": list("abcd"), "aug_index": [0] * 4,
                          "order": ["1", "2", "3", "4"], "name": list("abcd"), "nbytes": [40] * 4,
                          "record_sha256": ["x", "y", "z", "w"], "kept_shard": [0, 0, None, None],
                          "previous_sha256": ["x", "other", None, None], "previous_id": [7, 3, None, None]})
    plan = shards.pack_split(frame, 0, 100, None, previous_counts={"train": {0: 2}}, in_place={"train": {0}},
                             appendable=True)
    # a keeps shard 0 and id 7; b changed: a new shard and an id after 7, as the new c and d
    assert plan["shard"].tolist() == [0, 1, 1, 2] and plan["index"].tolist() == [7, 8, 9, 10]
    assert plan["rewrite"].tolist() == [True] * 4 and plan["shards"].isna().all()  # shard 0 lost b


def test_pack_by_count_spreads_evenly():
    ids = shards.pack_by_count(10, 4)
    assert sorted(set(ids)) == [0, 1, 2, 3] and max(ids.count(i) for i in range(4)) - min(ids.count(i) for i in range(4)) <= 1
    assert shards.pack_by_count(2, 5) == [0, 1]


def test_shard_names():
    assert FORMATS["webdataset"].shard_name("train", 7, 9) == "train-000007.tar"
    assert FORMATS["tfrecord"].shard_name("val", 2, 10) == "val-00002-of-00010.tfrecord"
    assert FORMATS["tfrecord"].shard_name("val", 2, None) == "val-00002.tfrecord"  # export --incremental
    assert FORMATS["recordio"].shard_name("val", 2, 10) == "val-00002.rec"
    with pytest.raises(ValueError, match="no shards"):
        FORMATS["imagefolder"].shard_name("val", 2, 10)


MAGIC = struct.pack("<I", 0xCED7230A)


def read_recordio(data):
    return [payload for _, payload in read_recordio_spec(data)]


def test_recordio_frames_a_plain_record_with_magic_length_and_padding():
    framed = shards.recordio_frame(b"abcde")
    assert framed == MAGIC + struct.pack("<I", 5) + b"abcde" + b"\0\0\0"
    assert shards.recordio_frame(b"") == MAGIC + struct.pack("<I", 0)
    assert read_recordio(framed + shards.recordio_frame(b"")) == [b"abcde", b""]


@pytest.mark.parametrize("payload, flags", [
    (MAGIC + b"tail", [1, 3]),                                   # at offset 0: an empty first part
    (b"head" + MAGIC + b"mid." + MAGIC + b"end", [1, 2, 3]),      # two aligned words: first, middle, last
    (b"head" + MAGIC, [1, 3]),                                   # at the very end: an empty last part
    (b"x" + MAGIC + b"yyy", [0]),                                # unaligned: left as it is
    (b"abcd" + MAGIC[:3], [0]),                                  # a partial word at the end is data
])
def test_recordio_escapes_the_magic_word_only_at_aligned_offsets(payload, flags):
    framed = shards.recordio_frame(payload)
    assert len(framed) % 4 == 0 and read_recordio(framed) == [payload]
    seen, pos = [], 0
    while pos < len(framed):
        (lrec,) = struct.unpack_from("<I", framed, pos + 4)
        seen.append(lrec >> 29)
        pos += 8 + ((lrec & ((1 << 29) - 1)) + 3) // 4 * 4
    assert seen == flags


def test_recordio_record_holds_an_irheader_then_the_encoded_image():
    image = b"\xff\xd8" + b"\0\0" + MAGIC + b"jpeg bytes with the magic word at an aligned offset"
    s = sample(image=image)
    (payload,) = read_recordio(shards.recordio_record(s, 3, 41))
    assert shards.IR_HEADER.size == 24
    assert shards.IR_HEADER.unpack(payload[:24]) == (0, 3.0, 41, 0) and payload[24:] == image
    with pytest.raises(ValueError, match="raw pixels"):
        shards.recordio_record(sample(image=bytes(36), image_format="raw"), 0, 0)
    assert FORMATS["recordio"].sized_by_content and not FORMATS["webdataset"].sized_by_content
    assert len(shards.recordio_record(s, 3, 41)) == len(shards.recordio_record(sample(image=bytes(len(image))), 3, 0)) + 4


def test_recordio_index_and_list_lines_follow_mxnet_and_im2rec():
    assert shards.recordio_index_line(12, 4096) == "12\t4096\n"
    assert shards.recordio_list_line(3, 2, "train/cat/a-0123456789.jpg") == "3\t2.000000\ttrain/cat/a-0123456789.jpg\n"
    assert shards.recordio_list_line(0, -1, "x.png") == "0\t-1.000000\tx.png\n"


def test_record_sizes_from_zero_filled_stand_ins_are_exact():
    """The export sizes records from image lengths alone; that must equal the real record length."""
    import dataclasses

    for export_format in ("webdataset", "tfrecord"):
        for image in (b"", b"x" * 127, bytes(range(256)) * 700):
            real = sample(image=image)
            stand_in = dataclasses.replace(real, image=bytes(len(image)))
            fmt = FORMATS[export_format]
            assert len(fmt.record(stand_in, 3)) == len(fmt.record(real, 3))
    raw = sample(image=bytes(range(36)), image_format="raw")
    assert len(FORMATS["webdataset"].record(dataclasses.replace(raw, image=bytes(36)), 0)) == len(
        FORMATS["webdataset"].record(raw, 0))


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


def test_recordio_frames_equal_mxnets_own_writer_byte_for_byte(tmp_path):
    """MXNet 1.9.1's MXRecordIO (dmlc-core's writer) writes the same payloads: escapes included."""
    import random

    rng = random.Random(7)
    payloads = [b"", b"abcde", MAGIC + b"tail", b"head" + MAGIC + b"mid." + MAGIC + b"end", b"head" + MAGIC,
                b"x" + MAGIC + b"yyy", MAGIC * 3, bytes(rng.randrange(256) for _ in range(4099))]
    payloads.append(payloads[-1][:1024] + MAGIC + payloads[-1][1024:])  # aligned inside a larger record
    (tmp_path / "payloads.bin").write_bytes(b"".join(struct.pack("<I", len(p)) + p for p in payloads))
    mxnet_read("write", tmp_path / "payloads.bin", tmp_path / "mxnet.rec")
    assert (tmp_path / "mxnet.rec").read_bytes() == b"".join(shards.recordio_frame(p) for p in payloads)
