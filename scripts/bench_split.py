"""Benchmark the split job: files/s on ~20k small images and rows/s on a 5M-row CSV.

    .venv/bin/python scripts/bench_split.py [--images 20000] [--rows 5000000] [--master local[2]]

Each measurement is a real `spark-submit jobs/split.py` run, timed end to end (JVM start
included) and by the job's own report. The image corpus is run twice side by side:
with sparkprep's partition sizing and with Spark's default file packing, and the ratio
is printed. Data is generated once under bench/ and reused.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import sys

import local_submit
import make_sample
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

SPARK_DEFAULT_PACKING = {  # Spark's own defaults, set explicitly so sparkprep leaves them alone
    "spark.sql.files.openCostInBytes": str(4 << 20),
    "spark.sql.files.maxPartitionBytes": str(128 << 20),
    "spark.sql.execution.arrow.maxRecordsPerBatch": "10000",
}


def churn_csv(path: pathlib.Path, rows: int) -> None:
    """A churn-style table: customer_id, label, tenure, monthly, region (deterministic)."""
    rng = np.random.default_rng(0)
    chunk = 1_000_000
    with pacsv.CSVWriter(str(path), pa.schema([("customer_id", pa.string()), ("label", pa.string()),
                                               ("tenure", pa.int32()), ("monthly", pa.float64()),
                                               ("region", pa.string())])) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            ids = pa.array([f"c{i:08d}" for i in range(start, start + n)])
            writer.write_table(pa.table({
                "customer_id": ids,
                "label": pa.array(np.where(rng.random(n) < 0.27, "yes", "no")),
                "tenure": pa.array(rng.integers(0, 72, n, dtype=np.int32)),
                "monthly": pa.array(np.round(rng.uniform(18, 120, n), 2)),
                "region": pa.array(np.array(["north", "south", "east", "west"])[rng.integers(0, 4, n)]),
            }))


def run(label: str, args, master: str, conf=None) -> dict:
    out = pathlib.Path(args[args.index("--output") + 1])
    wall = local_submit.timed_spark_submit("split", *args, master=master, conf=conf)
    report = json.loads((out / "_run_report.json").read_text())
    row = {"run": label, "rows": report["rows"], "wall_s": round(wall, 1), "job_s": report["seconds"],
           "rows_per_s_wall": round(report["rows"] / wall), "rows_per_s_job": round(report["rows"] / report["seconds"])}
    print(f"{label:<34} {row['rows']:>9} rows  wall {row['wall_s']:7.1f}s ({row['rows_per_s_wall']:>7}/s)  "
          f"job {row['job_s']:7.1f}s ({row['rows_per_s_job']:>7}/s)", flush=True)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--dir", default=str(local_submit.REPO / "bench"))
    args = parser.parse_args(argv)
    base = pathlib.Path(args.dir)
    images = base / f"mednist{args.images}"
    if not images.exists():
        print(f"generating {args.images} images under {images} ...", flush=True)
        make_sample.make_tree(str(images), per_class=-(-args.images // len(make_sample.CLASSES)), with_bad=False)
    csv = base / f"churn{args.rows}.csv"
    if not csv.exists():
        print(f"generating {args.rows} CSV rows at {csv} ...", flush=True)
        churn_csv(csv, args.rows)
    out = base / "out"
    shutil.rmtree(out, ignore_errors=True)

    common = ["--ratios", "0.7,0.15,0.15", "--seed", "42"]
    print(f"master {args.master}; spark-submit per run, wall time includes JVM start")
    tuned = run("images, sparkprep partition sizing", ["--input", images, "--output", out / "a", *common], args.master)
    default = run("images, Spark default packing", ["--input", images, "--output", out / "b", *common],
                  args.master, SPARK_DEFAULT_PACKING)
    full = run("images, --validate full", ["--input", images, "--output", out / "c", *common, "--validate", "full"],
               args.master)
    table = run("CSV rows, --key-by column", ["--input", csv, "--output", out / "d", "--key-by", "column:customer_id",
                                              "--label-column", "label", "--ratios", "0.8,0.2"], args.master)
    print(f"partition sizing speed-up (job time, default/tuned): {default['job_s'] / tuned['job_s']:.2f}x")
    (base / "bench_split.json").write_text(json.dumps([tuned, default, full, table], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
