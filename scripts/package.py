#!/usr/bin/env python3
"""`scripts/package.py [--lambda]`: the same as the `sparkprep-package` console command
(sparkprep.submit.package), for a checkout without the package installed."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))

from sparkprep.submit.package import main  # noqa

if __name__ == "__main__":
    sys.exit(main())
