"""The split and preprocess jobs on a real standalone cluster (a master and two one-core
workers, each its own JVM, on 127.0.0.1), shipped as the packaged bundle, give the same
rows as the same jobs on local[2]."""

import re
import sys

import pytest
from helpers import table_rows
from conftest import load_script, spark_submit

from sparkprep.preprocess.flags import preprocess_config
from sparkprep.preprocess.spark import run_preprocess
from sparkprep.split.flags import split_config
from sparkprep.split.spark import run_split
from sparkprep.submit import package


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    local_cluster = load_script("local_cluster")
    with local_cluster.StandaloneCluster(workers=2, cores=1, workdir=str(tmp_path_factory.mktemp("cluster"))) as c:
        yield c


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    dest = tmp_path_factory.mktemp("bundle") / "bundle"
    package.build(dest)
    return dest


def submit_to(cluster, bundle, job, *args):
    """spark-submit the bundle's copy of the job, with the library only as --py-files."""
    result = spark_submit(str(bundle / "jobs" / f"{job}.py"), *args, master=cluster.url, profile="cluster",
                          conf={"spark.submit.pyFiles": str(bundle / "sparkprep.zip"),
                                "spark.pyspark.python": sys.executable, "spark.executor.memory": "1g",
                                "spark.driver.bindAddress": "127.0.0.1", "spark.driver.host": "127.0.0.1",
                                "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


rows = table_rows


def test_split_on_a_standalone_cluster_matches_local(spark, cluster, bundle, sample_tree, tmp_path):
    # --phash off: the near-duplicate audit's many small stages are tested in one session; here they
    # would only add half a minute of task scheduling across JVMs
    args = ["--input", str(sample_tree), "--ratios", "0.7,0.15,0.15", "--seed", "11", "--validate", "full",
            "--key-by", r"group:/(p\d+)_", "--phash", "off"]
    result = submit_to(cluster, bundle, "split", *args, "--output", str(tmp_path / "cluster"))
    assert "== split summary ==" in result.stdout
    assert cluster.alive_workers() == 2
    run_split(spark, split_config([*args, "--output", str(tmp_path / "local")]))
    columns = ["key", "split", "label", "path", "sha256", "status", "error", "rel_path", "phash", "content"]
    local = rows(tmp_path / "local", columns)
    assert rows(tmp_path / "cluster", columns) == local
    grouped = [r for r in local if re.search(r"/(p\d+)_", r["rel_path"])]
    assert len(grouped) >= 70 and all(r["status"] == "ok" for r in grouped)
    assert all(r["key"] == re.search(r"/(p\d+)_", r["rel_path"]).group(1) for r in grouped)  # keyed by patient


def test_preprocess_on_a_standalone_cluster_matches_local(spark, cluster, bundle, sample_tree, tmp_path):
    args = ["--input", str(sample_tree), "--size", "40", "--augment", "hflip,rotate:10,crop:0.9,color:0.1",
            "--copies", "2", "--seed", "3", "--phash", "off"]
    result = submit_to(cluster, bundle, "preprocess", *args, "--output", str(tmp_path / "cluster"))
    assert "== preprocess summary ==" in result.stdout and "normalize (train" in result.stdout
    run_preprocess(spark, preprocess_config([*args, "--output", str(tmp_path / "local")]))
    columns = ["key", "split", "label", "path", "status", "error", "aug_index", "transform", "image",
               "width", "height", "channels"]
    on_cluster, local = rows(tmp_path / "cluster", columns), rows(tmp_path / "local", columns)
    assert on_cluster == local and any(r["aug_index"] == 2 for r in local)
