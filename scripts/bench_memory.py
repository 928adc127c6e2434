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
import os
import pathlib
import subprocess
import sys
import time

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


def descendants(pid: int):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for child in children.get(current, []):
            found.append(child)
            todo.append(child)
    return found


def peak_kb(pid: int):
    """(name, VmHWM kB) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            fields = dict(line.split(":", 1) for line in handle if ":" in line)
        return fields["Name"].strip(), int(fields.get("VmHWM", "0 kB").split()[0])
    except (OSError, KeyError, ValueError):
        return None


def run_and_watch(corpus: pathlib.Path, out: pathlib.Path) -> dict:
    cmd = local_submit.submit_command("pipeline", ["--input", corpus, "--output", out, "--size", "224"])
    proc = subprocess.Popen(cmd, env=local_submit.submit_env(), cwd=local_submit.REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peaks = {"jvm": 0, "python_worker": 0}
    while proc.poll() is None:
        for child in [proc.pid, *descendants(proc.pid)]:
            seen = peak_kb(child)
            if seen:
                name, kb = seen
                kind = "jvm" if name == "java" else "python_worker" if name.startswith("python") else None
                if kind and not (kind == "python_worker" and _is_driver(child)):
                    peaks[kind] = max(peaks[kind], kb)
        time.sleep(0.1)
    output = proc.stdout.read()
    if proc.returncode != 0:
        sys.exit(f"pipeline failed:\n{output[-3000:]}")
    return {k: round(v / 1024, 1) for k, v in peaks.items()}


def _is_driver(pid: int) -> bool:
    """The Python driver runs jobs/pipeline.py; the workers run pyspark.daemon / worker."""
    try:
        with open(f"/proc/{pid}/cmdline") as handle:
            return "jobs/pipeline.py" in handle.read()
    except OSError:
        return False


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
