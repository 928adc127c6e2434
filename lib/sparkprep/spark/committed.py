"""A killed run's Spark-written staging directory: the rows its committed tasks left there.

Hadoop's FileOutputCommitter (algorithm 1, Spark's default on local disks and HDFS) writes each
task attempt under <dir>/_temporary/<job attempt>/_temporary/attempt_*/ and, when the driver lets
the task commit, renames that directory to <dir>/_temporary/<job attempt>/task_*/. A committed
task's files are whole and hold every row the task made; an attempt's files are never read. A write
that finished (killed later) left its files in place: they are whole too.
Committers that put a task's files in place when it commits (algorithm 2, EMRFS's S3-optimised
one) leave them where a finished write's are (not tested here); those that make files visible only
at job commit (S3A's magic and staging committers) leave nothing to find, and nothing is reused. The pipeline resumes from these rows: the two-pass route its transform
(sparkprep.preprocess.spark.incremental_frame, `resumed`), the one pass written by Spark its rows
(sparkprep.pipeline.spark.reuse.resumed_rows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkprep.spark.hadoop_fs import HadoopFS

# relative to the directory written: a committed task's data file, and a data file of a finished write
# (job committed: its tasks' files moved into place); no name in either path starts with '_' or '.'
_COMMITTED = re.compile(r"^_temporary/\d+/(task_[^/]+)/(?:[^/._][^/]*/)*[^/._][^/]*\.parquet$")
_FINISHED = re.compile(r"^(?:[^/._][^/]*/)*(part-\d+)[^/]*\.parquet$")


@dataclass
class Committed:
    """The committed tasks' files found in killed runs' staging directories."""

    sources: List[str] = field(default_factory=list)   # the staging directories looked in
    tasks: int = 0
    files: List[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"from": self.sources, "tasks_reused": self.tasks, "data_files_read": len(self.files)}


def committed_files(root: str, uris: Sequence[str]) -> List[Tuple[str, str]]:
    """(task, file) of the data files of committed tasks among these URIs listed below root (pure). A write that
    finished left its files in place: each is its task's (the task is named by the part number Spark gives)."""
    found = []
    for uri in uris:
        rel = uri[len(root.rstrip("/")) + 1:] if uri.startswith(root.rstrip("/") + "/") else ""
        match = _COMMITTED.match(rel) or _FINISHED.match(rel)
        if match:
            found.append((match.group(1), uri))
    return found


def committed_rows(spark: SparkSession, stagings: Sequence[str], partition_by: Optional[str] = "split"
                   ) -> Tuple[Optional[DataFrame], Committed]:
    """The rows of the committed tasks of these staging directories, with `_source` (the index of the
    directory), and the partition column from each file's directory name; None when there are none."""
    fs = HadoopFS(spark)
    found = Committed()
    frames = []
    for index, staging in enumerate(stagings):
        found.sources.append(staging)
        if not fs.exists(staging):
            continue
        files = committed_files(fs.qualify(staging), [uri for uri, _, _ in fs.list_files(staging, ".parquet")])
        if not files:
            continue
        found.tasks += len({task for task, _ in files})
        found.files += [uri for _, uri in files]
        rows = spark.read.parquet(*[uri for _, uri in files]).withColumn("_source", F.lit(index))
        if partition_by:
            rows = rows.withColumn(partition_by, F.url_decode(F.regexp_extract(
                F.input_file_name(), f"/{partition_by}=([^/]*)/[^/]*$", 1)))
        frames.append(rows)
    if not frames:
        return None, found
    rows = frames[0]
    for more in frames[1:]:
        rows = rows.unionByName(more, allowMissingColumns=True)
    return rows, found
