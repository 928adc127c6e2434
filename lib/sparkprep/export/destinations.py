"""Where exported files go: a local directory or an S3 prefix, with safe publishing.

Every file is written under an attempt-unique temporary name and then published under
its final, deterministic name, so a failed, retried or speculative task never leaves a
partial or duplicate file:
- local: a hidden temporary file in the final directory, then an atomic rename;
- S3 (boto3, any S3-compatible endpoint): a local temporary file, then one upload; S3
  makes an object visible only when its upload completes, and boto3 aborts failed
  multipart uploads.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from typing import Dict, Iterable, List, Optional, Tuple

from sparkprep.spark.ownership import create_exclusive_file, create_exclusive_s3
from sparkprep.uris import is_local, qualify

TEMP_MARKER = ".tmp-"


def open_destination(uri: str, s3_endpoint: Optional[str] = None) -> "LocalDestination | S3Destination":
    if is_local(uri):
        return LocalDestination(qualify(uri)[len("file:"):])
    if uri.startswith("s3://"):
        return S3Destination(uri, s3_endpoint)
    raise ValueError(f"expected a local path or s3://bucket/prefix, got {uri!r}")


def read_optional(uri: str, name: str, s3_endpoint: Optional[str] = None) -> Optional[str]:
    """The text of `name` under `uri`, or None where it is missing or the store is not one a destination
    opens (hdfs://, s3a:// and the like: read through Spark, not here)."""
    if not (is_local(uri) or uri.startswith("s3://")):
        return None
    return open_destination(uri, s3_endpoint).read_text(name)


def _hashed(chunks: Iterable[bytes], sink) -> Tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        sink.write(chunk)
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


class LocalDestination:
    def __init__(self, root: str):
        self.root = root.rstrip("/")

    def publish(self, rel: str, chunks: Iterable[bytes], attempt: str) -> Tuple[int, str]:
        """Stream chunks to <root>/<rel> through a temporary file; returns (bytes, sha256)."""
        final = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        temp = os.path.join(os.path.dirname(final), f".{os.path.basename(final)}{TEMP_MARKER}{attempt}")
        try:
            with open(temp, "wb") as handle:
                result = _hashed(chunks, handle)
            os.replace(temp, final)
        except BaseException:
            if os.path.exists(temp):
                os.remove(temp)
            raise
        return result

    def write_text(self, rel: str, text: str) -> None:
        self.publish(rel, [text.encode("utf-8")], f"driver-{os.getpid()}")

    def read_text(self, rel: str) -> Optional[str]:
        try:
            with open(os.path.join(self.root, rel), encoding="utf-8") as handle:
                return handle.read()
        except (OSError, UnicodeDecodeError):
            return None

    def read_bytes(self, rel: str) -> Optional[bytes]:
        try:
            with open(os.path.join(self.root, rel), "rb") as handle:
                return handle.read()
        except OSError:
            return None

    def create_exclusive(self, rel: str, text: str) -> bool:
        """Create a file only if it does not exist (O_EXCL: atomic); False if it does."""
        return create_exclusive_file(os.path.join(self.root, rel), text)

    def names(self) -> List[str]:
        """The top-level entries of the directory."""
        return sorted(os.listdir(self.root)) if os.path.isdir(self.root) else []

    def exists(self, rel: str) -> bool:
        return os.path.lexists(os.path.join(self.root, rel))

    def sizes(self) -> Dict[str, int]:
        """Every regular file below the root (relative path -> size), in one walk."""
        found: Dict[str, int] = {}
        for folder, _, files in os.walk(self.root):
            for name in files:
                path = os.path.join(folder, name)
                info = os.lstat(path)
                if stat.S_ISREG(info.st_mode):
                    found[os.path.relpath(path, self.root)] = info.st_size
        return found

    def move(self, src: str, dst: str) -> None:
        """Rename a file inside the destination, replacing dst atomically."""
        final = os.path.join(self.root, dst)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(os.path.join(self.root, src), final)

    def delete_tree(self, rel: str) -> None:
        shutil.rmtree(os.path.join(self.root, rel), ignore_errors=True)

    def is_file(self, rel: str = "") -> bool:
        return os.path.isfile(os.path.join(self.root, rel) if rel else self.root)

    def delete(self, rel: str) -> None:
        os.remove(os.path.join(self.root, rel))
        parent = os.path.dirname(os.path.join(self.root, rel))
        while parent != self.root and os.path.isdir(parent) and not os.listdir(parent):
            os.rmdir(parent)
            parent = os.path.dirname(parent)


class S3Destination:
    def __init__(self, uri: str, endpoint: Optional[str] = None):
        self.bucket, _, prefix = uri[len("s3://"):].partition("/")
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import boto3

            self._client = boto3.client("s3", endpoint_url=self.endpoint)
        return self._client

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def publish(self, rel: str, chunks: Iterable[bytes], attempt: str) -> Tuple[int, str]:
        with tempfile.NamedTemporaryFile(prefix=f"sparkprep{TEMP_MARKER}{attempt}-", suffix=".part") as handle:
            result = _hashed(chunks, handle)
            handle.flush()
            self.client.upload_file(handle.name, self.bucket, self._key(rel))
        return result

    def write_text(self, rel: str, text: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(rel), Body=text.encode("utf-8"))

    def read_text(self, rel: str) -> Optional[str]:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(rel))["Body"].read().decode("utf-8")
        except (ClientError, UnicodeDecodeError):
            return None

    def read_bytes(self, rel: str) -> Optional[bytes]:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(rel))["Body"].read()
        except ClientError:
            return None

    def create_exclusive(self, rel: str, text: str) -> bool:
        """PUT only if the key does not exist (If-None-Match: *, S3's conditional write); False if it does."""
        return create_exclusive_s3(self.bucket, self._key(rel), text, self.client)

    def names(self) -> List[str]:
        """The top-level names below the prefix (files, and 'directories' of deeper keys)."""
        start = len(self.prefix) + 1 if self.prefix else 0
        return sorted({o["Key"][start:].split("/", 1)[0] for o in self._objects()})

    def exists(self, rel: str) -> bool:
        return self.is_file(rel)

    def sizes(self) -> Dict[str, int]:
        """Every object below the prefix (relative key -> size), from the listing (1,000 keys a request)."""
        start = len(self.prefix) + 1 if self.prefix else 0
        return {o["Key"][start:]: o["Size"] for o in self._objects()}

    def move(self, src: str, dst: str) -> None:
        """Server-side copy to dst, then delete src: dst appears whole or not at all."""
        self.client.copy({"Bucket": self.bucket, "Key": self._key(src)}, self.bucket, self._key(dst))
        self.delete(src)

    def delete_tree(self, rel: str) -> None:
        start = len(self.prefix) + 1 if self.prefix else 0
        for key in [o["Key"] for o in self._objects() if o["Key"][start:].startswith(rel.rstrip("/") + "/")]:
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def _objects(self):
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else "")
        for page in pages:
            yield from page.get("Contents", [])

    def is_file(self, rel: str = "") -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(rel) if rel else self.prefix)
            return True
        except ClientError:
            return False

    def delete(self, rel: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(rel))
