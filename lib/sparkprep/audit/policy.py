"""What crosses splits, and --fail-on-leakage: the leakage policy over a table's run report. Pure."""

from __future__ import annotations

from typing import Optional

from sparkprep.errors import LeakageFound
from sparkprep.spark import ownership
from sparkprep.spark.ownership import TABLE_PAGE


def leakage(report: dict) -> dict:
    """What crosses splits: exact copies (same sha256) and near-duplicate row pairs."""
    near = report.get("near_duplicates") or {}
    return {"exact_groups_across_splits": (report.get("duplicates") or {}).get("groups_in_several_splits", 0),
            "near_pairs_across_splits": near.get("pairs_across_splits", 0)}


def check_leakage(report: dict, fail: bool, audited: Optional[dict] = None) -> dict:
    """The report, unless fail is set and something crosses splits: then LeakageFound (exit 1; all is written).

    audited: the table report that holds the audit, when `report` is a pipeline's.
    """
    audited = audited or report
    found = leakage(audited)
    if fail and any(found.values()):
        page = f"{audited['output']['uri']}/{TABLE_PAGE if audited.get('job') != 'report' else ownership.PAGE}"
        raise LeakageFound(report, f"--fail-on-leakage: {found['exact_groups_across_splits']} exact-duplicate groups "
                                   f"and {found['near_pairs_across_splits']} near-duplicate pairs cross splits "
                                   f"(see {page}); the output was written")
    return report
