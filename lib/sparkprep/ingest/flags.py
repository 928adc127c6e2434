"""The ingest part of a config: how raw files become catalog rows (the ingest job's config, and
the first part of split's, preprocess's and the pipeline's)."""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

from sparkprep import capacity
from sparkprep.flags import FORMATS, Job, compose, flag, on_off, one_of, require_paths, share, size_of, switch, text, \
    whole
from sparkprep.images import probe as image_probe
from sparkprep.ingest.fetch import DEFAULT_CONCURRENCY
from sparkprep.ingest.paths import SAMPLE_MODES, compile_group_regex
from sparkprep.ingest.tar_shards import SHARD_EXTENSIONS
from sparkprep.uris import check_not_bucket_root, check_output, check_report_uri, is_local, local_path, s3_endpoint
from sparkprep.values import choice

VALIDATE_LEVELS = ("header", "full")
DEFAULT_EXTENSIONS = ("jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "webp")
MAX_PIXELS_LIMIT = 1 << 31  # a 46k x 46k image; Pillow would need > 2 GiB per channel beyond that
INGEST_KINDS = ("auto", "files", "webdataset")
INPUT_KINDS = ("auto", "files", "catalog", "table", "webdataset")  # catalogs and tables: jobs that split
LABEL_MEMBER = "cls"  # WebDataset's class member: the label of a shard's samples unless told otherwise
_MEMBER = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$")


def _extensions(value: str) -> Tuple[str, ...]:
    exts = tuple(e.strip().lower().lstrip(".") for e in str(value).split(",") if e.strip())
    if not exts or not all(re.fullmatch(r"[a-z0-9]+", e) for e in exts):
        raise ValueError(f"--extensions: expected a list like jpg,png, got {value!r}")
    return exts


def _plan_price(value: str) -> float:
    try:
        price = float(str(value))
    except ValueError:
        price = -1.0
    if not 0 < price < 10000:
        raise ValueError(f"--plan-price: expected USD per node-hour, e.g. 0.96, got {value!r}")
    return price


@dataclass(frozen=True)
class IngestFlags:
    """How raw files become catalog rows."""

    input: Optional[str] = flag(None, text, "input directory or file (any Hadoop URI)")
    output: Optional[str] = flag(None, text, "output table directory")
    format: str = flag("parquet", one_of("--format", *FORMATS), "table format: parquet or delta")
    extensions: Tuple[str, ...] = flag(DEFAULT_EXTENSIONS, _extensions,
                                       "comma-separated file extensions, case-insensitive", kind="list")
    label_regex: Optional[str] = flag(None, lambda v: compile_group_regex(v, "--label-regex") and str(v),
                                      "take the label from capture group 1 of this regex on the relative path")
    labels: Optional[str] = flag(None, text, "CSV file with columns path,label (path relative to --input)")
    validate: str = flag("header", one_of("--validate", *VALIDATE_LEVELS),
                         "header (parse headers only) or full (decode every image)")
    max_file_bytes: int = flag(256 << 20, size_of("--max-file-bytes", 1, 2 ** 31 - 1024, "a positive value below 2GB"),
                               "files larger than this are quarantined as too_large", kind="number", shown="`256MB`")
    max_pixels: int = flag(image_probe.DEFAULT_MAX_PIXELS, whole("--max-pixels", 1, MAX_PIXELS_LIMIT),
                           "images with more pixels are quarantined as decompression bombs", kind="number")
    report: Optional[str] = flag(None, text, "where to write the JSON run report", shown="`<output>/_run_report.json`")
    follow_symlinks: bool = flag(False, switch, "read files behind symbolic links in a local --input (without it, "
                                                "links are skipped and reported)", kind="switch")
    samples: str = flag("file", one_of("--samples", *SAMPLE_MODES),
                        "file (every file is a sample) or basename (files sharing a basename are one sample)")
    input_kind: str = flag("auto", one_of("--input-kind", *INPUT_KINDS),
                           "auto (WebDataset for .tar/.tar.gz paths and globs, else files), files or webdataset")
    label_member: Optional[str] = flag(None, text, "a sample's label is the text of this member, e.g. cls (cls for "
                                                   "WebDataset shards; with --samples basename for folders)")
    phash: bool = flag(True, on_off("--phash"),
                       "on (a 64-bit perceptual hash per ok image, for the near-duplicate audit) or off")
    manifest: Optional[str] = flag(None, text, (
        "what to read instead of listing --input: an S3 Inventory manifest.json, or a CSV/parquet table with a `uri` "
        "column (and `size`); the workers read the objects (--input is then the root that relative paths and folder "
        "labels start from; default the inventoried bucket)"))
    fetch_concurrency: int = flag(DEFAULT_CONCURRENCY, whole("--fetch-concurrency", 1, 512),
                                  "with --manifest or s3:// input: objects each task reads at once", kind="number")
    s3_endpoint: Optional[str] = flag(None, text, "S3 endpoint URL for any S3-compatible store",
                                      shown="`$AWS_ENDPOINT_URL_S3` or `$AWS_ENDPOINT_URL`")
    incremental: bool = flag(False, switch, (
        "read only the files that are new or changed since the previous run into --output (matched by path, size "
        "and mtime, or an Inventory row's ETag); the others keep their previous rows unread, deleted files "
        "disappear. Samples of several files and WebDataset shards are kept or read whole"), kind="switch")
    plan: bool = flag(False, switch, (
        "print the hours and dollars this input would take on --plan-nodes x --plan-instance (EMR, on demand) and "
        "the limits that bite first, then stop: nothing is read or written (docs/capacity.md)"), kind="switch")
    plan_nodes: int = flag(10, whole("--plan-nodes", 1, 100000), "with --plan: core nodes", kind="number")
    plan_instance: str = flag(capacity.DEFAULT_INSTANCE, one_of("--plan-instance", *capacity.INSTANCES),
                              f"with --plan: one of {', '.join(capacity.INSTANCES)}")
    plan_price: float = flag(0.0, _plan_price, "with --plan: USD per node-hour, EC2 and EMR together",
                             kind="decimal", shown="the instance's list price")
    max_quarantine_fraction: float = flag(0.5, share("--max-quarantine-fraction"), (
        "fail without publishing when more than this fraction of the input is quarantined (1 never fails)"),
        kind="decimal")

    @staticmethod
    def checked(values: Dict[str, Any], given: Dict[str, str], job: Job) -> None:
        """The rules across ingest's flags; the input kind resolved (catalogs and tables only where
        a part of the job `takes_tables`)."""
        paths(values)
        values["s3_endpoint"] = s3_endpoint(values)
        if values["labels"]:
            if values["label_regex"]:
                raise ValueError("--labels: expected either --labels or --label-regex, got both")
            if is_local(values["labels"]) and not os.path.isfile(local_path(values["labels"])):
                raise ValueError(f"--labels: expected an existing CSV file, got {values['labels']!r}")
        if values["report"]:
            values["report"] = check_report_uri(str(values["report"]), values["output"])
        extra = [k for k in ("plan_nodes", "plan_instance", "plan_price") if k in given]
        if extra and not values["plan"]:
            raise ValueError(f"--{extra[0].replace('_', '-')}: only with --plan")
        splits = any(getattr(part, "takes_tables", False) for part in job.config.parts)
        # a job whose part `reuses_tables` (preprocess) reuses its previous output for a split table's rows
        # and checks --incremental itself; ingest and split reuse rows of raw files only
        files_only = not any(getattr(part, "reuses_tables", False) for part in job.config.parts)
        values["input_kind"] = input_kind(values, splits, values["incremental"] and files_only)
        sample_values(values, given)


def paths(values: Dict[str, Any]) -> None:
    """--input and --output, or --manifest and --output (--input is then the optional root)."""
    if values["manifest"]:
        require_paths(values, "output")
        values["input"] = str(values["input"] or "")
        if is_local(values["manifest"]) and not os.path.isfile(local_path(values["manifest"])):
            raise ValueError(f"--manifest: expected an existing file, got {values['manifest']!r}")
        if values["input"]:  # the root: nothing is listed there, but the output must not be it or inside it
            check_output(values["input"], values["output"])
        else:
            check_not_bucket_root(values["output"], "--output")
        return
    require_paths(values, "input", "output")
    if is_local(values["input"]) and not os.path.exists(local_path(values["input"])) \
            and not glob.glob(local_path(values["input"])):
        raise ValueError(f"--input: expected an existing path (or a glob that matches), got {values['input']!r}")
    check_output(values["input"], values["output"])


def input_kind(values: Dict[str, Any], splits: bool, files_only: bool = False) -> str:
    """--input-kind with auto resolved where it can be before Spark starts; files_only: refused unless raw files
    or shards (--incremental for ingest and split)."""
    kind = choice("--input-kind", values["input_kind"], INPUT_KINDS if splits else INGEST_KINDS)
    if values["manifest"]:
        if kind not in ("auto", "files"):
            raise ValueError(f"--input-kind: a --manifest lists files; expected files (or auto), got {kind}")
        kind = "files"
    elif kind == "auto":
        kind = detect_input_kind(values["input"]) if splits else \
            ("webdataset" if shard_input(values["input"]) else "files")
    if files_only and kind not in ("files", "webdataset", "auto"):
        raise ValueError(f"--incremental: expected raw files (a folder, --manifest or WebDataset shards), got a {kind} "
                         "input")
    return kind


def shard_input(uri: str) -> bool:
    """Whether --input names WebDataset shards: one .tar/.tar.gz/.tgz, or a glob of them."""
    return uri.lower().rstrip("/").endswith(SHARD_EXTENSIONS)


def detect_input_kind(uri: str) -> str:
    """table for a .csv/.parquet file; for a local directory, kind_of_directory; else 'auto'.

    'auto' is resolved when the job runs, through Hadoop's FileSystem (any URI: s3://,
    hdfs://, ...), with the same kind_of_directory rule.
    """
    lowered = uri.lower().rstrip("/")
    if lowered.endswith((".csv", ".parquet", ".csv.gz")):
        return "table"
    if lowered.endswith(SHARD_EXTENSIONS):  # one shard, or a glob of them
        return "webdataset"
    if is_local(uri):
        root = local_path(uri)
        return kind_of_directory(os.listdir(root)) if os.path.isdir(root) else "files"
    return "auto"


def kind_of_directory(names: Sequence[str]) -> str:
    """catalog for a table directory (Delta log, _SUCCESS, a sparkprep marker, parquet files or
    split=<name> partitions at its top), files otherwise."""
    for name in names:
        if name in ("_delta_log", "_SUCCESS", "_sparkprep.json") or name.endswith(".parquet") \
                or name.startswith("split="):
            return "catalog"
    return "files"


def sample_values(values: Dict[str, Any], given: Dict[str, str]) -> None:
    """The sample settings an input kind implies: WebDataset shards hold samples by basename,
    labelled by their `cls` member unless --labels, --label-regex or --label-member say otherwise;
    --label-member elsewhere needs samples of several files."""
    member = values["label_member"]
    if member is not None:
        if not _MEMBER.match(str(member)):
            raise ValueError(f"--label-member: expected a member name such as cls, got {member!r}")
        if values["labels"] or values["label_regex"]:
            raise ValueError("--label-member: expected one of --labels, --label-regex or --label-member, got more")
    if values["input_kind"] == "webdataset":
        if given.get("samples") == "file":
            raise ValueError("--samples: WebDataset shards hold samples by basename; expected basename, got file")
        values["samples"] = "basename"
        if member is None and not (values["labels"] or values["label_regex"]):
            member = LABEL_MEMBER
    elif member is not None and values["samples"] != "basename":
        raise ValueError("--label-member: a sample's member labels the sample; expected --samples basename (or "
                         "WebDataset shards)")
    values["label_member"] = str(member) if member is not None else None


IngestConfig = compose("IngestConfig", "How raw files become catalog rows.", IngestFlags)

INGEST = Job("ingest", "Catalogue raw files into a table.", IngestConfig)


def ingest_config(argv: Optional[Sequence[str]] = None) -> IngestConfig:
    """Parse and validate the ingest job's arguments."""
    return INGEST.parse(argv)
