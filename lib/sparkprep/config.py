"""Typed, validated job configs built from flags and an optional JSON --config file.

Precedence: built-in defaults < the --config file < flags. Every problem is a
`UsageError` with an "expected X, got Y" message, raised before any Spark work.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass, fields
from typing import Any, Dict, Optional, Sequence, Tuple

from sparkprep.ingest import image_probe
from sparkprep.split import assign as split_assign
from sparkprep.ingest.paths import compile_group_regex
from sparkprep.split.keys import KeySpec
from sparkprep.ingest.listing import is_local

FORMATS = ("parquet", "delta")
VALIDATE_LEVELS = ("header", "full")
INPUT_KINDS = ("auto", "files", "catalog", "table")
STRATIFY = ("none", "exact")
DEFAULT_EXTENSIONS = "jpg,jpeg,png,gif,bmp,tif,tiff,webp"
_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)


class UsageError(ValueError):
    """A bad invocation: reported as one line, exit code 2."""


def parse_bytes(text: Any) -> int:
    """'256MB', '64k', '1GiB' or a plain integer, as bytes (powers of 1024)."""
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"expected a size like 256MB or 1048576, got {text!r}")
    unit = (match.group(2) or "").lower().rstrip("b").rstrip("i")
    return int(match.group(1)) * 1024 ** " kmgt".index(unit or " ")


def _choice(flag: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{flag}: expected one of {', '.join(choices)}, got {value!r}")
    return value


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


@dataclass(frozen=True)
class SplitConfig(IngestConfig):
    """Ingest settings (used when --input is raw files) plus the split parameters."""

    input_kind: str = "auto"
    ratios: Tuple[float, ...] = (0.8, 0.1, 0.1)
    names: Tuple[str, ...] = ("train", "val", "test")
    seed: str = "0"
    key_by: Optional[KeySpec] = None  # content for files, required column:NAME for tables
    stratify: str = "none"
    label_column: Optional[str] = None

    def split_params(self) -> Dict[str, Any]:
        """What the run report and the table metadata record about the split."""
        return {"split_algo": split_assign.SPLIT_ALGO, "seed": self.seed, "ratios": list(self.ratios),
                "names": list(self.names), "key_by": str(self.key_by), "stratify": self.stratify}


# flag -> help text. Every value arrives as a string (or a JSON value) and is parsed by the *_values function.
INGEST_FLAGS: Dict[str, str] = {
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
}
# Flags given without a value on the command line; true/false in a --config file.
SWITCH_FLAGS = {"follow-symlinks"}
SPLIT_FLAGS: Dict[str, str] = {
    **INGEST_FLAGS,
    "input-kind": "auto (default), files, catalog (an ingest output) or table (CSV/parquet rows)",
    "ratios": "split ratios, e.g. 0.7,0.15,0.15 (default 0.8,0.1,0.1)",
    "names": "split names (default train,val,test for three ratios, train,test for two)",
    "seed": "hash seed string (default 0)",
    "key-by": "content (default for files) | path | group:REGEX | column:NAME",
    "stratify": "none (default, hash split) or exact (exact per-label shares)",
    "label-column": "label column for tabular input",
}


# How a --config file may spell each value; every other flag takes a JSON string only.
LIST_FLAGS = {"extensions", "ratios", "names", "augment", "augment-splits", "splits"}
WHOLE_NUMBER_FLAGS = {"copies", "shard-count", "max-pixels", "max-file-bytes", "shard-size", "size", "seed"}


def file_value(flag: str, value: Any) -> str:
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
        if flag not in LIST_FLAGS:
            raise ValueError(f"--config {flag}: expected a single value, got a list {json.dumps(value)}")
        if not value:
            raise ValueError(f"--config {flag}: expected a non-empty list, got []")
        return ",".join(scalar(item) for item in value)
    if flag in SWITCH_FLAGS:
        if not isinstance(value, bool):
            raise ValueError(f"--config {flag}: expected true or false, got {json.dumps(value)}")
        return "true" if value else "false"
    if isinstance(value, bool) or value is None or isinstance(value, dict):
        raise ValueError(f"--config {flag}: expected a string{' or whole number' * (flag in WHOLE_NUMBER_FLAGS)}, "
                         f"got {json.dumps(value)}")
    if isinstance(value, float):
        if flag == "ratios":
            return repr(value)
        what = "a whole number" if flag in WHOLE_NUMBER_FLAGS else "a string"
        raise ValueError(f"--config {flag}: expected {what}, got {value!r}")
    if isinstance(value, int):
        if flag not in WHOLE_NUMBER_FLAGS:
            raise ValueError(f"--config {flag}: expected a string, got {value}")
        return str(value)
    return str(value)


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


def build_parser(prog: str, flags: Dict[str, str], description: str) -> argparse.ArgumentParser:
    """An argparse parser whose defaults are all None, so set flags can override the file."""
    parser = _OneLineParser(prog=prog, description=description)
    parser.add_argument("--config", help="JSON file of settings; flags override it")
    for flag, help_text in flags.items():
        if flag in SWITCH_FLAGS:
            parser.add_argument(f"--{flag}", help=help_text, default=None, action="store_const", const="true")
        else:
            parser.add_argument(f"--{flag}", help=help_text, default=None)
    return parser


def merged_settings(argv: Optional[Sequence[str]], prog: str, flags: Dict[str, str],
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
        known = {f.replace("-", "_") for f in flags}
        for key, value in loaded.items():
            name = key.replace("-", "_")
            if name not in known:
                raise UsageError(f"--config: unknown setting {key!r}; expected one of {', '.join(sorted(known))}")
            try:
                settings[name] = file_value(name.replace("_", "-"), value)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
    for key, value in vars(args).items():
        if value is not None and key != "config":
            settings[key] = value
    return settings


PREPROCESS_FLAGS: Dict[str, str] = {
    **SPLIT_FLAGS,
    "size": "output size: N or WIDTHxHEIGHT (default 224)",
    "resize": "exact | shorter-side-crop (default) | fit | pad",
    "resample": "nearest | box | bilinear (default) | hamming | bicubic | lanczos",
    "mode": "RGB (default) | L | keep (L for grayscale sources, RGB otherwise)",
    "background": "colour that alpha and padding are composited onto (default white)",
    "encode": "jpeg[:Q] (default jpeg:90) | png | webp[:Q] | raw (uint8 HWC pixels)",
    "augment": "augmentations, e.g. hflip,vflip,rotate:15,crop:0.85,color:0.2,noise:5",
    "copies": "augmented copies per sample of --augment-splits (default 0)",
    "augment-splits": "splits that get augmented copies (default train)",
    "draft": "on (default): decode JPEGs at reduced DCT scale when the target is smaller; off",
    "depth-scale": ("16/32-bit pixels to 8-bit: fixed (default: 16-bit range, or a PNG's sBIT bits), "
                    "bits:N (N significant bits, e.g. bits:12), or per-image (min..max of each image)"),
}


@dataclass(frozen=True)
class PreprocessConfig(SplitConfig):
    """Split settings (used when --input is raw files or an unsplit catalog) plus the recipe."""

    spec: Optional[Any] = None  # sparkprep.transform.TransformSpec
    copies: int = 0
    augment_splits: Tuple[str, ...] = ("train",)

    def copies_by_split(self) -> Dict[str, int]:
        return {name: self.copies for name in self.augment_splits}


EXPORT_FLAGS: Dict[str, str] = {
    "input": "a processed table (jobs/preprocess.py) or a split table of files (exports original bytes)",
    "output": "output directory: a local path or s3://bucket/prefix",
    "to": "imagefolder | webdataset | tfrecord",
    "format": "input table format: auto (default), parquet or delta",
    "shard-size": "upper bound on each shard's bytes, e.g. 256MB (default 256MB)",
    "shard-count": "shards per split instead of --shard-size",
    "splits": "comma-separated splits to export (default: all)",
    "s3-endpoint": ("S3 endpoint URL for any S3-compatible store (default $AWS_ENDPOINT_URL_S3 or "
                    "$AWS_ENDPOINT_URL, else AWS)"),
    "report": "where to write the JSON run report (default <output>/_run_report.json)",
    "classes": ("pin class indices: an earlier export's manifest.json, or a JSON object label -> index "
                "(default: sorted labels of every ok row of the input, all splits)"),
}
MIN_SHARD_BYTES = 64 << 10
MAX_PIXELS_LIMIT = 1 << 31  # a 46k x 46k image; Pillow would need > 2 GiB per channel beyond that


@dataclass(frozen=True)
class ExportConfig:
    """Which table to export, to what layout, and how to cut shards."""

    input: str
    output: str
    to: str
    format: str = "auto"
    shard_size: Optional[int] = 256 << 20  # None when --shard-count is used or --to imagefolder
    shard_count: Optional[int] = None
    splits: Optional[Tuple[str, ...]] = None
    s3_endpoint: Optional[str] = None
    report: Optional[str] = None
    classes: Optional[str] = None


def export_config(argv: Optional[Sequence[str]] = None) -> ExportConfig:
    """Parse and validate the export job's arguments."""
    settings = merged_settings(argv, "export", EXPORT_FLAGS, "Write ImageFolder, WebDataset or TFRecord files.")
    return _wrap(lambda: _export_values(settings))


def _export_values(s: Dict[str, Any]) -> ExportConfig:
    from sparkprep.export.shards import TARGETS

    for required in ("input", "output"):
        if not s.get(required):
            raise ValueError(f"--{required}: expected a path, got nothing")
    if not s.get("to"):
        raise ValueError(f"--to: expected one of {', '.join(TARGETS)}, got nothing")
    to = _choice("--to", str(s["to"]), TARGETS)
    source, output = str(s["input"]), str(s["output"])
    if is_local(source) and not os.path.exists(_local(source)):
        raise ValueError(f"--input: expected an existing table, got {source!r}")
    _check_output(source, output)
    if not (is_local(output) or output.startswith("s3://")):
        raise ValueError(f"--output: expected a local path or s3://bucket/prefix, got {redact_uri(output)!r}")
    values: Dict[str, Any] = {"input": source, "output": output, "to": to,
                              "format": _choice("--format", s.get("format", "auto"), ("auto",) + FORMATS)}
    if s.get("shard_size") is not None and s.get("shard_count") is not None:
        raise ValueError("--shard-count: expected either --shard-size or --shard-count, got both")
    if to == "imagefolder":
        for flag in ("shard_size", "shard_count"):
            if s.get(flag) is not None:
                raise ValueError(f"--{flag.replace('_', '-')}: expected only with --to webdataset or tfrecord")
        values["shard_size"] = None
    elif s.get("shard_count") is not None:
        values["shard_count"] = whole_number("--shard-count", s["shard_count"], 1, 1_000_000)
        values["shard_size"] = None
    elif s.get("shard_size") is not None:
        try:
            values["shard_size"] = parse_bytes(s["shard_size"])
        except ValueError as exc:
            raise ValueError(f"--shard-size: {exc}") from None
        if values["shard_size"] < MIN_SHARD_BYTES:
            raise ValueError(f"--shard-size: expected at least 64KB, got {s['shard_size']!r}")
    if s.get("splits"):
        values["splits"] = tuple(split_assign.check_split_name(n.strip(), "--splits")
                                 for n in str(s["splits"]).split(","))
    endpoint = s.get("s3_endpoint") or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        if not re.fullmatch(r"https?://[^/\s]+/?", str(endpoint)):
            raise ValueError(f"--s3-endpoint: expected a URL like http://127.0.0.1:9000, got {redact_uri(endpoint)!r}")
        values["s3_endpoint"] = str(endpoint).rstrip("/")
    if s.get("report"):
        values["report"] = check_report_uri(str(s["report"]), output)
    if s.get("classes"):
        if not os.path.isfile(str(s["classes"])):
            raise ValueError(f"--classes: expected an existing JSON file, got {s['classes']!r}")
        values["classes"] = str(s["classes"])
    return ExportConfig(**values)


def ingest_config(argv: Optional[Sequence[str]] = None) -> IngestConfig:
    """Parse and validate the ingest job's arguments."""
    settings = merged_settings(argv, "ingest", INGEST_FLAGS, "Catalogue raw files into a table.")
    return _wrap(lambda: IngestConfig(**_ingest_values(settings)))


def split_config(argv: Optional[Sequence[str]] = None) -> SplitConfig:
    """Parse and validate the split job's arguments."""
    settings = merged_settings(argv, "split", SPLIT_FLAGS, "Assign deterministic train/val/test splits.")
    return _wrap(lambda: _split_values(settings))


def preprocess_config(argv: Optional[Sequence[str]] = None) -> PreprocessConfig:
    """Parse and validate the preprocess job's arguments."""
    settings = merged_settings(argv, "preprocess", PREPROCESS_FLAGS, "Decode, orient, convert, resize, augment.")
    return _wrap(lambda: _preprocess_values(settings))


def _preprocess_values(s: Dict[str, Any]) -> PreprocessConfig:
    from sparkprep.preprocess import augment, image_ops, transform

    split = _split_values(s)
    if split.input_kind == "table":
        raise ValueError("--input: expected image files, a catalog or a split table; tabular rows have no images")
    fmt, quality = transform.parse_encode(s.get("encode", "jpeg:90"))
    spec = transform.TransformSpec(
        size=transform.parse_size(s.get("size", "224")),
        resize=_choice("--resize", s.get("resize", "shorter-side-crop"), image_ops.RESIZE_POLICIES),
        resample=_choice("--resample", s.get("resample", "bilinear"), tuple(image_ops.RESAMPLE)),
        mode=_choice("--mode", s.get("mode", "RGB"), image_ops.MODES),
        background=transform.parse_background(s.get("background", "white")),
        encode=fmt, quality=quality,
        augment=augment.AugmentSpec.parse(s.get("augment")),
        seed=split.seed,
        draft=_choice("--draft", s.get("draft", "on"), ("on", "off")) == "on",
        depth_scale=image_ops.parse_depth_scale(s.get("depth_scale", "fixed")),
    )
    copies = whole_number("--copies", s.get("copies", 0), 0, 100)
    if copies and not spec.augment:
        raise ValueError("--copies: expected --augment too (copies of what?)")
    splits = tuple(split_assign.check_split_name(n.strip(), "--augment-splits")
                   for n in str(s.get("augment_splits", "train")).split(","))
    if split.input_kind == "files" and not set(splits) <= set(split.names):
        unknown = sorted(set(splits) - set(split.names))
        raise ValueError(f"--augment-splits: expected names among --names ({', '.join(split.names)}), "
                         f"got {', '.join(unknown)}")
    values = {f.name: getattr(split, f.name) for f in fields(split)}
    return PreprocessConfig(**values, spec=spec, copies=copies, augment_splits=splits)


def _wrap(build):
    try:
        return build()
    except UsageError:
        raise
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None


def _ingest_values(s: Dict[str, Any]) -> Dict[str, Any]:
    for required in ("input", "output"):
        if not s.get(required):
            raise ValueError(f"--{required}: expected a path, got nothing")
    values: Dict[str, Any] = {"input": str(s["input"]), "output": str(s["output"])}
    if is_local(values["input"]) and not os.path.exists(_local(values["input"])):
        raise ValueError(f"--input: expected an existing path, got {values['input']!r}")
    _check_output(values["input"], values["output"])
    values["format"] = _choice("--format", s.get("format", "parquet"), FORMATS)
    values["validate"] = _choice("--validate", s.get("validate", "header"), VALIDATE_LEVELS)
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
        if is_local(s["labels"]) and not os.path.isfile(_local(s["labels"])):
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
    return values


def _split_values(s: Dict[str, Any]) -> SplitConfig:
    ingest = _ingest_values(s)
    kind = _choice("--input-kind", s.get("input_kind", "auto"), INPUT_KINDS)
    if kind == "auto":
        kind = detect_input_kind(ingest["input"])
    ratios = split_assign.parse_ratios(str(s.get("ratios", "0.8,0.1,0.1")))
    names = split_assign.parse_names(s.get("names"), len(ratios))
    if kind == "table" and not s.get("key_by"):
        raise ValueError("--key-by: expected column:NAME for tabular input, got nothing")
    key_by = KeySpec.parse(str(s.get("key_by", "content")))
    if kind == "table" and key_by.kind != "column":
        raise ValueError(f"--key-by: expected column:NAME for tabular input, got {key_by}")
    if kind != "table" and key_by.kind == "column":
        raise ValueError(f"--key-by: column:NAME needs --input-kind table, got input kind {kind}")
    if s.get("label_column") and kind != "table":
        raise ValueError("--label-column: expected only with tabular input (--input-kind table)")
    return SplitConfig(**ingest, input_kind=kind, ratios=tuple(ratios), names=tuple(names),
                       seed=str(s.get("seed", "0")), key_by=key_by,
                       stratify=_choice("--stratify", s.get("stratify", "none"), STRATIFY),
                       label_column=s.get("label_column"))


def detect_input_kind(uri: str) -> str:
    """table for a .csv/.parquet file, catalog for a table directory, files otherwise."""
    lowered = uri.lower().rstrip("/")
    if lowered.endswith((".csv", ".parquet", ".csv.gz")):
        return "table"
    if is_local(uri):
        root = _local(uri)
        if os.path.isdir(os.path.join(root, "_delta_log")) or os.path.isfile(os.path.join(root, "_SUCCESS")):
            return "catalog"
    return "files"


def _local(uri: str) -> str:
    return uri[len("file:"):] if uri.startswith("file:") else uri


def _check_output(input_uri: str, output_uri: str) -> None:
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
        parent = os.path.dirname(os.path.abspath(_local(report))) or "."
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
            raise ValueError(f"--report: expected a writable directory for the report, got {report!r}")
        if os.path.isdir(_local(report)):
            raise ValueError(f"--report: expected a file name, got a directory {report!r}")
    elif not re.match(r"^(s3|s3a|s3n|hdfs|gs|abfss?|wasbs?)://", report):
        raise ValueError(f"--report: expected a local path or an object-store URI, got {report!r}")
    return report


def redact_uri(uri: Any) -> Any:
    """A URI without user-info (scheme://KEY:SECRET@host -> scheme://***@host), for reports and manifests."""
    if not isinstance(uri, str):
        return uri
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@", r"\1***@", uri)


def config_dict(cfg: IngestConfig) -> Dict[str, Any]:
    """The config as JSON-ready values, for the run report."""
    out: Dict[str, Any] = {}
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if hasattr(value, "as_dict"):
            value = value.as_dict()
        out[f.name] = str(value) if isinstance(value, KeySpec) else list(value) if isinstance(value, tuple) \
            else redact_uri(value)
    return out
