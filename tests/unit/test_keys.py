"""Relative paths, labels and --key-by parsing, without Spark."""

import unicodedata

import pytest

from sparkprep.ingest.paths import compile_group_regex, first_group, is_hidden, label_from_parent, relative_path
from sparkprep.split.keys import KeySpec


def test_relative_path_is_below_root_and_nfc():
    nfd = unicodedata.normalize("NFD", "file:/data/Hand/é.jpeg")
    assert relative_path(nfd, "file:/data") == "Hand/é.jpeg"
    assert relative_path("s3://b/raw/CXR/x.png", "s3://b/raw/") == "CXR/x.png"
    assert relative_path("file:/data/one.png", "file:/data/one.png") == "one.png"
    with pytest.raises(ValueError, match="expected a path under"):
        relative_path("file:/other/x.png", "file:/data")


def test_label_is_parent_directory_or_none_at_root():
    assert label_from_parent("CXR/x.jpeg") == "CXR"
    assert label_from_parent("site1/CXR/x.jpeg") == "CXR"
    assert label_from_parent("x.jpeg") is None


def test_group_regex_takes_capture_group_one():
    pattern = compile_group_regex(r"/(p[0-9]+)_", "--key-by group")
    assert first_group(pattern, "CXR/p200001_03.jpeg") == "p200001"
    assert first_group(pattern, "CXR/other.jpeg") is None


@pytest.mark.parametrize("text,kind,arg", [
    ("content", "content", None), ("path", "path", None),
    ("group:(p[0-9]+)", "group", "(p[0-9]+)"), ("column:customer_id", "column", "customer_id"),
])
def test_key_spec_parses_each_kind(text, kind, arg):
    spec = KeySpec.parse(text)
    assert (spec.kind, spec.arg, str(spec)) == (kind, arg, text)


@pytest.mark.parametrize("text,message", [
    ("hash", "expected content, path"), ("column:", "expected content, path"),
    ("group:p[0-9]+", "capture group"), ("group:(p[", "valid regular expression"),
])
def test_key_spec_rejects_bad_values(text, message):
    with pytest.raises(ValueError, match=message):
        KeySpec.parse(text)


def test_hidden_matches_spark_file_index_rule():
    assert is_hidden(".DS_Store") and is_hidden("CXR/_tmp/x.jpg") and is_hidden("a/.b.jpg")
    assert is_hidden("CXR/x.jpg._COPYING_")
    assert not is_hidden("CXR/x_1.jpg") and not is_hidden("_site=a/CXR/x.jpg")
    # Spark reads these although they start with '_': the listing must count them too
    assert not is_hidden("CXR/_metadata.jpg") and not is_hidden("_common_metadata/x.jpg")


@pytest.mark.parametrize("rel,sample,member", [
    ("CXR/p001_0003.seg.png", "CXR/p001_0003", "seg.png"),
    ("n0378_17158.jpg", "n0378_17158", "jpg"),
    ("p0/p000020-0001.hea", "p0/p000020-0001", "hea"),
    ("dir.v2/a.json", "dir.v2/a", "json"),
    ("README", "README", ""),
    ("a/.hidden", "a/", "hidden"),  # what the rule gives; hidden files are skipped anyway
])
def test_samples_follow_webdatasets_basename_rule(rel, sample, member):
    from sparkprep.ingest.paths import sample_and_member

    assert sample_and_member(rel) == (sample, member)
    assert sample_and_member(rel, "file") == (rel, member)


def test_sample_content_key_is_order_free_over_members():
    import hashlib

    from sparkprep.ingest.paths import sample_content_key

    a, b = ("jpg", "aa" * 32), ("json", "bb" * 32)
    expected = hashlib.sha256(f"jpg\0{'aa' * 32}\njson\0{'bb' * 32}\n".encode()).hexdigest()
    assert sample_content_key([b, a]) == sample_content_key([a, b]) == expected
