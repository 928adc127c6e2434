"""WebDataset shards as input, without Spark: members, truncation, hostile names."""

import io
import tarfile

import pyarrow as pa
import webdataset as wds

from sparkprep.ingest.tar_shards import shard_members, shard_rows


def write_shard(path, samples):
    with wds.TarWriter(str(path)) as sink:
        for sample in samples:
            sink.write(sample)


def members(path, max_bytes=1 << 20):
    return list(shard_members(f"file:{path}", max_bytes))


def test_members_of_a_webdataset_shard_become_rows_with_their_bytes(tmp_path):
    shard = tmp_path / "train-000000.tar"
    write_shard(shard, [{"__key__": f"n0378_{i}", "jpg": b"\xff\xd8" + bytes([i]), "cls": str(i % 2).encode(),
                         "json": b"{}"} for i in range(3)])
    rows = members(shard)
    assert [r[1] for r in rows] == [f"n0378_{i}.{ext}" for i in range(3) for ext in ("cls", "jpg", "json")]
    path, name, size, data, digest, status, error = rows[1]
    assert path == f"file:{shard}#n0378_0.jpg" and data == b"\xff\xd8\x00" and size == 3 and status is None


def test_a_truncated_shard_keeps_what_came_before_and_reports_the_rest(tmp_path):
    shard = tmp_path / "s.tar"
    write_shard(shard, [{"__key__": f"k{i}", "bin": bytes(3000)} for i in range(4)])
    data = shard.read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[: len(data) // 2])
    rows = members(tmp_path / "cut.tar")
    kept = [r for r in rows if r[5] is None]
    assert [r[1] for r in kept] == ["k0.bin", "k1.bin"]
    assert rows[-1][5] == "corrupt" and "after member k1.bin" in rows[-1][6]


def test_traversal_names_links_and_big_members_are_quarantined_not_followed(tmp_path):
    shard = tmp_path / "evil.tar"
    with tarfile.open(shard, "w") as tar:
        for name, payload in (("../escape.jpg", b"x"), ("/etc/passwd.txt", b"y"), ("ok.bin", b"z" * 10)):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        link = tarfile.TarInfo("secret.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tar.addfile(link)
    rows = {r[1]: r for r in members(shard, max_bytes=5)}
    assert rows["../escape.jpg"][5] == "invalid" and rows["../escape.jpg"][3] is None
    assert rows["/etc/passwd.txt"][5] == "invalid"
    assert rows["secret.jpg"][5] == "invalid" and "link" in rows["secret.jpg"][6]
    assert rows["ok.bin"][5] == "too_large" and rows["ok.bin"][4] is not None


def test_shard_rows_are_arrow_batches_and_a_missing_shard_is_unreadable(tmp_path):
    shard = tmp_path / "a.tar"
    write_shard(shard, [{"__key__": "x", "txt": b"hi"}])
    batch = pa.RecordBatch.from_pydict({"path": [f"file:{shard}", f"file:{tmp_path}/gone.tar"]})
    out = pa.Table.from_batches(list(shard_rows(iter([batch]), 1 << 20))).to_pylist()
    assert [(r["rel_path"], r["status"]) for r in out] == [("x.txt", None), ("", "unreadable")]


def test_a_member_name_twice_in_one_shard_is_a_duplicate_naming_both_places_and_an_empty_shard_a_row(tmp_path):
    shard = tmp_path / "dup.tar"
    with tarfile.open(shard, "w") as tar:
        for name, payload in (("k1.jpg", b"first"), ("k1.cls", b"0"), ("k1.jpg", b"second")):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    rows = members(shard)
    assert [(r[1], r[5]) for r in rows] == [("k1.jpg", None), ("k1.cls", None), ("k1.jpg", "duplicate_key")]
    assert "occurs twice in this shard (members 1 and 3)" in rows[2][6] and rows[2][3] is None
    with tarfile.open(tmp_path / "empty.tar", "w"):
        pass
    assert [(r[1], r[5]) for r in members(tmp_path / "empty.tar")] == [("", "empty")]
