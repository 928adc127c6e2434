"""Benchmark the preprocess job against a hand-written Pillow pool and the naive Spark way.

    .venv/bin/pip install -r requirements-bench.txt      # scikit-image, for its photos
    .venv/bin/python scripts/bench_preprocess.py [--images 2000] [--workers 2]

The corpus is about 2,000 real photos (scikit-image's bundled `skimage.data` pictures),
randomly cropped, scaled to 640-1024 px wide and saved as JPEG q90. In one run, on the
same cores and for the same work (224 px RGB, shorter-side crop, JPEG q90 to parquet), it times:
  (a) `spark-submit jobs/preprocess.py` on local[N];
  (b) a multiprocessing.Pool of N Pillow workers with the same decode-at-scale trick, running
      the same per-image code (sparkprep.preprocess.transform) and writing the same parquet with pyarrow;
  (c) the naive Spark way: a row UDF, full decode, default partitioning (bench_naive_udf.py).
It prints img/s for each and the ratios a/b and a/c (goals: a/b >= 0.9, a/c >= 3).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import pathlib
import shutil
import sys
import time

import local_submit
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

PHOTOS = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "retina", "rocket")
RECIPE = ["--size", "224", "--resize", "shorter-side-crop", "--mode", "RGB", "--encode", "jpeg:90"]


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


def _pool_work(path: str):
    """One file, the way (b) does it: the same per-image code the Spark job runs."""
    from sparkprep.preprocess.transform import TransformSpec, transform_sample
    from sparkprep.split.assign import assign_split

    data = pathlib.Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    [out] = transform_sample(data, digest, 0, TransformSpec())
    return {"key": digest, "split": assign_split("0", digest, [0.8, 0.1, 0.1], ["train", "val", "test"]),
            "label": pathlib.Path(path).parent.name, "path": path, "sha256": digest, "status": "ok",
            "image": out.image, "width": out.width, "height": out.height}


def run_pool(files, output: pathlib.Path, workers: int) -> float:
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        rows = pool.map(_pool_work, files, chunksize=16)
    table = pa.Table.from_pylist(rows)
    output.mkdir(parents=True)
    pq.write_table(table, output / "part-0.parquet")
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dir", default=str(local_submit.REPO / "bench"))
    args = parser.parse_args(argv)
    base = pathlib.Path(args.dir)
    corpus = base / f"photos{args.images}"
    if not corpus.exists():
        print(f"generating {args.images} photos under {corpus} ...", flush=True)
        make_corpus(corpus, args.images)
    files = sorted(str(p) for p in corpus.rglob("*.jpg"))
    megapixels = sum(Image.open(f).width * Image.open(f).height for f in files) / len(files) / 1e6
    out = base / "out-preprocess"
    shutil.rmtree(out, ignore_errors=True)
    master = f"local[{args.workers}]"
    print(f"{len(files)} JPEG q90 photos, mean {megapixels:.2f} MP; {args.workers} cores; output 224 px RGB JPEG q90")

    wall_a = local_submit.timed_spark_submit("preprocess", "--input", corpus, "--output", out / "a", *RECIPE, master=master)
    report = json.loads((out / "a" / "_run_report.json").read_text())
    job_a = report["seconds"]
    time_b = run_pool(files, out / "b", args.workers)
    # Spark's own defaults, overriding the tuned values conf/local.conf carries
    spark_defaults = {"spark.sql.files.openCostInBytes": str(4 << 20),
                      "spark.sql.execution.arrow.maxBytesPerBatch": str(2**31 - 1)}
    wall_c = local_submit.timed_spark_submit(str(local_submit.REPO / "scripts" / "bench_naive_udf.py"), corpus,
                                             out / "c", master=master, conf=spark_defaults)
    n = len(files)
    results = {
        "images": n, "cores": args.workers, "mean_megapixels": round(megapixels, 3),
        "a_spark_preprocess_wall_s": round(wall_a, 2), "a_spark_preprocess_job_s": job_a,
        "a_durations": report["durations"], "b_pillow_pool_s": round(time_b, 2), "c_naive_udf_wall_s": round(wall_c, 2),
    }
    print(f"(a) spark-submit jobs/preprocess.py   {n / wall_a:7.1f} img/s wall ({wall_a:.1f}s; "
          f"{n / job_a:.1f} img/s inside the job, {job_a:.1f}s)")
    print(f"(b) multiprocessing.Pool + Pillow     {n / time_b:7.1f} img/s ({time_b:.1f}s)")
    print(f"(c) naive row UDF, full decode        {n / wall_c:7.1f} img/s wall ({wall_c:.1f}s)")
    results["a_over_b_wall"] = round(time_b / wall_a, 3)
    results["a_over_b_job"] = round(time_b / job_a, 3)
    results["a_over_c_wall"] = round(wall_c / wall_a, 3)
    print(f"a/b = {results['a_over_b_wall']:.2f} (wall, JVM start included), {results['a_over_b_job']:.2f} (job time)"
          f"   goal >= 0.9")
    print(f"a/c = {results['a_over_c_wall']:.2f} (wall)   goal >= 3")
    (base / "bench_preprocess.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
