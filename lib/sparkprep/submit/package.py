"""Build what a cluster needs into dist/bundle/ (`make package`):

  sparkprep.zip            the library, for --py-files / submit_py_files (pure Python)
  jobs/*.py                the job entry points (the spark-submit application files)
  conf/*                   Spark profiles, plus emr-configurations.json: conf/emr.conf (+ emr-delta.conf)
                           in the shape of EMR's Configurations API
  requirements-cluster.txt what nodes need besides Spark (no pyspark)
  bootstrap-emr.sh         EMR bootstrap action: pip-installs requirements-cluster.txt
  sagemaker/configuration.json  conf/sagemaker.conf as a SageMaker Spark job's configuration
  bundle.json              every file's sha256 and size

The zip is reproducible: sorted entries, fixed timestamps.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import shutil
import sys
import zipfile
from typing import Dict, List

REPO = pathlib.Path(__file__).resolve().parents[3]  # lib/sparkprep/submit/ -> the checkout
FIXED_TIME = (2020, 1, 1, 0, 0, 0)
EMR_JSON = "emr-configurations.json"  # conf/emr.conf + conf/emr-delta.conf in EMR's API shape
BOOTSTRAP = """#!/bin/bash
# EMR bootstrap action: install sparkprep's Python dependencies on every node.
# Args: the S3 URI of requirements-cluster.txt (sparkprep-submit-emr passes it).
set -euo pipefail
aws s3 cp "$1" /tmp/sparkprep-requirements-cluster.txt
sudo python3 -m pip install --quiet -r /tmp/sparkprep-requirements-cluster.txt
"""


def read_properties(path: pathlib.Path) -> Dict[str, str]:
    """A spark-defaults style file (key, whitespace, value; # comments) as a dict."""
    out: Dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out[key] = value.strip()
    return out


def emr_configurations(delta: bool = True) -> List[dict]:
    """conf/emr.conf (plus conf/emr-delta.conf) as EMR's Configurations JSON."""
    properties = read_properties(REPO / "conf" / "emr.conf")
    configurations = [{"Classification": "spark-defaults", "Properties": properties}]
    if delta:
        properties.update(read_properties(REPO / "conf" / "emr-delta.conf"))
        configurations.append({"Classification": "delta-defaults", "Properties": {"delta.enabled": "true"}})
    return configurations


def sagemaker_configuration() -> List[dict]:
    """conf/sagemaker.conf as the configuration.json a SageMaker Spark processing job reads."""
    return [{"Classification": "spark-defaults", "Properties": read_properties(REPO / "conf" / "sagemaker.conf")}]


def write_zip(dest: pathlib.Path) -> None:
    sources = sorted((REPO / "lib").rglob("*.py"))
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sources:
            info = zipfile.ZipInfo(str(path.relative_to(REPO / "lib")), FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())


def build(dest: pathlib.Path) -> Dict[str, dict]:
    """Build the bundle into dest (replaced); returns {relative path: {sha256, bytes}}."""
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "jobs").mkdir(parents=True)
    (dest / "conf").mkdir()
    write_zip(dest / "sparkprep.zip")
    for job in sorted((REPO / "jobs").glob("*.py")):
        shutil.copyfile(job, dest / "jobs" / job.name)
    for conf in sorted((REPO / "conf").iterdir()):
        if conf.is_file():
            shutil.copyfile(conf, dest / "conf" / conf.name)
    (dest / "conf" / EMR_JSON).write_text(json.dumps(emr_configurations(), indent=2) + "\n")
    (dest / "sagemaker").mkdir()
    (dest / "sagemaker" / "configuration.json").write_text(json.dumps(sagemaker_configuration(), indent=2) + "\n")
    shutil.copyfile(REPO / "requirements-cluster.txt", dest / "requirements-cluster.txt")
    (dest / "bootstrap-emr.sh").write_text(BOOTSTRAP)
    (dest / "bootstrap-emr.sh").chmod(0o755)
    files = {}
    for path in sorted(p for p in dest.rglob("*") if p.is_file()):
        data = path.read_bytes()
        files[str(path.relative_to(dest))] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (dest / "bundle.json").write_text(json.dumps(files, indent=2, sort_keys=True) + "\n")
    return files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sparkprep-package", description=__doc__.splitlines()[0])
    parser.add_argument("--dest", default=str(REPO / "dist" / "bundle"), help="output directory (replaced)")
    args = parser.parse_args(argv)
    files = build(pathlib.Path(args.dest))
    for name, info in files.items():
        print(f"{info['bytes']:>9}  {name}")
    print(f"bundle: {args.dest} ({len(files)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
