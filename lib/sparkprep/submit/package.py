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

`--lambda` builds dist/lambda/ instead: sparkprep-online.zip, a deployable AWS Lambda package of
sparkprep.online (the Object Lambda and HTTP handlers, the pure modules they import, and Pillow and
numpy at the versions the offline jobs pin, so bytes match), plus lambda.json (size, sha256,
runtime, handlers).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import modulefinder
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from typing import Dict, Iterable, List, Tuple

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


def write_zip(dest: pathlib.Path, entries: Iterable[Tuple[str, pathlib.Path]] = ()) -> None:
    """A reproducible zip of (name, file) entries, by default the library's sources."""
    entries = sorted(entries or ((str(p.relative_to(REPO / "lib")), p) for p in (REPO / "lib").rglob("*.py")))
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in entries:
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = (0o755 if path.stat().st_mode & 0o111 else 0o644) << 16
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


LAMBDA_HANDLERS = {"object_lambda": "sparkprep.online.object_lambda.handler",
                   "function_url": "sparkprep.online.http.function_url_handler"}
LAMBDA_RUNTIME_DEPENDENCIES = ("pillow", "numpy")  # boto3 comes with every Lambda Python runtime
LAMBDA_PLATFORMS = {"x86_64": ("manylinux_2_28_x86_64", "manylinux2014_x86_64"),
                    "arm64": ("manylinux_2_28_aarch64", "manylinux2014_aarch64")}
LAMBDA_ZIP = "sparkprep-online.zip"


def online_modules() -> List[pathlib.Path]:
    """The sparkprep sources the Lambda handlers import (every import, including those inside
    functions), found by modulefinder. Spark's glue stays out: the job-running helpers of
    sparkprep.cli that import it are never called online (the package test imports every handler)."""
    finder = modulefinder.ModuleFinder(path=[str(REPO / "lib")], excludes=[
        "pyspark", "pyarrow", "pandas", "starlette", "boto3", "botocore", "sparkprep.spark", "sparkprep.report"])
    for handler in LAMBDA_HANDLERS.values():
        finder.import_hook(handler.rsplit(".", 1)[0])
    return sorted(pathlib.Path(m.__file__) for name, m in finder.modules.items()
                  if (name == "sparkprep" or name.startswith("sparkprep.")) and m.__file__)


def pinned(names: Iterable[str]) -> List[str]:
    """name==version for each name, as requirements.txt pins it (the offline jobs' versions)."""
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (REPO / "requirements.txt").read_text(), re.M))
    return [f"{name}=={pins[name]}" for name in names]


def build_lambda(dest: pathlib.Path, python: str = "3.12", arch: str = "x86_64") -> dict:
    """dest/sparkprep-online.zip and dest/lambda.json; returns what lambda.json records."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as work:
        deps = pathlib.Path(work)
        platforms = [arg for platform in LAMBDA_PLATFORMS[arch] for arg in ("--platform", platform)]
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(deps), *platforms,
                        "--implementation", "cp", "--python-version", python, "--only-binary=:all:", "--no-deps",
                        *pinned(LAMBDA_RUNTIME_DEPENDENCIES)], check=True)
        entries = [(str(p.relative_to(REPO / "lib")), p) for p in online_modules()]
        entries += [(str(p.relative_to(deps)), p) for p in deps.rglob("*") if p.is_file()
                    and "__pycache__" not in p.parts and "tests" not in p.relative_to(deps).parts[1:]
                    and not p.relative_to(deps).parts[0].endswith("bin")]
        write_zip(dest / LAMBDA_ZIP, entries)
        unzipped = sum(path.stat().st_size for _, path in entries)
    data = (dest / LAMBDA_ZIP).read_bytes()
    record = {"zip": LAMBDA_ZIP, "bytes": len(data), "unzipped_bytes": unzipped,
              "sha256": hashlib.sha256(data).hexdigest(), "runtime": f"python{python}", "architecture": arch,
              "handlers": LAMBDA_HANDLERS, "dependencies": pinned(LAMBDA_RUNTIME_DEPENDENCIES),
              "sparkprep_modules": sorted(name for name, _ in entries if name.startswith("sparkprep/"))}
    (dest / "lambda.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sparkprep-package", description=__doc__.splitlines()[0])
    parser.add_argument("--dest", help="output directory, replaced (default dist/bundle, or dist/lambda)")
    parser.add_argument("--lambda", dest="lambda_zip", action="store_true",
                        help="build the sparkprep.online Lambda zip instead of the cluster bundle")
    parser.add_argument("--python", default="3.12", choices=("3.11", "3.12", "3.13"),
                        help="--lambda: the Lambda Python runtime (default 3.12: Amazon Linux 2023)")
    parser.add_argument("--arch", default="x86_64", choices=tuple(LAMBDA_PLATFORMS), help="--lambda: architecture")
    args = parser.parse_args(argv)
    if args.lambda_zip:
        dest = pathlib.Path(args.dest or REPO / "dist" / "lambda")
        record = build_lambda(dest, args.python, args.arch)
        print(f"{dest / record['zip']}: {record['bytes'] / 2**20:.1f} MiB zipped, "
              f"{record['unzipped_bytes'] / 2**20:.1f} MiB unzipped (Lambda: 50 MiB zip upload, 250 MiB unzipped)")
        print(f"runtime {record['runtime']} {record['architecture']}; handlers: "
              + ", ".join(record["handlers"].values()))
        return 0
    args.dest = args.dest or str(REPO / "dist" / "bundle")
    files = build(pathlib.Path(args.dest))
    for name, info in files.items():
        print(f"{info['bytes']:>9}  {name}")
    print(f"bundle: {args.dest} ({len(files)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
