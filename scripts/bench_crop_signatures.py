"""Issue 29's measurement: which crop-robust signature to build, on real photos; and the crop search's cost.

    .venv/bin/pip install -r requirements-bench.txt      # scikit-image, for its photos
    .venv/bin/python scripts/bench_crop_signatures.py --reduced [--far 6] [--seed 29]
    .venv/bin/python scripts/bench_crop_signatures.py --search 20000,100000   # the search alone, uniform hashes
    .venv/bin/python scripts/bench_crop_signatures.py --calibration 2000,100000  # thresholds on scans and photos
    .venv/bin/python scripts/bench_crop_signatures.py --spark-search 20000,100000  # the search in Spark, local[2]
    .venv/bin/python scripts/bench_crop_signatures.py --audit   # the planted set through the audit, both signatures
    .venv/bin/python scripts/bench_crop_signatures.py --split 1,4  # the split job's time per image, both signatures
    .venv/bin/python scripts/bench_crop_signatures.py --audit-cost 20000,100000  # the driver's audit, both signatures

The planted set: scikit-image's photos (make_planted.py's BASES and the two of scikit-learn), each with
the copies issue 29 names, from its original:
  corner20 / corner25  one corner's 20% / 25% of the area cut away (a random corner; both sides alike)
  shift8               8% cut off two adjacent sides, re-scaled to the original size
  trim20               20% of the width (or height) cut off one side
and the copies the audit finds today (make_planted.near_copies: re-encodes, resizes, crops up to 10%,
brightness), which must not be lost. Distinct images: the other photos, and `--far` crops of each photo
(half its width and height, placed at random) that overlap each other by less than a quarter of their
area: different images of one photo, as the issue asks.

Signatures, each from the image's own greyscale (phash-v1's way: sparkprep.images.phash.phash):
  phash        the 64-bit pHash of the whole image (today's)
  windows-N    the whole image's pHash and N sub-window pHashes; two images match when the whole of
               either is within the threshold of any window (or the whole) of the other
  built        the one chosen and built: sparkprep.images.phash.window_hashes (windows-16, each window
               resized by BILINEAR, not LANCZOS, for half the cost); its pairs are also searched by
               sparkprep.audit.crops.crop_matches, which must find every one of them
Printed per signature and threshold: recall on each kind of copy (original against copy), precision over
every pair it flags, and the pairs of distinct images it flags; and the hashes' time per image (with
--reduced, from phash-v2's box-reduced greyscale, as the pipeline's transform would hash them).

First figures (2026-12-07, --reduced, 22 photos, 82 distinct images, 286 copies): today's pHash at 8 bits
finds none of the 20-25% corner crops, 5% of the shifted crops and none of the trims. The whole image's
hash matched against 16 windows (corners at 0.95, 0.92 and 0.88 of each side, four sides at 0.8) at 8 bits:
corner20 0.95, corner25 1.00, shift8 1.00, trim20 1.00, every kind found today as before or better
(crop10corner 0.18 -> 1.00), and no pair of distinct images flagged (precision 1.000; 9 such pairs at 10
bits). Cost: 16 window hashes one by one take 2.2-2.5 ms per photo on the reduced greyscale; batched (one
DCT matrix product over the 16 windows, a bilinear or box resize per window) 0.6-0.7 ms. Not yet measured:
look-alike data (scans), the calibrated threshold, the banding search's cost with 17 keys a row.

Second figures (2026-12-08): the built signature (16 windows, BILINEAR) gives the same recall at 8 bits as
LANCZOS windows-16 (corner20 0.95, the other crop kinds 1.00, precision 1.000, 8 distinct pairs at 10 bits)
at half the cost; crop_matches finds exactly the brute-force pairs at 6, 8 and 10 bits. --search on uniform
hashes: 0.2 s at 2,000 images, 1.9 s at 20,000, 40.6 s at 100,000 (numpy, on one core). --spark-search: 10.5 s,
28.8 s and 636.8 s (local[2]; the pHash search takes 38.9 s at 100,000).
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import sys
import time
from collections import Counter
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from make_planted import BASES, near_copies, photo  # noqa: E402

from sparkprep.audit.crops import crop_layout, crop_matches  # noqa: E402
from sparkprep.images.phash import hamming, phash, reduced_grey, window_hashes  # noqa: E402

CROP_KINDS = ("corner20", "corner25", "shift8", "trim20")
# Sub-windows as (left, top, right, bottom) fractions of the image.


def corners(scale: float) -> Dict[str, Tuple[float, float, float, float]]:
    """The four corner-anchored windows of this side length (a fraction of each side)."""
    return {f"tl{scale}": (0, 0, scale, scale), f"tr{scale}": (1 - scale, 0, 1, scale),
            f"bl{scale}": (0, 1 - scale, scale, 1), f"br{scale}": (1 - scale, 1 - scale, 1, 1)}


SIDES = {"left": (0, 0, 0.8, 1), "right": (0.2, 0, 1, 1), "top": (0, 0, 1, 0.8), "bottom": (0, 0.2, 1, 1)}
WINDOWS = {
    "windows-8 (corners 0.9, sides 0.8)": {**corners(0.9), **SIDES},
    "windows-8 (corners 0.88, sides 0.8)": {**corners(0.88), **SIDES},
    "windows-12 (corners 0.95 and 0.88, sides 0.8)": {**corners(0.95), **corners(0.88), **SIDES},
    "windows-16 (corners 0.95, 0.92 and 0.88, sides 0.8)": {**corners(0.95), **corners(0.92), **corners(0.88),
                                                            **SIDES},
}


def jpeg(image: Image.Image, quality: int = 90) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def cut(image: Image.Image, box: Tuple[float, float, float, float]) -> Image.Image:
    width, height = image.size
    left, top, right, bottom = box
    return image.crop((round(left * width), round(top * height), round(right * width), round(bottom * height)))


def crop_copies(image: Image.Image, rng: np.random.Generator) -> Dict[str, Image.Image]:
    """Issue 29's copies of one photo, by kind."""
    copies = {}
    for kind, area in (("corner20", 0.20), ("corner25", 0.25)):
        keep = (1 - area) ** 0.5
        corner = int(rng.integers(4))
        left, top = (0, 1 - keep)[corner % 2], (0, 1 - keep)[corner // 2]
        copies[kind] = cut(image, (left, top, left + keep, top + keep))
    corner = int(rng.integers(4))
    left, top = (0, 0.08)[corner % 2], (0, 0.08)[corner // 2]
    copies["shift8"] = cut(image, (left, top, left + 0.92, top + 0.92)).resize(image.size, Image.Resampling.BICUBIC)
    side = int(rng.integers(4))
    copies["trim20"] = cut(image, ((0, 0, 0.8, 1), (0.2, 0, 1, 1), (0, 0, 1, 0.8), (0, 0.2, 1, 1))[side])
    return {kind: jpeg(copy) for kind, copy in copies.items()}


def far_crops(image: Image.Image, count: int, rng: np.random.Generator) -> List[Image.Image]:
    """Up to `count` crops of half the width and height, each overlapping every other by < 1/4 of its area."""
    boxes: List[Tuple[float, float]] = []
    for _ in range(200):
        x, y = float(rng.uniform(0, 0.5)), float(rng.uniform(0, 0.5))
        if all(max(0.0, 0.5 - abs(x - a)) * max(0.0, 0.5 - abs(y - b)) < 0.25 * 0.25 for a, b in boxes):
            boxes.append((x, y))
        if len(boxes) == count:
            break
    return [jpeg(cut(image, (x, y, x + 0.5, y + 0.5))) for x, y in boxes]


def planted(far: int, seed: int) -> Tuple[List[Tuple[str, str, Image.Image]], List[str]]:
    """[(group, kind, image)]: each photo's original and copies share a group; far crops are groups of their
    own; and the kinds of copy."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    sources = [(name, photo(name)) for name in BASES]
    sources += [(f"sklearn{i}", Image.fromarray(a)) for i, a in enumerate(load_sample_images().images)]
    items, kinds = [], []
    for name, image in sources:
        items.append((name, "original", jpeg(image)))
        today = {k: Image.open(io.BytesIO(v)) for k, v in near_copies(image).items() if k != "crop20"}
        for kind, copy in {**today, **crop_copies(image, rng)}.items():
            items.append((name, kind, copy))
            if kind not in kinds:
                kinds.append(kind)
        for i, piece in enumerate(far_crops(image, far, rng)):
            items.append((f"{name}-far{i}", "original", piece))
    return items, kinds


def signature(image: Image.Image, windows: Dict[str, Tuple[float, float, float, float]], reduced: bool
              ) -> Tuple[int, List[int]]:
    """(the whole image's pHash, its windows' pHashes); reduced: from phash-v2's box-reduced greyscale (a shorter
    side of 64-127 pixels, what the pipeline's transform hashes), else from the whole greyscale."""
    grey = reduced_grey(image) if reduced else image.convert("L")
    if windows is BUILT:
        return phash(grey), window_hashes(grey)
    return phash(grey), [phash(cut(grey, box)) for box in windows.values()]


BUILT: Dict[str, Tuple[float, float, float, float]] = {}  # the built signature: window_hashes decides its windows


def windows_ms(items: List[Tuple[str, str, Image.Image]], reduced: bool, rounds: int = 20) -> float:
    """The median time of window_hashes alone per image (its greyscale made beforehand)."""
    times = []
    for _, _, image in items:
        grey = reduced_grey(image) if reduced else image.convert("L")
        start = time.perf_counter()
        for _ in range(rounds):
            window_hashes(grey)
        times.append((time.perf_counter() - start) / rounds * 1e3)
    return float(np.median(times))


def searched(sigs: List[Tuple[int, List[int]]], threshold: int) -> set:
    """The unordered image pairs crop_matches finds, whole pHash against windows, or whole against whole."""
    wholes = np.array([s[0] for s in sigs], np.int64)
    found = crop_matches(wholes, np.array([s[1] for s in sigs], np.int64), crop_layout(threshold, len(sigs), 500),
                         threshold, 500)
    pairs = {(min(i, j), max(i, j)) for i, j in zip(found.whole.tolist(), found.other.tolist())}
    return pairs | {(i, j) for i, j in itertools.combinations(range(len(sigs)), 2)
                    if hamming(int(wholes[i]), int(wholes[j])) <= threshold}


def search_cost(sizes: List[int], threshold: int) -> None:
    """crop_matches' time on uniform random hashes (16 windows an image), the layout crop_layout picks."""
    rng = np.random.default_rng(29)
    for n in sizes:
        wholes = rng.integers(-2 ** 63, 2 ** 63 - 1, n, dtype=np.int64)
        windows = rng.integers(-2 ** 63, 2 ** 63 - 1, (n, 16), dtype=np.int64)
        band = crop_layout(threshold, n, 500)
        start = time.perf_counter()
        found = crop_matches(wholes, windows, band, threshold, 500)
        print(f"{n:>8,d} images: {time.perf_counter() - start:6.1f} s, {len(found.whole)} matches, "
              f"{found.crowded_keys} crowded keys ({band.describe()})")


def distance(a: Tuple[int, List[int]], b: Tuple[int, List[int]]) -> int:
    """The least distance between the whole of either and the whole or any window of the other."""
    best = hamming(a[0], b[0])
    for w in b[1]:
        best = min(best, hamming(a[0], w))
    for w in a[1]:
        best = min(best, hamming(b[0], w))
    return best


def spark_search_cost(sizes: List[int], threshold: int) -> None:
    """sparkprep.audit.spark.crops.crop_search's time in a local[2] session (as bench_near_duplicates.py times the
    pHash search) on uniform hashes made in Spark: each image's whole and 16 windows are xxhash64 of its id."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import functions as F

    from sparkprep.audit.spark.crops import crop_search
    from sparkprep.spark.session import build_session

    spark = build_session("bench-crops", {"spark.master": "local[2]", "spark.sql.shuffle.partitions": "8",
                                          "spark.ui.showConsoleProgress": "false", "spark.driver.memory": "4g"})
    spark.sparkContext.setLogLevel("ERROR")
    for n in sizes:
        images = spark.range(n).select(F.col("id").cast("string").alias("id"), F.xxhash64("id").alias("whole"),
                                       F.array(*[F.xxhash64("id", F.lit(w)) for w in range(16)]).alias("windows"))
        images = images.cache()
        images.count()
        band = crop_layout(threshold, n, 500)
        start = time.perf_counter()
        found = crop_search(images, band, threshold, 500)
        matches = found.matches.count()
        print(f"{n:>8,d} images in Spark: {time.perf_counter() - start:6.1f} s, {matches} matches, "
              f"{found.crowded_keys} crowded keys ({band.describe()})")
        found.release()
        images.unpersist()
    spark.stop()


def calibration(sizes: List[int], far: int, seed: int) -> None:
    """The calibrated crop threshold (sparkprep.audit.crops.crop_calibration) beside pHash's, for tables of these
    sizes sampled like: the demo's scans and the older look-alike scans (bench_near_duplicates.scan_files, 2,000
    rows, 1% copies, labelled by modality), the planted photos' distinct images (one label), and uniform hashes."""
    from bench_near_duplicates import scan_files

    from sparkprep.audit.calibrate import calibrate
    from sparkprep.audit.crops import crop_calibration
    from sparkprep.images.phash import DRAFT_SIDE

    def own_decode(data: bytes) -> Tuple[int, List[int]]:  # phash-v1's greyscale, as ingest hashes a file
        image = Image.open(io.BytesIO(data))
        image.draft("L", (DRAFT_SIDE, DRAFT_SIDE))
        grey = image.convert("L")
        return phash(grey), window_hashes(grey)

    rng = np.random.default_rng(seed)
    sets = []
    for anatomy, name in ((True, "the demo's scans"), (False, "look-alike scans")):
        datas, labels, _ = scan_files(2000, 0.01, anatomy=anatomy)
        sets.append((name, [own_decode(d) for d in datas], labels))
    items, _ = planted(far, seed)
    sets.append(("the planted photos' distinct images", [signature(image, BUILT, True) for _, kind, image in items
                                                         if kind == "original"], None))
    sets.append(("uniform random hashes", list(zip(rng.integers(-2 ** 63, 2 ** 63 - 1, 2500).tolist(),
                                                   rng.integers(-2 ** 63, 2 ** 63 - 1, (2500, 16)).tolist())), None))
    print("| data | sampled rows | table rows | pHash threshold | crop threshold "
          "| crop: expected chance pairs at 2 / 6 / 8 bits |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, sigs, labels in sets:
        order = rng.permutation(len(sigs))  # a uniform sample's order, as the audit's
        wholes, windows = [sigs[i][0] for i in order], [sigs[i][1] for i in order]
        labels = [labels[i] for i in order] if labels else [None] * len(sigs)
        for size in sizes:
            per_label = {k: v * size / len(labels) for k, v in Counter(labels).items()}
            crop = crop_calibration(wholes, windows, labels, per_label)
            whole = calibrate(np.array(wholes, np.int64), labels, per_label)
            chance = " / ".join(f"{crop.expected[t]:.3g}" for t in (2, 6, 8))
            print(f"| {name} | {crop.sampled_rows:,} | {size:,} | {whole.threshold} | {crop.threshold} | {chance} |")


def through_the_audit(far: int, seed: int) -> None:
    """The planted set as the jobs audit it: each image's JPEG bytes hashed as the audit reads an ingested table
    (phash-v1's phashes_of_bytes, and windows_of_bytes for the crop search), spread over train/val/test at random,
    and audited by sparkprep.audit.local with the calibrated thresholds, with and without the crop search. Recall:
    a copy in its original's cluster (what --near-duplicates merge keys by); strays: pairs of distinct images
    that a cluster holds (what merge would wrongly keep together); and the pairs the audit counts."""
    from sparkprep.audit.local import HashedRow, audit
    from sparkprep.images.phash import phashes_of_bytes, windows_of_bytes

    rng = np.random.default_rng(seed)
    items, kinds = planted(far, seed)
    rows, start = [], time.perf_counter()
    for i, (group, kind, image) in enumerate(items):
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, "JPEG", quality=95)
        data = buffer.getvalue()
        whole, long, direction = phashes_of_bytes(data)
        rows.append(HashedRow(str(i), str(rng.choice(["train", "val", "test"], p=[0.8, 0.1, 0.1])), None,
                              f"{group}/{kind}/{i}", whole, int(rng.integers(0, 2 ** 62)), long, direction.tolist(),
                              windows_of_bytes(data)))
    hashed = (time.perf_counter() - start) / len(rows) * 1e3
    print(f"{len(rows)} images ({sum(1 for _, k, _ in items if k == 'original')} distinct); their hashes and windows "
          f"from the bytes: {hashed:.2f} ms per image")
    print("| signature | pHash / crop threshold | " + " | ".join(kinds) + " | strays (distinct pairs in one cluster) "
          "| pairs counted | audit seconds |")
    print("| --- | --- | " + " | ".join("---:" for _ in kinds) + " | ---: | ---: | ---: |")
    for crops in (False, True):
        start = time.perf_counter()
        done = audit(rows, None, 500, True, 10 ** 6, ["test", "train", "val"], crops=crops)
        seconds = time.perf_counter() - start
        cluster = {key: c for key, (c, _) in done.key_clusters.items()}
        of = {i: cluster.get(str(i), f"alone{i}") for i in range(len(rows))}
        originals = {group: i for i, (group, kind, _) in enumerate(items) if kind == "original"}
        recall = {k: np.mean([of[i] == of[originals[g]] for i, (g, kind, _) in enumerate(items) if kind == k])
                  for k in kinds}
        members: Dict[str, List[int]] = {}
        for i, c in of.items():
            members.setdefault(c, []).append(i)
        strays = sum(1 for m in members.values() for a, b in itertools.combinations(m, 2)
                     if items[a][0] != items[b][0])
        crop = done.stats.get("crops", {}).get("threshold", "-")
        pairs = done.stats["pairs_within_splits"] + done.stats["pairs_across_splits"]
        print(f"| {'crop-robust' if crops else 'phash'} | {done.stats['threshold']} / {crop} | "
              + " | ".join(f"{recall[k]:.2f}" for k in kinds) + f" | {strays} | {pairs} | {seconds:.2f} |")


TURNS = (None, Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.ROTATE_180,
         Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270, Image.Transpose.TRANSPOSE, Image.Transpose.TRANSVERSE)


def split_cost(copies: List[int], seed: int) -> None:
    """The split job's wall time with --near-signature phash and crop-robust, side by side, on the planted set
    written as JPEG files `copies` times over for two values (two table sizes; copy r of every image is turned or
    mirrored as the r-th of TURNS, so its hashes differ as much as other images' do): the marginal seconds per
    image between the sizes, so that JVM start-up cancels, and their ratio."""
    import json
    import tempfile

    from local_submit import timed_spark_submit

    items, _ = planted(6, seed)
    with tempfile.TemporaryDirectory(prefix="crop-split-") as tmp:
        sizes, walls = [], {"phash": [], "crop-robust": []}
        for count in copies:
            folder = os.path.join(tmp, f"copies{count}")
            os.makedirs(folder)
            for r in range(count):
                for i, (group, kind, image) in enumerate(items):
                    turned = image.transpose(TURNS[r]) if TURNS[r] is not None else image
                    turned.convert("RGB").save(os.path.join(folder, f"{group}-{kind}-{i}-{r}.jpg"), "JPEG",
                                               quality=95)
            sizes.append(count * len(items))
            for signature_name in walls:  # side by side, at each size
                out = os.path.join(tmp, f"out-{count}-{signature_name}")
                walls[signature_name].append(timed_spark_submit(
                    "split", "--input", folder, "--output", out, "--near-signature", signature_name))
                audit = json.load(open(os.path.join(out, "_run_report.json")))["near_duplicates"]
                print(f"{sizes[-1]} images, {signature_name}: {walls[signature_name][-1]:.1f} s; the audit's search "
                      f"{audit['seconds']:.1f} s; crop threshold {audit.get('crops', {}).get('threshold', '-')}")
        marginal = {name: (w[1] - w[0]) / (sizes[1] - sizes[0]) * 1e3 for name, w in walls.items()}
        print(f"marginal ms per image, {sizes[0]} -> {sizes[1]} images: phash {marginal['phash']:.2f}, crop-robust "
              f"{marginal['crop-robust']:.2f}: {marginal['crop-robust'] / marginal['phash']:.2f}x")


def audit_cost(sizes: List[int], seed: int) -> None:
    """The driver's audit (sparkprep.audit.local, what a table of up to CROP_MAX_ROWS rows gets with
    --near-signature crop-robust) on uniform random hashes and windows, with and without the crop search: its
    wall time, and the thresholds and layout it chose."""
    from sparkprep.audit.local import HashedRow, audit

    rng = np.random.default_rng(seed)
    print("| hashed rows | phash: seconds | crop-robust: seconds | crop threshold | crop layout | crop pairs |")
    print("| ---: | ---: | ---: | ---: | --- | ---: |")
    for n in sizes:
        wholes = rng.integers(-2 ** 63, 2 ** 63 - 1, n).tolist()
        windows = rng.integers(-2 ** 63, 2 ** 63 - 1, (n, 16)).tolist()
        splits = rng.choice(["train", "val", "test"], n).tolist()
        rows = [HashedRow(f"k{i}", splits[i], None, f"/p/{i}", wholes[i], int(rng.integers(0, 2 ** 62)), None, None,
                          windows[i]) for i in range(n)]
        seconds = []
        for crops in (False, True):
            start = time.perf_counter()
            done = audit(rows, None, 500, True, 10 ** 6, ["test", "train", "val"], crops=crops)
            seconds.append(time.perf_counter() - start)
        crop = done.stats["crops"]
        print(f"| {n:,} | {seconds[0]:.1f} | {seconds[1]:.1f} | {crop['threshold']} | {crop.get('layout', '-')} | "
              f"{crop.get('hash_pairs', 0)} |")


def main(argv) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--far", type=int, default=6)
    parser.add_argument("--seed", type=int, default=29)
    parser.add_argument("--thresholds", default="4,6,8,10,12")
    parser.add_argument("--reduced", action="store_true", help="hash phash-v2's reduced greyscale (the pipeline's)")
    parser.add_argument("--search", help="sizes: time the crop search alone on uniform hashes, e.g. 20000,100000")
    parser.add_argument("--calibration", help="table sizes: the calibrated crop threshold on scans and photos")
    parser.add_argument("--spark-search", help="sizes: time the crop search in Spark (local[2]), e.g. 20000,100000")
    parser.add_argument("--audit", action="store_true", help="the planted set through the audit, with and without "
                                                             "the crop search")
    parser.add_argument("--split", help="two numbers of copies of the planted set: the split job's marginal time "
                                        "per image with each signature, e.g. 1,4")
    parser.add_argument("--audit-cost", help="sizes: the driver's audit with and without the crop search, on uniform "
                                             "hashes, e.g. 20000,100000")
    args = parser.parse_args(argv)
    if args.audit_cost:
        audit_cost([int(n) for n in args.audit_cost.split(",")], args.seed)
        return 0
    if args.split:
        split_cost([int(n) for n in args.split.split(",")], args.seed)
        return 0
    if args.audit:
        through_the_audit(args.far, args.seed)
        return 0
    if args.spark_search:
        spark_search_cost([int(n) for n in args.spark_search.split(",")], 8)
        return 0
    if args.calibration:
        calibration([int(n) for n in args.calibration.split(",")], args.far, args.seed)
        return 0
    if args.search:
        search_cost([int(n) for n in args.search.split(",")], 8)
        return 0
    items, kinds = planted(args.far, args.seed)
    thresholds = [int(t) for t in args.thresholds.split(",")]
    print(f"{len(items)} images: {sum(1 for _, k, _ in items if k == 'original')} distinct, "
          f"{sum(1 for _, k, _ in items if k != 'original')} copies")
    for name, windows in {"phash": {}, **WINDOWS, "built (window_hashes)": BUILT}.items():
        start = time.perf_counter()
        sigs = [signature(image, windows, args.reduced) for _, _, image in items]
        ms = (time.perf_counter() - start) / len(items) * 1e3
        originals = {group: s for (group, kind, _), s in zip(items, sigs) if kind == "original"}
        per_kind = {k: [distance(originals[g], s) for (g, kind, _), s in zip(items, sigs) if kind == k]
                    for k in kinds}
        flagged_true = {t: 0 for t in thresholds}
        flagged_false = {t: 0 for t in thresholds}
        for (i, a), (j, b) in itertools.combinations(enumerate(sigs), 2):
            d = distance(a, b)
            same = items[i][0] == items[j][0]
            for t in thresholds:
                if d <= t:
                    (flagged_true if same else flagged_false)[t] += 1
        count = len(sigs[0][1])
        print(f"\n{name} ({count} windows, {ms:.2f} ms per image, its hashes only)")
        if windows is BUILT:  # the windows alone, on the greyscale the pipeline's transform already reduced
            print(f"  the windows alone: {windows_ms(items, args.reduced):.2f} ms per image (median over the images)")
        print("  threshold " + " ".join(f"{k:>9s}" for k in kinds) + "  precision  distinct pairs flagged")
        for t in thresholds:
            recalls = " ".join(f"{np.mean(np.array(per_kind[k]) <= t):9.2f}" for k in kinds)
            flagged = flagged_true[t] + flagged_false[t]
            precision = flagged_true[t] / flagged if flagged else 1.0
            print(f"  {t:9d} {recalls}  {precision:9.3f}  {flagged_false[t]}")
            if windows is BUILT:  # the search finds exactly the pairs the brute force above counted
                brute = {(i, j) for (i, a), (j, b) in itertools.combinations(enumerate(sigs), 2) if distance(a, b) <= t}
                assert searched(sigs, t) == brute, f"the crop search missed pairs at {t} bits"
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
