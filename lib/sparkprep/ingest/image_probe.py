"""Validate image bytes and read their header metadata; runs on the Spark workers.

Pillow's limits are process-global and do not travel from the driver, so this module
sets them at import time, in whichever process imports it (driver or Python worker).
Failures never raise: every outcome is a `Probe` with a status and a reason.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Optional

from PIL import Image, ImageFile, UnidentifiedImageError

# Formats Image.open may even try; anything else is `invalid`, whatever its extension.
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM")
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own default (~ 0.25 GiB of RGBA)
EXIF_ORIENTATION = 0x0112
INT32_MAX = 2**31 - 1

Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False

# Statuses a file can get; `ok` is the only one that is not a quarantine.
OK = "ok"
EMPTY = "empty"
TOO_LARGE = "too_large"
INVALID = "invalid"  # not an image of an allowed format
CORRUPT = "corrupt"  # the header parses but the data does not decode
BOMB = "decompression_bomb"
UNREADABLE = "unreadable"  # listed, but its bytes could not be read


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


def set_max_pixels(max_pixels: int) -> None:
    """Set Pillow's decompression-bomb limit in this process (call it on the worker)."""
    Image.MAX_IMAGE_PIXELS = max_pixels


def probe_image(data: bytes, full: bool = False) -> Probe:
    """Read format, size, mode, frame count and EXIF orientation; `full` also decodes.

    Without `full` only the header is parsed, so a truncated body passes; with it the
    first frame is decoded with `load()`, which catches truncation and corrupt data.
    """
    if not data:
        return Probe(EMPTY, "zero-byte file")
    try:
        with warnings.catch_warnings():
            # Past MAX_IMAGE_PIXELS Pillow only warns; make it an error for this call,
            # whatever filters the host process (or a test runner) installed.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _probe(data, full)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is data, not a crash
        return Probe(*classify_error(exc))


def classify_error(exc: BaseException) -> "tuple[str, str]":
    """(status, reason) for an exception raised while opening or decoding an image."""
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return BOMB, _reason(exc)
    if isinstance(exc, UnidentifiedImageError):
        return INVALID, f"not a {'/'.join(ALLOWED_FORMATS)} image"
    return CORRUPT, _reason(exc)


def _probe(data: bytes, full: bool) -> Probe:
    with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as im:
        frames = int(getattr(im, "n_frames", 1))
        for name, value in (("width", im.width), ("height", im.height), ("frame count", frames)):
            if not 0 <= value <= INT32_MAX:  # the catalog's int32 columns: quarantine, never overflow
                return Probe(INVALID, f"header declares a {name} of {value}, beyond {INT32_MAX}", format=im.format)
        orientation = im.getexif().get(EXIF_ORIENTATION)
        probe = Probe(OK, None, format=im.format, width=im.width, height=im.height, mode=im.mode,
                      frames=frames, orientation=exif_orientation(orientation))
        if full:
            im.seek(0)
            im.load()
    return probe


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
