"""Injected task failures, for the tests that prove retries give the same output."""

from __future__ import annotations

import os
from typing import Callable

from pyspark import TaskContext

# Test hook: attempt 0 of every task that calls failure_hook fails after this many records.
FAIL_ENV = "SPARKPREP_TEST_FAIL_AFTER_RECORDS"


def failure_hook() -> Callable[[int], None]:
    """On the executor: a checkpoint(records so far) that fails attempt 0 of the task after FAIL_ENV
    records; a no-op when FAIL_ENV is unset (every real run) or on a retry."""
    after = int(os.environ.get(FAIL_ENV, "0") or 0)
    context = TaskContext.get()
    if not after or context is None or context.attemptNumber() > 0:
        return lambda records: None
    seen = {"records": 0}

    def checkpoint(records: int) -> None:
        seen["records"] += 1
        if seen["records"] >= after:
            raise RuntimeError(f"injected failure after {after} records ({FAIL_ENV})")
    return checkpoint
