"""What sparkprep-submit-emr and sparkprep-submit-sagemaker share: job steps, the bundle upload, dry runs.

A step is one job with the same flags as a local run, e.g.
    --step "split --input s3://bucket/raw --output s3://bucket/splits --ratios 0.8,0.1,0.1"
Its flags are validated by the job's own parser before anything is sent, so a typo
exits 2 here instead of failing on the cluster twenty minutes later.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pathlib
import shlex
import sys
from dataclasses import replace
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from sparkprep.submit import package

class SubmitUsageError(ValueError):
    """Bad usage of a submit script: one line, exit 2."""


CODE_SUFFIXES = (".py", ".zip", ".egg")


def parse_step(text: str, py_files: Sequence[str] = ()) -> Tuple[str, List[str]]:
    """'split --input ... --output ...' -> ('split', [...]), validated by the job's own parser.

    A step that runs the user's code (map) imports it here when its --py-files are given, so a
    wrong module or function exits 2 now; without them the import check is left to the cluster.
    """
    from sparkprep.errors import UsageError
    from sparkprep.jobs import JOBS

    words = shlex.split(text)
    if not words or words[0] not in JOBS:
        raise SubmitUsageError(f"--step: expected '<{'|'.join(JOBS)}> --flag value ...', got {text!r}")
    name, args = words[0], words[1:]
    entry = JOBS[name]
    if py_files and not entry.runs_user_code:
        users = ", ".join(n for n, e in JOBS.items() if e.runs_user_code)
        raise SubmitUsageError(f"--py-files: only {users} steps run your code; got a {name} step")
    command = entry.command if py_files or not entry.runs_user_code else replace(entry.command, local=False)
    try:
        with user_code(py_files):
            command.parse(args)
    except UsageError as exc:
        raise SubmitUsageError(f"--step {name}: {exc}") from None
    return name, args


def step_runs_user_code(text: str) -> bool:
    """Whether a --step's job runs the user's code (so --py-files go with it)."""
    from sparkprep.jobs import JOBS

    words = shlex.split(text)
    return bool(words) and words[0] in JOBS and JOBS[words[0]].runs_user_code


def check_py_files(paths: Sequence[str]) -> List[pathlib.Path]:
    """The user's modules for --py-files: existing .py, .zip or .egg files with distinct names."""
    files = [pathlib.Path(p) for p in paths]
    for path in files:
        if not path.is_file() or not path.name.endswith(CODE_SUFFIXES):
            raise SubmitUsageError(f"--py-files: expected an existing {', '.join(CODE_SUFFIXES)} file, got {str(path)!r}")
    names = [p.name for p in files]
    if len(set(names)) != len(names):
        raise SubmitUsageError(f"--py-files: expected files with distinct names, got {', '.join(names)}")
    return files


@contextlib.contextmanager
def user_code(files: Sequence[str]) -> Iterator[None]:
    """sys.path with the user's modules first (a .py's directory, a .zip or .egg itself), then as before."""
    saved = list(sys.path)
    sys.path[:0] = [str(pathlib.Path(f).resolve().parent if str(f).endswith(".py") else pathlib.Path(f).resolve())
                    for f in files]
    try:
        yield
    finally:
        sys.path[:] = saved


def user_uploads(files: Sequence[pathlib.Path], prefix: str) -> List[Tuple[pathlib.Path, str]]:
    """Where the user's modules go: <prefix>/<name> each."""
    return [(path, f"{prefix.rstrip('/')}/{path.name}") for path in files]


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
