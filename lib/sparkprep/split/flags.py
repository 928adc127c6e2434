"""The split part of a config: ratios, names, seed, key and the near-duplicate policy (the split
job is ingest + split + audit; raw files are ingested inline)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Optional, Sequence, Tuple

from sparkprep.audit import policy
from sparkprep.audit.flags import AuditFlags
from sparkprep.flags import Job, compose, flag, one_of, text, whole
from sparkprep.ingest.flags import IngestFlags
from sparkprep.split import assign as split_assign
from sparkprep.split.keys import KeySpec

STRATIFY = ("none", "exact")
NEAR_MODES = ("report", "merge")


@dataclass(frozen=True)
class SplitFlags:
    """The split parameters."""

    takes_tables: ClassVar[bool] = True  # the job splits: --input may be a catalog or a table too

    ratios: Tuple[float, ...] = flag((0.8, 0.1, 0.1), lambda v: tuple(split_assign.parse_ratios(str(v))),
                                     "split ratios, e.g. 0.7,0.15,0.15", kind="list")
    names: Tuple[str, ...] = flag(("train", "val", "test"), text, "split names", kind="list",
                                  shown="`train,val,test` for three ratios, `train,test` for two")
    seed: str = flag("0", text, "hash seed string", kind="number")
    key_by: Optional[KeySpec] = flag(None, text, "content, sample (the sample id), path, group:REGEX (capture group 1 of "
                                     "the sample id) or column:NAME (tables)",
                                     shown="`content` for files, `sample` for --samples basename")
    stratify: str = flag("none", one_of("--stratify", *STRATIFY), "none (hash split) or exact (exact per-label shares)")
    label_column: Optional[str] = flag(None, text, "label column for tabular input")
    near_duplicates: str = flag("report", one_of("--near-duplicates", *NEAR_MODES), (
        "report (list near-duplicate pairs across splits) or merge (each near-duplicate cluster is keyed by its "
        "smallest key, so it lands in one split; chains with no member within 2 links of every other are "
        "reported, not merged)"))
    near_merge_max: int = flag(
        policy.MERGE_MAX_ROWS, whole("--near-merge-max", 2, 10 ** 9),
        f"with merge: a cluster merges only with at most this many rows and at most {policy.MERGE_MAX_SHARE:.0%} of "
        f"the hashed rows ({policy.MERGE_FLOOR_ROWS} rows always may); larger ones are reported, not merged",
        kind="number")

    @staticmethod
    def checked(values: Dict[str, Any], given: Dict[str, str], job: Job) -> None:
        kind, samples = values["input_kind"], values["samples"]
        values["names"] = tuple(split_assign.parse_names(given.get("names"), len(values["ratios"])))
        if kind == "table" and not given.get("key_by"):
            raise ValueError("--key-by: expected column:NAME for tabular input, got nothing")
        if kind == "table" and samples != "file":
            raise ValueError("--samples: expected file for tabular input (rows are samples), got basename")
        key_by = KeySpec.parse(str(given.get("key_by", "sample" if samples == "basename" else "content")))
        if key_by.kind == "path" and samples == "basename":
            raise ValueError("--key-by: path would split a sample's files apart; expected sample, content or "
                             "group:REGEX with --samples basename")
        if kind == "table" and key_by.kind != "column":
            raise ValueError(f"--key-by: expected column:NAME for tabular input, got {key_by}")
        if kind != "table" and key_by.kind == "column":
            raise ValueError(f"--key-by: column:NAME needs --input-kind table, got input kind {kind}")
        values["key_by"] = key_by
        if values["label_column"] and kind != "table":
            raise ValueError("--label-column: expected only with tabular input (--input-kind table)")
        if "near_merge_max" in given and values["near_duplicates"] != "merge":
            raise ValueError("--near-merge-max: expected only with --near-duplicates merge")
        if values["near_duplicates"] == "merge":
            if kind == "table":
                raise ValueError("--near-duplicates: merge needs image files (perceptual hashes), not tabular input")
            if not values["phash"]:
                raise ValueError("--near-duplicates: merge needs the perceptual hashes; expected --phash on, got off")
            if values["stratify"] == "exact":
                raise ValueError("--near-duplicates: merge keys clusters for the hash split; expected --stratify "
                                 "none, got exact")


def split_params(cfg: Any) -> Dict[str, Any]:
    """What the run report and the table metadata record about the split."""
    return {"split_algo": split_assign.SPLIT_ALGO, "seed": cfg.seed, "ratios": list(cfg.ratios),
            "names": list(cfg.names), "key_by": str(cfg.key_by), "stratify": cfg.stratify,
            **({"near_duplicates": "merge",
                "near_threshold": "auto" if cfg.near_threshold is None else cfg.near_threshold}
               if cfg.near_duplicates == "merge" else {})}


SplitConfig = compose("SplitConfig", "Ingest settings (used when --input is raw files) plus the split parameters.",
                      IngestFlags, SplitFlags, AuditFlags, namespace={"split_params": split_params})

SPLIT_HELP = {
    "--input": "raw files (a folder, a glob, .tar shards), a catalog (an ingest output) or a table (CSV/parquet rows)",
    "--input-kind": ("auto (a .tar/.tar.gz/.tgz path or glob is webdataset; a .csv or .parquet file a table; a "
                     "directory whose top holds _delta_log, _SUCCESS, _sparkprep.json, parquet files or split= "
                     "partitions a catalog; anything else files), files, catalog, table or webdataset"),
}

SPLIT = Job("split", "Assign deterministic train/val/test splits.", SplitConfig, help=SPLIT_HELP)


def split_config(argv: Optional[Sequence[str]] = None) -> SplitConfig:
    """Parse and validate the split job's arguments."""
    return SPLIT.parse(argv)
