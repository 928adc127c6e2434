"""The report job's config: which table to look at, where the page goes, and the audit part."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence

from sparkprep.audit.flags import AuditFlags
from sparkprep.flags import FORMATS, Job, compose, flag, one_of, table_input_output, text


@dataclass(frozen=True)
class ReportFlags:
    """A table to report on, and the directory report.html goes to."""

    input: Optional[str] = flag(None, text, "any sparkprep table: a catalog, split, processed or mapped table "
                                            "(parquet or Delta)")
    output: Optional[str] = flag(None, text, "a new directory (or an earlier report's) for report.html and "
                                             "_run_report.json")
    format: str = flag("auto", one_of("--format", "auto", *FORMATS),
                       "the input table's format: auto (detected), parquet or delta")

    @staticmethod
    def checked(values: Dict[str, Any], given: Dict[str, str], job: Job) -> None:
        table_input_output(values, "an existing table directory")


ReportConfig = compose("ReportConfig", "A table to report on, the directory report.html goes to, and the "
                                       "near-duplicate search.", ReportFlags, AuditFlags)

REPORT = Job("report", "Write report.html for a sparkprep table.", ReportConfig, help={
    "--fail-on-leakage": "exit 1 after writing the report when an exact or near-duplicate pair crosses splits"})


def report_config(argv: Optional[Sequence[str]] = None) -> ReportConfig:
    """Parse and validate the report job's arguments."""
    return REPORT.parse(argv)
