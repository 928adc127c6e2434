"""The workers read the bytes themselves: (uri, size) rows in, (path, length, content, status,
error) rows out, for catalog_batches. For a manifest, or s3:// input where Spark has no s3a.

Each task fetches with a bounded thread pool (small GETs are latency-bound: ~20-50 ms each on
S3, so one thread per object in flight hides it). botocore retries throttling (503 SlowDown) and
transient errors with backoff. An object that cannot be read (403, 404, a size that differs
from the manifest's) becomes a row with a status and a reason, never a failed task.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import pyarrow as pa

from sparkprep.statuses import UNREADABLE
from sparkprep.uris import is_local, qualify

FETCHED_SCHEMA = pa.schema([
    pa.field("path", pa.string()),
    pa.field("length", pa.int64()),
    pa.field("content", pa.binary()),
    pa.field("status", pa.string()),   # null: read (catalog_row probes it); else why not
    pa.field("error", pa.string()),
])
DEFAULT_CONCURRENCY = 8  # measured (scripts/bench_fetch.py): boto3 calls are GIL-bound past ~8 threads


@dataclass(frozen=True)
class FetchSettings:
    """Plain values, so they pickle to any executor."""

    concurrency: int = DEFAULT_CONCURRENCY
    max_file_bytes: int = 256 << 20
    endpoint: Optional[str] = None   # --s3-endpoint, else boto3's own ($AWS_ENDPOINT_URL_S3, ...)
    max_attempts: int = 8            # retries per object after the first GET (botocore's adaptive mode:
    #                                  throttling, 5xx, connection resets), with exponential backoff


def fetched_batches(batches: Iterator[pa.RecordBatch], settings: FetchSettings) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: each input batch (uri, size) becomes one batch of FETCHED_SCHEMA, same order."""
    with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
        for batch in batches:
            uris, sizes = batch.column("uri").to_pylist(), batch.column("size").to_pylist()
            results = list(pool.map(functools.partial(fetch_one, settings=settings), uris, sizes))
            yield pa.RecordBatch.from_arrays(
                [pa.array([r[i] for r in results], f.type) for i, f in enumerate(FETCHED_SCHEMA)],
                schema=FETCHED_SCHEMA)


def fetch_one(uri: str, size: Optional[int], settings: FetchSettings
              ) -> Tuple[str, Optional[int], Optional[bytes], Optional[str], Optional[str]]:
    """(path, length, content, status, error) of one object; never raises for the object's sake.

    Objects over max_file_bytes are not read (catalog_row records them as too_large); a size
    that differs from the listing's means the object changed since it was listed: unreadable.
    """
    path = qualify(uri) if is_local(uri) else uri
    if size is not None and size > settings.max_file_bytes:
        return path, size, None, None, None
    if size == 0:
        return path, 0, b"", None, None
    try:
        length, data = _read_local(path, settings.max_file_bytes) if is_local(uri) else _get_s3(uri, settings)
    except _ObjectError as exc:
        return path, size, None, UNREADABLE, str(exc)
    if size is not None and length != size:
        return path, size, None, UNREADABLE, (f"{length} bytes, but the listing says {size}: the object "
                                              "changed since it was listed")
    if data is None:  # over max_file_bytes, by the store's own length: never read (catalog_row: too_large)
        return path, length, None, None, None
    return path, length, data, None, None


class _ObjectError(Exception):
    """Why one object could not be read (its status and the store's code)."""


def _read_local(path: str, max_bytes: int) -> Tuple[int, Optional[bytes]]:
    """(length, bytes), or (length, None) past max_bytes: the size is checked before anything is read."""
    try:
        with open(path[len("file:"):], "rb") as handle:
            length = os.fstat(handle.fileno()).st_size
            if length > max_bytes:
                return length, None
            data = handle.read()
            return len(data), data
    except OSError as exc:
        raise _ObjectError(f"{type(exc).__name__}: {exc.strerror or exc}") from None


def _get_s3(uri: str, settings: FetchSettings) -> Tuple[int, Optional[bytes]]:
    """(length, bytes) of an object, or (length, None) when the GET's Content-Length is over
    max_file_bytes: the body is closed unread (a manifest row without a size never pulls a huge object)."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = uri.split("://", 1)[1].partition("/")
    try:
        response = s3_client(settings.endpoint, settings.max_attempts, settings.concurrency).get_object(
            Bucket=bucket, Key=key)
        length = int(response.get("ContentLength") or 0)
        if length > settings.max_file_bytes:
            response["Body"].close()
            return length, None
        data = response["Body"].read()
        return len(data), data
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        raise _ObjectError(f"{status} {error.get('Code')}: {error.get('Message') or exc}") from None
    except BotoCoreError as exc:  # retries exhausted on a connection error, a read timeout ...
        raise _ObjectError(f"{type(exc).__name__}: {exc}") from None


@functools.lru_cache(maxsize=4)
def s3_client(endpoint: Optional[str], max_attempts: int, pool_size: int):
    """One client per worker process and settings (boto3 clients are thread-safe): its connection
    pool as large as the thread pool, adaptive retries with backoff."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint,
        config=Config(max_pool_connections=pool_size, retries={"mode": "adaptive", "max_attempts": max_attempts}))
