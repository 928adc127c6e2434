"""Banding layouts keep their recall guarantee; union-find clusters; the report page is self-contained."""

import random
import re

import pytest

from sparkprep import page as html
from sparkprep.audit.bands import band_keys, blocks_of, components, layout, layout_for
from sparkprep.images.phash import hamming


def flip(value, bits, rng):
    for b in rng.sample(range(64), bits):
        value ^= 1 << b
    return value - (1 << 64) if value >= 1 << 63 else value


@pytest.mark.parametrize("threshold", [0, 2, 4, 6, 8, 10])
@pytest.mark.parametrize("rows", [100, 10 ** 6])
def test_every_pair_within_the_threshold_shares_a_band_key(threshold, rows):
    band = layout_for(threshold, rows)
    assert band.guarantee == threshold
    rng = random.Random(threshold * 7 + rows)
    for _ in range(300):
        a = rng.getrandbits(64) - (1 << 63)
        b = flip(a, rng.randint(0, threshold), rng)
        assert hamming(a, b) <= threshold
        assert set(band_keys(a, band)) & set(band_keys(b, band)), (threshold, hex(a), hex(b))


def test_the_issue_example_layout_guarantees_six_bits_and_four_bands_only_three():
    eight = layout(8, 2)
    assert len(eight.combos) == 28 and eight.guarantee == 6 and {w for _, w in eight.blocks} == {8}
    assert layout(4, 1).guarantee == 3
    # the bound is tight: 4 flipped bits, one in each 16-bit band, share no key
    a = 0
    b = (1 << 0) | (1 << 16) | (1 << 32) | (1 << 48)
    assert not set(band_keys(a, layout(4, 1))) & set(band_keys(b, layout(4, 1)))


def test_blocks_cover_all_64_bits_once():
    for count in range(1, 20):
        blocks = blocks_of(count)
        covered = [bit for shift, width in blocks for bit in range(shift, shift + width)]
        assert sorted(covered) == list(range(64))


def test_union_find_components_are_keyed_by_their_smallest_member():
    rng = random.Random(3)
    nodes = [f"k{i:03d}" for i in range(200)]
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(150)]
    found = components(edges)
    # brute force: flood fill
    neighbours = {}
    for a, b in edges:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    for start in neighbours:
        seen, todo = {start}, [start]
        while todo:
            for n in neighbours[todo.pop()]:
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        assert found[start] == min(seen)


def test_a_threshold_past_the_band_budget_is_refused():
    with pytest.raises(ValueError, match="--near-threshold"):
        layout_for(63)


def report_with(path):
    return {"job": "split", "rows": 3, "input": {"uri": "/in"}, "output": {"uri": "/out"}, "seconds": 1.0,
            "versions": {"sparkprep": "x", "spark": "y"}, "counts": {"train": {"a": 2}, "test": {"a": 1}},
            "quarantine": {"corrupt": {"count": 1, "examples": [{"path": path, "error": "bad <b>"}]}},
            "duplicates": {"groups": 0}, "split": {"split_algo": "sha256-v1", "seed": "0", "ratios": [0.5, 0.5],
                                                   "key_by": "content", "stratify": "none"},
            "near_duplicates": {"threshold": 8, "bucket_cap": 500, "layout": "l", "hashed_rows": 2, "distinct_hashes": 2,
                                "pairs_by_split_pair": {"test|train": 1}, "pairs_across_splits": 1,
                                "pairs_within_splits": 0, "flat_hashes": {"count": 0, "rows": 0},
                                "capped_band_keys": {"count": 0}, "clusters": {"count": 1},
                                "examples": [{"distance": 2, "a": {"path": path, "split": "test"},
                                              "b": {"path": "/in/b.jpg", "split": "train"}}]}}


def test_the_page_makes_no_request_and_escapes_every_value():
    hostile = "/in/<script>alert(1)</script>.jpg"
    page = html.render(report_with(hostile), {
        "thumbs": [{"split": "train", "label": "a", "path": hostile, "uri": "data:image/jpeg;base64,AAAA"}],
        "quarantine": [{"path": hostile, "status": "corrupt", "error": "bad <b>", "uri": None}],
        "images": {hostile: "data:image/jpeg;base64,AAAA"}, "histograms": {"width (px)": [["<32", 1]]},
        "caps": {"per_cell": 4, "labels": 24}})
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    sources = re.findall(r"""(?:src|href)=['"]([^'"]*)""", page)
    assert sources and all(s.startswith("data:") for s in sources)
    assert "near pairs across splits (leakage)" in page and "<svg" in page
