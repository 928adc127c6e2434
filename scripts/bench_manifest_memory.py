"""Driver memory with a large manifest: the peak resident memory of the driver's Python process
and of its JVM while `spark-submit jobs/split.py --manifest M --plan` counts and sizes a synthetic
uri table, at two sizes, under a driver heap smaller than the larger table's uris. Flat means
nothing of O(objects) reaches the driver.

    .venv/bin/python scripts/bench_manifest_memory.py --rows 1000000,10000000
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import local_submit

DRIVER_HEAP = "512m"  # the 10M table's uris alone are 600 MB of characters


def make_manifest(path: str, rows: int) -> int:
    """A parquet uri table of `rows` objects of 300,000 bytes; returns the uris' total characters."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not os.path.exists(path):
        with pq.ParquetWriter(path + ".part", pa.schema([("uri", pa.string()), ("size", pa.int64())])) as writer:
            for start in range(0, rows, 1_000_000):
                uris = [f"s3://synthetic-bucket/class-{i % 100:03d}/images/2026/{i:012d}.jpeg"
                        for i in range(start, min(rows, start + 1_000_000))]
                writer.write_table(pa.table({"uri": uris, "size": [300_000] * len(uris)}))
        os.replace(path + ".part", path)
    return len(f"s3://synthetic-bucket/class-000/images/2026/{0:012d}.jpeg") * rows  # every uri has this length


def process_kind(name: str, cmdline: str):
    if name == "java":
        return "driver_jvm"
    return "driver_python" if name.startswith("python") and "jobs/split.py" in cmdline else None


def measure(manifest: str, out: str) -> dict:
    """Run split --plan on the manifest; its planned file count and the driver's peaks in MB."""
    cmd = local_submit.submit_command("split", ["--manifest", manifest, "--output", out, "--plan"],
                                      conf={"spark.driver.memory": DRIVER_HEAP})
    result, peaks = local_submit.watched_submit(cmd, process_kind)
    if result.returncode != 0:
        raise RuntimeError(f"split --plan failed:\n{result.stdout[-3000:]}")
    files = int(re.search(r"== plan: split of ([\d,]+) files", result.stdout).group(1).replace(",", ""))
    return {"files": files, **peaks, "output": result.stdout}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--dir", default=str(local_submit.REPO / "bench" / "manifests"))
    args = parser.parse_args(argv)
    os.makedirs(args.dir, exist_ok=True)
    for rows in (int(r) for r in args.rows.split(",")):
        manifest = os.path.join(args.dir, f"uris-{rows}.parquet")
        chars = make_manifest(manifest, rows)
        found = measure(manifest, os.path.join(args.dir, "out"))
        print(f"{rows:>11,} rows ({chars / 1e6:,.0f} MB of uri characters, driver heap {DRIVER_HEAP}): planned "
              f"{found['files']:,} files; driver Python peak {found['driver_python']:.0f} MB, "
              f"driver JVM peak {found['driver_jvm']:.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
