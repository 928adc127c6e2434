"""Which columns become which features, and what they are called: pure Python, no Spark.

The feature vector is the numeric columns (in the order given, or the table's order for
`--numeric auto`), then one one-hot block per categorical column: its categories of the fit
split in sorted order, then `<column>=__unknown__`, where values the fit split never had (and
missing values) land. Index i of every output (CSV column i + 1, libsvm index i, parquet
column) is feature_names[i].
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from sparkprep.schema import SPLIT_COLUMNS

UNKNOWN = "__unknown__"
NUMERIC_TYPES = ("tinyint", "smallint", "int", "bigint", "float", "double", "boolean")
OUTPUT_EXTENSIONS = {"xgboost-csv": "csv", "libsvm": "libsvm", "parquet": "parquet"}


def numeric_candidates(schema: Sequence[Tuple[str, str]], excluded: Iterable[str]) -> Tuple[List[str], List[str]]:
    """(columns of a numeric type, string columns that may hold numbers) for `--numeric auto`.

    schema is [(name, Spark simple type)]; the split table's own columns (key, split, label,
    path, sha256, status, error) and `excluded` (the label, the split key's column, the
    categoricals) are never features.
    """
    skip = set(SPLIT_COLUMNS) | set(excluded)
    typed = [name for name, kind in schema
             if name not in skip and (kind in NUMERIC_TYPES or kind.startswith("decimal"))]
    strings = [name for name, kind in schema if name not in skip and kind == "string"]
    return typed, strings


def split_key_column(split_config: Optional[dict]) -> Optional[str]:
    """The column a tabular split was keyed by (`--key-by column:NAME` in its run report), if any."""
    key_by = str((split_config or {}).get("key_by") or "")
    return key_by[len("column:"):] if key_by.startswith("column:") else None


def unknown_slot(categories: Iterable[str]) -> str:
    """The name of a column's unknown slot: UNKNOWN, or UNKNOWN<n> when a real category is spelled so."""
    taken = set(categories)
    name, n = UNKNOWN, 2
    while name in taken:
        name, n = f"{UNKNOWN}{n}", n + 1
    return name


def category_maps(categorical: Sequence[str], labels: Sequence[Sequence[str]]) -> Dict[str, Dict[str, int]]:
    """Column -> {category: index in its one-hot block}, with the unknown slot last (StringIndexer's 'keep');
    a category that is itself spelled `__unknown__` keeps its own slot (the unknown one is renamed)."""
    return {column: {**{value: i for i, value in enumerate(values)}, unknown_slot(values): len(values)}
            for column, values in zip(categorical, labels)}


def feature_names(numeric: Sequence[str], maps: Dict[str, Dict[str, int]]) -> List[str]:
    """Names of the vector's entries: `<column>` per numeric column, `<column>=<category>` per one-hot slot."""
    names = list(numeric)
    for column, slots in maps.items():
        names += [f"{column}={value}" for value, _ in sorted(slots.items(), key=lambda item: item[1])]
    if len(set(names)) != len(names):
        clash = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"expected distinct feature names, got {clash!r} twice (rename the column or category)")
    return names


def label_map(labels: Iterable[str]) -> Dict[str, int]:
    """String labels -> 0..k-1 in sorted order ('False' 0, 'True' 1; 'no' 0, 'yes' 1)."""
    return {label: i for i, label in enumerate(sorted(set(labels)))}


def files_per_split(counts: Dict[str, int], rows_per_file: int) -> Dict[str, int]:
    """How many CSV/libsvm files each split gets: enough for at most rows_per_file rows each (>= 1)."""
    return {split: max(1, math.ceil(n / rows_per_file)) for split, n in sorted(counts.items())}


