"""The recipe a processed table recorded, applied to new bytes: the same code as the offline job.

    t = load_transform("s3://bucket/processed")   # or a local path, a spec JSON, a run report
    t(raw) == the image bytes the preprocess job wrote for aug_index 0 of the same input bytes
    t.augmented(raw, key, i) == copy i of that row

Pure: Pillow and numpy (pyarrow only to read a parquet footer when a table has no run report).
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union
from urllib.parse import unquote

import PIL
from PIL import Image

from sparkprep.images import ops as image_ops
from sparkprep.images import probe as image_probe
from sparkprep.online import store
from sparkprep.preprocess.transform import (TRANSFORM_METADATA_KEY, Output, TransformSpec, augmented_copy,
                                            decode_upright, original_image, spec_with, transform_sample)
from sparkprep.statuses import EMPTY, OK

RUN_REPORT = "_run_report.json"
SPARK_ROW_METADATA = b"org.apache.spark.sql.parquet.row.metadata"
CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "raw": "application/octet-stream"}


class RecipeError(ValueError):
    """The recipe cannot be loaded: the message names the URI (or the spec) and why."""


class BadImage(ValueError):
    """The input bytes are not an image this recipe can transform; `status` is the offline
    quarantine status (corrupt, invalid, decompression_bomb, empty) and `reason` its reason."""

    def __init__(self, status: str, reason: str):
        super().__init__(f"{status}: {reason}")
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class Transform:
    """A recorded recipe as a callable: raw image bytes in, the offline job's bytes out."""

    spec: TransformSpec
    source: str = "<spec>"  # where the recipe was read
    max_pixels: int = image_probe.DEFAULT_MAX_PIXELS  # past this, BadImage('decompression_bomb')
    recorded_versions: Mapping[str, str] = field(default_factory=dict)  # the writing run's versions

    @property
    def digest(self) -> str:
        return self.spec.digest()

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.spec.encode]

    def __call__(self, raw: bytes) -> bytes:
        """The encoded original (aug_index 0), byte for byte what the offline job wrote (without the
        channel statistics `output` also computes: a request needs only the bytes)."""
        return self._guarded(lambda: image_ops.encode(original_image(self._upright(raw), self.spec),
                                                      self.spec.encode, self.spec.quality), raw)

    def output(self, raw: bytes) -> Output:
        """The original with the processed table's other columns (width, height, channels, mean, std)."""
        return self._guarded(lambda: transform_sample(raw, "", 0, self.spec, self.max_pixels)[0], raw)

    def to_image(self, raw: bytes, as_stored: bool = False) -> Image.Image:
        """The original as a PIL image: its pixels before encoding, or with `as_stored` the pixels a
        reader of the processed table decodes (after the JPEG/WebP round trip)."""
        if as_stored and self.spec.encode != "raw":
            stored = Image.open(io.BytesIO(self(raw)))
            stored.load()
            return stored
        return self._guarded(lambda: original_image(self._upright(raw), self.spec), raw)

    def augmented(self, raw: bytes, key: str, index: int) -> bytes:
        """Copy `index` of the sample whose split key is `key` (0 is the original), as the offline
        job wrote it with --copies >= index."""
        if index < 0 or int(index) != index:
            raise ValueError(f"index: expected 0 (the original) or a copy number 1.., got {index!r}")
        if index == 0:
            return self(raw)
        fraction = self.spec.augment.min_side_fraction()
        return self._guarded(lambda: augmented_copy(self._upright(raw, fraction), key, int(index),
                                                    self.spec).image, raw)

    def with_overrides(self, values: Mapping[str, Any]) -> "Transform":
        """This recipe with some flags changed (flag spellings: size=128, mode=L); ValueError for a bad value."""
        return Transform(spec_with(self.spec, values), f"{self.source} with overrides", self.max_pixels,
                         self.recorded_versions)

    def for_pil(self) -> "PilTransform":
        """A torchvision-style transform: a callable on PIL images (see PilTransform)."""
        return PilTransform(self.spec)

    def pil_loader(self, path: str) -> Image.Image:
        """A torchvision `loader=` (ImageFolder, DatasetFolder): the file's bytes through the recipe,
        as the pixels a reader of the processed table decodes."""
        with open(path, "rb") as handle:
            return self.to_image(handle.read(), as_stored=True)

    def _upright(self, raw: bytes, fraction: float = 1.0) -> Image.Image:
        return decode_upright(raw, self.spec, fraction, self.max_pixels)

    def _guarded(self, work, raw: bytes):
        """work() on bytes the offline job would have accepted: the same header and end checks first
        (a PNG without IEND is `corrupt` offline, so it is here), and this transform's own pixel limit,
        checked per call (no process-wide setting, so threads with other limits cannot race)."""
        if not raw:
            raise BadImage(EMPTY, "zero-byte input")
        probe = image_probe.probe_image(raw, full=False, max_pixels=self.max_pixels)
        if probe.status != OK:
            raise BadImage(probe.status, probe.error or probe.status)
        try:
            return work()
        except Exception as exc:  # noqa: BLE001 - a bad image is BadImage; a bug in sparkprep re-raises
            raise BadImage(*image_probe.quarantine_or_raise(exc)) from None


@dataclass(frozen=True)
class PilTransform:
    """The recipe on an already-decoded PIL image, for torchvision `transforms.Compose([...])`.

    EXIF orientation, mode conversion, 16-bit scaling and resizing are the offline job's. What a
    decoded image no longer has, it cannot use: the reduced-scale JPEG decode (`draft`) and a PNG's
    sBIT bits. So the pixels match the offline job's when draft is off; for exact bytes, give the
    file's bytes to Transform (or use Transform.pil_loader). No torch import anywhere.
    """

    spec: TransformSpec

    def __call__(self, image: Image.Image) -> Image.Image:
        upright = image_ops.to_mode(image_ops.orient(image), self.spec.mode, self.spec.background,
                                    self.spec.depth_scale)
        return original_image(upright, self.spec)

    def __repr__(self) -> str:
        size = "x".join(map(str, self.spec.size))
        return f"SparkprepTransform(digest={self.spec.digest()}, size={size}, mode={self.spec.mode})"


Source = Union[str, Mapping[str, Any], TransformSpec]


def load_transform(source: Source, digest: Optional[str] = None, max_pixels: Optional[int] = None) -> Transform:
    """The recipe of a processed table (a local path or s3:// URI, parquet or Delta), a run report
    or spec JSON file, a spec JSON text or dict (as recorded, with its digest), or a TransformSpec.

    The recorded digest is checked against the recipe's fields, a recipe from a newer sparkprep is
    refused, and `digest` (when given) must be the recipe's. RecipeError names the source.
    """
    name = source if isinstance(source, str) else "<spec>"
    if isinstance(source, TransformSpec):
        record, versions, recorded_pixels = source.record(), {}, None
    elif isinstance(source, Mapping):
        record, versions, recorded_pixels = _from_document(dict(source), name)
    elif source.lstrip().startswith("{"):
        record, versions, recorded_pixels = _from_document(_json(source, "the spec JSON"), "<spec JSON>")
        name = "<spec JSON>"
    else:
        record, versions, recorded_pixels = _from_uri(source)
    try:
        spec = TransformSpec.from_record(record)
    except ValueError as exc:
        raise RecipeError(f"{name}: {exc}") from None
    if digest is not None and digest != spec.digest():
        raise RecipeError(f"{name} was processed with recipe {spec.digest()}, not the asked {digest}")
    pillow = versions.get("pillow")
    if pillow and pillow != PIL.__version__:
        warnings.warn(f"{name} was processed with Pillow {pillow}, and this process has Pillow {PIL.__version__}: "
                      "encoded bytes may differ from the table's", stacklevel=2)
    return Transform(spec, name, int(max_pixels or recorded_pixels or image_probe.DEFAULT_MAX_PIXELS), versions)


def _from_uri(uri: str):
    """(record, versions, max_pixels) from a table directory, a run report or a spec JSON file."""
    if uri.rstrip("/").endswith(".json"):
        return _from_document(_json(_read(uri, uri), uri), uri)
    try:
        report = _json(store.read(store.join(uri, RUN_REPORT)), store.join(uri, RUN_REPORT))
    except store.Missing:
        report = None
    except Exception as exc:  # noqa: BLE001 - no credentials, no network, a bad URI: say which source
        raise RecipeError(f"{uri}: cannot be read ({type(exc).__name__}: {exc})") from None
    if report is not None:
        return _from_document(report, uri)
    names = _names(uri)
    if not names:
        raise RecipeError(f"{uri}: no such table, run report or spec JSON")
    return _recipe_from_footer(uri, names), {}, None


def _from_document(document: dict, name: str):
    """A run report (with its `transform`, versions and --max-pixels) or a bare recorded spec."""
    if "job" in document and "config" in document:  # a run report
        if not isinstance(document.get("transform"), dict):
            raise RecipeError(f"{name}: the run report of jobs/{document.get('job')}.py records no transform; "
                              "expected a processed table (jobs/preprocess.py or jobs/pipeline.py --output)")
        config = document.get("config") or {}
        return document["transform"], document.get("versions") or {}, config.get("max_pixels")
    return document, {}, None


def _recipe_from_footer(uri: str, names) -> dict:
    """The `transform` column's metadata in the footer of one data file of the table."""
    data_file = _delta_data_file(uri) if "_delta_log" in names else _parquet_data_file(uri, names)
    if data_file is None:
        raise RecipeError(f"{uri}: no {RUN_REPORT} and no data files to read the recipe from")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise RecipeError(f"{uri}: no {RUN_REPORT}; reading the recipe from a parquet footer needs pyarrow "
                          "(or pass the spec JSON)") from None
    tail = store.read_tail(data_file, 8)
    if len(tail) < 8 or tail[4:] != b"PAR1":
        raise RecipeError(f"{data_file}: not a parquet file")
    footer = store.read_tail(data_file, int.from_bytes(tail[:4], "little") + 8)
    metadata = pq.read_schema(pa.BufferReader(b"PAR1" + footer)).metadata or {}
    row = json.loads(metadata.get(SPARK_ROW_METADATA, b"{}"))
    for column in row.get("fields", []):
        recorded = (column.get("metadata") or {}).get(TRANSFORM_METADATA_KEY)
        if column.get("name") == "transform" and recorded:
            return _json(recorded, f"{data_file} (transform column metadata)")
    raise RecipeError(f"{uri}: no {RUN_REPORT}, and its transform column records no recipe; expected a processed "
                      "table (jobs/preprocess.py or jobs/pipeline.py --output)")


def _parquet_data_file(uri: str, names) -> Optional[str]:
    for name in names:
        if name.startswith("split="):
            files = [n for n in _names(store.join(uri, name)) if n.endswith(".parquet")]
            if files:
                return store.join(uri, name, files[0])
    files = [n for n in names if n.endswith(".parquet")]
    return store.join(uri, files[0]) if files else None


def _delta_data_file(uri: str) -> Optional[str]:
    """A file the newest commit added (Delta paths are relative and percent-encoded)."""
    log = store.join(uri, "_delta_log")
    for commit in sorted((n for n in _names(log) if n.endswith(".json")), reverse=True):
        for line in store.read(store.join(log, commit)).decode("utf-8").splitlines():
            add = json.loads(line).get("add") if line.strip() else None
            if add and add.get("path"):
                path = unquote(add["path"])
                return path if "://" in path else store.join(uri, path)
    return None


def _names(uri: str):
    try:
        return store.list_names(uri)
    except Exception as exc:  # noqa: BLE001 - any failure to list is the user's URI: say which
        raise RecipeError(f"{uri}: cannot be listed ({exc})") from None


def _read(uri: str, name: str) -> bytes:
    try:
        return store.read(uri)
    except store.Missing as missing:
        raise RecipeError(f"{name}: {missing.status} {missing.code}: no such file or object") from None
    except Exception as exc:  # noqa: BLE001 - as above
        raise RecipeError(f"{name}: cannot be read ({type(exc).__name__}: {exc})") from None


def _json(data, name: str) -> dict:
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise RecipeError(f"{name}: not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise RecipeError(f"{name}: expected a JSON object, got {type(document).__name__}")
    return document
