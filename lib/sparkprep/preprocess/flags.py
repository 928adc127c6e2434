"""The preprocess part of a config: the recipe, and augmented copies (the preprocess job is
ingest + split + audit + preprocess; raw files and unsplit catalogs are split inline)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Optional, Sequence, Tuple

from sparkprep.audit.flags import AuditFlags
from sparkprep.errors import UsageError
from sparkprep.flags import Job, Loose, compose, flag, whole
from sparkprep.ingest.flags import IngestFlags
from sparkprep.preprocess import transform
from sparkprep.split import assign as split_assign
from sparkprep.split.flags import SPLIT_HELP, SplitFlags, split_params

# The recipe: one TransformSpec from these flags (transform.spec_with, which online queries share).
RECIPE = (
    Loose("size", "output size: N or WIDTHxHEIGHT", "number", "`224`"),
    Loose("resize", "exact | shorter-side-crop | fit | pad", shown="`shorter-side-crop`"),
    Loose("resample", "nearest | box | bilinear | hamming | bicubic | lanczos", shown="`bilinear`"),
    Loose("mode", "RGB | L | keep (L for grayscale sources, RGB otherwise)", shown="`RGB`"),
    Loose("background", "colour that alpha and padding are composited onto", shown="`white`"),
    Loose("encode", "jpeg[:Q] | png | webp[:Q] | raw (uint8 HWC pixels)", shown="`jpeg:90`"),
    Loose("augment", "augmentations, e.g. hflip,vflip,rotate:15,crop:0.85,color:0.2,noise:5", "list"),
    Loose("draft", "on: decode JPEGs at reduced DCT scale when the target is smaller; off", shown="`on`"),
    Loose("depth-scale", "16/32-bit pixels to 8-bit: fixed (16-bit range, or a PNG's sBIT bits), bits:N (N "
                         "significant bits, e.g. bits:12), or per-image (min..max of each image)", shown="`fixed`"),
)


@dataclass(frozen=True)
class PreprocessFlags:
    """The recipe (from the RECIPE flags) and the augmented copies."""

    loose: ClassVar[Tuple[Loose, ...]] = RECIPE
    reuses_tables: ClassVar[bool] = True  # --incremental keeps a split table's unchanged samples (preprocess_rules)

    spec: Optional[transform.TransformSpec] = None
    copies: int = flag(0, whole("--copies", 0, 100), "augmented copies per sample of --augment-splits",
                       kind="number")
    augment_splits: Tuple[str, ...] = flag(("train",), lambda v: tuple(
        split_assign.check_split_name(n.strip(), "--augment-splits") for n in str(v).split(",")),
        "splits that get augmented copies", kind="list")

    @staticmethod
    def checked(values: Dict[str, Any], given: Dict[str, str], job: Job) -> None:
        if values["input_kind"] == "table":
            raise ValueError("--input: expected image files, a catalog or a split table; tabular rows have no images")
        spec = transform.spec_with(transform.TransformSpec(seed=values["seed"]), given)
        values["spec"] = spec
        if values["copies"] and not spec.augment:
            raise ValueError("--copies: expected --augment too (copies of what?)")
        splits = values["augment_splits"]
        if values["input_kind"] == "files" and not set(splits) <= set(values["names"]):
            unknown = sorted(set(splits) - set(values["names"]))
            raise ValueError(f"--augment-splits: expected names among --names ({', '.join(values['names'])}), "
                             f"got {', '.join(unknown)}")


def copies_by_split(cfg: Any) -> Dict[str, int]:
    return {name: cfg.copies for name in cfg.augment_splits}


PreprocessConfig = compose(
    "PreprocessConfig", "Split settings (used when --input is raw files or an unsplit catalog) plus the recipe.",
    IngestFlags, SplitFlags, AuditFlags, PreprocessFlags,
    namespace={"split_params": split_params, "copies_by_split": copies_by_split})


def preprocess_rules(values: Dict[str, Any], given: Dict[str, str]) -> None:
    """What preprocess refuses of the parts it shares with split."""
    if values["fail_on_leakage"]:  # the processed table holds no perceptual hashes to audit
        raise UsageError("--fail-on-leakage: the near-duplicate audit runs on split tables; use it with "
                         "jobs/split.py, jobs/pipeline.py or jobs/report.py")
    if values["incremental"] and values["input_kind"] in ("files", "webdataset"):  # an unsplit catalog: when it runs
        raise ValueError("--incremental: preprocess reuses its previous output for a split table's rows; for raw "
                         "files or a catalog run jobs/split.py --incremental first, then preprocess its table with "
                         "--incremental")


PREPROCESS = Job("preprocess", "Decode, orient, convert, resize, augment.", PreprocessConfig,
                 help={**SPLIT_HELP, "--input": "raw files, a catalog or a split table (CSV/parquet rows have no "
                                                "images)",
                       "--incremental": "with a split table as --input: keep the previous output's rows for every "
                                        "sample whose split-table row is unchanged (key, split, label, path, sha256), "
                                        "unread; transform only new and changed samples; the rows of samples gone "
                                        "from the input disappear. A changed recipe, --copies, --augment-splits, "
                                        "--max-pixels or format transforms everything (the report says why)"},
                 check=preprocess_rules)


def preprocess_config(argv: Optional[Sequence[str]] = None) -> PreprocessConfig:
    """Parse and validate the preprocess job's arguments."""
    return PREPROCESS.parse(argv)
