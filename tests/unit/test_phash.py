"""The perceptual hash: imagehash's bits, computed without scipy; what ingest stores; bad bytes quarantined."""

import io

import imagehash
import numpy as np
import pytest
from PIL import Image
from images import jpeg, photo

from sparkprep.images import probe as image_probe
from sparkprep.images.phash import (dct_direction, hamming, phash, phash256, phash_of_bytes, phash_of_decode, phashes_of_bytes,
                                    phashes_of_decode, reduced_grey, to_hex, window_boxes, window_hashes, words_to_int,
                                    WINDOW_COUNT, WINDOWS)
from sparkprep.ingest.catalog_rows import ProbeSettings, catalog_row
from sparkprep.preprocess.transform import TransformSpec, decode_for
from sparkprep.statuses import CORRUPT, OK

PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "rocket", "moon", "page", "coins", "retina", "brick")


@pytest.mark.parametrize("name", PHOTOS)
def test_phash_bits_equal_imagehash_on_real_photos(name):
    image = photo(name)
    assert to_hex(phash(image)) == str(imagehash.phash(image))


@pytest.mark.parametrize("mode", ["P", "RGBA", "LA", "1", "CMYK"])
def test_phash_bits_equal_imagehash_for_other_modes(mode):
    image = photo("astronaut").convert(mode)
    assert to_hex(phash(image)) == str(imagehash.phash(image))


@pytest.mark.parametrize("name", PHOTOS)
def test_phash256_bits_equal_imagehash_with_hash_size_16(name):
    image = photo(name)
    words = phash256(image)
    assert len(words) == 4 and all(-(1 << 63) <= w < (1 << 63) for w in words)  # four signed bigints
    assert format(words_to_int(words), "064x") == str(imagehash.phash(image, hash_size=16))


def test_the_three_signatures_come_from_one_decode_and_equal_each_alone():
    data = jpeg(photo("chelsea").convert("RGB"))
    p64, p256, direction = phashes_of_bytes(data, 6)
    assert p64 == phash_of_bytes(data, 6)
    with Image.open(io.BytesIO(data)) as image:
        image.draft("L", (64, 64))
        assert p256 == phash256(image, 6)
        assert (direction == dct_direction(image, 6)).all() and direction.any()
    decoded = decode_for(data, TransformSpec())
    assert phashes_of_decode(decoded, data)[0] == phash_of_decode(decoded, data)
    assert words_to_int(phashes_of_decode(decoded, data)[1]).bit_count() > 0


def test_the_stored_hash_of_a_jpeg_is_within_a_few_bits_of_the_full_decode():
    # ingest decodes JPEGs at a reduced DCT scale (>= 64 px); the hash barely moves
    for name in PHOTOS:
        data = jpeg(photo(name).convert("RGB"))
        assert hamming(phash_of_bytes(data), phash(Image.open(io.BytesIO(data)))) <= 6, name


def test_the_hash_of_the_transforms_decode_is_within_a_few_bits_of_the_hashs_own_decode():
    # phash-v2 (the pipeline's one pass) hashes the transform's decode, box-reduced to 64-127 px
    differ = 0
    for name in PHOTOS:
        data = jpeg(photo(name).convert("RGB"))
        decoded = decode_for(data, TransformSpec())  # 224 px: a larger DCT scale than the hash's own
        assert min(decoded.size) >= 128, name  # so the box reduce runs
        distance = hamming(phash_of_decode(decoded, data), phash_of_bytes(data))
        assert distance <= 6, name
        differ += distance > 0
    assert differ < len(PHOTOS) // 2  # most photos get the very same bits


def test_a_decode_smaller_than_the_hashs_own_is_not_hashed_but_decoded_again():
    data = jpeg(photo("coffee"))  # 600 x 400: an 8 px recipe decodes it at 1/8 (75 x 50)
    tiny = decode_for(data, TransformSpec(size=(8, 8)))
    assert min(tiny.size) < 64
    assert phash_of_decode(tiny, data) == phash_of_bytes(data)  # the hash's own decode, reduced by 1: phash-v1's bits


def test_the_box_reduce_takes_every_mode_to_a_64_to_127_pixel_greyscale():
    for mode in ("RGB", "P", "1", "CMYK", "RGBA", "I;16", "I", "F"):
        image = Image.new(mode, (1000, 300))
        grey = reduced_grey(image)
        assert grey.mode in ("L", "F") and 64 <= min(grey.size) <= 127, mode
    assert reduced_grey(Image.new("L", (100, 50))).size == (100, 50)  # already small: kept whole


def test_an_exif_rotated_copy_hashes_like_the_upright_photo():
    upright = photo("rocket")
    exif = Image.Exif()
    exif[image_probe.EXIF_ORIENTATION] = 6  # stored rotated; viewers turn it 90 degrees clockwise
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    rotated = phash_of_bytes(jpeg(stored, exif=exif.tobytes()), orientation=6)
    assert hamming(rotated, phash_of_bytes(jpeg(upright))) <= 4
    assert hamming(phash_of_bytes(jpeg(stored)), phash_of_bytes(jpeg(upright))) > 10  # unoriented: far
    stored_jpeg = jpeg(stored, exif=exif.tobytes())
    from_transform = phash_of_decode(decode_for(stored_jpeg, TransformSpec(size=(32, 32))), stored_jpeg, 6)
    assert hamming(from_transform, phash_of_bytes(jpeg(upright))) <= 4  # phash-v2 orients the same way


def test_sixteen_bit_images_are_hashed_from_their_values_not_clipped_to_white():
    import skimage.data

    # 16-bit versions of two photos, every value above 255 (as in most 12- and 16-bit scans)
    a = Image.fromarray(skimage.data.camera().astype(np.uint16) * 200 + 300)
    b = Image.fromarray(skimage.data.moon().astype(np.uint16) * 200 + 300)
    assert str(imagehash.phash(a)) == str(imagehash.phash(b))  # imagehash: both clip to the same white
    assert hamming(phash(a), phash(b)) > 16
    assert hamming(phash(a), phash(photo("camera"))) <= 2  # and like the 8-bit photo


def test_catalog_rows_carry_the_hash_of_ok_images_only():
    settings = ProbeSettings(root="file:/data")
    data = jpeg(photo("coffee"))
    ok = catalog_row("file:/data/a/x.jpg", len(data), data, settings)
    assert ok["status"] == OK and ok["phash"] == phash_of_bytes(data)
    off = catalog_row("file:/data/a/x.jpg", len(data), data, ProbeSettings(root="file:/data", phash=False))
    assert off["status"] == OK and off["phash"] is None
    empty = catalog_row("file:/data/a/e.jpg", 0, b"", settings)
    assert empty["phash"] is None


def test_bytes_that_pass_the_header_but_do_not_decode_are_quarantined_when_hashed():
    buffer = io.BytesIO()
    photo("coffee").save(buffer, "BMP")
    data = buffer.getvalue()[:-5000]  # a BMP has no end marker: only decoding finds the missing rows
    assert image_probe.probe_image(data).status == OK  # the header probe alone cannot tell
    row = catalog_row("file:/data/a/x.bmp", len(data), data, ProbeSettings(root="file:/data"))
    assert row["status"] == CORRUPT and row["phash"] is None and "truncated" in row["error"]


def test_flat_images_share_one_hash_instead_of_float_noise():
    hashes = {phash(Image.new("L", (40, 30), value)) for value in (17, 200, 255)}
    assert hashes == {-(1 << 63)}  # 8000000000000000: only the DC coefficient is above the median
    assert phash(Image.new("L", (40, 30), 0)) == 0


# The crop-robust signature (issue 29): window pHashes.

@pytest.mark.parametrize("name", PHOTOS)
def test_each_window_hash_is_imagehashs_phash_of_that_window_resized(name):
    grey = reduced_grey(photo(name))
    expected = [str(imagehash.phash(grey.resize((32, 32), Image.Resampling.BILINEAR, box=box)))
                for box in window_boxes(*grey.size)]
    assert [to_hex(h) for h in window_hashes(grey)] == expected
    assert len(expected) == WINDOW_COUNT == len(set(name for name, _ in WINDOWS))


def test_the_windows_are_regions_of_the_upright_image():
    grey = reduced_grey(photo("chelsea"))
    stored = grey.transpose(Image.Transpose.ROTATE_90)  # orientation 6: viewers turn it back
    assert window_hashes(stored, 6) == window_hashes(grey)
    assert window_hashes(stored) != window_hashes(grey)


def test_window_boxes_cover_the_named_fractions_of_any_size():
    boxes = dict(zip((name for name, _ in WINDOWS), window_boxes(200, 100)))
    assert boxes["top-left 0.95"] == (0, 0, 190, 95)
    assert boxes["bottom-right 0.88"] == (24, 12, 200, 100)
    assert boxes["right 0.8"] == (40, 0, 200, 100) and boxes["top 0.8"] == (0, 0, 200, 80)
    assert all(r > l and b > t for l, t, r, b in window_boxes(1, 1))  # a 1 px image still has 1 px windows


def test_a_copy_cut_from_a_corner_is_near_a_window_of_its_original_but_not_its_whole():
    for name in ("astronaut", "coffee", "rocket"):
        original = photo(name).convert("RGB")
        width, height = original.size
        keep = 0.8 ** 0.5  # a corner's 20% of the area cut away
        copy = Image.open(io.BytesIO(jpeg(original.crop((0, 0, round(keep * width), round(keep * height))))))
        whole = phash(reduced_grey(copy))
        assert hamming(whole, phash(reduced_grey(original))) > 8, name
        assert min(hamming(whole, w) for w in window_hashes(reduced_grey(original))) <= 8, name


def test_windows_of_bytes_hash_phash_v1s_decode_box_reduced_and_rows_without_an_image_have_none():
    from sparkprep.images.phash import windows_of_bytes
    from sparkprep.images.rows import row_windows

    image = photo("coffee").convert("RGB")
    data = jpeg(image)
    with Image.open(io.BytesIO(data)) as decoded:
        decoded.draft("L", (64, 64))
        expected = window_hashes(reduced_grey(decoded.convert("L")))
    assert windows_of_bytes(data) == expected == row_windows(data)
    assert row_windows(None) is None and row_windows(b"not an image") is None
    raw = np.asarray(image.resize((120, 80)))
    assert row_windows(raw.tobytes(), "raw", 120, 80, 3) == window_hashes(reduced_grey(Image.fromarray(raw)))
