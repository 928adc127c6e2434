"""spark-submit jobs/ingest.py --input RAW_DIR --output CATALOG [--validate full] ...

Catalogue raw files: one row per file with its bytes, header metadata, sha256 and a
status; bad files are quarantined with a reason, never a crash.
"""

import sys

from sparkprep.cli import job_main


def main(argv=None, spark=None) -> int:
    return job_main("ingest", argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
