"""Run every job on fixed inputs through spark-submit and print one digest per output, so that a
refactor can show its outputs are byte for byte what they were.

    .venv/bin/python scripts/digest_outputs.py --inputs /tmp/digest/in --out /tmp/digest/before > before.json
    ... change the code ...
    .venv/bin/python scripts/digest_outputs.py --inputs /tmp/digest/in --out /tmp/digest/after > after.json
    diff before.json after.json

The inputs are made once (the sample tree, WebDataset shards, the churn table) and reused, so a
change to the sample generator does not change them. Per output:
- a table: every row, every column, in a stable order (binary columns as their sha256);
- an export or a features directory: the sha256 of every file, run reports excepted;
- a run report: its counts, quarantine, duplicates, split and reconciliation, without times.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import subprocess
import sys

from local_submit import spark_submit

REPO = pathlib.Path(__file__).resolve().parents[1]
REPORT_KEYS = ("counts", "quarantine", "duplicates", "split", "samples", "leakage", "normalization",
               "near_duplicates", "transform", "features", "status_counts")


def make_inputs(root: pathlib.Path) -> None:
    """The sample tree, shards exported from it later, and the churn table: made once."""
    sys.path.insert(0, str(REPO / "scripts"))
    import make_sample

    if not (root / "mednist").exists():
        make_sample.make_tree(str(root / "mednist"), per_class=40, with_bad=True)
    if not (root / "churn.csv").exists():
        subprocess.run([sys.executable, str(REPO / "examples" / "churn" / "make_churn.py"), str(root / "churn.csv"),
                        "--rows", "600"], check=True, stdout=subprocess.DEVNULL)


def runs(inputs: pathlib.Path, out: pathlib.Path):
    """(name, job, args, outputs) of every run, in order; outputs are (label, path, kind)."""
    mednist, pipe = inputs / "mednist", out / "pipeline"
    yield ("pipeline", "pipeline", ["--input", mednist, "--output", pipe, "--ratios", "0.7,0.15,0.15", "--seed", "42",
                                    "--size", "64", "--to", "imagefolder,webdataset"],
           [("splits", pipe / "splits", "table"), ("processed", pipe / "processed", "table"),
            ("imagefolder", pipe / "imagefolder", "files"), ("webdataset", pipe / "webdataset", "files")])
    for fmt in ("tfrecord", "recordio"):
        yield (f"export-{fmt}", "export", ["--input", pipe / "processed", "--output", out / fmt, "--to", fmt,
                                           "--shard-size", "64KB"], [(fmt, out / fmt, "files")])
    yield ("ingest", "ingest", ["--input", mednist, "--output", out / "catalog", "--validate", "full"],
           [("catalog", out / "catalog", "table")])
    yield ("split-catalog", "split", ["--input", out / "catalog", "--output", out / "split-catalog", "--key-by",
                                      r"group:^[^/]+/(p\d)", "--stratify", "exact", "--phash", "off"],
           [("split-catalog", out / "split-catalog", "table")])
    yield ("preprocess", "preprocess", ["--input", out / "split-catalog", "--output", out / "augmented", "--size",
                                        "48", "--augment", "hflip,rotate:10,crop:0.8", "--copies", "2",
                                        "--encode", "png"], [("augmented", out / "augmented", "table")])
    yield ("split-shards", "split", ["--input", str(pipe / "webdataset") + "/*.tar", "--output", out / "shard-split",
                                     "--phash", "off"], [("shard-split", out / "shard-split", "table")])
    yield ("split-rows", "split", ["--input", inputs / "churn.csv", "--key-by", "column:phone", "--label-column",
                                   "churn", "--output", out / "churn-split"],
           [("churn-split", out / "churn-split", "table")])
    yield ("features", "features", ["--input", out / "churn-split", "--output", out / "churn-features",
                                    "--label-column", "churn", "--categorical", "state,intl_plan", "--scale",
                                    "standard", "--to", "xgboost-csv,libsvm,parquet"],
           [("churn-features", out / "churn-features", "files")])
    yield ("report", "report", ["--input", pipe / "processed", "--output", out / "report"],
           [("report", out / "report", "report")])


def table_digest(path: pathlib.Path, out: pathlib.Path) -> dict:
    """Every row and column (binary values as their sha256), this run's output directory spelled <out>."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    if (path / "_delta_log").exists():
        from deltalake import DeltaTable

        table = DeltaTable(str(path)).to_pyarrow_table()
    else:
        table = ds.dataset(str(path), format="parquet", partitioning="hive").to_table()
    rows = []
    for row in table.to_pylist():
        text = json.dumps({k: _plain(v) for k, v in sorted(row.items())}, sort_keys=True, default=str)
        rows.append(text.replace(str(out), "<out>"))
    rows.sort()
    schema = sorted(f"{f.name}:{f.type}" for f in table.schema if not isinstance(f.type, pa.DictionaryType))
    return {"rows": len(rows), "schema": schema,
            "sha256": hashlib.sha256("\n".join(rows).encode("utf-8")).hexdigest(),
            "report": report_digest(path / "_run_report.json")}


def _plain(value):
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def files_digest(path: pathlib.Path, out: pathlib.Path) -> dict:
    """The sha256 of every file (a parquet file: of its rows, which Spark may encode differently)."""
    files = {}
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        name = str(file.relative_to(path))
        if file.name in ("_run_report.json", "report.html", "_sparkprep.json") or file.name.endswith(".crc") \
                or "_model" in file.parts:
            continue
        if file.suffix == ".parquet":
            directory = str(file.parent.relative_to(path))
            if directory not in files:
                files[directory] = table_digest(file.parent, out)["sha256"]
            continue
        data = file.read_bytes()
        if file.name == "manifest.json":  # the input's identity and config name this run's paths
            manifest = json.loads(data)
            manifest.pop("input", None)
            manifest.pop("config", None)
            data = json.dumps(manifest, sort_keys=True).encode()
        files[name] = hashlib.sha256(data).hexdigest()
    return {"files": len(files), "sha256": files, "report": report_digest(path / "_run_report.json")}


def report_digest(path: pathlib.Path) -> dict:
    if not path.exists():
        return {}
    report = json.loads(path.read_text())
    kept = {k: report.get(k) for k in REPORT_KEYS if k in report}
    text = json.dumps(kept, sort_keys=True, default=str)
    for prefix in (str(path.parent.parent), "file:" + str(path.parent.parent)):
        text = text.replace(prefix, "<out>")
    return {"keys": sorted(kept), "sha256": hashlib.sha256(text.encode()).hexdigest()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", required=True, help="where the fixed inputs are (made when missing)")
    parser.add_argument("--out", required=True, help="a new directory for this run's outputs")
    opts = parser.parse_args(argv)
    inputs, out = pathlib.Path(opts.inputs).resolve(), pathlib.Path(opts.out).resolve()
    make_inputs(inputs)
    digest = {}
    for name, job, args, outputs in runs(inputs, out):
        result = spark_submit(job, *map(str, args))
        if result.returncode != 0:
            sys.exit(f"{name} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        for label, path, kind in outputs:
            digest[label] = table_digest(path, out) if kind == "table" else files_digest(path, out) \
                if kind == "files" else {"report": report_digest(path / "_run_report.json")}
        print(f"{name}: ok", file=sys.stderr)
    print(json.dumps(digest, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    sys.exit(main())
