"""Augmentation and the per-sample transform: deterministic, bounded, parsed strictly."""

import io

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image
from images import noisy_gradient_jpeg

from sparkprep.preprocess import augment as aug
from sparkprep.preprocess.processed_rows import processed_batches
from sparkprep.preprocess.transform import TransformSpec, parse_background, parse_encode, parse_size, transform_sample
from sparkprep.schema import PROCESSED_SCHEMA


photo_jpeg = noisy_gradient_jpeg


AUG = aug.AugmentSpec.parse("hflip,vflip,rotate:15,crop:0.85,color:0.2,noise:4")


def test_augment_spec_parses_and_rejects():
    assert AUG == aug.AugmentSpec(hflip=True, vflip=True, rotate=15, crop=0.85, color=0.2, noise=4)
    assert not aug.AugmentSpec.parse("") and aug.AugmentSpec.parse("hflip")
    for bad in ("blur:2", "rotate", "rotate:x", "crop:1.5", "color:1", "hflip:1"):
        with pytest.raises(ValueError, match="--augment"):
            aug.AugmentSpec.parse(bad)


def test_copies_are_a_function_of_seed_key_and_index_only():
    spec = TransformSpec(size=(64, 64), augment=AUG, seed="7")
    data = photo_jpeg()
    first, again = transform_sample(data, "k1", 3, spec), transform_sample(data, "k1", 3, spec)
    assert [o.image for o in first] == [o.image for o in again]
    assert len({o.image for o in first}) == 4  # the original and three different copies
    other_key = transform_sample(data, "k2", 3, spec)
    assert first[0].image == other_key[0].image and first[1].image != other_key[1].image
    reseeded = transform_sample(data, "k1", 3, TransformSpec(size=(64, 64), augment=AUG, seed="8"))
    assert first[1].image != reseeded[1].image


def test_random_crop_box_stays_inside_and_keeps_enough_area():
    rng = np.random.default_rng(0)
    for _ in range(200):
        left, top, right, bottom = aug.random_crop_box((300, 200), 0.5, rng)
        assert 0 <= left < right <= 300 and 0 <= top < bottom <= 200
        assert (right - left) * (bottom - top) >= 0.5 * 300 * 200 * 0.98


def test_hflip_alone_either_mirrors_or_keeps_the_image():
    spec = aug.AugmentSpec(hflip=True)
    image = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 12))
    seen = set()
    for index in range(1, 12):
        out = aug.after_resize(image, spec, aug.copy_rng("0", "k", index), (255, 255, 255))
        assert out.tobytes() in (image.tobytes(), image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).tobytes())
        seen.add(out.tobytes())
    assert len(seen) == 2


def test_transform_outputs_requested_size_mode_and_digest():
    spec = TransformSpec(size=(48, 32), resize="exact", mode="L", encode="png", quality=None)
    [out] = transform_sample(photo_jpeg(), "k", 0, spec)
    decoded = Image.open(io.BytesIO(out.image))
    assert (decoded.size, decoded.mode, out.channels, out.aug_index) == ((48, 32), "L", 1, 0)
    assert spec.digest() != TransformSpec(size=(48, 32), resize="exact", mode="RGB").digest()
    assert len(spec.digest()) == 16


@pytest.mark.parametrize("parse,text,message", [
    (parse_size, "0", "--size"), (parse_size, "224x", "--size"), (parse_size, "big", "--size"),
    (parse_encode, "gif", "--encode"), (parse_encode, "png:90", "--encode"), (parse_encode, "jpeg:101", "--encode"),
    (parse_background, "not-a-colour", "--background"), (parse_background, "300,0,0", "--background"),
])
def test_recipe_parsers_reject_bad_values(parse, text, message):
    with pytest.raises(ValueError, match=message):
        parse(text)


def test_recipe_parsers_accept_documented_forms():
    assert parse_size("224") == (224, 224) and parse_size("320x240") == (320, 240)
    assert parse_encode("jpeg:90") == ("jpeg", 90) and parse_encode("raw") == ("raw", None)
    assert parse_background("white") == (255, 255, 255) and parse_background("1,2,3") == (1, 2, 3)


def test_processed_batches_copy_train_only_and_quarantine_failures():
    good = photo_jpeg()
    rows = {
        "key": ["a", "b", "c", "d"], "split": ["train", "val", "train", "train"], "label": ["x"] * 4,
        "path": [f"file:/in/x/{k}.jpg" for k in "abcd"], "sha256": ["s"] * 4,
        "status": ["ok", "ok", "ok", "empty"], "error": [None, None, None, "zero-byte file"],
        "rel_path": [f"x/{k}.jpg" for k in "abcd"], "content": [good, good, good[:300], None],
    }
    batch = pa.RecordBatch.from_pydict(rows)
    spec = TransformSpec(size=(32, 32), augment=aug.AugmentSpec(hflip=True))
    out = pa.Table.from_batches(list(processed_batches(iter([batch]), spec, {"train": 2}))).to_pylist()
    assert pa.Table.from_pylist(out, schema=PROCESSED_SCHEMA).num_rows == len(out)
    assert [(r["key"], r["aug_index"], r["status"]) for r in out] == [
        ("a", 0, "ok"), ("a", 1, "ok"), ("a", 2, "ok"), ("b", 0, "ok"), ("c", 0, "corrupt"), ("d", 0, "empty")]
    assert all(r["transform"] == spec.digest() for r in out)
    assert out[4]["image"] is None and out[4]["error"] and out[5]["error"] == "zero-byte file"


def test_output_batches_are_bounded_in_bytes_whatever_the_copies_and_encoding():
    good = photo_jpeg()
    n = 12
    rows = {"key": [f"k{i}" for i in range(n)], "split": ["train"] * n, "label": ["x"] * n,
            "path": [f"file:/in/x/{i}.jpg" for i in range(n)], "sha256": ["s"] * n, "status": ["ok"] * n,
            "error": [None] * n, "rel_path": [f"x/{i}.jpg" for i in range(n)], "content": [good] * n}
    spec = TransformSpec(size=(64, 64), encode="raw", augment=aug.AugmentSpec(hflip=True))
    per_row = 64 * 64 * 3 * 5  # the original and 4 copies of raw pixels
    batches = list(processed_batches(iter([pa.RecordBatch.from_pydict(rows)]), spec, {"train": 4},
                                     max_batch_bytes=3 * per_row))
    assert [b.num_rows for b in batches] == [15, 15, 15, 15]
    assert all(sum(len(v) for v in b.column("image").to_pylist()) <= 3 * per_row for b in batches)


def test_a_bug_in_sparkprep_fails_the_task_while_bad_bytes_are_quarantined(monkeypatch):
    from sparkprep.images import ops as image_ops

    good = photo_jpeg()
    rows = {"key": ["a", "b"], "split": ["train", "train"], "label": ["x", "x"], "path": ["p/a", "p/b"],
            "sha256": ["s", "s"], "status": ["ok", "ok"], "error": [None, None], "rel_path": ["a", "b"],
            "content": [good[:300], good]}
    spec = TransformSpec(size=(32, 32))
    out = pa.Table.from_batches(list(processed_batches(iter([pa.RecordBatch.from_pydict(rows)]), spec, {})))
    assert out.column("status").to_pylist() == ["corrupt", "ok"]  # truncated bytes: Pillow's error, data

    def buggy_resize(*args, **kwargs):
        return {}["no such key"]  # a bug in sparkprep's own code

    monkeypatch.setattr(image_ops, "resize", buggy_resize)
    with pytest.raises(KeyError):
        list(processed_batches(iter([pa.RecordBatch.from_pydict(rows)]), spec, {}))


def test_binary_array_equals_pyarrow_with_nulls_and_empty_values():
    import pyarrow as pa

    from sparkprep.preprocess.processed_rows import binary_array

    for values in ([b"ab", None, b"", b"xyz" * 1000, None], [b"a"], [], [None, None]):
        got = binary_array(values)
        assert got.equals(pa.array(values, pa.binary())) and got.to_pylist() == values
        got.validate(full=True)
