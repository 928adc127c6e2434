"""The shared entry of jobs/*.py: a registry job's flags (with --config files) parsed and checked,
then the session, the run and the summary.

Precedence: built-in defaults < the --config file < flags. Every problem is a
`UsageError` with an "expected X, got Y" message, raised before any Spark work.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any, Optional, Sequence

from sparkprep.errors import LeakageFound, UsageError

USAGE_EXIT = 2


def forget_jobs_directory() -> None:
    """Take sparkprep's jobs/ directory off sys.path.

    Python puts the directory of the script it runs first on sys.path, so under spark-submit
    jobs/features.py (or split.py, report.py) would shadow a user's own module of that name,
    e.g. `jobs/map.py --map features:extract --py-files features.py`. The jobs import only
    the library, so they never need it there.
    """
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if not main:
        return
    jobs = os.path.dirname(os.path.abspath(main))
    if all(os.path.isfile(os.path.join(jobs, name)) for name in ("map.py", "features.py", "split.py")):
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != jobs]


def job_main(name: str, argv: Optional[Sequence[str]] = None, spark: Any = None) -> int:
    """Run the registry's job `name`: exit 2 with one line on bad usage (before Spark starts), 1 with
    the cause on failure, 0 after printing its summary.

    spark: a session to run in (a test's, a notebook's), used and left running; by default the
    job builds its own and stops it at the end.
    """
    from sparkprep.jobs import JOBS, named

    forget_jobs_directory()
    entry = JOBS[name]
    try:
        cfg = entry.parse(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return USAGE_EXIT
    from sparkprep.spark.session import build_session

    run, summary = named(entry.run), named(entry.summary)
    own_session = spark is None
    spark = spark if spark is not None else build_session(name)
    try:
        report = run(spark, cfg)
    except UsageError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return USAGE_EXIT
    except LeakageFound as exc:
        print(summary(exc.report))
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the cause is printed, the exit code says failure
        traceback.print_exc()
        print(f"{name}: failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
              file=sys.stderr)
        return 1
    finally:
        if own_session:
            spark.stop()
    print(summary(report))
    return 0
