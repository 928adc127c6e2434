"""The run report's counts of a table small enough to hold on the driver. Pure Python.

The same report as sparkprep.spark.table_stats, from the table's small columns collected in one
Spark job: a table of a few thousand rows otherwise pays for a dozen small Spark jobs (about 2 s
in a warm session, 6 s in a new one, for 300 rows). Field for field the Spark path's result;
tests/spark/test_table_counts.py compares the two.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

from sparkprep.runlog import nested_counts
from sparkprep.statuses import OK

EXAMPLES = 5
COMMON_MEMBERS = 50
# report.html's size histograms: fixed power-of-two bins per size column (a null size is not counted)
SIZE_BINS = {"width (px)": ("width", (32, 64, 128, 256, 512, 1024, 2048, 4096)),
             "height (px)": ("height", (32, 64, 128, 256, 512, 1024, 2048, 4096)),
             "file size (KB)": ("size", (1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20))}


def nulls_first(value):
    """A sort key that orders as Spark's ascending sort: nulls first."""
    return (value is not None, value if value is not None else "")


def _sorted_present(values) -> list:
    """sort_array(collect_list(x)): nulls dropped, ascending."""
    return sorted(v for v in values if v is not None)


def table_counts(columns: Dict[str, list]) -> dict:
    """counts, quarantine, duplicates, samples and leakage of a table given as {column: values}."""
    n = len(columns["status"])
    col = lambda name: columns.get(name) or [None] * n  # noqa: E731
    has_split, status, label = "split" in columns, col("status"), col("label")
    split = columns["split"] if has_split else ["all"] * n
    if "key" in columns:
        where = [p if p is not None else k for p, k in zip(col("path"), columns["key"])]
    else:
        where = col("path")
    aug = columns.get("aug_index")
    grouped: Dict[tuple, int] = defaultdict(int)
    for i in range(n):
        grouped[(split[i], label[i], status[i], aug is not None and aug[i] is not None and aug[i] > 0)] += 1
    per_label: Dict[tuple, int] = defaultdict(int)
    per_split_status: Dict[tuple, int] = defaultdict(int)
    per_status: Dict[str, int] = defaultdict(int)
    copies = 0
    for (s, lab, st, copy), count in grouped.items():
        per_label[(s, lab)] += count
        per_split_status[(s, st)] += count
        per_status[st] += count
        copies += count if copy else 0
    stats = {"counts": nested_counts([(s, lab, c) for (s, lab), c in per_label.items()]),
             "rows": sum(per_status.values()), "status_counts": dict(per_status),
             "status_by_split": nested_counts([(s, st, c) for (s, st), c in per_split_status.items()]),
             "quarantine": _quarantine(status, where, col("error"), per_status)}
    rows = range(n)
    if aug is not None:
        stats["augmented_copies"] = copies
        rows = [i for i in rows if aug[i] == 0]
    stats["duplicates"] = _duplicates(columns, rows, where, split, label, status)
    if "sample" in columns and "member" in columns:
        stats["samples"] = sample_counts([columns["sample"][i] for i in rows], [columns["member"][i] for i in rows])
    if has_split:
        splits_of: Dict[Optional[str], set] = defaultdict(set)
        seen = set()
        for i in rows:
            seen.add(columns["key"][i])
            if split[i] is not None:
                splits_of[columns["key"][i]].add(split[i])
        spread = [k for k in seen if len(splits_of[k]) > 1]
        stats["leakage"] = {"keys_in_several_splits": len(spread), "examples": _sorted_present(spread)[:EXAMPLES]}
    return stats


def sample_counts(samples: Sequence[Optional[str]], members: Sequence[Optional[str]]) -> dict:
    """sparkprep.spark.table_stats.sample_stats on the driver."""
    members_of: Dict[Optional[str], set] = defaultdict(set)
    sizes: Dict[Optional[str], int] = defaultdict(int)
    for s, m in zip(samples, members):
        sizes[s] += 1
        if m is not None:
            members_of[s].add(m)
    out = {"count": len(sizes), "largest": max(sizes.values(), default=0), "incomplete": {}}
    if out["largest"] <= 1:
        return out
    holders: Dict[Optional[str], set] = defaultdict(set)
    for s, m in zip(samples, members):
        if s is not None and m is not None:
            holders[m].add(s)
    common = sorted((m for m, ss in holders.items() if len(ss) > 1), key=lambda m: (-len(holders[m]), m))
    for m in common[:COMMON_MEMBERS]:
        lacking = [s for s in sizes if m not in members_of[s]]
        if lacking:
            out["incomplete"][m] = {"count": len(lacking), "examples": _sorted_present(lacking)[:EXAMPLES]}
    return out


def _quarantine(status: list, where: list, error: list, per_status: Dict[str, int]) -> dict:
    bad = {st: c for st, c in per_status.items() if st != OK}
    out = {st: {"count": c, "examples": []} for st, c in sorted(bad.items())}
    by_status: Dict[str, List[int]] = defaultdict(list)
    for i, st in enumerate(status):
        if st != OK and st is not None:
            by_status[st].append(i)
    for st in out:
        for i in sorted(by_status[st], key=lambda i: nulls_first(where[i]))[:EXAMPLES]:
            out[st]["examples"].append({"path": where[i], "error": error[i]})
    return out


def _judged(columns: Dict[str, list], i: int) -> bool:
    """sparkprep.spark.table_stats.judged_for_duplicates, for row i."""
    if not {"format", "sample", "rel_path"} <= set(columns):
        return True
    sample, rel = columns["sample"][i], columns["rel_path"][i]
    return columns["format"][i] is not None or (sample is not None and rel is not None and sample == rel)


def _duplicates(columns: Dict[str, list], rows, where: list, split: list, label: list, status: list) -> dict:
    sha = columns.get("sha256") or [None] * len(status)
    copies: Dict[str, List[int]] = defaultdict(list)
    for i in rows:
        if status[i] == OK and sha[i] is not None and _judged(columns, i):
            copies[sha[i]].append(i)

    def conflict(values: list) -> Optional[bool]:
        present = [v for v in values if v is not None]
        return min(present) != max(present) if present else None

    groups = {h: members for h, members in copies.items() if len(members) > 1}
    label_conflicts = {h for h, members in groups.items() if conflict([label[i] for i in members])}
    some = sorted(groups)[:EXAMPLES]
    conflicting = sorted(label_conflicts)[:EXAMPLES]
    example = lambda h: {"sha256": h, "paths": sorted((where[i] for i in copies[h]), key=nulls_first)[:EXAMPLES]}  # noqa: E731
    return {
        "groups": len(groups),
        "extra_copies": sum(len(m) - 1 for m in groups.values()),
        "conflicting_label_groups": len(label_conflicts),
        "groups_in_several_splits": sum(1 for m in groups.values() if conflict([split[i] for i in m])),
        "examples": [example(h) for h in some],
        "conflicting_examples": [example(h) for h in conflicting],
    }


def _ok_originals(columns: Dict[str, list]) -> List[int]:
    aug = columns.get("aug_index")
    return [i for i, st in enumerate(columns["status"]) if st == OK and (aug is None or aug[i] == 0)]


def bin_names(column: str, edges: Sequence[int]) -> List[str]:
    scale = 1024 if column == "size" else 1
    return [f"<{edges[0] // scale}"] + [f"<{e // scale}" for e in edges[1:]] + [f">={edges[-1] // scale}"]


def size_bin(value: Optional[int], edges: Sequence[int]) -> Optional[int]:
    if value is None:
        return None
    return next((i for i, edge in enumerate(edges) if value < edge), len(edges))


def size_histograms(columns: Dict[str, list]) -> dict:
    """sparkprep.spark.visuals' size histograms of the ok originals, on the driver."""
    rows = _ok_originals(columns)
    out = {}
    for title, (column, edges) in SIZE_BINS.items():
        if column in columns:
            counts = [0] * (len(edges) + 1)
            for i in rows:
                b = size_bin(columns[column][i], edges)
                if b is not None:
                    counts[b] += 1
            out[title] = [[name, n] for name, n in zip(bin_names(column, edges), counts)]
    return out


def cell_order(key: Optional[str], where: Optional[str], has_key: bool) -> str:
    """sha2(concat_ws('\\n', key, where), 256): which rows of a split x label cell a page shows (nulls skipped,
    as concat_ws skips them; a table without keys orders by '' and where)."""
    parts = [key if has_key else "", where]
    return hashlib.sha256("\n".join(p for p in parts if p is not None).encode("utf-8")).hexdigest()


def choose_cells(columns: Dict[str, list], labels: Sequence[str], per_cell: int) -> List[dict]:
    """The ok originals a page shows: per split x label (of `labels`), the `per_cell` first by cell_order."""
    has_key = "key" in columns
    n = len(columns["status"])
    path, key = columns.get("path") or [None] * n, columns.get("key") or [None] * n
    split = columns.get("split") or ["all"] * n
    wanted = set(labels)
    cells: Dict[tuple, list] = defaultdict(list)
    for i in _ok_originals(columns):
        label = columns["label"][i] if columns["label"][i] is not None else "(none)"
        if label in wanted:
            where = path[i] if path[i] is not None or not has_key else key[i]
            cells[(split[i], label)].append((cell_order(key[i], where, has_key), where))
    out = []
    for (s, label), members in cells.items():
        for rank, (_, where) in enumerate(sorted(members, key=lambda m: m[0])[:per_cell], 1):
            out.append({"where": where, "split": s, "label": label, "_rank": rank})
    return out


def normalization_entries(sums, split_name: str) -> dict:
    """{channels: {split, images, mean, std}} from [(channels, channel, Σ n·mean, Σ n·(std² + mean²), Σ n, images)]
    sorted by (channels, channel): the per-image statistics combined exactly (n: an image's pixels)."""
    out: dict = {}
    for channels, _, s1, s2, n, images in sums:
        entry = out.setdefault(str(channels), {"split": split_name, "images": int(images), "mean": [], "std": []})
        mean = s1 / n
        entry["mean"].append(round(mean, 6))
        entry["std"].append(round(max(0.0, s2 / n - mean * mean) ** 0.5, 6))
    return out


def channel_normalization_of(columns: Dict[str, list], split_name: str = "train") -> dict:
    """sparkprep.preprocess.spark.channel_normalization from a processed table's small columns."""
    sums: Dict[tuple, list] = {}
    for i in range(len(columns["status"])):
        if columns["split"][i] != split_name or columns["status"][i] != OK or columns["aug_index"][i] != 0:
            continue
        width, height, means, stds = (columns[c][i] for c in ("width", "height", "channel_mean", "channel_std"))
        pixels = float(width * height) if width is not None and height is not None else None
        for c, (mean, std) in enumerate(zip(means or [], stds or [])):
            acc = sums.setdefault((columns["channels"][i], c), [0.0, 0.0, 0.0, 0])
            if pixels is not None and mean is not None:
                acc[0] += pixels * mean
                acc[2] += pixels
                if std is not None:
                    acc[1] += pixels * (std * std + mean * mean)
            acc[3] += 1
    ordered = sorted(sums.items(), key=lambda kv: (nulls_first(kv[0][0]), kv[0][1]))
    return normalization_entries([(channels, c, *acc) for (channels, c), acc in ordered], split_name)
