"""One request through the recorded transform, whatever carries it (S3 Object Lambda, a Lambda
Function URL or API Gateway, the ASGI app): configuration, query overrides, limits, status codes.

Every outcome is a Reply; nothing here raises for a request, so a handler never crashes. What
went wrong inside (a configuration that does not load, a bug) is logged with a request id, and
the caller gets that id, never the detail (bucket names, credentials' errors).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

from sparkprep.online import store
from sparkprep.online.recipe import BadImage, Transform, load_transform
from sparkprep.statuses import TOO_LARGE

LOG = logging.getLogger("sparkprep.online")
# The recipe flags a request may change (query spellings). Augmentation and the seed are not
# among them: a request gets the original.
OVERRIDES = ("size", "resize", "resample", "mode", "background", "encode", "draft", "depth-scale")
# Query parameters S3 itself (or a presigned URL) puts on a GET: never transform flags.
S3_QUERY = ("versionid", "partnumber", "response-content-type", "response-content-disposition",
            "response-content-encoding", "response-content-language", "response-cache-control", "response-expires")
DEFAULT_MAX_BYTES = 64 << 20  # a larger original is refused (413) before it is read
# What one request may make, whatever its overrides ask: 2048 x 2048 pixels and 16 MiB of output by
# default (a 69-byte PNG asked for ?size=8192&encode=raw made 201 MB). The recipe's own size is
# always allowed: the limit is on what a caller may ask beyond it.
DEFAULT_MAX_OUTPUT_PIXELS = 2048 * 2048
DEFAULT_MAX_OUTPUT_BYTES = 16 << 20
DEFAULT_MAX_CONCURRENT = 4  # transforms at once in one ASGI process; more wait, up to MAX_WAITING each
MAX_WAITING = 4
FAILURE_TTL = 10.0  # seconds a configuration that failed to load is answered from memory


@dataclass(frozen=True)
class Reply:
    """What the handler answers: a body with status 200, or an error status, S3 error code and message."""

    status: int
    body: bytes = b""
    content_type: str = "application/octet-stream"
    error_code: Optional[str] = None
    message: Optional[str] = None
    headers: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def error(cls, status: int, code: str, message: str, request_id: Optional[str] = None) -> "Reply":
        body = json.dumps({"error": code, "message": message,
                           **({"request_id": request_id} if request_id else {})}).encode("utf-8")
        return cls(status, body, "application/json", code, message,
                   {"x-sparkprep-request-id": request_id} if request_id else {})

    @classmethod
    def internal(cls, status: int, code: str, what: str, detail: str) -> "Reply":
        """An error whose detail stays in the log: the caller gets a request id to quote."""
        request_id = uuid.uuid4().hex[:16]
        LOG.error("%s (request %s): %s", what, request_id, detail)
        return cls.error(status, code, f"{what}; the endpoint's log has the detail under request id {request_id}",
                         request_id)


@dataclass(frozen=True)
class Settings:
    """A deployment's configuration: the recipe, and what requests may do with it."""

    transform: Transform
    allow_overrides: bool = False
    max_bytes: int = DEFAULT_MAX_BYTES
    bucket: Optional[str] = None  # the HTTP endpoint's source bucket (Object Lambda gets a URL instead)
    prefix: str = ""
    max_output_pixels: int = DEFAULT_MAX_OUTPUT_PIXELS  # beyond the recipe's own size
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    max_concurrent: int = DEFAULT_MAX_CONCURRENT  # the ASGI app's transforms at once


def settings_from(payload: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> Settings:
    """Settings from a JSON configuration (an Object Lambda access point's payload), else the
    environment ($SPARKPREP_TRANSFORM, $SPARKPREP_ALLOW_OVERRIDES, $SPARKPREP_MAX_BYTES,
    $SPARKPREP_MAX_PIXELS, $SPARKPREP_MAX_OUTPUT_PIXELS, $SPARKPREP_MAX_OUTPUT_BYTES,
    $SPARKPREP_MAX_CONCURRENT, $SPARKPREP_BUCKET, $SPARKPREP_PREFIX). RecipeError or ValueError when wrong.

    The payload is a JSON object {"transform": <table URI | spec JSON object>, "digest": ...,
    "allow_overrides": bool, "max_bytes": int, "max_pixels": int, "max_output_pixels": int,
    "max_output_bytes": int, "max_concurrent": int}, or just a table URI.
    """
    return _cached_settings(payload or "", tuple(sorted((env if env is not None else os.environ).items())))


@functools.lru_cache(maxsize=8)
def _cached_settings(payload: str, env_items: tuple) -> Settings:  # loaded once per warm Lambda container
    env = dict(env_items)
    if payload.strip().startswith("{"):
        try:
            config = json.loads(payload)
        except ValueError as exc:
            raise ValueError(f"configuration payload: not JSON ({exc})") from None
    elif payload.strip():
        config = {"transform": payload.strip()}
    else:
        config = {"transform": env.get("SPARKPREP_TRANSFORM"), "digest": env.get("SPARKPREP_DIGEST"),
                  "allow_overrides": env.get("SPARKPREP_ALLOW_OVERRIDES", "false"),
                  "bucket": env.get("SPARKPREP_BUCKET"), "prefix": env.get("SPARKPREP_PREFIX", ""),
                  **{name: env.get(f"SPARKPREP_{name.upper()}") for name in LIMITS}}
    unknown = sorted(set(config) - {"transform", "digest", "allow_overrides", "bucket", "prefix", *LIMITS})
    if unknown:
        raise ValueError(f"configuration: unknown keys {', '.join(unknown)}")
    if not config.get("transform"):
        raise ValueError("configuration: expected \"transform\" (a processed table URI or a spec JSON), "
                         "or $SPARKPREP_TRANSFORM")
    transform = load_transform(config["transform"], digest=config.get("digest") or None,
                               max_pixels=_number(config.get("max_pixels"), "max_pixels"))
    allow = str(config.get("allow_overrides", False)).lower()
    if allow not in ("true", "false"):
        raise ValueError(f"configuration: allow_overrides: expected true or false, got {config['allow_overrides']!r}")
    limits = {name: _number(config.get(name), name) or default for name, default in LIMITS.items()
              if name != "max_pixels"}
    return Settings(transform, allow == "true", bucket=config.get("bucket") or None,
                    prefix=str(config.get("prefix") or "").strip("/"), **limits)


# The configurable limits and their defaults (max_pixels: the transform's decode limit, recorded
# by the table's run report unless set here).
LIMITS = {"max_bytes": DEFAULT_MAX_BYTES, "max_pixels": None, "max_output_pixels": DEFAULT_MAX_OUTPUT_PIXELS,
          "max_output_bytes": DEFAULT_MAX_OUTPUT_BYTES, "max_concurrent": DEFAULT_MAX_CONCURRENT}


def _number(value, name: str) -> Optional[int]:
    if value in (None, ""):
        return None
    if not str(value).strip().isdigit() or int(value) <= 0:
        raise ValueError(f"configuration: {name}: expected a positive whole number, got {value!r}")
    return int(value)


def reply(settings: Settings, fetch: Callable[[int], bytes], query: Mapping[str, Sequence[str]]) -> Reply:
    """Fetch the original (fetch(max_bytes) raises store.Missing, store.TooLarge or store.Unavailable),
    apply the recipe with the query's overrides, and say how it went:

    400 a bad or unknown parameter, or an output over the endpoint's limits; 403 overrides asked
    where the configuration forbids them; 404 (or the store's own status) passed through; 413 an
    original over max_bytes; 422 not an image this recipe can transform (the quarantine reason);
    502/504 the original could not be read (or came cut short); 500 a bug, logged with a request id.
    """
    try:
        transform = requested(settings, query)
        check_output_size(settings, transform)
    except PermissionError as exc:
        return Reply.error(403, "AccessDenied", str(exc))
    except ValueError as exc:
        return Reply.error(400, "InvalidArgument", str(exc))
    try:
        raw = fetch(settings.max_bytes)
    except store.ObjectError as failed:  # missing, denied, or the store failed: its status passed on
        return Reply.error(failed.status, failed.code, failed.message)
    except store.TooLarge as large:
        return Reply.error(413, "EntityTooLarge", f"{TOO_LARGE}: the original is over {large.limit} bytes")
    except Exception as exc:  # noqa: BLE001 - any other failure to read the original is an answer, not a crash
        return Reply.internal(502, "BadGateway", "the original could not be read", f"{type(exc).__name__}: {exc}")
    try:
        body = transform(raw)
    except BadImage as bad:
        return Reply.error(422, "UnprocessableEntity", str(bad))
    except Exception as exc:  # noqa: BLE001 - a bug must answer 500, not crash the function
        LOG.exception("transform failed")
        return Reply.internal(500, "InternalError", "the transform failed", f"{type(exc).__name__}: {exc}")
    if len(body) > settings.max_output_bytes:
        return Reply.error(413, "EntityTooLarge", f"the transformed image is {len(body)} bytes, over this endpoint's "
                                                  f"max_output_bytes {settings.max_output_bytes}")
    return Reply(200, body, transform.content_type, headers={"x-sparkprep-transform": transform.digest})


def check_output_size(settings: Settings, transform: Transform) -> None:
    """ValueError when the asked output has more pixels than the endpoint allows beyond its recipe,
    or raw pixels that could not fit max_output_bytes: refused before anything is fetched or decoded."""
    width, height = transform.spec.size
    own = settings.transform.spec.size
    limit = max(settings.max_output_pixels, own[0] * own[1])
    if width * height > limit:
        raise ValueError(f"size: {width}x{height} is {width * height} pixels, over this endpoint's limit of {limit} "
                         "(max_output_pixels)")
    if transform.spec.encode == "raw" and width * height * 4 > settings.max_output_bytes:
        raise ValueError(f"encode: raw pixels of {width}x{height} could take {width * height * 4} bytes, over this "
                         f"endpoint's max_output_bytes {settings.max_output_bytes}")


def requested(settings: Settings, query: Mapping[str, Sequence[str]]) -> Transform:
    """The configured transform with the query's overrides, checked by the CLI's own parsers.

    ValueError for a parameter that is neither a transform flag nor S3's; PermissionError when
    flags are given and the configuration does not allow overrides.
    """
    values: Dict[str, str] = {}
    for name, given in query.items():
        lowered = name.lower()
        if lowered.startswith("x-amz-") or lowered in S3_QUERY:
            continue
        if name not in OVERRIDES:
            raise ValueError(f"{name}: expected a transform parameter ({', '.join(OVERRIDES)})")
        if len(given) != 1:
            raise ValueError(f"{name}: expected one value, got {len(given)}")
        values[name.replace("-", "_")] = given[0]
    if not values:
        return settings.transform
    if not settings.allow_overrides:
        raise PermissionError(f"this endpoint serves recipe {settings.transform.digest} only; overrides "
                              f"({', '.join(sorted(values))}) are not allowed by its configuration")
    return settings.transform.with_overrides(values)


_FAILED: Dict[Tuple[str, tuple], Tuple[float, str]] = {}  # a broken configuration -> (when it failed, why)
_FAILED_LOCK = threading.Lock()


def settings_or_reply(payload: Optional[str] = None, env: Optional[Mapping[str, str]] = None):
    """(Settings, None), or (None, a generic 500 Reply with a request id; the cause goes to the log).

    A configuration that failed to load is not loaded again for FAILURE_TTL seconds: a broken
    deployment does not read its recipe source (S3) on every request.
    """
    key = (payload or "", tuple(sorted((env if env is not None else os.environ).items())))
    with _FAILED_LOCK:
        failed = _FAILED.get(key)
    if failed and time.monotonic() - failed[0] < FAILURE_TTL:
        return None, Reply.internal(500, "InvalidConfiguration", "the endpoint's configuration does not load",
                                    f"{failed[1]} (cached for {FAILURE_TTL:.0f} s)")
    try:
        return settings_from(payload, env), None
    except Exception as exc:  # noqa: BLE001 - RecipeError, ValueError, or any failure to reach the source
        why = f"{type(exc).__name__}: {exc}"
        with _FAILED_LOCK:
            _FAILED[key] = (time.monotonic(), why)
        return None, Reply.internal(500, "InvalidConfiguration", "the endpoint's configuration does not load", why)
