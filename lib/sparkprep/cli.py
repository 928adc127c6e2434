"""The shared entry of jobs/*.py: flags (with --config files) parsed and checked, then session, run, summary.

Precedence: built-in defaults < the --config file < flags. Every problem is a
`UsageError` with an "expected X, got Y" message, raised before any Spark work.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import traceback
from dataclasses import dataclass, fields
from typing import Any, Callable, Dict, FrozenSet, Optional, Sequence, Tuple

from sparkprep.ingest.listing import is_local

FORMATS = ("parquet", "delta")
_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)


class UsageError(ValueError):
    """A bad invocation: reported as one line, exit code 2."""


class LeakageFound(RuntimeError):
    """--fail-on-leakage: the job finished and wrote everything, and something crosses splits (exit 1)."""

    def __init__(self, report: dict, message: str):
        super().__init__(message)
        self.report = report


def parse_bytes(text: Any) -> int:
    """'256MB', '64k', '1GiB' or a plain integer, as bytes (powers of 1024)."""
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"expected a size like 256MB or 1048576, got {text!r}")
    unit = (match.group(2) or "").lower().rstrip("b").rstrip("i")
    return int(match.group(1)) * 1024 ** " kmgt".index(unit or " ")


def choice(flag: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{flag}: expected one of {', '.join(choices)}, got {value!r}")
    return value


@dataclass(frozen=True)
class Flags:
    """A job's flags: help text per flag, and how a --config file may spell each value.

    Every other flag takes a JSON string only. Stages build theirs on the flags of the
    stage before them with `plus`, so each stage owns its own flags.
    """

    help: Dict[str, str]
    lists: FrozenSet[str] = frozenset()     # comma-separated lists on the command line
    numbers: FrozenSet[str] = frozenset()   # whole numbers (or strings) in a --config file
    switches: FrozenSet[str] = frozenset()  # no value on the command line; true/false in a file
    decimals: FrozenSet[str] = frozenset()  # numbers with a fraction (or lists of them)

    def plus(self, other: "Flags") -> "Flags":
        return Flags({**self.help, **other.help}, self.lists | other.lists, self.numbers | other.numbers,
                     self.switches | other.switches, self.decimals | other.decimals)


def file_value(flag: str, value: Any, flags: Flags) -> str:
    """A --config file value as the string its flag would take; wrong JSON types are errors, never coerced.

    Lists only where a flag takes a comma-separated list; whole numbers only where a flag
    takes one (so 42.0, 2.9 and true are refused); seeds are strings or whole numbers.
    """
    def scalar(item: Any) -> str:
        if isinstance(item, bool) or item is None or isinstance(item, (list, dict)):
            raise ValueError(f"--config {flag}: expected a string or number item, got {json.dumps(item)}")
        if isinstance(item, str) and "," in item:
            raise ValueError(f"--config {flag}: expected list items without commas, got {item!r}")
        return str(item)

    if isinstance(value, list):
        if flag not in flags.lists:
            raise ValueError(f"--config {flag}: expected a single value, got a list {json.dumps(value)}")
        if not value:
            raise ValueError(f"--config {flag}: expected a non-empty list, got []")
        return ",".join(scalar(item) for item in value)
    if flag in flags.switches:
        if not isinstance(value, bool):
            raise ValueError(f"--config {flag}: expected true or false, got {json.dumps(value)}")
        return "true" if value else "false"
    if isinstance(value, bool) or value is None or isinstance(value, dict):
        raise ValueError(f"--config {flag}: expected a string{' or whole number' * (flag in flags.numbers)}, "
                         f"got {json.dumps(value)}")
    if isinstance(value, float):
        if flag in flags.decimals:
            return repr(value)
        what = "a whole number" if flag in flags.numbers else "a string"
        raise ValueError(f"--config {flag}: expected {what}, got {value!r}")
    if isinstance(value, int):
        if flag not in flags.numbers | flags.decimals:
            raise ValueError(f"--config {flag}: expected a string, got {value}")
        return str(value)
    return str(value)


def require_paths(settings: Dict[str, Any], *flags: str) -> None:
    """ValueError naming the first of these flags that was not given."""
    for flag in flags:
        if not settings.get(flag):
            raise ValueError(f"--{flag}: expected a path, got nothing")


def table_input_output(settings: Dict[str, Any], expected: str) -> Tuple[str, str]:
    """--input (an existing directory where it is local) and --output (outside it): both checked."""
    require_paths(settings, "input", "output")
    source, output = str(settings["input"]), str(settings["output"])
    if is_local(source) and not os.path.isdir(local_path(source)):
        raise ValueError(f"--input: expected {expected}, got {source!r}")
    check_output(source, output)
    return source, output


def whole_number(flag: str, text: Any, low: int, high: int) -> int:
    """An integer flag value in [low, high]; '2.9', 'true' and '1e3' are errors."""
    if not re.fullmatch(r"\s*[+-]?\d+\s*", str(text)):
        raise ValueError(f"{flag}: expected a whole number, got {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{flag}: expected {low}..{high}, got {value}")
    return value


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage + message; we want one line
        raise UsageError(message)


def build_parser(prog: str, flags: Flags, description: str) -> argparse.ArgumentParser:
    """An argparse parser whose defaults are all None, so set flags can override the file."""
    parser = _OneLineParser(prog=prog, description=description)
    parser.add_argument("--config", help="JSON file of settings; flags override it")
    for flag, help_text in flags.help.items():
        if flag in flags.switches:
            parser.add_argument(f"--{flag}", help=help_text, default=None, action="store_const", const="true")
        else:
            parser.add_argument(f"--{flag}", help=help_text, default=None)
    return parser


def merged_settings(argv: Optional[Sequence[str]], prog: str, flags: Flags,
                    description: str) -> Dict[str, Any]:
    """Flag values over --config file values, keyed by flag name with underscores."""
    args = build_parser(prog, flags, description).parse_args(argv)
    settings: Dict[str, Any] = {}
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as handle:
                loaded = json.load(handle)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--config: expected a readable JSON file, got {args.config!r} ({exc})")
        if not isinstance(loaded, dict):
            raise UsageError(f"--config: expected a JSON object, got {type(loaded).__name__}")
        known = {f.replace("-", "_") for f in flags.help}
        for key, value in loaded.items():
            name = key.replace("-", "_")
            if name not in known:
                raise UsageError(f"--config: unknown setting {key!r}; expected one of {', '.join(sorted(known))}")
            try:
                settings[name] = file_value(name.replace("_", "-"), value, flags)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
    for key, value in vars(args).items():
        if value is not None and key != "config":
            settings[key] = value
    return settings


def wrap(build):
    try:
        return build()
    except UsageError:
        raise
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None


def local_path(uri: str) -> str:
    return uri[len("file:"):] if uri.startswith("file:") else uri


def check_output(input_uri: str, output_uri: str) -> None:
    """Refuse an output that would replace the input, live inside it or contain it, or a bucket root.

    s3://, s3a:// and s3n:// spell one location, so they are compared as one scheme.
    """
    from sparkprep.spark.ownership import canonical_uri

    check_not_bucket_root(output_uri, "--output")
    src, dst = canonical_uri(input_uri), canonical_uri(output_uri)
    if is_local(input_uri) and is_local(output_uri):
        src, dst = os.path.realpath(src), os.path.realpath(dst)
    if dst == src or dst.startswith(src.rstrip("/") + "/") or src.startswith(dst.rstrip("/") + "/"):
        raise ValueError(f"--output: expected a path outside --input (and not containing it), got {output_uri!r}")


def check_table_output(output: str, fmt: str) -> None:
    """Refuse to replace a parquet table on S3: a rename there is copy-then-delete, so readers and
    crashes would see a partial table. A new prefix is fine; Delta replaces by transaction."""
    if fmt != "parquet" or not re.match(r"^s3[an]?://", output):
        return
    from pyarrow import fs as pafs

    from sparkprep.ingest.listing import arrow_filesystem

    try:
        filesystem, path = arrow_filesystem(output)
        entries = filesystem.get_file_info(pafs.FileSelector(path.rstrip("/"), allow_not_found=True))
    except Exception as exc:  # noqa: BLE001 - no credentials, no bucket: say so before Spark starts
        raise ValueError(f"--output: could not check {redact_uri(output)!r} ({type(exc).__name__}: {exc})") from None
    if entries:
        raise ValueError(f"--output: {redact_uri(output)!r} exists on S3, where replacing a parquet table is not "
                         "atomic (a rename is copy-then-delete); write to a new prefix, or use --format delta")


def check_not_bucket_root(uri: str, flag: str) -> None:
    """An object-store output needs a prefix: a job must never own a whole bucket."""
    match = re.match(r"^[a-z][a-z0-9+.-]*://([^/]*)/*(.*)$", uri)
    if match and not is_local(uri) and not match.group(2).strip("/"):
        raise ValueError(f"{flag}: expected a prefix inside the bucket, like {uri.rstrip('/')}/out, got {uri!r}")


def check_report_uri(report: str, output: str) -> str:
    """A --report destination that can be written: a file path whose directory exists, or an object key."""
    check_not_bucket_root(report, "--report")
    if report.endswith("/"):
        raise ValueError(f"--report: expected a file name, got a directory {report!r}")
    if is_local(report):
        parent = os.path.dirname(os.path.abspath(local_path(report))) or "."
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
            raise ValueError(f"--report: expected a writable directory for the report, got {report!r}")
        if os.path.isdir(local_path(report)):
            raise ValueError(f"--report: expected a file name, got a directory {report!r}")
    elif not re.match(r"^(s3|s3a|s3n|hdfs|gs|abfss?|wasbs?)://", report):
        raise ValueError(f"--report: expected a local path or an object-store URI, got {report!r}")
    return report


def s3_endpoint(settings: Dict[str, Any]) -> Optional[str]:
    """--s3-endpoint, else $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL (as boto3 reads them), checked;
    resolved on the driver so that executors on other machines use the same endpoint."""
    endpoint = settings.get("s3_endpoint") or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return None
    if not re.fullmatch(r"https?://[^/\s]+/?", str(endpoint)):
        raise ValueError(f"--s3-endpoint: expected a URL like http://127.0.0.1:9000, got {redact_uri(endpoint)!r}")
    return str(endpoint).rstrip("/")


def redact_uri(uri: Any) -> Any:
    """A URI without user-info (scheme://KEY:SECRET@host -> scheme://***@host), for reports and manifests."""
    if not isinstance(uri, str):
        return uri
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@", r"\1***@", uri)


def config_dict(cfg: Any) -> Dict[str, Any]:
    """A job config as JSON-ready values for reports and manifests, URIs without user-info."""
    out: Dict[str, Any] = {}
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if hasattr(value, "as_dict"):
            out[f.name] = value.as_dict()
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        elif value is None or isinstance(value, (bool, int, float)):
            out[f.name] = value
        else:  # strings, and values spelled as their flag (a KeySpec)
            out[f.name] = redact_uri(str(value))
    return out


USAGE_EXIT = 2


def forget_jobs_directory() -> None:
    """Take sparkprep's jobs/ directory off sys.path.

    Python puts the directory of the script it runs first on sys.path, so under spark-submit
    jobs/features.py (or split.py, report.py) would shadow a user's own module of that name,
    e.g. `jobs/map.py --map features:extract --py-files features.py`. The jobs import only
    the library, so they never need it there.
    """
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if not main:
        return
    jobs = os.path.dirname(os.path.abspath(main))
    if all(os.path.isfile(os.path.join(jobs, name)) for name in ("map.py", "features.py", "split.py")):
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != jobs]


def job_main(job: str, parse: Callable, run: Callable, argv: Optional[Sequence[str]] = None,
             summary: Optional[Callable[[dict], str]] = None, spark: Any = None) -> int:
    """Exit 2 with one line on bad usage (before Spark starts), 1 with the cause on failure.

    spark: a session to run in (a test's, a notebook's), used and left running; by default the
    job builds its own and stops it at the end.
    """
    forget_jobs_directory()
    try:
        cfg = parse(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        print(f"{job}: error: {exc}", file=sys.stderr)
        return USAGE_EXIT
    from sparkprep.report.run_report import summary_table
    from sparkprep.spark.session import build_session

    own_session = spark is None
    spark = spark if spark is not None else build_session(job)
    try:
        report = run(spark, cfg)
    except UsageError as exc:
        print(f"{job}: error: {exc}", file=sys.stderr)
        return USAGE_EXIT
    except LeakageFound as exc:
        print((summary or summary_table)(exc.report))
        print(f"{job}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the cause is printed, the exit code says failure
        traceback.print_exc()
        print(f"{job}: failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
              file=sys.stderr)
        return 1
    finally:
        if own_session:
            spark.stop()
    print((summary or summary_table)(report))
    return 0
