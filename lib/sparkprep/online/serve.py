"""One request through the recorded transform, whatever carries it (S3 Object Lambda, a Lambda
Function URL or API Gateway, the ASGI app): configuration, query overrides, status codes.

Every outcome is a Reply; nothing here raises for a request, so a handler never crashes.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping, Optional, Sequence

from sparkprep.online import store
from sparkprep.online.recipe import BadImage, RecipeError, Transform, load_transform
from sparkprep.statuses import TOO_LARGE

LOG = logging.getLogger("sparkprep.online")
# The recipe flags a request may change (query spellings). Augmentation and the seed are not
# among them: a request gets the original.
OVERRIDES = ("size", "resize", "resample", "mode", "background", "encode", "draft", "depth-scale")
# Query parameters S3 itself (or a presigned URL) puts on a GET: never transform flags.
S3_QUERY = ("versionid", "partnumber", "response-content-type", "response-content-disposition",
            "response-content-encoding", "response-content-language", "response-cache-control", "response-expires")
DEFAULT_MAX_BYTES = 64 << 20  # a larger original is refused (413) before it is read


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
    def error(cls, status: int, code: str, message: str) -> "Reply":
        body = json.dumps({"error": code, "message": message}).encode("utf-8")
        return cls(status, body, "application/json", code, message)


@dataclass(frozen=True)
class Settings:
    """A deployment's configuration: the recipe, and what requests may do with it."""

    transform: Transform
    allow_overrides: bool = False
    max_bytes: int = DEFAULT_MAX_BYTES
    bucket: Optional[str] = None  # the HTTP endpoint's source bucket (Object Lambda gets a URL instead)
    prefix: str = ""


def settings_from(payload: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> Settings:
    """Settings from a JSON configuration (an Object Lambda access point's payload), else the
    environment ($SPARKPREP_TRANSFORM, $SPARKPREP_ALLOW_OVERRIDES, $SPARKPREP_MAX_BYTES,
    $SPARKPREP_MAX_PIXELS, $SPARKPREP_BUCKET, $SPARKPREP_PREFIX). RecipeError or ValueError when wrong.

    The payload is a JSON object {"transform": <table URI | spec JSON object>, "digest": ...,
    "allow_overrides": bool, "max_bytes": int, "max_pixels": int}, or just a table URI.
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
                  "max_bytes": env.get("SPARKPREP_MAX_BYTES"), "max_pixels": env.get("SPARKPREP_MAX_PIXELS"),
                  "bucket": env.get("SPARKPREP_BUCKET"), "prefix": env.get("SPARKPREP_PREFIX", "")}
    unknown = sorted(set(config) - {"transform", "digest", "allow_overrides", "max_bytes", "max_pixels", "bucket",
                                    "prefix"})
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
    return Settings(transform, allow == "true", _number(config.get("max_bytes"), "max_bytes") or DEFAULT_MAX_BYTES,
                    config.get("bucket") or None, str(config.get("prefix") or "").strip("/"))


def _number(value, name: str) -> Optional[int]:
    if value in (None, ""):
        return None
    if not str(value).strip().isdigit() or int(value) <= 0:
        raise ValueError(f"configuration: {name}: expected a positive whole number, got {value!r}")
    return int(value)


def reply(settings: Settings, fetch: Callable[[int], bytes], query: Mapping[str, Sequence[str]]) -> Reply:
    """Fetch the original (fetch(max_bytes) raises store.Missing / store.TooLarge), apply the recipe
    with the query's overrides, and say how it went:

    400 a bad or unknown parameter; 403 overrides asked where the configuration forbids them;
    404 (or the store's own status) passed through; 413 an original over max_bytes;
    422 not an image this recipe can transform (the quarantine reason); 500 a bug, logged.
    """
    try:
        transform = requested(settings, query)
    except PermissionError as exc:
        return Reply.error(403, "AccessDenied", str(exc))
    except ValueError as exc:
        return Reply.error(400, "InvalidArgument", str(exc))
    try:
        raw = fetch(settings.max_bytes)
    except store.Missing as missing:
        return Reply.error(missing.status, missing.code, missing.message)
    except store.TooLarge as large:
        return Reply.error(413, "EntityTooLarge", f"{TOO_LARGE}: the original is over {large.limit} bytes")
    try:
        body = transform(raw)
    except BadImage as bad:
        return Reply.error(422, "UnprocessableEntity", str(bad))
    except Exception as exc:  # noqa: BLE001 - a bug must answer 500, not crash the function
        LOG.exception("transform failed")
        return Reply.error(500, "InternalError", f"{type(exc).__name__}: {exc}")
    return Reply(200, body, transform.content_type, headers={"x-sparkprep-transform": transform.digest})


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


def settings_or_reply(payload: Optional[str] = None):
    """(Settings, None), or (None, a 500 Reply naming the configuration problem)."""
    try:
        return settings_from(payload), None
    except (RecipeError, ValueError) as exc:
        LOG.error("configuration: %s", exc)
        return None, Reply.error(500, "InvalidConfiguration", str(exc))
