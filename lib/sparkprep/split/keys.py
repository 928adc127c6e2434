"""The --key-by value: which string of a row the split hashes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from sparkprep.ingest.paths import compile_group_regex, first_group
from sparkprep.statuses import NO_GROUP, OK, UNREADABLE


@dataclass(frozen=True)
class KeySpec:
    """A parsed --key-by value: content | path | sample | group:REGEX | column:NAME."""

    kind: str
    arg: Optional[str] = None

    @classmethod
    def parse(cls, text: str) -> "KeySpec":
        kind, sep, arg = text.partition(":")
        if kind in ("content", "path", "sample") and not sep:
            return cls(kind)
        if kind == "group" and arg:
            compile_group_regex(arg, "--key-by group")
            return cls(kind, arg)
        if kind == "column" and arg:
            return cls(kind, arg)
        raise ValueError(
            f"--key-by: expected content, path, sample, group:REGEX or column:NAME, got {text!r}"
        )

    def __str__(self) -> str:
        return self.kind if self.arg is None else f"{self.kind}:{self.arg}"


def file_key(spec: KeySpec, sha256: Optional[str], rel_path: str, sample: str, status: str,
             error: Optional[str], group_pattern=None) -> Tuple[str, str, Optional[str]]:
    """(key, status, error) of one file that is its own sample, as sparkprep.split.spark.file_key
    computes it in Spark SQL: where the key cannot be computed, the row is keyed by its sample id
    and says why.

    group_pattern: the compiled --key-by group:REGEX (compile it once per batch).
    """
    if spec.kind == "content":
        key, fallback, bad = sha256, "sha256 unknown; keyed by path", UNREADABLE
    elif spec.kind == "path":
        return rel_path, status, error
    elif spec.kind == "sample":
        return sample, status, error
    elif spec.kind == "group":
        pattern = group_pattern or compile_group_regex(spec.arg, "--key-by group")
        key, fallback, bad = first_group(pattern, sample), f"group regex {spec.arg!r} did not match; keyed by sample", NO_GROUP
    else:
        raise ValueError(f"--key-by: {spec} is not a key of files")
    if key is not None:
        return key, status, error
    return sample, bad if status == OK else status, "; ".join(e for e in (error, fallback) if e is not None)
