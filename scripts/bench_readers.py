"""binaryFile feeding Python against each worker reading its own files, in one warm Spark session.

    .venv/bin/spark-submit --master "local[2]" --properties-file conf/local.conf \\
        scripts/bench_readers.py bench/photos4500 [rounds]

Runs the pipeline with --read workers and --read binaryfile alternately, `rounds` times
each (default 4), and prints the main stage's seconds (reading, validating, splitting and
transforming) for each; the first round warms the JVM and is left out of the medians.
This is the measurement behind `--read auto` (docs/performance.md).
"""

import shutil
import sys
import tempfile

from sparkprep.pipeline.flags import pipeline_config
from sparkprep.pipeline.spark.run import run_pipeline
from sparkprep.spark.session import build_session

STAGE = "reading, validating, splitting and transforming"


def main(argv) -> int:
    corpus, rounds = argv[0], int(argv[1]) if len(argv) > 1 else 4
    spark = build_session("bench-readers")
    seconds = {"workers": [], "binaryfile": []}
    scratch = tempfile.mkdtemp(prefix="bench-readers-")
    try:
        for _ in range(rounds):
            for reader in seconds:
                out = f"{scratch}/{reader}"
                shutil.rmtree(out, ignore_errors=True)
                report = run_pipeline(spark, pipeline_config(["--input", corpus, "--output", out, "--size", "224",
                                                              "--read", reader]))
                seconds[reader].append(report["durations"][STAGE])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        spark.stop()
    for reader, values in seconds.items():
        warm = sorted(values[1:])
        print(f"--read {reader:10s} median {warm[len(warm) // 2]:6.2f} s  (rounds: {', '.join(f'{v:.2f}' for v in values)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
