"""The audit part of a config: how near is near, and whether leakage fails the run (split, the
pipeline and the report job share it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sparkprep.audit import bands, calibrate
from sparkprep.audit.crops import CROP_MAX_ROWS
from sparkprep.audit.rule import CANDIDATE_BITS
from sparkprep.flags import flag, one_of, switch, whole

PHASH, CROP_ROBUST = "phash", "crop-robust"  # --near-signature


def _threshold(value: str) -> Optional[int]:
    if value == "auto":
        return None
    threshold = whole("--near-threshold", 0, 62)(value)
    bands.layout_for(threshold)  # a threshold whose layout is too big is refused now, not later
    return threshold


@dataclass(frozen=True)
class AuditFlags:
    """The near-duplicate search and the leakage policy."""

    near_threshold: Optional[int] = flag(
        None, _threshold, "pHash bits two images may differ in and be near-duplicates (pHash distances are even): "
        f"auto takes the largest, up to {calibrate.MAX_THRESHOLD}, at which the table's own random pairs give at most "
        f"1 chance pair per {calibrate.CHANCE_ROWS:,} rows (docs/near-duplicates.md); where none of 2 or more does, "
        "pairs count when the angle between their DCT directions is within its own calibrated threshold (tables "
        f"written before the directions: pairs within {CANDIDATE_BITS} bits whose phash256 is within its own). Or a "
        "number of bits 0..62 (the 64-bit hash alone)",
        kind="number", shown="`auto`")
    near_bucket_cap: int = flag(bands.DEFAULT_BUCKET_CAP, whole("--near-bucket-cap", 2, 10 ** 6),
                                "band keys shared by more hashes, or hashes shared by more rows, are reported, "
                                "not joined", kind="number")
    near_signature: str = flag(
        PHASH, one_of("--near-signature", PHASH, CROP_ROBUST),
        "phash (the whole image's pHash) or crop-robust (also crop pairs: an image's pHash within a threshold, "
        "calibrated as pHash's, of the pHash of one of 16 fixed windows of another, e.g. a corner or a side; the "
        f"windows are computed from the rows' bytes, on tables up to {CROP_MAX_ROWS:,} hashed rows; "
        "docs/near-duplicates.md, Crops)")
    fail_on_leakage: bool = flag(False, switch, "exit 1 after writing everything when an exact or near-duplicate "
                                                "pair crosses splits", kind="switch")
