"""After `make demo`: the near-copies the sample generator planted, and which of them the audit
found, at the threshold it used (from the run report), across splits and within.

    python scripts/show_planted.py data/mednist out/mednist

Every pair within the audit's threshold is recounted from the split table's hashes, so the
line also says how many found pairs were not planted, and how many of those are two slices
of one patient (real look-alikes, which a split by patient keeps together).
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

PATIENT = re.compile(r"/(p[0-9]+)_")


def patient(path: str):
    found = PATIENT.search("/" + path)
    return found.group(1) if found else None


def bits(a: int, b: int) -> int:
    return bin((a ^ b) & (2 ** 64 - 1)).count("1")


def main(argv) -> int:
    sample, out = argv
    planted = planted_pairs(sample)
    report = json.loads(open(os.path.join(out, "_run_report.json"), encoding="utf-8").read())
    near = (report.get("stages", {}).get("splits") or report).get("near_duplicates")
    if not near:
        print("near-duplicates: the run did not audit them (--phash off)")
        return 0
    threshold = near["threshold"]
    rows = [r for r in pq.read_table(os.path.join(out, "splits"), columns=["rel_path", "split", "phash"]).to_pylist()
            if r["phash"] is not None]
    by_path = {r["rel_path"]: r for r in rows}
    found = [(a, b) for a, b in planted if a in by_path and b in by_path
             and bits(by_path[a]["phash"], by_path[b]["phash"]) <= threshold]
    across = sum(by_path[a]["split"] != by_path[b]["split"] for a, b in found)
    everything = {tuple(sorted((a["rel_path"], b["rel_path"]))) for a, b in itertools.combinations(rows, 2)
                  if bits(a["phash"], b["phash"]) <= threshold}
    others = everything - {tuple(sorted(p)) for p in found}
    slices = sum(1 for a, b in others if patient(a) is not None and patient(a) == patient(b))
    folders = sum(a.split("/")[0] != b.split("/")[0] for a, b in planted)
    print(f"near-copies planted by the sample generator: {len(planted)} ({folders} filed under another class); "
          f"found by the audit at {threshold} bits: {len(found)}, {across} of them across splits; other pairs "
          f"within {threshold} bits: {len(others)} ({slices} are two slices of one patient)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
