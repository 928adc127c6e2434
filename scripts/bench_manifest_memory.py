"""Driver memory with a large manifest: peak RSS of the driver's Python process and of its JVM while
`--manifest` plans and reconciles a synthetic uri table, at two sizes. Flat means nothing of
O(objects) reaches the driver.

    .venv/bin/python scripts/bench_manifest_memory.py --rows 1000000,10000000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "lib"))

CHILD = r"""
import os, sys, time, resource
sys.path.insert(0, {lib!r})
from sparkprep.spark.session import build_session
from sparkprep.ingest.flags import ingest_config
from sparkprep.ingest.spark import manifest_catalog
spark = build_session("manifest-memory", {{"spark.master": "local[2]", "spark.ui.enabled": "false",
                                            "spark.driver.memory": "1g", "spark.sql.shuffle.partitions": "8"}})
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cfg = ingest_config(["--manifest", {manifest!r}, "--input", "s3://synthetic", "--output", {out!r}])
start = time.time()
catalog, rec = manifest_catalog(spark, cfg)
jvm_pid = spark.sparkContext._jvm.ProcessHandle.current().pid()
jvm_peak = int([l for l in open(f"/proc/{{jvm_pid}}/status") if l.startswith("VmHWM")][0].split()[1])
print(base, rec.listed, rec.expected_rows, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, jvm_peak, time.time() - start)
"""


def make_manifest(path: str, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if os.path.exists(path):
        return
    writer = None
    for start in range(0, rows, 1_000_000):
        n = min(1_000_000, rows - start)
        table = pa.table({"uri": [f"s3://synthetic/c{i % 100}/{i:09d}.jpg" for i in range(start, start + n)],
                          "size": [1000] * n})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--dir", default=os.path.join(REPO, "bench", "manifests"))
    args = parser.parse_args(argv)
    os.makedirs(args.dir, exist_ok=True)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    for rows in (int(r) for r in args.rows.split(",")):
        manifest = os.path.join(args.dir, f"uris-{rows}.parquet")
        make_manifest(manifest, rows)
        script = CHILD.format(lib=os.path.join(REPO, "lib"), manifest=manifest, out=os.path.join(args.dir, "out"))
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
        base_kb, listed, wanted, py_kb, jvm_kb, seconds = out.stdout.split()[-6:]
        print(f"{int(rows):>11,} rows: listed {int(listed):,}, driver Python peak {int(py_kb) / 1024:.0f} MB "
              f"({int(base_kb) / 1024:.0f} MB with the session alone), "
              f"driver JVM peak {int(jvm_kb) / 1024:.0f} MB, {float(seconds):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
