"""Near-duplicate search over 64-bit perceptual hashes: the banding layout and clusters, pure Python.

Banding with a recall guarantee (the pigeonhole principle): the 64 bits are cut into B
blocks, and every row emits one band key per combination of k blocks (the block values and
which blocks they are). Two hashes within d bits differ in at most d blocks, so at least B - d
blocks agree; with B - d >= k, some combination of k blocks agrees entirely and the pair
shares that key. So every pair within `guarantee = B - k` bits becomes a candidate, and the
exact Hamming distance then keeps those within the threshold. Nothing is sampled.

`layout_for(threshold)` takes B = threshold + k and picks k by the expected work on uniform
hashes: rows emitted (n * C(B, k)) plus candidate pairs (n^2 / 2 * C(B, k) / 2^(64 k / B)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from collections import defaultdict, deque
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

HASH_BITS = 64
DEFAULT_THRESHOLD = 8       # measured on the planted set (docs/near-duplicates.md)
DEFAULT_BUCKET_CAP = 500    # hashes per band key (or rows per hash) beyond which it is reported, not joined
REFERENCE_ROWS = 10 ** 6    # the table size the layout is tuned for (the guarantee holds at any size)
MAX_KEYS_PER_ROW = 4096
CLUSTER_RADIUS = 2          # links from a merged cluster's centre to its farthest member (measured: docs/near-duplicates.md)
CENTRE_CANDIDATES = 64      # members tried as a cluster's centre, best-connected first


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
    best = None
    for per_key in range(1, HASH_BITS - threshold + 1):
        blocks = threshold + per_key
        keys = math.comb(blocks, per_key)
        if keys > MAX_KEYS_PER_ROW:
            break
        bits = HASH_BITS * per_key / blocks
        cost = rows * keys + rows * rows / 2 * keys / 2.0 ** bits
        if best is None or cost < best[0]:
            best = (cost, blocks, per_key)
    if best is None:
        raise ValueError(f"--near-threshold: {threshold} bits needs more than {MAX_KEYS_PER_ROW} band keys per hash")
    return layout(best[1], best[2])


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
