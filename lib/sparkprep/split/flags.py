"""The split job's flags and config: ingest settings (used when --input is raw files) plus the split."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

from sparkprep.audit import bands as near
from sparkprep.flags import Flags, merged_settings, wrap
from sparkprep.ingest.flags import INGEST_FLAGS, IngestConfig, ingest_values, sample_values
from sparkprep.ingest.tar_shards import SHARD_EXTENSIONS
from sparkprep.split import assign as split_assign
from sparkprep.split.keys import KeySpec
from sparkprep.uris import is_local, local_path
from sparkprep.values import choice, whole_number

INPUT_KINDS = ("auto", "files", "catalog", "table", "webdataset")
STRATIFY = ("none", "exact")
NEAR_MODES = ("report", "merge")


@dataclass(frozen=True)
class SplitConfig(IngestConfig):
    """Ingest settings (used when --input is raw files) plus the split parameters."""

    input_kind: str = "auto"  # also catalog and table (INPUT_KINDS)
    ratios: Tuple[float, ...] = (0.8, 0.1, 0.1)
    names: Tuple[str, ...] = ("train", "val", "test")
    seed: str = "0"
    key_by: Optional[KeySpec] = None  # content for files, required column:NAME for tables
    stratify: str = "none"
    label_column: Optional[str] = None
    near_duplicates: str = "report"  # report | merge (README "Near-duplicates")
    near_threshold: int = near.DEFAULT_THRESHOLD
    near_bucket_cap: int = near.DEFAULT_BUCKET_CAP
    fail_on_leakage: bool = False

    def split_params(self) -> Dict[str, Any]:
        """What the run report and the table metadata record about the split."""
        return {"split_algo": split_assign.SPLIT_ALGO, "seed": self.seed, "ratios": list(self.ratios),
                "names": list(self.names), "key_by": str(self.key_by), "stratify": self.stratify,
                **({"near_duplicates": "merge", "near_threshold": self.near_threshold}
                   if self.near_duplicates == "merge" else {})}


SPLIT_FLAGS = INGEST_FLAGS.plus(Flags(help={
    "input-kind": "auto (default), files, catalog (an ingest output) or table (CSV/parquet rows)",
    "ratios": "split ratios, e.g. 0.7,0.15,0.15 (default 0.8,0.1,0.1)",
    "names": "split names (default train,val,test for three ratios, train,test for two)",
    "seed": "hash seed string (default 0)",
    "key-by": "content (default for files) | path | group:REGEX | column:NAME",
    "stratify": "none (default, hash split) or exact (exact per-label shares)",
    "label-column": "label column for tabular input",
    "near-duplicates": ("report (default: list near-duplicate pairs across splits) or merge (each near-duplicate "
                        "cluster is keyed by its smallest key, so it lands in one split)"),
    "near-threshold": f"pHash bits two images may differ in and be near-duplicates (default {near.DEFAULT_THRESHOLD})",
    "near-bucket-cap": (f"band keys shared by more hashes, or hashes shared by more rows, are reported, not joined "
                        f"(default {near.DEFAULT_BUCKET_CAP})"),
    "fail-on-leakage": "exit 1 after writing everything when an exact or near-duplicate pair crosses splits",
}, lists=frozenset({"ratios", "names"}), numbers=frozenset({"seed", "near-threshold", "near-bucket-cap"}),
    switches=frozenset({"fail-on-leakage"}), decimals=frozenset({"ratios"})))


def split_config(argv: Optional[Sequence[str]] = None) -> SplitConfig:
    """Parse and validate the split job's arguments."""
    settings = merged_settings(argv, "split", SPLIT_FLAGS, "Assign deterministic train/val/test splits.")
    return wrap(lambda: split_values(settings))


def split_values(s: Dict[str, Any]) -> SplitConfig:
    """A checked SplitConfig from merged settings."""
    ingest = ingest_values(s)
    kind = choice("--input-kind", s.get("input_kind", "auto"), INPUT_KINDS)
    if ingest.get("manifest"):
        if kind not in ("auto", "files"):
            raise ValueError(f"--input-kind: a --manifest lists files; expected files (or auto), got {kind}")
        kind = "files"
    elif kind == "auto":
        kind = detect_input_kind(ingest["input"])
    if ingest["incremental"] and kind != "files":
        raise ValueError(f"--incremental: expected raw files (a folder or --manifest), got a {kind} input")
    ingest = sample_values(s, kind, ingest)  # shards: samples by basename, labels from their cls member
    ratios = split_assign.parse_ratios(str(s.get("ratios", "0.8,0.1,0.1")))
    names = split_assign.parse_names(s.get("names"), len(ratios))
    if kind == "table" and not s.get("key_by"):
        raise ValueError("--key-by: expected column:NAME for tabular input, got nothing")
    if kind == "table" and ingest["samples"] != "file":
        raise ValueError("--samples: expected file for tabular input (rows are samples), got basename")
    key_by = KeySpec.parse(str(s.get("key_by", "sample" if ingest["samples"] == "basename" else "content")))
    if key_by.kind == "path" and ingest["samples"] == "basename":
        raise ValueError("--key-by: path would split a sample's files apart; expected sample, content or "
                         "group:REGEX with --samples basename")
    if kind == "table" and key_by.kind != "column":
        raise ValueError(f"--key-by: expected column:NAME for tabular input, got {key_by}")
    if kind != "table" and key_by.kind == "column":
        raise ValueError(f"--key-by: column:NAME needs --input-kind table, got input kind {kind}")
    if s.get("label_column") and kind != "table":
        raise ValueError("--label-column: expected only with tabular input (--input-kind table)")
    stratify = choice("--stratify", s.get("stratify", "none"), STRATIFY)
    ingest.pop("input_kind", None)
    return SplitConfig(**ingest, input_kind=kind, ratios=tuple(ratios), names=tuple(names),
                       seed=str(s.get("seed", "0")), key_by=key_by, stratify=stratify,
                       label_column=s.get("label_column"), **near_values(s, kind, stratify, ingest["phash"]))


def near_values(s: Dict[str, Any], kind: str, stratify: str, phash: bool) -> Dict[str, Any]:
    """The checked near-duplicate settings."""
    mode = choice("--near-duplicates", s.get("near_duplicates", "report"), NEAR_MODES)
    threshold = whole_number("--near-threshold", s.get("near_threshold", near.DEFAULT_THRESHOLD), 0, 62)
    near.layout_for(threshold)  # a threshold whose layout is too big is refused now, not later
    cap = whole_number("--near-bucket-cap", s.get("near_bucket_cap", near.DEFAULT_BUCKET_CAP), 2, 10 ** 6)
    if mode == "merge" and kind == "table":
        raise ValueError("--near-duplicates: merge needs image files (perceptual hashes), not tabular input")
    if mode == "merge" and not phash:
        raise ValueError("--near-duplicates: merge needs the perceptual hashes; expected --phash on, got off")
    if mode == "merge" and stratify == "exact":
        raise ValueError("--near-duplicates: merge keys clusters for the hash split; expected --stratify none, got exact")
    return {"near_duplicates": mode, "near_threshold": threshold, "near_bucket_cap": cap,
            "fail_on_leakage": s.get("fail_on_leakage", "false") == "true"}


def detect_input_kind(uri: str) -> str:
    """table for a .csv/.parquet file; for a local directory, kind_of_directory; else 'auto'.

    'auto' is resolved when the job runs, through Hadoop's FileSystem (any URI: s3://,
    hdfs://, ...), with the same kind_of_directory rule.
    """
    lowered = uri.lower().rstrip("/")
    if lowered.endswith((".csv", ".parquet", ".csv.gz")):
        return "table"
    if lowered.endswith(SHARD_EXTENSIONS):  # one shard, or a glob of them
        return "webdataset"
    if is_local(uri):
        root = local_path(uri)
        return kind_of_directory(os.listdir(root)) if os.path.isdir(root) else "files"
    return "auto"


def kind_of_directory(names: Sequence[str]) -> str:
    """catalog for a table directory (Delta log, _SUCCESS, a sparkprep marker, parquet files or
    split=<name> partitions at its top), files otherwise."""
    for name in names:
        if name in ("_delta_log", "_SUCCESS", "_sparkprep.json") or name.endswith(".parquet") \
                or name.startswith("split="):
            return "catalog"
    return "files"
