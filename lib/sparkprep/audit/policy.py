"""What crosses splits, --fail-on-leakage, and what --near-duplicates merge may do: the leakage
policy over a table's run report and a merge's clusters. Pure."""

from __future__ import annotations

import math
from typing import Dict, Optional, Sequence

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


# --near-duplicates merge: a cluster is merged (keyed by its smallest key) only when it is small.
# Connected components chain look-alike images: on 8,000 synthetic scans one component held 7,999
# rows, and merging it would put the whole table in one split.
MERGE_MAX_ROWS = 1_000       # --near-merge-max
MERGE_MAX_SHARE = 0.01       # of the hashed rows
MERGE_FLOOR_ROWS = 20        # however small the table (a photo and its versions)
MERGE_MAX_SHIFT = 0.05       # a split's share may move this much against the plain hash split (or 3 sigma of
                             # what placing the merged clusters at random would give, on a small table)


def merge_limit(hashed_rows: int, max_rows: int = MERGE_MAX_ROWS) -> int:
    """The most rows a cluster may have and still be merged."""
    return min(max_rows, max(MERGE_FLOOR_ROWS, int(hashed_rows * MERGE_MAX_SHARE)))


def merge_skew(before: Dict[str, int], after: Dict[str, int], names: Sequence[str], ratios: Sequence[float],
               largest: int, square_sum: int = 0) -> Optional[str]:
    """Why a merge's split is unacceptable (a split emptied, or a share moved too far), or None.

    before/after: rows per split of the plain hash split and of the merged split. square_sum: the
    sum of the merged clusters' squared sizes: on a small table a few clusters move shares by
    chance, by about sqrt(square_sum * r (1 - r)) / rows, so a shift within 3 of those (or within
    MERGE_MAX_SHIFT) is what the clusters' sizes allow.
    """
    total = sum(after.values()) or 1
    for name, ratio in zip(names, ratios):
        was, now = before.get(name, 0), after.get(name, 0)
        if was and not now:
            return (f"--near-duplicates merge would leave split {name!r} empty (the hash split gives it {was} rows, "
                    f"ratio {ratio:g}); its largest merged cluster has {largest} rows")
    for name, ratio in zip(names, ratios):
        was, now = before.get(name, 0), after.get(name, 0)
        allowed = max(MERGE_MAX_SHIFT, 3 * math.sqrt(square_sum * ratio * (1 - ratio)) / total)
        if abs(now - was) / total > allowed:
            return (f"--near-duplicates merge would move split {name!r} from {was / total:.1%} to {now / total:.1%} of "
                    f"the rows (ratio {ratio:g}; the merged clusters' sizes allow {allowed:.1%}); its largest merged "
                    f"cluster has {largest} rows: lower --near-merge-max, or review the clusters with "
                    f"--near-duplicates report")
    return None
