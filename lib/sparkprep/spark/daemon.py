"""Spark's Python daemon (`pyspark.daemon`) with one per-task cost removed; set by conf/local.conf as
`spark.python.daemon.module sparkprep.spark.daemon`.

Before every task a worker calls `importlib.invalidate_caches()` (pyspark.worker_util), and on
Python 3.10 and 3.11 `zipimporter.invalidate_caches` re-reads the whole directory of every zip on
`sys.path` at once: Spark puts its own pyspark.zip (1,220 entries) and py4j zip there, so each task
spent ~100 ms of a core re-reading them (cpython#103200, made lazy in 3.12). Those zips never change
while a worker lives, so here that re-read is skipped. Patched in the daemon, before it forks, so
every worker inherits it. Measured: docs/performance.md ("Per-task cost").
"""

import sys
import zipimport

if (3, 10) <= sys.version_info < (3, 12):
    def _unchanged(self) -> None:
        """Spark's zips (and --py-files archives, fetched once by name) do not change under a worker."""

    zipimport.zipimporter.invalidate_caches = _unchanged  # novermin (guarded: 3.10 and 3.11 only)

from pyspark import daemon  # noqa: E402  (after the patch: the daemon forks the workers)

if __name__ == "__main__":
    daemon.manager()
