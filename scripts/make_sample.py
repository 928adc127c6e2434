"""Generate a deterministic MedNIST-style class-folder tree, with a few bad files on purpose.

    python scripts/make_sample.py data/mednist                 # ~300 files, the demo sample
    python scripts/make_sample.py bench/mednist20k --per-class 3334 --no-bad

Files are <root>/<Class>/p<patient>_<slice>.jpeg (64x64 grayscale JPEG, like MedNIST),
so `--key-by 'group:/(p[0-9]+)_'` keeps every patient in one split. Each patient has an
anatomy of their own (body outline, tilt, organs, tissue texture) and each slice cuts it at
another depth, so scans differ the way real ones do. With the bad files (the demo sample),
one scan in 40 also gets a planted near-copy (re-encoded, resized, or brightened and filed
under another class); README.txt in the tree lists them. `--look-alike` draws the older
scans instead, which a 64-bit pHash cannot tell apart (the calibration's worst case).
Same arguments, same bytes (given the same Pillow).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageEnhance

CLASSES = ("AbdomenCT", "BreastMRI", "CXR", "ChestCT", "Hand", "HeadCT")
SLICES_PER_PATIENT = 5


def synthetic_scan(class_index: int, seed: int, size: int = 64) -> Image.Image:
    """A grayscale picture whose shape depends on the class, and noise on the seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size - 0.5
    radius = 0.15 + 0.05 * class_index + 0.03 * rng.standard_normal()
    angle = np.arctan2(y, x) * (class_index + 1)
    body = (x ** 2 + (y * (1 + 0.2 * class_index)) ** 2 < radius ** 2).astype(float)
    texture = 0.5 + 0.5 * np.sin(angle + 10 * rng.random())
    pixels = 200 * body * texture + 30 * rng.random((size, size))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def patient_scan(class_index: int, patient_seed: int, slice_: int, size: int = 64) -> Image.Image:
    """One slice of one patient: the patient's body outline, tilt, organs and tissue texture come
    from patient_seed; the slice's depth changes the outline and which organs it cuts."""
    patient, this_slice = np.random.default_rng(patient_seed), np.random.default_rng([patient_seed, slice_])
    y, x = np.mgrid[0:size, 0:size] / size - 0.5
    depth = (slice_ - 2) * 0.5 + this_slice.uniform(-0.05, 0.05)
    cx, cy = patient.uniform(-0.07, 0.07, 2)
    tilt = patient.uniform(-0.35, 0.35)
    across = (x - cx) * np.cos(tilt) + (y - cy) * np.sin(tilt)
    along = -(x - cx) * np.sin(tilt) + (y - cy) * np.cos(tilt)
    width = (0.28 + 0.02 * class_index + patient.uniform(-0.05, 0.05)) * (1 - 0.12 * abs(depth))
    height = width * (0.65 + 0.06 * class_index + patient.uniform(-0.1, 0.1))
    body = np.clip(1.2 - ((across / width) ** 2 + (along / height) ** 2), 0, 0.2) * 5
    texture = np.zeros_like(x)
    for _ in range(8):  # tissue: a few low-frequency waves of the patient's own, drifting with depth
        fx, fy = patient.uniform(-6, 6, 2)
        texture += np.cos(2 * np.pi * (fx * x + fy * y) + patient.uniform(0, 2 * np.pi)
                          + 1.5 * depth * patient.uniform(-1, 1)) / 8
    pixels = body * (0.55 + 0.25 * texture)
    for _ in range(patient.integers(4, 8)):  # organs: ellipsoids the slice cuts at its depth
        ox, oy = patient.uniform(-0.6, 0.6, 2) * np.array([width, height]) + np.array([cx, cy])
        oz, radius, reach, stretch = patient.uniform(-1, 1), patient.uniform(0.05, 0.14), \
            patient.uniform(0.3, 0.8), patient.uniform(0.6, 1.6)
        level = patient.uniform(0.1, 1.0)
        cut = 1 - ((depth - oz) / reach) ** 2
        if cut > 0:
            r = radius * np.sqrt(cut)
            inside = ((x - ox) / r) ** 2 + ((y - oy) * stretch / r) ** 2 < 1
            pixels = np.where(inside & (body > 0), level, pixels)
    pixels = pixels * (150 + 40 * patient.random()) + this_slice.normal(0, 6, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


PLANT_EVERY = 40


def planted_copy(image: Image.Image, kind: int) -> bytes:
    """A near-copy: re-encoded at quality 60, resized to 80%, or brightened by 10%."""
    if kind == 0:
        return jpeg_bytes(image, quality=60)
    if kind == 1:
        return jpeg_bytes(image.resize((image.width * 4 // 5, image.height * 4 // 5), Image.Resampling.BICUBIC))
    return jpeg_bytes(ImageEnhance.Brightness(image).enhance(1.1))


def jpeg_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **{"quality": 90, **kwargs})
    return buffer.getvalue()


def write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


def make_tree(root: str, per_class: int, with_bad: bool, look_alike: bool = False) -> int:
    """Write the tree; returns how many files were written. With the bad files, one scan in
    PLANT_EVERY gets a planted near-copy, listed in README.txt."""
    written, planted = 0, []
    for ci, name in enumerate(CLASSES):
        for i in range(per_class):
            patient, slice_ = divmod(i, SLICES_PER_PATIENT)
            image = synthetic_scan(ci, ci * 1_000_003 + i) if look_alike else \
                patient_scan(ci, ci * 1_000_003 + patient, slice_)
            rel = f"{name}/p{ci}{patient:05d}_{slice_:02d}.jpeg"
            write(os.path.join(root, rel), jpeg_bytes(image))
            written += 1
            number = ci * per_class + i
            if with_bad and number % PLANT_EVERY == PLANT_EVERY // 2:
                kind = number // PLANT_EVERY % 3
                folder = CLASSES[(ci + 1) % len(CLASSES)] if kind == 2 else name  # brightened: filed elsewhere
                copy = f"{folder}/p{ci}{patient:05d}_{slice_:02d}_copy{kind}.jpeg"
                write(os.path.join(root, copy), planted_copy(image, kind))
                planted.append((rel, copy))
                written += 1
    if with_bad:
        written += add_special_files(root, planted)
    return written


def planted_pairs(root: str) -> List[Tuple[str, str]]:
    """The (original, copy) relative paths README.txt lists."""
    with open(os.path.join(root, "README.txt"), encoding="utf-8") as handle:
        return [tuple(line.strip().split(" ", 1)[1].split(" -> ")) for line in handle if line.startswith("planted ")]


def add_special_files(root: str, planted: Sequence[Tuple[str, str]] = ()) -> int:
    """Odd-but-valid images, bad files, duplicates and files that are not inputs at all."""
    # the exact duplicates copy a scan of the tree (AbdomenCT/p000001_02, a group of three with it)
    scan = os.path.join(root, "AbdomenCT", "p000001_02.jpeg")
    good = open(scan, "rb").read() if os.path.exists(scan) else jpeg_bytes(synthetic_scan(0, 7))
    rgb = Image.merge("RGB", [synthetic_scan(c, 11 + c) for c in range(3)])
    files = {
        # quarantined: each gets a status and a reason
        "CXR/p_bad_truncated.jpeg": good[: int(len(good) * 0.6)],   # header fine, body cut
        "Hand/p_bad_empty.jpeg": b"",                                 # binaryFile drops these
        "HeadCT/p_bad_html.jpg": b"<!doctype html><html><body>404 Not Found</body></html>\n",
        "ChestCT/p_bad_bomb.png": _png(Image.new("1", (10000, 10000))),  # 1e8 pixels in ~12 KB
        # exact duplicates: one under the same label, one under a conflicting label
        "AbdomenCT/p_dup_same.jpeg": good,
        "BreastMRI/p_dup_conflict.jpeg": good,
        # valid but unusual: these must pass ingest and be handled by preprocessing
        "CXR/p_cmyk.jpg": jpeg_bytes(rgb.convert("CMYK")),
        "CXR/p_16bit.png": _png(Image.fromarray((np.asarray(synthetic_scan(2, 5), np.uint16) * 257))),
        "Hand/p_palette_alpha.png": _png(_palette_with_transparency()),
        "Hand/p_exif_rotated.JPG": jpeg_bytes(rgb.resize((80, 48)), exif=_orientation_exif(6)),
        "HeadCT/p_animated.gif": _gif([synthetic_scan(5, s) for s in range(3)]),
        "HeadCT/p é ü space.jpeg": jpeg_bytes(synthetic_scan(5, 99)),
        # not inputs: reported as skipped, never rows
        "README.txt": ("sample dataset generated by scripts/make_sample.py\n" + "".join(
            f"planted {original} -> {copy}\n" for original, copy in planted)).encode(),
        "CXR/.DS_Store": b"\x00\x00\x00\x01Bud1",
    }
    for rel, data in files.items():
        write(os.path.join(root, rel), data)
    return len(files)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _gif(frames) -> bytes:
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def _palette_with_transparency() -> Image.Image:
    image = Image.new("P", (32, 32), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    image.paste(1, (8, 8, 24, 24))
    image.info["transparency"] = 0
    return image


def _orientation_exif(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--per-class", type=int, default=48)
    parser.add_argument("--no-bad", action="store_true", help="only clean images (and no planted copies)")
    parser.add_argument("--look-alike", action="store_true",
                        help="the older scans, which a 64-bit pHash cannot tell apart")
    parser.add_argument("--force", action="store_true", help="replace an existing tree")
    args = parser.parse_args(argv)
    if os.path.exists(args.root):
        if not args.force:
            print(f"{args.root} exists; keeping it (use --force to regenerate)")
            return 0
        shutil.rmtree(args.root)
    count = make_tree(args.root, args.per_class, not args.no_bad, args.look_alike)
    print(f"wrote {count} files under {args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
