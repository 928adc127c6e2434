"""Flags and --config files: each flag declared once, on the part of a config that owns it.

A part is a frozen dataclass of one stage's settings. A field that is a flag says so once,
with its default, its parser and its help:

    max_pixels: int = flag(DEFAULT_MAX_PIXELS, whole("--max-pixels", 1, LIMIT), "images with more ...",
                           kind="number")

A job's config is composed of parts (`compose`), never inherited: the split job's is
(ingest, split, audit), the pipeline's (ingest, split, audit, preprocess, pipeline, shards).
From the parts come the argparse parser, the typing of --config files, and the flag tables
of the docs (`Job.flag_table`, in docs/jobs/<job>.md, compared by a test).

Precedence: built-in defaults < the --config file < flags. Every problem is a `UsageError`
with an "expected X, got Y" message, raised before any Spark work.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from sparkprep.errors import UsageError
from sparkprep.uris import check_output, is_local, local_path
from sparkprep.values import choice, fraction, parse_bytes, whole_number

FORMATS = ("parquet", "delta")
KINDS = ("text", "number", "decimal", "list", "switch")  # what a --config file may spell a value as


@dataclass(frozen=True)
class FlagSpec:
    """What a field's metadata says about its flag."""

    parse: Callable[[str], Any]  # the flag's text -> its value; ValueError "--flag: expected X, got Y"
    help: str
    kind: str = "text"           # text | number (whole) | decimal | list (comma-separated) | switch
    shown: Optional[str] = None  # the default as the docs spell it, where the value would mislead
    name: Optional[str] = None   # the flag, where it is not the field's name with dashes


def flag(default: Any, parse: Callable[[str], Any], help: str, kind: str = "text",  # noqa: A002
         shown: Optional[str] = None, name: Optional[str] = None) -> Any:
    """A config field that is a flag: its default, its parser (text -> value) and its help."""
    assert kind in KINDS, kind
    return dataclasses.field(default=default, metadata={"flag": FlagSpec(parse, help, kind, shown, name)})


@dataclass(frozen=True)
class Loose:
    """A flag that fills no field of its own: its part's `checked` reads the text from `given`
    (the recipe flags, which together make one TransformSpec)."""

    name: str
    help: str
    kind: str = "text"
    shown: str = ""


@dataclass(frozen=True)
class Declared:
    """One flag of a job, whichever way its part declared it."""

    option: str       # --max-pixels
    dest: str         # max_pixels: its key in `given` (and its field, unless loose)
    help: str
    kind: str
    shown: str


def declared(part: type) -> List[Declared]:
    """The flags of a part, fields first in their order, then its loose flags."""
    out = []
    for field in dataclasses.fields(part):
        spec = field.metadata.get("flag")
        if spec is not None:
            option = "--" + (spec.name or field.name.replace("_", "-"))
            shown = spec.shown if spec.shown is not None else shown_default(field.default, spec.kind)
            out.append(Declared(option, field.name, spec.help, spec.kind, shown))
    for loose in getattr(part, "loose", ()):
        out.append(Declared("--" + loose.name, loose.name.replace("-", "_"), loose.help, loose.kind, loose.shown))
    return out


def shown_default(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "switch":
        return "off"
    if isinstance(value, bool):
        return "`on`" if value else "`off`"
    if isinstance(value, tuple):
        return "`" + ",".join(map(str, value)) + "`"
    return f"`{value}`"


def compose(name: str, doc: str, *parts: type, namespace: Optional[Dict[str, Any]] = None) -> type:
    """A job's config: one frozen dataclass holding the fields of its parts, in order.

    A field belongs to one part only; the parts are kept (`.parts`) so that the job's parser
    checks each in turn."""
    specs: List[Tuple[str, Any, Any]] = []
    seen: Dict[str, str] = {}
    for part in parts:
        for field in dataclasses.fields(part):
            assert field.name not in seen, f"{field.name} is declared by {seen[field.name]} and {part.__name__}"
            seen[field.name] = part.__name__
            specs.append((field.name, field.type, dataclasses.field(
                default=field.default, default_factory=field.default_factory, metadata=field.metadata)))
    config = dataclasses.make_dataclass(name, specs, frozen=True, namespace=namespace or {})
    config.__doc__ = doc
    config.__module__ = parts[-1].__module__
    config.parts = parts
    return config


# -- parsers: text -> value, the flag's name in every error ------------------------------------------

def text(value: str) -> str:
    return str(value)


def one_of(flag_name: str, *choices: str) -> Callable[[str], str]:
    return lambda value: choice(flag_name, str(value), choices)


def on_off(flag_name: str) -> Callable[[str], bool]:
    return lambda value: choice(flag_name, str(value), ("on", "off")) == "on"


def switch(value: str) -> bool:
    return str(value) == "true"


def whole(flag_name: str, low: int, high: int) -> Callable[[str], int]:
    return lambda value: whole_number(flag_name, value, low, high)


def share(flag_name: str) -> Callable[[str], float]:
    return lambda value: fraction(flag_name, value)


def size_of(flag_name: str, low: int, high: int, expected: str) -> Callable[[str], int]:
    """A size such as 256MB in [low, high]; `expected` words the range in the error."""
    def parse(value: str) -> int:
        try:
            size = parse_bytes(value)
        except ValueError as exc:
            raise ValueError(f"{flag_name}: {exc}") from None
        if not low <= size <= high:
            raise ValueError(f"{flag_name}: expected {expected}, got {value!r}")
        return size
    return parse


# -- the command line and --config files ------------------------------------------------------------

def file_value(flag_name: str, value: Any, kind: str) -> str:
    """A --config file value as the string its flag would take; wrong JSON types are errors, never coerced.

    Lists only where a flag takes a comma-separated list; whole numbers only where a flag
    takes one (so 42.0, 2.9 and true are refused); seeds are strings or whole numbers.
    """
    def scalar(item: Any) -> str:
        if isinstance(item, bool) or item is None or isinstance(item, (list, dict)):
            raise ValueError(f"--config {flag_name}: expected a string or number item, got {json.dumps(item)}")
        if isinstance(item, str) and "," in item:
            raise ValueError(f"--config {flag_name}: expected list items without commas, got {item!r}")
        return str(item)

    if isinstance(value, list):
        if kind != "list":
            raise ValueError(f"--config {flag_name}: expected a single value, got a list {json.dumps(value)}")
        if not value:
            raise ValueError(f"--config {flag_name}: expected a non-empty list, got []")
        return ",".join(scalar(item) for item in value)
    if kind == "switch":
        if not isinstance(value, bool):
            raise ValueError(f"--config {flag_name}: expected true or false, got {json.dumps(value)}")
        return "true" if value else "false"
    if isinstance(value, bool) or value is None or isinstance(value, dict):
        raise ValueError(f"--config {flag_name}: expected a string{' or whole number' * (kind == 'number')}, "
                         f"got {json.dumps(value)}")
    if isinstance(value, float):
        if kind == "decimal":
            return repr(value)
        what = "a whole number" if kind == "number" else "a string"
        raise ValueError(f"--config {flag_name}: expected {what}, got {value!r}")
    if isinstance(value, int) and kind not in ("number", "decimal"):
        raise ValueError(f"--config {flag_name}: expected a string, got {value}")
    return str(value)


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage + message; we want one line
        raise UsageError(message)


Check = Callable[[Dict[str, Any], Dict[str, str]], None]


@dataclass(frozen=True)
class Job:
    """How one job's command line becomes its config: the config's parts, each checked in turn
    (`part.checked(values, given, job)`), the help a flag takes in this job where it differs
    from its part's, and the rules of this job alone (`check(values, given)`)."""

    name: str
    description: str
    config: type
    help: Mapping[str, str] = dataclasses.field(default_factory=dict)  # option -> help in this job
    check: Optional[Check] = None
    local: bool = True  # False: parsed for a run elsewhere (a submitted step), so checks that need this
                        # machine's copy of the user's module are left to that run

    def parts(self) -> Tuple[type, ...]:
        return self.config.parts

    def has(self, part: type) -> bool:
        return part in self.config.parts

    def flags(self) -> List[Declared]:
        out: List[Declared] = []
        for part in self.config.parts:
            for item in declared(part):
                assert all(item.option != o.option for o in out), f"{item.option} is declared twice in {self.name}"
                out.append(dataclasses.replace(item, help=self.help.get(item.option, item.help)))
        return out

    def argument_parser(self) -> argparse.ArgumentParser:
        """An argparse parser whose defaults are all None, so set flags can override the file."""
        parser = _OneLineParser(prog=self.name, description=self.description)
        parser.add_argument("--config", help="JSON file of settings; flags override it")
        for item in self.flags():
            helped = f"{item.help} (default {item.shown.replace('`', '')})" if item.shown else item.help
            helped = helped.replace("%", "%%")
            if item.kind == "switch":
                parser.add_argument(item.option, dest=item.dest, help=helped, default=None,
                                    action="store_const", const="true")
            else:
                parser.add_argument(item.option, dest=item.dest, help=helped, default=None)
        return parser

    def settings(self, argv: Optional[Sequence[str]]) -> Dict[str, str]:
        """Flag values over --config file values, as text, keyed by dest (the flag with underscores)."""
        args = self.argument_parser().parse_args(argv)
        kinds = {item.dest: (item.option, item.kind) for item in self.flags()}
        given: Dict[str, str] = {}
        if args.config:
            try:
                with open(args.config, encoding="utf-8") as handle:
                    loaded = json.load(handle)
            except (OSError, ValueError) as exc:
                raise UsageError(f"--config: expected a readable JSON file, got {args.config!r} ({exc})") from None
            if not isinstance(loaded, dict):
                raise UsageError(f"--config: expected a JSON object, got {type(loaded).__name__}")
            known = {option[2:].replace("-", "_"): dest for dest, (option, _) in kinds.items()}
            for key, value in loaded.items():
                dest = known.get(key.replace("-", "_"))
                if dest is None:
                    raise UsageError(f"--config: unknown setting {key!r}; expected one of {', '.join(sorted(known))}")
                option, kind = kinds[dest]
                try:
                    given[dest] = file_value(option[2:], value, kind)
                except ValueError as exc:
                    raise UsageError(str(exc)) from None
        given.update({key: value for key, value in vars(args).items() if value is not None and key != "config"})
        return given

    def parse(self, argv: Optional[Sequence[str]] = None) -> Any:
        """The job's checked config from its command line (argv None: sys.argv's)."""
        given = self.settings(argv)
        try:
            values: Dict[str, Any] = {}
            for part in self.config.parts:
                for field in dataclasses.fields(part):
                    spec = field.metadata.get("flag")
                    if spec is not None and field.name in given:
                        values[field.name] = spec.parse(given[field.name])
                    elif field.default is not dataclasses.MISSING:
                        values[field.name] = field.default
                    elif field.default_factory is not dataclasses.MISSING:
                        values[field.name] = field.default_factory()
                checked = getattr(part, "checked", None)
                if checked is not None:
                    checked(values, given, self)
            if self.check is not None:
                self.check(values, given)
            return self.config(**values)
        except UsageError:
            raise
        except (ValueError, TypeError) as exc:
            raise UsageError(str(exc)) from None

    def flag_table(self) -> str:
        """The Markdown table of the job's flags, as docs/jobs/<job>.md shows it."""
        rows = ["| flag | default | meaning |", "| --- | --- | --- |"]
        for item in self.flags():
            rows.append(f"| `{item.option}` | {item.shown} | {item.help.replace('|', chr(92) + '|')} |")
        return "\n".join(rows) + "\n"


def require_paths(values: Mapping[str, Any], *names: str) -> None:
    """ValueError naming the first of these flags that was not given."""
    for name in names:
        if not values.get(name):
            raise ValueError(f"--{name.replace('_', '-')}: expected a path, got nothing")


def table_input_output(values: Mapping[str, Any], expected: str) -> None:
    """--input (an existing directory where it is local) and --output (outside it): both checked."""
    require_paths(values, "input", "output")
    source, output = str(values["input"]), str(values["output"])
    if is_local(source) and not os.path.isdir(local_path(source)):
        raise ValueError(f"--input: expected {expected}, got {source!r}")
    check_output(source, output)
