"""The preprocess job in the shared session: outcomes per odd file, sizes, determinism, stats."""

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import preprocess, table_rows
from PIL import Image

from sparkprep.online import load_transform
from sparkprep.split.flags import split_config
from sparkprep.split.spark import run_split


rows_of = table_rows


def decoded(row):
    return Image.open(io.BytesIO(row["image"]))


@pytest.fixture(scope="module")
def fitted(spark, sample_tree, tmp_path_factory):
    """The sample tree straight from raw files: --resize fit 64, green background, header validation."""
    out = tmp_path_factory.mktemp("pre") / "fit"
    report = preprocess(spark, "--input", sample_tree, "--output", out, "--size", "64", "--resize", "fit",
                        "--background", "0,255,0", "--encode", "png", "--seed", "3")
    return {r["rel_path"]: r for r in rows_of(out)}, report


def test_each_odd_or_bad_file_has_the_expected_outcome(fitted):
    rows, report = fitted
    outcome = {path: rows[path]["status"] for path in rows}
    # bad files: quarantined with a reason, never a failed task
    assert outcome["CXR/p_bad_truncated.jpeg"] == "corrupt"  # header ingest passes it; decoding catches it
    assert outcome["Hand/p_bad_empty.jpeg"] == "empty"
    assert outcome["HeadCT/p_bad_html.jpg"] == "invalid"
    assert outcome["ChestCT/p_bad_bomb.png"] == "decompression_bomb"
    assert all(rows[p]["error"] and rows[p]["image"] is None for p in rows if rows[p]["status"] != "ok")
    # unusual but valid files: all ok, RGB, longer side 64
    for path in ("CXR/p_cmyk.jpg", "CXR/p_16bit.png", "Hand/p_palette_alpha.png", "Hand/p_exif_rotated.JPG",
                 "HeadCT/p_animated.gif", "HeadCT/p é ü space.jpeg"):
        image = decoded(rows[path])
        assert rows[path]["status"] == "ok" and image.mode == "RGB" and max(image.size) == 64, path
    assert report["reconciliation"]["reconciled"]


def test_exif_rotation_16_bit_palette_and_animation_are_handled(fitted, make_sample):
    rows, _ = fitted
    assert decoded(rows["Hand/p_exif_rotated.JPG"]).size == (38, 64)  # stored 80x48, orientation 6: portrait
    sixteen = np.asarray(decoded(rows["CXR/p_16bit.png"]).convert("L"), np.float64)
    eight_bit_source = np.asarray(make_sample.synthetic_scan(2, 5).resize((64, 64)), np.float64)
    assert abs(sixteen.mean() - eight_bit_source.mean()) < 3 and sixteen.mean() < 200  # scaled, not white
    palette = decoded(rows["Hand/p_palette_alpha.png"])
    assert palette.getpixel((1, 1)) == (0, 255, 0) and palette.getpixel((32, 32)) == (255, 0, 0)
    gif = np.asarray(decoded(rows["HeadCT/p_animated.gif"]).convert("L"), np.float64)
    first = np.asarray(make_sample.synthetic_scan(5, 0).resize((64, 64)), np.float64)
    second = np.asarray(make_sample.synthetic_scan(5, 1).resize((64, 64)), np.float64)
    assert np.abs(gif - first).mean() < np.abs(gif - second).mean()


def test_every_ok_row_decodes_to_the_requested_size_and_mode(spark, sample_tree, tmp_path):
    split_out = tmp_path / "splits"
    run_split(spark, split_config(["--input", str(sample_tree), "--output", str(split_out), "--validate", "full"]))
    report = preprocess(spark, "--input", split_out, "--output", tmp_path / "p", "--size", "40x30",
                        "--resize", "pad", "--mode", "L", "--encode", "jpeg:85")
    rows = rows_of(tmp_path / "p")
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == len(rows) - 4
    for row in ok:
        image = decoded(row)
        assert (image.format, image.size, image.mode) == ("JPEG", (40, 30), "L")
        assert (row["width"], row["height"], row["channels"], row["image_format"]) == (40, 30, 1, "jpeg")
    assert report["split"]["split_algo"] == "sha256-v1"  # carried over from the split table
    schema = pq.read_schema(next((tmp_path / "p").glob("split=*/*.parquet")))
    fields = json.loads(schema.metadata[b"org.apache.spark.sql.parquet.row.metadata"])["fields"]
    transform = json.loads(next(f for f in fields if f["name"] == "transform")["metadata"]["sparkprep.preprocess.transform"])
    assert transform["digest"] == ok[0]["transform"] and transform["size"] == [40, 30]


def test_augmented_copies_are_byte_identical_across_runs(spark, make_sample, tmp_path):
    data = tmp_path / "small"
    make_sample.make_tree(str(data), per_class=6, with_bad=False)
    args = ["--input", data, "--size", "32", "--augment", "hflip,rotate:15,crop:0.85,color:0.2,noise:3",
            "--copies", "3", "--ratios", "0.5,0.5", "--seed", "11"]
    first = preprocess(spark, *args, "--output", tmp_path / "a")
    preprocess(spark, *args, "--output", tmp_path / "b")
    columns = ["key", "split", "aug_index", "image", "transform"]
    a, b = sorted(rows_of(tmp_path / "a", columns), key=str), sorted(rows_of(tmp_path / "b", columns), key=str)
    assert a == b
    train = [r for r in a if r["split"] == "train"]
    assert {r["aug_index"] for r in train} == {0, 1, 2, 3}
    assert all(r["aug_index"] == 0 for r in a if r["split"] == "test")
    assert first["augmented_copies"] == 3 * sum(1 for r in train if r["aug_index"] == 0)


def test_normalization_stats_match_the_decoded_train_originals(fitted):
    rows, report = fitted
    train = [r for r in rows.values() if r["split"] == "train" and r["status"] == "ok" and r["aug_index"] == 0]
    pixels = np.concatenate([np.asarray(decoded(r), np.float64).reshape(-1, 3) / 255 for r in train])
    norm = report["normalization"]["3"]
    assert norm["images"] == len(train)
    assert norm["mean"] == pytest.approx(pixels.mean(axis=0).tolist(), abs=1e-5)
    assert norm["std"] == pytest.approx(pixels.std(axis=0).tolist(), abs=1e-5)


def test_delta_split_table_in_delta_processed_table_out(spark, sample_tree, tmp_path):
    from deltalake import DeltaTable

    run_split(spark, split_config(["--input", str(sample_tree), "--output", str(tmp_path / "s"),
                                   "--format", "delta", "--seed", "9"]))
    report = preprocess(spark, "--input", tmp_path / "s", "--output", tmp_path / "p", "--format", "delta",
                        "--size", "16", "--augment", "hflip", "--copies", "1")
    assert report["split"]["seed"] == "9"  # read back from the split table's key metadata
    table = DeltaTable(str(tmp_path / "p")).to_pyarrow_table(columns=["split", "aug_index", "status", "channel_mean"])
    assert table.num_rows == report["rows"]
    ok = [r for r in table.to_pylist() if r["status"] == "ok"]
    assert ok and all(len(r["channel_mean"]) == 3 for r in ok)
    assert {r["aug_index"] for r in ok if r["split"] == "train"} == {0, 1}
    # sparkprep.online reads the recipe from the run report, and without it from the Delta log's newest files
    recipe = load_transform(str(tmp_path / "p"))
    (tmp_path / "p" / "_run_report.json").unlink()
    assert load_transform(str(tmp_path / "p")).spec == recipe.spec and recipe.digest == report["transform"]["digest"]
