"""The map job's config: which function runs over every sample, what it returns, and where it goes
(a table, or an export through the shard part of export)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence

from sparkprep.export.flags import ShardFlags
from sparkprep.export.formats import EXPORT_FORMATS
from sparkprep.flags import FORMATS, Job, compose, flag, one_of, require_paths, share, text, whole
from sparkprep.map.samples import load_function, parse_schema
from sparkprep.uris import check_not_bucket_root, check_output, check_report_uri


@dataclass(frozen=True)
class MapFlags:
    """A user function over the samples of a split table."""

    input: Optional[str] = flag(None, text, "a split table (jobs/split.py), samples of one or several files")
    output: Optional[str] = flag(None, text, "output table directory (or export directory with --to)")
    format: str = flag("parquet", one_of("--format", *FORMATS), "table format: parquet or delta")
    map: Optional[str] = flag(None, text, "module:function called with one sample dict, returning a dict or None "
                                          "(ship it with --py-files)")
    map_batch: Optional[str] = flag(None, text, "module:function called with a list of sample dicts, returning a "
                                                "list of dicts or None")
    batch_size: int = flag(64, whole("--batch-size", 1, 100_000), "samples per call of a --map-batch function",
                           kind="number")
    schema: Optional[str] = flag(None, text, "the scalar fields the function returns, as Spark DDL, e.g. "
                                             "'hr double, signal string'")
    seed: str = flag("0", text, "seed string for __seed__ = sha256(seed:sample id)", kind="number")
    report: Optional[str] = flag(None, text, "where to write the JSON run report", shown="`<output>/_run_report.json`")
    to: Optional[str] = flag(None, one_of("--to", *EXPORT_FORMATS), (
        f"write the mapped samples straight to {' | '.join(EXPORT_FORMATS)} (the export job's writers, "
        "retry-safe, with a manifest) instead of a table"))
    max_quarantine_fraction: float = flag(0.5, share("--max-quarantine-fraction"), (
        "fail without publishing when more than this fraction of the samples is quarantined or map_error "
        "(filtered samples do not count)"), kind="decimal")
    function: str = ""            # module:function, from --map or --map-batch
    batched: bool = False         # --map-batch: the function takes a list of samples
    input_kind: str = "catalog"   # what the report records as the input kind

    @staticmethod
    def checked(values: Dict[str, Any], given: Dict[str, str], job: Job) -> None:
        require_paths(values, "input", "output")
        check_output(values["input"], values["output"])
        if bool(values["map"]) == bool(values["map_batch"]):
            raise ValueError("--map: expected exactly one of --map or --map-batch")
        values["function"] = str(values["map"] or values["map_batch"])
        values["batched"] = bool(values["map_batch"])
        if job.local:  # a missing module or function is a usage error, before any Spark work
            load_function(values["function"])
        parse_schema(values["schema"])
        if values["report"]:
            values["report"] = check_report_uri(str(values["report"]), values["output"])
        if values["to"]:
            check_not_bucket_root(values["output"], "--output")


MapConfig = compose("MapConfig", "A user function over the samples of a split table.", MapFlags, ShardFlags)

MAP = Job("map", "Run your own Python over every sample of a split table.", MapConfig)


def map_config(argv: Optional[Sequence[str]] = None) -> MapConfig:
    """Parse and validate the map job's arguments; the function is imported here, before Spark starts."""
    return MAP.parse(argv)
