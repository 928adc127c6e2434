"""Small file operations through Hadoop's FileSystem, so any URI Spark writes to works."""

from __future__ import annotations

import re
from typing import List, Optional

from pyspark.sql import SparkSession

from sparkprep.spark.ownership import create_exclusive_file, create_exclusive_s3


class HadoopFS:
    """exists / rename / delete / write_text on Hadoop URIs, via the session's JVM."""

    def __init__(self, spark: SparkSession):
        self._jvm = spark._jvm
        self._conf = spark._jsc.hadoopConfiguration()

    def _path(self, uri: str):
        return self._jvm.org.apache.hadoop.fs.Path(uri)

    def _fs(self, uri: str):
        return self._path(uri).getFileSystem(self._conf)

    def qualify(self, uri: str) -> str:
        """The fully qualified URI (file:/abs/path for local paths)."""
        path = self._path(uri)
        return path.getFileSystem(self._conf).makeQualified(path).toString()

    def readable(self, uri: str) -> bool:
        """Whether Hadoop has a FileSystem for the URI's scheme (s3:// needs s3a's jars, as on EMR)."""
        scheme = uri.split("://", 1)[0] if "://" in uri else "file"
        try:
            self._jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass(scheme, self._conf)
            return True
        except Exception:  # noqa: BLE001 - py4j's UnsupportedFileSystemException: no class for the scheme
            return False

    def exists(self, uri: str) -> bool:
        return bool(self._fs(uri).exists(self._path(uri)))

    def is_dir(self, uri: str) -> bool:
        return bool(self._fs(uri).getFileStatus(self._path(uri)).isDirectory())

    def is_empty_dir(self, uri: str) -> bool:
        fs, path = self._fs(uri), self._path(uri)
        return bool(fs.getFileStatus(path).isDirectory()) and len(fs.listStatus(path)) == 0

    def rename(self, src: str, dst: str) -> None:
        if not self._fs(src).rename(self._path(src), self._path(dst)):
            raise OSError(f"could not rename {src} to {dst}")

    def delete(self, uri: str) -> None:
        self._fs(uri).delete(self._path(uri), True)

    def children(self, uri: str) -> List[str]:
        """Qualified URIs of the entries directly inside a directory (empty if it does not exist)."""
        if not self.exists(uri):
            return []
        return sorted(status.getPath().toString() for status in self._fs(uri).listStatus(self._path(uri)))

    def read_text(self, uri: str) -> Optional[str]:
        """A small file's text, or None when it does not exist or cannot be read."""
        try:
            stream = self._fs(uri).open(self._path(uri))
            try:
                data = self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)
            finally:
                stream.close()
        except Exception:  # noqa: BLE001 - missing or unreadable: the caller decides
            return None
        return bytes(data).decode("utf-8", errors="replace")

    def create_exclusive(self, uri: str, text: str) -> bool:
        """Create a file only if it does not exist; False if it does.

        Atomic on local disks (O_EXCL), HDFS, GCS and ABFS (their create(overwrite=false) is a
        precondition on the store). Not on S3A or EMRFS, where it is a check followed by a PUT:
        there the object is created with boto3's conditional PUT (If-None-Match: *) instead.
        """
        match = re.match(r"^s3[an]?://([^/]+)/(.+)$", uri)
        if match:
            import boto3  # its endpoint and credentials from the environment, as on EMR

            return create_exclusive_s3(match.group(1), match.group(2), text, boto3.client("s3"))
        local = self.local_path(uri)
        if local is not None:
            return create_exclusive_file(local, text)
        try:
            stream = self._fs(uri).create(self._path(uri), False)
        except Exception as exc:  # noqa: BLE001 - FileAlreadyExistsException arrives as a Py4JJavaError
            if "AlreadyExists" in str(exc):
                return False
            raise
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()
        return True

    def local_path(self, uri: str) -> Optional[str]:
        """The plain path of a qualified file: URI, else None."""
        qualified = self.qualify(uri)
        return qualified[len("file:"):] if qualified.startswith("file:") else None

    def write_text(self, uri: str, text: str) -> None:
        stream = self._fs(uri).create(self._path(uri), True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()

    def glob(self, pattern: str, mtimes: "Optional[dict]" = None) -> "list[tuple[str, int]]":
        """(uri, size) of the files matching a Hadoop glob pattern (*, ?, [..], {a,b}), sorted; `mtimes`, when
        given, receives each one's modification time (ns, from Hadoop's ms)."""
        statuses = [s for s in (self._fs(pattern).globStatus(self._path(pattern)) or []) if s.isFile()]
        if mtimes is not None:
            mtimes.update((s.getPath().toString(), int(s.getModificationTime()) * 1_000_000) for s in statuses)
        return sorted((s.getPath().toString(), int(s.getLen())) for s in statuses)

    def list_files(self, uri: str, suffix: str = "") -> "list[tuple[str, int, int]]":
        """(uri, size, mtime_ms) of files below uri, recursively, ending in suffix."""
        out = []
        iterator = self._fs(uri).listFiles(self._path(uri), True)
        while iterator.hasNext():
            status = iterator.next()
            name = status.getPath().toString()
            if name.endswith(suffix):
                out.append((name, int(status.getLen()), int(status.getModificationTime())))
        return sorted(out)
