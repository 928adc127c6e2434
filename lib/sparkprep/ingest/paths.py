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
    """The path of `uri` below the qualified input `root`, '/'-separated, Unicode NFC."""
    root = root.rstrip("/")
    if uri == root:  # the input was a single file
        rel = uri.rsplit("/", 1)[-1]
    elif uri.startswith(root + "/"):
        rel = uri[len(root) + 1:]
    else:
        raise ValueError(f"expected a path under {root!r}, got {uri!r}")
    return unicodedata.normalize("NFC", rel)


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
