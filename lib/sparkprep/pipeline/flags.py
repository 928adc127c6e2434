"""The pipeline job's flags: every flag of split and preprocess, the export targets, and what to keep."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any, Dict, Optional, Sequence, Tuple

from sparkprep.export.flags import EXPORT_FLAGS, shard_values
from sparkprep.export.shards import EXPORT_FORMATS
from sparkprep.flags import Flags, merged_settings, wrap
from sparkprep.preprocess.flags import PREPROCESS_FLAGS, PreprocessConfig, preprocess_values
from sparkprep.uris import check_not_bucket_root
from sparkprep.values import choice

KEEP = ("content", "none")
# How the bytes reach Python: binaryfile (Spark reads them) or workers (each Python worker
# reads its own files through pyarrow.fs); auto picks by measurement (README "Performance").
READERS = ("auto", "binaryfile", "workers")
OUTPUTS = ("splits", "processed")  # besides one directory per export target


@dataclass(frozen=True)
class PipelineConfig(PreprocessConfig):
    """Split and preprocess settings, plus the exports made from the processed table."""

    to: Tuple[str, ...] = ()
    shard_size: Optional[int] = 256 << 20
    shard_count: Optional[int] = None
    classes: Optional[str] = None
    keep_content: bool = True
    read: str = "auto"


PIPELINE_FLAGS = PREPROCESS_FLAGS.plus(Flags(help={
    "output": "output directory: <output>/splits, <output>/processed and <output>/<target> per export",
    "to": "exports made from the processed table: imagefolder, webdataset, tfrecord, recordio (comma-separated; default none)",
    "shard-size": EXPORT_FLAGS.help["shard-size"],
    "shard-count": EXPORT_FLAGS.help["shard-count"],
    "classes": EXPORT_FLAGS.help["classes"],
    "keep": "content (default: the split table keeps each file's bytes) or none (metadata only)",
    "read": "auto (default), binaryfile (Spark reads the bytes) or workers (each Python worker reads its files)",
}, lists=frozenset({"to"}), numbers=frozenset({"shard-count", "shard-size"})))


def pipeline_config(argv: Optional[Sequence[str]] = None) -> PipelineConfig:
    """Parse and validate the pipeline job's arguments."""
    settings = merged_settings(argv, "pipeline", PIPELINE_FLAGS,
                               "Raw files to a split table, a processed table and exports, in one application.")
    return wrap(lambda: pipeline_values(settings))


def pipeline_values(s: Dict[str, Any]) -> PipelineConfig:
    """A checked PipelineConfig from merged settings."""
    if s.get("report"):
        raise ValueError("--report: the pipeline writes <output>/_run_report.json (and one per output); "
                         "expected no --report")
    preprocess = preprocess_values(s)
    if preprocess.input_kind not in ("files", "webdataset", "auto"):
        raise ValueError(f"--input: expected raw files or WebDataset shards, got a {preprocess.input_kind} "
                         "(split or preprocess an existing table with jobs/preprocess.py, then jobs/export.py)")
    targets = tuple(choice("--to", t.strip(), EXPORT_FORMATS) for t in str(s.get("to") or "").split(",") if t.strip())
    if len(set(targets)) != len(targets):
        raise ValueError(f"--to: expected each export once, got {s.get('to')!r}")
    if targets:
        check_not_bucket_root(preprocess.output, "--output")
    values = {f.name: getattr(preprocess, f.name) for f in fields(preprocess)}
    values.update(shard_values(s, targets) if targets else {})
    if s.get("classes"):
        if not os.path.isfile(str(s["classes"])):
            raise ValueError(f"--classes: expected an existing JSON file, got {s['classes']!r}")
        values["classes"] = str(s["classes"])
    keep = choice("--keep", s.get("keep", "content"), KEEP)
    return PipelineConfig(**values, to=targets, keep_content=keep == "content",
                          read=choice("--read", s.get("read", "auto"), READERS))
