"""Relative paths below the input root, labels from paths, and Spark's hidden-file rule: pure functions."""

from __future__ import annotations

import re
import unicodedata
from typing import Optional


def compile_group_regex(pattern: str, flag: str) -> "re.Pattern[str]":
    """Compile a regex whose capture group 1 is the value wanted; ValueError otherwise."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{flag}: expected a valid regular expression, got {pattern!r} ({exc})")
    if compiled.groups < 1:
        raise ValueError(f"{flag}: expected a regex with a capture group, got {pattern!r}")
    return compiled


def relative_path(uri: str, root: str) -> str:
    """The path of `uri` below the qualified input `root`, '/'-separated, Unicode NFC.

    s3://, s3a:// and s3n:// spell one store (an Inventory lists s3:// URIs under an s3a:// --input).
    """
    uri, root = _one_s3_scheme(uri), _one_s3_scheme(root.rstrip("/"))
    if uri == root:  # the input was a single file
        rel = uri.rsplit("/", 1)[-1]
    elif uri.startswith(root + "/"):
        rel = uri[len(root) + 1:]
    else:
        raise ValueError(f"expected a path under {root!r}, got {uri!r}")
    return unicodedata.normalize("NFC", rel)


def _one_s3_scheme(uri: str) -> str:
    return re.sub(r"^s3[an]://", "s3://", uri)


def label_from_parent(rel_path: str) -> Optional[str]:
    """The immediate parent directory's name (ImageFolder / MedNIST style), or None at the root."""
    parts = rel_path.split("/")
    return parts[-2] if len(parts) >= 2 else None


def first_group(pattern: "re.Pattern[str]", rel_path: str) -> Optional[str]:
    """Capture group 1 of `pattern` searched in `rel_path`, or None when it does not match."""
    match = pattern.search(rel_path)
    return match.group(1) if match else None


def is_hidden(rel_path: str) -> bool:
    """Whether Spark's file index skips this path (its shouldFilterOutPathName rule, per component).

    A component is skipped when it starts with '.', ends with '._COPYING_', or starts
    with '_' without containing '=' (so `_year=2024/` directories are still read), except
    that names starting with `_metadata` or `_common_metadata` are always read.
    """
    return any((part.startswith(".") or part.endswith("._COPYING_") or (part.startswith("_") and "=" not in part))
               and not part.startswith(("_metadata", "_common_metadata"))
               for part in rel_path.split("/"))


# WebDataset's rule (docs/contracts.md, Samples): group 1 is the sample id, group 2 the member name.
SAMPLE_RULE = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")
SAMPLE_MODES = ("file", "basename")
IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "webp", "ppm"})


def sample_and_member(rel_path: str, mode: str = "basename") -> "tuple[str, str]":
    """(sample id, member name) of a relative path (NFC, '/' separators).

    basename: CXR/p001_0003.seg.png -> (CXR/p001_0003, seg.png); a name without a dot is a
    sample of its own with an empty member name. file: every file is its own sample, the
    sample id is the relative path, and the member name is still given by the rule.
    """
    match = SAMPLE_RULE.match(rel_path)
    sample, member = (match.group(1), match.group(2)) if match else (rel_path, "")
    return (rel_path if mode == "file" else sample), member


def is_image_member(rel_path: str) -> bool:
    """Whether a file is probed as an image: its last extension is an image format's."""
    tail = rel_path.rsplit("/", 1)[-1]
    return "." in tail and tail.rsplit(".", 1)[1].lower() in IMAGE_EXTENSIONS


def sample_content_key(members: "list[tuple[str, str]]") -> str:
    """The content key of a sample: sha256 over 'member\0member_sha256\n', members sorted by name."""
    import hashlib

    text = "".join(f"{member}\0{digest}\n" for member, digest in sorted(members))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
