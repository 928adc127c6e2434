"""What keeping the one pass's rows for a later run costs, where Spark writes the tables, side by side.

    .venv/bin/pip install -r requirements-bench.txt      # scikit-image, for its photos
    .venv/bin/spark-submit --master "local[2]" --properties-file conf/local.conf \\
        scripts/bench_resumable_rows.py [--sizes 1000,3000] [--rounds 3] [--format delta]

Where Spark writes both tables (Delta, an output on HDFS or S3), the pipeline's one pass now writes its
rows into the processed table's staging first (ownership.RESUME_ROWS: what a killed run leaves for the
next one), and both tables are written from there. Before, the rows were persisted on local disk
(DISK_ONLY) and lost with the driver; delta-spark's writes still do that. This runs both, alternately,
in one warm Spark session (`kept`: as the pipeline runs; `persisted`: the rows persisted instead), on
bench_preprocess.py's photos at two sizes, and prints each variant's median wall time per size and the
marginal cost per 1,000 photos between the sizes, where the session's fixed costs cancel.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from bench_preprocess import corpus_of  # noqa: E402

from sparkprep.pipeline.flags import pipeline_config  # noqa: E402
from sparkprep.pipeline.spark import run as pipeline_run  # noqa: E402
from sparkprep.spark.session import build_session  # noqa: E402


def main(argv) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,3000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--format", default="delta")
    parser.add_argument("--photos", default="bench", help="where bench_preprocess.py keeps photos<N>")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    corpora = {n: corpus_of(pathlib.Path(args.photos), n) for n in sizes}
    spark = build_session("bench-resumable-rows")
    kept = pipeline_run.resumes_rows
    variants = {"kept": kept, "persisted": lambda spark, cfg: False}
    seconds = {(v, n): [] for v in variants for n in sizes}
    scratch = tempfile.mkdtemp(prefix="bench-resumable-")
    try:
        run_pipeline(spark, corpora[sizes[0]], f"{scratch}/warm", args.format)  # the JVM's first jobs, untimed
        for _ in range(args.rounds):
            for n in sizes:
                for name, decides in variants.items():
                    pipeline_run.resumes_rows = decides
                    seconds[(name, n)].append(run_pipeline(spark, corpora[n], f"{scratch}/{name}", args.format))
    finally:
        pipeline_run.resumes_rows = kept
        shutil.rmtree(scratch, ignore_errors=True)
        spark.stop()
    medians = {key: statistics.median(values) for key, values in seconds.items()}
    for name in variants:
        line = "  ".join(f"{n} photos {medians[(name, n)]:6.2f} s ({', '.join(f'{v:.1f}' for v in seconds[(name, n)])})"
                         for n in sizes)
        marginal = (medians[(name, sizes[-1])] - medians[(name, sizes[0])]) / (sizes[-1] - sizes[0]) * 1000
        print(f"{name:9s} {line}  marginal {marginal:.2f} s per 1,000 photos")
    ratio = ((medians[("kept", sizes[-1])] - medians[("kept", sizes[0])])
             / (medians[("persisted", sizes[-1])] - medians[("persisted", sizes[0])]))
    print(f"marginal ratio kept / persisted: {ratio:.2f}")
    return 0


def run_pipeline(spark, corpus: pathlib.Path, out: str, fmt: str) -> float:
    """Wall seconds of one pipeline run into a new output."""
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    pipeline_run.run_pipeline(spark, pipeline_config(["--input", str(corpus), "--output", out, "--size", "224",
                                                      "--format", fmt]))
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
