"""spark-submit jobs/preprocess.py --input out/splits --output out/processed --size 224 \\
       --resize shorter-side-crop --mode RGB --encode jpeg:90 --augment hflip,rotate:15 --copies 4

Decode, orient, convert, resize, augment and encode images into a training-ready table
partitioned by split. Raw files are ingested and split inline.
"""

import sys

from sparkprep.cli import job_main


def main(argv=None, spark=None) -> int:
    return job_main("preprocess", argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
