"""The exceptions every layer raises to say how a run ends (README, Jobs).

A `UsageError` is one line and exit code 2, raised before any Spark work where it can be.
"""

from __future__ import annotations


class UsageError(ValueError):
    """A bad invocation: reported as one line, exit code 2."""


class LeakageFound(RuntimeError):
    """--fail-on-leakage: the job finished and wrote everything, and something crosses splits (exit 1)."""

    def __init__(self, report: dict, message: str):
        super().__init__(message)
        self.report = report


class MergeSkewed(RuntimeError):
    """--near-duplicates merge would empty a split or move its share too far; nothing was published (exit 1)."""


class QuarantineError(RuntimeError):
    """More of the input was quarantined than --max-quarantine-fraction allows; nothing was published."""
