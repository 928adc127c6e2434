"""Banding layouts keep their recall guarantee; union-find clusters; the report page is self-contained."""

import random
import re

import pytest

from sparkprep import page as html
from sparkprep.audit.bands import (band_keys, blocks_of, centre_of, centred_components, components, layout, layout_for,
                                   neighbour_links, planned_layout)
from sparkprep.images.phash import hamming


def flip(value, bits, rng):
    """value (a signed 64-bit hash) with `bits` random bits flipped, as a signed 64-bit hash again."""
    value &= (1 << 64) - 1
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


def look_alike(count, rng, centres=5, spread=6):
    """Hashes in a few tight groups (look-alike images): each a centre with up to `spread` bits flipped."""
    bases = [rng.getrandbits(64) - (1 << 63) for _ in range(centres)]
    return [flip(rng.choice(bases), rng.randint(0, spread), rng) for _ in range(count)]


def candidate_pairs(hashes, band):
    """Pairs of distinct hashes sharing a band key, once per key: what the search pairs, by brute force."""
    keys = {}
    for h in set(hashes):
        for key in band_keys(h, band):
            keys[key] = keys.get(key, 0) + 1
    return sum(n * (n - 1) // 2 for n in keys.values())


@pytest.mark.parametrize("threshold", [0, 2, 5, 8, 10])
def test_a_planned_layout_keeps_the_guarantee_on_any_sample(threshold):
    rng = random.Random(threshold)
    for sample in ([], [7], [rng.getrandbits(64) - (1 << 63) for _ in range(500)], look_alike(500, rng)):
        plan = planned_layout(threshold, sample, 10 ** 5)
        assert plan.band.guarantee == threshold
        for _ in range(200):
            a = rng.choice(sample) if sample else rng.getrandbits(64) - (1 << 63)
            b = flip(a, rng.randint(0, threshold), rng)
            assert set(band_keys(a, plan.band)) & set(band_keys(b, plan.band)), (threshold, hex(a), hex(b))


def test_the_plan_counts_the_candidate_pairs_exactly_when_the_sample_is_the_table():
    rng = random.Random(5)
    table = look_alike(800, rng) + look_alike(400, rng, centres=40, spread=12)
    plan = planned_layout(8, table, len(set(table)))
    assert plan.sampled == len(set(table))
    assert plan.candidates == candidate_pairs(table, plan.band)
    assert plan.uniform_candidates == candidate_pairs(table, plan.uniform)


def test_on_look_alike_hashes_the_plan_pairs_fewer_candidates_than_the_uniform_layout():
    rng = random.Random(9)
    table = look_alike(1500, rng, centres=30, spread=10)
    hashes = len(set(table))
    plan = planned_layout(8, table, hashes)
    uniform = layout_for(8, hashes)
    assert plan.uniform == uniform and plan.band != uniform
    work = {b: hashes * len(b.combos) + candidate_pairs(table, b) for b in (plan.band, uniform)}
    assert work[plan.band] < work[uniform], {b.describe(): w for b, w in work.items()}
    # on uniform hashes the sample agrees with the uniform model
    spread = [rng.getrandbits(64) - (1 << 63) for _ in range(2000)]
    assert planned_layout(8, spread, 10 ** 5).band == layout_for(8, 10 ** 5)


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


def test_the_page_says_how_the_layout_was_planned():
    report = report_with("/in/a.jpg")
    plan = {"sampled_hashes": 2000, "hashes": 50000, "expected_candidate_pairs": 1.5e6, "expected_largest_key": 40.0,
            "uniform_layout": "u <b>", "uniform_expected_candidate_pairs": 9e6}
    report["near_duplicates"]["layout_plan"] = plan
    page = html.render(report, {})
    assert "planned from 2,000 sampled hashes: 1,500,000 candidate pairs expected, against 9,000,000" in page
    assert "u &lt;b&gt;" in page
    report["near_duplicates"]["layout_plan"] = {**plan, "uniform_layout": "l"}
    assert "(the layout uniform hashes would get too)" in html.render(report, {})


def _eccentricity(start, neighbours):
    """Links from start to its farthest reachable node (shared-hash links count 0), by Bellman-Ford: the reference."""
    dist = {start: 0}
    for _ in range(len(neighbours)):
        for x in list(dist):
            for y, links in neighbours[x].items():
                if dist[x] + links < dist.get(y, 10 ** 9):
                    dist[y] = dist[x] + links
    return max(dist.values())


def test_a_chain_of_look_alike_images_has_no_centre_but_a_photo_and_its_copies_have_one():
    chain = [(f"k{i}", f"k{i + 1}", 1) for i in range(7)]  # k0 - k1 - ... - k7: each near the next only
    found = centred_components(chain, max_members=100)
    assert {cluster for cluster, _ in found.values()} == {"k0"}
    assert {centre for _, centre in found.values()} == {None}  # 4 links from the middle to an end
    short = centred_components(chain[:4], max_members=100)     # k0 .. k4: k2 is 2 links from each end
    assert {centre for _, centre in short.values()} == {"k2"}
    # a photo, its copies (near it and each other), and a 20% crop near only one of the copies
    photo = [("o", c, 1) for c in "abcd"] + [("a", "b", 1), ("c", "d", 1), ("d", "crop", 1)]
    assert {centre for _, centre in centred_components(photo, max_members=100).values()} == {"o"}
    assert {centre for _, centre in centred_components(photo, max_members=5).values()} == {None}  # 6 keys > 5
    # rows of keys e and f share d's hash (0 links), so d is now the best-connected member within 2 links of all
    shared = photo + [("e", "d", 0), ("f", "d", 0)]
    assert {centre for _, centre in centred_components(shared, max_members=100).values()} == {"d"}
    # h is 2 links from d (d = e - g - h) only because e shares d's hash: counted as a link, no centre would reach h
    longer = shared + [("e", "g", 1), ("g", "h", 1)]
    assert {centre for _, centre in centred_components(longer, max_members=100).values()} == {"d"}
    assert {centre for _, centre in centred_components([(a, b, 1) for a, b, _ in longer],
                                                       max_members=100).values()} == {None}
    assert centred_components([("x", "x", 0)], max_members=1) == {"x": ("x", "x")}  # a key whose rows are copies


def test_a_centre_is_found_exactly_when_some_member_reaches_all_others_within_the_radius():
    rng = random.Random(11)
    for trial in range(300):
        n = rng.randint(1, 14)
        nodes = [f"n{i:02d}" for i in range(n)]
        edges = [(nodes[i], nodes[rng.randrange(i)], rng.choice((0, 1, 1))) for i in range(1, n)]  # one component
        edges += [(rng.choice(nodes), rng.choice(nodes), rng.choice((0, 1, 1))) for _ in range(rng.randint(0, n))]
        neighbours = neighbour_links(edges)
        for radius in (1, 2, 3):
            got = centre_of(nodes, neighbours, radius, candidates=n)
            best = min(_eccentricity(x, neighbours) for x in nodes)
            assert (got is not None) == (best <= radius), (trial, radius, edges)
            if got is not None:
                assert _eccentricity(got, neighbours) <= radius
                # the best-connected centre is chosen, then the smallest
                rivals = [x for x in nodes if _eccentricity(x, neighbours) <= radius]
                assert got == min(rivals, key=lambda x: (-len(neighbours[x]), x))
