"""What makes two rows near-duplicates in one audit, chosen from the calibration sample. Pure
(docs/near-duplicates.md, "The rule").

1. The 64-bit pHash within its calibrated threshold (sparkprep.audit.calibrate). Where a threshold
   of 2 or more meets the bound (varied photos), that is the whole rule; `--near-threshold N`
   fixes it and uses that hash alone.
2. Where none does, the angle between the rows' DCT directions within its own calibrated
   threshold (sparkprep.audit.angles), when every sampled row has a direction, the table has at
   most ANGLE_MAX_ROWS hashed rows (the directions are searched on the driver), and the planned
   search compares at most ANGLE_MAX_PAIRS pairs.
3. Else the 64-bit hash within CANDIDATE_BITS, confirmed by phash256 within its calibrated
   threshold (tables written before the directions, or past the angle's limits).
4. Else exact 64-bit matches only, and the report says that no signature tells the images apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import numpy as np

from sparkprep.audit import angles
from sparkprep.audit.calibrate import LONG_BITS, LONG_MAX_THRESHOLD, Calibration, calibrate

# The second hash (docs/near-duplicates.md, "The second hash"). When the 64-bit hash cannot tell a table's
# images apart, pairs within CANDIDATE_BITS of it are kept only when their phash256 is within its own
# calibrated threshold too. Planted re-encoded, resized and brightened copies of look-alike scans are
# 0-2 bits apart in the 64-bit hash and 0-12 in phash256; unrelated scans 0-8 and rarely under 16.
CANDIDATE_BITS = 4
LONG_FLOOR = 8             # phash256 thresholds below this do not tell images apart either
ANGLE_MAX_ROWS = 200_000   # hashed rows whose directions the driver searches (some 200 MB as float32)
ANGLE_MAX_PAIRS = 100_000_000  # pairs the angle search may compare (about a minute: 0.6 us a pair, measured)


@dataclass(frozen=True)
class NearRule:
    """The rule of one audit: the 64-bit hash within `threshold` bits, and (when it alone cannot tell the data
    apart) phash256 within `long_threshold` bits; or, when `angle` is set, the DCT directions within `angle`
    degrees instead of either hash."""

    threshold: int
    calibration: Calibration
    long_threshold: Optional[int] = None
    long_calibration: Optional[Calibration] = None  # phash256's, whenever it was measured
    angle: Optional[float] = None
    angle_calibration: Optional[angles.AngleCalibration] = None  # whenever it was measured
    axes: Optional[np.ndarray] = field(default=None, compare=False)  # the angle search's (angles.planned_axes)
    angle_plan: Optional[dict] = None
    angle_note: Optional[str] = None  # why the angle was not measured or not used, when it was considered

    @property
    def confirmed(self) -> bool:
        return self.long_threshold is not None

    def second_hash(self) -> Optional[dict]:
        """The run report's near_duplicates.second_hash (None when phash256 was not measured)."""
        if self.long_calibration is None:
            return None
        used = (f"pairs within {self.threshold} bits of the 64-bit hash count only when their phash256 is within "
                f"{self.long_threshold} bits" if self.confirmed else
                "not used: phash256 cannot tell this data apart either, so only exact 64-bit matches count")
        return {"hash": "phash256", "bits": LONG_BITS, "used": self.confirmed, "rule": used,
                "threshold": self.long_threshold, "calibration": self.long_calibration.to_dict()}

    def angle_section(self) -> Optional[dict]:
        """The run report's near_duplicates.angle (None when the 64-bit hash sufficed or was fixed)."""
        if self.angle_calibration is None and self.angle_note is None:
            return None
        if self.angle is not None:
            rule = (f"pairs whose DCT directions are within {self.angle:g} degrees; the search compares every pair "
                    f"in the same or adjacent cells on {self.angle_plan['axes']} principal axes, which every pair "
                    "within the angle is")
        else:
            rule = f"not used: {self.angle_note}"
        return {"signature": "dct_direction", "used": self.angle is not None, "threshold_degrees": self.angle,
                "rule": rule, "search": self.angle_plan,
                "calibration": self.angle_calibration.to_dict() if self.angle_calibration else None}


def near_rule(hashes: Sequence[int], longs: Sequence[Optional[Sequence[int]]], labels: Sequence[Optional[str]],
              rows_per_label: Dict[str, int], fixed: Optional[int] = None,
              directions: Optional[Sequence[Optional[Sequence[int]]]] = None) -> NearRule:
    """The audit's rule from the calibration sample (hashes, phash256 words, labels and DCT directions of the
    sampled rows; rows_per_label: the table's counts). phash256 and the directions are not used when a sampled
    row lacks them (a table written before them); directions None: the angle is not considered."""
    first = calibrate(hashes, labels, rows_per_label, fixed=fixed)
    if fixed is not None or first.threshold >= 2:
        return NearRule(first.threshold, first)
    angle_part = _angle(directions, labels, rows_per_label)
    if angle_part.get("angle") is not None:
        return NearRule(first.threshold, first, **angle_part)
    if not longs or any(w is None for w in longs):
        return NearRule(first.threshold, first, **angle_part)
    second = calibrate(longs, labels, rows_per_label, max_threshold=LONG_MAX_THRESHOLD, floor=LONG_FLOOR)
    if second.threshold < LONG_FLOOR:
        return NearRule(first.threshold, first, None, second, **angle_part)
    return NearRule(CANDIDATE_BITS, first, second.threshold, second, **angle_part)


def _angle(directions, labels, rows_per_label) -> dict:
    """The angle's part of the rule (NearRule's angle fields), or why it is not used (nothing when directions is
    None: the caller's search cannot use the angle)."""
    rows = round(sum(rows_per_label.values()))
    if directions is None:
        return {}
    if not directions or any(d is None for d in directions):
        return {"angle_note": "the table has no dct_direction column (written before it)"}
    if rows > ANGLE_MAX_ROWS:
        return {"angle_note": f"{rows:,} hashed rows, past the {ANGLE_MAX_ROWS:,} whose directions the driver searches"}
    calibration = angles.calibrate_angles(directions, labels, rows_per_label)
    if calibration.threshold < angles.FLOOR:
        return {"angle_calibration": calibration, "angle_note": calibration.reason}
    axes, plan = angles.planned_axes(angles.unit(directions), calibration.threshold, rows)
    if plan["expected_candidate_pairs"] > ANGLE_MAX_PAIRS:
        return {"angle_calibration": calibration, "angle_plan": plan,
                "angle_note": f"its search would compare some {plan['expected_candidate_pairs']:,} pairs, past the "
                              f"{ANGLE_MAX_PAIRS:,} it may"}
    return {"angle": calibration.threshold, "angle_calibration": calibration, "axes": axes, "angle_plan": plan}
