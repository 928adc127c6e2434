"""The --key-by value: which string of a row the split hashes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sparkprep.ingest.paths import compile_group_regex


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
