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
        if image.format == "JPEG":
            image.draft("L", (DRAFT_SIDE, DRAFT_SIDE))
        image.seek(0)
        image.load()
        return phashes(image, orientation)


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
