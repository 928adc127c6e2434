"""Offline augmentation: each copy is a pure function of (seed, key, copy index).

The random generator is seeded from sha256(seed:key:index), never from Python's hash()
or the clock, so re-runs and task retries give byte-identical rows on any cluster.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from PIL import Image, ImageEnhance

OPS = ("hflip", "vflip", "rotate", "crop", "color", "noise")


@dataclass(frozen=True)
class AugmentSpec:
    """Which operations run, with their strengths; parsed from "hflip,rotate:15,crop:0.85,color:0.2"."""

    hflip: bool = False
    vflip: bool = False
    rotate: float = 0.0          # degrees: uniform in [-rotate, +rotate]
    crop: float = 1.0            # min area fraction of a random-resized crop (1 = no crop)
    color: float = 0.0           # brightness/contrast/saturation factors in [1-color, 1+color]
    noise: float = 0.0           # Gaussian noise sigma, in 0..255 pixel units

    @classmethod
    def parse(cls, text: Optional[str]) -> "AugmentSpec":
        values = {}
        for part in filter(None, (p.strip() for p in (text or "").split(","))):
            name, _, arg = part.partition(":")
            if name not in OPS:
                raise ValueError(f"--augment: expected operations from {', '.join(OPS)}, got {name!r}")
            if name in ("hflip", "vflip"):
                if arg:
                    raise ValueError(f"--augment: {name} takes no argument, got {part!r}")
                values[name] = True
                continue
            try:
                number = float(arg)
            except ValueError:
                raise ValueError(f"--augment: expected {name}:NUMBER, got {part!r}") from None
            valid = {"rotate": 0 < number <= 180, "crop": 0 < number <= 1, "color": 0 < number < 1,
                     "noise": 0 < number <= 128}[name]
            if not valid:
                raise ValueError(f"--augment: {name} value out of range, got {part!r}")
            values[name] = number
        return cls(**values)

    def __bool__(self) -> bool:
        return self != AugmentSpec()

    def min_side_fraction(self) -> float:
        """The smallest side fraction a crop may keep (aspect ratio within 3/4..4/3)."""
        return math.sqrt(self.crop * 3 / 4) if self.crop < 1 else 1.0


def copy_rng(seed: str, key: str, index: int) -> np.random.Generator:
    """The generator for copy `index` of `key`: a function of those three values only."""
    digest = hashlib.sha256(f"{seed}:{key}:{index}".encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def random_crop_box(size: Tuple[int, int], min_area: float, rng: np.random.Generator) -> Tuple[int, int, int, int]:
    """A torchvision-style random-resized-crop box: area in [min_area, 1], aspect in [3/4, 4/3]."""
    width, height = size
    for _ in range(10):
        area = width * height * rng.uniform(min_area, 1.0)
        aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        w, h = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            return left, top, left + w, top + h
    return 0, 0, width, height


def crop(image: Image.Image, spec: AugmentSpec, rng: np.random.Generator) -> Image.Image:
    """The random-resized crop (before resizing), or the image unchanged."""
    return image.crop(random_crop_box(image.size, spec.crop, rng)) if spec.crop < 1 else image


def after_resize(image: Image.Image, spec: AugmentSpec, rng: np.random.Generator,
                 background: Tuple[int, int, int]) -> Image.Image:
    """Flips, rotation, colour jitter and noise, in that fixed order."""
    # Every draw happens whether or not its op is on, so enabling one op never shifts another's values.
    flip_h, flip_v = rng.random() < 0.5, rng.random() < 0.5
    angle = rng.uniform(-1.0, 1.0) * spec.rotate
    factors = rng.uniform(1 - spec.color, 1 + spec.color, size=3)
    if spec.hflip and flip_h:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if spec.vflip and flip_v:
        image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    if spec.rotate:
        fill = background if image.mode == "RGB" else int(sum(background) / 3)
        image = image.rotate(float(angle), resample=Image.Resampling.BILINEAR, fillcolor=fill)
    if spec.color:
        image = ImageEnhance.Brightness(image).enhance(float(factors[0]))
        image = ImageEnhance.Contrast(image).enhance(float(factors[1]))
        if image.mode == "RGB":
            image = ImageEnhance.Color(image).enhance(float(factors[2]))
    if spec.noise:
        pixels = np.asarray(image, dtype=np.float32)
        noisy = pixels + rng.normal(0.0, spec.noise, pixels.shape).astype(np.float32)
        image = Image.fromarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8))
    return image
