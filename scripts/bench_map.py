"""Benchmark jobs/map.py: an identity function over small two-file samples, against a plain loop.

    .venv/bin/python scripts/bench_map.py [--samples 20000] [--master local[2]] [--members 1]

Both sides run at two sizes (half and all of --samples), each several times with the
fastest run counted, and the marginal throughput between the sizes is compared, so JVM
start-up and fixed costs cancel:
- (a) `spark-submit --py-files identity.py jobs/map.py` on a split table of the samples;
- (b) one Python process: read the same split table with pyarrow, group each sample's
  members, call the same function, write parquet.
Each sample is a `.dat` (64 bytes) and a `.hea` (~20 bytes) file, like a tiny WFDB record; with
--members 1, the `.dat` alone (the map then needs no shuffle: every sample is one file).
Data and split tables are made once under bench/map/ and reused.
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import shutil
import sys
import time

import local_submit
import pyarrow as pa
import pyarrow.parquet as pq

BENCH = local_submit.REPO / "bench" / "map"
IDENTITY = "def identity(sample):\n    return {k: v for k, v in sample.items() if not k.startswith('__')}\n"


def make_tree(root: pathlib.Path, samples: int, members: int = 2) -> None:
    if root.exists():
        return
    for i in range(samples):
        folder = root / f"p{i % 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"r{i:06d}.dat").write_bytes(bytes((i + j) % 256 for j in range(64)))
        if members == 2:
            (folder / f"r{i:06d}.hea").write_bytes(f"r{i:06d} 1 250 64\n".encode())


def split_table(tree: pathlib.Path, out: pathlib.Path, master: str) -> None:
    if (out / "_sparkprep.json").exists():
        return
    result = local_submit.spark_submit("split", "--input", tree, "--output", out, "--samples", "basename",
                                       "--extensions", "dat,hea", master=master)
    if result.returncode:
        sys.exit(result.stdout[-2000:] + result.stderr[-2000:])


def spark_map(table: pathlib.Path, out: pathlib.Path, module: pathlib.Path, master: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    result = local_submit.spark_submit("map", "--input", table, "--output", out, "--map", "identity:identity",
                                       master=master, py_files=[module])
    if result.returncode:
        sys.exit(result.stdout[-2000:] + result.stderr[-2000:])
    return time.perf_counter() - started


def loop_map(table: pathlib.Path, out: pathlib.Path) -> float:
    """The plain Python equivalent: group members by sample, call the function, write parquet."""
    sys.path.insert(0, str(BENCH))
    from identity import identity  # noqa: E402 - written by main() before this runs

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started = time.perf_counter()
    rows = pq.read_table(str(table), columns=["sample", "member", "split", "content"]).to_pylist()
    samples = collections.defaultdict(dict)
    for r in rows:
        samples[r["sample"]][r["member"]] = r["content"]
        samples[r["sample"]]["__split__"] = r["split"]
    outputs = []
    for sample, members in sorted(samples.items()):
        result = identity({"__key__": sample, **members})
        outputs.append({"sample": sample, "members": sorted(result.items())})
    pq.write_table(pa.Table.from_pylist(outputs, schema=pa.schema(
        [("sample", pa.string()), ("members", pa.map_(pa.string(), pa.binary()))])), str(out / "part-0.parquet"))
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--repeat", type=int, default=3, help="spark-submit runs per size; the fastest counts")
    parser.add_argument("--members", type=int, choices=(1, 2), default=2, help="files per sample")
    args = parser.parse_args(argv)
    BENCH.mkdir(parents=True, exist_ok=True)
    module = BENCH / "identity.py"
    module.write_text(IDENTITY)
    sizes = [args.samples // 2, args.samples]
    timings = {}
    for n in sizes:
        suffix = "" if args.members == 2 else "-one-file"
        tree, table = BENCH / f"tree-{n}{suffix}", BENCH / f"splits-{n}{suffix}"
        make_tree(tree, n, args.members)
        split_table(tree, table, args.master)
        loop = min(loop_map(table, BENCH / f"b-{n}") for _ in range(3))  # best of 3: the loop is short
        job = min(spark_map(table, BENCH / f"a-{n}", module, args.master) for _ in range(args.repeat))
        timings[n] = (job, loop)
        print(f"{n:>7} samples: (a) spark-submit map {timings[n][0]:6.1f}s wall   (b) plain loop {timings[n][1]:6.2f}s",
              flush=True)
    small, large = sizes
    extra = large - small
    a = extra / (timings[large][0] - timings[small][0])
    b = extra / (timings[large][1] - timings[small][1])
    print(f"marginal samples/s between {small} and {large}: (a) map job {a:,.0f}   (b) plain loop {b:,.0f}   "
          f"a/b = {a / b:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
