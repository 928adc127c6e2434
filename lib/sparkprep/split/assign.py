"""The `sha256-v1` split assignment: a pure function of (seed, key, ratios).

This module is the reference implementation of the contract in docs/contracts.md; the Spark
glue (`sparkprep.split.spark`) computes the same thing with native Spark SQL functions
and the tests check that both agree.
"""

from __future__ import annotations

import hashlib
import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

SPLIT_ALGO = "sha256-v1"
BUCKETS = 10000
DEFAULT_NAMES = {1: ["all"], 2: ["train", "test"], 3: ["train", "val", "test"]}


def split_hash(seed: str, key: str) -> str:
    """Lowercase hex sha256 of utf8(seed + ":" + key)."""
    return hashlib.sha256(f"{seed}:{key}".encode("utf-8")).hexdigest()


def bucket(seed: str, key: str) -> int:
    """The key's bucket in [0, 10000): int(h[:15], 16) mod 10000."""
    return int(split_hash(seed, key)[:15], 16) % BUCKETS


def parse_ratios(text: str) -> List[float]:
    """Parse "0.7,0.15,0.15"; ratios must be positive and sum to 1 within 1e-6."""
    try:
        ratios = [float(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"--ratios: expected comma-separated numbers like 0.8,0.2, got {text!r}")
    if any(not math.isfinite(r) or r <= 0 for r in ratios):
        raise ValueError(f"--ratios: expected every ratio > 0, got {text!r}")
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise ValueError(f"--ratios: expected ratios summing to 1, got {text!r} (sum {sum(ratios):.6g})")
    return ratios


def default_names(count: int) -> List[str]:
    """train,val,test for three splits, train,test for two, split0.. otherwise."""
    return list(DEFAULT_NAMES.get(count, [f"split{i}" for i in range(count)]))


def parse_names(text: Optional[str], count: int) -> List[str]:
    """Split names, one per ratio; they become partition directory names."""
    names = default_names(count) if not text else [n.strip() for n in text.split(",")]
    if len(names) != count:
        raise ValueError(f"--names: expected {count} names (one per ratio), got {len(names)}: {text!r}")
    for name in names:
        check_split_name(name, "--names")
    if len(set(names)) != len(names):
        raise ValueError(f"--names: expected distinct names, got {text!r}")
    return names


MAX_NAME_BYTES = 64


def check_split_name(name: object, where: str) -> str:
    """A split name is safe as a directory and file-name part: letters, digits, '-', '_'; at most 64 UTF-8 bytes.

    The same rule applies to --names and to split values read from any input table.
    """
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ValueError(f"{where}: expected split names of letters, digits, '-' or '_', got {name!r}")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise ValueError(f"{where}: expected a split name of at most {MAX_NAME_BYTES} UTF-8 bytes, "
                         f"got {len(name.encode('utf-8'))} bytes: {name[:20]!r}...")
    return name


def cumulative_basis_points(ratios: Sequence[float]) -> List[int]:
    """cum_i = round(10000 * (r_1 + ... + r_i)); the last is always 10000."""
    cums, total = [], 0.0
    for r in ratios:
        total += r
        cums.append(int(round(BUCKETS * total)))
    return cums


def split_for_bucket(b: int, cum_bp: Sequence[int], names: Sequence[str]) -> str:
    """The first split i with bucket < cum_i."""
    for cum, name in zip(cum_bp, names):
        if b < cum:
            return name
    return names[-1]  # unreachable when cum_bp ends at 10000; kept total for safety


def assign_split(seed: str, key: str, ratios: Sequence[float], names: Sequence[str]) -> str:
    """Hash-mode assignment of one key: stable as the dataset grows."""
    return split_for_bucket(bucket(seed, key), cumulative_basis_points(ratios), names)


def stratified_cuts(n: int, cum_bp: Sequence[int]) -> List[int]:
    """Rank cut points for n keys of one label: cut_i = floor(n * cum_i / 10000 + 1/2)."""
    return [(n * cum + BUCKETS // 2) // BUCKETS for cum in cum_bp]


def assign_stratified(
    items: Iterable[Tuple[Optional[str], str]], seed: str, ratios: Sequence[float], names: Sequence[str]
) -> Dict[Tuple[Optional[str], str], str]:
    """Exact-stratified assignment of (label, key) pairs.

    Within each label the distinct keys are ordered by (h, key) and the key of rank r
    (0-based) goes to the first split i with r < cut_i. Every class gets its exact share,
    but adding data may move existing keys.
    """
    cum_bp = cumulative_basis_points(ratios)
    by_label: Dict[Optional[str], set] = {}
    for label, key in items:
        by_label.setdefault(label, set()).add(key)
    out: Dict[Tuple[Optional[str], str], str] = {}
    for label, keys in by_label.items():
        ordered = sorted(keys, key=lambda k: (split_hash(seed, k), k))
        cuts = stratified_cuts(len(ordered), cum_bp)
        for rank, key in enumerate(ordered):
            out[(label, key)] = next(name for cut, name in zip(cuts, names) if rank < cut)
    return out
