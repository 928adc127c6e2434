"""The ingest job's flags and config: how raw files become catalog rows."""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

from sparkprep import capacity
from sparkprep.flags import FORMATS, Flags, merged_settings, require_paths, wrap
from sparkprep.images import probe as image_probe
from sparkprep.ingest.fetch import DEFAULT_CONCURRENCY
from sparkprep.ingest.paths import SAMPLE_MODES, compile_group_regex
from sparkprep.ingest.tar_shards import SHARD_EXTENSIONS
from sparkprep.uris import check_not_bucket_root, check_output, check_report_uri, is_local, local_path, s3_endpoint
from sparkprep.values import choice, fraction, parse_bytes, whole_number

VALIDATE_LEVELS = ("header", "full")
DEFAULT_EXTENSIONS = "jpg,jpeg,png,gif,bmp,tif,tiff,webp"
MAX_PIXELS_LIMIT = 1 << 31  # a 46k x 46k image; Pillow would need > 2 GiB per channel beyond that


@dataclass(frozen=True)
class IngestConfig:
    """How raw files become catalog rows."""

    input: str
    output: str
    format: str = "parquet"
    extensions: Tuple[str, ...] = tuple(DEFAULT_EXTENSIONS.split(","))
    label_regex: Optional[str] = None
    labels: Optional[str] = None
    validate: str = "header"
    max_file_bytes: int = 256 << 20
    max_pixels: int = image_probe.DEFAULT_MAX_PIXELS
    report: Optional[str] = None
    follow_symlinks: bool = False
    max_quarantine_fraction: float = 0.5
    samples: str = "file"  # file | basename (README "Contracts", Samples)
    input_kind: str = "files"  # files | webdataset (.tar shards: one row per member, samples by basename)
    label_member: Optional[str] = None  # a sample's label is the text of this member (e.g. cls): shards' default
    phash: bool = True     # the `phash` column (one more decode per ok image, at 1/8 scale for JPEG)
    manifest: Optional[str] = None  # an S3 Inventory manifest.json or a uri table: nothing is listed
    fetch_concurrency: int = DEFAULT_CONCURRENCY  # objects each task reads at once (manifests, s3:// input)
    s3_endpoint: Optional[str] = None
    incremental: bool = False  # read only new and changed files; the previous output's rows for the rest
    plan: bool = False  # print the capacity estimate for this input and stop: nothing is read or written
    plan_nodes: int = 10
    plan_instance: str = capacity.DEFAULT_INSTANCE
    plan_price: float = 0.0  # USD per node-hour (EC2 + EMR); 0: the instance's list price


INGEST_FLAGS = Flags(help={
    "input": "input directory or file (any Hadoop URI)",
    "output": "output table directory",
    "format": "table format: parquet (default) or delta",
    "extensions": f"comma-separated file extensions, case-insensitive (default {DEFAULT_EXTENSIONS})",
    "label-regex": "take the label from capture group 1 of this regex on the relative path",
    "labels": "CSV file with columns path,label (path relative to --input)",
    "validate": "header (default: parse headers only) or full (decode every image)",
    "max-file-bytes": "files larger than this are quarantined as too_large (default 256MB)",
    "max-pixels": "images with more pixels are quarantined as decompression bombs",
    "report": "where to write the JSON run report (default <output>/_run_report.json)",
    "follow-symlinks": "read files behind symbolic links in a local --input (default: links are skipped and reported)",
    "samples": "file (default: every file is a sample) or basename (files sharing a basename are one sample)",
    "input-kind": "auto (default: WebDataset for .tar/.tar.gz paths and globs, else files), files or webdataset",
    "label-member": ("a sample's label is the text of this member, e.g. cls (default cls for WebDataset shards; "
                     "with --samples basename for folders)"),
    "phash": "on (default: a 64-bit perceptual hash per ok image, for the near-duplicate audit) or off",
    "manifest": ("what to read instead of listing --input: an S3 Inventory manifest.json, or a CSV/parquet "
                 "table with a `uri` column (and `size`); the workers read the objects (--input is then the root "
                 "that relative paths and folder labels start from; default the inventoried bucket)"),
    "fetch-concurrency": f"with --manifest: objects each task reads at once (default {DEFAULT_CONCURRENCY})",
    "s3-endpoint": "S3 endpoint URL for any S3-compatible store (default $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL)",
    "incremental": ("read only the files that are new or changed since the previous run into --output (matched by "
                    "path, size and mtime, or an Inventory row's ETag); the others keep their previous rows unread, "
                    "deleted files disappear"),
    "plan": ("print the hours and dollars this input would take on --plan-nodes x --plan-instance (EMR, on "
             "demand) and the limits that bite first, then stop: nothing is read or written (docs/capacity.md)"),
    "plan-nodes": "with --plan: core nodes (default 10)",
    "plan-instance": f"with --plan: one of {', '.join(capacity.INSTANCES)} (default {capacity.DEFAULT_INSTANCE})",
    "plan-price": "with --plan: USD per node-hour, EC2 and EMR together (default: the instance's list price)",
    "max-quarantine-fraction": ("fail without publishing when more than this fraction of the input is quarantined "
                                "(default 0.5; 1 never fails)"),
}, lists=frozenset({"extensions"}), numbers=frozenset({"max-pixels", "max-file-bytes", "fetch-concurrency",
                                                                   "plan-nodes"}),
    switches=frozenset({"follow-symlinks", "plan", "incremental"}), decimals=frozenset({"max-quarantine-fraction", "plan-price"}))


INGEST_KINDS = ("auto", "files", "webdataset")
LABEL_MEMBER = "cls"  # WebDataset's class member: the label of a shard's samples unless told otherwise
_MEMBER = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$")


def ingest_config(argv: Optional[Sequence[str]] = None) -> IngestConfig:
    """Parse and validate the ingest job's arguments."""
    settings = merged_settings(argv, "ingest", INGEST_FLAGS, "Catalogue raw files into a table.")

    def build() -> IngestConfig:
        values = ingest_values(settings)
        kind = choice("--input-kind", settings.get("input_kind", "auto"), INGEST_KINDS)
        if kind == "auto":
            kind = "webdataset" if shard_input(values["input"]) else "files"
        if kind == "webdataset" and (values.get("manifest") or values["incremental"]):
            flag = "--manifest" if values.get("manifest") else "--incremental"
            raise ValueError(f"{flag}: expected raw files, got WebDataset shards")
        return IngestConfig(**sample_values(settings, kind, values), input_kind=kind)

    return wrap(build)


def shard_input(uri: str) -> bool:
    """Whether --input names WebDataset shards: one .tar/.tar.gz/.tgz, or a glob of them."""
    return uri.lower().rstrip("/").endswith(SHARD_EXTENSIONS)


def sample_values(s: Dict[str, Any], kind: str, values: Dict[str, Any]) -> Dict[str, Any]:
    """values with the sample settings an input kind implies: WebDataset shards hold samples by
    basename, labelled by their `cls` member unless --labels, --label-regex or --label-member say
    otherwise; --label-member elsewhere needs samples of several files."""
    values = dict(values)
    member = s.get("label_member")
    if member is not None:
        if not _MEMBER.match(str(member)):
            raise ValueError(f"--label-member: expected a member name such as cls, got {member!r}")
        if values.get("labels") or values.get("label_regex"):
            raise ValueError("--label-member: expected one of --labels, --label-regex or --label-member, got more")
    if kind == "webdataset":
        if s.get("samples") == "file":
            raise ValueError("--samples: WebDataset shards hold samples by basename; expected basename, got file")
        values["samples"] = "basename"
        if member is None and not (values.get("labels") or values.get("label_regex")):
            member = LABEL_MEMBER
    elif member is not None and values.get("samples") != "basename":
        raise ValueError("--label-member: a sample's member labels the sample; expected --samples basename (or "
                         "WebDataset shards)")
    values["label_member"] = str(member) if member is not None else None
    return values


def ingest_values(s: Dict[str, Any]) -> Dict[str, Any]:
    """Checked ingest values from merged settings (flag name with underscores -> value)."""
    if s.get("manifest"):
        require_paths(s, "output")
        values: Dict[str, Any] = {"input": str(s.get("input") or ""), "output": str(s["output"]),
                                  "manifest": str(s["manifest"])}
        if is_local(values["manifest"]) and not os.path.isfile(local_path(values["manifest"])):
            raise ValueError(f"--manifest: expected an existing file, got {values['manifest']!r}")
        if values["input"]:  # the root: nothing is listed there, but the output must not be it or inside it
            check_output(values["input"], values["output"])
        else:
            check_not_bucket_root(values["output"], "--output")
    else:
        require_paths(s, "input", "output")
        values = {"input": str(s["input"]), "output": str(s["output"])}
        if is_local(values["input"]) and not os.path.exists(local_path(values["input"])) \
                and not glob.glob(local_path(values["input"])):
            raise ValueError(f"--input: expected an existing path (or a glob that matches), got {values['input']!r}")
        check_output(values["input"], values["output"])
    values["fetch_concurrency"] = whole_number("--fetch-concurrency", s.get("fetch_concurrency", DEFAULT_CONCURRENCY),
                                               1, 512)
    values["s3_endpoint"] = s3_endpoint(s)
    values["format"] = choice("--format", s.get("format", "parquet"), FORMATS)
    values["validate"] = choice("--validate", s.get("validate", "header"), VALIDATE_LEVELS)
    if "extensions" in s:
        exts = tuple(e.strip().lower().lstrip(".") for e in str(s["extensions"]).split(",") if e.strip())
        if not exts or not all(re.fullmatch(r"[a-z0-9]+", e) for e in exts):
            raise ValueError(f"--extensions: expected a list like jpg,png, got {s['extensions']!r}")
        values["extensions"] = exts
    if s.get("label_regex"):
        compile_group_regex(s["label_regex"], "--label-regex")
        values["label_regex"] = s["label_regex"]
    if s.get("labels"):
        if s.get("label_regex"):
            raise ValueError("--labels: expected either --labels or --label-regex, got both")
        if is_local(s["labels"]) and not os.path.isfile(local_path(s["labels"])):
            raise ValueError(f"--labels: expected an existing CSV file, got {s['labels']!r}")
        values["labels"] = s["labels"]
    if "max_file_bytes" in s:
        try:
            values["max_file_bytes"] = parse_bytes(s["max_file_bytes"])
        except ValueError as exc:
            raise ValueError(f"--max-file-bytes: {exc}") from None
        if not 0 < values["max_file_bytes"] <= 2**31 - 1024:
            raise ValueError(f"--max-file-bytes: expected a positive value below 2GB, got {s['max_file_bytes']!r}")
    if "max_pixels" in s:
        values["max_pixels"] = whole_number("--max-pixels", s["max_pixels"], 1, MAX_PIXELS_LIMIT)
    if s.get("report"):
        values["report"] = check_report_uri(str(s["report"]), values["output"])
    values["follow_symlinks"] = s.get("follow_symlinks", "false") == "true"
    values["samples"] = choice("--samples", s.get("samples", "file"), SAMPLE_MODES)
    values["phash"] = choice("--phash", s.get("phash", "on"), ("on", "off")) == "on"
    if "max_quarantine_fraction" in s:
        values["max_quarantine_fraction"] = fraction("--max-quarantine-fraction", s["max_quarantine_fraction"])
    values.update(plan_values(s))
    values["incremental"] = s.get("incremental", "false") == "true"
    if values["incremental"] and values["samples"] != "file":
        raise ValueError("--incremental: expected --samples file (a sample of several files is read whole), "
                         f"got --samples {values['samples']}")
    return values


def plan_values(s: Dict[str, Any]) -> Dict[str, Any]:
    """--plan and its cluster (the --plan-* flags mean nothing without it)."""
    plan = s.get("plan", "false") == "true"
    if not plan:
        extra = [k for k in ("plan_nodes", "plan_instance", "plan_price") if k in s]
        if extra:
            raise ValueError(f"--{extra[0].replace('_', '-')}: only with --plan")
        return {}
    instance = choice("--plan-instance", s.get("plan_instance", capacity.DEFAULT_INSTANCE), tuple(capacity.INSTANCES))
    values: Dict[str, Any] = {"plan": True, "plan_instance": instance,
                              "plan_nodes": whole_number("--plan-nodes", s.get("plan_nodes", 10), 1, 100000)}
    if "plan_price" in s:
        try:
            values["plan_price"] = float(str(s["plan_price"]))
        except ValueError:
            values["plan_price"] = -1.0
        if not 0 < values["plan_price"] < 10000:
            raise ValueError(f"--plan-price: expected USD per node-hour, e.g. 0.96, got {s['plan_price']!r}")
    return values
