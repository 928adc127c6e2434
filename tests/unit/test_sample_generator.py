"""The demo's sample generator (scripts/make_sample.py): scans that differ per patient the way real
ones do, and the near-copies it plants, which the demo's last line counts."""

import itertools
import re

from sparkprep.images.phash import hamming, phash_of_bytes


def test_patients_differ_slices_differ_and_the_planted_copies_are_near(make_sample, tmp_path):
    root = tmp_path / "mednist"
    make_sample.make_tree(str(root), per_class=40, with_bad=True)
    scans = sorted(p for p in root.glob("*/*.jpeg") if re.fullmatch(r"p[0-9]+_[0-9]+\.jpeg", p.name))
    hashes = {p.relative_to(root).as_posix(): phash_of_bytes(p.read_bytes()) for p in scans}
    patient = {path: re.search(r"/(p[0-9]+)_", "/" + path).group(1) for path in hashes}
    others = [hamming(hashes[a], hashes[b]) for a, b in itertools.combinations(hashes, 2) if patient[a] != patient[b]]
    slices = [hamming(hashes[a], hashes[b]) for a, b in itertools.combinations(hashes, 2) if patient[a] == patient[b]]
    assert len(others) > 25_000 and sum(d <= 8 for d in others) / len(others) < 0.01  # patients look apart
    assert sum(d <= 8 for d in slices) / len(slices) < 0.5 and min(slices) > 0  # slices of one patient differ
    planted = make_sample.planted_pairs(str(root))
    assert len(planted) == 240 // make_sample.PLANT_EVERY and any(a.split("/")[0] != b.split("/")[0] for a, b in planted)
    for original, copy in planted:
        assert hamming(hashes[original], phash_of_bytes((root / copy).read_bytes())) <= 6, (original, copy)
