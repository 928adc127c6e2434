"""spark-submit --py-files my_features.py jobs/map.py --input out/splits --output out/features \
    --map my_features:extract --schema "signal string, hr double"

Run your own Python over every sample (all of its files) of a split table, with
sparkprep's guarantees: an exception is a map_error row, None is a filtered row, and
nothing is lost.
"""

import sys

from sparkprep.cli import job_main


def main(argv=None, spark=None) -> int:
    return job_main("map", argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
