"""Pillow's own test images (hundreds of odd, broken and malicious files, from the
sdist on PyPI) through `spark-submit jobs/ingest.py --validate full`: no task fails, every file is
accounted for with a status, and Python workers stay under spark.executor.pyspark.memory."""

import collections
import json
import subprocess
import sys
import tarfile

import PIL
import pyarrow.parquet as pq
import pytest
from conftest import spark_submit

EXTENSIONS = "jpg,jpeg,png,gif,bmp,tif,tiff,webp,ppm"


@pytest.fixture(scope="module")
def pillow_images(tmp_path_factory):
    """Tests/images of the Pillow sdist this venv runs (downloaded at set-up, never committed)."""
    where = tmp_path_factory.mktemp("pillow")
    fetched = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
                              f"pillow=={PIL.__version__}", "-d", str(where)], capture_output=True, text=True)
    if fetched.returncode != 0:
        pytest.skip(f"the Pillow sdist could not be downloaded from the package index: {fetched.stderr[-300:]}")
    sdist = next(where.glob("pillow-*.tar.gz"))
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if "/Tests/images/" in m.name and m.isfile()]
        archive.extractall(where, members=members)  # noqa: S202 - PyPI's own sdist, files only
    return next(where.glob("pillow-*/Tests/images"))


def test_pillow_test_images_are_all_accounted_for_without_a_failed_task(pillow_images, tmp_path):
    out = tmp_path / "catalog"
    result = spark_submit("ingest", "--input", pillow_images, "--output", out, "--validate", "full",
                          "--extensions", EXTENSIONS, "--max-quarantine-fraction", "1", master="local[2]",
                          conf={"spark.executor.pyspark.memory": "1g"})
    said = result.stdout + result.stderr
    # local[2] allows no task retries (spark.task.maxFailures is 1 there), and a Python worker past
    # spark.executor.pyspark.memory (its RLIMIT_AS) fails its task: exit 0 means no task failed at all
    assert result.returncode == 0, said[-4000:]
    report = json.loads((out / "_run_report.json").read_text())
    assert report["reconciliation"]["reconciled"]
    rows = pq.read_table(str(out), columns=["path", "status", "error"]).to_pylist()
    assert len(rows) == report["reconciliation"]["expected_rows"] >= 600
    statuses = collections.Counter(r["status"] for r in rows)
    assert statuses["ok"] > 0 and statuses["corrupt"] > 0 and statuses["decompression_bomb"] > 0
    assert all(r["error"] for r in rows if r["status"] != "ok")
    print(dict(statuses))
