"""spark-submit jobs/split.py --input DIR|CATALOG|TABLE --output OUT --ratios 0.7,0.15,0.15 --seed 42

Assign deterministic, versioned (sha256-v1) splits and write a table partitioned by
split. Raw files are ingested inline.
"""

import sys

from sparkprep.cli import job_main


def main(argv=None, spark=None) -> int:
    return job_main("split", argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
