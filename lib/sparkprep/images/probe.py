"""Validate image bytes and read their header metadata; runs on the Spark workers.

Pillow's limits are process-global and do not travel from the driver, so this module sets
them at import time, in whichever process imports it (driver or Python worker). The pixel
limit of each call is checked explicitly after Image.open (`open_image`), with no global
state changed per call: threads with other limits (an online endpoint) cannot race.
Failures never raise: every outcome is a `Probe` with a status and a reason.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from typing import Optional

from PIL import Image, ImageFile, UnidentifiedImageError

from sparkprep.statuses import BOMB, CORRUPT, EMPTY, INVALID, OK

# Formats Image.open may even try; anything else is `invalid`, whatever its extension.
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM")
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own default (~ 0.25 GiB of RGBA)
EXIF_ORIENTATION = 0x0112
INT32_MAX = 2**31 - 1

Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False



@dataclass(frozen=True)
class Probe:
    """What probing one file found; the image fields are None unless the header parsed."""

    status: str
    error: Optional[str] = None
    format: Optional[str] = None
    width: Optional[int] = None
    height: Optional[int] = None
    mode: Optional[str] = None
    frames: Optional[int] = None
    orientation: Optional[int] = None


def allow_pixels(max_pixels: int) -> None:
    """Let Pillow's own process-wide check pass images up to max_pixels: the limit only ever rises,
    so every thread's own (lower) limit is still enforced, by open_image."""
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
               formats: "tuple[str, ...]" = ALLOWED_FORMATS) -> Image.Image:
    """Image.open of the bytes, refused past max_pixels (width x height, checked for this call only)."""
    allow_pixels(max_pixels)
    with warnings.catch_warnings():  # Pillow's warning between its two limits: this call's own check decides
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(data), formats=formats)
    pixels = image.width * image.height
    if pixels > max_pixels:
        image.close()
        raise Image.DecompressionBombError(f"Image size ({pixels} pixels) exceeds limit of {max_pixels} pixels, "
                                           "could be decompression bomb DOS attack.")
    return image


def probe_image(data: bytes, full: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS) -> Probe:
    """Read format, size, mode, frame count and EXIF orientation; `full` also decodes.

    Without `full` the header is parsed and the file's end is checked (`missing_end`), which
    catches truncation at almost no cost; with it the first frame is also decoded with
    `load()`, which catches corrupt data inside the file.
    """
    if not data:
        return Probe(EMPTY, "zero-byte file")
    try:
        return _probe(data, full, max_pixels)
    except Exception as exc:  # noqa: BLE001 - decoder failures are data; quarantine_or_raise re-raises bugs
        return Probe(*quarantine_or_raise(exc))


def quarantine_or_raise(exc: BaseException) -> "tuple[str, str]":
    """The failure policy: (status, reason) for a decoder failure; anything else is re-raised.

    A decoder failure is an exception Pillow raised about the bytes (the innermost frame is
    Pillow's own code, or it is an UnidentifiedImageError or a decompression bomb): the
    sample is quarantined. An exception raised by sparkprep's own code is a bug, and must
    fail the task (and the job), not turn every row into a `corrupt` one.
    """
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return BOMB, _reason(exc)
    if isinstance(exc, UnidentifiedImageError):
        return INVALID, f"not a {'/'.join(ALLOWED_FORMATS)} image"
    if is_decoder_error(exc):
        return CORRUPT, _reason(exc)
    raise exc


_PIL_DIR = os.path.dirname(os.path.abspath(Image.__file__)) + os.sep


def is_decoder_error(exc: BaseException) -> bool:
    """Whether the innermost frame of the exception's traceback is in Pillow."""
    tb, last = exc.__traceback__, None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return last is not None and os.path.abspath(last.tb_frame.f_code.co_filename).startswith(_PIL_DIR)


def _probe(data: bytes, full: bool, max_pixels: int) -> Probe:
    with open_image(data, max_pixels) as im:
        frames = int(getattr(im, "n_frames", 1))
        for name, value in (("width", im.width), ("height", im.height), ("frame count", frames)):
            if not 0 <= value <= INT32_MAX:  # the catalog's int32 columns: quarantine, never overflow
                return Probe(INVALID, f"header declares a {name} of {value}, beyond {INT32_MAX}", format=im.format)
        orientation = im.getexif().get(EXIF_ORIENTATION)
        missing = missing_end(data, im.format)
        if missing:
            return Probe(CORRUPT, missing, format=im.format, width=im.width, height=im.height, mode=im.mode)
        probe = Probe(OK, None, format=im.format, width=im.width, height=im.height, mode=im.mode,
                      frames=frames, orientation=exif_orientation(orientation))
        if full:
            im.seek(0)
            im.load()
    return probe


# Bytes some writers leave after an image's last structure (zero fill, line ends, 0xFF fill).
_PADDING = b"\x00\xff\r\n\t "
_TAIL = 4096


def missing_end(data: bytes, fmt: Optional[str]) -> Optional[str]:
    """Why the file is cut short, or None: the structural end of the format is checked, not decoded.

    - JPEG ends with the EOI marker FFD9 (trailing padding allowed). Data appended after a
      complete image (a motion photo's video) is accepted when an EOI follows the last
      start-of-scan marker.
    - PNG ends with its IEND chunk; GIF with its trailer byte 0x3B.
    Pillow's own header parsing already refuses a cut WebP; other formats are not checked
    here (--validate full decodes them).
    """
    tail = data[-_TAIL:].rstrip(_PADDING)
    if fmt == "JPEG":
        if tail.endswith(b"\xff\xd9") or data.rfind(b"\xff\xd9") > data.rfind(b"\xff\xda") > 0:
            return None
        return "truncated: the JPEG ends without its end-of-image marker (FFD9)"
    if fmt == "PNG" and not tail.endswith(b"IEND\xaeB`\x82"):
        return "truncated: the PNG ends without its IEND chunk"
    if fmt == "GIF" and not tail.endswith(b"\x3b"):
        return "truncated: the GIF ends without its trailer byte (3B)"
    return None


def exif_orientation(value) -> Optional[int]:
    """The EXIF orientation 1..8, or None for absent or out-of-spec values (which every viewer ignores,
    and which could not be stored in an int32 column: 0xFFFFFFFF has been seen)."""
    try:
        value = int(value)
    except (TypeError, ValueError):
        return None
    return value if 1 <= value <= 8 else None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]
