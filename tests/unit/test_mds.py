"""--to mds, without Spark: MDSWriter's config, sample and shard layout, its shard-cutting rule, the index.
streaming's own reader and MDSWriter read and rewrite a real export in make test-clients."""

import json

import pytest
from conftest import read_mds_spec

from sparkprep.export import mds, shards
from sparkprep.export.formats import FORMATS

# MDSWriter(columns={aug_index: int, image: jpeg, key: str, label: int, sha256: str, split: str},
# hashes=["sha256"], size_limit=65536).config_data, printed by mosaicml-streaming 0.13.0
MDSWRITER_CONFIG = (
    '{"column_encodings": ["int", "jpeg", "str", "int", "str", "str"], "column_names": ["aug_index", "image", "key", '
    '"label", "sha256", "split"], "column_sizes": [8, null, null, 8, null, null], "compression": null, "format": '
    '"mds", "hashes": ["sha256"], "size_limit": 65536, "version": 2}')


def sample(key, image=b"\xff\xd8jpeg\xff\xd9", aug_index=0, split="train", sha256="ab" * 32):
    return shards.Sample(key=key, split=split, label="dog", path=f"/in/{key}.jpg", sha256=sha256, aug_index=aug_index,
                         width=4, height=3, channels=3, image=image, image_format="jpeg")


def test_the_config_is_the_one_mdswriter_embeds_in_each_shard():
    assert mds.config_bytes("jpeg", 65536).decode() == MDSWRITER_CONFIG
    assert MDSWRITER_CONFIG.replace("65536", "null") == mds.config_bytes("jpeg", None).decode()


@pytest.mark.parametrize("formats,encoding", [
    (["jpeg"], "jpeg"), (["JPEG", "MPO"], "jpeg"), (["png"], "png"), (["PNG"], "png"),
    (["jpeg", "png"], "bytes"), (["webp"], "bytes"), (["raw"], "bytes"), ([], "bytes")])
def test_the_image_column_is_typed_only_when_every_image_is_of_that_type(formats, encoding):
    assert mds.image_encoding(formats) == encoding


def test_a_shard_reads_back_as_the_reader_reads_it_with_its_offsets_and_config():
    fmt = FORMATS["mds"].configured(65536, ["jpeg"])
    rows = [(sample("a"), 1), (sample("b", image=b"\xff\xd8" + bytes(300), aug_index=2, split="val", sha256=None), -1)]
    data = b"".join(fmt.shard_file(rows, {"cat": 0, "dog": 1}))
    config, read = read_mds_spec(data)
    assert json.dumps(config, sort_keys=True) == MDSWRITER_CONFIG
    assert read == [
        {"aug_index": 0, "image": b"\xff\xd8jpeg\xff\xd9", "key": "a", "label": 1, "sha256": "ab" * 32, "split": "train"},
        {"aug_index": 2, "image": b"\xff\xd8" + bytes(300), "key": "b", "label": -1, "sha256": "", "split": "val"}]
    # what sizing counts is what the shard holds: its header (overhead) and each record with its offset
    assert len(data) == fmt.overhead + sum(len(fmt.record(s, i)) for s, i in rows)
    assert b"".join(fmt.shard_file(rows, {"cat": 0, "dog": 1})) == data  # deterministic


def test_shards_are_cut_by_mdswriters_rule_header_and_offsets_counted():
    """MDSWriter starts a new shard when size_limit < the shard's bytes so far (its header included) + the
    sample's bytes + 4: so a shard is never over the limit, and pack_by_size with the format's sizes cuts alike."""
    fmt = FORMATS["mds"].configured(2000, ["jpeg"])
    rows = [(sample(f"k{i}", image=bytes(100 + 37 * i)), 0) for i in range(20)]
    sizes = [len(fmt.record(s, i)) for s, i in rows]
    cut = shards.pack_by_size(sizes, 2000, fmt.overhead)
    expected, current, used = [], 0, fmt.overhead  # MDSWriter.write, step by step
    for size in sizes:
        if used > fmt.overhead and 2000 < used + size:
            current, used = current + 1, fmt.overhead
        expected.append(current)
        used += size
    assert cut == expected and max(cut) >= 5
    for shard in set(cut):
        data = b"".join(fmt.shard_file([r for r, c in zip(rows, cut) if c == shard], {}))
        assert len(data) <= 2000


def test_the_index_lists_each_shard_in_number_order_with_its_config_and_sha256():
    published = [{"name": f"train/shard.{n}.mds", "split": "train", "samples": 3, "bytes": 10 + len(n), "sha256": n}
                 for n in ("100000", "00002", "99999")]
    index = json.loads(mds.index(published, "png", 1 << 26))
    assert index["version"] == 2
    assert [s["raw_data"] for s in index["shards"]] == [
        {"basename": f"shard.{n}.mds", "bytes": 10 + len(n), "hashes": {"sha256": n}} for n in ("00002", "99999", "100000")]
    assert all(s["samples"] == 3 and s["zip_data"] is None and s["column_encodings"][1] == "png"
               and s["size_limit"] == 1 << 26 for s in index["shards"])


def test_a_shard_over_four_gib_is_refused_with_the_way_out(monkeypatch):
    monkeypatch.setattr(mds, "MAX_SHARD", 1000)
    with pytest.raises(ValueError, match="--shard-size"):
        mds.shard_bytes([bytes(600), bytes(600)], b"{}")


def test_raw_pixels_are_written_as_npy_files_in_a_bytes_column():
    raw = shards.Sample(key="r", split="train", label=None, path=None, sha256=None, aug_index=0, width=2, height=1,
                        channels=1, image=b"\x01\x02", image_format="raw")
    fmt = FORMATS["mds"].configured(65536, ["raw"])
    config, read = read_mds_spec(b"".join(fmt.shard_file([(raw, -1)], {})))
    assert config["column_encodings"][1] == "bytes" and read[0]["image"] == raw.payload()
    assert read[0]["image"].startswith(b"\x93NUMPY")
