"""Header probing and validation on images made in the test."""

import io

import numpy as np
import pytest
from PIL import Image
from images import encode
from images import noise as photo

from sparkprep.images import probe as ip


def test_jpeg_header_gives_format_size_mode():
    probe = ip.probe_image(encode(photo(), "JPEG"))
    assert (probe.status, probe.format, probe.width, probe.height, probe.mode, probe.frames) == \
        ("ok", "JPEG", 96, 64, "RGB", 1)


def test_exif_orientation_is_read_without_decoding():
    exif = Image.Exif()
    exif[0x0112] = 6
    assert ip.probe_image(encode(photo(), "JPEG", exif=exif.tobytes())).orientation == 6
    assert ip.probe_image(encode(photo(), "JPEG")).orientation is None


def test_truncation_is_caught_by_the_default_header_check():
    data = encode(photo((300, 200)), "JPEG")
    cut = ip.probe_image(data[:-400])
    assert cut.status == "corrupt" and "end-of-image marker (FFD9)" in cut.error
    for fmt, what in (("PNG", "IEND"), ("GIF", "trailer"), ("WEBP", "")):  # Pillow itself refuses a cut WebP
        whole = encode(photo((300, 200)), fmt)
        assert ip.probe_image(whole).status == "ok"
        probe = ip.probe_image(whole[:-60] if fmt != "PNG" else whole[:-12])  # the PNG cut just before IEND
        assert probe.status == "corrupt" and what in probe.error, (fmt, probe)


def test_end_check_allows_padding_and_data_after_a_complete_jpeg():
    data = encode(photo((300, 200)), "JPEG")
    assert ip.probe_image(data + b"\x00" * 700).status == "ok"
    assert ip.probe_image(data + b"\r\n").status == "ok"
    assert ip.probe_image(data + b"....ftypmp42" * 50).status == "ok"  # a motion photo's video after the image


def test_html_named_jpg_is_invalid():
    probe = ip.probe_image(b"<!doctype html><html></html>")
    assert probe.status == "invalid" and "not a JPEG" in probe.error


def test_decompression_bomb_is_quarantined_not_raised():
    import warnings

    data = encode(Image.new("1", (10000, 10000)), "PNG")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        probe = ip.probe_image(data)
    assert probe.status == "decompression_bomb" and "exceeds limit" in probe.error
    assert not said, [str(w.message) for w in said]  # Pillow's own warning (100 MP) is not printed


def test_max_pixels_is_a_limit_of_each_call():
    data = encode(photo((100, 100)), "PNG")
    bomb = ip.probe_image(data, max_pixels=5000)
    assert bomb.status == "decompression_bomb" and "10000 pixels) exceeds limit of 5000" in bomb.error
    assert ip.probe_image(data).status == "ok"  # the default limit, untouched by the call before


def test_empty_bytes_are_empty():
    assert ip.probe_image(b"").status == "empty"


def test_format_not_in_allowlist_is_invalid():
    assert ip.probe_image(encode(photo(), "PCX")).status == "invalid"


@pytest.mark.parametrize("make,mode,frames", [
    (lambda: encode(photo().convert("CMYK"), "JPEG"), "CMYK", 1),
    (lambda: encode(Image.fromarray(np.full((8, 8), 40000, np.uint16)), "PNG"), "I;16", 1),
    (lambda: encode(Image.new("P", (8, 8)), "PNG", transparency=0), "P", 1),
    (lambda: encode(Image.new("L", (8, 8)), "GIF", save_all=True,
                    append_images=[Image.new("L", (8, 8), v) for v in (128, 255)]), "P", 3),
])
def test_unusual_but_valid_images_are_ok_with_their_mode_and_frames(make, mode, frames):
    probe = ip.probe_image(make(), full=True)
    assert (probe.status, probe.mode, probe.frames) == ("ok", mode, frames)


def _apng_declaring(frames):
    import struct
    import zlib

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, "PNG")
    data, ihdr_end = buffer.getvalue(), 8 + 8 + 13 + 4

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    return data[:ihdr_end] + chunk(b"acTL", struct.pack(">II", frames, 0)) + data[ihdr_end:]


def test_an_apng_declaring_2_31_frames_is_quarantined_and_fits_the_catalog_schema():
    import pyarrow as pa

    from sparkprep.ingest.catalog_rows import ProbeSettings, catalog_batches

    probe = ip.probe_image(_apng_declaring(2**31))
    assert probe.status == "invalid" and "frame count of 2147483649" in probe.error
    batch = pa.RecordBatch.from_pydict({"path": ["file:/r/a.png"], "length": [1], "content": [_apng_declaring(2**31)]})
    out = list(catalog_batches(iter([batch]), ProbeSettings(root="file:/r")))  # the Arrow conversion must not raise
    assert out[0].column("status").to_pylist() == ["invalid"]


def test_an_out_of_spec_exif_orientation_is_ignored_not_overflowed():
    from PIL import TiffImagePlugin

    ifd = TiffImagePlugin.ImageFileDirectory_v2()
    ifd[0x0112] = 0xFFFFFFFF
    ifd.tagtype[0x0112] = 4  # LONG
    buffer = io.BytesIO()
    ifd.save(buffer)
    jpeg = io.BytesIO()
    Image.new("RGB", (4, 4)).save(jpeg, "JPEG", exif=b"Exif\x00\x00" + buffer.getvalue())
    probe = ip.probe_image(jpeg.getvalue())
    assert (probe.status, probe.orientation) == ("ok", None)
    assert ip.exif_orientation(6) == 6
