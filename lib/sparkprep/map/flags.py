"""The map job's flags and config: which function runs over every sample, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence

from sparkprep.export.flags import MIN_SHARD_BYTES
from sparkprep.export.shards import EXPORT_FORMATS, SHARD_FORMATS, SHARD_NAMES
from sparkprep.flags import FORMATS, Flags, merged_settings, require_paths, wrap
from sparkprep.map.samples import load_function, parse_schema
from sparkprep.uris import check_not_bucket_root, check_output, check_report_uri
from sparkprep.values import choice, fraction, parse_bytes, whole_number

MAP_FLAGS = Flags(help={
    "input": "a split table (jobs/split.py), samples of one or several files",
    "output": "output table directory",
    "format": "table format: parquet (default) or delta",
    "map": "module:function called with one sample dict, returning a dict or None (ship it with --py-files)",
    "map-batch": "module:function called with a list of sample dicts, returning a list of dicts or None",
    "batch-size": "samples per call of a --map-batch function (default 64)",
    "schema": "the scalar fields the function returns, as Spark DDL, e.g. 'hr double, signal string'",
    "seed": "seed string for __seed__ = sha256(seed:sample id) (default 0)",
    "report": "where to write the JSON run report (default <output>/_run_report.json)",
    "to": ("write the mapped samples straight to imagefolder | webdataset | tfrecord | recordio (the export job's "
           "writers, retry-safe, with a manifest) instead of a table"),
    "shard-size": "with --to webdataset, tfrecord or recordio: upper bound on each shard's bytes (default 256MB)",
    "max-quarantine-fraction": ("fail without publishing when more than this fraction of the samples is "
                                "quarantined or map_error (default 0.5; filtered samples do not count)"),
}, numbers=frozenset({"batch-size", "seed", "shard-size"}), decimals=frozenset({"max-quarantine-fraction"}))


@dataclass(frozen=True)
class MapConfig:
    """A user function over the samples of a split table."""

    input: str
    output: str
    function: str                 # module:function
    batched: bool = False         # --map-batch: the function takes a list of samples
    batch_size: int = 64
    schema: Optional[str] = None  # Spark DDL of the scalar fields
    format: str = "parquet"
    seed: str = "0"
    report: Optional[str] = None
    max_quarantine_fraction: float = 0.5
    input_kind: str = "catalog"   # what the report records as the input kind
    to: Optional[str] = None      # an export format: the output is then an export, not a table
    shard_size: int = 256 << 20


def map_config(argv: Optional[Sequence[str]] = None) -> MapConfig:
    """Parse and validate the map job's arguments; the function is imported here, before Spark starts."""
    settings = merged_settings(argv, "map", MAP_FLAGS, "Run your own Python over every sample of a split table.")
    return wrap(lambda: map_values(settings))


def map_values(s: Dict[str, Any]) -> MapConfig:
    """A checked MapConfig from merged settings."""
    require_paths(s, "input", "output")
    check_output(str(s["input"]), str(s["output"]))
    if bool(s.get("map")) == bool(s.get("map_batch")):
        raise ValueError("--map: expected exactly one of --map or --map-batch")
    spec = str(s.get("map") or s.get("map_batch"))
    load_function(spec)  # a missing module or function is a usage error, before any Spark work
    parse_schema(s.get("schema"))
    values: Dict[str, Any] = {"input": str(s["input"]), "output": str(s["output"]), "function": spec,
                              "batched": bool(s.get("map_batch")), "schema": s.get("schema"),
                              "format": choice("--format", s.get("format", "parquet"), FORMATS),
                              "seed": str(s.get("seed", "0"))}
    if "batch_size" in s:
        values["batch_size"] = whole_number("--batch-size", s["batch_size"], 1, 100_000)
    if s.get("report"):
        values["report"] = check_report_uri(str(s["report"]), values["output"])
    if "max_quarantine_fraction" in s:
        values["max_quarantine_fraction"] = fraction("--max-quarantine-fraction", s["max_quarantine_fraction"])
    if s.get("to"):
        values["to"] = choice("--to", str(s["to"]), EXPORT_FORMATS)
        check_not_bucket_root(values["output"], "--output")
    if s.get("shard_size") is not None:
        if values.get("to") not in SHARD_FORMATS:
            raise ValueError(f"--shard-size: expected only with --to {SHARD_NAMES}")
        values["shard_size"] = max(MIN_SHARD_BYTES, parse_bytes(s["shard_size"]))
    return MapConfig(**values)


