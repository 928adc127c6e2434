"""Near-duplicate search over 64-bit perceptual hashes: the banding layout and clusters, pure Python.

Banding with a recall guarantee (the pigeonhole principle): the 64 bits are cut into B
blocks, and every row emits one band key per combination of k blocks (the block values and
which blocks they are). Two hashes within d bits differ in at most d blocks, so at least B - d
blocks agree; with B - d >= k, some combination of k blocks agrees entirely and the pair
shares that key. So every pair within `guarantee = B - k` bits becomes a candidate, and the
exact Hamming distance then keeps those within the threshold. Nothing is sampled.

`layout_for(threshold)` takes B = threshold + k and picks k by the expected work on uniform
hashes: rows emitted (n * C(B, k)) plus candidate pairs (n^2 / 2 * C(B, k) / 2^(64 k / B)).
Look-alike images are not uniform: their low-frequency bits agree far more often, so a key
of a few blocks is shared by whole groups of them. `planned_layout` keeps B = threshold + k
(so the guarantee is the same) but picks k from the table's own sample: it counts the
sampled hashes that share each band key, scales the pairs to the table's size, and takes
the cheapest layout that loses no more pairs to crowded keys than the uniform one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from collections import defaultdict, deque
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

HASH_BITS = 64
DEFAULT_THRESHOLD = 8       # measured on the planted set (docs/near-duplicates.md)
DEFAULT_BUCKET_CAP = 500    # hashes per band key (or rows per hash) beyond which it is reported, not joined
REFERENCE_ROWS = 10 ** 6    # the table size the layout is tuned for (the guarantee holds at any size)
MAX_KEYS_PER_ROW = 4096
CLUSTER_RADIUS = 2          # links from a merged cluster's centre to its farthest member (measured: docs/near-duplicates.md)
CENTRE_CANDIDATES = 64      # members tried as a cluster's centre, best-connected first
PLAN_SAMPLE = 2_000         # distinct sampled hashes whose shared band keys plan the layout
PLAN_KEYS = 2_000           # band keys per hash the planner counts at most, over all layouts it tries (~0.5 s)
PLAN_NEAR_PAIRS = 20_000    # the sample's pairs within the threshold the planner checks for crowded keys


@dataclass(frozen=True)
class BandLayout:
    """Blocks as (shift, width) from the least significant bit, and the block combinations that key a row."""

    blocks: Tuple[Tuple[int, int], ...]
    combos: Tuple[Tuple[int, ...], ...]

    @property
    def guarantee(self) -> int:
        """Every pair within this many bits shares a band key."""
        return len(self.blocks) - len(self.combos[0])

    def describe(self) -> str:
        per_key = len(self.combos[0])
        widths = sorted({w for _, w in self.blocks})
        return (f"{len(self.blocks)} blocks of {'/'.join(map(str, widths))} bits, one key per {per_key} blocks "
                f"({len(self.combos)} keys per hash): every pair within {self.guarantee} bits shares a key")


def blocks_of(count: int) -> Tuple[Tuple[int, int], ...]:
    """`count` contiguous blocks covering 64 bits, widths differing by at most one."""
    base, extra = divmod(HASH_BITS, count)
    out, shift = [], 0
    for i in range(count):
        width = base + (1 if i < extra else 0)
        out.append((shift, width))
        shift += width
    return tuple(out)


def layout(blocks: int, per_key: int) -> BandLayout:
    if not 1 <= per_key <= blocks <= HASH_BITS:
        raise ValueError(f"band layout: expected 1 <= per_key <= blocks <= 64, got {per_key} of {blocks}")
    return BandLayout(blocks_of(blocks), tuple(combinations(range(blocks), per_key)))


def layout_for(threshold: int, rows: int = REFERENCE_ROWS) -> BandLayout:
    """The cheapest layout whose guarantee is exactly `threshold` bits (0 <= threshold <= 62)."""
    if not 0 <= threshold <= HASH_BITS - 2:
        raise ValueError(f"--near-threshold: expected 0..62 bits, got {threshold}")
    return cheapest_layout(threshold, lambda keys, bits: rows * keys + rows * rows / 2 * keys / 2.0 ** bits)


def cheapest_layout(threshold: int, cost: Callable[[int, float], Optional[float]]) -> BandLayout:
    """The layout of B = threshold + k blocks and C(B, k) keys a hash (guarantee: exactly `threshold` bits) whose
    cost(keys a hash, bits a key) is least; a cost of None rules the layout out."""
    best = None
    for per_key in range(1, HASH_BITS - threshold + 1):
        blocks = threshold + per_key
        keys = math.comb(blocks, per_key)
        if keys > MAX_KEYS_PER_ROW:
            break
        work = cost(keys, HASH_BITS * per_key / blocks)
        if work is not None and (best is None or work < best[0]):
            best = (work, blocks, per_key)
    if best is None:
        raise ValueError(f"--near-threshold: {threshold} bits needs more than {MAX_KEYS_PER_ROW} band keys per hash")
    return layout(best[1], best[2])


@dataclass(frozen=True)
class LayoutPlan:
    """The layout a table's sample chose, and the work it expects (the run report's near_duplicates.layout_plan)."""

    band: BandLayout
    hashes: int                # distinct hashes in the table
    sampled: int               # distinct sampled hashes the estimate counted
    candidates: float          # expected candidate pairs (one per shared key) at the table's size
    largest_key: float         # expected hashes in the largest band key at the table's size
    missed: float              # expected pairs within the threshold whose every shared key is past the cap
    uniform: BandLayout        # what layout_for, which assumes uniform hashes, would have chosen
    uniform_candidates: float  # the candidate pairs the sample expects of that one

    def to_dict(self) -> dict:
        return {"sampled_hashes": self.sampled, "hashes": self.hashes,
                "expected_candidate_pairs": _round(self.candidates), "expected_largest_key": _round(self.largest_key),
                "expected_pairs_only_in_crowded_keys": _round(self.missed),
                "uniform_layout": self.uniform.describe(),
                "uniform_expected_candidate_pairs": _round(self.uniform_candidates)}


def _round(value: float) -> float:
    return float(f"{value:.3g}")


def key_values(hashes: np.ndarray, band: BandLayout) -> np.ndarray:
    """(keys per hash, hashes): each hash's band key values, packed as the Spark search packs them
    (sparkprep.audit.spark.search.band_values), from uint64 hashes."""
    out = np.zeros((len(band.combos), len(hashes)), np.uint64)
    for i, combo in enumerate(band.combos):
        offset = 0
        for b in combo:
            shift, width = band.blocks[b]
            part = (hashes >> np.uint64(shift)) & np.uint64((1 << width) - 1) if width < 64 else hashes
            out[i] |= part << np.uint64(offset)
            offset += width
    return out


def near_pairs(hashes: np.ndarray, threshold: int, limit: int = PLAN_NEAR_PAIRS) -> Tuple[np.ndarray, np.ndarray, int]:
    """(i, j, how many): pairs i < j of uint64 hashes within `threshold` bits; at most `limit` of them, evenly
    spaced, are returned, and `how many` counts them all."""
    found_i, found_j = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for start in range(0, len(hashes), 512):
        i, j = np.nonzero(np.bitwise_count(hashes[start:start + 512, None] ^ hashes[None, :]) <= threshold)
        i = i + start
        found_i.append(i[j > i])
        found_j.append(j[j > i])
    i, j = np.concatenate(found_i), np.concatenate(found_j)
    if len(i) > limit:
        pick = np.linspace(0, len(i) - 1, limit).astype(np.int64)
        return i[pick], j[pick], len(i)
    return i, j, len(i)


def shared_keys(hashes: np.ndarray, band: BandLayout, grow: float, cap: float, near: Tuple[np.ndarray, np.ndarray]
                ) -> Tuple[int, int, int, int]:
    """Of distinct uint64 hashes, with grow = table / sample: (pairs that share a band key, counted once per
    key, in keys that times `grow` stay within `cap`: the search's candidate pairs before scaling; hashes in
    the largest key; hashes in the keys past it, once per key; how many of the `near` pairs (i, j) share no
    key within it: pairs within the threshold that the search would miss, because each key they share is
    crowded, reported instead of joined)."""
    values = key_values(hashes, band)
    order = np.argsort(values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    starts = np.ones(ordered.shape, bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    run = np.cumsum(starts.ravel()).reshape(ordered.shape) - 1
    runs = np.bincount(run.ravel())
    crowded_run = runs * grow > cap
    crowded = np.empty(ordered.shape, bool)
    np.put_along_axis(crowded, order, crowded_run[run], axis=1)
    i, j = near
    joined = ((values[:, i] == values[:, j]) & ~crowded[:, i]).any(axis=0)
    return (int((runs * (runs - 1) // 2)[~crowded_run].sum()), int(runs.max()), int(runs[crowded_run].sum()),
            int((~joined).sum()))


def planned_layout(threshold: int, sample: Sequence[int], hashes: int, cap: int = DEFAULT_BUCKET_CAP) -> LayoutPlan:
    """The cheapest layout whose guarantee is exactly `threshold` bits, for a table of `hashes` distinct hashes
    of which `sample` is a uniform sample (repeats are dropped; the first PLAN_SAMPLE distinct are counted).

    For each k (B = threshold + k blocks, C(B, k) keys per hash) the sample's pairs that share a key
    (outside crowded keys) are counted and scaled by hashes^2 / sampled^2; the work is hashes * C(B, k)
    emitted key rows plus those candidate pairs. A key past `cap` at the table's size is reported,
    not joined, so a pair whose every shared key is crowded is missed. The cheapest k wins among
    the layouts that crowd no more hashes into such keys, and miss no more of the sample's pairs
    within the threshold, than the uniform layout (layout_for) does: the plan never trades found
    pairs for speed. k grows until the emitted rows
    alone cost more than the best layout so far, or the keys counted pass PLAN_KEYS. With fewer than
    two sampled hashes this is layout_for's choice.
    """
    uniform = layout_for(threshold, max(2, hashes))
    values = np.asarray(list(sample), dtype=np.int64).view(np.uint64)
    first = np.unique(values, return_index=True)[1]
    distinct = values[np.sort(first)][:PLAN_SAMPLE]  # in the sample's order, so a prefix is still uniform
    s = len(distinct)
    if s < 2:
        return LayoutPlan(uniform, hashes, s, 0.0, float(min(s, hashes)), 0.0, uniform, 0.0)
    table = max(hashes, s)
    scale, grow = table * (table - 1) / (s * (s - 1)), table / s
    i, j, near = near_pairs(distinct, threshold)
    per_near = near / max(1, len(i)) * scale  # one checked sampled near pair stands for this many of the table's

    def option(band: BandLayout):
        pairs, largest, crowded, missed = shared_keys(distinct, band, grow, cap, (i, j))
        return table * len(band.combos) + pairs * scale, band, pairs * scale, largest * grow, crowded, missed

    base = option(uniform)
    options, counted = [base], 0
    for per_key in range(1, HASH_BITS - threshold + 1):
        blocks = threshold + per_key
        keys = math.comb(blocks, per_key)
        counted += keys
        if keys > MAX_KEYS_PER_ROW or counted > PLAN_KEYS:
            break
        if keys * table > min(o[0] for o in options):
            break  # its emitted keys alone cost more than a layout already counted
        band = layout(blocks, per_key)
        if band != uniform:
            found = option(band)
            if found[4] <= base[4] and found[5] <= base[5]:
                options.append(found)
    _, band, candidates, biggest, _, missed = min(options, key=lambda o: o[0])
    return LayoutPlan(band, hashes, s, candidates, biggest, missed * per_near, uniform, base[2])


def block_value(value: int, block: Tuple[int, int]) -> int:
    shift, width = block
    return ((value & 0xFFFF_FFFF_FFFF_FFFF) >> shift) & ((1 << width) - 1)


def band_keys(value: int, band: BandLayout) -> List[Tuple[int, Tuple[int, ...]]]:
    """(combination index, block values) for every key of one hash: what the Spark join emits."""
    return [(i, tuple(block_value(value, band.blocks[b]) for b in combo)) for i, combo in enumerate(band.combos)]


def components(edges: Iterable[Tuple[str, str]]) -> Dict[str, str]:
    """Connected components of an undirected graph: node -> the smallest node of its component.

    Union-find with path halving, for an edge list small enough to hold on the driver.
    """
    parent: Dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            parent[rb] = ra  # the smaller node stays the root, so a root is its component's minimum
    return {node: root(node) for node in list(parent)}



def neighbour_links(edges: Iterable[Tuple[str, str, int]]) -> Dict[str, Dict[str, int]]:
    """node -> {neighbour: links}: 0 for keys whose rows share a hash, 1 for hashes within the threshold
    (the fewer where both hold). A self-edge makes a node, not a neighbour."""
    neighbours: Dict[str, Dict[str, int]] = defaultdict(dict)
    for a, b, links in edges:
        neighbours[a]
        neighbours[b]
        if a != b:
            neighbours[a][b] = neighbours[b][a] = min(links, neighbours[a].get(b, links))
    return neighbours


def centre_of(members: Sequence[str], neighbours: Dict[str, Dict[str, int]], radius: int = CLUSTER_RADIUS,
              candidates: int = CENTRE_CANDIDATES) -> Optional[str]:
    """A member from which every other member of this connected component is within `radius` links, or None.

    Links are counted as in neighbour_links (a shared hash is 0), by a 0-1 breadth-first search.
    The best-connected members are tried first (most neighbours, then the smallest), at most
    `candidates` of them, so None may also mean "not found among those": the safe side, since a
    component without a centre is reported, not merged.
    """
    wanted = len(members)
    for start in sorted(members, key=lambda n: (-len(neighbours[n]), n))[:candidates]:
        reached, queue = {start: 0}, deque([start])
        while queue:
            x = queue.popleft()
            for y, links in neighbours[x].items():
                d = reached[x] + links
                if d <= radius and d < reached.get(y, radius + 1):
                    reached[y] = d
                    queue.appendleft(y) if links == 0 else queue.append(y)
        if len(reached) == wanted:
            return start
    return None


def centred_components(edges: Iterable[Tuple[str, str, int]], max_members: int, radius: int = CLUSTER_RADIUS
                       ) -> Dict[str, Tuple[str, Optional[str]]]:
    """node -> (its component's smallest node, the component's centre or None).

    edges: (a, b, links) as neighbour_links reads them. The centre (centre_of) is looked for in
    components of at most `max_members` nodes; a larger component has none.
    """
    edges = list(edges)
    neighbours = neighbour_links(edges)
    component = components((a, b) for a, b, _ in edges)
    members: Dict[str, List[str]] = defaultdict(list)
    for node, root in component.items():
        members[root].append(node)
    centres = {root: centre_of(m, neighbours, radius) if len(m) <= max_members else None for root, m in members.items()}
    return {node: (root, centres[root]) for node, root in component.items()}
