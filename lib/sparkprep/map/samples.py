"""The user's function over whole samples: pure Python over Arrow batches, never fails a task for data.

A split table's rows arrive sorted by (sample, member), so a sample's members are
consecutive (possibly across batches). Each sample becomes one WebDataset-shaped dict:

    {"__key__": sample id, "__split__": ..., "__label__": ..., "__seed__": int,
     "<member name>": bytes, ...}                    # e.g. "jpg", "json", "seg.png"

The function returns a dict of output members (bytes) and scalar fields, or None to drop
the sample. The failure policy is explicit: an exception inside the user's function is
data (the sample gets status `map_error` with the exception and its last frame); a
return value that does not fit --schema is a `map_error` naming the field; a None is
`filtered`. Samples quarantined upstream are passed through, never given to the function.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import pyarrow as pa

from sparkprep.ingest.paths import sample_content_key
from sparkprep.statuses import FILTERED, MAP_ERROR, OK

# What every mapped row carries (docs/contracts.md, Tables), then the sample id and the output members.
BASE_FIELDS = [
    pa.field("key", pa.string()), pa.field("split", pa.string()), pa.field("label", pa.string()),
    pa.field("path", pa.string()), pa.field("sha256", pa.string()), pa.field("status", pa.string()),
    pa.field("error", pa.string()), pa.field("sample", pa.string()),
]
MEMBERS_FIELD = pa.field("members", pa.map_(pa.string(), pa.binary()))
INPUT_COLUMNS = ("key", "split", "label", "path", "sha256", "status", "error", "sample", "member", "content")
DDL_TYPES = {"string": pa.string(), "double": pa.float64(), "float": pa.float32(), "int": pa.int32(),
             "integer": pa.int32(), "bigint": pa.int64(), "long": pa.int64(), "boolean": pa.bool_(),
             "binary": pa.binary()}
MEMBER_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$")
_FIELD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s+([A-Za-z]+)\s*$")
RESERVED = {f.name for f in BASE_FIELDS} | {MEMBERS_FIELD.name}


def parse_schema(ddl: Optional[str]) -> List[pa.Field]:
    """'signal string, hr double' -> Arrow fields; the Spark DDL subset of scalar types."""
    if not ddl:
        return []
    fields = []
    for part in str(ddl).split(","):
        match = _FIELD.match(part)
        if not match or match.group(2).lower() not in DDL_TYPES:
            raise ValueError(f"--schema: expected 'name type, ...' with types {', '.join(sorted(DDL_TYPES))}, "
                             f"got {part.strip()!r}")
        name = match.group(1)
        if name in RESERVED or name in {f.name for f in fields}:
            raise ValueError(f"--schema: expected new, distinct field names, got {name!r} twice or reserved")
        fields.append(pa.field(name, DDL_TYPES[match.group(2).lower()]))
    return fields


def output_schema(fields: List[pa.Field]) -> pa.Schema:
    return pa.schema(BASE_FIELDS + fields + [MEMBERS_FIELD])


def load_function(spec: str) -> Callable:
    """'module:function' -> the function; ValueError when the module or the function is missing."""
    module_name, _, function_name = str(spec).partition(":")
    if not module_name or not function_name:
        raise ValueError(f"--map: expected module:function, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is a usage error, reported in one line
        raise ValueError(f"--map: cannot import {module_name!r} (ship it with --py-files): "
                         f"{type(exc).__name__}: {exc}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ValueError(f"--map: {module_name!r} has no function {function_name!r}")
    return function


def sample_seed(seed: str, sample: str) -> int:
    """A 63-bit seed from sha256(seed:sample id): the same on every retry and cluster size."""
    return int(hashlib.sha256(f"{seed}:{sample}".encode("utf-8")).hexdigest()[:15], 16)


@dataclass
class Sample:
    """The rows of one sample, in member order."""

    rows: List[Dict[str, Any]]

    @property
    def id(self) -> str:
        return self.rows[0]["sample"]

    def failed(self) -> Optional[Dict[str, Any]]:
        """The first quarantined member row, if any (ingest already quarantines whole samples)."""
        return next((r for r in self.rows if r["status"] != OK), None)

    def as_dict(self, seed: str) -> Dict[str, Any]:
        first = self.rows[0]
        out: Dict[str, Any] = {"__key__": self.id, "__split__": first["split"], "__label__": first["label"],
                               "__seed__": sample_seed(seed, self.id)}
        for r in self.rows:
            out[r["member"]] = r["content"]
        return out

    def base(self) -> Dict[str, Any]:
        """The contract columns of the sample's output row."""
        first = self.rows[0]
        member = first["member"] or ""
        path = first["path"][: -len(member) - 1] if member and first["path"] and first["path"].endswith("." + member) \
            else first["path"]
        digests = [(r["member"], r["sha256"]) for r in self.rows]
        sha = sample_content_key(digests) if all(d for _, d in digests) else None
        return {"key": first["key"], "split": first["split"], "label": first["label"], "path": path, "sha256": sha,
                "status": OK, "error": None, "sample": self.id}


def samples_in(batches: Iterable[pa.RecordBatch]) -> Iterator[Sample]:
    """Consecutive rows with the same sample id, across batch boundaries."""
    current: List[Dict[str, Any]] = []
    for batch in batches:
        for row in batch.select(list(INPUT_COLUMNS)).to_pylist():
            if current and row["sample"] != current[0]["sample"]:
                yield Sample(current)
                current = []
            current.append(row)
    if current:
        yield Sample(current)


def error_reason(exc: BaseException) -> str:
    """The exception's type, message and the last frame of its traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"[:1000]


def to_row(base: Dict[str, Any], result: Any, fields: List[pa.Field]) -> Dict[str, Any]:
    """The output row for a function's result: members (bytes) and typed scalar fields."""
    row = dict(base, members=None, **{f.name: None for f in fields})
    if result is None:
        row["status"], row["error"] = FILTERED, "the map function returned None"
        return row
    if not isinstance(result, dict):
        row["status"], row["error"] = MAP_ERROR, f"the map function returned {type(result).__name__}, expected dict or None"
        return row
    typed = {f.name: f for f in fields}
    members: List[Tuple[str, bytes]] = []
    odd = [name for name in result if not isinstance(name, str)]
    if odd:
        row["status"], row["error"] = MAP_ERROR, (f"key {odd[0]!r} ({type(odd[0]).__name__}): expected string keys "
                                                  "(member names or fields of --schema)")
        return row
    for name, value in sorted(result.items()):
        if name.startswith("__"):
            continue
        if name in typed:
            try:
                pa.array([value], typed[name].type)
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
                row["status"] = MAP_ERROR
                row["error"] = f"field {name!r}: expected {typed[name].type} per --schema, got {value!r:.80} ({exc})"
                return row
            row[name] = value
        elif isinstance(value, (bytes, bytearray, memoryview)):
            if not MEMBER_NAME.match(name):
                row["status"] = MAP_ERROR
                row["error"] = (f"member {name!r}: expected a name of letters, digits, '.', '_' or '-' that does "
                                "not start with '.' (it becomes a file name)")
                return row
            members.append((name, bytes(value)))
        else:
            row["status"] = MAP_ERROR
            row["error"] = (f"field {name!r}: {type(value).__name__} is neither bytes (an output member) nor a "
                            "field of --schema")
            return row
    row["members"] = members or None
    return row


def mapped_batches(batches: Iterable[pa.RecordBatch], function: Callable, fields: List[pa.Field], seed: str,
                   batched: bool = False, batch_samples: int = 64,
                   checkpoint: Callable[[int], None] = lambda samples: None) -> Iterator[pa.RecordBatch]:
    """Rows sorted by (sample, member) -> one output row per sample (output_schema).

    checkpoint(samples so far) runs after every sample (a test hook for task failures).
    """
    schema = output_schema(fields)
    pending: List[Sample] = []

    def flush(group: List[Sample]) -> pa.RecordBatch:
        rows = []
        ready = [s for s in group if s.failed() is None]
        results: Dict[int, Any] = {}
        errors: Dict[int, str] = {}
        if batched and ready:
            try:
                out = function([s.as_dict(seed) for s in ready])
                if not isinstance(out, list) or len(out) != len(ready):
                    raise TypeError(f"the batch function returned {type(out).__name__} of "
                                    f"{len(out) if isinstance(out, list) else '?'} items for {len(ready)} samples")
                results = {id(s): r for s, r in zip(ready, out)}
            except Exception as exc:  # noqa: BLE001 - the user's code failing is data, not a failed task
                errors = {id(s): error_reason(exc) for s in ready}
        for sample in group:
            base = sample.base()
            failed = sample.failed()
            if failed is not None:
                rows.append(dict(base, status=failed["status"], error=failed["error"], members=None,
                                 **{f.name: None for f in fields}))
                continue
            if batched:
                if id(sample) in errors:
                    rows.append(dict(base, status=MAP_ERROR, error=errors[id(sample)], members=None,
                                     **{f.name: None for f in fields}))
                    continue
                result = results[id(sample)]
            else:
                try:
                    result = function(sample.as_dict(seed))
                except Exception as exc:  # noqa: BLE001 - the user's code failing is data, not a failed task
                    rows.append(dict(base, status=MAP_ERROR, error=error_reason(exc), members=None,
                                     **{f.name: None for f in fields}))
                    continue
            rows.append(to_row(base, result, fields))
        return pa.RecordBatch.from_pylist(rows, schema=schema)

    for done, sample in enumerate(samples_in(batches), 1):
        checkpoint(done)
        pending.append(sample)
        if len(pending) >= batch_samples:
            yield flush(pending)
            pending = []
    if pending:
        yield flush(pending)
