"""The report job's flags and config: which table to look at, where the page goes, how near is near."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence

from sparkprep.audit import bands as near
from sparkprep.flags import FORMATS, Flags, merged_settings, table_input_output, wrap
from sparkprep.values import choice, whole_number


@dataclass(frozen=True)
class ReportConfig:
    """A table to report on, the directory report.html goes to, and the near-duplicate search."""

    input: str
    output: str
    format: str = "auto"  # of the input table: auto (detected), parquet or delta
    near_threshold: int = near.DEFAULT_THRESHOLD
    near_bucket_cap: int = near.DEFAULT_BUCKET_CAP
    fail_on_leakage: bool = False


REPORT_FLAGS = Flags(help={
    "input": "any sparkprep table: a catalog, split, processed or mapped table (parquet or Delta)",
    "output": "a new directory (or an earlier report's) for report.html and _run_report.json",
    "format": "the input table's format: auto (default, detected), parquet or delta",
    "near-threshold": f"pHash bits two images may differ in and be near-duplicates (default {near.DEFAULT_THRESHOLD})",
    "near-bucket-cap": (f"band keys shared by more hashes, or hashes shared by more rows, are reported, not joined "
                        f"(default {near.DEFAULT_BUCKET_CAP})"),
    "fail-on-leakage": "exit 1 after writing the report when an exact or near-duplicate pair crosses splits",
}, numbers=frozenset({"near-threshold", "near-bucket-cap"}), switches=frozenset({"fail-on-leakage"}))


def report_config(argv: Optional[Sequence[str]] = None) -> ReportConfig:
    """Parse and validate the report job's arguments."""
    settings = merged_settings(argv, "report", REPORT_FLAGS, "Write report.html for a sparkprep table.")
    return wrap(lambda: report_values(settings))


def report_values(s: Dict[str, Any]) -> ReportConfig:
    """A checked ReportConfig from merged settings."""
    source, output = table_input_output(s, "an existing table directory")
    threshold = whole_number("--near-threshold", s.get("near_threshold", near.DEFAULT_THRESHOLD), 0, 62)
    near.layout_for(threshold)
    return ReportConfig(input=source, output=output,
                        format=choice("--format", s.get("format", "auto"), ("auto",) + FORMATS),
                        near_threshold=threshold,
                        near_bucket_cap=whole_number("--near-bucket-cap",
                                                     s.get("near_bucket_cap", near.DEFAULT_BUCKET_CAP), 2, 10 ** 6),
                        fail_on_leakage=s.get("fail_on_leakage", "false") == "true")
