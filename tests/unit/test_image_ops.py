"""Image operations on small images made in the test. Sizes are (width, height)."""

import io

import numpy as np
import pytest
from PIL import Image
from images import encode

from sparkprep.images import ops as ops


def halves(size=(40, 20)):
    """Left half red, right half blue: shows flips and rotations."""
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    pixels[:, : size[0] // 2] = (255, 0, 0)
    pixels[:, size[0] // 2:] = (0, 0, 255)
    return Image.fromarray(pixels)


def test_exif_orientation_6_rotates_the_pixels_upright():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored image must be rotated 90 degrees clockwise to display
    upright = ops.orient(ops.decode(encode(halves(), "PNG", exif=exif.tobytes())))
    assert upright.size == (20, 40)
    top, bottom = upright.getpixel((10, 5)), upright.getpixel((10, 35))
    assert top[0] > 200 and bottom[2] > 200  # red (was left) is now on top


def test_16_bit_is_scaled_not_clipped_to_white():
    sixteen = Image.fromarray(np.full((4, 4), 40000, np.uint16))
    assert sixteen.mode == "I;16"
    gray = ops.to_mode(ops.decode(encode(sixteen, "PNG")), "L")
    assert gray.mode == "L" and gray.getpixel((0, 0)) == 40000 >> 8


def test_high_bit_depth_scales_by_one_fixed_rule_for_every_image():
    # the same stored value gives the same output whatever else the image holds
    dim = Image.fromarray(np.array([[0, 200]], np.int32))
    bright = Image.fromarray(np.array([[200, 65535]], np.int32))
    assert ops.to_mode(dim, "L").getpixel((1, 0)) == ops.to_mode(bright, "L").getpixel((0, 0)) == 1
    assert ops.to_mode(bright, "L").getpixel((1, 0)) == 255
    assert ops.to_mode(Image.fromarray(np.array([[-5, 70000]], np.int32)), "L").getpixel((1, 0)) == 255
    assert ops.to_mode(Image.fromarray(np.array([[0.5, 2.0]], np.float32)), "L").getpixel((0, 0)) == 128


def test_12_bit_data_in_16_bit_files_is_scaled_by_its_significant_bits():
    twelve = Image.fromarray(np.full((4, 4), 4095, np.uint16))
    assert ops.to_mode(twelve, "L").getpixel((0, 0)) == 16  # read as 16-bit data: near black
    assert ops.to_mode(twelve, "L", depth="bits:12").getpixel((0, 0)) == 255
    png = encode(twelve, "PNG")
    ihdr_end = 8 + 8 + 13 + 4
    import struct
    import zlib
    sbit = struct.pack(">I", 1) + b"sBIT" + b"\x0c" + struct.pack(">I", zlib.crc32(b"sBIT\x0c"))
    tagged = png[:ihdr_end] + sbit + png[ihdr_end:]
    assert ops.png_significant_bits(tagged) == 12 and ops.png_significant_bits(png) is None
    from sparkprep.preprocess.transform import TransformSpec, transform_sample

    out = transform_sample(tagged, "k", 0, TransformSpec(size=(4, 4), mode="L", encode="png"))[0]
    assert Image.open(io.BytesIO(out.image)).getpixel((0, 0)) == 255


def test_per_image_depth_scale_stretches_each_image_to_its_range():
    image = Image.fromarray(np.array([[1000, 3000]], np.uint16))
    scaled = ops.to_mode(image, "L", depth="per-image")
    assert (scaled.getpixel((0, 0)), scaled.getpixel((1, 0))) == (0, 255)
    with pytest.raises(ValueError, match="--depth-scale: expected fixed, per-image or bits:N"):
        ops.parse_depth_scale("bits:4")


def test_cmyk_becomes_rgb():
    cmyk = ops.decode(encode(halves().convert("CMYK"), "JPEG"))
    assert cmyk.mode == "CMYK"
    rgb = ops.to_mode(cmyk, "RGB")
    assert rgb.mode == "RGB" and rgb.getpixel((5, 10))[0] > 200


def test_palette_transparency_is_composited_onto_the_background():
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 4, 8))
    decoded = ops.decode(encode(image, "PNG", transparency=0))
    rgb = ops.to_mode(decoded, "RGB", background=(0, 255, 0))
    assert rgb.getpixel((1, 1)) == (255, 0, 0) and rgb.getpixel((6, 6)) == (0, 255, 0)


def test_rgba_alpha_is_composited_and_keep_mode_keeps_grayscale():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert ops.to_mode(rgba, "RGB", (10, 20, 30)).getpixel((0, 0)) == (10, 20, 30)
    assert ops.to_mode(Image.new("L", (4, 4), 9), "keep").mode == "L"
    assert ops.to_mode(Image.new("LA", (4, 4), (9, 255)), "keep").mode == "L"
    assert ops.to_mode(Image.new("CMYK", (4, 4)), "keep").mode == "RGB"


def test_first_frame_of_an_animation_is_used():
    frames = [Image.new("L", (8, 8), v) for v in (10, 200, 90)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert ops.to_mode(ops.decode(data), "L").getpixel((3, 3)) == 10


@pytest.mark.parametrize("policy,size,expected", [
    ("exact", (30, 30), (30, 30)),
    ("shorter-side-crop", (30, 30), (30, 30)),
    ("fit", (30, 30), (30, 15)),
    ("pad", (30, 30), (30, 30)),
    ("fit", (100, 10), (20, 10)),
])
def test_resize_policies_give_the_documented_size(policy, size, expected):
    assert ops.resize(halves((40, 20)), size, policy).size == expected


def test_shorter_side_crop_keeps_the_centre_and_pad_letterboxes_with_background():
    wide = halves((60, 20))
    cropped = ops.resize(wide, (20, 20), "shorter-side-crop")
    assert cropped.getpixel((2, 10))[0] > 200 and cropped.getpixel((17, 10))[2] > 200  # centre of red|blue
    padded = ops.resize(wide, (30, 30), "pad", background=(0, 255, 0))
    assert padded.getpixel((15, 0)) == (0, 255, 0) and padded.getpixel((15, 15)) != (0, 255, 0)


def test_resample_filter_is_honoured():
    rng = np.random.default_rng(1)
    noisy = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    near = ops.resize(noisy, (16, 16), "exact", "nearest").tobytes()
    lanczos = ops.resize(noisy, (16, 16), "exact", "lanczos").tobytes()
    assert near != lanczos
    with pytest.raises(ValueError, match="resample: expected one of"):
        ops.resize(noisy, (16, 16), "exact", "sharpest")
    with pytest.raises(ValueError, match="resize: expected one of"):
        ops.resize(noisy, (16, 16), "stretch")


@pytest.mark.parametrize("fmt,quality,pil_format", [("jpeg", 80, "JPEG"), ("png", None, "PNG"), ("webp", 80, "WEBP")])
def test_encodings_round_trip(fmt, quality, pil_format):
    data = ops.encode(halves(), fmt, quality)
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == pil_format and decoded.size == (40, 20)


def test_raw_encoding_is_row_major_hwc_uint8():
    data = ops.encode(halves((4, 2)), "raw")
    pixels = np.frombuffer(data, np.uint8).reshape(2, 4, 3)
    assert tuple(pixels[0, 0]) == (255, 0, 0) and tuple(pixels[1, 3]) == (0, 0, 255)


def test_jpeg_draft_decodes_at_reduced_scale_but_never_below_the_target():
    big = encode(Image.new("RGB", (1024, 768), (120, 30, 200)), "JPEG")
    full = ops.decode(big)
    reduced = ops.decode(big, (224, 224), "shorter-side-crop")
    assert full.size == (1024, 768)
    assert reduced.size == (512, 384)  # 1/2 scale: 1/4 would give a 192 px shorter side < 224
    assert ops.decode(big, (224, 224), "fit").size == (256, 192)  # longer side only needs 224


def test_draft_size_accounts_for_rotation_and_later_crops():
    assert ops.draft_size_for((1000, 500), None, (100, 100), "shorter-side-crop") == (200, 100)
    assert ops.draft_size_for((1000, 500), None, (100, 50), "shorter-side-crop") == (100, 50)
    assert ops.draft_size_for((1000, 500), 6, (100, 50), "shorter-side-crop") == (200, 100)  # shown 500x1000
    assert ops.draft_size_for((1000, 500), None, (100, 100), "exact", 0.5) == (400, 200)
    assert ops.draft_size_for((50, 50), None, (100, 100), "exact") == (50, 50)  # never upscale the request


def test_channel_stats_are_in_unit_range():
    mean, std = ops.channel_stats(halves((4, 2)))
    assert mean == pytest.approx([0.5, 0.0, 0.5]) and std == pytest.approx([0.5, 0.0, 0.5])


def test_channel_stats_equal_pillow_imagestat_exactly():
    from PIL import ImageStat

    rng = np.random.default_rng(3)
    for shape in ((37, 53, 3), (224, 224)):  # RGB and L
        image = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8))
        stat = ImageStat.Stat(image)
        assert ops.channel_stats(image) == ([m / 255.0 for m in stat.mean], [s / 255.0 for s in stat.stddev])


def test_copies_get_their_own_decode_only_where_the_crop_needs_a_larger_dct_scale():
    small, large = encode(halves((64, 64)), "JPEG"), encode(halves((1155, 866)), "JPEG")
    assert ops.drafts_differ(small, (32, 32), "shorter-side-crop", 0.61)  # 1/2 for the original, 1/1 for a crop
    assert not ops.drafts_differ(large, (224, 224), "shorter-side-crop", 0.8)  # 1/2 serves both
    assert not ops.drafts_differ(encode(halves((64, 64)), "PNG"), (32, 32), "shorter-side-crop", 0.61)
    assert not ops.drafts_differ(small, (32, 32), "shorter-side-crop", 1.0)
