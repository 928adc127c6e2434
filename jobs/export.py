"""spark-submit jobs/export.py --input out/processed --output out/wds --to webdataset --shard-size 256MB

Write a processed table (or a split table's original bytes) as an ImageFolder tree,
WebDataset tar shards or TFRecord shards, locally or to s3://, with a manifest.json.
"""

import sys

from sparkprep.cli import job_main
from sparkprep.export.flags import export_config


def main(argv=None, spark=None) -> int:
    from sparkprep.export.spark import run_export
    from sparkprep.runlog import export_summary

    return job_main("export", export_config, run_export, argv, summary=export_summary, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
