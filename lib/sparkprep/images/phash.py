"""The 64-bit perceptual hash (pHash) of an image: pure numpy + Pillow, run in the ingest probe pass.

`phash` gives the same bits as `imagehash.phash` (tested): a 32x32 LANCZOS greyscale, its 2-D
DCT-II (scipy's unnormalized type 2), and one bit per low-frequency coefficient of the top-left
8x8 block, set when it is above the block's median. The DCT is two small matrix products, so
neither scipy nor imagehash (and PyWavelets) is needed on the workers.

`phash_of_bytes` is what ingest stores in the `phash` column. It differs from hashing a fully
decoded image in three documented ways, each for a reason:
- JPEGs are decoded at a DCT scale that still leaves at least 64x64 pixels (Pillow's draft):
  a 1/8-scale decode is what makes the hash cheap next to the header probe;
- 16-bit and float images are hashed from their own values (imagehash's convert('L') clips
  them to white, which would make every such image the same hash);
- the EXIF orientation is applied to the 32x32 greyscale, so a rotated copy of a photo is a
  near-duplicate of the upright one.

Two versions of the column exist; a table's `phash` field metadata (PHASH_METADATA_KEY) names
its version, and a table without it is phash-v1:
- phash-v1 (`phash_of_bytes`): the hash's own decode, as above (ingest, split, report, and the
  pipeline's two-pass plans);
- phash-v2 (`phash_of_decode`): the pipeline's one pass hashes the decode its transform already
  made (one decode per image), box-reduced (`Image.reduce`) to a shorter side of 64-127 pixels
  before the steps above. A JPEG's 1/8 DCT scale is itself close to a box average, so the bits
  are within a few of phash-v1's (docs/near-duplicates.md has the measurement), but not equal:
  compare hashes of one version only.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
from PIL import Image

from sparkprep.images import probe as image_probe

HASH_SIDE = 8     # the 8x8 low-frequency block: 64 bits
SAMPLE_SIDE = 32  # the greyscale the DCT runs over (hash side x 4, imagehash's highfreq_factor)
LONG_SIDE = 16    # phash256: the 16x16 block (imagehash.phash(hash_size=16)), over a 64x64 greyscale
WORDS = 4         # phash256 as 4 signed 64-bit words, most significant first (the `phash256` column)
DRAFT_SIDE = 64   # JPEG decodes keep at least this many pixels per side before the LANCZOS resize
PHASH_V1 = "phash-v1"  # phash_of_bytes: the hash's own decode
PHASH_V2 = "phash-v2"  # phash_of_decode: the transform's decode, box-reduced
PHASH_METADATA_KEY = "sparkprep.phash"  # the `phash` field's metadata: its version (absent: phash-v1)



def _dct_rows(side: int) -> np.ndarray:
    """Rows 0..side-1 of the unnormalized DCT-II matrix over 4 x side samples: 2 cos(pi k (2n + 1) / (8 side))."""
    samples = 4 * side
    return 2.0 * np.cos(np.pi * np.outer(np.arange(side), 2 * np.arange(samples) + 1) / (2 * samples))


_DCT = _dct_rows(HASH_SIDE)
_DCT_LONG = _dct_rows(LONG_SIDE)
_HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
# EXIF orientation -> the transpose that makes the image upright (as ImageOps.exif_transpose).
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}


def phash(image: Image.Image, orientation: Optional[int] = None) -> int:
    """The pHash of a PIL image as a signed 64-bit integer (bit 63 is the top-left coefficient).

    With orientation None or 1 the bits equal imagehash.phash(image) for 8-bit images, flat ones excepted.
    """
    return bits_to_int64(_low_bits(_grey(image), orientation, _DCT))


def phash256(image: Image.Image, orientation: Optional[int] = None) -> List[int]:
    """The 256-bit pHash (16x16 block over a 64x64 greyscale) as WORDS signed 64-bit words, most
    significant first: the bits of imagehash.phash(image, hash_size=16), as `phash` is of hash_size=8.

    Look-alike images (scans of one modality) share most of the 64-bit hash's bits; the longer
    hash tells them apart (docs/near-duplicates.md, "The second hash").
    """
    return bits_to_words(_low_bits(_grey(image), orientation, _DCT_LONG))


Signatures = Tuple[int, List[int], np.ndarray]  # (phash, phash256, dct_direction): the three stored columns


def phashes(image: Image.Image, orientation: Optional[int] = None) -> Signatures:
    """(phash, phash256, dct_direction) of one image, from one greyscale conversion and one 16x16 block."""
    grey = _grey(image)
    block = _low_block(grey, orientation, _DCT_LONG)
    return (bits_to_int64(_low_bits(grey, orientation, _DCT)), bits_to_words(block > np.median(block)),
            direction_of_block(block))


def _grey(image: Image.Image) -> Image.Image:
    return image.convert("F" if image.mode in _HIGH_DEPTH else "L")


def _low_bits(grey: Image.Image, orientation: Optional[int], dct: np.ndarray) -> np.ndarray:
    """The low-frequency block of the DCT of the greyscale resized to the matrix's samples, above its median."""
    low = _low_block(grey, orientation, dct)
    return low > np.median(low)


def _low_block(grey: Image.Image, orientation: Optional[int], dct: np.ndarray) -> np.ndarray:
    """The low-frequency block of the DCT of the greyscale resized to the matrix's samples."""
    side = dct.shape[1]
    small = grey.resize((side, side), Image.Resampling.LANCZOS)
    if orientation in _UPRIGHT:
        small = small.transpose(_UPRIGHT[orientation])
    pixels = np.asarray(small, dtype=np.float64)
    # Rounded so that float noise cannot pick bits: a flat image's AC coefficients are exactly 0, and
    # every flat image hashes to 8000000000000000 (imagehash's FFT leaves ~1e-13 noise: random bits).
    return np.round(dct @ pixels @ dct.T, 6)


def dct_direction(image: Image.Image, orientation: Optional[int] = None) -> np.ndarray:
    """The direction of an image's 16x16 DCT block (phash256's, before its median), without the DC term
    (the mean brightness): 255 int16 coefficients scaled so that the vector's length is DIRECTION_SCALE
    (all zero for a flat image). The angle between two of them (sparkprep.audit.angles) tells look-alike
    images apart where the bits of both hashes cannot (docs/near-duplicates.md)."""
    return direction_of_block(_low_block(_grey(image), orientation, _DCT_LONG))


DIRECTION_SCALE = 32767  # a unit vector's length, as int16: rounding moves an angle by under 0.01 degrees


def direction_of_block(block: np.ndarray) -> np.ndarray:
    """A DCT block without its DC term, scaled to length DIRECTION_SCALE and rounded to int16."""
    ac = np.asarray(block, dtype=np.float64).ravel()[1:]
    norm = np.linalg.norm(ac)
    return np.zeros(ac.shape, np.int16) if norm == 0 else np.round(ac * (DIRECTION_SCALE / norm)).astype(np.int16)


def phash_of_bytes(data: bytes, orientation: Optional[int] = None,
                   max_pixels: int = image_probe.DEFAULT_MAX_PIXELS) -> int:
    """The `phash` column of one image file's bytes (first frame); raises on bad data, like decode."""
    return phashes_of_bytes(data, orientation, max_pixels)[0]


def phashes_of_bytes(data: bytes, orientation: Optional[int] = None,
                     max_pixels: int = image_probe.DEFAULT_MAX_PIXELS) -> Signatures:
    """The `phash`, `phash256` and `dct_direction` columns of one image file's bytes, from one decode (first
    frame)."""
    with image_probe.open_image(data, max_pixels) as image:
        return phashes(_hash_decode(image), orientation)


def _hash_decode(image: Image.Image) -> Image.Image:
    """The opened image's first frame, loaded as phash-v1 decodes it (a JPEG at the DCT scale that leaves
    DRAFT_SIDE)."""
    if image.format == "JPEG":
        image.draft("L", (DRAFT_SIDE, DRAFT_SIDE))
    image.seek(0)
    image.load()
    return image


def windows_of_bytes(data: bytes, orientation: Optional[int] = None,
                     max_pixels: int = image_probe.DEFAULT_MAX_PIXELS) -> List[int]:
    """The window pHashes of one image file's bytes, from phash-v1's decode, box-reduced as phash-v2's greyscale
    (a table written without them: the audit computes them on the workers)."""
    with image_probe.open_image(data, max_pixels) as image:
        return window_hashes(reduced_grey(_hash_decode(image)), orientation)


def version_of(metadata: Optional[dict]) -> str:
    """The hash version a `phash` field's metadata names (none: phash-v1, as every table before versions)."""
    return (metadata or {}).get(PHASH_METADATA_KEY, PHASH_V1)


def phash_of_decode(decoded: Image.Image, data: bytes, orientation: Optional[int] = None,
                    max_pixels: int = image_probe.DEFAULT_MAX_PIXELS) -> int:
    """The phash-v2 of an image from a decode another step already made (phashes_of_decode's first)."""
    return phashes_of_decode(decoded, data, orientation, max_pixels)[0]


def phashes_of_decode(decoded: Image.Image, data: bytes, orientation: Optional[int] = None,
                      max_pixels: int = image_probe.DEFAULT_MAX_PIXELS) -> Signatures:
    """The phash-v2, phash256 and dct_direction of an image from a decode another step already made (the transform's,
    before orientation and mode conversion), so the file is decoded once.

    The greyscale is box-reduced by floor(shorter side / 64), which leaves 64-127 pixels, then
    hashed as `phashes` (phash, phash256 and dct_direction). A decode smaller than 64 pixels on its shorter side
    (a tiny recipe's JPEG draft) cannot give those pixels: the hash then decodes the bytes itself,
    at the smallest JPEG scale that leaves 64, and hashes that the same way.
    """
    if min(decoded.size) < DRAFT_SIDE and decoded.format == "JPEG":
        with image_probe.open_image(data, max_pixels) as image:
            image.draft("L", (DRAFT_SIDE, DRAFT_SIDE))
            image.seek(0)
            image.load()
            return phashes(reduced_grey(image), orientation)
    return phashes(reduced_grey(decoded), orientation)


def reduced_grey(image: Image.Image) -> Image.Image:
    """The greyscale (float for 16-bit and float images) box-reduced to a shorter side of 64-127 pixels
    (an image already smaller is kept whole): what phash-v2 hashes."""
    grey = image.convert("F" if image.mode in _HIGH_DEPTH else "L")
    factor = min(grey.size) // DRAFT_SIDE
    return grey.reduce(factor) if factor > 1 else grey


def bits_to_int64(bits: np.ndarray) -> int:
    """64 booleans, most significant first, as a signed int64 (what Spark's bigint holds)."""
    value = int.from_bytes(np.packbits(bits.ravel()).tobytes(), "big")
    return value - (1 << 64) if value >= 1 << 63 else value


def bits_to_words(bits: np.ndarray) -> List[int]:
    """A multiple of 64 booleans, most significant first, as signed int64 words (most significant first)."""
    flat = np.packbits(bits.ravel()).tobytes()
    words = [int.from_bytes(flat[i:i + 8], "big") for i in range(0, len(flat), 8)]
    return [w - (1 << 64) if w >= 1 << 63 else w for w in words]


def words_to_int(words) -> int:
    """phash256's words as one unsigned 256-bit integer (what the driver-side audit compares)."""
    value = 0
    for w in words:
        value = (value << 64) | (w & 0xFFFF_FFFF_FFFF_FFFF)
    return value


def to_hex(value: int) -> str:
    """The 16 hex digits of a signed 64-bit hash, as imagehash prints it."""
    return format(value & 0xFFFF_FFFF_FFFF_FFFF, "016x")


def hamming(a: int, b: int) -> int:
    """Bits that differ between two 64-bit hashes."""
    return bin((a ^ b) & 0xFFFF_FFFF_FFFF_FFFF).count("1")


# The crop-robust signature (issue 29): window pHashes.
#
# A copy cut from a photo (one corner's 20-25% of the area gone, 8% off two sides and re-scaled, a
# side trimmed by 20%) moves the whole image's 64-bit pHash by 10-25 bits: no threshold finds it
# without false pairs. But the copy's whole image is close to one region of the original, and the
# pHash of that region is close to the copy's. So each image also keeps the pHashes of WINDOWS,
# fixed regions of its upright greyscale, and two images are a crop pair when the whole pHash of
# either is within the threshold of a window pHash of the other (sparkprep.audit.crops searches
# for such pairs with the banding guarantee).
#
# The windows, as fractions of each side: the four corner-anchored squares at 0.95, 0.92 and 0.88
# of the side (12), and the four sides at 0.8 of the width or height (4). Chosen by measurement on
# real photos (scripts/bench_crop_signatures.py, docs/near-duplicates.md, "Crops"): at 8 bits they
# find 0.95-1.00 of each kind of crop above, with no pair of distinct photos flagged.
#
# Each window is read from the same greyscale as the row's `phash` (phash-v1's own decode, or phash-v2's
# box-reduced transform decode) after the EXIF orientation is applied, resized to 32x32 by Pillow's
# antialiased BILINEAR straight from the box (no copy of the region), and hashed as phash hashes its
# 32x32: the 8x8 low-frequency DCT block, one bit per coefficient above its median. The 16 DCTs are
# one batched matrix product. BILINEAR, not phash's LANCZOS: half the cost (0.35 against 0.85 ms for
# 16 windows of a 100x67 greyscale) for the same recall on the planted crops at 8 bits.
# tests/unit/test_phash.py checks the bits against imagehash.phash of each resized window.

Box = Tuple[float, float, float, float]  # (left, top, right, bottom) as fractions of the width and height


def _corners(side: float) -> List[Tuple[str, Box]]:
    return [(f"top-left {side}", (0.0, 0.0, side, side)), (f"top-right {side}", (1 - side, 0.0, 1.0, side)),
            (f"bottom-left {side}", (0.0, 1 - side, side, 1.0)),
            (f"bottom-right {side}", (1 - side, 1 - side, 1.0, 1.0))]


# (name, box), in the order of the stored window hashes: the report names the window that matched by it.
WINDOWS: Tuple[Tuple[str, Box], ...] = tuple(
    _corners(0.95) + _corners(0.92) + _corners(0.88)
    + [("left 0.8", (0.0, 0.0, 0.8, 1.0)), ("right 0.8", (0.2, 0.0, 1.0, 1.0)),
       ("top 0.8", (0.0, 0.0, 1.0, 0.8)), ("bottom 0.8", (0.0, 0.2, 1.0, 1.0))])
WINDOW_COUNT = len(WINDOWS)


def window_boxes(width: int, height: int) -> List[Tuple[int, int, int, int]]:
    """The windows in pixels of a width x height image: each edge rounded to the nearest pixel, at least one wide."""
    boxes = []
    for _, (left, top, right, bottom) in WINDOWS:
        x0, y0 = round(left * width), round(top * height)
        boxes.append((x0, y0, max(x0 + 1, round(right * width)), max(y0 + 1, round(bottom * height))))
    return boxes


def upright(grey: Image.Image, orientation: Optional[int] = None) -> Image.Image:
    """The greyscale turned as its EXIF orientation says (the windows are regions of the upright image)."""
    return grey.transpose(_UPRIGHT[orientation]) if orientation in _UPRIGHT else grey


def window_hashes(grey: Image.Image, orientation: Optional[int] = None) -> List[int]:
    """The WINDOW_COUNT window pHashes of a greyscale ('L', or 'F' for 16-bit and float images) as signed 64-bit
    integers, in WINDOWS' order: each is phash's bits of the window of the upright greyscale resized to 32x32."""
    image = upright(grey, orientation)
    side = SAMPLE_SIDE
    pixels = np.stack([np.asarray(image.resize((side, side), Image.Resampling.BILINEAR, box=box), dtype=np.float64)
                       for box in window_boxes(*image.size)])
    blocks = np.round(_DCT @ pixels @ _DCT.T, 6).reshape(len(pixels), -1)  # as phash rounds: see _low_block
    bits = blocks > np.median(blocks, axis=1, keepdims=True)
    return np.packbits(bits, axis=1).view(">i8").ravel().astype(np.int64).tolist()
