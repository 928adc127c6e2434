"""Benchmark jobs/features.py on synthetic churn CSVs (examples/churn/make_churn.py) on local[N].

For each size (default 1M and 5M rows): the CSV is generated once (kept in bench/), split with
`spark-submit jobs/split.py --input-kind table --key-by column:phone`, then featurized with
`spark-submit jobs/features.py` (4 categorical columns one-hot, 15 numeric, median impute,
standard scale, all three outputs). Prints rows/s per size, wall and job, and the marginal
throughput between the two sizes, in which JVM start-up and fixed Spark costs cancel.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import shutil
import sys

import local_submit


def make_churn():
    spec = importlib.util.spec_from_file_location("make_churn", local_submit.REPO / "examples" / "churn" / "make_churn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,5000000")
    parser.add_argument("--dir", default=str(local_submit.REPO / "bench" / "churn"))
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args(argv)
    base = pathlib.Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)
    sizes = [int(n) for n in args.rows.split(",")]
    results = {}
    for rows in sizes:
        csv = base / f"churn-{rows}.csv"
        if not csv.exists():
            make_churn().write_churn(str(csv), rows, seed=0)
        split, out = base / f"split-{rows}", base / f"features-{rows}"
        shutil.rmtree(split, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        split_wall = local_submit.timed_spark_submit(
            "split", "--input", csv, "--input-kind", "table", "--key-by", "column:phone", "--label-column", "churn",
            "--output", split, master=args.master)
        wall = local_submit.timed_spark_submit(
            "features", "--input", split, "--output", out, "--label-column", "churn",
            "--categorical", "state,area_code,intl_plan,vmail_plan", "--numeric", "auto", "--impute", "median",
            "--scale", "standard", "--to", "xgboost-csv,libsvm,parquet", master=args.master)
        report = json.loads((out / "_run_report.json").read_text())
        results[rows] = {"csv_mb": round(csv.stat().st_size / 1e6), "split_wall_s": round(split_wall, 1),
                         "features_wall_s": round(wall, 1), "features_job_s": round(report["seconds"], 1),
                         "features": report["features"]["count"], "durations": report["durations"]}
        print(f"{rows:>9} rows ({results[rows]['csv_mb']} MB CSV): split {split_wall:.1f}s wall; features "
              f"{wall:.1f}s wall ({rows / wall:,.0f} rows/s), job {report['seconds']:.1f}s "
              f"({rows / report['seconds']:,.0f} rows/s), {report['features']['count']} features")
    if len(sizes) == 2:
        small, large = sizes
        marginal = (large - small) / (results[large]["features_wall_s"] - results[small]["features_wall_s"])
        results["marginal_rows_per_s"] = round(marginal)
        print(f"marginal features throughput {small:,} -> {large:,} rows: {marginal:,.0f} rows/s")
    (base.parent / "bench_features.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
