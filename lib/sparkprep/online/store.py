"""Bytes of a local file or an S3 object, for the online transform: no pyarrow, no Spark.

S3 goes through boto3, which a Lambda Python runtime already has. Its endpoint follows
boto3's own settings ($AWS_ENDPOINT_URL_S3, else $AWS_ENDPOINT_URL), as the exports do.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import List, Optional, Tuple
from urllib.parse import unquote, urlparse

from sparkprep.uris import is_local

S3_SCHEMES = ("s3", "s3a", "s3n")


@dataclass
class ObjectError(Exception):
    """The original could not be read: the status and S3 error code to pass on, and why."""

    uri: str
    status: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.uri}: {self.status} {self.code}: {self.message}"


@dataclass
class Missing(ObjectError):
    """The object is not there (or not readable to us): S3's own status and code (404, 403 ...)."""

    status: int = 404
    code: str = "NoSuchKey"
    message: str = "The specified key does not exist."


@dataclass
class TooLarge(Exception):
    uri: str
    limit: int

    def __str__(self) -> str:
        return f"{self.uri}: larger than {self.limit} bytes"


@dataclass
class Unavailable(ObjectError):
    """The store did not answer in time, or its answer broke off: 504 (a timeout) or 502."""

    status: int = 502
    code: str = "BadGateway"
    message: str = "the original could not be read"


def unavailable(uri: str, exc: BaseException) -> Unavailable:
    """What a failed read becomes: 504 for a timeout, 502 for anything else (a reset, a cut body)."""
    timed_out = isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower()
    return Unavailable(uri, 504 if timed_out else 502, "GatewayTimeout" if timed_out else "BadGateway",
                       f"reading the original: {type(exc).__name__}")


def endpoint_url() -> Optional[str]:
    """The S3 endpoint boto3 will use from the environment, if any (for a loopback store in tests)."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_client(endpoint: Optional[str] = None):
    """One boto3 S3 client per endpoint per process (clients are thread-safe and slow to build)."""
    return _client(endpoint or endpoint_url())


@functools.lru_cache(maxsize=4)
def _client(endpoint: Optional[str]):
    import boto3
    from botocore.config import Config

    # A custom endpoint is one host: no per-request host prefixes (WriteGetObjectResponse's route).
    config = Config(inject_host_prefix=False, retries={"mode": "standard"}) if endpoint else None
    return boto3.client("s3", endpoint_url=endpoint, config=config)


def s3_location(uri: str) -> Tuple[str, str]:
    """(bucket, key) of an s3:// (s3a://, s3n://) URI."""
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def is_s3(uri: str) -> bool:
    return urlparse(uri).scheme in S3_SCHEMES


def local_path(uri: str) -> str:
    return unquote(urlparse(uri).path) if uri.startswith("file:") else uri


def join(uri: str, *names: str) -> str:
    return "/".join([uri.rstrip("/"), *names])


def read(uri: str, max_bytes: Optional[int] = None) -> bytes:
    """The whole object; Missing when it is not there, TooLarge past max_bytes (never read whole)."""
    if is_s3(uri):
        bucket, key = s3_location(uri)
        return get_object(bucket, key, max_bytes)
    if not is_local(uri):
        raise ValueError(f"expected a local path or an s3:// URI, got {uri!r}")
    try:
        with open(local_path(uri), "rb") as handle:
            data = handle.read(max_bytes + 1) if max_bytes is not None else handle.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise Missing(uri) from None
    except PermissionError:
        raise Missing(uri, 403, "AccessDenied", "permission denied") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise TooLarge(uri, max_bytes)
    return data


def get_object(bucket: str, key: str, max_bytes: Optional[int] = None, client=None,
               version_id: Optional[str] = None) -> bytes:
    """An S3 object's bytes (a given version of it, with version_id); Missing carries S3's own status
    and error code (404 NoSuchKey, 403 ...); Unavailable a timeout, a failed connection or a body
    shorter than its Content-Length (never transformed as if it were whole)."""
    from botocore.exceptions import BotoCoreError, ClientError

    uri = f"s3://{bucket}/{key}"
    asked = {"VersionId": version_id} if version_id else {}
    try:
        response = (client or s3_client()).get_object(Bucket=bucket, Key=key, **asked)
        length = int(response.get("ContentLength") or 0)
        if max_bytes is not None and length > max_bytes:
            response["Body"].close()
            raise TooLarge(uri, max_bytes)
        data = response["Body"].read()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500)
        raise Missing(uri, status, str(error.get("Code") or status), str(error.get("Message") or exc)) from None
    except (BotoCoreError, OSError) as exc:  # timeouts, refused connections, a body cut short
        raise unavailable(uri, exc) from None
    if len(data) != length:
        raise Unavailable(uri, 502, "BadGateway", f"the original arrived cut short ({len(data)} of {length} bytes)")
    return data


def read_tail(uri: str, count: int) -> bytes:
    """The last `count` bytes of a file or object (a parquet footer), without reading the rest."""
    if is_s3(uri):
        bucket, key = s3_location(uri)
        return s3_client().get_object(Bucket=bucket, Key=key, Range=f"bytes=-{count}")["Body"].read()
    with open(local_path(uri), "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - count))
        return handle.read()


def list_names(uri: str) -> List[str]:
    """The names directly under a directory or prefix (files and subdirectories), sorted."""
    if is_s3(uri):
        bucket, key = s3_location(uri)
        prefix = key.rstrip("/") + "/" if key else ""
        names = set()
        for page in s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix,
                                                                         Delimiter="/"):
            names.update(p["Prefix"][len(prefix):].rstrip("/") for p in page.get("CommonPrefixes", []))
            names.update(o["Key"][len(prefix):] for o in page.get("Contents", []))
        return sorted(n for n in names if n)
    path = local_path(uri)
    return sorted(os.listdir(path)) if os.path.isdir(path) else []
