"""The pipeline's config: every part of split and preprocess, the export targets (with the shard
part of export), and what to keep."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

from sparkprep.audit.flags import AuditFlags
from sparkprep.export.flags import ShardFlags
from sparkprep.export.formats import EXPORT_FORMATS
from sparkprep.flags import Job, compose, flag, one_of
from sparkprep.ingest.flags import IngestFlags
from sparkprep.preprocess.flags import PREPROCESS, PreprocessFlags, copies_by_split
from sparkprep.split.flags import SplitFlags, split_params
from sparkprep.uris import check_not_bucket_root
from sparkprep.values import choice

KEEP = ("content", "none")
# How the bytes reach Python: binaryfile (Spark reads them) or workers (each Python worker
# reads its own files through pyarrow.fs); auto picks by measurement (docs/performance.md).
READERS = ("auto", "binaryfile", "workers")
OUTPUTS = ("splits", "processed")  # besides one directory per export target


def _targets(value: str) -> Tuple[str, ...]:
    targets = tuple(choice("--to", t.strip(), EXPORT_FORMATS) for t in str(value).split(",") if t.strip())
    if len(set(targets)) != len(targets):
        raise ValueError(f"--to: expected each export once, got {value!r}")
    return targets


@dataclass(frozen=True)
class PipelineFlags:
    """The exports made from the processed table, what the split table keeps, how bytes are read."""

    to: Tuple[str, ...] = flag((), _targets, "exports made from the processed table: "
                               f"{', '.join(EXPORT_FORMATS)} (comma-separated)", kind="list", shown="none")
    keep_content: bool = flag(True, lambda v: one_of("--keep", *KEEP)(v) == "content",
                              "content (the split table keeps each file's bytes) or none (metadata only)",
                              shown="`content`", name="keep")
    read: str = flag("auto", one_of("--read", *READERS),
                     "auto, binaryfile (Spark reads the bytes) or workers (each Python worker reads its files)")

    @staticmethod
    def checked(values: Dict[str, Any], given: Dict[str, str], job: Job) -> None:
        if values["input_kind"] not in ("files", "webdataset", "auto"):
            raise ValueError(f"--input: expected raw files or WebDataset shards, got a {values['input_kind']} "
                             "(split or preprocess an existing table with jobs/preprocess.py, then jobs/export.py)")
        if values["to"]:
            check_not_bucket_root(values["output"], "--output")


PipelineConfig = compose(
    "PipelineConfig", "Split and preprocess settings, plus the exports made from the processed table.",
    IngestFlags, SplitFlags, AuditFlags, PreprocessFlags, PipelineFlags, ShardFlags,
    namespace={"split_params": split_params, "copies_by_split": copies_by_split})


def pipeline_rules(values: Dict[str, Any], given: Dict[str, str]) -> None:
    if values["report"]:
        raise ValueError("--report: the pipeline writes <output>/_run_report.json (and one per output); "
                         "expected no --report")


PIPELINE = Job("pipeline", "Raw files to a split table, a processed table and exports, in one application.",
               PipelineConfig, check=pipeline_rules, help={
                   **PREPROCESS.help,
                   "--input": "raw files: a folder, a glob, .tar shards, or with --manifest the root",
                   "--input-kind": "auto, files or webdataset",
                   "--incremental": "the previous output is the state: a file whose path, size and mtime (or "
                                    "ETag) are unchanged keeps its rows in both tables, unread and not transformed "
                                    "again; new and changed files are read and transformed; files gone from the "
                                    "input disappear (samples of several files and WebDataset shards: kept or read "
                                    "whole). Another value of a setting that decides a row (ingest, split, "
                                    "recipe, --copies, format, sparkprep version) reads everything (the report says "
                                    "why). Exports write only what changed (as export --incremental), except "
                                    "with --shard-count: then they are written whole",
                   "--output": "output directory: <output>/splits, <output>/processed and <output>/<target> per "
                               "export"})


def pipeline_config(argv: Optional[Sequence[str]] = None) -> PipelineConfig:
    """Parse and validate the pipeline job's arguments."""
    return PIPELINE.parse(argv)
