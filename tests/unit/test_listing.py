"""The independent listing sees what Spark's binaryFile scan drops."""

from sparkprep.listing import list_files, qualify


def test_listing_includes_zero_byte_and_hidden_files_with_hadoop_style_uris(tmp_path):
    (tmp_path / "a b").mkdir()
    (tmp_path / "a b" / "é.jpg").write_bytes(b"12")
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / ".hidden.jpg").write_bytes(b"1")
    root = qualify(str(tmp_path))
    assert root == f"file:{tmp_path}"
    assert list_files(str(tmp_path)) == sorted([
        (f"{root}/a b/é.jpg", 2), (f"{root}/zero.jpg", 0), (f"{root}/.hidden.jpg", 1)])


def test_a_single_file_lists_itself(tmp_path):
    (tmp_path / "x.png").write_bytes(b"123")
    assert list_files(str(tmp_path / "x.png")) == [(f"file:{tmp_path}/x.png", 3)]
