"""The Python workers Spark starts run sparkprep's daemon (conf/local.conf, the test session): on Python
3.10 and 3.11 they skip re-reading pyspark.zip before every task (lib/sparkprep/spark/daemon.py)."""

import sys


def test_workers_skip_re_reading_spark_zips_before_each_task(spark):
    def worker_state(batches):  # defined here: pickled by value, the workers cannot import this module
        import importlib
        import sys
        import zipimport

        import pyarrow as pa

        for _ in batches:
            pass
        importlib.invalidate_caches()  # what pyspark.worker_util calls before each task
        method = getattr(zipimport.zipimporter, "invalidate_caches", None)  # Python 3.10+
        patched = method.__code__.co_filename if method else "none"  # which module set it
        zips = sum(p.endswith("pyspark.zip") for p in sys.path)
        yield pa.record_batch([pa.array([patched]), pa.array([zips], pa.int64())], names=["patched", "zips"])

    rows = spark.range(4, numPartitions=4).mapInArrow(worker_state, "patched string, zips long").collect()
    assert len(rows) == 4 and all(r["zips"] >= 1 for r in rows)  # Spark does put its zip on the workers' path
    expected = "sparkprep/spark/daemon.py" if (3, 10) <= sys.version_info < (3, 12) else \
        "zipimport>" if sys.version_info >= (3, 12) else "none"
    assert {r["patched"].endswith(expected) for r in rows} == {True}, {r["patched"] for r in rows}
