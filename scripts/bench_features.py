"""Benchmark jobs/features.py on synthetic churn CSVs (examples/churn/make_churn.py) on local[N].

For each size (default 1M and 5M rows): the CSV is generated once and split once with
`spark-submit jobs/split.py --input-kind table --key-by column:phone` (both kept in bench/churn),
then, side by side:
  (a) `spark-submit jobs/features.py` with all three outputs (4 categorical columns one-hot,
      15 numeric, median impute, standard scale);
  (b) the same with `--to xgboost-csv` only;
  (c) what a churn notebook does in one process: pandas reads the split table, scikit-learn's
      ColumnTransformer (median imputer + standard scaler, one-hot ignoring unknowns) is fitted
      on train, and every split is written as XGBoost CSV with pandas.
Prints rows/s per size and the marginal throughput between the two sizes (JVM start-up and
fixed costs cancel), and the ratio (b)/(c).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import shutil
import sys
import time

import local_submit

CATEGORICAL = ["state", "area_code", "intl_plan", "vmail_plan"]


def make_churn():
    path = local_submit.REPO / "examples" / "churn" / "make_churn.py"
    spec = importlib.util.spec_from_file_location("make_churn", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def notebook_features(split: pathlib.Path, out: pathlib.Path) -> float:
    """(c): pandas + scikit-learn in one process, fitted on train, XGBoost CSV per split; wall seconds."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    started = time.perf_counter()
    frame = pd.read_parquet(split)
    frame = frame[frame["status"] == "ok"]
    skip = {"key", "split", "label", "path", "sha256", "status", "error", "phone", *CATEGORICAL}
    numeric = [c for c in frame.columns if c not in skip]
    frame[numeric] = frame[numeric].apply(pd.to_numeric, errors="coerce")
    transform = ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL)])
    transform.fit(frame[frame["split"] == "train"])
    for name, rows in frame.groupby("split"):
        values = transform.transform(rows)
        label = (rows["label"] == "True").astype(float).to_numpy()
        (out / name).mkdir(parents=True, exist_ok=True)
        pd.DataFrame(np.column_stack([label, values])).to_csv(out / name / "part-00000.csv", header=False, index=False)
    return time.perf_counter() - started


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
        split = base / f"split-{rows}"
        if not (split / "_run_report.json").exists():
            local_submit.timed_spark_submit(
                "split", "--input", csv, "--input-kind", "table", "--key-by", "column:phone", "--label-column",
                "churn", "--output", split, master=args.master)
        result = {"csv_mb": round(csv.stat().st_size / 1e6)}
        for variant, to in (("a", "xgboost-csv,libsvm,parquet"), ("b", "xgboost-csv")):
            out = base / f"features-{variant}-{rows}"
            shutil.rmtree(out, ignore_errors=True)
            wall = local_submit.timed_spark_submit(
                "features", "--input", split, "--output", out, "--label-column", "churn",
                "--categorical", ",".join(CATEGORICAL), "--numeric", "auto", "--impute", "median",
                "--scale", "standard", "--to", to, master=args.master)
            report = json.loads((out / "_run_report.json").read_text())
            result[variant] = {"wall_s": round(wall, 1), "job_s": round(report["seconds"], 1),
                               "features": report["features"]["count"], "durations": report["durations"]}
            print(f"{rows:>9} rows ({result['csv_mb']} MB CSV) ({variant}) features --to {to}: {wall:.1f}s wall "
                  f"({rows / wall:,.0f} rows/s), job {report['seconds']:.1f}s, {report['features']['count']} features")
        out = base / f"features-c-{rows}"
        shutil.rmtree(out, ignore_errors=True)
        wall = notebook_features(split, out)
        result["c"] = {"wall_s": round(wall, 1)}
        print(f"{rows:>9} rows (c) pandas + scikit-learn, one process, XGBoost CSV: {wall:.1f}s "
              f"({rows / wall:,.0f} rows/s)")
        results[rows] = result
    if len(sizes) == 2:
        small, large = sizes
        marginal = {}
        for variant in ("a", "b", "c"):
            seconds = results[large][variant]["wall_s"] - results[small][variant]["wall_s"]
            marginal[variant] = (large - small) / seconds
            print(f"marginal throughput ({variant}) {small:,} -> {large:,} rows: {marginal[variant]:,.0f} rows/s")
        print(f"(b)/(c), marginal: {marginal['b'] / marginal['c']:.2f}")
        results["marginal_rows_per_s"] = {k: round(v) for k, v in marginal.items()}
    (base.parent / "bench_features.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
