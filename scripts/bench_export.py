"""Benchmark the export job against a plain single-process loop writing the same shards.

In one run, on a processed table (default: the 8,000-photo table bench_preprocess.py leaves
in bench/out-pipeline-8000/processed, else a fresh preprocess of the sample tree):
  (a) `spark-submit jobs/export.py --to webdataset`, `--to tfrecord`, `--to recordio`, `--to hf` and `--to mds`
      on local[N];
  (b) one Python process: pyarrow reads the table, and the same record functions
      (sparkprep.export.shards, .hf, .mds) write the same shards in the same order with tarfile framing.
Prints samples/s and MB/s for each, the ratio a/b, and checks (a) and (b) wrote
byte-identical WebDataset, RecordIO, hf and mds shards (the .rec files; (b) writes no .idx, .lst or index.json).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import shutil
import sys
import time

import local_submit
import pyarrow.parquet as pq

from sparkprep.export import export_rows, shards
from sparkprep.export.formats import FORMATS


def loop_export(table: pathlib.Path, out: pathlib.Path, export_format: str, shard_size: int) -> dict:
    """The same shards, written sequentially by one process: what a careful script would do."""
    present = set(pq.ParquetDataset(str(table)).schema.names)  # a processed table has no extras
    columns = [c for c in export_rows.EXPORT_COLUMNS if c in present]
    data = pq.read_table(str(table), columns=columns + ["status"]).to_pylist()
    samples = [shards.Sample(**{c: r[c] for c in columns}) for r in data if r["status"] == "ok"]
    classes = shards.class_map(s.label for s in samples)
    fmt = FORMATS[export_format].configured(shard_size, {s.image_format for s in samples})
    out.mkdir(parents=True)
    written = 0
    for split in sorted({s.split for s in samples}):
        ordered = sorted((s for s in samples if s.split == split), key=lambda s: shards.order_key(s.name))
        records = [fmt.record(s, classes.get(s.label, shards.UNLABELED_INDEX), i) for i, s in enumerate(ordered)]
        ids = shards.pack_by_size([len(r) for r in records], shard_size, fmt.overhead)
        total = max(ids) + 1
        for shard in range(total):
            if fmt.writes_rows:  # hf: a parquet file from the shard's rows; mds: a shard from its samples
                body = b"".join(fmt.shard_file([(s, classes.get(s.label, shards.UNLABELED_INDEX))
                                                for s, i in zip(ordered, ids) if i == shard], classes))
            else:
                body = b"".join(r for r, i in zip(records, ids) if i == shard)
                body += fmt.trailer(len(body))
            (out / fmt.shard_name(split, shard, total)).parent.mkdir(parents=True, exist_ok=True)
            (out / fmt.shard_name(split, shard, total)).write_bytes(body)
            written += len(body)
    return {"samples": len(samples), "bytes": written}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=str(local_submit.REPO / "bench" / "out-pipeline-8000" / "processed"))
    parser.add_argument("--dir", default=str(local_submit.REPO / "bench" / "out-export"))
    parser.add_argument("--shard-size", default="64MB")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args(argv)
    table = pathlib.Path(args.table)
    if not table.exists():
        sys.exit(f"no processed table at {table}: run scripts/bench_preprocess.py --images 8000 first")
    out = pathlib.Path(args.dir)
    shutil.rmtree(out, ignore_errors=True)
    from sparkprep.values import parse_bytes

    limit = parse_bytes(args.shard_size)
    results = {}
    for export_format in ("webdataset", "tfrecord", "recordio", "hf", "mds"):
        wall = local_submit.timed_spark_submit("export", "--input", table, "--output", out / f"a-{export_format}",
                                               "--to", export_format, "--shard-size", args.shard_size, master=args.master)
        report = json.loads((out / f"a-{export_format}" / "_run_report.json").read_text())
        manifest = json.loads((out / f"a-{export_format}" / "manifest.json").read_text())
        shard_bytes = sum(s["bytes"] for s in manifest["shards"])  # .rec only; no README.md or index.json
        started = time.perf_counter()
        loop = loop_export(table, out / f"b-{export_format}", export_format, limit)
        loop_s = time.perf_counter() - started
        n, mb = report["samples"], report["output"]["bytes"] / 1e6
        if (loop["samples"], loop["bytes"]) != (n, shard_bytes):
            sys.exit(f"{export_format}: (a) wrote {n} samples, {shard_bytes} shard bytes; (b) {loop}")
        results[export_format] = {"samples": n, "mb": round(mb, 1), "a_wall_s": round(wall, 2),
                           "a_job_s": report["seconds"], "b_loop_s": round(loop_s, 2),
                           "a_over_b_wall": round(loop_s / wall, 2), "a_over_b_job": round(loop_s / report["seconds"], 2)}
        print(f"{export_format}: {n} samples, {mb:.0f} MB")
        print(f"  (a) spark-submit export  {n / wall:8.1f} samples/s wall, {mb / wall:6.1f} MB/s "
              f"({wall:.1f}s; job {report['seconds']:.1f}s)")
        print(f"  (b) one-process loop     {n / loop_s:8.1f} samples/s,      {mb / loop_s:6.1f} MB/s ({loop_s:.1f}s)")
        print(f"  a/b (throughput) = {loop_s / wall:.2f} wall, {loop_s / report['seconds']:.2f} job")
    identical = True
    for export_format, pattern in (("webdataset", "*.tar"), ("recordio", "*.rec"), ("hf", "data/*.parquet"),
                                    ("mds", "*/*.mds")):
        written = sorted((out / f"b-{export_format}").glob(pattern))
        theirs = out / f"a-{export_format}"
        same = len(written) == len(list(theirs.glob(pattern))) and all(
            hashlib.sha256((theirs / p.relative_to(out / f"b-{export_format}")).read_bytes()).digest()
            == hashlib.sha256(p.read_bytes()).digest() for p in written)
        print(f"{export_format} shards byte-identical between (a) and (b): {same}")
        results[f"identical_{export_format}_shards"] = same
        identical = identical and same
    (out.parent / "bench_export.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
