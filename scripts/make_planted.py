"""A planted near-duplicate set from real photos (scikit-image's sample images), for tests and benchmarks.

Every base photo is written once as a JPEG, plus its near-copies in the same folder:
re-encoded at other JPEG qualities, resized, cropped by at most 10% of the area, brightness
+-10%; and one 20% crop, past that bound, whose recall is measured but not required.
Negatives are the other base photos (textures that look alike among them) and the four
quadrants of three large photos (different crops of one photo).

    python scripts/make_planted.py OUT_DIR      # writes OUT_DIR/<label>/<group>__<variant>.jpg

A file's group is the part of its name before "__": two files are a true near-duplicate pair
exactly when their groups are equal.
"""

from __future__ import annotations

import io
import os
import sys
from typing import Dict, List

import numpy as np
from PIL import Image, ImageEnhance

BASES = ("astronaut", "camera", "chelsea", "clock", "coffee", "coins", "hubble_deep_field", "immunohistochemistry",
         "moon", "page", "retina", "rocket", "text", "stereo_motorcycle", "brick", "grass", "gravel", "colorwheel",
         "horse", "microaneurysms")
QUADRANT_SOURCES = ("retina", "hubble_deep_field", "stereo_motorcycle")


def photo(name: str) -> Image.Image:
    """One of scikit-image's bundled sample images, as an 8-bit PIL image."""
    import skimage.data

    array = getattr(skimage.data, name)()
    if isinstance(array, tuple):  # stereo pairs: the left image
        array = array[0]
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    image = Image.fromarray(array)
    return image.convert("RGB") if image.mode not in ("L", "RGB") else image


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def crop(image: Image.Image, area: float, anchor: str = "center") -> Image.Image:
    """Cut `area` (a fraction) of the image away, the same share of each side's length (center: evenly
    on both ends; corner: all from the top left). area 0.10 keeps 94.9% of the width and height."""
    width, height = image.size
    keep = (1.0 - area) ** 0.5
    dx, dy = round(width * (1 - keep)), round(height * (1 - keep))
    if anchor == "corner":
        return image.crop((dx, dy, width, height))
    return image.crop((dx // 2, dy // 2, width - (dx - dx // 2), height - (dy - dy // 2)))


def near_copies(image: Image.Image) -> Dict[str, bytes]:
    """The planted positives of one photo, by variant name."""
    width, height = image.size
    return {
        "q30": jpeg(image, 30),
        "q60": jpeg(image, 60),
        "half": jpeg(image.resize((width // 2, height // 2), Image.Resampling.LANCZOS)),
        "x1.5": jpeg(image.resize((width * 3 // 2, height * 3 // 2), Image.Resampling.BICUBIC)),
        "crop5": jpeg(crop(image, 0.05)),
        "crop10": jpeg(crop(image, 0.10)),
        "crop10corner": jpeg(crop(image, 0.10, "corner")),
        "crop20": jpeg(crop(image, 0.20)),  # past the planted bound: measured, not required
        "bright+10": jpeg(ImageEnhance.Brightness(image).enhance(1.1)),
        "bright-10": jpeg(ImageEnhance.Brightness(image).enhance(0.9)),
    }


def planted_files() -> Dict[str, bytes]:
    """{relative path: bytes} of the whole planted set."""
    files: Dict[str, bytes] = {}
    for i, name in enumerate(BASES):
        image = photo(name)
        label = f"class{i % 4}"
        files[f"{label}/{name}__original.jpg"] = jpeg(image)
        for variant, data in near_copies(image).items():
            files[f"{label}/{name}__{variant}.jpg"] = data
    for name in QUADRANT_SOURCES:
        image = photo(name)
        width, height = image.size
        for q, (x, y) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1))):
            box = (x * width // 2, y * height // 2, (x + 1) * width // 2, (y + 1) * height // 2)
            files[f"quadrants/{name}-q{q}__original.jpg"] = jpeg(image.crop(box))
    return files


def group_of(path: str) -> str:
    """The planted group of a file: its name before '__'."""
    return os.path.basename(path).split("__", 1)[0]


def true_pairs(paths: List[str]) -> set:
    """Every unordered pair of paths from the same group."""
    by_group: Dict[str, List[str]] = {}
    for path in paths:
        by_group.setdefault(group_of(path), []).append(path)
    return {tuple(sorted((a, b))) for members in by_group.values() for a in members for b in members if a < b}


def write_planted(root: str) -> List[str]:
    """Write the planted set under root; returns the relative paths."""
    files = planted_files()
    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as out:
            out.write(data)
    return sorted(files)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_planted.py OUT_DIR")
    print(f"{len(write_planted(sys.argv[1]))} files in {sys.argv[1]}")
