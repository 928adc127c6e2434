"""The independent listing sees what Spark's binaryFile scan drops."""

from sparkprep.ingest.listing import list_files
from sparkprep.uris import qualify


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


def test_symbolic_links_are_skipped_and_reported_unless_followed(tmp_path):
    import os

    (tmp_path / "secret.txt").write_bytes(b"password")
    root = tmp_path / "in"
    (root / "cat").mkdir(parents=True)
    (root / "cat" / "a.jpg").write_bytes(b"1")
    os.symlink(tmp_path / "secret.txt", root / "cat" / "b.jpg")
    os.symlink(root, root / "cat" / "loop")  # a directory loop
    links = []
    assert list_files(str(root), links=links) == [(f"file:{root}/cat/a.jpg", 1)]
    assert links == [f"file:{root}/cat/b.jpg", f"file:{root}/cat/loop"]
    links = []
    assert list_files(str(root), follow_symlinks=True, links=links) == [
        (f"file:{root}/cat/a.jpg", 1), (f"file:{root}/cat/b.jpg", 8)]
    assert links == [f"file:{root}/cat/loop"]  # entered once, recognised as a loop
