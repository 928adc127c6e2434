"""Peak memory of the pipeline job on 1-megapixel against 20-megapixel JPEGs: it must stay flat.

    .venv/bin/python scripts/bench_memory.py [--images 60]

Two corpora of the same number of photos (scikit-image's bundled pictures, scaled up),
one at ~1 MP and one at ~20 MP, each run through `spark-submit jobs/pipeline.py` on
local[2]. While each runs, every process under spark-submit is polled for its peak
resident set (VmHWM in /proc): the JVM (driver and executor in local mode) and the Python
workers. Prints both peaks per corpus and the ratio 20 MP / 1 MP (goal: at most 2).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import local_submit
import numpy as np
from PIL import Image

SIZES = {"1mp": (1224, 816), "20mp": (5472, 3648)}


def make_corpus(root: pathlib.Path, count: int, size) -> None:
    from skimage import data

    photos = [Image.fromarray(getattr(data, name)()).convert("RGB") for name in ("astronaut", "coffee", "chelsea")]
    rng = np.random.default_rng(7)
    for i in range(count):
        image = photos[i % len(photos)].resize(size, Image.Resampling.BICUBIC)
        if rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        (root / "photo").mkdir(parents=True, exist_ok=True)
        image.save(root / "photo" / f"p{i:04d}.jpg", "JPEG", quality=90)


def run_and_watch(corpus: pathlib.Path, out: pathlib.Path) -> dict:
    cmd = local_submit.submit_command("pipeline", ["--input", corpus, "--output", out, "--size", "224"])
    result, peaks = local_submit.watched_submit(cmd, local_submit.process_kind)
    if result.returncode != 0:
        sys.exit(f"pipeline failed:\n{result.stdout[-3000:]}")
    return {"jvm": peaks.get("jvm", 0.0), "python_worker": peaks.get("python workers", 0.0)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--dir", default=str(local_submit.REPO / "bench"))
    args = parser.parse_args(argv)
    base = pathlib.Path(args.dir)
    results = {}
    for name, size in SIZES.items():
        corpus = base / f"memory-{name}-{args.images}"
        if not corpus.exists():
            print(f"generating {args.images} photos of {size[0]}x{size[1]} under {corpus} ...", flush=True)
            make_corpus(corpus, args.images, size)
        mb = sum(p.stat().st_size for p in corpus.rglob("*.jpg")) / 1e6
        results[name] = {"size": list(size), "corpus_mb": round(mb, 1),
                         **run_and_watch(corpus, base / f"out-memory-{name}")}
        print(f"{name:5s} {size[0]}x{size[1]}, {mb:6.1f} MB of JPEG: peak RSS JVM {results[name]['jvm']} MB, "
              f"Python worker {results[name]['python_worker']} MB", flush=True)
    for kind in ("jvm", "python_worker"):
        results[f"{kind}_ratio"] = round(results["20mp"][kind] / results["1mp"][kind], 2)
        print(f"{kind}: 20 MP / 1 MP peak RSS = {results[f'{kind}_ratio']:.2f}  goal <= 2")
    (base / "bench_memory.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
