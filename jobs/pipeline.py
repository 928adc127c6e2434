"""spark-submit jobs/pipeline.py --input data/mednist --output out/mednist \\
       --ratios 0.7,0.15,0.15 --size 224 --augment hflip,rotate:15 --copies 2 --to imagefolder,webdataset

Raw files to a split table, a processed table and exports, in one Spark application and
(in hash mode) one Python pass per file. Takes every flag of split, preprocess and export.
"""

import sys

from sparkprep.cli import job_main


def main(argv=None, spark=None) -> int:
    return job_main("pipeline", argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
