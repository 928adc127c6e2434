"""The job registry: every job's name, its command line (a `flags.Job`), its run function and its
summary. jobs/*.py, the EMR and SageMaker submitters, the docs' flag tables and the tests read it;
nothing else spells the list of jobs.

Run functions and summaries are named as "module:function" and imported when a job runs, so
reading the registry (a submitter checking a step's flags) never imports pyspark.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Dict

from sparkprep.export.flags import EXPORT
from sparkprep.features.flags import FEATURES
from sparkprep.flags import Job
from sparkprep.ingest.flags import INGEST
from sparkprep.map.flags import MAP
from sparkprep.pipeline.flags import PIPELINE
from sparkprep.preprocess.flags import PREPROCESS
from sparkprep.report.flags import REPORT
from sparkprep.split.flags import SPLIT


def named(ref: str) -> Callable:
    """The function a "module:function" reference names, imported now."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Entry:
    """One job: what `spark-submit jobs/<name>.py` runs."""

    command: Job   # its flags, parser and checks
    run: str       # "module:function" (spark, config) -> run report
    summary: str   # "module:function" run report -> the text printed at the end
    runs_user_code: bool = False  # its flags name a user's module (shipped with --py-files)

    @property
    def name(self) -> str:
        return self.command.name

    @property
    def script(self) -> str:
        return f"jobs/{self.name}.py"

    def parse(self, argv: Any) -> Any:
        return self.command.parse(argv)


SUMMARY = "sparkprep.runlog:summary_table"

JOBS: Dict[str, Entry] = {entry.name: entry for entry in (
    Entry(INGEST, "sparkprep.ingest.spark.run:run_ingest", SUMMARY),
    Entry(SPLIT, "sparkprep.split.spark:run_split", SUMMARY),
    Entry(PREPROCESS, "sparkprep.preprocess.spark:run_preprocess", SUMMARY),
    Entry(PIPELINE, "sparkprep.pipeline.spark.run:run_pipeline", "sparkprep.runlog:pipeline_summary"),
    Entry(EXPORT, "sparkprep.export.spark:run_export", "sparkprep.runlog:export_summary"),
    Entry(MAP, "sparkprep.map.spark:run_map", "sparkprep.runlog:map_summary", runs_user_code=True),
    Entry(FEATURES, "sparkprep.features.spark:run_features", "sparkprep.runlog:features_summary"),
    Entry(REPORT, "sparkprep.report.spark:run_report", "sparkprep.runlog:report_summary"),
)}
