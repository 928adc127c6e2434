"""The preprocessing recipe (TransformSpec) and what it does to one sample's bytes.

Pure: bytes in, encoded images out. The Spark glue maps it over Arrow batches.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import List, Optional, Tuple

from PIL import Image, ImageColor

from sparkprep.preprocess import augment as aug, image_ops

ENCODINGS = ("jpeg", "png", "webp", "raw")


@dataclass(frozen=True)
class TransformSpec:
    """Everything that decides the output pixels; its digest is stored on every row."""

    size: Tuple[int, int] = (224, 224)
    resize: str = "shorter-side-crop"
    resample: str = "bilinear"
    mode: str = "RGB"
    background: Tuple[int, int, int] = (255, 255, 255)
    encode: str = "jpeg"
    quality: Optional[int] = 90
    augment: aug.AugmentSpec = field(default_factory=aug.AugmentSpec)
    seed: str = "0"
    draft: bool = True  # decode JPEGs at reduced DCT scale when the target is smaller
    depth_scale: str = "fixed"  # how 16/32-bit pixels become 8-bit (image_ops.eight_bit)

    def as_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        """sha256 of the canonical JSON of the spec (16 hex digits): which recipe made a row."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


MAX_SIDE = 8192  # a training image larger than this is a typo, and would exhaust worker memory


def parse_size(text: str) -> Tuple[int, int]:
    """'224' -> (224, 224); '320x240' -> (320, 240) (width x height)."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", str(text))
    if not match or int(match.group(1)) <= 0 or (match.group(2) and int(match.group(2)) <= 0):
        raise ValueError(f"--size: expected N or WIDTHxHEIGHT in pixels, got {text!r}")
    width = int(match.group(1))
    height = int(match.group(2) or width)
    if max(width, height) > MAX_SIDE:
        raise ValueError(f"--size: expected at most {MAX_SIDE} pixels per side, got {text!r}")
    return width, height


def parse_encode(text: str) -> Tuple[str, Optional[int]]:
    """'jpeg:90' -> ('jpeg', 90); 'png' -> ('png', None); 'raw' -> ('raw', None)."""
    fmt, _, quality = str(text).partition(":")
    if fmt not in ENCODINGS:
        raise ValueError(f"--encode: expected jpeg[:Q], png, webp[:Q] or raw, got {text!r}")
    if quality:
        if fmt not in ("jpeg", "webp") or not quality.isdigit() or not 1 <= int(quality) <= 100:
            raise ValueError(f"--encode: expected a quality 1..100 after jpeg: or webp:, got {text!r}")
        return fmt, int(quality)
    return fmt, 90 if fmt in ("jpeg", "webp") else None


def parse_background(text: str) -> Tuple[int, int, int]:
    """A colour name, #rrggbb or 'r,g,b'."""
    try:
        if re.fullmatch(r"\d+,\d+,\d+", str(text)):
            rgb = tuple(int(v) for v in str(text).split(","))
            if all(0 <= v <= 255 for v in rgb):
                return rgb  # type: ignore[return-value]
            raise ValueError
        return ImageColor.getrgb(str(text))[:3]  # type: ignore[return-value]
    except ValueError:
        raise ValueError(f"--background: expected a colour like white, #808080 or 128,128,128, got {text!r}") from None


@dataclass(frozen=True)
class Output:
    """One encoded image: the original (aug_index 0) or an augmented copy."""

    aug_index: int
    image: bytes
    width: int
    height: int
    channels: int
    mean: List[float]
    std: List[float]


def transform_sample(data: bytes, key: str, copies: int, spec: TransformSpec) -> List[Output]:
    """Decode once; return the original and `copies` augmented copies, each encoded.

    Raises on undecodable data (the caller records the reason). Copy i depends only on
    (spec.seed, key, i).
    """
    fraction = spec.augment.min_side_fraction() if copies else 1.0
    decoded = image_ops.decode(data, spec.size if spec.draft else None, spec.resize, fraction)
    upright = image_ops.to_mode(image_ops.orient(decoded), spec.mode, spec.background, spec.depth_scale,
                                image_ops.png_significant_bits(data))
    outputs = [_finish(image_ops.resize(upright, spec.size, spec.resize, spec.resample, spec.background), 0, spec)]
    for index in range(1, copies + 1):
        rng = aug.copy_rng(spec.seed, key, index)
        image = image_ops.resize(aug.crop(upright, spec.augment, rng), spec.size, spec.resize, spec.resample,
                                 spec.background)
        outputs.append(_finish(aug.after_resize(image, spec.augment, rng, spec.background), index, spec))
    return outputs


def _finish(image: Image.Image, index: int, spec: TransformSpec) -> Output:
    mean, std = image_ops.channel_stats(image)
    return Output(index, image_ops.encode(image, spec.encode, spec.quality), image.width, image.height,
                  len(image.getbands()), mean, std)
