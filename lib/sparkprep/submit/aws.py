"""What sparkprep-submit-emr and sparkprep-submit-sagemaker share: job steps, the bundle upload, dry runs.

A step is one job with the same flags as a local run, e.g.
    --step "split --input s3://bucket/raw --output s3://bucket/splits --ratios 0.8,0.1,0.1"
Its flags are validated by the job's own parser before anything is sent, so a typo
exits 2 here instead of failing on the cluster twenty minutes later.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shlex
import sys
from typing import Dict, List, Optional, Tuple

from sparkprep.submit import package

JOBS = ("ingest", "split", "preprocess", "export", "pipeline", "report", "features")


class SubmitUsageError(ValueError):
    """Bad usage of a submit script: one line, exit 2."""


def parse_step(text: str) -> Tuple[str, List[str]]:
    """'split --input ... --output ...' -> ('split', [...]), validated by the job's own parser."""
    from sparkprep.errors import UsageError
    from sparkprep.export.flags import export_config
    from sparkprep.features.flags import features_config
    from sparkprep.ingest.flags import ingest_config
    from sparkprep.pipeline.flags import pipeline_config
    from sparkprep.preprocess.flags import preprocess_config
    from sparkprep.report.flags import report_config
    from sparkprep.split.flags import split_config

    words = shlex.split(text)
    if not words or words[0] not in JOBS:
        raise SubmitUsageError(f"--step: expected '<{'|'.join(JOBS)}> --flag value ...', got {text!r}")
    job, args = words[0], words[1:]
    parse = {"ingest": ingest_config, "split": split_config, "preprocess": preprocess_config,
             "export": export_config, "pipeline": pipeline_config, "report": report_config,
             "features": features_config}[job]
    try:
        parse(args)
    except UsageError as exc:
        raise SubmitUsageError(f"--step {job}: {exc}") from None
    return job, args


def uses_delta(args: List[str]) -> bool:
    return any(a == "--format" and b == "delta" for a, b in zip(args, args[1:])) or "--format=delta" in args


def split_s3_uri(uri: str) -> Tuple[str, str]:
    if not uri.startswith("s3://") or len(uri[5:].split("/", 1)[0]) < 3:
        raise SubmitUsageError(f"expected s3://bucket/prefix, got {uri!r}")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.strip("/")


def bundle_files(bundle: pathlib.Path) -> Dict[str, pathlib.Path]:
    """The bundle's files by relative path, built afresh (about a second) so the code is never stale."""
    package.build(bundle)
    return {str(p.relative_to(bundle)): p for p in sorted(bundle.rglob("*")) if p.is_file()}


def upload_plan(bundle: pathlib.Path, code_uri: str) -> List[Tuple[pathlib.Path, str]]:
    return [(path, f"{code_uri.rstrip('/')}/{rel}") for rel, path in bundle_files(bundle).items()]


def upload(s3, plan: List[Tuple[pathlib.Path, str]]) -> None:
    for path, uri in plan:
        bucket, key = split_s3_uri(uri)
        s3.upload_file(str(path), bucket, key)
        print(f"uploaded {uri}", file=sys.stderr)


def print_request(operation: str, request: dict) -> None:
    """What --dry-run prints: the boto3 operation and its exact keyword arguments, as JSON."""
    print(json.dumps({"operation": operation, "request": request}, indent=2, sort_keys=True))


def conf_args(properties: Dict[str, str]) -> List[str]:
    out: List[str] = []
    for key, value in properties.items():
        out += ["--conf", f"{key}={value}"]
    return out


def boto3_client(service: str, region: str, endpoint_url: Optional[str] = None):
    import boto3

    return boto3.client(service, region_name=region, endpoint_url=endpoint_url)


def default_region() -> str:
    import boto3

    return boto3.session.Session().region_name or "us-east-1"


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one-line SubmitUsageErrors (exit 2)."""

    def error(self, message):
        raise SubmitUsageError(message)
