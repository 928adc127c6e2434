"""The shared entry point of jobs/*.py: parse, build the session, run, summarise, exit."""

from __future__ import annotations

import sys
import traceback
from typing import Callable, Optional, Sequence

from sparkprep.config import UsageError

USAGE_EXIT = 2


def job_main(job: str, parse: Callable, run: Callable, argv: Optional[Sequence[str]] = None,
             summary: Optional[Callable[[dict], str]] = None) -> int:
    """Exit 2 with one line on bad usage (before Spark starts), 1 with the cause on failure."""
    try:
        cfg = parse(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        print(f"{job}: error: {exc}", file=sys.stderr)
        return USAGE_EXIT
    from sparkprep.report.run_report import summary_table
    from sparkprep.spark.session import build_session

    spark = build_session(job)
    try:
        report = run(spark, cfg)
    except UsageError as exc:
        print(f"{job}: error: {exc}", file=sys.stderr)
        return USAGE_EXIT
    except Exception as exc:  # noqa: BLE001 - the cause is printed, the exit code says failure
        traceback.print_exc()
        print(f"{job}: failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
              file=sys.stderr)
        return 1
    finally:
        spark.stop()
    print((summary or summary_table)(report))
    return 0
