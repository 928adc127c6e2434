"""spark-submit jobs/report.py --input out/splits --output out/report

Look at any sparkprep table (catalog, split, processed or mapped; parquet or Delta):
counts, class balance, thumbnails, quarantine, size histograms, exact duplicates and the
near-duplicate leakage audit, in one self-contained report.html. The table is only read.
"""

import sys

from sparkprep.cli import job_main


def main(argv=None, spark=None) -> int:
    return job_main("report", argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
