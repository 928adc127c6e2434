"""Injected faults, for the tests that prove retries, speculation and crashes give the same output.

Every hook is a no-op unless its environment variable is set, which no real run does.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Callable

from pyspark import TaskContext

# Attempt 0 of every task that calls failure_hook fails after this many records ...
FAIL_ENV = "SPARKPREP_TEST_FAIL_AFTER_RECORDS"
# ... by: raise (default: the task fails), kill (SIGKILL of its Python worker, mid-batch), or
# slow:<seconds> (only partition 0's attempt 0 sleeps, once: a straggler for speculation).
FAIL_HOW_ENV = "SPARKPREP_TEST_FAIL_HOW"
# The driver SIGKILLs itself at this point of the publish protocol (tables._publish_staged):
# staged, journal, step0, step1, step2 ...
KILL_DRIVER_ENV = "SPARKPREP_TEST_KILL_DRIVER_AT"
# Tasks from this partition on never start their work (they sleep): the run stops part way, for a
# test that then kills the driver and resumes (sparkprep.pipeline.resume).
STALL_ENV = "SPARKPREP_TEST_STALL_FROM_PARTITION"


def failure_hook() -> Callable[[int], None]:
    """On the executor: a checkpoint(records so far) that fails attempt 0 of the task after FAIL_ENV
    records, as FAIL_HOW_ENV says; a no-op when FAIL_ENV is unset (every real run) or on a retry."""
    after = int(os.environ.get(FAIL_ENV, "0") or 0)
    how = os.environ.get(FAIL_HOW_ENV, "raise")
    context = TaskContext.get()
    if not after or context is None or context.attemptNumber() > 0:
        return lambda records: None
    if how.startswith("slow:") and context.partitionId() != 0:
        return lambda records: None
    seen = {"records": 0}

    def checkpoint(records: int) -> None:
        seen["records"] += 1
        if seen["records"] != after:
            return
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif how.startswith("slow:"):
            time.sleep(float(how.split(":", 1)[1]))
        else:
            raise RuntimeError(f"injected failure after {after} records ({FAIL_ENV})")
    return checkpoint


def driver_point(name: str) -> None:
    """On the driver, at a named point of the publish protocol: SIGKILL this process if asked to."""
    if os.environ.get(KILL_DRIVER_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def stall_point() -> None:
    """On the executor, before a task's work: sleep (for the test to kill the run) in every task of a
    partition from STALL_ENV on; a no-op when it is unset (every real run)."""
    first = os.environ.get(STALL_ENV)
    context = TaskContext.get()
    if first and context is not None and context.partitionId() >= int(first):
        time.sleep(3600)
