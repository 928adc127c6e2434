"""Flags and --config files, parsed and checked: what every job's command line shares.

Precedence: built-in defaults < the --config file < flags. Every problem is a
`UsageError` with an "expected X, got Y" message, raised before any Spark work.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Optional, Sequence, Tuple

from sparkprep.errors import UsageError
from sparkprep.uris import check_output, is_local, local_path

FORMATS = ("parquet", "delta")


@dataclass(frozen=True)
class Flags:
    """A job's flags: help text per flag, and how a --config file may spell each value.

    Every other flag takes a JSON string only. Stages build theirs on the flags of the
    stage before them with `plus`, so each stage owns its own flags.
    """

    help: Dict[str, str]
    lists: FrozenSet[str] = frozenset()     # comma-separated lists on the command line
    numbers: FrozenSet[str] = frozenset()   # whole numbers (or strings) in a --config file
    switches: FrozenSet[str] = frozenset()  # no value on the command line; true/false in a file
    decimals: FrozenSet[str] = frozenset()  # numbers with a fraction (or lists of them)

    def plus(self, other: "Flags") -> "Flags":
        return Flags({**self.help, **other.help}, self.lists | other.lists, self.numbers | other.numbers,
                     self.switches | other.switches, self.decimals | other.decimals)


def file_value(flag: str, value: Any, flags: Flags) -> str:
    """A --config file value as the string its flag would take; wrong JSON types are errors, never coerced.

    Lists only where a flag takes a comma-separated list; whole numbers only where a flag
    takes one (so 42.0, 2.9 and true are refused); seeds are strings or whole numbers.
    """
    def scalar(item: Any) -> str:
        if isinstance(item, bool) or item is None or isinstance(item, (list, dict)):
            raise ValueError(f"--config {flag}: expected a string or number item, got {json.dumps(item)}")
        if isinstance(item, str) and "," in item:
            raise ValueError(f"--config {flag}: expected list items without commas, got {item!r}")
        return str(item)

    if isinstance(value, list):
        if flag not in flags.lists:
            raise ValueError(f"--config {flag}: expected a single value, got a list {json.dumps(value)}")
        if not value:
            raise ValueError(f"--config {flag}: expected a non-empty list, got []")
        return ",".join(scalar(item) for item in value)
    if flag in flags.switches:
        if not isinstance(value, bool):
            raise ValueError(f"--config {flag}: expected true or false, got {json.dumps(value)}")
        return "true" if value else "false"
    if isinstance(value, bool) or value is None or isinstance(value, dict):
        raise ValueError(f"--config {flag}: expected a string{' or whole number' * (flag in flags.numbers)}, "
                         f"got {json.dumps(value)}")
    if isinstance(value, float):
        if flag in flags.decimals:
            return repr(value)
        what = "a whole number" if flag in flags.numbers else "a string"
        raise ValueError(f"--config {flag}: expected {what}, got {value!r}")
    if isinstance(value, int):
        if flag not in flags.numbers | flags.decimals:
            raise ValueError(f"--config {flag}: expected a string, got {value}")
        return str(value)
    return str(value)


def require_paths(settings: Dict[str, Any], *flags: str) -> None:
    """ValueError naming the first of these flags that was not given."""
    for flag in flags:
        if not settings.get(flag):
            raise ValueError(f"--{flag}: expected a path, got nothing")


def table_input_output(settings: Dict[str, Any], expected: str) -> Tuple[str, str]:
    """--input (an existing directory where it is local) and --output (outside it): both checked."""
    require_paths(settings, "input", "output")
    source, output = str(settings["input"]), str(settings["output"])
    if is_local(source) and not os.path.isdir(local_path(source)):
        raise ValueError(f"--input: expected {expected}, got {source!r}")
    check_output(source, output)
    return source, output


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage + message; we want one line
        raise UsageError(message)


def build_parser(prog: str, flags: Flags, description: str) -> argparse.ArgumentParser:
    """An argparse parser whose defaults are all None, so set flags can override the file."""
    parser = _OneLineParser(prog=prog, description=description)
    parser.add_argument("--config", help="JSON file of settings; flags override it")
    for flag, help_text in flags.help.items():
        if flag in flags.switches:
            parser.add_argument(f"--{flag}", help=help_text, default=None, action="store_const", const="true")
        else:
            parser.add_argument(f"--{flag}", help=help_text, default=None)
    return parser


def merged_settings(argv: Optional[Sequence[str]], prog: str, flags: Flags,
                    description: str) -> Dict[str, Any]:
    """Flag values over --config file values, keyed by flag name with underscores."""
    args = build_parser(prog, flags, description).parse_args(argv)
    settings: Dict[str, Any] = {}
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as handle:
                loaded = json.load(handle)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--config: expected a readable JSON file, got {args.config!r} ({exc})")
        if not isinstance(loaded, dict):
            raise UsageError(f"--config: expected a JSON object, got {type(loaded).__name__}")
        known = {f.replace("-", "_") for f in flags.help}
        for key, value in loaded.items():
            name = key.replace("-", "_")
            if name not in known:
                raise UsageError(f"--config: unknown setting {key!r}; expected one of {', '.join(sorted(known))}")
            try:
                settings[name] = file_value(name.replace("_", "-"), value, flags)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
    for key, value in vars(args).items():
        if value is not None and key != "config":
            settings[key] = value
    return settings


def wrap(build):
    try:
        return build()
    except UsageError:
        raise
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
