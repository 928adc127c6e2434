"""Images from a table row's bytes, for the report: thumbnails and perceptual hashes. Pure Pillow + numpy;
bad data gives None, never an exception (a sparkprep bug still raises, see image_probe.quarantine_or_raise)."""

from __future__ import annotations

import base64
from typing import List, Optional

import numpy as np
from PIL import Image

from sparkprep.images import ops as image_ops
from sparkprep.images import probe as image_probe
from sparkprep.images.phash import Signatures, phashes, phashes_of_bytes, reduced_grey, window_hashes, windows_of_bytes

SIDE = 96  # px, the longer side of a thumbnail


def thumbnail_jpeg(data: Optional[bytes], image_format: Optional[str] = None, width: Optional[int] = None,
                   height: Optional[int] = None, channels: Optional[int] = None, side: int = SIDE) -> Optional[bytes]:
    """An upright RGB/L JPEG at most `side` px, or None when the bytes do not decode (quarantined files).

    image_format 'raw' (a processed table's uint8 HWC pixels) needs width, height and channels.
    """
    image = _row_image(data, image_format, width, height, channels, (side, side))
    if image is None:
        return None
    image = image_ops.to_mode(image, "keep")
    image.thumbnail((side, side), Image.Resampling.BILINEAR)
    return image_ops.encode(image, "jpeg", quality=75)


def row_signatures(data: Optional[bytes], image_format: Optional[str] = None, width: Optional[int] = None,
                   height: Optional[int] = None, channels: Optional[int] = None,
                   orientation: Optional[int] = None) -> Optional[Signatures]:
    """The `phash`, `phash256` and `dct_direction` of a row of a table written without them (as ingest computes
    them, from one decode), or None."""
    if not data:
        return None
    if image_format == "raw":
        image = _row_image(data, image_format, width, height, channels)
        return phashes(image) if image is not None else None
    try:
        return phashes_of_bytes(data, orientation)
    except Exception as exc:  # noqa: BLE001 - bytes that do not decode have no hash; bugs re-raise
        image_probe.quarantine_or_raise(exc)
        return None


def row_windows(data: Optional[bytes], image_format: Optional[str] = None, width: Optional[int] = None,
                height: Optional[int] = None, channels: Optional[int] = None,
                orientation: Optional[int] = None) -> Optional[List[int]]:
    """The window pHashes (sparkprep.images.phash.WINDOWS) of a row, from one decode as row_signatures decodes it,
    or None."""
    if not data:
        return None
    if image_format == "raw":
        image = _row_image(data, image_format, width, height, channels)
        return window_hashes(reduced_grey(image)) if image is not None else None
    try:
        return windows_of_bytes(data, orientation)
    except Exception as exc:  # noqa: BLE001 - bytes that do not decode have no hash; bugs re-raise
        image_probe.quarantine_or_raise(exc)
        return None


def _row_image(data: Optional[bytes], image_format: Optional[str], width: Optional[int], height: Optional[int],
               channels: Optional[int], target=None) -> Optional[Image.Image]:
    """An upright image from encoded bytes, or from a processed table's raw uint8 HWC pixels."""
    if not data:
        return None
    if image_format == "raw":
        try:
            pixels = np.frombuffer(data, dtype=np.uint8).reshape(height, width, channels)
        except (TypeError, ValueError):  # the row's shape columns do not match its bytes
            return None
        return Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels)
    try:
        return image_ops.orient(image_ops.decode(data, target, "fit"))
    except Exception as exc:  # noqa: BLE001 - a file that does not decode has no image; bugs re-raise
        image_probe.quarantine_or_raise(exc)
        return None


def data_uri(jpeg: Optional[bytes]) -> Optional[str]:
    """A data: URI of JPEG bytes, for an <img> with no request."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii") if jpeg else None
