"""spark-submit --py-files my_features.py jobs/map.py --input out/splits --output out/features \
    --map my_features:extract --schema "signal string, hr double"

Run your own Python over every sample (all of its files) of a split table, with
sparkprep's guarantees: an exception is a map_error row, None is a filtered row, and
nothing is lost.
"""

import sys

from sparkprep.cli import job_main
from sparkprep.map.flags import map_config


def main(argv=None, spark=None) -> int:
    from sparkprep.map.spark import run_map
    from sparkprep.runlog import export_summary, summary_table

    def summary(report: dict) -> str:  # --to makes the output an export
        return export_summary(report) if "manifest" in report["output"] else summary_table(report)

    return job_main("map", map_config, run_map, argv, summary=summary, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
