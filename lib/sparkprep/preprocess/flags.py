"""The preprocess job's flags and config: split settings (used when --input is raw files or an
unsplit catalog) plus the recipe."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Dict, Optional, Sequence, Tuple

from sparkprep.errors import UsageError
from sparkprep.flags import Flags, merged_settings, wrap
from sparkprep.preprocess import transform
from sparkprep.split import assign as split_assign
from sparkprep.split.flags import SPLIT_FLAGS, SplitConfig, split_values
from sparkprep.values import whole_number


@dataclass(frozen=True)
class PreprocessConfig(SplitConfig):
    """Split settings (used when --input is raw files or an unsplit catalog) plus the recipe."""

    spec: Optional[transform.TransformSpec] = None
    copies: int = 0
    augment_splits: Tuple[str, ...] = ("train",)

    def copies_by_split(self) -> Dict[str, int]:
        return {name: self.copies for name in self.augment_splits}


PREPROCESS_FLAGS = SPLIT_FLAGS.plus(Flags(help={
    "size": "output size: N or WIDTHxHEIGHT (default 224)",
    "resize": "exact | shorter-side-crop (default) | fit | pad",
    "resample": "nearest | box | bilinear (default) | hamming | bicubic | lanczos",
    "mode": "RGB (default) | L | keep (L for grayscale sources, RGB otherwise)",
    "background": "colour that alpha and padding are composited onto (default white)",
    "encode": "jpeg[:Q] (default jpeg:90) | png | webp[:Q] | raw (uint8 HWC pixels)",
    "augment": "augmentations, e.g. hflip,vflip,rotate:15,crop:0.85,color:0.2,noise:5",
    "copies": "augmented copies per sample of --augment-splits (default 0)",
    "augment-splits": "splits that get augmented copies (default train)",
    "draft": "on (default): decode JPEGs at reduced DCT scale when the target is smaller; off",
    "depth-scale": ("16/32-bit pixels to 8-bit: fixed (default: 16-bit range, or a PNG's sBIT bits), "
                    "bits:N (N significant bits, e.g. bits:12), or per-image (min..max of each image)"),
}, lists=frozenset({"augment", "augment-splits"}), numbers=frozenset({"copies", "size"})))


def preprocess_config(argv: Optional[Sequence[str]] = None) -> PreprocessConfig:
    """Parse and validate the preprocess job's arguments."""
    settings = merged_settings(argv, "preprocess", PREPROCESS_FLAGS, "Decode, orient, convert, resize, augment.")
    if settings.get("fail_on_leakage") == "true":  # the processed table holds no perceptual hashes to audit
        raise UsageError("--fail-on-leakage: the near-duplicate audit runs on split tables; use it with "
                         "jobs/split.py, jobs/pipeline.py or jobs/report.py")
    return wrap(lambda: preprocess_values(settings))


def preprocess_values(s: Dict[str, Any]) -> PreprocessConfig:
    """A checked PreprocessConfig from merged settings."""
    split = split_values(s)
    if split.incremental:
        raise ValueError("--incremental: only jobs/ingest.py and jobs/split.py run incrementally; preprocess their "
                         "output, which reads only the table")
    if split.input_kind == "table":
        raise ValueError("--input: expected image files, a catalog or a split table; tabular rows have no images")
    spec = transform.spec_with(transform.TransformSpec(seed=split.seed), s)
    copies = whole_number("--copies", s.get("copies", 0), 0, 100)
    if copies and not spec.augment:
        raise ValueError("--copies: expected --augment too (copies of what?)")
    splits = tuple(split_assign.check_split_name(n.strip(), "--augment-splits")
                   for n in str(s.get("augment_splits", "train")).split(","))
    if split.input_kind == "files" and not set(splits) <= set(split.names):
        unknown = sorted(set(splits) - set(split.names))
        raise ValueError(f"--augment-splits: expected names among --names ({', '.join(split.names)}), "
                         f"got {', '.join(unknown)}")
    values = {f.name: getattr(split, f.name) for f in fields(split)}
    return PreprocessConfig(**values, spec=spec, copies=copies, augment_splits=splits)
