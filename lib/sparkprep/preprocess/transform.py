"""The preprocessing recipe (TransformSpec) and what it does to one sample's bytes.

Pure: bytes in, encoded images out. The Spark glue maps it over Arrow batches.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, List, Mapping, Optional, Tuple

from PIL import Image, ImageColor

from sparkprep.images import ops as image_ops
from sparkprep.images import probe as image_probe
from sparkprep.preprocess import augment as aug
from sparkprep.values import choice

ENCODINGS = ("jpeg", "png", "webp", "raw")
# What the recipe's fields mean. Bumped whenever the same fields would give other bytes, so a
# reader (sparkprep.online) can refuse a recipe from a newer sparkprep instead of drifting.
# 1: the original (aug_index 0) is decoded the same way whether or not the row has copies.
RECIPE_VERSION = 1
# Where the processed table's `transform` column carries the recipe (Spark field metadata).
TRANSFORM_METADATA_KEY = "sparkprep.preprocess.transform"


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
    version: int = RECIPE_VERSION  # part of the digest: another meaning of the fields is another recipe

    def as_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        """sha256 of the canonical JSON of the spec (16 hex digits): which recipe made a row."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    def record(self) -> dict:
        """The recipe as recorded on the processed table's `transform` column and in its run report."""
        return {"digest": self.digest(), **self.as_dict()}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "TransformSpec":
        """The spec a record describes; ValueError when it is from a newer sparkprep or does not
        hash to its own digest (edited, or cut)."""
        fields = dict(record)
        recorded_digest = fields.pop("digest", None)
        version = fields.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError("the recipe has no version: it was written by a sparkprep before recipes were "
                             "versioned; re-run the preprocess job to record one")
        if version > RECIPE_VERSION:
            raise ValueError(f"the recipe is version {version}, written by a newer sparkprep; this one knows "
                             f"versions up to {RECIPE_VERSION}: upgrade sparkprep")
        unknown = sorted(set(fields) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"the recipe has fields this sparkprep does not know ({', '.join(unknown)})")
        try:
            spec = cls(**{**fields, "size": tuple(fields.get("size", cls.size)),
                          "background": tuple(fields.get("background", cls.background)),
                          "augment": aug.AugmentSpec(**fields.get("augment", {}))})
        except TypeError as exc:
            raise ValueError(f"the recipe does not parse: {exc}") from None
        if recorded_digest is not None and recorded_digest != spec.digest():
            raise ValueError(f"the recipe records digest {recorded_digest}, but its fields hash to "
                             f"{spec.digest()}: it was changed after it was written")
        return spec


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


def spec_with(base: TransformSpec, values: Mapping[str, Any]) -> TransformSpec:
    """`base` with the recipe flags present in `values` (flag spellings, as strings); ValueError
    naming the flag for a bad value. The preprocess and pipeline flags and the online query
    overrides share this parser."""
    changed: dict = {}
    if "size" in values:
        changed["size"] = parse_size(values["size"])
    for name, choices in (("resize", image_ops.RESIZE_POLICIES), ("resample", tuple(image_ops.RESAMPLE)),
                          ("mode", image_ops.MODES)):
        if name in values:
            changed[name] = choice(f"--{name}", values[name], choices)
    if "background" in values:
        changed["background"] = parse_background(values["background"])
    if "encode" in values:
        changed["encode"], changed["quality"] = parse_encode(values["encode"])
    if "augment" in values:
        changed["augment"] = aug.AugmentSpec.parse(values["augment"])
    if "draft" in values:
        changed["draft"] = choice("--draft", values["draft"], ("on", "off")) == "on"
    if "depth_scale" in values:
        changed["depth_scale"] = image_ops.parse_depth_scale(values["depth_scale"])
    return replace(base, **changed)


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


def transform_sample(data: bytes, key: str, copies: int, spec: TransformSpec,
                     max_pixels: int = image_probe.DEFAULT_MAX_PIXELS,
                     decoded: Optional[Image.Image] = None) -> List[Output]:
    """The original and `copies` augmented copies of one sample's bytes, each encoded.

    Raises on undecodable data, or past max_pixels (the caller records the reason). The original
    does not depend on `copies` (it is what sparkprep.online gives for the same bytes); copy i
    depends only on (spec.seed, key, i). decoded: `decode_for(data, spec)`, when the caller
    has already made it (to hash it too); it is not modified.
    """
    upright = upright_of(decoded if decoded is not None else decode_for(data, spec, max_pixels=max_pixels), data, spec)
    outputs = [_finish(original_image(upright, spec), 0, spec)]
    if copies:
        fraction = spec.augment.min_side_fraction()
        # A random crop keeps only part of the image: where the crop needs a larger DCT scale than
        # the original's, copies of a JPEG come from a decode of their own at that scale.
        redecode = spec.draft and image_ops.drafts_differ(data, spec.size, spec.resize, fraction)
        source = decode_upright(data, spec, fraction, max_pixels) if redecode else upright
        outputs.extend(augmented_copy(source, key, index, spec) for index in range(1, copies + 1))
    return outputs


def decode_upright(data: bytes, spec: TransformSpec, min_side_fraction: float = 1.0,
                   max_pixels: int = image_probe.DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode (at reduced JPEG scale when the recipe allows), orient by EXIF, convert to the mode."""
    return upright_of(decode_for(data, spec, min_side_fraction, max_pixels), data, spec)


def decode_for(data: bytes, spec: TransformSpec, min_side_fraction: float = 1.0,
               max_pixels: int = image_probe.DEFAULT_MAX_PIXELS) -> Image.Image:
    """The first frame as stored (not yet oriented), at the reduced JPEG scale the recipe allows."""
    return image_ops.decode(data, spec.size if spec.draft else None, spec.resize, min_side_fraction, max_pixels)


def upright_of(decoded: Image.Image, data: bytes, spec: TransformSpec) -> Image.Image:
    """A decode_for image oriented by EXIF and converted to the recipe's mode."""
    return image_ops.to_mode(image_ops.orient(decoded), spec.mode, spec.background, spec.depth_scale,
                             image_ops.png_significant_bits(data))


def original_image(upright: Image.Image, spec: TransformSpec) -> Image.Image:
    """The original's pixels (aug_index 0), before encoding."""
    return image_ops.resize(upright, spec.size, spec.resize, spec.resample, spec.background)


def augmented_copy(upright: Image.Image, key: str, index: int, spec: TransformSpec) -> Output:
    """Copy `index` (1..) of `key`, from the image decode_upright gave at the augment's side fraction."""
    rng = aug.copy_rng(spec.seed, key, index)
    image = image_ops.resize(aug.crop(upright, spec.augment, rng), spec.size, spec.resize, spec.resample,
                             spec.background)
    return _finish(aug.after_resize(image, spec.augment, rng, spec.background), index, spec)


def _finish(image: Image.Image, index: int, spec: TransformSpec) -> Output:
    mean, std = image_ops.channel_stats(image)
    return Output(index, image_ops.encode(image, spec.encode, spec.quality), image.width, image.height,
                  len(image.getbands()), mean, std)
