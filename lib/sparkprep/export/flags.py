"""The export job's flags and config: which table to export, to what layout, and how to cut shards."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

from sparkprep.export.shards import EXPORT_FORMATS, SHARD_NAMES
from sparkprep.flags import FORMATS, Flags, merged_settings, require_paths, wrap
from sparkprep.split import assign as split_assign
from sparkprep.uris import check_output, check_report_uri, is_local, local_path, redact_uri, s3_endpoint
from sparkprep.values import choice, parse_bytes, whole_number

MIN_SHARD_BYTES = 64 << 10


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


EXPORT_FLAGS = Flags(help={
    "input": "a processed table (jobs/preprocess.py) or a split table of files (exports original bytes)",
    "output": "output directory: a local path or s3://bucket/prefix",
    "to": "imagefolder | webdataset | tfrecord | recordio",
    "format": "input table format: auto (default), parquet or delta",
    "shard-size": "upper bound on each shard's bytes, e.g. 256MB (default 256MB)",
    "shard-count": "shards per split instead of --shard-size",
    "splits": "comma-separated splits to export (default: all)",
    "s3-endpoint": ("S3 endpoint URL for any S3-compatible store (default $AWS_ENDPOINT_URL_S3 or "
                    "$AWS_ENDPOINT_URL, else AWS)"),
    "report": "where to write the JSON run report (default <output>/_run_report.json)",
    "classes": ("pin class indices: an earlier export's manifest.json, or a JSON object label -> index "
                "(default: sorted labels of every ok row of the input, all splits)"),
}, lists=frozenset({"splits"}), numbers=frozenset({"shard-count", "shard-size"}))


def export_config(argv: Optional[Sequence[str]] = None) -> ExportConfig:
    """Parse and validate the export job's arguments."""
    settings = merged_settings(argv, "export", EXPORT_FLAGS, "Write ImageFolder, WebDataset, TFRecord or RecordIO files.")
    return wrap(lambda: export_values(settings))


def shard_values(s: Dict[str, Any], targets: Sequence[str]) -> Dict[str, Any]:
    """shard_size and shard_count for exports to these formats (ImageFolder has no shards)."""
    values: Dict[str, Any] = {}
    if s.get("shard_size") is not None and s.get("shard_count") is not None:
        raise ValueError("--shard-count: expected either --shard-size or --shard-count, got both")
    if all(to == "imagefolder" for to in targets):
        for flag in ("shard_size", "shard_count"):
            if s.get(flag) is not None:
                raise ValueError(f"--{flag.replace('_', '-')}: expected only with --to {SHARD_NAMES}")
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
    return values


def export_values(s: Dict[str, Any]) -> ExportConfig:
    """A checked ExportConfig from merged settings."""
    require_paths(s, "input", "output")
    if not s.get("to"):
        raise ValueError(f"--to: expected one of {', '.join(EXPORT_FORMATS)}, got nothing")
    to = choice("--to", str(s["to"]), EXPORT_FORMATS)
    source, output = str(s["input"]), str(s["output"])
    if is_local(source) and not os.path.exists(local_path(source)):
        raise ValueError(f"--input: expected an existing table, got {source!r}")
    check_output(source, output)
    if not (is_local(output) or output.startswith("s3://")):
        raise ValueError(f"--output: expected a local path or s3://bucket/prefix, got {redact_uri(output)!r}")
    values: Dict[str, Any] = {"input": source, "output": output, "to": to,
                              "format": choice("--format", s.get("format", "auto"), ("auto",) + FORMATS)}
    values.update(shard_values(s, [to]))
    if s.get("splits"):
        values["splits"] = tuple(split_assign.check_split_name(n.strip(), "--splits")
                                 for n in str(s["splits"]).split(","))
    values["s3_endpoint"] = s3_endpoint(s)
    if s.get("report"):
        values["report"] = check_report_uri(str(s["report"]), output)
    if s.get("classes"):
        if not os.path.isfile(str(s["classes"])):
            raise ValueError(f"--classes: expected an existing JSON file, got {s['classes']!r}")
        values["classes"] = str(s["classes"])
    return ExportConfig(**values)
