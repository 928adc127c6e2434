"""How a stage's Python code runs in a Spark task: called by reference, so a worker imports only it.

A function Spark ships to the workers (a mapInArrow callable) is pickled by reference to its
module, and every new Python worker imports that module first. A stage's Spark glue imports
half of pyspark.sql and the stage's other glue; measured with py-spy on the pipeline's workers,
that cost each new worker ~1 s before its first row (pyspark.zip's modules are compiled from
source on every worker start). `in_task` carries the stage's pure function instead.
"""

from __future__ import annotations

from typing import Callable, Iterator

from pyspark import TaskContext

from sparkprep.spark.faults import failure_hook, stall_point


def in_task(batches: Iterator, function: Callable[..., Iterator], **kwargs) -> Iterator:
    """On the executor: function(batches, task=<partition>-<attempt>, written=<the fault hook>, **kwargs).

    task names this attempt's files; written(records) is sparkprep.spark.faults.failure_hook's checkpoint.
    """
    context = TaskContext.get()
    task = f"{context.partitionId():05d}-{context.attemptNumber()}" if context else "00000-0"
    stall_point()
    yield from function(batches, task=task, written=failure_hook(), **kwargs)


def stalled(batches: Iterator, function: Callable[..., Iterator], **kwargs) -> Iterator:
    """On the executor: function(batches, **kwargs), after the fault suite's stall point (a no-op in every
    real run): the two-pass transform, which a test kills part way and resumes (sparkprep.spark.committed)."""
    stall_point()
    yield from function(batches, **kwargs)
