"""Benchmark the pipeline job against a hand-written Pillow pool and the naive Spark way, side by side.

    .venv/bin/pip install -r requirements-bench.txt      # scikit-image, for its photos
    .venv/bin/python scripts/bench_preprocess.py --marginal [--repeat 3] [--sizes 1500,4500] [--workers 2]
    .venv/bin/python scripts/bench_preprocess.py --images 8000 --only pipeline   # one size: a table for bench_export

The corpus is real photos (scikit-image's bundled `skimage.data` pictures), randomly
cropped, scaled to 640-1024 px wide and saved as JPEG q90. For the same work on the same
cores (sha256, decode, 224 px RGB shorter-side crop, JPEG q90, parquet), one run times:
  pipeline  `spark-submit jobs/pipeline.py` (split table + processed table, one Python pass)
  pipeline-binaryfile, pipeline-exact, pipeline-keep-none, pipeline-phash-off  the same with --read
            binaryfile, with --stratify exact (two passes), with --keep none, or without the perceptual
            hash (the pool does not hash); only when named in --only
  stages    `spark-submit jobs/preprocess.py` on the raw folder (the two-pass path, for reference)
  pool      a multiprocessing.Pool of N workers running plain Pillow, as a user would write it
            (draft decode, ImageOps.fit, save), writing the same images to parquet with pyarrow
  naive     a Spark row UDF with full decode and Spark's default packing (bench_naive_udf.py)
  spark-floor  a minimal PySpark application that only reads the files with binaryFile and writes
            parquet (bench_naive_udf.py --floor): the least any Spark job over them costs
  ray, daft the pool's per-image code on Ray Data and on Daft (bench_peer.py), with --peers-python,
            a venv with requirements-peers.txt (they are not sparkprep dependencies)
  daft-native  Daft's own image functions: full decode, 224x224 resize without crop, encode
  codec     the bare codec calls alone, in one process: sha256 + draft decode + resize + encode

With --marginal every contender runs at two sizes and img/s is (n2 - n1) / (t2 - t1), so
JVM start-up and fixed costs cancel; with --repeat R, t is the median of R runs (R rounds, each
running every contender at both sizes). The fixed cost
of a contender is its intercept: its time at the smaller size minus those images at its marginal
rate; the pipeline's is compared with spark-floor's whole time at the smaller size. CPU is the machine's busy time from /proc/stat over
each run (all processes: JVM, Python workers, driver), also taken marginally.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import multiprocessing
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import time
from typing import Dict

import local_submit
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageOps

PHOTOS = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "retina", "rocket")
RECIPE = ["--size", "224", "--resize", "shorter-side-crop", "--mode", "RGB", "--encode", "jpeg:90"]
CONTENDERS = ("pipeline", "pipeline-binaryfile", "pipeline-exact", "pipeline-keep-none", "pipeline-phash-off",
              "stages", "pool", "naive", "spark-floor", "ray", "daft", "daft-native", "codec")
# Run only when named in --only: variants of the pipeline, for the README's reasoning.
VARIANTS = {"pipeline-binaryfile": ["--read", "binaryfile"], "pipeline-exact": ["--stratify", "exact"],
            "pipeline-keep-none": ["--keep", "none"], "pipeline-phash-off": ["--phash", "off"]}


def make_corpus(root: pathlib.Path, count: int) -> None:
    """count JPEG q90 photos, 640-1024 px wide, under root/<photo name>/ (deterministic)."""
    from skimage import data

    sources = {name: Image.fromarray(getattr(data, name)()) for name in PHOTOS}
    rng = np.random.default_rng(2026)
    for i in range(count):
        name = PHOTOS[i % len(PHOTOS)]
        photo = sources[name]
        width = int(rng.integers(640, 1025))
        height = int(width * rng.uniform(0.66, 1.0))
        zoom = rng.uniform(0.5, 1.0)  # part of the photo to keep, so crops differ
        crop_w, crop_h = int(photo.width * zoom), int(min(photo.height, photo.width * zoom * height / width))
        left, top = int(rng.integers(0, photo.width - crop_w + 1)), int(rng.integers(0, photo.height - crop_h + 1))
        image = photo.crop((left, top, left + crop_w, top + crop_h)).resize((width, height), Image.Resampling.LANCZOS)
        if rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        (root / name).mkdir(parents=True, exist_ok=True)
        image.save(root / name / f"img_{i:05d}.jpg", "JPEG", quality=90)


def corpus_of(base: pathlib.Path, count: int) -> pathlib.Path:
    """base/photos<count>: made once; smaller corpora are the first files of the largest (hard links)."""
    wanted = base / f"photos{count}"
    if wanted.exists():
        return wanted
    bigger = sorted((int(p.name[6:]), p) for p in base.glob("photos*") if p.name[6:].isdigit() and int(p.name[6:]) > count)
    if not bigger:
        print(f"generating {count} photos under {wanted} ...", flush=True)
        make_corpus(wanted, count)
        return wanted
    source = bigger[0][1]
    for path in sorted(source.rglob("*.jpg"), key=lambda p: p.name)[:count]:
        target = wanted / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)
    return wanted


# -- the hand-written pool: plain Pillow, the way a user writes it (not sparkprep's functions) --

def _pool_work(path: str) -> dict:
    data = pathlib.Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (224, 224))
    image = ImageOps.fit(image.convert("RGB"), (224, 224), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return {"path": path, "sha256": digest, "label": pathlib.Path(path).parent.name, "image": buffer.getvalue()}


def run_pool(files, output: pathlib.Path, workers: int) -> None:
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        rows = pool.map(_pool_work, files, chunksize=16)
    output.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), output / "part-0.parquet")


def codec_ms(files) -> dict:
    """CPU ms per image of each bare codec call, as the pipeline makes them (Pillow draft at DCT scale)."""
    from sparkprep.images import ops as image_ops

    spent = {"sha256": 0.0, "decode": 0.0, "resize": 0.0, "encode": 0.0}
    for path in files:
        data = pathlib.Path(path).read_bytes()
        t0 = time.process_time()
        hashlib.sha256(data).hexdigest()
        t1 = time.process_time()
        image = image_ops.decode(data, (224, 224), "shorter-side-crop")
        t2 = time.process_time()
        image = ImageOps.fit(image, (224, 224), Image.Resampling.BILINEAR)
        t3 = time.process_time()
        image_ops.encode(image, "jpeg", 90)
        t4 = time.process_time()
        for name, dt in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            spent[name] += dt
    return {name: round(1000 * value / len(files), 3) for name, value in spent.items()}


def busy_seconds() -> float:
    """The machine's CPU busy time so far (all cores, all processes), from /proc/stat."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def measured(run) -> dict:
    """Wall and CPU-busy seconds of one run, and its CPU seconds per process kind where the run returns them."""
    cpu, wall = busy_seconds(), time.perf_counter()
    by_process = run()
    out = {"wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(busy_seconds() - cpu, 2)}
    if isinstance(by_process, dict):
        out["cpu_by_process"] = {k: round(v, 2) for k, v in by_process.items()}
    return out


def submitted_by_process(job: str, *args, master: str) -> Dict[str, float]:
    """Run a job through spark-submit, watching its processes: CPU seconds per process kind."""
    cpu: Dict[str, float] = {}
    result, _ = local_submit.watched_submit(local_submit.submit_command(job, args, master),
                                            local_submit.process_kind, cpu=cpu)
    if result.returncode:
        sys.exit(f"{job} failed:\n{result.stdout[-3000:]}")
    return cpu


def pool_by_process(files, output: pathlib.Path, workers: int) -> Dict[str, float]:
    """run_pool, with its CPU seconds: the pool's workers (reaped children) and the parent (its parquet write)."""
    before_self, before_children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    run_pool(files, output, workers)
    after_self, after_children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)

    def spent(a, b):
        return b.ru_utime + b.ru_stime - a.ru_utime - a.ru_stime

    return {"pool workers": spent(before_children, after_children), "parent": spent(before_self, after_self)}


def contender(name: str, corpus: pathlib.Path, files, out: pathlib.Path, workers: int, peers_python: str = "",
              by_process: bool = False):
    master = f"local[{workers}]"
    if name.startswith("pipeline") and by_process:
        return lambda: submitted_by_process("pipeline", "--input", corpus, "--output", out, *RECIPE,
                                            *VARIANTS.get(name, []), master=master)
    if name == "pool" and by_process:
        return lambda: pool_by_process(files, out, workers)
    if name.startswith("pipeline"):
        return lambda: local_submit.timed_spark_submit("pipeline", "--input", corpus, "--output", out, *RECIPE,
                                                       *VARIANTS.get(name, []), master=master)
    if name == "stages":
        return lambda: local_submit.timed_spark_submit("preprocess", "--input", corpus, "--output", out, *RECIPE,
                                                       master=master)
    if name == "pool":
        return lambda: run_pool(files, out, workers)
    if name in ("naive", "spark-floor"):  # Spark's own defaults, overriding the tuned values conf/local.conf carries
        defaults = {"spark.sql.files.openCostInBytes": str(4 << 20),
                    "spark.sql.execution.arrow.maxBytesPerBatch": str(2**31 - 1)}
        return lambda: local_submit.timed_spark_submit(str(local_submit.REPO / "scripts" / "bench_naive_udf.py"),
                                                       corpus, out, *(["--floor"] if name == "spark-floor" else []),
                                                       master=master, conf=defaults)
    if name in ("ray", "daft", "daft-native"):
        script = str(local_submit.REPO / "scripts" / "bench_peer.py")
        return lambda: subprocess.run([peers_python, script, name, str(corpus), str(out), "--cpus", str(workers)],
                                      check=True, capture_output=True)
    raise ValueError(name)



def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--marginal", action="store_true", help="two sizes, marginal throughput")
    parser.add_argument("--sizes", default="1500,4500", help="the two corpus sizes with --marginal")
    parser.add_argument("--images", type=int, default=2000, help="corpus size without --marginal")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender and size; the median counts")
    parser.add_argument("--only", default=",".join(c for c in CONTENDERS if c not in VARIANTS),
                        help=f"some of {','.join(CONTENDERS)}")
    parser.add_argument("--dir", default=str(local_submit.REPO / "bench"))
    parser.add_argument("--peers-python", help="python of a venv with requirements-peers.txt: adds ray and daft")
    parser.add_argument("--by-process", action="store_true",
                        help="also each process kind's CPU per image (pipeline: JVM, Python driver and workers; "
                             "pool: its workers and the parent), from /proc and getrusage")
    args = parser.parse_args(argv)
    base = pathlib.Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)
    sizes = [int(n) for n in args.sizes.split(",")] if args.marginal else [args.images]
    peers = ("ray", "daft", "daft-native")  # need --peers-python
    chosen = [c for c in CONTENDERS if c in args.only.split(",") and (c not in peers or args.peers_python)]
    results: dict = {"sizes": sizes, "cores": args.workers, "runs": {}}
    # Rounds, not blocks: each round runs every contender at every size, so a machine that drifts
    # (shared cores speed up and slow down by tens of percent over minutes) shifts both sizes alike.
    corpora = {n: corpus_of(base, n) for n in sizes}
    files = {n: sorted(str(p) for p in corpora[n].rglob("*.jpg")) for n in sizes}
    tries: dict = {}
    for _ in range(args.repeat):
        for name in [c for c in chosen if c != "codec"]:
            for n in sizes:
                out = base / f"out-{name}-{n}"
                shutil.rmtree(out, ignore_errors=True)
                run = measured(contender(name, corpora[n], files[n], out, args.workers, args.peers_python,
                                         args.by_process))
                tries.setdefault(f"{name}@{n}", []).append(run)
                print(f"{name:9s} {n:6d} images: {run['wall_s']:7.1f} s wall, {run['cpu_s']:7.1f} s CPU", flush=True)
    for where, runs in tries.items():
        results["runs"][where] = {"tries": runs, **{k: sorted(t[k] for t in runs)[len(runs) // 2]
                                                     for k in ("wall_s", "cpu_s")}}
    largest = sorted(str(p) for p in corpus_of(base, sizes[-1]).rglob("*.jpg"))
    megapixels = sum(math.prod(Image.open(f).size) for f in largest) / len(largest) / 1e6
    results["mean_megapixels"] = round(megapixels, 3)
    results["mean_kb"] = round(sum(os.path.getsize(f) for f in largest) / len(largest) / 1e3, 1)
    if "codec" in chosen:
        results["codec_ms"] = codec = codec_ms(largest[:1000])
        results["codec_ms_total"] = round(sum(codec.values()), 3)
    print(f"\n{len(largest)} JPEG photos, mean {megapixels:.2f} MP, {results['mean_kb']} KB; "
          f"{args.workers} cores; output 224 px RGB JPEG q90")
    speed = {}
    for name in chosen:
        if name == "codec":
            continue
        first, last = results["runs"][f"{name}@{sizes[0]}"], results["runs"][f"{name}@{sizes[-1]}"]
        if args.marginal:
            images, wall, cpu = sizes[-1] - sizes[0], last["wall_s"] - first["wall_s"], last["cpu_s"] - first["cpu_s"]
        else:
            images, wall, cpu = sizes[0], last["wall_s"], last["cpu_s"]
        speed[name] = {"img_per_s": round(images / wall, 1), "cpu_ms_per_img": round(1000 * cpu / images, 3)}
        if args.marginal:  # the time at the smaller size that its images do not explain
            speed[name]["fixed_s"] = round(first["wall_s"] - sizes[0] * wall / images, 2)
        kinds = sorted({k for t in first["tries"] + last["tries"] for k in t.get("cpu_by_process", {})})
        if kinds:  # each kind's median, and its marginal (or mean) ms per image
            def median_of(runs, kind):
                values = sorted(t.get("cpu_by_process", {}).get(kind, 0.0) for t in runs["tries"])
                return values[len(values) // 2]

            speed[name]["cpu_ms_per_img_by_process"] = {
                kind: round(1000 * (median_of(last, kind) - (median_of(first, kind) if args.marginal else 0)) / images, 3)
                for kind in kinds}
        print(f"{name:9s} {speed[name]['img_per_s']:8.1f} img/s {'marginal' if args.marginal else 'wall'}, "
              f"{speed[name]['cpu_ms_per_img']:6.2f} ms CPU per image"
              + (f", fixed {speed[name]['fixed_s']:5.1f} s (whole {first['wall_s']:.1f} s at {sizes[0]})"
                 if args.marginal else "")
              + "".join(f"\n          {kind}: {ms:.2f} ms CPU per image"
                        for kind, ms in speed[name].get("cpu_ms_per_img_by_process", {}).items()))
    results["speed"] = speed
    ratios = {}
    if "pipeline" in speed:
        goals = (("pool", ">= 1.0"), ("pipeline-binaryfile", ""), ("pipeline-exact", ""), ("pipeline-keep-none", ""),
                 ("pipeline-phash-off", ""),
                 ("ray", ">= 2"),
                 ("daft", ">= 1.1"), ("daft-native", ">= 2"), ("naive", ""), ("stages", ""))
        for other, goal in goals:
            if other in speed:
                ratios[f"pipeline/{other}"] = round(speed["pipeline"]["img_per_s"] / speed[other]["img_per_s"], 3)
                print(f"pipeline / {other:7s} = {ratios[f'pipeline/{other}']:.2f}  {('goal ' + goal) if goal else ''}")
    if "pipeline-phash-off" in speed and "pool" in speed:
        ratios["pipeline-phash-off/pool"] = round(speed["pipeline-phash-off"]["img_per_s"] / speed["pool"]["img_per_s"], 3)
        print(f"pipeline --phash off / pool = {ratios['pipeline-phash-off/pool']:.2f}  goal >= 1.05")
    if args.marginal and "spark-floor" in chosen:
        floor = results["runs"][f"spark-floor@{sizes[0]}"]["wall_s"]
        for name in [c for c in ("pipeline", "pipeline-phash-off") if c in speed]:
            ratios[f"{name}_fixed/spark-floor"] = round(speed[name]["fixed_s"] / floor, 3)
            print(f"{name} fixed cost / spark-floor's whole time at {sizes[0]} ({floor:.1f} s) = "
                  f"{ratios[f'{name}_fixed/spark-floor']:.2f}  {'goal <= 2' if name == 'pipeline' else ''}")
    if "pipeline" in speed:
        if "codec" in chosen:
            ratios["pipeline_cpu/codec"] = round(speed["pipeline"]["cpu_ms_per_img"] / results["codec_ms_total"], 3)
            print(f"pipeline CPU per image / bare codec calls ({results['codec_ms_total']:.2f} ms: "
                  f"{results['codec_ms']}) = {ratios['pipeline_cpu/codec']:.2f}  goal <= 1.2")
    results["ratios"] = ratios
    name = "bench_preprocess" + ("" if args.only == parser.get_default("only") else "-" + args.only.replace(",", "-"))
    (base / f"{name}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
