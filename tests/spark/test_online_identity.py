"""sparkprep.online against the offline job: every row of a processed table, byte for byte."""

import shutil

import pyarrow.parquet as pq
import pytest

from conftest import SAMPLE_AUGMENT

from sparkprep.online import BadImage, RecipeError, load_transform
from sparkprep.uris import read_bytes

# Crops (so copies come from a larger JPEG decode than the originals), flips, rotation, colour, noise.
AUGMENT = SAMPLE_AUGMENT  # the recipe of conftest.processed_sample


@pytest.fixture(scope="module")
def processed(processed_sample):
    """The sample tree at 32 px with 2 copies of train and val rows (conftest's processed_sample); JPEG
    sources are decoded at reduced DCT scale."""
    return processed_sample


def test_every_row_of_the_table_is_what_the_online_transform_gives(processed):
    out, report = processed
    t = load_transform(str(out))
    assert t.digest == report["transform"]["digest"]
    rows = pq.read_table(str(out), columns=["key", "path", "rel_path", "status", "aug_index", "image"]).to_pylist()
    ok = [r for r in rows if r["status"] == "ok"]
    assert {r["aug_index"] for r in ok} == {0, 1, 2}
    special = {"CXR/p_cmyk.jpg", "CXR/p_16bit.png", "Hand/p_palette_alpha.png", "Hand/p_exif_rotated.JPG",
               "HeadCT/p_animated.gif"}
    assert special <= {r["rel_path"] for r in ok}
    for row in ok:
        raw = read_bytes(row["path"])
        assert t.augmented(raw, row["key"], row["aug_index"]) == row["image"], (row["rel_path"], row["aug_index"])
        if row["aug_index"] == 0:
            assert t(raw) == row["image"]
    # what the job quarantined, the online transform refuses with the same status
    for row in (r for r in rows if r["status"] in ("corrupt", "invalid", "decompression_bomb")):
        with pytest.raises(BadImage) as refused:
            t(read_bytes(row["path"]))
        assert refused.value.status == row["status"], row["rel_path"]


def test_the_recipe_is_read_from_the_column_metadata_without_a_run_report(processed, tmp_path, s3_endpoint,
                                                                           monkeypatch):
    import boto3

    out, report = processed
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "_run_report.json").unlink()
    assert load_transform(str(copy)).spec == load_transform(str(out)).spec
    # the same from S3: the footer of one data file, read with two ranged GETs
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="recipes")
    for path in copy.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), "recipes", f"processed/{path.relative_to(copy)}")
    assert load_transform("s3://recipes/processed").spec == load_transform(str(out)).spec
    with pytest.raises(RecipeError, match=f"processed with recipe {report['transform']['digest']}, not the asked 0"):
        load_transform(str(copy), digest="0")
