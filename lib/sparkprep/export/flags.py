"""The export parts of a config: which table goes to which layout (the export job), and how shards
are cut (shared by export, the pipeline's --to and map's --to)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

from sparkprep.export import formats as export_formats
from sparkprep.export.formats import EXPORT_FORMATS, SHARD_NAMES
from sparkprep.flags import FORMATS, Job, compose, flag, one_of, require_paths, size_of, switch, text, whole
from sparkprep.split import assign as split_assign
from sparkprep.uris import check_output, check_report_uri, is_local, local_path, redact_uri, s3_endpoint

MIN_SHARD_BYTES = 64 << 10


def targets_of(to: Any) -> Tuple[str, ...]:
    """The export formats a config's --to names (one for export and map, several for the pipeline)."""
    return tuple(to) if isinstance(to, tuple) else ((to,) if to else ())


@dataclass(frozen=True)
class ShardFlags:
    """How shards are cut, and how classes are numbered."""

    shard_size: Optional[int] = flag(256 << 20, size_of("--shard-size", MIN_SHARD_BYTES, 1 << 50, "at least 64KB"),
                                     "upper bound on each shard's bytes, e.g. 256MB", kind="number",
                                     shown="`256MB` (`500MB` for `--to hf` alone, `64MB` for `--to mds` alone)")
    shard_count: Optional[int] = flag(None, whole("--shard-count", 1, 1_000_000),
                                      "shards per split instead of --shard-size", kind="number")
    classes: Optional[str] = flag(None, text, (
        "pin class indices: an earlier export's manifest.json, or a JSON object label -> index"),
        shown="sorted labels of every ok row of the input, all splits")

    @staticmethod
    def checked(values: Dict[str, Any], given: Dict[str, str], job: Job) -> None:
        targets = targets_of(values["to"])
        if "shard_size" in given and "shard_count" in given:
            raise ValueError("--shard-count: expected either --shard-size or --shard-count, got both")
        if not any(export_formats.FORMATS[to].sharded for to in targets):  # no shards (nothing to export: no --to)
            for name in ("shard_size", "shard_count"):
                if name in given:
                    raise ValueError(f"--{name.replace('_', '-')}: expected only with --to {SHARD_NAMES}")
            values["shard_size"] = None
        elif "shard_count" in given:
            values["shard_size"] = None
        elif "shard_size" not in given:  # a format's own default, when it is the only one to write
            defaults = {export_formats.FORMATS[to].default_shard_size for to in targets}
            if len(defaults) == 1 and None not in defaults:
                values["shard_size"] = defaults.pop()
        for to in targets:
            if values["shard_size"] and values["shard_size"] > export_formats.FORMATS[to].max_shard_size:
                raise ValueError(f"--shard-size: expected at most {export_formats.FORMATS[to].max_shard_size} "
                                 f"bytes for --to {to}, got {values['shard_size']}")
        if values["classes"] and not os.path.isfile(str(values["classes"])):
            raise ValueError(f"--classes: expected an existing JSON file, got {values['classes']!r}")


@dataclass(frozen=True)
class ExportFlags:
    """Which table to export, and to what layout."""

    input: Optional[str] = flag(None, text, "a processed table (jobs/preprocess.py) or a split table of files "
                                            "(exports original bytes)")
    output: Optional[str] = flag(None, text, "output directory: a local path or s3://bucket/prefix")
    to: Optional[str] = flag(None, text, " | ".join(EXPORT_FORMATS))
    format: str = flag("auto", one_of("--format", "auto", *FORMATS), "input table format: auto, parquet or delta")
    splits: Optional[Tuple[str, ...]] = flag(None, lambda v: tuple(
        split_assign.check_split_name(n.strip(), "--splits") for n in str(v).split(",")),
        "comma-separated splits to export", kind="list", shown="all")
    s3_endpoint: Optional[str] = flag(None, text, "S3 endpoint URL for any S3-compatible store",
                                      shown="`$AWS_ENDPOINT_URL_S3` or `$AWS_ENDPOINT_URL`, else AWS")
    report: Optional[str] = flag(None, text, "where to write the JSON run report", shown="`<output>/_run_report.json`")
    incremental: bool = flag(False, switch, (
        "write only what changed since the previous export into --output. ImageFolder: files compared by name "
        "and sha256 with its manifest. Shards: samples whose record is unchanged stay in their shard, the others "
        "go to new shards; a shard is rewritten only when it lost or changed a sample (TFRecord shards are then "
        "named without -of-N, as their count grows; RecordIO's kept records keep their ids). Untouched files stay "
        "in place; files of gone samples are removed"), kind="switch")

    @staticmethod
    def checked(values: Dict[str, Any], given: Dict[str, str], job: Job) -> None:
        require_paths(values, "input", "output")
        if not values["to"]:
            raise ValueError(f"--to: expected one of {', '.join(EXPORT_FORMATS)}, got nothing")
        one_of("--to", *EXPORT_FORMATS)(values["to"])
        if values["incremental"] and "shard_count" in given:
            raise ValueError("--incremental: expected --shard-size (new samples go to new shards, so the count "
                             "grows), got --shard-count")
        source, output = values["input"], values["output"]
        if is_local(source) and not os.path.exists(local_path(source)):
            raise ValueError(f"--input: expected an existing table, got {source!r}")
        check_output(source, output)
        if not (is_local(output) or output.startswith("s3://")):
            raise ValueError(f"--output: expected a local path or s3://bucket/prefix, got {redact_uri(output)!r}")
        values["s3_endpoint"] = s3_endpoint(values)
        if values["report"]:
            values["report"] = check_report_uri(str(values["report"]), output)


ExportConfig = compose("ExportConfig", "Which table to export, to what layout, and how to cut shards.",
                       ExportFlags, ShardFlags)

EXPORT = Job("export", "Write ImageFolder, WebDataset, TFRecord, RecordIO, Hugging Face or MDS files.", ExportConfig)


def export_config(argv: Optional[Sequence[str]] = None) -> ExportConfig:
    """Parse and validate the export job's arguments."""
    return EXPORT.parse(argv)
