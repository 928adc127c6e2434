"""spark-submit jobs/export.py --input out/processed --output out/wds --to webdataset --shard-size 256MB

Write a processed table (or a split table's original bytes) as an ImageFolder tree,
WebDataset tar shards or TFRecord shards, locally or to s3://, with a manifest.json.
"""

import sys

from sparkprep.cli import job_main


def main(argv=None, spark=None) -> int:
    return job_main("export", argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
