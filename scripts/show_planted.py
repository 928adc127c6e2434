"""After `make demo`: the near-copies the sample generator planted, and which of them the audit
found, by the rule it used (from the run report: the 64-bit threshold, or the angle between DCT
directions where the 64-bit hash cannot tell the scans apart), across splits and within.

    python scripts/show_planted.py data/mednist out/mednist

Every pair the rule keeps is recounted from the split table's signatures, so the line also says
how many found pairs were not planted, how many of those are exact copies (the generator's
duplicate files), and how many are two slices of one patient (real look-alikes, which a split by
patient keeps together).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys

import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_sample import planted_pairs  # noqa: E402

from sparkprep.audit.angles import degrees as degrees_of, unit  # noqa: E402

PATIENT = re.compile(r"/(p[0-9]+)_")


def patient(path: str):
    found = PATIENT.search("/" + path)
    return found.group(1) if found else None


def bits(a: int, b: int) -> int:
    return bin((a ^ b) & (2 ** 64 - 1)).count("1")


def long_bits(a, b) -> int:
    """Bits between two phash256 values (4 signed 64-bit words each)."""
    return sum(bits(x, y) for x, y in zip(a, b))


def apart(a, b) -> float:
    """Degrees between two DCT directions (sparkprep.audit.angles, as the audit computes them)."""
    x = unit([a, b])
    return float(degrees_of(x[0] @ x[1]))


def main(argv) -> int:
    sample, out = argv
    planted = planted_pairs(sample)
    report = json.loads(open(os.path.join(out, "_run_report.json"), encoding="utf-8").read())
    near = (report.get("stages", {}).get("splits") or report).get("near_duplicates")
    if not near:
        print("near-duplicates: the run did not audit them (--phash off)")
        return 0
    threshold = near["threshold"]
    second, angle = near.get("second_hash") or {}, near.get("angle") or {}
    long_threshold = second.get("threshold") if second.get("used") else None
    degrees = angle.get("threshold_degrees") if angle.get("used") else None
    rule = f"pHash within {threshold} bits" + (f" and phash256 within {long_threshold}" if long_threshold is not None
                                             else "")
    if degrees is not None:
        rule = f"DCT directions within {degrees:g} degrees"
    columns = ["rel_path", "split", "sha256", "phash"] + (["phash256"] if long_threshold is not None else []) + \
        (["dct_direction"] if degrees is not None else [])
    rows = [r for r in pq.read_table(os.path.join(out, "splits"), columns=columns).to_pylist()
            if r["phash"] is not None]
    by_path = {r["rel_path"]: r for r in rows}

    def near_pair(a: dict, b: dict) -> bool:
        if degrees is not None:
            return apart(a["dct_direction"], b["dct_direction"]) <= degrees
        return bits(a["phash"], b["phash"]) <= threshold and (
            long_threshold is None or long_bits(a["phash256"], b["phash256"]) <= long_threshold)

    found = [(a, b) for a, b in planted if a in by_path and b in by_path and near_pair(by_path[a], by_path[b])]
    across = sum(by_path[a]["split"] != by_path[b]["split"] for a, b in found)
    everything = {tuple(sorted((a["rel_path"], b["rel_path"]))) for a, b in itertools.combinations(rows, 2)
                  if near_pair(a, b)}
    others = everything - {tuple(sorted(p)) for p in found}
    exact = sum(1 for a, b in others if by_path[a]["sha256"] == by_path[b]["sha256"])
    slices = sum(1 for a, b in others if patient(a) is not None and patient(a) == patient(b))
    folders = sum(a.split("/")[0] != b.split("/")[0] for a, b in planted)
    print(f"near-copies planted by the sample generator: {len(planted)} ({folders} filed under another class); "
          f"found by the audit ({rule}): {len(found)}, {across} of them across splits; other pairs: "
          f"{len(others)} ({exact} exact copies, {slices} two slices of one patient)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
